//! Who is calling a data route: anonymous, or the holder of a verified read token.
//!
//! **Invariant**: a request that carries `Authorization` is never treated as anonymous; if the
//! header does not verify, the answer is 401.

mod jwt;

use crate::config::Config;
use crate::error::ApiError;
use crate::view::Access;

/// The caller's access for `authorization` (the raw header value, if any) at `now_ms`.
///
/// # Errors
/// `Unauthorized` for any header that does not verify as a read token, including every header
/// when `READ_TOKEN_SECRET` is unset.
pub fn access(authorization: Option<&str>, cfg: &Config, now_ms: u64) -> Result<Access, ApiError> {
    access_until(authorization, cfg, now_ms).map(|(access, _)| access)
}

/// `access`, and for a read token its `exp` (in ms): a live-events subscription ends then (a
/// token still accepted within its leeway gets its socket closed at once).
///
/// # Errors
/// As `access`.
pub fn access_until(
    authorization: Option<&str>,
    cfg: &Config,
    now_ms: u64,
) -> Result<(Access, Option<u64>), ApiError> {
    let Some(header) = authorization else {
        return Ok((Access::Anonymous, None));
    };
    let Some(token) = bearer(header) else {
        return Err(ApiError::Unauthorized(
            "Authorization must be 'Bearer <read token>'".into(),
        ));
    };
    let Some(secret) = &cfg.read_token_secret else {
        return Err(ApiError::Unauthorized(
            "read tokens are not enabled on this deployment".into(),
        ));
    };
    let claims = jwt::verify(token, secret.expose().as_bytes(), now_ms)
        .map_err(|why| ApiError::Unauthorized(format!("the read token {why}")))?;
    let orgs = claims.orgs.unwrap_or_default();
    let all = orgs.iter().any(|o| o == "*");
    let owners = orgs
        .into_iter()
        .filter(|o| o != "*")
        .map(|o| o.to_ascii_lowercase())
        .collect();
    Ok((Access::Token { all, owners }, Some(claims.exp_ms)))
}

/// Checks `Authorization: Bearer $ADMIN_TOKEN` for the admin routes.
///
/// # Errors
/// `NotConfigured` when `ADMIN_TOKEN` is unset; `Unauthorized` for a missing, non-Bearer or
/// wrong token.
pub fn admin(authorization: Option<&str>, cfg: &Config) -> Result<(), ApiError> {
    let expected = cfg
        .admin_token
        .as_ref()
        .ok_or(ApiError::NotConfigured("ADMIN_TOKEN"))?;
    let given = authorization.and_then(bearer).ok_or_else(|| {
        ApiError::Unauthorized("admin routes need Authorization: Bearer <ADMIN_TOKEN>".into())
    })?;
    if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("the admin token is wrong".into()))
    }
}

/// Compares digests rather than the strings, so neither the content nor the length of the
/// secret shows in the timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// The token of a `Bearer` header; the scheme is case-insensitive.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_table() {
        let cases = [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("abc", None),
        ];
        for (h, expected) in cases {
            assert_eq!(bearer(h), expected, "{h}");
        }
    }

    #[test]
    fn admin_table() {
        let unset = Config::from_lookup(|_| None).unwrap();
        assert_eq!(
            admin(Some("Bearer x"), &unset).unwrap_err().code(),
            "not_configured"
        );
        let cfg = Config::from_lookup(|k| (k == "ADMIN_TOKEN").then(|| "s3cret-admin".to_string()))
            .unwrap();
        let cases: &[(Option<&str>, bool)] = &[
            (Some("Bearer s3cret-admin"), true),
            (Some("bearer s3cret-admin"), true),
            (Some("Bearer s3cret-admiN"), false),
            (Some("Bearer s3cret-admin2"), false),
            (Some("Basic s3cret-admin"), false),
            (Some("s3cret-admin"), false),
            (None, false),
        ];
        for (h, ok) in cases {
            assert_eq!(admin(*h, &cfg).is_ok(), *ok, "{h:?}");
        }
    }

    #[test]
    fn any_authorization_without_a_secret_is_401() {
        let cfg = Config::from_lookup(|_| None).unwrap();
        assert_eq!(access(None, &cfg, 0), Ok(Access::Anonymous));
        for h in ["Bearer x.y.z", "Basic Zm9vOmJhcg==", "garbage"] {
            assert_eq!(
                access(Some(h), &cfg, 0).unwrap_err().code(),
                "unauthorized",
                "{h}"
            );
        }
    }
}

//! Who is calling a data route: anonymous, or the holder of a verified read token.
//!
//! **Invariant**: a request that carries `Authorization` is never treated as anonymous; if the
//! header does not verify, the answer is 401.

use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::view::Access;
use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmExt, TimeOptions, UntrustedToken};
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;

/// The custom claim of a read token: lowercased owner logins, or `["*"]` for all.
#[derive(Deserialize)]
struct ReadClaims {
    #[serde(default)]
    orgs: Option<Vec<String>>,
}

/// The caller's access for `authorization` (the raw header value, if any) at `now_ms`.
///
/// # Errors
/// `Unauthorized` for any header that does not verify as a read token, including every header
/// when `READ_TOKEN_SECRET` is unset.
pub fn access(authorization: Option<&str>, cfg: &Config, now_ms: u64) -> Result<Access, ApiError> {
    let Some(header) = authorization else {
        return Ok(Access::Anonymous);
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
    verify_read_token(token, secret, now_ms)
}

/// Verifies an HS256 JWT: `alg` exactly `HS256`, a valid signature, `exp` required, `nbf`
/// honoured, both with `LEEWAY_SECONDS` of leeway.
fn verify_read_token(token: &str, secret: &Secret, now_ms: u64) -> Result<Access, ApiError> {
    let denied = |why: &str| ApiError::Unauthorized(format!("the read token {why}"));
    let untrusted = UntrustedToken::new(token).map_err(|_| denied("is malformed"))?;
    // The header names the algorithm; only ours is accepted (no `none`, no key confusion).
    if untrusted.algorithm() != Hs256.name() {
        return Err(denied("must use alg HS256"));
    }
    let key = Hs256Key::new(secret.expose().as_bytes());
    let verified = Hs256
        .validator::<ReadClaims>(&key)
        .validate(&untrusted)
        .map_err(|_| denied("has a bad signature or claims"))?;
    let claims = verified.claims();
    let now = i64::try_from(now_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or_else(|| denied("cannot be checked against the clock"))?;
    let options = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now);
    claims
        .validate_expiration(&options)
        .map_err(|_| denied("is expired or has no exp"))?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|_| denied("is not valid yet"))?;
    }
    let orgs = claims.custom.orgs.clone().unwrap_or_default();
    let all = orgs.iter().any(|o| o == "*");
    let owners = orgs
        .into_iter()
        .filter(|o| o != "*")
        .map(|o| o.to_ascii_lowercase())
        .collect();
    Ok(Access::Token { all, owners })
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

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000;

    fn b64(data: &[u8]) -> String {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(data)
    }

    /// Mints a token as PyJWT or jsonwebtoken would, by hand, so header and claims can be
    /// anything a hostile client might send.
    fn mint(header: &str, claims: &str, key: &str) -> String {
        use hmac::{Hmac, Mac};
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn token_cfg() -> Config {
        Config::from_lookup(|k| (k == "READ_TOKEN_SECRET").then(|| KEY.to_string())).unwrap()
    }

    fn check_token(token: &str) -> Result<Access, ApiError> {
        let now_ms = u64::try_from(NOW).unwrap() * 1000;
        access(Some(&format!("Bearer {token}")), &token_cfg(), now_ms)
    }

    #[test]
    fn read_token_table() {
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        let exp = NOW + 600;
        let none = || {
            Some(Access::Token {
                all: false,
                owners: vec![],
            })
        };
        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(format!(r#"{{"exp":{exp}}}"#).as_bytes())
        );
        let cases: Vec<(String, Option<Access>)> = vec![
            (
                mint(
                    hs,
                    &format!(r#"{{"exp":{exp},"orgs":["Octo-Org","acme"]}}"#),
                    KEY,
                ),
                Some(Access::Token {
                    all: false,
                    owners: vec!["octo-org".into(), "acme".into()],
                }),
            ),
            (
                mint(hs, &format!(r#"{{"exp":{exp},"orgs":["*"]}}"#), KEY),
                Some(Access::Token {
                    all: true,
                    owners: vec![],
                }),
            ),
            (mint(hs, &format!(r#"{{"exp":{exp}}}"#), KEY), none()),
            (
                mint(hs, &format!(r#"{{"exp":{exp},"orgs":[]}}"#), KEY),
                none(),
            ),
            // 20 s past exp is inside the 30 s leeway; 40 s is not.
            (mint(hs, &format!(r#"{{"exp":{}}}"#, NOW - 20), KEY), none()),
            (mint(hs, &format!(r#"{{"exp":{}}}"#, NOW - 40), KEY), None),
            (mint(hs, r#"{"orgs":["*"]}"#, KEY), None),
            (
                mint(hs, &format!(r#"{{"exp":{exp},"nbf":{}}}"#, NOW + 20), KEY),
                none(),
            ),
            (
                mint(hs, &format!(r#"{{"exp":{exp},"nbf":{}}}"#, NOW + 40), KEY),
                None,
            ),
            (
                mint(
                    hs,
                    &format!(r#"{{"exp":{exp}}}"#),
                    "another-key-another-key-another-k",
                ),
                None,
            ),
            (
                mint(r#"{"alg":"HS512"}"#, &format!(r#"{{"exp":{exp}}}"#), KEY),
                None,
            ),
            (
                mint(r#"{"alg":"hs256"}"#, &format!(r#"{{"exp":{exp}}}"#), KEY),
                None,
            ),
            (
                mint(hs, &format!(r#"{{"exp":{exp},"orgs":"*"}}"#), KEY),
                None,
            ),
            (mint(hs, &format!(r#"{{"exp":"{exp}"}}"#), KEY), None),
            (unsigned, None),
            ("not-a-jwt".into(), None),
            ("a.b.c".into(), None),
        ];
        for (token, expected) in cases {
            match expected {
                Some(a) => assert_eq!(check_token(&token), Ok(a), "{token}"),
                None => assert_eq!(
                    check_token(&token).unwrap_err().code(),
                    "unauthorized",
                    "{token}"
                ),
            }
        }
    }

    #[test]
    fn tampered_claims_fail() {
        let token = mint(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"exp":{},"orgs":["acme"]}}"#, NOW + 600),
            KEY,
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(format!(r#"{{"exp":{},"orgs":["*"]}}"#, NOW + 600).as_bytes());
        parts[1] = &forged;
        assert_eq!(
            check_token(&parts.join(".")).unwrap_err().code(),
            "unauthorized"
        );
    }
}

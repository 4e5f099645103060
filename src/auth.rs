//! Who is calling a data route: anonymous, or the holder of a verified read token.
//!
//! **Invariant**: a request that carries `Authorization` is never treated as anonymous; if the
//! header does not verify, the answer is 401.

use crate::config::Config;
use crate::error::ApiError;
use crate::view::Access;

/// The caller's access for `authorization` (the raw header value, if any).
///
/// # Errors
/// `Unauthorized` for any header that does not verify as a read token.
pub fn access(authorization: Option<&str>, cfg: &Config) -> Result<Access, ApiError> {
    let Some(header) = authorization else {
        return Ok(Access::Anonymous);
    };
    let Some(_token) = bearer(header) else {
        return Err(ApiError::Unauthorized(
            "Authorization must be 'Bearer <read token>'".into(),
        ));
    };
    if cfg.read_token_secret.is_none() {
        return Err(ApiError::Unauthorized(
            "read tokens are not enabled on this deployment".into(),
        ));
    }
    Err(ApiError::Unauthorized(
        "the read token could not be verified".into(),
    ))
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
    fn any_authorization_without_verification_is_401() {
        let cfg = Config::from_lookup(|_| None).unwrap();
        assert_eq!(access(None, &cfg), Ok(Access::Anonymous));
        for h in ["Bearer x.y.z", "Basic Zm9vOmJhcg==", "garbage"] {
            assert_eq!(
                access(Some(h), &cfg).unwrap_err().code(),
                "unauthorized",
                "{h}"
            );
        }
    }
}

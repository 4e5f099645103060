//! GitHub App authentication without I/O: the App's PEM key turned into the PKCS#8 DER that
//! WebCrypto imports, the App JWT's signing input, the two REST calls (installation lookup,
//! installation access token) and the parsing of their replies.
//!
//! **Invariant**: no RSA arithmetic here: the shell signs with `crypto.subtle` (an RSA crate would
//! cost the wasm tens of KB). Key bytes and tokens only ever travel in `Secret`-like wrappers whose
//! `Debug` is redacted.

use super::USER_AGENT;
use crate::base64::encode_url;
use crate::forge::{HttpCall, HttpReply, UpstreamFailure};
use crate::names::Owner;
use crate::secret::Secret;
pub use crate::secret::{key_from_pem, wrap_pkcs1, AppKey};
use crate::time::parse_rfc3339;
use serde::Deserialize;

/// GitHub refuses App JWTs living longer than 10 minutes; 9 leaves room for clock skew.
pub const JWT_LIFETIME_S: u64 = 9 * 60;
/// `iat` is backdated by this much: GitHub refuses an `iat` in its future.
pub const JWT_BACKDATE_S: u64 = 60;
/// An installation token is used until this long before its `expires_at`.
pub const TOKEN_MARGIN_MS: u64 = 5 * 60 * 1000;
const API_VERSION: &str = "2022-11-28";

/// The App JWT's `header.claims` (base64url) for RS256: `iat` now−60 s, `exp` now+9 min.
pub fn jwt_signing_input(app_id: u64, now_ms: u64) -> String {
    let now = now_ms / 1000;
    let header = r#"{"alg":"RS256","typ":"JWT"}"#;
    let claims = format!(
        r#"{{"iat":{},"exp":{},"iss":{app_id}}}"#,
        now.saturating_sub(JWT_BACKDATE_S),
        now + JWT_LIFETIME_S
    );
    format!(
        "{}.{}",
        encode_url(header.as_bytes()),
        encode_url(claims.as_bytes())
    )
}

/// The complete JWT from its signing input and RS256 signature.
pub fn jwt(signing_input: &str, signature: &[u8]) -> Secret {
    Secret::new(format!("{signing_input}.{}", encode_url(signature)))
}

/// Where an owner's installation is looked up: organizations first, then users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Org,
    User,
}

pub(crate) fn rest_call(method: &'static str, url: String, credential: &Secret) -> HttpCall {
    HttpCall {
        method,
        url,
        headers: vec![
            ("accept".into(), "application/vnd.github+json".into()),
            ("user-agent".into(), USER_AGENT.into()),
            ("x-github-api-version".into(), API_VERSION.into()),
            (
                "authorization".into(),
                format!("Bearer {}", credential.expose()),
            ),
        ],
        body: String::new(),
    }
}

/// `GET {api}/orgs/{owner}/installation` (or `/users/…`).
pub fn installation_call(api_url: &str, owner: &Owner, kind: OwnerKind, jwt: &Secret) -> HttpCall {
    let base = api_url.trim_end_matches('/');
    let kind = match kind {
        OwnerKind::Org => "orgs",
        OwnerKind::User => "users",
    };
    // A validated owner holds only letters, digits and hyphens: no escaping needed.
    let url = format!("{base}/{kind}/{}/installation", owner.as_str());
    rest_call("GET", url, jwt)
}

/// `POST {api}/app/installations/{id}/access_tokens`.
pub fn token_call(api_url: &str, installation: u64, jwt: &Secret) -> HttpCall {
    let base = api_url.trim_end_matches('/');
    let mut call = rest_call(
        "POST",
        format!("{base}/app/installations/{installation}/access_tokens"),
        jwt,
    );
    call.body = "{}".into();
    call.headers
        .push(("content-type".into(), "application/json".into()));
    call
}

/// The installation id of a lookup reply; `None` when the App is not installed there (404).
///
/// # Errors
/// Any other status, or a body without an id.
pub fn parse_installation(reply: &HttpReply) -> Result<Option<u64>, UpstreamFailure> {
    /// Of the reply's many fields, the id.
    #[derive(Deserialize)]
    struct Installation {
        id: u64,
    }
    match reply.status {
        404 => Ok(None),
        200 => serde_json::from_slice::<Installation>(&reply.body)
            .map(|i| Some(i.id))
            .map_err(|_| UpstreamFailure::Unusable("installation reply without an id".into())),
        s => Err(UpstreamFailure::Unusable(format!(
            "installation lookup answered HTTP {s}"
        ))),
    }
}

/// An installation access token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationToken {
    pub token: Secret,
    pub expires_at_ms: u64,
}

/// The token of an `access_tokens` reply (201).
///
/// # Errors
/// Any other status, or a token that is unusable in a header.
pub fn parse_token(reply: &HttpReply) -> Result<InstallationToken, UpstreamFailure> {
    if reply.status != 201 && reply.status != 200 {
        return Err(UpstreamFailure::Unusable(format!(
            "installation token request answered HTTP {}",
            reply.status
        )));
    }
    /// Of the reply's fields, the token and its expiry.
    #[derive(Deserialize)]
    struct Minted {
        token: String,
        expires_at: String,
    }
    let bad = || UpstreamFailure::Unusable("unusable installation token reply".into());
    let minted = serde_json::from_slice::<Minted>(&reply.body).map_err(|_| bad())?;
    let token = minted.token.as_str();
    let expires_at_ms = parse_rfc3339(&minted.expires_at).ok_or_else(bad)?;
    // The token goes into a header: a space or newline would let it inject another one.
    if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    Ok(InstallationToken {
        token: Secret::new(token),
        expires_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{der_len, der_sequence_body};
    use base64ct::Encoding;

    // A real 512-bit RSA key, for tests only (shared with tests/app.rs), and the same key as
    // PKCS#8 (from node:crypto).
    const PKCS1: &str = include_str!("../../../tests/data/app/test-key-pkcs1.pem");
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIBUwIBADANBgkqhkiG9w0BAQEFAASCAT0wggE5AgEAAkEArHeh2uqBY6HR/59+
Dyk/CYspRGTHhyWvloEZ4pWNFwRFLOwCy6pp9kVoywcomEnCxgtY7CIHM0lJ78KS
E9bvoQIDAQABAkBzLAzNOW8gjq7DCspO65dqEyGCx94q1TLVye70TjSDGkEpI+Yg
k+hRI+6nV4zJ0+UHDWe8QK7LlxzLE3GabcZVAiEA2FpAXweNOd/fRPahful2xzB9
HDt5xKnvC0NTzyEq9KcCIQDMEpe1i6e5580Pz7RmsW9SNWf3LXJH+ZMBYFkLY0/a
dwIgBS7UT/J8XaCRVrOZ1tJ89/Sfaqe6GQ4BHgH05gdjYg0CIC4OmCzCCyW6+h3y
a62tqAkuwnsXx64U1qe93fri/Be7AiBuPtfUQJQ63hEe6IDUjtYYrnF4fsPyzU7E
vZOd/90dKw==
-----END PRIVATE KEY-----";

    #[test]
    fn pkcs1_is_wrapped_into_the_same_pkcs8() {
        let from1 = key_from_pem(PKCS1).unwrap();
        let from8 = key_from_pem(PKCS8).unwrap();
        assert_eq!(from1, from8);
        // As pasted into a secret with literal \n and CRLF line ends.
        let pasted = PKCS1.replace('\n', "\\n");
        assert_eq!(key_from_pem(&pasted).unwrap(), from8);
        assert_eq!(key_from_pem(&PKCS1.replace('\n', "\r\n")).unwrap(), from8);
        assert!(!format!("{from1:?}").contains("MII"));
    }

    #[test]
    fn der_lengths() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0]),
            (127, &[127]),
            (128, &[0x81, 128]),
            (255, &[0x81, 255]),
            (256, &[0x82, 1, 0]),
            (1190, &[0x82, 0x04, 0xa6]),
            (70_000, &[0x83, 0x01, 0x11, 0x70]),
        ];
        for (len, want) in cases {
            assert_eq!(der_len(*len), *want, "{len}");
        }
        // A 2048-bit PKCS#1 key (1190 bytes) gets two-byte lengths inside and out.
        let wrapped = wrap_pkcs1(&[0u8; 1190]);
        assert_eq!(&wrapped[..4], &[0x30, 0x82, 0x04, 0xbc]);
        assert_eq!(wrapped.len(), 4 + 0x4bc);
        assert_eq!(der_sequence_body(&wrapped).map(<[u8]>::len), Some(0x4bc));
    }

    #[test]
    fn malformed_pems_are_refused() {
        let body = PKCS1
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let cases = [
            String::new(),
            "not a key".into(),
            body.clone(),
            PKCS1.replace("RSA PRIVATE KEY", "PUBLIC KEY"),
            PKCS1.replace("-----END RSA PRIVATE KEY-----", ""),
            PKCS1.replace("-----END RSA PRIVATE KEY-----", "-----END PRIVATE KEY-----"),
            PKCS1.replace("MIIBOQIBAAJBAKx3", "MIIBOQIBAAJBAKx!"),
            // Truncated: the DER length no longer matches.
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
                body.get(..64).unwrap()
            ),
            // PKCS#1 content under a PKCS#8 label.
            PKCS1.replace("RSA PRIVATE KEY", "PRIVATE KEY"),
            "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----".into(),
        ];
        for pem in &cases {
            assert!(key_from_pem(pem).is_err(), "{pem}");
        }
    }

    #[test]
    fn jwt_signing_input_claims() {
        let input = jwt_signing_input(12345, 1_700_000_000_999);
        let (h, c) = input.split_once('.').unwrap();
        let h = base64ct::Base64UrlUnpadded::decode_vec(h).unwrap();
        let c = base64ct::Base64UrlUnpadded::decode_vec(c).unwrap();
        assert_eq!(h, br#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(
            String::from_utf8(c).unwrap(),
            r#"{"iat":1699999940,"exp":1700000540,"iss":12345}"#
        );
        assert!(!input.contains('='));
        let token = jwt(&input, &[0xfb, 0xff]);
        assert!(token.expose().ends_with(".-_8"));
    }

    #[test]
    fn rest_calls() {
        let jwt = Secret::new("j.w.t");
        let owner = Owner::parse("Octo-Org").unwrap();
        let call = installation_call("http://127.0.0.1:9/", &owner, OwnerKind::Org, &jwt);
        assert_eq!(
            (call.method, call.url.as_str()),
            ("GET", "http://127.0.0.1:9/orgs/Octo-Org/installation")
        );
        assert!(call
            .headers
            .contains(&("authorization".into(), "Bearer j.w.t".into())));
        let call = installation_call("https://api.github.com", &owner, OwnerKind::User, &jwt);
        assert_eq!(
            call.url,
            "https://api.github.com/users/Octo-Org/installation"
        );
        let call = token_call("https://api.github.com", 42, &jwt);
        assert_eq!(
            (call.method, call.url.as_str()),
            (
                "POST",
                "https://api.github.com/app/installations/42/access_tokens"
            )
        );
    }

    fn reply(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn installation_replies() {
        assert_eq!(
            parse_installation(&reply(200, r#"{"id":1001,"account":{"login":"o"}}"#)),
            Ok(Some(1001))
        );
        assert_eq!(
            parse_installation(&reply(404, r#"{"message":"Not Found"}"#)),
            Ok(None)
        );
        assert!(parse_installation(&reply(401, "{}")).is_err());
        assert!(parse_installation(&reply(200, r#"{"id":"x"}"#)).is_err());
    }

    #[test]
    fn token_replies() {
        let t = parse_token(&reply(
            201,
            r#"{"token":"ghs_abc","expires_at":"2026-01-01T01:00:00Z","permissions":{}}"#,
        ))
        .unwrap();
        assert_eq!(t.token.expose(), "ghs_abc");
        assert_eq!(
            t.expires_at_ms,
            parse_rfc3339("2026-01-01T01:00:00Z").unwrap()
        );
        assert!(!format!("{t:?}").contains("ghs_abc"));
        let bad = [
            reply(
                401,
                r#"{"message":"A JSON web token could not be decoded"}"#,
            ),
            reply(
                201,
                r#"{"token":"ghs_a\r\nx: y","expires_at":"2026-01-01T01:00:00Z"}"#,
            ),
            reply(201, r#"{"token":"ghs_a","expires_at":"soon"}"#),
            reply(201, "not json"),
        ];
        for r in &bad {
            assert!(parse_token(r).is_err());
        }
    }
}

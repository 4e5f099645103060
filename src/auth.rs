//! Who is calling a data route: anonymous, or the holder of a verified read token.
//!
//! **Invariant**: a request that carries `Authorization` is never treated as anonymous; if the
//! header does not verify, the answer is 401.

use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::view::Access;
use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmExt, UntrustedToken};
use serde::Deserialize;
use serde_json::Value;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;

/// Latest `exp`, `nbf` or `iat` accepted (9999-12-31T23:59:59Z); the earliest is 0. Inside this
/// range no date library can overflow on them and the leeway arithmetic stays far from `i64`'s
/// limits.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

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
    // Range first: jwt-compact turns these claims into chrono dates and does date arithmetic
    // that panics near chrono's limits (a panic aborts the wasm instance).
    let times = time_claims(token).map_err(denied)?;
    let key = Hs256Key::new(secret.expose().as_bytes());
    let verified = Hs256
        .validator::<ReadClaims>(&key)
        .validate(&untrusted)
        .map_err(|_| denied("has a bad signature or claims"))?;
    // The signature now covers the payload `times` was read from.
    times.check(now_ms).map_err(denied)?;
    let orgs = verified.claims().custom.orgs.clone().unwrap_or_default();
    let all = orgs.iter().any(|o| o == "*");
    let owners = orgs
        .into_iter()
        .filter(|o| o != "*")
        .map(|o| o.to_ascii_lowercase())
        .collect();
    Ok(Access::Token { all, owners })
}

/// The time claims of a read token in whole seconds, each within `0..=MAX_TIMESTAMP`.
#[derive(Debug, PartialEq, Eq)]
struct TimeClaims {
    exp: Option<i64>,
    nbf: Option<i64>,
}

impl TimeClaims {
    /// `exp` required and not past, `nbf` (if any) reached, both with `LEEWAY_SECONDS` of leeway.
    /// Plain integer arithmetic, saturating, so no input can overflow it.
    fn check(&self, now_ms: u64) -> Result<(), &'static str> {
        let now_ms = i64::try_from(now_ms).map_err(|_| "cannot be checked against the clock")?;
        let ms = |secs: i64| secs.saturating_mul(1000);
        let exp = self.exp.ok_or("has no exp")?;
        if now_ms > ms(exp.saturating_add(LEEWAY_SECONDS)) {
            return Err("is expired");
        }
        if let Some(nbf) = self.nbf {
            if now_ms < ms(nbf.saturating_sub(LEEWAY_SECONDS)) {
                return Err("is not valid yet");
            }
        }
        Ok(())
    }
}

/// Reads `exp`, `nbf` and `iat` from the (not yet verified) payload segment of `token`, refusing
/// any that is not a number in `0..=MAX_TIMESTAMP`.
fn time_claims(token: &str) -> Result<TimeClaims, &'static str> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("is malformed");
    };
    let json = Base64UrlUnpadded::decode_vec(payload).map_err(|_| "is malformed")?;
    let claims: serde_json::Map<String, Value> =
        serde_json::from_slice(&json).map_err(|_| "is malformed")?;
    // `iat` is not used, but jwt-compact parses it too, so it gets the same range check.
    timestamp(claims.get("iat"))?;
    Ok(TimeClaims {
        exp: timestamp(claims.get("exp"))?,
        nbf: timestamp(claims.get("nbf"))?,
    })
}

/// A NumericDate claim in whole seconds. RFC 7519 allows fractions, and PyJWT or a JavaScript
/// backend may send them, so an in-range float is accepted and truncated (as jwt-compact does).
fn timestamp(value: Option<&Value>) -> Result<Option<i64>, &'static str> {
    let Some(value) = value else {
        return Ok(None);
    };
    let range = 0..=MAX_TIMESTAMP;
    let secs = match value.as_i64() {
        Some(secs) => Some(secs),
        // The range check comes before the cast, so the cast never saturates.
        None => value
            .as_f64()
            .filter(|f| (0.0..=MAX_TIMESTAMP as f64).contains(f))
            .map(|f| f as i64),
    };
    secs.filter(|s| range.contains(s))
        .map(Some)
        .ok_or("has an exp, nbf or iat that is not a time between 1970 and 9999")
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

    /// Time claims out of range or of the wrong type are refused before any date library sees
    /// them; `-8334601228800` as `nbf` used to panic inside chrono.
    #[test]
    fn time_claims_table() {
        let hs = r#"{"alg":"HS256"}"#;
        let exp = NOW + 600;
        let ok = || {
            Some(Access::Token {
                all: false,
                owners: vec![],
            })
        };
        let cases: Vec<(String, Option<Access>)> = vec![
            (format!(r#"{{"exp":{exp},"nbf":-8334601228800}}"#), None),
            (format!(r#"{{"exp":{exp},"nbf":-8334632851200}}"#), None),
            (format!(r#"{{"exp":{exp},"nbf":-1}}"#), None),
            (format!(r#"{{"exp":{exp},"nbf":0}}"#), ok()),
            (format!(r#"{{"exp":{exp},"iat":{NOW}}}"#), ok()),
            (r#"{"exp":253402300799}"#.into(), ok()),
            (r#"{"exp":253402300800}"#.into(), None),
            (r#"{"exp":8210266876799}"#.into(), None),
            (r#"{"exp":9223372036854775807}"#.into(), None),
            (r#"{"exp":18446744073709551615}"#.into(), None),
            (r#"{"exp":100000000000000000000000}"#.into(), None),
            (r#"{"exp":-9223372036854775808}"#.into(), None),
            (format!(r#"{{"exp":{}.75}}"#, exp), ok()),
            (format!(r#"{{"exp":{exp},"nbf":{}.5}}"#, NOW - 100), ok()),
            (r#"{"exp":1e300}"#.into(), None),
            (r#"{"exp":-1.5}"#.into(), None),
            (format!(r#"{{"exp":"{exp}"}}"#), None),
            (format!(r#"{{"exp":{exp},"nbf":"0"}}"#), None),
            (format!(r#"{{"exp":{exp},"iat":"now"}}"#), None),
            (format!(r#"{{"exp":{exp},"iat":-8334601228800}}"#), None),
            (r#"{"exp":null}"#.into(), None),
            (r#"{"exp":true}"#.into(), None),
            (r#"{"exp":[1]}"#.into(), None),
            (r#"{"nbf":0}"#.into(), None),
            ("{}".into(), None),
            (format!("[{exp}]"), None),
            ("null".into(), None),
        ];
        for (claims, expected) in cases {
            let got = check_token(&mint(hs, &claims, KEY));
            match expected {
                Some(a) => assert_eq!(got, Ok(a), "{claims}"),
                None => assert_eq!(got.unwrap_err().code(), "unauthorized", "{claims}"),
            }
        }
    }

    #[test]
    fn time_check_is_saturating_at_the_clock_limits() {
        let times = TimeClaims {
            exp: Some(MAX_TIMESTAMP),
            nbf: Some(0),
        };
        assert_eq!(times.check(0), Ok(()));
        assert!(times.check(u64::MAX).is_err());
        assert!(times.check(i64::MAX.unsigned_abs()).is_err());
    }

    /// splitmix64: a few lines, deterministic, good enough to spread fuzz cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let len = self.below(max + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// JSON texts at and past every limit that matters: i64, u64, f64, chrono's first and last
    /// dates, year 9999; and values that are not numbers.
    const EXTREMES: &[&str] = &[
        "0",
        "-0",
        "1",
        "-1",
        "1700000000",
        "1700000600",
        "1699999900",
        "253402300799",
        "253402300800",
        "-8334601228800",
        "-8334632851200",
        "-8334632851230",
        "8210266876799",
        "8210266876800",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "1e300",
        "-1e300",
        "1e400",
        "1.5",
        "-0.0",
        "1700000600.999",
        "4.9e-324",
        "\"1700000600\"",
        "null",
        "true",
        "[]",
        "{}",
        "\"\"",
    ];

    /// A time within twice the leeway of a limit: now, 0, year 9999, chrono's first and last
    /// dates, or i64's ends.
    fn near_an_edge(rng: &mut Rng) -> i64 {
        let edges = [
            NOW,
            0,
            MAX_TIMESTAMP,
            -8_334_601_228_800,
            8_210_266_876_799,
            i64::MIN,
            i64::MAX,
        ];
        let offset = rng.below(121) as i64 - 60;
        edges[rng.below(edges.len())].saturating_add(offset)
    }

    /// Claims with random time values; half of them start with a valid `exp`, so the other
    /// claims are what decides (repeated keys are possible and must be refused, not crash).
    fn random_claims(rng: &mut Rng) -> String {
        let mut fields = Vec::new();
        if rng.below(2) == 0 {
            fields.push(format!("\"exp\":{}", NOW + 600));
        }
        for _ in 0..rng.below(4) {
            let key = rng.pick(&["exp", "nbf", "nbf", "iat", "orgs", "sub"]);
            let value = match (key, rng.below(5)) {
                ("orgs", 0) => r#"["*"]"#.to_string(),
                ("orgs", _) => r#"["acme","Octo-Org"]"#.to_string(),
                (_, 0) => (rng.next() as i64).to_string(),
                (_, 1) => format!("{}", f64::from_bits(rng.next())),
                (_, 2) => near_an_edge(rng).to_string(),
                _ => rng.pick(EXTREMES).to_string(),
            };
            fields.push(format!("\"{key}\":{value}"));
        }
        format!("{{{}}}", fields.join(","))
    }

    /// One hostile token: random text, random base64url segments, or a well-formed token with
    /// random claims signed with the right key (so it reaches claim validation) or a wrong one.
    fn random_token(rng: &mut Rng) -> String {
        let headers = [
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"none"}"#,
        ];
        match rng.below(5) {
            0 => String::from_utf8_lossy(&rng.bytes(200)).into_owned(),
            1 => (0..rng.below(5))
                .map(|_| b64(&rng.bytes(60)))
                .collect::<Vec<_>>()
                .join("."),
            2 => {
                let claims = random_claims(rng);
                mint(rng.pick(&headers), &claims, KEY)
            }
            3 => {
                let mut token = mint(headers[0], &random_claims(rng), KEY).into_bytes();
                let i = rng.below(token.len());
                token[i] = b"A.-_=+/\xff"[rng.below(8)];
                String::from_utf8_lossy(&token).into_owned()
            }
            _ => mint(
                headers[0],
                &random_claims(rng),
                "0123456789abcdef0123456789abcdeX",
            ),
        }
    }

    /// Whatever the token, `access` answers Ok or 401 and never panics.
    #[test]
    fn random_tokens_never_panic() {
        const SEED: u64 = 0x5EED_0FA1_170C;
        const CASES: usize = 20_000;
        let cfg = token_cfg();
        let now_ms = u64::try_from(NOW).unwrap() * 1000;
        let mut rng = Rng(SEED);
        let mut accepted = 0;
        for case in 0..CASES {
            let token = random_token(&mut rng);
            let header = format!("Bearer {token}");
            let outcome = std::panic::catch_unwind(|| access(Some(&header), &cfg, now_ms))
                .unwrap_or_else(|_| panic!("seed {SEED:#x}, case {case}: panicked on {header:?}"));
            match outcome {
                Ok(Access::Token { .. }) => accepted += 1,
                Err(ApiError::Unauthorized(_)) => {}
                other => panic!("seed {SEED:#x}, case {case}: {other:?} for {header:?}"),
            }
        }
        // Otherwise the generator never got past the signature and tested little.
        assert!(
            accepted > CASES / 100,
            "only {accepted} tokens were accepted"
        );
    }
}

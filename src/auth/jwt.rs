//! Read tokens: compact HS256 JWS (RFC 7515/7519) verified with `hmac` and `sha2`.
//! Small on purpose: one algorithm, one key, the claims this worker reads.

use crate::base64;
use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;

/// Latest `exp`, `nbf` or `iat` accepted (9999-12-31T23:59:59Z); the earliest is 0. Inside this
/// range the leeway arithmetic stays far from `i64`'s limits.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// The JOSE header of a read token. `crit` is read only to refuse it: it names extensions the
/// token requires the verifier to understand, and this one understands none (`null` counts as
/// absent). Other members are ignored, a repeated one refuses the token.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The claims a read token may carry; others are ignored, a repeated one is refused. Time claims
/// must be JSON numbers (`null` counts as absent) and stay unconverted text until `timestamp`
/// range-checks them (exactly, on their digits: a float would round at the limits).
#[derive(Default, Deserialize)]
pub(super) struct ReadClaims<'a> {
    #[serde(default, borrow)]
    exp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    nbf: Option<&'a RawValue>,
    #[serde(default, borrow)]
    iat: Option<&'a RawValue>,
    /// Lowercased owner logins, or `["*"]` for all.
    #[serde(default)]
    pub(super) orgs: Option<Vec<String>>,
}

/// Verifies a compact HS256 JWS (RFC 7515/7519) in this order: three base64url segments, `alg`
/// exactly `HS256` (no `none`, no key confusion), the HMAC-SHA256 of `header.payload` compared
/// in constant time, and only then the claims: every time claim within `0..=MAX_TIMESTAMP`,
/// `exp` required, `nbf` honoured, both with `LEEWAY_SECONDS` of leeway.
pub(super) fn verify(token: &str, key: &[u8], now_ms: u64) -> Result<Verified, &'static str> {
    let (signed, signature) = token.rsplit_once('.').ok_or("is malformed")?;
    let (header, payload) = signed.split_once('.').ok_or("is malformed")?;
    let header: Header = object(&decode_segment(header)?).ok_or("is malformed")?;
    if header.alg != "HS256" {
        return Err("must use alg HS256");
    }
    if header.crit.is_some() {
        return Err("names critical extensions");
    }
    let signature = base64::decode_url(signature).ok_or("is malformed")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| "cannot be checked")?;
    mac.update(signed.as_bytes());
    // Constant time; a tag of the wrong length fails too.
    mac.verify_slice(&signature)
        .map_err(|_| "has a bad signature")?;
    // The payload is signed now, so its content is what the token's issuer wrote.
    let text = decode_segment(payload)?;
    let claims: ReadClaims<'_> = object(&text).ok_or("is malformed")?;
    timestamp(claims.iat)?;
    let times = TimeClaims {
        exp: timestamp(claims.exp)?,
        nbf: timestamp(claims.nbf)?,
    };
    times.check(now_ms)?;
    // `check` required `exp` and kept it within `0..=MAX_TIMESTAMP`.
    let exp = times.exp.unwrap_or(0);
    Ok(Verified {
        orgs: claims.orgs,
        exp_ms: u64::try_from(exp).unwrap_or(0).saturating_mul(1000),
    })
}

/// What a verified token grants, and until when.
pub(super) struct Verified {
    /// Lowercased owner logins, or `["*"]` for all; `None` when the token names none.
    pub(super) orgs: Option<Vec<String>>,
    /// Its `exp`, in ms.
    pub(super) exp_ms: u64,
}

/// The JSON object in `json` as `T`; `None` for malformed JSON, another kind of value, a member
/// of the wrong type or a member given twice.
fn object<'a, T: Deserialize<'a>>(json: &'a str) -> Option<T> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_slice(json.as_bytes()).ok()
}

/// Decodes a base64url segment (unpadded, as JWS requires) into its text. A segment holding a
/// dot is refused by the base64 decoder, so a token of four segments fails here.
fn decode_segment(segment: &str) -> Result<String, &'static str> {
    let bytes = base64::decode_url(segment).ok_or("is malformed")?;
    String::from_utf8(bytes).map_err(|_| "is malformed")
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

/// A NumericDate claim in whole seconds. RFC 7519 allows fractions, and PyJWT or a JavaScript
/// backend may send them, so an in-range fraction is accepted and truncated. `None` (absent or
/// `null`) stays `None`.
fn timestamp(value: Option<&RawValue>) -> Result<Option<i64>, &'static str> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.get();
    // A JSON number starts with a minus or a digit; anything else (a string) is no time.
    let number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    number
        .then(|| whole_seconds(text))
        .flatten()
        .map(Some)
        .ok_or("has an exp, nbf or iat that is not a time between 1970 and 9999")
}

/// A JSON number's text truncated toward zero, computed exactly on its digits (no float, so no
/// rounding at the limits): `None` unless within `0..=MAX_TIMESTAMP` (a negative zero is zero).
fn whole_seconds(text: &str) -> Option<i64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The value is 0.DIGITS × 10^point once leading zeros are gone.
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    let lead = i64::try_from(digits.len() - significant.len()).ok()?;
    let point = i64::try_from(int.len())
        .ok()?
        .checked_add(exp)?
        .checked_sub(lead)?;
    if significant.is_empty() || point <= 0 {
        // Zero, or a pure fraction: truncated to zero, which only a positive one may be.
        return (significant.is_empty() || !negative).then_some(0);
    }
    if negative || point > 19 {
        return None;
    }
    let mut secs: u64 = 0;
    for i in 0..point {
        let i = usize::try_from(i).ok()?;
        let d = significant.as_bytes().get(i).map_or(0, |b| b - b'0');
        secs = secs.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    i64::try_from(secs)
        .ok()
        .filter(|s| (0..=MAX_TIMESTAMP).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::access;
    use crate::config::Config;
    use crate::error::ApiError;
    use crate::testkit::Rng;
    use crate::view::Access;
    use base64ct::Encoding;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000;

    use crate::testkit::{b64, mint};

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

    /// RFC 7515 appendix A.1, verbatim: a token minted by someone else's code, with CRLFs and
    /// spaces in its JSON and a 64-byte binary key.
    #[test]
    fn rfc7515_example_verifies() {
        let key = base64ct::Base64UrlUnpadded::decode_vec(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        )
        .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
            eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
            dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let exp_ms = 1_300_819_380_000;
        let claims = verify(token, &key, exp_ms).unwrap();
        assert!(claims.orgs.is_none());
        assert_eq!(verify(token, &key, exp_ms + 30_000).err(), None);
        assert_eq!(
            verify(token, &key, exp_ms + 30_001).err(),
            Some("is expired")
        );
        let mut other_key = key.clone();
        other_key[0] ^= 1;
        assert_eq!(
            verify(token, &other_key, exp_ms).err(),
            Some("has a bad signature")
        );
    }

    /// The shape of a token: segments, encodings, JSON types, duplicate claims, `crit`.
    #[test]
    fn token_shape_table() {
        let exp = NOW + 600;
        let claims = format!(r#"{{"exp":{exp}}}"#);
        let good = mint(r#"{"alg":"HS256"}"#, &claims, KEY);
        assert!(check_token(&good).is_ok());
        let (signed, sig) = good.rsplit_once('.').unwrap();
        let cases: Vec<(String, &str)> = vec![
            (format!("{good}."), "four segments"),
            (format!("{signed}.{sig}.{sig}"), "four segments"),
            (format!("{signed}=.{sig}"), "padding on the payload"),
            (format!("{signed}.{sig}="), "padding on the signature"),
            (
                format!("{signed}.{}", &sig[..sig.len() - 2]),
                "a short signature",
            ),
            (format!("{signed}.{sig}AA"), "a long signature"),
            (format!("{signed}."), "no signature"),
            (format!(".{}", good.split_once('.').unwrap().1), "no header"),
            (mint(r#"["HS256"]"#, &claims, KEY), "an array header"),
            (
                mint(r#"{"alg":"HS256","alg":"HS256"}"#, &claims, KEY),
                "alg twice",
            ),
            (
                mint(r#"{"alg":"HS256","crit":["exp"]}"#, &claims, KEY),
                "crit",
            ),
            (mint(r#"{"typ":"JWT"}"#, &claims, KEY), "no alg"),
            (mint(r#"{"alg":null}"#, &claims, KEY), "alg null"),
            (
                mint(
                    r#"{"alg":"HS256"}"#,
                    &format!("[{exp},null,null,[\"*\"]]"),
                    KEY,
                ),
                "array claims",
            ),
            (
                mint(
                    r#"{"alg":"HS256"}"#,
                    &format!(r#"{{"exp":{exp},"exp":{exp}}}"#),
                    KEY,
                ),
                "exp twice",
            ),
            (
                mint(
                    r#"{"alg":"HS256"}"#,
                    &format!(r#"{{"exp":{exp},"orgs":["a"],"orgs":["*"]}}"#),
                    KEY,
                ),
                "orgs twice",
            ),
            (
                mint(
                    r#"{"alg":"HS256"}"#,
                    &format!(r#"{{"exp":{exp},"orgs":[1]}}"#),
                    KEY,
                ),
                "orgs of numbers",
            ),
            (
                mint(r#"{"alg":"HS256"}"#, &format!(r#"{{"exp":{exp}}} x"#), KEY),
                "trailing text",
            ),
        ];
        for (token, why) in cases {
            assert_eq!(
                check_token(&token).unwrap_err().code(),
                "unauthorized",
                "{why}: {token}"
            );
        }
        // Unknown header fields and claims are ignored; `orgs: null` is no orgs; JSON may have
        // whitespace around it.
        let open = [
            (
                r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#,
                format!(r#"{{"exp":{exp},"sub":"x","aud":["a"]}}"#),
            ),
            (
                r#" {"alg" : "HS256"} "#,
                format!("\n{{ \"exp\": {exp}, \"orgs\": null }}\n"),
            ),
        ];
        for (header, claims) in open {
            assert!(
                check_token(&mint(header, &claims, KEY)).is_ok(),
                "{header} {claims}"
            );
        }
    }

    /// Time claims out of range or of the wrong type are refused; `-8334601228800` as `nbf`
    /// once panicked inside the JWT crate's date library (chrono), which this module replaced.
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

    /// Whole seconds of a number's text, against what a float reading would give where floats
    /// are exact.
    #[test]
    fn whole_seconds_table() {
        let cases = [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("-0.0", Some(0)),
            ("-0e9", Some(0)),
            ("1", Some(1)),
            ("-1", None),
            ("-0.5", None),
            ("1.999", Some(1)),
            ("0.5", Some(0)),
            ("4.9e-324", Some(0)),
            ("1.7e9", Some(1_700_000_000)),
            ("17E8", Some(1_700_000_000)),
            ("1700000000.75", Some(1_700_000_000)),
            ("0.0017e12", Some(1_700_000_000)),
            ("1700000000e-3", Some(1_700_000)),
            ("253402300799", Some(MAX_TIMESTAMP)),
            ("253402300799.9999999999", Some(MAX_TIMESTAMP)),
            ("253402300800", None),
            ("2.534023008e11", None),
            ("9223372036854775807", None),
            ("18446744073709551616", None),
            ("1e300", None),
            ("1e400", None),
            ("1e-400", Some(0)),
            ("1e99999999999999999999", None),
        ];
        for (text, want) in cases {
            assert_eq!(whole_seconds(text), want, "{text}");
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

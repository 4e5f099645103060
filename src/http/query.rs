//! Query-string parsing. Values are percent-decoded (and `+` is a space), unlike path segments.

use crate::error::ApiError;

/// Longest raw query string a data route reads (DESIGN.md: longer → 400 `invalid_name`). It also
/// bounds the work of decoding, splitting and validating `names=` before anything is refused.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Refuses a raw query (without `?`) longer than `MAX_QUERY_BYTES`, before it is parsed.
///
/// # Errors
/// `InvalidName` when `raw` is longer than `MAX_QUERY_BYTES` bytes.
pub fn check_len(raw: &str) -> Result<(), ApiError> {
    if raw.len() > MAX_QUERY_BYTES {
        return Err(ApiError::InvalidName(format!(
            "the query string is longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The raw query of a full URL: after the first `?`, before any `#`.
pub fn from_url(url: &str) -> &str {
    let before_fragment = url.split('#').next().unwrap_or_default();
    before_fragment.split_once('?').map_or("", |(_, q)| q)
}

/// Every `key=value` pair in order; a key without `=` has an empty value. As
/// `application/x-www-form-urlencoded` reads it (`form_urlencoded`): `+` is a space, a malformed
/// escape is kept literally (and then fails name validation), invalid UTF-8 becomes U+FFFD.
pub fn parse(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// All values given for `key`.
pub fn values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_from_url() {
        let cases = [
            ("https://x.test/v1/repos?names=a/b", "names=a/b"),
            ("https://x.test/v1/repos?names=a/b#frag?no", "names=a/b"),
            ("https://x.test/v1/repos#frag?no", ""),
            ("https://x.test/v1/repos", ""),
            ("https://x.test/?a=1?b=2", "a=1?b=2"),
        ];
        for (url, q) in cases {
            assert_eq!(from_url(url), q, "{url}");
        }
    }

    #[test]
    fn query_length_limit() {
        let cases: &[(usize, Option<&str>)] = &[
            (0, None),
            (1, None),
            (MAX_QUERY_BYTES - 1, None),
            (MAX_QUERY_BYTES, None),
            (MAX_QUERY_BYTES + 1, Some("invalid_name")),
            (10 * MAX_QUERY_BYTES, Some("invalid_name")),
        ];
        for (len, code) in cases {
            let raw = "x".repeat(*len);
            assert_eq!(
                check_len(&raw).err().map(|e| e.code()),
                *code,
                "{len} bytes"
            );
        }
        // Bytes, not characters: 2,731 three-byte characters are 8,193 bytes.
        assert!(check_len(&"✓".repeat(2731)).is_err());
        assert!(check_len(&"✓".repeat(2730)).is_ok());
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("names=a/b", &[("names", "a/b")]),
            ("names=a%2Fb,c%2fd", &[("names", "a/b,c/d")]),
            (
                "fields=name&fields=ci",
                &[("fields", "name"), ("fields", "ci")],
            ),
            ("flag&x=", &[("flag", ""), ("x", "")]),
            ("a=1+2", &[("a", "1 2")]),
            ("a=%zz%", &[("a", "%zz%")]),
            ("a=%E2%9C%93", &[("a", "✓")]),
            ("a=%FF", &[("a", "\u{FFFD}")]),
            ("&&a=b&&", &[("a", "b")]),
        ];
        for (q, expected) in cases {
            let got = parse(q);
            let got: Vec<(&str, &str)> =
                got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(got, *expected, "{q}");
        }
    }
}

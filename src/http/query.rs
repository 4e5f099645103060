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

/// Every `key=value` pair in order; a key without `=` has an empty value.
pub fn parse(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
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

/// Percent-decoding; a malformed escape is kept literally (and then fails name validation).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

//! Base64 (RFC 4648): the padded standard alphabet of PEM keys and the unpadded URL alphabet of
//! JWTs, on `base64ct` (RustCrypto's constant-time base64: a PEM body is a private key). Decoding
//! is strict (no stray padding, no non-zero trailing bits: one text per byte string); this module
//! only names which form each use takes. It replaced a hand-written codec (ARCHITECTURE.md,
//! "Crates over hand-written code", has the measurements).

use base64ct::{Base64, Base64UrlUnpadded, Encoding};

/// `bytes` in base64url without padding (JWT segments).
pub fn encode_url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Unpadded base64url (JWT segments); `None` for anything else.
pub fn decode_url(text: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(text).ok()
}

/// Padded standard base64 (PEM bodies, whitespace removed); `None` for anything else.
pub fn decode_std(text: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Rng;
    use base64ct::{Base64, Base64UrlUnpadded, Encoding};

    /// Random texts over the alphabets, padding and a few strays, and every byte string length
    /// up to 64: the same answers as base64ct.
    #[test]
    fn agrees_with_base64ct() {
        let mut rng = Rng(0xba5e_0064);
        let chars =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= .\n\x00\xff";
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let url = encode_url(&bytes);
            assert_eq!(url, Base64UrlUnpadded::encode_string(&bytes));
            assert_eq!(decode_url(&url).as_deref(), Some(&bytes[..]));
            let std = Base64::encode_string(&bytes);
            assert_eq!(decode_std(&std).as_deref(), Some(&bytes[..]));
        }
        for _ in 0..20_000 {
            let len = rng.below(12);
            let text: String = (0..len)
                .map(|_| char::from(chars[rng.below(chars.len())]))
                .collect();
            assert_eq!(
                decode_url(&text),
                Base64UrlUnpadded::decode_vec(&text).ok(),
                "url {text:?}"
            );
            assert_eq!(
                decode_std(&text),
                Base64::decode_vec(&text).ok(),
                "std {text:?}"
            );
        }
    }

    /// A text, what `decode_url` makes of it, what `decode_std` makes of it.
    type Case<'a> = (&'a str, Option<&'a [u8]>, Option<&'a [u8]>);

    #[test]
    fn strict_forms() {
        let cases: &[Case] = &[
            ("", Some(b""), Some(b"")),
            ("QQ", Some(b"A"), None),
            ("QQ==", None, Some(b"A")),
            ("QR", None, None), // non-zero trailing bits
            ("QUI", Some(b"AB"), None),
            ("QUI=", None, Some(b"AB")),
            ("Q", None, None),
            ("====", None, None),
            ("QUJD", Some(b"ABC"), Some(b"ABC")),
            ("-_-_", Some(&[0xfb, 0xff, 0xbf]), None),
            ("+/+/", None, Some(&[0xfb, 0xff, 0xbf])),
        ];
        for (text, url, std) in cases {
            assert_eq!(decode_url(text).as_deref(), *url, "url {text}");
            assert_eq!(decode_std(text).as_deref(), *std, "std {text}");
        }
    }
}

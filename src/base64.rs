//! Base64 (RFC 4648): the padded standard alphabet of PEM keys and the unpadded URL alphabet of
//! JWTs. Decoding is strict (no stray padding, no non-zero trailing bits: one text per byte
//! string) and looks each character up without branching or indexing on it, since a PEM body is
//! a private key.

/// `bytes` in base64url without padding (JWT segments).
pub fn encode_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let sextet = |n: u32| char::from(ALPHABET.get((n & 63) as usize).copied().unwrap_or(b'A'));
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        // A chunk of k bytes carries k + 1 characters.
        for i in 0..=chunk.len() {
            out.push(sextet(n >> (18 - 6 * i)));
        }
    }
    out
}

/// Unpadded base64url (JWT segments); `None` for anything else.
pub fn decode_url(text: &str) -> Option<Vec<u8>> {
    decode_unpadded(text.as_bytes(), Alphabet::Url)
}

/// Padded standard base64 (PEM bodies, whitespace removed); `None` for anything else.
pub fn decode_std(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let body = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="))
        .unwrap_or(bytes);
    // Padding completes the last group only: `xx==` or `xxx=`, never a whole group of it.
    if body.len() % 4 == 0 && body.len() != bytes.len() {
        return None;
    }
    decode_unpadded(body, Alphabet::Standard)
}

#[derive(Clone, Copy)]
enum Alphabet {
    Standard,
    Url,
}

/// The value of base64 character `c`, or -1. Each range test is arithmetic: `(lo - c) & (c - hi)`
/// is negative exactly when `lo < c < hi`, and shifting it right by 8 makes a mask of it.
fn sextet(c: u8, alphabet: Alphabet) -> i16 {
    let c = i16::from(c);
    let within = |lo: i16, hi: i16| ((lo - c) & (c - hi)) >> 8;
    let (c62, c63) = match alphabet {
        Alphabet::Standard => (i16::from(b'+'), i16::from(b'/')),
        Alphabet::Url => (i16::from(b'-'), i16::from(b'_')),
    };
    let mut value: i16 = -1;
    value += within(0x40, 0x5b) & (c - 64); // A-Z: 0-25
    value += within(0x60, 0x7b) & (c - 70); // a-z: 26-51
    value += within(0x2f, 0x3a) & (c + 5); // 0-9: 52-61
    value += within(c62 - 1, c62 + 1) & 63;
    value += within(c63 - 1, c63 + 1) & 64;
    value
}

fn decode_unpadded(text: &[u8], alphabet: Alphabet) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    // Any invalid character makes this negative; checked once, at the end.
    let mut invalid: i16 = 0;
    for group in text.chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in group.iter().enumerate() {
            let v = sextet(c, alphabet);
            invalid |= v;
            n |= u32::from(v as u16 & 63) << (18 - 6 * i);
        }
        // A group of k characters carries k - 1 bytes; the bits past them must be zero.
        let bytes = group.len() - 1;
        let spare = n & (0x00ff_ffff >> (8 * bytes));
        if spare != 0 {
            return None;
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    (invalid >= 0).then_some(out)
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

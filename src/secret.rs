//! Secrets and the key material they hold: `Secret` never prints its value, and the GitHub App's
//! PEM private key decoded to PKCS#8 DER (PKCS#1, what GitHub hands out, wrapped). Pure: both the
//! configuration (which checks the key) and the forge (which signs with it) build on it, so
//! neither imports the other for it.

use std::fmt;

/// A secret value. `Debug` never prints it, so a stray `{:?}` cannot leak it into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

const PKCS1_LABEL: &str = "RSA PRIVATE KEY";
const PKCS8_LABEL: &str = "PRIVATE KEY";
/// `INTEGER 0` (version) and `AlgorithmIdentifier { rsaEncryption, NULL }` of a PKCS#8 RSA key.
const PKCS8_RSA_HEAD: [u8; 18] = [
    0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    0x05, 0x00,
];

/// The App's private key as PKCS#8 DER. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct AppKey(Vec<u8>);

impl AppKey {
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(<redacted>)")
    }
}

/// Reads a PEM private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) is wrapped
/// into PKCS#8; PKCS#8 (`BEGIN PRIVATE KEY`) must hold an RSA key. A secret pasted with literal
/// `\n` sequences is accepted too.
///
/// # Errors
/// Why the text is not a usable RSA private key (never quoting it).
pub fn key_from_pem(pem: &str) -> Result<AppKey, &'static str> {
    let pem = pem.replace("\\n", "\n");
    let text = pem.trim();
    let (label, rest) = text
        .strip_prefix("-----BEGIN ")
        .and_then(|r| r.split_once("-----"))
        .ok_or("is not a PEM private key")?;
    if label != PKCS1_LABEL && label != PKCS8_LABEL {
        return Err("must be an RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)");
    }
    let end = format!("-----END {label}-----");
    let body = rest
        .strip_suffix(end.as_str())
        .ok_or("has no matching END line")?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = crate::base64::decode_std(&b64).ok_or("holds invalid base64")?;
    let inner = der_sequence_body(&der).ok_or("is not DER")?;
    if label == PKCS1_LABEL {
        // RSAPrivateKey starts with its version, INTEGER 0.
        if !inner.starts_with(&[0x02, 0x01, 0x00]) {
            return Err("is not a PKCS#1 RSA key");
        }
        Ok(AppKey(wrap_pkcs1(&der)))
    } else if inner.starts_with(&PKCS8_RSA_HEAD) {
        Ok(AppKey(der))
    } else {
        Err("is not a PKCS#8 RSA key")
    }
}

/// The contents of a DER `SEQUENCE` that spans all of `der`.
pub(crate) fn der_sequence_body(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    (rest.len() == len).then_some(rest)
}

/// A DER length.
pub(crate) fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        // Checked just above: it fits in one byte.
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// `PrivateKeyInfo { version 0, rsaEncryption, OCTET STRING pkcs1 }` (RFC 5208).
pub fn wrap_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut body = PKCS8_RSA_HEAD.to_vec();
    body.push(0x04);
    body.extend(der_len(pkcs1.len()));
    body.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

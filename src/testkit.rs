//! The one test kit: what the crate's unit tests, the integration tests in `tests/` and the
//! benches share (a seeded generator, hand-minted read tokens, webhook signatures, the admin
//! token). Compiled for tests only: `cfg(test)` in the crate, the `testkit` feature for `tests/`
//! (enabled through the crate's dev-dependency on itself); never in the worker.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    // `next` is the generator's word for its next value, as before this kit.
    clippy::should_implement_trait
)]

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The admin token the native test worlds configure, and its header.
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const ADMIN: (&str, &str) = ("Authorization", "Bearer admin-token-for-tests");

/// splitmix64: deterministic, dependency-free, and good enough to spread cases. A failing case
/// is reproduced from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// base64url without padding, as JWTs use it.
pub fn b64(data: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(data)
}

/// An HS256 token over any header and claims text, signed with `key`, minted by hand (as PyJWT or
/// jsonwebtoken would) so header and claims can be anything a hostile client might send.
pub fn mint(header: &str, claims: &str, key: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

/// `X-Hub-Signature-256` of `body` under `secret`, as GitHub sends it.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

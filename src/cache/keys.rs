//! Cache key names, built only here. Keys are lowercased so two spellings of one name share an
//! entry; validated names keep every key far below KV's 512-byte limit.

use crate::names::{FullName, Owner};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "v1:";

/// `v1:org:{owner}`: the owner's full record list.
pub fn org(owner: &Owner) -> String {
    format!("{PREFIX}org:{}", owner.key())
}

/// `v1:repo:{owner}/{repo}`.
pub fn repo(name: &FullName) -> String {
    format!("{PREFIX}repo:{}", name.key())
}

/// `v1:ratelimit:{first 8 hex of SHA-256 of the token}`; the empty string stands for "no token".
pub fn ratelimit(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}ratelimit:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table() {
        let cases = [
            (org(&Owner::parse("Octo-Org").unwrap()), "v1:org:octo-org"),
            (
                repo(&FullName::parse("Octo-Org/Hello.World").unwrap()),
                "v1:repo:octo-org/hello.world",
            ),
            // SHA-256("") = e3b0c442…
            (ratelimit(""), "v1:ratelimit:e3b0c442"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let longest =
            repo(&FullName::parse(&format!("{}/{}", "o".repeat(39), "r".repeat(100))).unwrap());
        assert!(longest.len() <= 512);
    }
}

//! Cache key names, built only here. Keys are lowercased so two spellings of one name share an
//! entry; validated names keep every key far below KV's 512-byte limit.

use crate::forge::Invalidation;
use crate::names::{FullName, Owner};
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "v1:";

/// `v1:org:{owner}`: the owner's full record list.
pub fn org(owner: &Owner) -> String {
    format!("{PREFIX}org:{}", owner.key())
}

/// The owner of a `v1:org:{owner}` key (an invalidation names its owners this way).
pub fn org_owner(key: &str) -> Option<Owner> {
    let login = key.strip_prefix(PREFIX)?.strip_prefix("org:")?;
    Owner::parse(login).ok()
}

/// `v1:repo:{owner}/{repo}`.
pub fn repo(name: &FullName) -> String {
    format!("{PREFIX}repo:{}", name.key())
}

/// The owner of a `v1:repo:{owner}/{repo}` key.
pub fn repo_owner(key: &str) -> Option<Owner> {
    let name = key.strip_prefix(PREFIX)?.strip_prefix("repo:")?;
    Owner::parse(name.split_once('/')?.0).ok()
}

/// `v1:ratelimit:{first 8 hex of SHA-256 of the token}`; the empty string stands for "no token".
pub fn ratelimit(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex = hex::encode(digest.get(..4).unwrap_or_default());
    format!("{PREFIX}ratelimit:{hex}")
}

/// `v1:installation:{owner}`: the GitHub App's installation on the owner, or `none`.
pub fn installation(owner: &Owner) -> String {
    format!("{PREFIX}installation:{}", owner.key())
}

/// `v1:token:{installation id}`: an installation access token (a secret at rest in the worker's
/// own KV; never answered or logged).
pub fn token(installation: u64) -> String {
    format!("{PREFIX}token:{installation}")
}

/// `v1:hook:{id}`: an organization or repository hook a signed delivery came from (30 days),
/// holding `organization:<login>` or `repository:<owner>/<repo>`; `v1:hook:app` holds the App
/// hook's id.
pub fn hook(id: &str) -> String {
    format!("{PREFIX}hook:{id}")
}

/// `v1:hooks`: the ids of the hooks learned, comma-separated (KV cannot be listed cheaply).
pub const HOOKS: &str = "v1:hooks";

/// `v1:recovery:{hook id or app}`: a hook's delivery recovery state.
pub fn recovery(hook: &str) -> String {
    format!("{PREFIX}recovery:{hook}")
}

/// `v1:delivery:{SHA-256 of the signed body, 64 lowercase hex}`: a webhook delivery that was
/// applied, holding its answer. Keyed on what the signature covers, not on `X-GitHub-Delivery`
/// (unsigned, so anyone could pick it): a replay of a signed body under any id gets the first
/// answer and changes nothing, and a body sent under an id seen before is still new.
pub fn delivery(body: &[u8]) -> String {
    format!("{PREFIX}delivery:{}", hex::encode(Sha256::digest(body)))
}

/// The keys an invalidation drops: repository keys before owner keys (listings, then
/// installations), old before new, each once. Every repository's owner listing goes too, since
/// the listing holds the same record.
pub fn invalidated(inv: &Invalidation) -> Vec<String> {
    let repos = inv.repos.iter().map(repo);
    let owners = inv
        .owners
        .iter()
        .chain(inv.repos.iter().map(|r| &r.owner))
        .map(org);
    let installations = inv.installations.iter().map(installation);
    // Linear: an `installation_repositories` delivery may name thousands of repositories.
    let mut seen = std::collections::HashSet::new();
    repos
        .chain(owners)
        .chain(installations)
        .filter(|key| seen.insert(key.clone()))
        .collect()
}

/// The marker that remembers when `key` was invalidated, so a refresh that asked GitHub before
/// that moment does not write its older answer back.
pub fn invalidation_marker(key: &str) -> String {
    format!("{PREFIX}inval:{}", key.strip_prefix(PREFIX).unwrap_or(key))
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
            (
                installation(&Owner::parse("Octo-Org").unwrap()),
                "v1:installation:octo-org",
            ),
            (token(1001), "v1:token:1001"),
            // SHA-256 of the signed body, whatever id it came under.
            (
                delivery(b""),
                "v1:delivery:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                delivery(b"abc"),
                "v1:delivery:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let longest =
            repo(&FullName::parse(&format!("{}/{}", "o".repeat(39), "r".repeat(100))).unwrap());
        assert!(longest.len() <= 512);
    }
}

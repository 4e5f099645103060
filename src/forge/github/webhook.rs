//! GitHub webhooks: the `X-Hub-Signature-256` check and the mapping from an event to the cache
//! entries it makes wrong.
//!
//! **Invariant**: the signature is checked, in constant time, over the raw body before anything
//! parses it.

use super::payload::{Payload, Repository};
use crate::forge::{Fact, Invalidation};
use crate::names::{FullName, Owner, RepoName};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const EVENT_HEADER: &str = "x-github-event";

/// Repository actions that change what a view shows.
const REPOSITORY_ACTIONS: &[&str] = &[
    "created",
    "deleted",
    "archived",
    "unarchived",
    "publicized",
    "privatized",
    "renamed",
    "transferred",
    "edited",
];

/// `installation` actions that change which installation (if any) reads an owner.
const INSTALLATION_ACTIONS: &[&str] = &[
    "created",
    "deleted",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
];

/// Whether a delivery of `event` with `action` is one forgelens acts on (the Webhooks table and
/// installation events; branch conditions are not known from a deliveries list, so a push or a
/// completed check on any branch counts: redelivering one that changes nothing is harmless).
pub fn acted_on(event: &str, action: Option<&str>) -> bool {
    match event {
        "repository" => action.is_some_and(|a| REPOSITORY_ACTIONS.contains(&a)),
        "public" | "push" | "status" => true,
        "check_suite" | "workflow_run" => action == Some("completed"),
        "installation" => action.is_some_and(|a| INSTALLATION_ACTIONS.contains(&a)),
        "installation_repositories" => matches!(action, Some("added" | "removed")),
        _ => false,
    }
}

/// Whether `header` is `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&given).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    hex::decode(hex).ok()
}

/// The entries `event` (the `X-GitHub-Event` header) with `payload` makes wrong. Events and
/// actions that change nothing a view shows yield an empty invalidation.
pub fn invalidation(event: &str, payload: &Payload) -> Invalidation {
    let action = payload.action.as_deref();
    let mut inv = Invalidation {
        action: payload.action.clone(),
        ..Invalidation::default()
    };
    if let Some(owner) = installation_owner(event, action, payload) {
        // The repositories added to or removed from the installation change visibility too.
        let named = payload
            .repositories_added
            .iter()
            .chain(&payload.repositories_removed);
        inv.repos.extend(named.filter_map(full_name));
        inv.owners.push(owner.clone());
        inv.installations.push(owner);
        return inv;
    }
    let Some(repo) = &payload.repository else {
        return inv;
    };
    let Some(current) = full_name(repo) else {
        return inv;
    };
    let default_branch = repo.default_branch.as_deref();
    let on_default = |branch: Option<&str>| branch.is_some() && branch == default_branch;
    let relevant = match event {
        "repository" => action.is_some_and(|a| REPOSITORY_ACTIONS.contains(&a)),
        "public" => true,
        "push" => payload
            .git_ref
            .as_deref()
            .and_then(|r| r.strip_prefix("refs/heads/"))
            .is_some_and(|b| on_default(Some(b))),
        "status" => payload
            .branches
            .iter()
            .any(|b| on_default(b.name.as_deref())),
        "check_suite" | "workflow_run" => {
            let run = if event == "check_suite" {
                &payload.check_suite
            } else {
                &payload.workflow_run
            };
            let head = run.as_ref().and_then(|r| r.head_branch.as_deref());
            action == Some("completed") && on_default(head)
        }
        _ => false,
    };
    if !relevant {
        return inv;
    }
    let changes = payload.changes.as_ref();
    // Old names first: a renamed or transferred repository was cached under them.
    if event == "repository" && action == Some("renamed") {
        let old = changes
            .and_then(|c| c.repository.as_ref())
            .and_then(|r| r.name.as_ref())
            .and_then(|n| n.from.as_deref());
        if let Some(old) = old.and_then(|n| RepoName::parse(n).ok()) {
            let old = FullName::new(current.owner.clone(), old);
            inv.changes.push((old.clone(), Fact::Removed));
            inv.repos.push(old);
        }
    }
    if event == "repository" && action == Some("transferred") {
        let from = changes
            .and_then(|c| c.owner.as_ref())
            .and_then(|o| o.from.as_ref());
        let login = from.and_then(|f| {
            let user = f.user.as_ref().and_then(|a| a.login.as_deref());
            user.or_else(|| f.organization.as_ref().and_then(|a| a.login.as_deref()))
        });
        if let Some(old_owner) = login.and_then(|l| Owner::parse(l).ok()) {
            let old = FullName::new(old_owner.clone(), current.repo.clone());
            inv.changes.push((old.clone(), Fact::Removed));
            inv.repos.push(old);
            inv.owners.push(old_owner);
        }
    }
    let fact = match (event, action) {
        ("repository", Some("privatized")) => Fact::Private,
        ("repository", Some("deleted")) => Fact::Removed,
        _ => Fact::Changed,
    };
    inv.changes.push((current.clone(), fact));
    inv.owners.push(current.owner.clone());
    inv.repos.push(current);
    inv
}

/// The account of an `installation` or `installation_repositories` event that changes how its
/// owner is read: its remembered installation and listing must go.
fn installation_owner(event: &str, action: Option<&str>, payload: &Payload) -> Option<Owner> {
    let relevant = match event {
        "installation" => action.is_some_and(|a| INSTALLATION_ACTIONS.contains(&a)),
        "installation_repositories" => matches!(action, Some("added" | "removed")),
        _ => false,
    };
    if !relevant {
        return None;
    }
    let account = payload.installation.as_ref()?.account.as_ref()?;
    Owner::parse(account.login.as_deref()?).ok()
}

/// `repository.full_name` split and validated; `None` for anything GitHub would not send.
fn full_name(repo: &Repository) -> Option<FullName> {
    FullName::parse(repo.full_name.as_deref()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `invalidation` of a payload written with serde_json's `json!`.
    fn of(event: &str, payload: &serde_json::Value) -> Invalidation {
        let text = payload.to_string();
        invalidation(event, &Payload::read(&text).unwrap())
    }

    #[test]
    fn installation_events() {
        let payload = |action: &str| {
            serde_json::json!({
                "action": action,
                "installation": {"id": 1001, "account": {"login": "Octo-Org", "type": "Organization"}},
                "repositories_removed": [{"full_name": "Octo-Org/secret", "private": true}],
                "sender": {"login": "admin"}
            })
        };
        let cases = [
            ("installation", "created", true),
            ("installation", "deleted", true),
            ("installation", "suspend", true),
            ("installation", "unsuspend", true),
            ("installation", "new_permissions_accepted", true),
            ("installation_repositories", "added", true),
            ("installation_repositories", "removed", true),
            ("installation", "other", false),
            ("installation_target", "renamed", false),
        ];
        let owner = Owner::parse("Octo-Org").unwrap();
        for (event, action, drops) in cases {
            let inv = of(event, &payload(action));
            assert_eq!(inv.action.as_deref(), Some(action));
            if drops {
                assert_eq!(inv.owners, std::slice::from_ref(&owner), "{event} {action}");
                assert_eq!(inv.installations, std::slice::from_ref(&owner));
                assert_eq!(inv.repos, [FullName::parse("Octo-Org/secret").unwrap()]);
            } else {
                assert_eq!(
                    inv,
                    Invalidation {
                        action: Some(action.into()),
                        ..Invalidation::default()
                    }
                );
            }
        }
        let keys = crate::cache::keys::invalidated(&of("installation", &payload("deleted")));
        assert_eq!(
            keys,
            [
                "v1:repo:octo-org/secret",
                "v1:org:octo-org",
                "v1:installation:octo-org"
            ]
        );
    }

    #[test]
    fn github_published_test_vector() {
        // docs.github.com, "Validating webhook deliveries".
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let cases: &[(Option<&str>, bool)] = &[
            (Some(good), true),
            (
                Some(&good.to_uppercase().replace("SHA256=", "sha256=")),
                true,
            ),
            (
                Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18"),
                false,
            ),
            (
                Some("sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                false,
            ),
            (
                Some("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                false,
            ),
            (Some("sha256=757107ea"), false),
            (
                Some("sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                false,
            ),
            (
                Some("sha256=ü57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1"),
                false,
            ),
            (Some(""), false),
            (None, false),
        ];
        for (header, ok) in cases {
            assert_eq!(signature_valid(secret, body, *header), *ok, "{header:?}");
        }
        assert!(!signature_valid(b"another secret", body, Some(good)));
        assert!(!signature_valid(secret, b"Hello, World?", Some(good)));
    }
}

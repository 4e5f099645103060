//! Views: what one caller may see of cached records. Visibility is decided here, at read time,
//! so one cached entry serves anonymous and token callers alike.
//!
//! **Invariant**: a private or internal repository reaches an anonymous caller only as a redacted
//! view (`name`, `full_name`, `visibility`) under the `redact` policy, and never at all under `hide`.

use crate::config::PrivatePolicy;
use crate::fields::FieldSet;
use crate::model::{Repo, Visibility};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// Which owners' private repositories the caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Anonymous,
    /// A verified read token; `owners` are lowercased logins, `all` unlocks every owner.
    Token {
        all: bool,
        owners: Vec<String>,
    },
}

impl Access {
    pub fn unlocks(&self, owner: &str) -> bool {
        match self {
            Access::Anonymous => false,
            Access::Token { all, owners } => {
                *all || owners.iter().any(|o| o.eq_ignore_ascii_case(owner))
            }
        }
    }
}

/// How one repository appears to one caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Full,
    Redacted,
    Hidden,
}

pub fn shown(repo: &Repo, access: &Access, policy: PrivatePolicy) -> Shown {
    if repo.is_public() || access.unlocks(&repo.owner) {
        Shown::Full
    } else if policy == PrivatePolicy::Redact {
        Shown::Redacted
    } else {
        Shown::Hidden
    }
}

/// A repository projected to a field set; serializes in allow-list order without building a map.
#[derive(Debug, Clone, Copy)]
pub struct RepoView<'a> {
    repo: &'a Repo,
    fields: FieldSet,
}

/// The view of `repo` for this caller, or `None` when it does not exist for them.
pub fn project<'a>(
    repo: &'a Repo,
    fields: FieldSet,
    access: &Access,
    policy: PrivatePolicy,
) -> Option<RepoView<'a>> {
    match shown(repo, access, policy) {
        Shown::Full => Some(RepoView { repo, fields }),
        Shown::Hidden => None,
        Shown::Redacted => {
            let keep = FieldSet::parse("name,full_name,visibility").unwrap_or(fields);
            let always = FieldSet::parse("name,full_name").unwrap_or(fields);
            Some(RepoView {
                repo,
                fields: fields.intersect(keep).union(always),
            })
        }
    }
}

impl Serialize for RepoView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.repo;
        let mut map = s.serialize_map(None)?;
        for field in self.fields.iter() {
            match field {
                "name" => map.serialize_entry(field, &r.name)?,
                "owner" => map.serialize_entry(field, &r.owner)?,
                "full_name" => map.serialize_entry(field, &r.full_name)?,
                "url" => map.serialize_entry(field, &r.url)?,
                "description" => map.serialize_entry(field, &r.description)?,
                "visibility" => map.serialize_entry(field, &r.visibility)?,
                "private" => map.serialize_entry(field, &(r.visibility != Visibility::Public))?,
                "archived" => map.serialize_entry(field, &r.archived)?,
                "disabled" => map.serialize_entry(field, &r.disabled)?,
                "fork" => map.serialize_entry(field, &r.fork)?,
                "default_branch" => map.serialize_entry(field, &r.default_branch)?,
                "pushed_at" => map.serialize_entry(field, &r.pushed_at)?,
                "updated_at" => map.serialize_entry(field, &r.updated_at)?,
                "language" => map.serialize_entry(field, &r.language)?,
                "ci" => map.serialize_entry(field, &r.ci)?,
                _ => {}
            }
        }
        map.end()
    }
}

/// `GET /v1/orgs/{owner}/repos`.
#[derive(Serialize)]
pub struct OrgBody<'a> {
    pub org: &'a str,
    pub repos: Vec<RepoView<'a>>,
    pub fetched_at: String,
}

/// One name of a batch that has no repository to show.
#[derive(Serialize)]
pub struct ItemError<'a> {
    pub name: &'a str,
    pub code: &'static str,
}

/// `GET /v1/repos?names=…`.
#[derive(Serialize)]
pub struct BatchBody<'a> {
    pub repos: Vec<RepoView<'a>>,
    pub errors: Vec<ItemError<'a>>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Ci, CiState};
    use serde_json::{json, Value};

    pub(crate) fn repo(owner: &str, name: &str, visibility: Visibility) -> Repo {
        Repo {
            name: name.into(),
            owner: owner.into(),
            full_name: format!("{owner}/{name}"),
            url: format!("https://github.com/{owner}/{name}"),
            description: Some("d".into()),
            visibility,
            archived: false,
            disabled: false,
            fork: false,
            default_branch: Some("main".into()),
            pushed_at: Some("2024-01-01T00:00:00Z".into()),
            updated_at: None,
            language: Some("Rust".into()),
            ci: Some(Ci {
                state: Some(CiState::Success),
                sha: "abc".into(),
            }),
        }
    }

    fn view(r: &Repo, fields: &str, access: &Access, policy: PrivatePolicy) -> Option<Value> {
        let fields = FieldSet::parse(fields).unwrap();
        project(r, fields, access, policy).map(|v| serde_json::to_value(v).unwrap())
    }

    #[test]
    fn visibility_table() {
        let token_octo = Access::Token {
            all: false,
            owners: vec!["octo".into()],
        };
        let token_all = Access::Token {
            all: true,
            owners: vec![],
        };
        let token_none = Access::Token {
            all: false,
            owners: vec![],
        };
        let cases = [
            (
                Visibility::Public,
                Access::Anonymous,
                PrivatePolicy::Hide,
                Shown::Full,
            ),
            (
                Visibility::Private,
                Access::Anonymous,
                PrivatePolicy::Hide,
                Shown::Hidden,
            ),
            (
                Visibility::Internal,
                Access::Anonymous,
                PrivatePolicy::Hide,
                Shown::Hidden,
            ),
            (
                Visibility::Private,
                Access::Anonymous,
                PrivatePolicy::Redact,
                Shown::Redacted,
            ),
            (
                Visibility::Internal,
                Access::Anonymous,
                PrivatePolicy::Redact,
                Shown::Redacted,
            ),
            (
                Visibility::Private,
                token_octo.clone(),
                PrivatePolicy::Hide,
                Shown::Full,
            ),
            (
                Visibility::Private,
                token_all,
                PrivatePolicy::Hide,
                Shown::Full,
            ),
            (
                Visibility::Private,
                token_none,
                PrivatePolicy::Hide,
                Shown::Hidden,
            ),
        ];
        for (vis, access, policy, expected) in cases {
            assert_eq!(
                shown(&repo("Octo", "r", vis), &access, policy),
                expected,
                "{vis:?} {access:?} {policy:?}"
            );
        }
        let other = repo("other", "r", Visibility::Private);
        assert_eq!(
            shown(&other, &token_octo, PrivatePolicy::Hide),
            Shown::Hidden
        );
    }

    #[test]
    fn projection_keeps_allow_list_order() {
        let r = repo("octo", "hello", Visibility::Public);
        let v = view(
            &r,
            "ci,private,name",
            &Access::Anonymous,
            PrivatePolicy::Hide,
        )
        .unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        // serde_json's map sorts keys, so check the raw text for order.
        let text = serde_json::to_string(
            &project(
                &r,
                FieldSet::parse("ci,private,name").unwrap(),
                &Access::Anonymous,
                PrivatePolicy::Hide,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            text.starts_with("{\"name\":\"hello\",\"private\":false,\"ci\":"),
            "{text}"
        );
        assert_eq!(keys.len(), 3);
        assert_eq!(v["ci"], json!({"state": "success", "sha": "abc"}));
    }

    #[test]
    fn redaction_keeps_only_names_and_visibility() {
        let r = repo("octo", "secret", Visibility::Private);
        let all = crate::fields::ALLOWED.join(",");
        let v = view(&r, &all, &Access::Anonymous, PrivatePolicy::Redact).unwrap();
        assert_eq!(
            v,
            json!({"name": "secret", "full_name": "octo/secret", "visibility": "private"})
        );
        let v = view(&r, "ci,url", &Access::Anonymous, PrivatePolicy::Redact).unwrap();
        assert_eq!(v, json!({"name": "secret", "full_name": "octo/secret"}));
        assert!(view(&r, &all, &Access::Anonymous, PrivatePolicy::Hide).is_none());
    }

    #[test]
    fn nulls_are_explicit() {
        let mut r = repo("octo", "empty", Visibility::Public);
        r.default_branch = None;
        r.ci = None;
        r.description = None;
        let v = view(
            &r,
            "description,default_branch,ci",
            &Access::Anonymous,
            PrivatePolicy::Hide,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"description": null, "default_branch": null, "ci": null})
        );
    }
}

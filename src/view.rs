//! Views: what one caller may see of cached records. Visibility is decided here, at read time,
//! so one cached entry serves anonymous and token callers alike.
//!
//! **Invariant**: a private or internal repository reaches an anonymous caller only as a redacted
//! view (`name`, `full_name`, `visibility`) under the `redact` policy, and never at all under `hide`.

use crate::config::PrivatePolicy;
use crate::fields::{Field, FieldSet};
use crate::json::Writer;
use crate::model::{Ci, Repo, Scope, Visibility};

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

/// What the caller may see of `owner`'s listing as a whole: its scope (rendered views are kept
/// per scope, and each scope has its own `revalidated_at`).
pub fn scope(access: &Access, owner: &str, policy: PrivatePolicy) -> Scope {
    match (access.unlocks(owner), policy) {
        (true, _) => Scope::All,
        (false, PrivatePolicy::Hide) => Scope::Public,
        (false, PrivatePolicy::Redact) => Scope::Redacted,
    }
}

pub fn shown(repo: &Repo, access: &Access, policy: PrivatePolicy) -> Shown {
    if repo.is_public() || access.unlocks(repo.owner()) {
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

impl RepoView<'_> {
    /// Appends the view as a JSON object, fields in allow-list order.
    pub fn write_json(&self, out: &mut Writer) {
        let r = self.repo;
        let mut first = true;
        for field in self.fields.iter() {
            out.raw(field.json_key(first));
            first = false;
            match field {
                Field::Name => out.str(r.name()),
                Field::Owner => out.str(r.owner()),
                Field::FullName => out.str(r.full_name()),
                Field::Url => out.str(r.url()),
                Field::Description => out.opt_str(r.description()),
                Field::Visibility => out.raw(r.visibility.json()),
                Field::Private => out.bool(r.visibility != Visibility::Public),
                Field::Archived => out.bool(r.archived),
                Field::Disabled => out.bool(r.disabled),
                Field::Fork => out.bool(r.fork),
                Field::DefaultBranch => out.opt_str(r.default_branch()),
                Field::PushedAt => out.opt_str(r.pushed_at()),
                Field::UpdatedAt => out.opt_str(r.updated_at()),
                Field::Language => out.opt_str(r.language()),
                Field::Ci => Ci::write_opt_json(r.ci(), out),
            }
        }
        out.raw(if first { "{}" } else { "}" });
    }

    /// The view alone, as JSON text (`GET /v1/repos/{owner}/{repo}`).
    pub fn to_json(&self) -> String {
        let mut out = Writer::with_capacity(VIEW_BYTES_GUESS);
        self.write_json(&mut out);
        out.finish()
    }
}

/// A first guess at a view's length, so that a listing's text is rarely copied as it grows.
const VIEW_BYTES_GUESS: usize = 192;

/// `GET /v1/orgs/{owner}/repos`.
pub struct OrgBody<'a> {
    pub org: &'a str,
    pub repos: Vec<RepoView<'a>>,
    pub fetched_at: String,
    /// When a repository-level change last patched the listing in place (`null`: never).
    pub revalidated_at: Option<String>,
    /// A view with listing parameters: how many records matched, and its page.
    pub counts: Option<Counts>,
}

/// What a listing view with parameters adds to its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records matching, over every page.
    pub total: u64,
    /// `(page, per_page)` when paged.
    pub page: Option<(u32, u32)>,
}

impl OrgBody<'_> {
    /// `{"org":…,"repos":[…],"fetched_at":…,"revalidated_at":…}`, then `"total"` (and
    /// `"page"`, `"per_page"`) for a view with parameters.
    pub fn to_json(&self) -> String {
        let mut out = Writer::with_capacity(64 + self.repos.len() * VIEW_BYTES_GUESS);
        out.raw("{\"org\":");
        out.str(self.org);
        out.raw(",\"repos\":");
        out.array(&self.repos, RepoView::write_json);
        out.raw(",\"fetched_at\":");
        out.str(&self.fetched_at);
        out.raw(",\"revalidated_at\":");
        out.opt_str(self.revalidated_at.as_deref());
        if let Some(c) = self.counts {
            out.raw(",\"total\":");
            out.uint(c.total);
            if let Some((page, per_page)) = c.page {
                out.raw(",\"page\":");
                out.uint(u64::from(page));
                out.raw(",\"per_page\":");
                out.uint(u64::from(per_page));
            }
        }
        out.byte(b'}');
        out.finish()
    }
}

/// One name of a batch that has no repository to show.
pub struct ItemError<'a> {
    pub name: &'a str,
    pub code: &'static str,
}

/// `GET /v1/repos?names=…`.
pub struct BatchBody<'a> {
    pub repos: Vec<RepoView<'a>>,
    pub errors: Vec<ItemError<'a>>,
}

impl BatchBody<'_> {
    /// `{"repos":[…],"errors":[{"name":…,"code":…},…]}`.
    pub fn to_json(&self) -> String {
        let mut out = Writer::with_capacity(64 + self.repos.len() * VIEW_BYTES_GUESS);
        out.raw("{\"repos\":");
        out.array(&self.repos, RepoView::write_json);
        out.raw(",\"errors\":[");
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.byte(b',');
            }
            out.raw("{\"name\":");
            out.str(e.name);
            out.raw(",\"code\":");
            out.str(e.code);
            out.byte(b'}');
        }
        out.raw("]}");
        out.finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{CiState, RepoFields};
    use serde_json::{json, Value};

    pub(crate) fn repo(owner: &str, name: &str, visibility: Visibility) -> Repo {
        let full_name = format!("{owner}/{name}");
        let url = format!("https://github.com/{owner}/{name}");
        Repo::new(RepoFields {
            name,
            owner,
            full_name: &full_name,
            url: &url,
            description: Some("d"),
            visibility,
            archived: false,
            disabled: false,
            fork: false,
            default_branch: Some("main"),
            pushed_at: Some("2024-01-01T00:00:00Z"),
            updated_at: None,
            language: Some("Rust"),
            ci: Some(Ci {
                state: Some(CiState::Success),
                sha: "abc",
            }),
        })
    }

    fn view(r: &Repo, fields: &str, access: &Access, policy: PrivatePolicy) -> Option<Value> {
        let fields = FieldSet::parse(fields).unwrap();
        project(r, fields, access, policy).map(|v| serde_json::from_str(&v.to_json()).unwrap())
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
        let text = project(
            &r,
            FieldSet::parse("ci,private,name").unwrap(),
            &Access::Anonymous,
            PrivatePolicy::Hide,
        )
        .unwrap()
        .to_json();
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
        let full = repo("octo", "empty", Visibility::Public);
        let r = Repo::new(RepoFields {
            default_branch: None,
            ci: None,
            description: None,
            ..full.fields()
        });
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

    /// Every field, escapes included, as serde_json would write the same values.
    #[test]
    fn writes_every_field() {
        let base = repo("octo", "r", Visibility::Internal);
        let r = Repo::new(RepoFields {
            description: Some("a \"quoted\" \\ line\n\u{1}é"),
            updated_at: None,
            ci: Some(Ci {
                state: None,
                sha: "abc",
            }),
            ..base.fields()
        });
        let all = FieldSet::parse(&crate::fields::ALLOWED.join(",")).unwrap();
        let token = Access::Token {
            all: true,
            owners: vec![],
        };
        let text = project(&r, all, &token, PrivatePolicy::Hide)
            .unwrap()
            .to_json();
        let f = r.fields();
        let expected = json!({"name": f.name, "owner": f.owner, "full_name": f.full_name,
            "url": f.url, "description": f.description, "visibility": "internal", "private": true,
            "archived": false, "disabled": false, "fork": false, "default_branch": "main",
            "pushed_at": f.pushed_at, "updated_at": null, "language": "Rust",
            "ci": {"state": null, "sha": "abc"}});
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
        assert!(text.contains(&serde_json::to_string(f.description.unwrap()).unwrap()));
    }

    #[test]
    fn bodies() {
        let r = repo("octo", "a", Visibility::Public);
        let fields = FieldSet::parse("name,archived").unwrap();
        let v = project(&r, fields, &Access::Anonymous, PrivatePolicy::Hide).unwrap();
        let org = OrgBody {
            org: "octo",
            repos: vec![v, v],
            fetched_at: "2024-01-01T00:00:00.000Z".into(),
            revalidated_at: Some("2024-01-01T00:00:05.000Z".into()),
            counts: None,
        };
        assert_eq!(
            org.to_json(),
            r#"{"org":"octo","repos":[{"name":"a","archived":false},{"name":"a","archived":false}],"fetched_at":"2024-01-01T00:00:00.000Z","revalidated_at":"2024-01-01T00:00:05.000Z"}"#
        );
        let empty = OrgBody {
            org: "o\"",
            repos: vec![],
            fetched_at: String::new(),
            revalidated_at: None,
            counts: None,
        };
        assert_eq!(
            empty.to_json(),
            r#"{"org":"o\"","repos":[],"fetched_at":"","revalidated_at":null}"#
        );
        let counted = OrgBody {
            counts: Some(Counts {
                total: 12,
                page: None,
            }),
            ..empty
        };
        assert!(counted
            .to_json()
            .ends_with(r#""revalidated_at":null,"total":12}"#));
        let paged = OrgBody {
            counts: Some(Counts {
                total: 12,
                page: Some((2, 5)),
            }),
            ..counted
        };
        assert!(paged
            .to_json()
            .ends_with(r#""revalidated_at":null,"total":12,"page":2,"per_page":5}"#));
        let batch = BatchBody {
            repos: vec![v],
            errors: vec![
                ItemError {
                    name: "o/x",
                    code: "not_found",
                },
                ItemError {
                    name: "o/y",
                    code: "upstream_error",
                },
            ],
        };
        assert_eq!(
            batch.to_json(),
            r#"{"repos":[{"name":"a","archived":false}],"errors":[{"name":"o/x","code":"not_found"},{"name":"o/y","code":"upstream_error"}]}"#
        );
        let none = BatchBody {
            repos: vec![],
            errors: vec![],
        };
        assert_eq!(none.to_json(), r#"{"repos":[],"errors":[]}"#);
    }
}

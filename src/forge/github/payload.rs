//! The fields of a webhook delivery that the event mapping (`webhook.rs`) reads, decoded with
//! serde. Every field is lenient: one of the wrong type (or `null`) reads as absent, as does a
//! list element of the wrong shape, so a payload GitHub would never send changes nothing it does
//! not name properly rather than failing the delivery.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// A delivery's payload: only what the mapping needs.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Payload {
    #[serde(deserialize_with = "lax")]
    pub action: Option<String>,
    #[serde(deserialize_with = "lax")]
    pub repository: Option<Repository>,
    #[serde(deserialize_with = "lax")]
    pub installation: Option<Installation>,
    /// An organization hook's organization.
    #[serde(deserialize_with = "lax")]
    pub organization: Option<Account>,
    #[serde(deserialize_with = "lax_list")]
    pub repositories_added: Vec<Repository>,
    #[serde(deserialize_with = "lax_list")]
    pub repositories_removed: Vec<Repository>,
    #[serde(deserialize_with = "lax")]
    pub changes: Option<Changes>,
    /// A push's `ref` (`refs/heads/{branch}`).
    #[serde(rename = "ref", deserialize_with = "lax")]
    pub git_ref: Option<String>,
    /// A commit status's branches.
    #[serde(deserialize_with = "lax_list")]
    pub branches: Vec<Branch>,
    #[serde(deserialize_with = "lax")]
    pub check_suite: Option<Run>,
    #[serde(deserialize_with = "lax")]
    pub workflow_run: Option<Run>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Repository {
    #[serde(deserialize_with = "lax")]
    pub full_name: Option<String>,
    #[serde(deserialize_with = "lax")]
    pub default_branch: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Installation {
    #[serde(deserialize_with = "lax")]
    pub account: Option<Account>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    #[serde(deserialize_with = "lax")]
    pub login: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Branch {
    #[serde(deserialize_with = "lax")]
    pub name: Option<String>,
}

/// A check suite or workflow run: the branch it ran on.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Run {
    #[serde(deserialize_with = "lax")]
    pub head_branch: Option<String>,
}

/// `changes` of a renamed or transferred repository: its old name, or its old owner.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Changes {
    #[serde(deserialize_with = "lax")]
    pub repository: Option<RenamedRepository>,
    #[serde(deserialize_with = "lax")]
    pub owner: Option<OldOwner>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RenamedRepository {
    #[serde(deserialize_with = "lax")]
    pub name: Option<From>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct From {
    #[serde(deserialize_with = "lax")]
    pub from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OldOwner {
    #[serde(deserialize_with = "lax")]
    pub from: Option<OwnerFrom>,
}

/// A transfer's old owner: a user or an organization.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OwnerFrom {
    #[serde(deserialize_with = "lax")]
    pub user: Option<Account>,
    #[serde(deserialize_with = "lax")]
    pub organization: Option<Account>,
}

/// Why a body is not a payload: it is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

impl Payload {
    /// The payload in `text`. JSON that is not an object names nothing (an empty payload).
    ///
    /// # Errors
    /// `NotJson` when `text` is not one JSON value (serde_json's grammar and nesting limit).
    pub fn read(text: &str) -> Result<Payload, NotJson> {
        let object = text.trim_start().starts_with('{');
        if object {
            // A field of the wrong type is absent (`lax`), so only malformed text fails here,
            // or a key given twice (serde's derives refuse that): then the checks below decide.
            if let Ok(payload) = serde_json::from_str::<Payload>(text) {
                return Ok(payload);
            }
        }
        match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Ok(Payload::default()),
            Err(_) => Err(NotJson),
        }
    }
}

/// A value of type `T`, or anything else.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lax<T> {
    Is(T),
    Not(IgnoredAny),
}

/// `T`, or `None` when the value is of another type.
fn lax<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Ok(match Lax::<T>::deserialize(d)? {
        Lax::Is(v) => Some(v),
        Lax::Not(_) => None,
    })
}

/// The elements of a list that are `T`; empty when the value is not a list.
fn lax_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let list: Option<Vec<Lax<T>>> = lax(d)?;
    Ok(list
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            Lax::Is(v) => Some(v),
            Lax::Not(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_read_as_absent() {
        let cases: &[(&str, Option<&str>, Option<&str>, usize)] = &[
            // (text, action, repository.full_name, repositories_added)
            (
                r#"{"action":"privatized","repository":{"full_name":"o/r"}}"#,
                Some("privatized"),
                Some("o/r"),
                0,
            ),
            (
                r#"{"action":7,"repository":{"full_name":"o/r"}}"#,
                None,
                Some("o/r"),
                0,
            ),
            (
                r#"{"action":null,"repository":{"full_name":["o/r"]}}"#,
                None,
                None,
                0,
            ),
            (
                r#"{"action":"added","repository":"o/r"}"#,
                Some("added"),
                None,
                0,
            ),
            (
                r#"{"repositories_added":[{"full_name":"o/a"},7,{"full_name":1},null,{"full_name":"o/b"}]}"#,
                None,
                None,
                3,
            ),
            (
                r#"{"repositories_added":{"full_name":"o/a"}}"#,
                None,
                None,
                0,
            ),
            (
                r#"{"action":"deleted","unknown":{"deep":[[[[]]]]}}"#,
                Some("deleted"),
                None,
                0,
            ),
        ];
        for (text, action, full_name, added) in cases {
            let p = Payload::read(text).unwrap();
            assert_eq!(p.action.as_deref(), *action, "{text}");
            let name = p.repository.as_ref().and_then(|r| r.full_name.as_deref());
            assert_eq!(name, *full_name, "{text}");
            assert_eq!(p.repositories_added.len(), *added, "{text}");
        }
        // The two elements with a usable name, the one with a number for a name kept without it.
        let p = Payload::read(cases[4].0).unwrap();
        let names: Vec<_> = p
            .repositories_added
            .iter()
            .map(|r| r.full_name.as_deref())
            .collect();
        assert_eq!(names, [Some("o/a"), None, Some("o/b")]);
    }

    #[test]
    fn what_is_json_and_what_is_not() {
        let empty = [
            "[]",
            "7",
            "\"privatized\"",
            "null",
            " [1, {\"action\":\"x\"}]",
        ];
        for text in empty {
            let p = Payload::read(text).unwrap();
            assert!(p.action.is_none() && p.repository.is_none(), "{text}");
        }
        let not_json = [
            "",
            "{",
            "{\"action\":}",
            "{} {}",
            "[1,]",
            "\"a\" b",
            "{\"a\":1,}",
        ];
        for text in not_json {
            assert_eq!(Payload::read(text).unwrap_err(), NotJson, "{text}");
        }
        // Nesting past serde_json's limit in a field nobody reads is still JSON.
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(Payload::read(&deep).is_ok());
    }

    #[test]
    fn renames_and_transfers() {
        let text = r#"{"action":"transferred","changes":{"owner":{"from":{"organization":{"login":"old"}}},
            "repository":{"name":{"from":"was"}}}}"#;
        let p = Payload::read(text).unwrap();
        let c = p.changes.unwrap();
        let org = c.owner.and_then(|o| o.from).and_then(|f| f.organization);
        assert_eq!(org.and_then(|a| a.login).as_deref(), Some("old"));
        let was = c.repository.and_then(|r| r.name).and_then(|n| n.from);
        assert_eq!(was.as_deref(), Some("was"));
    }
}

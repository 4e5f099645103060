//! The fields of a webhook delivery that the event mapping (`webhook.rs`) reads, decoded with
//! serde. Every field is lenient: one of the wrong type (or `null`) reads as absent, as does a
//! list element of the wrong shape, so a payload GitHub would never send changes nothing it does
//! not name properly rather than failing the delivery.

use core::fmt;
use core::marker::PhantomData;
use serde::de::value::{
    BorrowedStrDeserializer, MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer,
};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
            if let Ok(payload) = serde_json::from_slice::<Payload>(text.as_bytes()) {
                return Ok(payload);
            }
        }
        match serde_json::from_slice::<IgnoredAny>(text.as_bytes()) {
            Ok(_) => Ok(Payload::default()),
            Err(_) => Err(NotJson),
        }
    }
}

/// The kind of JSON value a lenient field's type is read from; any other kind reads as absent
/// without `T` being asked (it would refuse it before reading any of it), so only the one way
/// each type is read is compiled.
#[derive(PartialEq, Eq)]
enum Kind {
    Str,
    Object,
    List,
}

/// A type a lenient field holds, and the kind of value it is read from.
trait Lenient<'de>: Deserialize<'de> {
    const KIND: Kind;
}

impl Lenient<'_> for String {
    const KIND: Kind = Kind::Str;
}

impl<'de, T: Lenient<'de>> Lenient<'de> for Vec<Lax<T>> {
    const KIND: Kind = Kind::List;
}

macro_rules! objects {
    ($($t:ty),*) => {$(
        impl Lenient<'_> for $t {
            const KIND: Kind = Kind::Object;
        }
    )*};
}

objects!(
    Repository,
    Installation,
    Account,
    Branch,
    Run,
    Changes,
    RenamedRepository,
    From,
    OldOwner,
    OwnerFrom
);

/// A value read as `T` when it is `T`'s kind of JSON, else `None`, without buffering it: serde's
/// `untagged` would copy every value into its `Content` tree first and try `T` on the copy, which
/// cost about 10 KB of wasm for a choice the value's first byte already makes. A string is offered
/// to `T` as a string, an object as the object itself, a list as the list when `T` is one (what `T`
/// leaves unread is skipped); anything else, or a value `T` refuses, is `None`. (serde's derives
/// would read a struct from a list too, field by field: a payload never says that.)
struct LaxVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient<'de>> Visitor<'de> for LaxVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        if T::KIND != Kind::Str {
            return Ok(None);
        }
        Ok(T::deserialize(StrDeserializer::<E>::new(v)).ok())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Option<T>, E> {
        if T::KIND != Kind::Str {
            return Ok(None);
        }
        Ok(T::deserialize(BorrowedStrDeserializer::<E>::new(v)).ok())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        let read = if T::KIND == Kind::List {
            T::deserialize(SeqAccessDeserializer::new(&mut seq)).ok()
        } else {
            None
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(read)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        // A struct refuses an object only for a key given twice, between that key and its
        // value: skipping the rest then fails, and so does the payload.
        let read = if T::KIND == Kind::Object {
            T::deserialize(MapAccessDeserializer::new(&mut map)).ok()
        } else {
            None
        };
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(read)
    }
}

/// `T`, or `None` when the value is of another type.
fn lax<'de, D: Deserializer<'de>, T: Lenient<'de>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_any(LaxVisitor(PhantomData))
}

/// One element of a lenient list.
struct Lax<T>(Option<T>);

impl<'de, T: Lenient<'de>> Deserialize<'de> for Lax<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lax(d).map(Lax)
    }
}

/// The elements of a list that are `T`; empty when the value is not a list.
fn lax_list<'de, D: Deserializer<'de>, T: Lenient<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let list: Option<Vec<Lax<T>>> = lax(d)?;
    Ok(list.into_iter().flatten().filter_map(|e| e.0).collect())
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
            // An object or list where a string belongs is skipped whole, and what follows read.
            (
                r#"{"action":{"a":[1,{"b":"c"}]},"repository":{"full_name":"o/r"}}"#,
                None,
                Some("o/r"),
                0,
            ),
            (
                r#"{"repository":{"full_name":{"x":1},"default_branch":"main"},"action":"x"}"#,
                Some("x"),
                None,
                0,
            ),
            (
                r#"{"repository":[{"full_name":"o/r"}],"repositories_added":[["o/a"],{"full_name":"o/b"}]}"#,
                None,
                None,
                1,
            ),
            // A key given twice names nothing, wherever it is.
            (
                r#"{"action":"privatized","repository":{"full_name":"o/r","full_name":"o/s"}}"#,
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

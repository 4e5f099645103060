//! A JSON text as a tree, for the few texts read by path rather than by shape: webhook
//! deliveries (large, and only a handful of their fields matter) and the GitHub App's REST
//! replies. Strings stay borrowed from the text unless they hold escapes.

use super::{Reader, Result};
use std::borrow::Cow;

/// One JSON value. Numbers keep their text: the few read are whole numbers (`as_u64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    Str(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    /// Members in text order, repeats kept (`get` answers the last, as serde_json's map does).
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The one value `text` holds, checked as `Reader` checks (serde_json's grammar, depth
    /// limit included).
    ///
    /// # Errors
    /// Malformed JSON, containers nested past `MAX_DEPTH`, or text after the value.
    pub fn parse(text: &'a str) -> Result<Value<'a>> {
        let mut r = Reader::new(text);
        let value = read(&mut r)?;
        r.end()?;
        Ok(value)
    }

    /// Member `key` of an object; `None` for other values.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at `/a/b/c` (object keys only; `""` is the value itself).
    pub fn pointer(&self, path: &str) -> Option<&Value<'a>> {
        if path.is_empty() {
            return Some(self);
        }
        let rest = path.strip_prefix('/')?;
        rest.split('/').try_fold(self, |v, key| v.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// A whole non-negative number that fits `u64` (`1.0`, `-1` and `1e3` do not).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(text) => text.parse().ok(),
            _ => None,
        }
    }
}

/// The value at the reader. Recursion is bounded: `object` and `array` refuse to open a
/// container past `MAX_DEPTH`.
fn read<'a>(r: &mut Reader<'a>) -> Result<Value<'a>> {
    Ok(match r.peek() {
        Some(b'{') => {
            r.object()?;
            let mut members = Vec::new();
            while let Some(key) = r.key()? {
                members.push((key, read(r)?));
            }
            Value::Object(members)
        }
        Some(b'[') => {
            r.array()?;
            let mut items = Vec::new();
            while r.element()? {
                items.push(read(r)?);
            }
            Value::Array(items)
        }
        Some(b'"') => Value::Str(r.str()?),
        Some(b't' | b'f') => Value::Bool(r.bool()?),
        Some(b'n') => {
            r.null()?;
            Value::Null
        }
        _ => Value::Number(r.number_text()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree agrees with serde_json on what parses, and on every path read from it.
    #[test]
    fn agrees_with_serde_json() {
        let texts = [
            r#"{"a":{"b":[1,"x",null,true]},"n":12,"f":1.5,"neg":-1,"e":1e3}"#,
            r#"{"k":1,"k":"last"}"#,
            r#"{"s":"esc\"aped\u00e9\n","empty":{},"arr":[]}"#,
            " [ {\"x\" : \"y\"} ] ",
            "\"just a string\"",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\":01}",
            "{\"a\":\"\\ud800\"}",
            "{} x",
            "",
            "nul",
            "{\"a\":\"tab\there\"}",
        ];
        for text in texts {
            let ours = Value::parse(text);
            let theirs = serde_json::from_str::<serde_json::Value>(text);
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{text}");
            let (Ok(ours), Ok(theirs)) = (ours, theirs) else {
                continue;
            };
            for path in [
                "", "/a", "/a/b", "/n", "/f", "/neg", "/e", "/k", "/s", "/missing", "/a/b/c",
            ] {
                let (o, t) = (ours.pointer(path), theirs.pointer(path));
                assert_eq!(o.is_some(), t.is_some(), "{text} {path}");
                assert_eq!(
                    o.and_then(Value::as_str),
                    t.and_then(serde_json::Value::as_str),
                    "{text} {path}"
                );
                assert_eq!(
                    o.and_then(Value::as_u64),
                    t.and_then(serde_json::Value::as_u64),
                    "{text} {path}"
                );
                assert_eq!(
                    o.and_then(Value::as_array).map(<[Value]>::len),
                    t.and_then(serde_json::Value::as_array).map(Vec::len),
                    "{text} {path}"
                );
            }
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Value::parse(&deep).is_err());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(Value::parse(&ok).is_ok());
    }
}

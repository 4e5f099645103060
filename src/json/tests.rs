//! Tests of the reader, the key matcher and the writer, against serde_json.

use super::*;
use serde_json::{json, Value};
use std::borrow::Cow;

pub(crate) use crate::testkit::Rng;

/// Replaces a random value somewhere in `v` (or drops an object member, or adds one).
/// `original` is what the unmutated reply holds at the same place.
pub(crate) fn mutate(v: &mut Value, original: Option<&Value>, rng: &mut Rng) {
    let replacements = [
        json!(null),
        json!(0),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!(""),
        json!("PUBLIC"),
        json!("INTERNAL"),
        json!("SUCCESS"),
        json!("public"),
        json!("internal"),
        json!("failure"),
        json!(true),
        json!(false),
        json!({}),
        json!([]),
        json!([null]),
        json!({"name": "n"}),
        json!("2024-05-01T10:00:00+00:00"),
        json!("2024-05-01T10:00:00.5Z"),
        json!("1969-05-01T10:00:00Z"),
    ];
    let stop = rng.below(4) == 0;
    match v {
        Value::Object(map) if !map.is_empty() && !stop => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            match rng.below(8) {
                0 => {
                    map.remove(&key);
                }
                // Unknown keys, sorted before and after the others.
                1 => {
                    let key = ["aUnknown", "zUnknown"][rng.below(2)];
                    map.insert(key.into(), json!({"a": [1, "b"]}));
                }
                _ => mutate(
                    map.get_mut(&key).unwrap(),
                    original.and_then(|o| o.get(&key)),
                    rng,
                ),
            }
        }
        Value::Array(items) if !items.is_empty() && !stop => {
            let i = rng.below(items.len());
            mutate(&mut items[i], original.and_then(|o| o.get(i)), rng);
        }
        _ => {
            // No array where the reply has an object: serde's derives read an array as a
            // struct's fields in order (`["x"]` is `{"login": "x"}`), which the reader
            // deliberately refuses.
            let object = original.is_some_and(Value::is_object);
            let fits: Vec<&Value> = replacements
                .iter()
                .filter(|r| !(object && r.is_array()))
                .collect();
            *v = fits[rng.below(fits.len())].clone();
        }
    }
}

/// Reads any value into a serde_json `Value` through the reader, for comparison.
fn read_value(r: &mut Reader<'_>) -> Result<Value> {
    Ok(match r.peek() {
        Some(b'{') => {
            r.object()?;
            let mut map = serde_json::Map::new();
            while let Some(k) = r.key()? {
                let v = read_value(r)?;
                map.insert(k.into_owned(), v);
            }
            Value::Object(map)
        }
        Some(b'[') => {
            r.array()?;
            let mut items = Vec::new();
            while r.element()? {
                items.push(read_value(r)?);
            }
            Value::Array(items)
        }
        Some(b'"') => Value::String(r.str()?.into_owned()),
        Some(b't' | b'f') => Value::Bool(r.bool()?),
        Some(b'n') if r.null()? => Value::Null,
        _ => {
            let start = r.pos;
            r.number()?;
            serde_json::from_str(r.text.get(start..r.pos).ok_or(r.error())?)
                .map_err(|_| r.error())?
        }
    })
}

fn read(text: &str) -> Option<Value> {
    let mut r = Reader::new(text);
    let v = read_value(&mut r).ok()?;
    r.end().ok()?;
    Some(v)
}

fn skipped(text: &str) -> bool {
    let mut r = Reader::new(text);
    r.skip().is_ok() && r.end().is_ok()
}

/// Accepts and reads exactly what serde_json does.
#[test]
fn agrees_with_serde_json() {
    let deep_ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
    let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
    // Too deep to read, not to skip (serde_json ignores values without a depth limit).
    let very_deep = format!("{}{}", "[{\"a\":".repeat(50_000), "}]".repeat(50_000));
    let cases = [
        "{}",
        "[]",
        " { \"a\" : [ 1 , 2.5 , -3e+7 , true , false , null ] } ",
        r#"{"a":{"b":{"c":[{}]}}}"#,
        r#""plain""#,
        r#""esc \" \\ \/ \b \f \n \r \t \u00e9 \u20AC \ud83d\ude00 end""#,
        r#""\u0000""#,
        "\"é ü 😀\"",
        r#"{"a":1,}"#,
        r#"[1,]"#,
        r#"[,1]"#,
        r#"{"a" 1}"#,
        r#"{"a":1 "b":2}"#,
        r#"{,"a":1}"#,
        r#"[1 2]"#,
        r#""\ud83d""#,
        r#""\ud83d\u0041""#,
        r#""\ude00""#,
        r#""\x""#,
        r#""\u12""#,
        "\"tab\there\"",
        "\"unterminated",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "-0",
        "0.0e-0",
        "tru",
        "nul",
        "nulll",
        "{} {}",
        "",
        "   ",
        "{\"a\":1}x",
        "[1]]",
        "{\"a\":[}",
        deep_ok.as_str(),
        too_deep.as_str(),
        very_deep.as_str(),
    ];
    for text in cases {
        let ours = read(text);
        let theirs: Option<Value> = serde_json::from_str(text).ok();
        assert_eq!(ours, theirs, "{text}");
        let ignored = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        assert_eq!(skipped(text), ignored, "skip {text}");
    }
}

#[test]
fn borrows_unless_escaped() {
    let mut r = Reader::new(r#"["plain","with \" quote"]"#);
    r.array().unwrap();
    assert!(r.element().unwrap());
    assert!(matches!(r.str().unwrap(), Cow::Borrowed("plain")));
    assert!(r.element().unwrap());
    assert!(matches!(r.str().unwrap(), Cow::Owned(s) if s == "with \" quote"));
    assert!(!r.element().unwrap());
    r.end().unwrap();
}

#[test]
fn u64_as_serde_json_reads_it() {
    for text in [
        "0",
        "7",
        "18446744073709551615",
        "18446744073709551616",
        "01",
        "-1",
        "1.0",
        "1e3",
        "x",
    ] {
        let mut r = Reader::new(text);
        let ours = r.u64().ok().filter(|_| r.end().is_ok());
        assert_eq!(ours, serde_json::from_str::<u64>(text).ok(), "{text}");
    }
}

#[test]
fn writes_strings_as_serde_json_does() {
    let mut all = String::new();
    for c in (0u32..0x100)
        .chain([0x2028, 0x1F600])
        .filter_map(char::from_u32)
    {
        all.push(c);
    }
    for s in ["", "plain", "a\"b\\c", "\u{7f}", all.as_str()] {
        let mut out = Writer::with_capacity(0);
        out.str(s);
        assert_eq!(out.finish(), serde_json::to_string(s).unwrap());
    }
}

#[test]
fn writes_whole_numbers_as_serde_json_does() {
    for n in [
        0,
        1,
        9,
        10,
        99,
        100,
        1000,
        123_456_789,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ] {
        let mut out = Writer::with_capacity(0);
        out.uint(n);
        assert_eq!(out.finish(), serde_json::to_string(&n).unwrap());
    }
}

/// A random JSON value: nested containers, escapes, non-ASCII text, numbers of every form.
fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let strings = ["", "a", "é ü", "😀", "q\"uo\\te", "line\nbreak\u{1}", "/"];
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.next() >> rng.below(64)),
        3 => json!([-1.5, 0.25, 1e300, -0.0][rng.below(4)]),
        4 => Value::String(strings[rng.below(strings.len())].into()),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = ["a", "b", "name", "é"];
            let map = (0..rng.below(4))
                .map(|_| (keys[rng.below(4)].to_string(), random_value(rng, depth - 1)))
                .collect();
            Value::Object(map)
        }
    }
}

/// Random edits of valid texts: the reader accepts and reads exactly what serde_json does,
/// and `skip` accepts exactly what serde_json ignores.
#[test]
fn agrees_with_serde_json_on_random_texts() {
    let mut rng = Rng(3);
    let pieces = [
        "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "d83d", "n", "t", "e", "E", "0", "-", "+",
        ".", "1", " ", "\u{1}", "é",
    ];
    for _ in 0..20_000 {
        let mut text: Vec<char> = random_value(&mut rng, 3).to_string().chars().collect();
        for _ in 0..rng.below(3) {
            let at = rng.below(text.len() + 1);
            match rng.below(3) {
                0 if at < text.len() => {
                    text.remove(at);
                }
                _ => {
                    let piece = pieces[rng.below(pieces.len())];
                    text.splice(at..at, piece.chars());
                }
            }
        }
        let text: String = text.into_iter().collect();
        let theirs: Option<Value> = serde_json::from_str(&text).ok();
        assert_eq!(read(&text), theirs, "{text}");
        let ignored = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
        assert_eq!(skipped(&text), ignored, "skip {text}");
    }
}

//! The stored envelope `{"fetched_at":…,"data":…}` and the freshness decision made on reading it.
//! `data: null` is a not-found answer, kept for `NOT_FOUND_TTL` so a typo cannot hammer GitHub.

use crate::json::{self, Codec, Reader, Seen, Writer};
use crate::time::{format_rfc3339, parse_rfc3339};

/// How long a not-found answer is kept; it is fresh for its whole life. KV's minimum TTL.
pub const NOT_FOUND_TTL: u64 = 60;
/// Anonymous `Cache-Control: max-age` never exceeds this, whatever `FRESH_TTL_SECONDS` says.
pub const MAX_BROWSER_AGE: u64 = 60;

/// A decoded entry: `data` is `None` for a cached not-found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    pub fetched_at_ms: u64,
    pub data: Option<T>,
}

/// Serializes an entry for KV: `{"fetched_at":…,"data":…}`, the text serde wrote before.
pub fn encode<T: Codec>(fetched_at_ms: u64, data: Option<&T>) -> String {
    let mut out = Writer::with_capacity(256);
    out.raw("{\"fetched_at\":");
    out.str(&format_rfc3339(fetched_at_ms));
    out.raw(",\"data\":");
    match data {
        Some(data) => data.write_json(&mut out),
        None => out.raw("null"),
    }
    out.byte(b'}');
    out.finish()
}

/// Reads an entry; a corrupt or foreign value counts as absent rather than failing the request.
pub fn decode<T: Codec>(text: &str) -> Option<Entry<T>> {
    let (fetched_at, data) = read_envelope(text).ok()?;
    Some(Entry {
        fetched_at_ms: parse_rfc3339(&fetched_at?)?,
        data,
    })
}

/// The envelope's fields as serde's derive read them: any order, unknown keys skipped, no key
/// twice; `data` missing is `null`.
fn read_envelope<T: Codec>(
    text: &str,
) -> json::Result<(Option<std::borrow::Cow<'_, str>>, Option<T>)> {
    let mut r = Reader::new(text);
    let (mut fetched_at, mut data) = (None, None);
    let mut seen = Seen::default();
    r.object()?;
    while let Some(key) = r.key()? {
        match &*key {
            "fetched_at" => {
                seen.once(0, &r)?;
                fetched_at = Some(r.str()?);
            }
            "data" => {
                seen.once(1, &r)?;
                if !r.null()? {
                    data = Some(T::read_json(&mut r)?);
                }
            }
            _ => r.skip()?,
        }
    }
    r.end()?;
    Ok((fetched_at, data))
}

/// When an encoded entry was fetched, read from its first field without decoding the rest (a
/// large listing need not be decoded again when memory already holds it).
pub fn peek_fetched_at(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(r#"{"fetched_at":""#)?;
    parse_rfc3339(rest.get(..rest.find('"')?)?)
}

/// A listing entry's `revalidated_at`, read from before its records (`OwnerListing` writes it
/// there): with `peek_fetched_at`, whether memory already holds this very listing.
pub fn peek_revalidated_at(text: &str) -> Option<u64> {
    let head = text.get(..text.find("\"repos\":")?)?;
    let rest = head.split_once("\"revalidated_at\":\"")?.1;
    parse_rfc3339(rest.get(..rest.find('"')?)?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Served without asking upstream; `left_s` seconds of freshness remain.
    Fresh {
        left_s: u64,
    },
    Stale,
}

/// Whether an entry fetched at `fetched_at_ms` is still fresh at `now_ms`. A not-found entry is
/// fresh for `NOT_FOUND_TTL` whatever `fresh_ttl` says.
pub fn freshness<T>(entry: &Entry<T>, now_ms: u64, fresh_ttl: u64) -> Freshness {
    let ttl = if entry.data.is_none() {
        NOT_FOUND_TTL
    } else {
        fresh_ttl
    };
    found_freshness(entry.fetched_at_ms, now_ms, ttl)
}

/// Whether a found record fetched at `fetched_at_ms` is still fresh at `now_ms` (copies kept in
/// memory know only when their entry was fetched).
pub fn found_freshness(fetched_at_ms: u64, now_ms: u64, fresh_ttl: u64) -> Freshness {
    let age_ms = now_ms.saturating_sub(fetched_at_ms);
    let ttl_ms = fresh_ttl.saturating_mul(1000);
    if age_ms < ttl_ms {
        Freshness::Fresh {
            left_s: (ttl_ms - age_ms) / 1000,
        }
    } else {
        Freshness::Stale
    }
}

impl Freshness {
    /// Seconds a browser may keep the view: the freshness left, capped at `MAX_BROWSER_AGE`.
    pub fn max_age(self) -> u64 {
        match self {
            Freshness::Fresh { left_s } => left_s.min(MAX_BROWSER_AGE),
            Freshness::Stale => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small numbers as a stored type, for envelope tests.
    impl Codec for i32 {
        fn write_json(&self, out: &mut Writer) {
            out.raw(&self.to_string());
        }

        fn read_json(r: &mut Reader<'_>) -> json::Result<i32> {
            let n = r.u64()?;
            i32::try_from(n).map_err(|_| r.error())
        }
    }

    #[test]
    fn peek_reads_only_the_first_field() {
        let text = encode(1_700_000_000_123, Some(&123));
        assert_eq!(peek_fetched_at(&text), Some(1_700_000_000_123));
        for bad in [
            "",
            "{}",
            r#"{"data":null,"fetched_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"fetched_at":"nope"}"#,
        ] {
            assert_eq!(peek_fetched_at(bad), None, "{bad}");
        }
    }

    #[test]
    fn peek_reads_revalidated_at_before_the_records() {
        use crate::model::OwnerListing;
        let mut listing = OwnerListing {
            login: "octo".into(),
            repos: Vec::new(),
            revalidated_at_ms: Some(1_700_000_000_456),
            changed: Default::default(),
        };
        let text = encode(1_700_000_000_123, Some(&listing));
        assert_eq!(peek_revalidated_at(&text), Some(1_700_000_000_456));
        listing.revalidated_at_ms = None;
        let text = encode(1_700_000_000_123, Some(&listing));
        assert_eq!(peek_revalidated_at(&text), None);
        // A record's field of that name is not the listing's.
        let fake = r#"{"fetched_at":"x","data":{"login":"o","repos":[{"revalidated_at":"2026-01-01T00:00:00Z"}]}}"#;
        assert_eq!(peek_revalidated_at(fake), None);
    }

    #[test]
    fn envelope_round_trip() {
        let text = encode(1_700_000_000_000, Some(&12));
        assert_eq!(
            text,
            r#"{"fetched_at":"2023-11-14T22:13:20.000Z","data":12}"#
        );
        let e: Entry<i32> = decode(&text).unwrap();
        assert_eq!(
            e,
            Entry {
                fetched_at_ms: 1_700_000_000_000,
                data: Some(12)
            }
        );
        let nf = encode::<i32>(5_000, None);
        assert_eq!(decode::<i32>(&nf).unwrap().data, None);
        // Keys in any order, unknown ones skipped, `data` left out is not found; no key twice.
        let e = decode::<i32>(r#" {"x":[{}],"data":3,"fetched_at":"2023-11-14T22:13:20Z"} "#);
        assert_eq!(e.map(|e| e.data), Some(Some(3)));
        let e = decode::<i32>(r#"{"fetched_at":"2023-11-14T22:13:20Z"}"#);
        assert_eq!(e.map(|e| e.data), Some(None));
        let twice = r#"{"fetched_at":"2023-11-14T22:13:20Z","data":1,"data":2}"#;
        assert!(decode::<i32>(twice).is_none());
    }

    #[test]
    fn corrupt_entries_are_absent() {
        for text in [
            "",
            "null",
            "{}",
            r#"{"fetched_at":"soon","data":1}"#,
            r#"{"fetched_at":"2023-11-14T22:13:20Z","data":"x"}"#,
        ] {
            assert!(decode::<i32>(text).is_none(), "{text}");
        }
    }

    #[test]
    fn freshness_table() {
        let at = 1_000_000;
        let found = Entry {
            fetched_at_ms: at,
            data: Some(1),
        };
        let missing: Entry<i32> = Entry {
            fetched_at_ms: at,
            data: None,
        };
        let cases = [
            (&found, at, 300, Freshness::Fresh { left_s: 300 }),
            (&found, at + 299_999, 300, Freshness::Fresh { left_s: 0 }),
            (&found, at + 300_000, 300, Freshness::Stale),
            (&found, at + 10_000, 0, Freshness::Stale),
            (&found, at - 5_000, 300, Freshness::Fresh { left_s: 300 }),
            (&missing, at + 59_000, 0, Freshness::Fresh { left_s: 1 }),
            (&missing, at + 60_000, 86_400, Freshness::Stale),
        ];
        for (entry, now, ttl, expected) in cases {
            assert_eq!(freshness(entry, now, ttl), expected, "now={now} ttl={ttl}");
        }
        assert_eq!(Freshness::Fresh { left_s: 300 }.max_age(), 60);
        assert_eq!(Freshness::Fresh { left_s: 7 }.max_age(), 7);
        assert_eq!(Freshness::Stale.max_age(), 0);
    }
}

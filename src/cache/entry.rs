//! The stored envelope `{"fetched_at":…,"data":…}` and the freshness decision made on reading it.
//! `data: null` is a not-found answer, kept for `NOT_FOUND_TTL` so a typo cannot hammer GitHub.

use crate::time::{format_rfc3339, parse_rfc3339};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long a not-found answer is kept; it is fresh for its whole life. KV's minimum TTL.
pub const NOT_FOUND_TTL: u64 = 60;
/// Anonymous `Cache-Control: max-age` never exceeds this, whatever `FRESH_TTL_SECONDS` says.
pub const MAX_BROWSER_AGE: u64 = 60;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    fetched_at: String,
    data: Option<T>,
}

/// A decoded entry: `data` is `None` for a cached not-found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    pub fetched_at_ms: u64,
    pub data: Option<T>,
}

/// Serializes an entry for KV.
pub fn encode<T: Serialize>(fetched_at_ms: u64, data: Option<&T>) -> String {
    let env = Envelope {
        fetched_at: format_rfc3339(fetched_at_ms),
        data,
    };
    serde_json::to_string(&env).unwrap_or_default()
}

/// Reads an entry; a corrupt or foreign value counts as absent rather than failing the request.
pub fn decode<T: DeserializeOwned>(text: &str) -> Option<Entry<T>> {
    let env: Envelope<T> = serde_json::from_str(text).ok()?;
    Some(Entry {
        fetched_at_ms: parse_rfc3339(&env.fetched_at)?,
        data: env.data,
    })
}

/// When an encoded entry was fetched, read from its first field without decoding the rest (a
/// large listing need not be decoded again when memory already holds it).
pub fn peek_fetched_at(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(r#"{"fetched_at":""#)?;
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

    #[test]
    fn peek_reads_only_the_first_field() {
        let text = encode(1_700_000_000_123, Some(&vec![1, 2, 3]));
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
    fn envelope_round_trip() {
        let text = encode(1_700_000_000_000, Some(&vec![1, 2]));
        assert_eq!(
            text,
            r#"{"fetched_at":"2023-11-14T22:13:20.000Z","data":[1,2]}"#
        );
        let e: Entry<Vec<i32>> = decode(&text).unwrap();
        assert_eq!(
            e,
            Entry {
                fetched_at_ms: 1_700_000_000_000,
                data: Some(vec![1, 2])
            }
        );
        let nf = encode::<Vec<i32>>(5_000, None);
        assert_eq!(decode::<Vec<i32>>(&nf).unwrap().data, None);
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

//! The checkpoint of one owner's listing build and the pure decisions made on it: where the next
//! page starts, how large it is, what a failed page means, and how long a caller should wait.
//! No I/O and no clock: times are passed in.

pub use super::partition::FULL_PAGE;
use super::partition::{decode_streams, encode_streams, End, Stream};
use crate::forge::UpstreamFailure;

/// Pages shrink on timeouts down to this size, never below.
pub const MIN_PAGE: u8 = 10;
/// Tries of one page at the smallest size before the build counts as failed.
pub const TRIES_AT_MIN: u8 = 3;
/// Pages a build may take at most (20,000 repositories at the smallest size, and some room):
/// guards against an upstream that never stops saying `hasNextPage`.
pub const MAX_PAGES: u32 = 5_000;
pub use crate::service::PAGE_TIMEOUT_MS;

/// Where a build stands, kept in the object's storage under `BUILD_KEY` after every round of
/// pages; the records themselves are kept page by page under `page_key(i)` (storage values are
/// limited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// When the first page was requested: the build's answer is as old as this, and an
    /// invalidation at or after it keeps the answer out of KV.
    pub started_at_ms: u64,
    /// Pages stored so far.
    pub pages: u32,
    /// Records stored so far.
    pub fetched: u64,
    /// `totalCount` from the first page (the parts' counts summed, when planned from them).
    pub total: Option<u64>,
    /// The owner login as the forge spells it, from the first page.
    pub login: Option<String>,
    /// Which set of page keys it stores its pages under: the one the live listing does not use.
    pub slot: u8,
    /// Whether the first page has been read: until then the one stream is the whole listing's
    /// front, asked with every part's count at `BUILD_CONCURRENCY` above 1.
    pub planned: bool,
    /// What it pages (see `partition`): the whole listing from the front, or the parts.
    pub streams: Vec<Stream>,
}

pub const BUILD_KEY: &str = "build";

pub use super::live::page_key;

impl Checkpoint {
    pub fn new(started_at_ms: u64) -> Checkpoint {
        Checkpoint {
            started_at_ms,
            pages: 0,
            fetched: 0,
            total: None,
            login: None,
            slot: 0,
            planned: false,
            streams: vec![Stream::new(None, End::Front, 0)],
        }
    }

    /// Whether every stream has read its end of its part.
    pub fn read(&self) -> bool {
        self.streams.iter().all(|s| s.done)
    }

    /// The stored text: `{started} {pages} {fetched} {total} {slot} {planned} {login}`, `-` for
    /// none, then the streams' lines (`partition::encode_streams`). Lines, not JSON: typed JSON
    /// decoding costs the wasm serde's error machinery.
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}\n{}",
            self.started_at_ms,
            self.pages,
            self.fetched,
            self.total
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            self.slot,
            u8::from(self.planned),
            self.login.as_deref().unwrap_or("-"),
            encode_streams(&self.streams),
        )
    }

    /// `None` for anything `encode` did not write (an earlier release's checkpoint included:
    /// that build starts over).
    pub fn decode(text: &str) -> Option<Checkpoint> {
        let (line, streams) = text.split_once('\n')?;
        let mut parts = line.split(' ');
        let mut next = || parts.next();
        let started_at_ms = next()?.parse().ok()?;
        let pages = next()?.parse().ok()?;
        let fetched = next()?.parse().ok()?;
        let total = match next()? {
            "-" => None,
            t => Some(t.parse().ok()?),
        };
        let slot = next()?.parse().ok()?;
        let planned = match next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let login = match next()? {
            "-" => None,
            l => Some(l.to_string()),
        };
        if next().is_some() {
            return None;
        }
        let streams = decode_streams(streams)?;
        if streams.is_empty() {
            return None;
        }
        Some(Checkpoint {
            started_at_ms,
            pages,
            fetched,
            total,
            login,
            slot,
            planned,
            streams,
        })
    }
}

/// What to do after a page failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Ask for the same page again, with this many records.
    Retry { page_size: u8 },
    /// Stop until this time (a spent rate limit), then resume from the checkpoint.
    PauseUntil { at_ms: u64 },
    /// The build has failed; it is remembered and resumed from the checkpoint later.
    Fail,
}

/// Decides what a failed page of `stream` means. Timeouts and overloaded answers shrink the
/// stream's page (cursors stay valid at any size; other streams keep theirs); other failures end
/// the build for now.
pub fn after_failure(stream: &Stream, failure: &UpstreamFailure, now_ms: u64) -> AfterFailure {
    match failure {
        UpstreamFailure::Overloaded(_) | UpstreamFailure::Unavailable(_) => {
            if stream.page_size > MIN_PAGE {
                AfterFailure::Retry {
                    page_size: (stream.page_size / 2).max(MIN_PAGE),
                }
            } else if stream.tries + 1 < TRIES_AT_MIN {
                AfterFailure::Retry {
                    page_size: MIN_PAGE,
                }
            } else {
                AfterFailure::Fail
            }
        }
        UpstreamFailure::RateLimited {
            retry_after_s,
            reset_at_ms,
        } => {
            let from_retry = retry_after_s.map(|s| now_ms.saturating_add(s.saturating_mul(1000)));
            match reset_at_ms.or(from_retry) {
                Some(at_ms) if at_ms > now_ms => AfterFailure::PauseUntil { at_ms },
                _ => AfterFailure::PauseUntil {
                    at_ms: now_ms + crate::service::DEFAULT_RETRY_AFTER * 1000,
                },
            }
        }
        _ => AfterFailure::Fail,
    }
}

/// `Retry-After` for a caller told the listing is still building: the time the pages left should
/// take at the pace so far, within 1–10 s.
pub fn retry_after_s(cp: &Checkpoint, now_ms: u64) -> u64 {
    let elapsed = now_ms.saturating_sub(cp.started_at_ms);
    let estimate = match (cp.total, cp.fetched) {
        (Some(total), fetched) if fetched > 0 => {
            let per_record = elapsed / fetched;
            total.saturating_sub(fetched).saturating_mul(per_record) / 1000
        }
        _ => 2,
    };
    estimate.clamp(1, 10)
}

/// Where the object notes when its owner was last read (a directory unread for the stale time
/// deletes its storage: pages of a failed build and everything else).
pub const READ_KEY: &str = "read_at";

/// Whether a read at `now_ms` is noted in storage, the last noted one being `noted_ms` (0: none
/// in this life). Noting every read would cost a storage write per request; a tenth of the stale
/// time (at most an hour) between notes keeps it rare and `reap_at` honest.
pub fn note_read(noted_ms: u64, now_ms: u64, stale_ttl_s: u64) -> bool {
    let every = stale_ttl_s.saturating_mul(100).min(3_600_000);
    noted_ms == 0 || now_ms.saturating_sub(noted_ms) >= every
}

/// When a directory last noted read at `noted_ms` may delete its storage: the stale time after
/// the last read, which may have come up to one noting interval after the note.
pub fn reap_at(noted_ms: u64, stale_ttl_s: u64) -> u64 {
    let ttl = stale_ttl_s.saturating_mul(1000);
    noted_ms
        .saturating_add(ttl)
        .saturating_add((ttl / 10).min(3_600_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_noted_rarely_and_reaping_waits_the_stale_time_after_the_last_one() {
        let day = 86_400;
        // (noted, now, stale s) → noted again?
        for (noted, now, ttl, want) in [
            (0, 5, day, true),
            (1_000, 1_000 + 3_599_999, day, false),
            (1_000, 1_000 + 3_600_000, day, true),
            (1_000, 1_000 + 5_999, 60, false),
            (1_000, 1_000 + 6_000, 60, true),
        ] {
            assert_eq!(note_read(noted, now, ttl), want, "{noted} {now} {ttl}");
        }
        for ttl in [60, 3_600, day, 30 * day] {
            let noted = 1_700_000_000_000;
            // The latest read not noted came just before the next note was due.
            let latest_unnoted = (0..)
                .map(|i| noted + i * 1_000)
                .take_while(|&t| !note_read(noted, t, ttl))
                .last()
                .unwrap();
            assert!(reap_at(noted, ttl) >= latest_unnoted + ttl * 1000, "{ttl}");
            assert!(
                reap_at(noted, ttl) <= noted + ttl * 1000 + 3_600_000,
                "{ttl}"
            );
        }
    }

    fn at(page_size: u8, tries: u8) -> Stream {
        Stream {
            page_size,
            tries,
            ..Stream::new(None, End::Front, 0)
        }
    }

    #[test]
    fn failures_table() {
        let slow = UpstreamFailure::Overloaded("HTTP 502".into());
        let gone = UpstreamFailure::Unavailable("no reply within 10000 ms".into());
        let bad = UpstreamFailure::Unusable("not JSON".into());
        let limited = UpstreamFailure::RateLimited {
            retry_after_s: None,
            reset_at_ms: Some(90_000),
        };
        let cases = [
            (at(100, 0), &slow, AfterFailure::Retry { page_size: 50 }),
            (at(50, 0), &gone, AfterFailure::Retry { page_size: 25 }),
            (at(25, 0), &slow, AfterFailure::Retry { page_size: 12 }),
            (at(12, 0), &slow, AfterFailure::Retry { page_size: 10 }),
            (at(10, 0), &slow, AfterFailure::Retry { page_size: 10 }),
            (at(10, 1), &slow, AfterFailure::Retry { page_size: 10 }),
            (at(10, 2), &slow, AfterFailure::Fail),
            (at(100, 0), &bad, AfterFailure::Fail),
            (
                at(100, 0),
                &limited,
                AfterFailure::PauseUntil { at_ms: 90_000 },
            ),
            (at(100, 0), &UpstreamFailure::NotFound, AfterFailure::Fail),
        ];
        for (cp, failure, expected) in cases {
            assert_eq!(
                after_failure(&cp, failure, 1_000),
                expected,
                "{cp:?} {failure:?}"
            );
        }
    }

    #[test]
    fn a_spent_limit_without_a_reset_pauses_a_minute() {
        let limited = UpstreamFailure::RateLimited {
            retry_after_s: Some(5),
            reset_at_ms: None,
        };
        assert_eq!(
            after_failure(&at(100, 0), &limited, 1_000),
            AfterFailure::PauseUntil { at_ms: 6_000 }
        );
        let unknown = UpstreamFailure::RateLimited {
            retry_after_s: None,
            reset_at_ms: Some(500),
        };
        assert_eq!(
            after_failure(&at(100, 0), &unknown, 1_000),
            AfterFailure::PauseUntil { at_ms: 61_000 }
        );
    }

    #[test]
    fn retry_after_follows_the_pace_within_bounds() {
        let mut cp = Checkpoint::new(0);
        assert_eq!(retry_after_s(&cp, 5_000), 2, "nothing known yet");
        cp.total = Some(10_000);
        cp.fetched = 1_000;
        assert_eq!(retry_after_s(&cp, 10_000), 10, "90 s left is capped");
        cp.fetched = 9_900;
        assert_eq!(retry_after_s(&cp, 99_000), 1);
        cp.fetched = 9_000;
        assert_eq!(retry_after_s(&cp, 90_000), 10);
        cp.fetched = 9_700;
        assert_eq!(retry_after_s(&cp, 97_000), 3);
    }

    #[test]
    fn checkpoints_survive_storage() {
        let mut cp = Checkpoint::new(1_700_000_000_123);
        assert_eq!(Checkpoint::decode(&cp.encode()), Some(cp.clone()));
        cp.streams[0].cursor = Some("Y3Vyc29y OnYy- c".into());
        cp.login = Some("Octo-Org".into());
        cp.total = Some(10_000);
        (cp.pages, cp.fetched, cp.slot, cp.planned) = (7, 700, 1, true);
        assert_eq!(Checkpoint::decode(&cp.encode()), Some(cp.clone()));
        let mut counts = [0; 12];
        (counts[0], counts[5]) = (9_000, 1_000);
        cp.streams = super::super::partition::plan(&counts, 4, 99);
        cp.streams[3].cursor = Some("-".into());
        assert_eq!(Checkpoint::decode(&cp.encode()), Some(cp));
        for bad in [
            "",
            "1 2 3",
            r#"{"started_at_ms":1}"#,
            // An earlier release's line: the build starts over.
            "1 0 0 - 100 0 0 - -",
            "x 0 0 - 0 0 -\n\tf\t\t100\t0\t\t0\t0\t0",
            "1 0 0 - 0 2 -\n\tf\t\t100\t0\t\t0\t0\t0",
            "1 0 0 - 0 0 - x\n\tf\t\t100\t0\t\t0\t0\t0",
            "1 0 0 - 0 0 -\n",
        ] {
            assert_eq!(Checkpoint::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn page_keys_sort_in_page_order() {
        let mut keys: Vec<String> = [10, 9, 100, 0].iter().map(|i| page_key(1, *i)).collect();
        keys.sort();
        assert_eq!(keys, ["1:00000", "1:00009", "1:00010", "1:00100"]);
    }
}

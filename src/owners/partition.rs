//! Partitioned builds (DESIGN.md, "Partitioned builds"), the plain-Rust part: the twelve disjoint
//! parts GitHub's `repositories` filters split an owner's listing into, the streams a build pages
//! (each non-empty part from the front, and from the back too when it holds more than a page),
//! which streams go out next within `BUILD_CONCURRENCY`, when a part's two ends have met, whether
//! a part must be read again, the merge of what the streams read, and the streams' stored form. Not wired to the build yet
//! (issue 35): `directory::drive` still pages one stream, as `BUILD_CONCURRENCY=1` will.

use crate::model::{Repo, Visibility};
use crate::names::cmp_names;
use std::cmp::Ordering;

/// A page of one stream holds at most this many records (GitHub's `first`/`last` limit).
pub const PAGE: u64 = 100;

/// One of the twelve parts: `visibility`, `isArchived` and `isFork` as GitHub's connection takes
/// them. Every repository is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub visibility: Visibility,
    pub archived: bool,
    pub fork: bool,
}

impl Part {
    /// The twelve parts, in a fixed order (the count query's aliases follow it).
    pub fn all() -> [Part; 12] {
        let mut out = [Part {
            visibility: Visibility::Public,
            archived: false,
            fork: false,
        }; 12];
        let visibilities = [
            Visibility::Public,
            Visibility::Private,
            Visibility::Internal,
        ];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = Part {
                visibility: visibilities
                    .get(i / 4)
                    .copied()
                    .unwrap_or(Visibility::Public),
                archived: i % 4 >= 2,
                fork: i % 2 == 1,
            };
        }
        out
    }

    /// Whether `repo` belongs to this part (as GitHub's filters would place it).
    pub fn holds(&self, repo: &Repo) -> bool {
        repo.visibility == self.visibility
            && repo.archived == self.archived
            && repo.fork == self.fork
    }
}

/// Which end of its part a stream reads from: `first`/`after` in name order, or `last`/`before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Front,
    Back,
}

/// One stream of a build: its part (`None`: the whole listing, today's sequential build), its
/// end, where it stands, and the furthest name it has read (in its own direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub part: Option<Part>,
    pub end: End,
    pub cursor: Option<String>,
    pub page_size: u64,
    pub reached: Option<String>,
    pub done: bool,
}

impl Stream {
    fn new(part: Option<Part>, end: End) -> Stream {
        Stream {
            part,
            end,
            cursor: None,
            page_size: PAGE,
            reached: None,
            done: false,
        }
    }
}

/// The streams of a build as the object stores them beside its pages, one line each: the part's
/// place in `Part::all` (empty: the whole listing), `f` or `b`, the cursor, the page size, the
/// name reached and `1` when done, tab-separated (cursors and names hold no tab; empty: none).
pub fn encode_streams(streams: &[Stream]) -> String {
    let parts = Part::all();
    let mut out = String::new();
    for s in streams {
        let part = s
            .part
            .and_then(|p| parts.iter().position(|q| *q == p))
            .map_or(String::new(), |i| i.to_string());
        let end = if s.end == End::Front { "f" } else { "b" };
        let cursor = s.cursor.as_deref().unwrap_or("");
        let reached = s.reached.as_deref().unwrap_or("");
        let done = u8::from(s.done);
        out.push_str(&format!(
            "{part}\t{end}\t{cursor}\t{}\t{reached}\t{done}\n",
            s.page_size
        ));
    }
    out
}

/// `encode_streams`' text read back (`None`: not text it wrote).
pub fn decode_streams(text: &str) -> Option<Vec<Stream>> {
    let parts = Part::all();
    let some = |f: &str| (!f.is_empty()).then(|| f.to_string());
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let [part, end, cursor, size, reached, done] = f.as_slice() else {
                return None;
            };
            let part = match *part {
                "" => None,
                i => Some(*parts.get(i.parse::<usize>().ok()?)?),
            };
            let end = match *end {
                "f" => End::Front,
                "b" => End::Back,
                _ => return None,
            };
            Some(Stream {
                part,
                end,
                cursor: some(cursor),
                page_size: size.parse().ok().filter(|n| (1..=PAGE).contains(n))?,
                reached: some(reached),
                done: match *done {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                },
            })
        })
        .collect()
}

/// The streams of a build, from each part's `totalCount`: with `concurrency` 1, one stream over
/// the whole listing (today's build); otherwise each non-empty part from the front, and from the
/// back too when it holds more than a page.
pub fn plan(counts: &[(Part, u64)], concurrency: u32) -> Vec<Stream> {
    if concurrency <= 1 {
        return vec![Stream::new(None, End::Front)];
    }
    let mut out = Vec::new();
    for &(part, count) in counts {
        if count == 0 {
            continue;
        }
        out.push(Stream::new(Some(part), End::Front));
        if count > PAGE {
            out.push(Stream::new(Some(part), End::Back));
        }
    }
    out
}

/// The streams to ask next: those not done and not in flight, at most `concurrency` in flight in
/// all, streams that have not begun before those under way (every part starts early, so a part
/// holding most of the listing is not left for last).
pub fn next(streams: &[Stream], in_flight: &[usize], concurrency: u32) -> Vec<usize> {
    let free = (concurrency as usize).saturating_sub(in_flight.len());
    let mut idle: Vec<usize> = (0..streams.len())
        .filter(|i| !in_flight.contains(i) && streams.get(*i).is_some_and(|s| !s.done))
        .collect();
    idle.sort_by_key(|&i| streams.get(i).map_or(0, |s| u64::from(s.cursor.is_some())));
    idle.truncate(free);
    idle
}

/// Whether a part's two ends have met: the front has read up to (or past) the name the back has
/// read down to. Never decided by a count: a repository that moved into the part would make it
/// lie.
pub fn met(front: Option<&str>, back: Option<&str>) -> bool {
    match (front, back) {
        (Some(f), Some(b)) => cmp_names(f, b) != Ordering::Less,
        _ => false,
    }
}

/// Stream `i` read a page: `names` as GitHub lists them (in name order, from either end), the
/// cursor to go on from (the page's end cursor from the front, its start cursor from the back)
/// and whether GitHub has more in that direction. The stream stops at its end of the part, or where it meets the other end of
/// its part (which stops too: together they have read the part).
pub fn advance(
    streams: &mut [Stream],
    i: usize,
    names: &[&str],
    cursor: Option<String>,
    more: bool,
) {
    let Some(s) = streams.get_mut(i) else {
        return;
    };
    // The furthest name in the stream's direction: a back page's first.
    let furthest = match s.end {
        End::Front => names.last(),
        End::Back => names.first(),
    };
    if let Some(name) = furthest {
        s.reached = Some((*name).to_string());
    }
    s.cursor = cursor.or(s.cursor.take());
    s.done |= !more;
    let (part, end) = (s.part, s.end);
    let Some(j) = streams
        .iter()
        .position(|o| part.is_some() && o.part == part && o.end != end)
    else {
        return;
    };
    let (front, back) = match end {
        End::Front => (i, j),
        End::Back => (j, i),
    };
    let reached = |k: usize| streams.get(k).and_then(|s| s.reached.clone());
    if met(reached(front).as_deref(), reached(back).as_deref()) {
        for k in [i, j] {
            if let Some(s) = streams.get_mut(k) {
                s.done = true;
            }
        }
    }
}

/// Whether a part must be read again sequentially before the listing is written: the distinct
/// names its streams read differ from its `totalCount` by more than the changes heard meanwhile.
pub fn recount(total: u64, read: u64, heard: u64) -> bool {
    total.abs_diff(read) > heard
}

/// Every stream's records, each with when it was asked, as one listing in name order: a name
/// read twice (two ends that met, or a repository that moved between parts) is kept once, the
/// later ask winning.
pub fn merge(mut read: Vec<(u64, Repo)>) -> Vec<(u64, Repo)> {
    // By name, the latest ask first within a name: the first of each run is kept.
    read.sort_by(|a, b| cmp_names(a.1.name(), b.1.name()).then(b.0.cmp(&a.0)));
    read.dedup_by(|later, kept| cmp_names(later.1.name(), kept.1.name()) == Ordering::Equal);
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::repo;

    fn part(v: Visibility, archived: bool, fork: bool) -> Part {
        Part {
            visibility: v,
            archived,
            fork,
        }
    }

    #[test]
    fn twelve_parts_hold_every_repository_exactly_once() {
        let parts = Part::all();
        for v in [
            Visibility::Public,
            Visibility::Private,
            Visibility::Internal,
        ] {
            for archived in [false, true] {
                for fork in [false, true] {
                    let mut r = repo("acme", "r", v);
                    r.archived = archived;
                    r.fork = fork;
                    assert_eq!(
                        parts.iter().filter(|p| p.holds(&r)).count(),
                        1,
                        "{v:?} {archived} {fork}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_plan_reads_non_empty_parts_and_large_ones_from_both_ends() {
        let counts = [
            (part(Visibility::Public, false, false), 7_000),
            (part(Visibility::Private, false, false), 100),
            (part(Visibility::Internal, true, true), 0),
            (part(Visibility::Public, true, false), 101),
        ];
        let streams = plan(&counts, 4);
        let shape: Vec<(Visibility, End)> = streams
            .iter()
            .map(|s| (s.part.unwrap().visibility, s.end))
            .collect();
        assert_eq!(
            shape,
            [
                (Visibility::Public, End::Front),
                (Visibility::Public, End::Back),
                (Visibility::Private, End::Front),
                (Visibility::Public, End::Front),
                (Visibility::Public, End::Back),
            ]
        );
        // BUILD_CONCURRENCY=1: today's build, one stream over everything, no parts.
        assert_eq!(plan(&counts, 1), [Stream::new(None, End::Front)]);
    }

    #[test]
    fn at_most_concurrency_streams_go_out_and_done_ones_never() {
        let counts = [
            (part(Visibility::Public, false, false), 500),
            (part(Visibility::Private, false, false), 500),
        ];
        let mut streams = plan(&counts, 4);
        assert_eq!(next(&streams, &[], 3).len(), 3);
        assert_eq!(next(&streams, &[0, 1], 3), [2]);
        streams[3].done = true;
        assert_eq!(next(&streams, &[0], 4), [1, 2]);
        // Streams that have not begun go before those under way.
        streams[1].cursor = Some("c".into());
        assert_eq!(next(&streams, &[], 1), [0]);
        assert_eq!(next(&streams, &[0], 2), [2]);
    }

    #[test]
    fn streams_survive_storage() {
        let counts = [
            (part(Visibility::Internal, true, true), 300),
            (part(Visibility::Public, false, false), 5),
        ];
        let mut streams = plan(&counts, 4);
        streams[0].cursor = Some("Y3Vyc29yOnYyOpHOAAE=".into());
        streams[0].reached = Some("repo-0042".into());
        streams[1].page_size = 50;
        streams[2].done = true;
        let text = encode_streams(&streams);
        assert_eq!(decode_streams(&text), Some(streams));
        assert_eq!(
            decode_streams(&encode_streams(&plan(&counts, 1))),
            Some(plan(&counts, 1))
        );
        for bad in [
            "12\tf\t\t100\t\t0",
            "0\tx\t\t100\t\t0",
            "0\tf\t\t0\t\t0",
            "0\tf\t\t100\t\t",
            "0\tf\t\t100",
        ] {
            assert_eq!(decode_streams(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn streams_advance_until_their_end_or_until_the_two_ends_meet() {
        let counts = [
            (part(Visibility::Public, false, false), 250),
            (part(Visibility::Private, false, false), 50),
        ];
        let mut s = plan(&counts, 4);
        // The small part: one page, no more.
        advance(&mut s, 2, &["p1", "p2"], Some("c2".into()), false);
        assert!(s[2].done);
        // The large part from both ends: a..m from the front, n..z from the back: not met yet.
        advance(&mut s, 0, &["a", "m"], Some("c0".into()), true);
        advance(&mut s, 1, &["n", "z"], Some("c1".into()), true);
        assert!(!s[0].done && !s[1].done);
        assert_eq!(s[0].cursor.as_deref(), Some("c0"));
        assert_eq!(s[1].reached.as_deref(), Some("n"));
        // The front reads past where the back reached: both stop.
        advance(&mut s, 0, &["n", "o"], Some("c0b".into()), true);
        assert!(s[0].done && s[1].done);
        // A page with nothing keeps the cursor it had.
        let mut one = plan(&counts, 1);
        advance(&mut one, 0, &[], None, true);
        assert_eq!(one[0].cursor, None);
        assert!(!one[0].done);
    }

    #[test]
    fn two_ends_meet_when_the_front_reaches_the_back_by_name() {
        assert!(!met(None, Some("m")));
        assert!(!met(Some("a"), Some("m")));
        assert!(
            met(Some("m"), Some("M")),
            "names compare case-insensitively"
        );
        assert!(met(Some("n"), Some("m")));
    }

    #[test]
    fn a_part_is_read_again_only_beyond_the_changes_heard() {
        assert!(!recount(500, 500, 0));
        assert!(!recount(500, 498, 2));
        assert!(recount(500, 497, 2));
        assert!(recount(500, 503, 2));
    }

    #[test]
    fn the_merge_keeps_each_name_once_the_later_ask_winning() {
        let public = repo("acme", "b", Visibility::Public);
        let private = repo("acme", "B", Visibility::Private);
        let read = vec![
            (20, repo("acme", "c", Visibility::Public)),
            (10, public),
            (30, private.clone()),
            (5, repo("acme", "a", Visibility::Public)),
        ];
        let merged = merge(read);
        let names: Vec<(&str, u64)> = merged.iter().map(|(at, r)| (r.name(), *at)).collect();
        assert_eq!(names, [("a", 5), ("B", 30), ("c", 20)]);
        assert_eq!(merged[1].1, private);
    }
}

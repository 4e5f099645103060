//! Partitioned builds (DESIGN.md, "Partitioned builds"), the plain-Rust part: the streams a build
//! pages (each non-empty part from the front, and from the back too when it holds more than a
//! page), which streams go out in the next round within `BUILD_CONCURRENCY`, when a part's two
//! ends have met, whether a part must be read again, and the streams' stored form. The parts
//! themselves are `model::Part`; the build that drives the streams is `directory::drive`.

use crate::model::Part;
use std::fmt::Write;

/// Records per page when nothing has gone wrong (GitHub's maximum).
pub const FULL_PAGE: u8 = 100;

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
    /// Records asked per page; halves on timeouts and stays there (`build::after_failure`).
    pub page_size: u8,
    /// Failed tries of the current page.
    pub tries: u8,
    pub reached: Option<String>,
    pub done: bool,
    /// The part's `totalCount` when the build was planned (0 for the whole listing).
    pub count: u64,
    /// The part is being read again sequentially (see `recount`): never a second time.
    pub again: bool,
}

impl Stream {
    pub fn new(part: Option<Part>, end: End, count: u64) -> Stream {
        Stream {
            part,
            end,
            cursor: None,
            page_size: FULL_PAGE,
            tries: 0,
            reached: None,
            done: false,
            count,
            again: false,
        }
    }
}

/// The streams of a build as the object stores them beside its checkpoint, one line each: the
/// part's place in `Part::all` (empty: the whole listing), `f` or `b`, the cursor, the page size,
/// the tries, the name reached, `1` when done, the part's count and `1` when read again,
/// tab-separated (cursors and names hold no tab; empty: none).
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
        let _ = writeln!(
            out,
            "{part}\t{end}\t{cursor}\t{}\t{}\t{reached}\t{}\t{}\t{}",
            s.page_size,
            s.tries,
            u8::from(s.done),
            s.count,
            u8::from(s.again)
        );
    }
    out
}

/// `encode_streams`' text read back (`None`: not text it wrote).
pub fn decode_streams(text: &str) -> Option<Vec<Stream>> {
    let parts = Part::all();
    let some = |f: &str| (!f.is_empty()).then(|| f.to_string());
    let flag = |f: &str| match f {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [part, end, cursor, size, tries, reached, done, count, again] = f.as_slice() else {
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
        out.push(Stream {
            part,
            end,
            cursor: some(cursor),
            page_size: size.parse().ok().filter(|n| (1..=FULL_PAGE).contains(n))?,
            tries: tries.parse().ok()?,
            reached: some(reached),
            done: flag(done)?,
            count: count.parse().ok()?,
            again: flag(again)?,
        });
    }
    Some(out)
}

/// The streams of a build, from each part's `totalCount`: each non-empty part from the front,
/// and from the back too when it holds more than a page. None when paging the parts side by
/// side, `concurrency` at a time, would take no fewer rounds than the `left` pages of the whole
/// listing one after another (every non-empty part costs a request: a small owner is cheaper and
/// as fast read in order).
pub fn plan(counts: &[u64], concurrency: u32, left: u64) -> Vec<Stream> {
    let page = u64::from(FULL_PAGE);
    // Rounds and pages each part takes: two ends read a page each per round and stop on a name
    // both read, so `c` names take `(c + 1) / 200` rounds (rounded up), one page apiece.
    let cost = |c: u64| match c {
        0 => (0, 0),
        c if c <= page => (1, 1),
        c => {
            let rounds = (c + 1).div_ceil(2 * page);
            (rounds, 2 * rounds)
        }
    };
    let longest = counts.iter().map(|&c| cost(c).0).max().unwrap_or(0);
    let pages: u64 = counts.iter().map(|&c| cost(c).1).sum();
    let rounds = longest.max(pages.div_ceil(u64::from(concurrency.max(1))));
    if rounds >= left {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (&part, &count) in Part::all().iter().zip(counts) {
        if count == 0 {
            continue;
        }
        out.push(Stream::new(Some(part), End::Front, count));
        if count > page {
            out.push(Stream::new(Some(part), End::Back, count));
        }
    }
    out
}

/// The streams to ask in the next round, at most `concurrency`: those not done, the largest parts
/// first (their two ends are the longest way; smaller parts fill the rest of each round).
pub fn next(streams: &[Stream], concurrency: u32) -> Vec<usize> {
    // A few dozen streams at most: picking the largest each time needs no sort.
    let mut picked: Vec<usize> = Vec::new();
    while picked.len() < concurrency as usize {
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in streams.iter().enumerate() {
            if !s.done && !picked.contains(&i) && best.is_none_or(|(_, c)| s.count > c) {
                best = Some((i, s.count));
            }
        }
        let Some((i, _)) = best else {
            break;
        };
        picked.push(i);
    }
    picked
}

/// Stream `i` read a page: `names` as GitHub lists them (in its name order, from either end),
/// the cursor to go on from (the page's end cursor from the front, its start cursor from the
/// back) and whether GitHub has more in that direction. The stream stops at its end of the part;
/// and the part's two ends stop together once they have met: a page holds the name the other end
/// reached (each end reads its side without a gap, so the later of two pages that overlap holds
/// it), or one end reached the far end of the part on its own. Names are compared for equality
/// only, never ordered: GitHub's name order is not quite ours (`cmp_names`), and never by a
/// count: a repository that moved into the part would make it lie.
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
    s.tries = 0;
    s.done |= !more;
    let (part, end) = (s.part, s.end);
    let Some(other) = streams
        .iter_mut()
        .find(|o| part.is_some() && o.part == part && o.end != end)
    else {
        return;
    };
    let met = other
        .reached
        .as_deref()
        .is_some_and(|r| names.iter().any(|n| n.eq_ignore_ascii_case(r)));
    if met || !more {
        other.done = true;
        if let Some(s) = streams.get_mut(i) {
            s.done = true;
        }
    }
}

/// Whether a part must be read again sequentially before the listing is written: the distinct
/// names its streams read differ from its `totalCount` by more than the changes heard meanwhile.
pub fn recount(total: u64, read: u64, heard: u64) -> bool {
    total.abs_diff(read) > heard
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts in `Part::all` order: public active sources, public archived sources, private
    /// active sources and internal archived forks.
    fn counts(public: u64, archived: u64, private: u64, internal: u64) -> [u64; 12] {
        let mut c = [0; 12];
        (c[0], c[2], c[4], c[11]) = (public, archived, private, internal);
        c
    }

    #[test]
    fn a_plan_reads_non_empty_parts_and_large_ones_from_both_ends() {
        let streams = plan(&counts(7_000, 101, 100, 0), 4, 72);
        let shape: Vec<(Part, End, u64)> = streams
            .iter()
            .map(|s| (s.part.unwrap(), s.end, s.count))
            .collect();
        let p = Part::all();
        assert_eq!(
            shape,
            [
                (p[0], End::Front, 7_000),
                (p[0], End::Back, 7_000),
                (p[2], End::Front, 101),
                (p[2], End::Back, 101),
                (p[4], End::Front, 100),
            ]
        );
        assert!(streams.iter().all(|s| s.page_size == FULL_PAGE && !s.done));
        assert!(plan(&[0; 12], 4, 72).is_empty());
    }

    #[test]
    fn parts_are_paged_only_when_that_takes_fewer_rounds() {
        let p = Part::all();
        // 250 repositories in four parts: four requests where two pages are left in order.
        assert!(plan(&counts(150, 50, 30, 20), 4, 2).is_empty());
        // 1,000 in three parts (8 + 2 + 1 pages, two ends each above a page): 4 rounds for the
        // longest, 3 for all 12 pages at four a round, against 9 pages in order.
        assert_eq!(plan(&counts(779, 0, 143, 78), 4, 9).len(), 5);
        // Two ends stop on a name both read: 400 in one part take 3 rounds (not 2), no faster
        // than the 3 pages left in order; 200 public and 50 private take 2, as in order.
        assert!(plan(&counts(400, 0, 0, 0), 4, 3).is_empty());
        assert!(plan(&counts(200, 0, 50, 0), 4, 2).is_empty());
        assert!(!plan(&counts(599, 0, 0, 0), 4, 5).is_empty());
        // One part holding everything: its two ends halve the rounds.
        let one = plan(&counts(10_000, 0, 0, 0), 4, 99);
        assert_eq!(
            one.iter().map(|s| (s.part, s.end)).collect::<Vec<_>>(),
            [(Some(p[0]), End::Front), (Some(p[0]), End::Back)]
        );
        // At 2 in flight 19 pages take 10 rounds: no faster than the 9 left in order.
        // (the emulator's big-org: 1,000 repositories in twelve parts, 19 pages)
        let mixed = [599, 103, 50, 27, 109, 19, 10, 5, 59, 11, 6, 2];
        assert!(plan(&mixed, 2, 9).is_empty());
        assert!(!plan(&mixed, 4, 9).is_empty());
    }

    #[test]
    fn each_round_asks_the_largest_parts_first_and_never_a_done_stream() {
        let mut streams = plan(&counts(150, 120, 5, 3), 6, 99);
        // 0,1: public (150); 2,3: archived (120); 4: private; 5: internal.
        assert_eq!(next(&streams, 3), [0, 1, 2]);
        assert_eq!(next(&streams, 6), [0, 1, 2, 3, 4, 5]);
        assert_eq!(next(&streams, 1), [0]);
        streams[0].done = true;
        streams[3].done = true;
        assert_eq!(next(&streams, 4), [1, 2, 4, 5]);
        for s in &mut streams {
            s.done = true;
        }
        assert!(next(&streams, 4).is_empty());
    }

    #[test]
    fn streams_survive_storage() {
        let mut streams = plan(&counts(300, 0, 5, 0), 4, 99);
        streams[0].cursor = Some("Y3Vyc29yOnYyOpHOAAE=".into());
        streams[0].reached = Some("repo-0042".into());
        (streams[1].page_size, streams[1].tries) = (50, 2);
        streams[2].done = true;
        streams[2].again = true;
        let text = encode_streams(&streams);
        assert_eq!(decode_streams(&text), Some(streams));
        let whole = vec![Stream::new(None, End::Front, 0)];
        assert_eq!(decode_streams(&encode_streams(&whole)), Some(whole));
        for bad in [
            "12\tf\t\t100\t0\t\t0\t5\t0",
            "0\tx\t\t100\t0\t\t0\t5\t0",
            "0\tf\t\t0\t0\t\t0\t5\t0",
            "0\tf\t\t101\t0\t\t0\t5\t0",
            "0\tf\t\t100\t0\t\t\t5\t0",
            "0\tf\t\t100\t0\t\t0\t-5\t0",
            "0\tf\t\t100\t0\t\t0\t5\t2",
            "0\tf\t\t100\t0\t\t0\t5",
        ] {
            assert_eq!(decode_streams(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn streams_advance_until_their_end_or_until_the_two_ends_meet() {
        let mut s = plan(&counts(250, 0, 50, 0), 4, 99);
        s[2].tries = 1;
        // The small part: one page, no more.
        advance(&mut s, 2, &["p1", "p2"], Some("c2".into()), false);
        assert!(s[2].done);
        assert_eq!(
            s[2].tries, 0,
            "a page read starts the count of failed tries again"
        );
        // The large part from both ends: a..m from the front, n..z from the back: not met yet.
        advance(&mut s, 0, &["a", "m"], Some("c0".into()), true);
        advance(&mut s, 1, &["n", "z"], Some("c1".into()), true);
        assert!(!s[0].done && !s[1].done);
        assert_eq!(s[0].cursor.as_deref(), Some("c0"));
        assert_eq!(s[1].reached.as_deref(), Some("n"));
        // The front's page holds the name the back reached (in any case): both stop.
        advance(&mut s, 0, &["m-1", "N", "o"], Some("c0b".into()), true);
        assert!(s[0].done && s[1].done);
        // Names are never ordered: `a_b` and `aab` sort apart in GitHub's order and ours, so
        // only a name read from both ends tells that they met.
        let mut t = plan(&counts(250, 0, 0, 0), 4, 99);
        advance(&mut t, 1, &["a_b", "z"], Some("b1".into()), true);
        advance(&mut t, 0, &["a", "aab"], Some("f1".into()), true);
        assert!(
            !t[0].done && !t[1].done,
            "aab is past a_b by bytes, not by GitHub"
        );
        // The back's next page reaches the front's: met.
        advance(&mut t, 1, &["aab", "a_a"], Some("b2".into()), true);
        assert!(t[0].done && t[1].done);
        // One end that reached the far end of the part on its own stops the other.
        let mut u = plan(&counts(250, 0, 0, 0), 4, 99);
        advance(&mut u, 1, &["x", "z"], Some("b1".into()), true);
        advance(&mut u, 0, &["a", "b"], None, false);
        assert!(u[0].done && u[1].done);
        // A page with nothing keeps the cursor it had.
        let mut one = vec![Stream::new(None, End::Front, 0)];
        advance(&mut one, 0, &[], None, true);
        assert_eq!(one[0].cursor, None);
        assert!(!one[0].done);
    }

    #[test]
    fn a_part_is_read_again_only_beyond_the_changes_heard() {
        assert!(!recount(500, 500, 0));
        assert!(!recount(500, 498, 2));
        assert!(recount(500, 497, 2));
        assert!(recount(500, 503, 2));
    }
}

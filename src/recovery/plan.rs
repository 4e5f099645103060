//! Delivery recovery's rules, pure: what one hook's state holds between cron runs, how a run's
//! pages of deliveries (newest first) are read down to the hook's high-water mark and grouped
//! by `guid`, and which guids are asked again (DESIGN.md, "Delivery recovery").

use crate::forge::github::deliveries::Delivery;
use crate::forge::github::webhook::acted_on;

/// The first run looks back this far (as GitHub's own script does); older failures are left to
/// the rebuild.
pub const FIRST_LOOK_BACK_MS: u64 = 24 * 3_600_000;
/// GitHub keeps deliveries (and lets them be redelivered) this long.
pub const RETENTION_MS: u64 = 3 * 24 * 3_600_000;
/// List pages read per hook per run.
pub const MAX_PAGES: u32 = 10;
/// Redeliveries asked per hook per run.
pub const MAX_REDELIVERIES: usize = 20;
/// Tries per guid before it is given up.
pub const MAX_TRIES: u8 = 3;
/// A hook whose list answered 401/403/404 is not asked again for this long.
pub const NOT_PERMITTED_MS: u64 = 3_600_000;
/// Guids remembered per hook (tried, or waiting for a later run's redelivery budget).
pub const MAX_REMEMBERED: usize = 500;

/// What forgelens keeps per hook between runs (stored as lines, not serde: see `encode`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookState {
    /// The high-water mark: `delivered_at` of the newest delivery covered.
    pub checked_until_ms: Option<u64>,
    /// A run stopped at the page cap before reaching the mark: where the next goes on.
    pub resume: Option<Resume>,
    pub tries: Vec<Try>,
    pub not_permitted_until_ms: Option<u64>,
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub cursor: String,
    /// The newest delivery the interrupted scan read: the mark once the gap below it is covered.
    pub newest_ms: u64,
}

/// A guid asked again (or waiting to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Try {
    pub guid: String,
    /// The newest attempt's id (what `…/attempts` is asked with).
    pub id: u64,
    pub count: u8,
    pub first_ms: u64,
    /// Still to be asked: its last `…/attempts` was refused, or the run's budget ran out.
    pub pending: bool,
}

/// The last run's counts, as `/v1/status` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRun {
    pub at_ms: u64,
    pub failed_found: u32,
    pub redelivered: u32,
    pub gave_up: u32,
    pub permitted: bool,
}

impl HookState {
    /// One line per part (`mark`, `resume`, `denied`, `run`, `try`); text that cannot hold in a
    /// line (a cursor or guid with a line break) is left out. Hand-written rather than serde's
    /// derives, which cost the wasm several KB for four small structs.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Some(m) = self.checked_until_ms {
            out.push(format!("mark {m}"));
        }
        if let Some(r) = self.resume.as_ref().filter(|r| !r.cursor.contains('\n')) {
            out.push(format!("resume {} {}", r.newest_ms, r.cursor));
        }
        if let Some(u) = self.not_permitted_until_ms {
            out.push(format!("denied {u}"));
        }
        if let Some(r) = &self.last_run {
            out.push(format!(
                "run {} {} {} {} {}",
                r.at_ms,
                r.failed_found,
                r.redelivered,
                r.gave_up,
                u8::from(r.permitted)
            ));
        }
        for t in self.tries.iter().filter(|t| !t.guid.contains('\n')) {
            out.push(format!(
                "try {} {} {} {} {}",
                t.id,
                t.count,
                t.first_ms,
                u8::from(t.pending),
                t.guid
            ));
        }
        out.join("\n")
    }

    /// `None` when any line does not read (the text is ours: a surprise is refused whole).
    pub fn decode(text: &str) -> Option<HookState> {
        let mut state = HookState::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (kind, rest) = line.split_once(' ')?;
            let mut words = rest.splitn(5, ' ');
            let mut num = || words.next()?.parse::<u64>().ok();
            match kind {
                "mark" => state.checked_until_ms = Some(num()?),
                "denied" => state.not_permitted_until_ms = Some(num()?),
                "resume" => {
                    let (newest, cursor) = rest.split_once(' ')?;
                    state.resume = Some(Resume {
                        cursor: cursor.to_string(),
                        newest_ms: newest.parse().ok()?,
                    });
                }
                "run" => {
                    let at_ms = num()?;
                    let mut count = || u32::try_from(num()?).ok();
                    let (failed_found, redelivered, gave_up) = (count()?, count()?, count()?);
                    state.last_run = Some(LastRun {
                        at_ms,
                        failed_found,
                        redelivered,
                        gave_up,
                        permitted: words.next()? == "1",
                    });
                }
                "try" => {
                    let (id, count, first_ms) = (num()?, num()?, num()?);
                    let pending = words.next()? == "1";
                    state.tries.push(Try {
                        guid: words.next()?.to_string(),
                        id,
                        count: u8::try_from(count).ok()?,
                        first_ms,
                        pending,
                    });
                }
                _ => return None,
            }
        }
        Some(state)
    }
}

/// One guid's attempts as read in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub guid: String,
    pub newest_id: u64,
    pub succeeded: bool,
    pub acted_on: bool,
}

/// A run's reading of one hook's list, page by page.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Deliveries at or before this are covered already.
    floor_ms: u64,
    newest_ms: Option<u64>,
    pub groups: Vec<Group>,
    /// The mark was reached (or the list ended): the gap is covered.
    pub covered: bool,
}

impl Scan {
    /// A scan of `state`'s hook at `now_ms`: down to its mark (the first run: a day back; never
    /// past GitHub's three days), starting where an interrupted run stopped.
    pub fn new(state: &HookState, now_ms: u64) -> Scan {
        let floor = state
            .checked_until_ms
            .unwrap_or(now_ms.saturating_sub(FIRST_LOOK_BACK_MS))
            .max(now_ms.saturating_sub(RETENTION_MS));
        Scan {
            floor_ms: floor,
            newest_ms: state.resume.as_ref().map(|r| r.newest_ms),
            groups: Vec::new(),
            covered: false,
        }
    }

    /// Takes in one page; returns whether to read the next (the mark is not reached yet).
    pub fn read(&mut self, page: &[Delivery]) -> bool {
        for d in page {
            // A timestamp that does not read counts as new: it is looked at, never skipped.
            let at = d.at_ms().unwrap_or(u64::MAX);
            if at <= self.floor_ms {
                self.covered = true;
                return false;
            }
            if at != u64::MAX {
                self.newest_ms = Some(self.newest_ms.map_or(at, |n| n.max(at)));
            }
            match self.groups.iter_mut().find(|g| g.guid == d.guid) {
                Some(g) => {
                    g.succeeded |= d.succeeded();
                    g.newest_id = g.newest_id.max(d.id);
                }
                None => self.groups.push(Group {
                    guid: d.guid.clone(),
                    newest_id: d.id,
                    succeeded: d.succeeded(),
                    acted_on: acted_on(&d.event, d.action.as_deref()),
                }),
            }
        }
        true
    }

    /// The list has no older page.
    pub fn ended(&mut self) {
        self.covered = true;
    }

    /// Guids none of whose attempts read here succeeded, for events forgelens acts on.
    pub fn failed(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(|g| g.acted_on && !g.succeeded)
    }

    /// Where the state goes after the scan: the mark moves up once the gap is covered;
    /// otherwise the next run goes on from `cursor`.
    pub fn advance(&self, state: &mut HookState, cursor: Option<String>) {
        if self.covered {
            if let Some(n) = self.newest_ms {
                state.checked_until_ms = Some(state.checked_until_ms.map_or(n, |m| m.max(n)));
            }
            state.resume = None;
        } else if let (Some(cursor), Some(newest_ms)) = (cursor, self.newest_ms) {
            state.resume = Some(Resume { cursor, newest_ms });
        }
    }
}

/// What a run asks again, and what it gives up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// (guid, attempt id) to `POST …/attempts`, at most `MAX_REDELIVERIES`.
    pub redeliver: Vec<(String, u64)>,
    pub gave_up: u32,
}

/// Folds the failures `scan` found into `state.tries` (a guid whose newest attempt succeeded
/// is done) and picks what this run asks: pending ones first, oldest first, up to the cap; the
/// rest wait, pending, for a later run. A guid tried `MAX_TRIES` times is given up.
pub fn plan(state: &mut HookState, scan: &Scan, now_ms: u64) -> Plan {
    state
        .tries
        .retain(|t| t.first_ms.saturating_add(RETENTION_MS) > now_ms);
    for g in &scan.groups {
        if g.succeeded {
            state.tries.retain(|t| t.guid != g.guid);
        }
    }
    let mut out = Plan::default();
    for g in scan.failed() {
        let remembered = state.tries.len();
        match state.tries.iter_mut().find(|t| t.guid == g.guid) {
            Some(t) => {
                // Asked before, and its redelivery failed again: once more, unless spent.
                t.id = t.id.max(g.newest_id);
                if t.count >= MAX_TRIES {
                    if t.pending {
                        t.pending = false;
                    }
                    continue;
                }
                t.pending = true;
            }
            None if remembered < MAX_REMEMBERED => state.tries.push(Try {
                guid: g.guid.clone(),
                id: g.newest_id,
                count: 0,
                first_ms: now_ms,
                pending: true,
            }),
            None => out.gave_up += 1,
        }
    }
    for t in state.tries.iter_mut().filter(|t| t.pending) {
        if t.count >= MAX_TRIES {
            t.pending = false;
            out.gave_up += 1;
        } else if out.redeliver.len() < MAX_REDELIVERIES {
            out.redeliver.push((t.guid.clone(), t.id));
        }
    }
    out
}

/// Records how asking for `guid` again went (`accepted`: `…/attempts` answered 2xx). A refused
/// one stays pending for a later run, until `MAX_TRIES`. Returns whether it was given up.
pub fn tried(state: &mut HookState, guid: &str, accepted: bool) -> bool {
    let Some(t) = state.tries.iter_mut().find(|t| t.guid == guid) else {
        return false;
    };
    t.count = t.count.saturating_add(1);
    t.pending = !accepted && t.count < MAX_TRIES;
    !accepted && t.count >= MAX_TRIES
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const NOW: u64 = 1_765_000_000_000;

    fn at(ms: u64) -> String {
        crate::time::format_rfc3339(ms)
    }

    fn d(id: u64, guid: &str, ago_s: u64, status: u16, event: &str, action: &str) -> Delivery {
        Delivery {
            id,
            guid: guid.into(),
            delivered_at: at(NOW - ago_s * 1000),
            redelivery: false,
            status_code: status,
            event: event.into(),
            action: (!action.is_empty()).then(|| action.into()),
        }
    }

    #[test]
    fn deliveries_are_grouped_by_guid_and_only_unanswered_acted_on_ones_fail() {
        let mut scan = Scan::new(&HookState::default(), NOW);
        let page = [
            d(9, "a", 10, 200, "repository", "privatized"), // a redelivery that worked
            d(8, "b", 20, 0, "repository", "privatized"),
            d(7, "c", 30, 503, "repository", "labeled"), // not acted on
            d(6, "a", 40, 503, "repository", "privatized"),
            d(5, "e", 50, 502, "ping", ""),
            d(4, "f", 60, 500, "push", ""),
            d(3, "b", 70, 500, "repository", "privatized"),
            d(2, "g", 80, 500, "installation", "deleted"),
            d(1, "h", 90, 500, "check_suite", "requested"),
        ];
        assert!(scan.read(&page));
        let failed: Vec<(&str, u64)> = scan
            .failed()
            .map(|g| (g.guid.as_str(), g.newest_id))
            .collect();
        assert_eq!(failed, [("b", 8), ("f", 4), ("g", 2)]);
    }

    #[test]
    fn the_first_run_looks_back_a_day_and_later_runs_stop_at_the_mark() {
        let mut state = HookState::default();
        let mut scan = Scan::new(&state, NOW);
        let day = 24 * 3600;
        let more = scan.read(&[
            d(3, "new", 5, 500, "public", ""),
            d(2, "old", day + 1, 500, "public", ""),
            d(1, "older", day + 2, 500, "public", ""),
        ]);
        assert!(!more && scan.covered, "the day's floor reached");
        assert_eq!(scan.failed().count(), 1);
        scan.advance(&mut state, None);
        assert_eq!(state.checked_until_ms, Some(NOW - 5_000));
        // The next run reads down to the mark, not past it.
        let mut scan = Scan::new(&state, NOW + 300_000);
        assert!(!scan.read(&[
            d(4, "n2", 1, 500, "public", ""),
            d(3, "new", 5, 500, "public", "")
        ]));
        assert_eq!(scan.groups.len(), 1);
        // Never past GitHub's three days, whatever the mark says.
        let stale = HookState {
            checked_until_ms: Some(NOW - 10 * day * 1000),
            ..HookState::default()
        };
        let mut scan = Scan::new(&stale, NOW);
        assert!(!scan.read(&[d(1, "x", 3 * day + 1, 500, "public", "")]));
    }

    #[test]
    fn a_run_stopped_at_the_page_cap_resumes_before_moving_the_mark() {
        let mut state = HookState {
            checked_until_ms: Some(NOW - 1_000_000),
            ..HookState::default()
        };
        let mut scan = Scan::new(&state, NOW);
        assert!(scan.read(&[d(5, "p", 10, 200, "public", "")]));
        // Stopped at the cap with a cursor left: the mark stays.
        scan.advance(&mut state, Some("c1".into()));
        assert_eq!(state.checked_until_ms, Some(NOW - 1_000_000));
        assert_eq!(
            state.resume,
            Some(Resume {
                cursor: "c1".into(),
                newest_ms: NOW - 10_000
            })
        );
        // The next run goes on from the cursor; once it reaches the mark, the mark moves to the
        // newest delivery the interrupted run read.
        let mut scan = Scan::new(&state, NOW + 300_000);
        assert!(!scan.read(&[
            d(4, "q", 500, 200, "public", ""),
            d(3, "r", 2_000, 200, "public", "")
        ]));
        scan.advance(&mut state, None);
        assert_eq!(state.checked_until_ms, Some(NOW - 10_000));
        assert_eq!(state.resume, None);
    }

    #[test]
    fn a_guid_is_tried_at_most_three_times_and_the_cap_leaves_the_rest_pending() {
        let mut state = HookState::default();
        let mut scan = Scan::new(&state, NOW);
        let page: Vec<Delivery> = (0..25)
            .map(|i| d(100 - i, &format!("g{i}"), 10 + i, 500, "public", ""))
            .collect();
        scan.read(&page);
        let p = plan(&mut state, &scan, NOW);
        assert_eq!(p.redeliver.len(), MAX_REDELIVERIES);
        for (guid, _) in &p.redeliver {
            assert!(!tried(&mut state, guid, true));
        }
        assert_eq!(state.tries.iter().filter(|t| t.pending).count(), 5);
        // The next run asks the five left, and the redeliveries that failed again.
        let mut scan = Scan::new(&HookState::default(), NOW);
        scan.read(&[d(200, "g0", 1, 500, "public", "")]);
        let p = plan(&mut state, &scan, NOW + 300_000);
        assert_eq!(p.redeliver.len(), 6);
        assert!(
            p.redeliver.contains(&("g0".into(), 200)),
            "the newest attempt"
        );
        // g0 fails twice more: then it is given up.
        assert!(!tried(&mut state, "g0", false));
        assert!(tried(&mut state, "g0", false));
        let p = plan(&mut state, &scan, NOW + 600_000);
        assert!(!p.redeliver.iter().any(|(g, _)| g == "g0"));
        // A redelivery that worked ends the guid.
        let mut ok = Scan::new(&HookState::default(), NOW);
        ok.read(&[d(300, "g1", 1, 202, "public", "")]);
        plan(&mut state, &ok, NOW + 900_000);
        assert!(!state.tries.iter().any(|t| t.guid == "g1"));
        // Remembered three days, then forgotten.
        plan(&mut state, &Scan::default(), NOW + RETENTION_MS);
        assert!(state.tries.is_empty());
    }

    #[test]
    fn state_survives_its_stored_text() {
        let state = HookState {
            checked_until_ms: Some(5),
            resume: Some(Resume {
                cursor: "v1 c+/= with spaces".into(),
                newest_ms: 9,
            }),
            tries: vec![Try {
                guid: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
                id: 20_000_000_001,
                count: 1,
                first_ms: 3,
                pending: true,
            }],
            not_permitted_until_ms: Some(7),
            last_run: Some(LastRun {
                at_ms: 11,
                failed_found: 2,
                redelivered: 1,
                gave_up: 0,
                permitted: true,
            }),
        };
        assert_eq!(HookState::decode(&state.encode()), Some(state));
        assert_eq!(HookState::decode(""), Some(HookState::default()));
        for bad in [
            "mark x",
            "what 1",
            "try 1 2 3 1",
            "run 1 2 3",
            "try 1 300 3 1 g",
        ] {
            assert_eq!(HookState::decode(bad), None, "{bad}");
        }
    }
}

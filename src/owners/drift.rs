//! Drift: what a full rebuild found that the live listing it replaces did not show, counted by
//! kind — changes the cache missed. Read off the rebuild the cache makes anyway (no upstream
//! request); a name heard of during the rebuild is explained by that change, not drift. Pure.

use super::events;
use crate::model::{OwnerListing, Repo};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The object's storage key of its `DriftLog`.
pub const DRIFT_KEY: &str = "drift";
/// How long rebuilds are summed over.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Differences by kind. A record counts once under each kind in which it differs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The listing showed a record more visible than GitHub does (public → private or
    /// internal), or one GitHub no longer has.
    pub narrowed: u32,
    /// GitHub shows a record more visible than the listing did.
    pub widened: u32,
    /// Archived, disabled, default branch or CI state differ.
    pub state: u32,
    /// GitHub has a repository the listing lacked.
    pub added: u32,
}

impl Drift {
    pub fn is_zero(&self) -> bool {
        *self == Drift::default()
    }

    fn add(&mut self, other: &Drift) {
        self.narrowed += other.narrowed;
        self.widened += other.widened;
        self.state += other.state;
        self.added += other.added;
    }
}

/// `old` (the live listing) against `new` (the rebuild), names in `heard` (lowercased) left out.
pub fn measure(old: &OwnerListing, new: &OwnerListing, heard: &HashSet<String>) -> Drift {
    let mut drift = Drift::default();
    events::walk(&old.repos, &new.repos, |was, now| {
        let name = was
            .or(now)
            .map_or(String::new(), |r| r.name().to_ascii_lowercase());
        if heard.contains(&name) {
            return;
        }
        match (was, now) {
            (Some(_), None) => drift.narrowed += 1,
            (None, Some(_)) => drift.added += 1,
            (Some(was), Some(now)) => {
                let (a, b) = (was.is_public(), now.is_public());
                if a && !b {
                    drift.narrowed += 1;
                }
                if !a && b {
                    drift.widened += 1;
                }
                let state = |r: &Repo| {
                    (
                        r.archived,
                        r.disabled,
                        r.default_branch().map(str::to_string),
                        r.ci().and_then(|c| c.state),
                    )
                };
                if state(was) != state(now) {
                    drift.state += 1;
                }
            }
            (None, None) => {}
        }
    });
    drift
}

/// The log line of a rebuild that found drift.
pub fn log(owner: &str, drift: &Drift) {
    // Keys sorted (`crate::log::line`).
    #[derive(Serialize)]
    struct Line<'a> {
        added: u32,
        level: &'a str,
        msg: &'a str,
        narrowed: u32,
        owner: &'a str,
        state: u32,
        widened: u32,
    }
    crate::log::line(&Line {
        added: drift.added,
        level: "warn",
        msg: "drift",
        narrowed: drift.narrowed,
        owner,
        state: drift.state,
        widened: drift.widened,
    });
}

/// The drift of recent rebuilds: the last one's, and each within the last 24 h (for the sums).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftLog {
    pub last_rebuild_at_ms: Option<u64>,
    pub last: Drift,
    /// (rebuilt at, drift) of rebuilds that found any, within the last 24 h.
    pub recent: Vec<(u64, Drift)>,
}

impl DriftLog {
    /// Notes a rebuild completed at `now_ms` that found `drift`.
    pub fn record(&mut self, now_ms: u64, drift: Drift) {
        self.last_rebuild_at_ms = Some(now_ms);
        self.last = drift;
        self.recent
            .retain(|(at, _)| at.saturating_add(DAY_MS) > now_ms);
        if !drift.is_zero() {
            self.recent.push((now_ms, drift));
        }
    }

    /// The sum over rebuilds within the 24 h before `now_ms`.
    pub fn last_24h(&self, now_ms: u64) -> Drift {
        let mut sum = Drift::default();
        for (at, d) in &self.recent {
            if at.saturating_add(DAY_MS) > now_ms {
                sum.add(d);
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Ci, CiState, RepoFields, Visibility};

    fn repo(name: &str, visibility: Visibility, archived: bool, ci: Option<CiState>) -> Repo {
        let full = format!("acme/{name}");
        Repo::new(RepoFields {
            name,
            owner: "acme",
            full_name: &full,
            url: "https://github.com/acme/x",
            description: None,
            visibility,
            archived,
            disabled: false,
            fork: false,
            default_branch: Some("main"),
            pushed_at: None,
            updated_at: None,
            language: None,
            ci: ci.map(|state| Ci {
                state: Some(state),
                sha: "abc",
            }),
        })
    }

    fn listing(repos: Vec<Repo>) -> OwnerListing {
        OwnerListing {
            login: "acme".into(),
            repos,
            revalidated_at_ms: None,
            changed: Default::default(),
        }
    }

    use Visibility::{Internal, Private, Public};

    #[test]
    fn each_kind_counted_once_per_record() {
        let old = listing(vec![
            repo("a", Public, false, None),
            repo("b", Public, false, None),
            repo("c", Private, false, None),
            repo("d", Public, false, Some(CiState::Success)),
            repo("e", Public, false, None),
            repo("gone", Private, false, None),
            repo("same", Public, true, None),
        ]);
        let new = listing(vec![
            // privatized and archived: narrowed and state
            repo("a", Private, true, None),
            // made internal: narrowed
            repo("B", Internal, false, None),
            // publicized: widened
            repo("c", Public, false, None),
            // CI went red: state
            repo("d", Public, false, Some(CiState::Failure)),
            repo("e", Public, false, None),
            repo("new", Public, false, None),
            repo("same", Public, true, None),
        ]);
        let d = measure(&old, &new, &HashSet::new());
        assert_eq!(
            d,
            Drift {
                narrowed: 3,
                widened: 1,
                state: 2,
                added: 1
            }
        );
        // Names heard during the rebuild are explained by what was heard.
        let heard: HashSet<String> = ["a", "gone", "new"].map(String::from).into();
        let d = measure(&old, &new, &heard);
        assert_eq!(
            d,
            Drift {
                narrowed: 1,
                widened: 1,
                state: 1,
                added: 0
            }
        );
        assert!(
            measure(&new, &new, &HashSet::new()).is_zero(),
            "a control rebuild finds none"
        );
    }

    #[test]
    fn the_log_keeps_the_last_and_sums_a_day() {
        let mut log = DriftLog::default();
        let one = Drift {
            narrowed: 1,
            ..Drift::default()
        };
        log.record(1_000, one);
        log.record(2_000, Drift::default());
        assert_eq!(log.last_rebuild_at_ms, Some(2_000));
        assert!(log.last.is_zero());
        assert_eq!(log.last_24h(2_000), one);
        log.record(3_000, one);
        assert_eq!(log.last_24h(3_000).narrowed, 2);
        assert_eq!(
            log.last_24h(1_000 + DAY_MS).narrowed,
            1,
            "the first left the day"
        );
        log.record(3_000 + DAY_MS, Drift::default());
        assert!(log.last_24h(3_000 + DAY_MS).is_zero());
        assert!(log.recent.is_empty(), "older rebuilds are forgotten");
    }
}

//! A live listing: the complete listing a directory keeps after its build, record by record with
//! the time GitHub was asked for each, so a repository-level change rewrites one record (and the
//! stored page holding it), never the listing. Also the stored forms of its pages and of the
//! changes waiting to be applied. Pure: no I/O, no clock.
//!
//! **Merge rule**: where two copies of a record meet (a build page, a revalidation, a narrowing
//! fact from a delivery), the one asked later wins; a removal is a copy too.

use crate::forge;
use crate::json::{Codec, Writer};
use crate::model::{Changed, OwnerListing, Part, Repo, Visibility};
pub use crate::names::cmp_names;
use crate::names::RepoName;
pub use crate::service::directories::Change;

/// Storage keys of a live listing (the build's are in `build`).
pub const LIVE_KEY: &str = "live";
/// Changes heard and not yet in the listing (GitHub failed, or no listing was complete yet).
pub const QUEUE_KEY: &str = "queue";
/// Changes heard since the build in progress began: revalidated before its listing is kept.
pub const SINCE_KEY: &str = "since";
/// Narrowing facts heard in the last `FACT_HOLDS_MS`: a later life of the object still holds a
/// build that starts within GitHub's lag to them.
pub const FACTS_KEY: &str = "facts";
/// Present when KV refused the live listing's last write (written again by the alarm).
pub const UNPUBLISHED_KEY: &str = "unpublished";

/// A stored page of slot `slot` (a build writes the slot the live listing does not use).
pub fn page_key(slot: u8, i: u32) -> String {
    format!("{slot}:{i:05}")
}

/// A complete listing and, per record, when GitHub was asked for it and which stored page it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub listing: OwnerListing,
    /// Per record: when GitHub was asked for it, and the stored page holding it.
    pub rows: Vec<(u64, u32)>,
    /// When its full build began: the listing's `fetched_at`.
    pub started_at_ms: u64,
    pub slot: u8,
    pub pages: u32,
    /// Records removed since the build, lowercased, with when: an answer asked before a removal
    /// does not bring the record back (kept in memory until the next build).
    pub removed: Vec<(String, u64)>,
    /// Narrowing facts younger than `FACT_HOLDS_MS` (by the last answer's ask time).
    pub facts: Vec<Narrowed>,
}

/// What pushing a build's pages found: the stored pages holding a copy dropped for a later one
/// (to be stored again without it), and the distinct names read in each part.
#[derive(Debug, Default)]
pub struct Pushed {
    pub stale: Vec<u32>,
    pub parts: [u64; 12],
}

impl Pushed {
    fn count(&mut self, part: Option<usize>) {
        if let Some(n) = part.and_then(|p| self.parts.get_mut(p)) {
            *n += 1;
        }
    }
}

/// The place of `repo`'s part in `Part::all`.
fn part_of(repo: &Repo) -> Option<usize> {
    Part::all().iter().position(|p| p.holds(repo))
}

/// What one change or answer does to one record.
#[derive(Debug, Clone)]
pub enum Patch {
    /// GitHub's answer: the record as it is.
    Record(Repo),
    /// GitHub's answer: no such repository for this owner (deleted, or moved away).
    Missing,
    /// A delivery's narrowing fact: the repository was made private.
    Private,
    /// A delivery's narrowing fact: the repository left this owner's listing.
    Removed,
}

/// How long a narrowing fact holds against GitHub's answers: one asked sooner may come from
/// before the change (GitHub's API briefly lags it), so it cannot undo the fact.
pub const FACT_HOLDS_MS: u64 = 5_000;

/// What applying one copy did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The stored page rewritten, if any.
    pub page: Option<u32>,
    /// Which scopes' views changed (`Changed::reach`: all, public, redacted).
    pub reach: [bool; 3],
    /// The record's copies before and after (`None`: absent) when the change reached a scope:
    /// what its subscribers are told (`events::Feeds::change`).
    pub turn: Option<Turn>,
    /// An answer not applied because it could predate a narrowing fact: ask again then.
    pub held_until: Option<u64>,
}

/// A record's copies before and after a change (`None`: absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub old: Option<Repo>,
    pub new: Option<Repo>,
}

impl Applied {
    /// The change from `old` to `new` (on page `page`), recording its copies when it reached a
    /// scope.
    fn turned(page: u32, old: Option<&Repo>, new: Option<&Repo>) -> Applied {
        let reach = Changed::reach(old, new);
        Applied {
            page: Some(page),
            reach,
            turn: reach.contains(&true).then(|| Turn {
                old: old.cloned(),
                new: new.cloned(),
            }),
            held_until: None,
        }
    }
}

/// A narrowing fact heard for a name (lowercased): when, and whether it removed the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrowed {
    pub name: String,
    pub at_ms: u64,
    pub removed: bool,
}

impl Live {
    /// The stored meta line: `{slot} {pages} {started} {revalidated or 0} {login}`.
    pub fn meta(&self) -> String {
        let revalidated = self.listing.revalidated_at_ms.unwrap_or(0);
        let (slot, pages, started) = (self.slot, self.pages, self.started_at_ms);
        let c = self.listing.changed;
        let [all, public, redacted] = [c.all, c.public, c.redacted].map(|t| t.unwrap_or(0));
        format!(
            "{slot} {pages} {started} {revalidated} {} {all},{public},{redacted}",
            self.listing.login
        )
    }

    /// The listing from its meta line and stored pages (`None`: something is missing).
    pub fn load(meta: &str, pages: &[Option<String>]) -> Option<Live> {
        let (slot, count, started, revalidated, login, changed) = read_meta(meta)?;
        if pages.len() as u64 != count {
            return None;
        }
        let mut live = Live {
            listing: OwnerListing {
                login,
                repos: Vec::new(),
                revalidated_at_ms: (revalidated > 0).then_some(revalidated),
                changed,
            },
            rows: Vec::new(),
            started_at_ms: started,
            slot,
            pages: u32::try_from(count).ok()?,
            removed: Vec::new(),
            facts: Vec::new(),
        };
        for (i, text) in pages.iter().enumerate() {
            let (asked, repos) = decode_page(text.as_deref()?)?;
            // A copy dropped here was dropped when the build was assembled, and its page
            // stored again without it.
            live.push_page(u32::try_from(i).ok()?, asked, repos, &mut Pushed::default());
        }
        Some(live)
    }

    /// Adds a page's records in name order. GitHub's order is nearly ours (its case rules
    /// differ), so a record is appended, or inserted where it belongs when it is out of order:
    /// cheaper in wasm than a sort carrying the rows along, and linear in the usual case. A name
    /// already held (the two ends of a part that met, or a repository read in two parts as it
    /// moved between them) is kept once, the later ask winning (on a tie, the later page): the
    /// page the other copy is stored in is added to `stale`, to be stored again without it.
    pub(super) fn push_page(
        &mut self,
        i: u32,
        asked: Vec<u64>,
        repos: Vec<Repo>,
        seen: &mut Pushed,
    ) {
        let last = asked.last().copied().unwrap_or(0);
        for (k, repo) in repos.into_iter().enumerate() {
            let row = (asked.get(k).copied().unwrap_or(last), i);
            let part = part_of(&repo);
            let in_order = self
                .listing
                .repos
                .last()
                .is_none_or(|prev| cmp_names(prev.name(), repo.name()).is_lt());
            let at = if in_order {
                Err(self.listing.repos.len())
            } else {
                self.find(repo.name())
            };
            match at {
                Err(at) => {
                    self.listing.repos.insert(at, repo);
                    self.rows.insert(at, row);
                    seen.count(part);
                }
                Ok(at) => {
                    let (Some(held), Some(copy)) =
                        (self.rows.get_mut(at), self.listing.repos.get(at))
                    else {
                        continue;
                    };
                    // Read again in the same part (two ends that met): one name, counted once.
                    if part_of(copy) != part {
                        seen.count(part);
                    }
                    if row.0 >= held.0 {
                        seen.stale.push(held.1);
                        *held = row;
                        if let Some(slot) = self.listing.repos.get_mut(at) {
                            *slot = repo;
                        }
                    } else {
                        seen.stale.push(i);
                    }
                }
            }
        }
    }

    /// A change patched the listing at `at_ms`: its `revalidated_at`, strictly later than the
    /// last (copies of the listing are told apart by it, see `entry::peek_revalidated_at`).
    pub fn touch(&mut self, at_ms: u64) {
        let after = self.listing.revalidated_at_ms.map_or(0, |t| t + 1);
        self.listing.revalidated_at_ms = Some(at_ms.max(after).max(self.started_at_ms));
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.listing
            .repos
            .binary_search_by(|r| cmp_names(r.name(), name))
    }

    /// Applies `copy` of record `name`, asked (or, for a fact, heard) at `asked_ms`, by the
    /// merge rule: unless the listing holds a later copy, and unless it is an answer that could
    /// predate a narrowing fact it would undo (see `FACT_HOLDS_MS`).
    pub fn apply(&mut self, name: &str, copy: Patch, asked_ms: u64) -> Applied {
        match copy {
            Patch::Private | Patch::Removed => self.apply_fact(name, copy, asked_ms),
            Patch::Record(repo) if cmp_names(repo.name(), name).is_eq() => {
                self.apply_answer(name, Some(repo), asked_ms)
            }
            // Missing, or answered under another name (GitHub follows renames).
            _ => self.apply_answer(name, None, asked_ms),
        }
    }

    /// A narrowing fact heard at `at_ms`: applied unless GitHub was asked about the record long
    /// enough after it to have answered with the change in (then its answer stands).
    fn apply_fact(&mut self, name: &str, fact: Patch, at_ms: u64) -> Applied {
        let removed = matches!(fact, Patch::Removed);
        let lower = name.to_ascii_lowercase();
        let mut out = Applied::default();
        if let Ok(i) = self.find(name) {
            let (Some(row), Some(repo)) = (self.rows.get_mut(i), self.listing.repos.get_mut(i))
            else {
                return out;
            };
            if row.0 >= at_ms.saturating_add(FACT_HOLDS_MS) {
                return out;
            }
            row.0 = row.0.max(at_ms);
            out.page = Some(row.1);
            if removed {
                out = Applied::turned(row.1, Some(repo), None);
                self.listing.repos.remove(i);
                self.rows.remove(i);
            } else if repo.is_public() {
                let old = repo.clone();
                repo.visibility = Visibility::Private;
                out = Applied::turned(row.1, Some(&old), Some(repo));
            }
        }
        if removed {
            self.removed.retain(|(n, _)| *n != lower);
            self.removed.push((lower.clone(), at_ms));
        }
        self.facts.retain(|f| f.name != lower);
        self.facts.push(Narrowed {
            name: lower,
            at_ms,
            removed,
        });
        out
    }

    /// GitHub's answer for `name` asked at `asked_ms`: the record, or `None` when it is not
    /// this owner's.
    fn apply_answer(&mut self, name: &str, new: Option<Repo>, asked_ms: u64) -> Applied {
        let mut out = Applied::default();
        // Facts old enough to have been answered go (the list stays short).
        self.facts
            .retain(|f| f.at_ms.saturating_add(FACT_HOLDS_MS) > asked_ms);
        let widens = new.as_ref().is_some_and(Repo::is_public);
        let held = self
            .facts
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name) && (f.removed || widens));
        if let Some(f) = held {
            out.held_until = Some(f.at_ms.saturating_add(FACT_HOLDS_MS));
            return out;
        }
        match (self.find(name), new) {
            (Ok(i), new) => {
                let Some(row) = self.rows.get_mut(i) else {
                    return out;
                };
                if row.0 > asked_ms {
                    return out;
                }
                row.0 = asked_ms;
                let page = row.1;
                out.page = Some(page);
                match new {
                    Some(repo) => {
                        let Some(slot) = self.listing.repos.get_mut(i) else {
                            return out;
                        };
                        out = Applied::turned(page, Some(slot), Some(&repo));
                        *slot = repo;
                    }
                    None => {
                        out = Applied::turned(page, self.listing.repos.get(i), None);
                        let lower = name.to_ascii_lowercase();
                        self.removed.retain(|(n, _)| *n != lower);
                        self.removed.push((lower, asked_ms));
                        self.listing.repos.remove(i);
                        self.rows.remove(i);
                    }
                }
            }
            (Err(i), Some(repo)) if !self.removed_after(name, asked_ms) => {
                // A new record joins the page of the record before it.
                let before = i.checked_sub(1).and_then(|p| self.rows.get(p));
                let page = before.map_or(0, |r| r.1);
                out = Applied::turned(page, None, Some(&repo));
                self.listing.repos.insert(i, repo);
                self.rows.insert(i, (asked_ms, page));
            }
            _ => {}
        }
        out
    }

    /// Marks the scopes `reach`ed by a change at `at_ms` (their `revalidated_at`).
    pub fn mark(&mut self, reach: [bool; 3], at_ms: u64) {
        self.listing.changed.mark(reach, at_ms);
    }

    fn removed_after(&self, name: &str, asked_ms: u64) -> bool {
        self.removed
            .iter()
            .any(|(n, at)| *at > asked_ms && n.eq_ignore_ascii_case(name))
    }

    /// The stored text of page `i`: `{asked,…}\n[records]`.
    pub fn encode_page(&self, i: u32) -> String {
        let members: Vec<(&Repo, u64)> = self
            .listing
            .repos
            .iter()
            .zip(&self.rows)
            .filter(|(_, row)| row.1 == i)
            .map(|(repo, row)| (repo, row.0))
            .collect();
        let asked: Vec<String> = members.iter().map(|m| m.1.to_string()).collect();
        let mut out = Writer::with_capacity(256 * members.len() + 16);
        out.raw(&asked.join(","));
        out.byte(b'\n');
        out.array(&members, |m, out| m.0.write_json(out));
        out.finish()
    }
}

/// The meta line's `(slot, pages, started, revalidated, login, changed)` (a line stored before
/// scopes had their own times has no `changed`).
fn read_meta(meta: &str) -> Option<(u8, u64, u64, u64, String, Changed)> {
    let mut parts = meta.split(' ');
    let mut num = || parts.next()?.parse::<u64>().ok();
    let (slot, count, started, revalidated) = (num()?, num()?, num()?, num()?);
    let login = parts.next()?.to_string();
    let mut changed = Changed::default();
    if let Some(times) = parts.next() {
        let t: Vec<Option<u64>> = times
            .split(',')
            .map(|t| t.parse::<u64>().ok().map(|t| (t > 0).then_some(t)))
            .collect::<Option<_>>()?;
        let [all, public, redacted] = <[Option<u64>; 3]>::try_from(t).ok()?;
        changed = Changed {
            all,
            public,
            redacted,
        };
    }
    if parts.next().is_some() {
        return None;
    }
    let slot = u8::try_from(slot).ok()?;
    Some((slot, count, started, revalidated, login, changed))
}

/// Which stored pages a meta line names: `(slot, count)`.
pub fn meta_pages(meta: &str) -> Option<(u8, u32)> {
    let (slot, count, ..) = read_meta(meta)?;
    Some((slot, u32::try_from(count).ok()?))
}

/// A stored page: its records and when each was asked (one time for a whole build page).
pub fn decode_page(text: &str) -> Option<(Vec<u64>, Vec<Repo>)> {
    let (asked, json) = text.split_once('\n')?;
    // A page all of whose records went (dropped for later copies, or removed) has no ask times.
    let asked: Option<Vec<u64>> = match asked {
        "" => Some(Vec::new()),
        times => times.split(',').map(|t| t.parse().ok()).collect(),
    };
    Some((asked?, Vec::<Repo>::from_json(json).ok()?))
}

/// A build page as stored: every record asked at `asked_ms`.
pub fn encode_build_page(asked_ms: u64, repos: &[Repo]) -> String {
    let mut out = Writer::with_capacity(256 * repos.len() + 16);
    out.raw(&asked_ms.to_string());
    out.byte(b'\n');
    out.array(repos, Repo::write_json);
    out.finish()
}

/// Changes as stored and sent: one `{letter} {at_ms} {name}` per line.
pub fn encode_changes(changes: &[Change]) -> String {
    let lines: Vec<String> = changes
        .iter()
        .map(|c| format!("{} {} {}", c.fact.letter(), c.at_ms, c.name.as_str()))
        .collect();
    lines.join("\n")
}

/// `None` when any line is not a change (the wire is ours: a surprise is refused whole).
pub fn decode_changes(text: &str) -> Option<Vec<Change>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let fact = forge::Fact::from_letter(parts.next()?.chars().next()?)?;
            let at_ms = parts.next()?.parse().ok()?;
            let name = RepoName::parse(parts.next()?).ok()?;
            Some(Change { name, fact, at_ms })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::Fact;
    use crate::model::RepoFields;

    fn repo(name: &str, visibility: Visibility) -> Repo {
        Repo::new(RepoFields {
            name,
            owner: "o",
            full_name: &format!("o/{name}"),
            url: "https://github.com/o/x",
            description: None,
            visibility,
            archived: false,
            disabled: false,
            fork: false,
            default_branch: None,
            pushed_at: None,
            updated_at: None,
            language: None,
            ci: None,
        })
    }

    fn live(names: &[&str], asked: u64) -> Live {
        let mut live = Live {
            listing: OwnerListing {
                login: "o".into(),
                repos: Vec::new(),
                revalidated_at_ms: None,
                changed: Changed::default(),
            },
            rows: Vec::new(),
            started_at_ms: asked,
            slot: 0,
            pages: 1,
            removed: Vec::new(),
            facts: Vec::new(),
        };
        let repos = names.iter().map(|n| repo(n, Visibility::Public)).collect();
        live.push_page(0, vec![asked], repos, &mut Pushed::default());
        live
    }

    fn names(live: &Live) -> Vec<String> {
        live.listing
            .repos
            .iter()
            .map(|r| r.name().to_string())
            .collect()
    }

    fn pushed(name: &str, visibility: Visibility, pushed_at: &str) -> Repo {
        Repo::new(RepoFields {
            pushed_at: Some(pushed_at),
            ..repo(name, visibility).fields()
        })
    }

    #[test]
    fn the_later_copy_wins_and_removals_are_copies() {
        use Visibility::{Internal, Private, Public};
        const ALL: [bool; 3] = [true; 3];
        const NONE: [bool; 3] = [false; 3];
        // The listing holds a, b, c (public), asked at 10 s. (name, copy, at, names after, b's
        // visibility after, page rewritten, scopes reached)
        type Case<'a> = (
            &'a str,
            Patch,
            u64,
            Vec<&'a str>,
            Option<Visibility>,
            Option<u32>,
            [bool; 3],
        );
        let abc = || vec!["a", "b", "c"];
        let cases: Vec<Case> = vec![
            (
                "b",
                Patch::Private,
                20_000,
                abc(),
                Some(Private),
                Some(0),
                ALL,
            ),
            // Heard 4 s before the record was asked: GitHub's answer may predate the fact.
            (
                "b",
                Patch::Private,
                6_000,
                abc(),
                Some(Private),
                Some(0),
                ALL,
            ),
            // Heard 6 s before: long enough for the answer to have the change in.
            ("b", Patch::Private, 4_000, abc(), Some(Public), None, NONE),
            (
                "b",
                Patch::Removed,
                20_000,
                vec!["a", "c"],
                None,
                Some(0),
                ALL,
            ),
            ("b", Patch::Removed, 4_000, abc(), Some(Public), None, NONE),
            (
                "b",
                Patch::Missing,
                20_000,
                vec!["a", "c"],
                None,
                Some(0),
                ALL,
            ),
            ("b", Patch::Missing, 5_000, abc(), Some(Public), None, NONE),
            (
                "B",
                Patch::Record(repo("B", Internal)),
                20_000,
                vec!["a", "B", "c"],
                None,
                Some(0),
                ALL,
            ),
            (
                "bb",
                Patch::Record(repo("bb", Public)),
                20_000,
                vec!["a", "b", "bb", "c"],
                Some(Public),
                Some(0),
                ALL,
            ),
            // GitHub answered an old name with the renamed repository: the old name goes.
            (
                "b",
                Patch::Record(repo("z", Public)),
                20_000,
                vec!["a", "c"],
                None,
                Some(0),
                ALL,
            ),
            // The same record asked again: its ask time moves, nobody sees a change.
            (
                "b",
                Patch::Record(repo("b", Public)),
                20_000,
                abc(),
                Some(Public),
                Some(0),
                NONE,
            ),
            (
                "zz",
                Patch::Missing,
                20_000,
                abc(),
                Some(Public),
                None,
                NONE,
            ),
            (
                "zz",
                Patch::Private,
                20_000,
                abc(),
                Some(Public),
                None,
                NONE,
            ),
        ];
        for (name, copy, at, after, b, page, reach) in cases {
            let mut l = live(&["a", "b", "c"], 10_000);
            let applied = l.apply(name, copy.clone(), at);
            assert_eq!(
                (applied.page, applied.reach),
                (page, reach),
                "{name} {copy:?} {at}"
            );
            assert_eq!(names(&l), after, "{name} {copy:?} {at}");
            let found = l.listing.repos.iter().find(|r| r.name() == "b");
            assert_eq!(found.map(|r| r.visibility), b, "{name} {copy:?} {at}");
            assert_eq!(l.rows.len(), l.listing.repos.len());
        }
    }

    #[test]
    fn a_removal_outlives_an_older_answer() {
        let mut l = live(&["a", "b"], 10_000);
        l.apply("b", Patch::Removed, 30_000);
        // A revalidation asked before the removal lands after it: the record does not return.
        let older = l.apply("b", Patch::Record(repo("b", Visibility::Public)), 20_000);
        assert_eq!(older.page, None);
        assert_eq!(names(&l), ["a"]);
        // Private is a narrowing copy: an older public answer does not undo it.
        l.apply("a", Patch::Private, 40_000);
        let older = l.apply("a", Patch::Record(repo("a", Visibility::Public)), 35_000);
        assert_eq!(older.page, None);
        assert_eq!(l.listing.repos[0].visibility, Visibility::Private);
    }

    #[test]
    fn a_narrowing_fact_holds_until_an_answer_asked_5_s_after_it() {
        let public = |n| Patch::Record(repo(n, Visibility::Public));
        let mut l = live(&["a", "b"], 10_000);
        l.apply("b", Patch::Private, 20_000);
        // GitHub lags the change: an answer asked 2 s after the fact still says public.
        let lagging = l.apply("b", public("b"), 22_000);
        assert_eq!(lagging.held_until, Some(25_000), "asked again then");
        assert_eq!(lagging.page, None);
        assert_eq!(l.listing.repos[1].visibility, Visibility::Private);
        // An answer that agrees with the fact is taken at once.
        let agrees = l.apply("b", Patch::Record(repo("b", Visibility::Internal)), 23_000);
        assert_eq!((agrees.held_until, agrees.page), (None, Some(0)));
        // One asked 5 s after the fact decides: it was made public again.
        let later = l.apply("b", public("b"), 25_000);
        assert_eq!((later.held_until, later.page), (None, Some(0)));
        assert_eq!(l.listing.repos[1].visibility, Visibility::Public);
        // A removal holds the same way, even for a name the listing did not hold.
        l.apply("a", Patch::Removed, 30_000);
        l.apply("n", Patch::Removed, 30_000);
        for name in ["a", "n"] {
            assert_eq!(l.apply(name, public(name), 31_000).held_until, Some(35_000));
        }
        assert_eq!(names(&l), ["b"]);
        l.apply("a", public("a"), 35_000);
        assert_eq!(names(&l), ["a", "b"], "created again, as GitHub says");
        assert!(l.facts.len() <= 1, "facts older than 5 s are forgotten");
        // GitHub's own answer that a record is missing is not a fact: a later answer stands.
        l.apply("b", Patch::Missing, 50_000);
        l.apply("b", public("b"), 50_500);
        assert_eq!(names(&l), ["a", "b"]);
    }

    #[test]
    fn activity_on_a_private_record_reaches_only_the_callers_who_see_it() {
        use Visibility::{Internal, Private, Public};
        let mut l = live(&["a"], 10_000);
        l.apply(
            "p",
            Patch::Record(pushed("p", Private, "2026-01-01T00:00:00Z")),
            11_000,
        );
        // (copy of p, scopes reached: all, public (hide mode), redacted)
        let cases = [
            (
                pushed("p", Private, "2026-02-01T00:00:00Z"),
                [true, false, false],
            ),
            (
                pushed("p", Internal, "2026-02-01T00:00:00Z"),
                [true, false, true],
            ),
            (
                pushed("p", Public, "2026-02-01T00:00:00Z"),
                [true, true, true],
            ),
            (
                pushed("p", Public, "2026-03-01T00:00:00Z"),
                [true, true, true],
            ),
            (
                pushed("p", Private, "2026-03-01T00:00:00Z"),
                [true, true, true],
            ),
        ];
        for (i, (copy, reach)) in (0u64..).zip(cases) {
            let applied = l.apply("p", Patch::Record(copy.clone()), 20_000 + i * 10_000);
            assert_eq!(applied.reach, reach, "{copy:?}");
        }
        // The scopes keep their own times.
        let mut c = Changed::default();
        c.mark([true, false, false], 5);
        c.mark([true, true, false], 7);
        c.mark([false, false, true], 6);
        assert_eq!((c.all, c.public, c.redacted), (Some(7), Some(7), Some(6)));
    }

    #[test]
    fn a_removal_is_remembered_after_its_fact_expires() {
        let public = |n| Patch::Record(repo(n, Visibility::Public));
        // Removed by facts (a, then b) and by GitHub's answers (c, then d).
        let mut l = live(&["a", "b", "c", "d", "e"], 10_000);
        l.apply("a", Patch::Removed, 30_000);
        l.apply("b", Patch::Removed, 31_000);
        l.apply("c", Patch::Missing, 30_000);
        l.apply("d", Patch::Missing, 31_000);
        // An answer asked long after lets the facts go...
        l.apply("e", public("e"), 40_000);
        assert!(l.facts.is_empty());
        // ...but answers asked before each removal, arriving late, bring nothing back.
        for name in ["a", "b", "c", "d"] {
            assert_eq!(l.apply(name, public(name), 25_000).page, None, "{name}");
        }
        assert_eq!(names(&l), ["e"]);
        // An answer asked at the very moment of a removal is the later copy.
        assert_eq!(l.apply("d", public("d"), 31_000).page, Some(0));
        // So is one asked at the moment the record was last asked.
        assert_eq!(l.apply("e", public("e"), 40_000).page, Some(0));
    }

    #[test]
    fn touch_and_mark_version_the_listing() {
        let mut l = live(&["a"], 10_000);
        l.touch(5_000);
        assert_eq!(
            l.listing.revalidated_at_ms,
            Some(10_000),
            "never before the build"
        );
        l.touch(20_000);
        l.touch(20_000);
        assert_eq!(
            l.listing.revalidated_at_ms,
            Some(20_001),
            "strictly later each time"
        );
        l.mark([false, true, false], 21_000);
        assert_eq!(
            (l.listing.changed.all, l.listing.changed.public),
            (None, Some(21_000))
        );
        // The meta line names the listing's slot and pages.
        l.slot = 1;
        l.pages = 3;
        assert_eq!(meta_pages(&l.meta()), Some((1, 3)));
        assert_eq!(meta_pages("x"), None);
    }

    #[test]
    fn pages_and_meta_survive_storage() {
        let mut l = live(&["a", "c"], 10);
        l.listing.revalidated_at_ms = Some(99);
        l.listing.changed.mark([true, false, true], 77);
        l.apply("b", Patch::Record(repo("b", Visibility::Private)), 50);
        let pages = vec![Some(l.encode_page(0))];
        assert!(pages[0].as_deref().unwrap().starts_with("10,50,10\n"));
        assert_eq!(Live::load(&l.meta(), &pages), Some(l.clone()));
        // A page missing, or one too many, is no listing.
        assert_eq!(Live::load(&l.meta(), &[None]), None);
        assert_eq!(Live::load(&l.meta(), &[]), None);
        // A meta line stored before scopes had their own times still loads.
        let old = Live::load("0 1 10 99 o", &pages).unwrap();
        assert_eq!(old.listing.changed, Changed::default());
        assert_eq!(old.listing.revalidated_at_ms, Some(99));
        let never = Live::load("0 1 10 0 o", &pages).unwrap();
        assert_eq!(
            never.listing.revalidated_at_ms, None,
            "0: never revalidated"
        );
        assert_eq!(Live::load("0 1 10 99 o 1,2", &pages), None);
        let build = encode_build_page(7, &l.listing.repos);
        let (asked, repos) = decode_page(&build).unwrap();
        assert_eq!((asked, repos.len()), (vec![7], 3));
    }

    #[test]
    fn changes_cross_as_lines_and_coalesce_by_name() {
        let c = |name: &str, fact, at_ms| Change {
            name: RepoName::parse(name).unwrap(),
            fact,
            at_ms,
        };
        let changes = vec![c("a", Fact::Changed, 1), c("B.b-_", Fact::Private, 2)];
        let text = encode_changes(&changes);
        assert_eq!(text, "c 1 a\np 2 B.b-_");
        assert_eq!(decode_changes(&text), Some(changes.clone()));
        for bad in ["q 1 a", "c x a", "c 1", "c 1 a/b", "c 1 ..", "c"] {
            assert_eq!(decode_changes(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_out_of_order_find_their_place_with_their_rows() {
        let mut l = live(&["c", "A"], 10);
        let mut seen = Pushed::default();
        l.push_page(
            1,
            vec![20, 30],
            vec![repo("b", Visibility::Public), repo("d", Visibility::Public)],
            &mut seen,
        );
        assert_eq!(names(&l), ["A", "b", "c", "d"]);
        assert_eq!(l.rows, [(10, 0), (20, 1), (10, 0), (30, 1)]);
        assert!(seen.stale.is_empty());
    }

    #[test]
    fn a_name_read_twice_is_kept_once_the_later_ask_winning() {
        let mut l = live(&["a", "b", "c"], 10);
        let mut seen = Pushed::default();
        // Page 1 read `B` again later, now private: it wins, and page 0 holds a dropped copy.
        l.push_page(1, vec![20], vec![repo("B", Visibility::Private)], &mut seen);
        // Page 2 read `c` from before page 0 did: page 0's copy stays, page 2 is stale.
        l.push_page(2, vec![5], vec![repo("c", Visibility::Internal)], &mut seen);
        // Page 3 read `a` at the same time as page 0: the later page wins the tie.
        l.push_page(3, vec![10], vec![repo("a", Visibility::Private)], &mut seen);
        assert_eq!(names(&l), ["a", "B", "c"]);
        assert_eq!(l.rows, [(10, 3), (20, 1), (10, 0)]);
        let vis: Vec<Visibility> = l.listing.repos.iter().map(|r| r.visibility).collect();
        assert_eq!(
            vis,
            [Visibility::Private, Visibility::Private, Visibility::Public]
        );
        assert_eq!(seen.stale, [0, 2, 0]);
        // Each name was read in two parts (public, then private or internal); page 0's copies
        // were pushed before `seen` began.
        let private = part_of(&repo("x", Visibility::Private)).unwrap();
        let internal = part_of(&repo("x", Visibility::Internal)).unwrap();
        let public = part_of(&repo("x", Visibility::Public)).unwrap();
        assert_eq!(
            (
                seen.parts[private],
                seen.parts[internal],
                seen.parts[public]
            ),
            (2, 1, 0)
        );
        // A name read again in the same part (two ends that met) counts once.
        l.push_page(4, vec![30], vec![repo("c", Visibility::Public)], &mut seen);
        assert_eq!(seen.parts[public], 0);
        // Stored again as the listing holds them, the dropped copies are gone, and a page left
        // empty reads back as one.
        assert!(!l.encode_page(0).contains("\"B\""));
        assert_eq!(l.encode_page(2), "\n[]");
        assert_eq!(decode_page("\n[]"), Some((Vec::new(), Vec::new())));
        assert_eq!(decode_page(",\n[]"), None);
    }
}

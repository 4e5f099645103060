//! A live listing: the complete listing a directory keeps after its build, record by record with
//! the time GitHub was asked for each, so a repository-level change rewrites one record (and the
//! stored page holding it), never the listing. Also the stored forms of its pages and of the
//! changes waiting to be applied. Pure: no I/O, no clock.
//!
//! **Merge rule**: where two copies of a record meet (a build page, a revalidation, a narrowing
//! fact from a delivery), the one asked later wins; a removal is a copy too.

use crate::forge::Fact;
use crate::json::{Codec, Writer};
use crate::model::{OwnerListing, Repo, Visibility};
pub use crate::names::cmp_names;
use crate::names::RepoName;
pub use crate::service::directories::Change;

/// Storage keys of a live listing (the build's are in `build`).
pub const LIVE_KEY: &str = "live";
/// Changes heard and not yet in the listing (GitHub failed, or no listing was complete yet).
pub const QUEUE_KEY: &str = "queue";
/// Changes heard since the build in progress began: revalidated before its listing is kept.
pub const SINCE_KEY: &str = "since";

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
}

/// What one change or answer does to one record.
#[derive(Debug, Clone)]
pub enum Patch {
    Record(Repo),
    Private,
    Removed,
}

impl Live {
    /// The stored meta line: `{slot} {pages} {started} {revalidated or 0} {login}`.
    pub fn meta(&self) -> String {
        let revalidated = self.listing.revalidated_at_ms.unwrap_or(0);
        let (slot, pages, started) = (self.slot, self.pages, self.started_at_ms);
        format!(
            "{slot} {pages} {started} {revalidated} {}",
            self.listing.login
        )
    }

    /// The listing from its meta line and stored pages (`None`: something is missing).
    pub fn load(meta: &str, pages: &[Option<String>]) -> Option<Live> {
        let (slot, count, started, revalidated, login) = read_meta(meta)?;
        if pages.len() as u64 != count {
            return None;
        }
        let mut live = Live {
            listing: OwnerListing {
                login,
                repos: Vec::new(),
                revalidated_at_ms: (revalidated > 0).then_some(revalidated),
            },
            rows: Vec::new(),
            started_at_ms: started,
            slot,
            pages: u32::try_from(count).ok()?,
            removed: Vec::new(),
        };
        for (i, text) in pages.iter().enumerate() {
            let (asked, repos) = decode_page(text.as_deref()?)?;
            live.push_page(u32::try_from(i).ok()?, asked, repos);
        }
        Some(live)
    }

    /// Adds a page's records in name order. GitHub's order is nearly ours (its case rules
    /// differ), so a record is appended, or inserted where it belongs when it is out of order:
    /// cheaper in wasm than a sort carrying the rows along, and linear in the usual case.
    pub fn push_page(&mut self, i: u32, asked: Vec<u64>, repos: Vec<Repo>) {
        let last = asked.last().copied().unwrap_or(0);
        for (k, repo) in repos.into_iter().enumerate() {
            let row = (asked.get(k).copied().unwrap_or(last), i);
            let in_order = self
                .listing
                .repos
                .last()
                .is_none_or(|prev| cmp_names(prev.name(), repo.name()).is_le());
            let at = if in_order {
                self.listing.repos.len()
            } else {
                self.find(repo.name()).unwrap_or_else(|at| at)
            };
            self.listing.repos.insert(at, repo);
            self.rows.insert(at, row);
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

    /// Applies `copy` of record `name`, asked at `asked_ms`, unless the listing holds a later
    /// one. Returns the page rewritten, if any.
    pub fn apply(&mut self, name: &str, copy: Patch, asked_ms: u64) -> Option<u32> {
        match self.find(name) {
            Ok(i) => {
                let row = self.rows.get_mut(i)?;
                if row.0 > asked_ms {
                    return None;
                }
                row.0 = asked_ms;
                let page = row.1;
                match copy {
                    Patch::Record(repo) if cmp_names(repo.name(), name).is_eq() => {
                        *self.listing.repos.get_mut(i)? = repo;
                    }
                    Patch::Private => {
                        self.listing.repos.get_mut(i)?.visibility = Visibility::Private;
                    }
                    // Removed, or answered under another name (GitHub follows renames).
                    _ => {
                        self.removed.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                        self.removed.push((name.to_ascii_lowercase(), asked_ms));
                        self.listing.repos.remove(i);
                        self.rows.remove(i);
                    }
                }
                Some(page)
            }
            Err(i) => match copy {
                Patch::Record(repo)
                    if cmp_names(repo.name(), name).is_eq()
                        && !self.removed_after(name, asked_ms) =>
                {
                    // A new record joins the page of the record before it.
                    let before = i.checked_sub(1).and_then(|p| self.rows.get(p));
                    let page = before.map_or(0, |r| r.1);
                    self.listing.repos.insert(i, repo);
                    self.rows.insert(i, (asked_ms, page));
                    Some(page)
                }
                _ => None,
            },
        }
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

/// The meta line's `(slot, pages, started, revalidated, login)`.
fn read_meta(meta: &str) -> Option<(u8, u64, u64, u64, String)> {
    let mut parts = meta.splitn(5, ' ');
    let mut num = || parts.next()?.parse::<u64>().ok();
    let (slot, count, started, revalidated) = (num()?, num()?, num()?, num()?);
    let login = parts.next()?.to_string();
    Some((u8::try_from(slot).ok()?, count, started, revalidated, login))
}

/// Which stored pages a meta line names: `(slot, count)`.
pub fn meta_pages(meta: &str) -> Option<(u8, u32)> {
    let (slot, count, ..) = read_meta(meta)?;
    Some((slot, u32::try_from(count).ok()?))
}

/// A stored page: its records and when each was asked (one time for a whole build page).
pub fn decode_page(text: &str) -> Option<(Vec<u64>, Vec<Repo>)> {
    let (asked, json) = text.split_once('\n')?;
    let asked: Option<Vec<u64>> = asked.split(',').map(|t| t.parse().ok()).collect();
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
            let fact = Fact::from_letter(parts.next()?.chars().next()?)?;
            let at_ms = parts.next()?.parse().ok()?;
            let name = RepoName::parse(parts.next()?).ok()?;
            Some(Change { name, fact, at_ms })
        })
        .collect()
}

/// Adds `new` to a queue of changes, one entry per name (case-insensitive): a later change of
/// a name replaces an earlier one, except that a narrowing fact is not forgotten for a `Changed`.
pub fn enqueue(queue: &mut Vec<Change>, new: &Change) {
    match queue
        .iter_mut()
        .find(|c| c.name.as_str().eq_ignore_ascii_case(new.name.as_str()))
    {
        Some(c) => {
            c.at_ms = c.at_ms.max(new.at_ms);
            if new.fact != Fact::Changed {
                c.fact = new.fact;
            }
        }
        None => queue.push(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            },
            rows: Vec::new(),
            started_at_ms: asked,
            slot: 0,
            pages: 1,
            removed: Vec::new(),
        };
        let repos = names.iter().map(|n| repo(n, Visibility::Public)).collect();
        live.push_page(0, vec![asked], repos);
        live
    }

    fn names(live: &Live) -> Vec<String> {
        live.listing
            .repos
            .iter()
            .map(|r| r.name().to_string())
            .collect()
    }

    #[test]
    fn the_later_copy_wins_and_removals_are_copies() {
        // (copy, asked at, names after, visibility of "b" after, page rewritten)
        let public = Visibility::Public;
        // (name, copy, asked at, names after, b's visibility after, page rewritten)
        type Case<'a> = (
            &'a str,
            Patch,
            u64,
            Vec<&'a str>,
            Option<Visibility>,
            Option<u32>,
        );
        let cases: Vec<Case> = vec![
            (
                "b",
                Patch::Private,
                20,
                vec!["a", "b", "c"],
                Some(Visibility::Private),
                Some(0),
            ),
            (
                "b",
                Patch::Private,
                5,
                vec!["a", "b", "c"],
                Some(public),
                None,
            ),
            ("b", Patch::Removed, 20, vec!["a", "c"], None, Some(0)),
            (
                "b",
                Patch::Removed,
                5,
                vec!["a", "b", "c"],
                Some(public),
                None,
            ),
            (
                "B",
                Patch::Record(repo("B", Visibility::Internal)),
                20,
                vec!["a", "B", "c"],
                None,
                Some(0),
            ),
            (
                "bb",
                Patch::Record(repo("bb", public)),
                20,
                vec!["a", "b", "bb", "c"],
                Some(public),
                Some(0),
            ),
            // GitHub answered an old name with the renamed repository: the old name goes.
            (
                "b",
                Patch::Record(repo("z", public)),
                20,
                vec!["a", "c"],
                None,
                Some(0),
            ),
            (
                "zz",
                Patch::Removed,
                20,
                vec!["a", "b", "c"],
                Some(public),
                None,
            ),
            (
                "zz",
                Patch::Private,
                20,
                vec!["a", "b", "c"],
                Some(public),
                None,
            ),
        ];
        for (name, copy, at, after, b, page) in cases {
            let mut l = live(&["a", "b", "c"], 10);
            assert_eq!(
                l.apply(name, copy.clone(), at),
                page,
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
        let mut l = live(&["a", "b"], 10);
        l.apply("b", Patch::Removed, 30);
        // A revalidation asked before the removal lands after it: the record does not return.
        assert_eq!(
            l.apply("b", Patch::Record(repo("b", Visibility::Public)), 20),
            None
        );
        assert_eq!(names(&l), ["a"]);
        // Private is a narrowing copy: an older public answer does not undo it.
        l.apply("a", Patch::Private, 40);
        assert_eq!(
            l.apply("a", Patch::Record(repo("a", Visibility::Public)), 35),
            None
        );
        assert_eq!(l.listing.repos[0].visibility, Visibility::Private);
    }

    #[test]
    fn pages_and_meta_survive_storage() {
        let mut l = live(&["a", "c"], 10);
        l.listing.revalidated_at_ms = Some(99);
        l.apply("b", Patch::Record(repo("b", Visibility::Private)), 50);
        let pages = vec![Some(l.encode_page(0))];
        assert!(pages[0].as_deref().unwrap().starts_with("10,50,10\n"));
        assert_eq!(Live::load(&l.meta(), &pages), Some(l.clone()));
        // A page missing, or one too many, is no listing.
        assert_eq!(Live::load(&l.meta(), &[None]), None);
        assert_eq!(Live::load(&l.meta(), &[]), None);
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
        let mut queue = Vec::new();
        for change in [
            c("a", Fact::Changed, 1),
            c("A", Fact::Private, 2),
            c("a", Fact::Changed, 3),
            c("b", Fact::Changed, 4),
        ] {
            enqueue(&mut queue, &change);
        }
        assert_eq!(queue, [c("a", Fact::Private, 3), c("b", Fact::Changed, 4)]);
    }

    #[test]
    fn records_out_of_order_find_their_place_with_their_rows() {
        let mut l = live(&["c", "A"], 10);
        l.push_page(
            1,
            vec![20, 30],
            vec![repo("b", Visibility::Public), repo("d", Visibility::Public)],
        );
        assert_eq!(names(&l), ["A", "b", "c", "d"]);
        assert_eq!(l.rows, [(10, 0), (20, 1), (10, 0), (30, 1)]);
    }
}

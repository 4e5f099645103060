//! In-memory doubles shared by the native integration tests: KV, a small GitHub and a clock
//! that is set, never slept on.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use forgelens::cache::{Store, StoreError};
use forgelens::config::{Config, VARIABLES};
use forgelens::forge::github::GitHub;
use forgelens::forge::{HttpCall, HttpReply};
use forgelens::http::{handle, Ctx, Request, Response};
use forgelens::owners::local::{Directories, LocalOwners};
use forgelens::owners::Owners;
use forgelens::service::{Admit, Clock, Refresh, Service, Transport};
use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub const T0: u64 = 1_700_000_000_000;

/// Key → (value, expirationTtl).
pub type KvData = Rc<RefCell<HashMap<String, (String, Option<u64>)>>>;

#[derive(Default)]
pub struct MemStore {
    pub data: KvData,
    pub reject_writes: Cell<bool>,
    /// How many of the next deletes KV refuses (as with its 1 write/s per key limit).
    pub refuse_deletes: Cell<u32>,
    pub writes: Cell<usize>,
    /// How many of the next writes KV refuses (as when the day's write budget is spent).
    pub refuse_puts: Cell<u32>,
    /// A key and value that land right after the next write (another request racing it).
    pub after_next_put: RefCell<Option<(String, String)>>,
    /// Operations made so far (a bulk read is one), against KV's 1,000 per invocation.
    pub ops: Cell<usize>,
    /// The world's clock, and each write that landed with its time (KV allows one a second
    /// per key).
    pub clock: Rc<Cell<u64>>,
    pub puts: RefCell<Vec<(String, u64)>>,
    /// A key whose next write KV refuses (its 1 write/s limit, met by another writer).
    pub refuse_key: RefCell<Option<String>>,
    /// A key whose writes wait while it is set (a write still on its way); `holding` says one
    /// is waiting.
    pub hold_key: RefCell<Option<String>>,
    pub holding: Cell<bool>,
}

impl MemStore {
    fn op(&self) {
        self.ops.set(self.ops.get() + 1);
    }
}

impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.op();
        Ok(self.data.borrow().get(key).map(|(v, _)| v.clone()))
    }
    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        assert!(keys.len() <= 100, "get_bulk takes at most 100 keys");
        self.op();
        let data = self.data.borrow();
        Ok(keys
            .iter()
            .map(|k| (k.clone(), data.get(k).map(|(v, _)| v.clone())))
            .collect())
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.op();
        if self.reject_writes.get() {
            return Err(StoreError::TooManyWrites);
        }
        if self.refuse_puts.get() > 0 {
            self.refuse_puts.set(self.refuse_puts.get() - 1);
            return Err(StoreError::TooManyWrites);
        }
        while self.hold_key.borrow().as_deref() == Some(key) {
            self.holding.set(true);
            YieldNow(false).await;
        }
        self.holding.set(false);
        if self.refuse_key.borrow().as_deref() == Some(key) {
            self.refuse_key.take();
            return Err(StoreError::TooManyWrites);
        }
        assert!(
            ttl.is_none_or(|t| t >= 60),
            "KV refuses expirationTtl below 60"
        );
        self.writes.set(self.writes.get() + 1);
        self.puts
            .borrow_mut()
            .push((key.to_string(), self.clock.get()));
        self.data
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), ttl));
        if let Some((k, v)) = self.after_next_put.take() {
            self.data.borrow_mut().insert(k, (v, None));
        }
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.op();
        if self.refuse_deletes.get() > 0 {
            self.refuse_deletes.set(self.refuse_deletes.get() - 1);
            return Err(StoreError::TooManyWrites);
        }
        self.data.borrow_mut().remove(key);
        Ok(())
    }
}

pub struct ManualClock(pub Rc<Cell<u64>>);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
    async fn sleep(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
        YieldNow(false).await;
    }
}

/// A tiny GitHub: owners with `count` public repositories named r000…; replies are built in the
/// same shape as the real API's.
pub struct FakeGitHub {
    pub owners: HashMap<String, usize>,
    pub calls: RefCell<Vec<Value>>,
    pub fault: RefCell<Option<Result<HttpReply, String>>>,
    /// Every page claims another follows, with the same cursor.
    pub stuck_cursor: Cell<bool>,
    /// Each call advances this clock by `latency_ms`, to exercise the request's deadline.
    pub clock: Option<(Rc<Cell<u64>>, u64)>,
    /// Runs while a call is in flight (after GitHub "answered", before the worker sees it).
    pub during_call: RefCell<Option<Box<dyn Fn()>>>,
    /// Replies for particular calls (by 0-based call index), before `fault`.
    pub fault_on_call: RefCell<HashMap<usize, Result<HttpReply, String>>>,
    /// Owner pages asking for more than this many records answer 502 (an overloaded GitHub).
    pub max_page: Cell<Option<u64>>,
    /// What owner pages report as `rateLimit` (`remaining`, `resetAt`).
    pub rate: RefCell<(u64, String)>,
    /// Old names GitHub redirects: lowercased `owner/old` → index of the repository now.
    pub renames: RefCell<HashMap<String, usize>>,
    /// Lowercased full names made private since the fixtures were built.
    pub privatized: RefCell<HashSet<String>>,
    /// Transfers GitHub follows: lowercased `owner/name` → (new owner, index there).
    pub moved: RefCell<HashMap<String, (String, usize)>>,
    /// Pushes since the fixtures were built: lowercased full name → `pushedAt`.
    pub pushed: RefCell<HashMap<String, String>>,
    /// Whether the `p0`…`p11` count aliases of a partitioned build's first request are
    /// answered (GitHub does; off by default, so tests written for sequential builds keep
    /// paging sequentially: the build falls back when a count is missing).
    pub counts: Cell<bool>,
    /// Where each repository starts, by index: `(visibility, isArchived, isFork)`; without it,
    /// every fifth is private and none is archived or a fork.
    pub layout: Cell<Option<Layout>>,
    /// Repositories that moved since the fixtures were built: lowercased full name → where it
    /// is now (privatizations still apply on top).
    pub places: RefCell<HashMap<String, Place>>,
    /// Every owner page asked, as the fake read its query, in the order sent.
    pub page_log: RefCell<Vec<PageQuery>>,
    /// Faults for the owner pages that match, each for its number of pages.
    pub page_faults: RefCell<Vec<PageFault>>,
    /// Runs as an owner page is answered (after GitHub "read" it, before the reply is built):
    /// a repository may move between parts here, mid-build.
    pub on_page: RefCell<Option<PageHook>>,
    /// Calls in flight now, and the most there ever were at once.
    pub in_flight: Cell<usize>,
    pub peak_in_flight: Cell<usize>,
    /// With `clock`: calls in flight together take `latency_ms` together (each ends at its
    /// start plus the latency), rather than one after the other.
    pub overlap: Cell<bool>,
}

/// Where a repository is: `visibility` (GitHub's upper-case name), `isArchived`, `isFork`.
pub type Place = (&'static str, bool, bool);

/// Where each repository of the fixtures starts, by index.
pub type Layout = fn(usize) -> Place;

/// Runs as an owner page is answered (`FakeGitHub::on_page`).
pub type PageHook = Box<dyn Fn(&FakeGitHub, &PageQuery)>;

/// The visibilities of `Part::all`, in its order.
pub const VISIBILITIES: [&str; 3] = ["PUBLIC", "PRIVATE", "INTERNAL"];

/// The index in `Part::all` of the part holding `place`.
pub fn part_of(place: Place) -> usize {
    let v = VISIBILITIES.iter().position(|v| *v == place.0).unwrap();
    v * 4 + usize::from(place.1) * 2 + usize::from(place.2)
}

/// The place of part `i` of `Part::all`.
pub fn place_of(i: usize) -> Place {
    (VISIBILITIES[i / 4], i % 4 >= 2, i % 2 == 1)
}

/// An owner page as the fake read it from the worker's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// The call's index among all calls.
    pub call: usize,
    pub owner: String,
    /// The part asked (its index in `Part::all`), or `None`: the whole listing.
    pub part: Option<usize>,
    /// `last`/`before` rather than `first`/`after`.
    pub back: bool,
    /// Whether every part's count was asked beside it (`p0:` … `p11:`).
    pub counts: bool,
    pub first: u64,
    pub cursor: Option<String>,
}

/// Owner pages that fail: those of `part` (`Some(None)`: the whole listing; `None`: any), from
/// `back` (`None`: either end), answered `reply` for the next `times` of them.
pub struct PageFault {
    pub part: Option<Option<usize>>,
    pub back: Option<bool>,
    pub times: u32,
    pub reply: Result<HttpReply, String>,
    /// How much later the reply comes: after every other call in flight beside it has been
    /// answered, the fake's `clock` (if any) advances by this much.
    pub delay_ms: u64,
}

impl PageFault {
    /// The next `times` pages of `part` answer 502.
    pub fn bad_gateway(part: usize, times: u32) -> PageFault {
        PageFault {
            part: Some(Some(part)),
            back: None,
            times,
            reply: Ok(HttpReply {
                status: 502,
                headers: vec![],
                body: b"<html>502 Bad Gateway</html>".to_vec(),
            }),
            delay_ms: 0,
        }
    }

    fn matches(&self, q: &PageQuery) -> bool {
        self.times > 0
            && self.part.is_none_or(|p| p == q.part)
            && self.back.is_none_or(|b| b == q.back)
    }
}

/// Reads an owner page's query: which `repositories(` connection carries `$first`, its filters
/// and direction, and whether the count aliases ride along. `None` for other calls.
pub fn page_query(call: usize, body: &Value) -> Option<PageQuery> {
    let vars = &body["variables"];
    let owner = vars.get("owner")?.as_str()?.to_string();
    let query = body["query"].as_str().unwrap_or("");
    let at = query
        .match_indices("repositories(")
        .map(|(i, _)| i)
        .find(|&i| {
            let args = &query[i..];
            let args = &args[..args.find(')').unwrap_or(args.len())];
            args.contains("$first")
        })
        .expect("an owner page asks one connection with $first");
    let args = &query[at..];
    let args = &args[..args.find(')').unwrap()];
    let back = args.contains("last: $first");
    assert!(
        back != args.contains("first: $first"),
        "first or last, not both: {args}"
    );
    assert!(
        args.contains(if back {
            "before: $cursor"
        } else {
            "after: $cursor"
        }),
        "{args}"
    );
    let arg = |name: &str| {
        let from = args.find(&format!("{name}: "))? + name.len() + 2;
        let rest = &args[from..];
        Some(rest[..rest.find([',', ')', ' ']).unwrap_or(rest.len())].to_string())
    };
    let part = match (arg("visibility"), arg("isArchived"), arg("isFork")) {
        (None, None, None) => None,
        (Some(v), Some(a), Some(f)) => {
            let v = VISIBILITIES
                .iter()
                .find(|x| **x == v)
                .unwrap_or_else(|| panic!("visibility {v}"));
            Some(part_of((v, a == "true", f == "true")))
        }
        other => panic!("a part is asked with all three filters: {other:?}"),
    };
    let counts = query.contains("p0:");
    if counts {
        for i in 0..12 {
            assert!(query.contains(&format!("p{i}: repositories(first: 1, ")));
        }
    }
    Some(PageQuery {
        call,
        owner,
        part,
        back,
        counts,
        first: vars["first"].as_u64()?,
        cursor: vars["cursor"].as_str().map(str::to_string),
    })
}

/// Counts the call in flight until dropped.
struct InFlight<'a>(&'a FakeGitHub);

impl<'a> InFlight<'a> {
    fn new(gh: &'a FakeGitHub) -> InFlight<'a> {
        gh.in_flight.set(gh.in_flight.get() + 1);
        gh.peak_in_flight
            .set(gh.peak_in_flight.get().max(gh.in_flight.get()));
        InFlight(gh)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

impl FakeGitHub {
    pub fn new(owners: &[(&str, usize)]) -> FakeGitHub {
        FakeGitHub {
            // GitHub logins are case-insensitive.
            owners: owners
                .iter()
                .map(|(o, n)| (o.to_ascii_lowercase(), *n))
                .collect(),
            calls: RefCell::default(),
            fault: RefCell::default(),
            stuck_cursor: Cell::new(false),
            clock: None,
            during_call: RefCell::new(None),
            fault_on_call: RefCell::default(),
            rate: RefCell::new((4000, "2026-01-01T00:00:00Z".into())),
            max_page: Cell::new(None),
            renames: RefCell::default(),
            privatized: RefCell::default(),
            moved: RefCell::default(),
            pushed: RefCell::default(),
            counts: Cell::new(false),
            layout: Cell::new(None),
            places: RefCell::default(),
            page_log: RefCell::default(),
            page_faults: RefCell::default(),
            on_page: RefCell::new(None),
            in_flight: Cell::new(0),
            peak_in_flight: Cell::new(0),
            overlap: Cell::new(false),
        }
    }

    /// A GitHub that answers partitioned builds as GitHub does (every part's count), its
    /// owners' repositories placed by `layout`.
    pub fn partitioned(owners: &[(&str, usize)], layout: Option<Layout>) -> FakeGitHub {
        let gh = FakeGitHub::new(owners);
        gh.counts.set(true);
        gh.layout.set(layout);
        gh
    }

    /// Where repository `i` of `owner` is now.
    pub fn place(&self, owner: &str, i: usize) -> Place {
        let full = format!("{owner}/r{i:03}").to_ascii_lowercase();
        let mut place = self.places.borrow().get(&full).copied().unwrap_or_else(|| {
            self.layout.get().map_or(
                (if i % 5 == 4 { "PRIVATE" } else { "PUBLIC" }, false, false),
                |f| f(i),
            )
        });
        if self.privatized.borrow().contains(&full) {
            place.0 = "PRIVATE";
        }
        place
    }

    /// Moves repository `i` of `owner` to `place` (now, in GitHub's truth).
    pub fn move_to(&self, owner: &str, i: usize, place: Place) {
        let full = format!("{owner}/r{i:03}").to_ascii_lowercase();
        self.privatized.borrow_mut().remove(&full);
        self.places.borrow_mut().insert(full, place);
    }

    /// GitHub's truth for `owner`: each repository's name and place, in name order (GitHub
    /// orders names case-insensitively).
    pub fn truth(&self, owner: &str) -> Vec<(String, Place)> {
        let count = self
            .owners
            .get(&owner.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        let mut out: Vec<(String, Place)> = (0..count)
            .map(|i| (format!("r{i:03}"), self.place(owner, i)))
            .collect();
        out.sort_by(|a, b| forgelens::names::cmp_names(&a.0, &b.0));
        out
    }

    /// How many of `owner`'s repositories each part holds now, in `Part::all` order.
    pub fn part_counts(&self, owner: &str) -> [u64; 12] {
        let mut counts = [0; 12];
        for (_, place) in self.truth(owner) {
            counts[part_of(place)] += 1;
        }
        counts
    }

    /// GitHub fails every call from now on with a 502 (until `fault` is cleared).
    pub fn fail_all(&self) {
        *self.fault.borrow_mut() = Some(Ok(HttpReply {
            status: 502,
            headers: vec![],
            body: b"bad gateway".to_vec(),
        }));
    }

    pub fn node(owner: &str, i: usize) -> Value {
        json!({"name": format!("r{i:03}"), "owner": {"login": owner}, "nameWithOwner": format!("{owner}/r{i:03}"),
            "url": format!("https://github.com/{owner}/r{i:03}"), "description": null,
            "visibility": if i % 5 == 4 { "PRIVATE" } else { "PUBLIC" }, "isPrivate": i % 5 == 4,
            "isArchived": false, "isDisabled": false, "isFork": false, "pushedAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-02T00:00:00Z", "primaryLanguage": null,
            "defaultBranchRef": {"name": "main", "target": {"oid": "abc", "statusCheckRollup": {"state": "SUCCESS"}}}})
    }

    /// `node`, placed by the layout, with the changes made since (moves, privatizations).
    pub fn node_now(&self, owner: &str, i: usize) -> Value {
        let mut node = Self::node(owner, i);
        let full = format!("{owner}/r{i:03}").to_ascii_lowercase();
        let (visibility, archived, fork) = self.place(owner, i);
        node["visibility"] = json!(visibility);
        node["isPrivate"] = json!(visibility != "PUBLIC");
        node["isArchived"] = json!(archived);
        node["isFork"] = json!(fork);
        if let Some(at) = self.pushed.borrow().get(&full) {
            node["pushedAt"] = json!(at);
        }
        node
    }

    pub fn answer(&self, body: &Value) -> Value {
        let vars = &body["variables"];
        if let Some(owner) = vars.get("owner").and_then(Value::as_str) {
            let Some(&count) = self.owners.get(&owner.to_ascii_lowercase()) else {
                return json!({"data": {"repositoryOwner": null}, "errors": [{"type": "NOT_FOUND", "path": ["repositoryOwner"]}]});
            };
            let q = page_query(usize::MAX, body).unwrap();
            let first = q.first as usize;
            assert!((1..=100).contains(&first), "GitHub refuses first: {first}");
            let (remaining, reset) = self.rate.borrow().clone();
            let mut repositories = if q.part.is_some() || q.back {
                self.part_page(owner, &q)
            } else {
                // The whole listing from the front: index cursors, as this fake always had.
                let start: usize = q.cursor.as_deref().map_or(0, |c| c.parse().unwrap());
                let end = (start + first).min(count);
                let nodes: Vec<Value> = (start..end).map(|i| self.node_now(owner, i)).collect();
                let (more, cursor) = if self.stuck_cursor.get() {
                    (true, "7".to_string())
                } else {
                    (end < count, end.to_string())
                };
                json!({"totalCount": count, "nodes": nodes, "pageInfo": {"hasNextPage": more, "endCursor": cursor}})
            };
            if q.part.is_none() && !q.back {
                repositories["totalCount"] = json!(count);
            }
            let mut repository_owner = json!({"login": owner, "repositories": repositories});
            if q.counts && self.counts.get() {
                for (i, n) in self.part_counts(owner).iter().enumerate() {
                    repository_owner[format!("p{i}")] = json!({"totalCount": n});
                }
            }
            return json!({"data": {"rateLimit": {"cost": 1, "remaining": remaining, "limit": 5000, "resetAt": reset},
                "repositoryOwner": repository_owner}});
        }
        let mut data = serde_json::Map::new();
        let (remaining, reset) = self.rate.borrow().clone();
        data.insert(
            "rateLimit".into(),
            json!({"cost": 1, "remaining": remaining, "limit": 5000, "resetAt": reset}),
        );
        let mut errors = Vec::new();
        for i in 0.. {
            let (Some(o), Some(n)) = (vars.get(format!("o{i}")), vars.get(format!("n{i}"))) else {
                break;
            };
            let (o, n) = (o.as_str().unwrap(), n.as_str().unwrap());
            let renamed = self
                .renames
                .borrow()
                .get(&format!("{o}/{n}").to_ascii_lowercase())
                .copied();
            // Names are case-insensitive on GitHub.
            let lower = n.to_ascii_lowercase();
            let idx = renamed.or_else(|| {
                lower
                    .strip_prefix('r')
                    .and_then(|d| d.parse::<usize>().ok())
            });
            let moved = self
                .moved
                .borrow()
                .get(&format!("{o}/{n}").to_ascii_lowercase())
                .cloned();
            if let Some((to, idx)) = moved {
                data.insert(format!("r{i}"), self.node_now(&to, idx));
                continue;
            }
            match (self.owners.get(&o.to_ascii_lowercase()), idx) {
                (Some(&count), Some(idx)) if idx < count => {
                    data.insert(format!("r{i}"), self.node_now(o, idx))
                }
                _ => {
                    errors.push(json!({"type": "NOT_FOUND", "path": [format!("r{i}")]}));
                    data.insert(format!("r{i}"), Value::Null)
                }
            };
        }
        json!({"data": data, "errors": errors})
    }
}

impl FakeGitHub {
    /// A page of one part (or of the whole listing from the back): the part's repositories in
    /// name order, cursors naming the repository they stand at (`first`/`after`: those after it;
    /// `last`/`before`: the last ones before it, in name order, with `hasPreviousPage` and
    /// `startCursor` as the query aliases them).
    fn part_page(&self, owner: &str, q: &PageQuery) -> Value {
        let listing: Vec<(String, usize)> = {
            let count = self.owners[&owner.to_ascii_lowercase()];
            let mut all: Vec<(String, usize)> = (0..count)
                .filter(|&i| q.part.is_none_or(|p| part_of(self.place(owner, i)) == p))
                .map(|i| (format!("r{i:03}"), i))
                .collect();
            all.sort_by(|a, b| forgelens::names::cmp_names(&a.0, &b.0));
            all
        };
        let at = q.cursor.as_deref().map(|c| {
            c.strip_prefix("name:")
                .unwrap_or_else(|| panic!("a part's cursor is one of its own: {c}"))
                .to_string()
        });
        use std::cmp::Ordering::{Greater, Less};
        let first = q.first as usize;
        let (nodes, more): (Vec<&(String, usize)>, bool) = if q.back {
            let before: Vec<&(String, usize)> = listing
                .iter()
                .filter(|(n, _)| {
                    at.as_ref()
                        .is_none_or(|a| forgelens::names::cmp_names(n, a) == Less)
                })
                .collect();
            let from = before.len().saturating_sub(first);
            (before[from..].to_vec(), from > 0)
        } else {
            let after: Vec<&(String, usize)> = listing
                .iter()
                .filter(|(n, _)| {
                    at.as_ref()
                        .is_none_or(|a| forgelens::names::cmp_names(n, a) == Greater)
                })
                .collect();
            let more = after.len() > first;
            (after.into_iter().take(first).collect(), more)
        };
        let cursor_at = if q.back { nodes.first() } else { nodes.last() };
        let cursor = cursor_at.map(|(n, _)| format!("name:{}", n.to_ascii_lowercase()));
        // A back page's `pageInfo` is aliased to a front page's names (`hasNextPage:
        // hasPreviousPage endCursor: startCursor`): GitHub's reply uses the aliases.
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|(_, i)| self.node_now(owner, *i))
            .collect();
        json!({"totalCount": listing.len(), "nodes": nodes,
            "pageInfo": {"hasNextPage": more, "endCursor": cursor}})
    }
}

impl Transport for FakeGitHub {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        let body: Value = serde_json::from_str(&call.body).unwrap();
        let index = self.calls.borrow().len();
        self.calls.borrow_mut().push(body.clone());
        let page = page_query(index, &body);
        if let Some(q) = &page {
            self.page_log.borrow_mut().push(q.clone());
        }
        let _in_flight = InFlight::new(self);
        if let Some((clock, latency)) = &self.clock {
            if self.overlap.get() {
                // Ends at its start plus the latency, however many calls share the wait.
                let started = clock.get();
                YieldNow(false).await;
                let took = (*latency).min(timeout_ms);
                clock.set(clock.get().max(started + took));
                if *latency >= timeout_ms {
                    return Err(format!("no reply within {timeout_ms} ms"));
                }
            } else {
                if *latency >= timeout_ms {
                    clock.set(clock.get() + timeout_ms);
                    return Err(format!("no reply within {timeout_ms} ms"));
                }
                clock.set(clock.get() + latency);
            }
        }
        // Let other requests in this "isolate" run while this one waits on the network.
        YieldNow(false).await;
        if let Some(hook) = self.during_call.borrow().as_ref() {
            hook();
        }
        if let Some(fault) = self.fault_on_call.borrow_mut().remove(&index) {
            return fault;
        }
        if let Some(fault) = self.fault.borrow().clone() {
            return fault;
        }
        if let Some(q) = &page {
            let fault = {
                let mut faults = self.page_faults.borrow_mut();
                faults.iter_mut().find(|f| f.matches(q)).map(|f| {
                    f.times -= 1;
                    (f.reply.clone(), f.delay_ms)
                })
            };
            if let Some((fault, delay_ms)) = fault {
                if delay_ms > 0 {
                    // Answered later than the calls in flight beside it: they are answered
                    // first (at the time they came), then the clock moves on to this one.
                    while self.in_flight.get() > 1 {
                        YieldNow(false).await;
                    }
                    if let Some((clock, _)) = &self.clock {
                        clock.set(clock.get() + delay_ms);
                    }
                }
                return fault;
            }
            if let Some(hook) = self.on_page.borrow().as_ref() {
                hook(self, q);
            }
        }
        let first = body["variables"]["first"].as_u64();
        if first
            .zip(self.max_page.get())
            .is_some_and(|(f, max)| f > max)
        {
            return Ok(HttpReply {
                status: 502,
                headers: vec![],
                body: b"<html>502 Bad Gateway</html>".to_vec(),
            });
        }
        Ok(HttpReply {
            status: 200,
            headers: vec![],
            body: self.answer(&body).to_string().into_bytes(),
        })
    }
}

/// Returns `Pending` once (after asking to be polled again), so other futures run.
pub struct YieldNow(pub bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

pub struct World {
    pub store: MemStore,
    pub gh: FakeGitHub,
    pub clock: ManualClock,
    pub vars: Vec<(&'static str, String)>,
    /// Refreshes handed to "wait_until", run by `run_deferred`.
    pub deferred: RefCell<Vec<Refresh>>,
    /// The Analytics Engine data points requests wrote (`ANALYTICS`).
    pub points: RefCell<Vec<forgelens::http::usage::DataPoint>>,
    /// The client's `UPSTREAM_LIMITER` budget, when one is bound.
    pub limiter: Option<Budget>,
    /// The owner directories (the Durable Objects' state), driven inline.
    pub directories: Directories,
}

/// A per-client budget like the Rate Limiting binding's: `left` more admissions, then none.
pub struct Budget {
    pub left: Cell<u32>,
    pub asked: Cell<u32>,
}

impl Budget {
    pub fn new(left: u32) -> Budget {
        Budget {
            left: Cell::new(left),
            asked: Cell::new(0),
        }
    }
}

impl Admit for Budget {
    fn admit(&self) -> futures::future::LocalBoxFuture<'_, bool> {
        self.asked.set(self.asked.get() + 1);
        let ok = self.left.get() > 0;
        if ok {
            self.left.set(self.left.get() - 1);
        }
        Box::pin(async move { ok })
    }
}

impl World {
    pub fn new(owners: &[(&str, usize)]) -> World {
        let clock = Rc::new(Cell::new(T0));
        World {
            store: MemStore {
                clock: Rc::clone(&clock),
                ..MemStore::default()
            },
            gh: FakeGitHub::new(owners),
            clock: ManualClock(clock),
            vars: vec![],
            deferred: RefCell::new(Vec::new()),
            points: RefCell::default(),
            limiter: None,
            directories: Directories::default(),
        }
    }

    pub fn config(&self) -> Config {
        Config::from_lookup(|name| {
            self.vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    /// Runs every refresh handed to "wait_until" so far, as the runtime would after the response.
    pub fn run_deferred(&self) -> usize {
        let jobs = self.deferred.take();
        let cfg = self.config();
        let forge = GitHub::from_config(&cfg);
        let owners = self.owners(&cfg, &forge);
        let svc =
            Service::new(&cfg, &self.store, &self.gh, &self.clock, &forge).with_owners(&owners);
        for job in &jobs {
            block_on(svc.run_refresh(job.clone()));
        }
        jobs.len()
    }

    /// The directories as the service sees them, for `cfg`.
    pub fn owners<'a>(
        &'a self,
        cfg: &'a Config,
        forge: &'a GitHub,
    ) -> LocalOwners<'a, MemStore, FakeGitHub, ManualClock> {
        LocalOwners {
            cfg,
            store: &self.store,
            transport: &self.gh,
            clock: &self.clock,
            forge,
            directories: &self.directories,
        }
    }

    pub fn get(&self, path_and_query: &str) -> Response {
        self.request("GET", path_and_query, &[])
    }

    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        self.send(method, path_and_query, headers, b"")
    }

    pub fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        block_on(self.fetch(method, path_and_query, headers, body))
    }

    /// The request as a future, so tests can run several at once in one thread (one isolate).
    pub async fn fetch(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let req = Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.to_vec(),
            body_too_large: body.len() > forgelens::http::MAX_BODY,
        };
        let lookup = |name: &str| {
            self.vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let config = Config::from_lookup(lookup);
        let cfg = config.clone().unwrap_or_else(|_| self.config_defaults());
        let forge = GitHub::from_config(&cfg);
        let owners = self.owners(&cfg, &forge);
        let set: Vec<_> = VARIABLES
            .iter()
            .map(|n| (*n, lookup(n).is_some()))
            .collect();
        let ctx = Ctx {
            config: &config,
            set: &set,
            store: &self.store,
            transport: &self.gh,
            clock: &self.clock,
            defer: Some(&|job| self.deferred.borrow_mut().push(job)),
            limiter: self.limiter.as_ref().map(|b| b as &dyn Admit),
            owners: Some(&owners as &dyn Owners),
            signer: None,
            assets: &forgelens::http::Embedded,
            record: Some(&|p| self.points.borrow_mut().push(p.clone())),
        };
        let resp = handle(&req, &ctx).await;
        // The runtime finishes `wait_until` writes right after the response; refreshes are left
        // for tests to run (`run_deferred`).
        let (writes, refreshes): (Vec<Refresh>, Vec<Refresh>) = self
            .deferred
            .take()
            .into_iter()
            .partition(|j| matches!(j, Refresh::Store { .. } | Refresh::Delivered { .. }));
        *self.deferred.borrow_mut() = refreshes;
        if !writes.is_empty() {
            let svc =
                Service::new(&cfg, &self.store, &self.gh, &self.clock, &forge).with_owners(&owners);
            for job in writes {
                svc.run_refresh(job).await;
            }
        }
        resp
    }

    /// Configuration with every default, for worlds whose own configuration is invalid.
    fn config_defaults(&self) -> Config {
        Config::from_lookup(|_| None).unwrap()
    }

    pub fn calls(&self) -> usize {
        self.gh.calls.borrow().len()
    }

    pub fn advance(&self, secs: u64) {
        self.clock.0.set(self.clock.0.get() + secs * 1000);
    }
}

pub fn json_body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The `name`s of a listing answer's `repos`, in order.
pub fn names(r: &Response) -> Vec<String> {
    json_body(r)["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

// Not every test crate uses every part of the kit.
#[allow(unused_imports)]
pub use forgelens::testkit::{b64, mint, webhook_signature, Rng, ADMIN, ADMIN_TOKEN};

/// A read token for `orgs`, valid for five minutes from `T0`, signed with `secret`.
pub fn read_token(secret: &str, orgs: &[&str]) -> String {
    let claims = json!({"exp": T0 / 1000 + 300, "orgs": orgs}).to_string();
    mint(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, secret)
}

/// The webhook secret of `live_world`s.
pub const HOOK_SECRET: &str = "webhook-secret-for-tests";

/// A world that takes signed deliveries (`HOOK_SECRET`) and admin purges, with no memory tier
/// (this isolate's memory would hide what the owner directories answer).
pub fn live_world(owners: &[(&str, usize)]) -> World {
    let mut w = World::new(owners);
    w.vars = vec![
        ("GITHUB_WEBHOOK_SECRET", HOOK_SECRET.into()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("MEMORY_TTL_MS", "0".into()),
    ];
    w
}

/// Posts `body` exactly as given (a captured delivery is replayed byte for byte), signed with
/// `HOOK_SECRET`, under delivery id `id` when given.
pub async fn post_delivery(w: &World, event: &str, body: &[u8], id: Option<&str>) -> Response {
    let signature = webhook_signature(HOOK_SECRET, body);
    let mut headers = vec![
        ("X-GitHub-Event", event),
        ("X-Hub-Signature-256", signature.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(id) = id {
        headers.push(("X-GitHub-Delivery", id));
    }
    w.fetch("POST", "/v1/webhooks/github", &headers, body).await
}

pub fn send_delivery(w: &World, event: &str, body: &[u8], id: Option<&str>) -> Response {
    block_on(post_delivery(w, event, body, id))
}

pub async fn deliver_async(w: &World, event: &str, payload: &Value, id: Option<&str>) -> Response {
    post_delivery(w, event, payload.to_string().as_bytes(), id).await
}

/// Fires the owner's alarms, each when it is due, until none is due within `within_ms`.
pub fn fire_alarms(w: &World, owner: &str, within_ms: u64) {
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = forgelens::names::Owner::parse(owner).unwrap();
    let until = w.clock.0.get() + within_ms;
    while let Some(at) = owners.alarm_at(&owner).filter(|at| *at <= until) {
        w.clock.0.set(w.clock.0.get().max(at));
        block_on(owners.alarm(&owner));
    }
}

pub fn deliver(w: &World, event: &str, payload: &Value, id: Option<&str>) -> Response {
    block_on(deliver_async(w, event, payload, id))
}

/// A `repository` event's payload.
pub fn repo_event(action: &str, full_name: &str) -> Value {
    json!({"action": action, "repository": {"full_name": full_name, "default_branch": "main"}})
}

/// A push to the default branch.
pub fn push(full_name: &str) -> Value {
    json!({"ref": "refs/heads/main", "repository": {"full_name": full_name, "default_branch": "main"}})
}

/// Listing pages GitHub was asked for (not revalidations).
pub fn pages(w: &World) -> usize {
    w.gh.calls
        .borrow()
        .iter()
        .filter(|b| b["variables"].get("owner").is_some())
        .count()
}

/// The owner's listing as stored in KV.
pub fn stored_listing(w: &World, owner: &str) -> Value {
    let text = w.store.data.borrow()[&format!("v1:org:{owner}")].0.clone();
    serde_json::from_str(&text).unwrap()
}

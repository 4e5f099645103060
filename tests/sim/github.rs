//! GitHub's truth as a model: owners, their repositories and each one's visibility, archived
//! state and CI, with every past version kept so an answer can lag a change; answering the
//! worker's GraphQL queries (owner pages by name cursor, aliased repository lookups) after a
//! seeded latency, or failing as the weather says. And the organization hook's deliveries API
//! (list, newest first, with `Link` cursors; attempts), so delivery recovery runs against it.

use super::exec::Sched;
use forgelens::forge::{HttpCall, HttpReply};
use forgelens::service::Transport;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoState {
    pub name: String,
    pub visibility: &'static str,
    pub archived: bool,
    /// A fork (detached from its network, it is not).
    pub fork: bool,
    /// `None`: an empty repository (no default branch, no CI).
    pub ci: Option<&'static str>,
    pub pushes: u32,
}

/// Lowercased owner → lowercased name → state.
pub type Truth = BTreeMap<String, BTreeMap<String, RepoState>>;

/// A sent call: (time, owner, is a listing page, names asked, sent by a directory).
pub type Call = (u64, String, bool, usize, bool);

/// One delivery GitHub made, or failed to make, to the owner's organization hook.
#[derive(Debug, Clone)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub at_ms: u64,
    /// The worker's answer; 0 when it never arrived (lost).
    pub status: u16,
    pub redelivery: bool,
    pub event: &'static str,
    pub action: Option<&'static str>,
    pub text: String,
    /// The simulation's change it carries: its id, when it was made, the names it narrowed.
    pub change: u64,
    pub changed_at: u64,
    pub narrowed: Vec<String>,
}

/// How GitHub behaves now: the chance (in 100) that a call fails, and whether answers may lag.
#[derive(Debug, Default, Clone, Copy)]
pub struct Weather {
    pub fail_in_100: u32,
    pub lag_ms: u64,
}

pub struct SimGitHub<'a> {
    sched: &'a Sched,
    /// Versions of the truth with the time each began (the last is now).
    pub history: RefCell<Vec<(u64, Truth)>>,
    pub weather: Cell<Weather>,
    pub calls: RefCell<Vec<Call>>,
    pub faults: Cell<u64>,
    pub lagged: Cell<u64>,
    /// When a spent rate limit resets (GitHub refuses until then).
    pub limited_until: Cell<u64>,
    /// The organization hook's deliveries, oldest first.
    pub hook: RefCell<Vec<HookDelivery>>,
    /// Deliveries the worker asked GitHub to send again (`POST …/attempts`), not yet sent.
    pub redeliver: RefCell<Vec<u64>>,
    /// Pages of one part that fail, however the weather is: part → how many more.
    pub stream_faults: RefCell<BTreeMap<Part, u32>>,
    /// When a stream fault last fired.
    pub stream_fault_at: Cell<u64>,
    /// Listing pages of the owner's object in flight now, and the most there ever were.
    pub pages_in_flight: Cell<usize>,
    pub peak_pages_in_flight: Cell<usize>,
    /// Listing pages asked with every part's count beside them, of one part, from the back.
    pub counted_pages: Cell<u64>,
    pub part_pages: Cell<u64>,
    pub back_pages: Cell<u64>,
}

/// A part of an owner's listing as GitHub's `repositories` filters name it: `visibility`,
/// `isArchived`, `isFork`.
pub type Part = (&'static str, bool, bool);

/// The twelve parts, in the order of the worker's count aliases (`Part::all`).
pub fn parts() -> [Part; 12] {
    std::array::from_fn(|i| {
        (
            ["PUBLIC", "PRIVATE", "INTERNAL"][i / 4],
            i % 4 >= 2,
            i % 2 == 1,
        )
    })
}

/// The part `r` is in.
pub fn part_of(r: &RepoState) -> Part {
    let v = parts()
        .iter()
        .map(|p| p.0)
        .find(|v| *v == r.visibility)
        .unwrap_or("PUBLIC");
    (v, r.archived, r.fork)
}

/// One `repositories(…)` connection of a query: its alias (`p3`, or none), its arguments.
struct Connection<'q> {
    alias: &'q str,
    args: &'q str,
}

fn connections(query: &str) -> Vec<Connection<'_>> {
    query
        .match_indices("repositories(")
        .map(|(at, _)| {
            let before = query[..at].trim_end();
            let alias = before
                .strip_suffix(':')
                .map_or("", |b| b.rsplit([' ', '{']).next().unwrap_or(""));
            let rest = &query[at + "repositories(".len()..];
            Connection {
                alias,
                args: &rest[..rest.find(')').unwrap_or(rest.len())],
            }
        })
        .collect()
}

/// The part a connection's arguments filter on (`None`: the whole listing). Panics on a
/// filter GitHub would refuse or this model does not know.
fn filter(args: &str) -> Option<Part> {
    let arg = |name: &str| -> Option<&str> {
        let from = args.find(&format!("{name}: "))? + name.len() + 2;
        let rest = &args[from..];
        Some(&rest[..rest.find([',', ' ']).unwrap_or(rest.len())])
    };
    match (arg("visibility"), arg("isArchived"), arg("isFork")) {
        (None, None, None) => None,
        (Some(v), Some(a), Some(f)) => {
            let v = parts()
                .iter()
                .map(|p| p.0)
                .find(|x| *x == v)
                .unwrap_or_else(|| panic!("GitHub refuses visibility: {v}"));
            assert!(["true", "false"].contains(&a) && ["true", "false"].contains(&f));
            Some((v, a == "true", f == "true"))
        }
        other => panic!("a part names all three filters: {other:?}"),
    }
}

/// What an owner page asks: the part of the connection that carries `$first` (`None`: the
/// whole listing), and whether from the back (`last`/`before`).
fn page_ask(query: &str) -> (Option<Part>, bool) {
    let page = connections(query)
        .into_iter()
        .find(|c| c.args.contains("$first"))
        .expect("an owner page asks one connection with $first");
    let back = page.args.contains("last: $first");
    assert!(back != page.args.contains("first: $first"), "{}", page.args);
    assert!(page.args.contains(if back {
        "before: $cursor"
    } else {
        "after: $cursor"
    }));
    (filter(page.args), back)
}

impl<'a> SimGitHub<'a> {
    pub fn new(sched: &'a Sched, truth: Truth) -> SimGitHub<'a> {
        SimGitHub {
            sched,
            history: RefCell::new(vec![(sched.now.get(), truth)]),
            weather: Cell::default(),
            calls: RefCell::default(),
            faults: Cell::new(0),
            lagged: Cell::new(0),
            limited_until: Cell::new(0),
            hook: RefCell::default(),
            redeliver: RefCell::default(),
            stream_faults: RefCell::default(),
            stream_fault_at: Cell::new(0),
            pages_in_flight: Cell::new(0),
            peak_pages_in_flight: Cell::new(0),
            counted_pages: Cell::new(0),
            part_pages: Cell::new(0),
            back_pages: Cell::new(0),
        }
    }

    /// Records a delivery to the hook (its `id` is the next one).
    pub fn record(&self, mut d: HookDelivery) {
        let mut hook = self.hook.borrow_mut();
        d.id = hook.len() as u64 + 1;
        hook.push(d);
    }

    /// The hook's deliveries API, or `None` for a GraphQL call. No weather: recovery runs once
    /// faults have stopped.
    fn deliveries_api(&self, call: &HttpCall) -> Option<HttpReply> {
        let (path, query) = call.url.split_once('?').unwrap_or((call.url.as_str(), ""));
        let tail = path.split_once("/hooks/")?.1;
        if call.method == "POST" {
            let id: u64 = tail.split('/').nth(2)?.parse().ok()?;
            let known = self.hook.borrow().iter().any(|d| d.id == id);
            if !known {
                return Some(reply(404, &json!({"message": "Not Found"})));
            }
            self.redeliver.borrow_mut().push(id);
            return Some(reply(202, &json!({})));
        }
        let from: usize = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "cursor")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let hook = self.hook.borrow();
        let newest_first: Vec<Value> = hook
            .iter()
            .rev()
            .skip(from)
            .take(100)
            .map(|d| {
                json!({"id": d.id, "guid": d.guid, "redelivery": d.redelivery,
                    "delivered_at": forgelens::time::format_rfc3339(d.at_ms),
                    "status_code": d.status, "event": d.event, "action": d.action})
            })
            .collect();
        let mut r = reply(200, &Value::Array(newest_first));
        if from + 100 < hook.len() {
            let next = format!("{path}?per_page=100&cursor={}", from + 100);
            r.headers
                .push(("link".into(), format!("<{next}>; rel=\"next\"")));
        }
        Some(r)
    }

    pub fn truth(&self) -> Truth {
        self.history
            .borrow()
            .last()
            .map(|v| v.1.clone())
            .unwrap_or_default()
    }

    /// Changes the truth now.
    pub fn change(&self, f: impl FnOnce(&mut Truth)) {
        let mut next = self.truth();
        f(&mut next);
        let mut h = self.history.borrow_mut();
        h.push((self.sched.now.get(), next));
        // Only what an answer can still lag to is kept.
        let keep_from = self.sched.now.get().saturating_sub(10_000);
        while h.len() > 2 && h.get(1).is_some_and(|v| v.0 <= keep_from) {
            h.remove(0);
        }
    }

    /// The truth as of `at_ms`.
    fn truth_at(&self, at_ms: u64) -> Truth {
        let h = self.history.borrow();
        h.iter()
            .rev()
            .find(|v| v.0 <= at_ms)
            .or_else(|| h.first())
            .map(|v| v.1.clone())
            .unwrap_or_default()
    }

    fn node(owner: &str, r: &RepoState) -> Value {
        let branch = r.ci.map(|state| {
            json!({"name": "main", "target": {"oid": format!("sha{}", r.pushes), "statusCheckRollup": {"state": state}}})
        });
        json!({"name": r.name, "owner": {"login": owner}, "nameWithOwner": format!("{owner}/{}", r.name),
            "url": format!("https://github.com/{owner}/{}", r.name), "description": null,
            "visibility": r.visibility, "isPrivate": r.visibility != "PUBLIC",
            "isArchived": r.archived, "isDisabled": false, "isFork": r.fork,
            "pushedAt": format!("2026-01-01T00:00:{:02}Z", r.pushes % 60),
            "updatedAt": "2026-01-02T00:00:00Z", "primaryLanguage": null,
            "defaultBranchRef": branch})
    }

    fn rate(&self) -> Value {
        let reset = forgelens::time::format_rfc3339(self.sched.now.get() + 3_600_000);
        json!({"cost": 1, "remaining": 4000, "limit": 5000, "resetAt": reset})
    }

    fn answer(&self, body: &Value, truth: &Truth) -> Value {
        let vars = &body["variables"];
        if let Some(owner) = vars.get("owner").and_then(Value::as_str) {
            let Some(repos) = truth.get(&owner.to_ascii_lowercase()) else {
                return json!({"data": {"repositoryOwner": null}, "errors": [{"type": "NOT_FOUND", "path": ["repositoryOwner"]}]});
            };
            let first = vars["first"].as_u64().unwrap_or(100) as usize;
            assert!((1..=100).contains(&first), "GitHub refuses first: {first}");
            let query = body["query"].as_str().unwrap_or("");
            let (part, back) = page_ask(query);
            // Names are keys, lowercased: GitHub's order (case-insensitive) and its cursors.
            let at = vars["cursor"].as_str().map(str::to_string);
            let listed: Vec<&RepoState> = repos
                .values()
                .filter(|r| part.is_none_or(|p| part_of(r) == p))
                .collect();
            let key = |r: &RepoState| r.name.to_ascii_lowercase();
            let (page, more): (Vec<&RepoState>, bool) = if back {
                let before: Vec<&RepoState> = listed
                    .iter()
                    .copied()
                    .filter(|r| at.as_ref().is_none_or(|a| key(r) < *a))
                    .collect();
                let from = before.len().saturating_sub(first);
                (before[from..].to_vec(), from > 0)
            } else {
                let after: Vec<&RepoState> = listed
                    .iter()
                    .copied()
                    .filter(|r| at.as_ref().is_none_or(|a| key(r) > *a))
                    .collect();
                let more = after.len() > first;
                (after.into_iter().take(first).collect(), more)
            };
            // A back page's `pageInfo` is aliased to a front page's names by the query.
            let cursor = if back { page.first() } else { page.last() }.map(|r| key(r));
            let nodes: Vec<Value> = page.iter().map(|r| Self::node(owner, r)).collect();
            let mut found = json!({"login": owner, "repositories": {"totalCount": listed.len(), "nodes": nodes,
                "pageInfo": {"hasNextPage": more, "endCursor": cursor}}});
            for c in connections(query)
                .iter()
                .filter(|c| !c.args.contains("$first"))
            {
                assert!(c.args.starts_with("first: 1, "), "{}", c.args);
                let counted = filter(c.args);
                let n = repos
                    .values()
                    .filter(|r| counted.is_none_or(|p| part_of(r) == p))
                    .count();
                found[c.alias] = json!({"totalCount": n});
            }
            return json!({"data": {"rateLimit": self.rate(), "repositoryOwner": found}});
        }
        let mut data = serde_json::Map::new();
        data.insert("rateLimit".into(), self.rate());
        let mut errors = Vec::new();
        for i in 0.. {
            let (Some(o), Some(n)) = (vars.get(format!("o{i}")), vars.get(format!("n{i}"))) else {
                break;
            };
            let (o, n) = (o.as_str().unwrap_or(""), n.as_str().unwrap_or(""));
            let found = truth
                .get(&o.to_ascii_lowercase())
                .and_then(|repos| repos.get(&n.to_ascii_lowercase()));
            match found {
                Some(r) => {
                    data.insert(format!("r{i}"), Self::node(o, r));
                }
                None => {
                    errors.push(json!({"type": "NOT_FOUND", "path": [format!("r{i}")]}));
                    data.insert(format!("r{i}"), Value::Null);
                }
            }
        }
        json!({"data": data, "errors": errors})
    }
}

impl SimGitHub<'_> {
    /// GitHub's answer to a spent budget: HTTP 200, `RATE_LIMITED`, the reset in a header.
    fn spent(&self) -> HttpReply {
        let reset_s = self.limited_until.get().div_ceil(1000);
        HttpReply {
            status: 200,
            headers: vec![
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-reset".into(), reset_s.to_string()),
            ],
            body:
                json!({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]})
                    .to_string()
                    .into_bytes(),
        }
    }
}

fn reply(status: u16, body: &Value) -> HttpReply {
    HttpReply {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

impl Transport for SimGitHub<'_> {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        self.send_from(call, timeout_ms, false).await
    }
}

/// GitHub as the owner directories reach it: the same model, their calls told apart (the
/// bounded-cost check counts a directory's revalidations, not single and batch reads).
pub struct FromDirectory<'a>(pub &'a SimGitHub<'a>);

impl Transport for FromDirectory<'_> {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        self.0.send_from(call, timeout_ms, true).await
    }
}

impl SimGitHub<'_> {
    async fn send_from(
        &self,
        call: &HttpCall,
        timeout_ms: u64,
        directory: bool,
    ) -> Result<HttpReply, String> {
        if let Some(reply) = self.deliveries_api(call) {
            self.sched.sleep(20 + self.sched.below(200) as u64).await;
            return Ok(reply);
        }
        let body: Value = serde_json::from_str(&call.body).map_err(|e| e.to_string())?;
        let vars = &body["variables"];
        let page = vars.get("owner").is_some();
        let owner = vars
            .get("owner")
            .or_else(|| vars.get("o0"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let names = vars.as_object().map_or(0, |v| v.len() / 2);
        self.calls
            .borrow_mut()
            .push((self.sched.now.get(), owner, page, names, directory));
        let _in_flight = (page && directory).then(|| PageInFlight::new(self));
        if page {
            let query = body["query"].as_str().unwrap_or("");
            let (part, back) = page_ask(query);
            let bump = |c: &Cell<u64>, yes: bool| c.set(c.get() + u64::from(yes));
            bump(&self.counted_pages, query.contains("p0:"));
            bump(&self.part_pages, part.is_some());
            bump(&self.back_pages, back);
        }
        let weather = self.weather.get();
        if self.sched.now.get() < self.limited_until.get() {
            // Still spent (a call sent before the worker heard of the limit): refused again.
            self.sched.sleep(20).await;
            return Ok(self.spent());
        }
        let latency = 20 + self.sched.below(1_500) as u64;
        let fails = weather.fail_in_100 > 0 && self.sched.below(100) < weather.fail_in_100 as usize;
        if fails && self.sched.chance(4) && latency + 10_000 > timeout_ms {
            self.faults.set(self.faults.get() + 1);
            self.sched.sleep(timeout_ms).await;
            return Err(format!("no reply within {timeout_ms} ms"));
        }
        // A part whose pages fail, whatever the weather (one stream of a build).
        let part = page
            .then(|| page_ask(body["query"].as_str().unwrap_or("")).0)
            .flatten();
        let stream_fault = part.is_some_and(|p| {
            let mut faults = self.stream_faults.borrow_mut();
            let left = faults.get_mut(&p).filter(|n| **n > 0);
            left.map(|n| *n -= 1).is_some()
        });
        if stream_fault {
            self.stream_fault_at.set(self.sched.now.get());
            self.faults.set(self.faults.get() + 1);
            if self.sched.chance(4) {
                self.sched.sleep(timeout_ms).await;
                self.stream_fault_at.set(self.sched.now.get());
                return Err(format!("no reply within {timeout_ms} ms"));
            }
        }
        self.sched.sleep(latency.min(timeout_ms)).await;
        if latency >= timeout_ms {
            return Err(format!("no reply within {timeout_ms} ms"));
        }
        if stream_fault {
            self.stream_fault_at.set(self.sched.now.get());
            return Ok(if self.sched.chance(2) {
                reply(502, &json!("bad gateway"))
            } else {
                reply(
                    200,
                    &json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug."}]}),
                )
            });
        }
        if fails {
            self.faults.set(self.faults.get() + 1);
            return Ok(match self.sched.below(3) {
                0 => reply(502, &json!("bad gateway")),
                1 => reply(
                    200,
                    &json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug."}]}),
                ),
                _ => {
                    // A spent budget: refused until the reset.
                    let reset_s = self.sched.now.get() / 1000 + 5 + self.sched.below(20) as u64;
                    self.limited_until.set(reset_s * 1000);
                    self.spent()
                }
            });
        }
        // The answer reflects the truth when GitHub read it: now, or a moment ago when it lags.
        let mut at = self.sched.now.get();
        if weather.lag_ms > 0 && self.sched.chance(3) {
            at = at.saturating_sub(self.sched.below(weather.lag_ms as usize) as u64);
            self.lagged.set(self.lagged.get() + 1);
        }
        Ok(reply(200, &self.answer(&body, &self.truth_at(at))))
    }
}

/// Counts a listing page of an object in flight until dropped.
struct PageInFlight<'g, 'a>(&'g SimGitHub<'a>);

impl<'g, 'a> PageInFlight<'g, 'a> {
    fn new(gh: &'g SimGitHub<'a>) -> Self {
        gh.pages_in_flight.set(gh.pages_in_flight.get() + 1);
        gh.peak_pages_in_flight
            .set(gh.peak_pages_in_flight.get().max(gh.pages_in_flight.get()));
        PageInFlight(gh)
    }
}

impl Drop for PageInFlight<'_, '_> {
    fn drop(&mut self) {
        self.0.pages_in_flight.set(self.0.pages_in_flight.get() - 1);
    }
}

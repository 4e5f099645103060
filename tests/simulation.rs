//! A deterministic simulation of the read and delivery paths: GitHub's truth as a model, KV, the
//! owner directories with their alarms, and a seeded scheduler that picks which pending task
//! proceeds at every await, on one virtual clock. Each seed draws a run of operations (reads,
//! GitHub changes with their signed deliveries delivered, lost, duplicated, replayed, delayed or
//! reordered, purges, installation events, evictions) and faults (GitHub 5xx, timeouts, "Something
//! went wrong", rate limits, answers lagging a change, KV refusals, late alarms), and checks
//! DESIGN.md's correctness invariants as it goes and once faults stop.
//!
//! `SIM_SEEDS=n` runs n seeds (default: enough for about a minute in CI), `SIM_SEED=s` replays one
//! seed exactly, `SIM_STEPS=k` sets the operations per seed. A failure prints the seed, the
//! invariant and the trace of the steps that led to it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod sim;

use forgelens::http::Response;
use forgelens::testkit::{mint, webhook_signature, ADMIN_TOKEN};
use serde_json::{json, Value};
use sim::exec::{run, Sched, SimClock, Spawner, Stuck};
use sim::github::{FromDirectory, RepoState, SimGitHub, Truth, Weather};
use sim::world::{SimStore, SimWorld};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

pub const T0: u64 = 1_700_000_000_000;
const SECRET: &str = "simulation-webhook-secret";
const READ_SECRET: &str = "simulation-read-token-secret-0123456789";
const OWNER: &str = "acme";
const FRESH_TTL_S: u64 = 300;

/// What the checks remember of the run.
#[derive(Default)]
struct Book {
    /// Per name: the id of its last change in GitHub's truth, and when it happened.
    last_change: HashMap<String, (u64, u64)>,
    /// Per name: the last time GitHub's truth made it visible to anonymous callers (publicized,
    /// created).
    widened_at: HashMap<String, u64>,
    /// Per name: a narrowing change (time) whose delivery was answered 2xx (time).
    hidden: HashMap<String, (u64, u64)>,
    /// Changes whose delivery was answered 2xx.
    delivered: std::collections::HashSet<u64>,
    /// Whether any answer lagged (then only narrowing changes must be in the listing at once).
    violations: Vec<String>,
    /// Owner-level invalidations answered 2xx: (sent, answered).
    purged: Vec<(u64, u64)>,
    counts: BTreeMap<&'static str, u64>,
    next_change: u64,
}

struct Run<'a> {
    w: &'a SimWorld<'a>,
    book: RefCell<Book>,
    steps: usize,
}

fn node_name(i: usize) -> String {
    format!("r{i:03}")
}

fn initial(sched: &Sched) -> (Truth, usize) {
    let n = [3, 40, 130, 260][sched.below(4)];
    let mut repos = BTreeMap::new();
    for i in 0..n {
        let visibility = match i % 7 {
            3 => "PRIVATE",
            6 => "INTERNAL",
            _ => "PUBLIC",
        };
        let ci = [Some("SUCCESS"), Some("FAILURE"), None][i % 3];
        repos.insert(
            node_name(i),
            RepoState {
                name: node_name(i),
                visibility,
                archived: i % 11 == 10,
                ci,
                pushes: 0,
            },
        );
    }
    let mut truth = Truth::new();
    truth.insert(OWNER.into(), repos);
    (truth, n)
}

fn token() -> String {
    let claims = json!({"exp": T0 / 1000 + 100_000, "orgs": [OWNER]}).to_string();
    format!(
        "Bearer {}",
        mint(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, READ_SECRET)
    )
}

fn body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

impl<'a> Run<'a> {
    fn count(&self, what: &'static str) {
        *self.book.borrow_mut().counts.entry(what).or_default() += 1;
    }

    fn violate(&self, invariant: &str, detail: String) {
        let line = format!("{invariant}: {detail}");
        self.w.note(format!("VIOLATION {line}"));
        self.book.borrow_mut().violations.push(line);
    }

    /// A status no request may answer: a 500 ever, a 5xx when nothing failed.
    fn check_status(&self, what: &str, r: &Response, faults_possible: bool) {
        if r.status == 500 || (r.status >= 500 && !faults_possible) {
            self.violate(
                "no 5xx",
                format!(
                    "{what} answered {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
            );
        }
    }

    fn faulty(&self) -> bool {
        self.w.gh.weather.get().fail_in_100 > 0 || self.w.store.refuse_in_100.get() > 0
    }

    /// An anonymous listing: nothing answered narrowed before it began may show.
    async fn read_anonymous(&'a self, sp: Spawner<'a>) {
        let started = self.w.sched.now.get();
        let faulty = self.faulty();
        let r = self
            .w
            .fetch(
                sp,
                "GET",
                &format!("/v1/orgs/{OWNER}/repos?fields=name,visibility"),
                &[],
                b"",
            )
            .await;
        self.check_status("anonymous listing", &r, faulty || self.faulty());
        self.w.note(format!(
            "read anonymous -> {} {} ({}) fetched_at {}",
            r.status,
            r.header("x-cache").unwrap_or(""),
            r.header("server-timing").unwrap_or(""),
            body(&r)["fetched_at"]
        ));
        if r.status != 200 {
            return;
        }
        let b = body(&r);
        // An owner-level invalidation answered before this read began throws every copy of the
        // listing away: what is read was built after it was sent.
        let fetched = b["fetched_at"]
            .as_str()
            .and_then(forgelens::time::parse_rfc3339)
            .unwrap_or(0);
        let purge = self
            .book
            .borrow()
            .purged
            .iter()
            .filter(|p| p.1 <= started)
            .map(|p| p.0)
            .max();
        if let Some(sent) = purge.filter(|&sent| fetched < sent) {
            self.violate(
                "owner-level invalidation",
                format!(
                    "a read begun at {} got a listing built at {}, before the invalidation sent at {}",
                    started - T0,
                    fetched.saturating_sub(T0),
                    sent - T0
                ),
            );
        }
        let book = self.book.borrow();
        for repo in b["repos"].as_array().into_iter().flatten() {
            let name = repo["name"].as_str().unwrap_or("").to_ascii_lowercase();
            if repo["visibility"] != "public" {
                drop(book);
                self.violate(
                    "hidden",
                    format!(
                        "an anonymous listing shows {name} as {}",
                        repo["visibility"]
                    ),
                );
                return;
            }
            if let Some(&(changed, answered)) = book.hidden.get(&name) {
                let widened = book.widened_at.get(&name).copied().unwrap_or(0);
                if answered <= started && widened < changed {
                    let detail = format!(
                        "{name} narrowed at {}, its delivery answered at {}, shown public to a read begun at {}",
                        changed - T0,
                        answered - T0,
                        started - T0
                    );
                    drop(book);
                    self.violate("never widen", detail);
                    return;
                }
            }
        }
    }

    async fn read_other(&'a self, sp: Spawner<'a>) {
        let tok = token();
        let (path, auth): (String, Vec<(&str, &str)>) = match self.w.sched.below(4) {
            0 => (format!("/v1/orgs/{OWNER}/summary"), vec![]),
            1 => (
                format!("/v1/orgs/{OWNER}/repos"),
                vec![("Authorization", tok.as_str())],
            ),
            2 => (
                format!("/v1/repos/{OWNER}/{}", node_name(self.w.sched.below(20))),
                vec![],
            ),
            _ => (
                format!("/v1/repos?names={OWNER}/r001,{OWNER}/r002,{OWNER}/n001"),
                vec![],
            ),
        };
        let faulty = self.faulty();
        let r = self.w.fetch(sp, "GET", &path, &auth, b"").await;
        self.check_status(&path, &r, faulty || self.faulty());
        self.w.note(format!("read {path} -> {}", r.status));
    }

    /// One change in GitHub's truth, and its delivery as the seed says: delivered (perhaps late,
    /// perhaps twice, perhaps replayed later), or lost.
    async fn change(&'a self, sp: Spawner<'a>) {
        let w = self.w;
        let truth = w.gh.truth();
        let repos = truth.get(OWNER).cloned().unwrap_or_default();
        let pick = w.sched.below(repos.len() + 3);
        let existing = repos.values().nth(pick).cloned();
        let kinds: &[&str] = if existing.is_some() {
            &[
                "privatize",
                "publicize",
                "archive",
                "unarchive",
                "ci",
                "push",
                "delete",
            ]
        } else {
            &["create"]
        };
        let kind = kinds[w.sched.below(kinds.len())];
        let name = match &existing {
            Some(r) => r.name.clone(),
            None => format!("n{:03}", w.sched.below(30)),
        };
        let key = name.to_ascii_lowercase();
        let now = w.sched.now.get();
        let (event, action, narrows, widens) = match kind {
            "privatize" => ("repository", Some("privatized"), true, false),
            "publicize" => ("repository", Some("publicized"), false, true),
            "archive" => ("repository", Some("archived"), false, false),
            "unarchive" => ("repository", Some("unarchived"), false, false),
            "delete" => ("repository", Some("deleted"), true, false),
            "create" => ("repository", Some("created"), false, true),
            "ci" => ("check_suite", Some("completed"), false, false),
            _ => ("push", None, false, false),
        };
        if kind == "create" && repos.contains_key(&key) {
            return;
        }
        w.gh.change(|t| {
            let repos = t.entry(OWNER.into()).or_default();
            match kind {
                "delete" => {
                    repos.remove(&key);
                }
                "create" => {
                    repos.insert(
                        key.clone(),
                        RepoState {
                            name: name.clone(),
                            visibility: "PUBLIC",
                            archived: false,
                            ci: None,
                            pushes: 0,
                        },
                    );
                }
                _ => {
                    if let Some(r) = repos.get_mut(&key) {
                        match kind {
                            "privatize" => r.visibility = "PRIVATE",
                            "publicize" => r.visibility = "PUBLIC",
                            "archive" => r.archived = true,
                            "unarchive" => r.archived = false,
                            "ci" => {
                                r.ci = Some(if r.ci == Some("SUCCESS") {
                                    "FAILURE"
                                } else {
                                    "SUCCESS"
                                });
                            }
                            _ => {
                                r.pushes += 1;
                                r.ci.get_or_insert("PENDING");
                            }
                        }
                    }
                }
            }
        });
        let id = {
            let mut book = self.book.borrow_mut();
            book.next_change += 1;
            let id = book.next_change;
            book.last_change.insert(key.clone(), (id, now));
            if widens {
                book.widened_at.insert(key.clone(), now);
            }
            id
        };
        self.count(kind);
        // A genuine delivery's body is its own (GitHub's carry ids and times); a replay is the
        // same bytes again.
        let mut payload = json!({"repository": {"full_name": format!("{OWNER}/{name}"), "default_branch": "main"},
            "sender": {"id": id}});
        if let Some(a) = action {
            payload["action"] = json!(a);
        }
        if event == "push" {
            payload["ref"] = json!("refs/heads/main");
        }
        if event == "check_suite" {
            payload["check_suite"] = json!({"head_branch": "main"});
        }
        let text = payload.to_string();
        let how = w.sched.below(100);
        let (copies, lost) = match how {
            0..=9 => (0, true),
            10..=19 => (2, false),
            _ => (1, false),
        };
        w.note(format!(
            "change #{id} {kind} {name}: {}",
            if lost {
                "delivery lost".to_string()
            } else {
                format!("{copies} deliveries")
            }
        ));
        if lost {
            self.count("delivery lost");
            return;
        }
        for copy in 0..copies {
            let delay = if w.sched.chance(4) {
                w.sched.below(8_000) as u64
            } else {
                0
            };
            let text = text.clone();
            let sp2 = sp.clone();
            let replay_later = w.sched.chance(8);
            let key = key.clone();
            sp.spawn(format!("delivery #{id}.{copy}"), async move {
                self.w.sched.sleep(delay).await;
                let ok = self.deliver(sp2.clone(), event, &text, id).await;
                if ok && narrows {
                    let answered = self.w.sched.now.get();
                    let mut book = self.book.borrow_mut();
                    let widened = book.widened_at.get(&key).copied().unwrap_or(0);
                    let newer = book.hidden.get(&key).is_none_or(|h| h.0 <= now);
                    if widened < now && newer {
                        book.hidden.insert(key.clone(), (now, answered));
                    }
                }
                if replay_later {
                    self.w.sched.sleep(self.w.sched.below(20_000) as u64).await;
                    self.count("replay");
                    self.deliver(sp2, event, &text, id).await;
                }
            });
        }
    }

    /// Sends a signed delivery; true when answered 2xx.
    async fn deliver(&'a self, sp: Spawner<'a>, event: &str, text: &str, id: u64) -> bool {
        let signature = webhook_signature(SECRET, text.as_bytes());
        let delivery = format!("d-{}", self.w.sched.below(1_000_000));
        let headers = [
            ("X-GitHub-Event", event),
            ("X-Hub-Signature-256", signature.as_str()),
            ("Content-Type", "application/json"),
            ("X-GitHub-Delivery", delivery.as_str()),
        ];
        let faulty = self.faulty();
        self.w.note(format!("delivery #{id} ({event}) sent"));
        let r = self
            .w
            .fetch(sp, "POST", "/v1/webhooks/github", &headers, text.as_bytes())
            .await;
        self.check_status("delivery", &r, faulty || self.faulty());
        self.w
            .note(format!("delivery #{id} ({event}) -> {}", r.status));
        let ok = r.status == 200;
        if ok {
            self.book.borrow_mut().delivered.insert(id);
        }
        ok
    }

    async fn owner_level(&'a self, sp: Spawner<'a>) {
        let faulty = self.faulty();
        let sent = self.w.sched.now.get();
        let r = if self.w.sched.chance(2) {
            let admin = format!("Bearer {ADMIN_TOKEN}");
            let headers = [("Authorization", admin.as_str())];
            self.count("purge");
            self.w
                .fetch(
                    sp,
                    "DELETE",
                    &format!("/v1/cache/orgs/{OWNER}"),
                    &headers,
                    b"",
                )
                .await
        } else {
            self.count("installation event");
            let payload = json!({"action": "added", "installation": {"id": 7, "account": {"login": OWNER}},
                "repositories_added": [{"full_name": format!("{OWNER}/r000")}], "sender": {"id": self.w.sched.below(1 << 30)}});
            let text = payload.to_string();
            let signature = webhook_signature(SECRET, text.as_bytes());
            let headers = [
                ("X-GitHub-Event", "installation_repositories"),
                ("X-Hub-Signature-256", signature.as_str()),
                ("Content-Type", "application/json"),
            ];
            self.w
                .fetch(sp, "POST", "/v1/webhooks/github", &headers, text.as_bytes())
                .await
        };
        self.check_status("owner-level invalidation", &r, faulty || self.faulty());
        if r.status == 200 {
            let answered = self.w.sched.now.get();
            self.book.borrow_mut().purged.push((sent, answered));
        }
        self.w
            .note(format!("owner-level invalidation -> {}", r.status));
    }

    fn weather(&self) {
        let w = self.w;
        let fail = [0, 0, 5, 20, 60][w.sched.below(5)];
        let lag = if w.sched.chance(4) { 3_000 } else { 0 };
        let refuse = [0, 0, 0, 10, 40][w.sched.below(5)];
        w.gh.weather.set(Weather {
            fail_in_100: fail,
            lag_ms: lag,
        });
        w.store.refuse_in_100.set(refuse);
        w.alarm_late_ms.set([0, 0, 2_000, 10_000][w.sched.below(4)]);
        w.note(format!(
            "weather: GitHub fails {fail}%, lags {lag} ms; KV refuses {refuse}%"
        ));
        self.count("weather");
    }

    async fn scenario(&'a self, sp: Spawner<'a>) {
        let w = self.w;
        w.note("start".into());
        for _ in 0..self.steps {
            w.sched.sleep(w.sched.below(2_500) as u64).await;
            let roll = w.sched.below(100);
            let sp2 = sp.clone();
            match roll {
                0..=29 => sp.spawn("read", async move { self.read_anonymous(sp2).await }),
                30..=41 => sp.spawn("read other", async move { self.read_other(sp2).await }),
                42..=76 => self.change(sp.clone()).await,
                77..=80 => sp.spawn("owner-level", async move { self.owner_level(sp2).await }),
                81..=87 => {
                    if w.evict(OWNER) {
                        w.note("evicted".into());
                        self.count("eviction");
                    }
                }
                _ => self.weather(),
            }
        }
        self.settle(sp).await;
        w.stop_alarms.set(true);
    }

    /// Faults stop: every delivery answered 2xx is reflected within a few rounds, and within
    /// `FRESH_TTL_SECONDS` + one build, everything GitHub holds is.
    async fn settle(&'a self, sp: Spawner<'a>) {
        let w = self.w;
        w.gh.weather.set(Weather::default());
        w.store.refuse_in_100.set(0);
        w.alarm_late_ms.set(0);
        w.note("faults stop".into());
        // Delayed deliveries arrive (8 s), replays (20 s), queued rounds retried (5 s), once a
        // spent rate limit has reset.
        let limited = w.gh.limited_until.get().saturating_sub(w.sched.now.get());
        w.sched.sleep(40_000 + limited).await;
        let lagged = w.gh.lagged.get() > 0;
        let listing = self.settled_listing(sp.clone()).await;
        let truth = w.gh.truth();
        let repos = truth.get(OWNER).cloned().unwrap_or_default();
        let lost = self.lost_changes(&listing, &repos, lagged);
        if !lost.is_empty() {
            if std::env::var("SIM_DEBUG").is_ok() {
                let dirs = w.directories.borrow();
                for (k, d) in dirs.iter() {
                    let data = d.storage.data.borrow();
                    let keys: Vec<_> = data.keys().collect();
                    eprintln!(
                        "dir {k}: alarm {:?} keys {keys:?} queue {:?}",
                        d.alarm_at.get(),
                        data.get("queue")
                    );
                    eprintln!("memory: {:?}", d.memory.borrow());
                }
                for (k, v) in w.store.data.borrow().iter() {
                    if !k.starts_with("v1:org") {
                        eprintln!("kv {k} = {v:?}");
                    }
                }
                for c in w.gh.calls.borrow().iter().rev().take(12) {
                    eprintln!("call {:?}", (c.0 - T0, &c.1, c.2, c.3));
                }
            }
            self.violate("no lost change", lost.join("; "));
        }
        // Convergence: past the fresh time, a read starts the rebuild that catches what no
        // delivery said; once it is done the listing is GitHub's truth.
        w.sched.sleep(FRESH_TTL_S * 1000).await;
        let _ = self.settled_listing(sp.clone()).await;
        w.sched.sleep(120_000).await;
        let listing = self.settled_listing(sp).await;
        let want: BTreeMap<String, (String, bool, Option<String>)> =
            w.gh.truth()
                .get(OWNER)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, r)| {
                    (
                        k,
                        (
                            r.visibility.to_ascii_lowercase(),
                            r.archived,
                            r.ci.map(str::to_ascii_lowercase),
                        ),
                    )
                })
                .collect();
        if listing != want {
            let missing: Vec<_> = want.keys().filter(|k| !listing.contains_key(*k)).collect();
            let extra: Vec<_> = listing.keys().filter(|k| !want.contains_key(*k)).collect();
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, v)| listing.get(*k).is_some_and(|l| l != *v))
                .map(|(k, v)| format!("{k}: GitHub {v:?}, listing {:?}", listing[k]))
                .collect();
            self.violate(
                "convergence",
                format!("missing {missing:?}, extra {extra:?}, differ {differ:?}"),
            );
        }
    }

    /// Names whose last change was delivered (answered 2xx) and is not in `listing`.
    fn lost_changes(
        &self,
        listing: &BTreeMap<String, (String, bool, Option<String>)>,
        repos: &BTreeMap<String, RepoState>,
        lagged: bool,
    ) -> Vec<String> {
        let book = self.book.borrow();
        let mut lost = Vec::new();
        for (name, &(id, _)) in &book.last_change {
            if !book.delivered.contains(&id) {
                continue;
            }
            let want = repos.get(name);
            let have = listing.get(name);
            let want_hidden = want.is_none_or(|r| r.visibility != "PUBLIC");
            let have_hidden = have.is_none_or(|r| r.0 != "public");
            // A narrowing is always in at once; a widening only once GitHub's answer had it.
            let hidden_ok = if lagged {
                !want_hidden || have_hidden
            } else {
                want_hidden == have_hidden
            };
            let same = match (want, have) {
                (Some(r), Some(h)) => {
                    (
                        r.visibility.to_ascii_lowercase(),
                        r.archived,
                        r.ci.map(str::to_ascii_lowercase),
                    ) == *h
                }
                (None, None) => true,
                _ => false,
            };
            // With answers lagging, GitHub's own answer may be older than the change: only the
            // narrowing is promised at once.
            if !hidden_ok || (!lagged && !same) {
                lost.push(format!("{name}: GitHub {want:?}, listing {have:?}"));
            }
        }
        lost
    }

    /// The owner's listing as its token sees it, once it answers 200.
    async fn settled_listing(
        &'a self,
        sp: Spawner<'a>,
    ) -> BTreeMap<String, (String, bool, Option<String>)> {
        let tok = token();
        for _ in 0..30 {
            let r = self
                .w
                .fetch(
                    sp.clone(),
                    "GET",
                    &format!("/v1/orgs/{OWNER}/repos?fields=name,visibility,archived,ci"),
                    &[("Authorization", tok.as_str())],
                    b"",
                )
                .await;
            self.check_status("settled listing", &r, false);
            if r.status == 200 {
                return body(&r)["repos"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let ci = r["ci"]["state"].as_str().map(str::to_string);
                        (
                            r["name"].as_str().unwrap_or("").to_ascii_lowercase(),
                            (
                                r["visibility"].as_str().unwrap_or("").to_string(),
                                r["archived"].as_bool().unwrap_or(false),
                                ci,
                            ),
                        )
                    })
                    .collect();
            }
            self.w.sched.sleep(2_000).await;
        }
        self.violate(
            "convergence",
            "the listing never answered 200 once faults stopped".into(),
        );
        BTreeMap::new()
    }

    /// Bounded cost: revalidations of one owner at most one a second (a round, and a build's
    /// catch-up beside it), never over 100 names.
    fn check_cost(&self) {
        let calls = self.w.gh.calls.borrow();
        let revalidations: Vec<(u64, usize)> = calls
            .iter()
            .filter(|c| c.4 && !c.2 && c.1 == OWNER)
            .map(|c| (c.0, c.3))
            .collect();
        for (i, &(at, names)) in revalidations.iter().enumerate() {
            if names > 100 {
                self.violate("bounded cost", format!("a revalidation of {names} names"));
            }
            let within = revalidations[i..]
                .iter()
                .take_while(|c| c.0 < at + 1_000)
                .count();
            if within > 2 {
                if std::env::var("SIM_DEBUG").is_ok() {
                    for c in calls
                        .iter()
                        .filter(|c| c.0 + 3_000 > at && c.0 < at + 3_000)
                    {
                        eprintln!("call {:?}", (c.0 - T0, &c.1, c.2, c.3, c.4));
                    }
                }
                self.violate(
                    "bounded cost",
                    format!(
                        "{within} revalidations of {OWNER} within a second at {}",
                        at - T0
                    ),
                );
                return;
            }
        }
    }
}

/// What one seed did.
struct Outcome {
    violations: Vec<String>,
    trace: Vec<String>,
    steps: u64,
    counts: BTreeMap<&'static str, u64>,
}

fn run_seed(seed: u64, steps: usize) -> Outcome {
    let sched = Sched::new(seed, T0);
    let (truth, _) = initial(&sched);
    let timeout = ["3000", "9000"][sched.below(2)];
    let vars: Vec<(&'static str, String)> = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET.into()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("READ_TOKEN_SECRET", READ_SECRET.into()),
        ("GITHUB_TOKEN", "simulated-token".into()),
        ("MEMORY_TTL_MS", "0".into()),
        ("UPSTREAM_TIMEOUT_MS", timeout.into()),
        ("FRESH_TTL_SECONDS", FRESH_TTL_S.to_string()),
    ];
    let cfg = SimWorld::config(&vars);
    let forge = forgelens::forge::github::GitHub::from_config(&cfg);
    let gh = SimGitHub::new(&sched, truth);
    let world = SimWorld {
        sched: &sched,
        clock: SimClock(&sched),
        store: SimStore::new(&sched),
        gh: &gh,
        gh_dir: FromDirectory(&gh),
        directories: Default::default(),
        vars,
        cfg,
        forge,
        busy: Cell::new(0),
        alarms_busy: Cell::new(false),
        stop_alarms: Cell::new(false),
        alarm_late_ms: Cell::new(0),
        trace: RefCell::default(),
        responses: Cell::new(0),
    };
    let r = Run {
        w: &world,
        book: RefCell::default(),
        steps,
    };
    let result = {
        let sp = Spawner::new();
        let sp2 = sp.clone();
        sp.spawn("scenario", r.scenario(sp2));
        sp.spawn("alarms", world.alarm_daemon());
        run(&sched, &sp, 2_000_000)
    };
    match result {
        Ok(_) => {}
        Err(Stuck::Deadlock(tasks)) => {
            r.violate("progress", format!("deadlock: {tasks:?} wait forever"))
        }
        Err(Stuck::TooManySteps(tasks)) => r.violate("progress", format!("livelock: {tasks:?}")),
    }
    r.check_cost();
    let book = r.book.into_inner();
    let mut counts = book.counts;
    counts.insert("github faults", world.gh.faults.get());
    counts.insert("lagging answers", world.gh.lagged.get());
    counts.insert("kv refusals", world.store.refused.get());
    counts.insert("requests", world.responses.get());
    Outcome {
        violations: book.violations,
        trace: world.trace.into_inner(),
        steps: steps as u64,
        counts,
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs the seeds `SIM_SEED` (one) or `SIM_SEEDS` (how many, from 1), panicking on the first
/// violation with its seed and trace.
fn explore(default_seeds: u64) {
    let steps = env("SIM_STEPS").unwrap_or(60) as usize;
    let seeds: Vec<u64> = match env("SIM_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env("SIM_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let started = std::time::Instant::now();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let progress = std::env::var("SIM_PROGRESS").is_ok();
    for (i, &seed) in seeds.iter().enumerate() {
        let outcome = std::panic::catch_unwind(|| run_seed(seed, steps));
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("seed {seed}: a panic ({why}); replay with SIM_SEED={seed}");
            }
        };
        if !outcome.violations.is_empty() {
            let mut report = String::new();
            let _ = writeln!(
                report,
                "seed {seed} broke an invariant (replay: SIM_SEED={seed}):"
            );
            for v in &outcome.violations {
                let _ = writeln!(report, "  {v}");
            }
            let _ = writeln!(report, "trace (ms since start, last 80 steps):");
            let keep = env("SIM_TRACE").unwrap_or(80) as usize;
            let from = outcome.trace.len().saturating_sub(keep);
            for line in &outcome.trace[from..] {
                let _ = writeln!(report, "  {line}");
            }
            panic!("{report}");
        }
        for (k, v) in outcome.counts {
            *totals.entry(k).or_default() += v;
        }
        *totals.entry("operations").or_default() += outcome.steps;
        if progress && (i + 1) % 100 == 0 {
            eprintln!("{} seeds, {:.0?}", i + 1, started.elapsed());
        }
    }
    eprintln!(
        "simulation: {} seeds in {:.1?}, every invariant held; {totals:?}",
        seeds.len(),
        started.elapsed()
    );
}

/// CI's share: about a minute on two cores (`npm run simulate` explores further).
#[test]
fn the_invariants_hold_under_seeded_interleavings_and_faults() {
    explore(600);
}

//! The simulation's checks beyond what each read checks as it is answered: statuses, the windows
//! in which another location may lag, no lost change and convergence once faults stop, and
//! bounded cost.

use super::exec::Spawner;
use super::github::{RepoState, Weather};
use super::world::LOCATIONS;
use crate::{body, token, Run, FRESH_TTL_S, OWNER, T0};
use forgelens::http::Response;
use std::collections::BTreeMap;

/// A repository as a settled listing shows it: visibility, archived, CI state, fork.
pub(crate) type Seen = (String, bool, Option<String>, bool);

impl<'a> Run<'a> {
    /// A status no request may answer: a 500 ever, a 5xx when nothing failed.
    pub(crate) fn check_status(&self, what: &str, r: &Response, faults_possible: bool) {
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

    /// Called before the weather changes: a failure met under the faults ending now may still be
    /// answered for a while (a request sent under them ends within the upstream timeout, and a
    /// failed build is remembered for `FAILURE_MEMORY_MS`).
    pub(crate) fn faults_end(&self) {
        if self.faulty_weather() || self.stream_faults_pending() {
            let until = self.w.sched.now.get()
                + self.w.cfg.upstream_timeout_ms
                + forgelens::owners::directory::FAILURE_MEMORY_MS;
            self.w.failures_answered_until.set(until);
        }
    }

    /// Whether a request may meet a fault now, or answer one met earlier.
    pub(crate) fn faulty(&self) -> bool {
        // A stream fault is a fault like the weather's: a build it fails may be answered for
        // as long after the fault as one the weather failed.
        let fired = self.w.gh.stream_fault_at.get();
        let stream_until = (fired > 0).then(|| {
            fired + self.w.cfg.upstream_timeout_ms + forgelens::owners::directory::FAILURE_MEMORY_MS
        });
        self.faulty_weather()
            || self.stream_faults_pending()
            || self.w.sched.now.get() < self.w.failures_answered_until.get()
            || stream_until.is_some_and(|t| self.w.sched.now.get() < t)
    }

    /// Whether pages of some part are still to fail.
    pub(crate) fn stream_faults_pending(&self) -> bool {
        self.w.gh.stream_faults.borrow().values().any(|n| *n > 0)
    }

    fn faulty_weather(&self) -> bool {
        self.w.gh.weather.get().fail_in_100 > 0
            || self.w.kv.refuse_in_100.get() > 0
            || self.w.kv.per_key.get()
    }

    /// How long another location may still show what a location answered was gone: what it
    /// read from KV is kept up to the propagation lag, and its memory tier keeps that copy for
    /// `MEMORY_TTL_MS` more.
    pub(crate) fn window(&self) -> u64 {
        self.w.kv.lag_ms.get() + self.w.cfg.memory_ttl_ms
    }

    /// Whether a read at `loc` begun at `started` must no longer show what was answered at
    /// `answered` in location `at`.
    pub(crate) fn bound(&self, loc: usize, started: u64, answered: u64, at: usize) -> bool {
        if at == loc {
            answered <= started
        } else {
            answered + self.window() <= started
        }
    }

    /// Whether a read at `loc` begun at `started` must no longer show a name narrowed as `h`
    /// says: at once where the delivery was applied; in a location that answered a copy later
    /// (found remembered there, its memory dropped), once its KV lag has passed; anywhere, once
    /// the window has passed since it was applied.
    pub(crate) fn must_hide(&self, loc: usize, started: u64, h: &crate::Hidden) -> bool {
        let (first, at) = h.first;
        let copy = h.later[loc].is_some_and(|t| t + self.w.kv.lag_ms.get() <= started);
        self.bound(loc, started, first, at) || copy
    }

    pub(crate) fn location(&self) -> usize {
        self.w.sched.below(LOCATIONS)
    }

    /// Faults stop: every delivery answered 2xx is reflected within a few rounds (and the
    /// other location's lag), and within `FRESH_TTL_SECONDS` + one build, everything GitHub
    /// holds is, in both locations.
    pub(crate) async fn settle(&'a self, sp: Spawner<'a>) {
        let w = self.w;
        self.faults_end();
        w.gh.weather.set(Weather::default());
        w.kv.refuse_in_100.set(0);
        w.kv.per_key.set(false);
        w.alarm_late_ms.set(0);
        w.gh.stream_faults.borrow_mut().clear();
        w.note("faults stop".into());

        // Delayed deliveries arrive (8 s), replays (20 s), queued rounds retried (5 s), once a
        // spent rate limit has reset.
        let limited = w.gh.limited_until.get().saturating_sub(w.sched.now.get());
        let stopped = w.sched.now.get();
        let until = stopped + 40_000 + limited + self.window();
        let mut busy_at = stopped;
        while w.sched.now.get() < until {
            if !w.quiet(OWNER) {
                busy_at = w.sched.now.get();
            }
            w.sched.sleep(250).await;
        }
        self.book.borrow_mut().quiet_after_ms = busy_at - stopped;
        let lagged = w.gh.lagged.get() > 0;
        let loc = self.location();
        let listing = self.settled_listing(sp.clone(), loc).await;
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
                for (k, v) in w.kv.data.borrow().iter() {
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
        // Recovery: one cron run (or a few, 20 redeliveries each) has GitHub send again what
        // it failed to deliver; once those are answered and a round has asked GitHub, both
        // locations show GitHub's truth without waiting for a rebuild (invariant 3) — when the
        // worker could learn the hook at all (every delivery lost: it never heard of it).
        // With answers that lagged, GitHub's own answer to a round may have been older than a
        // widening, which then waits for the rebuild: only what "no lost change" promises holds.
        if self.recover(sp.clone()).await {
            w.sched.sleep(10_000 + self.window()).await;
            for loc in 0..LOCATIONS {
                let listing = self.settled_listing(sp.clone(), loc).await;
                if !lagged {
                    self.converged(loc, &listing);
                    continue;
                }
                let truth = w.gh.truth();
                let repos = truth.get(OWNER).cloned().unwrap_or_default();
                let lost = self.lost_changes(&listing, &repos, lagged);
                if !lost.is_empty() {
                    self.violate("no lost change after recovery", lost.join("; "));
                }
            }
        }
        // Convergence: past the fresh time, a read starts the rebuild that catches what no
        // delivery said; once it is done the listing is GitHub's truth.
        w.sched.sleep(FRESH_TTL_S * 1000).await;
        let _ = self.settled_listing(sp.clone(), self.location()).await;
        w.sched.sleep(120_000).await;
        for loc in 0..LOCATIONS {
            let listing = self.settled_listing(sp.clone(), loc).await;
            self.converged(loc, &listing);
        }
    }

    /// Convergence: once faults stopped long enough, `listing` (read at `loc`) is GitHub's truth.
    pub(crate) fn converged(&self, loc: usize, listing: &BTreeMap<String, Seen>) {
        let w = self.w;
        let want: BTreeMap<String, Seen> =
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
                            r.fork,
                        ),
                    )
                })
                .collect();
        if *listing != want {
            let missing: Vec<_> = want.keys().filter(|k| !listing.contains_key(*k)).collect();
            let extra: Vec<_> = listing.keys().filter(|k| !want.contains_key(*k)).collect();
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, v)| listing.get(*k).is_some_and(|l| l != *v))
                .map(|(k, v)| format!("{k}: GitHub {v:?}, listing {:?}", listing[k]))
                .collect();
            self.violate(
                "convergence",
                format!("at {loc}: missing {missing:?}, extra {extra:?}, differ {differ:?}"),
            );
        }
    }

    /// Names whose last change was delivered (answered 2xx) and is not in `listing`.
    pub(crate) fn lost_changes(
        &self,
        listing: &BTreeMap<String, Seen>,
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
                        r.fork,
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
    pub(crate) async fn settled_listing(
        &'a self,
        sp: Spawner<'a>,
        loc: usize,
    ) -> BTreeMap<String, Seen> {
        let tok = token();
        for _ in 0..30 {
            let r = self
                .w
                .fetch(
                    sp.clone(),
                    loc,
                    "GET",
                    &format!("/v1/orgs/{OWNER}/repos?fields=name,visibility,archived,ci,fork"),
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
                                r["fork"].as_bool().unwrap_or(false),
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

    /// Bounded cost: revalidations of one owner (rounds, and a build's catch-up queries, which
    /// are rounds too) start at least a second apart, never over 100 names. A request goes out
    /// after the reads that admit it (the credential's rate-limit memory in KV), so two
    /// consecutive ones may be up to `SEND_JITTER_MS` closer than their rounds' starts. An object
    /// evicted between two does not know when the first was (Cloudflare evicts idle objects, so
    /// the simulation, which evicts any object nothing is running in, is harsher than the platform).
    pub(crate) fn check_cost(&self) {
        const SEND_JITTER_MS: u64 = 100;
        // A build keeps at most `BUILD_CONCURRENCY` pages in flight (DESIGN.md, "Partitioned
        // builds"); one build per owner.
        let peak = self.w.gh.peak_pages_in_flight.get();
        if peak > self.w.cfg.build_concurrency as usize {
            self.violate(
                "bounded cost",
                format!(
                    "{peak} listing pages in flight at once, BUILD_CONCURRENCY {}",
                    self.w.cfg.build_concurrency
                ),
            );
        }
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
            let evicted = self.w.evicted_at.borrow();
            let within = revalidations[i..]
                .iter()
                .take_while(|c| c.0 + SEND_JITTER_MS < at + 1_000)
                .take_while(|c| !evicted.iter().any(|&e| e > at && e <= c.0))
                .count();
            if within > 1 {
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
                        "{within} revalidations of {OWNER} within {} ms at {}",
                        1_000 - SEND_JITTER_MS,
                        at - T0
                    ),
                );
                return;
            }
        }
    }
}

impl Run<'_> {
    /// Live events, as the owner's subscribers got them: in each scope, numbered messages one
    /// apart from the first on (no gap, no number twice, however the object was evicted), an
    /// anonymous (hide) subscriber never sent a record that is not public, and a redacted one
    /// never more of a private record than its name, full name and visibility. Never widen: once
    /// a delivery narrowing a name was answered, no anonymous subscriber is sent it as public
    /// until GitHub's truth widens it again.
    pub(crate) fn check_events(&self) {
        use forgelens::model::Scope;
        let dirs = self.w.directories.borrow();
        let Some(d) = dirs.get(&OWNER.to_ascii_lowercase()) else {
            return;
        };
        let sent = d.storage.sent.borrow();
        let book = self.book.borrow();
        // Per name, the anonymous subscriber's frames about it: (index, shows it public).
        // A `reset` or `ready` has the subscriber read the whole listing again: what it was sent
        // before no longer stands.
        let mut shown: BTreeMap<String, Vec<(usize, bool)>> = BTreeMap::new();
        let mut reread: Vec<usize> = Vec::new();
        for (i, (scope, text)) in sent.iter().enumerate() {
            if *scope != Some(Scope::Public) {
                continue;
            }
            let frame: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            if matches!(frame["type"].as_str(), Some("reset" | "ready")) {
                reread.push(i);
            }
            let name = match frame["type"].as_str() {
                Some("upsert") => frame["repo"]["name"].as_str(),
                Some("remove") => frame["name"].as_str(),
                _ => None,
            };
            if let Some(name) = name {
                let public = frame["repo"]["visibility"] == "public";
                shown
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push((i, public));
            }
        }
        let mut widened = None;
        'names: for (name, marks) in &book.marks {
            let frames = shown.get(name).map_or(&[][..], Vec::as_slice);
            for (k, &(at, hidden)) in marks.iter().enumerate() {
                if !hidden {
                    continue;
                }
                // Until GitHub's truth widens it again: what the subscriber shows once the
                // narrowing delivery was answered, and every frame sent after.
                let until = marks.get(k + 1).map_or(usize::MAX, |m| m.0);
                let since = reread.iter().rfind(|&&r| r < at).copied().unwrap_or(0);
                let before = frames.iter().rfind(|(i, _)| *i < at && *i > since);
                let after = frames.iter().find(|(i, p)| *p && (at..until).contains(i));
                if let Some((i, _)) = before.filter(|(_, p)| *p).or(after) {
                    let text = sent.get(*i).map_or("", |f| f.1.as_str());
                    widened = Some(format!(
                        "{name} shown public to anonymous subscribers after its narrowing was \
                         answered (frame {at}): {text}"
                    ));
                    break 'names;
                }
            }
        }
        drop(book);
        if let Some(why) = widened {
            self.violate("never widen", why);
            return;
        }
        for scope in [Scope::All, Scope::Public, Scope::Redacted] {
            let mut last: Option<u64> = None;
            for (_, text) in sent.iter().filter(|(s, _)| *s == Some(scope)) {
                let frame: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                let Some(seq) = frame["seq"].as_u64() else {
                    continue;
                };
                if last.is_some_and(|l| seq != l + 1) {
                    self.violate(
                        "events numbered",
                        format!("{scope:?}: message {seq} after {last:?}: {text}"),
                    );
                    return;
                }
                last = Some(seq);
                let repo = &frame["repo"];
                let public = repo["visibility"] == "public";
                let keys = repo.as_object().map_or(0, serde_json::Map::len);
                let leaked = match scope {
                    Scope::Public => frame["type"] == "upsert" && !public,
                    Scope::Redacted => frame["type"] == "upsert" && !public && keys != 3,
                    Scope::All => false,
                };
                if leaked {
                    self.violate("events private", format!("{scope:?} was sent {text}"));
                    return;
                }
            }
        }
    }
}

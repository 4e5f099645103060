//! The simulation's operations: reads in either location (checked as they are answered: never
//! widen, owner-level invalidations), GitHub changes with their signed deliveries, owner-level
//! invalidations, the weather, and delivery recovery (a cron run that has GitHub send again
//! the deliveries that never got a 2xx answer).

use super::exec::Spawner;
use super::github::{part_of, parts, HookDelivery, RepoState, Weather};

/// Changes that move a repository between the parts of a partitioned build, or along its
/// part's name order (a rename), where the two ends of a part read towards each other.
const MOVES: &[&str] = &[
    "privatize",
    "publicize",
    "internalize",
    "archive",
    "unarchive",
    "fork",
    "unfork",
    "rename",
];
use super::world::LOCATIONS;
use crate::{body, node_name, token, Hidden, Run, ELSEWHERE, OWNER, SECRET, T0};

/// The owner's organization hook, as `X-GitHub-Hook-ID` names it.
const HOOK_ID: &str = "7";
use forgelens::http::Response;
use forgelens::testkit::{webhook_signature, ADMIN_TOKEN};
use serde_json::json;

impl<'a> Run<'a> {
    /// An anonymous listing: nothing answered narrowed before it began may show.
    pub(crate) async fn read_anonymous(&'a self, sp: Spawner<'a>) {
        let started = self.w.sched.now.get();
        let faulty = self.faulty();
        let loc = self.location();
        let r = self
            .w
            .fetch(
                sp,
                loc,
                "GET",
                &format!("/v1/orgs/{OWNER}/repos?fields=name,visibility"),
                &[],
                b"",
            )
            .await;
        self.check_status("anonymous listing", &r, faulty || self.faulty());
        self.w.note(format!(
            "read anonymous at {loc} -> {} {} ({}) fetched_at {}",
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
            .filter(|p| self.bound(loc, started, p.1, p.2))
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
            if let Some(h) = book.hidden.get(&name) {
                let widened = book.widened_at.get(&name).copied().unwrap_or(0);
                if self.must_hide(loc, started, h) && widened < h.changed {
                    let detail = format!(
                        "{name} narrowed at {}, its delivery answered at {} in location {} (copies answered in each location at {:?}), shown public to a read begun at {} in location {loc}",
                        h.changed - T0,
                        h.first.0 - T0,
                        h.first.1,
                        h.later,
                        started - T0
                    );
                    drop(book);
                    self.violate("never widen", detail);
                    return;
                }
            }
        }
    }

    pub(crate) async fn read_other(&'a self, sp: Spawner<'a>) {
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
        let loc = self.location();
        let r = self.w.fetch(sp, loc, "GET", &path, &auth, b"").await;
        self.check_status(&path, &r, faulty || self.faulty());
        self.w.note(format!("read {path} at {loc} -> {}", r.status));
    }

    /// One change in GitHub's truth, and its delivery as the seed says: delivered (perhaps late,
    /// perhaps twice, perhaps replayed later, to either location), or lost.
    pub(crate) async fn change(&'a self, sp: Spawner<'a>) {
        self.change_of(sp, None).await;
    }

    /// A repository moves between parts (visibility, archived, fork) while a build of the
    /// owner's listing pages: once one of its pages is in flight (or after 15 s).
    pub(crate) async fn move_during_build(&'a self, sp: Spawner<'a>) {
        let w = self.w;
        let until = w.sched.now.get() + 15_000;
        while w.gh.pages_in_flight.get() == 0 && w.sched.now.get() < until {
            w.sched.sleep(100 + w.sched.below(400) as u64).await;
        }
        let building = w.gh.pages_in_flight.get() > 0;
        w.note(format!(
            "a move {}",
            if building {
                "while listing pages are in flight"
            } else {
                "(no build came)"
            }
        ));
        self.count(if building {
            "move during a build"
        } else {
            "move without a build"
        });
        self.change_of(sp, Some(MOVES)).await;
    }

    /// The pages of one part (one stream of a build) fail once to three times, whatever the
    /// weather: 502s, "Something went wrong" timeouts, or no reply.
    pub(crate) fn stream_fault(&self) {
        let w = self.w;
        let truth = w.gh.truth();
        let repos = truth.get(OWNER).cloned().unwrap_or_default();
        // A part that holds something (any part of the twelve when the owner has nothing).
        let part = match repos.values().nth(w.sched.below(repos.len())) {
            Some(r) => part_of(r),
            None => parts()[w.sched.below(12)],
        };
        let n = 1 + w.sched.below(3) as u32;
        let left = {
            let mut faults = w.gh.stream_faults.borrow_mut();
            let left = faults.entry(part).or_default();
            *left = (*left + n).min(3);
            *left
        };
        w.note(format!(
            "stream fault: the next {left} pages of part {part:?} fail"
        ));
        self.count("stream fault");
    }

    /// One change in GitHub's truth (of a kind among `only`, when given), and its delivery.
    async fn change_of(&'a self, sp: Spawner<'a>, only: Option<&[&'static str]>) {
        let w = self.w;
        let truth = w.gh.truth();
        let repos = truth.get(OWNER).cloned().unwrap_or_default();
        let pick = if only.is_some() {
            w.sched.below(repos.len())
        } else {
            w.sched.below(repos.len() + 3)
        };
        let existing = repos.values().nth(pick).cloned();
        let kinds: &[&str] = match (&existing, only) {
            (Some(_), Some(only)) => only,
            (None, Some(_)) => return,
            (Some(_), None) => &[
                "privatize",
                "publicize",
                "archive",
                "unarchive",
                "ci",
                "push",
                "delete",
                "rename",
                "transfer out",
                "internalize",
                "fork",
                "unfork",
            ],
            (None, None) => &["create", "transfer in"],
        };
        let kind = kinds[w.sched.below(kinds.len())];
        // Leaving the public part narrows it: GitHub's delivery for an internal repository
        // made from a public one is modelled as `privatized` (the worker must hide it at once).
        let was_public = existing.as_ref().is_some_and(|r| r.visibility == "PUBLIC");
        let name = match &existing {
            Some(r) => r.name.clone(),
            None => format!("n{:03}", w.sched.below(30)),
        };
        let key = name.to_ascii_lowercase();
        // A rename's new name.
        let renamed = format!("m{:03}", w.sched.below(30));
        if matches!(kind, "create" | "transfer in") && repos.contains_key(&key)
            || kind == "rename" && repos.contains_key(&renamed)
        {
            return;
        }
        let now = w.sched.now.get();
        let (event, action) = match kind {
            "privatize" => ("repository", Some("privatized")),
            "publicize" => ("repository", Some("publicized")),
            "archive" => ("repository", Some("archived")),
            "unarchive" => ("repository", Some("unarchived")),
            "delete" => ("repository", Some("deleted")),
            "create" => ("repository", Some("created")),
            "rename" => ("repository", Some("renamed")),
            "transfer out" | "transfer in" => ("repository", Some("transferred")),
            "internalize" if was_public => ("repository", Some("privatized")),
            // Detached from (or joined to) a fork network, made internal from private: an edit.
            "internalize" | "fork" | "unfork" => ("repository", Some("edited")),
            "ci" => ("check_suite", Some("completed")),
            _ => ("push", None),
        };
        let arriving = if kind == "transfer in" && w.sched.chance(3) {
            "PRIVATE"
        } else {
            "PUBLIC"
        };
        // The names whose state changed, and whether each narrowed (hidden or gone now) or
        // widened (visible to anonymous callers now).
        let mut touched: Vec<(String, bool, bool)> = Vec::new();
        w.gh.change(|t| {
            let repos = t.entry(OWNER.into()).or_default();
            match kind {
                "delete" | "transfer out" => {
                    repos.remove(&key);
                    touched.push((key.clone(), true, false));
                }
                "create" | "transfer in" => {
                    let visibility = if kind == "create" { "PUBLIC" } else { arriving };
                    repos.insert(
                        key.clone(),
                        RepoState {
                            name: name.clone(),
                            visibility,
                            archived: false,
                            fork: false,
                            ci: None,
                            pushes: 0,
                        },
                    );
                    touched.push((key.clone(), false, visibility == "PUBLIC"));
                }
                "rename" => {
                    if let Some(mut r) = repos.remove(&key) {
                        let public = r.visibility == "PUBLIC";
                        r.name = renamed.clone();
                        repos.insert(renamed.clone(), r);
                        touched.push((key.clone(), true, false));
                        touched.push((renamed.clone(), false, public));
                    }
                }
                _ => {
                    if let Some(r) = repos.get_mut(&key) {
                        match kind {
                            "privatize" => r.visibility = "PRIVATE",
                            "publicize" => r.visibility = "PUBLIC",
                            "archive" => r.archived = true,
                            "unarchive" => r.archived = false,
                            "internalize" => r.visibility = "INTERNAL",
                            "fork" => r.fork = true,
                            "unfork" => r.fork = false,
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
                        let narrows = kind == "privatize" || kind == "internalize" && was_public;
                        touched.push((key.clone(), narrows, kind == "publicize"));
                    }
                }
            }
        });
        let id = {
            let mut book = self.book.borrow_mut();
            book.next_change += 1;
            let id = book.next_change;
            let frames = self.frames_sent();
            for (k, _, widens) in &touched {
                book.last_change.insert(k.clone(), (id, now));
                if *widens {
                    book.widened_at.insert(k.clone(), now);
                    book.marks
                        .entry(k.clone())
                        .or_default()
                        .push((frames, false));
                }
            }
            id
        };
        self.count(kind);
        // A genuine delivery's body is its own (GitHub's carry ids and times); a replay is the
        // same bytes again.
        let full_name = match kind {
            "rename" => format!("{OWNER}/{renamed}"),
            "transfer out" => format!("{ELSEWHERE}/{name}"),
            _ => format!("{OWNER}/{name}"),
        };
        // Sent by the owner's organization hook, which the worker learns from each delivery.
        let mut payload = json!({"repository": {"full_name": full_name, "default_branch": "main"},
            "organization": {"login": OWNER}, "sender": {"id": id}});
        if let Some(a) = action {
            payload["action"] = json!(a);
        }
        match kind {
            "rename" => payload["changes"] = json!({"repository": {"name": {"from": name}}}),
            "transfer out" => {
                payload["changes"] = json!({"owner": {"from": {"organization": {"login": OWNER}}}});
            }
            "transfer in" => {
                payload["changes"] = json!({"owner": {"from": {"user": {"login": ELSEWHERE}}}});
            }
            _ => {}
        }
        if event == "push" {
            payload["ref"] = json!("refs/heads/main");
        }
        if event == "check_suite" {
            payload["check_suite"] = json!({"head_branch": "main"});
        }
        let text = payload.to_string();
        let how = w.sched.below(100);
        // A move during a build is heard by the build (its delivery) or not (lost: only the
        // parts' counts and the next rebuild, or recovery, can tell).
        let lost_below = if only.is_some() { 30 } else { 10 };
        let (copies, lost) = match how {
            h if h < lost_below => (0, true),
            h if h < lost_below + 10 => (2, false),
            _ => (1, false),
        };
        w.note(format!(
            "change #{id} {kind} {name}{}: {}",
            if kind == "rename" {
                format!(" to {renamed}")
            } else {
                String::new()
            },
            if lost {
                "delivery lost".to_string()
            } else {
                format!("{copies} deliveries")
            }
        ));
        let narrowed: Vec<String> = touched
            .iter()
            .filter(|t| t.1)
            .map(|t| t.0.clone())
            .collect();
        let carried = HookDelivery {
            id: 0,
            guid: String::new(),
            at_ms: now,
            status: 0,
            redelivery: false,
            event,
            action,
            text: text.clone(),
            change: id,
            changed_at: now,
            narrowed: narrowed.clone(),
        };
        if lost {
            self.count("delivery lost");
            w.gh.record(HookDelivery {
                guid: format!("d-{}", w.sched.below(1_000_000)),
                ..carried
            });
            return;
        }
        for copy in 0..copies {
            let delay = if w.sched.chance(4) {
                w.sched.below(8_000) as u64
            } else {
                0
            };
            let sp2 = sp.clone();
            let replay_later = w.sched.chance(8);
            let carried = carried.clone();
            let loc = self.location();
            sp.spawn(format!("delivery #{id}.{copy}"), async move {
                self.w.sched.sleep(delay).await;
                self.deliver(sp2.clone(), loc, &carried).await;
                if replay_later {
                    self.w.sched.sleep(self.w.sched.below(20_000) as u64).await;
                    self.count("replay");
                    let loc = self.location();
                    self.deliver(sp2, loc, &carried).await;
                }
            });
        }
    }

    /// How many frames the owner's object has sent its subscribers so far.
    pub(crate) fn frames_sent(&self) -> usize {
        let dirs = self.w.directories.borrow();
        dirs.get(&OWNER.to_ascii_lowercase())
            .map_or(0, |d| d.storage.sent.borrow().len())
    }

    /// Notes that location `loc` answered 2xx a delivery of the change made at `changed` that
    /// narrowed `names`: the first answer applied it, a later one in another location found it
    /// remembered.
    fn answered(&self, names: &[String], changed: u64, loc: usize) {
        let answered = self.w.sched.now.get();
        let mut book = self.book.borrow_mut();
        for key in names {
            let widened = book.widened_at.get(key).copied().unwrap_or(0);
            if widened >= changed {
                continue;
            }
            match book.hidden.get_mut(key) {
                Some(h) if h.changed == changed => {
                    if h.first.1 != loc && h.later[loc].is_none() {
                        h.later[loc] = Some(answered);
                    }
                }
                Some(h) if h.changed > changed => {}
                _ => {
                    let h = Hidden {
                        changed,
                        first: (answered, loc),
                        later: [None; LOCATIONS],
                    };
                    book.hidden.insert(key.clone(), h);
                    let frames = self.frames_sent();
                    book.marks
                        .entry(key.clone())
                        .or_default()
                        .push((frames, true));
                }
            }
        }
    }

    /// Sends a signed delivery; true when answered 2xx.
    /// `text` signed and posted to location `loc`'s webhook route as GitHub sends it (with
    /// `X-GitHub-Delivery` when given).
    async fn post_signed(
        &'a self,
        sp: Spawner<'a>,
        loc: usize,
        event: &str,
        text: &str,
        delivery: Option<&str>,
    ) -> Response {
        let signature = webhook_signature(SECRET, text.as_bytes());
        let mut headers = vec![
            ("X-GitHub-Event", event),
            ("X-Hub-Signature-256", signature.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(d) = delivery {
            // GitHub names the delivery and the hook that sent it (the owner's organization hook).
            headers.push(("X-GitHub-Delivery", d));
            headers.push(("X-GitHub-Hook-ID", HOOK_ID));
            headers.push(("X-GitHub-Hook-Installation-Target-Type", "organization"));
        }
        let (path, body) = ("/v1/webhooks/github", text.as_bytes());
        self.w.fetch(sp, loc, "POST", path, &headers, body).await
    }

    /// Sends `d` (a new delivery, or GitHub sending `d` again when it is a redelivery) to
    /// location `loc`, records it in the hook's deliveries, and notes a 2xx answer.
    pub(crate) async fn deliver(&'a self, sp: Spawner<'a>, loc: usize, d: &HookDelivery) {
        let guid = if d.redelivery {
            d.guid.clone()
        } else {
            format!("d-{}", self.w.sched.below(1_000_000))
        };
        let (id, event) = (d.change, d.event);
        let faulty = self.faulty();
        self.w
            .note(format!("delivery #{id} ({event}) sent to {loc}"));
        let at_ms = self.w.sched.now.get();
        let r = self.post_signed(sp, loc, event, &d.text, Some(&guid)).await;
        self.check_status("delivery", &r, faulty || self.faulty());
        self.w
            .note(format!("delivery #{id} ({event}) -> {}", r.status));
        self.w.gh.record(HookDelivery {
            guid,
            at_ms,
            status: r.status,
            ..d.clone()
        });
        if r.status == 200 {
            self.book.borrow_mut().delivered.insert(id);
            self.answered(&d.narrowed, d.changed_at, loc);
        }
    }

    /// Delivery recovery once faults have stopped: cron runs, each in either location, until
    /// one asks nothing again. Each run reads the hook's deliveries and has GitHub send again
    /// every one never answered 2xx (at most 20 a run); GitHub sends each at once. Returns
    /// whether the worker knew the hook (it learns it from a delivery that arrived).
    pub(crate) async fn recover(&'a self, sp: Spawner<'a>) -> bool {
        let w = self.w;
        // (Each delivery has a guid of its own until GitHub sends one again.)
        let failed: Vec<String> = {
            let hook = w.gh.hook.borrow();
            hook.iter()
                .filter(|d| {
                    !hook
                        .iter()
                        .any(|e| e.guid == d.guid && (200..300).contains(&e.status))
                })
                .map(|d| d.guid.clone())
                .collect()
        };
        let mut hooks = 0;
        for run in 1..=10 {
            let loc = self.location();
            hooks = hooks.max(w.recover(loc).await);
            let asked = w.gh.redeliver.take();
            w.note(format!(
                "recovery run {run} at {loc}: {} redelivered",
                asked.len()
            ));
            if asked.is_empty() {
                break;
            }
            for id in asked {
                let Some(d) = w.gh.hook.borrow().iter().find(|d| d.id == id).cloned() else {
                    continue;
                };
                self.count("redelivered");
                let d = HookDelivery {
                    redelivery: true,
                    ..d
                };
                self.deliver(sp.clone(), self.location(), &d).await;
            }
        }
        if hooks == 0 {
            return false;
        }
        // Every delivery that never got a 2xx answer was sent again, once.
        let hook = w.gh.hook.borrow();
        for guid in &failed {
            let again = hook
                .iter()
                .filter(|d| d.redelivery && d.guid == *guid)
                .count();
            if again != 1 {
                self.violate(
                    "recovery",
                    format!("delivery {guid}, never answered 2xx, was sent again {again} times"),
                );
            }
        }
        true
    }

    pub(crate) async fn owner_level(&'a self, sp: Spawner<'a>) {
        let faulty = self.faulty();
        let sent = self.w.sched.now.get();
        let loc = self.location();
        let r = if self.w.sched.chance(2) {
            let admin = format!("Bearer {ADMIN_TOKEN}");
            let headers = [("Authorization", admin.as_str())];
            self.count("purge");
            self.w
                .fetch(
                    sp,
                    loc,
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
            self.post_signed(sp, loc, "installation_repositories", &text, None)
                .await
        };
        self.check_status("owner-level invalidation", &r, faulty || self.faulty());
        if r.status == 200 {
            let answered = self.w.sched.now.get();
            self.book.borrow_mut().purged.push((sent, answered, loc));
        }
        self.w
            .note(format!("owner-level invalidation at {loc} -> {}", r.status));
    }

    pub(crate) fn weather(&self) {
        let w = self.w;
        self.faults_end();
        let fail = [0, 0, 5, 20, 60][w.sched.below(5)];
        let lag = if w.sched.chance(4) { 3_000 } else { 0 };
        let refuse = [0, 0, 0, 10, 40][w.sched.below(5)];
        w.gh.weather.set(Weather {
            fail_in_100: fail,
            lag_ms: lag,
        });
        let per_key = w.sched.chance(4);
        w.kv.refuse_in_100.set(refuse);
        w.kv.per_key.set(per_key);
        w.alarm_late_ms.set([0, 0, 2_000, 10_000][w.sched.below(4)]);
        w.note(format!(
            "weather: GitHub fails {fail}%, lags {lag} ms; KV refuses {refuse}%{}",
            if per_key {
                ", and a key's second write within a second"
            } else {
                ""
            }
        ));
        self.count("weather");
    }
}

//! The third review's findings on owner directories, each driven natively through `http::handle`
//! and the directories' `Host` double: a privatize heard while a build's catch-up query is out,
//! an owner-level invalidation after the object lost its memory, `revalidated_at` per caller
//! scope, one bounded query per revalidation round, and narrowing facts GitHub's lag cannot undo.
//! Also the races a round's write of the listing meets (an invalidation's marker, a purge while
//! the write is out, KV's one write a second per key), pinned by mutation testing (TESTING.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use forgelens::forge::github::GitHub;
use forgelens::forge::HttpReply;
use forgelens::names::Owner;
use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

const READ_SECRET: &str = "read-token-secret-of-at-least-32-bytes!";

fn world(owners: &[(&str, usize)]) -> World {
    let mut w = live_world(owners);
    w.vars.push(("READ_TOKEN_SECRET", READ_SECRET.into()));
    w
}

/// `acme` with 250 repositories (three pages) whose GitHub takes 2 s a page, and callers who
/// wait at most 3 s (two pages), then are told to come back.
fn slow_world() -> World {
    let mut w = world(&[("acme", 250)]);
    w.gh.clock = Some((Rc::clone(&w.clock.0), 2_000));
    w.vars.push(("UPSTREAM_TIMEOUT_MS", "3000".into()));
    w
}

fn stored_visibility(w: &World, owner: &str, name: &str) -> Option<String> {
    let stored = stored_listing(w, owner);
    let repos = stored["data"]["repos"].as_array().unwrap();
    repos
        .iter()
        .find(|r| r["name"] == name)
        .map(|r| r["visibility"].as_str().unwrap().to_string())
}

/// A signed `privatized` delivery for `full_name`, answered 200.
fn privatize(w: &World, full_name: &str) {
    let r = deliver(w, "repository", &repo_event("privatized", full_name), None);
    assert_eq!(r.status, 200);
}

/// Resolves once `owner`'s build has answered its callers (its write-back waits 100 ms after).
async fn build_answered(w: &World, owner: &str) {
    loop {
        let answered = w
            .directories
            .borrow()
            .get(owner)
            .is_some_and(|d| d.memory.borrow().completions() > 0);
        if answered {
            return;
        }
        YieldNow(false).await;
    }
}

/// Every copy of `name` in the owner's object storage (its pages, as a later life loads them).
fn stored_copies(w: &World, owner: &str, name: &str) -> Vec<forgelens::model::Repo> {
    let dirs = w.directories.borrow();
    let data = dirs[owner].storage.data.borrow();
    data.values()
        .filter_map(|text| forgelens::owners::live::decode_page(text))
        .flat_map(|(_, repos)| repos)
        .filter(|r| r.name() == name)
        .collect()
}

#[test]
fn a_privatize_heard_while_the_catch_up_query_is_out_is_not_lost() {
    let w = slow_world();
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    assert_eq!(pages(&w), 2);
    // A push heard during the (first) build: its completion asks GitHub about it again.
    assert_eq!(
        block_on(deliver_async(&w, "push", &push("acme/r001"), None)).status,
        200
    );
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = Owner::parse("acme").unwrap();
    let before = w.calls();
    // The alarm pages on; while its catch-up query (the call after the last page) is out,
    // r020, read public on the first page, is made private and its delivery answered.
    let answered = RefCell::new(None);
    let privatize = async {
        while w.calls() < before + 2 {
            YieldNow(false).await;
        }
        w.gh.privatized.borrow_mut().insert("acme/r020".into());
        let r = deliver_async(
            &w,
            "repository",
            &repo_event("privatized", "acme/r020"),
            None,
        )
        .await;
        *answered.borrow_mut() = Some((r.status, w.calls()));
    };
    block_on(futures::future::join(owners.alarm(&owner), privatize));
    let (status, calls_then) = answered.take().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        calls_then,
        before + 2,
        "answered while the catch-up query was out"
    );
    assert_eq!(pages(&w), 3, "the build was not restarted");
    // The build's listing holds the privatize: in KV, and for every kind of read.
    assert_eq!(
        stored_visibility(&w, "acme", "r020").as_deref(),
        Some("private")
    );
    let listing = w.get("/v1/orgs/acme/repos");
    assert_eq!(listing.status, 200);
    assert!(!names(&listing).contains(&"r020".to_string()));
    let summary = json_body(&w.get("/v1/orgs/acme/summary"));
    assert_eq!(summary["total"], 199, "200 public, one made private");
    assert_eq!(w.get("/v1/repos/acme/r020").status, 404);
    // And the directory holds nothing unasked.
    let dirs = w.directories.borrow();
    let data = dirs["acme"].storage.data.borrow();
    assert!(!data.contains_key("since") && !data.contains_key("queue"));
}

#[test]
fn an_owner_level_invalidation_reaches_a_stored_listing_after_eviction() {
    let w = world(&[("acme", 5)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(pages(&w), 1);
    let evict = || {
        let dirs = w.directories.borrow();
        *dirs["acme"].memory.borrow_mut() = forgelens::owners::directory::Memory::default();
    };
    // The object is evicted between invocations (storage kept); then an admin purge.
    evict();
    let purge = w.request("DELETE", "/v1/cache/orgs/acme", &[ADMIN]);
    assert_eq!(purge.status, 200);
    let read = w.get("/v1/orgs/acme/repos");
    assert_eq!((read.status, read.header("x-cache")), (200, Some("MISS")));
    assert_eq!(
        pages(&w),
        2,
        "rebuilt, not answered from the stored listing"
    );
    // The same for an installation event.
    evict();
    let payload = json!({"action": "removed", "installation": {"id": 7, "account": {"login": "acme"}},
        "repositories_removed": [{"full_name": "acme/r001"}]});
    let r = block_on(deliver_async(
        &w,
        "installation_repositories",
        &payload,
        None,
    ));
    assert_eq!(r.status, 200);
    let read = w.get("/v1/orgs/acme/repos");
    assert_eq!((read.status, read.header("x-cache")), (200, Some("MISS")));
    assert_eq!(pages(&w), 3);
}

#[test]
fn activity_on_hidden_records_changes_no_anonymous_body() {
    for policy in ["hide", "redact"] {
        let mut w = world(&[("acme", 10)]);
        w.vars.push(("PRIVATE_REPOS_ANONYMOUS", policy.into()));
        let token = format!("Bearer {}", read_token(READ_SECRET, &["acme"]));
        let auth = [("Authorization", token.as_str())];
        let anonymous = w.get("/v1/orgs/acme/repos");
        assert_eq!(anonymous.status, 200);
        let summary = w.get("/v1/orgs/acme/summary");
        assert_eq!(json_body(&anonymous)["revalidated_at"], Value::Null);
        // A push to a private repository (r004), and a delivery naming one that does not exist.
        w.advance(2);
        w.gh.pushed
            .borrow_mut()
            .insert("acme/r004".into(), "2026-05-01T00:00:00Z".into());
        assert_eq!(
            block_on(deliver_async(&w, "push", &push("acme/r004"), None)).status,
            200
        );
        w.advance(2);
        assert_eq!(
            block_on(deliver_async(&w, "push", &push("acme/nope"), None)).status,
            200
        );
        let again = w.get("/v1/orgs/acme/repos");
        assert_eq!(again.body, anonymous.body, "{policy}");
        assert_eq!(again.header("etag"), anonymous.header("etag"), "{policy}");
        let etag = anonymous.header("etag").unwrap();
        let revalidated = w.request("GET", "/v1/orgs/acme/repos", &[("If-None-Match", etag)]);
        assert_eq!(revalidated.status, 304, "{policy}");
        assert_eq!(
            w.get("/v1/orgs/acme/summary").body,
            summary.body,
            "{policy}"
        );
        // The owner's token sees the change, and when it happened.
        let private = w.request("GET", "/v1/orgs/acme/repos", &auth);
        let body = json_body(&private);
        assert!(body["revalidated_at"].is_string(), "{policy}");
        let r004 = body["repos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "r004");
        assert_eq!(r004.unwrap()["pushed_at"], "2026-05-01T00:00:00Z");
        // A change to a public record is everyone's to see.
        w.advance(2);
        w.gh.pushed
            .borrow_mut()
            .insert("acme/r003".into(), "2026-05-02T00:00:00Z".into());
        block_on(deliver_async(&w, "push", &push("acme/r003"), None));
        let public = json_body(&w.get("/v1/orgs/acme/repos"));
        assert!(public["revalidated_at"].is_string(), "{policy}");
        let summary = json_body(&w.get("/v1/orgs/acme/summary"));
        assert_eq!(summary["revalidated_at"], public["revalidated_at"]);
    }
}

#[test]
fn a_backlog_drains_one_query_of_at_most_100_names_a_second() {
    let w = world(&[("acme", 300)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // GitHub is down while 250 deliveries arrive: each is answered once durably queued.
    w.gh.fail_all();
    let bodies: Vec<Value> = (0..250).map(|i| push(&format!("acme/r{i:03}"))).collect();
    let all = bodies.iter().map(|b| deliver_async(&w, "push", b, None));
    let answers = block_on(futures::future::join_all(all));
    assert!(answers.iter().all(|r| r.status == 200));
    // GitHub recovers; the alarm drains the queue. Each call's time is noted.
    *w.gh.fault.borrow_mut() = None;
    let recovered = w.clock.0.get();
    let before = w.calls();
    let times = Rc::new(RefCell::new(Vec::new()));
    {
        let (times, clock) = (Rc::clone(&times), Rc::clone(&w.clock.0));
        *w.gh.during_call.borrow_mut() =
            Some(Box::new(move || times.borrow_mut().push(clock.get())));
    }
    fire_alarms(&w, "acme", 60_000);
    let calls = w.gh.calls.borrow()[before..].to_vec();
    let times = times.borrow().clone();
    assert_eq!(calls.len(), 3, "250 names: three queries");
    for body in &calls {
        let names = body["variables"].as_object().unwrap().len() / 2;
        assert!(names <= 100, "at most 100 names a query: {names}");
    }
    assert!(times[0] <= recovered + 5_000, "the first retry within 5 s");
    for pair in times.windows(2) {
        assert!(
            pair[1] >= pair[0] + 1_000,
            "rounds a second apart: {times:?}"
        );
    }
    let dirs = w.directories.borrow();
    assert!(!dirs["acme"].storage.data.borrow().contains_key("queue"));
}

#[test]
fn a_lagging_answer_does_not_undo_a_privatize() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // GitHub made r003 private, but the first query after the delivery is answered from before
    // the change (GitHub's API lags it by a moment).
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    let lagging = json!({"data": {"rateLimit": {"cost": 1, "remaining": 4000, "limit": 5000,
        "resetAt": "2026-01-01T00:00:00Z"}, "r0": FakeGitHub::node("acme", 3)}});
    w.gh.fault_on_call.borrow_mut().insert(
        w.calls(),
        Ok(HttpReply {
            status: 200,
            headers: vec![],
            body: lagging.to_string().into_bytes(),
        }),
    );
    let heard = w.clock.0.get();
    let times = Rc::new(RefCell::new(Vec::new()));
    {
        let (times, clock) = (Rc::clone(&times), Rc::clone(&w.clock.0));
        *w.gh.during_call.borrow_mut() =
            Some(Box::new(move || times.borrow_mut().push(clock.get())));
    }
    privatize(&w, "acme/r003");
    let times = times.borrow().clone();
    assert_eq!(
        times.len(),
        2,
        "asked again once the answer can confirm the fact"
    );
    assert!(times[1] >= heard + 5_000, "{times:?}");
    assert_eq!(
        stored_visibility(&w, "acme", "r003").as_deref(),
        Some("private")
    );
    let listing = w.get("/v1/orgs/acme/repos");
    assert!(!names(&listing).contains(&"r003".to_string()));
}

/// A privatize heard in the 100 ms between a build's answer and its write-back (the object
/// answers its callers first, then writes): what the write-back stores, in KV and in the
/// object's storage, is the listing as it stands then, never the build's first copy.
#[test]
fn a_privatize_heard_between_a_builds_answer_and_its_write_back_is_written() {
    let w = world(&[("acme", 10)]);
    let done = RefCell::new(None);
    let read = async {
        let r = w.fetch("GET", "/v1/orgs/acme/repos", &[], b"").await;
        *done.borrow_mut() = Some(r.status);
    };
    let privatize = async {
        // Until the build has answered its caller; its write-back waits 100 ms after.
        build_answered(&w, "acme").await;
        assert!(
            !w.store.data.borrow().contains_key("v1:org:acme"),
            "not written yet"
        );
        w.gh.privatized.borrow_mut().insert("acme/r002".into());
        let r = deliver_async(
            &w,
            "repository",
            &repo_event("privatized", "acme/r002"),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    };
    block_on(futures::future::join(read, privatize));
    assert_eq!(done.take(), Some(200));
    assert_eq!(
        stored_visibility(&w, "acme", "r002").as_deref(),
        Some("private"),
        "KV holds the listing with the privatize"
    );
    let listing = w.get("/v1/orgs/acme/repos");
    assert!(!names(&listing).contains(&"r002".to_string()));
    // The object's stored page too: a later life of the object loads it.
    let r002 = stored_copies(&w, "acme", "r002");
    assert!(!r002.is_empty(), "a stored page holds r002");
    assert!(
        r002.iter().all(|r| !r.is_public()),
        "every stored copy of r002 is private: {r002:?}"
    );
}

/// Found by the simulation (seed 1805): a privatize heard while the owner's object had neither a
/// listing nor a build kept its narrowing fact in memory only. The object was evicted, and a
/// build started within GitHub's lag read the repository back as public and listed it.
#[test]
fn a_narrowing_fact_heard_with_no_listing_outlives_an_eviction() {
    let w = world(&[("acme", 10)]);
    // GitHub's delivery says r003 is private; its API still answers from before the change.
    privatize(&w, "acme/r003");
    assert!(
        w.directories.borrow()["acme"]
            .storage
            .data
            .borrow()
            .contains_key("facts"),
        "the fact is stored with the object's state"
    );
    // A second privatize a moment later: the first fact still holds beside it (5 s).
    w.clock.0.set(w.clock.0.get() + 500);
    privatize(&w, "acme/r005");
    // The object is evicted between invocations (storage kept).
    *w.directories.borrow()["acme"].memory.borrow_mut() =
        forgelens::owners::directory::Memory::default();
    w.clock.0.set(w.clock.0.get() + 1_000);
    let listing = w.get("/v1/orgs/acme/repos");
    assert_eq!(listing.status, 200);
    for name in ["r003", "r005"] {
        assert!(
            !names(&listing).contains(&name.to_string()),
            "a lagging build does not widen what a delivery narrowed ({name})"
        );
    }
    assert_eq!(
        stored_visibility(&w, "acme", "r003").as_deref(),
        Some("private")
    );
    // GitHub catches up; the names asked again once an answer can confirm the facts stay private.
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    w.gh.privatized.borrow_mut().insert("acme/r005".into());
    fire_alarms(&w, "acme", 10_000);
    assert_eq!(
        stored_visibility(&w, "acme", "r003").as_deref(),
        Some("private")
    );
    assert!(!names(&w.get("/v1/orgs/acme/repos")).contains(&"r003".to_string()));
}

/// A privatize heard between a build's answer and its write-back, while GitHub fails the round
/// that would ask it again: the write-back stores the page as it stands (patched), not the
/// build's first copy, so a later life of the object does not load the repository as public.
#[test]
fn a_write_back_stores_a_page_patched_after_the_builds_answer() {
    let w = world(&[("acme", 10)]);
    let read = async {
        assert_eq!(
            w.fetch("GET", "/v1/orgs/acme/repos", &[], b"").await.status,
            200
        );
    };
    let privatize = async {
        build_answered(&w, "acme").await;
        // GitHub fails from here on: no round rewrites the page after the write-back.
        w.gh.fail_all();
        let event = repo_event("privatized", "acme/r002");
        assert_eq!(
            deliver_async(&w, "repository", &event, None).await.status,
            200
        );
    };
    block_on(futures::future::join(read, privatize));
    let r002 = stored_copies(&w, "acme", "r002");
    assert!(!r002.is_empty(), "a stored page holds r002");
    assert!(
        r002.iter().all(|r| !r.is_public()),
        "every stored copy of r002 is private: {r002:?}"
    );
    // The object is evicted (storage kept): the listing it loads does not show r002.
    *w.directories.borrow()["acme"].memory.borrow_mut() =
        forgelens::owners::directory::Memory::default();
    w.store.data.borrow_mut().clear();
    let listing = w.get("/v1/orgs/acme/repos");
    assert_eq!(listing.status, 200);
    assert!(!names(&listing).contains(&"r002".to_string()));
}

/// A narrowing fact heard just before a build began holds that build's pages asked within the
/// fact's 5 s, even when another delivery arrives after those 5 s and before the build ends:
/// the build's catch-up still applies it to the pages GitHub answered from before the change.
#[test]
fn a_fact_holds_a_builds_early_pages_past_its_five_seconds() {
    let w = slow_world();
    // The delivery says r003 is private; GitHub's API still answers from before the change.
    privatize(&w, "acme/r003");
    let heard = w.clock.0.get();
    w.clock.0.set(heard + 1_000);
    // The build reads r003's page (public) a second after the fact, then a second page.
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    // Past the fact's 5 s, an unrelated push is heard while the build is still under way.
    w.clock.0.set(w.clock.0.get().max(heard + 5_000));
    assert_eq!(deliver(&w, "push", &push("acme/r200"), None).status, 200);
    fire_alarms(&w, "acme", 60_000);
    let listing = w.get("/v1/orgs/acme/repos");
    assert_eq!(listing.status, 200);
    assert!(
        !names(&listing).contains(&"r003".to_string()),
        "a page GitHub answered within the fact's lag does not widen it"
    );
    assert_eq!(
        stored_visibility(&w, "acme", "r003").as_deref(),
        Some("private")
    );
}

#[test]
fn deliveries_heard_during_every_catch_up_query_do_not_hold_the_listing_back() {
    let w = slow_world();
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    assert_eq!(pages(&w), 2);
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = Owner::parse("acme").unwrap();
    let before = w.calls();
    // The alarm reads the last page, then catches up. A push arrives while each of its calls is
    // out, so every catch-up query leaves a name heard since: a storm that never lets up.
    let answered_at = RefCell::new(None);
    let storm = async {
        for i in 1..=12 {
            while w.calls() < before + i && answered_at.borrow().is_none() {
                YieldNow(false).await;
            }
            if answered_at.borrow().is_some() {
                return;
            }
            let r = deliver_async(&w, "push", &push(&format!("acme/r{i:03}")), None).await;
            assert_eq!(r.status, 200);
        }
    };
    let watch = async {
        build_answered(&w, "acme").await;
        *answered_at.borrow_mut() = Some(w.calls());
    };
    block_on(futures::future::join3(owners.alarm(&owner), storm, watch));
    // The listing is answered after at most five catch-up queries (one a second), not when
    // the storm ends; what is left waits in the queue for the alarm's rounds.
    let answered_at = answered_at.take().unwrap();
    assert_eq!(answered_at, before + 1 + 5);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    fire_alarms(&w, "acme", 60_000);
    assert!(w.calls() > answered_at, "the rest is asked by the rounds");
    let dirs = w.directories.borrow();
    let data = dirs["acme"].storage.data.borrow();
    assert!(!data.contains_key("since") && !data.contains_key("queue"));
}

#[test]
fn a_round_whose_write_an_invalidation_refused_lets_its_listing_go() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let built = pages(&w);
    // An owner-level invalidation elsewhere whose object never heard of it (telling it failed;
    // GitHub's retry will tell it later): KV holds its marker and no listing.
    w.clock.0.set(w.clock.0.get() + 1_000);
    let org = forgelens::cache::keys::org(&Owner::parse("acme").unwrap());
    let marker = forgelens::cache::keys::invalidation_marker(&org);
    let at = forgelens::time::format_rfc3339(w.clock.0.get());
    w.store.data.borrow_mut().insert(marker, (at, Some(3_600)));
    w.store.data.borrow_mut().remove(&org);
    w.clock.0.set(w.clock.0.get() + 1_000);
    // A push: its round asks GitHub, and its write of the listing, built before the
    // invalidation, is refused by the marker.
    assert_eq!(deliver(&w, "push", &push("acme/r001"), None).status, 200);
    assert!(!w.store.data.borrow().contains_key(&org));
    // The object lets that listing go: the next read is a rebuild, not the old listing.
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert!(pages(&w) > built, "rebuilt after the invalidation");
}

#[test]
fn a_rounds_write_expires_as_the_builds_does_and_never_for_a_pinned_owner() {
    for pinned in [false, true] {
        let mut w = world(&[("acme", 10)]);
        if pinned {
            w.vars.push(("PINNED_ORGS", "acme".into()));
        }
        assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
        let org = forgelens::cache::keys::org(&Owner::parse("acme").unwrap());
        let built = w.store.data.borrow()[&org].clone();
        // r001 made private: the delivery's round writes the patched listing.
        w.gh.privatized.borrow_mut().insert("acme/r001".into());
        privatize(&w, "acme/r001");
        let written = w.store.data.borrow()[&org].clone();
        assert_ne!(written.0, built.0, "the round wrote the listing");
        assert_eq!(written.1, built.1, "pinned: {pinned}");
        assert_eq!(written.1.is_none(), pinned);
    }
}

#[test]
fn the_listings_writes_stay_a_second_apart_when_a_retried_write_meets_a_round() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let org = forgelens::cache::keys::org(&Owner::parse("acme").unwrap());
    let built = w.store.puts.borrow().len();
    // r001 made private: its round's write of the listing is refused (left for the alarm).
    w.gh.privatized.borrow_mut().insert("acme/r001".into());
    *w.store.refuse_key.borrow_mut() = Some(org.clone());
    privatize(&w, "acme/r001");
    // A push GitHub fails to answer: a change waits in the queue too.
    *w.gh.fault.borrow_mut() = Some(Err("connection reset".into()));
    assert_eq!(deliver(&w, "push", &push("acme/r002"), None).status, 200);
    *w.gh.fault.borrow_mut() = None;
    // The alarm writes the refused listing again, then its round writes the next one: KV
    // takes one write a second per key, so the second waits.
    fire_alarms(&w, "acme", 60_000);
    let times: Vec<u64> = w.store.puts.borrow()[built..]
        .iter()
        .filter(|(k, _)| *k == org)
        .map(|(_, at)| *at)
        .collect();
    assert!(times.len() >= 2, "{times:?}");
    assert!(
        times.windows(2).all(|t| t[1] >= t[0] + 1_000),
        "writes of the listing: {times:?}"
    );
}

#[test]
fn a_rounds_write_that_lands_after_an_owner_purge_is_taken_back() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let org = forgelens::cache::keys::org(&Owner::parse("acme").unwrap());
    // A push to r001: its round writes the revalidated listing, and that write is slow to land.
    // (A narrowing delivery's worker drops the listing once more itself; a push's does not.)
    *w.store.hold_key.borrow_mut() = Some(org.clone());
    let event = push("acme/r001");
    let delivery = deliver_async(&w, "push", &event, None);
    // Meanwhile an admin purges the owner (its keys go, its object hears of it); then the
    // write lands, carrying the listing from before the purge.
    let purge = async {
        while !w.store.holding.get() {
            YieldNow(false).await;
        }
        let admin = format!("Bearer {ADMIN_TOKEN}");
        let r = w
            .fetch(
                "DELETE",
                "/v1/cache/orgs/acme",
                &[("Authorization", &admin)],
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(!w.store.data.borrow().contains_key(&org));
        w.store.hold_key.take();
    };
    let (answered, ()) = block_on(futures::future::join(delivery, purge));
    assert_eq!(answered.status, 200);
    // The object took its write back: KV holds no listing from before the purge.
    assert!(!w.store.data.borrow().contains_key(&org));
}

//! Owner directories natively: builds that outlive a request, checkpoints, adaptive page sizes,
//! rate-limit pauses, invalidation restarts and listings of 20,000 repositories, through
//! `http::handle` with the directory driven inline (the worker drives it by Durable Object alarm).

// A panic here is a failing test, not a crashed worker.
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
use forgelens::owners::directory::Drive;
use futures::executor::block_on;
use serde_json::Value;
use std::rc::Rc;

/// `(cursor, first)` of every owner page asked so far.
fn pages(w: &World) -> Vec<(Option<String>, u64)> {
    w.gh.calls
        .borrow()
        .iter()
        .map(|c| {
            let v = &c["variables"];
            (
                v["cursor"].as_str().map(str::to_string),
                v["first"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// What an alarm of `owner`'s object does.
fn alarm(w: &World, owner: &str) -> Drive {
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    block_on(w.owners(&cfg, &forge).alarm(&Owner::parse(owner).unwrap()))
}

fn slow_world(count: usize, budget_ms: &str, page_ms: u64) -> World {
    let mut w = World::new(&[("acme", count)]);
    w.vars = vec![
        ("UPSTREAM_TIMEOUT_MS", budget_ms.into()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
    ];
    w.gh.clock = Some((Rc::clone(&w.clock.0), page_ms));
    w
}

#[test]
fn an_alarm_finishes_a_build_nobody_waits_for() {
    let w = slow_world(1_000, "1000", 300);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    assert_eq!(w.calls(), 4);
    assert_eq!(alarm(&w, "acme"), Drive::Done);
    assert_eq!(
        w.calls(),
        10,
        "1,000 repositories are 10 pages, each asked once"
    );
    let cursors: Vec<_> = pages(&w).into_iter().map(|(c, _)| c).collect();
    let unique: std::collections::HashSet<_> = cursors.iter().collect();
    assert_eq!(unique.len(), 10, "no page was fetched twice");
    let hit = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((hit.status, hit.header("x-cache")), (200, Some("HIT")));
    assert_eq!(w.calls(), 10);
    let stored = w.store.data.borrow()["v1:org:acme"].0.clone();
    let entry: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(entry["data"]["repos"].as_array().unwrap().len(), 1_000);
}

#[test]
fn a_failed_page_is_retried_from_the_checkpoint_not_from_the_start() {
    let w = World::new(&[("acme", 500)]);
    let broken = HttpReply {
        status: 500,
        headers: vec![],
        body: b"oops".to_vec(),
    };
    w.gh.fault_on_call.borrow_mut().insert(2, Ok(broken));
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(
        (r.status, json_body(&r)["error"]["code"].as_str()),
        (502, Some("upstream_error"))
    );
    assert_eq!(w.calls(), 3);
    w.advance(10);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let asked = pages(&w);
    assert_eq!(
        asked.len(),
        6,
        "3 pages, then the failed third again and the last two"
    );
    assert_eq!(
        asked[2], asked[3],
        "the third page was retried with the same cursor"
    );
}

#[test]
fn pages_that_time_out_shrink_and_the_build_continues_at_that_size() {
    let w = World::new(&[("acme", 120)]);
    w.gh.max_page.set(Some(30));
    let r = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(r.status, 200);
    assert_eq!(
        json_body(&r)["repos"].as_array().unwrap().len(),
        96,
        "every fifth is private"
    );
    let sizes: Vec<u64> = pages(&w).into_iter().map(|(_, f)| f).collect();
    assert_eq!(sizes, [100, 50, 25, 25, 25, 25, 25]);
}

#[test]
fn a_spent_rate_limit_pauses_the_build_until_the_reset() {
    let w = World::new(&[("acme", 300)]);
    let reset_s = T0 / 1000 + 120;
    let limited = HttpReply {
        status: 403,
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), reset_s.to_string()),
        ],
        body: b"{}".to_vec(),
    };
    w.gh.fault_on_call.borrow_mut().insert(1, Ok(limited));
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("120"));
    w.advance(60);
    let again = w.get("/v1/orgs/acme/repos");
    assert_eq!(
        (again.status, again.header("retry-after")),
        (429, Some("60"))
    );
    assert_eq!(w.calls(), 2, "nothing is asked before the reset");
    w.advance(61);
    assert_eq!(
        alarm(&w, "acme"),
        Drive::Done,
        "the alarm set for the reset resumes it"
    );
    let asked = pages(&w);
    assert_eq!(asked.len(), 4);
    assert_eq!(asked[1], asked[2], "resumed at the page that was refused");
}

#[test]
fn a_page_that_spends_the_budget_stops_the_next_one() {
    let w = World::new(&[("acme", 300)]);
    let reset = forgelens::time::format_rfc3339(T0 + 90_000);
    *w.gh.rate.borrow_mut() = (0, reset);
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("90")));
    assert_eq!(
        w.calls(),
        1,
        "the page that said remaining 0 was the last one sent"
    );
    *w.gh.rate.borrow_mut() = (4000, "2026-01-01T00:00:00Z".into());
    w.advance(91);
    assert_eq!(alarm(&w, "acme"), Drive::Done);
    assert_eq!(w.calls(), 3);
}

#[test]
fn an_invalidation_restarts_a_build_in_progress_from_the_first_page() {
    let w = slow_world(500, "1000", 300);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    assert_eq!(w.calls(), 4);
    let purged_at = w.clock.0.get();
    let r = w.request("DELETE", "/v1/cache/orgs/acme", &[ADMIN]);
    assert_eq!(r.status, 200);
    assert_eq!(alarm(&w, "acme"), Drive::Done);
    let asked = pages(&w);
    assert_eq!(asked[4].0, None, "the build started over");
    assert_eq!(asked.len(), 9);
    let stored = w.store.data.borrow()["v1:org:acme"].0.clone();
    let entry: Value = serde_json::from_str(&stored).unwrap();
    let fetched_at = forgelens::time::parse_rfc3339(entry["fetched_at"].as_str().unwrap()).unwrap();
    assert!(
        fetched_at >= purged_at,
        "nothing asked before the invalidation was stored"
    );
}

#[test]
fn a_completed_listing_is_forgotten_by_its_directory_on_invalidation() {
    let mut w = World::new(&[("acme", 3)]);
    w.vars = vec![("ADMIN_TOKEN", ADMIN_TOKEN.into())];
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // KV lags elsewhere: the directory would answer from memory, until the purge.
    w.store.data.borrow_mut().remove("v1:org:acme");
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(
        w.calls(),
        1,
        "answered by the directory without a new build"
    );
    assert_eq!(
        w.request("DELETE", "/v1/cache/orgs/acme", &[ADMIN]).status,
        200
    );
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.calls(), 2, "rebuilt after the invalidation");
}

#[test]
fn an_invalidation_racing_the_listing_write_takes_it_back() {
    let mut w = World::new(&[("acme", 3)]);
    // The worker's own memory would answer the second request: only the directory is asked here.
    w.vars = vec![("MEMORY_TTL_MS", "0".into())];
    // The invalidation deleted the key just before the listing's write landed, and its marker
    // (written before its deletes) shows just after.
    let marker = forgelens::cache::keys::invalidation_marker("v1:org:acme");
    *w.store.after_next_put.borrow_mut() = Some((marker, forgelens::time::format_rfc3339(T0 + 1)));
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(r.status, 200, "the caller who waited has the answer");
    assert!(
        !w.store.data.borrow().contains_key("v1:org:acme"),
        "the write was taken back"
    );
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(
        w.calls(),
        2,
        "the directory did not hand the older answer out again"
    );
}

#[test]
fn twenty_thousand_repositories_fit_one_entry() {
    let mut w = World::new(&[("huge", 20_000)]);
    w.vars = vec![("UPSTREAM_TIMEOUT_MS", "30000".into())];
    let r = w.get("/v1/orgs/huge/repos?fields=name");
    assert_eq!(r.status, 200);
    assert_eq!(w.calls(), 200);
    assert_eq!(json_body(&r)["repos"].as_array().unwrap().len(), 16_000);
    let size = w.store.data.borrow()["v1:org:huge"].0.len();
    assert!(
        size < 25 * 1024 * 1024,
        "KV takes values up to 25 MiB: {size}"
    );
    let directories = w.directories.borrow();
    let d = &directories["huge"];
    let stored = d.storage.data.borrow();
    assert!(
        !stored.contains_key("build"),
        "the checkpoint is dropped when complete"
    );
    // The pages stay, as the live listing's, with its meta line (slot, pages, build start), and
    // each scope's last live-event number (the build's `ready`).
    let meta = stored["live"].clone();
    assert!(meta.starts_with("0 200 "), "{meta}");
    assert_eq!(stored["events"], "1,1,1");
    assert_eq!(stored.len(), 202);
    // The last page is stored after its callers were answered.
    assert!(
        d.storage.puts.get() >= 2 * 199 + 2,
        "every page was checkpointed (page and cursor): {}",
        d.storage.puts.get()
    );
}

/// An invalidation heard while a page is in flight (its storage clear still completing when
/// the page lands): the build restarts from the first page and completes. Before the fix the
/// driver resumed the old checkpoint, whose pages were gone: "a stored page was lost" (502).
#[test]
fn an_invalidation_while_a_page_is_in_flight_restarts_the_build_cleanly() {
    use forgelens::owners::Owners;
    let w = World::new(&[("acme", 450)]);
    // A first build leaves pages stored, so the invalidation has storage to clear.
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = Owner::parse("acme").unwrap();
    block_on(owners.listing(&owner, 1_000, true));
    w.store.data.borrow_mut().clear();
    w.advance(cfg.fresh_ttl + 1);
    block_on(owners.invalidate(&owner, w.clock.0.get())).unwrap();
    let calls = w.calls();
    // Two pages in (the third in flight), the truth changes.
    let at = w.clock.0.get();
    let listing = w.fetch("GET", "/v1/orgs/acme/repos", &[], b"");
    let invalidation = async {
        while w.calls() < calls + 3 {
            YieldNow(false).await;
        }
        owners.invalidate(&owner, at).await.unwrap();
    };
    let (r, ()) = block_on(futures::future::join(listing, invalidation));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json_body(&r)["repos"].as_array().unwrap().len(), 360);
    let asked = pages(&w)[calls..].to_vec();
    assert_eq!(asked[3].0, None, "the build started over: {asked:?}");
    assert_eq!(
        asked.len(),
        3 + 5,
        "no page of the old build after the restart"
    );
}

#[test]
fn a_long_build_goes_on_by_alarm_forty_pages_an_invocation_then_the_alarm_reaps() {
    // 9,000 repositories = 90 pages; nobody waits (the caller's budget covers one page).
    let w = slow_world(9_000, "500", 400);
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = Owner::parse("acme").unwrap();
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    let mut invocations = Vec::new();
    loop {
        let at = owners.alarm_at(&owner).expect("an alarm watches the build");
        let now = w.clock.0.get();
        w.clock.0.set(now.max(at));
        let before = w.calls();
        let outcome = block_on(owners.alarm(&owner));
        invocations.push(w.calls() - before);
        if outcome == Drive::Done {
            break;
        }
        assert_eq!(outcome, Drive::More);
        assert_eq!(
            owners.alarm_at(&owner),
            Some(w.clock.0.get()),
            "re-armed for now"
        );
    }
    assert!(
        invocations.iter().all(|n| *n <= 40),
        "at most 40 pages per invocation: {invocations:?}"
    );
    assert_eq!(w.calls(), 90, "every page once");
    let hit = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((hit.status, hit.header("x-cache")), (200, Some("HIT")));
    // Done: the next alarm is the reaping one, the stale time after the owner was last read.
    let reap_at = owners.alarm_at(&owner).unwrap();
    assert!(reap_at >= w.clock.0.get() + 86_000_000, "{reap_at}");
    w.clock.0.set(reap_at);
    block_on(owners.alarm(&owner));
    let dirs = w.directories.borrow();
    assert_eq!(
        dirs["acme"].reaped.get(),
        1,
        "an unread owner's storage goes"
    );
    assert!(dirs["acme"].storage.data.borrow().is_empty());
}

#[test]
fn callers_of_one_isolate_share_one_wait_on_the_directory() {
    let w = World::new(&[("acme", 250)]);
    let asks = (0..20).map(|_| w.fetch("GET", "/v1/orgs/acme/repos?fields=name", &[], b""));
    let answers = block_on(futures::future::join_all(asks));
    assert!(answers.iter().all(|r| r.status == 200));
    assert_eq!(w.calls(), 3, "one build");
    let dirs = w.directories.borrow();
    // The first caller asked twice (whether a build would start, then to start it); the 19
    // others, whose KV reads missed while it waited, shared its wait instead of asking.
    assert_eq!(
        dirs["acme"].asked.get(),
        2,
        "one caller's asks of the directory for 20 waiting callers"
    );
    assert!(answers.iter().all(|r| r.header("x-cache") == Some("MISS")));
}

/// An owner GitHub does not know is answered 404 and remembered for a minute: in KV (so every
/// location answers it without GitHub), and for a pinned owner, whose listing the directory never
/// replaces with nothing, in the directory's own memory.
#[test]
fn a_missing_owner_is_remembered_for_a_minute() {
    let w = World::new(&[("acme", 5)]);
    assert_eq!(w.get("/v1/orgs/ghost/repos").status, 404);
    assert_eq!(w.calls(), 1);
    let kept = w.store.data.borrow().get("v1:org:ghost").cloned();
    let (text, ttl) = kept.expect("the not-found answer is stored");
    assert_eq!(ttl, Some(60), "for a minute");
    assert!(text.contains("null"), "as a not-found entry: {text}");
    w.advance(30);
    assert_eq!(w.get("/v1/orgs/ghost/repos").status, 404);
    assert_eq!(w.calls(), 1, "answered from KV");

    let mut w = World::new(&[("acme", 5)]);
    w.vars = vec![("PINNED_ORGS", "ghost".into())];
    assert_eq!(w.get("/v1/orgs/ghost/repos").status, 404);
    assert_eq!(w.calls(), 1);
    assert!(
        !w.store.data.borrow().contains_key("v1:org:ghost"),
        "a pinned owner's KV entry is never replaced with a not-found answer"
    );
    w.advance(30);
    assert_eq!(w.get("/v1/orgs/ghost/repos").status, 404);
    assert_eq!(
        w.calls(),
        1,
        "the directory remembers the answer for a minute"
    );
    w.advance(31);
    assert_eq!(w.get("/v1/orgs/ghost/repos").status, 404);
    assert_eq!(w.calls(), 2, "and asks again after it");
}

/// A caller who waited for a build gets its answer even when the answer is no longer fresh by
/// the time it completes (a build slower than `FRESH_TTL_SECONDS`): it asked before the build
/// began, so the build's answer is the one it waited for, not a 202 at its deadline.
#[test]
fn a_waiting_caller_gets_the_build_it_waited_for_even_when_it_outlived_the_fresh_time() {
    let mut w = slow_world(250, "9000", 800);
    w.vars.push(("FRESH_TTL_SECONDS", "1".into()));
    let r = w.get("/v1/orgs/acme/repos?fields=name&per_page=1000");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(names(&r).len(), 200, "the 200 public ones of 250");
    assert_eq!(
        w.calls(),
        3,
        "three pages of 100, 2.4 s: longer than the 1 s fresh time"
    );
}

/// KV refuses a build's one write of the listing: the callers are answered all the same, and the
/// object's alarm writes the listing again once KV takes writes, so other locations and later
/// lives of the object read it from KV rather than rebuilding.
#[test]
fn a_refused_write_of_a_built_listing_is_made_again_by_the_alarm() {
    let w = live_world(&[("acme", 10)]);
    w.store.reject_writes.set(true);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert!(!w.store.data.borrow().contains_key("v1:org:acme"));
    w.store.reject_writes.set(false);
    w.advance(6);
    let mut tries = 0;
    while !w.store.data.borrow().contains_key("v1:org:acme") && tries < 5 {
        alarm(&w, "acme");
        w.advance(5);
        tries += 1;
    }
    let stored = stored_listing(&w, "acme");
    assert_eq!(stored["data"]["repos"].as_array().unwrap().len(), 10);
    assert_eq!(w.calls(), 1, "written again from memory, not rebuilt");
}

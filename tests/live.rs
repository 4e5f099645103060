//! Native tests of live listings: repository-level deliveries patch the owner's listing in its
//! directory (narrowing facts at once, the rest asked of GitHub in coalesced rounds) instead of
//! throwing it away, builds in progress are not restarted, replays change nothing.

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
use std::rc::Rc;

fn world(owners: &[(&str, usize)]) -> World {
    live_world(owners)
}

#[test]
fn a_stream_of_deliveries_keeps_every_poll_complete_and_costs_no_pages() {
    let w = world(&[("acme", 250)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(pages(&w), 3);
    let before = w.calls();
    for i in 0..30 {
        let r = deliver(&w, "push", &push(&format!("acme/r{:03}", i * 7)), None);
        assert_eq!(r.status, 200, "{i}");
        w.advance(1);
        let poll = w.get("/v1/orgs/acme/repos");
        assert_eq!(poll.status, 200, "poll {i} is complete");
        assert_eq!(poll.header("x-cache"), Some("HIT"), "poll {i}");
        assert_eq!(names(&poll).len(), 200, "every public repository, poll {i}");
    }
    assert_eq!(pages(&w), 3, "no listing page during the activity");
    assert!(
        w.calls() - before <= 30,
        "at most one upstream request per delivery: {}",
        w.calls() - before
    );
    assert!(stored_listing(&w, "acme")["data"]["revalidated_at"].is_string());
}

#[test]
fn deliveries_arriving_together_share_one_query() {
    let w = world(&[("acme", 250)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let before = w.calls();
    let bodies: Vec<Value> = (0..150).map(|i| push(&format!("acme/r{:03}", i))).collect();
    let all = bodies.iter().map(|b| deliver_async(&w, "push", b, None));
    let answers = block_on(futures::future::join_all(all));
    assert!(answers.iter().all(|r| r.status == 200));
    let asked = w.calls() - before;
    // 150 names: two aliased queries of at most 100 (a round each, or one round asking both).
    assert!(asked <= 3, "150 deliveries coalesced into {asked} requests");
    assert_eq!(pages(&w), 3);
    for body in &w.gh.calls.borrow()[before..] {
        let aliased = body["variables"].as_object().unwrap().len() / 2;
        assert!(
            aliased <= 100,
            "at most 100 repositories per query: {aliased}"
        );
    }
}

#[test]
fn a_privatize_leaves_the_anonymous_listing_before_its_delivery_is_answered() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // GitHub fails: the narrowing fact from the signed payload applies without it.
    w.gh.fail_all();
    let r = deliver(
        &w,
        "repository",
        &repo_event("privatized", "acme/r001"),
        None,
    );
    assert_eq!(r.status, 200, "durably queued for retry");
    let poll = w.get("/v1/orgs/acme/repos");
    assert_eq!(poll.status, 200);
    assert!(
        !names(&poll).contains(&"r001".to_string()),
        "{:?}",
        names(&poll)
    );
    // GitHub answers again: the queued change is revalidated by the alarm and leaves the queue.
    *w.gh.fault.borrow_mut() = None;
    w.gh.privatized.borrow_mut().insert("acme/r001".into());
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = Owner::parse("acme").unwrap();
    {
        let dirs = w.directories.borrow();
        assert!(dirs["acme"].storage.data.borrow().contains_key("queue"));
    }
    // The object armed its alarm for the retry.
    let now = w.clock.0.get();
    assert_eq!(owners.alarm_at(&owner), Some(now + 5_000), "retried in 5 s");
    w.advance(5);
    block_on(owners.alarm(&owner));
    {
        let dirs = w.directories.borrow();
        assert!(
            !dirs["acme"].storage.data.borrow().contains_key("queue"),
            "nothing left queued"
        );
    }
    assert!(
        owners.alarm_at(&owner).unwrap() > now + 3_600_000,
        "the next alarm is the reaping one"
    );
    let stored = stored_listing(&w, "acme");
    assert_eq!(stored["data"]["repos"][1]["visibility"], "private");
    assert_eq!(pages(&w), 1);
}

#[test]
fn widening_facts_come_only_from_github() {
    let w = world(&[("acme", 10)]);
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // A `publicized` delivery GitHub does not (yet) agree with changes nothing visible.
    let r = deliver(
        &w,
        "repository",
        &repo_event("publicized", "acme/r003"),
        None,
    );
    assert_eq!(r.status, 200);
    let poll = w.get("/v1/orgs/acme/repos");
    assert!(!names(&poll).contains(&"r003".to_string()));
    // Once GitHub says so, it is public.
    w.gh.privatized.borrow_mut().clear();
    w.advance(2);
    // Another delivery, so another body (the same bytes again would be a replay).
    let mut again = repo_event("publicized", "acme/r003");
    again["repository"]["updated_at"] = json!("2026-01-03T00:00:00Z");
    deliver(&w, "repository", &again, None);
    let poll = w.get("/v1/orgs/acme/repos");
    assert!(names(&poll).contains(&"r003".to_string()));
}

#[test]
fn a_delivery_during_a_build_neither_restarts_it_nor_is_lost() {
    let mut w = world(&[("acme", 250)]);
    // Each page takes 2 s; a caller waits at most 3 s (two pages), then is told to come back.
    w.gh.clock = Some((Rc::clone(&w.clock.0), 2_000));
    w.vars.push(("UPSTREAM_TIMEOUT_MS", "3000".into()));
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 202);
    assert_eq!(pages(&w), 2);
    // r010 was on the first page, public; now it is private.
    w.gh.privatized.borrow_mut().insert("acme/r010".into());
    let r = deliver(
        &w,
        "repository",
        &repo_event("privatized", "acme/r010"),
        None,
    );
    assert_eq!(r.status, 200);
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let owner = Owner::parse("acme").unwrap();
    block_on(owners.alarm(&owner));
    assert_eq!(pages(&w), 3, "the build went on from its third page");
    let stored = stored_listing(&w, "acme");
    assert_eq!(stored["data"]["repos"][10]["name"], "r010");
    assert_eq!(stored["data"]["repos"][10]["visibility"], "private");
    let poll = w.get("/v1/orgs/acme/repos");
    assert_eq!(poll.status, 200);
    assert!(!names(&poll).contains(&"r010".to_string()));
}

#[test]
fn a_replayed_delivery_changes_nothing_and_costs_nothing() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let first = deliver(
        &w,
        "push",
        &push("acme/r002"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    assert_eq!(first.status, 200);
    let (calls, writes) = (w.calls(), w.store.writes.get());
    w.advance(2);
    let replay = deliver(
        &w,
        "push",
        &push("acme/r002"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    assert_eq!(replay.status, 200);
    assert_eq!(json_body(&replay), json_body(&first));
    assert_eq!((w.calls(), w.store.writes.get()), (calls, writes));
    // A delivery that failed is not remembered: its redelivery is applied.
    w.store.refuse_deletes.set(100);
    let failed = deliver(&w, "push", &push("acme/r003"), Some("aaaa-1"));
    assert_eq!(failed.status, 503);
    w.store.refuse_deletes.set(0);
    let calls = w.calls();
    let again = deliver(&w, "push", &push("acme/r003"), Some("aaaa-1"));
    assert_eq!(again.status, 200);
    assert_eq!(w.calls(), calls + 1, "the redelivery asked GitHub");
}

#[test]
fn a_transfer_moves_the_record_between_two_listed_owners() {
    let w = world(&[("acme", 5), ("zeta", 2)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/orgs/zeta/repos").status, 200);
    // acme/r001 becomes zeta/r001 (zeta's own r001 is index 1 in the fixtures, standing in).
    w.gh.moved
        .borrow_mut()
        .insert("acme/r001".into(), ("zeta".into(), 1));
    let payload = json!({"action": "transferred", "repository": {"full_name": "zeta/r001", "default_branch": "main"},
        "changes": {"owner": {"from": {"organization": {"login": "acme"}}}}});
    let r = deliver(&w, "repository", &payload, None);
    assert_eq!(r.status, 200);
    let acme = w.get("/v1/orgs/acme/repos");
    assert_eq!(names(&acme), ["r000", "r002", "r003"]);
    let zeta = w.get("/v1/orgs/zeta/repos");
    assert!(names(&zeta).contains(&"r001".to_string()));
    assert_eq!(pages(&w), 2, "no rebuild for either owner");
}

#[test]
fn a_rename_drops_the_old_name_and_adds_the_new_one() {
    let w = world(&[("acme", 5)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // r001 is renamed r003 (the fixtures' r003 stands in for it; GitHub follows the old name).
    let payload = json!({"action": "renamed", "repository": {"full_name": "acme/r003", "default_branch": "main"},
        "changes": {"repository": {"name": {"from": "r001"}}}});
    w.gh.moved
        .borrow_mut()
        .insert("acme/r001".into(), ("acme".into(), 3));
    let r = deliver(&w, "repository", &payload, None);
    assert_eq!(r.status, 200);
    let acme = w.get("/v1/orgs/acme/repos");
    assert_eq!(names(&acme), ["r000", "r002", "r003"]);
    assert_eq!(pages(&w), 1);
}

#[test]
fn a_kv_miss_is_answered_from_the_directory_not_with_202() {
    let w = world(&[("acme", 250)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    deliver(
        &w,
        "repository",
        &repo_event("privatized", "acme/r003"),
        None,
    );
    // KV lags in another location: the directory's live listing answers.
    w.store.data.borrow_mut().remove("v1:org:acme");
    let poll = w.get("/v1/orgs/acme/repos");
    assert_eq!((poll.status, poll.header("x-cache")), (200, Some("HIT")));
    assert!(json_body(&poll)["revalidated_at"].is_string());
    assert_eq!(pages(&w), 3);
}

#[test]
fn an_object_that_lost_its_memory_answers_from_its_stored_listing_for_free() {
    let mut w = world(&[("acme", 250)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    deliver(
        &w,
        "repository",
        &repo_event("privatized", "acme/r003"),
        None,
    );
    // The object is evicted (a new life: nothing in memory), KV lags, and the client's budget
    // is spent: reading the listing the object stored costs nothing and builds nothing.
    {
        let dirs = w.directories.borrow();
        *dirs["acme"].memory.borrow_mut() = forgelens::owners::directory::Memory::default();
    }
    w.store.data.borrow_mut().remove("v1:org:acme");
    w.limiter = Some(Budget::new(0));
    let poll = w.get("/v1/orgs/acme/repos");
    assert_eq!((poll.status, poll.header("x-cache")), (200, Some("HIT")));
    assert_eq!(names(&poll).len(), 199);
    assert!(json_body(&poll)["revalidated_at"].is_string());
    assert_eq!(
        w.limiter.as_ref().unwrap().asked.get(),
        0,
        "no budget asked"
    );
    assert_eq!(pages(&w), 3, "no rebuild");
}

#[test]
fn owner_level_changes_still_rebuild() {
    let w = world(&[("acme", 5)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let admin = ADMIN;
    assert_eq!(
        w.request("DELETE", "/v1/cache/orgs/acme", &[admin]).status,
        200
    );
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(pages(&w), 2);
    // An admin repository purge is repository-level: revalidated, not rebuilt.
    let calls = w.calls();
    assert_eq!(
        w.request("DELETE", "/v1/cache/repos/acme/r001", &[admin])
            .status,
        200
    );
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!((pages(&w), w.calls()), (2, calls + 1));
}

/// Rebuilds of an owner whose object holds a live listing store their pages beside it (the
/// other of two slots), so the replaced listing's pages can be dropped without touching the
/// new one's: after three rebuilds in a row, a new life of the object still loads the listing
/// it stored instead of building again.
#[test]
fn rebuilds_beside_a_live_listing_leave_it_loadable_after_an_eviction() {
    let mut w = world(&[("acme", 250)]);
    w.vars.push(("PINNED_ORGS", "acme".into()));
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    for rebuild in 1..=3 {
        // Past half the fresh time the cron rebuilds the pinned owner, its listing kept meanwhile.
        w.advance(150);
        let owners = w.owners(&cfg, &forge);
        let svc = forgelens::service::Service::new(&cfg, &w.store, &w.gh, &w.clock, &forge)
            .with_owners(&owners);
        assert_eq!(block_on(svc.refresh_pinned()), ["acme"]);
        assert_eq!(pages(&w), 3 * (rebuild + 1), "rebuild {rebuild} paged");
    }
    // A new life of the object, KV lagging: the stored listing is whole and answered for free.
    *w.directories.borrow()["acme"].memory.borrow_mut() =
        forgelens::owners::directory::Memory::default();
    w.store.data.borrow_mut().remove("v1:org:acme");
    let poll = w.get("/v1/orgs/acme/repos");
    assert_eq!(poll.status, 200);
    assert_eq!(names(&poll).len(), 200);
    assert_eq!(pages(&w), 12, "no rebuild after the eviction");
}

/// A round whose KV write an invalidation overtook (one this object was not told of) drops the
/// live listing, but not a rebuild's stored progress: a later life of the object resumes that
/// rebuild where it stopped instead of paging the owner from the start.
#[test]
fn a_listing_abandoned_during_a_rebuild_keeps_the_rebuilds_progress() {
    let mut w = world(&[("acme", 250)]);
    w.vars.push(("PINNED_ORGS", "acme".into()));
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let built_at = w.clock.0.get();
    w.advance(150);
    // The cron's rebuild reads its first page; GitHub refuses the second, budget spent.
    let calls = w.calls();
    let reset_s = w.clock.0.get() / 1000 + 120;
    w.gh.fault_on_call.borrow_mut().insert(
        calls + 1,
        Ok(HttpReply {
            status: 403,
            headers: vec![
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-reset".into(), reset_s.to_string()),
            ],
            body: b"{}".to_vec(),
        }),
    );
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let svc = forgelens::service::Service::new(&cfg, &w.store, &w.gh, &w.clock, &forge)
        .with_owners(&owners);
    block_on(svc.refresh_pinned());
    // Another location purged the listing and its note to this object was lost: the marker
    // is newer than the live listing, older than the rebuild.
    w.store.data.borrow_mut().insert(
        "v1:inval:org:acme".into(),
        (forgelens::time::format_rfc3339(built_at + 100_000), None),
    );
    // It deleted the listing from KV. After the reset, a delivery's round asks GitHub and
    // publishes the listing: KV refuses the write, overtaken, and the listing is abandoned.
    w.store.data.borrow_mut().remove("v1:org:acme");
    w.advance(121);
    assert_eq!(deliver(&w, "push", &push("acme/r001"), None).status, 200);
    assert!(!w.store.data.borrow().contains_key("v1:org:acme"));
    // A new life of the object resumes the rebuild: it does not load the abandoned listing.
    *w.directories.borrow()["acme"].memory.borrow_mut() =
        forgelens::owners::directory::Memory::default();
    let before = pages(&w);
    let poll = w.get("/v1/orgs/acme/repos");
    assert_eq!(poll.status, 200);
    assert_eq!(pages(&w) - before, 2, "resumed at the page GitHub failed");
}

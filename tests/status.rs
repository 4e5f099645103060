//! `GET /v1/orgs/{owner}/status` natively: its auth and refusals, what it reports of a listing,
//! that asking never starts a build, and drift read off a rebuild (narrowed and added here, every
//! kind and the changes heard during a rebuild in `owners::drift`'s table, and a control rebuild
//! that finds none), and failed rounds counted until GitHub answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use serde_json::{json, Value};

fn status(w: &World, owner: &str, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let r = w.request("GET", &format!("/v1/orgs/{owner}/status"), &headers);
    (r.status, json_body(&r))
}

#[test]
fn refusals_come_in_order_and_asking_starts_nothing() {
    let mut w = World::new(&[("acme", 10)]);
    let (code, body) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(
        (code, body["error"]["code"].clone()),
        (503, json!("not_configured"))
    );
    w.vars = vec![
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("ALLOWED_OWNERS", "acme".into()),
    ];
    let (code, body) = status(&w, "acme", None);
    assert_eq!(
        (code, body["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    let (code, _) = status(&w, "acme", Some("not-the-admin-token"));
    assert_eq!(code, 401);
    let (code, body) = status(&w, "-bad-", Some(ADMIN_TOKEN));
    assert_eq!(
        (code, body["error"]["code"].clone()),
        (400, json!("invalid_name"))
    );
    // The allow-list is checked after the token: only the admin learns what is served.
    let (code, _) = status(&w, "other", None);
    assert_eq!(code, 401);
    let (code, body) = status(&w, "other", Some(ADMIN_TOKEN));
    assert_eq!(
        (code, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );

    let (code, body) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(code, 200);
    assert_eq!(body["listing"], "none");
    assert_eq!(body["build"], Value::Null);
    assert_eq!(w.calls(), 0, "asking never starts a build");
    let r = w.request(
        "GET",
        "/v1/orgs/acme/status",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(!String::from_utf8_lossy(&r.body).contains(ADMIN_TOKEN));
}

#[test]
fn a_listing_and_the_drift_each_rebuild_finds() {
    let mut w = live_world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let (code, s) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(code, 200);
    assert_eq!(s["owner"], "acme");
    assert_eq!(s["listing"], "ready");
    assert_eq!(s["records"], 10, "private records counted too");
    assert!(s["fetched_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["pending_changes"], 0);
    assert_eq!(s["failed_rounds"], 0);
    assert_eq!(
        s["subscribers"],
        json!({"all": 0, "public": 0, "redacted": 0})
    );
    assert_eq!(
        s["drift"]["last_rebuild_at"],
        Value::Null,
        "a first build replaces no listing"
    );

    // GitHub changes with no delivery: r001 made private, a repository created.
    w.gh.privatized.borrow_mut().insert("acme/r001".into());
    w.gh.owners.insert("acme".into(), 11);
    let rebuild = |w: &World| {
        w.advance(301);
        assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
        assert!(w.run_deferred() > 0, "the stale listing is refreshed");
    };
    rebuild(&w);
    let (_, s) = status(&w, "acme", Some(ADMIN_TOKEN));
    let zero = json!({"narrowed": 0, "widened": 0, "state": 0, "added": 0});
    let found = json!({"narrowed": 1, "widened": 0, "state": 0, "added": 1});
    assert_eq!(s["records"], 11);
    assert!(s["drift"]["last_rebuild_at"].is_string());
    assert_eq!(s["drift"]["last"], found, "{s}");
    assert_eq!(s["drift"]["last_24h"], found);

    // A control rebuild finds nothing; the day's sum keeps the first.
    rebuild(&w);
    let (_, s) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(s["drift"]["last"], zero);
    assert_eq!(s["drift"]["last_24h"], found);
}

#[test]
fn deliveries_applied_and_replayed_are_counted_for_a_day() {
    let w = live_world(&[("acme", 10), ("zeta", 5)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let privatized = repo_event("privatized", "acme/r003");
    assert_eq!(deliver(&w, "repository", &privatized, None).status, 200);
    assert_eq!(deliver(&w, "push", &push("acme/r004"), None).status, 200);
    // GitHub redelivers the first (under another id): answered as before, counted as a replay.
    assert_eq!(
        deliver(&w, "repository", &privatized, Some("another-id")).status,
        200
    );
    let counted =
        |w: &World, owner: &str| status(w, owner, Some(ADMIN_TOKEN)).1["deliveries_24h"].clone();
    assert_eq!(counted(&w, "acme"), json!({"applied": 2, "replayed": 1}));
    assert_eq!(
        counted(&w, "zeta"),
        json!({"applied": 0, "replayed": 0}),
        "another owner's deliveries are not its own"
    );
    // The object is evicted (storage kept): a new life reports the same counts.
    *w.directories.borrow()["acme"].memory.borrow_mut() =
        forgelens::owners::directory::Memory::default();
    assert_eq!(counted(&w, "acme"), json!({"applied": 2, "replayed": 1}));
    // An owner-level invalidation clears the object's storage; the counts outlive it.
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let purge = w.request(
        "DELETE",
        "/v1/cache/orgs/acme",
        &[("Authorization", &admin)],
    );
    assert_eq!(purge.status, 200);
    *w.directories.borrow()["acme"].memory.borrow_mut() =
        forgelens::owners::directory::Memory::default();
    assert_eq!(counted(&w, "acme"), json!({"applied": 2, "replayed": 1}));
    // A day later they are gone.
    w.advance(24 * 3600);
    assert_eq!(counted(&w, "acme"), json!({"applied": 0, "replayed": 0}));
}

#[test]
fn failed_rounds_and_pending_changes_until_github_answers() {
    let w = live_world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // GitHub fails every call: a push's round cannot ask, and its change waits.
    w.gh.fail_all();
    assert_eq!(deliver(&w, "push", &push("acme/r001"), None).status, 200);
    let (_, s) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(s["pending_changes"], 1);
    assert_eq!(s["failed_rounds"], 1);
    assert!(s["next_retry_at"].as_str().unwrap().ends_with('Z'));
    // The alarm's retry fails too: two failed rounds in a row.
    let failed = w.calls();
    fire_alarms(&w, "acme", 6_000);
    assert!(w.calls() > failed, "retried");
    let (_, s) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(s["failed_rounds"], 2);
    assert_eq!(s["pending_changes"], 1);
    // GitHub answers again: the next retry empties the queue and the count starts over.
    *w.gh.fault.borrow_mut() = None;
    fire_alarms(&w, "acme", 60_000);
    let (_, s) = status(&w, "acme", Some(ADMIN_TOKEN));
    assert_eq!(s["failed_rounds"], 0);
    assert_eq!(s["pending_changes"], 0);
    assert_eq!(s["next_retry_at"], Value::Null);
}

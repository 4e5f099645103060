//! Native tests of live events in a directory (`owners::feed` over `owners::events`): what each
//! scope's subscribers are sent as deliveries, rounds, rebuilds and purges change the listing,
//! with the object's sockets replaced by the recording `MemCheckpoints` (frames rendered with the
//! default `fields=`). The socket side runs in the worker: `tests/e2e/events.test.mjs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use forgelens::model::Scope;
use serde_json::{json, Value};

/// A world whose `acme` directory has a listing and one subscriber per scope. The cold build's
/// `ready` was every scope's message 1.
fn watched(count: usize) -> World {
    let w = live_world(&[("acme", count)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    w.directories.borrow()["acme"]
        .storage
        .subscribers
        .set([1, 1, 1]);
    w
}

/// The frames sent since the last call, per scope (`None`: to every subscriber).
fn sent(w: &World) -> Vec<(Option<Scope>, Value)> {
    let dirs = w.directories.borrow();
    let frames = dirs["acme"].storage.sent.take();
    frames
        .into_iter()
        .map(|(scope, text)| (scope, serde_json::from_str(&text).unwrap()))
        .collect()
}

fn of(frames: &[(Option<Scope>, Value)], scope: Scope) -> Vec<Value> {
    frames
        .iter()
        .filter(|(s, _)| *s == Some(scope))
        .map(|(_, f)| f.clone())
        .collect()
}

#[test]
fn a_privatize_is_sent_to_every_scope_it_changes_before_its_delivery_is_answered() {
    let w = watched(10);
    sent(&w);
    // GitHub is down: only the payload's narrowing fact applies, and it is sent at once.
    w.gh.fail_all();
    let r = deliver(
        &w,
        "repository",
        &repo_event("privatized", "acme/r001"),
        None,
    );
    assert_eq!(r.status, 200);
    let frames = sent(&w);
    assert_eq!(
        of(&frames, Scope::Public),
        [json!({"type": "remove", "seq": 2, "name": "r001"})]
    );
    assert_eq!(
        of(&frames, Scope::Redacted),
        [json!({"type": "upsert", "seq": 2,
            "repo": {"name": "r001", "full_name": "acme/r001", "visibility": "private"}})]
    );
    let all = of(&frames, Scope::All);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["repo"]["visibility"], "private");
    assert_eq!(all[0]["seq"], 2);
    // The numbers are stored at once: a later life of the object numbers on from them.
    let dirs = w.directories.borrow();
    assert_eq!(dirs["acme"].storage.data.borrow()["events"], "2,2,2");
}

#[test]
fn activity_on_a_private_record_reaches_only_token_subscribers_and_leaves_no_gap() {
    let w = watched(10);
    sent(&w);
    // r004 is private in the fixtures; a push moves its pushed_at.
    w.gh.pushed
        .borrow_mut()
        .insert("acme/r004".into(), "2026-02-01T00:00:00Z".into());
    assert_eq!(deliver(&w, "push", &push("acme/r004"), None).status, 200);
    let frames = sent(&w);
    assert_eq!(of(&frames, Scope::All).len(), 1);
    assert!(of(&frames, Scope::Public).is_empty());
    assert!(
        of(&frames, Scope::Redacted).is_empty(),
        "its redacted view is unchanged"
    );
    // The next public change is number 2 for the anonymous scopes, 3 for the token's.
    w.advance(2);
    w.gh.pushed
        .borrow_mut()
        .insert("acme/r002".into(), "2026-02-02T00:00:00Z".into());
    assert_eq!(deliver(&w, "push", &push("acme/r002"), None).status, 200);
    let frames = sent(&w);
    assert_eq!(of(&frames, Scope::Public)[0]["seq"], 2);
    assert_eq!(of(&frames, Scope::Redacted)[0]["seq"], 2);
    assert_eq!(of(&frames, Scope::All)[0]["seq"], 3);
    assert_eq!(
        of(&frames, Scope::Public)[0]["repo"]["pushed_at"],
        "2026-02-02T00:00:00Z"
    );
}

#[test]
fn an_owner_purge_sends_reset_then_the_rebuild_it_starts_sends_ready() {
    let w = watched(250);
    sent(&w);
    let purged = w.request("DELETE", "/v1/cache/orgs/acme", &[ADMIN]);
    assert_eq!(
        purged.status,
        200,
        "{}",
        String::from_utf8_lossy(&purged.body)
    );
    let frames = sent(&w);
    for scope in [Scope::All, Scope::Public, Scope::Redacted] {
        assert_eq!(of(&frames, scope), [json!({"type": "reset", "seq": 2})]);
    }
    // Watched, the owner is rebuilt without a read; `ready` follows its pages (and `progress`,
    // at most one a second, the cold build's a second ago).
    w.advance(1);
    fire_alarms(&w, "acme", 60_000);
    let frames = sent(&w);
    for scope in [Scope::All, Scope::Public, Scope::Redacted] {
        assert_eq!(of(&frames, scope), [json!({"type": "ready", "seq": 3})]);
    }
    assert!(
        frames
            .iter()
            .any(|(s, f)| s.is_none() && f["type"] == "progress"),
        "progress while it paged: {frames:?}"
    );
}

#[test]
fn a_rebuild_sends_what_changed_as_upserts_and_removes_not_a_reset() {
    let w = watched(10);
    sent(&w);
    // GitHub changed r003 without a delivery: the next rebuild finds it (drift) and sends it.
    w.gh.privatized.borrow_mut().insert("acme/r003".into());
    w.advance(400);
    assert_eq!(w.request("GET", "/v1/orgs/acme/repos", &[]).status, 200);
    w.run_deferred();
    fire_alarms(&w, "acme", 60_000);
    let frames = sent(&w);
    assert!(frames.iter().all(|(_, f)| f["type"] != "reset"));
    assert_eq!(
        of(&frames, Scope::Public),
        [json!({"type": "remove", "seq": 2, "name": "r003"})]
    );
    assert_eq!(of(&frames, Scope::All)[0]["repo"]["visibility"], "private");
}

#[test]
fn the_route_admits_a_subscription_only_after_every_refusal() {
    let w = live_world(&[("acme", 10)]);
    let up = ("upgrade", "websocket");
    let plain = w.get("/v1/orgs/acme/events");
    assert_eq!(plain.status, 426);
    assert_eq!(plain.header("upgrade"), Some("websocket"));
    assert_eq!(json_body(&plain)["error"]["code"], "upgrade_required");
    for (path, status) in [
        ("/v1/orgs/acme/events?fields=nope", 400),
        ("/v1/orgs/acme/events?since=1.5", 400),
        ("/v1/orgs/acme/events?since=1&since=2", 400),
        ("/v1/orgs/a_b/events", 400),
    ] {
        assert_eq!(w.request("GET", path, &[up]).status, status, "{path}");
    }
    let bad = [
        up,
        (
            "sec-websocket-protocol",
            "forgelens.v1, forgelens.token.x.y.z",
        ),
    ];
    assert_eq!(w.request("GET", "/v1/orgs/acme/events", &bad).status, 401);
    // Admitted: 101 and the subscription the object is handed, nothing asked of GitHub.
    let ok = w.request("GET", "/v1/orgs/acme/events?since=7&fields=name", &[up]);
    assert_eq!(ok.status, 101);
    let sub = ok.upgrade.as_deref().unwrap();
    let parsed = forgelens::http::events::Subscription::from_query(sub).unwrap();
    assert_eq!(parsed.scope, Scope::Public);
    assert_eq!(parsed.since, Some(7));
    assert_eq!(parsed.until_ms, None);
    assert!(!parsed.protocol);
    assert_eq!(w.calls(), 0);
}

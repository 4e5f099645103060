//! Native black-box tests of the read path (`http::handle`) with in-memory doubles for KV, the
//! network and the clock.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use forgelens::forge::HttpReply;
use serde_json::json;
use std::rc::Rc;

#[test]
fn listing_pages_then_hits_until_stale() {
    let w = World::new(&[("acme", 250)]);
    let cold = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((cold.status, cold.header("x-cache")), (200, Some("MISS")));
    assert_eq!(w.calls(), 3);
    assert_eq!(
        json_body(&cold)["repos"].as_array().unwrap().len(),
        200,
        "every fifth is private"
    );

    w.advance(299);
    let warm = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((warm.header("x-cache"), w.calls()), (Some("HIT"), 3));
    assert_eq!(
        warm.header("cache-control"),
        Some("public, max-age=1, stale-while-revalidate=60")
    );

    w.advance(1);
    let again = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(
        again.header("x-cache"),
        Some("MISS"),
        "older than FRESH_TTL_SECONDS asks GitHub again"
    );
    assert_eq!(w.calls(), 6);
}

#[test]
fn stale_entry_is_served_when_upstream_fails() {
    let w = World::new(&[("acme", 3), ("zeta", 3)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos?names=acme/r000,acme/r001").status, 200);
    w.advance(400);
    *w.gh.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 502,
        headers: vec![],
        body: b"bad gateway".to_vec(),
    }));
    let org = w.get("/v1/orgs/acme/repos");
    assert_eq!((org.status, org.header("x-cache")), (200, Some("STALE")));
    assert_eq!(
        org.header("cache-control"),
        Some("public, max-age=0, stale-while-revalidate=60")
    );
    // A name in the stale listing is served; one never seen reports the failure.
    let batch = w.get("/v1/repos?names=acme/r002,zeta/r002&fields=name");
    assert_eq!((batch.status, batch.header("x-cache")), (200, Some("MISS")));
    assert_eq!(
        batch.header("cache-control"),
        Some("public, max-age=0, stale-while-revalidate=60")
    );
    assert_eq!(
        json_body(&batch),
        json!({"repos": [{"name": "r002"}], "errors": [{"name": "zeta/r002", "code": "upstream_error"}]})
    );
    let only_stale = w.get("/v1/repos?names=acme/r001&fields=name");
    assert_eq!(only_stale.header("x-cache"), Some("STALE"));
}

#[test]
fn kv_write_limit_never_fails_a_request() {
    let w = World::new(&[("acme", 3)]);
    w.store.reject_writes.set(true);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos?names=acme/r000,acme/r009").status, 200);
    assert_eq!(w.get("/v1/repos/acme/r001").status, 200);
    assert!(w.store.data.borrow().is_empty());
}

#[test]
fn ttls_follow_the_contract() {
    let mut w = World::new(&[("acme", 3), ("pinned", 2), ("other", 2)]);
    w.vars = vec![
        ("STALE_TTL_SECONDS", "3600".into()),
        ("PINNED_ORGS", "Pinned".into()),
    ];
    w.get("/v1/orgs/acme/repos");
    w.get("/v1/orgs/pinned/repos");
    w.get("/v1/orgs/ghost/repos");
    w.get("/v1/repos?names=other/r000,other/r404");
    let data = w.store.data.borrow();
    let ttl = |k: &str| data.get(k).map(|(_, t)| *t);
    assert_eq!(ttl("v1:org:acme"), Some(Some(3600)));
    assert_eq!(
        ttl("v1:org:pinned"),
        Some(None),
        "pinned listings never expire"
    );
    assert_eq!(ttl("v1:org:ghost"), Some(Some(60)));
    assert_eq!(ttl("v1:repo:other/r000"), Some(Some(3600)));
    assert_eq!(ttl("v1:repo:other/r404"), Some(Some(60)));
}

#[test]
fn negative_entries_expire_after_a_minute() {
    let w = World::new(&[("acme", 1)]);
    assert_eq!(w.get("/v1/repos/acme/r404").status, 404);
    w.advance(59);
    assert_eq!(w.get("/v1/repos/acme/r404").status, 404);
    assert_eq!(w.calls(), 1);
    w.advance(1);
    assert_eq!(w.get("/v1/repos/acme/r404").status, 404);
    assert_eq!(w.calls(), 2);
}

#[test]
fn a_cursor_that_does_not_advance_is_unusable_and_not_cached() {
    let w = World::new(&[("acme", 250)]);
    w.gh.stuck_cursor.set(true);
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(r.status, 502);
    assert!(
        w.calls() <= 3,
        "gave up instead of looping: {} calls",
        w.calls()
    );
    assert!(
        w.store.data.borrow().is_empty(),
        "no partial listing stored"
    );
}

#[test]
fn one_deadline_covers_every_page() {
    let mut w = World::new(&[("acme", 500)]);
    w.vars = vec![("UPSTREAM_TIMEOUT_MS", "1000".into())];
    w.gh.clock = Some((Rc::clone(&w.clock.0), 300));
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(
        r.status, 503,
        "5 pages of 300 ms do not fit a 1000 ms budget"
    );
    assert_eq!(json_body(&r)["error"]["code"], "upstream_unavailable");
    assert_eq!(w.calls(), 4);
    assert!(
        w.store.data.borrow().is_empty(),
        "a listing that cannot finish is never cached partially"
    );
}

#[test]
fn batch_is_one_call_for_the_misses_and_fills_from_listings() {
    let w = World::new(&[("acme", 5), ("zeta", 5)]);
    w.get("/v1/orgs/acme/repos");
    assert_eq!(w.calls(), 1);
    let r = w.get("/v1/repos?names=acme/r000,zeta/r001,acme/r003,zeta/r404&fields=name,owner");
    assert_eq!(w.calls(), 2);
    let call = &w.gh.calls.borrow()[1];
    assert_eq!(
        call["variables"],
        json!({"o0": "zeta", "n0": "r001", "o1": "zeta", "n1": "r404"}),
        "acme names came from the listing"
    );
    assert_eq!(
        json_body(&r),
        json!({"repos": [{"name": "r000", "owner": "acme"}, {"name": "r001", "owner": "zeta"}, {"name": "r003", "owner": "acme"}],
               "errors": [{"name": "zeta/r404", "code": "not_found"}]})
    );
}

#[test]
fn rate_limited_upstream_answers_429_with_retry_after() {
    let w = World::new(&[("acme", 1)]);
    let reset_s = T0 / 1000 + 90;
    *w.gh.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 403,
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), reset_s.to_string()),
        ],
        body: b"{}".to_vec(),
    }));
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("90")));
    assert_eq!(json_body(&r)["error"]["code"], "rate_limited");
}

#[test]
fn authorization_makes_views_private_or_fails() {
    let w = World::new(&[("acme", 1)]);
    let r = w.request(
        "GET",
        "/v1/orgs/acme/repos",
        &[("Authorization", "Bearer abc.def.ghi")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(w.calls(), 0);
}

#[test]
fn health_reports_booleans_and_the_invalid_variable() {
    let mut w = World::new(&[]);
    w.vars = vec![
        ("ADMIN_TOKEN", "very-secret-admin".into()),
        ("UPSTREAM_TIMEOUT_MS", "5".into()),
    ];
    let r = w.get("/v1/health");
    let body = json_body(&r);
    assert_eq!(
        (r.status, body["config_error"].as_str()),
        (200, Some("UPSTREAM_TIMEOUT_MS"))
    );
    assert_eq!(body["config"]["ADMIN_TOKEN"], true);
    assert!(!String::from_utf8_lossy(&r.body).contains("very-secret-admin"));
    let data = w.get("/v1/orgs/acme/repos");
    assert_eq!(
        (data.status, json_body(&data)["error"]["code"].as_str()),
        (500, Some("config_invalid"))
    );
}

#[test]
fn hostile_input_never_panics() {
    let w = World::new(&[("acme", 1)]);
    let hostile = [
        "/v1/orgs/%00/repos",
        "/v1/orgs/%/repos",
        "/v1/repos?names=%FF%FE/%C0",
        "/v1/repos?names=a/b&fields=%",
        "/v1/repos?names==&=",
        "/v1/repos/\u{1F600}/x",
        "/v1/repos?names=a/b%2Cc/d%2C",
        "/v1/orgs/acme/repos?fields=name%00",
    ];
    for path in hostile {
        let r = w.get(path);
        assert!((400..500).contains(&r.status), "{path} -> {}", r.status);
        assert!(json_body(&r)["error"]["code"].is_string());
    }
    let long = format!("/v1/repos?names={}", vec!["a/b"; 5000].join(","));
    assert_eq!(w.get(&long).status, 200, "duplicates collapse to one name");
    assert_eq!(w.calls(), 1);
}

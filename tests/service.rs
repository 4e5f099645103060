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

    // The directory writes back 100 ms after its answer (the manual clock moved on meanwhile):
    // the listing is 298.1 s old here, 1.9 s of freshness left.
    w.advance(298);
    let warm = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((warm.header("x-cache"), w.calls()), (Some("HIT"), 3));
    assert_eq!(
        warm.header("cache-control"),
        Some("public, max-age=1, stale-while-revalidate=60")
    );

    w.advance(2);
    let stale = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(stale.header("x-cache"), Some("STALE"), "answered at once");
    assert_eq!(
        stale.header("cache-control"),
        Some("public, max-age=0, stale-while-revalidate=60")
    );
    assert_eq!(w.calls(), 3, "nobody waited on GitHub");
    let again = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(again.header("x-cache"), Some("STALE"));
    assert_eq!(
        w.run_deferred(),
        1,
        "one background refresh for two stale reads"
    );
    assert_eq!(w.calls(), 6);
    let refreshed = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(refreshed.header("x-cache"), Some("HIT"));
}

#[test]
fn stale_batch_items_are_served_at_once_and_refreshed_later() {
    let w = World::new(&[("acme", 5)]);
    w.get("/v1/repos?names=acme/r000,acme/r001");
    w.advance(301);
    let r = w.get("/v1/repos?names=acme/r001,acme/r000&fields=name");
    assert_eq!((r.header("x-cache"), w.calls()), (Some("STALE"), 1));
    assert_eq!(
        json_body(&r)["repos"],
        json!([{"name": "r001"}, {"name": "r000"}])
    );
    // A mixed batch: stale parts now, the miss fetched now; one deferred refresh in all.
    let mixed = w.get("/v1/repos?names=acme/r000,acme/r003");
    assert_eq!((mixed.header("x-cache"), w.calls()), (Some("MISS"), 2));
    assert_eq!(
        mixed.header("cache-control"),
        Some("public, max-age=0, stale-while-revalidate=60"),
        "the stale part is not kept by browsers"
    );
    assert_eq!(w.run_deferred(), 1);
    assert_eq!(w.calls(), 3);
    let call = w.gh.calls.borrow().last().cloned().unwrap();
    assert_eq!(
        call["variables"],
        json!({"o0": "acme", "n0": "r001", "o1": "acme", "n1": "r000"})
    );
    assert_eq!(
        w.get("/v1/repos?names=acme/r000,acme/r001")
            .header("x-cache"),
        Some("HIT")
    );
}

#[test]
fn a_failed_background_refresh_keeps_the_entry() {
    let w = World::new(&[("acme", 2)]);
    w.get("/v1/orgs/acme/repos");
    let before = w.store.data.borrow().get("v1:org:acme").cloned();
    w.advance(400);
    *w.gh.fault.borrow_mut() = Some(Err("connection reset".into()));
    assert_eq!(
        w.get("/v1/orgs/acme/repos").header("x-cache"),
        Some("STALE")
    );
    w.run_deferred();
    assert_eq!(w.store.data.borrow().get("v1:org:acme").cloned(), before);
    // The claim was released: the next stale read schedules another try.
    w.get("/v1/orgs/acme/repos");
    assert_eq!(w.run_deferred(), 1);
}

#[test]
fn stale_entry_is_served_when_upstream_fails() {
    let w = World::new(&[("acme", 3), ("zeta", 3)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos?names=acme/r000,acme/r001").status, 200);
    w.advance(400);
    w.gh.fail_all();
    // The stale negative entry of the owner listing is gone; the listing itself is stale.
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
fn a_build_that_outlives_the_budget_answers_202_and_resumes_from_its_checkpoint() {
    let mut w = World::new(&[("acme", 500)]);
    w.vars = vec![("UPSTREAM_TIMEOUT_MS", "1000".into())];
    w.gh.clock = Some((Rc::clone(&w.clock.0), 300));
    let r = w.get("/v1/orgs/Acme/repos");
    assert_eq!(
        r.status, 202,
        "5 pages of 300 ms do not fit a 1000 ms budget"
    );
    assert_eq!(
        json_body(&r),
        json!({"status": "building", "owner": "Acme", "repos_fetched": 400, "repos_total": 500,
            "started_at": forgelens::time::format_rfc3339(T0)})
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(w.calls(), 4);
    assert!(
        w.store.data.borrow().is_empty(),
        "a listing that is not complete is never cached partially"
    );
    let done = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((done.status, done.header("x-cache")), (200, Some("MISS")));
    assert_eq!(
        w.calls(),
        5,
        "the build went on from its checkpoint: no page twice"
    );
    assert_eq!(json_body(&done)["repos"].as_array().unwrap().len(), 400);
    assert_eq!(
        json_body(&done)["fetched_at"],
        forgelens::time::format_rfc3339(T0),
        "as old as its first page"
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
    // 2,000 repeats stay under the 8 KiB query limit.
    let long = format!("/v1/repos?names={}", vec!["a/b"; 2000].join(","));
    assert_eq!(w.get(&long).status, 200, "duplicates collapse to one name");
    assert_eq!(w.calls(), 1);
}

#[test]
fn query_strings_over_8_kib_are_refused_unread() {
    let w = World::new(&[("acme", 3)]);
    let routes = [
        "/v1/repos?names=acme/r001",
        "/v1/repos/acme/r001?fields=name",
        "/v1/orgs/acme/repos?fields=name",
    ];
    for base in routes {
        let used = base.split_once('?').unwrap().1.len() + "&pad=".len();
        for (query_len, refused) in [(8 * 1024, false), (8 * 1024 + 1, true), (100_000, true)] {
            let url = format!("{base}&pad={}", "x".repeat(query_len - used));
            let calls = w.calls();
            let r = w.get(&url);
            let invalid = r.status == 400 && json_body(&r)["error"]["code"] == "invalid_name";
            assert_eq!(invalid, refused, "{base} with a {query_len}-byte query");
            if refused {
                assert_eq!(w.calls(), calls, "{base}: refused before any upstream call");
            }
        }
    }
}

#[test]
fn concurrent_cold_requests_share_one_upstream_flight() {
    let w = World::new(&[("acme", 250)]);
    let requests: Vec<_> = (0..50)
        .map(|_| w.fetch("GET", "/v1/orgs/acme/repos?fields=name", &[], b""))
        .collect();
    let answers = futures::executor::block_on(futures::future::join_all(requests));
    assert!(answers.iter().all(|r| r.status == 200));
    assert_eq!(
        w.calls(),
        3,
        "50 concurrent misses cost one listing: 3 pages"
    );
    let bodies: std::collections::HashSet<_> = answers.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies.len(), 1);

    let batch: Vec<_> = (0..20)
        .map(|_| w.fetch("GET", "/v1/repos?names=zz/r000,acme/r404", &[], b""))
        .collect();
    let answers = futures::executor::block_on(futures::future::join_all(batch));
    assert!(answers.iter().all(|r| r.status == 200));
    assert_eq!(w.calls(), 4, "20 identical cold batches cost one call");
}

#[test]
fn a_failing_build_is_shared_shrinks_its_pages_and_is_remembered() {
    let w = World::new(&[("acme", 1)]);
    *w.gh.fault.borrow_mut() = Some(Err("connection refused".into()));
    let requests: Vec<_> = (0..3)
        .map(|_| w.fetch("GET", "/v1/orgs/acme/repos", &[], b""))
        .collect();
    let answers = futures::executor::block_on(futures::future::join_all(requests));
    assert!(answers.iter().all(|r| r.status == 503));
    let sizes: Vec<u64> =
        w.gh.calls
            .borrow()
            .iter()
            .map(|c| c["variables"]["first"].as_u64().unwrap())
            .collect();
    assert_eq!(
        sizes,
        [100, 50, 25, 12, 10, 10, 10],
        "one build for three callers, pages halved to 10"
    );
    w.advance(9);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 503);
    assert_eq!(w.calls(), 7, "a failure is remembered for 10 s");
    *w.gh.fault.borrow_mut() = None;
    w.advance(1);
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(r.status, 200);
    assert_eq!(
        w.gh.calls.borrow()[7]["variables"]["first"],
        10,
        "the smaller size stays"
    );
}

fn rate_limited_reply(reset_s: u64) -> HttpReply {
    HttpReply {
        status: 403,
        headers: vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), reset_s.to_string()),
        ],
        body: b"{}".to_vec(),
    }
}

#[test]
fn a_spent_rate_limit_stops_upstream_calls_until_the_reset() {
    let w = World::new(&[("acme", 2), ("zeta", 2)]);
    w.get("/v1/orgs/zeta/repos");
    *w.gh.fault.borrow_mut() = Some(Ok(rate_limited_reply(T0 / 1000 + 1000)));
    let first = w.get("/v1/orgs/acme/repos");
    assert_eq!(
        (first.status, first.header("retry-after")),
        (429, Some("1000"))
    );
    let stored = w.store.data.borrow().get("v1:ratelimit:e3b0c442").cloned();
    assert!(
        stored.is_some_and(|(_, ttl)| ttl == Some(1000)),
        "remembered in KV for other isolates"
    );
    *w.gh.fault.borrow_mut() = None;
    w.advance(30);
    let calls = w.calls();
    let second = w.get("/v1/repos/acme/r000");
    assert_eq!(
        (second.status, second.header("retry-after")),
        (429, Some("970"))
    );
    assert_eq!(w.calls(), calls, "no call while the limit is spent");
    // Stale data is still served.
    w.advance(300);
    let zeta = w.get("/v1/orgs/zeta/repos");
    assert_eq!((zeta.status, zeta.header("x-cache")), (200, Some("STALE")));
    w.run_deferred();
    assert_eq!(
        w.calls(),
        calls,
        "background refreshes respect the limit too"
    );
    // After the reset, calls resume.
    w.advance(700);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.calls(), calls + 1);
}

#[test]
fn graphql_rate_limit_signals_are_remembered() {
    let w = World::new(&[("acme", 2)]);
    let body = json!({"data": null, "errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]});
    *w.gh.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }));
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("60")));
    *w.gh.fault.borrow_mut() = None;
    assert_eq!(
        w.get("/v1/orgs/acme/repos").status,
        429,
        "no call for the next 60 s"
    );
    assert_eq!(w.calls(), 1);
    let body = json!({"data": {"rateLimit": {"cost": 1, "remaining": 0, "resetAt": "2023-11-14T22:20:00Z"},
        "repositoryOwner": {"login": "acme", "repositories": {"nodes": [], "pageInfo": {"hasNextPage": false, "endCursor": null}}}}});
    w.advance(61);
    *w.gh.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }));
    assert_eq!(
        w.get("/v1/orgs/acme/repos").status,
        200,
        "the last point of budget still answers"
    );
    assert_eq!(
        w.get("/v1/repos/acme/r001").status,
        429,
        "remaining 0: no more calls until resetAt"
    );
}

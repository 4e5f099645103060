//! Regression tests for the adversarial review (issue 10): headers that could tell a hidden
//! repository from a missing one, rename aliases that outlive a privatization, invalidations
//! blocked by a spent write budget, the per-client upstream budget, and response headers.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;

/// (status, X-Cache, Cache-Control) of an answer: all a caller learns besides the body.
fn headers(r: &forgelens::http::Response) -> (u16, Option<String>, Option<String>) {
    (
        r.status,
        r.header("x-cache").map(str::to_string),
        r.header("cache-control").map(str::to_string),
    )
}

/// In the fixtures every fifth repository (r004, r009, …) is private.
#[test]
fn a_hidden_record_sets_headers_exactly_like_a_missing_name() {
    let w = World::new(&[("acme", 10)]);
    // Both asked for the first time: both fetched for this request.
    let hidden = w.get("/v1/repos?names=acme/r004");
    let missing = w.get("/v1/repos?names=acme/nope");
    assert_eq!(headers(&hidden), headers(&missing));
    assert_eq!(hidden.header("x-cache"), Some("MISS"));
    assert_eq!(
        json_body(&hidden),
        json_body(&missing)
            .to_string()
            .replace("acme/nope", "acme/r004")
            .parse::<serde_json::Value>()
            .unwrap()
    );

    // Cached, within the not-found lifetime: still the same fixed MISS (issue 17: a cached
    // hidden record beside a never-asked name must not show as a HIT).
    w.advance(30);
    let (hidden, missing) = (
        w.get("/v1/repos?names=acme/r004"),
        w.get("/v1/repos?names=acme/nope"),
    );
    assert_eq!(headers(&hidden), headers(&missing));
    assert_eq!(hidden.header("x-cache"), Some("MISS"));

    // Past the fresh time the hidden record is stale; that must not show.
    w.advance(300);
    let calls = w.calls();
    let hidden = w.get("/v1/repos?names=acme/r004");
    assert_eq!(w.calls(), calls, "answered from the cache");
    assert_eq!(
        headers(&hidden),
        (
            200,
            Some("MISS".into()),
            Some("public, max-age=60, stale-while-revalidate=60".into())
        ),
        "a stale hidden record never makes an answer STALE or max-age=0"
    );
    // Next to a visible fresh record it lowers nothing either.
    assert_eq!(
        w.get("/v1/repos?names=acme/r001").header("x-cache"),
        Some("MISS")
    );
    w.advance(10);
    let fresh = w.get("/v1/repos?names=acme/r001");
    let mixed = w.get("/v1/repos?names=acme/r001,acme/r004");
    assert_eq!(headers(&mixed), headers(&fresh));

    // The single route: hidden and missing are the same 404, without cache headers.
    let (one_hidden, one_missing) = (w.get("/v1/repos/acme/r004"), w.get("/v1/repos/acme/nope"));
    assert_eq!(headers(&one_hidden), headers(&one_missing));
    assert_eq!(one_hidden.body, one_missing.body);
}

#[test]
fn with_github_down_a_hidden_fallback_fails_like_a_missing_name() {
    let w = World::new(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    w.advance(400); // the listing is stale: it only backs names up if GitHub fails
    *w.gh.fault.borrow_mut() = Some(Err("connection reset".into()));
    let hidden = w.get("/v1/repos?names=acme/r004");
    let missing = w.get("/v1/repos?names=acme/nope");
    assert_eq!(headers(&hidden), headers(&missing));
    assert_eq!(hidden.status, 503);
    assert_eq!(hidden.body, missing.body);
    let (one_hidden, one_missing) = (w.get("/v1/repos/acme/r004"), w.get("/v1/repos/acme/nope"));
    assert_eq!(
        (one_hidden.status, one_hidden.body),
        (one_missing.status, one_missing.body)
    );
    // A visible record still falls back, marked stale.
    let visible = w.get("/v1/repos?names=acme/r001");
    assert_eq!(
        (visible.status, visible.header("x-cache")),
        (200, Some("STALE"))
    );
}

#[test]
fn an_old_name_is_never_stored_so_a_privatization_reaches_it() {
    let mut w = World::new(&[("acme", 10)]);
    w.vars = vec![("ADMIN_TOKEN", ADMIN_TOKEN.into())];
    w.gh.renames.borrow_mut().insert("acme/old-name".into(), 1);
    let old = w.get("/v1/repos/acme/Old-Name?fields=full_name,visibility");
    assert_eq!(old.status, 200);
    assert_eq!(
        json_body(&old)["full_name"],
        "acme/r001",
        "GitHub followed the rename"
    );
    let stored: Vec<String> = w.store.data.borrow().keys().cloned().collect();
    assert_eq!(
        stored,
        ["v1:repo:acme/r001"],
        "stored under its real name only"
    );

    // The repository is made private; the purge (as the webhook would) names the real name.
    w.gh.privatized.borrow_mut().insert("acme/r001".into());
    let r = w.request("DELETE", "/v1/cache/repos/acme/r001", &[ADMIN]);
    assert_eq!(r.status, 200);
    assert_eq!(w.get("/v1/repos/acme/old-name").status, 404);
    assert_eq!(w.get("/v1/repos/acme/r001").status, 404);
    let batch = w.get("/v1/repos?names=acme/old-name");
    assert_eq!(json_body(&batch)["repos"], serde_json::json!([]));
}

#[test]
fn an_old_and_a_new_name_in_one_batch_write_the_record_once() {
    let w = World::new(&[("acme", 10)]);
    w.gh.renames.borrow_mut().insert("acme/old-name".into(), 1);
    let r = w.get("/v1/repos?names=acme/old-name,acme/r001&fields=full_name");
    assert_eq!(
        json_body(&r)["repos"],
        serde_json::json!([{"full_name": "acme/r001"}, {"full_name": "acme/r001"}])
    );
    assert_eq!(
        w.store.writes.get(),
        1,
        "KV allows one write per key per second"
    );
}

#[test]
fn a_spent_write_budget_does_not_stop_the_delete() {
    let mut w = World::new(&[("acme", 10)]);
    w.vars = vec![("ADMIN_TOKEN", ADMIN_TOKEN.into())];
    assert_eq!(w.get("/v1/repos/acme/r001").status, 200);
    w.store.reject_writes.set(true); // every marker write fails from here on
    let r = w.request("DELETE", "/v1/cache/repos/acme/r001", &[ADMIN]);
    assert_eq!(r.status, 200, "the marker is best-effort");
    assert!(
        !w.store.data.borrow().contains_key("v1:repo:acme/r001"),
        "the entry was deleted although its marker could not be written"
    );
}

#[test]
fn refused_deletes_answer_store_unavailable() {
    let mut w = World::new(&[("acme", 10)]);
    w.vars = vec![("ADMIN_TOKEN", ADMIN_TOKEN.into())];
    w.store.refuse_deletes.set(1000);
    let r = w.request("DELETE", "/v1/cache/orgs/acme", &[ADMIN]);
    assert_eq!(r.status, 503);
    assert_eq!(json_body(&r)["error"]["code"], "store_unavailable");
}

#[test]
fn the_client_budget_limits_only_answers_that_need_github() {
    let mut w = World::new(&[("acme", 10)]);
    w.limiter = Some(Budget::new(2));
    assert_eq!(w.get("/v1/repos?names=acme/r001").status, 200);
    assert_eq!(w.get("/v1/repos?names=acme/r002").status, 200);
    let calls = w.calls();
    let limited = w.get("/v1/repos?names=acme/r003");
    assert_eq!(limited.status, 429);
    assert_eq!(json_body(&limited)["error"]["code"], "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(w.calls(), calls, "nothing was sent upstream");
    let single = w.get("/v1/orgs/acme/repos");
    assert_eq!(single.status, 429);

    // Cached answers are never limited, and do not spend the budget.
    let asked = w.limiter.as_ref().unwrap().asked.get();
    assert_eq!(w.get("/v1/repos?names=acme/r001").status, 200);
    assert_eq!(w.get("/v1/repos/acme/r002").status, 200);
    assert_eq!(w.limiter.as_ref().unwrap().asked.get(), asked);

    // Bad input is refused before the budget is asked.
    assert_eq!(w.get("/v1/repos?names=acme/..").status, 400);
    assert_eq!(w.limiter.as_ref().unwrap().asked.get(), asked);
}

#[test]
fn a_batch_asks_the_budget_once_and_serves_its_cached_part() {
    let mut w = World::new(&[("acme", 10)]);
    w.limiter = Some(Budget::new(1));
    assert_eq!(w.get("/v1/repos?names=acme/r000,acme/r001").status, 200);
    assert_eq!(w.limiter.as_ref().unwrap().asked.get(), 1);
    let r = w.get("/v1/repos?names=acme/r000,acme/r002");
    assert_eq!(r.status, 200, "the cached name is answered");
    assert_eq!(
        json_body(&r)["errors"],
        serde_json::json!([{"name": "acme/r002", "code": "rate_limited"}])
    );
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=0, stale-while-revalidate=60")
    );
}

#[test]
fn every_answer_says_nosniff_and_data_answers_say_where_time_went() {
    let mut w = World::new(&[("acme", 10)]);
    for path in [
        "/",
        "/v1/health",
        "/v1/openapi.json",
        "/v1/nope",
        "/v1/repos/acme/r001",
    ] {
        let r = w.get(path);
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    w.gh.clock = Some((w.clock.0.clone(), 40));
    let miss = w.get("/v1/repos/acme/r002");
    let timing = miss.header("server-timing").unwrap();
    assert!(timing.contains("kv;dur="), "{timing}");
    assert!(timing.contains("upstream;dur=40"), "{timing}");
    let hit = w.get("/v1/repos/acme/r002");
    let timing = hit.header("server-timing").unwrap();
    assert_eq!(timing, "mem;dur=0", "the fetched record was kept in memory");
    w.advance(3);
    let hit = w.get("/v1/repos/acme/r002");
    let timing = hit.header("server-timing").unwrap();
    assert!(
        timing.starts_with("kv;dur=") && !timing.contains("upstream"),
        "{timing}"
    );

    // CORS on static documents depends on the origin only when origins are restricted.
    assert_eq!(w.get("/").header("vary"), None);
    w.vars = vec![("ALLOWED_ORIGINS", "https://dash.example".into())];
    for path in ["/", "/v1/openapi.json"] {
        assert_eq!(w.get(path).header("vary"), Some("Origin"), "{path}");
    }
}

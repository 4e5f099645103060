//! Regression tests for the second adversarial review (issue 17) on the read path: a hidden
//! record answered exactly like a missing name (headers, metric names, the client budget), and
//! polls of a build that never spend that budget.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;

/// Everything a caller learns from an answer but its timing: status, the body with the asked
/// name replaced, and the headers DESIGN.md lists (metric names only, not durations).
fn seen(r: &forgelens::http::Response, asked: &str) -> String {
    let timing_names: Vec<String> = r
        .header("server-timing")
        .unwrap_or("")
        .split(", ")
        .map(|m| m.split(';').next().unwrap_or("").to_string())
        .collect();
    format!(
        "{} x-cache={:?} cache-control={:?} etag={} retry-after={:?} timing={:?} body={}",
        r.status,
        r.header("x-cache"),
        r.header("cache-control"),
        r.header("etag").is_some(),
        r.header("retry-after"),
        timing_names,
        String::from_utf8_lossy(&r.body).replace(asked, "NAME"),
    )
}

/// In the fixtures every fifth repository (r004, r009, …) is private. Each case asks a hidden
/// record and a never-asked missing name the same way and compares all a caller sees, first
/// alone, then beside a visible record, on first asks and on later ones.
/// Builds a request path around one repository name.
type PathFn = fn(&str) -> String;

#[test]
fn a_hidden_record_is_answered_exactly_like_a_missing_name() {
    let mut w = World::new(&[("acme", 30)]);
    w.limiter = Some(Budget::new(1000));
    // The hidden records get into every tier first: KV (via the listing) and memory.
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos?names=acme/r001").status, 200);
    let mut n = 0;
    let mut fresh_missing = || {
        n += 1;
        format!("acme/nope{n}")
    };
    let pairs: [(&str, PathFn); 4] = [
        ("single", |name| format!("/v1/repos/{name}")),
        ("batch", |name| format!("/v1/repos?names={name}")),
        ("beside", |name| format!("/v1/repos?names=acme/r001,{name}")),
        ("fields", |name| {
            format!("/v1/repos?names={name},acme/r002&fields=name")
        }),
    ];
    for round in 0..3 {
        for (label, path) in &pairs {
            for hidden in ["acme/r004", "acme/r009"] {
                let missing = fresh_missing();
                let budget = w.limiter.as_ref().unwrap().asked.get();
                let h = w.get(&path(hidden));
                let h_cost = w.limiter.as_ref().unwrap().asked.get() - budget;
                let budget = w.limiter.as_ref().unwrap().asked.get();
                let m = w.get(&path(&missing));
                let m_cost = w.limiter.as_ref().unwrap().asked.get() - budget;
                assert_eq!(
                    seen(&h, hidden),
                    seen(&m, &missing),
                    "{label}, round {round}"
                );
                assert_eq!(h_cost, m_cost, "{label}: the budget, round {round}");
            }
        }
        w.advance(1);
    }
}

/// Once the caller's budget is spent, a hidden record and a missing name both answer
/// `rate_limited`: before the fix the cached hidden record answered `not_found` at no cost,
/// so 100 guesses per request told which private names exist.
#[test]
fn a_spent_budget_limits_hidden_and_missing_names_alike() {
    let mut w = World::new(&[("acme", 30)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    w.limiter = Some(Budget::new(0));
    let calls = w.calls();
    for path in ["/v1/repos/{}", "/v1/repos?names={}"] {
        let h = w.get(&path.replace("{}", "acme/r004"));
        let m = w.get(&path.replace("{}", "acme/nope"));
        assert_eq!(h.status, 429, "{path}");
        assert_eq!(seen(&h, "acme/r004"), seen(&m, "acme/nope"), "{path}");
    }
    // Beside a visible cached record: both names are reported `rate_limited`, the record served.
    let h = w.get("/v1/repos?names=acme/r001,acme/r004");
    let m = w.get("/v1/repos?names=acme/r001,acme/nope");
    assert_eq!(h.status, 200);
    assert_eq!(json_body(&h)["errors"][0]["code"], "rate_limited");
    assert_eq!(
        h.header("retry-after"),
        Some("60"),
        "a 200 says when to ask again"
    );
    assert_eq!(seen(&h, "acme/r004"), seen(&m, "acme/nope"));
    assert_eq!(w.calls(), calls, "nothing went upstream");
    // Visible cached records alone are still served without asking the budget.
    let asked = w.limiter.as_ref().unwrap().asked.get();
    assert_eq!(w.get("/v1/repos?names=acme/r001,acme/r002").status, 200);
    assert_eq!(w.limiter.as_ref().unwrap().asked.get(), asked);
}

/// A dashboard polling a large owner's build from one address: only the request that starts
/// the build is charged; polls join it (or read the completed listing) at no cost, so a budget
/// of one admission sees the whole build through. Before the fix every poll was charged.
#[test]
fn polling_a_build_never_spends_the_budget() {
    let mut w = World::new(&[("acme", 2_000), ("other", 50)]);
    w.vars = vec![("UPSTREAM_TIMEOUT_MS", "1000".into())];
    w.gh.clock = Some((std::rc::Rc::clone(&w.clock.0), 300));
    w.limiter = Some(Budget::new(1));
    let first = w.get("/v1/orgs/acme/repos");
    assert_eq!(first.status, 202, "20 pages of 300 ms do not fit 1 s");
    let mut statuses = Vec::new();
    for _ in 0..18 {
        w.advance(2);
        let r = w.get("/v1/orgs/acme/repos?fields=name");
        statuses.push(r.status);
        if r.status == 200 {
            assert_eq!(json_body(&r)["repos"].as_array().unwrap().len(), 1_600);
        }
    }
    assert!(!statuses.contains(&429), "a poll was refused: {statuses:?}");
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    assert_eq!(
        w.limiter.as_ref().unwrap().asked.get(),
        1,
        "the budget is asked once, by the request that started the build"
    );
    // Starting another build is charged: the budget is spent, so it is refused.
    let other = w.get("/v1/orgs/other/repos");
    assert_eq!(other.status, 429);
    assert!(other.header("retry-after").is_some());
}

/// `ALLOWED_OWNERS`: any other owner is not found on every read route, with no upstream call
/// and no directory (Durable Object) touched; a batch reports its names `not_found` beside the
/// served ones.
#[test]
fn owners_not_allowed_are_not_found_without_any_io() {
    let mut w = World::new(&[("acme", 3), ("other", 3)]);
    w.vars = vec![("ALLOWED_OWNERS", "Acme".into())];
    for path in [
        "/v1/orgs/other/repos",
        "/v1/orgs/OTHER/repos?fields=name",
        "/v1/repos/other/r000",
    ] {
        let r = w.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(json_body(&r)["error"]["code"], "not_found", "{path}");
    }
    let batch = json_body(&w.get("/v1/repos?names=other/r000,other/r001"));
    assert_eq!(batch["repos"], serde_json::json!([]));
    assert_eq!(batch["errors"][1]["code"], "not_found");
    assert_eq!(w.calls(), 0, "GitHub was never asked");
    assert!(w.directories.borrow().is_empty(), "no directory touched");
    assert!(
        w.store.data.borrow().is_empty(),
        "nothing read or written for them"
    );
    let r = w.get("/v1/repos?names=acme/r000,other/r000");
    assert_eq!(r.status, 200);
    let body = json_body(&r);
    assert_eq!(body["repos"][0]["name"], "r000");
    assert_eq!(body["errors"][0]["name"], "other/r000");
    assert_eq!(body["errors"][0]["code"], "not_found");
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    // A bad entry is a configuration error, reported by name; health still answers.
    w.vars = vec![("ALLOWED_OWNERS", "acme,not an owner".into())];
    let r = w.get("/v1/orgs/acme/repos");
    assert_eq!(r.status, 500);
    assert_eq!(json_body(&r)["error"]["code"], "config_invalid");
    let health = json_body(&w.get("/v1/health"));
    assert_eq!(health["config_error"], "ALLOWED_OWNERS");
    assert_eq!(health["config"]["ALLOWED_OWNERS"], true);
    assert_eq!(health["config"]["GITHUB_BUDGET_RESERVE"], false);
}

/// Below `GITHUB_BUDGET_RESERVE` of the credential's limit only `PINNED_ORGS` (and webhook
/// revalidations) reach GitHub: other misses are 429 with `Retry-After` to the reset, stale
/// entries are served stale, and fresh cached answers are untouched.
#[test]
fn below_the_budget_reserve_only_essential_work_reaches_github() {
    let mut w = World::new(&[("acme", 30), ("other", 30), ("pinned", 30)]);
    w.vars = vec![
        ("PINNED_ORGS", "pinned".into()),
        ("GITHUB_BUDGET_RESERVE", "20".into()),
    ];
    let reset_ms = T0 + 1_800_000;
    let reset = forgelens::time::format_rfc3339(reset_ms);
    *w.gh.rate.borrow_mut() = (1_100, reset.clone());
    assert_eq!(
        w.get("/v1/orgs/acme/repos").status,
        200,
        "22 % left: served"
    );
    *w.gh.rate.borrow_mut() = (900, reset.clone());
    assert_eq!(
        w.get("/v1/repos/acme/nope").status,
        404,
        "18 % left: learned"
    );
    let calls = w.calls();
    for path in [
        "/v1/orgs/other/repos",
        "/v1/repos/other/r000",
        "/v1/repos?names=other/r001",
    ] {
        let r = w.get(path);
        assert_eq!(r.status, 429, "{path}");
        assert_eq!(json_body(&r)["error"]["code"], "rate_limited", "{path}");
        assert_eq!(r.header("retry-after"), Some("1800"), "{path}");
    }
    assert_eq!(w.calls(), calls, "nothing non-essential went upstream");
    let pinned = w.get("/v1/orgs/pinned/repos");
    assert_eq!(pinned.status, 200, "a pinned owner's build goes on");
    assert_eq!(w.calls(), calls + 1);
    // What is cached is answered: fresh as a HIT, stale as STALE without a refresh call.
    assert_eq!(w.get("/v1/orgs/acme/repos").header("x-cache"), Some("HIT"));
    w.advance(w.config().fresh_ttl + 1);
    let stale = w.get("/v1/orgs/acme/repos");
    assert_eq!(
        (stale.status, stale.header("x-cache")),
        (200, Some("STALE"))
    );
    w.run_deferred();
    assert_eq!(
        w.calls(),
        calls + 1,
        "the background refresh waits for the reset"
    );
    // Every isolate sees it: the budget is remembered in KV until the reset.
    let kept = w
        .store
        .data
        .borrow()
        .iter()
        .any(|(k, v)| k.starts_with("v1:ratelimit") && v.0 == format!("low {reset}"));
    assert!(
        kept,
        "{:?}",
        w.store.data.borrow().keys().collect::<Vec<_>>()
    );
    // After the reset the budget is whole again.
    w.clock.0.set(reset_ms + 1);
    *w.gh.rate.borrow_mut() = (5_000, forgelens::time::format_rfc3339(reset_ms + 3_600_000));
    assert_eq!(w.get("/v1/orgs/other/repos").status, 200);
}

//! The in-isolate memory tier through the whole request path: a HIT answered from memory, its
//! lifetime, scopes kept apart, and invalidations honoured at once in this isolate.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;

fn world(vars: &[(&'static str, &str)]) -> World {
    let mut w = World::new(&[("acme", 10)]);
    w.vars = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
    w.vars.push(("ADMIN_TOKEN", ADMIN_TOKEN.into()));
    w
}

/// Reads of KV so far, counted by changing what KV holds: a value only memory could answer.
fn poison_kv(w: &World, key: &str) {
    let mut data = w.store.data.borrow_mut();
    let (_, ttl) = data.get(key).cloned().unwrap();
    data.insert(key.into(), ("not an envelope".into(), ttl));
}

#[test]
fn a_hit_is_answered_from_memory_for_its_lifetime_only() {
    let w = world(&[]);
    let miss = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(miss.header("x-cache"), Some("MISS"));
    poison_kv(&w, "v1:org:acme");
    let hit = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!((hit.status, hit.header("x-cache")), (200, Some("HIT")));
    assert_eq!(hit.body, miss.body, "the same view, without KV");
    assert_eq!(hit.header("etag"), miss.header("etag"));
    assert_eq!(hit.header("server-timing"), Some("mem;dur=0"));
    w.advance(2);
    let after = w.get("/v1/orgs/acme/repos?fields=name");
    assert_eq!(
        after.header("x-cache"),
        Some("MISS"),
        "past MEMORY_TTL_MS, KV (now unreadable) is read"
    );
    assert!(after
        .header("server-timing")
        .unwrap()
        .contains("owner;dur="));
}

#[test]
fn memory_never_outlives_the_entry_s_freshness() {
    let w = world(&[("FRESH_TTL_SECONDS", "1"), ("MEMORY_TTL_MS", "10000")]);
    assert_eq!(w.get("/v1/repos/acme/r001").status, 200);
    w.advance(1);
    let r = w.get("/v1/repos/acme/r001");
    assert_eq!(
        r.header("x-cache"),
        Some("STALE"),
        "answered from KV as stale, not from memory"
    );
}

#[test]
fn memory_ttl_zero_turns_the_tier_off() {
    let w = world(&[("MEMORY_TTL_MS", "0")]);
    assert_eq!(w.get("/v1/repos/acme/r001").status, 200);
    let hit = w.get("/v1/repos/acme/r001");
    assert!(hit.header("server-timing").unwrap().starts_with("kv;"));
}

#[test]
fn scopes_never_share_a_kept_view() {
    let secret = "a-read-token-secret-of-32-bytes-or-more";
    let w = world(&[
        ("READ_TOKEN_SECRET", secret),
        ("PRIVATE_REPOS_ANONYMOUS", "hide"),
    ]);
    let anon = w.get("/v1/orgs/acme/repos?fields=name");
    let token = read_token(secret, &["acme"]);
    let auth = format!("Bearer {token}");
    let member = w.request(
        "GET",
        "/v1/orgs/acme/repos?fields=name",
        &[("Authorization", &auth)],
    );
    let count = |r: &forgelens::http::Response| json_body(r)["repos"].as_array().unwrap().len();
    assert_eq!(
        (count(&anon), count(&member)),
        (8, 10),
        "r004 and r009 are private"
    );
    // Both views are kept now; each caller still gets their own.
    let anon2 = w.get("/v1/orgs/acme/repos?fields=name");
    let member2 = w.request(
        "GET",
        "/v1/orgs/acme/repos?fields=name",
        &[("Authorization", &auth)],
    );
    assert_eq!((count(&anon2), count(&member2)), (8, 10));
    assert_eq!(anon2.header("server-timing"), Some("mem;dur=0"));
    assert_eq!(member2.header("cache-control"), Some("private, no-store"));
    let other_fields = w.get("/v1/orgs/acme/repos?fields=name,visibility");
    assert_eq!(json_body(&other_fields)["repos"][0]["visibility"], "public");
}

#[test]
fn a_privatization_is_honoured_at_once_in_this_isolate() {
    let w = world(&[]);
    assert_eq!(w.get("/v1/repos/acme/r001").status, 200);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(
        w.get("/v1/repos/acme/r001").header("server-timing"),
        Some("mem;dur=0")
    );
    w.gh.privatized.borrow_mut().insert("acme/r001".into());
    assert_eq!(
        w.request("DELETE", "/v1/cache/repos/acme/r001", &[ADMIN])
            .status,
        200
    );
    assert_eq!(
        w.get("/v1/repos/acme/r001").status,
        404,
        "not answered from memory"
    );
    let listing = w.get("/v1/orgs/acme/repos?fields=name");
    let body = json_body(&listing);
    let names: Vec<&str> = body["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"r001"), "{names:?}");
}

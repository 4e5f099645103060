//! Native tests of the webhook receiver, the admin purge routes and the pinned-owner cron, with
//! in-memory KV, GitHub and clock.

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
use forgelens::http::Response;
use forgelens::service::Service;
use futures::executor::block_on;
use serde_json::{json, Value};
use std::rc::Rc;

/// (headers, body, expected status, expected code)
type Delivery<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
/// (headers, path, expected status, expected code)
type AdminCase<'a> = (&'a [(&'a str, &'a str)], &'a str, u16, Option<&'a str>);

const SECRET: &str = "webhook-secret-for-tests";

fn sign(body: &[u8]) -> String {
    webhook_signature(SECRET, body)
}

fn world() -> World {
    let mut w = World::new(&[("acme", 3), ("zeta", 2)]);
    w.vars = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET.into()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
    ];
    w
}

fn deliver(w: &World, event: &str, payload: &Value) -> Response {
    let body = payload.to_string().into_bytes();
    let sig = sign(&body);
    let headers = [
        ("X-GitHub-Event", event),
        ("X-Hub-Signature-256", sig.as_str()),
        ("Content-Type", "application/json"),
    ];
    w.send("POST", "/v1/webhooks/github", &headers, &body)
}

fn privatized(full_name: &str) -> Value {
    json!({"action": "privatized", "repository": {"full_name": full_name, "default_branch": "main"}})
}

fn keys(w: &World) -> Vec<String> {
    let mut k: Vec<String> = w
        .store
        .data
        .borrow()
        .keys()
        // Markers and the memory of applied deliveries are not cache entries.
        .filter(|k| !k.starts_with("v1:inval:") && !k.starts_with("v1:delivery:"))
        .cloned()
        .collect();
    k.sort();
    k
}

fn warm(w: &World) {
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos?names=acme/r001,zeta/r000").status, 200);
    assert_eq!(keys(w), ["v1:org:acme", "v1:repo:zeta/r000"]);
}

#[test]
fn privatized_delivery_patches_the_listing_and_drops_the_record() {
    let w = world();
    warm(&w);
    let before = w.calls();
    w.gh.privatized.borrow_mut().insert("acme/r001".into());
    let r = deliver(&w, "repository", &privatized("Acme/R001"));
    assert_eq!(r.status, 200);
    assert_eq!(
        json_body(&r),
        json!({"event": "repository", "action": "privatized", "invalidated": ["v1:repo:acme/r001", "v1:org:acme"]})
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The repository's own entry is gone; the owner's listing is the patched one, asked of
    // GitHub once (one aliased query, no listing pages).
    assert_eq!(keys(&w), ["v1:org:acme", "v1:repo:zeta/r000"]);
    assert_eq!(w.calls(), before + 1);
    let stored = w.store.data.borrow()["v1:org:acme"].0.clone();
    let listing: Value = serde_json::from_str(&stored).unwrap();
    let r001 = &listing["data"]["repos"][1];
    assert_eq!(
        (r001["name"].as_str(), r001["visibility"].as_str()),
        (Some("r001"), Some("private"))
    );
    assert!(listing["data"]["revalidated_at"].is_string(), "{listing}");
    let again = w.get("/v1/orgs/acme/repos");
    let body = json_body(&again);
    let names: Vec<&str> = body["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        (again.header("x-cache"), names),
        (Some("HIT"), vec!["r000", "r002"])
    );
    assert!(body["revalidated_at"].is_string(), "{body}");
    assert_eq!(w.calls(), before + 1);
}

#[test]
fn unsigned_tampered_or_misdirected_deliveries_change_nothing() {
    let w = world();
    warm(&w);
    let body = privatized("acme/r001").to_string().into_bytes();
    let good = sign(&body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let cases: Vec<Delivery> = vec![
        (
            vec![
                ("X-GitHub-Event", "repository"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            401,
            "bad_signature",
        ),
        (
            vec![
                ("X-GitHub-Event", "repository"),
                ("X-Hub-Signature-256", "sha256=00"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            401,
            "bad_signature",
        ),
        (
            vec![
                ("X-GitHub-Event", "repository"),
                ("X-Hub-Signature-256", &good),
                ("Content-Type", "application/json"),
            ],
            tampered,
            401,
            "bad_signature",
        ),
        (
            vec![
                ("X-Hub-Signature-256", &good),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            400,
            "invalid_payload",
        ),
        (
            vec![
                ("X-GitHub-Event", "repository"),
                ("X-Hub-Signature-256", &good),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.clone(),
            400,
            "invalid_payload",
        ),
    ];
    for (headers, body, status, code) in cases {
        let r = w.send("POST", "/v1/webhooks/github", &headers, &body);
        assert_eq!(
            (r.status, json_body(&r)["error"]["code"].as_str()),
            (status, Some(code)),
            "{headers:?}"
        );
    }
    let not_json = b"action=privatized".to_vec();
    let sig = sign(&not_json);
    let r = w.send(
        "POST",
        "/v1/webhooks/github",
        &[
            ("X-GitHub-Event", "repository"),
            ("X-Hub-Signature-256", &sig),
            ("Content-Type", "application/json"),
        ],
        &not_json,
    );
    assert_eq!(
        (r.status, json_body(&r)["error"]["code"].as_str()),
        (400, Some("invalid_payload"))
    );
    let huge = vec![b' '; forgelens::http::MAX_BODY + 1];
    let sig = sign(&huge);
    let r = w.send(
        "POST",
        "/v1/webhooks/github",
        &[
            ("X-GitHub-Event", "repository"),
            ("X-Hub-Signature-256", &sig),
            ("Content-Type", "application/json"),
        ],
        &huge,
    );
    assert_eq!(r.status, 413);
    assert_eq!(
        keys(&w),
        ["v1:org:acme", "v1:repo:zeta/r000"],
        "nothing was dropped"
    );
}

#[test]
fn webhook_without_a_secret_is_not_configured() {
    let mut w = world();
    w.vars.retain(|(k, _)| *k != "GITHUB_WEBHOOK_SECRET");
    warm(&w);
    let r = deliver(&w, "repository", &privatized("acme/r001"));
    assert_eq!(
        (r.status, json_body(&r)["error"]["code"].as_str()),
        (503, Some("not_configured"))
    );
    assert_eq!(keys(&w).len(), 2);
}

#[test]
fn ignored_events_answer_200_with_nothing_invalidated() {
    let w = world();
    warm(&w);
    for (event, payload) in [
        (
            "ping",
            json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
        ),
        ("star", privatized("acme/r001")),
        (
            "push",
            json!({"ref": "refs/heads/feature", "repository": {"full_name": "acme/r001", "default_branch": "main"}}),
        ),
    ] {
        let r = deliver(&w, event, &payload);
        assert_eq!(r.status, 200, "{event}");
        assert_eq!(json_body(&r)["invalidated"], json!([]), "{event}");
    }
    assert_eq!(keys(&w).len(), 2);
}

#[test]
fn a_refresh_that_asked_before_an_invalidation_does_not_write_back() {
    let w = world();
    // While GitHub answers the old (public) state, a privatized delivery lands.
    let store_data = Rc::clone(&w.store.data);
    let clock = Rc::clone(&w.clock.0);
    *w.gh.during_call.borrow_mut() = Some(Box::new(move || {
        let now = forgelens::time::format_rfc3339(clock.get() + 5);
        let mut data = store_data.borrow_mut();
        data.insert("v1:inval:org:acme".into(), (now.clone(), Some(120)));
        data.insert("v1:inval:repo:acme/r000".into(), (now, Some(120)));
    }));
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos/acme/r000").status, 200);
    assert!(
        keys(&w).is_empty(),
        "older answers were not stored: {:?}",
        keys(&w)
    );
    // A fetch sent after the invalidation is stored as usual (once this isolate's memory of the
    // older answer, at most MEMORY_TTL_MS, has passed: the invalidation happened elsewhere).
    *w.gh.during_call.borrow_mut() = None;
    w.advance(3);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(keys(&w), ["v1:org:acme"]);
}

#[test]
fn refused_deletes_are_retried_then_fail_the_delivery() {
    let w = world();
    warm(&w);
    w.store.refuse_deletes.set(3);
    let r = deliver(&w, "public", &privatized("zeta/r000"));
    assert_eq!(r.status, 200, "three refusals are absorbed by retries");
    assert_eq!(keys(&w), ["v1:org:acme"]);

    warm(&w);
    w.store.refuse_deletes.set(1000);
    // Another delivery (the same body again would be a replay of the applied one).
    let r = deliver(&w, "public", &privatized("Zeta/r000"));
    assert_eq!(
        r.status, 503,
        "GitHub must see the delivery fail so it can be redelivered"
    );
    assert_eq!(json_body(&r)["error"]["code"], "store_unavailable");
    // One key alone shows the retry budget (the test clock adds up concurrent waits).
    let started = w.clock.0.get();
    let r = w.request("DELETE", "/v1/cache/orgs/acme", &[ADMIN]);
    assert_eq!(r.status, 503);
    let waited = w.clock.0.get() - started;
    assert!(
        (4_000..=6_000).contains(&waited),
        "retried for about 5 s, waited {waited} ms"
    );
}

#[test]
fn admin_routes_need_the_token_and_list_what_they_dropped() {
    let w = world();
    warm(&w);
    let bearer = [ADMIN];
    let cases: &[AdminCase] = &[
        (&[], "/v1/cache/orgs/acme", 401, Some("unauthorized")),
        (
            &[("Authorization", "Bearer wrong")],
            "/v1/cache/orgs/acme",
            401,
            Some("unauthorized"),
        ),
        (
            &[("Authorization", "Basic YWRtaW4=")],
            "/v1/cache/orgs/acme",
            401,
            Some("unauthorized"),
        ),
        (&bearer, "/v1/cache/orgs/-bad", 400, Some("invalid_name")),
        (
            &bearer,
            "/v1/cache/repos/acme/..",
            400,
            Some("invalid_name"),
        ),
    ];
    for (headers, path, status, code) in cases {
        let r = w.request("DELETE", path, headers);
        assert_eq!(
            (r.status, json_body(&r)["error"]["code"].as_str()),
            (*status, *code),
            "{path} {headers:?}"
        );
    }
    assert_eq!(keys(&w).len(), 2, "nothing dropped yet");
    let r = w.request("DELETE", "/v1/cache/repos/Zeta/R000", &bearer);
    assert_eq!(
        json_body(&r),
        json!({"invalidated": ["v1:repo:zeta/r000", "v1:org:zeta"]})
    );
    let r = w.request("DELETE", "/v1/cache/orgs/ACME", &bearer);
    assert_eq!(
        (r.status, json_body(&r)),
        (200, json!({"invalidated": ["v1:org:acme"]}))
    );
    assert!(keys(&w).is_empty());
    let r = w.request("GET", "/v1/cache/orgs/acme", &bearer);
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("DELETE, OPTIONS"))
    );
}

#[test]
fn admin_routes_without_a_token_configured_are_503() {
    let mut w = world();
    w.vars.retain(|(k, _)| *k != "ADMIN_TOKEN");
    let r = w.request(
        "DELETE",
        "/v1/cache/orgs/acme",
        &[("Authorization", "Bearer anything")],
    );
    assert_eq!(
        (r.status, json_body(&r)["error"]["code"].as_str()),
        (503, Some("not_configured"))
    );
}

fn run_cron(w: &World) -> Vec<String> {
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owners = w.owners(&cfg, &forge);
    let svc = Service::new(&cfg, &w.store, &w.gh, &w.clock, &forge).with_owners(&owners);
    block_on(svc.refresh_pinned())
}

#[test]
fn cron_keeps_pinned_owners_warm() {
    let mut w = world();
    w.vars.push(("PINNED_ORGS", "acme,Zeta".into()));
    assert_eq!(
        run_cron(&w),
        ["acme", "Zeta"],
        "missing entries are fetched"
    );
    let ttl = |k: &str| w.store.data.borrow().get(k).map(|(_, t)| *t);
    assert_eq!(
        ttl("v1:org:acme"),
        Some(None),
        "pinned entries never expire"
    );
    assert_eq!(
        run_cron(&w),
        Vec::<String>::new(),
        "fresh entries are left alone"
    );
    w.advance(150);
    assert_eq!(
        run_cron(&w),
        ["acme", "Zeta"],
        "older than half of FRESH_TTL_SECONDS"
    );
    let before = w.store.data.borrow().get("v1:org:acme").cloned();
    w.advance(150);
    *w.gh.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 500,
        headers: vec![],
        body: vec![],
    }));
    // The directories are asked; their builds fail.
    assert_eq!(run_cron(&w), ["acme", "Zeta"]);
    assert_eq!(
        w.store.data.borrow().get("v1:org:acme").cloned(),
        before,
        "a failed refresh keeps the old entry"
    );
    assert!(
        w.store
            .data
            .borrow()
            .keys()
            .all(|k| k.starts_with("v1:org:")),
        "only listings are refreshed"
    );
}

/// An `installation_repositories` delivery naming thousands of repositories: the owner's
/// listing and installation entry go first, the request itself stays well under KV's 1,000
/// operations per invocation, the rest is dropped by the owner's directory in chunks (each an
/// invocation of its own, under the limit too), and it is answered with every key dropped.
/// Before the fix the owner-level keys came last, after ~6,000 operations in one `join_all`.
#[test]
fn a_delivery_naming_thousands_of_repositories_is_applied_in_chunks() {
    let w = world();
    let n = 3_000;
    let removed: Vec<Value> = (0..n)
        .map(|i| json!({"id": i, "name": format!("r{i:04}"), "full_name": format!("acme/r{i:04}"), "private": true}))
        .collect();
    for i in 0..n {
        let key = format!("v1:repo:acme/r{i:04}");
        w.store
            .data
            .borrow_mut()
            .insert(key, ("{}".into(), Some(3600)));
    }
    for key in ["v1:org:acme", "v1:installation:acme"] {
        w.store
            .data
            .borrow_mut()
            .insert(key.into(), ("{}".into(), Some(3600)));
    }
    let payload = json!({
        "action": "removed",
        "installation": {"id": 7, "account": {"login": "acme", "type": "Organization"}},
        "repository_selection": "selected",
        "repositories_added": [],
        "repositories_removed": removed,
    });
    // The owner-level keys are the request's first deletes.
    let ops_before = w.store.ops.get();
    let r = deliver(&w, "installation_repositories", &payload);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        json_body(&r)["invalidated"].as_array().unwrap().len(),
        n + 2
    );
    let left: Vec<String> = keys(&w)
        .into_iter()
        .filter(|k| k.starts_with("v1:repo:") || k == "v1:org:acme" || k == "v1:installation:acme")
        .collect();
    assert!(
        left.is_empty(),
        "{} keys left, e.g. {:?}",
        left.len(),
        left.first()
    );
    let chunks = w.directories.borrow()["acme"].forgotten.borrow().clone();
    assert!(!chunks.is_empty(), "the directory dropped the rest");
    // One delete a key in the directories (their owner's listing went first, marked).
    assert!(chunks.iter().all(|&c| c < 1_000), "{chunks:?}");
    let in_directories: usize = chunks.iter().sum();
    let own = w.store.ops.get() - ops_before - in_directories;
    assert!(own < 1_000, "the request made {own} KV operations itself");
    // Its own share, 200 keys, costs a marker and a delete each, once; only the owner's
    // listing goes a second time (unmarked), with a few reads besides.
    let share = forgelens::service::KEYS_PER_INVOCATION;
    assert!(
        own <= 2 * share + 5,
        "{own} KV operations for a share of {share} keys"
    );
    // The rest goes to the owner's directory in as few invocations as the limit allows.
    assert_eq!(in_directories, n + 2 - share);
    assert_eq!(chunks.len(), in_directories.div_ceil(share), "{chunks:?}");
}

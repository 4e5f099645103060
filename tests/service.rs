//! Native black-box tests of the whole request path (`http::handle`) with in-memory doubles for
//! KV, the network and the clock. Time is set, never slept on.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use forgelens::cache::{Store, StoreError};
use forgelens::config::{Config, VARIABLES};
use forgelens::forge::{HttpCall, HttpReply};
use forgelens::http::{handle, Ctx, Request, Response};
use forgelens::service::{Clock, Transport};
use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

const T0: u64 = 1_700_000_000_000;

#[derive(Default)]
struct MemStore {
    data: RefCell<HashMap<String, (String, Option<u64>)>>,
    reject_writes: Cell<bool>,
    writes: Cell<usize>,
}

impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.data.borrow().get(key).map(|(v, _)| v.clone()))
    }
    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        assert!(keys.len() <= 100, "get_bulk takes at most 100 keys");
        let data = self.data.borrow();
        Ok(keys
            .iter()
            .map(|k| (k.clone(), data.get(k).map(|(v, _)| v.clone())))
            .collect())
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        if self.reject_writes.get() {
            return Err(StoreError::TooManyWrites);
        }
        assert!(
            ttl.is_none_or(|t| t >= 60),
            "KV refuses expirationTtl below 60"
        );
        self.writes.set(self.writes.get() + 1);
        self.data
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), ttl));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.data.borrow_mut().remove(key);
        Ok(())
    }
}

struct ManualClock(Rc<Cell<u64>>);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// A tiny GitHub: owners with `count` public repositories named r000…; replies are built in the
/// same shape as the real API's.
struct FakeGitHub {
    owners: HashMap<String, usize>,
    calls: RefCell<Vec<Value>>,
    fault: RefCell<Option<Result<HttpReply, String>>>,
    /// Every page claims another follows, with the same cursor.
    stuck_cursor: Cell<bool>,
    /// Each call advances this clock by `latency_ms`, to exercise the request's deadline.
    clock: Option<(Rc<Cell<u64>>, u64)>,
}

impl FakeGitHub {
    fn new(owners: &[(&str, usize)]) -> FakeGitHub {
        FakeGitHub {
            owners: owners.iter().map(|(o, n)| (o.to_string(), *n)).collect(),
            calls: RefCell::default(),
            fault: RefCell::default(),
            stuck_cursor: Cell::new(false),
            clock: None,
        }
    }

    fn node(owner: &str, i: usize) -> Value {
        json!({"name": format!("r{i:03}"), "owner": {"login": owner}, "nameWithOwner": format!("{owner}/r{i:03}"),
            "url": format!("https://github.com/{owner}/r{i:03}"), "description": null,
            "visibility": if i % 5 == 4 { "PRIVATE" } else { "PUBLIC" }, "isPrivate": i % 5 == 4,
            "isArchived": false, "isDisabled": false, "isFork": false, "pushedAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-02T00:00:00Z", "primaryLanguage": null,
            "defaultBranchRef": {"name": "main", "target": {"oid": "abc", "statusCheckRollup": {"state": "SUCCESS"}}}})
    }

    fn answer(&self, body: &Value) -> Value {
        let vars = &body["variables"];
        if let Some(owner) = vars.get("owner").and_then(Value::as_str) {
            let Some(&count) = self.owners.get(owner) else {
                return json!({"data": {"repositoryOwner": null}, "errors": [{"type": "NOT_FOUND", "path": ["repositoryOwner"]}]});
            };
            let start: usize = vars["cursor"].as_str().map_or(0, |c| c.parse().unwrap());
            let end = (start + 100).min(count);
            let nodes: Vec<Value> = (start..end).map(|i| Self::node(owner, i)).collect();
            let (more, cursor) = if self.stuck_cursor.get() {
                (true, "7".to_string())
            } else {
                (end < count, end.to_string())
            };
            return json!({"data": {"rateLimit": {"cost": 1, "remaining": 4000, "resetAt": "2026-01-01T00:00:00Z"},
                "repositoryOwner": {"login": owner, "repositories": {"nodes": nodes, "pageInfo": {"hasNextPage": more, "endCursor": cursor}}}}});
        }
        let mut data = serde_json::Map::new();
        let mut errors = Vec::new();
        for i in 0.. {
            let (Some(o), Some(n)) = (vars.get(format!("o{i}")), vars.get(format!("n{i}"))) else {
                break;
            };
            let (o, n) = (o.as_str().unwrap(), n.as_str().unwrap());
            let idx = n.strip_prefix('r').and_then(|d| d.parse::<usize>().ok());
            match (self.owners.get(o), idx) {
                (Some(&count), Some(idx)) if idx < count => {
                    data.insert(format!("r{i}"), Self::node(o, idx))
                }
                _ => {
                    errors.push(json!({"type": "NOT_FOUND", "path": [format!("r{i}")]}));
                    data.insert(format!("r{i}"), Value::Null)
                }
            };
        }
        json!({"data": data, "errors": errors})
    }
}

impl Transport for FakeGitHub {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        let body: Value = serde_json::from_str(&call.body).unwrap();
        self.calls.borrow_mut().push(body.clone());
        if let Some((clock, latency)) = &self.clock {
            if *latency >= timeout_ms {
                clock.set(clock.get() + timeout_ms);
                return Err(format!("no reply within {timeout_ms} ms"));
            }
            clock.set(clock.get() + latency);
        }
        if let Some(fault) = self.fault.borrow().clone() {
            return fault;
        }
        Ok(HttpReply {
            status: 200,
            headers: vec![],
            body: self.answer(&body).to_string().into_bytes(),
        })
    }
}

struct World {
    store: MemStore,
    gh: FakeGitHub,
    clock: ManualClock,
    vars: Vec<(&'static str, String)>,
}

impl World {
    fn new(owners: &[(&str, usize)]) -> World {
        World {
            store: MemStore::default(),
            gh: FakeGitHub::new(owners),
            clock: ManualClock(Rc::new(Cell::new(T0))),
            vars: vec![],
        }
    }

    fn get(&self, path_and_query: &str) -> Response {
        self.request("GET", path_and_query, &[])
    }

    fn request(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Response {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let req = Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
        };
        let lookup = |name: &str| {
            self.vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let ctx = Ctx {
            config: Config::from_lookup(lookup),
            set: VARIABLES
                .iter()
                .map(|n| (*n, lookup(n).is_some()))
                .collect(),
            store: &self.store,
            transport: &self.gh,
            clock: &self.clock,
        };
        block_on(handle(&req, &ctx))
    }

    fn calls(&self) -> usize {
        self.gh.calls.borrow().len()
    }

    fn advance(&self, secs: u64) {
        self.clock.0.set(self.clock.0.get() + secs * 1000);
    }
}

fn json_body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

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

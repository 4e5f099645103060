//! GitHub App mode through the service: installations looked up once and remembered, tokens
//! issued once and reused until 5 minutes before they expire, one batch call per installation
//! with its own token, `GITHUB_TOKEN` as the fallback. The signature itself is RS256 made by
//! WebCrypto in the worker; here a recording signer stands in and the end-to-end tests
//! (`tests/e2e/app.test.mjs`) have the emulator verify real signatures.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use base64ct::{Base64UrlUnpadded, Encoding};
use common::{FakeGitHub, ManualClock, MemStore, T0};
use forgelens::config::Config;
use forgelens::forge::github::app::AppKey;
use forgelens::forge::github::GitHub;
use forgelens::forge::{find_header, HttpCall, HttpReply};
use forgelens::names::FullName;
use forgelens::service::{AppSigner, Item, Service, Transport};
use forgelens::time::format_rfc3339;
use futures::executor::block_on;
use futures::future::LocalBoxFuture;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// A real 512-bit RSA key, for tests only (the one the unit tests of `forge::github::app` use).
const PEM: &str = include_str!("data/app/test-key-pkcs1.pem");

/// Records what it was asked to sign and answers a fixed signature.
#[derive(Default)]
struct RecordingSigner {
    inputs: RefCell<Vec<String>>,
}

impl AppSigner for RecordingSigner {
    fn sign<'a>(
        &'a self,
        _key: &'a AppKey,
        input: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<Vec<u8>, String>> {
        self.inputs
            .borrow_mut()
            .push(String::from_utf8(input.to_vec()).unwrap());
        Box::pin(async { Ok(b"signature".to_vec()) })
    }
}

/// GitHub's App REST endpoints in front of the small GraphQL GitHub of `common`.
struct AppGitHub {
    graphql: FakeGitHub,
    clock: Rc<Cell<u64>>,
    installations: HashMap<&'static str, u64>,
    /// `METHOD url` of every REST call.
    rest: RefCell<Vec<String>>,
    issued: Cell<u64>,
    /// The status every token mint answers, when set (the App uninstalled or suspended).
    refuse_mint: Cell<Option<u16>>,
    /// Every REST call answers 403 with `x-ratelimit-remaining: 0` and this reset (s).
    rest_limited: RefCell<Option<u64>>,
    /// (authorization header, variables) of every GraphQL call.
    graphql_auth: RefCell<Vec<(Option<String>, Value)>>,
}

impl Transport for AppGitHub {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        let auth = find_header(&call.headers, "authorization").map(String::from);
        let Some(path) = call.url.strip_prefix("https://api.example/") else {
            let body: Value = serde_json::from_str(&call.body).unwrap();
            self.graphql_auth
                .borrow_mut()
                .push((auth, body["variables"].clone()));
            return self.graphql.send(call, timeout_ms).await;
        };
        assert!(auth.unwrap().starts_with("Bearer eyJ"), "App JWT expected");
        self.rest
            .borrow_mut()
            .push(format!("{} {path}", call.method));
        let reply = |status: u16, body: Value| {
            Ok(HttpReply {
                status,
                headers: vec![],
                body: body.to_string().into_bytes(),
            })
        };
        if let Some(reset) = *self.rest_limited.borrow() {
            return Ok(HttpReply {
                status: 403,
                headers: vec![
                    ("x-ratelimit-remaining".into(), "0".into()),
                    ("x-ratelimit-reset".into(), reset.to_string()),
                ],
                body: br#"{"message":"API rate limit exceeded"}"#.to_vec(),
            });
        }
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["orgs" | "users", owner, "installation"] => {
                match self.installations.get(owner.to_ascii_lowercase().as_str()) {
                    Some(id) if parts[0] == "orgs" => reply(200, json!({"id": id})),
                    _ => reply(404, json!({"message": "Not Found"})),
                }
            }
            ["app", "installations", _, "access_tokens"] if self.refuse_mint.get().is_some() => {
                reply(
                    self.refuse_mint.get().unwrap(),
                    json!({"message": "Not Found"}),
                )
            }
            ["app", "installations", id, "access_tokens"] => {
                self.issued.set(self.issued.get() + 1);
                let expires = format_rfc3339(self.clock.get() + 3_600_000);
                let token = format!("ghs_{id}_{}", self.issued.get());
                reply(201, json!({"token": token, "expires_at": expires}))
            }
            _ => reply(404, json!({})),
        }
    }
}

struct World {
    store: MemStore,
    gh: AppGitHub,
    clock: ManualClock,
    signer: RecordingSigner,
    cfg: Config,
}

fn world(token: Option<&str>) -> World {
    let time = Rc::new(Cell::new(T0));
    let cfg = Config::from_lookup(|name| match name {
        "GITHUB_APP_ID" => Some("12345".into()),
        "GITHUB_APP_PRIVATE_KEY" => Some(PEM.into()),
        "GITHUB_API_URL" => Some("https://api.example".into()),
        "GITHUB_TOKEN" => token.map(String::from),
        _ => None,
    })
    .unwrap();
    World {
        store: MemStore::default(),
        gh: AppGitHub {
            graphql: FakeGitHub::new(&[("octo", 10), ("acme", 10), ("solo", 10)]),
            clock: time.clone(),
            installations: HashMap::from([("octo", 1001), ("acme", 1002)]),
            rest: RefCell::default(),
            issued: Cell::new(0),
            refuse_mint: Cell::new(None),
            rest_limited: RefCell::new(None),
            graphql_auth: RefCell::default(),
        },
        clock: ManualClock(time),
        signer: RecordingSigner::default(),
        cfg,
    }
}

impl World {
    fn repos(&self, names: &[&str]) -> Vec<Item> {
        let forge = GitHub::from_config(&self.cfg);
        let svc = Service::new(&self.cfg, &self.store, &self.gh, &self.clock, &forge)
            .with_signer(&self.signer);
        let names: Vec<FullName> = names.iter().map(|n| FullName::parse(n).unwrap()).collect();
        let served = block_on(svc.repos(&names)).unwrap();
        served.items.into_iter().map(|b| b.item).collect()
    }

    fn kv(&self, key: &str) -> Option<(String, Option<u64>)> {
        self.store.data.borrow().get(key).cloned()
    }
}

#[test]
fn one_batch_call_per_installation_each_with_its_own_token() {
    let w = world(None);
    let items = w.repos(&["octo/r000", "acme/r001", "octo/r002", "solo/r000"]);
    assert!(matches!(items[0], Item::Found(_)));
    assert!(matches!(items[1], Item::Found(_)));
    assert!(matches!(items[2], Item::Found(_)));
    // The App is not installed on `solo` and there is no GITHUB_TOKEN.
    assert_eq!(items[3], Item::NotFound);
    let calls = w.gh.graphql_auth.borrow().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0.as_deref(), Some("bearer ghs_1001_1"));
    assert_eq!(
        calls[0].1,
        json!({"o0": "octo", "n0": "r000", "o1": "octo", "n1": "r002"})
    );
    assert_eq!(calls[1].0.as_deref(), Some("bearer ghs_1002_2"));
    assert_eq!(calls[1].1, json!({"o0": "acme", "n0": "r001"}));
    assert_eq!(
        *w.gh.rest.borrow(),
        [
            "GET orgs/octo/installation",
            "POST app/installations/1001/access_tokens",
            "GET orgs/acme/installation",
            "POST app/installations/1002/access_tokens",
            "GET orgs/solo/installation",
            "GET users/solo/installation",
        ]
    );
    // Remembered in KV: installations for an hour, "none" for 60 s, tokens until 5 min before
    // they expire; the not-installed owner's names are not written as repositories.
    assert_eq!(
        w.kv("v1:installation:octo"),
        Some(("1001".into(), Some(3600)))
    );
    assert_eq!(
        w.kv("v1:installation:solo"),
        Some(("none".into(), Some(60)))
    );
    let (token, ttl) = w.kv("v1:token:1001").unwrap();
    assert!(token.ends_with(" ghs_1001_1"));
    assert_eq!(ttl, Some(3300));
    assert!(w.kv("v1:repo:solo/r000").is_none());
}

#[test]
fn the_app_jwt_claims() {
    let w = world(None);
    w.repos(&["octo/r000"]);
    let inputs = w.signer.inputs.borrow().clone();
    // One JWT for both REST calls (the lookup and the token): it is reused.
    assert_eq!(inputs.len(), 1);
    let (header, claims) = inputs[0].split_once('.').unwrap();
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(p).unwrap()).unwrap()
    };
    assert_eq!(decode(header), json!({"alg": "RS256", "typ": "JWT"}));
    let now = T0 / 1000;
    assert_eq!(
        decode(claims),
        json!({"iat": now - 60, "exp": now + 540, "iss": 12345})
    );
}

#[test]
fn installations_and_tokens_are_reused_until_the_margin() {
    let w = world(None);
    w.repos(&["octo/r000"]);
    let rest = w.gh.rest.borrow().len();
    w.clock.0.set(T0 + 10_000);
    w.repos(&["octo/r001"]);
    assert_eq!(w.gh.rest.borrow().len(), rest, "no REST call while cached");
    // 55 minutes on: the token is within 5 minutes of its expiry and is replaced; the
    // installation is still remembered.
    w.clock.0.set(T0 + 3_300_000);
    w.repos(&["octo/r003"]);
    let rest = w.gh.rest.borrow().clone();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("POST app/installations/1001/access_tokens")
    );
    assert_eq!(rest.len(), 3);
    let last = w.gh.graphql_auth.borrow().last().unwrap().0.clone();
    assert_eq!(last.as_deref(), Some("bearer ghs_1001_2"));
}

#[test]
fn github_token_is_the_fallback_for_owners_without_an_installation() {
    let w = world(Some("ghp_fallback"));
    let items = w.repos(&["solo/r000", "octo/r000"]);
    assert!(items.iter().all(|i| matches!(i, Item::Found(_))));
    let auths: Vec<Option<String>> =
        w.gh.graphql_auth
            .borrow()
            .iter()
            .map(|(a, _)| a.clone())
            .collect();
    assert_eq!(
        auths,
        [
            Some("bearer ghp_fallback".to_string()),
            Some("bearer ghs_1001_1".to_string())
        ]
    );
}

#[test]
fn a_refused_installation_token_is_forgotten() {
    let w = world(None);
    w.repos(&["octo/r000"]);
    assert!(w.kv("v1:token:1001").is_some());
    *w.gh.graphql.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 401,
        headers: vec![],
        body: br#"{"message":"Bad credentials"}"#.to_vec(),
    }));
    let items = w.repos(&["octo/r005"]);
    assert!(matches!(items[0], Item::Failed(_)));
    assert!(w.kv("v1:token:1001").is_none());
    // The App is taken to be gone from the owner for a minute: no installation, no token.
    assert_eq!(
        w.kv("v1:installation:octo"),
        Some(("none".into(), Some(60)))
    );
    *w.gh.graphql.fault.borrow_mut() = None;
    let calls = w.gh.graphql_auth.borrow().len();
    assert_eq!(w.repos(&["octo/r006"])[0], Item::NotFound);
    assert_eq!(
        w.gh.graphql_auth.borrow().len(),
        calls,
        "nothing to read it with"
    );
    // A minute on (KV's entry expired), it is looked up and minted again.
    w.store.data.borrow_mut().remove("v1:installation:octo");
    w.clock.0.set(T0 + 61_000);
    assert!(matches!(w.repos(&["octo/r006"])[0], Item::Found(_)));
    let last = w.gh.graphql_auth.borrow().last().unwrap().0.clone();
    assert_eq!(last.as_deref(), Some("bearer ghs_1001_2"));
}

/// Uninstalled or suspended: GraphQL refuses the token (401) and the mint answers 404. The
/// owner is read with `GITHUB_TOKEN` from then on, within the same minute.
#[test]
fn an_uninstalled_app_falls_back_to_github_token() {
    let mut w = world(Some("ghp_fallback"));
    w.repos(&["octo/r000"]);
    *w.gh.graphql.fault.borrow_mut() = Some(Ok(HttpReply {
        status: 401,
        headers: vec![],
        body: br#"{"message":"Bad credentials"}"#.to_vec(),
    }));
    assert!(matches!(w.repos(&["octo/r001"])[0], Item::Failed(_)));
    *w.gh.graphql.fault.borrow_mut() = None;
    assert!(matches!(w.repos(&["octo/r002"])[0], Item::Found(_)));
    let last = w.gh.graphql_auth.borrow().last().unwrap().0.clone();
    assert_eq!(last.as_deref(), Some("bearer ghp_fallback"));
    // The mint refuses (the installation id is still remembered elsewhere): same fallback.
    w.gh.installations.insert("acme", 1002);
    w.gh.refuse_mint.set(Some(404));
    assert!(matches!(w.repos(&["acme/r000"])[0], Item::Found(_)));
    let last = w.gh.graphql_auth.borrow().last().unwrap().0.clone();
    assert_eq!(last.as_deref(), Some("bearer ghp_fallback"));
    assert_eq!(
        w.kv("v1:installation:acme"),
        Some(("none".into(), Some(60)))
    );
}

/// 100 names of 100 unknown owners: at most 10 installation lookups (and one JWT signature);
/// the other owners' names are `rate_limited`, to be asked again a second later.
#[test]
fn a_request_looks_up_at_most_ten_unknown_installations() {
    let mut w = world(None);
    let owners: Vec<String> = (0..100).map(|i| format!("org{i:03}")).collect();
    for (i, o) in owners.iter().enumerate() {
        let name: &'static str = Box::leak(o.clone().into_boxed_str());
        w.gh.installations.insert(name, 5000 + i as u64);
        w.gh.graphql.owners.insert(o.clone(), 1);
    }
    let names: Vec<String> = owners.iter().map(|o| format!("{o}/r000")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let items = w.repos(&names);
    let found = items.iter().filter(|i| matches!(i, Item::Found(_))).count();
    let limited = items
        .iter()
        .filter(|i| {
            matches!(
                i,
                Item::Failed(forgelens::error::ApiError::RateLimited { retry_after: 1 })
            )
        })
        .count();
    assert_eq!((found, limited), (10, 90));
    let lookups =
        w.gh.rest
            .borrow()
            .iter()
            .filter(|c| c.ends_with("/installation"))
            .count();
    assert_eq!(lookups, 10);
    assert_eq!(
        w.signer.inputs.borrow().len(),
        1,
        "one App JWT for the request"
    );
    // Nothing of the cap is remembered: the next request looks up the next ten.
    let items = w.repos(&names);
    let found = items.iter().filter(|i| matches!(i, Item::Found(_))).count();
    assert_eq!(found, 20);
}

/// The App's own REST rate limit, once GitHub reports it spent, stops further lookups and
/// mints until its reset, in every isolate (KV), like a GraphQL one.
#[test]
fn a_spent_app_rate_limit_is_remembered() {
    let w = world(None);
    let reset_s = T0 / 1000 + 600;
    *w.gh.rest_limited.borrow_mut() = Some(reset_s);
    let items = w.repos(&["octo/r000"]);
    assert!(
        matches!(
            items[0],
            Item::Failed(forgelens::error::ApiError::RateLimited { .. })
        ),
        "{items:?}"
    );
    assert_eq!(w.gh.rest.borrow().len(), 1);
    *w.gh.rest_limited.borrow_mut() = None;
    let items = w.repos(&["acme/r000"]);
    assert!(
        matches!(
            items[0],
            Item::Failed(forgelens::error::ApiError::RateLimited { retry_after: 600 })
        ),
        "{items:?}"
    );
    assert_eq!(w.gh.rest.borrow().len(), 1, "no REST call until the reset");
    w.clock.0.set(reset_s * 1000 + 1);
    assert!(matches!(w.repos(&["acme/r000"])[0], Item::Found(_)));
}

#[test]
fn a_client_over_its_budget_causes_no_installation_lookup() {
    let w = world(None);
    let forge = GitHub::from_config(&w.cfg);
    let budget = common::Budget::new(0);
    let svc = Service::new(&w.cfg, &w.store, &w.gh, &w.clock, &forge)
        .with_signer(&w.signer)
        .with_limiter(&budget);
    let names = [FullName::parse("someone/anything").unwrap()];
    let served = block_on(svc.repos(&names)).unwrap();
    assert!(matches!(served.items[0].item, Item::Failed(_)));
    assert!(w.gh.rest.borrow().is_empty());
    assert!(w.signer.inputs.borrow().is_empty());
}

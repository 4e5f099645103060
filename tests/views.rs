//! Views of large owners through `http::handle`: listing parameters refused before any I/O,
//! `total`/`page`/`per_page` and `Link`, the summary (200, 304, 202 while building), one memory
//! entry per view however it is spelled, and that no filter, count, order or page tells an
//! anonymous caller anything about a record it may not see.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use forgelens::cache::{entry, memory};
use forgelens::forge::github::GitHub;
use forgelens::model::{Ci, CiState, OwnerListing, Repo, RepoFields, Visibility};
use forgelens::names::Owner;
use forgelens::owners::directory::Drive;
use futures::executor::block_on;
use serde_json::{json, Value};
use std::rc::Rc;

const SECRET: &str = "a-read-token-secret-of-32-bytes-or-more";

/// The state a record shows when fully visible; `blank` gives private and internal records
/// another state entirely (same names and visibilities).
fn record(i: usize, blank: bool) -> (String, Visibility, RepoState) {
    let vis = match i {
        _ if i % 5 == 4 => Visibility::Private,
        _ if i % 7 == 6 => Visibility::Internal,
        _ => Visibility::Public,
    };
    let state = if blank && vis != Visibility::Public {
        RepoState {
            archived: i % 2 == 0,
            fork: true,
            language: Some("Zig"),
            ci: Some(Some(CiState::Error)),
            pushed_at: Some("2030-01-01T00:00:00Z".into()),
            description: Some("hidden words".into()),
        }
    } else {
        RepoState {
            archived: i % 4 == 3,
            fork: i % 9 == 8,
            language: [Some("Rust"), Some("Go"), None][i % 3],
            ci: [
                Some(Some(CiState::Success)),
                Some(Some(CiState::Failure)),
                None,
                Some(None),
            ][i % 4],
            pushed_at: (i % 8 != 7).then(|| format!("2024-01-{:02}T00:00:00Z", 1 + (i * 7) % 28)),
            description: (i % 2 == 0).then(|| format!("service number {i}")),
        }
    };
    (format!("r{i:02}"), vis, state)
}

struct RepoState {
    archived: bool,
    fork: bool,
    language: Option<&'static str>,
    ci: Option<Option<CiState>>,
    pushed_at: Option<String>,
    description: Option<String>,
}

/// 40 records of `acme` (8 private, 4 internal), those kept by `keep`.
fn listing(blank: bool, keep: impl Fn(Visibility) -> bool) -> OwnerListing {
    let repos = (0..40)
        .map(|i| record(i, blank))
        .filter(|(_, vis, _)| keep(*vis))
        .map(|(name, vis, s)| {
            let full = format!("acme/{name}");
            Repo::new(RepoFields {
                name: &name,
                owner: "acme",
                full_name: &full,
                url: "https://github.com/acme/x",
                description: s.description.as_deref(),
                visibility: vis,
                archived: s.archived,
                disabled: false,
                fork: s.fork,
                default_branch: s.ci.map(|_| "main"),
                pushed_at: s.pushed_at.as_deref(),
                updated_at: s.pushed_at.as_deref(),
                language: s.language,
                ci: s.ci.map(|state| Ci { state, sha: "abc" }),
            })
        })
        .collect();
    OwnerListing {
        login: "acme".into(),
        repos,
        revalidated_at_ms: Some(T0 + 5_000),
        changed: forgelens::model::Changed {
            all: Some(T0 + 5_000),
            public: Some(T0 + 5_000),
            redacted: Some(T0 + 5_000),
        },
    }
}

/// A world whose KV holds `listing` fresh, GitHub knowing nothing (any call would show).
fn seeded(listing: &OwnerListing, vars: &[(&'static str, &str)]) -> World {
    let mut w = World::new(&[]);
    w.vars = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
    w.vars.push(("READ_TOKEN_SECRET", SECRET.into()));
    let text = entry::encode(T0, Some(listing));
    w.store
        .data
        .borrow_mut()
        .insert("v1:org:acme".into(), (text, Some(86_400)));
    w
}

#[test]
fn bad_parameters_are_refused_before_any_io() {
    let mut w = World::new(&[("acme", 10)]);
    w.limiter = Some(Budget::new(100));
    let cases = [
        ("/v1/orgs/acme/repos?visibility=secret", "visibility"),
        ("/v1/orgs/acme/repos?archived=yes", "archived"),
        ("/v1/orgs/acme/repos?fork=", "fork"),
        ("/v1/orgs/acme/repos?ci=failure,,error", "ci"),
        ("/v1/orgs/acme/repos?ci=failure&ci=error", "ci"),
        ("/v1/orgs/acme/repos?language=", "language"),
        ("/v1/orgs/acme/repos?q=", "q"),
        ("/v1/orgs/acme/repos?sort=stars", "sort"),
        ("/v1/orgs/acme/repos?direction=up", "direction"),
        ("/v1/orgs/acme/repos?per_page=1001", "per_page"),
        ("/v1/orgs/acme/repos?per_page=10&page=0", "page"),
        ("/v1/orgs/acme/repos?page=0", "page"),
        ("/v1/orgs/acme/repos?page=4294967296", "page"),
        ("/v1/orgs/acme/summary?ci=failure", "ci"),
        ("/v1/orgs/acme/summary?fields=name", "fields"),
    ];
    for (path, param) in cases {
        let r = w.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let body = json_body(&r);
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(param), "{path}: {message}");
    }
    for param in ["q", "language"] {
        let long = format!("/v1/orgs/acme/repos?{param}={}", "x".repeat(101));
        assert_eq!(
            json_body(&w.get(&long))["error"]["code"],
            "invalid_parameter",
            "{param}"
        );
    }
    assert_eq!(w.calls(), 0, "nothing went upstream");
    assert_eq!(w.store.ops.get(), 0, "nothing was read from KV");
    assert_eq!(
        w.limiter.as_ref().unwrap().asked.get(),
        0,
        "no budget asked"
    );
}

#[test]
fn totals_pages_and_links() {
    let full = listing(false, |_| true);
    let w = seeded(&full, &[("ALLOWED_ORIGINS", "*")]);
    let public: Vec<String> = (0..40)
        .map(|i| record(i, false))
        .filter(|(_, v, _)| *v == Visibility::Public)
        .map(|(n, _, _)| n)
        .collect();
    assert_eq!(public.len(), 28);
    let get = |q: &str| {
        w.request(
            "GET",
            &format!("/v1/orgs/acme/repos?{q}"),
            &[("Origin", "https://x.test")],
        )
    };
    let link = |r: &forgelens::http::Response| r.header("link").map(str::to_string);
    let first = get("per_page=10&fields=name");
    assert_eq!(first.status, 200);
    let body = json_body(&first);
    assert_eq!(
        (&body["total"], &body["page"], &body["per_page"]),
        (&json!(28), &json!(1), &json!(10))
    );
    assert_eq!(names(&first), public[..10]);
    assert_eq!(
        link(&first).unwrap(),
        "</v1/orgs/acme/repos?fields=name&per_page=10&page=1>; rel=\"first\", \
         </v1/orgs/acme/repos?fields=name&per_page=10&page=2>; rel=\"next\", \
         </v1/orgs/acme/repos?fields=name&per_page=10&page=3>; rel=\"last\""
    );
    assert_eq!(
        first.header("access-control-expose-headers"),
        Some("X-Cache, ETag, Retry-After, Link")
    );
    let middle = get("page=2&per_page=10&fields=name");
    assert_eq!(names(&middle), public[10..20]);
    let middle_link = link(&middle).unwrap();
    let rels: Vec<&str> = middle_link
        .split(", ")
        .map(|l| l.rsplit("rel=").next().unwrap())
        .collect();
    assert_eq!(rels, ["\"first\"", "\"prev\"", "\"next\"", "\"last\""]);
    let last = get("page=3&per_page=10&fields=name");
    assert_eq!(names(&last), public[20..]);
    assert!(!link(&last).unwrap().contains("rel=\"next\""));
    let past = get("page=9&per_page=10&fields=name");
    assert_eq!(
        (past.status, json_body(&past)["total"].clone()),
        (200, json!(28))
    );
    assert!(names(&past).is_empty());
    assert!(
        link(&past).unwrap().contains("page=3>; rel=\"prev\""),
        "back to the last page"
    );
    let single = get("per_page=1000&ci=failure");
    let failing = json_body(&single)["total"].as_u64().unwrap();
    assert_eq!(names(&single).len() as u64, failing);
    assert_eq!(
        link(&single).unwrap().matches("page=1>").count(),
        2,
        "first and last"
    );
    // `page` alone pages by 100, exactly as `per_page=100` would: body and Link.
    for page in ["1", "2", "4294967295"] {
        let alone = get(&format!("page={page}&fields=name"));
        let explicit = get(&format!("per_page=100&page={page}&fields=name"));
        assert_eq!(alone.status, 200, "page={page}");
        let body = json_body(&alone);
        assert_eq!(
            (&body["total"], &body["page"], &body["per_page"]),
            (
                &json!(28),
                &json!(page.parse::<u64>().unwrap()),
                &json!(100)
            ),
        );
        assert_eq!(body, json_body(&explicit), "page={page}");
        assert_eq!(names(&alone).len(), if page == "1" { 28 } else { 0 });
        assert_eq!(link(&alone), link(&explicit), "page={page}");
        assert!(link(&alone)
            .unwrap()
            .contains("per_page=100&page=1>; rel=\"first\""));
    }
    // A filter without per_page: total, no page, no Link.
    let filtered = get("ci=failure&sort=pushed_at");
    let body = json_body(&filtered);
    assert_eq!(body["total"], json!(failing));
    assert!(body.get("page").is_none() && link(&filtered).is_none());
    assert_eq!(w.calls(), 0, "answered from the cached listing");
}

#[test]
fn without_parameters_the_answer_is_the_plain_listing() {
    let w = seeded(&listing(false, |_| true), &[("MEMORY_TTL_MS", "0")]);
    let plain = w.get("/v1/orgs/acme/repos");
    let other = w.get("/v1/orgs/acme/repos?names=x&unrelated=1");
    assert_eq!(plain.body, other.body);
    let body = json_body(&plain);
    assert!(body.get("total").is_none(), "no total without parameters");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["fetched_at", "org", "repos", "revalidated_at"]
    );
    assert!(plain.header("link").is_none());
    // Any parameter, even at its default, asks for `total`; the records are the same.
    let defaulted = json_body(&w.get("/v1/orgs/acme/repos?sort=name"));
    assert_eq!(defaulted["repos"], body["repos"]);
    assert_eq!(defaulted["total"], json!(28));
}

/// Every query a dashboard might send, for the property tests below.
const QUERIES: &[&str] = &[
    "sort=name",
    "visibility=public",
    "visibility=private,internal",
    "archived=true",
    "archived=false",
    "fork=true",
    "ci=failure,error",
    "ci=none",
    "language=zig",
    "language=rust",
    "q=hidden",
    "q=r0",
    "q=service",
    "sort=pushed_at",
    "sort=pushed_at&direction=asc",
    "sort=updated_at&per_page=7&page=2",
    "per_page=5&page=6",
    "per_page=5&page=99",
    "direction=desc&per_page=3",
    "fields=name,description,language,ci,pushed_at&sort=pushed_at&per_page=10",
];

/// Status, the headers a client reads, and the body of every listing query and the summary.
fn answers(w: &World, headers: &[(&str, &str)]) -> Vec<(String, u16, Vec<Option<String>>, Value)> {
    let mut paths: Vec<String> = QUERIES
        .iter()
        .map(|q| format!("/v1/orgs/acme/repos?{q}"))
        .collect();
    paths.push("/v1/orgs/acme/summary".into());
    paths
        .into_iter()
        .map(|p| {
            let r = w.request("GET", &p, headers);
            let kept = ["x-cache", "cache-control", "etag", "link", "server-timing"]
                .iter()
                .map(|h| r.header(h).map(str::to_string))
                .collect();
            (p, r.status, kept, json_body(&r))
        })
        .collect()
}

/// Hide: anonymous answers are exactly those of an owner without private or internal records.
#[test]
fn hidden_records_change_no_anonymous_answer() {
    let vars = [("MEMORY_TTL_MS", "0")];
    let with = seeded(&listing(false, |_| true), &vars);
    let without = seeded(&listing(false, |v| v == Visibility::Public), &vars);
    let (a, b) = (answers(&with, &[]), answers(&without, &[]));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{}", x.0);
    }
    // A token unlocking the owner sees more, so the comparison means something.
    let token = format!("Bearer {}", read_token(SECRET, &["acme"]));
    let member = answers(&with, &[("Authorization", &token)]);
    assert_eq!(member.last().unwrap().3["total"], json!(40));
    assert_ne!(member[2].3["total"], json!(0));
}

/// Redact: anonymous answers do not change whatever state the private and internal records have.
#[test]
fn redacted_records_show_nothing_of_their_state() {
    let vars = [
        ("MEMORY_TTL_MS", "0"),
        ("PRIVATE_REPOS_ANONYMOUS", "redact"),
    ];
    let real = seeded(&listing(false, |_| true), &vars);
    let blank = seeded(&listing(true, |_| true), &vars);
    let (a, b) = (answers(&real, &[]), answers(&blank, &[]));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{}", x.0);
    }
    // They are listed (redacted) and counted by visibility, nothing more.
    let summary = &a.last().unwrap().3;
    assert_eq!(summary["total"], json!(40));
    assert_eq!(
        summary["visibility"],
        json!({"public": 28, "private": 8, "internal": 4})
    );
    assert!(!summary["languages"]
        .as_object()
        .unwrap()
        .contains_key("Zig"));
    let private = real.get("/v1/orgs/acme/repos?visibility=private&fields=name,ci,archived");
    assert_eq!(
        json_body(&private)["repos"][0],
        json!({"name": "r04", "full_name": "acme/r04"})
    );
    assert_eq!(json_body(&private)["total"], json!(8));
    // The state is really there for a token: the blank world answers differently.
    let token = format!("Bearer {}", read_token(SECRET, &["acme"]));
    let auth = [("Authorization", token.as_str())];
    assert_ne!(
        answers(&real, &auth).last().unwrap().3,
        answers(&blank, &auth).last().unwrap().3
    );
}

#[test]
fn summary_counts_and_validators() {
    let w = seeded(&listing(false, |_| true), &[]);
    let r = w.get("/v1/orgs/acme/summary");
    assert_eq!((r.status, r.header("x-cache")), (200, Some("HIT")));
    assert_eq!(r.header("vary"), Some("Authorization, Origin"));
    assert!(r
        .header("cache-control")
        .unwrap()
        .starts_with("public, max-age="));
    let body = json_body(&r);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10, "{body}");
    assert_eq!(body["org"], "acme");
    assert_eq!(
        (&body["total"], &body["visibility"]),
        (
            &json!(28),
            &json!({"public": 28, "private": 0, "internal": 0})
        )
    );
    assert_eq!(body["revalidated_at"], "2023-11-14T22:13:25.000Z");
    assert_eq!(body["fetched_at"], "2023-11-14T22:13:20.000Z");
    let ci = &body["ci"];
    let sum: u64 = ci
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sum, 28, "every counted record has one CI state: {ci}");
    let langs = &body["languages"];
    assert_eq!(langs["other"], json!(0));
    let etag = r.header("etag").unwrap().to_string();
    let again = w.request("GET", "/v1/orgs/acme/summary", &[("If-None-Match", &etag)]);
    assert_eq!((again.status, again.body.len()), (304, 0));
    let head = w.request("HEAD", "/v1/orgs/acme/summary", &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    let post = w.request("POST", "/v1/orgs/acme/summary", &[]);
    assert_eq!(
        (post.status, post.header("allow")),
        (405, Some("GET, HEAD, OPTIONS"))
    );
    let token = format!("Bearer {}", read_token(SECRET, &["acme"]));
    let member = w.request("GET", "/v1/orgs/acme/summary", &[("Authorization", &token)]);
    assert_eq!(
        json_body(&member)["visibility"],
        json!({"public": 28, "private": 8, "internal": 4})
    );
    assert_eq!(member.header("cache-control"), Some("private, no-store"));
    assert_eq!(w.get("/v1/orgs/-bad/summary").status, 400);
    assert_eq!(w.get("/v1/orgs/acme/summary/").status, 404);
    assert_eq!(w.calls(), 0);
}

#[test]
fn summary_waits_for_a_build_like_the_listing() {
    let mut w = World::new(&[("acme", 1_000)]);
    w.vars = vec![("UPSTREAM_TIMEOUT_MS", "1000".into())];
    w.gh.clock = Some((Rc::clone(&w.clock.0), 300));
    let building = w.get("/v1/orgs/acme/summary");
    assert_eq!(
        (building.status, building.header("x-cache")),
        (202, Some("MISS"))
    );
    assert_eq!(json_body(&building)["status"], "building");
    assert!(building.header("retry-after").is_some());
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let owner = Owner::parse("acme").unwrap();
    assert_eq!(block_on(w.owners(&cfg, &forge).alarm(&owner)), Drive::Done);
    let done = w.get("/v1/orgs/acme/summary");
    assert_eq!(done.status, 200);
    let body = json_body(&done);
    assert_eq!(
        (&body["total"], &body["ci"]["success"]),
        (&json!(800), &json!(800))
    );
    assert_eq!(body["revalidated_at"], Value::Null);
    assert_eq!(body["last_pushed_at"], "2026-01-01T00:00:00Z");
}

/// Slots in this thread's memory tier (one isolate per test thread).
fn slots() -> usize {
    memory::with(|t| t.len())
}

#[test]
fn two_spellings_of_one_view_share_a_memory_entry() {
    memory::with(|t| *t = memory::Tier::new(memory::MAX_BYTES));
    let w = seeded(&listing(false, |_| true), &[]);
    let first = w.get("/v1/orgs/acme/repos?ci=failure,error&per_page=3&fields=ci,name");
    let kept = slots();
    assert_eq!(kept, 2, "the decoded listing and the view");
    let spelled = w.get(
        "/v1/orgs/acme/repos?fields=name,ci,name&direction=asc&ci=error,failure&per_page=03&page=1&sort=name",
    );
    assert_eq!(slots(), kept, "the same entry");
    assert_eq!(spelled.header("server-timing"), Some("mem;dur=0"));
    assert_eq!(spelled.body, first.body);
    assert_eq!(spelled.header("etag"), first.header("etag"));
    assert_eq!(
        spelled.header("link"),
        first.header("link"),
        "rebuilt from the kept total"
    );
    // The owner's spelling is the caller's in the links, from the same entry.
    let upper = w.get("/v1/orgs/ACME/repos?ci=failure,error&per_page=3&fields=name,ci");
    assert_eq!(slots(), kept);
    assert!(upper
        .header("link")
        .unwrap()
        .starts_with("</v1/orgs/ACME/repos?fields=name,ci&ci=failure,error&per_page=3&page=1>"));
    // Another view, another scope, the plain listing, the summary: each is its own entry.
    let token = format!("Bearer {}", read_token(SECRET, &["acme"]));
    let others: [(&str, &[(&str, &str)]); 6] = [
        (
            "/v1/orgs/acme/repos?ci=failure&per_page=3&fields=ci,name",
            &[],
        ),
        (
            "/v1/orgs/acme/repos?ci=failure,error&per_page=3&page=2&fields=ci,name",
            &[],
        ),
        (
            "/v1/orgs/acme/repos?ci=failure,error&per_page=3&fields=ci,name&direction=desc",
            &[],
        ),
        ("/v1/orgs/acme/repos?fields=ci,name", &[]),
        (
            "/v1/orgs/acme/repos?ci=failure,error&per_page=3&fields=ci,name",
            &[("Authorization", &token)],
        ),
        ("/v1/orgs/acme/summary", &[]),
    ];
    for (i, (path, headers)) in others.into_iter().enumerate() {
        assert_eq!(w.request("GET", path, headers).status, 200);
        assert_eq!(slots(), kept + i + 1, "{path} is a view of its own");
        w.request("GET", path, headers);
        assert_eq!(slots(), kept + i + 1, "{path} again is the same view");
    }
}

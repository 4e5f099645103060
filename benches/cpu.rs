//! CPU per request, natively, as a proxy for the Workers Free plan's 10 ms budget: parsing GitHub
//! pages, projecting and serializing a listing (the MISS path), and decoding a cached envelope,
//! projecting and serializing it (a KV HIT), and finding the rendered view in the isolate's memory
//! tier and copying its body into the response (a memory HIT). For owners of any size, the owner directory's
//! work per page (parse one 100-record page, serialize it for the checkpoint) and at the end
//! (read back 100 checkpointed pages, sort, encode the 10,000-record KV envelope), and a HIT on
//! that envelope; views of that owner (filter + sort + one page, and the summary); `q=` over 20,000
//! records, realistic and pathological; and the hot paths' JSON against serde's derives on the same
//! fixtures (`json_vs_serde`). Prints one JSON object; `npm run bench` reads it.
//!
//! `cargo bench --bench cpu -- json` runs only the JSON comparison and prints its table in
//! markdown before the JSON line (`node bench/run.mjs --json-only` puts it in BENCHMARKS.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use forgelens::cache::entry;
use forgelens::cache::memory::{self, Tier};
use forgelens::config::PrivatePolicy;
use forgelens::fields::FieldSet;
use forgelens::forge::github::parse;
use forgelens::forge::HttpReply;
use forgelens::http::query;
use forgelens::json::Codec;
use forgelens::listing;
use forgelens::model::{Ci, CiState, OwnerListing, Repo, RepoFields, Visibility};
use forgelens::service::sort_by_name;
use forgelens::view::{project, Access, OrgBody};
use serde_json::{json, Value};
use std::hint::black_box;
use std::time::Instant;

mod json_vs_serde;

/// Rounds of the interleaved JSON comparison (each a batch of ~15 ms per side).
const JSON_ROUNDS: usize = 15;

fn node(i: usize) -> Value {
    json!({"name": format!("repo-{i:04}"), "owner": {"login": "bench-org"}, "nameWithOwner": format!("bench-org/repo-{i:04}"),
        "url": format!("https://github.com/bench-org/repo-{i:04}"), "description": format!("Benchmark repository number {i}"),
        "visibility": if i % 7 == 3 { "PRIVATE" } else { "PUBLIC" }, "isPrivate": i % 7 == 3, "isArchived": i % 10 == 7,
        "isDisabled": false, "isFork": i % 6 == 1, "pushedAt": "2026-10-01T12:00:00Z", "updatedAt": "2026-11-01T08:30:00Z",
        "primaryLanguage": {"name": "Rust"},
        "defaultBranchRef": {"name": "main", "target": {"oid": "9e3779b19e3779b19e3779b19e3779b19e3779b1", "statusCheckRollup": {"state": "SUCCESS"}}}})
}

fn pages(n: usize) -> Vec<HttpReply> {
    (0..n.div_ceil(100))
        .map(|p| {
            let nodes: Vec<Value> = (p * 100..((p + 1) * 100).min(n)).map(node).collect();
            let more = (p + 1) * 100 < n;
            let body = json!({"data": {"rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2026-11-23T22:00:00Z"},
                "repositoryOwner": {"login": "bench-org", "repositories": {"nodes": nodes,
                "pageInfo": {"hasNextPage": more, "endCursor": if more { Some(format!("c{p}")) } else { None }}}}}});
            HttpReply { status: 200, headers: vec![], body: body.to_string().into_bytes() }
        })
        .collect()
}

fn view(listing: &OwnerListing, fields: FieldSet) -> String {
    let body = OrgBody {
        org: &listing.login,
        repos: listing
            .repos
            .iter()
            .filter_map(|r| project(r, fields, &Access::Anonymous, PrivatePolicy::Hide))
            .collect(),
        fetched_at: "2026-11-23T22:00:00.000Z".into(),
        revalidated_at: None,
        counts: None,
    };
    body.to_json()
}

/// Median, 95th percentile and minimum in microseconds over `runs` timed runs (after a warm-up).
/// The minimum is reported too: on a shared machine the median moves between invocations.
fn measure(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..runs.min(20) {
        f();
    }
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[samples.len() * 95 / 100],
        samples[0],
    )
}

fn main() {
    // `cargo bench` passes `--bench`; any other word is a filter.
    let json_only = std::env::args().skip(1).any(|a| a == "json");
    if std::env::args().skip(1).any(|a| a == "events") {
        println!("{}", json!({"events_change": events_change()}));
        return;
    }
    if json_only {
        let rows = json_vs_serde::compare(pages, JSON_ROUNDS);
        print!("{}", json_vs_serde::to_markdown(&rows));
        println!(
            "{}",
            json!({"json_vs_serde": json_vs_serde::to_json(&rows)})
        );
        return;
    }
    let fields = FieldSet::default_set();
    let mut results = Vec::new();
    for n in [100usize, 1000, 10_000] {
        let replies = pages(n);
        // Fewer runs as the listing grows: 10,000 repositories cost ~10–30 ms per MISS.
        let runs = match n {
            100 => 2000,
            1000 => 300,
            _ => 30,
        };
        let (miss_p50, miss_p95, miss_min) = measure(runs, || {
            let mut repos = Vec::new();
            for reply in &replies {
                repos.extend(parse::owner_page(black_box(reply)).unwrap().repos);
            }
            let listing = OwnerListing {
                login: "bench-org".into(),
                revalidated_at_ms: None,
                changed: Default::default(),
                repos,
            };
            black_box(view(&listing, fields));
        });
        let mut repos = Vec::new();
        for reply in &replies {
            repos.extend(parse::owner_page(reply).unwrap().repos);
        }
        let listing = OwnerListing {
            login: "bench-org".into(),
            revalidated_at_ms: None,
            changed: Default::default(),
            repos,
        };
        let stored = entry::encode(0, Some(&listing));
        let (hit_p50, hit_p95, hit_min) = measure(runs, || {
            let e: entry::Entry<OwnerListing> = entry::decode(black_box(&stored)).unwrap();
            black_box(view(e.data.as_ref().unwrap(), fields));
        });
        // A memory HIT as `http::rendered::recall` does it: the view's key (entry, field set,
        // scope), the tier's lookup, and the kept body copied into the response's bytes.
        let body = view(&listing, fields);
        let view_bytes = body.len();
        let entry_key = "v1:org:bench-org";
        let mut tier = Tier::new(memory::MAX_BYTES);
        tier.put(
            &memory::rendered_key(entry_key, u32::from(fields.bits()), "public"),
            memory::Value::Rendered {
                body: body.into(),
                etag: "\"0123456789abcdef\"".into(),
                total: None,
            },
            0,
            u64::MAX,
            view_bytes + 64,
        );
        let (mem_p50, mem_p95, mem_min) = measure(runs.max(300), || {
            let key =
                memory::rendered_key(black_box(entry_key), u32::from(fields.bits()), "public");
            let Some((memory::Value::Rendered { body, .. }, _)) = tier.get(&key, black_box(1))
            else {
                panic!("the view was kept");
            };
            black_box(body.to_string().into_bytes());
        });
        results.push(json!({"repos": n, "miss_parse_project_serialize_us": {"p50": miss_p50, "p95": miss_p95, "min": miss_min},
            "hit_decode_project_serialize_us": {"p50": hit_p50, "p95": hit_p95, "min": hit_min},
            "hit_memory_lookup_copy_us": {"p50": mem_p50, "p95": mem_p95, "min": mem_min},
            "stored_bytes": stored.len(), "view_bytes": view_bytes, "runs": runs}));
    }
    let json_rows = json_vs_serde::compare(pages, JSON_ROUNDS);
    println!(
        "{}",
        json!({"cpu": results, "owner_build": owner_build(fields), "q_search": q_search(),
            "events_change": events_change(),
            "json_vs_serde": json_vs_serde::to_json(&json_rows)})
    );
}

/// Live events: the object's CPU for one record's change that reaches every scope (a public
/// record archived, then unarchived): numbered per scope, kept for `since=`, and rendered once per
/// scope with the default fields, as `owners::feed` does before sending it to each socket.
fn events_change() -> Value {
    use forgelens::model::Scope;
    use forgelens::owners::events::{self, Feeds};
    let replies = pages(100);
    let page = parse::owner_page(&replies[0]).unwrap();
    let public = page.repos.iter().find(|r| r.is_public()).unwrap().clone();
    let mut archived = public.clone();
    archived.archived = true;
    let fields = FieldSet::default_set();
    let mut feeds = Feeds::default();
    let mut now = 1_700_000_000_000u64;
    let mut flip = false;
    let (p50, p95, min) = measure(20_000, || {
        flip = !flip;
        now += 1;
        let (old, new) = if flip {
            (&public, &archived)
        } else {
            (&archived, &public)
        };
        for (scope, seq) in feeds.change(Some(old), Some(new), now) {
            let m = feeds.message(scope, seq).unwrap();
            black_box(events::render(m, scope, fields));
        }
    });
    let scopes = [Scope::All, Scope::Public, Scope::Redacted].len() as f64;
    json!({"per_change_us": {"p50": p50, "p95": p95, "min": min}, "per_scope_us_p50": p50 / scopes,
        "kept_messages": feeds.seq(Scope::All).min(events::MAX_MESSAGES as u64)})
}

/// What the owner directory spends CPU on while building a 10,000-repository listing, as
/// `owners::directory::drive` and `finish` do it: per page, parse + serialize the page for the
/// checkpoint; once, decode every checkpointed page, sort and encode the envelope. Plus a HIT on
/// the resulting entry (decode + project + serialize the default view).
fn owner_build(fields: FieldSet) -> Value {
    const N: usize = 10_000;
    let replies = pages(N);
    let stats = |(p50, p95, min): (f64, f64, f64)| json!({"p50": p50, "p95": p95, "min": min});
    let page = &replies[replies.len() / 2];
    let per_page = measure(2000, || {
        let parsed = parse::owner_page(black_box(page)).unwrap();
        black_box(parsed.repos.to_json());
    });
    let stored: Vec<String> = replies
        .iter()
        .map(|r| parse::owner_page(r).unwrap().repos.to_json())
        .collect();
    let assemble = |texts: &[String]| {
        let mut repos: Vec<Repo> = Vec::with_capacity(N);
        for t in texts {
            repos.extend(Vec::<Repo>::from_json(t).unwrap());
        }
        sort_by_name(&mut repos);
        let listing = OwnerListing {
            login: "bench-org".into(),
            revalidated_at_ms: None,
            changed: Default::default(),
            repos,
        };
        entry::encode(0, Some(&listing))
    };
    let finish = measure(30, || {
        black_box(assemble(black_box(&stored)));
    });
    let envelope = assemble(&stored);
    let hit = measure(30, || {
        let e: entry::Entry<OwnerListing> = entry::decode(black_box(&envelope)).unwrap();
        black_box(view(e.data.as_ref().unwrap(), fields));
    });
    // Views of a large owner (issue 19's goal: filter + sort + page over 10,000 records ≤ 1 ms),
    // and the summary, each from the decoded listing as a memory-tier miss renders them.
    let decoded: entry::Entry<OwnerListing> = entry::decode(&envelope).unwrap();
    let big = decoded.data.as_ref().unwrap();
    let query = query::parse("ci=success,failure&q=REPO-0&sort=pushed_at&per_page=100&page=3");
    let params = listing::params::parse(&query).unwrap().unwrap();
    let select_page = measure(300, || {
        let chosen = listing::select(
            black_box(&big.repos),
            &params,
            &Access::Anonymous,
            PrivatePolicy::Redact,
        );
        black_box(chosen.total);
    });
    let view_page = measure(300, || {
        let chosen = listing::select(
            black_box(&big.repos),
            &params,
            &Access::Anonymous,
            PrivatePolicy::Redact,
        );
        let body = OrgBody {
            org: &big.login,
            repos: chosen
                .repos
                .into_iter()
                .filter_map(|r| project(r, fields, &Access::Anonymous, PrivatePolicy::Redact))
                .collect(),
            fetched_at: "2026-11-23T22:00:00.000Z".into(),
            revalidated_at: None,
            counts: None,
        };
        black_box(body.to_json());
    });
    let summary = measure(300, || {
        let counts = listing::summarize(
            black_box(&big.repos),
            &Access::Anonymous,
            PrivatePolicy::Redact,
        );
        black_box(counts.to_json("bench-org", "2026-11-23T22:00:00.000Z", None));
    });
    json!({"repos": N, "pages": replies.len(),
        "view_filter_sort_page_us": stats(select_page), "view_page_body_us": stats(view_page),
        "summary_body_us": stats(summary),
        "page_parse_checkpoint_us": stats(per_page), "page_reply_bytes": page.body.len(),
        "checkpoint_page_bytes": stored[stored.len() / 2].len(),
        "finish_assemble_encode_us": stats(finish), "entry_bytes": envelope.len(),
        "hit_decode_project_serialize_us": stats(hit)})
}

/// `q=` over 20,000 records, a token caller (every description searched): realistic names and
/// descriptions, and a pathological owner whose descriptions are 1,000 `a`s searched for 99 `a`s
/// and a `b` (a naive windowed search compares ~100 bytes at each of 20 million positions).
fn q_search() -> Value {
    const N: usize = 20_000;
    const WHAT: [&str; 8] = [
        "Terraform modules",
        "GraphQL API gateway",
        "Kubernetes operator",
        "React dashboard",
        "command-line tool",
        "Rust library",
        "Webhook relay",
        "Data pipeline",
    ];
    const FOR: [&str; 5] = [
        "billing",
        "Search",
        "the mobile apps",
        "Payments",
        "internal tooling",
    ];
    let stats = |(p50, p95, min): (f64, f64, f64)| json!({"p50": p50, "p95": p95, "min": min});
    let names: Vec<String> = (0..N).map(|i| format!("service-{i:05}")).collect();
    let realistic: Vec<String> = (0..N)
        .map(|i| {
            format!(
                "{} for {}: builds, deploys and monitors it (owned by Team {}, since {})",
                WHAT[i % WHAT.len()],
                FOR[i % FOR.len()],
                i % 37,
                2015 + i % 10
            )
        })
        .collect();
    let long_a = "a".repeat(1000);
    let records = |desc: &dyn Fn(usize) -> String| -> Vec<Repo> {
        let mut repos: Vec<Repo> = (0..N)
            .map(|i| {
                let d = desc(i);
                Repo::new(RepoFields {
                    name: &names[i],
                    owner: "bench-org",
                    full_name: &names[i],
                    url: "https://github.com/bench-org/x",
                    description: Some(&d),
                    visibility: if i % 7 == 3 {
                        Visibility::Private
                    } else {
                        Visibility::Public
                    },
                    archived: false,
                    disabled: false,
                    fork: false,
                    default_branch: Some("main"),
                    pushed_at: Some("2026-10-01T12:00:00Z"),
                    updated_at: Some("2026-11-01T08:30:00Z"),
                    language: Some("Rust"),
                    ci: Some(Ci {
                        state: Some(CiState::Success),
                        sha: "abc",
                    }),
                })
            })
            .collect();
        sort_by_name(&mut repos);
        repos
    };
    let token = Access::Token {
        all: true,
        owners: Vec::new(),
    };
    let time = |repos: &[Repo], raw: &str, runs: usize| {
        let params = listing::params::parse(&query::parse(raw)).unwrap().unwrap();
        let total = listing::select(repos, &params, &token, PrivatePolicy::Redact).total;
        let m = measure(runs, || {
            let chosen = listing::select(black_box(repos), &params, &token, PrivatePolicy::Redact);
            black_box(chosen.total);
        });
        json!({"q": raw, "total": total, "us": stats(m)})
    };
    let real = records(&|i| realistic[i].clone());
    let bad = records(&|_| long_a.clone());
    let pathological_q = format!("q={}b&per_page=100", "a".repeat(99));
    json!({"repos": N,
        "realistic_rare": time(&real, "q=webhook%20relay%20for%20payments&per_page=100", 100),
        "realistic_common": time(&real, "q=OPERATOR&per_page=100", 100),
        "pathological": time(&bad, &pathological_q, 10)})
}

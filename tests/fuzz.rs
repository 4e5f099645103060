//! Property test of the whole router (`http::handle`) on random input: paths, `names=`, `fields=`,
//! `Authorization` headers, methods and bodies. Whatever arrives, the worker must not panic, must
//! not answer 5xx (the GitHub double is healthy), and must not send bad input upstream.
//!
//! The seed is fixed so a failure reproduces; `FORGELENS_FUZZ_SEED` and `FORGELENS_FUZZ_CASES`
//! explore further (e.g. `FORGELENS_FUZZ_SEED=7 FORGELENS_FUZZ_CASES=100000 cargo test --test fuzz`).

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use forgelens::fields::ALLOWED;
use forgelens::forge::BATCH_MAX;
use forgelens::http::Response;
use forgelens::names::{Owner, RepoName};
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};

const DEFAULT_SEED: u64 = 0xF0F0_5EED_2026;
const DEFAULT_CASES: usize = 3_000;
const READ_KEY: &str = "fuzz-read-token-secret-0123456789abcdef";
const ADMIN_TOKEN: &str = "fuzz-admin-token";
/// Owners the GitHub double knows, with how many repositories each has (every fifth private).
const OWNERS: &[(&str, usize)] = &[("acme", 40), ("Octo-Org", 7)];

use forgelens::testkit::Rng;

/// Random text for the fuzzer, beside the kit's generator.
trait Text {
    fn text(&mut self, max: usize) -> String;
}

impl Text for Rng {
    /// Random characters from ASCII, Latin-1, control, bidi, CJK and emoji ranges.
    fn text(&mut self, max: usize) -> String {
        let ranges: [(u32, u32); 6] = [
            (0x20, 0x7E),
            (0x00, 0x1F),
            (0xA0, 0xFF),
            (0x202A, 0x202E),
            (0x4E00, 0x4E20),
            (0x1F600, 0x1F64F),
        ];
        let len = self.below(max + 1);
        (0..len)
            .map(|_| {
                let (lo, hi) = ranges[self.below(ranges.len())];
                char::from_u32(lo + self.below((hi - lo + 1) as usize) as u32).unwrap_or('x')
            })
            .collect()
    }
}

/// Percent-encodes every byte, so the router sees `%xx` escapes of arbitrary (even invalid
/// UTF-8) data.
fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Flips the case of some ASCII letters: another spelling of the same GitHub name.
fn recase(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.chance(2) {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// One path segment: a known name, a near miss, an encoding trick, unicode, or something long.
fn segment(rng: &mut Rng) -> String {
    let s = match rng.below(9) {
        0 => rng
            .pick(&[
                "acme", "ACME", "Octo-Org", "ghost", "r001", "R004", "r999", "repos",
            ])
            .to_string(),
        1 => rng
            .pick(&[
                ".",
                "..",
                "...",
                "%2F",
                "%2f",
                "%00",
                "%",
                "%zz",
                "%FF%FE",
                "a%2Fb",
                "-lead",
                "under_score",
                "a b",
                "a+b",
                "%2E%2E",
                "\u{1F600}",
                "ünï",
                "\u{202E}x",
                "\0",
            ])
            .to_string(),
        2 => "a".repeat(rng.below(5_000)),
        3 => rng.text(40),
        4 => percent_encode(&rng.bytes(30)),
        5 => format!("r{:03}", rng.below(60)),
        _ => {
            let len = 1 + rng.below(45);
            (0..len)
                .map(|_| char::from(b"abcXYZ019-._"[rng.below(12)]))
                .collect()
        }
    };
    // `?` would end the path; the router gets path and query apart.
    s.replace('?', "%3F")
}

fn random_path(rng: &mut Rng) -> String {
    match rng.below(14) {
        0 => "/".into(),
        1 => "/v1/health".into(),
        2 => "/v1/openapi.json".into(),
        3 => format!("/v1/orgs/{}/repos", segment(rng)),
        4 => format!("/v1/orgs/{}/summary", segment(rng)),
        5 | 6 => format!("/v1/repos/{}/{}", segment(rng), segment(rng)),
        7..=9 => "/v1/repos".into(),
        10 => format!("/v1/cache/orgs/{}", segment(rng)),
        11 => format!("/v1/cache/repos/{}/{}", segment(rng), segment(rng)),
        12 => "/v1/webhooks/github".into(),
        _ => {
            let segs: Vec<String> = (0..rng.below(7)).map(|_| segment(rng)).collect();
            let trailing = if rng.chance(3) { "/" } else { "" };
            format!("/{}{trailing}", segs.join("/"))
        }
    }
}

/// A valid `owner/repo` that GitHub may or may not know.
fn valid_name(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("acme/r{:03}", rng.below(50)),
        1 => format!("Octo-Org/r{:03}", rng.below(10)),
        _ => format!("o{}/r{}", rng.below(400), rng.below(400)),
    }
}

/// One `names=` element: mostly valid, else empty, malformed or encoded.
fn name_element(rng: &mut Rng, clean: bool, earlier: &[String]) -> String {
    let kind = if clean { rng.below(3) } else { rng.below(8) };
    match (kind, earlier.last()) {
        (0, Some(_)) => {
            let again = earlier[rng.below(earlier.len())].clone();
            recase(rng, &again)
        }
        (0..=2, _) => valid_name(rng),
        (3, _) => String::new(),
        (4, _) => format!("{}/{}", segment(rng), segment(rng)),
        (5, _) => segment(rng),
        (6, _) => rng
            .pick(&[
                "a%2Fb",
                "a/b%2Cc/d",
                "a%2Cb/c",
                "/",
                "a/",
                "/b",
                "a/b/c",
                "a//b",
            ])
            .to_string(),
        _ => percent_encode(valid_name(rng).as_bytes()),
    }
}

/// A `names=` value: empty, a few names, about 100, or thousands (with repeats in other cases).
fn names_value(rng: &mut Rng) -> String {
    let count = match rng.below(10) {
        0 => 0,
        1 | 2 => 1 + rng.below(3_000),
        3 => 95 + rng.below(12),
        _ => 1 + rng.below(8),
    };
    // Half of the lists hold only valid names, so long lists reach the limit checks.
    let clean = rng.chance(2);
    let mut out: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let element = name_element(rng, clean, &out);
        out.push(element);
    }
    let sep = if rng.chance(20) { "%2C" } else { "," };
    let mut joined = out.join(sep);
    if rng.chance(15) {
        joined.push(',');
    }
    joined
}

fn fields_value(rng: &mut Rng) -> String {
    let extra = [
        "",
        "NAME",
        "bogus",
        "name%2Cci",
        "%00",
        "name ",
        "\u{1F600}",
    ];
    (0..rng.below(6))
        .map(|_| {
            if rng.chance(5) {
                rng.pick(&extra).to_string()
            } else {
                ALLOWED[rng.below(ALLOWED.len())].to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A listing parameter (filters, order, pages), valid or not.
fn listing_pair(rng: &mut Rng) -> String {
    let name = rng.pick(&forgelens::listing::params::NAMES);
    let value = rng
        .pick(&[
            "",
            "public,private",
            "internal,",
            "true",
            "false",
            "failure,none",
            "Rust",
            "%E2%9C%93",
            "a+b",
            "pushed_at",
            "updated_at",
            "desc",
            "asc",
            "1",
            "0",
            "1000",
            "1001",
            "4294967296",
            "-1",
            "%7C",
            "x",
        ])
        .to_string();
    format!("{name}={value}")
}

fn random_query(rng: &mut Rng, batch: bool) -> String {
    let mut pairs: Vec<String> = Vec::new();
    if batch && !rng.chance(10) {
        pairs.push(format!("names={}", names_value(rng)));
    }
    for _ in 0..rng.below(3) {
        let pair = match rng.below(7) {
            0 => format!("names={}", names_value(rng)),
            1 | 2 => format!("fields={}", fields_value(rng)),
            3 => "names".to_string(),
            4 => format!("{}={}", segment(rng), segment(rng)),
            5 => listing_pair(rng),
            _ => rng
                .pick(&["", "=", "&", "==", "fields", "%", "+"])
                .to_string(),
        };
        pairs.push(pair);
    }
    // The order of parameters must not matter.
    if pairs.len() > 1 && rng.chance(2) {
        pairs.swap(0, 1);
    }
    pairs.join("&")
}

/// A time claim value: near a limit (now, 0, year 9999, chrono's first and last dates, i64's
/// ends) by less than twice the leeway either way, any i64, or not an integer at all.
fn time_value(rng: &mut Rng, now_s: u64) -> String {
    let edges = [
        i64::try_from(now_s).unwrap(),
        0,
        253_402_300_799,
        -8_334_601_228_800,
        8_210_298_412_799,
        i64::MIN,
        i64::MAX,
    ];
    let other = [
        "18446744073709551616",
        "1e300",
        "-1e300",
        "1.5",
        "-0.0",
        "\"1700000600\"",
        "null",
        "true",
        "[]",
    ];
    match rng.below(5) {
        0..=2 => {
            let offset = rng.below(121) as i64 - 60;
            edges[rng.below(edges.len())]
                .saturating_add(offset)
                .to_string()
        }
        3 => (rng.next() as i64).to_string(),
        _ => rng.pick(&other).to_string(),
    }
}

/// Claims with random time values. Most start with a valid `exp` and name each other claim
/// once, so the value decides; a repeated key (which must be refused) is rarer.
fn random_claims(rng: &mut Rng, now_s: u64) -> String {
    let mut fields = Vec::new();
    let mut keys = vec!["nbf", "iat", "orgs"];
    if rng.chance(3) {
        keys.push("exp");
    } else {
        fields.push(format!("\"exp\":{}", now_s + 600));
    }
    if rng.chance(8) {
        keys.push("nbf");
    }
    for _ in 0..keys.len() {
        let key = keys.swap_remove(rng.below(keys.len()));
        if rng.chance(3) {
            continue;
        }
        let value = match key {
            "orgs" => rng
                .pick(&[
                    r#"["*"]"#,
                    r#"["acme"]"#,
                    r#"["OCTO-ORG"]"#,
                    "[]",
                    "\"*\"",
                    "[1]",
                ])
                .to_string(),
            _ => time_value(rng, now_s),
        };
        fields.push(format!("\"{key}\":{value}"));
    }
    format!("{{{}}}", fields.join(","))
}

/// An `Authorization` value: absent half of the time, else garbage, forged or correctly signed.
fn random_authorization(rng: &mut Rng, now_s: u64) -> Option<String> {
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let value = match rng.below(14) {
        0..=5 => return None,
        6 => rng.text(80),
        7 => {
            let segs: Vec<String> = (0..rng.below(5)).map(|_| b64(&rng.bytes(40))).collect();
            format!("Bearer {}", segs.join("."))
        }
        8..=10 => format!(
            "Bearer {}",
            mint(header, &random_claims(rng, now_s), READ_KEY)
        ),
        11 => format!(
            "{} {}",
            rng.pick(&["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
            mint(
                rng.pick(&[header, r#"{"alg":"none"}"#, r#"{"alg":"HS512"}"#, "{}"]),
                &format!(r#"{{"exp":{},"orgs":["*"]}}"#, now_s + 600),
                rng.pick(&[READ_KEY, "not-the-key-not-the-key-not-the-key"]),
            )
        ),
        12 => format!("Bearer {ADMIN_TOKEN}"),
        _ => rng
            .pick(&[
                "Bearer",
                "Bearer ",
                "Bearer  x",
                "Basic Zm9vOmJhcg==",
                "",
                " ",
                "\0",
            ])
            .to_string(),
    };
    Some(value)
}

/// The method the route expects most of the time, so cases get past the method check; else any.
fn random_method(rng: &mut Rng, path: &str) -> String {
    if rng.chance(4) {
        let any = [
            "GET", "HEAD", "OPTIONS", "POST", "DELETE", "PUT", "PATCH", "get", "", "TRACE",
            "G\u{0}T",
        ];
        return rng.pick(&any).to_string();
    }
    let natural = if path.starts_with("/v1/cache/") {
        "DELETE"
    } else if path == "/v1/webhooks/github" {
        "POST"
    } else {
        "GET"
    };
    natural.to_string()
}

/// One random request: method, path with query, headers and body.
struct Case {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Case {
    fn random(rng: &mut Rng, now_s: u64) -> Case {
        let path = random_path(rng);
        let query = random_query(rng, path == "/v1/repos");
        let target = if rng.chance(3) {
            // A valid data request, so the Authorization header is what decides.
            rng.pick(&[
                "/v1/repos/acme/r001",
                "/v1/orgs/Octo-Org/repos?fields=name",
                "/v1/repos?names=acme/r004,ACME/R004,o1/r1",
            ])
            .to_string()
        } else if query.is_empty() && rng.chance(2) {
            path.clone()
        } else {
            format!("{path}?{query}")
        };
        let mut headers = Vec::new();
        if let Some(auth) = random_authorization(rng, now_s) {
            headers.push(("Authorization".to_string(), auth));
        }
        if rng.chance(8) {
            headers.push(("If-None-Match".to_string(), rng.text(30)));
        }
        if rng.chance(8) {
            headers.push(("Origin".to_string(), rng.text(30)));
        }
        if rng.chance(6) {
            headers.push(("X-GitHub-Event".to_string(), segment(rng)));
            headers.push(("X-Hub-Signature-256".to_string(), rng.text(71)));
        }
        Case {
            method: random_method(rng, &path),
            target,
            headers,
            body: rng.bytes(200),
        }
    }

    /// A short description for failure messages (the seed and case number reproduce it fully).
    fn describe(&self) -> String {
        format!(
            "{} {:.300} {:.300?}",
            self.method, self.target, self.headers
        )
    }
}

/// Every upstream call carries only names that passed validation.
fn assert_calls_hold_valid_names(calls: &[Value], context: &str) {
    for call in calls {
        let vars = call["variables"].as_object().expect("variables object");
        assert!(
            vars.len() <= 2 * BATCH_MAX + 2,
            "{context}: more than {BATCH_MAX} names in one call"
        );
        for (key, value) in vars {
            let Some(s) = value.as_str() else {
                continue;
            };
            // `owner` (listings), `o0`, `n0`, … (batches); other variables carry no names.
            let indexed = |prefix: char| {
                key.strip_prefix(prefix)
                    .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            };
            if key == "owner" || indexed('o') {
                assert!(
                    Owner::parse(s).is_ok(),
                    "{context}: owner {s:?} sent upstream"
                );
            } else if indexed('n') {
                assert!(
                    RepoName::parse(s).is_ok(),
                    "{context}: repo {s:?} sent upstream"
                );
            }
        }
    }
}

/// Status, calls and body of one answer against the properties of this file; returns the error
/// code, if any.
fn check_answer(
    case: &Case,
    resp: &Response,
    new_calls: &[Value],
    context: &str,
) -> Option<String> {
    assert!(resp.status < 500, "{context}: status {}", resp.status);
    let code = (case.method != "HEAD" && resp.status >= 400).then(|| {
        let body: Value = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|_| panic!("{context}: error body is not JSON"));
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    // Refused input (and unknown routes) never costs an upstream call.
    let refused =
        matches!(resp.status, 400 | 401 | 405 | 413) || code.as_deref() == Some("no_route");
    if refused {
        assert!(
            new_calls.is_empty(),
            "{context}: status {} {code:?} after {} upstream call(s)",
            resp.status,
            new_calls.len()
        );
    }
    if resp.status == 400 {
        let known = [
            "invalid_name",
            "invalid_fields",
            "too_many_names",
            "invalid_parameter",
            "invalid_payload",
        ];
        assert!(
            code.as_deref().is_none_or(|c| known.contains(&c)),
            "{context}: 400 with code {code:?}"
        );
    }
    assert_calls_hold_valid_names(new_calls, context);
    code
}

fn env_number(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => raw.parse().ok(),
    }
}

fn fuzz_world() -> World {
    let mut w = World::new(OWNERS);
    w.vars = vec![
        ("READ_TOKEN_SECRET", READ_KEY.to_string()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("GITHUB_WEBHOOK_SECRET", "fuzz-webhook-secret".to_string()),
    ];
    w
}

#[test]
fn random_requests_never_panic_fail_or_leak_upstream() {
    let seed = env_number("FORGELENS_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_number("FORGELENS_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    let w = fuzz_world();
    let mut rng = Rng(seed);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for n in 0..cases {
        // Time moves on now and then, so cached entries go stale and refreshes run.
        if rng.chance(25) {
            w.advance(rng.below(400) as u64);
        }
        let before_deferred = w.calls();
        if rng.chance(50) {
            // As the runtime would after earlier responses (`wait_until`).
            catch_unwind(AssertUnwindSafe(|| w.run_deferred())).unwrap_or_else(|_| {
                panic!("seed {seed:#x}, case {n}: a deferred refresh panicked")
            });
        }
        let now_s = w.clock.0.get() / 1000;
        let case = Case::random(&mut rng, now_s);
        let context = format!(
            "seed {seed:#x} (FORGELENS_FUZZ_SEED={seed:#x}), case {n}: {}",
            case.describe()
        );
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let calls_before_request = w.calls();
        assert_calls_hold_valid_names(
            &w.gh.calls.borrow()[before_deferred..],
            &format!("{context} (deferred refreshes before it)"),
        );
        let resp = catch_unwind(AssertUnwindSafe(|| {
            w.send(&case.method, &case.target, &headers, &case.body)
        }))
        .unwrap_or_else(|_| panic!("{context}: the worker panicked"));
        let new_calls = w.gh.calls.borrow()[calls_before_request..].to_vec();
        let code = check_answer(&case, &resp, &new_calls, &context);
        let label = format!("{} {}", resp.status, code.unwrap_or_default());
        *seen.entry(label).or_default() += 1;
    }
    // The generator must reach every layer: successes, each kind of refusal, and misses
    // (otherwise it tested little, whatever the seed).
    let expected = [
        "200 ",
        "400 invalid_name",
        "400 invalid_fields",
        "400 too_many_names",
        "401 unauthorized",
        "401 bad_signature",
        "404 not_found",
        "404 no_route",
        "405 method_not_allowed",
    ];
    for label in expected {
        assert!(
            seen.contains_key(label),
            "seed {seed:#x}: no '{label}' answer in {seen:?}"
        );
    }
}

/// Batches of exactly 100 names across up to 100 owners, with random `fields=` subsets and
/// random callers: each is one upstream call at most (one aliased query for all owners), answers
/// every distinct name once, in `repos` or `errors`, shows only the fields asked for, and never a
/// private repository to an anonymous caller.
#[test]
fn wide_batches_across_many_owners_answer_every_name_in_one_call() {
    let seed = env_number("FORGELENS_FUZZ_SEED").unwrap_or(DEFAULT_SEED) ^ 0xB47C;
    let w = fuzz_world();
    let mut rng = Rng(seed);
    for n in 0..300 {
        if rng.chance(10) {
            w.advance(rng.below(400) as u64);
        }
        let owners = 1 + rng.below(100);
        let names: Vec<String> = (0..BATCH_MAX)
            .map(|i| match rng.below(4) {
                0 => format!("acme/r{:03}", rng.below(45)),
                _ => format!("o{}/r{}", i % owners, rng.below(3)),
            })
            .collect();
        let fields: Vec<&str> = ALLOWED.iter().copied().filter(|_| rng.chance(2)).collect();
        let mut target = format!("/v1/repos?names={}", names.join(","));
        if !fields.is_empty() {
            target.push_str(&format!("&fields={}", fields.join(",")));
        }
        let context = format!("seed {seed:#x}, wide case {n}: {target:.200}");
        let before = w.calls();
        let resp = catch_unwind(AssertUnwindSafe(|| w.send("GET", &target, &[], &[])))
            .unwrap_or_else(|_| panic!("{context}: the worker panicked"));
        let calls = w.gh.calls.borrow()[before..].to_vec();
        assert_eq!(resp.status, 200, "{context}");
        assert!(
            calls.len() <= 1,
            "{context}: {} upstream calls",
            calls.len()
        );
        assert_calls_hold_valid_names(&calls, &context);
        let body: Value = serde_json::from_slice(&resp.body).expect("JSON body");
        let mut distinct: Vec<String> = names.iter().map(|s| s.to_lowercase()).collect();
        distinct.sort();
        distinct.dedup();
        let mut answered: Vec<String> = body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["name"].as_str().expect("name").to_lowercase())
            .collect();
        for repo in body["repos"].as_array().expect("repos") {
            let object = repo.as_object().expect("a repo is an object");
            if !fields.is_empty() {
                for key in object.keys() {
                    assert!(fields.contains(&key.as_str()), "{context}: {key} not asked");
                }
            }
            assert_ne!(
                repo.get("visibility").and_then(Value::as_str),
                Some("private"),
                "{context}: a private repository shown to an anonymous caller"
            );
            // Names are reported as asked; repos carry GitHub's spelling, which fields may omit.
            if let Some(full) = repo.get("full_name").and_then(Value::as_str) {
                answered.push(full.to_lowercase());
            }
        }
        if fields.is_empty() || fields.contains(&"full_name") {
            answered.sort();
            assert_eq!(
                answered, distinct,
                "{context}: not every name answered once"
            );
        } else {
            assert_eq!(
                answered.len() + body["repos"].as_array().map_or(0, Vec::len),
                distinct.len(),
                "{context}: not every name answered once"
            );
        }
    }
}

//! Table-driven tests of the listing parameters, selection, order, pages, `Link` and summary.

use super::params::{self, Params};
use super::{select, summarize};
use crate::config::PrivatePolicy;
use crate::fields::FieldSet;
use crate::http::query;
use crate::model::{Ci, CiState, Repo, RepoFields, Visibility};
use crate::view::Access;

/// The normal form of a query's parameters (`None`: none given), or the start of the error's
/// message (the parameter it names).
fn check(raw: &str) -> Result<Option<String>, String> {
    params::parse(&query::parse(raw))
        .map(|p| p.map(|p| p.key()))
        .map_err(|e| {
            assert_eq!(e.code(), "invalid_parameter", "{raw}");
            e.message()
        })
}

#[test]
fn parameters_table() {
    let ok = |key: &str| Ok(Some(key.to_string()));
    let q100 = "x".repeat(100);
    let checks: Vec<(String, Result<Option<String>, &str>)> = vec![
        // Nothing of this feature: the listing as before.
        ("".into(), Ok(None)),
        ("fields=name".into(), Ok(None)),
        ("unknown=1&names=a/b".into(), Ok(None)),
        // Every parameter at its default still asks for `total`.
        ("sort=name".into(), ok("?")),
        ("direction=asc".into(), ok("?")),
        ("sort=name&direction=asc&unknown=1".into(), ok("?")),
        ("visibility=public".into(), ok("?visibility=public")),
        (
            "visibility=internal,public,public".into(),
            ok("?visibility=public,internal"),
        ),
        ("visibility=".into(), Err("visibility")),
        ("visibility".into(), Err("visibility")),
        ("visibility=secret".into(), Err("visibility")),
        ("visibility=Public".into(), Err("visibility")),
        ("visibility=public,".into(), Err("visibility")),
        ("visibility=public&visibility=private".into(), Err("visibility")),
        ("archived=true".into(), ok("?archived=true")),
        ("archived=false".into(), ok("?archived=false")),
        ("archived=yes".into(), Err("archived")),
        ("archived=1".into(), Err("archived")),
        ("archived=true&archived=true".into(), Err("archived")),
        ("fork=false".into(), ok("?fork=false")),
        ("fork=TRUE".into(), Err("fork")),
        ("fork=".into(), Err("fork")),
        ("ci=error,failure".into(), ok("?ci=failure,error")),
        ("ci=failure%2Cerror".into(), ok("?ci=failure,error")),
        ("ci=none,expected,pending,success".into(), ok("?ci=success,pending,expected,none")),
        ("ci=null".into(), Err("ci")),
        ("ci=,".into(), Err("ci")),
        ("ci=failure&ci=error".into(), Err("ci")),
        ("language=Rust".into(), ok("?language=rust")),
        ("language=C%2B%2B".into(), ok("?language=c%2B%2B")),
        ("language=Common+Lisp".into(), ok("?language=common%20lisp")),
        ("language=".into(), Err("language")),
        ("language=a&language=b".into(), Err("language")),
        ("q=Hello%20World".into(), ok("?q=hello%20world")),
        (format!("q={q100}"), ok(&format!("?q={q100}"))),
        (format!("q={q100}x"), Err("q ")),
        // Characters, not bytes: 100 three-byte characters pass.
        (
            format!("q={}", "%E2%9C%93".repeat(100)),
            ok(&format!("?q={}", "%E2%9C%93".repeat(100))),
        ),
        ("q=".into(), Err("q ")),
        ("sort=pushed_at".into(), ok("?sort=pushed_at")),
        ("sort=pushed_at&direction=desc".into(), ok("?sort=pushed_at")),
        (
            "direction=asc&sort=updated_at".into(),
            ok("?sort=updated_at&direction=asc"),
        ),
        ("direction=desc".into(), ok("?direction=desc")),
        ("sort=size".into(), Err("sort")),
        ("sort=Name".into(), Err("sort")),
        ("direction=up".into(), Err("direction")),
        ("direction=asc&direction=asc".into(), Err("direction")),
        ("per_page=20".into(), ok("?per_page=20&page=1")),
        ("page=02&per_page=020".into(), ok("?per_page=20&page=2")),
        ("per_page=1".into(), ok("?per_page=1&page=1")),
        ("per_page=1000".into(), ok("?per_page=1000&page=1")),
        ("per_page=0".into(), Err("per_page")),
        ("per_page=1001".into(), Err("per_page")),
        ("per_page=-1".into(), Err("per_page")),
        ("per_page=%2B5".into(), Err("per_page")),
        ("per_page=1e3".into(), Err("per_page")),
        ("per_page=+5".into(), Err("per_page")),
        ("per_page=99999999999999999999999".into(), Err("per_page")),
        ("per_page=".into(), Err("per_page")),
        ("per_page=5&page=0".into(), Err("page")),
        ("per_page=5&page=00".into(), Err("page")),
        ("per_page=5&page=4294967295".into(), ok("?per_page=5&page=4294967295")),
        ("per_page=5&page=4294967296".into(), Err("page")),
        ("per_page=5&page=1&page=2".into(), Err("page")),
        ("page=2".into(), Err("page")),
        // Everything at once, in another order: one normal form.
        (
            "page=3&per_page=10&direction=asc&sort=pushed_at&q=API&language=Go&ci=none,failure&fork=false&archived=true&visibility=private,public".into(),
            ok("?visibility=public,private&archived=true&fork=false&ci=failure,none&language=go&q=api&sort=pushed_at&direction=asc&per_page=10&page=3"),
        ),
    ];
    for (raw, expected) in checks {
        let got = check(&raw);
        match expected {
            Ok(key) => assert_eq!(got, Ok(key), "{raw:.80}"),
            Err(param) => {
                let message = got.expect_err(&raw);
                assert!(message.starts_with(param), "{raw:.80}: {message}");
            }
        }
    }
}

/// Each message names its parameter and every allowed value.
#[test]
fn messages_name_allowed_values() {
    let cases: [(&str, &[&str]); 8] = [
        ("visibility=x", &params::VISIBILITIES),
        ("ci=x", &params::CI_STATES),
        ("archived=x", &["true", "false"]),
        ("fork=x", &["true", "false"]),
        ("sort=x", &["name", "pushed_at", "updated_at"]),
        ("direction=x", &["asc", "desc"]),
        ("per_page=x", &["1", "1000"]),
        ("per_page=1&page=x", &["1", "per_page"]),
    ];
    for (raw, words) in cases {
        let message = check(raw).unwrap_err();
        for w in words {
            assert!(message.contains(w), "{raw}: {message}");
        }
    }
    let refused = params::refuse_for_summary(&query::parse("x=1&ci=failure")).unwrap_err();
    assert_eq!(refused.code(), "invalid_parameter");
    assert!(refused.message().contains("ci"));
    assert!(params::refuse_for_summary(&query::parse("fields=name")).is_err());
    assert!(params::refuse_for_summary(&query::parse("x=1&names=a/b")).is_ok());
}

fn parsed(raw: &str) -> Params {
    params::parse(&query::parse(raw)).unwrap().unwrap()
}

/// `(rel, page)` pairs of a `Link` header.
type Rels = Vec<(String, u32)>;

/// `(rel, page)` of a `Link` header, checking each URL keeps the view's other parameters.
fn rels(link: &str, rest: &str) -> Rels {
    link.split(", ")
        .map(|part| {
            let (url, rel) = part.split_once(">; rel=\"").unwrap();
            let url = url.strip_prefix("</v1/orgs/Acme/repos?").unwrap();
            let (kept, page) = url.split_once("&page=").unwrap();
            assert_eq!(kept, rest, "{link}");
            (rel.trim_end_matches('"').to_string(), page.parse().unwrap())
        })
        .collect()
}

#[test]
fn link_table() {
    let fields = FieldSet::default_set();
    let r = |pairs: &[(&str, u32)]| -> Rels {
        pairs.iter().map(|(r, p)| (r.to_string(), *p)).collect()
    };
    let cases: Vec<(u32, u64, Rels)> = vec![
        (1, 25, r(&[("first", 1), ("next", 2), ("last", 3)])),
        (
            2,
            25,
            r(&[("first", 1), ("prev", 1), ("next", 3), ("last", 3)]),
        ),
        (3, 25, r(&[("first", 1), ("prev", 2), ("last", 3)])),
        // Past the end: back to the last page that holds records.
        (5, 25, r(&[("first", 1), ("prev", 3), ("last", 3)])),
        (1, 30, r(&[("first", 1), ("next", 2), ("last", 3)])),
        (1, 7, r(&[("first", 1), ("last", 1)])),
        (1, 0, r(&[("first", 1), ("last", 1)])),
        (2, 0, r(&[("first", 1), ("prev", 1), ("last", 1)])),
    ];
    for (page, total, expected) in cases {
        let p = parsed(&format!("per_page=10&page={page}"));
        let link = p.link("Acme", fields, total).unwrap();
        assert_eq!(
            rels(&link, "per_page=10"),
            expected,
            "page {page} of {total}"
        );
    }
    // The other parameters (fields included) in their normal form, in every URL.
    let p = parsed("per_page=2&q=a+b&page=2&ci=error,failure");
    let some = FieldSet::parse("ci,name").unwrap();
    let link = p.link("Acme", some, 9).unwrap();
    let rest = "fields=name,ci&ci=failure,error&q=a%20b&per_page=2";
    assert_eq!(
        rels(&link, rest),
        r(&[("first", 1), ("prev", 1), ("next", 3), ("last", 5)])
    );
    assert_eq!(parsed("ci=failure").link("Acme", fields, 9), None);
}

struct R {
    name: &'static str,
    vis: Visibility,
    archived: bool,
    fork: bool,
    lang: Option<&'static str>,
    ci: Option<Option<CiState>>,
    pushed: Option<&'static str>,
    desc: Option<&'static str>,
}

const fn r(name: &'static str, vis: Visibility) -> R {
    R {
        name,
        vis,
        archived: false,
        fork: false,
        lang: None,
        ci: None,
        pushed: None,
        desc: None,
    }
}

fn build(rs: Vec<R>) -> Vec<Repo> {
    let mut repos: Vec<Repo> = rs
        .into_iter()
        .map(|x| {
            let full = format!("Acme/{}", x.name);
            Repo::new(RepoFields {
                name: x.name,
                owner: "Acme",
                full_name: &full,
                url: "https://github.com/Acme/x",
                description: x.desc,
                visibility: x.vis,
                archived: x.archived,
                disabled: false,
                fork: x.fork,
                default_branch: x.ci.map(|_| "main"),
                pushed_at: x.pushed,
                updated_at: x.pushed,
                language: x.lang,
                ci: x.ci.map(|state| Ci { state, sha: "abc" }),
            })
        })
        .collect();
    crate::service::sort_by_name(&mut repos);
    repos
}

use Visibility::{Internal, Private, Public};

/// Eight records: public ones of every kind, and private and internal ones that would match
/// state filters if their state showed.
fn fixture() -> Vec<Repo> {
    build(vec![
        R {
            lang: Some("Rust"),
            ci: Some(Some(CiState::Failure)),
            pushed: Some("2024-03-01T00:00:00Z"),
            desc: Some("The API server"),
            ..r("api", Public)
        },
        R {
            lang: Some("rust"),
            ci: Some(None),
            pushed: Some("2024-01-01T00:00:00Z"),
            archived: true,
            ..r("Blog", Public)
        },
        R {
            lang: Some("Go"),
            ci: None,
            pushed: None,
            fork: true,
            ..r("cli", Public)
        },
        R {
            lang: Some("Go"),
            ci: Some(Some(CiState::Success)),
            pushed: Some("2024-03-01T00:00:00Z"),
            ..r("docs", Public)
        },
        R {
            lang: Some("Rust"),
            ci: Some(Some(CiState::Failure)),
            pushed: Some("2025-01-01T00:00:00Z"),
            archived: true,
            fork: true,
            desc: Some("api secrets"),
            ..r("secret-api", Private)
        },
        R {
            lang: Some("Go"),
            ci: Some(Some(CiState::Error)),
            pushed: Some("2023-01-01T00:00:00Z"),
            ..r("Tools", Internal)
        },
        R {
            lang: Some("C"),
            ci: Some(Some(CiState::Pending)),
            pushed: Some("2024-02-01T00:00:00.5Z"),
            ..r("web", Public)
        },
        R {
            lang: None,
            ci: Some(Some(CiState::Expected)),
            pushed: Some("2024-02-01T00:00:00Z"),
            desc: Some("API docs"),
            ..r("www", Public)
        },
    ])
}

/// A read token unlocking every owner.
fn token() -> Access {
    Access::Token {
        all: true,
        owners: Vec::new(),
    }
}

/// The names a view holds, and its total.
fn names(raw: &str, access: &Access, policy: PrivatePolicy) -> (Vec<String>, u64) {
    let repos = fixture();
    let s = select(&repos, &parsed(raw), access, policy);
    let got = s.repos.iter().map(|r| r.name().to_string()).collect();
    (got, s.total)
}

#[test]
fn filters_table() {
    let token = token();
    use PrivatePolicy::{Hide, Redact};
    let anon = Access::Anonymous;
    let cases: Vec<(&str, &Access, PrivatePolicy, Vec<&str>)> = vec![
        (
            "sort=name",
            &token,
            Hide,
            vec![
                "api",
                "Blog",
                "cli",
                "docs",
                "secret-api",
                "Tools",
                "web",
                "www",
            ],
        ),
        (
            "sort=name",
            &anon,
            Hide,
            vec!["api", "Blog", "cli", "docs", "web", "www"],
        ),
        (
            "sort=name",
            &anon,
            Redact,
            vec![
                "api",
                "Blog",
                "cli",
                "docs",
                "secret-api",
                "Tools",
                "web",
                "www",
            ],
        ),
        (
            "visibility=private,internal",
            &token,
            Hide,
            vec!["secret-api", "Tools"],
        ),
        ("visibility=private,internal", &anon, Hide, vec![]),
        // Redacted records show their visibility, so they match it.
        (
            "visibility=private,internal",
            &anon,
            Redact,
            vec!["secret-api", "Tools"],
        ),
        (
            "visibility=public",
            &anon,
            Redact,
            vec!["api", "Blog", "cli", "docs", "web", "www"],
        ),
        ("archived=true", &token, Hide, vec!["Blog", "secret-api"]),
        ("archived=true", &anon, Redact, vec!["Blog"]),
        (
            "archived=false",
            &anon,
            Redact,
            vec!["api", "cli", "docs", "web", "www"],
        ),
        ("fork=true", &token, Hide, vec!["cli", "secret-api"]),
        ("fork=true", &anon, Redact, vec!["cli"]),
        ("fork=false&visibility=internal", &anon, Redact, vec![]),
        ("ci=failure", &token, Hide, vec!["api", "secret-api"]),
        ("ci=failure", &anon, Redact, vec!["api"]),
        ("ci=failure", &anon, Hide, vec!["api"]),
        ("ci=error", &token, Hide, vec!["Tools"]),
        ("ci=error", &anon, Redact, vec![]),
        // `none`: no CI at all, or CI without a state.
        ("ci=none", &token, Hide, vec!["Blog", "cli"]),
        (
            "ci=success,pending,expected",
            &anon,
            Hide,
            vec!["docs", "web", "www"],
        ),
        (
            "language=rust",
            &token,
            Hide,
            vec!["api", "Blog", "secret-api"],
        ),
        ("language=RUST", &anon, Redact, vec!["api", "Blog"]),
        ("language=go", &anon, Redact, vec!["cli", "docs"]),
        ("language=Python", &token, Hide, vec![]),
        // `q` in names and descriptions, case-insensitively.
        ("q=API", &token, Hide, vec!["api", "secret-api", "www"]),
        // A redacted record matches `q` on its name only.
        ("q=api", &anon, Redact, vec!["api", "secret-api", "www"]),
        ("q=secrets", &token, Hide, vec!["secret-api"]),
        ("q=secrets", &anon, Redact, vec![]),
        ("q=secret", &anon, Hide, vec![]),
        ("q=OOL", &anon, Redact, vec!["Tools"]),
        ("q=api&ci=failure", &anon, Redact, vec!["api"]),
        ("q=zzz", &token, Hide, vec![]),
    ];
    for (raw, access, policy, expected) in cases {
        let (got, total) = names(raw, access, policy);
        assert_eq!(got, expected, "{raw} {access:?} {policy:?}");
        assert_eq!(total, expected.len() as u64, "{raw}");
    }
}

#[test]
fn order_table() {
    let token = token();
    use PrivatePolicy::{Hide, Redact};
    let anon = Access::Anonymous;
    let cases: Vec<(&str, &Access, PrivatePolicy, Vec<&str>)> = vec![
        (
            "direction=desc",
            &anon,
            Hide,
            vec!["www", "web", "docs", "cli", "Blog", "api"],
        ),
        // Latest first; equal dates by name; no date last.
        (
            "sort=pushed_at",
            &token,
            Hide,
            vec![
                "secret-api",
                "api",
                "docs",
                "web",
                "www",
                "Blog",
                "Tools",
                "cli",
            ],
        ),
        (
            "sort=pushed_at&direction=asc",
            &token,
            Hide,
            vec![
                "Tools",
                "Blog",
                "www",
                "web",
                "api",
                "docs",
                "secret-api",
                "cli",
            ],
        ),
        (
            "sort=updated_at&direction=asc",
            &anon,
            Hide,
            vec!["Blog", "www", "web", "api", "docs", "cli"],
        ),
        // A redacted record's date does not show: it sorts with the undated, by name.
        (
            "sort=pushed_at",
            &anon,
            Redact,
            vec![
                "api",
                "docs",
                "web",
                "www",
                "Blog",
                "cli",
                "secret-api",
                "Tools",
            ],
        ),
        (
            "sort=pushed_at&direction=asc",
            &anon,
            Redact,
            vec![
                "Blog",
                "www",
                "web",
                "api",
                "docs",
                "cli",
                "secret-api",
                "Tools",
            ],
        ),
    ];
    for (raw, access, policy, expected) in cases {
        assert_eq!(names(raw, access, policy).0, expected, "{raw} {policy:?}");
    }
}

#[test]
fn pages_table() {
    let anon = Access::Anonymous;
    let all = ["api", "Blog", "cli", "docs", "web", "www"];
    let cases: Vec<(&str, &[&str])> = vec![
        ("per_page=4", &all[..4]),
        ("per_page=4&page=1", &all[..4]),
        ("per_page=4&page=2", &all[4..]),
        ("per_page=4&page=3", &[]),
        ("per_page=4&page=4294967295", &[]),
        ("per_page=6", &all),
        ("per_page=1000", &all),
        ("per_page=1&page=6", &all[5..]),
        ("per_page=2&page=2&direction=desc", &["docs", "cli"]),
    ];
    for (raw, expected) in cases {
        let (got, total) = names(raw, &anon, PrivatePolicy::Hide);
        assert_eq!(got, expected, "{raw}");
        assert_eq!(total, 6, "{raw}: the total counts every page");
    }
}

#[test]
fn summary_in_every_visibility_mode() {
    let token = token();
    let repos = fixture();
    let anon = Access::Anonymous;
    let hide = summarize(&repos, &anon, PrivatePolicy::Hide);
    let redact = summarize(&repos, &anon, PrivatePolicy::Redact);
    let token = summarize(&repos, &token, PrivatePolicy::Hide);
    let other_owner = Access::Token {
        all: false,
        owners: vec!["someone-else".into()],
    };
    assert_eq!(summarize(&repos, &other_owner, PrivatePolicy::Hide), hide);
    // Hide: the private and internal records count nowhere.
    assert_eq!((hide.total, hide.visibility), (6, [6, 0, 0]));
    assert_eq!((hide.archived, hide.forks), (1, 1));
    assert_eq!(hide.ci, [1, 1, 1, 0, 1, 2]);
    // Ties by name, case-insensitively first.
    assert_eq!(
        hide.languages,
        vec![("Go", 2), ("C", 1), ("Rust", 1), ("rust", 1)]
    );
    assert_eq!(hide.last_pushed_at, Some("2024-03-01T00:00:00Z"));
    // Redact: counted in total and visibility only.
    assert_eq!((redact.total, redact.visibility), (8, [6, 1, 1]));
    assert_eq!(
        (
            redact.archived,
            redact.forks,
            redact.ci,
            &redact.languages,
            redact.last_pushed_at
        ),
        (
            hide.archived,
            hide.forks,
            hide.ci,
            &hide.languages,
            hide.last_pushed_at
        )
    );
    // A token unlocking the owner: everything.
    assert_eq!((token.total, token.visibility), (8, [6, 1, 1]));
    assert_eq!((token.archived, token.forks), (2, 2));
    assert_eq!(token.ci, [1, 2, 1, 1, 1, 2]);
    assert_eq!(
        token.languages,
        vec![("Go", 3), ("Rust", 2), ("C", 1), ("rust", 1)]
    );
    assert_eq!(token.last_pushed_at, Some("2025-01-01T00:00:00Z"));
    assert_eq!(token.other, 0);
    let text = hide.to_json("Acme", "2024-04-01T00:00:00.000Z", None);
    assert_eq!(
        text,
        r#"{"org":"Acme","total":6,"visibility":{"public":6,"private":0,"internal":0},"archived":1,"forks":1,"ci":{"success":1,"failure":1,"pending":1,"error":0,"expected":1,"none":2},"languages":{"Go":2,"C":1,"Rust":1,"rust":1,"other":0},"last_pushed_at":"2024-03-01T00:00:00Z","fetched_at":"2024-04-01T00:00:00.000Z","revalidated_at":null}"#
    );
}

/// The ten most common languages by count, ties by name; the rest summed in `other`.
#[test]
fn summary_keeps_ten_languages() {
    const LANGS: [&str; 13] = [
        "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M",
    ];
    const NAMES: [&str; 20] = [
        "r00", "r01", "r02", "r03", "r04", "r05", "r06", "r07", "r08", "r09", "r10", "r11", "r12",
        "r13", "r14", "r15", "r16", "r17", "r18", "r19",
    ];
    // M three times, L twice, the others once; one record without a language.
    let mut rs: Vec<R> = Vec::new();
    let langs = LANGS
        .iter()
        .chain(&["M", "M", "L"])
        .map(|l| Some(*l))
        .chain([None]);
    for (name, lang) in NAMES.into_iter().zip(langs) {
        rs.push(R {
            lang,
            ..r(name, Public)
        });
    }
    let repos = build(rs);
    let s = summarize(&repos, &Access::Anonymous, PrivatePolicy::Hide);
    let named: Vec<(&str, u64)> = s.languages.clone();
    assert_eq!(
        named,
        vec![
            ("M", 3),
            ("L", 2),
            ("A", 1),
            ("B", 1),
            ("C", 1),
            ("D", 1),
            ("E", 1),
            ("F", 1),
            ("G", 1),
            ("H", 1)
        ]
    );
    assert_eq!((s.other, s.total), (3, 17));
    assert_eq!(s.last_pushed_at, None);
}

/// Filter + sort + page over 10,000 records stays far below a millisecond natively (the
/// benchmark's goal); debug builds are slower, so this only guards against a quadratic turn.
#[test]
fn ten_thousand_records_are_cheap() {
    let names: Vec<String> = (0..10_000).map(|i| format!("repo-{i:05}")).collect();
    let dates: Vec<String> = (0..10_000)
        .map(|i| format!("2024-{:02}-{:02}T00:00:00Z", 1 + i % 12, 1 + i % 28))
        .collect();
    let repos: Vec<Repo> = names
        .iter()
        .zip(&dates)
        .enumerate()
        .map(|(i, (n, d))| {
            Repo::new(RepoFields {
                name: n,
                owner: "Acme",
                full_name: n,
                url: "u",
                description: Some("a repository of things"),
                visibility: if i % 7 == 3 { Private } else { Public },
                archived: i % 10 == 7,
                disabled: false,
                fork: false,
                default_branch: Some("main"),
                pushed_at: Some(d),
                updated_at: Some(d),
                language: Some("Rust"),
                ci: Some(Ci {
                    state: Some(if i % 9 == 0 {
                        CiState::Failure
                    } else {
                        CiState::Success
                    }),
                    sha: "abc",
                }),
            })
        })
        .collect();
    let p = parsed("ci=failure,error&sort=pushed_at&per_page=100&page=2&q=THING");
    let started = std::time::Instant::now();
    let s = select(&repos, &p, &Access::Anonymous, PrivatePolicy::Redact);
    assert!(
        started.elapsed().as_millis() < 200,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.repos.len(), 100);
    assert_eq!(
        s.total,
        (0..10_000).filter(|i| i % 9 == 0 && i % 7 != 3).count() as u64
    );
}

//! The listing parameters: parsing, messages, the normal form and `Link`.

use super::parsed;
use crate::fields::FieldSet;
use crate::http::query;
use crate::listing::params;

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
    let max = u32::MAX;
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
        (format!("language={q100}"), ok(&format!("?language={q100}"))),
        (format!("language={q100}x"), Err("language")),
        // Characters, not bytes.
        (
            format!("language={}", "%C3%A9".repeat(100)),
            ok(&format!("?language={}", "%C3%A9".repeat(100))),
        ),
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
        // `page` alone pages by 100: the view `per_page=100` asks for, in one normal form.
        ("page=2".into(), ok("?per_page=100&page=2")),
        ("page=1".into(), ok("?per_page=100&page=1")),
        ("page=001".into(), ok("?per_page=100&page=1")),
        (format!("page={max}"), ok(&format!("?per_page=100&page={max}"))),
        ("page=3&sort=pushed_at".into(), ok("?sort=pushed_at&per_page=100&page=3")),
        ("page=0".into(), Err("page")),
        ("page=".into(), Err("page")),
        ("page".into(), Err("page")),
        ("page=-1".into(), Err("page")),
        ("page=1.5".into(), Err("page")),
        ("page=1e3".into(), Err("page")),
        (format!("page={}", u64::from(max) + 1), Err("page")),
        ("page=99999999999999999999999".into(), Err("page")),
        ("page=1&page=1".into(), Err("page")),
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
    let cases: [(&str, &[&str]); 10] = [
        ("visibility=x", &params::VISIBILITIES),
        ("ci=x", &params::CI_STATES),
        ("archived=x", &["true", "false"]),
        ("fork=x", &["true", "false"]),
        ("sort=x", &["name", "pushed_at", "updated_at"]),
        ("direction=x", &["asc", "desc"]),
        ("per_page=x", &["1", "1000"]),
        ("per_page=1&page=x", &["1", "4294967295", "per_page", "100"]),
        ("page=0", &["1", "4294967295", "per_page", "100"]),
        ("language=", &["1", "100", "language"]),
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

/// `page` alone is the view `per_page=100` asks for: the same parameters, so the same records,
/// body, `Link`, normal form and memory key.
#[test]
fn page_alone_pages_by_100() {
    let fields = FieldSet::default_set();
    for (alone, explicit) in [
        ("page=1", "per_page=100&page=1"),
        ("page=2", "page=02&per_page=100"),
        ("page=3&ci=failure", "ci=failure&page=3&per_page=100"),
        ("page=4294967295", "per_page=100&page=4294967295"),
    ] {
        let (a, b) = (parsed(alone), parsed(explicit));
        assert_eq!(a, b, "{alone}");
        assert_eq!(a.per_page, Some(params::DEFAULT_PER_PAGE), "{alone}");
        for total in [0, 99, 100, 101, 250] {
            assert_eq!(
                a.link("Acme", fields, total),
                b.link("Acme", fields, total),
                "{alone}, {total} records"
            );
        }
    }
    let link = parsed("page=2").link("Acme", fields, 250).unwrap();
    assert_eq!(
        rels(&link, "per_page=100"),
        [("first", 1), ("prev", 1), ("next", 3), ("last", 3)]
            .map(|(r, p)| (r.to_string(), p))
            .to_vec()
    );
}

//! The dashboard page as served at `/`: a repository's `url` comes from upstream, so it may only
//! become a link through the page's scheme check (https:, or http: for the local emulator).
//! The browser test (tests/e2e/dashboard.test.mjs) runs the page; this one needs no browser.

// A panic here is a failing test, not a crashed worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;

fn dashboard_script() -> String {
    let page = String::from_utf8(World::new(&[]).get("/").body).unwrap();
    let start = page.find("<script>").expect("an inline script");
    page[start..].to_string()
}

/// The text of `function {name}(…) {…}` up to its closing brace at the start of a line.
fn function_body<'a>(script: &'a str, name: &str) -> &'a str {
    let start = script
        .find(&format!("function {name}("))
        .unwrap_or_else(|| panic!("no function {name}"));
    let len = script[start..].find("\n}\n").expect("a closing brace");
    &script[start..start + len]
}

#[test]
fn repository_links_go_through_a_scheme_check() {
    let script = dashboard_script();
    // The link's href is a local computed by one function from the record's url...
    let at = script
        .find("const href = ")
        .expect("the repository link takes its href from a checked value");
    let call = &script[at + "const href = ".len()..];
    let (check, arg) = call.split_once('(').unwrap();
    assert!(
        arg.starts_with("r.url)"),
        "it checks the record's url: {call:.40}"
    );
    assert!(
        script.contains(r#"el("a", { href, "#),
        "the anchor uses that local"
    );
    // ...which parses the URL (so case, spaces and tabs in the scheme are normalised) and lets
    // only https: and http: through.
    let body = function_body(&script, check);
    for part in [
        "new URL(url)",
        ".protocol",
        r#""https:""#,
        r#""http:""#,
        "null",
    ] {
        assert!(body.contains(part), "{check} lacks {part:?}:\n{body}");
    }
    for scheme in ["javascript:", "data:", "vbscript:"] {
        assert!(!body.contains(scheme), "{check} must not list {scheme}");
    }
}

#[test]
fn no_href_is_set_from_a_raw_value() {
    let script = dashboard_script();
    // Besides the checked local above: no `href: value` attribute, no assignment, no
    // setAttribute naming href, and no HTML parsing of upstream text.
    for raw in [
        "href:",
        ".href =",
        "\"href\"",
        "'href'",
        "innerHTML",
        "outerHTML",
    ] {
        assert!(
            !script.contains(raw),
            "the dashboard script sets {raw:?} outside the scheme check"
        );
    }
}

//! The summary's counts in every visibility mode, and its ten languages.

use super::{build, fixture, r, token, R};
use crate::config::PrivatePolicy;
use crate::listing::summarize;
use crate::model::Visibility::Public;
use crate::view::Access;

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

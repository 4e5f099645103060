//! GraphQL query text and variables for GitHub.
//!
//! **Invariant**: the query text depends only on the number of names, or on which part of a
//! listing and which end it asks (literals from `Part::all`); every caller-supplied string travels
//! in `variables`. A hostile name can therefore never change what the query asks.

use crate::forge::PageAsk;
use crate::json::Writer;
use crate::model::Part;
use crate::names::{FullName, Owner};
use std::fmt::Write;

/// The repository fields the model needs, shared by both queries.
pub const REPO_FRAGMENT: &str =
    "fragment Repo on Repository { name owner { login } nameWithOwner url description \
visibility isPrivate isArchived isDisabled isFork pushedAt updatedAt primaryLanguage { name } \
defaultBranchRef { name target { ... on Commit { oid statusCheckRollup { state } } } } }";

/// The query for one page of an owner's listing: the whole listing, or one part of it (its
/// filters are constants of the text: enum and boolean literals, never input), from the front
/// (`first`/`after`) or from the back (`last`/`before`, with `pageInfo`'s start aliased to the
/// names a front page uses, so both read alike), and with `counts`, every part's `totalCount`
/// aliased `p0`…`p11` in `Part::all` order. GitHub wants `first` or `last` on every connection,
/// counts included: `first: 1`, with no node asked. The owner travels in `variables`.
pub fn owner_query(part: Option<Part>, back: bool, counts: bool) -> String {
    let mut q = String::from(
        "query($owner: String!, $cursor: String, $first: Int!) { rateLimit { cost remaining limit resetAt } \
repositoryOwner(login: $owner) { login repositories(",
    );
    q.push_str(if back {
        "last: $first, before: $cursor, "
    } else {
        "first: $first, after: $cursor, "
    });
    if let Some(part) = part {
        filters(&mut q, part);
    }
    q.push_str(
        "ownerAffiliations: [OWNER], orderBy: {field: NAME, direction: ASC}) { totalCount nodes { ...Repo } pageInfo { ",
    );
    q.push_str(if back {
        "hasNextPage: hasPreviousPage endCursor: startCursor } } "
    } else {
        "hasNextPage endCursor } } "
    });
    if counts {
        for (i, part) in Part::all().into_iter().enumerate() {
            let _ = write!(q, "p{i}: repositories(first: 1, ");
            filters(&mut q, part);
            q.push_str("ownerAffiliations: [OWNER]) { totalCount } ");
        }
    }
    q.push_str("} } ");
    q.push_str(REPO_FRAGMENT);
    q
}

fn filters(q: &mut String, part: Part) {
    let _ = write!(
        q,
        "visibility: {}, isArchived: {}, isFork: {}, ",
        part.visibility.as_str().to_ascii_uppercase(),
        part.archived,
        part.fork
    );
}

/// The JSON body for one page of an owner's listing.
pub fn owner_page_body(owner: &Owner, ask: &PageAsk<'_>) -> String {
    let mut out = Writer::with_capacity(1024);
    out.raw("{\"query\":");
    out.str(&owner_query(ask.part, ask.back, ask.counts));
    out.raw(",\"variables\":{\"cursor\":");
    out.opt_str(ask.cursor);
    out.raw(",\"first\":");
    out.uint(u64::from(ask.size.clamp(1, 100)));
    out.raw(",\"owner\":");
    out.str(owner.as_str());
    out.raw("}}");
    out.finish()
}

/// Query text for `count` aliased lookups `rN: repository(owner: $oN, name: $nN)`.
pub fn batch_query(count: usize) -> String {
    let mut q = String::from("query(");
    for i in 0..count {
        let _ = write!(q, "$o{i}: String!, $n{i}: String!, ");
    }
    q.push_str(") { rateLimit { cost remaining limit resetAt } ");
    for i in 0..count {
        let _ = write!(
            q,
            "r{i}: repository(owner: $o{i}, name: $n{i}) {{ ...Repo }} "
        );
    }
    q.push_str("} ");
    q.push_str(REPO_FRAGMENT);
    q.replace("query() ", "query ")
}

/// The JSON body for one batch of names.
pub fn batch_body(names: &[FullName]) -> String {
    let mut out = Writer::with_capacity(4096 + names.len() * 64);
    out.raw("{\"query\":");
    out.str(&batch_query(names.len()));
    out.raw(",\"variables\":{");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        // Only user input goes here, as JSON strings: never into the query text.
        out.raw("\"o");
        out.uint(i as u64);
        out.raw("\":");
        out.str(n.owner.as_str());
        out.raw(",\"n");
        out.uint(i as u64);
        out.raw("\":");
        out.str(n.repo.as_str());
    }
    out.raw("}}");
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn names(list: &[&str]) -> Vec<FullName> {
        list.iter().map(|n| FullName::parse(n).unwrap()).collect()
    }

    fn body(names: &[FullName]) -> Value {
        serde_json::from_str(&batch_body(names)).unwrap()
    }

    #[test]
    fn query_text_depends_only_on_count() {
        let a = body(&names(&["octo/a", "octo/b"]));
        let b = body(&names(&["Evil-Org/x..y", "z/.github"]));
        assert_eq!(a["query"], b["query"]);
        assert_eq!(b["variables"]["o0"], "Evil-Org");
        assert_eq!(b["variables"]["n0"], "x..y");
        assert_eq!(b["variables"]["n1"], ".github");
    }

    fn ask(cursor: Option<&str>, size: u8) -> PageAsk<'_> {
        PageAsk {
            cursor,
            size,
            part: None,
            back: false,
            counts: false,
        }
    }

    #[test]
    fn owner_query_carries_owner_in_variables() {
        let v: Value = serde_json::from_str(&owner_page_body(
            &Owner::parse("Octo").unwrap(),
            &ask(Some("Y3Vyc29y"), 50),
        ))
        .unwrap();
        assert!(!v["query"].as_str().unwrap().contains("Octo"));
        assert_eq!(
            v["variables"],
            json!({"owner": "Octo", "cursor": "Y3Vyc29y", "first": 50})
        );
        let first: Value =
            serde_json::from_str(&owner_page_body(&Owner::parse("o").unwrap(), &ask(None, 0)))
                .unwrap();
        assert_eq!(first["variables"]["cursor"], Value::Null);
        assert_eq!(first["variables"]["first"], 1, "GitHub refuses first: 0");
    }

    #[test]
    fn the_whole_listing_from_the_front_is_the_plain_owner_query() {
        let q = owner_query(None, false, false);
        assert!(q.contains(
            "repositories(first: $first, after: $cursor, ownerAffiliations: [OWNER], orderBy: {field: NAME, direction: ASC}) { totalCount nodes { ...Repo } pageInfo { hasNextPage endCursor } } } } fragment Repo"
        ), "{q}");
    }

    #[test]
    fn a_part_is_asked_by_literal_filters_from_either_end() {
        let parts = Part::all();
        let front = owner_query(Some(parts[5]), false, false);
        assert!(front.contains(
            "repositories(first: $first, after: $cursor, visibility: PRIVATE, isArchived: false, isFork: true, ownerAffiliations: [OWNER]"
        ), "{front}");
        let back = owner_query(Some(parts[10]), true, false);
        assert!(back.contains(
            "repositories(last: $first, before: $cursor, visibility: INTERNAL, isArchived: true, isFork: false, ownerAffiliations: [OWNER]"
        ), "{back}");
        // A back page reads like a front one: where the page before it ends, and whether any is.
        assert!(back.contains("pageInfo { hasNextPage: hasPreviousPage endCursor: startCursor }"));
        assert!(!back.contains("p0:"));
    }

    #[test]
    fn the_plan_query_counts_each_part_beside_the_first_page() {
        let q = owner_query(None, false, true);
        assert!(q.contains(
            "p0: repositories(first: 1, visibility: PUBLIC, isArchived: false, isFork: false, ownerAffiliations: [OWNER]) { totalCount }"
        ), "{q}");
        assert!(q.contains(
            "p7: repositories(first: 1, visibility: PRIVATE, isArchived: true, isFork: true, ownerAffiliations: [OWNER]) { totalCount }"
        ));
        assert!(q.contains(
            "p9: repositories(first: 1, visibility: INTERNAL, isArchived: false, isFork: true"
        ));
        assert!(q.contains("p11:") && !q.contains("p12:"));
        // The first page is the owner query's own, with the owner in variables only.
        assert!(
            q.contains("repositories(first: $first, after: $cursor, ownerAffiliations: [OWNER]")
        );
        assert!(q.contains("$owner: String!") && q.ends_with(REPO_FRAGMENT));
    }

    #[test]
    fn batch_aliases_every_name() {
        let q = batch_query(3);
        for i in 0..3 {
            assert!(
                q.contains(&format!("r{i}: repository(owner: $o{i}, name: $n{i})")),
                "{q}"
            );
        }
        assert!(!q.contains("r3:"));
        assert!(batch_query(100).contains("r99:"));
    }
}

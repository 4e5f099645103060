//! GraphQL query text and variables for GitHub.
//!
//! **Invariant**: the query text is a constant or depends only on the number of names; every
//! caller-supplied string travels in `variables`. A hostile name can therefore never change what
//! the query asks.

use crate::json::Writer;
use crate::model::Visibility;
use crate::names::{FullName, Owner};
use std::fmt::Write;

/// The repository fields the model needs, shared by both queries.
pub const REPO_FRAGMENT: &str =
    "fragment Repo on Repository { name owner { login } nameWithOwner url description \
visibility isPrivate isArchived isDisabled isFork pushedAt updatedAt primaryLanguage { name } \
defaultBranchRef { name target { ... on Commit { oid statusCheckRollup { state } } } } }";

pub const OWNER_QUERY: &str = "query($owner: String!, $cursor: String, $first: Int!) { rateLimit { cost remaining limit resetAt } \
repositoryOwner(login: $owner) { login repositories(first: $first, after: $cursor, ownerAffiliations: [OWNER], \
orderBy: {field: NAME, direction: ASC}) { totalCount nodes { ...Repo } pageInfo { hasNextPage endCursor } } } }";

/// The JSON body for one page of `first` (1–100) repositories of an owner listing.
pub fn owner_page_body(owner: &Owner, cursor: Option<&str>, first: u8) -> String {
    let mut out = Writer::with_capacity(1024);
    out.raw("{\"query\":");
    out.str(&format!("{OWNER_QUERY} {REPO_FRAGMENT}"));
    out.raw(",\"variables\":{\"cursor\":");
    out.opt_str(cursor);
    out.raw(",\"first\":");
    out.uint(u64::from(first.clamp(1, 100)));
    out.raw(",\"owner\":");
    out.str(owner.as_str());
    out.raw("}}");
    out.finish()
}

/// The first request of a partitioned build (issue 35; not asked yet): the whole listing's first
/// page together with the `totalCount` of each part, aliased `p0`, `p1`, … in the order given.
/// A part's filters are constants of this text (enum and boolean literals, never input); the
/// owner travels in `variables` as in `OWNER_QUERY`. GitHub wants `first` or `last` on every
/// connection, counts included: `first: 1`, with no node asked.
pub fn plan_query(parts: &[(Visibility, bool, bool)]) -> String {
    let mut q = String::from(
        "query($owner: String!, $cursor: String, $first: Int!) { rateLimit { cost remaining limit resetAt } \
repositoryOwner(login: $owner) { login repositories(first: $first, after: $cursor, ownerAffiliations: [OWNER], \
orderBy: {field: NAME, direction: ASC}) { totalCount nodes { ...Repo } pageInfo { hasNextPage endCursor } } ",
    );
    for (i, (visibility, archived, fork)) in parts.iter().enumerate() {
        let _ = write!(
            q,
            "p{i}: repositories(first: 1, visibility: {}, isArchived: {archived}, isFork: {fork}, \
ownerAffiliations: [OWNER]) {{ totalCount }} ",
            visibility.as_str().to_ascii_uppercase()
        );
    }
    q.push_str("} } ");
    q.push_str(REPO_FRAGMENT);
    q
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

    #[test]
    fn owner_query_carries_owner_in_variables() {
        let v: Value = serde_json::from_str(&owner_page_body(
            &Owner::parse("Octo").unwrap(),
            Some("Y3Vyc29y"),
            50,
        ))
        .unwrap();
        assert!(!v["query"].as_str().unwrap().contains("Octo"));
        assert_eq!(
            v["variables"],
            json!({"owner": "Octo", "cursor": "Y3Vyc29y", "first": 50})
        );
        let first: Value =
            serde_json::from_str(&owner_page_body(&Owner::parse("o").unwrap(), None, 0)).unwrap();
        assert_eq!(first["variables"]["cursor"], Value::Null);
        assert_eq!(first["variables"]["first"], 1, "GitHub refuses first: 0");
    }

    #[test]
    fn the_plan_query_counts_each_part_beside_the_first_page() {
        let parts = [
            (Visibility::Public, false, false),
            (Visibility::Private, true, false),
            (Visibility::Internal, false, true),
        ];
        let q = plan_query(&parts);
        assert!(q.contains(
            "p0: repositories(first: 1, visibility: PUBLIC, isArchived: false, isFork: false, ownerAffiliations: [OWNER]) { totalCount }"
        ), "{q}");
        assert!(q.contains(
            "p1: repositories(first: 1, visibility: PRIVATE, isArchived: true, isFork: false"
        ));
        assert!(q.contains(
            "p2: repositories(first: 1, visibility: INTERNAL, isArchived: false, isFork: true"
        ));
        assert!(!q.contains("p3:"));
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

//! Workers Analytics Engine data points natively: one per answered request, naming the route by
//! its template and the owner as the index, counting what it asked of GitHub; never a repository
//! name, a token or a header an unsigned request made up.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;

#[test]
fn each_answered_request_writes_one_data_point() {
    let w = live_world(&[("Acme", 150), ("zeta", 5)]);
    assert_eq!(w.get("/v1/orgs/Acme/repos").status, 200);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    assert_eq!(w.get("/v1/repos/zeta/r001").status, 200);
    let r = deliver(
        &w,
        "repository",
        &repo_event("privatized", "acme/r002"),
        None,
    );
    assert_eq!(r.status, 200);
    // A delivery with no valid signature: its event header is not recorded.
    let forged = w.send(
        "POST",
        "/v1/webhooks/github",
        &[
            ("X-GitHub-Event", "push"),
            ("Content-Type", "application/json"),
        ],
        b"{}",
    );
    assert_eq!(forged.status, 401);
    let points = w.points.borrow();
    let rows: Vec<(String, Vec<String>)> = points
        .iter()
        .map(|p| (p.index.clone(), p.blobs.to_vec()))
        .collect();
    let row = |index: &str, blobs: [&str; 4]| {
        (
            index.to_string(),
            blobs.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        rows,
        [
            row("acme", ["/v1/orgs/{owner}/repos", "2xx", "MISS", ""]),
            row("acme", ["/v1/orgs/{owner}/repos", "2xx", "HIT", ""]),
            row("zeta", ["/v1/repos/{owner}/{repo}", "2xx", "MISS", ""]),
            row("", ["/v1/webhooks/github", "2xx", "", "repository"]),
            row("", ["/v1/webhooks/github", "4xx", "", ""]),
        ]
    );
    // A repository of an owner with no listing: its miss asked GitHub once, one point; a HIT asked nothing. (The
    // listing's pages are asked by the owner's object, not by the request that waited.)
    assert_eq!(points[2].doubles[..2], [1, 1]);
    assert_eq!(points[1].doubles[..2], [0, 0]);
    assert!(points.iter().all(|p| p.doubles[3] > 0), "response bytes");
    let text = format!("{points:?}");
    assert!(!text.contains("r001") && !text.contains("r002"), "{text}");
}

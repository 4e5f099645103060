//! Event → invalidated keys, driven by real GitHub payloads (tests/data/webhooks, regenerated from
//! @octokit/webhooks-examples by update.mjs there).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use forgelens::cache::keys;
use forgelens::forge::github::payload::Payload;
use forgelens::forge::github::webhook;
use forgelens::forge::Invalidation;
use serde_json::Value;

/// What a delivery with `payload` (written with serde_json) invalidates.
fn invalidation(event: &str, payload: &Value) -> Invalidation {
    let text = payload.to_string();
    webhook::invalidation(event, &Payload::read(&text).unwrap())
}

fn payload(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
}

#[test]
fn events_map_to_exactly_the_right_keys() {
    let cw = ["v1:repo:codertocat/hello-world", "v1:org:codertocat"];
    let oc = ["v1:repo:octocoders/hello-world", "v1:org:octocoders"];
    let cases: &[(&str, &str, Option<&str>, &[&str])] = &[
        ("repository.created", "repository", Some("created"), &oc),
        ("repository.deleted", "repository", Some("deleted"), &cw),
        ("repository.archived", "repository", Some("archived"), &cw),
        (
            "repository.unarchived",
            "repository",
            Some("unarchived"),
            &cw,
        ),
        (
            "repository.publicized",
            "repository",
            Some("publicized"),
            &cw,
        ),
        (
            "repository.privatized",
            "repository",
            Some("privatized"),
            &cw,
        ),
        ("repository.edited", "repository", Some("edited"), &oc),
        (
            "repository.renamed",
            "repository",
            Some("renamed"),
            &["v1:repo:octocoders/hello-world", "v1:org:octocoders"],
        ),
        (
            "repository.transferred",
            "repository",
            Some("transferred"),
            &[
                "v1:repo:octocat/hello-world",
                "v1:repo:octocoders/hello-world",
                "v1:org:octocat",
                "v1:org:octocoders",
            ],
        ),
        ("public", "public", None, &cw),
        ("push.default-branch", "push", None, &cw),
        ("push.tag", "push", None, &[]),
        ("status.default-branch", "status", None, &cw),
        (
            "check_suite.completed-default",
            "check_suite",
            Some("completed"),
            &cw,
        ),
        (
            "check_suite.completed-other",
            "check_suite",
            Some("completed"),
            &[],
        ),
        (
            "check_suite.requested",
            "check_suite",
            Some("requested"),
            &[],
        ),
        (
            "workflow_run.completed-default",
            "workflow_run",
            Some("completed"),
            &cw,
        ),
        (
            "workflow_run.requested",
            "workflow_run",
            Some("requested"),
            &[],
        ),
        ("ping", "ping", None, &[]),
        // A real payload under an event name we do not handle changes nothing.
        ("repository.privatized", "star", Some("privatized"), &[]),
        ("push.default-branch", "issues", None, &[]),
    ];
    for (file, event, action, expected) in cases {
        let inv = invalidation(event, &payload(file));
        assert_eq!(inv.action.as_deref(), *action, "{file} as {event}");
        assert_eq!(keys::invalidated(&inv), *expected, "{file} as {event}");
    }
}

#[test]
fn rename_drops_old_and_new_names() {
    // The published renamed example renames Hello-World to itself; make the old name differ.
    let mut p = payload("repository.renamed");
    p["changes"]["repository"]["name"]["from"] = Value::from("Old-Name");
    let inv = invalidation("repository", &p);
    assert_eq!(
        keys::invalidated(&inv),
        [
            "v1:repo:octocoders/old-name",
            "v1:repo:octocoders/hello-world",
            "v1:org:octocoders"
        ]
    );
}

#[test]
fn transfer_from_an_organization() {
    let mut p = payload("repository.transferred");
    p["changes"]["owner"]["from"] = serde_json::json!({"organization": {"login": "Old-Org"}});
    let inv = invalidation("repository", &p);
    assert_eq!(
        keys::invalidated(&inv),
        [
            "v1:repo:old-org/hello-world",
            "v1:repo:octocoders/hello-world",
            "v1:org:old-org",
            "v1:org:octocoders"
        ]
    );
}

#[test]
fn hostile_or_partial_payloads_change_nothing() {
    let cases = [
        serde_json::json!({}),
        serde_json::json!({"action": "privatized"}),
        serde_json::json!({"action": "privatized", "repository": {"full_name": "../../etc"}}),
        serde_json::json!({"action": "privatized", "repository": {"full_name": 42}}),
        serde_json::json!({"action": "privatized", "repository": "x"}),
        serde_json::json!({"action": 7, "repository": {"full_name": "a/b"}}),
        serde_json::json!([1, 2, 3]),
    ];
    for p in cases {
        assert!(
            keys::invalidated(&invalidation("repository", &p)).is_empty(),
            "{p}"
        );
    }
}

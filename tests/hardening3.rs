//! Regression tests for the third review's finding 3: replays were keyed on the unsigned
//! `X-GitHub-Delivery`. An applied delivery is now remembered by the SHA-256 of its signed body
//! (at least an hour), so a captured body replayed under any id changes nothing and costs
//! nothing, and a captured body sent first under a genuine delivery's id no longer swallows it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn world(owners: &[(&str, usize)]) -> World {
    live_world(owners)
}

fn privatized(full_name: &str) -> Value {
    json!({"action": "privatized", "repository": {"full_name": full_name, "default_branch": "main"}})
}

/// The key an applied delivery of `body` is remembered under, computed here independently.
fn memory_key(body: &[u8]) -> String {
    let hex: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1:delivery:{hex}")
}

const ID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

/// A captured signed `ping` sent under the id GitHub is about to use no longer makes the genuine
/// delivery a "replay": the privatize under that id is applied.
#[test]
fn a_ping_under_a_genuine_delivery_id_does_not_swallow_it() {
    let w = world(&[("acme", 10)]);
    assert!(names(&w.get("/v1/orgs/acme/repos")).contains(&"r002".to_string()));
    let ping = deliver(
        &w,
        "ping",
        &json!({"zen": "Keep it logically awesome."}),
        Some(ID),
    );
    assert_eq!(ping.status, 200);
    assert_eq!(json_body(&ping)["invalidated"], json!([]));
    w.gh.privatized.borrow_mut().insert("acme/r002".into());
    let calls = w.calls();
    let genuine = deliver(&w, "repository", &privatized("acme/r002"), Some(ID));
    assert_eq!(genuine.status, 200);
    assert_eq!(
        json_body(&genuine),
        json!({"action": "privatized", "event": "repository",
            "invalidated": ["v1:repo:acme/r002", "v1:org:acme"]}),
        "answered as applied, not with the ping's answer"
    );
    assert!(w.calls() > calls, "GitHub was asked about the repository");
    assert!(
        !names(&w.get("/v1/orgs/acme/repos")).contains(&"r002".to_string()),
        "the privatized repository left the listing"
    );
}

/// The same signed body replayed under fresh ids, or under none, is applied once: every replay
/// is answered the first answer, asks GitHub nothing and writes nothing.
#[test]
fn a_body_replayed_under_fresh_ids_is_applied_once() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let body = push("acme/r003").to_string().into_bytes();
    let first = send_delivery(&w, "push", &body, Some(ID));
    assert_eq!(first.status, 200);
    assert_eq!(
        json_body(&first)["invalidated"],
        json!(["v1:repo:acme/r003", "v1:org:acme"])
    );
    let (calls, writes) = (w.calls(), w.store.writes.get());
    let fresh = [
        Some("aaaaaaaa-0000-0000-0000-000000000001"),
        Some("aaaaaaaa-0000-0000-0000-000000000002"),
        None,
        Some(ID),
    ];
    for (i, id) in fresh.into_iter().enumerate() {
        w.advance(2);
        let replay = send_delivery(&w, "push", &body, id);
        assert_eq!(replay.status, 200, "replay {i}");
        assert_eq!(replay.body, first.body, "replay {i} answers the same body");
        assert_eq!(
            (w.calls(), w.store.writes.get()),
            (calls, writes),
            "replay {i} asked GitHub nothing and wrote nothing"
        );
    }
    // A body that differs by one byte is another delivery.
    let other = push("acme/r004").to_string().into_bytes();
    assert_eq!(send_delivery(&w, "push", &other, Some(ID)).status, 200);
    assert_eq!(w.calls(), calls + 1, "the other body asked GitHub");
}

/// Owner-level events are deduplicated too: a replayed `installation_repositories` or
/// `installation` body does not throw the rebuilt listing away again.
#[test]
fn a_replayed_owner_level_delivery_does_not_rebuild_the_listing() {
    let repository = json!({"id": 3, "name": "r003", "full_name": "acme/r003", "private": false});
    let account = json!({"id": 7, "account": {"login": "acme", "type": "Organization"}});
    let cases = [
        (
            "installation_repositories",
            json!({"action": "added", "installation": account, "repository_selection": "selected",
                "repositories_added": [repository], "repositories_removed": []}),
        ),
        (
            "installation",
            json!({"action": "new_permissions_accepted", "installation": account}),
        ),
    ];
    for (event, payload) in cases {
        let w = world(&[("acme", 250)]);
        assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
        assert_eq!(pages(&w), 3, "{event}");
        let body = payload.to_string().into_bytes();
        let first = send_delivery(&w, event, &body, Some(ID));
        assert_eq!(first.status, 200, "{event}");
        assert!(json_body(&first)["invalidated"]
            .as_array()
            .unwrap()
            .contains(&json!("v1:org:acme")));
        // The listing was thrown away: the next read rebuilds it.
        assert_eq!(w.get("/v1/orgs/acme/repos").status, 200, "{event}");
        assert_eq!(pages(&w), 6, "{event}: rebuilt once");
        for id in [Some("bbbbbbbb-0000-0000-0000-000000000001"), None] {
            w.advance(5);
            let replay = send_delivery(&w, event, &body, id);
            assert_eq!(replay.status, 200, "{event}");
            assert_eq!(replay.body, first.body, "{event}");
            assert!(
                w.store.data.borrow().contains_key("v1:org:acme"),
                "{event}: the replay left the listing in place"
            );
            let poll = w.get("/v1/orgs/acme/repos");
            assert_eq!(poll.status, 200, "{event}");
            assert_eq!(poll.header("x-cache"), Some("HIT"), "{event}");
            assert_eq!(pages(&w), 6, "{event}: no rebuild for a replay");
        }
    }
}

/// The memory of an applied delivery is keyed on the body's SHA-256 and lasts at least an hour;
/// a delivery that failed (503) is not remembered, so GitHub's redelivery of it is applied.
#[test]
fn an_applied_delivery_is_remembered_by_its_body_for_an_hour_and_a_failed_one_is_not() {
    let w = world(&[("acme", 10)]);
    assert_eq!(w.get("/v1/orgs/acme/repos").status, 200);
    let ping = br#"{"zen":"Design for failure.","hook_id":1}"#;
    assert_eq!(send_delivery(&w, "ping", ping, None).status, 200);
    let body = push("acme/r001").to_string().into_bytes();
    assert_eq!(send_delivery(&w, "push", &body, Some(ID)).status, 200);
    {
        let data = w.store.data.borrow();
        for sent in [&ping[..], &body[..]] {
            let key = memory_key(sent);
            let (_, ttl) = data.get(&key).unwrap_or_else(|| panic!("{key} missing"));
            assert!(ttl.is_some_and(|t| t >= 3600), "{key} kept {ttl:?} s");
        }
        let ids: Vec<&String> = data
            .keys()
            .filter(|k| k.starts_with("v1:delivery:") && k.contains('-'))
            .collect();
        assert!(ids.is_empty(), "nothing keyed on the id: {ids:?}");
    }
    // A failed delivery: KV refuses the deletes for longer than the retries last.
    let failed = push("acme/r002").to_string().into_bytes();
    w.store.refuse_deletes.set(1_000);
    assert_eq!(
        send_delivery(&w, "push", &failed, Some("cccc-1")).status,
        503
    );
    w.store.refuse_deletes.set(0);
    assert!(!w.store.data.borrow().contains_key(&memory_key(&failed)));
    let calls = w.calls();
    let redelivered = send_delivery(&w, "push", &failed, Some("cccc-1"));
    assert_eq!(redelivered.status, 200);
    assert_eq!(w.calls(), calls + 1, "the redelivery was applied");
    assert!(w.store.data.borrow().contains_key(&memory_key(&failed)));
}

/// GitHub redelivers to any location. A privatize applied in another isolate and redelivered
/// here is answered as remembered, changing nothing upstream or in KV, but this isolate's memory
/// drops its copy of the listing at once (found by the simulation, seed 963): what it shows is
/// no older than its KV, not `MEMORY_TTL_MS` older.
#[test]
fn a_delivery_applied_elsewhere_still_clears_this_isolates_memory() {
    use forgelens::cache::memory::{self, Tier, MAX_BYTES};
    let mut w = world(&[("acme", 10)]);
    w.vars.retain(|(k, _)| *k != "MEMORY_TTL_MS");
    w.vars.push(("MEMORY_TTL_MS", "10000".into()));
    assert!(names(&w.get("/v1/orgs/acme/repos")).contains(&"r002".to_string()));
    let kept = w.get("/v1/orgs/acme/repos");
    assert!(
        kept.header("server-timing").unwrap_or("").contains("mem"),
        "this isolate answers from memory"
    );
    // Another isolate (a location of its own) is sent the privatize and applies it.
    let body = privatized("acme/r002").to_string().into_bytes();
    let mut elsewhere = Tier::new(MAX_BYTES);
    memory::with(|t| std::mem::swap(t, &mut elsewhere));
    w.gh.privatized.borrow_mut().insert("acme/r002".into());
    let first = send_delivery(&w, "repository", &body, Some(ID));
    assert_eq!(first.status, 200);
    memory::with(|t| std::mem::swap(t, &mut elsewhere));
    let calls = w.calls();
    let again = send_delivery(&w, "repository", &body, Some("another-id"));
    assert_eq!(again.status, 200);
    assert_eq!(
        json_body(&again),
        json_body(&first),
        "answered as remembered"
    );
    assert_eq!(w.calls(), calls, "GitHub is not asked again");
    let after = w.get("/v1/orgs/acme/repos");
    assert!(
        !names(&after).contains(&"r002".to_string()),
        "this isolate no longer shows the privatized repository from memory"
    );
}

//! Delivery recovery natively: a hook is learned from a signed delivery's headers, and the cron's
//! `recover` reads its deliveries from a small deliveries API, asks again for the failed ones
//! (once per guid per run, three times at most, within the run's caps), keeps its high-water
//! mark, backs off a hook it may not read and a credential GitHub rate-limits, and `/v1/status`
//! reports it without a secret.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use forgelens::forge::github::GitHub;
use forgelens::forge::{HttpCall, HttpReply};
use forgelens::service::{Service, Transport};
use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::RefCell;

/// GitHub's deliveries API for one organization hook: `deliveries` newest first, `per_page`
/// honoured with cursors, `attempts` recorded; `status` answers every call with that status.
#[derive(Default)]
struct Hooks {
    deliveries: RefCell<Vec<Value>>,
    attempts: RefCell<Vec<u64>>,
    lists: RefCell<Vec<String>>,
    status: RefCell<Option<u16>>,
    /// Answers every call 403 with these headers (GitHub's REST rate limits).
    limited: RefCell<Option<Vec<(String, String)>>>,
    page_size: usize,
}

impl Transport for Hooks {
    async fn send(&self, call: &HttpCall, _timeout_ms: u64) -> Result<HttpReply, String> {
        let auth = call
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone());
        assert_eq!(auth.as_deref(), Some("Bearer hook-reading-token"));
        if let Some(headers) = self.limited.borrow().clone() {
            self.lists.borrow_mut().push(call.url.clone());
            return Ok(HttpReply {
                status: 403,
                headers,
                body: br#"{"message":"API rate limit exceeded"}"#.to_vec(),
            });
        }
        if let Some(status) = *self.status.borrow() {
            return Ok(HttpReply {
                status,
                ..HttpReply::default()
            });
        }
        let path = call.url.split('?').next().unwrap();
        let base = "https://api.test/orgs/acme/hooks/42/deliveries";
        if call.method == "POST" {
            let id = path
                .strip_prefix(&format!("{base}/"))
                .and_then(|p| p.strip_suffix("/attempts"))
                .unwrap();
            self.attempts.borrow_mut().push(id.parse().unwrap());
            return Ok(HttpReply {
                status: 202,
                body: b"{}".to_vec(),
                ..HttpReply::default()
            });
        }
        assert_eq!(path, base);
        self.lists.borrow_mut().push(call.url.clone());
        let start: usize = call
            .url
            .split("cursor=")
            .nth(1)
            .map_or(0, |c| c.parse().unwrap());
        let all = self.deliveries.borrow();
        let end = (start + self.page_size).min(all.len());
        let mut headers = vec![];
        if end < all.len() {
            headers.push((
                "link".to_string(),
                format!("<{base}?per_page=100&cursor={end}>; rel=\"next\""),
            ));
        }
        Ok(HttpReply {
            status: 200,
            headers,
            body: serde_json::to_vec(&all[start..end]).unwrap(),
        })
    }
}

fn delivery(id: u64, guid: &str, at_ms: u64, status: u16, event: &str, action: &str) -> Value {
    json!({"id": id, "guid": guid, "delivered_at": forgelens::time::format_rfc3339(at_ms),
        "redelivery": false, "duration": 0.1, "status": "x", "status_code": status,
        "event": event, "action": action, "installation_id": null, "repository_id": 1})
}

fn world() -> World {
    let mut w = live_world(&[("acme", 3)]);
    w.vars.push(("GITHUB_API_URL", "https://api.test".into()));
    w.vars.push(("GITHUB_TOKEN", "hook-reading-token".into()));
    w
}

/// A signed organization-hook delivery naming hook 42.
fn learn(w: &World) {
    let body = json!({"action": "privatized", "organization": {"login": "acme"},
        "repository": {"full_name": "acme/r001", "default_branch": "main"}})
    .to_string();
    let signature = webhook_signature(HOOK_SECRET, body.as_bytes());
    let r = block_on(w.fetch(
        "POST",
        "/v1/webhooks/github",
        &[
            ("X-GitHub-Event", "repository"),
            ("X-Hub-Signature-256", signature.as_str()),
            ("Content-Type", "application/json"),
            ("X-GitHub-Hook-ID", "42"),
            ("X-GitHub-Hook-Installation-Target-Type", "organization"),
        ],
        body.as_bytes(),
    ));
    assert_eq!(r.status, 200);
}

fn recover(w: &World, hooks: &Hooks) -> Vec<forgelens::service::recover::HookReport> {
    let cfg = w.config();
    let forge = GitHub::from_config(&cfg);
    let svc = Service::new(&cfg, &w.store, hooks, &w.clock, &forge);
    block_on(svc.recover())
}

#[test]
fn a_learned_hooks_failed_deliveries_are_redelivered_once_and_the_mark_kept() {
    let w = world();
    learn(&w);
    assert_eq!(
        w.store.data.borrow().get("v1:hook:42").map(|e| e.0.clone()),
        Some("organization:acme".to_string())
    );
    let now = w.clock.0.get();
    let hooks = Hooks {
        page_size: 2,
        ..Hooks::default()
    };
    *hooks.deliveries.borrow_mut() = vec![
        delivery(6, "a", now - 10_000, 200, "repository", "privatized"),
        delivery(5, "b", now - 20_000, 502, "repository", "privatized"),
        delivery(4, "a", now - 30_000, 0, "repository", "privatized"),
        delivery(3, "c", now - 40_000, 500, "ping", ""),
        delivery(2, "d", now - 50_000, 500, "push", ""),
        delivery(1, "old", now - 25 * 3_600_000, 500, "public", ""),
    ];
    let reports = recover(&w, &hooks);
    assert_eq!(reports.len(), 1);
    // "a" succeeded on its second attempt; "c" is not acted on; "old" is past the first day.
    assert_eq!(*hooks.attempts.borrow(), [5, 2]);
    assert_eq!(
        hooks.lists.borrow().len(),
        3,
        "paged down to the day's floor"
    );
    let run = reports[0].state.last_run.clone().unwrap();
    assert_eq!((run.failed_found, run.redelivered, run.gave_up), (2, 2, 0));
    assert_eq!(reports[0].state.checked_until_ms, Some(now - 10_000));
    // The next run reads only what is newer than the mark: one page, nothing asked again.
    w.clock.0.set(now + 300_000);
    hooks.lists.borrow_mut().clear();
    let reports = recover(&w, &hooks);
    assert_eq!(hooks.lists.borrow().len(), 1);
    assert_eq!(hooks.attempts.borrow().len(), 2);
    assert_eq!(reports[0].state.last_run.clone().unwrap().failed_found, 0);
    // A redelivery that failed again is asked once more (with its own, newest attempt id).
    hooks.deliveries.borrow_mut().insert(
        0,
        delivery(7, "b", now + 100_000, 503, "repository", "privatized"),
    );
    w.clock.0.set(now + 600_000);
    recover(&w, &hooks);
    assert_eq!(*hooks.attempts.borrow(), [5, 2, 7]);
}

#[test]
fn a_hook_that_may_not_be_read_waits_an_hour_and_recovery_off_reads_nothing() {
    let mut w = world();
    learn(&w);
    let hooks = Hooks {
        page_size: 100,
        ..Hooks::default()
    };
    *hooks.status.borrow_mut() = Some(403);
    let reports = recover(&w, &hooks);
    assert!(!reports[0].state.last_run.clone().unwrap().permitted);
    *hooks.status.borrow_mut() = None;
    w.clock.0.set(w.clock.0.get() + 30 * 60_000);
    recover(&w, &hooks);
    assert!(
        hooks.lists.borrow().is_empty(),
        "not asked again within the hour"
    );
    w.clock.0.set(w.clock.0.get() + 31 * 60_000);
    recover(&w, &hooks);
    assert_eq!(hooks.lists.borrow().len(), 1);
    // The status route reports the hook, and never the token.
    let status = w.request("GET", "/v1/status", &[ADMIN]);
    assert_eq!(status.status, 200);
    let text = String::from_utf8(status.body.clone()).unwrap();
    assert!(!text.contains("hook-reading-token"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["recovery"]["enabled"], true);
    assert_eq!(body["recovery"]["hooks"][0]["hook_id"], 42);
    assert_eq!(body["recovery"]["hooks"][0]["target"], "organization:acme");
    assert_eq!(body["recovery"]["hooks"][0]["permitted"], true);
    assert_eq!(body["github"]["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(w.request("GET", "/v1/status", &[]).status, 401);
    // Off: nothing is read.
    w.vars.push(("DELIVERY_RECOVERY", "off".into()));
    hooks.lists.borrow_mut().clear();
    w.clock.0.set(w.clock.0.get() + 600_000);
    assert!(recover(&w, &hooks).is_empty());
    assert!(hooks.lists.borrow().is_empty());
}

#[test]
fn a_rest_rate_limit_stops_recovery_until_its_reset() {
    let w = world();
    learn(&w);
    let now = w.clock.0.get();
    let hooks = Hooks {
        page_size: 100,
        ..Hooks::default()
    };
    *hooks.deliveries.borrow_mut() = vec![delivery(
        1,
        "lost",
        now - 10_000,
        0,
        "repository",
        "privatized",
    )];
    // GitHub's primary limit: 403, nothing left, the reset in ten minutes.
    let reset_s = now / 1000 + 600;
    *hooks.limited.borrow_mut() = Some(vec![
        ("x-ratelimit-remaining".into(), "0".into()),
        ("x-ratelimit-reset".into(), reset_s.to_string()),
    ]);
    recover(&w, &hooks);
    assert_eq!(hooks.lists.borrow().len(), 1);
    assert!(hooks.attempts.borrow().is_empty());
    // Before the reset, a run calls nothing with that credential (and is not "not permitted").
    *hooks.limited.borrow_mut() = None;
    w.clock.0.set(now + 300_000);
    let reports = recover(&w, &hooks);
    assert_eq!(hooks.lists.borrow().len(), 1, "no call before the reset");
    assert_eq!(reports[0].state.not_permitted_until_ms, None);
    // After it, the lost delivery is found and sent again.
    w.clock.0.set(reset_s * 1000 + 1_000);
    recover(&w, &hooks);
    assert_eq!(hooks.lists.borrow().len(), 2);
    assert_eq!(*hooks.attempts.borrow(), [1]);
    // A secondary limit (`retry-after`): no call until the wait is over, then the new one is sent.
    hooks.deliveries.borrow_mut().insert(
        0,
        delivery(2, "lost-2", reset_s * 1000, 0, "repository", "privatized"),
    );
    *hooks.limited.borrow_mut() = Some(vec![("retry-after".into(), "60".into())]);
    w.clock.0.set(reset_s * 1000 + 301_000);
    recover(&w, &hooks);
    assert_eq!(*hooks.attempts.borrow(), [1]);
    *hooks.limited.borrow_mut() = None;
    w.clock.0.set(reset_s * 1000 + 331_000);
    recover(&w, &hooks);
    assert_eq!(hooks.lists.borrow().len(), 3, "no call within the 60 s");
    w.clock.0.set(reset_s * 1000 + 400_000);
    recover(&w, &hooks);
    assert_eq!(*hooks.attempts.borrow(), [1, 2]);
}

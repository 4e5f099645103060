//! `GET /v1/status`: what the deployment knows about itself, for its operators: the credentials'
//! last known budgets and delivery recovery per hook. Never a secret: a credential is named by a
//! fingerprint of what its rate-limit memory is keyed by. Written with the project's `Writer`
//! (as `/v1/health` is), not `serde_json::json!`, which costs the wasm more.

use crate::cache::{keys, Store};
use crate::json::Writer;
use crate::service::recover::HookReport;
use crate::service::{Clock, Service, Transport};
use crate::time::format_rfc3339;

/// The body of `/v1/status`; `config` is `/v1/health`'s object.
pub async fn deployment<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    config: &str,
) -> String {
    let now = svc.clock.now_ms();
    let mut rate_keys = Vec::new();
    if let Some(token) = &svc.cfg.github_token {
        rate_keys.push(keys::ratelimit(token.expose()));
    }
    if let Some(app) = &svc.cfg.app {
        rate_keys.push(keys::ratelimit(&format!("app:{}", app.id)));
    }
    let mut out = Writer::with_capacity(1024);
    out.raw("{\"version\":");
    out.str(env!("CARGO_PKG_VERSION"));
    out.raw(",\"config\":");
    out.raw(config);
    out.raw(",\"github\":{\"credentials\":[");
    for (i, key) in rate_keys.iter().enumerate() {
        let limit = svc.limited_until(key).await.filter(|l| l.until_ms > now);
        if i > 0 {
            out.byte(b',');
        }
        out.raw("{\"id\":");
        out.str(key.rsplit(':').next().unwrap_or_default());
        // Only a spent (or low) budget is remembered today: how much is left is not kept.
        out.raw(",\"remaining\":null,\"limit\":null,\"reset_at\":");
        out.opt_str(
            limit
                .as_ref()
                .map(|l| format_rfc3339(l.until_ms))
                .as_deref(),
        );
        out.raw(",\"spent\":");
        out.bool(limit.is_some_and(|l| !l.low));
        out.byte(b'}');
    }
    out.raw("]},\"recovery\":{\"enabled\":");
    out.bool(svc.cfg.delivery_recovery);
    out.raw(",\"hooks\":");
    out.array(&svc.recovery_states().await, |r, out| hook(r, now, out));
    out.raw("}}");
    out.finish()
}

fn hook(r: &HookReport, now: u64, out: &mut Writer) {
    let run = r.state.last_run.clone().unwrap_or_default();
    let ran = run.at_ms > 0;
    let denied = r.state.not_permitted_until_ms.is_some_and(|u| u > now);
    out.raw("{\"hook_id\":");
    match r.target.hook_id() {
        Some(id) => out.uint(id),
        None => out.raw("null"),
    }
    out.raw(",\"target\":");
    out.str(&r.target.label());
    out.raw(",\"last_run_at\":");
    out.opt_str(ran.then(|| format_rfc3339(run.at_ms)).as_deref());
    out.raw(",\"checked_until\":");
    out.opt_str(r.state.checked_until_ms.map(format_rfc3339).as_deref());
    for (name, n) in [
        ("failed_found", run.failed_found),
        ("redelivered", run.redelivered),
        ("gave_up", run.gave_up),
    ] {
        out.byte(b',');
        out.str(name);
        out.byte(b':');
        out.uint(u64::from(n));
    }
    out.raw(",\"permitted\":");
    out.bool(!ran || (!denied && run.permitted));
    out.byte(b'}');
}

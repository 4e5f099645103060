//! `GET /v1/status`: what the deployment knows about itself, for its operators: the credentials'
//! last known budgets and delivery recovery per hook. Never a secret: a credential is named by a
//! fingerprint of what its rate-limit memory is keyed by.

use crate::cache::{keys, Store};
use crate::service::{Clock, Service, Transport};
use crate::time::format_rfc3339;
use serde_json::{json, Value};

/// The body of `/v1/status`; `config` is `/v1/health`'s object.
pub async fn deployment<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    config: &str,
) -> String {
    let now = svc.clock.now_ms();
    let mut credentials = Vec::new();
    let mut rate_keys = Vec::new();
    if let Some(token) = &svc.cfg.github_token {
        rate_keys.push(keys::ratelimit(token.expose()));
    }
    if let Some(app) = &svc.cfg.app {
        rate_keys.push(keys::ratelimit(&format!("app:{}", app.id)));
    }
    for key in rate_keys {
        let limit = svc.limited_until(&key).await.filter(|l| l.until_ms > now);
        let id = key.rsplit(':').next().unwrap_or_default().to_string();
        credentials.push(json!({
            // Only a spent (or low) budget is remembered today: how much is left is not kept.
            "id": id, "remaining": null, "limit": null,
            "reset_at": limit.as_ref().map(|l| format_rfc3339(l.until_ms)),
            "spent": limit.is_some_and(|l| !l.low),
        }));
    }
    let hooks: Vec<Value> = svc
        .recovery_states()
        .await
        .into_iter()
        .map(|r| {
            let run = r.state.last_run.unwrap_or_default();
            let ran = run.at_ms > 0;
            let permitted =
                r.state.not_permitted_until_ms.is_none_or(|u| u <= now) && run.permitted || !ran;
            json!({
                "hook_id": r.target.hook_id(),
                "target": r.target.label(),
                "last_run_at": ran.then(|| format_rfc3339(run.at_ms)),
                "checked_until": r.state.checked_until_ms.map(format_rfc3339),
                "failed_found": run.failed_found,
                "redelivered": run.redelivered,
                "gave_up": run.gave_up,
                "permitted": permitted,
            })
        })
        .collect();
    let config: Value = serde_json::from_str(config).unwrap_or(Value::Null);
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": config,
        "github": {"credentials": credentials},
        "recovery": {"enabled": svc.cfg.delivery_recovery, "hooks": hooks},
    })
    .to_string()
}

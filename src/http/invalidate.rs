//! The routes that drop cache entries: GitHub's webhook receiver and the admin purge routes.

use super::{respond, Request, Response, MAX_BODY};
use crate::cache::{keys, Store};
use crate::error::ApiError;
use crate::forge::github::payload::Payload;
use crate::forge::github::webhook::{self, EVENT_HEADER, SIGNATURE_HEADER};
use crate::forge::Fact;
use crate::json::Writer;
use crate::names::{FullName, Owner};
use crate::service::{Clock, Service, Transport};

/// `POST /v1/webhooks/github`. Checks run in the order DESIGN.md fixes: secret configured, body
/// size, signature over the raw bytes, then content type, event header and JSON.
pub async fn handle_post_webhook<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    req: &Request,
) -> Result<Response, ApiError> {
    let secret = svc
        .cfg
        .webhook_secret
        .as_ref()
        .ok_or(ApiError::NotConfigured("GITHUB_WEBHOOK_SECRET"))?;
    if req.body_too_large || req.body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge);
    }
    let signature = req.header(SIGNATURE_HEADER);
    if !webhook::signature_valid(secret.expose().as_bytes(), &req.body, signature) {
        return Err(ApiError::BadSignature);
    }
    let is_json = req
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::InvalidPayload(
            "deliveries must use content type application/json".into(),
        ));
    }
    let event = req
        .header(EVENT_HEADER)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::InvalidPayload("the X-GitHub-Event header is missing".into()))?;
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::InvalidPayload("the body is not JSON".into()))?;
    let payload =
        Payload::read(text).map_err(|_| ApiError::InvalidPayload("the body is not JSON".into()))?;
    // A delivery already applied is answered as it was, changing nothing (GitHub redelivers,
    // and anyone holding a signed body can replay it). Remembered by the SHA-256 of the signed
    // body, never by `X-GitHub-Delivery`: that id is not signed, so a replay could pick any id,
    // and a captured body sent first under a genuine delivery's id would swallow it.
    let inv = webhook::invalidation(event, &payload);
    let dropped = keys::invalidated(&inv);
    let remembered = keys::delivery(&req.body);
    if let Ok(Some(body)) = svc.store.get(&remembered).await {
        // Applied elsewhere (GitHub redelivers to any location): this isolate's memory still
        // drops its copies, which costs no I/O, so what it shows is no older than its KV.
        svc.forget(&dropped);
        svc.note_delivered(&dropped, true);
        return Ok(respond::no_store(200, body));
    }
    if inv.changes.is_empty() || !inv.installations.is_empty() {
        svc.invalidate(&dropped).await?;
    } else {
        svc.apply_changes(&inv.changes, &dropped).await?;
    }
    // Keys in the order serde_json's map wrote them before: sorted.
    let mut body = Writer::with_capacity(128);
    body.raw("{\"action\":");
    body.opt_str(inv.action.as_deref());
    body.raw(",\"event\":");
    body.str(event);
    body.byte(b',');
    write_invalidated(&mut body, &dropped);
    body.byte(b'}');
    let body = body.finish();
    // The hook it came from is read by delivery recovery from now on (signed, so genuine).
    svc.learn_hook(
        req.header("x-github-hook-id"),
        req.header("x-github-hook-installation-target-type"),
        &payload,
    )
    .await;
    // Only once applied: a failed delivery (503) is applied when GitHub redelivers it.
    let _ = svc
        .store
        .put(&remembered, &body, Some(DELIVERY_MEMORY_S))
        .await;
    svc.note_delivered(&dropped, false);
    Ok(respond::no_store(200, body))
}

/// How long an applied delivery is remembered (DESIGN.md: at least 1 hour).
const DELIVERY_MEMORY_S: u64 = 3600;

/// `DELETE /v1/cache/orgs/{owner}`: drops the owner's listing.
pub async fn handle_delete_org_cache<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    owner: &Owner,
) -> Result<Response, ApiError> {
    purge(svc, vec![keys::org(owner)]).await
}

/// `DELETE /v1/cache/repos/{owner}/{repo}`: drops the repository's entry and its owner's listing.
pub async fn handle_delete_repo_cache<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    name: &FullName,
) -> Result<Response, ApiError> {
    // A repository-level change: the owner's listing is revalidated in place.
    let dropped = vec![keys::repo(name), keys::org(&name.owner)];
    svc.apply_changes(&[(name.clone(), Fact::Changed)], &dropped)
        .await?;
    Ok(invalidated(&dropped))
}

async fn purge<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    dropped: Vec<String>,
) -> Result<Response, ApiError> {
    svc.invalidate(&dropped).await?;
    Ok(invalidated(&dropped))
}

/// `"invalidated":[…]`, the keys a change dropped.
fn write_invalidated(out: &mut Writer, dropped: &[String]) {
    out.raw("\"invalidated\":");
    out.array(dropped, |key, out| out.str(key));
}

/// 200 `{"invalidated":[…]}`.
fn invalidated(dropped: &[String]) -> Response {
    let mut body = Writer::with_capacity(64);
    body.byte(b'{');
    write_invalidated(&mut body, dropped);
    body.byte(b'}');
    respond::no_store(200, body.finish())
}

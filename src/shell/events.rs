//! Live events in the worker (DESIGN.md, "Live events"). The worker hands an admitted
//! subscription (`http::events`) to the owner's object; the object accepts the socket through
//! the Hibernation API, tagged with its scope, its `fields=` set and when its token ends (so an
//! idle socket costs no duration and a later life still knows it), sends what `owners::feed`
//! renders, answers `ping`, and closes a socket whose token ended with 4001.

use super::owners::DoOwners;
use super::JsClock;
use crate::error::ApiError;
use crate::fields::FieldSet;
use crate::http::events::{Subscription, MAX_SUBSCRIBERS, PROTOCOL};
use crate::http::respond;
use crate::model::Scope;
use crate::owners::events::PONG;
use crate::service::{Admit, Clock, LIMITER_PERIOD_S};
use worker::wasm_bindgen::JsValue;
use worker::{web_sys, Response, State, WebSocket, WebSocketPair};

/// The close code of a socket whose read token ended.
pub const TOKEN_ENDED: u16 = 4001;
/// The object answers this, without upgrading, when a subscriber would start a build the worker
/// has not charged the caller for.
pub const WOULD_START: u16 = 428;

/// The worker's side: the connection handed to the owner's object, which answers `101` with
/// the socket (or 429 when it holds too many). A subscriber that would start a build is charged
/// like a listing read that starts one, once.
pub(super) async fn connect(
    owners: Option<&DoOwners>,
    query: &str,
    limiter: Option<&dyn Admit>,
) -> Result<web_sys::Response, JsValue> {
    let (Some(owners), Some(sub)) = (owners, Subscription::from_query(query)) else {
        return refuse(&ApiError::Internal);
    };
    let mut resp = owners.subscribe(&sub.owner, query, false).await;
    if resp.as_ref().map(Response::status_code).ok() == Some(WOULD_START) {
        let admitted = match limiter {
            Some(l) => l.admit().await,
            None => true,
        };
        if !admitted {
            return refuse(&ApiError::ClientRateLimited {
                retry_after: LIMITER_PERIOD_S,
            });
        }
        resp = owners.subscribe(&sub.owner, query, true).await;
    }
    match resp {
        Ok(resp) => Ok(resp.into()),
        Err(e) => {
            worker::console_error!("owner directory {} unreachable: {e}", sub.owner);
            refuse(&ApiError::UpstreamUnavailable(String::new()))
        }
    }
}

fn refuse(err: &ApiError) -> Result<web_sys::Response, JsValue> {
    super::edge::response(&respond::error(err))
}

/// The object's 429 when it holds `MAX_SUBSCRIBERS` sockets already (before anything else is
/// done for the subscriber).
pub(super) fn full(state: &State) -> Option<worker::Result<Response>> {
    if state.get_websockets().len() < MAX_SUBSCRIBERS {
        return None;
    }
    let err = respond::error(&ApiError::TooManySubscribers);
    Some(Response::from_bytes(err.body).and_then(|resp| {
        let mut resp = resp.with_status(err.status);
        for (name, value) in &err.headers {
            resp.headers_mut().set(name, value)?;
        }
        Ok(resp)
    }))
}

/// The object's side: the socket accepted with its tags, its first `frames` sent, and the
/// `101` (selecting `forgelens.v1` when offered).
pub(super) fn accept(
    state: &State,
    sub: &Subscription,
    frames: &[String],
) -> worker::Result<Response> {
    let pair = WebSocketPair::new()?;
    let fields = format!("f{}", sub.fields.bits());
    let until = format!("u{}", sub.until_ms.unwrap_or(0));
    state.accept_websocket_with_tags(&pair.server, &[sub.scope.name(), &fields, &until]);
    for frame in frames {
        pair.server.send_with_str(frame)?;
    }
    let mut resp = Response::from_websocket(pair.client)?;
    if sub.protocol {
        resp.headers_mut().set("sec-websocket-protocol", PROTOCOL)?;
    }
    Ok(resp)
}

/// What a socket's tags say: its `fields=` set and when its token ends (0: never).
fn tagged(state: &State, ws: &WebSocket) -> (FieldSet, u64) {
    let tags = state.get_tags(ws);
    let value = |prefix: char| {
        tags.iter()
            .find_map(|t| t.strip_prefix(prefix)?.parse::<u64>().ok())
    };
    let fields = value('f')
        .and_then(|b| u16::try_from(b).ok())
        .and_then(FieldSet::from_bits)
        .unwrap_or_else(FieldSet::default_set);
    (fields, value('u').unwrap_or(0))
}

/// Closes `ws` with 4001 when its token ended by `now`; returns whether it did.
fn close_if_ended(ws: &WebSocket, until: u64, now: u64) -> bool {
    let ended = until > 0 && now >= until;
    if ended {
        let _ = ws.close(Some(TOKEN_ENDED), Some("the read token expired"));
    }
    ended
}

/// A frame to each socket of `scope` (every socket when `None`), rendered once per `fields=`
/// set among them; sockets whose token ended are closed instead.
pub(super) fn send(state: &State, scope: Option<Scope>, frame: &dyn Fn(FieldSet) -> String) {
    let sockets = match scope {
        Some(scope) => state.get_websockets_with_tag(scope.name()),
        None => state.get_websockets(),
    };
    let now = JsClock.now_ms();
    let mut rendered: Vec<(FieldSet, String)> = Vec::new();
    for ws in sockets {
        let (fields, until) = tagged(state, &ws);
        if close_if_ended(&ws, until, now) {
            continue;
        }
        let at = match rendered.iter().position(|(f, _)| *f == fields) {
            Some(at) => at,
            None => {
                rendered.push((fields, frame(fields)));
                rendered.len() - 1
            }
        };
        if let Some((_, text)) = rendered.get(at) {
            let _ = ws.send_with_str(text);
        }
    }
}

/// Sockets per scope (all, public, redacted), for the owner's status.
pub(super) fn subscribers(state: &State) -> [u32; 3] {
    [Scope::All, Scope::Public, Scope::Redacted]
        .map(|s| u32::try_from(state.get_websockets_with_tag(s.name()).len()).unwrap_or(u32::MAX))
}

/// A client's text frame: `ping` is answered `pong` (unless its token ended); others ignored.
pub(super) fn message(state: &State, ws: &WebSocket, text: &str) {
    let (_, until) = tagged(state, ws);
    if close_if_ended(ws, until, JsClock.now_ms()) {
        return;
    }
    if text == "ping" {
        let _ = ws.send_with_str(PONG);
    }
}

/// Closes the sockets whose token ended; returns when the next one ends (0: none does).
pub(super) fn close_ended(state: &State) -> u64 {
    let now = JsClock.now_ms();
    let mut next = 0;
    for ws in state.get_websockets() {
        let (_, until) = tagged(state, &ws);
        if !close_if_ended(&ws, until, now) && until > 0 && (next == 0 || until < next) {
            next = until;
        }
    }
    next
}

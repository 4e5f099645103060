//! The `OwnerDirectory` Durable Object (one per lowercased owner). The build logic is
//! `owners::directory` and its control logic `owners::object`; this file only wires them to the
//! object's storage and sockets (`storage.rs`, `events.rs`), its alarm, its tasks and `fetch` from
//! the worker (`owners.rs` is the stub).
//!
//! The request that starts a build pages at once, in a task of the object's own, while its
//! caller waits; the alarm drives whatever is left after that, and watches a build whose caller
//! left while a page was in flight. So a cold listing costs its pages and no alarm delay, a
//! caller can still return the moment its own budget ends (with 202) while the page in flight
//! goes on, and concurrent callers anywhere share one build. Waiting callers are woken when the
//! build completes, fails or pauses, not on a timer.
//!
//! When no build needs the alarm, it is set for the time the directory may delete its storage:
//! the stale time after its owner was last read (`build::reap_at`); a read moves that on.
//!
//! The object holds its outgoing messages (answers and requests) back until its earlier storage
//! writes are durable (the output gate), so a build a caller waits for stores nothing before its
//! first page goes out, and writes nothing after its answer until the answer is out.

use super::storage::{read, DoStorage, OWNER_KEY};
use super::{events, settings, upstream, JsClock};
use crate::forge::github::GitHub;
use crate::http::events::Subscription;
use crate::http::query;
use crate::names::Owner;
use crate::owners::build::{self, READ_KEY};
use crate::owners::directory::{Directory, Memory};
use crate::owners::drift::DAY_MS;
use crate::owners::object::{self, Host};
use crate::owners::status::status_json;
use crate::owners::{live, wire, Told};
use crate::service::{Clock, Service, KEYS_PER_INVOCATION};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::DurableObjectState;
use worker::{
    console_error, durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage,
};

#[durable_object]
pub struct OwnerDirectory {
    state: State,
    env: Env,
    /// Shared with the drivers requests start: they outlive the request that started them.
    shared: Rc<Shared>,
}

/// What the object's requests, its alarm and the drivers they start share.
#[derive(Default)]
struct Shared {
    memory: RefCell<Memory>,
    /// A request's driver is spawned but has not begun (so it is not `running` yet).
    spawned: Cell<bool>,
    /// An alarm may be armed (this life set one that has not fired).
    armed: Cell<bool>,
    /// The owner this object has stored under `OWNER_KEY` in this life (read once, not per request).
    stored_owner: RefCell<Option<String>>,
    /// The last read noted under `READ_KEY` in this life (0: none yet).
    read_at: Cell<u64>,
    /// When the first subscriber's read token known in this life ends (0: none): the alarm is
    /// never moved past it, so that socket is closed on time.
    token_ends_at: Cell<u64>,
}

impl Shared {
    /// Whether a driver pages or is about to.
    fn driving(&self) -> bool {
        self.memory.borrow().is_running() || self.spawned.get()
    }
}

impl DurableObject for OwnerDirectory {
    fn new(state: State, env: Env) -> Self {
        OwnerDirectory {
            state,
            env,
            shared: Rc::default(),
        }
    }

    /// `GET https://owners/{listing|refresh|invalidate}?owner=…&wait_ms=…` from the worker,
    /// `POST https://owners/forget?owner=…` with the owner's repository keys, one per line, and
    /// `POST https://owners/change?owner=…` with repository-level changes (`live::encode_changes`).
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let url = req.inner().url();
        let pairs = query::parse(query::from_url(&url));
        let param = |k: &str| query::values(&pairs, k).first().copied().unwrap_or("");
        let Ok(owner) = Owner::parse(param("owner")) else {
            return Response::error("owner is missing or invalid", 400);
        };
        let wait_ms: u64 = param("wait_ms").parse().unwrap_or(0);
        let start = param("start") != "0";
        let settings = settings(&self.env);
        let (config, kv) = match settings.ready() {
            Ok(parts) => parts,
            Err(why) => return Response::error(why, 500),
        };
        let shared = &self.shared;
        if shared.stored_owner.borrow().as_deref() != Some(owner.as_str()) {
            let stored = read(&self.state.storage(), OWNER_KEY).await;
            if stored.as_deref() != Some(owner.as_str()) {
                let _ = self
                    .state
                    .storage()
                    .put_raw(OWNER_KEY, owner.as_str())
                    .await;
            }
            *shared.stored_owner.borrow_mut() = Some(owner.as_str().to_string());
        }
        if req.path() == "/listing" || req.path() == "/events" {
            let now = JsClock.now_ms();
            if build::note_read(shared.read_at.get(), now, config.stale_ttl) {
                let _ = self
                    .state
                    .storage()
                    .put_raw(READ_KEY, now.to_string().as_str())
                    .await;
                shared.read_at.set(now);
                // An alarm set in an earlier life (a paused build's) is left where it is.
                let unarmed = !shared.armed.get()
                    && matches!(self.state.storage().get_alarm().await, Ok(None));
                if unarmed {
                    let due = build::reap_at(now, config.stale_ttl);
                    wake(&self.state, shared, due.saturating_sub(now)).await;
                }
            }
        }
        let storage = DoStorage::new(&self.state, shared.read_at.get(), &owner);
        let forge = GitHub::from_config(config);
        let svc = Service::new(config, kv, &upstream::Fetcher, &JsClock, &forge)
            .with_signer(&super::signer::WebCryptoSigner);
        let dir = Directory::new(&svc, &storage, &self.shared.memory, &owner);
        match req.path().as_str() {
            "/listing" => {
                let host = DoHost::new(&self.state, shared);
                let spawn = |stop_at_ms| {
                    self.drive_now(&owner, stop_at_ms);
                    None
                };
                let answer = object::listing(&dir, &host, wait_ms, start, &spawn).await;
                let (status, body) = wire::encode(&answer);
                Ok(Response::ok(body)?.with_status(status))
            }
            "/refresh" => {
                let half_fresh = config.fresh_ttl * 1000 / 2;
                if !dir.recently_built(half_fresh) && dir.start().await {
                    wake(&self.state, &self.shared, 0).await;
                }
                Response::empty().map(|r| r.with_status(204))
            }
            "/forget" => {
                let text = req.text().await.unwrap_or_default();
                // One key per line: keys hold no line breaks (`keys::repo_owner` checks each).
                let keys: Vec<String> = text.lines().map(str::to_string).collect();
                let own = |k: &String| {
                    crate::cache::keys::repo_owner(k).is_some_and(|o| o.key() == owner.key())
                };
                if keys.is_empty() || keys.len() > KEYS_PER_INVOCATION || !keys.iter().all(own) {
                    return Response::error("keys are missing, too many or not the owner's", 400);
                }
                // Unmarked: these are an owner-level invalidation's repository keys (an
                // installation change), whose owner's listing went first, marked; a marker per key
                // would double the KV operations of a delivery that must be answered in 10 s.
                match svc.drop_keys(&[], &keys).await {
                    Ok(()) => Response::empty().map(|r| r.with_status(204)),
                    Err(_) => Response::error("KV refused the deletes", 503),
                }
            }
            "/change" => {
                let text = req.text().await.unwrap_or_default();
                let Some(changes) = live::decode_changes(&text).filter(|c| !c.is_empty()) else {
                    return Response::error("changes are missing or malformed", 400);
                };
                let host = DoHost::new(&self.state, shared);
                let Ok(told) = object::change(&dir, &host, &changes).await else {
                    return Response::error("KV refused the delete", 503);
                };
                let status = match told {
                    Told::Applied => 200,
                    Told::Queued => 202,
                    Told::NoListing => 204,
                };
                Response::empty().map(|r| r.with_status(status))
            }
            "/invalidate" => {
                let at_ms = param("at_ms").parse().unwrap_or(0);
                if dir.invalidate(at_ms).await {
                    wake(&self.state, &self.shared, 0).await;
                }
                Response::empty().map(|r| r.with_status(204))
            }
            "/delivered" => {
                dir.delivered(param("replayed") == "1").await;
                Response::empty().map(|r| r.with_status(204))
            }
            "/events" => {
                let Some(sub) = Subscription::from_query(query::from_url(&url)) else {
                    return Response::error("the subscription is malformed", 400);
                };
                if let Some(full) = events::full(&self.state) {
                    return full;
                }
                let host = DoHost::new(&self.state, shared);
                let asked = (sub.scope, sub.fields, sub.since);
                let start = param("start") == "1";
                let Some(frames) = object::subscribe(&dir, &host, asked, start).await else {
                    return Response::empty().map(|r| r.with_status(events::WOULD_START));
                };
                let resp = events::accept(&self.state, &sub, &frames)?;
                if let Some(until) = sub.until_ms {
                    let known = shared.token_ends_at.get();
                    if known == 0 || until < known {
                        shared.token_ends_at.set(until);
                        arm_by(&self.state, shared, until).await;
                    }
                }
                Ok(resp)
            }
            "/status" => Response::ok(status_json(&dir.report().await)),
            _ => Response::error("no such operation", 404),
        }
    }

    /// Drives the build on; re-arms while pages are left or a rate limit must pass.
    async fn alarm(&self) -> Result<Response> {
        // This alarm has fired; any set from now on is a new one.
        self.shared.armed.set(false);
        let owner = read(&self.state.storage(), OWNER_KEY)
            .await
            .and_then(|o| Owner::parse(&o).ok());
        let Some(owner) = owner else {
            return Response::empty();
        };
        let settings = settings(&self.env);
        let (config, kv) = match settings.ready() {
            Ok(parts) => parts,
            Err(why) => {
                console_error!("owner directory {owner} not driven: {why}");
                return Response::empty();
            }
        };
        let forge = GitHub::from_config(config);
        let svc = Service::new(config, kv, &upstream::Fetcher, &JsClock, &forge)
            .with_signer(&super::signer::WebCryptoSigner);
        let storage = DoStorage::new(&self.state, self.shared.read_at.get(), &owner);
        let dir = Directory::new(&svc, &storage, &self.shared.memory, &owner);
        object::alarm(&dir, &DoHost::new(&self.state, &self.shared)).await;
        let next = events::close_ended(&self.state);
        self.shared.token_ends_at.set(next);
        if next > 0 {
            arm_by(&self.state, &self.shared, next).await;
        }
        Response::empty()
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if let WebSocketIncomingMessage::String(text) = message {
            events::message(&self.state, &ws, &text);
        }
        Ok(())
    }

    /// The client closed: so does the object's end.
    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}

impl OwnerDirectory {
    /// Pages now, in a task of the object's own, while the caller who started the build waits
    /// (until `stop_at_ms`); then the alarm takes over.
    fn drive_now(&self, owner: &Owner, stop_at_ms: u64) {
        // The task needs a `State` of its own; this one is borrowed from the object.
        let raw: &JsValue = self.state.as_raw().as_ref();
        let state = State::from(raw.clone().unchecked_into::<DurableObjectState>());
        let env = self.env.clone();
        let shared = Rc::clone(&self.shared);
        let owner = owner.clone();
        shared.spawned.set(true);
        worker::wasm_bindgen_futures::spawn_local(async move {
            // The drive is `running` from its first step on, before this task first yields.
            shared.spawned.set(false);
            drive(&env, &state, &shared, &owner, stop_at_ms).await;
        });
    }
}

/// One drive of `owner`'s build with a service of its own (a request's task), and what it
/// leaves (`object::drive`).
async fn drive(env: &Env, state: &State, shared: &Shared, owner: &Owner, stop_at_ms: u64) {
    let settings = settings(env);
    let (config, kv) = match settings.ready() {
        Ok(parts) => parts,
        Err(why) => return console_error!("owner directory {owner} not driven: {why}"),
    };
    let forge = GitHub::from_config(config);
    let svc = Service::new(config, kv, &upstream::Fetcher, &JsClock, &forge)
        .with_signer(&super::signer::WebCryptoSigner);
    let storage = DoStorage::new(state, shared.read_at.get(), owner);
    let dir = Directory::new(&svc, &storage, &shared.memory, owner);
    object::drive(&dir, &DoHost::new(state, shared), stop_at_ms).await;
}

/// The object's alarm, tasks and noted read, as the control logic's `Host`.
struct DoHost<'a> {
    state: &'a State,
    shared: &'a Shared,
}

impl<'a> DoHost<'a> {
    fn new(state: &'a State, shared: &'a Shared) -> DoHost<'a> {
        DoHost { state, shared }
    }
}

impl Host for DoHost<'_> {
    fn arm(&self, in_ms: u64) -> LocalBoxFuture<'_, ()> {
        Box::pin(wake(self.state, self.shared, in_ms))
    }
    fn armed(&self) -> bool {
        self.shared.armed.get()
    }
    fn driving(&self) -> bool {
        self.shared.driving()
    }
    fn read_at(&self) -> LocalBoxFuture<'_, u64> {
        Box::pin(noted_read(self.state, self.shared))
    }
    fn reap(&self) -> LocalBoxFuture<'_, ()> {
        Box::pin(reap(self.state, self.shared))
    }
}

/// The last read noted, from memory or storage; an object that never noted one (it only ever
/// refreshed) counts from now.
async fn noted_read(state: &State, shared: &Shared) -> u64 {
    if shared.read_at.get() == 0 {
        let stored = read(&state.storage(), READ_KEY).await;
        let at = match stored.and_then(|t| t.parse().ok()) {
            Some(at) => at,
            None => {
                let now = JsClock.now_ms();
                let _ = state
                    .storage()
                    .put_raw(READ_KEY, now.to_string().as_str())
                    .await;
                now
            }
        };
        shared.read_at.set(at);
    }
    shared.read_at.get()
}

/// Everything the object stored goes (pages of a failed build, the checkpoint, who it is): a new
/// life, nothing stored, nothing remembered. Not while subscribers are connected: they read the
/// listing, so the read is noted now and the alarm looks again in a day.
async fn reap(state: &State, shared: &Shared) {
    if !state.get_websockets().is_empty() {
        let now = JsClock.now_ms();
        let _ = state
            .storage()
            .put_raw(READ_KEY, now.to_string().as_str())
            .await;
        shared.read_at.set(now);
        return wake(state, shared, DAY_MS).await;
    }
    if let Err(e) = state.storage().delete_all().await {
        return console_error!("owner directory storage not reaped: {e}");
    }
    *shared.memory.borrow_mut() = Memory::default();
    *shared.stored_owner.borrow_mut() = None;
    shared.read_at.set(0);
}

/// Arms the alarm `in_ms` from now (an alarm already set is moved), but never past the end of a
/// subscriber's token known in this life.
async fn wake(state: &State, shared: &Shared, in_ms: u64) {
    shared.armed.set(true);
    let ends = shared.token_ends_at.get();
    let now = JsClock.now_ms();
    let in_ms = if ends > 0 {
        in_ms.min(ends.saturating_sub(now))
    } else {
        in_ms
    };
    let at = Duration::from_millis(in_ms);
    if let Err(e) = state.storage().set_alarm(at).await {
        console_error!("owner directory alarm not set: {e}");
    }
}

/// Makes the alarm fire by `at_ms` (epoch ms): set when none is, or when it is set for later.
async fn arm_by(state: &State, shared: &Shared, at_ms: u64) {
    let set = state.storage().get_alarm().await.ok().flatten();
    if set.is_some_and(|t| u64::try_from(t).is_ok_and(|t| t <= at_ms)) {
        return;
    }
    wake(state, shared, at_ms.saturating_sub(JsClock.now_ms())).await;
}

//! The `OwnerDirectory` Durable Object (one per lowercased owner) and the worker's stub side of
//! the `Owners` seam. The build logic is `owners::directory`; this file only wires it to the
//! object's storage, its alarm and `fetch` between worker and object.
//!
//! Alarms drive builds; requests only start them and wait. So a caller can return the moment its
//! own budget ends (with 202) while the page in flight goes on, and concurrent callers anywhere
//! share one build.

use super::kv::Kv;
use super::{background, upstream, JsClock};
use crate::forge::github::GitHub;
use crate::http::query;
use crate::names::Owner;
use crate::owners::directory::{Checkpoints, Directory, Drive, Memory};
use crate::owners::{wire, Answer, Owners};
use crate::service::{Clock, Service};
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use std::time::Duration;
use worker::js_sys::Map;
use worker::wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, DurableObject, Env, Request, Response, Result, State, Storage,
};

/// The Durable Object binding name fixed by DESIGN.md.
pub const OWNERS_BINDING: &str = crate::service::OWNERS_BINDING;
/// Pages one alarm invocation fetches before re-arming: each invocation has its own subrequest
/// budget (50 on the Free plan), and a few KV operations come on top.
const PAGES_PER_ALARM: u32 = 40;
/// Wall time one alarm invocation pages for before re-arming.
const ALARM_BUDGET_MS: u64 = 120_000;
/// How often a waiting caller looks at the build.
const POLL_MS: u64 = 25;
/// Where the object remembers whose directory it is (alarms are not told).
const OWNER_KEY: &str = "owner";

#[durable_object]
pub struct OwnerDirectory {
    state: State,
    env: Env,
    memory: RefCell<Memory>,
    /// The owner this object has stored under `OWNER_KEY` in this life (read once, not per request).
    stored_owner: RefCell<Option<String>>,
}

/// The object's storage as the directory's `Checkpoints`.
struct DoStorage(Storage);

/// Values are JavaScript strings, read and written raw: `Storage::get` and `put` would go
/// through `serde_wasm_bindgen`, whose number handling formats floats (~14 KB of wasm).
impl Checkpoints for DoStorage {
    async fn get(&self, key: &str) -> Option<String> {
        let found = self.0.get_multiple(vec![key]).await.ok()?;
        found.get(&JsValue::from_str(key)).as_string()
    }
    async fn get_many(&self, keys: &[String]) -> Vec<Option<String>> {
        let mut out = Vec::with_capacity(keys.len());
        // The storage API takes at most 128 keys per call.
        for chunk in keys.chunks(128) {
            let found: Option<Map> = self.0.get_multiple(chunk.to_vec()).await.ok();
            for key in chunk {
                let value = found
                    .as_ref()
                    .map(|m| m.get(&JsValue::from_str(key)))
                    .and_then(|v| v.as_string());
                out.push(value);
            }
        }
        out
    }
    async fn put(&self, key: &str, value: &str) -> std::result::Result<(), String> {
        self.0.put_raw(key, value).await.map_err(|e| e.to_string())
    }
    async fn clear(&self) {
        let owner = self.get(OWNER_KEY).await;
        if let Err(e) = self.0.delete_all().await {
            console_error!("owner directory storage not cleared: {e}");
        }
        if let Some(owner) = owner {
            let _ = self.0.put_raw(OWNER_KEY, owner).await;
        }
    }
}

impl DurableObject for OwnerDirectory {
    fn new(state: State, env: Env) -> Self {
        OwnerDirectory {
            state,
            env,
            memory: RefCell::new(Memory::default()),
            stored_owner: RefCell::new(None),
        }
    }

    /// `GET https://owners/{listing|refresh|invalidate}?owner=…&wait_ms=…` from the worker.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.inner().url();
        let pairs = query::parse(query::from_url(&url));
        let param = |k: &str| query::values(&pairs, k).first().copied().unwrap_or("");
        let Ok(owner) = Owner::parse(param("owner")) else {
            return Response::error("owner is missing or invalid", 400);
        };
        let wait_ms: u64 = param("wait_ms").parse().unwrap_or(0);
        let storage = DoStorage(self.state.storage());
        if self.stored_owner.borrow().as_deref() != Some(owner.as_str()) {
            if storage.get(OWNER_KEY).await.as_deref() != Some(owner.as_str()) {
                let _ = storage.put(OWNER_KEY, owner.as_str()).await;
            }
            *self.stored_owner.borrow_mut() = Some(owner.as_str().to_string());
        }
        let (config, kv) = match background(&self.env) {
            Ok(parts) => parts,
            Err(why) => return Response::error(why, 500),
        };
        let forge = GitHub::from_config(&config);
        let svc = Service::new(&config, &kv, &upstream::Fetcher, &JsClock, &forge)
            .with_signer(&super::signer::WebCryptoSigner);
        let dir = Directory::new(&svc, &storage, &self.memory, &owner);
        match req.path().as_str() {
            "/listing" => {
                let answer = self.listing(&dir, wait_ms).await;
                let (status, body) = wire::encode(owner.as_str(), &answer);
                Ok(Response::ok(body)?.with_status(status))
            }
            "/refresh" => {
                let half_fresh = config.fresh_ttl * 1000 / 2;
                if !dir.recently_built(half_fresh) && dir.start().await {
                    self.wake(0).await;
                }
                Response::empty().map(|r| r.with_status(204))
            }
            "/invalidate" => {
                let at_ms = param("at_ms").parse().unwrap_or(0);
                if dir.invalidate(at_ms).await {
                    self.wake(0).await;
                }
                Response::empty().map(|r| r.with_status(204))
            }
            _ => Response::error("no such operation", 404),
        }
    }

    /// Drives the build on; re-arms while pages are left or a rate limit must pass.
    async fn alarm(&self) -> Result<Response> {
        let storage = DoStorage(self.state.storage());
        let owner = storage
            .get(OWNER_KEY)
            .await
            .and_then(|o| Owner::parse(&o).ok());
        let (Some(owner), Ok((config, kv))) = (owner, background(&self.env)) else {
            return Response::empty();
        };
        let forge = GitHub::from_config(&config);
        let svc = Service::new(&config, &kv, &upstream::Fetcher, &JsClock, &forge)
            .with_signer(&super::signer::WebCryptoSigner);
        let dir = Directory::new(&svc, &storage, &self.memory, &owner);
        let stop_at = JsClock.now_ms() + ALARM_BUDGET_MS;
        match dir.drive(PAGES_PER_ALARM, stop_at).await {
            Drive::More => self.wake(0).await,
            Drive::Paused { until_ms } => {
                self.wake(until_ms.saturating_sub(JsClock.now_ms())).await;
            }
            Drive::Done | Drive::Failed | Drive::Idle => {}
        }
        Response::empty()
    }
}

impl OwnerDirectory {
    /// Starts (or joins) the build and waits for it up to `wait_ms`, looking every `POLL_MS`.
    async fn listing(
        &self,
        dir: &Directory<'_, Kv, upstream::Fetcher, JsClock, DoStorage>,
        wait_ms: u64,
    ) -> Answer {
        if let Some(answer) = dir.immediate() {
            return answer;
        }
        let seen = self.memory.borrow().completions();
        if dir.start().await {
            self.wake(0).await;
        }
        let deadline = JsClock.now_ms().saturating_add(wait_ms);
        loop {
            if let Some(answer) = self.memory.borrow().answer_since(seen) {
                return answer;
            }
            if let Some(answer) = dir.immediate() {
                return answer;
            }
            if JsClock.now_ms() >= deadline {
                return dir.status().await;
            }
            JsClock.sleep(POLL_MS).await;
        }
    }

    /// Arms the alarm `in_ms` from now (an alarm already set is moved).
    async fn wake(&self, in_ms: u64) {
        let at = Duration::from_millis(in_ms);
        if let Err(e) = self.state.storage().set_alarm(at).await {
            console_error!("owner directory alarm not set: {e}");
        }
    }
}

/// The worker's side: one stub call per question, answered by the owner's object.
pub struct DoOwners {
    env: Env,
}

impl DoOwners {
    /// The directories, or `None` when the binding is missing (a configuration error).
    pub fn bound(env: &Env) -> Option<DoOwners> {
        env.durable_object(OWNERS_BINDING).ok()?;
        Some(DoOwners { env: env.clone() })
    }

    /// `op` with one number (`wait_ms` or `at_ms`) for the owner's object.
    async fn ask(&self, owner: &Owner, op: &str, arg: (&str, u64)) -> Result<(u16, String)> {
        let ns = self.env.durable_object(OWNERS_BINDING)?;
        let stub = ns.id_from_name(&owner.key())?.get_stub()?;
        let (name, value) = arg;
        let url = format!(
            "https://owners/{op}?owner={}&{name}={value}",
            owner.as_str()
        );
        let mut resp = stub.fetch_with_str(&url).await?;
        Ok((resp.status_code(), resp.text().await?))
    }

    async fn listing_now(&self, owner: &Owner, wait_ms: u64) -> Answer {
        match self.ask(owner, "listing", ("wait_ms", wait_ms)).await {
            Ok((status, body)) => wire::decode(status, body),
            Err(e) => {
                console_error!("owner directory {owner} unreachable: {e}");
                Answer::Failed(crate::error::ApiError::UpstreamUnavailable(String::new()))
            }
        }
    }

    async fn tell(
        &self,
        owner: &Owner,
        op: &str,
        at_ms: u64,
    ) -> std::result::Result<(), crate::error::ApiError> {
        match self.ask(owner, op, ("at_ms", at_ms)).await {
            Ok((204, _)) => Ok(()),
            other => {
                console_error!(
                    "owner directory {owner} refused {op}: {:?}",
                    other.map(|(s, _)| s)
                );
                Err(crate::error::ApiError::StoreUnavailable)
            }
        }
    }
}

impl Owners for DoOwners {
    fn listing<'a>(&'a self, owner: &'a Owner, wait_ms: u64) -> LocalBoxFuture<'a, Answer> {
        Box::pin(self.listing_now(owner, wait_ms))
    }
    fn refresh<'a>(
        &'a self,
        owner: &'a Owner,
    ) -> LocalBoxFuture<'a, std::result::Result<(), crate::error::ApiError>> {
        Box::pin(self.tell(owner, "refresh", 0))
    }
    fn invalidate<'a>(
        &'a self,
        owner: &'a Owner,
        at_ms: u64,
    ) -> LocalBoxFuture<'a, std::result::Result<(), crate::error::ApiError>> {
        Box::pin(self.tell(owner, "invalidate", at_ms))
    }
}

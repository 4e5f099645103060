//! One owner's directory: starts, drives, checkpoints, restarts and completes listing builds.
//! Plain Rust over two seams, the object's `Checkpoints` storage and the read path's `Service`
//! (upstream calls, rate-limit memory, guarded KV writes), so the same state machine runs in the
//! Durable Object and natively in tests.

use super::build::{self, AfterFailure, Checkpoint, BUILD_KEY};
use super::{Answer, Progress};
use crate::cache::entry::{self, NOT_FOUND_TTL};
use crate::cache::{keys, Store};
use crate::error::ApiError;
use crate::forge::UpstreamFailure;
use crate::json::Codec;
use crate::model::{OwnerListing, Repo};
use crate::names::Owner;
use crate::service::{Clock, Service, Transport};
use std::cell::RefCell;

/// How long a failed build is answered from memory before a request may resume it.
pub const FAILURE_MEMORY_MS: u64 = 10_000;

/// The object's durable storage: the checkpoint and one value per page.
#[allow(async_fn_in_trait)]
pub trait Checkpoints {
    async fn get(&self, key: &str) -> Option<String>;
    /// Values of `keys`, in order.
    async fn get_many(&self, keys: &[String]) -> Vec<Option<String>>;
    /// # Errors
    /// Why the value was not stored.
    async fn put(&self, key: &str, value: &str) -> Result<(), String>;
    /// Drops the checkpoint and every page.
    async fn clear(&self);
}

/// What the object keeps between requests while it lives (all requests and alarms share it).
#[derive(Debug, Default)]
pub struct Memory {
    /// Bumped by every invalidation; a page answered under an older generation is discarded.
    generation: u64,
    /// A driver is paging.
    running: bool,
    /// The build in progress, once read from storage (`loaded`).
    checkpoint: Option<Checkpoint>,
    loaded: bool,
    /// The last completed answer and until when it is fresh: KV is eventually consistent, so a
    /// caller who just missed it in KV is answered here instead of starting another build.
    recent: Option<Recent>,
    /// A failed (or rate-limited) build and until when that is the answer.
    failed: Option<(ApiError, u64)>,
    /// Builds completed in this object's life, and the last one's answer: callers who waited
    /// for a build get its answer even when it is too old to be handed to anyone else.
    completions: u64,
    last: Option<Answer>,
}

/// A completed build's answer, kept while it is fresh.
#[derive(Debug, Clone)]
struct Recent {
    /// When the build sent its first page.
    started_at_ms: u64,
    fresh_until_ms: u64,
    answer: Answer,
}

impl Memory {
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// How many builds have completed; see `answer_since`.
    pub fn completions(&self) -> u64 {
        self.completions
    }

    /// The answer of the latest build when one completed after `seen` completions.
    pub fn answer_since(&self, seen: u64) -> Option<Answer> {
        (self.completions > seen)
            .then(|| self.last.clone())
            .flatten()
    }
}

/// How a drive ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drive {
    /// The listing is complete (or the owner does not exist).
    Done,
    /// Pages are left; drive again (the object re-arms its alarm).
    More,
    /// A spent rate limit: drive again at this time.
    Paused { until_ms: u64 },
    /// The build failed; it resumes from its checkpoint on a later request.
    Failed,
    /// Another driver is paging, or there is nothing to build.
    Idle,
}

pub struct Directory<'a, S, T, C, K> {
    pub svc: &'a Service<'a, S, T, C>,
    pub storage: &'a K,
    pub mem: &'a RefCell<Memory>,
    pub owner: &'a Owner,
}

/// Clears `running` however a drive ends, including when its future is dropped.
struct Running<'m>(&'m RefCell<Memory>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().running = false;
    }
}

impl<'a, S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'a, S, T, C, K> {
    pub fn new(
        svc: &'a Service<'a, S, T, C>,
        storage: &'a K,
        mem: &'a RefCell<Memory>,
        owner: &'a Owner,
    ) -> Self {
        Directory {
            svc,
            storage,
            mem,
            owner,
        }
    }

    fn now(&self) -> u64 {
        self.svc.clock.now_ms()
    }

    /// An answer that needs no paging: a fresh completed build, or a remembered failure.
    pub fn immediate(&self) -> Option<Answer> {
        let now = self.now();
        let mut mem = self.mem.borrow_mut();
        if let Some(r) = &mem.recent {
            if now < r.fresh_until_ms {
                return Some(r.answer.clone());
            }
            mem.recent = None;
        }
        match &mem.failed {
            Some((err, until)) if now < *until => {
                let mut err = err.clone();
                if let ApiError::RateLimited { retry_after } = &mut err {
                    *retry_after = until.saturating_sub(now).div_ceil(1000).max(1);
                }
                Some(Answer::Failed(err))
            }
            _ => None,
        }
    }

    /// Whether a build completed here less than `within_ms` after it started (a refresh asked
    /// for then would only repeat it).
    pub fn recently_built(&self, within_ms: u64) -> bool {
        let now = self.now();
        self.mem
            .borrow()
            .recent
            .as_ref()
            .is_some_and(|r| now < r.started_at_ms.saturating_add(within_ms))
    }

    /// Where the build stands for a caller: complete, failed, or building with its progress.
    pub async fn status(&self) -> Answer {
        if let Some(answer) = self.immediate() {
            return answer;
        }
        let now = self.now();
        let cp = self
            .checkpoint()
            .await
            .unwrap_or_else(|| Checkpoint::new(now));
        Answer::Building(Progress {
            fetched: cp.fetched,
            total: cp.total,
            started_at_ms: if cp.pages == 0 { now } else { cp.started_at_ms },
            retry_after_s: build::retry_after_s(&cp, now),
        })
    }

    /// Makes sure a build exists (resuming a stored one). Returns whether a driver must be
    /// woken: nobody is paging yet.
    pub async fn start(&self) -> bool {
        if self.checkpoint().await.is_none() {
            let cp = Checkpoint::new(self.now());
            self.save(&cp).await;
        }
        let mut mem = self.mem.borrow_mut();
        mem.failed = None;
        !mem.running
    }

    /// The truth changed at `at_ms`: forget completed answers and failures, and restart a build
    /// in progress from the first page. Returns whether a driver must be woken.
    pub async fn invalidate(&self, at_ms: u64) -> bool {
        let in_progress = {
            let mut mem = self.mem.borrow_mut();
            mem.generation += 1;
            mem.recent = None;
            mem.failed = None;
            mem.running
        };
        let had_build = in_progress || self.checkpoint().await.is_some();
        self.storage.clear().await;
        {
            let mut mem = self.mem.borrow_mut();
            mem.checkpoint = None;
            mem.loaded = true;
        }
        if had_build {
            // Its answer counts as younger than the invalidation even when the first page goes
            // out within the same millisecond (KV's markers compare these times).
            let not_before = self.now().max(at_ms.saturating_add(1));
            self.save(&Checkpoint::new(not_before)).await;
        }
        had_build && !in_progress
    }

    /// Pages until the build completes, fails, `max_pages` requests were made, or `stop_at_ms`
    /// passed (checked between pages). Only one drive pages at a time.
    pub async fn drive(&self, max_pages: u32, stop_at_ms: u64) -> Drive {
        {
            let mut mem = self.mem.borrow_mut();
            if mem.running {
                return Drive::Idle;
            }
            mem.running = true;
        }
        let _running = Running(self.mem);
        let mut requests = 0;
        loop {
            let Some(mut cp) = self.checkpoint().await else {
                return Drive::Idle;
            };
            if requests >= max_pages || (requests > 0 && self.now() >= stop_at_ms) {
                return Drive::More;
            }
            if cp.pages >= build::MAX_PAGES {
                return self
                    .fail(&cp, ApiError::Upstream("too many pages".into()))
                    .await;
            }
            let generation = self.mem.borrow().generation;
            if cp.pages == 0 && cp.tries == 0 {
                // The answer will be as old as its first request.
                cp.started_at_ms = cp.started_at_ms.max(self.now());
            }
            requests += 1;
            let outcome = self
                .svc
                .owner_page(self.owner, cp.cursor.as_deref(), cp.page_size)
                .await;
            if self.mem.borrow().generation != generation {
                continue; // invalidated meanwhile: this page belongs to a discarded build
            }
            let page = match outcome {
                Ok(page) => page,
                Err(UpstreamFailure::NotFound) if cp.pages == 0 => {
                    return self.finish_not_found(&cp).await;
                }
                Err(failure) => match build::after_failure(&cp, &failure, self.now()) {
                    AfterFailure::Retry { page_size } => {
                        cp.tries = if page_size == cp.page_size {
                            cp.tries + 1
                        } else {
                            0
                        };
                        cp.page_size = page_size;
                        self.save(&cp).await;
                        continue;
                    }
                    AfterFailure::PauseUntil { at_ms } => {
                        let retry_after = at_ms.saturating_sub(self.now()).div_ceil(1000).max(1);
                        self.mem.borrow_mut().failed =
                            Some((ApiError::RateLimited { retry_after }, at_ms));
                        return Drive::Paused { until_ms: at_ms };
                    }
                    AfterFailure::Fail => {
                        let err = self.svc.failure_to_error(failure);
                        return self.fail(&cp, err).await;
                    }
                },
            };
            let text = page.repos.to_json();
            if let Err(why) = self.storage.put(&build::page_key(cp.pages), &text).await {
                return self.fail(&cp, ApiError::Upstream(why)).await;
            }
            cp.pages += 1;
            cp.fetched += page.repos.len() as u64;
            cp.total = cp.total.or(page.total);
            cp.login.get_or_insert(page.login);
            cp.tries = 0;
            match page.next_cursor {
                None => return self.finish(&cp).await,
                Some(next) if Some(&next) == cp.cursor.as_ref() => {
                    let err = ApiError::Upstream("cursor did not advance".into());
                    return self.fail(&cp, err).await;
                }
                Some(next) => {
                    cp.cursor = Some(next);
                    self.save(&cp).await;
                }
            }
        }
    }

    /// Every page has arrived: one listing, one KV write, the checkpoint dropped.
    async fn finish(&self, cp: &Checkpoint) -> Drive {
        let keys: Vec<String> = (0..cp.pages).map(build::page_key).collect();
        let mut repos: Vec<Repo> = Vec::with_capacity(usize::try_from(cp.fetched).unwrap_or(0));
        for text in self.storage.get_many(&keys).await {
            let page = text.and_then(|t| Vec::<Repo>::from_json(&t).ok());
            let Some(page) = page else {
                // A page went missing from storage: start over rather than answer a hole.
                self.storage.clear().await;
                self.forget_checkpoint();
                return self
                    .fail(cp, ApiError::Upstream("a stored page was lost".into()))
                    .await;
            };
            repos.extend(page);
        }
        crate::service::sort_by_name(&mut repos);
        let login = cp
            .login
            .clone()
            .unwrap_or_else(|| self.owner.as_str().to_string());
        let listing = OwnerListing { login, repos };
        let text = entry::encode(cp.started_at_ms, Some(&listing));
        let cfg = self.svc.cfg;
        let ttl = (!cfg.is_pinned(self.owner)).then_some(cfg.stale_ttl);
        let superseded = self
            .svc
            .store_fetched(
                vec![(keys::org(self.owner), text.clone(), ttl)],
                cp.started_at_ms,
            )
            .await;
        // Superseded by an invalidation this directory did not hear of: answer the callers who
        // waited for it, but remember nothing.
        let fresh_until = if superseded > 0 {
            0
        } else {
            cp.started_at_ms
                .saturating_add(cfg.fresh_ttl.saturating_mul(1000))
        };
        self.complete(cp, Answer::Complete(text), fresh_until).await
    }

    /// The owner does not exist: remembered for a minute, like any not-found answer. A pinned
    /// owner's old listing is kept (the cron never replaces it with nothing).
    async fn finish_not_found(&self, cp: &Checkpoint) -> Drive {
        if !self.svc.cfg.is_pinned(self.owner) {
            let text = entry::encode::<OwnerListing>(cp.started_at_ms, None);
            self.svc
                .store_fetched(
                    vec![(keys::org(self.owner), text, Some(NOT_FOUND_TTL))],
                    cp.started_at_ms,
                )
                .await;
        }
        let until = cp.started_at_ms.saturating_add(NOT_FOUND_TTL * 1000);
        self.complete(cp, Answer::NotFound, until).await
    }

    async fn complete(&self, cp: &Checkpoint, answer: Answer, fresh_until_ms: u64) -> Drive {
        self.storage.clear().await;
        self.forget_checkpoint();
        let mut mem = self.mem.borrow_mut();
        mem.completions += 1;
        mem.last = Some(answer.clone());
        mem.recent = Some(Recent {
            started_at_ms: cp.started_at_ms,
            fresh_until_ms,
            answer,
        });
        Drive::Done
    }

    /// Remembers the failure for `FAILURE_MEMORY_MS`; the checkpoint stays for a later resume.
    async fn fail(&self, cp: &Checkpoint, err: ApiError) -> Drive {
        // A checkpoint dropped on the way here (a lost page) stays dropped.
        if self.mem.borrow().checkpoint.is_some() {
            let mut cp = cp.clone();
            cp.tries = 0;
            self.save(&cp).await;
        }
        self.mem.borrow_mut().failed = Some((err, self.now() + FAILURE_MEMORY_MS));
        Drive::Failed
    }

    fn forget_checkpoint(&self) {
        let mut mem = self.mem.borrow_mut();
        mem.checkpoint = None;
        mem.loaded = true;
    }

    /// The build in progress, read from storage once per object life.
    async fn checkpoint(&self) -> Option<Checkpoint> {
        if self.mem.borrow().loaded {
            return self.mem.borrow().checkpoint.clone();
        }
        let stored = self.storage.get(BUILD_KEY).await;
        let cp = stored.and_then(|t| serde_json::from_str::<Checkpoint>(&t).ok());
        let mut mem = self.mem.borrow_mut();
        if !mem.loaded {
            mem.checkpoint = cp;
            mem.loaded = true;
        }
        mem.checkpoint.clone()
    }

    /// Stores the checkpoint; memory follows even when storage refuses (the build goes on, it
    /// just cannot be resumed after the object is evicted).
    async fn save(&self, cp: &Checkpoint) {
        {
            let mut mem = self.mem.borrow_mut();
            mem.checkpoint = Some(cp.clone());
            mem.loaded = true;
        }
        if let Ok(text) = serde_json::to_string(cp) {
            let _ = self.storage.put(BUILD_KEY, &text).await;
        }
    }
}

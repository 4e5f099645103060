//! One owner's directory: starts, drives, checkpoints, restarts and completes listing builds.
//! Plain Rust over two seams, the object's `Checkpoints` storage and the read path's `Service`
//! (upstream calls, rate-limit memory, guarded KV writes), so the same state machine runs in the
//! Durable Object and natively in tests.

use super::build::{self, Checkpoint, BUILD_KEY};
use super::drift::{DriftLog, DRIFT_KEY};
use super::events::{Event, EVENTS_KEY};
use super::live::{self, FACTS_KEY, LIVE_KEY, QUEUE_KEY, SINCE_KEY, UNPUBLISHED_KEY};
use super::queue::Queue;
use super::tally::{Tally, TALLY_KEY};
use super::{Answer, Progress};
use crate::cache::Store;
use crate::error::ApiError;
use crate::fields::FieldSet;
use crate::model::Scope;
use crate::names::Owner;
use crate::service::{Clock, Service, Transport};
use std::cell::RefCell;

/// How long a failed build is answered from memory before a request may resume it.
pub const FAILURE_MEMORY_MS: u64 = 10_000;

/// The object's durable storage (the checkpoint and one value per page), and its subscribers'
/// sockets (`events`).
#[allow(async_fn_in_trait)]
pub trait Checkpoints {
    async fn get(&self, key: &str) -> Option<String>;
    /// Values of `keys`, in order.
    async fn get_many(&self, keys: &[String]) -> Vec<Option<String>>;
    /// # Errors
    /// Why the value was not stored.
    async fn put(&self, key: &str, value: &str) -> Result<(), String>;
    async fn delete_many(&self, keys: &[String]);
    /// Drops the checkpoint, the live listing and every page.
    async fn clear(&self);
    /// Sends a frame to each subscriber of `scope` (every subscriber when `None`), rendered
    /// by `frame` once per `fields=` set among them. Nobody subscribes by default.
    fn send(&self, _scope: Option<Scope>, _frame: &dyn Fn(FieldSet) -> String) {}
    /// How many subscribers each scope has (all, public, redacted).
    fn subscribers(&self) -> [u32; 3] {
        [0; 3]
    }
}

pub(super) use super::memory::Recent;
pub use super::memory::{changed, Memory, Rounds};

/// How a drive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub(super) struct Running<'m>(pub(super) &'m RefCell<Memory>);

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

    pub(super) fn now(&self) -> u64 {
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
        if mem.live.is_some() {
            return Some(Answer::Kept(mem.live_envelope()));
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

    /// Whether a build is under way: being paged, or stored between two invocations (by alarm,
    /// or after a failure). Joining one costs a caller nothing; only starting one does.
    pub async fn in_progress(&self) -> bool {
        self.mem.borrow().running || self.checkpoint().await.is_some()
    }

    /// Makes sure a build exists (resuming a stored one; a new one is stored). Returns whether
    /// a driver must be woken: nobody is paging yet.
    pub async fn start(&self) -> bool {
        self.begin(true).await
    }

    /// `start` for a caller who waits for the build: a new build is stored with its first page,
    /// not before it, since the object holds its outgoing requests back until earlier storage
    /// writes are durable (the output gate), and the next one is that first page. `keep` stores
    /// it should the caller leave first.
    pub async fn start_waited(&self) -> bool {
        self.begin(false).await
    }

    async fn begin(&self, store: bool) -> bool {
        if self.checkpoint().await.is_none() {
            let after = self.mem.borrow().invalidated_at_ms.saturating_add(1);
            let mut cp = Checkpoint::new(self.now().max(after));
            cp.slot = self.free_slot();
            self.mem.borrow_mut().heard_in_build.clear();
            if store {
                self.save(&cp).await;
            } else {
                let mut mem = self.mem.borrow_mut();
                mem.checkpoint = Some(cp);
                mem.loaded = true;
            }
        }
        let mut mem = self.mem.borrow_mut();
        mem.failed = None;
        !mem.running
    }

    /// Stores the build in progress as it stands (see `start_waited`).
    pub async fn keep(&self) {
        let cp = self.mem.borrow().checkpoint.clone();
        if let Some(cp) = cp {
            self.save(&cp).await;
        }
    }

    /// The truth changed at `at_ms`: forget completed answers and failures, throw the live
    /// listing away (in memory and in storage: an object that lost its memory since must not
    /// answer from what an earlier life stored), and restart a build in progress from the first
    /// page. Returns whether a driver must be woken.
    pub async fn invalidate(&self, at_ms: u64) -> bool {
        let in_progress = {
            let mut mem = self.mem.borrow_mut();
            mem.generation += 1;
            mem.invalidated_at_ms = mem.invalidated_at_ms.max(at_ms);
            mem.recent = None;
            mem.failed = None;
            mem.running
        };
        // Loads what an earlier life stored when this one has not yet: the live listing found
        // there goes with the rest below.
        let had_build = in_progress || self.checkpoint().await.is_some();
        // The restarted build replaces the old one in memory before anything else is awaited: a
        // page in flight that lands while storage is cleared finds the new checkpoint, never
        // resumes the old one (whose stored pages are being dropped).
        // Its answer counts as younger than the invalidation even when the first page goes out
        // within the same millisecond (KV's markers compare these times).
        let restart = had_build.then(|| Checkpoint::new(self.now().max(at_ms.saturating_add(1))));
        // (Slot 0: the live listing is gone with the invalidation.)
        {
            let mut mem = self.mem.borrow_mut();
            mem.live = None;
            mem.live_text = None;
            mem.queue.clear();
            mem.since.clear();
            mem.rounds.unpublished = false;
            mem.checkpoint = restart.clone();
            mem.loaded = true;
        }
        // Subscribers read again once the rebuild completes (`ready`).
        self.tell_everyone(Event::Reset);
        self.clear().await;
        self.store_kept().await;
        if let Some(cp) = restart {
            // Unless a driver has moved the restarted build on meanwhile (it saved it itself).
            let untouched = self.mem.borrow().checkpoint.as_ref() == Some(&cp);
            if untouched {
                self.save(&cp).await;
            }
        }
        if !had_build && self.watched() {
            // Subscribers wait for `ready`: the rebuild starts now, not at the next read.
            return self.start().await;
        }
        had_build && !in_progress
    }

    /// Remembers the failure for `FAILURE_MEMORY_MS`; the checkpoint stays for a later resume.
    pub(super) async fn fail(&self, cp: &Checkpoint, err: ApiError) -> Drive {
        // A checkpoint dropped on the way here (a lost page) stays dropped.
        if self.mem.borrow().checkpoint.is_some() {
            let mut cp = cp.clone();
            for s in &mut cp.streams {
                s.tries = 0;
            }
            self.save(&cp).await;
        }
        let mut mem = self.mem.borrow_mut();
        mem.failed = Some((err, self.now() + FAILURE_MEMORY_MS));
        mem.notify();
        Drive::Failed
    }

    /// Stores `value` under `key`: storage then holds something an invalidation must clear
    /// (a live listing's pages and meta line, the queue, the changes heard during a build).
    pub(super) async fn put(&self, key: &str, value: &str) -> Result<(), String> {
        self.mem.borrow_mut().stored = true;
        self.storage.put(key, value).await
    }

    /// Remembers whether KV refused the live listing's last write, in storage too: a later life
    /// of the object must write it again (the copy in KV lacks changes deliveries were told of).
    pub(super) async fn note_published(&self, refused: bool) {
        let was = std::mem::replace(&mut self.mem.borrow_mut().rounds.unpublished, refused);
        if refused && !was {
            let _ = self.put(UNPUBLISHED_KEY, "1").await;
        } else if was && !refused {
            self.storage
                .delete_many(&[UNPUBLISHED_KEY.to_string()])
                .await;
        }
    }

    /// Drops every stored build, when storage may hold one (each write is one the object's
    /// next answer or request waits for).
    pub(super) async fn clear(&self) {
        let stored = std::mem::take(&mut self.mem.borrow_mut().stored);
        if stored {
            self.storage.clear().await;
        }
    }

    /// What outlives storage cleared by an owner-level invalidation or an abandoned listing:
    /// narrowing facts (a rebuild within GitHub's lag still needs them) and the delivery tally
    /// (the status of a later life reports it). The drift log is not stored again: a later life
    /// reports the drift of rebuilds after the invalidation only.
    pub(super) async fn store_kept(&self) {
        if !self.mem.borrow().facts.is_empty() {
            self.store_facts().await;
        }
        if !self.mem.borrow().deliveries.is_empty() {
            self.store_tally().await;
        }
        self.keep_seqs().await;
    }

    pub(super) fn forget_checkpoint(&self) {
        let mut mem = self.mem.borrow_mut();
        mem.checkpoint = None;
        mem.loaded = true;
    }

    /// The build in progress, read from storage once per object life.
    pub(super) async fn checkpoint(&self) -> Option<Checkpoint> {
        if self.mem.borrow().loaded {
            return self.mem.borrow().checkpoint.clone();
        }
        let keys = [
            BUILD_KEY,
            LIVE_KEY,
            QUEUE_KEY,
            SINCE_KEY,
            UNPUBLISHED_KEY,
            DRIFT_KEY,
            FACTS_KEY,
            TALLY_KEY,
            EVENTS_KEY,
        ]
        .map(String::from);
        let mut stored = self.storage.get_many(&keys).await.into_iter();
        let mut next = || stored.next().flatten();
        let cp = next().and_then(|t| Checkpoint::decode(&t));
        let meta = next();
        let queue = next()
            .and_then(|t| live::decode_changes(&t))
            .map(Queue::from_changes)
            .unwrap_or_default();
        let since = next()
            .and_then(|t| live::decode_changes(&t))
            .map(Queue::from_changes)
            .unwrap_or_default();
        let unpublished = next().is_some();
        let drift: DriftLog = next()
            .and_then(|t| serde_json::from_slice(t.as_bytes()).ok())
            .unwrap_or_default();
        let facts = next()
            .and_then(|t| live::decode_changes(&t))
            .unwrap_or_default();
        let tally = next().map(|t| Tally::decode(&t)).unwrap_or_default();
        let seqs = next();
        let kept = match meta {
            Some(meta) => {
                let kept = self.load_live(&meta).await;
                if kept.is_none() {
                    // A listing that does not load is gone: its meta line must not name the
                    // pages of the next build, which may reuse its slot.
                    self.storage.delete_many(&[LIVE_KEY.to_string()]).await;
                }
                kept
            }
            None => None,
        };
        let mut mem = self.mem.borrow_mut();
        if !mem.loaded {
            mem.checkpoint = cp;
            mem.loaded = true;
            // Unknown to this life: whatever an earlier one left may be there.
            mem.stored = true;
            mem.live = kept;
            mem.queue = queue;
            mem.since = since;
            mem.rounds.unpublished = unpublished;
            if mem.drift.last_rebuild_at_ms.is_none() {
                mem.drift = drift;
            }
            // Expired ones are pruned where facts are used.
            mem.facts.extend(facts);
            if mem.deliveries.is_empty() {
                mem.deliveries = tally;
            }
            if let Some(seqs) = seqs {
                mem.feeds.restore_seqs(&seqs);
            }
        }
        mem.checkpoint.clone()
    }

    /// Stores the checkpoint; memory follows even when storage refuses (the build goes on, it
    /// just cannot be resumed after the object is evicted).
    pub(super) async fn save(&self, cp: &Checkpoint) {
        {
            let mut mem = self.mem.borrow_mut();
            mem.checkpoint = Some(cp.clone());
            mem.loaded = true;
            mem.stored = true;
        }
        let _ = self.storage.put(BUILD_KEY, &cp.encode()).await;
    }
}

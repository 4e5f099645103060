//! One owner's directory: starts, drives, checkpoints, restarts and completes listing builds.
//! Plain Rust over two seams, the object's `Checkpoints` storage and the read path's `Service`
//! (upstream calls, rate-limit memory, guarded KV writes), so the same state machine runs in the
//! Durable Object and natively in tests.

use super::build::{self, AfterFailure, Checkpoint, BUILD_KEY};
use super::live::{self, Change, Live, LIVE_KEY, QUEUE_KEY, SINCE_KEY};
use super::revalidate::live_text;
use super::{Answer, Progress};
use crate::cache::entry::{self, NOT_FOUND_TTL};
use crate::cache::{keys, Store};
use crate::error::ApiError;
use crate::forge::UpstreamFailure;
use crate::model::{OwnerListing, Repo};
use crate::names::Owner;
use crate::service::{Clock, Service, Transport};
use std::cell::RefCell;
use std::future::Future;
use std::task::{Poll, Waker};

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
    async fn delete_many(&self, keys: &[String]);
    /// Drops the checkpoint, the live listing and every page.
    async fn clear(&self);
}

/// What the object keeps between requests while it lives (all requests and alarms share it).
#[derive(Debug, Default)]
pub struct Memory {
    /// Bumped by every invalidation; a page answered under an older generation is discarded.
    pub(super) generation: u64,
    /// The latest owner-level invalidation heard: a build begun after it counts as younger,
    /// even within the same millisecond (KV's markers compare these times).
    invalidated_at_ms: u64,
    /// A driver is paging.
    running: bool,
    /// The build in progress, once read from storage (`loaded`).
    checkpoint: Option<Checkpoint>,
    loaded: bool,
    /// The last completed answer and until when it is fresh: KV is eventually consistent, so a
    /// caller who just missed it in KV is answered here instead of starting another build.
    pub(super) recent: Option<Recent>,
    /// A failed (or rate-limited) build and until when that is the answer.
    failed: Option<(ApiError, u64)>,
    /// Builds completed in this object's life, and the last one's answer: callers who waited
    /// for a build get its answer even when it is too old to be handed to anyone else.
    completions: u64,
    last: Option<Answer>,
    /// Changes a waiting caller cares about (a build completed, failed or paused), counted, and
    /// the callers to wake on the next one: they are answered when it happens, not on a timer.
    events: u64,
    waiters: Vec<Waker>,
    /// Storage may hold a build (a checkpoint or pages): only then is there anything to clear.
    stored: bool,
    /// The last completed build's KV write, made after its callers were answered (`write_back`).
    unwritten: Option<Unwritten>,
    /// The complete listing kept after a build, patched by repository-level changes, and its
    /// envelope text once made.
    pub(super) live: Option<Live>,
    pub(super) live_text: Option<String>,
    /// Changes waiting for GitHub's answer (`revalidate`), and those heard since the build in
    /// progress began (revalidated before its listing is kept).
    pub(super) queue: Vec<Change>,
    pub(super) since: Vec<Change>,
    pub(super) rounds: Rounds,
}

/// Where revalidation rounds stand: changes are numbered as heard; a caller waits until its
/// number is applied (or parked: durably queued after GitHub failed).
#[derive(Debug, Default)]
pub struct Rounds {
    pub heard: u64,
    pub applied: u64,
    pub parked: u64,
    pub running: bool,
    pub last_at_ms: u64,
    /// The last KV write of the listing (at most one per second per key).
    pub published_at_ms: u64,
}

/// What a completed build still has to do once its answer is out.
#[derive(Debug)]
struct Unwritten {
    /// The generation it completed under: an invalidation since makes its answer obsolete.
    generation: u64,
    started_at_ms: u64,
    /// `(key, value, ttl)`; `None` when nothing is written (a pinned owner's not-found).
    write: Option<(String, String, Option<u64>)>,
    /// The completed listing's last page (its other pages are stored) and the page keys of the
    /// listing it replaces; `None` for a not-found answer.
    keep: Option<(String, String, Vec<String>)>,
    meta: Option<String>,
}

/// A completed build's answer, kept while it is fresh.
#[derive(Debug, Clone)]
pub(super) struct Recent {
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

    /// How many changes callers may wait for have happened; see `changed`.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub(super) fn notify(&mut self) {
        self.events += 1;
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }
}

/// Resolves once more than `seen` events have happened in `mem` (see `Memory::events`). Whoever
/// changes the build (a request's driver, the alarm) wakes the callers waiting here.
pub fn changed(mem: &RefCell<Memory>, seen: u64) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        let mut mem = mem.borrow_mut();
        if mem.events > seen {
            return Poll::Ready(());
        }
        if !mem.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            mem.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    })
}

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
            return Some(Answer::Kept(live_text(&mut mem)));
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

    /// The truth changed at `at_ms`: forget completed answers and failures, and restart a build
    /// in progress from the first page. Returns whether a driver must be woken.
    pub async fn invalidate(&self, at_ms: u64) -> bool {
        let in_progress = {
            let mut mem = self.mem.borrow_mut();
            mem.generation += 1;
            mem.invalidated_at_ms = mem.invalidated_at_ms.max(at_ms);
            mem.recent = None;
            mem.failed = None;
            mem.live = None;
            mem.live_text = None;
            mem.queue.clear();
            mem.since.clear();
            mem.running
        };
        let had_build = in_progress || self.checkpoint().await.is_some();
        // The restarted build replaces the old one in memory before anything is awaited: a page
        // in flight that lands while storage is cleared finds the new checkpoint, never resumes
        // the old one (whose stored pages are being dropped).
        // Its answer counts as younger than the invalidation even when the first page goes out
        // within the same millisecond (KV's markers compare these times).
        let restart = had_build.then(|| Checkpoint::new(self.now().max(at_ms.saturating_add(1))));
        // (Slot 0: the live listing is gone with the invalidation.)
        {
            let mut mem = self.mem.borrow_mut();
            mem.checkpoint = restart.clone();
            mem.loaded = true;
        }
        self.clear().await;
        if let Some(cp) = restart {
            // Unless a driver has moved the restarted build on meanwhile (it saved it itself).
            let untouched = self.mem.borrow().checkpoint.as_ref() == Some(&cp);
            if untouched {
                self.save(&cp).await;
            }
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
            let asked_ms = self.now();
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
                    return self.finish_not_found(&cp);
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
                        // The alarm resumes it, perhaps in a later life of the object.
                        self.save(&cp).await;
                        let retry_after = at_ms.saturating_sub(self.now()).div_ceil(1000).max(1);
                        let mut mem = self.mem.borrow_mut();
                        mem.failed = Some((ApiError::RateLimited { retry_after }, at_ms));
                        mem.notify();
                        return Drive::Paused { until_ms: at_ms };
                    }
                    AfterFailure::Fail => {
                        let err = self.svc.failure_to_error(failure);
                        return self.fail(&cp, err).await;
                    }
                },
            };
            if page.next_cursor.is_some() && page.next_cursor == cp.cursor {
                let err = ApiError::Upstream("cursor did not advance".into());
                return self.fail(&cp, err).await;
            }
            cp.fetched += page.repos.len() as u64;
            cp.total = cp.total.or(page.total);
            cp.login.get_or_insert(page.login);
            cp.tries = 0;
            let text = live::encode_build_page(asked_ms, &page.repos);
            let Some(next) = page.next_cursor else {
                // The last page is stored after the answer: the listing is assembled with it in hand.
                let mut done = match self.assemble(&cp, asked_ms, page.repos).await {
                    Ok(done) => done,
                    Err(err) => return self.fail(&cp, err).await,
                };
                // What changed while it was built is asked again before anyone is answered.
                self.catch_up(&mut done).await;
                if self.mem.borrow().generation != generation {
                    continue; // invalidated while the stored pages were read
                }
                return self.finish(&cp, done, text);
            };
            self.mem.borrow_mut().stored = true;
            let key = build::page_key(cp.slot, cp.pages);
            if let Err(why) = self.storage.put(&key, &text).await {
                return self.fail(&cp, ApiError::Upstream(why)).await;
            }
            if self.mem.borrow().generation != generation {
                continue; // the restarted build's checkpoint is not to be overwritten
            }
            cp.pages += 1;
            cp.cursor = Some(next);
            self.save(&cp).await;
        }
    }

    /// The whole listing: the stored pages, then `last` (asked at `asked_ms`). A stored page
    /// that went missing drops the build (it starts over rather than answer a hole).
    async fn assemble(
        &self,
        cp: &Checkpoint,
        asked_ms: u64,
        last: Vec<Repo>,
    ) -> Result<Live, ApiError> {
        let keys: Vec<String> = (0..cp.pages).map(|i| build::page_key(cp.slot, i)).collect();
        let login = cp
            .login
            .clone()
            .unwrap_or_else(|| self.owner.as_str().to_string());
        let mut done = Live {
            listing: OwnerListing {
                login,
                repos: Vec::with_capacity(usize::try_from(cp.fetched).unwrap_or(0)),
                revalidated_at_ms: None,
            },
            rows: Vec::new(),
            started_at_ms: cp.started_at_ms,
            slot: cp.slot,
            pages: cp.pages + 1,
            removed: Vec::new(),
        };
        for (i, text) in (0..).zip(self.storage.get_many(&keys).await) {
            let Some((asked, repos)) = text.as_deref().and_then(live::decode_page) else {
                self.clear().await;
                self.forget_checkpoint();
                return Err(ApiError::Upstream("a stored page was lost".into()));
            };
            done.push_page(i, asked, repos);
        }
        done.push_page(cp.pages, vec![asked_ms], last);
        Ok(done)
    }

    /// Every page has arrived: the listing is answered, kept as the live listing, and written to
    /// KV once by `write_back`. `last` is its last page as stored.
    fn finish(&self, cp: &Checkpoint, done: Live, last: String) -> Drive {
        let cfg = self.svc.cfg;
        let ttl = (!cfg.is_pinned(self.owner)).then_some(cfg.stale_ttl);
        let fresh_until = cp
            .started_at_ms
            .saturating_add(cfg.fresh_ttl.saturating_mul(1000));
        let text = entry::encode(cp.started_at_ms, Some(&done.listing));
        let write = (keys::org(self.owner), text.clone(), ttl);
        let meta = done.meta();
        let last_key = build::page_key(done.slot, done.pages - 1);
        let old = {
            let mut mem = self.mem.borrow_mut();
            let old = mem
                .live
                .as_ref()
                .map(|l| (0..l.pages).map(|i| build::page_key(l.slot, i)).collect());
            mem.live = Some(done);
            mem.live_text = Some(text.clone());
            mem.since.clear();
            // The build's own KV write comes first; a round publishes a second after it.
            mem.rounds.published_at_ms = self.svc.clock.now_ms();
            old.unwrap_or_default()
        };
        let drive = self.complete(cp, Answer::Complete(text), fresh_until, Some(write));
        if let Some(u) = self.mem.borrow_mut().unwritten.as_mut() {
            u.keep = Some((last_key, last, old));
            // The meta line rides along as the last "page" key pair: see `write_back`.
            u.meta = Some(meta);
        }
        drive
    }

    /// The owner does not exist: remembered for a minute, like any not-found answer. A pinned
    /// owner's old listing is kept (the cron never replaces it with nothing).
    fn finish_not_found(&self, cp: &Checkpoint) -> Drive {
        let write = (!self.svc.cfg.is_pinned(self.owner)).then(|| {
            let text = entry::encode::<OwnerListing>(cp.started_at_ms, None);
            (keys::org(self.owner), text, Some(NOT_FOUND_TTL))
        });
        let until = cp.started_at_ms.saturating_add(NOT_FOUND_TTL * 1000);
        self.complete(cp, Answer::NotFound, until, write)
    }

    /// Answers the waiting callers (and later ones, until `fresh_until_ms`) at once. The KV
    /// write and dropping the stored build are left to `write_back`, after the answers are out:
    /// a storage write would hold them back until it is durable (the object's output gate).
    fn complete(
        &self,
        cp: &Checkpoint,
        answer: Answer,
        fresh_until_ms: u64,
        write: Option<(String, String, Option<u64>)>,
    ) -> Drive {
        let mut mem = self.mem.borrow_mut();
        mem.checkpoint = None;
        mem.loaded = true;
        mem.completions += 1;
        mem.last = Some(answer.clone());
        mem.recent = Some(Recent {
            started_at_ms: cp.started_at_ms,
            fresh_until_ms,
            answer,
        });
        mem.unwritten = Some(Unwritten {
            generation: mem.generation,
            started_at_ms: cp.started_at_ms,
            write,
            keep: None,
            meta: None,
        });
        mem.notify();
        Drive::Done
    }

    /// What a completed build left for after its answer: the stored build is dropped and the
    /// listing written to KV once, unless an invalidation heard since made it obsolete (the
    /// invalidation dropped the stored build itself). Nothing when nothing is left.
    pub async fn write_back(&self) {
        let Some(done) = self.mem.borrow_mut().unwritten.take() else {
            return;
        };
        if self.mem.borrow().generation != done.generation {
            return;
        }
        // No other build can have started: callers are answered from `recent` until it is
        // written, and an invalidation would have changed the generation.
        let mut done = done;
        self.catch_up_unwritten(&mut done);
        match (done.keep, done.meta) {
            (Some((last_key, last, old)), Some(meta)) => {
                // The build's pages become the live listing's; the replaced listing's go.
                let _ = self.storage.put(&last_key, &last).await;
                let _ = self.storage.put(LIVE_KEY, &meta).await;
                let mut gone = old;
                gone.push(BUILD_KEY.to_string());
                gone.push(SINCE_KEY.to_string());
                self.storage.delete_many(&gone).await;
            }
            _ => {
                self.clear().await;
                let mut mem = self.mem.borrow_mut();
                mem.live = None;
                mem.live_text = None;
            }
        }
        let Some(write) = done.write else {
            return;
        };
        if self.mem.borrow().generation != done.generation {
            return;
        }
        let key = write.0.clone();
        let mut dropped = self
            .svc
            .store_fetched(vec![write], done.started_at_ms)
            .await
            > 0;
        if !dropped {
            // An invalidation racing the write may have deleted the key just before the write
            // landed. It writes its marker before deleting and tells this directory after: if
            // either shows now, the write is taken back.
            let heard = self.mem.borrow().generation != done.generation;
            if heard || self.svc.invalidated_since(&key, done.started_at_ms).await {
                let _ = self.svc.store.delete(&key).await;
                dropped = true;
            }
        }
        if dropped {
            // The callers who waited have their answer, but nobody else gets it.
            {
                let mut mem = self.mem.borrow_mut();
                if let Some(r) = mem
                    .recent
                    .as_mut()
                    .filter(|r| r.started_at_ms == done.started_at_ms)
                {
                    r.fresh_until_ms = 0;
                }
            }
            self.abandon_live().await;
        }
    }

    /// A revalidation round may have patched the listing between its answer and this write:
    /// what is written (its last page, its meta line, the KV entry) is the listing as it stands
    /// now, never the build's first copy over a patched one.
    fn catch_up_unwritten(&self, done: &mut Unwritten) {
        let mut mem = self.mem.borrow_mut();
        let same = mem
            .live
            .as_ref()
            .is_some_and(|l| l.started_at_ms == done.started_at_ms);
        if !same || done.keep.is_none() {
            return;
        }
        let text = live_text(&mut mem);
        let Some(l) = mem.live.as_ref() else { return };
        if let Some((_, last, _)) = done.keep.as_mut() {
            *last = l.encode_page(l.pages.saturating_sub(1));
        }
        done.meta = Some(l.meta());
        if let Some(write) = done.write.as_mut() {
            write.1 = text;
        }
    }

    /// The live listing is older than an invalidation it was not told of (KV refused its write):
    /// it is not kept, and the next read builds again.
    pub(super) async fn abandon_live(&self) {
        let had = {
            let mut mem = self.mem.borrow_mut();
            mem.live_text = None;
            mem.queue.clear();
            mem.live.take().is_some()
        };
        if had && self.mem.borrow().checkpoint.is_none() {
            self.clear().await;
        }
    }

    /// Remembers the failure for `FAILURE_MEMORY_MS`; the checkpoint stays for a later resume.
    async fn fail(&self, cp: &Checkpoint, err: ApiError) -> Drive {
        // A checkpoint dropped on the way here (a lost page) stays dropped.
        if self.mem.borrow().checkpoint.is_some() {
            let mut cp = cp.clone();
            cp.tries = 0;
            self.save(&cp).await;
        }
        let mut mem = self.mem.borrow_mut();
        mem.failed = Some((err, self.now() + FAILURE_MEMORY_MS));
        mem.notify();
        Drive::Failed
    }

    /// Drops every stored build, when storage may hold one (each write is one the object's
    /// next answer or request waits for).
    async fn clear(&self) {
        let stored = std::mem::take(&mut self.mem.borrow_mut().stored);
        if stored {
            self.storage.clear().await;
        }
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
        let keys = [BUILD_KEY, LIVE_KEY, QUEUE_KEY, SINCE_KEY].map(String::from);
        let mut stored = self.storage.get_many(&keys).await.into_iter();
        let mut next = || stored.next().flatten();
        let cp = next().and_then(|t| Checkpoint::decode(&t));
        let meta = next();
        let queue = next()
            .and_then(|t| live::decode_changes(&t))
            .unwrap_or_default();
        let since = next()
            .and_then(|t| live::decode_changes(&t))
            .unwrap_or_default();
        let kept = match meta {
            Some(meta) => self.load_live(&meta).await,
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
            mem.stored = true;
        }
        let _ = self.storage.put(BUILD_KEY, &cp.encode()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn waiting_callers_are_woken_by_the_next_change_only() {
        let mem = RefCell::new(Memory::default());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let seen = mem.borrow().events();
        let mut waiting = pin!(changed(&mem, seen));
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(mem.borrow().waiters.len(), 1, "one waker per caller");
        mem.borrow_mut().notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(mem.borrow().waiters.is_empty());
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        // A caller who looked before the change is not left waiting for the one after it.
        assert!(pin!(changed(&mem, seen)).poll(&mut cx).is_ready());
    }
}

//! An in-process `Owners`: one directory per owner, driven inline by the caller instead of by
//! Durable Object alarms. Native tests and benches use it; the worker uses the object. The build
//! logic is the same `Directory`.

use super::directory::{Checkpoints, Directory, Drive, Memory};
use super::revalidate::CHANGE_WAIT_MS;
use super::{Answer, Change, Owners, Told};
use crate::cache::Store;
use crate::config::Config;
use crate::error::ApiError;
use crate::forge::Forge;
use crate::names::Owner;
use crate::service::{Clock, Service, Transport, BACKGROUND_BUDGET_MS};
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::rc::Rc;

/// One directory's storage and memory, kept between requests.
#[derive(Default)]
pub struct LocalDirectory {
    pub storage: MemCheckpoints,
    pub memory: RefCell<Memory>,
    /// The size of each chunk of keys this directory was asked to drop (`Owners::forget`),
    /// each an invocation of the object's own.
    pub forgotten: RefCell<Vec<usize>>,
}

/// Every directory of a test world, by lowercased owner.
pub type Directories = RefCell<HashMap<String, Rc<LocalDirectory>>>;

/// Checkpoint storage in memory, counting writes.
#[derive(Default)]
pub struct MemCheckpoints {
    pub data: RefCell<BTreeMap<String, String>>,
    pub puts: std::cell::Cell<usize>,
}

impl Checkpoints for MemCheckpoints {
    async fn get(&self, key: &str) -> Option<String> {
        self.data.borrow().get(key).cloned()
    }
    async fn get_many(&self, keys: &[String]) -> Vec<Option<String>> {
        let data = self.data.borrow();
        keys.iter().map(|k| data.get(k).cloned()).collect()
    }
    async fn put(&self, key: &str, value: &str) -> Result<(), String> {
        self.puts.set(self.puts.get() + 1);
        self.data.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
    async fn delete_many(&self, keys: &[String]) {
        let mut data = self.data.borrow_mut();
        for key in keys {
            data.remove(key);
        }
    }
    /// Takes effect when issued, like the object's storage operations, and completes later:
    /// whatever the caller does next waits, and other tasks run meanwhile.
    async fn clear(&self) {
        self.data.borrow_mut().clear();
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut yielded, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await;
    }
}

pub struct LocalOwners<'a, S, T, C> {
    pub cfg: &'a Config,
    pub store: &'a S,
    pub transport: &'a T,
    pub clock: &'a C,
    pub forge: &'a dyn Forge,
    pub directories: &'a Directories,
}

impl<S: Store, T: Transport, C: Clock> LocalOwners<'_, S, T, C> {
    fn directory(&self, owner: &Owner) -> Rc<LocalDirectory> {
        self.directories
            .borrow_mut()
            .entry(owner.key())
            .or_default()
            .clone()
    }

    fn service(&self) -> Service<'_, S, T, C> {
        Service::new(self.cfg, self.store, self.transport, self.clock, self.forge)
    }

    /// What an alarm does in the object: drive the build on, with a background budget.
    pub async fn alarm(&self, owner: &Owner) -> Drive {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        let stop_at = self.clock.now_ms() + BACKGROUND_BUDGET_MS;
        let outcome = dir.drive(u32::MAX, stop_at).await;
        dir.write_back().await;
        outcome
    }

    async fn listing_now(&self, owner: &Owner, wait_ms: u64, start: bool) -> Answer {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        if let Some(answer) = dir.immediate() {
            return answer;
        }
        if !start && !dir.in_progress().await {
            return Answer::Unstarted;
        }
        let seen = d.memory.borrow().completions();
        let stop_at = self.clock.now_ms().saturating_add(wait_ms);
        if dir.start_waited().await {
            dir.drive(u32::MAX, stop_at).await;
            dir.write_back().await;
        } else {
            // Another caller is driving: wait for it like the object's callers do.
            while d.memory.borrow().is_running() && self.clock.now_ms() < stop_at {
                self.clock.sleep(10).await;
            }
        }
        let done = d.memory.borrow().answer_since(seen);
        match done {
            Some(answer) => answer,
            None => dir.status().await,
        }
    }

    async fn refresh_now(&self, owner: &Owner) -> Result<(), ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        if !dir.recently_built(self.cfg.fresh_ttl * 1000 / 2) && dir.start().await {
            let stop_at = self.clock.now_ms() + BACKGROUND_BUDGET_MS;
            dir.drive(u32::MAX, stop_at).await;
            dir.write_back().await;
        }
        Ok(())
    }

    async fn forget_now(&self, owner: &Owner, keys: &[String]) -> Result<(), ApiError> {
        self.directory(owner)
            .forgotten
            .borrow_mut()
            .push(keys.len());
        self.service().drop_keys(keys, &[]).await
    }

    async fn change_now(&self, owner: &Owner, changes: &[Change]) -> Result<Told, ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        dir.hear(changes, CHANGE_WAIT_MS).await
    }

    /// What the object's alarm does for changes GitHub failed: one round. Returns whether
    /// changes still wait.
    pub async fn retry_queued(&self, owner: &Owner) -> bool {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        if dir.queued() {
            dir.round().await;
        }
        dir.queued()
    }

    async fn invalidate_now(&self, owner: &Owner, at_ms: u64) -> Result<(), ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        // A restarted build is left for the next caller (an alarm in the object).
        dir.invalidate(at_ms).await;
        Ok(())
    }
}

impl<S: Store, T: Transport, C: Clock> Owners for LocalOwners<'_, S, T, C> {
    fn listing<'a>(
        &'a self,
        owner: &'a Owner,
        wait_ms: u64,
        start: bool,
    ) -> LocalBoxFuture<'a, Answer> {
        Box::pin(self.listing_now(owner, wait_ms, start))
    }
    fn refresh<'a>(&'a self, owner: &'a Owner) -> LocalBoxFuture<'a, Result<(), ApiError>> {
        Box::pin(self.refresh_now(owner))
    }
    fn forget<'a>(
        &'a self,
        owner: &'a Owner,
        keys: &'a [String],
    ) -> LocalBoxFuture<'a, Result<(), ApiError>> {
        Box::pin(self.forget_now(owner, keys))
    }
    fn change<'a>(
        &'a self,
        owner: &'a Owner,
        changes: &'a [Change],
    ) -> LocalBoxFuture<'a, Result<Told, ApiError>> {
        Box::pin(self.change_now(owner, changes))
    }
    fn invalidate<'a>(
        &'a self,
        owner: &'a Owner,
        at_ms: u64,
    ) -> LocalBoxFuture<'a, Result<(), ApiError>> {
        Box::pin(self.invalidate_now(owner, at_ms))
    }
}

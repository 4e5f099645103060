//! An in-process `Owners`: one directory per owner, with a test double of the object's runtime
//! (`object::Host`: an alarm time the test fires, a driver run beside its caller's wait). Native
//! tests and benches use it; the worker uses the object. Both run the same control logic
//! (`object`) over the same `Directory`, page cap per invocation included.

use super::directory::{Checkpoints, Directory, Drive, Memory};
use super::object::{self, Host};
use super::status::status_json;
use super::{Answer, Change, Owners, Told};
use crate::cache::Store;
use crate::config::Config;
use crate::error::ApiError;
use crate::fields::FieldSet;
use crate::forge::Forge;
use crate::model::Scope;
use crate::names::Owner;
use crate::service::{Clock, Service, Transport, BACKGROUND_BUDGET_MS};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
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
    /// When its alarm is armed for.
    pub alarm_at: Cell<Option<u64>>,
    /// The last read noted (0: none).
    pub read_at: Cell<u64>,
    /// Times the reaping alarm deleted its storage.
    pub reaped: Cell<u32>,
    /// Listings asked of it (`Owners::listing`), each a request to the object.
    pub asked: Cell<u32>,
}

/// Every directory of a test world, by lowercased owner.
pub type Directories = RefCell<HashMap<String, Rc<LocalDirectory>>>;

/// Checkpoint storage in memory, counting writes; its subscribers are a count per scope the test
/// sets, and the frames sent to them are recorded (rendered with the default `fields=`).
#[derive(Default)]
pub struct MemCheckpoints {
    pub data: RefCell<BTreeMap<String, String>>,
    pub puts: std::cell::Cell<usize>,
    pub subscribers: Cell<[u32; 3]>,
    pub sent: RefCell<Vec<(Option<Scope>, String)>>,
}

impl Checkpoints for MemCheckpoints {
    fn send(&self, scope: Option<Scope>, frame: &dyn Fn(FieldSet) -> String) {
        let text = frame(FieldSet::default_set());
        self.sent.borrow_mut().push((scope, text));
    }
    fn subscribers(&self) -> [u32; 3] {
        self.subscribers.get()
    }
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

/// The object's runtime for one directory: its alarm is a time remembered here, fired by the
/// test (`LocalOwners::alarm`) or, while a caller waits, as soon as it is due (the object's
/// alarm fires at once when armed for now).
struct LocalHost<'a, C> {
    dir: &'a LocalDirectory,
    clock: &'a C,
}

impl<C: Clock> Host for LocalHost<'_, C> {
    fn arm(&self, in_ms: u64) -> LocalBoxFuture<'_, ()> {
        let at = self.clock.now_ms().saturating_add(in_ms);
        self.dir.alarm_at.set(Some(at));
        Box::pin(std::future::ready(()))
    }
    fn armed(&self) -> bool {
        self.dir.alarm_at.get().is_some()
    }
    fn driving(&self) -> bool {
        self.dir.memory.borrow().is_running()
    }
    fn read_at(&self) -> LocalBoxFuture<'_, u64> {
        if self.dir.read_at.get() == 0 {
            self.dir.read_at.set(self.clock.now_ms());
        }
        Box::pin(std::future::ready(self.dir.read_at.get()))
    }
    fn reap(&self) -> LocalBoxFuture<'_, ()> {
        if self.dir.storage.subscribers.get().iter().any(|&n| n > 0) {
            // As the object: subscribers read the listing, so the read is noted now and the
            // alarm looks again in a day.
            self.dir.read_at.set(self.clock.now_ms());
            return self.arm(super::drift::DAY_MS);
        }
        self.dir.storage.data.borrow_mut().clear();
        *self.dir.memory.borrow_mut() = Memory::default();
        self.dir.read_at.set(0);
        self.dir.reaped.set(self.dir.reaped.get() + 1);
        Box::pin(std::future::ready(()))
    }
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

    /// The object's runtime for directory `d`.
    fn host<'h>(&'h self, d: &'h LocalDirectory) -> LocalHost<'h, C> {
        LocalHost {
            dir: d,
            clock: self.clock,
        }
    }

    /// The object's alarm fires (whenever it was armed for): `object::alarm`. Returns how its
    /// drive ended.
    pub async fn alarm(&self, owner: &Owner) -> Drive {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        let host = self.host(&d);
        d.alarm_at.set(None);
        object::alarm(&dir, &host).await
    }

    /// When the owner's alarm is armed for, if it is.
    pub fn alarm_at(&self, owner: &Owner) -> Option<u64> {
        self.directory(owner).alarm_at.get()
    }

    /// Fires the alarms armed for no later than `until_ms`, waiting for each on the clock, as
    /// the object's alarm fires while a caller waits.
    async fn alarms_until(&self, owner: &Owner, until_ms: u64) {
        let d = self.directory(owner);
        while let Some(at) = d.alarm_at.get().filter(|at| *at <= until_ms) {
            let now = self.clock.now_ms();
            if at > now {
                self.clock.sleep(at - now).await;
            }
            self.alarm(owner).await;
        }
    }

    async fn listing_now(&self, owner: &Owner, wait_ms: u64, start: bool) -> Answer {
        let d = self.directory(owner);
        d.asked.set(d.asked.get() + 1);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        let host = self.host(&d);
        if start {
            d.read_at.set(self.clock.now_ms());
        }
        // The object spawns the driver as a task of its own, which pages while its caller waits
        // (the alarm it arms for pages left fires at once and pages on), and does what follows
        // the drive (`object::after_drive`: the write-back 100 ms later, the next alarm) after
        // the caller has its answer. Here the pages come first, then the answer, then the rest.
        let outcome = Cell::new(None);
        let spawn = |stop_at_ms: u64| -> Option<LocalBoxFuture<'_, ()>> {
            let (dir, outcome) = (&dir, &outcome);
            Some(Box::pin(async move {
                let mut o = dir.drive(object::PAGES_PER_INVOCATION, stop_at_ms).await;
                while o == Drive::More && self.clock.now_ms() < stop_at_ms {
                    o = dir.drive(object::PAGES_PER_INVOCATION, stop_at_ms).await;
                }
                outcome.set(Some(o));
            }))
        };
        let answer = object::listing(&dir, &host, wait_ms, start, &spawn).await;
        if let Some(o) = outcome.get() {
            object::after_drive(&dir, &host, o).await;
        }
        answer
    }

    async fn refresh_now(&self, owner: &Owner) -> Result<(), ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        if !dir.recently_built(self.cfg.fresh_ttl * 1000 / 2) && dir.start().await {
            // The object arms its alarm for now; it fires at once.
            self.host(&d).arm(0).await;
            let until = self.clock.now_ms() + BACKGROUND_BUDGET_MS;
            self.alarms_until(owner, until).await;
        }
        Ok(())
    }

    async fn forget_now(&self, owner: &Owner, keys: &[String]) -> Result<(), ApiError> {
        self.directory(owner)
            .forgotten
            .borrow_mut()
            .push(keys.len());
        // Unmarked, as the object drops them (see `shell::directory`).
        self.service().drop_keys(&[], keys).await
    }

    async fn change_now(&self, owner: &Owner, changes: &[Change]) -> Result<Told, ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        let host = self.host(&d);
        object::change(&dir, &host, changes).await
    }

    async fn status_now(&self, owner: &Owner) -> Result<String, ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        Ok(status_json(&dir.report().await))
    }

    async fn delivered_now(&self, owner: &Owner, replayed: bool) -> Result<(), ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        Directory::new(&svc, &d.storage, &d.memory, owner)
            .delivered(replayed)
            .await;
        Ok(())
    }

    async fn invalidate_now(&self, owner: &Owner, at_ms: u64) -> Result<(), ApiError> {
        let d = self.directory(owner);
        let svc = self.service();
        let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
        // A restarted build is left for the alarm, which the test fires.
        if dir.invalidate(at_ms).await {
            d.alarm_at.set(Some(self.clock.now_ms()));
        }
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
    fn delivered<'a>(
        &'a self,
        owner: &'a Owner,
        replayed: bool,
    ) -> LocalBoxFuture<'a, Result<(), ApiError>> {
        Box::pin(self.delivered_now(owner, replayed))
    }
    fn status<'a>(&'a self, owner: &'a Owner) -> LocalBoxFuture<'a, Result<String, ApiError>> {
        Box::pin(self.status_now(owner))
    }
}

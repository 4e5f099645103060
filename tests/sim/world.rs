//! The simulated deployment: one location (KV with expiry and refusals, no memory tier), the owner
//! directories (the real `owners::object` orchestration over `LocalOwners`' `Host` double) with an
//! alarm daemon that fires their alarms late or on time, and GitHub's model; requests go through
//! `http::handle` as the worker's fetch handler sends them. It also keeps what the checks need:
//! which narrowing deliveries were answered, and when GitHub's truth last widened each name.

use super::exec::{Sched, SimClock, Spawner};
use super::github::{FromDirectory, SimGitHub};
use forgelens::cache::{Store, StoreError};
use forgelens::config::{Config, VARIABLES};
use forgelens::error::ApiError;
use forgelens::forge::github::GitHub;
use forgelens::http::{handle, Ctx, Request, Response};
use forgelens::names::Owner;
use forgelens::owners::directory::Directory;
use forgelens::owners::local::{Directories, LocalOwners};
use forgelens::owners::{Answer, Change, Owners, Told};
use forgelens::service::{Refresh, Service};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// KV in one location: values with their expiry, each operation a scheduling point; the weather
/// refuses some writes and deletes (429) as KV does past one write a second per key.
pub struct SimStore<'a> {
    sched: &'a Sched,
    pub data: RefCell<HashMap<String, (String, Option<u64>)>>,
    /// The chance (in 100) that a write or delete is refused.
    pub refuse_in_100: Cell<u32>,
    pub refused: Cell<u64>,
}

impl<'a> SimStore<'a> {
    pub fn new(sched: &'a Sched) -> SimStore<'a> {
        SimStore {
            sched,
            data: RefCell::default(),
            refuse_in_100: Cell::new(0),
            refused: Cell::new(0),
        }
    }

    async fn op(&self) {
        self.sched.sleep(self.sched.below(8) as u64).await;
    }

    fn refuses(&self) -> bool {
        let r = self.refuse_in_100.get() as usize;
        let no = r > 0 && self.sched.below(100) < r;
        if no {
            self.refused.set(self.refused.get() + 1);
        }
        no
    }

    fn read(&self, key: &str) -> Option<String> {
        let now = self.sched.now.get();
        let data = self.data.borrow();
        let (value, expires) = data.get(key)?;
        expires.is_none_or(|at| now < at).then(|| value.clone())
    }
}

impl Store for SimStore<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.op().await;
        Ok(self.read(key))
    }
    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        assert!(keys.len() <= 100, "get_bulk takes at most 100 keys");
        self.op().await;
        Ok(keys.iter().map(|k| (k.clone(), self.read(k))).collect())
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.op().await;
        assert!(
            ttl.is_none_or(|t| t >= 60),
            "KV refuses expirationTtl below 60"
        );
        if self.refuses() {
            return Err(StoreError::TooManyWrites);
        }
        let expires = ttl.map(|t| self.sched.now.get() + t * 1000);
        if std::env::var("SIM_DEBUG_KEY").is_ok_and(|k| k == key) {
            let probe = std::env::var("SIM_DEBUG_PROBE").unwrap_or_default();
            let at = value.find(&format!("\"name\":\"{probe}\""));
            let vis = at
                .and_then(|i| value[i..].split("\"visibility\":").nth(1))
                .map(|v| &v[..9]);
            eprintln!(
                "{:>8} put {key} {probe}: {vis:?} head {}",
                self.sched.now.get() - crate::T0,
                &value[..value.len().min(120)]
            );
            if std::env::var("SIM_DEBUG_BT").is_ok() {
                eprintln!("{}", std::backtrace::Backtrace::force_capture());
            }
        }
        self.data
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), expires));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.op().await;
        if self.refuses() {
            return Err(StoreError::TooManyWrites);
        }
        if std::env::var("SIM_DEBUG_KEY").is_ok_and(|k| k == key) {
            eprintln!("{:>8} delete {key}", self.sched.now.get() - crate::T0);
        }
        self.data.borrow_mut().remove(key);
        Ok(())
    }
}

pub struct SimWorld<'a> {
    pub sched: &'a Sched,
    pub clock: SimClock<'a>,
    pub store: SimStore<'a>,
    pub gh: &'a SimGitHub<'a>,
    pub gh_dir: FromDirectory<'a>,
    pub directories: Directories,
    pub vars: Vec<(&'static str, String)>,
    pub cfg: Config,
    pub forge: GitHub,
    /// Requests and background jobs under way (an object is evicted only when none is).
    pub busy: Cell<usize>,
    pub alarms_busy: Cell<bool>,
    pub stop_alarms: Cell<bool>,
    /// Late alarms: up to this many ms after they were due.
    pub alarm_late_ms: Cell<u64>,
    pub trace: RefCell<Vec<String>>,
    pub responses: Cell<u64>,
}

/// The owners' directories as the service sees them, except that a refresh arms the alarm and
/// leaves it to the daemon (the object never runs two alarms at once).
pub struct SimOwners<'w, 'a> {
    pub local: LocalOwners<'w, SimStore<'a>, FromDirectory<'a>, SimClock<'a>>,
    pub world: &'w SimWorld<'a>,
}

impl Owners for SimOwners<'_, '_> {
    fn listing<'x>(
        &'x self,
        owner: &'x Owner,
        wait_ms: u64,
        start: bool,
    ) -> LocalBoxFuture<'x, Answer> {
        self.local.listing(owner, wait_ms, start)
    }
    fn refresh<'x>(&'x self, owner: &'x Owner) -> LocalBoxFuture<'x, Result<(), ApiError>> {
        Box::pin(async move {
            let d = self
                .local
                .directories
                .borrow_mut()
                .entry(owner.key())
                .or_default()
                .clone();
            let w = self.world;
            let svc = Service::new(&w.cfg, &w.store, &w.gh_dir, &w.clock, &w.forge);
            let dir = Directory::new(&svc, &d.storage, &d.memory, owner);
            if !dir.recently_built(w.cfg.fresh_ttl * 1000 / 2) && dir.start().await {
                d.alarm_at.set(Some(w.sched.now.get()));
            }
            Ok(())
        })
    }
    fn forget<'x>(
        &'x self,
        owner: &'x Owner,
        keys: &'x [String],
    ) -> LocalBoxFuture<'x, Result<(), ApiError>> {
        self.local.forget(owner, keys)
    }
    fn change<'x>(
        &'x self,
        owner: &'x Owner,
        changes: &'x [Change],
    ) -> LocalBoxFuture<'x, Result<Told, ApiError>> {
        self.local.change(owner, changes)
    }
    fn invalidate<'x>(
        &'x self,
        owner: &'x Owner,
        at_ms: u64,
    ) -> LocalBoxFuture<'x, Result<(), ApiError>> {
        self.local.invalidate(owner, at_ms)
    }
}

impl<'a> SimWorld<'a> {
    pub fn note(&self, line: String) {
        let mut t = self.trace.borrow_mut();
        t.push(format!("{:>8} {line}", self.sched.now.get() - crate::T0));
    }

    pub fn owners(&self) -> SimOwners<'_, 'a> {
        SimOwners {
            local: LocalOwners {
                cfg: &self.cfg,
                store: &self.store,
                transport: &self.gh_dir,
                clock: &self.clock,
                forge: &self.forge,
                directories: &self.directories,
            },
            world: self,
        }
    }

    /// One request through the worker's dispatcher; a deferred refresh becomes a task.
    pub async fn fetch(
        &'a self,
        sp: Spawner<'a>,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.busy.set(self.busy.get() + 1);
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let req = Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.to_vec(),
            body_too_large: body.len() > forgelens::http::MAX_BODY,
        };
        let config = Ok(self.cfg.clone());
        let set: Vec<_> = VARIABLES
            .iter()
            .map(|n| (*n, self.vars.iter().any(|(k, _)| k == n)))
            .collect();
        let owners = self.owners();
        let defer = |job: Refresh| self.defer(&sp, job);
        let ctx = Ctx {
            config: &config,
            set: &set,
            store: &self.store,
            transport: self.gh,
            clock: &self.clock,
            defer: Some(&defer),
            limiter: None,
            owners: Some(&owners as &dyn Owners),
            signer: None,
            assets: &forgelens::http::Embedded,
        };
        let resp = handle(&req, &ctx).await;
        self.busy.set(self.busy.get() - 1);
        self.responses.set(self.responses.get() + 1);
        resp
    }

    fn defer(&'a self, sp: &Spawner<'a>, job: Refresh) {
        self.busy.set(self.busy.get() + 1);
        sp.spawn("wait_until", async move {
            let owners = self.owners();
            let svc = Service::new(&self.cfg, &self.store, self.gh, &self.clock, &self.forge)
                .with_owners(&owners);
            svc.run_refresh(job).await;
            self.busy.set(self.busy.get() - 1);
        });
    }

    /// The objects' alarms: each fires when due (late by up to `alarm_late_ms`), one at a time
    /// per object, beside whatever requests it is serving.
    pub async fn alarm_daemon(&'a self) {
        while !self.stop_alarms.get() {
            let now = self.sched.now.get();
            let due: Vec<String> = self
                .directories
                .borrow()
                .iter()
                .filter(|(_, d)| d.alarm_at.get().is_some_and(|at| at <= now))
                .map(|(k, _)| k.clone())
                .collect();
            if due.is_empty() {
                self.sched.sleep(250).await;
                continue;
            }
            let late = self.sched.below(self.alarm_late_ms.get() as usize + 1) as u64;
            self.sched.sleep(late).await;
            for key in due {
                let Ok(owner) = Owner::parse(&key) else {
                    continue;
                };
                self.alarms_busy.set(true);
                self.note(format!("alarm {key}"));
                let owners = self.owners();
                owners.local.alarm(&owner).await;
                self.alarms_busy.set(false);
            }
        }
    }

    /// The object of `owner` loses its memory (its storage and alarm stay), when it is idle.
    pub fn evict(&self, owner: &str) -> bool {
        if self.busy.get() > 0 || self.alarms_busy.get() {
            return false;
        }
        let dirs = self.directories.borrow();
        let Some(d) = dirs.get(owner) else {
            return false;
        };
        *d.memory.borrow_mut() = forgelens::owners::directory::Memory::default();
        true
    }

    /// Every config variable of this world.
    pub fn config(vars: &[(&'static str, String)]) -> Config {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("the simulation's configuration is valid")
    }
}

//! The simulated deployment: two locations, each with its own isolate (memory tier) and its view
//! of KV (one central store with expiry and refusals, what each location read kept for a while),
//! the owner directories (the real `owners::object` orchestration over `LocalOwners`' `Host`
//! double, in location 0, in an isolate of their own or sharing location 0's) with an alarm
//! daemon that fires their alarms late or on time, and GitHub's model; requests go through
//! `http::handle` as the worker's fetch handler sends them.

use super::exec::{Sched, SimClock, Spawner};
use super::github::{FromDirectory, SimGitHub};
use super::isolate::Isolates;
use super::kv::{SimKv, SimStore};
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

/// Worker locations.
pub const LOCATIONS: usize = 2;

pub struct SimWorld<'a> {
    pub sched: &'a Sched,
    pub clock: SimClock<'a>,
    pub kv: &'a SimKv<'a>,
    /// Each location's view of KV; the objects live in location 0.
    pub stores: [SimStore<'a>; LOCATIONS],
    /// Isolates 0 and 1 are the locations' workers, 2 the objects' own.
    pub isolates: Isolates,
    /// The isolate the objects run in: their own (2), or location 0's worker's.
    pub object_isolate: usize,
    pub gh: &'a SimGitHub<'a>,
    pub gh_dir: FromDirectory<'a>,
    pub directories: Directories,
    pub vars: Vec<(&'static str, String)>,
    pub cfg: Config,
    pub forge: GitHub,
    /// Requests and background jobs under way (an object is evicted only when none is).
    pub busy: Cell<usize>,
    pub alarms_busy: Cell<bool>,
    /// When the owner's object was evicted (a new life does not know when the last round was).
    pub evicted_at: RefCell<Vec<u64>>,
    /// Until when a failure met under faults that have since ended may still be answered.
    pub failures_answered_until: Cell<u64>,
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
        self.in_object(self.local.listing(owner, wait_ms, start))
    }
    fn refresh<'x>(&'x self, owner: &'x Owner) -> LocalBoxFuture<'x, Result<(), ApiError>> {
        self.in_object(async move {
            let d = self
                .local
                .directories
                .borrow_mut()
                .entry(owner.key())
                .or_default()
                .clone();
            let w = self.world;
            let svc = Service::new(&w.cfg, &w.stores[0], &w.gh_dir, &w.clock, &w.forge);
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
        self.in_object(self.local.forget(owner, keys))
    }
    fn change<'x>(
        &'x self,
        owner: &'x Owner,
        changes: &'x [Change],
    ) -> LocalBoxFuture<'x, Result<Told, ApiError>> {
        self.in_object(self.local.change(owner, changes))
    }
    fn invalidate<'x>(
        &'x self,
        owner: &'x Owner,
        at_ms: u64,
    ) -> LocalBoxFuture<'x, Result<(), ApiError>> {
        self.in_object(self.local.invalidate(owner, at_ms))
    }
    fn delivered<'x>(
        &'x self,
        owner: &'x Owner,
        replayed: bool,
    ) -> LocalBoxFuture<'x, Result<(), ApiError>> {
        self.in_object(self.local.delivered(owner, replayed))
    }
    fn status<'x>(&'x self, owner: &'x Owner) -> LocalBoxFuture<'x, Result<String, ApiError>> {
        self.in_object(self.local.status(owner))
    }
}

impl<'w, 'a> SimOwners<'w, 'a> {
    /// A call into an object runs in the objects' isolate.
    fn in_object<'x, T: 'x>(
        &'x self,
        f: impl std::future::Future<Output = T> + 'x,
    ) -> LocalBoxFuture<'x, T> {
        Box::pin(self.world.isolates.run(self.world.object_isolate, f))
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
                store: &self.stores[0],
                transport: &self.gh_dir,
                clock: &self.clock,
                forge: &self.forge,
                directories: &self.directories,
            },
            world: self,
        }
    }

    /// One request to location `loc` through the worker's dispatcher, in that location's
    /// isolate; a deferred refresh becomes a task there.
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch(
        &'a self,
        sp: Spawner<'a>,
        loc: usize,
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
        let defer = |job: Refresh| self.defer(&sp, loc, job);
        let ctx = Ctx {
            config: &config,
            set: &set,
            store: &self.stores[loc],
            transport: self.gh,
            clock: &self.clock,
            defer: Some(&defer),
            limiter: None,
            owners: Some(&owners as &dyn Owners),
            signer: None,
            assets: &forgelens::http::Embedded,
            record: None,
        };
        let resp = self.isolates.run(loc, handle(&req, &ctx)).await;
        self.busy.set(self.busy.get() - 1);
        self.responses.set(self.responses.get() + 1);
        resp
    }

    /// The background work of location `loc` (a deferred refresh, the cron): `f` with that
    /// location's service, in its isolate, counted busy from now until it is done.
    fn in_background<R>(
        &'a self,
        loc: usize,
        f: impl AsyncFnOnce(&Service<'_, SimStore<'a>, SimGitHub<'a>, SimClock<'a>>) -> R + 'a,
    ) -> impl std::future::Future<Output = R> + 'a {
        self.busy.set(self.busy.get() + 1);
        async move {
            let owners = self.owners();
            let svc = Service::new(
                &self.cfg,
                &self.stores[loc],
                self.gh,
                &self.clock,
                &self.forge,
            )
            .with_owners(&owners);
            let out = self.isolates.run(loc, f(&svc)).await;
            self.busy.set(self.busy.get() - 1);
            out
        }
    }

    fn defer(&'a self, sp: &Spawner<'a>, loc: usize, job: Refresh) {
        sp.spawn(
            "wait_until",
            self.in_background(loc, async move |svc| svc.run_refresh(job).await),
        );
    }

    /// The cron's run in location `loc`: pinned owners whose listing is due are rebuilt.
    pub async fn cron(&'a self, loc: usize) -> Vec<String> {
        self.in_background(loc, async |svc| svc.refresh_pinned().await)
            .await
    }

    /// The cron's delivery recovery in location `loc`; the number of hooks it read.
    pub async fn recover(&'a self, loc: usize) -> usize {
        self.in_background(loc, async |svc| svc.recover().await.len())
            .await
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
                self.isolates
                    .run(self.object_isolate, owners.local.alarm(&owner))
                    .await;
                self.alarms_busy.set(false);
            }
        }
    }

    /// Whether `owner`'s object has nothing waiting: no change queued for GitHub, no listing
    /// waiting for its KV write.
    pub fn quiet(&self, owner: &str) -> bool {
        let Some(d) = self.directories.borrow().get(owner).cloned() else {
            return true;
        };
        let Ok(owner) = Owner::parse(owner) else {
            return true;
        };
        let svc = Service::new(
            &self.cfg,
            &self.stores[0],
            &self.gh_dir,
            &self.clock,
            &self.forge,
        );
        !Directory::new(&svc, &d.storage, &d.memory, &owner).queued()
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
        self.evicted_at.borrow_mut().push(self.sched.now.get());
        true
    }

    /// What `owner`'s object keeps in storage for a later life: `None` when it stores no live
    /// listing, else whether that listing loads (its meta line and every page readable).
    pub fn stored_listing_loads(&self, owner: &str) -> Option<bool> {
        use forgelens::owners::live;
        let dirs = self.directories.borrow();
        let data = dirs.get(owner)?.storage.data.borrow();
        let meta = data.get(live::LIVE_KEY)?;
        let Some((slot, count)) = live::meta_pages(meta) else {
            return Some(false);
        };
        let pages: Vec<Option<String>> = (0..count)
            .map(|i| data.get(&live::page_key(slot, i)).cloned())
            .collect();
        Some(live::Live::load(meta, &pages).is_some())
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

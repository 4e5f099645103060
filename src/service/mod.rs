//! The read path: cache first, then one bulk upstream request per 100 repositories, then store.
//! Generic over the three seams (`Store`, `Transport`, `Clock`) so it runs natively in tests with
//! in-memory doubles and in the worker with KV, `fetch` and `Date.now()`.
//!
//! **Architecture invariant**: errors are never stored as data, and a listing is stored only once
//! every page has arrived.

use crate::cache::entry::{self, Entry, Freshness};
use crate::cache::{keys, Store};
use crate::config::Config;
use crate::forge::{Forge, HttpCall, HttpReply};
use crate::model::Repo;
use crate::time::parse_rfc3339;
use directories::Owners;
use gate::Limit;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

mod batch;
mod credentials;
pub mod directories;
pub mod flight;
mod gate;
mod invalidate;
mod memo;
mod owner;
pub mod recover;
mod refresh;

pub use batch::{BatchItem, BatchServed, Item, Shown, Source};
pub use credentials::{
    forget_installations, AppSigner, Auth, INSTALLATION_TTL_S, NO_INSTALLATION_TTL_S,
};
pub use invalidate::KEYS_PER_INVOCATION;
pub use memo::Rendered;
pub use owner::{sort_by_name, Listing, OWNERS_BINDING};
pub use refresh::Refresh;

/// The wait one owner page (or one revalidation query) may take: GitHub's own server timeout.
pub const PAGE_TIMEOUT_MS: u64 = 10_000;
/// `Retry-After` when GitHub said it is rate limited but not until when.
pub const DEFAULT_RETRY_AFTER: u64 = 60;
/// KV refuses an `expirationTtl` below this.
pub const MIN_KV_TTL: u64 = 60;
/// How long an invalidation marker guards its key (KV's minimum TTL is 60 s).
pub const MARKER_TTL: u64 = 120;
/// Waits between retries of a refused KV operation: about 5 s in all.
pub const RETRY_DELAYS_MS: [u64; 6] = [100, 200, 400, 800, 1600, 1900];
/// The upstream budget of a background refresh (cron), below the ~30 s `wait_until` allows.
pub const BACKGROUND_BUDGET_MS: u64 = 25_000;

/// `futures::future::join_all` over `jobs`: the same concurrency, and the outputs in the jobs'
/// order. Each job is boxed and keeps its output in a slot of its own, so that every call site
/// shares one instantiation of `join_all` (its `FuturesOrdered` included) in the wasm.
pub(crate) async fn join_all<'a, T: 'a, F>(jobs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + 'a,
{
    type Job<'b> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'b>>;
    let jobs: Vec<F> = jobs.into_iter().collect();
    let slots: Vec<Cell<Option<T>>> = jobs.iter().map(|_| Cell::new(None)).collect();
    let boxed: Vec<Job<'_>> = jobs
        .into_iter()
        .zip(&slots)
        .map(|(job, slot)| Box::pin(async move { slot.set(Some(job.await)) }) as Job<'_>)
        .collect();
    futures::future::join_all(boxed).await;
    slots.into_iter().filter_map(Cell::into_inner).collect()
}

/// Sends one HTTP call; `Err` means no answer (timeout, connection failure) with a reason.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// # Errors
    /// A reason when no reply arrived within `timeout_ms`.
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String>;
}

#[allow(async_fn_in_trait)]
pub trait Clock {
    fn now_ms(&self) -> u64;
    /// Waits `ms` milliseconds (between retries of a refused KV operation).
    async fn sleep(&self, ms: u64);
}

/// The caller's budget of answers that need upstream (the `UPSTREAM_LIMITER` binding, keyed by
/// client). Dyn-compatible so the shell can hand one in without another type parameter.
pub trait Admit {
    /// Whether one more upstream-bound answer is allowed; asked at most once per request.
    fn admit(&self) -> futures::future::LocalBoxFuture<'_, bool>;
}

/// `Retry-After` for a client over its budget: the limiter's period (wrangler.toml).
pub const LIMITER_PERIOD_S: u64 = 60;

/// Milliseconds this request spent waiting on each backend (`Server-Timing`); `None` when unused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub mem_ms: Option<u64>,
    pub kv_ms: Option<u64>,
    pub owner_ms: Option<u64>,
    pub upstream_ms: Option<u64>,
}

/// What this request asked of GitHub: every upstream request, and the GraphQL ones' points (each
/// asks at most 100 nodes and no nested connection, which GitHub prices at 1 point).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub upstream: u32,
    pub points: u32,
}

/// Where an answer came from, ordered weakest last so a batch can report `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheStatus {
    Hit,
    Stale,
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Stale => "STALE",
            CacheStatus::Miss => "MISS",
        }
    }
}

/// A listing and how it was obtained.
#[derive(Debug, Clone)]
pub struct Served<T> {
    pub value: Rc<T>,
    pub fetched_at_ms: u64,
    pub status: CacheStatus,
    pub freshness: Freshness,
}

pub struct Service<'a, S, T, C> {
    pub cfg: &'a Config,
    pub store: &'a S,
    pub transport: &'a T,
    pub clock: &'a C,
    pub forge: &'a dyn Forge,
    /// One upstream budget for the whole incoming request, across all pages.
    deadline_ms: u64,
    /// Hands a background refresh to the shell (`ctx.wait_until`); `None` refreshes nothing.
    defer: Option<&'a dyn Fn(Refresh)>,
    /// The remembered budget per `v1:ratelimit:*` key (one per installation or token), read
    /// from KV at most once per request.
    // A request touches a few credentials at most: a Vec is smaller in the wasm than a map.
    limited_until: RefCell<Vec<(String, Option<Limit>)>>,
    /// Work that keeps the cache right (today a `PINNED_ORGS` owner's pages, see `owner_page`):
    /// it goes on below `GITHUB_BUDGET_RESERVE`, other calls wait for the reset.
    essential: bool,
    /// Signs App JWTs (WebCrypto in the worker); `None` where no App call can be made.
    signer: Option<&'a dyn AppSigner>,
    /// The owner directories (the `OWNERS` Durable Objects); `None` inside a directory.
    owners: Option<&'a dyn Owners>,
    /// The caller's budget; `None` for background work and when the binding is absent.
    limiter: Option<&'a dyn Admit>,
    /// The limiter's verdict, asked at most once per request.
    admitted: Cell<Option<bool>>,
    /// Installations this request looked up by REST (see `credentials::MAX_LOOKUPS`).
    lookups: Cell<u8>,
    timing: Cell<Timing>,
    usage: Cell<Usage>,
}

impl<'a, S: Store, T: Transport, C: Clock> Service<'a, S, T, C> {
    pub fn new(
        cfg: &'a Config,
        store: &'a S,
        transport: &'a T,
        clock: &'a C,
        forge: &'a dyn Forge,
    ) -> Self {
        let deadline_ms = clock.now_ms().saturating_add(cfg.upstream_timeout_ms);
        Service {
            cfg,
            store,
            transport,
            clock,
            forge,
            deadline_ms,
            defer: None,
            limited_until: RefCell::new(Vec::new()),
            essential: false,
            signer: None,
            owners: None,
            limiter: None,
            admitted: Cell::new(None),
            lookups: Cell::new(0),
            timing: Cell::default(),
            usage: Cell::default(),
        }
    }

    /// Lets the service sign App JWTs (GitHub App mode).
    pub fn with_signer(mut self, signer: &'a dyn AppSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Sends owner listings to their directories.
    pub fn with_owners(mut self, owners: &'a dyn Owners) -> Self {
        self.owners = Some(owners);
        self
    }

    /// Makes answers that need upstream count against the caller's budget.
    pub fn with_limiter(mut self, limiter: &'a dyn Admit) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Where this request's time went so far.
    pub fn timing(&self) -> Timing {
        self.timing.get()
    }

    /// What this service asked of GitHub so far.
    pub fn usage(&self) -> Usage {
        self.usage.get()
    }

    /// Counts one upstream request (`graphql`: one that costs GitHub points).
    fn asked_upstream(&self, graphql: bool) {
        let mut u = self.usage.get();
        u.upstream = u.upstream.saturating_add(1);
        u.points = u.points.saturating_add(u32::from(graphql));
        self.usage.set(u);
    }

    /// Adds `since_ms` until now to one backend's total.
    fn spent(&self, pick: fn(&mut Timing) -> &mut Option<u64>, since_ms: u64) {
        let mut t = self.timing.get();
        let slot = pick(&mut t);
        *slot = Some(slot.unwrap_or(0) + self.clock.now_ms().saturating_sub(since_ms));
        self.timing.set(t);
    }

    /// Lets stale answers be refreshed after the response through `defer`.
    pub fn with_defer(mut self, defer: &'a dyn Fn(Refresh)) -> Self {
        self.defer = Some(defer);
        self
    }

    /// A store that cannot be read is treated as empty: the request still gets an answer.
    async fn read<V: crate::json::Codec>(&self, key: &str) -> Option<Entry<V>> {
        let started = self.clock.now_ms();
        let text = self.store.get(key).await.ok().flatten();
        self.spent(|t| &mut t.kv_ms, started);
        entry::decode(&text?)
    }

    async fn read_bulk(&self, keys: &[String]) -> HashMap<String, Option<String>> {
        let started = self.clock.now_ms();
        let found = self.store.get_bulk(keys).await.unwrap_or_default();
        self.spent(|t| &mut t.kv_ms, started);
        found
    }

    /// Encodes and stores fetched records after the response when the shell can run work then
    /// (the answer waits neither for the encoding nor for KV), else now.
    async fn store_later(&self, records: Vec<(String, Option<Repo>, Option<u64>)>, sent_at: u64) {
        if self.defer.is_some() {
            self.schedule(Refresh::Store { records, sent_at });
        } else {
            self.store_fetched(encode_records(&records, sent_at), sent_at)
                .await;
        }
    }

    /// Whether `key` was invalidated at or after `sent_at`, as its marker says.
    pub(crate) async fn invalidated_since(&self, key: &str, sent_at: u64) -> bool {
        let marker = keys::invalidation_marker(key);
        // `read_bulk` rather than a get of its own: the code is already there for the writes.
        let seen = self.read_bulk(std::slice::from_ref(&marker)).await;
        seen.get(&marker)
            .and_then(|v| v.as_deref())
            .and_then(parse_rfc3339)
            .is_some_and(|at| at >= sent_at)
    }

    /// Stores what an upstream request sent at `sent_at` returned, except over keys invalidated
    /// since then: GitHub may have answered before the change the invalidation announced, and
    /// writing that answer back would resurrect it for a whole TTL. All markers are read in one
    /// `get_bulk`. Fresh data that cannot be written (KV allows one write per key per second) is
    /// dropped: the next miss fetches it again, which is cheaper than failing the request.
    ///
    /// Returns how many writes were skipped because an invalidation superseded them.
    pub(crate) async fn store_fetched(
        &self,
        writes: Vec<(String, String, Option<u64>)>,
        sent_at: u64,
    ) -> usize {
        self.store_fetched_counted(writes, sent_at).await.superseded
    }

    /// `store_fetched`, saying also how many writes KV refused (a live listing's write must
    /// land: it is tried again).
    pub(crate) async fn store_fetched_counted(
        &self,
        writes: Vec<(String, String, Option<u64>)>,
        sent_at: u64,
    ) -> Stored {
        let markers: Vec<String> = writes
            .iter()
            .map(|(k, _, _)| keys::invalidation_marker(k))
            .collect();
        let seen = self.read_bulk(&markers).await;
        let invalidated_after = |marker: &String| {
            seen.get(marker)
                .and_then(|v| v.as_deref())
                .and_then(parse_rfc3339)
                .is_some_and(|at| at >= sent_at)
        };
        let superseded = markers.iter().filter(|m| invalidated_after(m)).count();
        let allowed = writes
            .iter()
            .zip(&markers)
            .filter(|(_, m)| !invalidated_after(m))
            .map(|((k, t, ttl), _)| self.store.put(k, t, *ttl));
        let started = self.clock.now_ms();
        let refused = join_all(allowed)
            .await
            .iter()
            .filter(|r| r.is_err())
            .count();
        self.spent(|t| &mut t.kv_ms, started);
        Stored {
            superseded,
            refused,
        }
    }
}

/// What became of guarded writes of fetched data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stored {
    /// Skipped: an invalidation came after the data was asked.
    pub superseded: usize,
    /// Refused by KV (429): dropped.
    pub refused: usize,
}

/// The KV writes of fetched records (`None`: not found), `(key, entry text, ttl)`.
pub(super) fn encode_records(
    records: &[(String, Option<Repo>, Option<u64>)],
    sent_at: u64,
) -> Vec<(String, String, Option<u64>)> {
    records
        .iter()
        .map(|(key, repo, ttl)| (key.clone(), entry::encode(sent_at, repo.as_ref()), *ttl))
        .collect()
}

fn served<T>(
    value: Rc<T>,
    fetched_at_ms: u64,
    status: CacheStatus,
    freshness: Freshness,
) -> Served<T> {
    Served {
        value,
        fetched_at_ms,
        status,
        freshness,
    }
}

fn set<I>(items: &mut [Option<I>], i: usize, item: I) {
    if let Some(slot) = items.get_mut(i) {
        *slot = Some(item);
    }
}

//! The read path: cache first, then one bulk upstream request per 100 repositories, then store.
//! Generic over the three seams (`Store`, `Transport`, `Clock`) so it runs natively in tests with
//! in-memory doubles and in the worker with KV, `fetch` and `Date.now()`.
//!
//! **Architecture invariant**: errors are never stored as data, and a listing is stored only once
//! every page has arrived.

use crate::cache::entry::{self, Entry, Freshness};
use crate::cache::{keys, Store};
use crate::config::Config;
use crate::error::ApiError;
use crate::forge::{BatchAnswer, Forge, HttpCall, HttpReply, OwnerPage, RateInfo, UpstreamFailure};
use crate::model::Repo;
use crate::owners::Owners;
use crate::time::{format_rfc3339, parse_rfc3339};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

mod batch;
mod credentials;
pub mod flight;
mod invalidate;
mod memo;
mod owner;
mod refresh;

pub use batch::{BatchItem, BatchServed, Item, Shown, Source};
pub use credentials::{
    forget_installations, AppSigner, Auth, INSTALLATION_TTL_S, NO_INSTALLATION_TTL_S,
};
pub use invalidate::KEYS_PER_INVOCATION;
pub use memo::Rendered;
pub use owner::{sort_by_name, Listing, OWNERS_BINDING};
pub use refresh::Refresh;

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

/// What is remembered of a credential's GitHub budget until `until_ms` (its reset): spent, or
/// only `low` (below `GITHUB_BUDGET_RESERVE`: only essential work goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub until_ms: u64,
    pub low: bool,
}

/// How a low budget is written in KV; a spent one is the bare reset time.
const LOW_PREFIX: &str = "low ";

impl Limit {
    fn encode(self) -> String {
        let at = format_rfc3339(self.until_ms);
        if self.low {
            format!("{LOW_PREFIX}{at}")
        } else {
            at
        }
    }

    fn decode(text: &str) -> Option<Limit> {
        let (low, at) = match text.strip_prefix(LOW_PREFIX) {
            Some(at) => (true, at),
            None => (false, text),
        };
        parse_rfc3339(at).map(|until_ms| Limit { until_ms, low })
    }

    /// Whether this limit stops a call now (`essential` work goes on while it is only low).
    fn stops(self, now_ms: u64, essential: bool) -> bool {
        self.until_ms > now_ms && !(self.low && essential)
    }
}

/// Milliseconds this request spent waiting on each backend (`Server-Timing`); `None` when unused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub mem_ms: Option<u64>,
    pub kv_ms: Option<u64>,
    pub owner_ms: Option<u64>,
    pub upstream_ms: Option<u64>,
}

impl Timing {
    /// The `Server-Timing` header value, or `None` when no backend was used.
    pub fn header(&self) -> Option<String> {
        let parts: Vec<String> = [
            ("mem", self.mem_ms),
            ("kv", self.kv_ms),
            ("owner", self.owner_ms),
            ("upstream", self.upstream_ms),
        ]
        .iter()
        .filter_map(|(name, ms)| ms.map(|ms| format!("{name};dur={ms}")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
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

    /// Adds `since_ms` until now to one backend's total.
    fn spent(&self, pick: fn(&mut Timing) -> &mut Option<u64>, since_ms: u64) {
        let mut t = self.timing.get();
        let slot = pick(&mut t);
        *slot = Some(slot.unwrap_or(0) + self.clock.now_ms().saturating_sub(since_ms));
        self.timing.set(t);
    }

    /// Whether the caller may cause an upstream call (asked once per request).
    async fn admitted(&self) -> bool {
        let Some(limiter) = self.limiter else {
            return true;
        };
        if let Some(known) = self.admitted.get() {
            return known;
        }
        let ok = limiter.admit().await;
        self.admitted.set(Some(ok));
        ok
    }

    /// For an answer holding a name answered `not_found` (missing, or a record the caller may
    /// not see): such a name costs the caller's budget what a name GitHub does not have would
    /// (asked once per request, like any upstream-bound answer), and `Server-Timing` names every
    /// backend a lookup may use, so neither the limiter nor the metric names tell a hidden
    /// record from a missing one. Returns whether the caller is admitted.
    pub async fn charge_unseen(&self) -> bool {
        let mut t = self.timing.get();
        for slot in [&mut t.mem_ms, &mut t.kv_ms, &mut t.upstream_ms] {
            slot.get_or_insert(0);
        }
        self.timing.set(t);
        self.admitted().await
    }

    /// Lets stale answers be refreshed after the response through `defer`.
    pub fn with_defer(mut self, defer: &'a dyn Fn(Refresh)) -> Self {
        self.defer = Some(defer);
        self
    }

    /// The same service with its own upstream budget (background work).
    fn with_budget(&self, budget_ms: u64) -> Self {
        Service {
            deadline_ms: self.clock.now_ms().saturating_add(budget_ms),
            limited_until: RefCell::new(self.limited_until.borrow().clone()),
            // Background work is not the caller's: it is never limited or timed.
            limiter: None,
            admitted: Cell::new(None),
            lookups: Cell::new(self.lookups.get()),
            timing: Cell::default(),
            ..*self
        }
    }
    /// One upstream round trip with what is left of the request's budget, unless GitHub said
    /// the rate limit is spent: then no call is made until the reset.
    async fn call<R: HasRate>(
        &self,
        auth: &Auth,
        build: impl Fn(&dyn Forge) -> HttpCall,
        parse: impl Fn(&dyn Forge, &HttpReply) -> Result<R, UpstreamFailure>,
    ) -> Result<R, UpstreamFailure> {
        let rate_key = &auth.rate_key;
        if let Some(held) = self.held_back(rate_key, self.essential).await {
            return Err(held);
        }
        if !self.admitted().await {
            return Err(UpstreamFailure::ClientLimited);
        }
        let now = self.clock.now_ms();
        let left = self.deadline_ms.saturating_sub(now);
        if left == 0 {
            return Err(UpstreamFailure::Unavailable(
                "request deadline reached".into(),
            ));
        }
        let reply = self.transport.send(&build(self.forge), left).await;
        self.spent(|t| &mut t.upstream_ms, now);
        let reply = reply.map_err(UpstreamFailure::Unavailable)?;
        if let (401, Some((id, key))) = (reply.status, &auth.installation) {
            // Revoked, or the App was uninstalled or suspended: not installed for a minute.
            self.not_installed(*id, key).await;
        }
        let parsed = parse(self.forge, &reply);
        match &parsed {
            Ok(answer) => {
                if let Some(rate) = answer.rate() {
                    let low = rate.below_reserve(self.cfg.budget_reserve);
                    let limit = Limit {
                        until_ms: rate.reset_at_ms,
                        low: rate.remaining > 0,
                    };
                    // Written once per window and state, not on every answer.
                    let news = self.limited_until(rate_key).await != Some(limit);
                    if (rate.remaining == 0 || low) && news {
                        self.remember_limit(rate_key, limit).await;
                    }
                }
            }
            Err(failure) => self.remember_failure(rate_key, failure).await,
        }
        parsed
    }

    /// The failure a call with the credential behind `rate_key` meets before it is sent, while
    /// a remembered limit holds it back (`essential` work goes on while the budget is only low).
    async fn held_back(&self, rate_key: &str, essential: bool) -> Option<UpstreamFailure> {
        let now = self.clock.now_ms();
        let limit = self.limited_until(rate_key).await?;
        limit
            .stops(now, essential)
            .then_some(UpstreamFailure::RateLimited {
                retry_after_s: None,
                reset_at_ms: Some(limit.until_ms),
            })
    }

    /// Remembers a spent rate limit GitHub reported (a reset time, a `retry-after`, or neither).
    async fn remember_failure(&self, rate_key: &str, failure: &UpstreamFailure) {
        let UpstreamFailure::RateLimited {
            retry_after_s,
            reset_at_ms,
        } = failure
        else {
            return;
        };
        let now = self.clock.now_ms();
        let from_retry = retry_after_s.map(|s| now.saturating_add(s.saturating_mul(1000)));
        let until_ms = reset_at_ms
            .or(from_retry)
            .unwrap_or(now + DEFAULT_RETRY_AFTER * 1000);
        let limit = Limit {
            until_ms,
            low: false,
        };
        self.remember_limit(rate_key, limit).await;
    }

    /// The budget remembered under `rate_key`, if any (read once per request and key).
    pub(crate) async fn limited_until(&self, rate_key: &str) -> Option<Limit> {
        if let Some((_, known)) = self
            .limited_until
            .borrow()
            .iter()
            .find(|(k, _)| k == rate_key)
        {
            return *known;
        }
        let started = self.clock.now_ms();
        let text = self.store.get(rate_key).await.ok().flatten();
        self.spent(|t| &mut t.kv_ms, started);
        let limit = text.as_deref().and_then(Limit::decode);
        self.set_limit(rate_key, limit);
        limit
    }

    fn set_limit(&self, rate_key: &str, until: Option<Limit>) {
        let mut known = self.limited_until.borrow_mut();
        match known.iter_mut().find(|(k, _)| k == rate_key) {
            Some((_, slot)) => *slot = until,
            None => known.push((rate_key.to_string(), until)),
        }
    }

    /// Remembers in KV, so other isolates and objects see it too, that no call (or only
    /// essential ones) with this credential should be made until the reset.
    async fn remember_limit(&self, rate_key: &str, limit: Limit) {
        self.set_limit(rate_key, Some(limit));
        let ttl = limit
            .until_ms
            .saturating_sub(self.clock.now_ms())
            .div_ceil(1000)
            .max(MIN_KV_TTL);
        let _ = self.store.put(rate_key, &limit.encode(), Some(ttl)).await;
    }

    pub(crate) fn failure_to_error(&self, failure: UpstreamFailure) -> ApiError {
        match failure {
            UpstreamFailure::NotFound => ApiError::NotFound,
            UpstreamFailure::Unusable(detail) | UpstreamFailure::Overloaded(detail) => {
                ApiError::Upstream(detail)
            }
            UpstreamFailure::Unavailable(detail) => ApiError::UpstreamUnavailable(detail),
            UpstreamFailure::ClientLimited => ApiError::ClientRateLimited {
                retry_after: LIMITER_PERIOD_S,
            },
            UpstreamFailure::RateLimited {
                retry_after_s,
                reset_at_ms,
            } => {
                let from_reset =
                    reset_at_ms.map(|r| r.saturating_sub(self.clock.now_ms()).div_ceil(1000));
                let retry_after = retry_after_s
                    .or(from_reset)
                    .unwrap_or(DEFAULT_RETRY_AFTER)
                    .max(1);
                ApiError::RateLimited { retry_after }
            }
        }
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
        futures::future::join_all(allowed).await;
        self.spent(|t| &mut t.kv_ms, started);
        superseded
    }
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

/// Replies that report GitHub's remaining rate-limit budget.
trait HasRate {
    fn rate(&self) -> Option<RateInfo>;
}

impl HasRate for OwnerPage {
    fn rate(&self) -> Option<RateInfo> {
        self.rate
    }
}

impl HasRate for BatchAnswer {
    fn rate(&self) -> Option<RateInfo> {
        self.rate
    }
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

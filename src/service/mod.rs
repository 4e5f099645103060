//! The read path: cache first, then one bulk upstream request per 100 repositories, then store.
//! Generic over the three seams (`Store`, `Transport`, `Clock`) so it runs natively in tests with
//! in-memory doubles and in the worker with KV, `fetch` and `Date.now()`.
//!
//! **Architecture invariant**: errors are never stored as data, and a listing is stored only once
//! every page has arrived.

use crate::cache::entry::{self, Entry, Freshness, NOT_FOUND_TTL};
use crate::cache::{keys, Store, StoreError};
use crate::config::Config;
use crate::error::ApiError;
use crate::forge::{
    BatchAnswer, Forge, HttpCall, HttpReply, OwnerPage, RateInfo, UpstreamFailure, BATCH_MAX,
};
use crate::model::{OwnerListing, Repo};
use crate::names::{FullName, Owner, RepoName};
use crate::time::{format_rfc3339, parse_rfc3339};
use std::collections::HashMap;

pub mod flight;

/// Pages an owner listing may take (10,000 repositories) before it is called unusable; guards
/// against an upstream that never stops saying `hasNextPage`.
pub const MAX_OWNER_PAGES: usize = 100;
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
    pub value: T,
    pub fetched_at_ms: u64,
    pub status: CacheStatus,
    pub freshness: Freshness,
}

/// One name of a batch.
// Items live briefly in one Vec per request; boxing `Repo` would add an allocation per name.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Found(Repo),
    NotFound,
    Failed(ApiError),
}

#[derive(Debug, Clone)]
pub struct BatchServed {
    pub items: Vec<Item>,
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
    /// The remembered rate-limit reset, read from KV at most once per request.
    limited_until: std::cell::Cell<Option<Option<u64>>>,
}

/// A refresh to run after the response, with owned data only (it outlives the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Owner(Owner),
    Repos(Vec<FullName>),
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
            limited_until: std::cell::Cell::new(None),
        }
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
            limited_until: std::cell::Cell::new(self.limited_until.get()),
            ..*self
        }
    }

    /// Every repository of `owner`, private ones included; the caller makes the view.
    /// A stale listing is answered at once and refreshed after the response.
    ///
    /// # Errors
    /// `NotFound` for an unknown owner; upstream errors when nothing usable is cached.
    pub async fn owner_listing(&self, owner: &Owner) -> Result<Served<OwnerListing>, ApiError> {
        let key = keys::org(owner);
        let cached: Option<Entry<OwnerListing>> = self.read(&key).await;
        if let Some(e) = cached {
            match (
                entry::freshness(&e, self.clock.now_ms(), self.cfg.fresh_ttl),
                e.data,
            ) {
                (fresh @ Freshness::Fresh { .. }, Some(listing)) => {
                    return Ok(served(listing, e.fetched_at_ms, CacheStatus::Hit, fresh));
                }
                (Freshness::Fresh { .. }, None) => return Err(ApiError::NotFound),
                (Freshness::Stale, Some(listing)) => {
                    self.schedule(Refresh::Owner(owner.clone()));
                    let stale = served(
                        listing,
                        e.fetched_at_ms,
                        CacheStatus::Stale,
                        Freshness::Stale,
                    );
                    return Ok(stale);
                }
                // An expired not-found answer is asked again.
                (Freshness::Stale, None) => {}
            }
        }
        let (outcome, sent_at) = self.fetch_owner_shared(owner).await;
        match outcome {
            Ok(listing) => {
                let fresh = Freshness::Fresh {
                    left_s: self.cfg.fresh_ttl,
                };
                Ok(served(listing, sent_at, CacheStatus::Miss, fresh))
            }
            Err(failure) => Err(self.failure_to_error(failure)),
        }
    }

    /// Fetches and stores an owner listing, sharing the work with concurrent requests for the
    /// same owner in this isolate. Returns the outcome and when the upstream request was sent.
    async fn fetch_owner_shared(
        &self,
        owner: &Owner,
    ) -> (Result<OwnerListing, UpstreamFailure>, u64) {
        type Outcome = (Result<OwnerListing, UpstreamFailure>, u64);
        let key = keys::org(owner);
        let lead = match flight::join::<Outcome, C>(&key, self.clock, self.deadline_ms).await {
            flight::Joined::Shared(outcome) if shareable(&outcome.0) => return outcome,
            flight::Joined::Lead(lead) => Some(lead),
            _ => None,
        };
        let outcome = self.fetch_and_store_owner(owner).await;
        if let Some(lead) = lead {
            lead.finish(outcome.clone());
        }
        outcome
    }

    /// One owner listing from upstream into the cache: all pages, or nothing.
    async fn fetch_and_store_owner(
        &self,
        owner: &Owner,
    ) -> (Result<OwnerListing, UpstreamFailure>, u64) {
        let key = keys::org(owner);
        let sent_at = self.clock.now_ms();
        let outcome = self.fetch_owner(owner).await;
        match &outcome {
            Ok(listing) => {
                let ttl = (!self.cfg.is_pinned(owner)).then_some(self.cfg.stale_ttl);
                let text = entry::encode(sent_at, Some(listing));
                self.store_fetched(vec![(key, text, ttl)], sent_at).await;
            }
            Err(UpstreamFailure::NotFound) => {
                let text = entry::encode::<OwnerListing>(sent_at, None);
                self.store_fetched(vec![(key, text, Some(NOT_FOUND_TTL))], sent_at)
                    .await;
            }
            Err(_) => {}
        }
        (outcome, sent_at)
    }

    /// Hands `job` to the shell unless a refresh of the same keys is already under way here.
    fn schedule(&self, job: Refresh) {
        let Some(defer) = self.defer else { return };
        let now = self.clock.now_ms();
        let job = match job {
            Refresh::Owner(owner) => {
                flight::claim_refresh(&keys::org(&owner), now).then_some(Refresh::Owner(owner))
            }
            Refresh::Repos(names) => {
                let claimed: Vec<FullName> = names
                    .into_iter()
                    .filter(|n| flight::claim_refresh(&keys::repo(n), now))
                    .collect();
                (!claimed.is_empty()).then_some(Refresh::Repos(claimed))
            }
        };
        if let Some(job) = job {
            defer(job);
        }
    }

    /// Runs a deferred refresh with its own upstream budget, then releases its claims. A failed
    /// refresh leaves the entry as it was.
    pub async fn run_refresh(&self, job: Refresh) {
        let bg = self.with_budget(BACKGROUND_BUDGET_MS);
        match &job {
            Refresh::Owner(owner) => {
                let _ = bg.fetch_and_store_owner(owner).await;
                flight::release_refresh(&keys::org(owner));
            }
            Refresh::Repos(names) => {
                let _ = bg.fetch_and_store_repos(names).await;
                for n in names {
                    flight::release_refresh(&keys::repo(n));
                }
            }
        }
    }

    /// Up to `BATCH_MAX` distinct names, answered in order: cache (stale entries at once, then
    /// refreshed after the response), then a fresh owner listing, then one upstream call for
    /// whatever is still missing.
    ///
    /// # Errors
    /// `TooManyNames` past `BATCH_MAX`; per-name failures are reported as `Item::Failed`.
    pub async fn repos(&self, names: &[FullName]) -> Result<BatchServed, ApiError> {
        if names.len() > BATCH_MAX {
            return Err(ApiError::TooManyNames {
                count: names.len(),
                max: BATCH_MAX,
            });
        }
        let now = self.clock.now_ms();
        let keys: Vec<String> = names.iter().map(keys::repo).collect();
        let stored = self.read_bulk(&keys).await;
        let mut items: Vec<Option<Item>> = vec![None; names.len()];
        let mut fallback: HashMap<usize, Repo> = HashMap::new();
        let mut status = CacheStatus::Hit;
        let mut fresh_left = u64::MAX;
        let mut to_refresh = Vec::new();

        for (i, key) in keys.iter().enumerate() {
            let Some(e) = stored
                .get(key)
                .and_then(|t| t.as_deref())
                .and_then(entry::decode::<Repo>)
            else {
                continue;
            };
            match (entry::freshness(&e, now, self.cfg.fresh_ttl), e.data) {
                (Freshness::Fresh { left_s }, data) => {
                    fresh_left = fresh_left.min(left_s);
                    set(&mut items, i, data.map_or(Item::NotFound, Item::Found));
                }
                (Freshness::Stale, Some(repo)) => {
                    // A stale part must not be kept by browsers, whatever else the batch holds.
                    status = CacheStatus::Stale;
                    fresh_left = 0;
                    to_refresh.extend(names.get(i).cloned());
                    set(&mut items, i, Item::Found(repo));
                }
                (Freshness::Stale, None) => {}
            }
        }
        if !to_refresh.is_empty() {
            self.schedule(Refresh::Repos(to_refresh));
        }

        self.fill_from_listings(names, &mut items, &mut fallback, &mut fresh_left)
            .await;

        let missing: Vec<usize> = (0..names.len())
            .filter(|i| items.get(*i).is_some_and(Option::is_none))
            .collect();
        if !missing.is_empty() {
            let wanted: Vec<FullName> = missing
                .iter()
                .filter_map(|i| names.get(*i).cloned())
                .collect();
            match self.fetch_repos_shared(&wanted).await {
                Ok(found) => {
                    status = CacheStatus::Miss;
                    fresh_left = fresh_left.min(self.cfg.fresh_ttl);
                    for (i, repo) in missing.iter().zip(found) {
                        set(&mut items, *i, repo.map_or(Item::NotFound, Item::Found));
                    }
                }
                Err(failure) => {
                    let err = self.failure_to_error(failure);
                    for i in missing {
                        let item = match fallback.remove(&i) {
                            Some(repo) => {
                                status = status.max(CacheStatus::Stale);
                                Item::Found(repo)
                            }
                            None => {
                                // A per-name failure must not be kept by browsers.
                                status = CacheStatus::Miss;
                                fresh_left = 0;
                                Item::Failed(err.clone())
                            }
                        };
                        set(&mut items, i, item);
                    }
                }
            }
        }

        let freshness = if status == CacheStatus::Stale || fresh_left == u64::MAX {
            Freshness::Stale
        } else {
            Freshness::Fresh { left_s: fresh_left }
        };
        let items = items
            .into_iter()
            .map(|i| i.unwrap_or(Item::Failed(ApiError::Internal)))
            .collect();
        Ok(BatchServed {
            items,
            status,
            freshness,
        })
    }

    /// `fetch_and_store_repos`, shared with concurrent requests for the same set of names.
    async fn fetch_repos_shared(
        &self,
        names: &[FullName],
    ) -> Result<Vec<Option<Repo>>, UpstreamFailure> {
        type Outcome = Result<Vec<Option<Repo>>, UpstreamFailure>;
        let mut flight_key: Vec<String> = names.iter().map(FullName::key).collect();
        flight_key.sort();
        let flight_key = format!("batch:{}", flight_key.join(","));
        let lead = match flight::join::<(Vec<FullName>, Outcome), C>(
            &flight_key,
            self.clock,
            self.deadline_ms,
        )
        .await
        {
            // The leader asked in its own order; answer in ours.
            flight::Joined::Shared((asked, Ok(found))) => {
                return Ok(names
                    .iter()
                    .map(|n| {
                        asked
                            .iter()
                            .position(|a| a.key() == n.key())
                            .and_then(|p| found.get(p).cloned().flatten())
                    })
                    .collect());
            }
            flight::Joined::Lead(lead) => Some(lead),
            _ => None,
        };
        let outcome = self.fetch_and_store_repos(names).await;
        if let Some(lead) = lead {
            if outcome.is_ok() {
                lead.finish((names.to_vec(), outcome.clone()));
            }
        }
        outcome
    }

    /// One batch call for `names`, written per repository (not-found ones for 60 s).
    async fn fetch_and_store_repos(
        &self,
        names: &[FullName],
    ) -> Result<Vec<Option<Repo>>, UpstreamFailure> {
        let sent_at = self.clock.now_ms();
        let answer = self
            .call(
                |f| f.batch_call(names),
                |f, r| f.parse_batch(names.len(), r),
            )
            .await?;
        let writes = names
            .iter()
            .zip(&answer.repos)
            .map(|(name, repo)| match repo {
                Some(r) => (
                    keys::repo(name),
                    entry::encode(sent_at, Some(r)),
                    Some(self.cfg.stale_ttl),
                ),
                None => (
                    keys::repo(name),
                    entry::encode::<Repo>(sent_at, None),
                    Some(NOT_FOUND_TTL),
                ),
            })
            .collect();
        self.store_fetched(writes, sent_at).await;
        Ok(answer.repos)
    }

    /// Answers cache misses from fresh owner listings (one `get_bulk` for all their owners), so a
    /// dashboard that loaded an org listing does not pay again for its repositories.
    ///
    /// Stale listings answer nothing, but their records join `fallback` should GitHub fail
    /// (stale-if-error).
    async fn fill_from_listings(
        &self,
        names: &[FullName],
        items: &mut [Option<Item>],
        fallback: &mut HashMap<usize, Repo>,
        fresh_left: &mut u64,
    ) {
        let mut owners: Vec<String> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let key = keys::org(&n.owner);
            if items.get(i).is_some_and(Option::is_none) && !owners.contains(&key) {
                owners.push(key);
            }
        }
        if owners.is_empty() {
            return;
        }
        let stored = self.read_bulk(&owners).await;
        let now = self.clock.now_ms();
        let mut listings: HashMap<String, (Entry<OwnerListing>, Freshness)> = HashMap::new();
        for key in owners {
            let Some(e) = stored
                .get(&key)
                .and_then(|t| t.as_deref())
                .and_then(entry::decode::<OwnerListing>)
            else {
                continue;
            };
            let freshness = entry::freshness(&e, now, self.cfg.fresh_ttl);
            listings.insert(key, (e, freshness));
        }
        for (i, n) in names.iter().enumerate() {
            if !items.get(i).is_some_and(Option::is_none) {
                continue;
            }
            let Some((listing, freshness)) = listings.get(&keys::org(&n.owner)) else {
                continue;
            };
            let Freshness::Fresh { left_s } = freshness else {
                let old = listing.data.as_ref().and_then(|l| find_repo(l, &n.repo));
                if let Some(repo) = old {
                    fallback.entry(i).or_insert_with(|| repo.clone());
                }
                continue;
            };
            let found = match &listing.data {
                // The owner does not exist, so neither does the repository.
                None => Some(Item::NotFound),
                // Not in the listing may still be an old name GitHub redirects: ask upstream.
                Some(l) => find_repo(l, &n.repo).map(|r| Item::Found(r.clone())),
            };
            if let Some(item) = found {
                *fresh_left = (*fresh_left).min(*left_s);
                set(items, i, item);
            }
        }
    }

    /// Every page of an owner's repositories, within the request's one upstream budget.
    async fn fetch_owner(&self, owner: &Owner) -> Result<OwnerListing, UpstreamFailure> {
        let mut cursor: Option<String> = None;
        let mut login = None;
        let mut repos = Vec::new();
        for _ in 0..MAX_OWNER_PAGES {
            let c = cursor.clone();
            let page = self
                .call(
                    |f| f.owner_page_call(owner, c.as_deref()),
                    |f, r| f.parse_owner_page(r),
                )
                .await?;
            login.get_or_insert(page.login);
            repos.extend(page.repos);
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                Some(_) => return Err(UpstreamFailure::Unusable("cursor did not advance".into())),
                None => {
                    // GitHub already orders by name; sort only when it did not (case rules differ).
                    let by_name = |a: &Repo, b: &Repo| cmp_names(&a.name, &b.name);
                    if !repos.is_sorted_by(|a, b| by_name(a, b).is_le()) {
                        repos.sort_by(by_name);
                    }
                    let login = login.unwrap_or_else(|| owner.as_str().to_string());
                    return Ok(OwnerListing { login, repos });
                }
            }
        }
        Err(UpstreamFailure::Unusable(format!(
            "more than {MAX_OWNER_PAGES} pages"
        )))
    }

    /// One upstream round trip with what is left of the request's budget, unless GitHub said
    /// the rate limit is spent: then no call is made until the reset.
    async fn call<R: HasRate>(
        &self,
        build: impl Fn(&dyn Forge) -> HttpCall,
        parse: impl Fn(&dyn Forge, &HttpReply) -> Result<R, UpstreamFailure>,
    ) -> Result<R, UpstreamFailure> {
        let now = self.clock.now_ms();
        if let Some(reset_at_ms) = self.limited_until().await.filter(|r| *r > now) {
            return Err(UpstreamFailure::RateLimited {
                retry_after_s: None,
                reset_at_ms: Some(reset_at_ms),
            });
        }
        let left = self.deadline_ms.saturating_sub(now);
        if left == 0 {
            return Err(UpstreamFailure::Unavailable(
                "request deadline reached".into(),
            ));
        }
        let reply = self
            .transport
            .send(&build(self.forge), left)
            .await
            .map_err(UpstreamFailure::Unavailable)?;
        let parsed = parse(self.forge, &reply);
        match &parsed {
            Ok(answer) => {
                if let Some(rate) = answer.rate().filter(|r| r.remaining == 0) {
                    self.remember_limit(rate.reset_at_ms).await;
                }
            }
            Err(UpstreamFailure::RateLimited {
                retry_after_s,
                reset_at_ms,
            }) => {
                let now = self.clock.now_ms();
                let from_retry = retry_after_s.map(|s| now.saturating_add(s.saturating_mul(1000)));
                let until = reset_at_ms
                    .or(from_retry)
                    .unwrap_or(now + DEFAULT_RETRY_AFTER * 1000);
                self.remember_limit(until).await;
            }
            Err(_) => {}
        }
        parsed
    }

    fn ratelimit_key(&self) -> String {
        keys::ratelimit(self.cfg.github_token.as_ref().map_or("", |t| t.expose()))
    }

    /// When the remembered rate limit resets, if one is remembered (read once per request).
    async fn limited_until(&self) -> Option<u64> {
        if let Some(known) = self.limited_until.get() {
            return known;
        }
        let text = self.store.get(&self.ratelimit_key()).await.ok().flatten();
        let until = text.as_deref().and_then(parse_rfc3339);
        self.limited_until.set(Some(until));
        until
    }

    /// Remembers in KV, so other isolates see it too, that no call should be made until `until`.
    async fn remember_limit(&self, until: u64) {
        self.limited_until.set(Some(Some(until)));
        let ttl = until
            .saturating_sub(self.clock.now_ms())
            .div_ceil(1000)
            .max(MIN_KV_TTL);
        let _ = self
            .store
            .put(&self.ratelimit_key(), &format_rfc3339(until), Some(ttl))
            .await;
    }

    fn failure_to_error(&self, failure: UpstreamFailure) -> ApiError {
        match failure {
            UpstreamFailure::NotFound => ApiError::NotFound,
            UpstreamFailure::Unusable(detail) => ApiError::Upstream(detail),
            UpstreamFailure::Unavailable(detail) => ApiError::UpstreamUnavailable(detail),
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
    async fn read<V: serde::de::DeserializeOwned>(&self, key: &str) -> Option<Entry<V>> {
        self.store
            .get(key)
            .await
            .ok()
            .flatten()
            .and_then(|t| entry::decode(&t))
    }

    async fn read_bulk(&self, keys: &[String]) -> HashMap<String, Option<String>> {
        self.store.get_bulk(keys).await.unwrap_or_default()
    }

    /// Stores what an upstream request sent at `sent_at` returned, except over keys invalidated
    /// since then: GitHub may have answered before the change the invalidation announced, and
    /// writing that answer back would resurrect it for a whole TTL. All markers are read in one
    /// `get_bulk`. Fresh data that cannot be written (KV allows one write per key per second) is
    /// dropped: the next miss fetches it again, which is cheaper than failing the request.
    async fn store_fetched(&self, writes: Vec<(String, String, Option<u64>)>, sent_at: u64) {
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
        let allowed = writes
            .iter()
            .zip(&markers)
            .filter(|(_, m)| !invalidated_after(m))
            .map(|((k, t, ttl), _)| self.store.put(k, t, *ttl));
        futures::future::join_all(allowed).await;
    }

    /// Drops `keys` so the next read asks GitHub. Each key first gets a marker holding the
    /// invalidation time (see `store_fetched`), then is deleted. A refused operation is retried
    /// with backoff for about 5 s.
    ///
    /// # Errors
    /// `UpstreamUnavailable` when KV still refuses after the retries: a webhook answered with it
    /// shows as failed in GitHub and can be redelivered.
    pub async fn invalidate(&self, keys: &[String]) -> Result<(), ApiError> {
        let now = format_rfc3339(self.clock.now_ms());
        let jobs = keys.iter().map(|key| async {
            let marker = keys::invalidation_marker(key);
            self.retry(|| self.store.put(&marker, &now, Some(MARKER_TTL)))
                .await?;
            self.retry(|| self.store.delete(key)).await
        });
        let results = futures::future::join_all(jobs).await;
        if results.iter().any(Result::is_err) {
            return Err(ApiError::UpstreamUnavailable(
                "the cache refused an invalidation".into(),
            ));
        }
        Ok(())
    }

    async fn retry<F, Fut>(&self, op: F) -> Result<(), StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let mut last = Ok(());
        for delay in std::iter::once(0).chain(RETRY_DELAYS_MS.iter().copied()) {
            if delay > 0 {
                self.clock.sleep(delay).await;
            }
            last = op().await;
            if last.is_ok() {
                break;
            }
        }
        last
    }

    /// Cron: refreshes every pinned owner whose listing is missing or older than half the fresh
    /// time, each with its own upstream budget. A failed refresh keeps the old entry.
    /// Returns the owners refreshed.
    pub async fn refresh_pinned(&self) -> Vec<String> {
        let mut done = Vec::new();
        for owner in &self.cfg.pinned_orgs {
            let key = keys::org(owner);
            let now = self.clock.now_ms();
            let due = match self.read::<OwnerListing>(&key).await {
                None => true,
                Some(e) => now.saturating_sub(e.fetched_at_ms) >= self.cfg.fresh_ttl * 1000 / 2,
            };
            if !due {
                continue;
            }
            let refresher = self.with_budget(BACKGROUND_BUDGET_MS);
            if let Ok(listing) = refresher.fetch_owner(owner).await {
                let text = entry::encode(now, Some(&listing));
                self.store_fetched(vec![(key, text, None)], now).await;
                done.push(owner.as_str().to_string());
            }
        }
        done
    }
}

/// Whether a leader's outcome may be handed to followers: answers and not-found, but not
/// failures (followers then try for themselves).
fn shareable<T>(outcome: &Result<T, UpstreamFailure>) -> bool {
    matches!(outcome, Ok(_) | Err(UpstreamFailure::NotFound))
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

fn served<T>(value: T, fetched_at_ms: u64, status: CacheStatus, freshness: Freshness) -> Served<T> {
    Served {
        value,
        fetched_at_ms,
        status,
        freshness,
    }
}

/// Case-insensitive name order, without allocating lowercase copies.
fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

fn find_repo<'l>(listing: &'l OwnerListing, name: &RepoName) -> Option<&'l Repo> {
    listing
        .repos
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(name.as_str()))
}

fn set(items: &mut [Option<Item>], i: usize, item: Item) {
    if let Some(slot) = items.get_mut(i) {
        *slot = Some(item);
    }
}

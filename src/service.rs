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
use crate::forge::{Forge, HttpCall, HttpReply, UpstreamFailure, BATCH_MAX};
use crate::model::{OwnerListing, Repo};
use crate::names::{FullName, Owner, RepoName};
use crate::time::{format_rfc3339, parse_rfc3339};
use std::collections::HashMap;

/// Pages an owner listing may take (10,000 repositories) before it is called unusable; guards
/// against an upstream that never stops saying `hasNextPage`.
pub const MAX_OWNER_PAGES: usize = 100;
/// `Retry-After` when GitHub said it is rate limited but not until when.
pub const DEFAULT_RETRY_AFTER: u64 = 60;
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
        }
    }

    /// Every repository of `owner`, private ones included; the caller makes the view.
    ///
    /// # Errors
    /// `NotFound` for an unknown owner; upstream errors when nothing usable is cached.
    pub async fn owner_listing(&self, owner: &Owner) -> Result<Served<OwnerListing>, ApiError> {
        let key = keys::org(owner);
        let cached: Option<Entry<OwnerListing>> = self.read(&key).await;
        if let Some(e) = &cached {
            if let fresh @ Freshness::Fresh { .. } =
                entry::freshness(e, self.clock.now_ms(), self.cfg.fresh_ttl)
            {
                return match &e.data {
                    Some(listing) => Ok(served(
                        listing.clone(),
                        e.fetched_at_ms,
                        CacheStatus::Hit,
                        fresh,
                    )),
                    None => Err(ApiError::NotFound),
                };
            }
        }
        let sent_at = self.clock.now_ms();
        match self.fetch_owner(owner).await {
            Ok(listing) => {
                let ttl = (!self.cfg.is_pinned(owner)).then_some(self.cfg.stale_ttl);
                let text = entry::encode(sent_at, Some(&listing));
                self.store_fetched(vec![(key, text, ttl)], sent_at).await;
                let fresh = Freshness::Fresh {
                    left_s: self.cfg.fresh_ttl,
                };
                Ok(served(listing, sent_at, CacheStatus::Miss, fresh))
            }
            Err(UpstreamFailure::NotFound) => {
                let text = entry::encode::<OwnerListing>(sent_at, None);
                self.store_fetched(vec![(key, text, Some(NOT_FOUND_TTL))], sent_at)
                    .await;
                Err(ApiError::NotFound)
            }
            Err(failure) => match cached {
                Some(Entry {
                    fetched_at_ms,
                    data: Some(listing),
                }) => Ok(served(
                    listing,
                    fetched_at_ms,
                    CacheStatus::Stale,
                    Freshness::Stale,
                )),
                _ => Err(self.failure_to_error(failure)),
            },
        }
    }

    /// Up to `BATCH_MAX` distinct names, answered in order: cache, then a fresh owner listing,
    /// then one upstream call for whatever is still missing.
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
        let mut stale: HashMap<usize, Repo> = HashMap::new();
        let mut status = CacheStatus::Hit;
        let mut fresh_left = u64::MAX;

        for (i, key) in keys.iter().enumerate() {
            let Some(e) = stored
                .get(key)
                .and_then(|t| t.as_deref())
                .and_then(entry::decode::<Repo>)
            else {
                continue;
            };
            match entry::freshness(&e, now, self.cfg.fresh_ttl) {
                Freshness::Fresh { left_s } => {
                    fresh_left = fresh_left.min(left_s);
                    set(&mut items, i, e.data.map_or(Item::NotFound, Item::Found));
                }
                Freshness::Stale => {
                    if let Some(repo) = e.data {
                        stale.insert(i, repo);
                    }
                }
            }
        }

        self.fill_from_listings(names, &mut items, &mut stale, &mut fresh_left)
            .await;

        let missing: Vec<usize> = (0..names.len())
            .filter(|i| items.get(*i).is_some_and(Option::is_none))
            .collect();
        if !missing.is_empty() {
            let wanted: Vec<FullName> = missing
                .iter()
                .filter_map(|i| names.get(*i).cloned())
                .collect();
            let sent_at = self.clock.now_ms();
            match self
                .call(
                    |f| f.batch_call(&wanted),
                    |f, r| f.parse_batch(wanted.len(), r),
                )
                .await
            {
                Ok(answer) => {
                    status = CacheStatus::Miss;
                    fresh_left = fresh_left.min(self.cfg.fresh_ttl);
                    let mut writes = Vec::with_capacity(missing.len());
                    for (i, repo) in missing.iter().zip(answer.repos) {
                        let key = keys.get(*i).cloned().unwrap_or_default();
                        let (text, ttl) = match &repo {
                            Some(r) => (entry::encode(sent_at, Some(r)), Some(self.cfg.stale_ttl)),
                            None => (entry::encode::<Repo>(sent_at, None), Some(NOT_FOUND_TTL)),
                        };
                        writes.push((key, text, ttl));
                        set(&mut items, *i, repo.map_or(Item::NotFound, Item::Found));
                    }
                    self.store_fetched(writes, sent_at).await;
                }
                Err(failure) => {
                    let err = self.failure_to_error(failure);
                    for i in missing {
                        match stale.remove(&i) {
                            Some(repo) => {
                                status = status.max(CacheStatus::Stale);
                                set(&mut items, i, Item::Found(repo));
                            }
                            None => {
                                // A per-name failure must not be kept by browsers.
                                status = CacheStatus::Miss;
                                fresh_left = 0;
                                set(&mut items, i, Item::Failed(err.clone()));
                            }
                        }
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

    /// Answers cache misses from fresh owner listings (one `get_bulk` for all their owners), so a
    /// dashboard that loaded an org listing does not pay again for its repositories.
    ///
    /// Stale listings answer nothing, but their records join `stale` as fallbacks should GitHub
    /// fail (stale-if-error).
    async fn fill_from_listings(
        &self,
        names: &[FullName],
        items: &mut [Option<Item>],
        stale: &mut HashMap<usize, Repo>,
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
                    stale.entry(i).or_insert_with(|| repo.clone());
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
                    repos.sort_by_cached_key(|r: &Repo| r.name.to_ascii_lowercase());
                    let login = login.unwrap_or_else(|| owner.as_str().to_string());
                    return Ok(OwnerListing { login, repos });
                }
            }
        }
        Err(UpstreamFailure::Unusable(format!(
            "more than {MAX_OWNER_PAGES} pages"
        )))
    }

    /// One upstream round trip with what is left of the request's budget.
    async fn call<R>(
        &self,
        build: impl Fn(&dyn Forge) -> HttpCall,
        parse: impl Fn(&dyn Forge, &HttpReply) -> Result<R, UpstreamFailure>,
    ) -> Result<R, UpstreamFailure> {
        let left = self.deadline_ms.saturating_sub(self.clock.now_ms());
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
        parse(self.forge, &reply)
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
            let refresher = Service {
                deadline_ms: now.saturating_add(BACKGROUND_BUDGET_MS),
                ..*self
            };
            if let Ok(listing) = refresher.fetch_owner(owner).await {
                let text = entry::encode(now, Some(&listing));
                self.store_fetched(vec![(key, text, None)], now).await;
                done.push(owner.as_str().to_string());
            }
        }
        done
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

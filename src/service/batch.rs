//! Single and batch lookups: `v1:repo:*` entries, then fresh owner listings, then one aliased
//! upstream query for whatever is still missing. Each answer says where it came from, so the view
//! can count a hidden record exactly like a missing name when it sets headers.
//!
//! **Invariant**: a record GitHub answered under another name (a rename or transfer redirect) is
//! stored under its real name only, never under the name asked for: a webhook for the real name
//! could not find such an alias, and a privatized repository would stay public through it.

use super::{flight, set, Auth, CacheStatus, Clock, Refresh, Service, Transport};
use crate::cache::entry::{self, Entry, Freshness, NOT_FOUND_TTL};
use crate::cache::{keys, Store};
use crate::error::ApiError;
use crate::forge::{BatchAnswer, UpstreamFailure, BATCH_MAX};
use crate::model::{OwnerListing, Repo};
use crate::names::{FullName, Owner, RepoName};
use std::collections::{HashMap, HashSet};

/// One name of a batch.
// Items live briefly in one Vec per request; boxing `Repo` would add an allocation per name.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Found(Repo),
    NotFound,
    Failed(ApiError),
}

/// Where one item's answer came from. Headers are decided from this only after visibility is
/// applied (see `http::data`), because they must not tell a hidden record from a missing name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A fresh cache entry (the repository's own or its owner's listing), fetched then.
    Cache { left_s: u64, fetched_at_ms: u64 },
    /// A stale entry, answered at once and refreshed after the response.
    Stale,
    /// Asked upstream for this request (found, not found or failed).
    Fetched { left_s: u64 },
    /// Upstream failed with this error; the record is an older one (stale-if-error).
    Fallback(ApiError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub item: Item,
    pub source: Source,
}

/// One name's upstream answer: the record, not found (`None`), or why it could not be had.
pub(super) type Found = Result<Option<Repo>, UpstreamFailure>;

#[derive(Debug, Clone)]
pub struct BatchServed {
    pub items: Vec<BatchItem>,
}

/// What an item shows the caller once visibility is applied (see `http::data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Record,
    /// `not_found`: a missing name, or a record the caller may not see.
    Missing,
    Error,
}

impl BatchServed {
    /// The answer's `X-Cache` and browser freshness. `shown(i)` says what item `i` shows.
    /// Names answered `not_found` have fixed values: they never lower `max-age` below the
    /// not-found lifetime and never set `X-Cache`, whether fetched, cached or stale, and an
    /// answer of nothing but such names is a `MISS` (each counts as the miss a name GitHub does
    /// not have would be). Neither a hidden record's age nor its staleness nor its tier shows.
    pub fn headers(&self, shown: impl Fn(usize) -> Shown) -> (CacheStatus, Freshness) {
        let mut status = None;
        let mut left = u64::MAX;
        for (i, b) in self.items.iter().enumerate() {
            let (s, l) = match (shown(i), &b.source) {
                (Shown::Record, Source::Cache { left_s, .. }) => (Some(CacheStatus::Hit), *left_s),
                (Shown::Record, Source::Fetched { left_s }) => (Some(CacheStatus::Miss), *left_s),
                (Shown::Record, Source::Stale | Source::Fallback(_)) => {
                    (Some(CacheStatus::Stale), 0)
                }
                (Shown::Error, _) => (Some(CacheStatus::Miss), 0),
                (Shown::Missing, _) => (None, NOT_FOUND_TTL),
            };
            status = status.max(s);
            left = left.min(l);
        }
        let status = status.unwrap_or(CacheStatus::Miss);
        let freshness = if status == CacheStatus::Stale {
            Freshness::Stale
        } else {
            Freshness::Fresh { left_s: left }
        };
        (status, freshness)
    }
}

fn item(item: Item, source: Source) -> BatchItem {
    BatchItem { item, source }
}

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// One aliased query for `names` (at most `BATCH_MAX`) with `auth`: the batch path's and a
    /// live listing's revalidation (one copy of the call in the wasm).
    pub(super) async fn batch_upstream(
        &self,
        auth: &Auth,
        names: &[FullName],
    ) -> Result<BatchAnswer, UpstreamFailure> {
        self.call(
            auth,
            |f| f.batch_call(names, auth.token.as_ref()),
            |f, r| f.parse_batch(names.len(), r),
        )
        .await
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
        let mut items: Vec<Option<BatchItem>> = vec![None; names.len()];
        // Per name, a stale listing's record to answer should GitHub fail (stale-if-error).
        let mut fallback: Vec<Option<Repo>> = vec![None; names.len()];
        let mut to_refresh = Vec::new();

        // Owners this deployment does not serve are not found, with no I/O (`ALLOWED_OWNERS`).
        for (i, name) in names.iter().enumerate() {
            if !self.cfg.serves(&name.owner) {
                let source = Source::Cache {
                    left_s: NOT_FOUND_TTL,
                    fetched_at_ms: now,
                };
                set(&mut items, i, item(Item::NotFound, source));
            }
        }
        for (i, key) in keys.iter().enumerate() {
            if items.get(i).is_some_and(Option::is_some) {
                continue;
            }
            if let Some((repo, fetched_at_ms)) = self.memory_repo(key) {
                let fresh = entry::found_freshness(fetched_at_ms, now, self.cfg.fresh_ttl);
                if let Freshness::Fresh { left_s } = fresh {
                    let source = Source::Cache {
                        left_s,
                        fetched_at_ms,
                    };
                    set(&mut items, i, item(Item::Found(repo), source));
                }
            }
        }
        let unread: Vec<String> = keys
            .iter()
            .zip(&items)
            .filter(|(_, it)| it.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let stored = if unread.is_empty() {
            HashMap::new()
        } else {
            self.read_bulk(&unread).await
        };

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
                    if let Some(repo) = &data {
                        self.remember_repo(key, repo, e.fetched_at_ms);
                    }
                    let found = data.map_or(Item::NotFound, Item::Found);
                    let source = Source::Cache {
                        left_s,
                        fetched_at_ms: e.fetched_at_ms,
                    };
                    set(&mut items, i, item(found, source));
                }
                (Freshness::Stale, Some(repo)) => {
                    to_refresh.extend(names.get(i).cloned());
                    set(&mut items, i, item(Item::Found(repo), Source::Stale));
                }
                (Freshness::Stale, None) => {}
            }
        }
        if !to_refresh.is_empty() {
            self.schedule(Refresh::Repos(to_refresh));
        }

        self.fill_from_listings(names, &mut items, &mut fallback)
            .await;

        let missing: Vec<usize> = (0..names.len())
            .filter(|i| items.get(*i).is_some_and(Option::is_none))
            .collect();
        if !missing.is_empty() {
            let wanted: Vec<FullName> = missing
                .iter()
                .filter_map(|i| names.get(*i).cloned())
                .collect();
            let found: Vec<Found> = match self.fetch_repos_shared(&wanted).await {
                Ok(found) => found,
                Err(failure) => vec![Err(failure); missing.len()],
            };
            let source = Source::Fetched {
                left_s: self.cfg.fresh_ttl,
            };
            for (i, repo) in missing.into_iter().zip(found) {
                let answer = match repo {
                    Ok(repo) => item(repo.map_or(Item::NotFound, Item::Found), source.clone()),
                    Err(failure) => {
                        let err = self.failure_to_error(failure);
                        match fallback.get_mut(i).and_then(Option::take) {
                            Some(repo) => item(Item::Found(repo), Source::Fallback(err)),
                            None => item(Item::Failed(err), Source::Fetched { left_s: 0 }),
                        }
                    }
                };
                set(&mut items, i, answer);
            }
        }

        let items = items
            .into_iter()
            .map(|i| i.unwrap_or(item(Item::Failed(ApiError::Internal), Source::Stale)))
            .collect();
        Ok(BatchServed { items })
    }

    /// `fetch_and_store_repos`, shared with concurrent requests for the same set of names.
    async fn fetch_repos_shared(&self, names: &[FullName]) -> Result<Vec<Found>, UpstreamFailure> {
        type Outcome = Result<Vec<Found>, UpstreamFailure>;
        let keys: Vec<String> = names.iter().map(FullName::key).collect();
        // Sorted as `&str`, the one slice sort `/v1/health` uses too (one copy in the wasm).
        let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        // Joined by hand: `[&str]::join` would be a second copy of `join` in the wasm.
        let mut flight_key = String::from("batch:");
        for (i, key) in sorted.iter().enumerate() {
            if i > 0 {
                flight_key.push(',');
            }
            flight_key.push_str(key);
        }
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
                            .and_then(|p| found.get(p).cloned())
                            .unwrap_or(Ok(None))
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

    /// One batch call per credential for `names` (with a GitHub App: one aliased query per
    /// installation, each with its own token, run side by side), written per repository
    /// (not-found ones for 60 s). A record GitHub answered under another name is written under
    /// that name only (see the module doc). Names of owners without an installation (and no
    /// `GITHUB_TOKEN` to fall back to) are not found, and not written: their owner's remembered
    /// "no installation" already answers them.
    ///
    /// A group's failure (its credential, or its call) is its names' answer only.
    ///
    /// # Errors
    /// `ClientLimited` when the caller's budget is spent: nothing was asked.
    pub(super) async fn fetch_and_store_repos(
        &self,
        names: &[FullName],
    ) -> Result<Vec<Found>, UpstreamFailure> {
        // Installation lookups are upstream calls too: the caller's budget is asked first.
        if !self.admitted().await {
            return Err(UpstreamFailure::ClientLimited);
        }
        let sent_at = self.clock.now_ms();
        let mut groups: Vec<(Auth, Vec<usize>)> = Vec::new();
        let mut repos: Vec<Found> = vec![Ok(None); names.len()];
        // Owner key → its credential; a batch names few owners, so a Vec does.
        let mut auths: Vec<(String, Result<Auth, UpstreamFailure>)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let owner_key = name.owner.key();
            if !auths.iter().any(|(k, _)| *k == owner_key) {
                let auth = self.auth(&name.owner).await;
                auths.push((owner_key.clone(), auth));
            }
            match auths.iter().find(|(k, _)| *k == owner_key).map(|(_, a)| a) {
                Some(Ok(auth)) => {
                    match groups.iter_mut().find(|(a, _)| a.rate_key == auth.rate_key) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((auth.clone(), vec![i])),
                    }
                }
                // Not installed there: the name stays `None`, unwritten.
                Some(Err(UpstreamFailure::NotFound)) | None => {}
                Some(Err(failure)) => {
                    if let Some(slot) = repos.get_mut(i) {
                        *slot = Err(failure.clone());
                    }
                }
            }
        }
        let calls = groups.iter().map(|(auth, members)| async move {
            let asked: Vec<FullName> = members
                .iter()
                .filter_map(|i| names.get(*i).cloned())
                .collect();
            self.batch_upstream(auth, &asked).await
        });
        let answers = super::join_all(calls).await;
        // Which names an upstream answer covers (and so may be written).
        let mut answered = vec![false; names.len()];
        for ((_, members), answer) in groups.iter().zip(answers) {
            match answer {
                Ok(answer) => {
                    for (i, repo) in members.iter().zip(answer.repos) {
                        if let Some(slot) = repos.get_mut(*i) {
                            *slot = Ok(repo);
                        }
                        if let Some(slot) = answered.get_mut(*i) {
                            *slot = true;
                        }
                    }
                }
                Err(failure) => {
                    for i in members {
                        if let Some(slot) = repos.get_mut(*i) {
                            *slot = Err(failure.clone());
                        }
                    }
                }
            }
        }
        let mut written = HashSet::new();
        let writes = names
            .iter()
            .zip(&repos)
            .zip(&answered)
            .filter(|(_, ok)| **ok)
            .filter_map(|((asked, repo), _)| match repo.as_ref().ok()? {
                // Keyed by the name GitHub answered with; a record without a readable one is
                // answered but not stored.
                Some(r) => real_name(r).map(|real| {
                    let key = keys::repo(&real);
                    self.remember_repo(&key, r, sent_at);
                    (key, Some(r.clone()), Some(self.cfg.stale_ttl))
                }),
                None => Some((keys::repo(asked), None, Some(NOT_FOUND_TTL))),
            })
            // An old and a new name in one batch answer the same record: one write (1/s per key).
            .filter(|(key, _, _)| written.insert(key.clone()))
            .collect();
        self.store_later(writes, sent_at).await;
        Ok(repos)
    }

    /// Answers cache misses from fresh owner listings (one `get_bulk` for all their owners), so a
    /// dashboard that loaded an org listing does not pay again for its repositories.
    ///
    /// Stale listings answer nothing, but their records join `fallback` should GitHub fail
    /// (stale-if-error).
    async fn fill_from_listings(
        &self,
        names: &[FullName],
        items: &mut [Option<BatchItem>],
        fallback: &mut [Option<Repo>],
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
        // A few owners at most (one per distinct owner named): a list, not one more map type.
        let mut listings: Vec<(String, Entry<OwnerListing>, Freshness)> = Vec::new();
        for key in owners {
            let Some(e) = stored
                .get(&key)
                .and_then(|t| t.as_deref())
                .and_then(entry::decode::<OwnerListing>)
            else {
                continue;
            };
            let freshness = entry::freshness(&e, now, self.cfg.fresh_ttl);
            listings.push((key, e, freshness));
        }
        for (i, n) in names.iter().enumerate() {
            if !items.get(i).is_some_and(Option::is_none) {
                continue;
            }
            let key = keys::org(&n.owner);
            let Some((_, listing, freshness)) = listings.iter().find(|(k, _, _)| *k == key) else {
                continue;
            };
            let Freshness::Fresh { left_s } = freshness else {
                let old = listing.data.as_ref().and_then(|l| find_repo(l, &n.repo));
                if let Some(repo) = old {
                    if let Some(slot @ None) = fallback.get_mut(i) {
                        *slot = Some(repo.clone());
                    }
                }
                continue;
            };
            let found = match &listing.data {
                // The owner does not exist, so neither does the repository.
                None => Some(Item::NotFound),
                // Not in the listing may still be an old name GitHub redirects: ask upstream.
                Some(l) => find_repo(l, &n.repo).map(|r| Item::Found(r.clone())),
            };
            if let Some(found) = found {
                let source = Source::Cache {
                    left_s: *left_s,
                    fetched_at_ms: listing.fetched_at_ms,
                };
                set(items, i, item(found, source));
            }
        }
    }
}

/// The name GitHub answered a record under, when it is a valid name.
fn real_name(repo: &Repo) -> Option<FullName> {
    Some(FullName::new(
        Owner::parse(repo.owner()).ok()?,
        RepoName::parse(repo.name()).ok()?,
    ))
}

fn find_repo<'l>(listing: &'l OwnerListing, name: &RepoName) -> Option<&'l Repo> {
    listing
        .repos
        .iter()
        .find(|r| r.name().eq_ignore_ascii_case(name.as_str()))
}

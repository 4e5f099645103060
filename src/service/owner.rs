//! Owner listings: every page of an owner's repositories, stored as one `v1:org:{owner}` entry
//! only once every page has arrived, and the pinned-owner cron that keeps them warm.

use super::{flight, served, CacheStatus, Clock, Refresh, Served, Service, Transport};
use super::{BACKGROUND_BUDGET_MS, MAX_OWNER_PAGES};
use crate::cache::entry::{self, Entry, Freshness, NOT_FOUND_TTL};
use crate::cache::{keys, Store};
use crate::error::ApiError;
use crate::forge::UpstreamFailure;
use crate::model::{OwnerListing, Repo};
use crate::names::Owner;

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
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
    pub(super) async fn fetch_and_store_owner(
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

/// Case-insensitive name order, without allocating lowercase copies.
fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

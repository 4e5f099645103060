//! Owner listings on the read path: `v1:org:{owner}` from KV, and on a miss the owner's directory
//! (the `OWNERS` Durable Object), the only code that pages an owner. Also the one page call a
//! directory makes, and the pinned-owner cron, which asks directories to rebuild.

use super::directories::{Answer, Owners, Progress};
use super::flight::{self, Joined};
use super::PAGE_TIMEOUT_MS;
use super::{served, CacheStatus, Clock, Refresh, Served, Service, Transport};
use crate::cache::entry::{self, Entry, Freshness};
use crate::cache::{keys, Store};
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::forge::{OwnerPage, PageAsk, UpstreamFailure};
use crate::model::{OwnerListing, Repo};
use crate::names::{FullName, Owner, RepoName};
use std::rc::Rc;

/// An owner listing as the read path answers it.
#[derive(Debug, Clone)]
pub enum Listing {
    Ready(Served<OwnerListing>),
    /// Nothing cached and the build did not complete within the caller's budget (202).
    Building(Progress),
}

pub use crate::config::OWNERS_BINDING;

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// Every repository of `owner`, private ones included; the caller makes the view.
    /// A stale listing is answered at once and rebuilt after the response.
    ///
    /// # Errors
    /// `NotFound` for an unknown owner; upstream errors when nothing usable is cached.
    pub async fn owner_listing(&self, owner: &Owner) -> Result<Listing, ApiError> {
        let key = keys::org(owner);
        if let Some(e) = self.memory_listing(&key) {
            let fresh = entry::freshness(&e, self.clock.now_ms(), self.cfg.fresh_ttl);
            if let (Freshness::Fresh { .. }, Some(listing)) = (fresh, e.data) {
                let hit = served(listing, e.fetched_at_ms, CacheStatus::Hit, fresh);
                return Ok(Listing::Ready(hit));
            }
        }
        let cached: Option<Entry<OwnerListing>> = self.read(&key).await;
        if let Some(e) = cached {
            match (
                entry::freshness(&e, self.clock.now_ms(), self.cfg.fresh_ttl),
                e.data.map(Rc::new),
            ) {
                (fresh @ Freshness::Fresh { .. }, Some(listing)) => {
                    self.remember_listing(&key, &listing, e.fetched_at_ms);
                    let hit = served(listing, e.fetched_at_ms, CacheStatus::Hit, fresh);
                    return Ok(Listing::Ready(hit));
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
                    return Ok(Listing::Ready(stale));
                }
                // An expired not-found answer is asked again.
                (Freshness::Stale, None) => {}
            }
        }
        // Callers of this isolate waiting for one owner share one wait on its directory: a
        // completed listing of thousands of repositories crosses from the object once, and is
        // decoded once, however many callers wait (the leader hands followers parsed data only).
        let flight = format!("dir|{key}");
        match flight::join::<Result<Listing, ApiError>, C>(&flight, self.clock, self.deadline_ms)
            .await
        {
            Joined::Shared(Ok(listing)) => Ok(listing),
            // Errors may be the leader's own (its client budget): asked again, at no cost when
            // the directory remembers a failed build.
            Joined::Shared(Err(_)) | Joined::Alone => self.ask_directory(owner, &key).await,
            Joined::Lead(lead) => {
                let result = self.ask_directory(owner, &key).await;
                lead.finish(result.clone());
                result
            }
        }
    }

    /// The owner's directory on a KV miss: a completed or live listing, a build's progress, or
    /// why there is none.
    async fn ask_directory(&self, owner: &Owner, key: &str) -> Result<Listing, ApiError> {
        let owners = self.owners()?;
        let started = self.clock.now_ms();
        let wait_ms = self.deadline_ms.saturating_sub(started);
        // Reading a completed listing or joining a build under way costs the caller nothing;
        // starting one counts against its budget like any upstream call, once.
        let mut answer = owners.listing(owner, wait_ms, false).await;
        if answer == Answer::Unstarted {
            if !self.admitted().await {
                self.spent(|t| &mut t.owner_ms, started);
                return Err(self.failure_to_error(UpstreamFailure::ClientLimited));
            }
            let wait_ms = self.deadline_ms.saturating_sub(self.clock.now_ms());
            answer = owners.listing(owner, wait_ms, true).await;
        }
        self.spent(|t| &mut t.owner_ms, started);
        match answer {
            Answer::Complete(text) => {
                let e = self.listing_from_text(key, &text)?;
                let freshness = entry::freshness(&e, self.clock.now_ms(), self.cfg.fresh_ttl);
                let listing = e.data.ok_or(ApiError::NotFound)?;
                let miss = served(listing, e.fetched_at_ms, CacheStatus::Miss, freshness);
                Ok(Listing::Ready(miss))
            }
            Answer::Kept(text) => {
                // The directory's live listing stands in for KV's (a KV miss in this location):
                // served like a KV read, its build's age deciding whether it is rebuilt.
                let e = self.listing_from_text(key, &text)?;
                let freshness = entry::freshness(&e, self.clock.now_ms(), self.cfg.fresh_ttl);
                let listing = e.data.ok_or(ApiError::NotFound)?;
                let status = match freshness {
                    Freshness::Fresh { .. } => CacheStatus::Hit,
                    Freshness::Stale => {
                        self.schedule(Refresh::Owner(owner.clone()));
                        CacheStatus::Stale
                    }
                };
                Ok(Listing::Ready(served(
                    listing,
                    e.fetched_at_ms,
                    status,
                    freshness,
                )))
            }
            Answer::NotFound => Err(ApiError::NotFound),
            Answer::Building(progress) => Ok(Listing::Building(progress)),
            Answer::Failed(err) => Err(err),
            Answer::Unstarted => Err(ApiError::Internal),
        }
    }

    /// A directory's listing text, decoded once: callers who waited together get the same text,
    /// and the first remembers it for all (the same build and the same revalidation).
    fn listing_from_text(
        &self,
        key: &str,
        text: &str,
    ) -> Result<Entry<Rc<OwnerListing>>, ApiError> {
        let kept = self.memory_listing(key).filter(|m| {
            entry::peek_fetched_at(text).is_some_and(|at| at == m.fetched_at_ms)
                && m.data.as_ref().map(|l| l.revalidated_at_ms)
                    == Some(entry::peek_revalidated_at(text))
        });
        if let Some(kept) = kept {
            return Ok(kept);
        }
        let e = entry::decode::<OwnerListing>(text).ok_or(ApiError::Internal)?;
        let listing = Rc::new(e.data.ok_or(ApiError::NotFound)?);
        self.remember_listing(key, &listing, e.fetched_at_ms);
        Ok(Entry {
            fetched_at_ms: e.fetched_at_ms,
            data: Some(listing),
        })
    }

    pub(crate) fn owners(&self) -> Result<&dyn Owners, ApiError> {
        self.owners.ok_or(ApiError::ConfigInvalid(ConfigError {
            name: OWNERS_BINDING,
            reason: "is not bound to the OwnerDirectory Durable Object",
        }))
    }

    /// One page of `first` records after `cursor`, with a page's own time budget. The
    /// remembered rate limit is read once for all pages of this service.
    pub(crate) async fn owner_page(
        &self,
        owner: &Owner,
        ask: &PageAsk<'_>,
    ) -> Result<OwnerPage, UpstreamFailure> {
        // With an App: the owner's installation token (none installed: `NotFound`).
        let auth = self.auth(owner).await?;
        let _ = self.limited_until(&auth.rate_key).await;
        let mut budgeted = self.with_budget(PAGE_TIMEOUT_MS);
        // A pinned owner's build is what keeps the cache right: it goes on below the reserve.
        budgeted.essential |= self.cfg.is_pinned(owner);
        let page = budgeted
            .call(
                &auth,
                |f| f.owner_page_call(owner, ask, auth.token.as_ref()),
                |f, r| f.parse_owner_page(ask, r),
            )
            .await;
        // A limit this page learned of holds for the pages after it.
        *self.limited_until.borrow_mut() = budgeted.limited_until.take();
        page
    }

    /// The current records of `names`, all of `owner`'s, in one aliased query (at most
    /// `BATCH_MAX`): what a live listing's revalidation asks. `None` where GitHub has no such
    /// repository (or it is no longer visible to the credential).
    pub(crate) async fn owner_records(
        &self,
        owner: &Owner,
        names: &[RepoName],
    ) -> Result<Vec<Option<Repo>>, UpstreamFailure> {
        let auth = self.auth(owner).await?;
        let _ = self.limited_until(&auth.rate_key).await;
        let full: Vec<FullName> = names
            .iter()
            .map(|n| FullName::new(owner.clone(), n.clone()))
            .collect();
        let mut budgeted = self.with_budget(PAGE_TIMEOUT_MS);
        budgeted.essential |= self.cfg.is_pinned(owner);
        let answer = budgeted.batch_upstream(&auth, &full).await;
        *self.limited_until.borrow_mut() = budgeted.limited_until.take();
        answer.map(|a| a.repos)
    }

    /// Cron: asks the directory of every pinned owner whose listing is missing or older than
    /// half the fresh time to rebuild it. The directory keeps the old entry when a build fails.
    /// Returns the owners asked.
    pub async fn refresh_pinned(&self) -> Vec<String> {
        let Ok(owners) = self.owners() else {
            return Vec::new();
        };
        let mut asked = Vec::new();
        for owner in &self.cfg.pinned_orgs {
            let now = self.clock.now_ms();
            let due = match self.read::<OwnerListing>(&keys::org(owner)).await {
                None => true,
                Some(e) => now.saturating_sub(e.fetched_at_ms) >= self.cfg.fresh_ttl * 1000 / 2,
            };
            if due && owners.refresh(owner).await.is_ok() {
                asked.push(owner.as_str().to_string());
            }
        }
        asked
    }
}

/// GitHub already orders by name; sort only when it did not (case rules differ).
pub fn sort_by_name(repos: &mut [Repo]) {
    let by_name = |a: &Repo, b: &Repo| crate::names::cmp_names(a.name(), b.name());
    if !repos.is_sorted_by(|a, b| by_name(a, b).is_le()) {
        // Names are unique per owner (case-insensitively too): no tie for stability to keep.
        repos.sort_unstable_by(by_name);
    }
}

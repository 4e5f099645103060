//! Invalidation: drop cache entries the moment the truth changed (webhooks, admin purges), and
//! leave a marker so a refresh already in flight cannot write its older answer back.

use super::directories::{Change, Told};
use super::{Clock, Service, Transport, MARKER_TTL, RETRY_DELAYS_MS};
use crate::cache::{keys, Store, StoreError};
use crate::error::ApiError;
use crate::forge::Fact;
use crate::names::{FullName, Owner};
use crate::time::format_rfc3339;

/// Waits between tries of a marker write: brief, since the delete must not wait on it.
const MARKER_RETRY_DELAYS_MS: [u64; 2] = [100, 300];
/// Keys one invocation drops itself. Each costs a marker write and a delete, more when KV
/// refuses, and an invocation may make 1,000 KV operations: the rest of a large delivery is
/// dropped by the owners' directories, each chunk in an invocation of its own.
pub const KEYS_PER_INVOCATION: usize = 200;

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// Drops `keys` so the next read asks GitHub. Each key first gets a marker holding the
    /// invalidation time (see `store_fetched`), then is deleted. The marker is best-effort: it
    /// is tried briefly, and the delete is attempted whether it landed or not, because a spent
    /// write budget (anyone can spend it with made-up names) must not keep a privatized entry
    /// alive. A refused delete is retried with backoff for about 5 s.
    ///
    /// Then every owner named (`v1:org:*`) hears of it in its directory.
    ///
    /// # Errors
    /// `StoreUnavailable` when KV still refuses a delete after the retries, or a directory cannot
    /// be told: a webhook answered with it shows as failed in GitHub and can be redelivered.
    pub async fn invalidate(&self, keys: &[String]) -> Result<(), ApiError> {
        // This isolate stops answering from its memory before anything else happens.
        self.forget(keys);
        super::forget_installations(keys);
        // Owner-level keys (listings, installations) first: they go even when the repository
        // keys are more than one invocation can drop.
        let (mut ordered, repos): (Vec<String>, Vec<String>) = keys
            .iter()
            .cloned()
            .partition(|k| keys::repo_owner(k).is_none());
        let here = KEYS_PER_INVOCATION.max(ordered.len()).min(keys.len());
        ordered.extend(repos);
        let (now, rest) = ordered.split_at(here);
        self.drop_keys(now, &[]).await?;
        self.tell_directories(keys).await?;
        // A directory's listing write (a revalidation round publishing) can land between the
        // delete above and the directory hearing of it, when KV refused the marker that would
        // have stopped it. Once the directory heard, nothing it writes is older: the owner's
        // listing goes again (unmarked), and this isolate's memory with it.
        let listings: Vec<String> = now
            .iter()
            .filter(|k| self.owners.is_some() && keys::org_owner(k).is_some())
            .cloned()
            .collect();
        if !listings.is_empty() {
            self.drop_keys(&[], &listings).await?;
            self.forget(&listings);
        }
        self.drop_elsewhere(rest).await
    }

    /// Repository-level `changes` (deliveries, admin repository purges; `keys` are what
    /// `keys::invalidated` names for them): the repository keys go as in `invalidate`, but each
    /// owner's listing is patched in its directory instead of thrown away (one without a listing
    /// drops it itself). Where a narrowing fact was heard, this location's `v1:org` goes at once,
    /// without a marker: the directory's patched listing replaces it, and a marker would refuse
    /// it. Without directories, or with no owner served, it is `invalidate`.
    ///
    /// # Errors
    /// As `invalidate`.
    pub async fn apply_changes(
        &self,
        changes: &[(FullName, Fact)],
        keys: &[String],
    ) -> Result<(), ApiError> {
        let by_owner = self.changes_by_owner(changes);
        let Some(owners) = self.owners.filter(|_| !by_owner.is_empty()) else {
            return self.invalidate(keys).await;
        };
        self.forget(keys);
        // A repository-level delivery names a few repositories (a rename or transfer: two).
        let repos: Vec<String> = keys
            .iter()
            .filter(|k| keys::repo_owner(k).is_some())
            .cloned()
            .collect();
        let narrowed: Vec<String> = by_owner
            .iter()
            .filter(|(_, list)| list.iter().any(|c| c.fact != Fact::Changed))
            .map(|(owner, _)| keys::org(owner))
            .collect();
        self.drop_keys(&repos, &narrowed).await?;
        let told = by_owner
            .iter()
            .map(|(owner, list)| owners.change(owner, list));
        let mut again = Vec::new();
        for ((owner, _), outcome) in by_owner.iter().zip(super::join_all(told).await) {
            // Until its directory heard the narrowing fact, a revalidation round could still
            // write the listing without it (after the drop above). `Applied` means a write with
            // it has landed since; otherwise the key goes again, now that every later write has
            // the fact, so no copy from before it outlives the delivery's answer.
            let org = keys::org(owner);
            if outcome? != Told::Applied && narrowed.contains(&org) {
                again.push(org);
            }
        }
        if !again.is_empty() {
            self.drop_keys(&[], &again).await?;
        }
        // While the directories were told, a read here may have taken into this isolate's
        // memory a copy a revalidation round wrote before its directory heard the fact (KV has
        // the one with it by now, or no copy): memory lets it go again, as it did at the start.
        self.forget(keys);
        Ok(())
    }

    /// The changes of served owners, by owner, heard now.
    fn changes_by_owner(&self, changes: &[(FullName, Fact)]) -> Vec<(Owner, Vec<Change>)> {
        let at_ms = self.clock.now_ms();
        let mut by_owner: Vec<(Owner, Vec<Change>)> = Vec::new();
        for (name, fact) in changes.iter().filter(|(n, _)| self.cfg.serves(&n.owner)) {
            let change = Change {
                name: name.repo.clone(),
                fact: *fact,
                at_ms,
            };
            match by_owner
                .iter_mut()
                .find(|(o, _)| o.key() == name.owner.key())
            {
                Some((_, list)) => list.push(change),
                None => by_owner.push((name.owner.clone(), vec![change])),
            }
        }
        by_owner
    }

    /// Marks and deletes `keys` (see `invalidate`), all at once: at most `KEYS_PER_INVOCATION`;
    /// `unmarked` are deleted the same way without a marker.
    ///
    /// # Errors
    /// `StoreUnavailable` when KV still refuses a delete after the retries.
    pub async fn drop_keys(&self, keys: &[String], unmarked: &[String]) -> Result<(), ApiError> {
        let stamp = format_rfc3339(self.clock.now_ms());
        let now = &stamp;
        let marked = keys.iter().map(|k| (k, true));
        let jobs =
            marked
                .chain(unmarked.iter().map(|k| (k, false)))
                .map(|(key, mark)| async move {
                    if mark {
                        let marker = keys::invalidation_marker(key);
                        let _ = self
                            .retry(&MARKER_RETRY_DELAYS_MS, || {
                                self.store.put(&marker, now, Some(MARKER_TTL))
                            })
                            .await;
                    }
                    self.retry(&RETRY_DELAYS_MS, || self.store.delete(key))
                        .await
                });
        let results = super::join_all(jobs).await;
        if results.iter().any(Result::is_err) {
            return Err(ApiError::StoreUnavailable);
        }
        Ok(())
    }

    /// Repository keys past this invocation's share, in chunks each dropped by its owner's
    /// directory in an invocation of its own (all chunks at once: a delivery is answered within
    /// GitHub's 10 s). Without directories (inside one, or natively) they are dropped here,
    /// chunk after chunk.
    async fn drop_elsewhere(&self, rest: &[String]) -> Result<(), ApiError> {
        let Some(owners) = self.owners else {
            for chunk in rest.chunks(KEYS_PER_INVOCATION) {
                self.drop_keys(chunk, &[]).await?;
            }
            return Ok(());
        };
        let mut by_owner: Vec<(crate::names::Owner, Vec<String>)> = Vec::new();
        for key in rest {
            // An owner not served is never read (nor cached since): no directory is made for it.
            let Some(owner) = keys::repo_owner(key).filter(|o| self.cfg.serves(o)) else {
                continue;
            };
            match by_owner.iter_mut().find(|(o, _)| o.key() == owner.key()) {
                Some((_, list)) => list.push(key.clone()),
                None => by_owner.push((owner, vec![key.clone()])),
            }
        }
        let jobs = by_owner.iter().flat_map(|(owner, list)| {
            list.chunks(KEYS_PER_INVOCATION)
                .map(move |chunk| owners.forget(owner, chunk))
        });
        for outcome in super::join_all(jobs).await {
            outcome?;
        }
        Ok(())
    }

    /// The owners' directories restart any build in progress and forget completed ones.
    async fn tell_directories(&self, keys: &[String]) -> Result<(), ApiError> {
        if let Some(owners) = self.owners {
            let at = self.clock.now_ms();
            let told = keys
                .iter()
                .filter_map(|k| keys::org_owner(k))
                // An owner not served has no directory to tell, and none is created for it.
                .filter(|owner| self.cfg.serves(owner))
                .map(|owner| async move { owners.invalidate(&owner, at).await });
            for outcome in super::join_all(told).await {
                outcome?;
            }
        }
        Ok(())
    }

    async fn retry<F, Fut>(&self, delays: &[u64], op: F) -> Result<(), StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        let mut last = Ok(());
        for delay in std::iter::once(0).chain(delays.iter().copied()) {
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
}

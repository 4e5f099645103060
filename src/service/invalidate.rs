//! Invalidation: drop cache entries the moment the truth changed (webhooks, admin purges), and
//! leave a marker so a refresh already in flight cannot write its older answer back.

use super::{Clock, Service, Transport, MARKER_TTL, RETRY_DELAYS_MS};
use crate::cache::{keys, Store, StoreError};
use crate::error::ApiError;
use crate::time::format_rfc3339;

/// Waits between tries of a marker write: brief, since the delete must not wait on it.
const MARKER_RETRY_DELAYS_MS: [u64; 2] = [100, 300];

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
        let now = format_rfc3339(self.clock.now_ms());
        let jobs = keys.iter().map(|key| async {
            let marker = keys::invalidation_marker(key);
            let _ = self
                .retry(&MARKER_RETRY_DELAYS_MS, || {
                    self.store.put(&marker, &now, Some(MARKER_TTL))
                })
                .await;
            self.retry(&RETRY_DELAYS_MS, || self.store.delete(key))
                .await
        });
        let results = futures::future::join_all(jobs).await;
        if results.iter().any(Result::is_err) {
            return Err(ApiError::StoreUnavailable);
        }
        // The owners' directories restart any build in progress and forget completed ones.
        if let Some(owners) = self.owners {
            let at = self.clock.now_ms();
            let told = keys
                .iter()
                .filter_map(|k| keys::org_owner(k))
                // An owner not served has no directory to tell, and none is created for it.
                .filter(|owner| self.cfg.serves(owner))
                .map(|owner| async move { owners.invalidate(&owner, at).await });
            for outcome in futures::future::join_all(told).await {
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

//! Work after the response (`ctx.wait_until`): stale-while-revalidate (a stale entry is answered
//! at once and refreshed, at most once per key per isolate, with a budget of its own), and the KV
//! writes of a miss, which the answer does not wait for.

use super::{flight, Clock, Service, Transport, BACKGROUND_BUDGET_MS};
use crate::cache::{keys, Store};
use crate::model::Repo;
use crate::names::{FullName, Owner};

/// Work to run after the response, with owned data only (it outlives the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Owner(Owner),
    Repos(Vec<FullName>),
    /// Writes of fetched records, `(key, record or None for not found, ttl)`, from an upstream
    /// request sent at `sent_at`: encoded when they run (the answer waits for that no more
    /// than for KV) and still guarded by the invalidation markers.
    Store {
        records: Vec<(String, Option<Repo>, Option<u64>)>,
        sent_at: u64,
    },
    /// A delivery applied for these owners, or answered as a replay: each owner's directory
    /// counts it (`deliveries_24h`), after the answer.
    Delivered {
        owners: Vec<Owner>,
        replayed: bool,
    },
}

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// Hands `job` to the shell unless a refresh of the same keys is already under way here.
    pub(super) fn schedule(&self, job: Refresh) {
        let Some(defer) = self.defer else { return };
        let now = self.clock.now_ms();
        let job = match job {
            job @ (Refresh::Store { .. } | Refresh::Delivered { .. }) => Some(job),
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
                // The owner's directory builds it; this only asks.
                if let Ok(owners) = self.owners() {
                    let _ = owners.refresh(owner).await;
                }
                flight::release_refresh(&keys::org(owner));
            }
            Refresh::Repos(names) => {
                let _ = bg.fetch_and_store_repos(names).await;
                for n in names {
                    flight::release_refresh(&keys::repo(n));
                }
            }
            Refresh::Store { records, sent_at } => {
                let writes = super::encode_records(records, *sent_at);
                self.store_fetched(writes, *sent_at).await;
            }
            Refresh::Delivered { owners, replayed } => {
                if let Ok(directories) = self.owners() {
                    // One after another: a delivery names one or two owners.
                    for owner in owners {
                        let _ = directories.delivered(owner, *replayed).await;
                    }
                }
            }
        }
    }

    /// Has the directories of the served owners among `dropped` (the keys a delivery dropped)
    /// count the delivery, after the answer.
    pub fn note_delivered(&self, dropped: &[String], replayed: bool) {
        if self.owners.is_none() {
            return;
        }
        let owners: Vec<Owner> = dropped
            .iter()
            .filter_map(|k| keys::org_owner(k))
            .filter(|o| self.cfg.serves(o))
            .collect();
        if !owners.is_empty() {
            self.schedule(Refresh::Delivered { owners, replayed });
        }
    }
}

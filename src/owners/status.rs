//! An owner's status as its object knows it (`GET /v1/orgs/{owner}/status`, admin): the live
//! listing, the build in progress, changes waiting for GitHub, failed rounds and drift. Read
//! from memory and storage; asking never starts a build.

use super::directory::{Checkpoints, Directory};
use super::drift::Drift;
use super::tally::TALLY_KEY;
use crate::cache::Store;
use crate::service::{Clock, Transport};
use crate::time::format_rfc3339;
use serde::Serialize;

/// The status body. Fields may be added, never removed (DESIGN.md, Status).
#[derive(Debug, Serialize)]
pub struct OwnerStatus {
    pub owner: String,
    /// `none`, `building` (no listing yet, a build under way) or `ready`.
    pub listing: &'static str,
    /// Records of the live listing, private ones included.
    pub records: usize,
    pub fetched_at: Option<String>,
    pub revalidated_at: Option<String>,
    pub build: Option<BuildStatus>,
    pub pending_changes: usize,
    pub oldest_pending_at: Option<String>,
    /// Revalidation rounds that failed since the last one GitHub answered.
    pub failed_rounds: u64,
    pub next_retry_at: Option<String>,
    pub drift: DriftStatus,
    pub subscribers: Subscribers,
    pub deliveries_24h: Deliveries,
}

/// Deliveries the worker applied for this owner, and those it answered as replays (the same
/// signed body again), over the last 24 hours counted by the hour.
#[derive(Debug, Default, Serialize)]
pub struct Deliveries {
    pub applied: u32,
    pub replayed: u32,
}

#[derive(Debug, Serialize)]
pub struct BuildStatus {
    pub repos_fetched: u64,
    pub repos_total: Option<u64>,
    pub page_size: u8,
    pub started_at: String,
}

#[derive(Debug, Serialize)]
pub struct DriftStatus {
    pub last_rebuild_at: Option<String>,
    pub last: Drift,
    pub last_24h: Drift,
}

/// Live event subscribers per scope (the sockets the object holds).
#[derive(Debug, Default, Serialize)]
pub struct Subscribers {
    pub all: u32,
    pub public: u32,
    pub redacted: u32,
}

/// The status as the route answers it.
pub fn status_json(status: &OwnerStatus) -> String {
    serde_json::to_string(status).unwrap_or_default()
}

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// What this object knows of its owner now.
    pub async fn report(&self) -> OwnerStatus {
        // Loads what an earlier life stored (listing, queue, drift); starts nothing.
        let cp = self.checkpoint().await;
        let now = self.svc.clock.now_ms();
        let next_retry_at = self.next_round_at().map(format_rfc3339);
        let listing = self.state().name();
        let mem = self.mem.borrow();
        let live = mem.live.as_ref();
        let pending = mem.queue.len() + mem.since.len();
        let oldest = mem
            .queue
            .oldest_at_ms()
            .into_iter()
            .chain(mem.since.oldest_at_ms())
            .min();
        OwnerStatus {
            owner: self.owner.as_str().to_string(),
            listing,
            records: live.map_or(0, |l| l.listing.repos.len()),
            fetched_at: live.map(|l| format_rfc3339(l.started_at_ms)),
            revalidated_at: live
                .and_then(|l| l.listing.revalidated_at_ms)
                .map(format_rfc3339),
            build: cp.map(|cp| BuildStatus {
                repos_fetched: cp.fetched,
                repos_total: cp.total,
                page_size: cp.streams.iter().map(|s| s.page_size).min().unwrap_or(0),
                started_at: format_rfc3339(cp.started_at_ms),
            }),
            pending_changes: pending,
            oldest_pending_at: oldest.map(format_rfc3339),
            failed_rounds: mem.rounds.failed,
            next_retry_at,
            drift: DriftStatus {
                last_rebuild_at: mem.drift.last_rebuild_at_ms.map(format_rfc3339),
                last: mem.drift.last,
                last_24h: mem.drift.last_24h(now),
            },
            subscribers: {
                let [all, public, redacted] = self.storage.subscribers();
                Subscribers {
                    all,
                    public,
                    redacted,
                }
            },
            deliveries_24h: {
                let (applied, replayed) = mem.deliveries.last_24h(now);
                Deliveries { applied, replayed }
            },
        }
    }
}

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// Counts a delivery the worker applied for this owner, or answered as a replay, and stores
    /// the count (a later life of the object reports it too).
    pub async fn delivered(&self, replayed: bool) {
        // Loads what an earlier life stored before it is stored again.
        self.checkpoint().await;
        let now = self.now();
        self.mem.borrow_mut().deliveries.note(now, replayed);
        self.store_tally().await;
    }

    pub(super) async fn store_tally(&self) {
        let text = self.mem.borrow().deliveries.encode();
        let _ = self.put(TALLY_KEY, &text).await;
    }
}

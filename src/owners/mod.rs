//! Owners of any size: one directory per lowercased owner (the `OwnerDirectory` Durable Object in
//! the worker) is the only code that pages an owner's listing. Builds checkpoint after every page,
//! continue when no caller is waiting, shrink pages that time out, and write `v1:org:{owner}` once,
//! when every page has arrived.
//!
//! - `build`: the checkpoint and the pure decisions made on it.
//! - `directory`: the build driver over the `Checkpoints` seam and the read path's `Service`.
//! - `live`: the complete listing a directory keeps after a build, record by record, and the
//!   merge rule for changes (pure).
//! - `revalidate`: repository-level changes patch the live listing (narrowing facts at once,
//!   then GitHub asked again in coalesced rounds).
//! - `object`: the Durable Object's control logic over the `Host` seam (alarm, tasks): what
//!   follows a drive, the callers' wait, deliveries' changes, what an alarm does.
//! - `wire`: the directory's answers as HTTP between the worker and the object.
//! - `local`: an in-process `Owners` running the same driver inline (native tests, benches).
//!
//! **Architecture invariant**: a build that sent its first page before an owner-level
//! invalidation never writes KV: the invalidation restarts it from the first page (and KV's
//! markers guard the rest). Repository-level changes never restart a build: they are revalidated
//! before its listing is answered.

pub mod build;
pub mod directory;
pub mod live;
pub mod local;
pub mod object;
pub mod revalidate;
pub mod wire;

use crate::error::ApiError;
use crate::names::Owner;
use futures::future::LocalBoxFuture;
pub use live::Change;
pub use revalidate::Told;

/// How far a build has come, as a caller told to come back later sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub fetched: u64,
    pub total: Option<u64>,
    pub started_at_ms: u64,
    pub retry_after_s: u64,
}

/// A directory's answer to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The listing as the `v1:org` envelope text it was stored as.
    Complete(String),
    /// The live listing the directory keeps (patched by changes since its build): answered
    /// like a KV read, fresh or stale by its build's `fetched_at`.
    Kept(String),
    /// The owner does not exist.
    NotFound,
    /// Not complete within the caller's wait.
    Building(Progress),
    /// The build failed (or waits for a rate-limit reset); remembered briefly.
    Failed(ApiError),
    /// Asked not to start one, and no build is under way: answering would cost upstream work.
    Unstarted,
}

/// The seam between the read path and the owner directories. Dyn-compatible, so the worker's
/// Durable Object stub and the in-process driver are interchangeable.
pub trait Owners {
    /// The owner's listing, waiting up to `wait_ms` for a build to complete. Without `start`,
    /// a caller only reads a completed listing or joins a build under way, and is answered
    /// `Unstarted` otherwise: polls cost nothing, only the caller who starts a build is charged.
    fn listing<'a>(
        &'a self,
        owner: &'a Owner,
        wait_ms: u64,
        start: bool,
    ) -> LocalBoxFuture<'a, Answer>;
    /// Starts a build unless one is under way or a fresh one just completed; does not wait.
    fn refresh<'a>(&'a self, owner: &'a Owner) -> LocalBoxFuture<'a, Result<(), ApiError>>;
    /// Drops these repository keys of the owner's from KV (a marker, then a delete each), in an
    /// invocation of the directory's own: one delivery may name more than one can drop.
    fn forget<'a>(
        &'a self,
        owner: &'a Owner,
        keys: &'a [String],
    ) -> LocalBoxFuture<'a, Result<(), ApiError>>;
    /// Repository-level changes: applied to the live listing (narrowing facts at once, the rest
    /// once GitHub answered), or queued; `NoListing` when the directory has nothing to patch.
    fn change<'a>(
        &'a self,
        owner: &'a Owner,
        changes: &'a [Change],
    ) -> LocalBoxFuture<'a, Result<Told, ApiError>>;
    /// The truth changed at `at_ms`: a build in progress restarts from the first page, and
    /// nothing older is answered.
    fn invalidate<'a>(
        &'a self,
        owner: &'a Owner,
        at_ms: u64,
    ) -> LocalBoxFuture<'a, Result<(), ApiError>>;
}

//! The seam between the read path (and invalidation) and the owner directories, beside the
//! service's other seams: what is asked of an owner's directory and what it answers. The
//! directories themselves (`crate::owners`, the Durable Object in the worker) implement it, so
//! the service never imports from the layer above it.

use crate::error::ApiError;
use crate::forge::Fact;
use crate::names::Owner;
use crate::names::RepoName;
use futures::future::LocalBoxFuture;

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
    /// Counts a delivery applied for the owner, or answered as a replay (`deliveries_24h` of its
    /// status). Told after the delivery's answer: a lost count costs nothing but the count.
    fn delivered<'a>(
        &'a self,
        owner: &'a Owner,
        replayed: bool,
    ) -> LocalBoxFuture<'a, Result<(), ApiError>>;
    /// The owner's status as its directory knows it, as JSON (`owners::status`); never starts a
    /// build.
    fn status<'a>(&'a self, owner: &'a Owner) -> LocalBoxFuture<'a, Result<String, ApiError>>;
}

/// One change heard in a delivery (or an admin purge), with when it was heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: RepoName,
    pub fact: Fact,
    /// When it was heard. The directory restamps it with its own clock on arrival (what it asks
    /// GitHub afterwards reflects the change), so this is the directory's time once queued.
    pub at_ms: u64,
}

/// What became of a delivery's changes in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// In the listing: the next read sees them.
    Applied,
    /// Stored, to be applied when GitHub answers (or by the build in progress).
    Queued,
    /// No listing and no build: nothing to patch (the caller drops the KV listing instead).
    NoListing,
}

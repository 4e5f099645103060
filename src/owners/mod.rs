//! Owners of any size: one directory per lowercased owner (the `OwnerDirectory` Durable Object in
//! the worker) is the only code that pages an owner's listing. Builds page its parts side by side,
//! checkpoint after every round, continue when no caller is waiting, shrink pages that time out,
//! and write `v1:org:{owner}` once, when every page has arrived.
//!
//! - `build`: the checkpoint and the pure decisions made on it.
//! - `directory`: the build's state over the `Checkpoints` seam and the read path's `Service`.
//! - `paging`: the build driver: rounds of pages, one per stream, side by side.
//! - `catch_up`: a build's listing takes in the changes heard while it paged.
//! - `complete`: how a build ends: assembled, answered, written back once.
//! - `memory`: what a directory keeps between requests, and the events that wake its callers.
//! - `live`: the complete listing a directory keeps after a build, record by record, and the
//!   merge rule for changes (pure).
//! - `queue`: changes waiting for GitHub's answer, one entry per name, with the sequence numbers
//!   that tell which deliveries an answer covers (pure).
//! - `revalidate`: repository-level changes patch the live listing (narrowing facts at once,
//!   then GitHub asked again in coalesced rounds).
//! - `object`: the Durable Object's control logic over the `Host` seam (alarm, tasks): what
//!   follows a drive, the callers' wait, deliveries' changes, what an alarm does.
//! - `events`, `feed`: live events, the plain-Rust messages per scope and a directory's sending
//!   of them to the object's subscribers.
//! - `partition`: partitioned builds' streams, plan, rounds and meeting ends (pure).
//! - `status`, `tally`: the owner's status route, and the deliveries it counts by the hour.
//! - `wire`: the directory's answers as HTTP between the worker and the object.
//! - `local`: an in-process `Owners` running the same driver inline (native tests, benches).
//!
//! **Architecture invariant**: a build that sent its first page before an owner-level
//! invalidation never writes KV: the invalidation restarts it from the first page (and KV's
//! markers guard the rest). Repository-level changes never restart a build: they are revalidated
//! before its listing is answered.

pub mod build;
pub mod catch_up;
pub mod complete;
pub mod directory;
pub mod drift;
pub mod events;
pub mod feed;
pub mod live;
pub mod local;
pub mod memory;
pub mod object;
pub mod paging;
pub mod partition;
pub mod queue;
pub mod revalidate;
pub mod status;
pub mod tally;
pub mod wire;

pub use crate::service::directories::{Answer, Change, Owners, Progress, Told};

//! The owner's Durable Object's control logic as plain Rust over the `Host` seam (its alarm, its
//! tasks, the last read it noted): what follows a drive (the alarm re-armed for pages left, a
//! rate-limit reset or a driver to watch; a completed build's write-back; the revalidation queue
//! retried; the reaping alarm), the callers' wait for a build, a delivery's changes, and what an
//! alarm does. `shell::owners` carries it out with the object's alarm and `spawn_local`;
//! `local.rs` is a test double of the seam, so native tests drive this same orchestration,
//! per-invocation page cap included.

use super::build::{self, PAGE_TIMEOUT_MS};
use super::directory::{self, Checkpoints, Directory, Drive};
use super::feed::State;
use super::revalidate::{CHANGE_WAIT_MS, RETRY_MS};
use super::{Answer, Change, Told};
use crate::cache::Store;
use crate::error::ApiError;
use crate::fields::FieldSet;
use crate::model::Scope;
use crate::service::{Clock, Transport};
use futures::future::LocalBoxFuture;
use std::pin::pin;

/// Pages one alarm invocation (or a request's own driver) fetches before the next alarm takes
/// over: each invocation has its own subrequest budget (50 on the Free plan), and a few KV
/// operations come on top.
pub const PAGES_PER_INVOCATION: u32 = 40;
/// Wall time one alarm invocation pages for before re-arming.
pub const ALARM_BUDGET_MS: u64 = 120_000;
/// When the alarm looks at a build that another driver is paging: by then the page in flight
/// has answered or timed out, and the driver has handed over or finished.
pub const WATCH_MS: u64 = PAGE_TIMEOUT_MS + 5_000;
/// How long a completed build lets its answers travel before it writes: callers are answered
/// from the object's memory meanwhile, and the writes neither hold the answers back (the output
/// gate) nor compete with them for the machine.
pub const WRITE_AFTER_MS: u64 = 100;

/// What the object's runtime gives its control logic.
pub trait Host {
    /// Arms the alarm `in_ms` from now (an alarm already set is moved).
    fn arm(&self, in_ms: u64) -> LocalBoxFuture<'_, ()>;
    /// Whether an alarm set in this life has not fired yet.
    fn armed(&self) -> bool;
    /// Whether a driver pages, or one was spawned and is about to.
    fn driving(&self) -> bool;
    /// The last read noted (storage), for the reaping alarm; an object that never noted one
    /// counts from now.
    fn read_at(&self) -> LocalBoxFuture<'_, u64>;
    /// Deletes everything the object stored: a new life.
    fn reap(&self) -> LocalBoxFuture<'_, ()>;
}

/// Starts a driver for a waiting caller until the given time: `None` when the host runs it as a
/// task of its own (the object), or the drive itself, run before the wait (natively).
pub type Spawn<'a> = &'a dyn Fn(u64) -> Option<LocalBoxFuture<'a, ()>>;

/// One drive of the build (at most `PAGES_PER_INVOCATION` pages, until `stop_at_ms`), then what
/// it leaves: see `after_drive`. Returns how the drive ended.
pub async fn drive<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
    stop_at_ms: u64,
) -> Drive {
    let outcome = dir.drive(PAGES_PER_INVOCATION, stop_at_ms).await;
    after_drive(dir, host, outcome).await;
    outcome
}

/// The alarm armed for pages left, a rate-limit reset or another driver to watch; once a
/// finished build's answers are out, its writes, and then the alarm for what GitHub failed to
/// answer, or the reaping one (a failed build resumes on a later request, not by itself).
pub async fn after_drive<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
    outcome: Drive,
) {
    let clock = dir.svc.clock;
    match outcome {
        Drive::More => host.arm(0).await,
        Drive::Paused { until_ms } => host.arm(until_ms.saturating_sub(clock.now_ms())).await,
        Drive::Idle if host.driving() => host.arm(WATCH_MS).await,
        Drive::Idle => {}
        Drive::Done | Drive::Failed => {
            clock.sleep(WRITE_AFTER_MS).await;
            dir.write_back().await;
            if dir.queued() {
                // What changed during the build and GitHub did not answer: asked again soon.
                host.arm(RETRY_MS).await;
            } else if !host.driving() {
                rearm_reaping(dir, host).await;
            }
        }
    }
}

/// No alarm is left watching a build: the next one is the reaping one.
async fn rearm_reaping<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
) {
    let due = build::reap_at(host.read_at().await, dir.svc.cfg.stale_ttl);
    host.arm(due.saturating_sub(dir.svc.clock.now_ms())).await;
}

/// A listing for a caller who waits up to `wait_ms`: a completed or live listing at once; else
/// the build joined, or started when `start` (driven by `spawn` while the caller waits), until
/// it completes, fails or pauses (the caller is woken then, not on a timer) or the wait ends
/// (202 with progress). `Unstarted` when nothing is under way and `start` is false.
pub async fn listing<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
    wait_ms: u64,
    start: bool,
    spawn: Spawn<'_>,
) -> Answer {
    if let Some(answer) = dir.immediate() {
        return answer;
    }
    // A build between two alarms is under way too: joining it costs nothing. (Not "an alarm is
    // set": the reaping alarm is set for every owner read.)
    if !start && !host.driving() && !dir.in_progress().await {
        // `in_progress` loads what an earlier life of the object stored: a live listing found
        // there is answered now, not left for a caller charged to start a build.
        return dir.immediate().unwrap_or(Answer::Unstarted);
    }
    let clock = dir.svc.clock;
    let seen = dir.mem.borrow().completions();
    let deadline = clock.now_ms().saturating_add(wait_ms);
    let driver = if dir.start_waited().await {
        spawn(deadline)
    } else {
        None
    };
    if let Some(driver) = driver {
        // Natively the driver runs before the wait: a manual clock jumps to the deadline as
        // soon as a waiter sleeps, which would cut a driver running beside it short.
        driver.await;
    }
    wait_for_build(dir, host, seen, deadline).await
}

async fn wait_for_build<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
    seen: u64,
    deadline: u64,
) -> Answer {
    let (clock, memory) = (dir.svc.clock, dir.mem);
    loop {
        if let Some(answer) = memory.borrow().answer_since(seen) {
            return answer;
        }
        if let Some(answer) = dir.immediate() {
            return answer;
        }
        let now = clock.now_ms();
        if now >= deadline {
            if host.driving() {
                // The caller leaves while a page is in flight: should the object lose its
                // driver, the alarm finds the build stored and resumes it.
                dir.keep().await;
                host.arm(WATCH_MS).await;
            }
            return dir.status().await;
        }
        // Woken by whoever changes the build, or by this caller's own timer at its deadline.
        let events = memory.borrow().events();
        let woken = pin!(directory::changed(memory, events));
        let timer = pin!(clock.sleep(deadline - now));
        futures::future::select(woken, timer).await;
    }
}

/// A new live-events subscriber of `scope`: what an earlier life stored is loaded, a build is
/// started for it when there is no listing and `start` (the worker charged the caller for it, as
/// for a listing read; the alarm drives it at once), and its first frames are returned
/// (`Directory::welcome`). `None` when there is nothing and `start` is false: the worker charges
/// the caller and asks again.
pub async fn subscribe<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
    (scope, fields, since): (Scope, FieldSet, Option<u64>),
    start: bool,
) -> Option<Vec<String>> {
    dir.in_progress().await;
    if dir.state() == State::None && dir.immediate().is_none() {
        if !start {
            return None;
        }
        if dir.start().await {
            host.arm(0).await;
        }
    }
    Some(dir.welcome(scope, fields, since))
}

/// A delivery's repository-level changes: applied to the live listing (or queued, the alarm
/// retrying what GitHub failed to answer; a build in progress applies them itself).
///
/// # Errors
/// `StoreUnavailable` when the directory had no listing and KV refused the delete of the owner's.
pub async fn change<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
    changes: &[Change],
) -> Result<Told, ApiError> {
    let told = dir.hear(changes, CHANGE_WAIT_MS).await?;
    // Changes GitHub did not answer, or a listing KV refused: the alarm tries again.
    if dir.queued() && !host.driving() {
        host.arm(RETRY_MS).await;
    }
    Ok(told)
}

/// Changes GitHub failed to answer, asked again (by the alarm); re-arms while it still fails.
pub async fn retry_queued<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
) {
    // (`in_progress` loads what an earlier life stored, the queue included.)
    if host.driving() || dir.in_progress().await || !dir.queued() {
        return;
    }
    if dir.unpublished() {
        dir.publish().await;
    }
    if !dir.round().await || dir.unpublished() {
        host.arm(RETRY_MS).await;
    } else if let Some(at) = dir.next_round_at().filter(|_| dir.queued()) {
        // A backlog drains a round (100 names) a second.
        host.arm(at.saturating_sub(dir.svc.clock.now_ms())).await;
    }
}

/// What an alarm does once it fired (the host has forgotten it was armed): drives the build on
/// (re-arming while pages are left or a rate limit must pass), retries queued changes, and when
/// nothing needs the alarm any more it was the reaping one: an owner unread for the stale time
/// loses everything its object stored; otherwise the alarm moves on. Returns how its drive
/// ended.
pub async fn alarm<S: Store, T: Transport, C: Clock, K: Checkpoints, H: Host>(
    dir: &Directory<'_, S, T, C, K>,
    host: &H,
) -> Drive {
    let stop_at = dir.svc.clock.now_ms().saturating_add(ALARM_BUDGET_MS);
    let outcome = drive(dir, host, stop_at).await;
    retry_queued(dir, host).await;
    if host.armed() || host.driving() {
        return outcome;
    }
    let now = dir.svc.clock.now_ms();
    let due = build::reap_at(host.read_at().await, dir.svc.cfg.stale_ttl);
    if now < due {
        host.arm(due - now).await;
    } else {
        host.reap().await;
    }
    outcome
}

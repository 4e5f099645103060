//! What a directory keeps between requests while its object lives (all requests, alarms and
//! drivers share it): the build in progress, the last answer, the live listing, the revalidation
//! queue, and the events that wake waiting callers.

use super::build::Checkpoint;
use super::drift::DriftLog;
use super::events::Feeds;
use super::live::{Change, Live};
use super::queue::Queue;
use super::tally::Tally;
use super::Answer;
use crate::cache::entry;
use crate::error::ApiError;
use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::task::{Poll, Waker};

/// What a completed build still has to do once its answer is out.
#[derive(Debug)]
pub(super) struct Unwritten {
    /// The generation it completed under: an invalidation since makes its answer obsolete.
    pub(super) generation: u64,
    pub(super) started_at_ms: u64,
    /// `(key, value, ttl)`; `None` when nothing is written (a pinned owner's not-found).
    pub(super) write: Option<(String, String, Option<u64>)>,
    /// The completed listing's last page (its other pages are stored) and the page keys of the
    /// listing it replaces; `None` for a not-found answer.
    pub(super) keep: Option<(String, String, Vec<String>)>,
    pub(super) meta: Option<String>,
    /// The stored pages the build's catch-up patched after they were stored: written again, as
    /// they stand then, with the last page.
    pub(super) rewritten: Vec<u32>,
}

/// What the object keeps between requests while it lives (all requests and alarms share it).
#[derive(Debug, Default)]
pub struct Memory {
    /// Bumped by every invalidation; a page answered under an older generation is discarded.
    pub(super) generation: u64,
    /// The latest owner-level invalidation heard: a build begun after it counts as younger,
    /// even within the same millisecond (KV's markers compare these times).
    pub(super) invalidated_at_ms: u64,
    /// A driver is paging.
    pub(super) running: bool,
    /// The build in progress, once read from storage (`loaded`).
    pub(super) checkpoint: Option<Checkpoint>,
    pub(super) loaded: bool,
    /// The last completed answer and until when it is fresh: KV is eventually consistent, so a
    /// caller who just missed it in KV is answered here instead of starting another build.
    pub(super) recent: Option<Recent>,
    /// A failed (or rate-limited) build and until when that is the answer.
    pub(super) failed: Option<(ApiError, u64)>,
    /// Builds completed in this object's life, and the last one's answer: callers who waited
    /// for a build get its answer even when it is too old to be handed to anyone else.
    pub(super) completions: u64,
    pub(super) last: Option<Answer>,
    /// Changes a waiting caller cares about (a build completed, failed or paused), counted, and
    /// the callers to wake on the next one: they are answered when it happens, not on a timer.
    pub(super) events: u64,
    pub(super) waiters: Vec<Waker>,
    /// Storage may hold a build (a checkpoint or pages): only then is there anything to clear.
    pub(super) stored: bool,
    /// The last completed build's KV write, made after its callers were answered (`write_back`).
    pub(super) unwritten: Option<Unwritten>,
    /// The complete listing kept after a build, patched by repository-level changes, and its
    /// envelope text once made.
    pub(super) live: Option<Live>,
    pub(super) live_text: Option<String>,
    /// Changes waiting for GitHub's answer (`revalidate`), and those heard since the build in
    /// progress began (revalidated before its listing is kept).
    pub(super) queue: Queue,
    pub(super) since: Queue,
    /// Narrowing facts heard in the last `FACT_HOLDS_MS`, listing or not: a build whose pages
    /// GitHub may have answered from before them applies them too.
    pub(super) facts: Vec<Change>,
    pub(super) rounds: Rounds,
    /// Names (lowercased) heard of since the build in progress began: a difference the build
    /// finds in them is explained, not drift.
    pub(super) heard_in_build: HashSet<String>,
    /// What rebuilds found that the live listing they replaced did not show (`drift`), and
    /// whether that changed since it was last stored.
    pub(super) drift: DriftLog,
    pub(super) drift_unstored: bool,
    /// Deliveries the worker applied or answered as replays, by the hour (`tally`).
    pub(super) deliveries: Tally,
    /// Live events: each scope's numbered messages (`events`), and when the last `progress`
    /// frame went out.
    pub(super) feeds: Feeds,
    pub(super) seqs_unstored: bool,
    pub(super) progress_at_ms: u64,
}

/// Where revalidation rounds stand: changes are numbered as heard; a caller waits until its
/// number is applied (or parked: durably queued after GitHub failed).
#[derive(Debug, Default)]
pub struct Rounds {
    pub heard: u64,
    pub applied: u64,
    pub parked: u64,
    pub running: bool,
    pub last_at_ms: u64,
    /// The last KV write of the listing (at most one per second per key).
    pub published_at_ms: u64,
    /// KV refused the listing's last write: the copy there lacks changes deliveries were told
    /// are in, so it is written again (by the alarm) until it lands.
    pub unpublished: bool,
    /// Rounds GitHub failed since the last one it answered.
    pub failed: u64,
}

/// A completed build's answer, kept while it is fresh.
#[derive(Debug, Clone)]
pub(super) struct Recent {
    /// When the build sent its first page.
    pub(super) started_at_ms: u64,
    pub(super) fresh_until_ms: u64,
    pub(super) answer: Answer,
}

impl Memory {
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// How many builds have completed; see `answer_since`.
    pub fn completions(&self) -> u64 {
        self.completions
    }

    /// The answer of the latest build when one completed after `seen` completions.
    pub fn answer_since(&self, seen: u64) -> Option<Answer> {
        (self.completions > seen)
            .then(|| self.last.clone())
            .flatten()
    }

    /// How many changes callers may wait for have happened; see `changed`.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub(super) fn notify(&mut self) {
        self.events += 1;
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }
}

/// Resolves once more than `seen` events have happened in `mem` (see `Memory::events`). Whoever
/// changes the build (a request's driver, the alarm) wakes the callers waiting here.
pub fn changed(mem: &RefCell<Memory>, seen: u64) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        let mut mem = mem.borrow_mut();
        if mem.events > seen {
            return Poll::Ready(());
        }
        if !mem.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            mem.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    })
}

impl Memory {
    /// The live listing's envelope, made once per change.
    pub(super) fn live_envelope(&mut self) -> String {
        if let (None, Some(l)) = (&self.live_text, &self.live) {
            self.live_text = Some(entry::encode(l.started_at_ms, Some(&l.listing)));
        }
        self.live_text.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn waiting_callers_are_woken_by_the_next_change_only() {
        let mem = RefCell::new(Memory::default());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let seen = mem.borrow().events();
        let mut waiting = pin!(changed(&mem, seen));
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert_eq!(mem.borrow().waiters.len(), 1, "one waker per caller");
        mem.borrow_mut().notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(mem.borrow().waiters.is_empty());
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        // A caller who looked before the change is not left waiting for the one after it.
        assert!(pin!(changed(&mem, seen)).poll(&mut cx).is_ready());
    }
}

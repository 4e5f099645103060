//! Isolates: each location's worker, and the owners' objects, keep their own in-memory tier
//! (`cache::memory`), which the worker's code reaches through a thread-local. A future running in
//! an isolate has that isolate's tier swapped in while it is polled, and out again after, so two
//! locations interleaved on one thread never see each other's memory. So is each isolate's memory
//! of the webhook hooks it learned.

use forgelens::cache::memory::{self, Tier, MAX_BYTES};
use forgelens::service::recover::swap_learned;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct Isolates {
    tiers: Vec<RefCell<Tier>>,
    learned: Vec<RefCell<Vec<(u64, u64)>>>,
    /// The isolate whose tier is in the thread-local now (`usize::MAX`: none).
    current: Cell<usize>,
}

impl Isolates {
    pub fn new(count: usize) -> Isolates {
        Isolates {
            tiers: (0..count)
                .map(|_| RefCell::new(Tier::new(MAX_BYTES)))
                .collect(),
            learned: (0..count).map(|_| RefCell::default()).collect(),
            current: Cell::new(usize::MAX),
        }
    }

    /// `f` run in isolate `id`.
    pub fn run<'i, F: Future>(&'i self, id: usize, f: F) -> In<'i, F> {
        In {
            isolates: self,
            id,
            inner: Box::pin(f),
        }
    }

    fn swap(&self, id: usize) {
        memory::with(|t| std::mem::swap(t, &mut self.tiers[id].borrow_mut()));
        swap_learned(&mut self.learned[id].borrow_mut());
    }
}

pub struct In<'i, F> {
    isolates: &'i Isolates,
    id: usize,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for In<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let iso = this.isolates;
        let before = iso.current.get();
        if before == this.id {
            return this.inner.as_mut().poll(cx);
        }
        // Nested runs swap in and out like a stack: the outer isolate's tier is back in the
        // thread-local when this poll returns.
        iso.swap(this.id);
        iso.current.set(this.id);
        let out = this.inner.as_mut().poll(cx);
        iso.swap(this.id);
        iso.current.set(before);
        out
    }
}

//! A seeded single-threaded executor with a virtual clock: every pending task that can proceed is
//! a candidate, and the seed picks which one is polled next, so each await is an interleaving
//! point; when none can proceed, the clock jumps to the earliest timer. The same seed gives the
//! same run, step for step.

use forgelens::service::Clock;
use forgelens::testkit::Rng;
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The virtual clock and the seeded choice of what runs next.
pub struct Sched {
    pub now: Cell<u64>,
    pub rng: RefCell<Rng>,
    /// (due time, sequence) → waker: timers fire in time order, ties in the order set.
    timers: RefCell<BTreeMap<(u64, u64), Waker>>,
    next_timer: Cell<u64>,
}

impl Sched {
    pub fn new(seed: u64, now: u64) -> Sched {
        Sched {
            now: Cell::new(now),
            rng: RefCell::new(Rng(seed)),
            timers: RefCell::default(),
            next_timer: Cell::new(0),
        }
    }

    pub fn below(&self, n: usize) -> usize {
        self.rng.borrow_mut().below(n.max(1))
    }

    pub fn chance(&self, one_in: usize) -> bool {
        self.rng.borrow_mut().chance(one_in.max(1))
    }

    /// Resolves once the clock reaches `now + ms` (and at least one scheduling step later, so
    /// even `sleep(0)` lets other tasks in).
    pub fn sleep(&self, ms: u64) -> impl Future<Output = ()> + '_ {
        let at = self.now.get().saturating_add(ms);
        let mut armed = false;
        std::future::poll_fn(move |cx| {
            if armed && self.now.get() >= at {
                return Poll::Ready(());
            }
            armed = true;
            let id = self.next_timer.get();
            self.next_timer.set(id + 1);
            self.timers
                .borrow_mut()
                .insert((at, id), cx.waker().clone());
            Poll::Pending
        })
    }

    /// Wakes the timers due at the earliest time and moves the clock there. `false`: none.
    fn fire_next(&self) -> bool {
        let first = self.timers.borrow().keys().next().copied();
        let Some((at, _)) = first else { return false };
        self.now.set(self.now.get().max(at));
        let due: Vec<(u64, u64)> = self
            .timers
            .borrow()
            .range(..=(at, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(w) = self.timers.borrow_mut().remove(&key) {
                w.wake();
            }
        }
        true
    }
}

/// A clock over the scheduler: what the worker's code sleeps on.
pub struct SimClock<'a>(pub &'a Sched);

impl Clock for SimClock<'_> {
    fn now_ms(&self) -> u64 {
        self.0.now.get()
    }
    async fn sleep(&self, ms: u64) {
        self.0.sleep(ms).await;
    }
}

struct Task<'a> {
    future: Option<LocalBoxFuture<'a, ()>>,
    flag: Arc<Flag>,
    name: String,
}

/// Where new tasks go (the scenario's operations, a request's deferred refresh, a delayed
/// delivery). A handle is owned, not borrowed, so tasks can spawn tasks.
#[derive(Clone)]
pub struct Spawner<'a>(Rc<RefCell<Vec<Named<'a>>>>);

/// A task and its name (for the trace of a stuck run).
type Named<'a> = (String, LocalBoxFuture<'a, ()>);

impl<'a> Spawner<'a> {
    pub fn new() -> Spawner<'a> {
        Spawner(Rc::default())
    }

    pub fn spawn(&self, name: impl Into<String>, f: impl Future<Output = ()> + 'a) {
        self.0.borrow_mut().push((name.into(), Box::pin(f)));
    }
}

/// Why a run stopped before every task finished.
#[derive(Debug)]
pub enum Stuck {
    /// Tasks wait and no timer can wake them.
    Deadlock(Vec<String>),
    /// More steps than the bound (a livelock).
    TooManySteps(Vec<String>),
}

/// Runs every spawned task (and those they spawn) to completion, picking by seed.
pub fn run<'a>(sched: &Sched, spawner: &Spawner<'a>, max_steps: u64) -> Result<u64, Stuck> {
    let mut tasks: Vec<Task<'a>> = Vec::new();
    let mut steps = 0;
    loop {
        let new: Vec<_> = spawner.0.borrow_mut().drain(..).collect();
        for (name, future) in new {
            tasks.push(Task {
                future: Some(future),
                flag: Arc::new(Flag(AtomicBool::new(true))),
                name,
            });
        }
        tasks.retain(|t| t.future.is_some());
        if tasks.is_empty() {
            return Ok(steps);
        }
        let ready: Vec<usize> = (0..tasks.len())
            .filter(|&i| tasks[i].flag.0.load(Ordering::SeqCst))
            .collect();
        if ready.is_empty() {
            if !sched.fire_next() {
                return Err(Stuck::Deadlock(
                    tasks.iter().map(|t| t.name.clone()).collect(),
                ));
            }
            continue;
        }
        steps += 1;
        if steps > max_steps {
            return Err(Stuck::TooManySteps(
                tasks.iter().map(|t| t.name.clone()).collect(),
            ));
        }
        let pick = ready[sched.below(ready.len())];
        let task = &mut tasks[pick];
        task.flag.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(Arc::clone(&task.flag));
        let mut cx = Context::from_waker(&waker);
        if let Some(f) = task.future.as_mut() {
            if Pin::new(f).poll(&mut cx).is_ready() {
                task.future = None;
            }
        }
    }
}

//! Per-isolate coordination, kept in thread-locals (a worker isolate runs one thread):
//!
//! - **Single flight**: concurrent misses for one key share one upstream request. workerd forbids
//!   I/O objects crossing requests, so the leader does all the I/O and leaves followers only an
//!   owned, parsed Rust value in a shared slot. Followers look at the slot on their own timer
//!   (`POLL_MS`) rather than being woken by the leader: workerd cancels a request whose only
//!   pending work would be resumed from another request's context as hung. If the leader fails,
//!   is cancelled or outlives the follower's deadline, the follower fetches for itself.
//! - **Refresh claims**: at most one background refresh per key per isolate. A claim older than
//!   `CLAIM_TTL_MS` is considered abandoned (`wait_until` work can be cut off).

use super::Clock;
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// After this long a refresh claim no longer blocks a new refresh.
pub const CLAIM_TTL_MS: u64 = 60_000;
/// How often a follower looks whether the leader is done.
pub const POLL_MS: u64 = 10;

/// `None` while the leader works; then `Some(Some(value))`, or `Some(None)` if it gave up.
type Slot = Rc<RefCell<Option<Option<Rc<dyn Any>>>>>;

thread_local! {
    static FLIGHTS: RefCell<HashMap<String, Slot>> = RefCell::new(HashMap::new());
    static CLAIMS: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

/// The outcome of joining a flight.
pub enum Joined<T> {
    /// Nobody was fetching this key: do it and `finish` the lead.
    Lead(Lead),
    /// Another request fetched it.
    Shared(T),
    /// The leader gave up: fetch for yourself.
    Alone,
}

/// The right and duty to fetch one key. Dropping it unfinished releases the followers.
pub struct Lead {
    key: String,
    slot: Slot,
}

impl Lead {
    /// Leaves `value` for every follower and ends the flight.
    pub fn finish<T: Clone + 'static>(self, value: T) {
        let shared: Rc<dyn Any> = Rc::new(value);
        *self.slot.borrow_mut() = Some(Some(shared));
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        // Unfinished: followers see `Some(None)` and fetch for themselves.
        self.slot.borrow_mut().get_or_insert(None);
        FLIGHTS.with(|f| {
            let mut flights = f.borrow_mut();
            if flights
                .get(&self.key)
                .is_some_and(|s| Rc::ptr_eq(s, &self.slot))
            {
                flights.remove(&self.key);
            }
        });
    }
}

/// Leads the flight for `key`, or waits (until `deadline_ms`) for the one under way.
pub async fn join<T: Clone + 'static, C: Clock>(
    key: &str,
    clock: &C,
    deadline_ms: u64,
) -> Joined<T> {
    let (slot, leads) = FLIGHTS.with(|f| {
        let mut flights = f.borrow_mut();
        match flights.get(key) {
            Some(slot) => (Rc::clone(slot), false),
            None => {
                let slot: Slot = Rc::new(RefCell::new(None));
                flights.insert(key.to_string(), Rc::clone(&slot));
                (slot, true)
            }
        }
    });
    if leads {
        return Joined::Lead(Lead {
            key: key.to_string(),
            slot,
        });
    }
    loop {
        if let Some(done) = slot.borrow().as_ref() {
            return match done {
                Some(value) => value
                    .downcast_ref::<T>()
                    .cloned()
                    .map_or(Joined::Alone, Joined::Shared),
                None => Joined::Alone,
            };
        }
        if clock.now_ms() >= deadline_ms {
            return Joined::Alone;
        }
        clock.sleep(POLL_MS).await;
    }
}

/// Claims the background refresh of `key`; `false` when one is already under way.
pub fn claim_refresh(key: &str, now_ms: u64) -> bool {
    CLAIMS.with(|c| {
        let mut claims = c.borrow_mut();
        match claims.get(key) {
            Some(since) if now_ms.saturating_sub(*since) < CLAIM_TTL_MS => false,
            _ => {
                claims.insert(key.to_string(), now_ms);
                true
            }
        }
    })
}

pub fn release_refresh(key: &str) {
    CLAIMS.with(|c| c.borrow_mut().remove(key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::future::join as both;
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Returns `Pending` once (after asking to be polled again), so the other future runs.
    struct YieldNow(bool);

    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    struct TestClock(Cell<u64>);

    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            self.0.get()
        }
        async fn sleep(&self, ms: u64) {
            self.0.set(self.0.get() + ms);
            YieldNow(false).await;
        }
    }

    #[test]
    fn followers_share_the_leaders_value() {
        let clock = TestClock(Cell::new(0));
        let leader = async {
            let Joined::<u32>::Lead(lead) = join("k1", &clock, 1_000).await else {
                panic!("the first joiner leads")
            };
            YieldNow(false).await;
            lead.finish(7u32);
            7
        };
        let follower = async {
            match join::<u32, _>("k1", &clock, 1_000).await {
                Joined::Shared(v) => v,
                _ => 0,
            }
        };
        assert_eq!(block_on(both(leader, follower)), (7, 7));
        assert!(
            matches!(
                block_on(join::<u32, _>("k1", &clock, 1_000)),
                Joined::Lead(_)
            ),
            "the flight is over"
        );
    }

    #[test]
    fn a_dropped_leader_releases_followers() {
        let clock = TestClock(Cell::new(0));
        let leader = async {
            let lead = join::<u32, _>("k2", &clock, 1_000).await;
            YieldNow(false).await;
            drop(lead);
        };
        let follower = async { matches!(join::<u32, _>("k2", &clock, 1_000).await, Joined::Alone) };
        assert!(block_on(both(leader, follower)).1);
    }

    #[test]
    fn followers_stop_waiting_at_their_deadline() {
        let clock = TestClock(Cell::new(0));
        let _lead = block_on(join::<u32, _>("k3", &clock, 1_000));
        assert!(matches!(
            block_on(join::<u32, _>("k3", &clock, 50)),
            Joined::Alone
        ));
        assert!(clock.now_ms() >= 50);
    }

    #[test]
    fn one_refresh_claim_per_key() {
        assert!(claim_refresh("r", 0));
        assert!(!claim_refresh("r", 1_000));
        assert!(claim_refresh("other", 1_000));
        assert!(
            claim_refresh("r", CLAIM_TTL_MS),
            "an abandoned claim expires"
        );
        release_refresh("r");
        assert!(claim_refresh("r", CLAIM_TTL_MS + 1));
    }
}

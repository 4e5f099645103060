//! Per-isolate coordination, kept in thread-locals (a worker isolate runs one thread):
//!
//! - **Single flight**: concurrent misses for one key share one upstream request. workerd forbids
//!   I/O objects crossing requests, so the leader does all the I/O and hands followers only an
//!   owned, parsed Rust value through a channel. If the leader fails or is cancelled, followers
//!   are told to fetch for themselves.
//! - **Refresh claims**: at most one background refresh per key per isolate. A claim older than
//!   `CLAIM_TTL_MS` is considered abandoned (`wait_until` work can be cut off).

use futures::channel::oneshot;
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// After this long a refresh claim no longer blocks a new refresh.
pub const CLAIM_TTL_MS: u64 = 60_000;

type Waiters = Vec<oneshot::Sender<Rc<dyn Any>>>;

thread_local! {
    static FLIGHTS: RefCell<HashMap<String, Waiters>> = RefCell::new(HashMap::new());
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
    finished: bool,
}

impl Lead {
    /// Hands `value` to every follower and ends the flight.
    pub fn finish<T: Clone + 'static>(mut self, value: T) {
        self.finished = true;
        let waiters = FLIGHTS
            .with(|f| f.borrow_mut().remove(&self.key))
            .unwrap_or_default();
        let shared: Rc<dyn Any> = Rc::new(value);
        for waiter in waiters {
            // A follower that went away is no error.
            let _ = waiter.send(Rc::clone(&shared));
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if !self.finished {
            // Dropping the senders wakes every follower with `Canceled`.
            FLIGHTS.with(|f| f.borrow_mut().remove(&self.key));
        }
    }
}

/// Leads the flight for `key`, or waits for the one under way.
pub async fn join<T: Clone + 'static>(key: &str) -> Joined<T> {
    let waiting = FLIGHTS.with(|f| {
        let mut flights = f.borrow_mut();
        match flights.get_mut(key) {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Some(rx)
            }
            None => {
                flights.insert(key.to_string(), Vec::new());
                None
            }
        }
    });
    let Some(rx) = waiting else {
        return Joined::Lead(Lead {
            key: key.to_string(),
            finished: false,
        });
    };
    match rx.await {
        Ok(value) => value
            .downcast_ref::<T>()
            .cloned()
            .map_or(Joined::Alone, Joined::Shared),
        Err(_) => Joined::Alone,
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
    use futures::future::join;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Returns `Pending` once (after asking to be polled again), so the other future runs.
    pub(crate) struct YieldNow(bool);

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

    #[test]
    fn followers_share_the_leaders_value() {
        let leader = async {
            let Joined::<u32>::Lead(lead) = join_flight("k1").await else {
                panic!("first joiner leads")
            };
            YieldNow(false).await;
            lead.finish(7u32);
            7
        };
        let follower = async {
            match join_flight::<u32>("k1").await {
                Joined::Shared(v) => v,
                _ => 0,
            }
        };
        assert_eq!(block_on(join(leader, follower)), (7, 7));
        // The flight is over: the next joiner leads again.
        assert!(matches!(
            block_on(join_flight::<u32>("k1")),
            Joined::Lead(_)
        ));
    }

    #[test]
    fn a_dropped_leader_releases_followers() {
        let leader = async {
            let lead = join_flight::<u32>("k2").await;
            YieldNow(false).await;
            drop(lead);
        };
        let follower = async { matches!(join_flight::<u32>("k2").await, Joined::Alone) };
        assert!(block_on(join(leader, follower)).1);
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

    async fn join_flight<T: Clone + 'static>(key: &str) -> Joined<T> {
        super::join(key).await
    }
}

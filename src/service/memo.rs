//! The read path's use of the in-isolate memory tier (`cache::memory`): fresh entries are kept
//! decoded for at most `MEMORY_TTL_MS` and never past their freshness, rendered answers beside
//! them, and an invalidation here drops both at once.

use super::{Clock, Service, Transport};
use crate::cache::entry::Entry;
use crate::cache::memory::{self, Value};
use crate::cache::Store;
use crate::model::{OwnerListing, Repo};
use std::rc::Rc;

/// A rendered answer found in memory, with when its entry was fetched.
pub struct Rendered {
    pub body: Rc<str>,
    pub etag: Rc<str>,
    /// How many records a paged listing view matched.
    pub total: Option<u64>,
    pub fetched_at_ms: u64,
}

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    fn memory_on(&self) -> bool {
        self.cfg.memory_ttl_ms > 0
    }

    /// Until when a copy of an entry fetched at `fetched_at_ms` may be kept: the tier's lifetime,
    /// never past the entry's freshness. `None` when it must not be kept at all.
    fn keep_until(&self, fetched_at_ms: u64) -> Option<u64> {
        let now = self.clock.now_ms();
        let fresh_until = fetched_at_ms.saturating_add(self.cfg.fresh_ttl.saturating_mul(1000));
        let until = now.saturating_add(self.cfg.memory_ttl_ms).min(fresh_until);
        (self.memory_on() && until > now).then_some(until)
    }

    fn memory_get(&self, key: &str) -> Option<(Value, u64)> {
        if !self.memory_on() {
            return None;
        }
        let now = self.clock.now_ms();
        let started = now;
        let found = memory::with(|t| t.get(key, now));
        if found.is_some() {
            self.spent(|t| &mut t.mem_ms, started);
        }
        found
    }

    /// A fresh owner listing kept in memory.
    pub(super) fn memory_listing(&self, key: &str) -> Option<Entry<Rc<OwnerListing>>> {
        match self.memory_get(key)? {
            (Value::Listing(listing), fetched_at_ms) => Some(Entry {
                fetched_at_ms,
                data: Some(listing),
            }),
            _ => None,
        }
    }

    /// A fresh repository record kept in memory.
    pub(super) fn memory_repo(&self, key: &str) -> Option<(Repo, u64)> {
        match self.memory_get(key)? {
            (Value::Repo(repo), fetched_at_ms) => Some(((*repo).clone(), fetched_at_ms)),
            _ => None,
        }
    }

    /// Keeps `value` of `bytes` on the heap, sweeping expired slots first when due.
    /// `at` is `(fetched_at, version)`: see `memory::Tier::put_version`.
    fn memory_put(&self, key: &str, value: Value, at: (u64, u64), until: u64, bytes: usize) {
        let now = self.clock.now_ms();
        memory::with(|t| {
            t.reap(now);
            t.put_version(key, value, at, until, bytes);
        });
    }

    /// Keeps a found listing.
    pub(super) fn remember_listing(
        &self,
        key: &str,
        listing: &Rc<OwnerListing>,
        fetched_at_ms: u64,
    ) {
        if let Some(until) = self.keep_until(fetched_at_ms) {
            let value = Value::Listing(Rc::clone(listing));
            let at = (fetched_at_ms, listing.version_ms(fetched_at_ms));
            self.memory_put(key, value, at, until, listing.heap_bytes());
        }
    }

    pub(super) fn remember_repo(&self, key: &str, repo: &Repo, fetched_at_ms: u64) {
        if let Some(until) = self.keep_until(fetched_at_ms) {
            let value = Value::Repo(Rc::new(repo.clone()));
            let at = (fetched_at_ms, fetched_at_ms);
            self.memory_put(key, value, at, until, repo.heap_bytes());
        }
    }

    /// An answer rendered earlier from the same entry, field set and caller scope.
    pub fn memory_rendered(&self, key: &str) -> Option<Rendered> {
        match self.memory_get(key)? {
            (Value::Rendered { body, etag, total }, fetched_at_ms) => Some(Rendered {
                body,
                etag,
                total,
                fetched_at_ms,
            }),
            _ => None,
        }
    }

    /// `at` is `(fetched_at, version)` of the entry it was rendered from.
    pub fn remember_rendered(
        &self,
        key: &str,
        (body, etag, total): (&Rc<str>, &Rc<str>, Option<u64>),
        at: (u64, u64),
    ) {
        if let Some(until) = self.keep_until(at.0) {
            let value = Value::Rendered {
                body: Rc::clone(body),
                etag: Rc::clone(etag),
                total,
            };
            let bytes = body.len() + etag.len();
            self.memory_put(key, value, at, until, bytes);
        }
    }

    /// Drops this isolate's copies of `keys` (and answers rendered from them) at once.
    pub(crate) fn forget(&self, keys: &[String]) {
        let now = self.clock.now_ms();
        memory::with(|t| t.forget(keys, now));
    }
}

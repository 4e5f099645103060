//! The in-isolate memory tier over KV: decoded entries and rendered answers, each kept for at most
//! `MEMORY_TTL_MS` and never past its entry's freshness, bounded by an LRU budget of real heap
//! bytes (values, both copies of each key, a fixed overhead per slot) and a slot count, with
//! expired slots reaped, and dropped at once by an invalidation in this isolate.
//!
//! **Invariant**: a rendered answer is keyed by its entry, its field set and the caller's scope,
//! so one caller's view is never handed to another; an entry older than an invalidation seen here
//! is never taken in again (a fetch that raced the invalidation cannot resurrect it).

use crate::model::{OwnerListing, Repo};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The byte budget of one isolate's tier (128 MB of wasm memory in all).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long an invalidation is remembered here to refuse older entries (longer than any fetch).
const TOMBSTONE_MS: u64 = 60_000;
/// What a slot costs beyond its value and its key (counted twice: the map's copy, and the
/// rendered count's or table slack): the slot itself, map buckets, `Rc` headers and allocator
/// rounding. Measured natively
/// (64-bit, so wasm32 costs less) by `tests/heap.rs`.
pub const SLOT_OVERHEAD: usize = 256;
/// Slots at most, whatever their size: many tiny answers cost map overhead too.
pub const MAX_SLOTS: usize = 16_384;
/// Answers rendered from one entry at most (field sets × scopes): 2,000 `fields=` subsets of
/// one listing must not crowd every other entry out.
pub const MAX_RENDERED_PER_ENTRY: usize = 16;
/// Invalidations remembered at most; past it nothing new is kept until they expire, since
/// forgetting one could let an older copy back in.
const MAX_TOMBSTONES: usize = 16_384;
/// Puts between two sweeps for expired slots.
const REAP_EVERY: u64 = 256;

/// What the tier holds.
#[derive(Debug, Clone)]
pub enum Value {
    Listing(Rc<OwnerListing>),
    Repo(Rc<Repo>),
    /// A view as sent: body and its `ETag`, and for a paged listing view how many records
    /// matched (its `Link` header is rebuilt from it for each caller's spelling of the owner).
    Rendered {
        body: Rc<str>,
        etag: Rc<str>,
        total: Option<u64>,
    },
}

#[derive(Debug)]
struct Slot {
    value: Value,
    /// When the entry behind it was fetched (guards against older copies after invalidation).
    fetched_at_ms: u64,
    expires_at_ms: u64,
    bytes: usize,
    tick: u64,
}

/// A bounded map with a lifetime per slot and least-recently-used eviction. Hash maps, not
/// ordered ones (`BTreeMap` costs ~19 KB of wasm): eviction scans for the oldest slot, which only
/// happens when the budget is full, and an invalidation scans once for the answers rendered from
/// the entries it names.
#[derive(Debug)]
pub struct Tier {
    slots: HashMap<String, Slot>,
    /// Answers rendered per entry key (at most `MAX_RENDERED_PER_ENTRY`).
    rendered: HashMap<String, usize>,
    tombstones: HashMap<String, u64>,
    /// Too many invalidations to remember each: nothing fetched before this is taken in.
    refuse_until_ms: u64,
    bytes: usize,
    max_bytes: usize,
    tick: u64,
    last_reap: u64,
}

impl Tier {
    pub fn new(max_bytes: usize) -> Tier {
        Tier {
            slots: HashMap::new(),
            rendered: HashMap::new(),
            tombstones: HashMap::new(),
            refuse_until_ms: 0,
            bytes: 0,
            max_bytes,
            tick: 0,
            last_reap: 0,
        }
    }

    /// What a slot of `value_bytes` under `key` costs the budget.
    pub fn cost(key: &str, value_bytes: usize) -> usize {
        value_bytes + 2 * key.len() + SLOT_OVERHEAD
    }

    /// Drops expired slots, when a sweep is due (every `REAP_EVERY` puts): slots nobody asks
    /// for again would otherwise wait for LRU eviction.
    pub fn reap(&mut self, now_ms: u64) {
        // Never more often: a sweep reads every slot.
        if self.tick.saturating_sub(self.last_reap) < REAP_EVERY {
            return;
        }
        self.last_reap = self.tick;
        let expired: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.expires_at_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
        self.tombstones
            .retain(|_, at| now_ms.saturating_sub(*at) < TOMBSTONE_MS);
    }

    /// The value under `key` while it lives, with when its entry was fetched.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<(Value, u64)> {
        let expired = self.slots.get(key)?.expires_at_ms <= now_ms;
        if expired {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let slot = self.slots.get_mut(key)?;
        slot.tick = tick;
        Some((slot.value.clone(), slot.fetched_at_ms))
    }

    /// Keeps `value` until `expires_at_ms`, unless `key`'s entry was invalidated here at or after
    /// `fetched_at_ms`. `bytes` is the value's heap size (see `cost` for the slot's); least
    /// recently used slots go first when the budget or the slot count is exceeded, and a value
    /// over the whole budget is not kept.
    pub fn put(
        &mut self,
        key: &str,
        value: Value,
        fetched_at_ms: u64,
        expires_at_ms: u64,
        bytes: usize,
    ) {
        self.put_version(
            key,
            value,
            (fetched_at_ms, fetched_at_ms),
            expires_at_ms,
            bytes,
        );
    }

    /// `put` for a copy whose content is younger than its `fetched_at` (a live listing patched
    /// at `version_ms`): invalidations are compared with `version_ms`.
    pub fn put_version(
        &mut self,
        key: &str,
        value: Value,
        (fetched_at_ms, version_ms): (u64, u64),
        expires_at_ms: u64,
        bytes: usize,
    ) {
        let bytes = Tier::cost(key, bytes);
        if bytes > self.max_bytes
            || self.invalidated_since(key, version_ms)
            || version_ms < self.refuse_until_ms
        {
            return;
        }
        // A view rendered from a kept entry lives no longer than that copy: re-rendering it on
        // a hit must not stretch what the isolate remembers past `MEMORY_TTL_MS`.
        let expires_at_ms = key
            .split_once('|')
            .and_then(|(entry, _)| self.slots.get(entry))
            .map_or(expires_at_ms, |src| expires_at_ms.min(src.expires_at_ms));
        self.remove(key);
        if let Some((entry, _)) = key.split_once('|') {
            let rendered = self.rendered.entry(entry.to_string()).or_default();
            if *rendered >= MAX_RENDERED_PER_ENTRY {
                return;
            }
            *rendered += 1;
        }
        self.tick += 1;
        self.slots.insert(
            key.to_string(),
            Slot {
                value,
                fetched_at_ms,
                expires_at_ms,
                bytes,
                tick: self.tick,
            },
        );
        self.bytes += bytes;
        while self.bytes > self.max_bytes || self.slots.len() > MAX_SLOTS {
            let oldest = self.slots.iter().min_by_key(|(_, s)| s.tick);
            let Some(oldest) = oldest.map(|(k, _)| k.clone()) else {
                break;
            };
            self.remove(&oldest);
        }
    }

    /// Drops each of `entry_keys` and every answer rendered from them, and refuses copies
    /// fetched before `now_ms` for a while. Linear in the keys (a delivery may name thousands).
    pub fn forget(&mut self, entry_keys: &[String], now_ms: u64) {
        self.tombstones
            .retain(|_, at| now_ms.saturating_sub(*at) < TOMBSTONE_MS);
        for key in entry_keys {
            if self.tombstones.len() < MAX_TOMBSTONES || self.tombstones.contains_key(key) {
                self.tombstones.insert(key.clone(), now_ms);
            } else {
                // Not remembered by name, so nothing fetched before it may be taken in.
                self.refuse_until_ms = now_ms.saturating_add(1);
            }
        }
        // One pass over the slots, however many keys: the entries and what was rendered from them.
        let mut doomed: Vec<&str> = entry_keys.iter().map(String::as_str).collect();
        doomed.sort_unstable();
        let gone: Vec<String> = self
            .slots
            .keys()
            .filter(|k| {
                doomed
                    .binary_search(&k.split('|').next().unwrap_or(k))
                    .is_ok()
            })
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn invalidated_since(&self, key: &str, fetched_at_ms: u64) -> bool {
        let entry_key = key.split('|').next().unwrap_or(key);
        self.tombstones
            .get(entry_key)
            .is_some_and(|at| *at >= fetched_at_ms)
    }

    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.slots.remove(key) {
            self.bytes -= slot.bytes;
            if let Some((entry, _)) = key.split_once('|') {
                if let Some(n) = self.rendered.get_mut(entry) {
                    *n -= 1;
                    if *n == 0 {
                        self.rendered.remove(entry);
                    }
                }
            }
        }
    }
}

/// The key of an answer rendered from `entry_key` for one field set and one caller scope.
pub fn rendered_key(entry_key: &str, fields: u32, scope: &str) -> String {
    format!("{entry_key}|{fields}|{scope}")
}

thread_local! {
    static TIER: RefCell<Tier> = RefCell::new(Tier::new(MAX_BYTES));
}

/// This isolate's tier (one per thread: an isolate runs one thread).
pub fn with<R>(f: impl FnOnce(&mut Tier) -> R) -> R {
    TIER.with(|t| f(&mut t.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(body: &str) -> Value {
        Value::Rendered {
            body: body.into(),
            etag: "\"e\"".into(),
            total: None,
        }
    }

    fn body(v: Option<(Value, u64)>) -> Option<String> {
        match v?.0 {
            Value::Rendered { body, .. } => Some(body.to_string()),
            _ => None,
        }
    }

    #[test]
    fn a_value_lives_until_it_expires_and_no_longer() {
        let mut t = Tier::new(1000);
        t.put("k", rendered("a"), 0, 2_000, 10);
        let cases = [(0, true), (1_999, true), (2_000, false), (5_000, false)];
        for (now, alive) in cases {
            assert_eq!(t.get("k", now).is_some(), alive, "at {now}");
        }
        assert_eq!(
            (t.len(), t.bytes()),
            (0, 0),
            "expired slots are dropped when seen"
        );
    }

    /// What a slot of a one-letter key and `bytes` of value costs.
    fn slot(bytes: usize) -> usize {
        Tier::cost("a", bytes)
    }

    #[test]
    fn the_least_recently_used_go_first_when_over_budget() {
        let mut t = Tier::new(slot(40) * 2 + slot(40) / 2);
        t.put("a", rendered("a"), 0, 10_000, 40);
        t.put("b", rendered("b"), 0, 10_000, 40);
        assert!(t.get("a", 1).is_some(), "a is now more recent than b");
        t.put("c", rendered("c"), 0, 10_000, 40);
        assert!(t.get("b", 2).is_none(), "b was least recently used");
        assert!(t.get("a", 2).is_some() && t.get("c", 2).is_some());
        assert_eq!(t.bytes(), slot(40) * 2);
        t.put("huge", rendered("h"), 0, 10_000, slot(40) * 3);
        assert!(t.get("huge", 3).is_none(), "larger than the whole budget");
        assert_eq!(t.bytes(), slot(40) * 2);
    }

    #[test]
    fn replacing_a_value_keeps_the_byte_count_right() {
        let mut t = Tier::new(10_000);
        t.put("a", rendered("1"), 0, 10_000, 60);
        t.put("a", rendered("2"), 0, 10_000, 30);
        assert_eq!((t.len(), t.bytes()), (1, slot(30)));
        assert_eq!(body(t.get("a", 1)), Some("2".into()));
    }

    #[test]
    fn keys_and_a_fixed_overhead_count_as_well_as_values() {
        // Both copies of the key and the overhead, even for an empty value.
        let key = "v1:repo:acme/".to_string() + &"x".repeat(100);
        assert_eq!(Tier::cost(&key, 0), 2 * key.len() + SLOT_OVERHEAD);
        let mut t = Tier::new(usize::MAX);
        for i in 0..MAX_SLOTS + 100 {
            t.put(&format!("k{i}"), rendered(""), 0, 10_000, 0);
        }
        assert_eq!(t.len(), MAX_SLOTS, "the slot count is capped");
        assert!(t.get("k0", 1).is_none() && t.get(&format!("k{}", MAX_SLOTS + 99), 1).is_some());
    }

    #[test]
    fn expired_slots_are_reaped_though_nobody_asks_again() {
        let mut t = Tier::new(usize::MAX);
        for i in 0..REAP_EVERY {
            t.put(&format!("old{i}"), rendered("x"), 0, 1_000, 10);
        }
        t.reap(500);
        assert_eq!(t.len() as u64, REAP_EVERY, "nothing expired yet");
        t.put("new", rendered("x"), 0, 10_000, 10);
        for i in 0..REAP_EVERY {
            t.put(&format!("n{i}"), rendered("x"), 0, 10_000, 10);
        }
        t.reap(2_000);
        assert_eq!(t.len() as u64, REAP_EVERY + 1, "the expired ones are gone");
    }

    #[test]
    fn one_entry_keeps_a_bounded_number_of_rendered_answers() {
        let mut t = Tier::new(usize::MAX);
        for fields in 0..2_000 {
            t.put(
                &rendered_key("v1:org:acme", fields, "anon"),
                rendered("x"),
                0,
                10_000,
                10,
            );
        }
        assert_eq!(t.len(), MAX_RENDERED_PER_ENTRY);
        t.put(
            &rendered_key("v1:org:other", 1, "anon"),
            rendered("x"),
            0,
            10_000,
            10,
        );
        assert_eq!(
            t.len(),
            MAX_RENDERED_PER_ENTRY + 1,
            "other entries are not crowded out"
        );
    }

    #[test]
    fn past_the_tombstone_cap_nothing_older_is_taken_in() {
        let mut t = Tier::new(usize::MAX);
        let keys: Vec<String> = (0..MAX_TOMBSTONES + 1)
            .map(|i| format!("v1:repo:o/r{i}"))
            .collect();
        t.forget(&keys, 1_000);
        t.put("v1:repo:o/unrelated", rendered("old"), 999, 10_000, 10);
        assert!(t.get("v1:repo:o/unrelated", 1_001).is_none());
        t.put("v1:repo:o/unrelated", rendered("new"), 1_001, 10_000, 10);
        assert!(t.get("v1:repo:o/unrelated", 1_002).is_some());
    }

    #[test]
    fn a_view_rendered_from_a_kept_entry_expires_with_it() {
        let mut t = Tier::new(10_000);
        let entry = "v1:org:acme";
        t.put(entry, rendered("entry"), 100, 2_000, 10);
        // Rendered on a hit at 1,900 with the tier's lifetime from then.
        let view = rendered_key(entry, 7, "anon");
        t.put(&view, rendered("anon"), 100, 11_900, 10);
        assert!(t.get(&view, 1_999).is_some());
        assert!(
            t.get(&view, 2_000).is_none(),
            "gone with the entry it came from"
        );
        // Once the entry is gone (a read finds it expired, then renders from KV or the object's
        // answer), a view is kept for the lifetime it is given.
        assert!(t.get(entry, 2_100).is_none());
        t.put(&view, rendered("anon"), 2_100, 12_100, 10);
        assert!(t.get(&view, 12_099).is_some());
    }

    #[test]
    fn forgetting_an_entry_drops_its_rendered_answers_and_refuses_older_copies() {
        let mut t = Tier::new(10_000);
        let entry = "v1:org:acme";
        t.put(entry, rendered("entry"), 100, 10_000, 10);
        t.put(
            &rendered_key(entry, 7, "anon"),
            rendered("anon"),
            100,
            10_000,
            10,
        );
        t.put(
            &rendered_key(entry, 7, "token"),
            rendered("token"),
            100,
            10_000,
            10,
        );
        t.put("v1:org:acme-2", rendered("other owner"), 100, 10_000, 10);
        t.put(
            &rendered_key("v1:org:acme-2", 7, "anon"),
            rendered("x"),
            100,
            10_000,
            10,
        );
        t.forget(&[entry.to_string()], 500);
        assert_eq!(t.len(), 2, "only the other owner's slots are left");
        assert!(t.get("v1:org:acme-2", 600).is_some());
        // A fetch that was sent before the invalidation cannot put its answer back.
        t.put(entry, rendered("old"), 400, 10_000, 10);
        t.put(
            &rendered_key(entry, 7, "anon"),
            rendered("old"),
            500,
            10_000,
            10,
        );
        assert!(t.get(entry, 600).is_none());
        assert!(t.get(&rendered_key(entry, 7, "anon"), 600).is_none());
        t.put(entry, rendered("new"), 501, 10_000, 10);
        assert_eq!(body(t.get(entry, 600)), Some("new".into()));
    }

    #[test]
    fn scopes_and_field_sets_never_share_an_answer() {
        let mut t = Tier::new(10_000);
        let entry = "v1:org:acme";
        t.put(
            &rendered_key(entry, 1, "anon"),
            rendered("public only"),
            0,
            10_000,
            10,
        );
        assert_eq!(
            body(t.get(&rendered_key(entry, 1, "anon"), 1)),
            Some("public only".into())
        );
        assert!(t.get(&rendered_key(entry, 1, "private"), 1).is_none());
        assert!(t.get(&rendered_key(entry, 3, "anon"), 1).is_none());
    }
}

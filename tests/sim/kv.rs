//! KV as the worker's locations see it: one central store with expiry, each location keeping
//! what it read for a while (the propagation lag), and the weather's refusals.

use super::exec::Sched;
use super::world::LOCATIONS;
use forgelens::cache::{Store, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A value and its expiry (ms), or none (deleted).
type Value = Option<(String, Option<u64>)>;

/// KV as two locations see it: one central store, and per location what it read lately. A
/// location's own writes and deletes are visible there at once; what it read is kept for up to
/// `lag_ms` (KV's edge caching: another location's write reaches it within about 60 s). Every
/// operation is a scheduling point; the weather refuses some writes and deletes (429), and with
/// `per_key` a second write of one key within a second, as KV does.
pub struct SimKv<'a> {
    sched: &'a Sched,
    /// Central: key → (value, expiry in ms).
    pub data: RefCell<HashMap<String, (String, Option<u64>)>>,
    /// Per location: key → (what was read or written there, when).
    cached: [RefCell<HashMap<String, (Value, u64)>>; LOCATIONS],
    /// When each key was last written (for the per-key write limit).
    written: RefCell<HashMap<String, u64>>,
    /// How long a location keeps what it read before it asks again.
    pub lag_ms: Cell<u64>,
    /// The chance (in 100) that a write or delete is refused.
    pub refuse_in_100: Cell<u32>,
    /// Whether a key written less than a second ago refuses another write.
    pub per_key: Cell<bool>,
    pub refused: Cell<u64>,
    /// `SIM_DEBUG_KEY` / `SIM_DEBUG_PROBE` / `SIM_DEBUG_BT`, read once.
    debug: Option<(String, String, bool)>,
}

/// A location's view of KV: what its worker's code is given as its `Store`.
pub struct SimStore<'a> {
    pub kv: &'a SimKv<'a>,
    pub loc: usize,
}

impl<'a> SimKv<'a> {
    pub fn new(sched: &'a Sched) -> SimKv<'a> {
        SimKv {
            sched,
            data: RefCell::default(),
            cached: Default::default(),
            written: RefCell::default(),
            lag_ms: Cell::new(0),
            refuse_in_100: Cell::new(0),
            per_key: Cell::new(false),
            refused: Cell::new(0),
            debug: std::env::var("SIM_DEBUG_KEY").ok().map(|k| {
                let probe = std::env::var("SIM_DEBUG_PROBE").unwrap_or_default();
                (k, probe, std::env::var("SIM_DEBUG_BT").is_ok())
            }),
        }
    }

    async fn op(&self) {
        self.sched.sleep(self.sched.below(8) as u64).await;
    }

    fn refuses(&self, key: &str) -> bool {
        let now = self.sched.now.get();
        let r = self.refuse_in_100.get() as usize;
        let too_soon = self.per_key.get()
            && self
                .written
                .borrow()
                .get(key)
                .is_some_and(|&at| now < at + 1_000);
        let no = too_soon || (r > 0 && self.sched.below(100) < r);
        if no {
            self.refused.set(self.refused.get() + 1);
        }
        no
    }

    fn read(&self, loc: usize, key: &str) -> Option<String> {
        let now = self.sched.now.get();
        let mut cached = self.cached[loc].borrow_mut();
        let kept = cached
            .get(key)
            .filter(|(_, at)| now < at + self.lag_ms.get())
            .map(|(v, _)| v.clone());
        let value = match kept {
            Some(v) => v,
            None => {
                let v = self.data.borrow().get(key).cloned();
                if self.lag_ms.get() > 0 {
                    cached.insert(key.to_string(), (v.clone(), now));
                }
                v
            }
        };
        let (value, expires) = value?;
        expires.is_none_or(|at| now < at).then_some(value)
    }

    fn write(&self, loc: usize, key: &str, value: Value) {
        let now = self.sched.now.get();
        if let Some((k, probe, bt)) = &self.debug {
            if k == key {
                let text = value.as_ref().map_or("", |v| v.0.as_str());
                let at = text.find(&format!("\"name\":\"{probe}\""));
                let vis = at
                    .and_then(|i| text[i..].split("\"visibility\":").nth(1))
                    .map(|v| &v[..9]);
                eprintln!(
                    "{:>8} loc {loc} {} {key} {probe}: {vis:?} head {}",
                    now - crate::T0,
                    if value.is_some() { "put" } else { "delete" },
                    &text[..text.len().min(120)]
                );
                if *bt {
                    eprintln!("{}", std::backtrace::Backtrace::force_capture());
                }
            }
        }
        self.written.borrow_mut().insert(key.to_string(), now);
        match &value {
            Some(v) => {
                self.data.borrow_mut().insert(key.to_string(), v.clone());
            }
            None => {
                self.data.borrow_mut().remove(key);
            }
        }
        if self.lag_ms.get() > 0 {
            self.cached[loc]
                .borrow_mut()
                .insert(key.to_string(), (value, now));
        }
    }
}

impl Store for SimStore<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.kv.op().await;
        Ok(self.kv.read(self.loc, key))
    }
    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        assert!(keys.len() <= 100, "get_bulk takes at most 100 keys");
        self.kv.op().await;
        Ok(keys
            .iter()
            .map(|k| (k.clone(), self.kv.read(self.loc, k)))
            .collect())
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.kv.op().await;
        assert!(
            ttl.is_none_or(|t| t >= 60),
            "KV refuses expirationTtl below 60"
        );
        if self.kv.refuses(key) {
            return Err(StoreError::TooManyWrites);
        }
        let expires = ttl.map(|t| self.kv.sched.now.get() + t * 1000);
        self.kv
            .write(self.loc, key, Some((value.to_string(), expires)));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.kv.op().await;
        if self.kv.refuses(key) {
            return Err(StoreError::TooManyWrites);
        }
        self.kv.write(self.loc, key, None);
        Ok(())
    }
}

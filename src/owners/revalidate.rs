//! Live listings in a directory: repository-level changes patch the complete listing it keeps
//! instead of throwing it away. Narrowing facts apply at once; every changed name is then asked
//! again, up to 100 in one aliased query, in rounds at most one a second however many deliveries
//! arrive (they coalesce), and the patched listing is written to KV once per round.

use super::directory::{changed, Checkpoints, Directory, Memory};
use super::live::{self, Change, Live, Patch, LIVE_KEY, QUEUE_KEY, SINCE_KEY};
use crate::cache::{entry, keys, Store};
use crate::error::ApiError;
use crate::forge::{Fact, BATCH_MAX};
use crate::names::RepoName;
use crate::service::directories::Told;
use crate::service::{Clock, Transport};
use std::pin::pin;

/// Rounds of one directory start at least this far apart: deliveries arriving meanwhile share
/// the next one, and the listing's KV key is written at most once a second.
pub const ROUND_EVERY_MS: u64 = 1_000;
/// How long a delivery waits for its change to be in the listing before it is answered as
/// queued (GitHub waits 10 s for the answer).
pub const CHANGE_WAIT_MS: u64 = 7_000;
/// When the alarm tries a round again after GitHub failed one.
pub const RETRY_MS: u64 = 5_000;

/// What a delivery's fact applies before GitHub is asked: only what narrows visibility.
fn narrowing(fact: Fact) -> Option<Patch> {
    match fact {
        Fact::Private => Some(Patch::Private),
        Fact::Removed => Some(Patch::Removed),
        Fact::Changed => None,
    }
}

/// Stored pages a change rewrote, each once (a handful: a `BTreeSet` costs more wasm).
#[derive(Default)]
struct Pages(Vec<u32>);

impl Extend<u32> for Pages {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, pages: I) {
        for page in pages {
            if !self.0.contains(&page) {
                self.0.push(page);
            }
        }
    }
}

/// Clears `rounds.running` and wakes the callers waiting for the round, however it ends.
struct RoundGuard<'m>(&'m std::cell::RefCell<Memory>);

impl Drop for RoundGuard<'_> {
    fn drop(&mut self) {
        let mut mem = self.0.borrow_mut();
        mem.rounds.running = false;
        mem.notify();
    }
}

/// The live listing's envelope, made once per change.
pub(super) fn live_text(mem: &mut Memory) -> String {
    if let (None, Some(l)) = (&mem.live_text, &mem.live) {
        mem.live_text = Some(entry::encode(l.started_at_ms, Some(&l.listing)));
    }
    mem.live_text.clone().unwrap_or_default()
}

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// The page keys a new build stores under: those the live listing does not use.
    pub(super) fn free_slot(&self) -> u8 {
        self.mem
            .borrow()
            .live
            .as_ref()
            .map_or(0, |l| 1 - l.slot.min(1))
    }

    /// The live listing an earlier life of the object stored (`None`: none, or a page is lost).
    pub(super) async fn load_live(&self, meta: &str) -> Option<Live> {
        let (slot, count) = live::meta_pages(meta)?;
        let keys: Vec<String> = (0..count).map(|i| live::page_key(slot, i)).collect();
        Live::load(meta, &self.storage.get_many(&keys).await)
    }

    /// `change`, and with no listing to patch, the owner's KV listing dropped (marked, so a
    /// build begun before cannot write an older answer back).
    ///
    /// # Errors
    /// `StoreUnavailable` when KV refuses the delete (the delivery fails and is redelivered).
    pub async fn hear(&self, changes: &[Change], wait_ms: u64) -> Result<Told, ApiError> {
        let told = self.change(changes, wait_ms).await;
        if told == Told::NoListing {
            self.svc.drop_keys(&[keys::org(self.owner)], &[]).await?;
        }
        Ok(told)
    }

    /// Hears `changes` (heard at their `at_ms`) and waits up to `wait_ms` until they are in the
    /// listing. Narrowing facts are in it before anything is awaited.
    pub async fn change(&self, changes: &[Change], wait_ms: u64) -> Told {
        let building = self.in_progress().await;
        // Heard now, by this directory's clock: what it asks GitHub after this moment reflects
        // the change, whatever the clock of the worker that received the delivery said.
        let now = self.now();
        let changes: Vec<Change> = changes
            .iter()
            .map(|c| Change {
                at_ms: now,
                ..c.clone()
            })
            .collect();
        let changes = changes.as_slice();
        let deadline = now.saturating_add(wait_ms);
        let (seq, touched) = {
            let mut mem = self.mem.borrow_mut();
            let mem = &mut *mem;
            if mem.live.is_none() && !building {
                return Told::NoListing;
            }
            let mut touched = Pages::default();
            for c in changes {
                if building {
                    live::enqueue(&mut mem.since, c);
                }
                let Some(l) = mem.live.as_mut() else { continue };
                live::enqueue(&mut mem.queue, c);
                if let Some(patch) = narrowing(c.fact) {
                    touched.extend(l.apply(c.name.as_str(), patch, c.at_ms));
                }
            }
            if !touched.0.is_empty() {
                mem.recent = None;
                mem.live_text = None;
                if let Some(l) = mem.live.as_mut() {
                    l.touch(changes.iter().map(|c| c.at_ms).max().unwrap_or(0));
                }
            }
            mem.rounds.heard += 1;
            (mem.rounds.heard, touched)
        };
        self.store_pages(&touched).await;
        if building {
            let since = live::encode_changes(&self.mem.borrow().since);
            let _ = self.storage.put(SINCE_KEY, &since).await;
        }
        if self.mem.borrow().live.is_none() {
            // The build revalidates them before its listing is answered.
            return Told::Queued;
        }
        loop {
            {
                let mem = self.mem.borrow();
                if mem.rounds.applied >= seq {
                    return Told::Applied;
                }
                if mem.live.is_none() {
                    // An owner-level invalidation threw the listing away: the rebuild after it
                    // asks GitHub afresh.
                    return Told::Queued;
                }
                if mem.rounds.parked >= seq {
                    return Told::Queued;
                }
            }
            let now = self.now();
            if now >= deadline {
                self.store_queue().await;
                return Told::Queued;
            }
            if !self.mem.borrow().rounds.running {
                self.round().await;
                continue;
            }
            let events = self.mem.borrow().events();
            let woken = pin!(changed(self.mem, events));
            let timer = pin!(self.svc.clock.sleep(deadline - now));
            futures::future::select(woken, timer).await;
        }
    }

    /// Whether changes wait for GitHub (the alarm retries them).
    pub fn queued(&self) -> bool {
        let mem = self.mem.borrow();
        mem.live.is_some() && !mem.queue.is_empty()
    }

    /// One round: everything queued, asked again (100 names per query), patched into the
    /// listing, its pages stored and the listing written to KV. Returns whether GitHub answered.
    pub async fn round(&self) -> bool {
        {
            let mut mem = self.mem.borrow_mut();
            if mem.rounds.running {
                return false;
            }
            mem.rounds.running = true;
        }
        // However the round ends, its future dropped included, the next one may start.
        let _round = RoundGuard(self.mem);
        let due = self.mem.borrow().rounds.last_at_ms + ROUND_EVERY_MS;
        let now = self.now();
        if now < due {
            // Deliveries arriving meanwhile join this round.
            self.svc.clock.sleep(due - now).await;
        }
        // Rounds start a second apart (not a second after the last one ended), so a steady
        // stream of deliveries waits half a second for its round on average.
        self.mem.borrow_mut().rounds.last_at_ms = self.now();
        self.round_now().await
    }

    async fn round_now(&self) -> bool {
        let (generation, top) = {
            let mem = self.mem.borrow();
            (mem.generation, mem.rounds.heard)
        };
        let mut touched = Pages::default();
        let mut ok = true;
        // What is queued now, 100 names a query; what arrives meanwhile waits for the next round
        // (a steady stream must not keep one round, and its write, from ever ending).
        let pending: Vec<_> = {
            let mem = self.mem.borrow();
            mem.queue.iter().map(|c| c.name.clone()).collect()
        };
        for names in pending.chunks(BATCH_MAX) {
            if self.mem.borrow().live.is_none() || self.mem.borrow().generation != generation {
                return true;
            }
            let Some((asked_ms, patches)) = self.ask(names).await else {
                // Parked: stored below, retried by the alarm.
                ok = false;
                break;
            };
            let mut mem = self.mem.borrow_mut();
            let mem = &mut *mem;
            if mem.generation != generation {
                return true;
            }
            let Some(l) = mem.live.as_mut() else {
                return true;
            };
            for (name, patch) in names.iter().zip(patches) {
                touched.extend(l.apply(name.as_str(), patch, asked_ms));
            }
            l.touch(self.now());
            mem.queue
                .retain(|c| c.at_ms > asked_ms || !names.contains(&c.name));
            mem.recent = None;
            mem.live_text = None;
        }
        self.store_pages(&touched).await;
        self.store_queue().await;
        if !touched.0.is_empty() || ok {
            self.publish().await;
        }
        let mut mem = self.mem.borrow_mut();
        if ok {
            mem.rounds.applied = mem.rounds.applied.max(top);
        } else {
            mem.rounds.parked = mem.rounds.parked.max(top);
        }
        ok
    }

    /// GitHub's current records of `names` (at most `BATCH_MAX`) as patches, with when it was
    /// asked; `None` when it failed. A repository found under another owner (transferred:
    /// GitHub follows the old name) is not this owner's.
    async fn ask(&self, names: &[RepoName]) -> Option<(u64, Vec<Patch>)> {
        let asked_ms = self.now();
        let records = self.svc.owner_records(self.owner, names).await.ok()?;
        let owner = self.owner.as_str();
        let patches = records
            .into_iter()
            .map(|record| match record {
                Some(r) if r.owner().eq_ignore_ascii_case(owner) => Patch::Record(r),
                _ => Patch::Removed,
            })
            .collect();
        Some((asked_ms, patches))
    }

    /// Writes the patched listing to KV, at most once a second (KV's limit per key).
    async fn publish(&self) {
        let wait = self.mem.borrow().rounds.published_at_ms + ROUND_EVERY_MS;
        let now = self.now();
        if now < wait {
            self.svc.clock.sleep(wait - now).await;
        }
        let (text, started, generation) = {
            let mut mem = self.mem.borrow_mut();
            let Some(started) = mem.live.as_ref().map(|l| l.started_at_ms) else {
                return;
            };
            mem.rounds.published_at_ms = self.now();
            (live_text(&mut mem), started, mem.generation)
        };
        let cfg = self.svc.cfg;
        let ttl = (!cfg.is_pinned(self.owner)).then_some(cfg.stale_ttl);
        let key = keys::org(self.owner);
        let superseded = self
            .svc
            .store_fetched(vec![(key.clone(), text, ttl)], started)
            .await
            > 0;
        // An owner-level invalidation heard meanwhile deleted the key just before this write
        // may have landed: take it back (see `write_back`).
        if !superseded && self.mem.borrow().generation != generation {
            let _ = self.svc.store.delete(&key).await;
        }
        if superseded && self.mem.borrow().generation == generation {
            self.abandon_live().await;
        }
    }

    /// The build's listing, before it is answered: what the deliveries heard while it ran say
    /// is applied (narrowing facts by the merge rule, then every such name asked again). When
    /// GitHub fails, the names wait in the queue and the alarm retries them.
    pub(super) async fn catch_up(&self, done: &mut Live) {
        let since = std::mem::take(&mut self.mem.borrow_mut().since);
        if since.is_empty() {
            return;
        }
        for c in &since {
            if let Some(patch) = narrowing(c.fact) {
                done.apply(c.name.as_str(), patch, c.at_ms);
            }
        }
        let mut failed = Vec::new();
        for chunk in since.chunks(BATCH_MAX) {
            let names: Vec<_> = chunk.iter().map(|c| c.name.clone()).collect();
            match self.ask(&names).await {
                Some((asked_ms, patches)) => {
                    for (name, patch) in names.iter().zip(patches) {
                        done.apply(name.as_str(), patch, asked_ms);
                    }
                    done.touch(self.now());
                }
                None => failed.extend_from_slice(chunk),
            }
        }
        let mut mem = self.mem.borrow_mut();
        for c in &failed {
            live::enqueue(&mut mem.queue, c);
        }
    }

    /// The pages `touched` of the live listing, and its meta line, as they stand.
    async fn store_pages(&self, touched: &Pages) {
        if touched.0.is_empty() {
            return;
        }
        let writes: Vec<(String, String)> = {
            let mem = self.mem.borrow();
            let Some(l) = mem.live.as_ref() else { return };
            let mut writes: Vec<_> = touched
                .0
                .iter()
                .map(|&i| (live::page_key(l.slot, i), l.encode_page(i)))
                .collect();
            writes.push((LIVE_KEY.to_string(), l.meta()));
            writes
        };
        for (key, text) in writes {
            let _ = self.storage.put(&key, &text).await;
        }
    }

    /// The queue as it stands, stored (or dropped when empty) so a later life retries it.
    async fn store_queue(&self) {
        let text = live::encode_changes(&self.mem.borrow().queue);
        if text.is_empty() {
            self.storage.delete_many(&[QUEUE_KEY.to_string()]).await;
        } else {
            let _ = self.storage.put(QUEUE_KEY, &text).await;
        }
    }
}

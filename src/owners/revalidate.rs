//! Live listings in a directory: repository-level changes patch the complete listing it keeps
//! instead of throwing it away. Narrowing facts apply at once; every changed name is then asked
//! again, up to 100 in one aliased query, in rounds at most one a second however many deliveries
//! arrive (they coalesce), and the patched listing is written to KV once per round.

use super::directory::{changed, Checkpoints, Directory, Memory};
use super::live::{
    self, Applied, Change, Live, Patch, Turn, FACTS_KEY, FACT_HOLDS_MS, LIVE_KEY, QUEUE_KEY,
    SINCE_KEY,
};
use crate::cache::{keys, Store};
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
/// Queries a build's catch-up makes (a second apart) before what is still unasked waits in the
/// queue: a steady stream of deliveries must not keep a build from ever completing.
pub const CATCH_UP_QUERIES: usize = 5;

/// What a delivery's fact applies before GitHub is asked: only what narrows visibility.
pub(super) fn narrowing(fact: Fact) -> Option<Patch> {
    match fact {
        Fact::Private => Some(Patch::Private),
        Fact::Removed => Some(Patch::Removed),
        Fact::Changed => None,
    }
}

/// Stored pages a change rewrote, each once (a handful: a `BTreeSet` costs more wasm), the
/// scopes whose view it changed, and the records it turned (what subscribers are told).
#[derive(Default)]
pub(super) struct Pages(
    pub(super) Vec<u32>,
    pub(super) [bool; 3],
    pub(super) Vec<Turn>,
);

impl Pages {
    pub(super) fn page(&mut self, page: u32) {
        if !self.0.contains(&page) {
            self.0.push(page);
        }
    }

    /// The pages of `other` too.
    pub(super) fn merge(&mut self, other: &Pages) {
        for &page in &other.0 {
            self.page(page);
        }
    }

    pub(super) fn add(&mut self, applied: Applied) {
        if let Some(page) = applied.page {
            self.page(page);
        }
        for (seen, hit) in self.1.iter_mut().zip(applied.reach) {
            *seen |= hit;
        }
        self.2.extend(applied.turn);
    }
}

/// GitHub's answers for `names` (asked at `asked_ms`) applied to `l` by the merge rule at `now`:
/// the pages and scopes they changed, and the names whose answer is held back (asked again then).
pub(super) fn apply_answers(
    l: &mut Live,
    names: &[RepoName],
    patches: Vec<Patch>,
    asked_ms: u64,
    now: u64,
) -> (Pages, Vec<(RepoName, u64)>) {
    let mut touched = Pages::default();
    let mut held = Vec::new();
    for (name, patch) in names.iter().zip(patches) {
        let applied = l.apply(name.as_str(), patch, asked_ms);
        if let Some(until) = applied.held_until {
            held.push((name.clone(), until));
        }
        touched.add(applied);
    }
    l.touch(now);
    l.mark(touched.1, now);
    (touched, held)
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
        // Loads what an earlier life stored (its facts among it) before they are stored again.
        self.in_progress().await;
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
        let narrowed = changes.iter().any(|c| narrowing(c.fact).is_some());
        {
            let mut mem = self.mem.borrow_mut();
            // Remembered listing or not: a build that starts within moments may read pages
            // GitHub answers from before the change (see `catch_up`). A fact goes once no page
            // of the build under way can have been asked within its hold, not 5 s after it was
            // heard: the build's catch-up applies it to pages it read long before it ends.
            let horizon = mem
                .checkpoint
                .as_ref()
                .map_or(now, |cp| cp.started_at_ms.min(now));
            mem.facts
                .retain(|f| f.at_ms.saturating_add(FACT_HOLDS_MS) > horizon);
            mem.facts.extend(
                changes
                    .iter()
                    .filter(|c| narrowing(c.fact).is_some())
                    .cloned(),
            );
        }
        if narrowed {
            // Stored before the delivery is answered: an object evicted after it and woken by a
            // build within GitHub's lag still holds that build's pages to them.
            self.store_facts().await;
        }
        let building = self.in_progress().await;
        let (seq, touched) = {
            let mut mem = self.mem.borrow_mut();
            let mem = &mut *mem;
            if mem.live.is_none() && !building {
                // The worker drops the owner's KV listing; nothing answered from before the
                // change may outlive it here either.
                mem.recent = None;
                return Told::NoListing;
            }
            mem.rounds.heard += 1;
            let seq = mem.rounds.heard;
            let mut touched = Pages::default();
            for c in changes {
                if building {
                    mem.since.push(c, seq);
                    mem.heard_in_build
                        .insert(c.name.as_str().to_ascii_lowercase());
                }
                let Some(l) = mem.live.as_mut() else { continue };
                mem.queue.push(c, seq);
                if let Some(patch) = narrowing(c.fact) {
                    touched.add(l.apply(c.name.as_str(), patch, c.at_ms));
                }
            }
            if !touched.0.is_empty() {
                mem.recent = None;
                mem.live_text = None;
                if let Some(l) = mem.live.as_mut() {
                    l.touch(now);
                    l.mark(touched.1, now);
                }
            }
            (seq, touched)
        };
        // Subscribers it hides a record from hear of it before the delivery is answered.
        self.announce(&touched.2).await;
        self.store_pages(&touched).await;
        if building {
            let since = live::encode_changes(&self.mem.borrow().since.changes());
            let _ = self.put(SINCE_KEY, &since).await;
        }
        if self.mem.borrow().live.is_none() {
            // The build revalidates them before its listing is answered.
            return Told::Queued;
        }
        loop {
            {
                let mem = self.mem.borrow();
                if mem.live.is_none() {
                    // An owner-level invalidation threw the listing away: the rebuild after it
                    // asks GitHub afresh. No write with the change landed (a round finding no
                    // listing counts its changes answered): the worker drops its copy again.
                    return Told::Queued;
                }
                if mem.rounds.applied >= seq {
                    // Applied once in a KV write that landed; a refused one is retried by the
                    // alarm, and the worker drops the older copy meanwhile.
                    return if mem.rounds.unpublished {
                        Told::Queued
                    } else {
                        Told::Applied
                    };
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

    /// Whether changes wait for GitHub, or the listing for its KV write (the alarm retries them).
    pub fn queued(&self) -> bool {
        let mem = self.mem.borrow();
        mem.live.is_some() && (!mem.queue.is_empty() || mem.rounds.unpublished)
    }

    /// Whether the listing's last KV write was refused.
    pub fn unpublished(&self) -> bool {
        let mem = self.mem.borrow();
        mem.live.is_some() && mem.rounds.unpublished
    }

    /// When the next round may start: a second after the last one began, and not before a
    /// queued name falls due (`None`: nothing is queued).
    pub fn next_round_at(&self) -> Option<u64> {
        let mem = self.mem.borrow();
        let due = mem.queue.next_due_ms()?;
        Some(due.max(mem.rounds.last_at_ms + ROUND_EVERY_MS))
    }

    /// One round: up to 100 queued names asked again in one query, patched into the listing,
    /// its pages stored and the listing written to KV. Returns whether GitHub answered.
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
        loop {
            let now = self.now();
            let due = self
                .next_round_at()
                .unwrap_or(self.mem.borrow().rounds.last_at_ms + ROUND_EVERY_MS);
            if now >= due {
                break;
            }
            // Deliveries arriving meanwhile join this round. A build's catch-up query may go out
            // meanwhile (it is a round too): the due time is looked at again on waking.
            self.svc.clock.sleep(due - now).await;
        }
        // Rounds start a second apart (not a second after the last one ended), so a steady
        // stream of deliveries waits half a second for its round on average.
        self.mem.borrow_mut().rounds.last_at_ms = self.now();
        self.round_now().await
    }

    async fn round_now(&self) -> bool {
        let now = self.now();
        // What is due now, at most 100 names; the rest waits for the next round, a second later
        // (a backlog drains at one request per second, and a steady stream of deliveries does
        // not keep one round, and its write, from ever ending).
        let (generation, top, names) = {
            let mem = self.mem.borrow();
            (
                mem.generation,
                mem.rounds.heard,
                mem.queue.due(now, BATCH_MAX),
            )
        };
        if names.is_empty() || self.mem.borrow().live.is_none() {
            self.answered_up_to();
            return true;
        }
        let Some((asked_ms, patches)) = self.ask(&names).await else {
            // Stored, and retried by the alarm; the deliveries waiting are answered queued.
            self.store_queue().await;
            let mut mem = self.mem.borrow_mut();
            mem.rounds.parked = mem.rounds.parked.max(top);
            mem.rounds.failed += 1;
            return false;
        };
        self.mem.borrow_mut().rounds.failed = 0;
        let touched = {
            let mut mem = self.mem.borrow_mut();
            let mem = &mut *mem;
            if mem.generation != generation {
                return true;
            }
            let Some(l) = mem.live.as_mut() else {
                return true;
            };
            let (touched, held) = apply_answers(l, &names, patches, asked_ms, self.now());
            mem.queue.answered(&names, top, &held);
            mem.recent = None;
            mem.live_text = None;
            touched
        };
        self.announce(&touched.2).await;
        self.store_pages(&touched).await;
        self.store_queue().await;
        self.publish().await;
        self.answered_up_to();
        true
    }

    /// Deliveries up to the oldest change still queued are answered (`Rounds::applied`).
    fn answered_up_to(&self) {
        let mut mem = self.mem.borrow_mut();
        let upto = mem
            .queue
            .oldest_seq()
            .map_or(mem.rounds.heard, |s| s.saturating_sub(1));
        mem.rounds.applied = mem.rounds.applied.max(upto);
    }

    /// GitHub's current records of `names` (at most `BATCH_MAX`) as patches, with when it was
    /// asked; `None` when it failed. A repository found under another owner (transferred:
    /// GitHub follows the old name) is not this owner's.
    pub(super) async fn ask(&self, names: &[RepoName]) -> Option<(u64, Vec<Patch>)> {
        let asked_ms = self.now();
        let records = self.svc.owner_records(self.owner, names).await.ok()?;
        let owner = self.owner.as_str();
        let patches = records
            .into_iter()
            .map(|record| match record {
                Some(r) if r.owner().eq_ignore_ascii_case(owner) => Patch::Record(r),
                _ => Patch::Missing,
            })
            .collect();
        Some((asked_ms, patches))
    }

    /// Writes the patched listing to KV, at most once a second (KV's limit per key); a write KV
    /// refused is left `unpublished` for the alarm to make again.
    pub(super) async fn publish(&self) {
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
            (mem.live_envelope(), started, mem.generation)
        };
        let cfg = self.svc.cfg;
        let ttl = (!cfg.is_pinned(self.owner)).then_some(cfg.stale_ttl);
        let key = keys::org(self.owner);
        let stored = self
            .svc
            .store_fetched_counted(vec![(key.clone(), text, ttl)], started)
            .await;
        self.note_published(stored.refused > 0).await;
        let superseded = stored.superseded > 0;
        // An owner-level invalidation heard meanwhile deleted the key just before this write
        // may have landed: take it back (see `write_back`).
        if !superseded && self.mem.borrow().generation != generation {
            self.take_back(&key).await;
        }
        if superseded && self.mem.borrow().generation == generation {
            self.abandon_live().await;
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
            let _ = self.put(&key, &text).await;
        }
    }

    /// The narrowing facts still holding, stored (or dropped when none is) for a later life.
    pub(super) async fn store_facts(&self) {
        let now = self.now();
        let text = {
            let mem = self.mem.borrow();
            let holding: Vec<Change> = mem
                .facts
                .iter()
                .filter(|f| f.at_ms.saturating_add(FACT_HOLDS_MS) > now)
                .cloned()
                .collect();
            live::encode_changes(&holding)
        };
        if text.is_empty() {
            self.storage.delete_many(&[FACTS_KEY.to_string()]).await;
        } else {
            let _ = self.put(FACTS_KEY, &text).await;
        }
    }

    /// The queue as it stands, stored (or dropped when empty) so a later life retries it.
    pub(super) async fn store_queue(&self) {
        let text = live::encode_changes(&self.mem.borrow().queue.changes());
        if text.is_empty() {
            self.storage.delete_many(&[QUEUE_KEY.to_string()]).await;
        } else {
            let _ = self.put(QUEUE_KEY, &text).await;
        }
    }
}

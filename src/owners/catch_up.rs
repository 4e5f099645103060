//! A build's catch-up: before its listing is answered, the changes heard while it paged are
//! applied to it (narrowing facts by the merge rule, then each name asked again), so no
//! delivery answered during a build is lost to the build's older pages.

use super::directory::{Checkpoints, Directory};
use super::live::{Live, FACT_HOLDS_MS};
use super::revalidate::{apply_answers, narrowing, Pages, CATCH_UP_QUERIES, ROUND_EVERY_MS};
use crate::cache::Store;
use crate::forge::BATCH_MAX;
use crate::service::{Clock, Transport};

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// The build's listing, before it is answered: what the deliveries heard while it ran say
    /// is applied — their narrowing facts by the merge rule, then every such name asked again,
    /// and again for what was heard while that query was out, until nothing heard since the
    /// build began is left unasked. A name leaves the set only once GitHub answered it; when
    /// GitHub fails (or after `CATCH_UP_QUERIES`), what is left waits in the queue, its narrowing
    /// facts applied, and the alarm asks it. Nothing is awaited between the last look at the set
    /// and the return, so the listing answered holds every narrowing fact heard before it.
    /// Returns the pages it rewrote: they were stored as the build read them, and are stored
    /// again as patched once the listing is kept (`write_back`).
    pub(super) async fn catch_up(&self, done: &mut Live) -> Vec<u32> {
        let mut queries = 0;
        let mut rewritten = Pages::default();
        loop {
            let now = self.now();
            rewritten.merge(&self.apply_heard(done, now));
            let (names, top) = {
                let mem = self.mem.borrow();
                (mem.since.due(now, BATCH_MAX), mem.rounds.heard)
            };
            if names.is_empty() || queries >= CATCH_UP_QUERIES {
                break;
            }
            // Its queries are rounds too: at most one a second for the owner.
            let due = self.mem.borrow().rounds.last_at_ms + ROUND_EVERY_MS;
            if now < due {
                self.svc.clock.sleep(due - now).await;
                continue;
            }
            queries += 1;
            self.mem.borrow_mut().rounds.last_at_ms = now;
            let Some((asked_ms, patches)) = self.ask(&names).await else {
                break;
            };
            let (reach, held) = apply_answers(done, &names, patches, asked_ms, self.now());
            rewritten.merge(&reach);
            // Held answers stay (due later) and move to the queue below with the rest.
            self.mem.borrow_mut().since.answered(&names, top, &held);
        }
        // What was heard while the last query was out (it may have failed): its narrowing facts
        // too, with nothing awaited before the listing is answered.
        rewritten.merge(&self.apply_heard(done, self.now()));
        let mut mem = self.mem.borrow_mut();
        for e in mem.since.take() {
            mem.queue.restore(e);
        }
        rewritten.0
    }

    /// The narrowing facts heard since the build began, and those heard just before it (its
    /// pages may predate them: one that changed a record is asked again once an answer can
    /// confirm it), applied to the build's records by the merge rule.
    fn apply_heard(&self, done: &mut Live, now: u64) -> Pages {
        let mut mem = self.mem.borrow_mut();
        let mem = &mut *mem;
        let mut reach = Pages::default();
        for e in mem.since.entries() {
            if let Some(patch) = narrowing(e.change.fact) {
                reach.add(done.apply(e.change.name.as_str(), patch, e.change.at_ms));
            }
        }
        for f in &mem.facts {
            let Some(patch) = narrowing(f.fact) else {
                continue;
            };
            let applied = done.apply(f.name.as_str(), patch, f.at_ms);
            if applied.page.is_some() {
                let until = f.at_ms.saturating_add(FACT_HOLDS_MS);
                mem.queue.push_due(f, mem.rounds.heard, until);
            }
            reach.add(applied);
        }
        done.mark(reach.1, now);
        reach
    }
}

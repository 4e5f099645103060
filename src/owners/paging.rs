//! A build's paging: rounds of up to `BUILD_CONCURRENCY` pages asked side by side, one per
//! stream (`partition`), their answers stored and the checkpoint advanced once per round, until
//! every stream has read its end of its part; then the listing is assembled, parts whose counts
//! disagree are read again, and the catch-up runs before anyone is answered.

use super::build::{self, AfterFailure, Checkpoint};
use super::directory::{Checkpoints, Directory, Drive, Running};
use super::live;
use super::partition::{self, End, Stream, FULL_PAGE};
use crate::cache::Store;
use crate::error::ApiError;
use crate::forge::{OwnerPage, PageAsk, UpstreamFailure};
use crate::model::{Part, Repo};
use crate::service::{join_all, Clock, Transport};

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// Pages until the build completes, fails, `max_pages` requests were made, or `stop_at_ms`
    /// passed (checked between rounds). Only one drive pages at a time. Each round asks up to
    /// `BUILD_CONCURRENCY` streams' next pages side by side (`partition::next`) and takes their
    /// answers in order: pages stored, streams advanced, the checkpoint saved once.
    pub async fn drive(&self, max_pages: u32, stop_at_ms: u64) -> Drive {
        {
            let mut mem = self.mem.borrow_mut();
            if mem.running {
                return Drive::Idle;
            }
            mem.running = true;
        }
        let _running = Running(self.mem);
        let mut requests = 0;
        loop {
            let Some(mut cp) = self.checkpoint().await else {
                return Drive::Idle;
            };
            if requests >= max_pages || (requests > 0 && self.now() >= stop_at_ms) {
                return Drive::More;
            }
            let budget = max_pages - requests;
            // One `save` and one `fail` for every way a round ends: each is a future of its own
            // in the wasm wherever it is awaited.
            match self.page_round(&mut cp, budget, &mut requests).await {
                Err(err) => return self.fail(&cp, err).await,
                Ok(Step::Next) => {}
                Ok(Step::Save(exit)) => {
                    self.save(&cp).await;
                    if let Some(drive) = exit {
                        return drive;
                    }
                }
                Ok(Step::Exit(drive)) => return drive,
            }
        }
    }

    /// One round: up to `budget` streams' pages asked side by side, taken into `cp`, stored; and
    /// when every stream is done, the listing assembled, checked part by part, caught up and
    /// answered.
    ///
    /// # Errors
    /// Why the build fails for now (`fail` keeps `cp` for a later resume).
    async fn page_round(
        &self,
        cp: &mut Checkpoint,
        budget: u32,
        requests: &mut u32,
    ) -> Result<Step, ApiError> {
        if cp.pages >= build::MAX_PAGES {
            return Err(ApiError::Upstream("too many pages".into()));
        }
        let concurrency = self.svc.cfg.build_concurrency;
        let generation = self.mem.borrow().generation;
        if !cp.planned && cp.streams.iter().all(|s| s.tries == 0) {
            // The answer will be as old as its first request.
            cp.started_at_ms = cp.started_at_ms.max(self.now());
        }
        let picks = partition::next(&cp.streams, concurrency.min(budget));
        *requests += picks.len() as u32;
        let asked_ms = self.now();
        // The first request asks every part's count beside the first page (not at 1).
        let counts = !cp.planned && concurrency > 1;
        let asks: Vec<PageAsk<'_>> = picks
            .iter()
            .filter_map(|&i| cp.streams.get(i))
            .map(|s| PageAsk {
                cursor: s.cursor.as_deref(),
                size: s.page_size,
                part: s.part,
                back: s.end == End::Back,
                counts,
            })
            .collect();
        let outcomes = join_all(asks.iter().map(|ask| self.svc.owner_page(self.owner, ask))).await;
        drop(asks);
        if self.mem.borrow().generation != generation {
            return Ok(Step::Next); // invalidated meanwhile: these pages belong to a discarded build
        }
        // A page storage refuses is asked again: the round is undone, not half kept.
        let before = cp.clone();
        let Round {
            mut read,
            paused,
            failed,
            not_found,
        } = take(cp, &picks, outcomes, asked_ms, concurrency);
        if not_found {
            return Ok(Step::Exit(self.finish_not_found(cp)));
        }
        // The last page is stored after the answer: the listing is assembled with it in hand.
        let last = (failed.is_none() && paused.is_none() && cp.read()).then(|| {
            read.pop()
                .unwrap_or_else(|| (live::encode_build_page(asked_ms, &[]), Vec::new()))
        });
        match self.store_build_pages(cp, &read, generation).await {
            Ok(true) => {}
            Ok(false) => return Ok(Step::Next),
            Err(err) => {
                *cp = before;
                return Err(err);
            }
        }
        if let Some(failure) = failed {
            return Err(self.svc.failure_to_error(failure));
        }
        if let Some(at_ms) = paused.filter(|&at| at > self.now()) {
            // Every stream waits for the reset; the alarm resumes them, perhaps in a later life
            // of the object.
            let retry_after = at_ms.saturating_sub(self.now()).div_ceil(1000).max(1);
            let mut mem = self.mem.borrow_mut();
            mem.failed = Some((ApiError::RateLimited { retry_after }, at_ms));
            mem.notify();
            return Ok(Step::Save(Some(Drive::Paused { until_ms: at_ms })));
        }
        let Some((text, repos)) = last else {
            // Not before a record was kept (the plan's own page is not): a subscriber's first
            // progress says how far the build got, and the next may come a second later.
            if cp.fetched > 0 {
                self.announce_progress(cp.fetched, cp.total);
            }
            return Ok(Step::Save(None));
        };
        let (mut done, seen) = self.assemble(cp, asked_ms, repos).await?;
        if self.read_again(cp, &seen.parts) {
            // The last page joins the others; the parts whose counts disagree page again.
            return match self
                .store_build_pages(cp, &[(text, Vec::new())], generation)
                .await
            {
                Ok(true) => Ok(Step::Save(None)),
                Ok(false) => Ok(Step::Next),
                Err(err) => {
                    *cp = before;
                    Err(err)
                }
            };
        }
        // What changed while it was built is asked again before anyone is answered.
        let mut rewritten = self.catch_up(&mut done).await;
        if self.mem.borrow().generation != generation {
            return Ok(Step::Next); // invalidated while the stored pages were read
        }
        for page in seen.stale {
            if !rewritten.contains(&page) {
                rewritten.push(page);
            }
        }
        Ok(Step::Exit(self.finish(cp, done, text, rewritten)))
    }

    /// Stores a round's pages after the build's others: `Ok(false)` when an invalidation
    /// restarted the build meanwhile (its checkpoint is not to be overwritten).
    ///
    /// # Errors
    /// Storage refused a page (the caller undoes the round).
    async fn store_build_pages(
        &self,
        cp: &mut Checkpoint,
        read: &[(String, Vec<Repo>)],
        generation: u64,
    ) -> Result<bool, ApiError> {
        for (text, _) in read {
            let key = build::page_key(cp.slot, cp.pages);
            self.put(&key, text).await.map_err(ApiError::Upstream)?;
            if self.mem.borrow().generation != generation {
                return Ok(false);
            }
            cp.pages += 1;
        }
        Ok(true)
    }

    /// Whether a part must be read again before the listing is written: its streams read a
    /// number of distinct names (`counted`, per part) that differs from its count by more than
    /// the changes heard during the build. Such a part's streams become one, from the front,
    /// that is never checked again.
    fn read_again(&self, cp: &mut Checkpoint, counted: &[u64; 12]) -> bool {
        let heard = self.mem.borrow().heard_in_build.len() as u64;
        let parts = Part::all();
        let mut again = false;
        for (p, part) in parts.iter().enumerate() {
            let Some(s) = cp.streams.iter().find(|s| s.part == Some(*part)) else {
                continue;
            };
            let read = counted.get(p).copied().unwrap_or(0);
            if s.again || !partition::recount(s.count, read, heard) {
                continue;
            }
            let count = s.count;
            cp.streams.retain(|s| s.part != Some(*part));
            cp.streams.push(Stream {
                again: true,
                ..Stream::new(Some(*part), End::Front, count)
            });
            again = true;
        }
        again
    }
}

/// How a round ended.
enum Step {
    /// Go on with the checkpoint as it is in memory (or as an invalidation left it).
    Next,
    /// Save the checkpoint, then go on, or end the drive so.
    Save(Option<Drive>),
    /// The drive ends so.
    Exit(Drive),
}

/// What a round's answers did, beyond the checkpoint they advanced.
struct Round {
    /// The pages read, as stored and as records, in the order asked.
    read: Vec<(String, Vec<Repo>)>,
    /// A spent rate limit: every stream waits until then (not at all when the reset has passed
    /// by the time the round ends: the stream that met it is asked again).
    paused: Option<u64>,
    /// Why the build fails for now (the first such answer).
    failed: Option<UpstreamFailure>,
    /// The owner does not exist (the first page said).
    not_found: bool,
}

/// Takes a round's answers (`outcomes`, one per stream in `picks`, asked at `asked_ms`) into the
/// checkpoint: each stream advanced, or its page shrunk after a failure; the first page plans
/// the parts. A spent limit is judged against the time its page was asked, not the round's end:
/// a reset after the ask is GitHub's (a round's slowest page may outlive it), one before it is
/// taken for unknown. Plain (not generic over the seams): one copy in the wasm.
fn take(
    cp: &mut Checkpoint,
    picks: &[usize],
    outcomes: Vec<Result<OwnerPage, UpstreamFailure>>,
    asked_ms: u64,
    concurrency: u32,
) -> Round {
    let mut round = Round {
        read: Vec::new(),
        paused: None,
        failed: None,
        not_found: false,
    };
    for (&i, outcome) in picks.iter().zip(outcomes) {
        let page = match outcome {
            Ok(page) => page,
            Err(UpstreamFailure::NotFound) if !cp.planned => {
                round.not_found = true;
                return round;
            }
            Err(failure) => {
                let Some(s) = cp.streams.get_mut(i) else {
                    continue;
                };
                match build::after_failure(s, &failure, asked_ms) {
                    // Only this stream's pages shrink; the others go on at theirs.
                    AfterFailure::Retry { page_size } => {
                        s.tries = if page_size == s.page_size {
                            s.tries + 1
                        } else {
                            0
                        };
                        s.page_size = page_size;
                    }
                    AfterFailure::PauseUntil { at_ms } => {
                        round.paused = round.paused.max(Some(at_ms));
                    }
                    AfterFailure::Fail => {
                        round.failed.get_or_insert(failure);
                    }
                }
                continue;
            }
        };
        let cursor = cp.streams.get(i).and_then(|s| s.cursor.as_deref());
        if page.next_cursor.is_some() && page.next_cursor.as_deref() == cursor {
            let stuck = UpstreamFailure::Unusable("cursor did not advance".into());
            round.failed.get_or_insert(stuck);
            continue;
        }
        cp.login.get_or_insert(page.login);
        let more = page.next_cursor.is_some();
        if !cp.planned {
            cp.planned = true;
            cp.total = page.total;
            if let Some(counts) = page.counts.filter(|_| more) {
                let total: u64 = counts.iter().sum();
                let left = total.div_ceil(u64::from(FULL_PAGE)).saturating_sub(1);
                let plan = partition::plan(&counts, concurrency, left);
                if !plan.is_empty() {
                    // The parts are read from their own ends (a cursor belongs to its
                    // connection), this page's records among them: it is not kept. A record
                    // only it held would be one that left its part before the part's stream
                    // came by, in the state it had before.
                    cp.total = Some(total);
                    cp.streams = plan;
                    continue;
                }
            }
        }
        let names: Vec<&str> = page.repos.iter().map(Repo::name).collect();
        partition::advance(&mut cp.streams, i, &names, page.next_cursor, more);
        cp.fetched = cp
            .fetched
            .saturating_add(page.repos.len() as u64)
            .min(cp.total.unwrap_or(u64::MAX));
        round
            .read
            .push((live::encode_build_page(asked_ms, &page.repos), page.repos));
    }
    round
}

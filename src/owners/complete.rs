//! How a build ends: its pages assembled into the live listing (`assemble`), every waiting caller
//! answered from memory (`finish`, `complete`), then, once the answers are out, the listing's
//! pages kept and `v1:org:{owner}` written once, guarded by the invalidation markers
//! (`write_back`), or taken back when an invalidation raced it.

use super::build::{self, Checkpoint, BUILD_KEY};
use super::directory::{Checkpoints, Directory, Drive, Recent};
use super::drift;
use super::events::{self, Event};
use super::live::{self, Live, Pushed, LIVE_KEY, SINCE_KEY};
use super::memory::Unwritten;
use super::Answer;
use crate::cache::entry::{self, NOT_FOUND_TTL};
use crate::cache::{keys, Store};
use crate::error::ApiError;
use crate::model::{OwnerListing, Repo};
use crate::service::{Clock, Transport};

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// The whole listing: the stored pages, then `last` (asked at `asked_ms`), each name once
    /// (the later ask winning), with the stored pages that hold a dropped copy, and for a
    /// partitioned build the distinct names read in each part (by the part a record was read
    /// in). A stored page that went missing drops the build (it starts over rather than
    /// answer a hole).
    pub(super) async fn assemble(
        &self,
        cp: &Checkpoint,
        asked_ms: u64,
        last: Vec<Repo>,
    ) -> Result<(Live, Pushed), ApiError> {
        let keys: Vec<String> = (0..cp.pages).map(|i| build::page_key(cp.slot, i)).collect();
        let login = cp
            .login
            .clone()
            .unwrap_or_else(|| self.owner.as_str().to_string());
        let mut done = Live {
            listing: OwnerListing {
                login,
                repos: Vec::with_capacity(usize::try_from(cp.fetched).unwrap_or(0)),
                revalidated_at_ms: None,
                changed: Default::default(),
            },
            rows: Vec::new(),
            started_at_ms: cp.started_at_ms,
            slot: cp.slot,
            pages: cp.pages + 1,
            removed: Vec::new(),
            facts: Vec::new(),
        };
        let mut seen = Pushed::default();
        for (i, text) in (0..).zip(self.storage.get_many(&keys).await) {
            let Some((asked, repos)) = text.as_deref().and_then(live::decode_page) else {
                self.clear().await;
                self.forget_checkpoint();
                return Err(ApiError::Upstream("a stored page was lost".into()));
            };
            done.push_page(i, asked, repos, &mut seen);
        }
        done.push_page(cp.pages, vec![asked_ms], last, &mut seen);
        Ok((done, seen))
    }

    /// Every page has arrived: the listing is answered, kept as the live listing, and written to
    /// KV once by `write_back`. `last` is its last page as stored.
    pub(super) fn finish(
        &self,
        cp: &Checkpoint,
        done: Live,
        last: String,
        rewritten: Vec<u32>,
    ) -> Drive {
        let cfg = self.svc.cfg;
        let ttl = (!cfg.is_pinned(self.owner)).then_some(cfg.stale_ttl);
        let fresh_until = cp
            .started_at_ms
            .saturating_add(cfg.fresh_ttl.saturating_mul(1000));
        let text = entry::encode(cp.started_at_ms, Some(&done.listing));
        let write = (keys::org(self.owner), text.clone(), ttl);
        let meta = done.meta();
        let last_key = build::page_key(done.slot, done.pages - 1);
        let (old, turns) = {
            let mut mem = self.mem.borrow_mut();
            let mem = &mut *mem;
            if let Some(was) = &mem.live {
                let found = drift::measure(&was.listing, &done.listing, &mem.heard_in_build);
                let now = self.svc.clock.now_ms();
                mem.drift.record(now, found);
                mem.drift_unstored = true;
                if !found.is_zero() {
                    drift::log(self.owner.as_str(), &found);
                }
            }
            mem.heard_in_build.clear();
            let turns = match &mem.live {
                // A rebuild's differences go out like any change; no `reset` before them.
                Some(was) => Some(events::diff(&was.listing.repos, &done.listing.repos)),
                None => None,
            };
            let old = mem
                .live
                .as_ref()
                .map(|l| (0..l.pages).map(|i| build::page_key(l.slot, i)).collect());
            mem.live = Some(done);
            mem.live_text = Some(text.clone());
            mem.since.clear();
            // The build's own KV write comes first; a round publishes a second after it.
            mem.rounds.published_at_ms = self.svc.clock.now_ms();
            (old.unwrap_or_default(), turns)
        };
        match turns {
            Some(turns) => self.tell(&turns),
            None => self.tell_everyone(Event::Ready),
        }
        let drive = self.complete(cp, Answer::Complete(text), fresh_until, Some(write));
        if let Some(u) = self.mem.borrow_mut().unwritten.as_mut() {
            u.keep = Some((last_key, last, old));
            // The meta line rides along as the last "page" key pair: see `write_back`.
            u.meta = Some(meta);
            u.rewritten = rewritten;
        }
        drive
    }

    /// The owner does not exist: remembered for a minute, like any not-found answer. A pinned
    /// owner's old listing is kept (the cron never replaces it with nothing).
    pub(super) fn finish_not_found(&self, cp: &Checkpoint) -> Drive {
        let write = (!self.svc.cfg.is_pinned(self.owner)).then(|| {
            let text = entry::encode::<OwnerListing>(cp.started_at_ms, None);
            (keys::org(self.owner), text, Some(NOT_FOUND_TTL))
        });
        let until = cp.started_at_ms.saturating_add(NOT_FOUND_TTL * 1000);
        self.complete(cp, Answer::NotFound, until, write)
    }

    /// Answers the waiting callers (and later ones, until `fresh_until_ms`) at once. The KV
    /// write and dropping the stored build are left to `write_back`, after the answers are out:
    /// a storage write would hold them back until it is durable (the object's output gate).
    pub(super) fn complete(
        &self,
        cp: &Checkpoint,
        answer: Answer,
        fresh_until_ms: u64,
        write: Option<(String, String, Option<u64>)>,
    ) -> Drive {
        let mut mem = self.mem.borrow_mut();
        mem.checkpoint = None;
        mem.loaded = true;
        mem.completions += 1;
        mem.last = Some(answer.clone());
        mem.recent = Some(Recent {
            started_at_ms: cp.started_at_ms,
            fresh_until_ms,
            answer,
        });
        mem.unwritten = Some(Unwritten {
            generation: mem.generation,
            started_at_ms: cp.started_at_ms,
            write,
            keep: None,
            meta: None,
            rewritten: Vec::new(),
        });
        mem.notify();
        Drive::Done
    }

    /// The drift log, when a rebuild changed it (a later life of the object reports it too).
    async fn store_drift(&self) {
        let text = {
            let mut mem = self.mem.borrow_mut();
            if !mem.drift_unstored {
                return;
            }
            mem.drift_unstored = false;
            serde_json::to_string(&mem.drift).unwrap_or_default()
        };
        let _ = self.put(drift::DRIFT_KEY, &text).await;
    }

    /// What a completed build left for after its answer: the stored build is dropped and the
    /// listing written to KV once, unless an invalidation heard since made it obsolete (the
    /// invalidation dropped the stored build itself). Nothing when nothing is left.
    pub async fn write_back(&self) {
        let Some(done) = self.mem.borrow_mut().unwritten.take() else {
            return;
        };
        self.store_seqs().await;
        if self.mem.borrow().generation != done.generation {
            return;
        }
        // No other build can have started: callers are answered from `recent` until it is
        // written, and an invalidation would have changed the generation.
        let mut done = done;
        self.catch_up_unwritten(&mut done);
        match (done.keep, done.meta) {
            (Some((last_key, last, old)), Some(meta)) => {
                // The build's pages become the live listing's; the replaced listing's go. Pages
                // the catch-up patched after they were stored are stored again as they stand,
                // or a later life of the object would load what the build first read.
                // The last page too: its text as read is stored first, then as patched.
                let mut pages = vec![(last_key, last)];
                {
                    let mem = self.mem.borrow();
                    let same = mem
                        .live
                        .as_ref()
                        .filter(|l| l.started_at_ms == done.started_at_ms);
                    if let Some(l) = same {
                        pages.extend(
                            done.rewritten
                                .iter()
                                .filter(|&&i| i < l.pages)
                                .map(|&i| (live::page_key(l.slot, i), l.encode_page(i))),
                        );
                    }
                }
                for (key, text) in pages {
                    let _ = self.put(&key, &text).await;
                }
                let _ = self.put(LIVE_KEY, &meta).await;
                // What the catch-up left for GitHub to answer (it moved from `since`, which
                // goes below), so a later life of the object still asks it.
                self.store_queue().await;
                self.store_drift().await;
                let mut gone = old;
                gone.push(BUILD_KEY.to_string());
                gone.push(SINCE_KEY.to_string());
                self.storage.delete_many(&gone).await;
            }
            _ => {
                self.clear().await;
                let mut mem = self.mem.borrow_mut();
                mem.live = None;
                mem.live_text = None;
            }
        }
        let Some(write) = done.write else {
            return;
        };
        if self.mem.borrow().generation != done.generation {
            return;
        }
        let key = write.0.clone();
        let stored = self
            .svc
            .store_fetched_counted(vec![write], done.started_at_ms)
            .await;
        // Refused: the alarm writes the listing again (KV may hold an older copy meanwhile).
        self.note_published(stored.refused > 0).await;
        let mut dropped = stored.superseded > 0;
        if !dropped {
            // An invalidation racing the write may have deleted the key just before the write
            // landed. It writes its marker before deleting and tells this directory after: if
            // either shows now, the write is taken back.
            let heard = self.mem.borrow().generation != done.generation;
            if heard || self.svc.invalidated_since(&key, done.started_at_ms).await {
                self.take_back(&key).await;
                dropped = true;
            }
        }
        if dropped {
            // The callers who waited have their answer, but nobody else gets it.
            {
                let mut mem = self.mem.borrow_mut();
                if let Some(r) = mem
                    .recent
                    .as_mut()
                    .filter(|r| r.started_at_ms == done.started_at_ms)
                {
                    r.fresh_until_ms = 0;
                }
            }
            self.abandon_live().await;
        }
    }

    /// A revalidation round may have patched the listing between its answer and this write:
    /// what is written (its last page, its meta line, the KV entry) is the listing as it stands
    /// now, never the build's first copy over a patched one.
    pub(super) fn catch_up_unwritten(&self, done: &mut Unwritten) {
        let mut mem = self.mem.borrow_mut();
        let same = mem
            .live
            .as_ref()
            .is_some_and(|l| l.started_at_ms == done.started_at_ms);
        if !same || done.keep.is_none() {
            return;
        }
        let text = mem.live_envelope();
        let Some(l) = mem.live.as_ref() else { return };
        if let Some((_, last, _)) = done.keep.as_mut() {
            *last = l.encode_page(l.pages.saturating_sub(1));
        }
        done.meta = Some(l.meta());
        if let Some(write) = done.write.as_mut() {
            write.1 = text;
        }
    }

    /// Deletes a listing write an invalidation overtook, retried as an invalidation's deletes
    /// are (a refused take-back would leave the older listing in KV until its TTL).
    pub(super) async fn take_back(&self, key: &str) {
        if self.svc.drop_keys(&[], &[key.to_string()]).await.is_err() {
            // Keys sorted (`crate::log::line`).
            #[derive(serde::Serialize)]
            struct Line<'a> {
                level: &'a str,
                msg: &'a str,
                owner: &'a str,
            }
            crate::log::line(&Line {
                level: "error",
                msg: "listing write overtaken by an invalidation could not be taken back",
                owner: self.owner.as_str(),
            });
        }
    }

    /// The live listing is older than an invalidation it was not told of (KV refused its write):
    /// it is not kept, and the next read builds again. A rebuild under way keeps its stored
    /// progress; only the listing's own keys go, so a later life resumes the rebuild rather
    /// than load the abandoned listing.
    pub(super) async fn abandon_live(&self) {
        let (had, building) = {
            let mut mem = self.mem.borrow_mut();
            mem.live_text = None;
            mem.queue.clear();
            // The build's answer is that listing too: callers are no longer answered from it.
            mem.recent = None;
            let had = mem.live.take();
            (had, mem.checkpoint.is_some())
        };
        let Some(had) = had else { return };
        // Subscribers read again once a build completes (`ready`).
        self.tell_everyone(Event::Reset);
        self.store_seqs().await;
        if building {
            let mut gone: Vec<String> = (0..had.pages)
                .map(|i| live::page_key(had.slot, i))
                .collect();
            gone.push(LIVE_KEY.to_string());
            self.storage.delete_many(&gone).await;
        } else {
            self.clear().await;
            self.store_kept().await;
        }
    }
}

//! Live events in a directory: the changes it makes to its listing, numbered per scope
//! (`events::Feeds`) and sent to the object's subscribers the moment they are made, and the
//! first frames a new subscriber gets. The sockets are the object's (`Checkpoints::send`).

use super::directory::{Checkpoints, Directory};
use super::events::{self, Event, Feeds, Replay, EVENTS_KEY};
use super::live::Turn;
use crate::cache::Store;
use crate::fields::FieldSet;
use crate::model::Scope;
use crate::service::{Clock, Transport};

/// `progress` frames go out at most this often while a build pages.
pub const PROGRESS_EVERY_MS: u64 = 1_000;

/// How a subscriber finds the listing when it connects (`hello`'s `listing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ready,
    Building,
    None,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Building => "building",
            State::None => "none",
        }
    }
}

impl<S: Store, T: Transport, C: Clock, K: Checkpoints> Directory<'_, S, T, C, K> {
    /// Tells each scope what `turns` changed in the listing (a narrowing fact's before its
    /// delivery is answered, a round's once GitHub answered), then stores the numbers used.
    pub(super) async fn announce(&self, turns: &[Turn]) {
        self.tell(turns);
        self.store_seqs().await;
    }

    /// `announce` without storing the numbers (a completing build stores them with its
    /// write-back: nothing is stored before its callers are answered).
    pub(super) fn tell(&self, turns: &[Turn]) {
        if turns.is_empty() {
            return;
        }
        let now = self.now();
        let mut mem = self.mem.borrow_mut();
        let sent = mem.feeds.turns(turns, now);
        self.send_numbered(&mem.feeds, &sent);
        mem.seqs_unstored |= !sent.is_empty();
    }

    /// `reset` (the listing was thrown away) or `ready` (a build completed where there was no
    /// listing) to every scope; its numbers stored by the next `store_seqs`.
    pub(super) fn tell_everyone(&self, event: Event) {
        let now = self.now();
        let mut mem = self.mem.borrow_mut();
        let seqs = mem.feeds.everyone(event, now);
        let sent: Vec<(Scope, u64)> = events::SCOPES.into_iter().zip(seqs).collect();
        self.send_numbered(&mem.feeds, &sent);
        mem.seqs_unstored = true;
    }

    fn send_numbered(&self, feeds: &Feeds, sent: &[(Scope, u64)]) {
        for &(scope, seq) in sent {
            if let Some(m) = feeds.message(scope, seq) {
                self.storage
                    .send(Some(scope), &|fields| events::render(m, scope, fields));
            }
        }
    }

    /// A build's progress to every subscriber, at most once per `PROGRESS_EVERY_MS` (pages
    /// arrive about a second apart, so about one a page).
    pub(super) fn announce_progress(&self, fetched: u64, total: Option<u64>) {
        let now = self.now();
        {
            let mut mem = self.mem.borrow_mut();
            if mem.progress_at_ms > 0 && now < mem.progress_at_ms + PROGRESS_EVERY_MS {
                return;
            }
            mem.progress_at_ms = now;
        }
        let text = events::progress(fetched, total);
        self.storage.send(None, &|_| text.clone());
    }

    /// Each scope's last number, for a later life of the object, when messages were numbered
    /// since they were last stored.
    pub(super) async fn store_seqs(&self) {
        let text = {
            let mut mem = self.mem.borrow_mut();
            if !std::mem::take(&mut mem.seqs_unstored) {
                return;
            }
            mem.feeds.encode_seqs()
        };
        let _ = self.put(EVENTS_KEY, &text).await;
    }

    /// Whether anyone subscribes to the owner's events.
    pub fn watched(&self) -> bool {
        self.storage.subscribers().iter().any(|&n| n > 0)
    }

    /// The numbers again after storage was cleared (an owner-level invalidation): the sockets
    /// outlive it, so a later life must not number from 0.
    pub(super) async fn keep_seqs(&self) {
        if self.mem.borrow().feeds.seq(Scope::All) > 0 {
            self.mem.borrow_mut().seqs_unstored = true;
            self.store_seqs().await;
        }
    }

    /// Where the listing stands for a subscriber (what an earlier life stored included, once
    /// `in_progress` has loaded it).
    pub fn state(&self) -> State {
        let mem = self.mem.borrow();
        if mem.live.is_some() {
            State::Ready
        } else if mem.running || mem.checkpoint.is_some() {
            State::Building
        } else {
            State::None
        }
    }

    /// The first frames of a subscriber of `scope` asking `fields`: `hello`, then the messages
    /// after `since` (or a `reset` when they are no longer kept).
    pub fn welcome(&self, scope: Scope, fields: FieldSet, since: Option<u64>) -> Vec<String> {
        let state = self.state();
        let mem = self.mem.borrow();
        let live = mem.live.as_ref();
        let mut frames = vec![events::hello(
            mem.feeds.seq(scope),
            state.name(),
            live.map(|l| l.started_at_ms),
            live.and_then(|l| l.listing.changed.get(scope)),
        )];
        match since.map(|n| mem.feeds.replay(scope, n)) {
            None => {}
            Some(Replay::Messages(kept)) => {
                frames.extend(kept.iter().map(|m| events::render(m, scope, fields)));
            }
            Some(Replay::Reset(seq)) => frames.push(events::reset(seq)),
        }
        frames
    }
}

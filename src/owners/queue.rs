//! Changes waiting to be asked of GitHub, one entry per repository name: the revalidation queue
//! of a live listing, and the changes heard since a build began. Pure: no I/O, no clock.
//!
//! Entries carry the sequence numbers under which their changes were heard, so a round knows
//! which deliveries it answered: an entry asked while a change to its name was heard again stays
//! (the answer may predate that change), and a delivery is applied once no entry holds a change
//! heard at or before it.

use super::live::Change;
use crate::forge::Fact;
use crate::names::RepoName;
use std::collections::HashMap;

/// One name's pending change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The latest change heard of this name (a narrowing fact is not forgotten for a `Changed`).
    pub change: Change,
    /// The first and last sequence numbers heard for it and not yet answered.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Not asked before this time (a narrowing fact waits for an answer that can confirm it).
    pub due_ms: u64,
}

/// Pending changes by name, in the order first heard; adding is constant time.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    entries: Vec<Entry>,
    /// Lowercased name → position in `entries`.
    index: HashMap<String, usize>,
}

impl Queue {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The changes as they stand (for storage).
    pub fn changes(&self) -> Vec<Change> {
        self.entries.iter().map(|e| e.change.clone()).collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
    }

    /// Adds `new`, heard as number `seq`: a later change of a name joins its entry (the later
    /// time, the narrowing fact kept), so a name is asked once however often it is heard.
    pub fn push(&mut self, new: &Change, seq: u64) {
        let key = new.name.as_str().to_ascii_lowercase();
        match self.index.get(&key).and_then(|&i| self.entries.get_mut(i)) {
            Some(e) => {
                e.change.at_ms = e.change.at_ms.max(new.at_ms);
                if new.fact != Fact::Changed {
                    e.change.fact = new.fact;
                }
                e.first_seq = e.first_seq.min(seq);
                e.last_seq = e.last_seq.max(seq);
            }
            None => {
                self.index.insert(key, self.entries.len());
                self.entries.push(Entry {
                    change: new.clone(),
                    first_seq: seq,
                    last_seq: seq,
                    due_ms: 0,
                });
            }
        }
    }

    /// Adds `new` (heard as number `seq`), not to be asked before `due_ms`.
    pub fn push_due(&mut self, new: &Change, seq: u64, due_ms: u64) {
        self.push(new, seq);
        let key = new.name.as_str().to_ascii_lowercase();
        if let Some(e) = self.index.get(&key).and_then(|&i| self.entries.get_mut(i)) {
            e.due_ms = e.due_ms.max(due_ms);
        }
    }

    /// Up to `max` names due at `now_ms`, in the order first heard.
    pub fn due(&self, now_ms: u64, max: usize) -> Vec<RepoName> {
        self.entries
            .iter()
            .filter(|e| e.due_ms <= now_ms)
            .take(max)
            .map(|e| e.change.name.clone())
            .collect()
    }

    /// When the next entry falls due (`None`: nothing queued).
    pub fn next_due_ms(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.due_ms).min()
    }

    /// GitHub answered `names`, asked when `top_seq` changes had been heard: their entries go,
    /// except a name heard again since (asked again later, its older changes answered), or one
    /// whose answer is held back until `held` says (asked again then).
    pub fn answered(&mut self, names: &[RepoName], top_seq: u64, held: &[(RepoName, u64)]) {
        // Each name asked, with when its answer is held until (`None`: it was not). The map
        // points into that list: a map of `usize` is one the wasm links already (`index`).
        let until: Vec<Option<u64>> = (names.iter().map(|_| None))
            .chain(held.iter().map(|(_, until)| Some(*until)))
            .collect();
        let asked: HashMap<String, usize> = (names.iter().chain(held.iter().map(|(n, _)| n)))
            .enumerate()
            .map(|(i, n)| (n.as_str().to_ascii_lowercase(), i))
            .collect();
        let answer = |name: &RepoName| {
            let key = name.as_str().to_ascii_lowercase();
            asked.get(&key).map(|&i| until.get(i).copied().flatten())
        };
        for e in &mut self.entries {
            match answer(&e.change.name) {
                Some(Some(until)) => e.due_ms = e.due_ms.max(until),
                Some(None) if e.last_seq > top_seq => e.first_seq = top_seq + 1,
                _ => {}
            }
        }
        self.entries
            .retain(|e| !matches!(answer(&e.change.name), Some(None)) || e.last_seq > top_seq);
        self.reindex();
    }

    /// Every entry, taken out.
    pub fn take(&mut self) -> Vec<Entry> {
        self.index.clear();
        std::mem::take(&mut self.entries)
    }

    /// Puts back an entry taken out (its sequence numbers and due time kept).
    pub fn restore(&mut self, e: Entry) {
        let seq = e.first_seq;
        let (last, due) = (e.last_seq, e.due_ms);
        self.push(&e.change, seq);
        let key = e.change.name.as_str().to_ascii_lowercase();
        if let Some(x) = self.index.get(&key).and_then(|&i| self.entries.get_mut(i)) {
            x.last_seq = x.last_seq.max(last);
            x.due_ms = x.due_ms.max(due);
        }
    }

    /// When the oldest change waiting was heard (`None`: none waits).
    pub fn oldest_at_ms(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.change.at_ms).min()
    }

    /// The oldest sequence number not yet answered (`None`: everything heard is answered).
    pub fn oldest_seq(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.first_seq).min()
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.change.name.as_str().to_ascii_lowercase(), i))
            .collect();
    }

    /// A queue of stored changes (a new life: every sequence number is 0).
    pub fn from_changes(changes: Vec<Change>) -> Queue {
        let mut q = Queue::default();
        for c in &changes {
            q.push(c, 0);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, fact: Fact, at_ms: u64) -> Change {
        Change {
            name: RepoName::parse(name).unwrap(),
            fact,
            at_ms,
        }
    }

    fn names(q: &Queue) -> Vec<String> {
        q.entries()
            .iter()
            .map(|e| e.change.name.as_str().to_string())
            .collect()
    }

    #[test]
    fn a_name_is_queued_once_and_keeps_its_narrowing_fact() {
        let mut q = Queue::default();
        q.push(&c("a", Fact::Changed, 1), 1);
        q.push(&c("A", Fact::Private, 2), 2);
        q.push(&c("a", Fact::Changed, 3), 3);
        q.push(&c("b", Fact::Changed, 4), 4);
        assert_eq!(
            q.changes(),
            [c("a", Fact::Private, 3), c("b", Fact::Changed, 4)]
        );
        assert_eq!(q.oldest_seq(), Some(1));
    }

    #[test]
    fn an_answer_clears_only_what_was_heard_before_it_was_asked() {
        let mut q = Queue::default();
        q.push(&c("a", Fact::Changed, 1), 1);
        q.push(&c("b", Fact::Changed, 1), 2);
        q.push(&c("c", Fact::Changed, 1), 3);
        let asked = q.due(0, 2);
        assert_eq!(asked.len(), 2, "at most the batch size");
        // `b` is heard again while the query is out.
        q.push(&c("b", Fact::Private, 5), 4);
        q.answered(&asked, 3, &[]);
        assert_eq!(names(&q), ["b", "c"]);
        // `b`'s first two hearings were answered; the one heard during the query was not.
        assert_eq!(q.entries()[0].first_seq, 4);
        assert_eq!(q.oldest_seq(), Some(3));
    }

    #[test]
    fn a_held_answer_waits_until_it_can_confirm_the_fact() {
        let mut q = Queue::default();
        q.push(&c("a", Fact::Private, 1_000), 1);
        q.push(&c("b", Fact::Changed, 1_000), 2);
        let asked = q.due(1_500, 100);
        let held = vec![(RepoName::parse("a").unwrap(), 6_000)];
        q.answered(&asked, 2, &held);
        assert_eq!(names(&q), ["a"]);
        assert_eq!(q.due(5_999, 100), Vec::<RepoName>::new());
        assert_eq!(q.next_due_ms(), Some(6_000));
        assert_eq!(q.due(6_000, 100).len(), 1);
    }

    #[test]
    fn many_names_are_queued_in_linear_time() {
        // 20,000 distinct names, then each heard again: one entry each (a linear scan per push
        // would make this quadratic).
        let mut q = Queue::default();
        for round in 0..2 {
            for i in 0..20_000 {
                q.push(
                    &c(&format!("r{i}"), Fact::Changed, round),
                    round * 20_000 + i,
                );
            }
        }
        assert_eq!(q.len(), 20_000);
        let taken = q.take();
        let mut back = Queue::default();
        for e in taken {
            back.restore(e);
        }
        assert_eq!(back.len(), 20_000);
        assert_eq!(back.oldest_seq(), Some(0));
    }
}

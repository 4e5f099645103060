//! Live events (DESIGN.md, "Live events"): what each scope's subscribers are told of a listing's
//! changes, numbered per scope, and the messages a resuming subscriber replays. Plain Rust; the
//! object's shell accepts the sockets, tags each with its scope and sends what this renders.
//!
//! **Privacy**: a scope's sequence numbers count only the messages of that scope, and a change
//! reaches a scope only when what that scope sees of the record changed (`Changed::reach`), so a
//! subscriber learns nothing about a record it may not see: no message, no gap in `seq`.

use super::live::Turn;
use crate::config::PrivatePolicy;
use crate::fields::FieldSet;
use crate::json::Writer;
use crate::model::{Changed, Repo, Scope};
use crate::names::cmp_names;
use crate::time::format_rfc3339;
use crate::view::{self, Access, Shown};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::rc::Rc;

/// The object's storage key of each scope's last message number (`all,public,redacted`): a later
/// life of the object (after hibernation or eviction, its sockets still open) numbers on from
/// them, so no subscriber sees a number twice.
pub const EVENTS_KEY: &str = "events";

/// A scope keeps at least this many of its last messages for `since=`…
pub const KEEP_MESSAGES: usize = 1_000;
/// …and at least those of the last 10 minutes…
pub const KEEP_MS: u64 = 10 * 60 * 1000;
/// …but never more than this many, however fast the listing changes (memory stays bounded).
pub const MAX_MESSAGES: usize = 10_000;
/// The answer to a client's `ping` text frame.
pub const PONG: &str = r#"{"type":"pong"}"#;

/// The scopes, in the order `Feeds` keeps them.
pub const SCOPES: [Scope; 3] = [Scope::All, Scope::Public, Scope::Redacted];

/// What happened, as one scope sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A record the scope may see appeared or changed (shared by the scopes it reached).
    Upsert(Rc<Repo>),
    /// A record left what the scope may see: deleted, renamed away, transferred, or hidden.
    Remove(Box<str>),
    /// The listing was thrown away (an owner-level invalidation): read it again after `ready`.
    Reset,
    /// A build completed where there was no listing: read it.
    Ready,
}

/// One numbered message of a scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub seq: u64,
    pub at_ms: u64,
    pub event: Event,
}

/// One scope's sequence and the messages it keeps, oldest first.
#[derive(Debug, Default)]
struct Log {
    seq: u64,
    kept: VecDeque<Message>,
}

impl Log {
    fn push(&mut self, event: Event, now_ms: u64) -> u64 {
        self.seq += 1;
        self.kept.push_back(Message {
            seq: self.seq,
            at_ms: now_ms,
            event,
        });
        while self.kept.len() > MAX_MESSAGES
            || self.kept.len() > KEEP_MESSAGES
                && self
                    .kept
                    .front()
                    .is_some_and(|m| m.at_ms.saturating_add(KEEP_MS) < now_ms)
        {
            self.kept.pop_front();
        }
        self.seq
    }
}

/// What a subscriber resuming after `since` is sent after `hello`.
#[derive(Debug, PartialEq)]
pub enum Replay<'a> {
    /// The scope's messages after `since`, in order (none when it is up to date).
    Messages(Vec<&'a Message>),
    /// `since` is older than what is kept, or past the scope's sequence: a `reset` carrying the
    /// scope's current number, to that socket only (it uses no number up).
    Reset(u64),
}

/// Every scope's sequence and kept messages: one per owner's object.
#[derive(Debug, Default)]
pub struct Feeds {
    logs: [Log; 3],
}

impl Feeds {
    /// One record's change: its copies before and after (`None`: absent; a rename is the old
    /// name gone and the new one added, two changes). Returns the scopes it reached, each with
    /// its new message's number, for the shell to send.
    pub fn change(
        &mut self,
        old: Option<&Repo>,
        new: Option<&Repo>,
        now_ms: u64,
    ) -> Vec<(Scope, u64)> {
        let reach = Changed::reach(old, new);
        let shared = new.map(|r| Rc::new(r.clone()));
        let mut out = Vec::new();
        for ((scope, log), reached) in SCOPES.into_iter().zip(&mut self.logs).zip(reach) {
            if !reached {
                continue;
            }
            let event = match (&shared, old) {
                (Some(r), _) if sees(scope, r) => Event::Upsert(Rc::clone(r)),
                (_, Some(o)) => Event::Remove(o.name().into()),
                // Reached means the scope's view differs, so one of the two copies is seen.
                (_, None) => continue,
            };
            out.push((scope, log.push(event, now_ms)));
        }
        out
    }

    /// `change` for each record a change turned, in order.
    pub fn turns(&mut self, turns: &[Turn], now_ms: u64) -> Vec<(Scope, u64)> {
        let mut out = Vec::new();
        for t in turns {
            out.extend(self.change(t.old.as_ref(), t.new.as_ref(), now_ms));
        }
        out
    }

    /// Each scope's last number, as stored under `EVENTS_KEY`.
    pub fn encode_seqs(&self) -> String {
        let [a, p, r] = [0, 1, 2].map(|i| self.logs.get(i).map_or(0, |l| l.seq));
        format!("{a},{p},{r}")
    }

    /// Numbers on from what an earlier life stored (never back: numbers already used stand).
    pub fn restore_seqs(&mut self, text: &str) {
        for (log, n) in self.logs.iter_mut().zip(text.split(',')) {
            if let Ok(n) = n.parse::<u64>() {
                log.seq = log.seq.max(n);
            }
        }
    }

    /// `Reset` or `Ready`: a message to every scope. Returns each scope's new number.
    pub fn everyone(&mut self, event: Event, now_ms: u64) -> [u64; 3] {
        let mut seqs = [0; 3];
        for (log, seq) in self.logs.iter_mut().zip(&mut seqs) {
            *seq = log.push(event.clone(), now_ms);
        }
        seqs
    }

    /// The scope's last message number (`hello` carries it).
    pub fn seq(&self, scope: Scope) -> u64 {
        self.log(scope).seq
    }

    /// The message numbered `seq` of `scope`, while it is kept.
    pub fn message(&self, scope: Scope, seq: u64) -> Option<&Message> {
        let kept = &self.log(scope).kept;
        let first = kept.front()?.seq;
        kept.get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    /// What a subscriber of `scope` resuming after `since` is sent.
    pub fn replay(&self, scope: Scope, since: u64) -> Replay<'_> {
        let log = self.log(scope);
        if since > log.seq {
            return Replay::Reset(log.seq);
        }
        let first = log.kept.front().map_or(log.seq + 1, |m| m.seq);
        if since + 1 < first {
            return Replay::Reset(log.seq);
        }
        Replay::Messages(log.kept.iter().filter(|m| m.seq > since).collect())
    }

    fn log(&self, scope: Scope) -> &Log {
        match scope {
            Scope::All => &self.logs[0],
            Scope::Public => &self.logs[1],
            Scope::Redacted => &self.logs[2],
        }
    }
}

/// What a rebuild changed, record by record: `old` (the live listing it replaces) against `new`.
/// Unchanged records are left out; a record gone comes before the one after it.
pub fn diff(old: &[Repo], new: &[Repo]) -> Vec<Turn> {
    let mut out = Vec::new();
    walk(old, new, |old, new| {
        if old != new {
            out.push(Turn {
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    });
    out
}

/// Calls `f` with each record's copies in `old` and `new` (`None`: absent from one), both lists
/// in name order (`cmp_names`, as listings are kept) and walked side by side.
pub fn walk<'a>(
    old: &'a [Repo],
    new: &'a [Repo],
    mut f: impl FnMut(Option<&'a Repo>, Option<&'a Repo>),
) {
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => cmp_names(x.name(), y.name()),
        };
        match order {
            Ordering::Less => f(a.next(), None),
            Ordering::Greater => f(None, b.next()),
            Ordering::Equal => f(a.next(), b.next()),
        }
    }
}

/// Whether `scope` sees `repo` at all (redacted counts as seen), by `view`'s rules.
fn sees(scope: Scope, repo: &Repo) -> bool {
    let (access, policy) = caller(scope);
    view::shown(repo, &access, policy) != Shown::Hidden
}

/// The caller a scope stands for, to project records with `view::project`.
fn caller(scope: Scope) -> (Access, PrivatePolicy) {
    match scope {
        Scope::All => (
            Access::Token {
                all: true,
                owners: Vec::new(),
            },
            PrivatePolicy::Hide,
        ),
        Scope::Public => (Access::Anonymous, PrivatePolicy::Hide),
        Scope::Redacted => (Access::Anonymous, PrivatePolicy::Redact),
    }
}

/// The text frame of `m` for a subscriber of `scope` asking for `fields`.
pub fn render(m: &Message, scope: Scope, fields: FieldSet) -> String {
    let mut out = Writer::with_capacity(256);
    out.raw("{\"type\":\"");
    out.raw(match m.event {
        Event::Upsert(_) => "upsert",
        Event::Remove(_) => "remove",
        Event::Reset => "reset",
        Event::Ready => "ready",
    });
    out.raw("\",\"seq\":");
    out.uint(m.seq);
    match &m.event {
        Event::Upsert(repo) => {
            out.raw(",\"repo\":");
            let (access, policy) = caller(scope);
            match view::project(repo, fields, &access, policy) {
                Some(v) => v.write_json(&mut out),
                // Never: an upsert is made only for a scope that sees the record.
                None => out.raw("null"),
            }
        }
        Event::Remove(name) => {
            out.raw(",\"name\":");
            out.str(name);
        }
        Event::Reset | Event::Ready => {}
    }
    out.raw("}");
    out.finish()
}

/// `reset` for one resuming socket (`Replay::Reset`): the scope's current number.
pub fn reset(seq: u64) -> String {
    let m = Message {
        seq,
        at_ms: 0,
        event: Event::Reset,
    };
    render(&m, Scope::Public, FieldSet::default_set())
}

/// The first message on a socket: the scope's last number and the listing's state (`listing`
/// is `ready`, `building` or `none`).
pub fn hello(
    seq: u64,
    listing: &str,
    fetched_at_ms: Option<u64>,
    revalidated_at_ms: Option<u64>,
) -> String {
    let mut out = Writer::with_capacity(128);
    out.raw("{\"type\":\"hello\",\"seq\":");
    out.uint(seq);
    out.raw(",\"listing\":");
    out.str(listing);
    out.raw(",\"fetched_at\":");
    out.opt_str(fetched_at_ms.map(format_rfc3339).as_deref());
    out.raw(",\"revalidated_at\":");
    out.opt_str(revalidated_at_ms.map(format_rfc3339).as_deref());
    out.raw("}");
    out.finish()
}

/// A build's progress (not numbered: it says nothing about a record).
pub fn progress(repos_fetched: u64, repos_total: Option<u64>) -> String {
    let total = repos_total.map_or("null".to_string(), |t| t.to_string());
    format!("{{\"type\":\"progress\",\"repos_fetched\":{repos_fetched},\"repos_total\":{total}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Visibility;
    use serde_json::Value;

    /// `acme/{name}` (`view`'s test record, described "d"), archived or not.
    fn repo(name: &str, visibility: Visibility, archived: bool) -> Repo {
        let mut r = crate::view::tests::repo("acme", name, visibility);
        r.archived = archived;
        r
    }

    fn kinds(feeds: &Feeds, out: &[(Scope, u64)]) -> [&'static str; 3] {
        let mut kinds = ["-"; 3];
        for (scope, seq) in out {
            let i = SCOPES.iter().position(|s| s == scope).unwrap();
            kinds[i] = match feeds.message(*scope, *seq).map(|m| &m.event) {
                Some(Event::Upsert(_)) => "upsert",
                Some(Event::Remove(_)) => "remove",
                _ => "?",
            };
        }
        kinds
    }

    #[test]
    fn a_change_reaches_the_scopes_whose_view_of_it_changed() {
        use Visibility::{Internal, Private, Public};
        let public = repo("r", Public, false);
        let cases: &[(Option<Repo>, Option<Repo>, [&str; 3])] = &[
            // (before, after, [all, public, redacted])
            (None, Some(public.clone()), ["upsert", "upsert", "upsert"]),
            (
                None,
                Some(repo("r", Private, false)),
                ["upsert", "-", "upsert"],
            ),
            (
                Some(public.clone()),
                Some(repo("r", Private, false)),
                ["upsert", "remove", "upsert"],
            ),
            (
                Some(repo("r", Private, false)),
                Some(public.clone()),
                ["upsert", "upsert", "upsert"],
            ),
            // Archiving a private record changes nothing an anonymous caller sees.
            (
                Some(repo("r", Private, false)),
                Some(repo("r", Private, true)),
                ["upsert", "-", "-"],
            ),
            (
                Some(repo("r", Internal, false)),
                Some(repo("r", Private, false)),
                ["upsert", "-", "upsert"],
            ),
            (
                Some(public.clone()),
                Some(repo("r", Public, true)),
                ["upsert", "upsert", "upsert"],
            ),
            (Some(public.clone()), None, ["remove", "remove", "remove"]),
            (
                Some(repo("r", Private, false)),
                None,
                ["remove", "-", "remove"],
            ),
            (Some(public.clone()), Some(public.clone()), ["-", "-", "-"]),
        ];
        for (old, new, want) in cases {
            let mut feeds = Feeds::default();
            let out = feeds.change(old.as_ref(), new.as_ref(), 1_000);
            assert_eq!(kinds(&feeds, &out), *want, "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn each_scope_numbers_only_its_own_messages() {
        let mut feeds = Feeds::default();
        feeds.change(None, Some(&repo("a", Visibility::Public, false)), 1);
        // Activity on a private record: the anonymous scopes see no message and no gap.
        let private = repo("p", Visibility::Private, false);
        feeds.change(None, Some(&private), 2);
        feeds.change(
            Some(&private),
            Some(&repo("p", Visibility::Private, true)),
            3,
        );
        feeds.change(None, Some(&repo("b", Visibility::Public, false)), 4);
        assert_eq!(feeds.seq(Scope::All), 4);
        assert_eq!(feeds.seq(Scope::Public), 2);
        assert_eq!(feeds.seq(Scope::Redacted), 3);
        let Replay::Messages(public) = feeds.replay(Scope::Public, 0) else {
            panic!("kept");
        };
        let seqs: Vec<u64> = public.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(feeds.everyone(Event::Reset, 5), [5, 3, 4]);
    }

    #[test]
    fn messages_are_projected_for_the_scope_and_the_fields_asked() {
        let mut feeds = Feeds::default();
        let public = repo("r", Visibility::Public, false);
        let private = repo("r", Visibility::Private, false);
        feeds.change(None, Some(&public), 1);
        feeds.change(Some(&public), Some(&private), 2);
        let fields = FieldSet::parse("name,description,visibility").unwrap();
        let text = |feeds: &Feeds, scope, seq| {
            let m = feeds.message(scope, seq).unwrap();
            serde_json::from_str::<Value>(&render(m, scope, fields)).unwrap()
        };
        assert_eq!(
            text(&feeds, Scope::All, 2),
            serde_json::json!({"type": "upsert", "seq": 2,
                "repo": {"name": "r", "description": "d", "visibility": "private"}})
        );
        assert_eq!(
            text(&feeds, Scope::Public, 2),
            serde_json::json!({"type": "remove", "seq": 2, "name": "r"})
        );
        // Redacted: name, full name and visibility only, whatever was asked.
        assert_eq!(
            text(&feeds, Scope::Redacted, 2),
            serde_json::json!({"type": "upsert", "seq": 2,
                "repo": {"name": "r", "full_name": "acme/r", "visibility": "private"}})
        );
        feeds.everyone(Event::Ready, 3);
        assert_eq!(
            text(&feeds, Scope::Public, 3),
            serde_json::json!({"type": "ready", "seq": 3})
        );
    }

    #[test]
    fn resuming_replays_what_is_kept_or_resets() {
        let mut feeds = Feeds::default();
        for i in 0..5u64 {
            let name = format!("r{i}");
            feeds.change(None, Some(&repo(&name, Visibility::Public, false)), i);
        }
        let seqs = |r: Replay<'_>| match r {
            Replay::Messages(m) => m.iter().map(|m| m.seq).collect::<Vec<_>>(),
            Replay::Reset(n) => vec![1_000 + n],
        };
        assert_eq!(seqs(feeds.replay(Scope::Public, 2)), [3, 4, 5]);
        assert_eq!(seqs(feeds.replay(Scope::Public, 5)), Vec::<u64>::new());
        assert_eq!(seqs(feeds.replay(Scope::Public, 0)), [1, 2, 3, 4, 5]);
        // A number the scope never reached: a reset with the current number, none used up.
        assert_eq!(feeds.replay(Scope::Public, 9), Replay::Reset(5));
        assert_eq!(feeds.seq(Scope::Public), 5);
        assert_eq!(reset(5), r#"{"type":"reset","seq":5}"#);
    }

    #[test]
    fn at_least_1000_messages_or_10_minutes_are_kept_and_never_more_than_10000() {
        let mut feeds = Feeds::default();
        let r = repo("r", Visibility::Public, false);
        let archived = repo("r", Visibility::Public, true);
        let flip = |feeds: &mut Feeds, i: u64, at: u64| {
            let (old, new) = if i % 2 == 0 {
                (&r, &archived)
            } else {
                (&archived, &r)
            };
            feeds.change(Some(old), Some(new), at);
        };
        // 1,200 messages over 5 minutes: all kept (the last 10 minutes, beyond 1,000).
        let mut slow = Feeds::default();
        for i in 0..1_200 {
            flip(&mut slow, i, 60_000 + i * 250);
        }
        assert!(matches!(slow.replay(Scope::All, 0), Replay::Messages(m) if m.len() == 1_200));
        // The first is exactly 10 minutes old: still kept; a millisecond later it goes.
        flip(&mut slow, 1_200, 60_000 + KEEP_MS);
        assert!(matches!(slow.replay(Scope::All, 0), Replay::Messages(m) if m.len() == 1_201));
        flip(&mut slow, 1_201, 60_000 + KEEP_MS + 1);
        assert_eq!(slow.replay(Scope::All, 0), Replay::Reset(1_202));
        // 1,500 messages within a minute: all kept (the last 10 minutes).
        for i in 0..1_500 {
            flip(&mut feeds, i, 60_000 + i * 40);
        }
        assert!(matches!(feeds.replay(Scope::All, 0), Replay::Messages(m) if m.len() == 1_500));
        // Eleven minutes on, one more: the older ones go down to the last 1,000.
        flip(&mut feeds, 1_500, 60_000 + 11 * 60_000);
        assert_eq!(feeds.replay(Scope::All, 500), Replay::Reset(1_501));
        assert!(matches!(feeds.replay(Scope::All, 501), Replay::Messages(m) if m.len() == 1_000));
        // A storm within one minute keeps at most 10,000.
        let at = 60_000 + 12 * 60_000;
        for i in 0..12_000 {
            flip(&mut feeds, i + 1_501, at);
        }
        let first = feeds.seq(Scope::All) - MAX_MESSAGES as u64;
        assert!(
            matches!(feeds.replay(Scope::All, first), Replay::Messages(m) if m.len() == MAX_MESSAGES)
        );
        assert!(matches!(
            feeds.replay(Scope::All, first - 1),
            Replay::Reset(_)
        ));
    }

    #[test]
    fn a_rebuild_is_told_record_by_record() {
        let (a, b, c) = (
            repo("a", Visibility::Public, false),
            repo("B", Visibility::Public, false),
            repo("c", Visibility::Public, false),
        );
        let b2 = repo("B", Visibility::Private, false);
        let d = repo("d", Visibility::Public, false);
        let turns = diff(&[a.clone(), b, c.clone()], &[a, b2.clone(), d.clone()]);
        let names: Vec<(Option<&str>, Option<&str>)> = turns
            .iter()
            .map(|t| {
                (
                    t.old.as_ref().map(Repo::name),
                    t.new.as_ref().map(Repo::name),
                )
            })
            .collect();
        assert_eq!(
            names,
            [(Some("B"), Some("B")), (Some("c"), None), (None, Some("d"))]
        );
        assert_eq!(turns[0].new.as_ref(), Some(&b2));
        let same = std::slice::from_ref(&c);
        assert!(
            diff(same, same).is_empty(),
            "unchanged records are left out"
        );
    }

    #[test]
    fn hello_and_progress() {
        assert_eq!(
            hello(7, "none", None, None),
            r#"{"type":"hello","seq":7,"listing":"none","fetched_at":null,"revalidated_at":null}"#
        );
        let v: Value =
            serde_json::from_str(&hello(0, "ready", Some(1_700_000_000_000), None)).unwrap();
        assert_eq!(v["fetched_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            progress(200, Some(1_000)),
            r#"{"type":"progress","repos_fetched":200,"repos_total":1000}"#
        );
        assert_eq!(
            progress(0, None),
            r#"{"type":"progress","repos_fetched":0,"repos_total":null}"#
        );
    }
}

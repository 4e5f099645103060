//! `OwnerListing`: every repository of one owner, one cache entry (`v1:org:{owner}`).

use super::names::Visibility;
use super::repo::Repo;

/// Every repository of one owner, as one cache entry (`v1:org:{owner}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerListing {
    /// The owner login as GitHub spells it.
    pub login: String,
    pub repos: Vec<Repo>,
    /// The last time a repository-level change revalidated the listing in place (live listings):
    /// the copy's version (copies are told apart by it), never shown to callers as such.
    pub revalidated_at_ms: Option<u64>,
    /// The last time a change altered what each kind of caller sees: their `revalidated_at`.
    pub changed: Changed,
}

/// What a caller may see of an owner's listing, as far as its body depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every record (a read token for the owner).
    All,
    /// Public records only (anonymous, hide mode).
    Public,
    /// Public records, and the others redacted to name, full name and visibility.
    Redacted,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Public => "public",
            Scope::Redacted => "redacted",
        }
    }
}

/// A record as anonymous callers see it in hide mode.
fn public_view(r: Option<&Repo>) -> Option<&Repo> {
    r.filter(|r| r.is_public())
}

/// A record as anonymous callers see it in redact mode: public records whole, the others as
/// name, full name and visibility.
type Redacted<'a> = Option<(Option<&'a Repo>, Option<(&'a str, &'a str, Visibility)>)>;

fn redacted_view(r: Option<&Repo>) -> Redacted<'_> {
    r.map(|r| {
        if r.is_public() {
            (Some(r), None)
        } else {
            (None, Some((r.name(), r.full_name(), r.visibility)))
        }
    })
}

/// Per scope, the last time a change altered what it sees (`None`: never since the build).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub all: Option<u64>,
    pub public: Option<u64>,
    pub redacted: Option<u64>,
}

impl Changed {
    pub fn get(&self, scope: Scope) -> Option<u64> {
        match scope {
            Scope::All => self.all,
            Scope::Public => self.public,
            Scope::Redacted => self.redacted,
        }
    }

    /// Which scopes one record's change reaches: `old` and `new` are its copies before and
    /// after (`None`: absent).
    pub fn reach(old: Option<&Repo>, new: Option<&Repo>) -> [bool; 3] {
        [
            old != new,
            public_view(old) != public_view(new),
            redacted_view(old) != redacted_view(new),
        ]
    }

    /// Marks `at_ms` for the scopes `reached` (see `reach`); earlier times are kept.
    pub fn mark(&mut self, reached: [bool; 3], at_ms: u64) {
        for (slot, hit) in [&mut self.all, &mut self.public, &mut self.redacted]
            .into_iter()
            .zip(reached)
        {
            if hit {
                *slot = Some(slot.map_or(at_ms, |t| t.max(at_ms)));
            }
        }
    }
}

impl OwnerListing {
    /// What the listing holds on the heap (the memory tier's budget).
    pub fn heap_bytes(&self) -> usize {
        let texts: usize = self.repos.iter().map(|r| r.text.len()).sum();
        std::mem::size_of::<OwnerListing>()
            + self.login.len()
            + self.repos.capacity() * std::mem::size_of::<Repo>()
            + texts
    }
}

impl OwnerListing {
    /// How young its content is: its build's `fetched_at`, or the last patch when later (a
    /// copy older than an invalidation heard here is not kept in memory).
    pub fn version_ms(&self, fetched_at_ms: u64) -> u64 {
        self.revalidated_at_ms.unwrap_or(0).max(fetched_at_ms)
    }
}

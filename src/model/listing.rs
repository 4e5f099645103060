//! `OwnerListing`: every repository of one owner, one cache entry (`v1:org:{owner}`).

use super::repo::Repo;

/// Every repository of one owner, as one cache entry (`v1:org:{owner}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerListing {
    /// The owner login as GitHub spells it.
    pub login: String,
    pub repos: Vec<Repo>,
    /// The last time a repository-level change revalidated the listing in place (live listings).
    pub revalidated_at_ms: Option<u64>,
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

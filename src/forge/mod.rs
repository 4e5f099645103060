//! The boundary between forge-specific code and the rest. A forge builds HTTP calls and parses
//! replies into the forge-neutral model; cache, projection and routes never see its wire format.
//! GitHub is the first forge (`github`); another (GitLab's `projects(fullPaths:…)`) would implement
//! the same trait.

pub mod github;

use crate::model::{Part, Repo};
use crate::names::{FullName, Owner};
use crate::secret::Secret;

/// An outgoing HTTP request, built without I/O so it can be checked in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What came back. Header names are lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// The first value of header `name` (case-insensitive) in a header list.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The rate-limit budget a reply reported, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub remaining: u64,
    /// The whole budget of the window (`GITHUB_BUDGET_RESERVE` is a percent of it).
    pub limit: Option<u64>,
    pub reset_at_ms: u64,
}

impl RateInfo {
    /// Whether less than `reserve_percent` of the window's budget is left (`GITHUB_BUDGET_RESERVE`).
    /// Unknown when GitHub did not say the limit: then only a spent budget stops calls.
    pub fn below_reserve(&self, reserve_percent: u64) -> bool {
        self.limit.is_some_and(|limit| {
            self.remaining.saturating_mul(100) < limit.saturating_mul(reserve_percent)
        })
    }
}

/// Why an upstream call gave no usable data. Never stored in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The owner does not exist (or is not visible to the token).
    NotFound,
    /// The forge answered unusably (5xx, not JSON, no `data`, unexpected errors).
    Unusable(String),
    /// Timeout or connection failure.
    Unavailable(String),
    /// The forge said the rate limit is spent; `retry_after_s` when it said how long.
    RateLimited {
        retry_after_s: Option<u64>,
        reset_at_ms: Option<u64>,
    },
    /// Nothing was sent: the caller's own budget of upstream-bound requests is spent.
    ClientLimited,
    /// The forge gave up on a page that was too costly (502, 504, or GraphQL's "Something went
    /// wrong … timeout"): the same request may succeed with fewer records per page.
    Overloaded(String),
}

/// One page of an owner's repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerPage {
    pub login: String,
    pub repos: Vec<Repo>,
    pub next_cursor: Option<String>,
    /// How many repositories the whole listing holds, when the forge said.
    pub total: Option<u64>,
    pub rate: Option<RateInfo>,
    /// Each part's `totalCount`, in `Part::all` order, when the page was asked with them and
    /// every one was readable.
    pub counts: Option<Vec<u64>>,
}

/// Which page of an owner's repositories to ask (DESIGN.md, "Partitioned builds").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAsk<'a> {
    /// Where the page starts: after it from the front, before it from the back.
    pub cursor: Option<&'a str>,
    /// Records asked, 1–100.
    pub size: u8,
    /// Only this part's repositories; `None`: the whole listing.
    pub part: Option<Part>,
    /// From the end of the listing (`last`/`before`); the page's records still come in name order.
    pub back: bool,
    /// With every part's `totalCount` beside it (a partitioned build's first request).
    pub counts: bool,
}

/// The answer to a batch: one slot per requested name, `None` for a missing repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchAnswer {
    pub repos: Vec<Option<Repo>>,
    pub rate: Option<RateInfo>,
}

/// Largest batch one upstream call answers.
pub const BATCH_MAX: usize = 100;

pub trait Forge {
    /// The call for one page of an owner's repositories, sent with `token`.
    fn owner_page_call(&self, owner: &Owner, ask: &PageAsk<'_>, token: Option<&Secret>)
        -> HttpCall;
    /// The reply to `ask`. A page asked from the back says where the page before it ends as
    /// `next_cursor`.
    ///
    /// # Errors
    /// `NotFound` when the owner does not exist, otherwise why the reply is unusable.
    fn parse_owner_page(
        &self,
        ask: &PageAsk<'_>,
        reply: &HttpReply,
    ) -> Result<OwnerPage, UpstreamFailure>;
    /// One call for up to `BATCH_MAX` names, sent with `token`.
    fn batch_call(&self, names: &[FullName], token: Option<&Secret>) -> HttpCall;
    /// # Errors
    /// Why the reply is unusable; a missing repository is a `None` slot, not an error.
    fn parse_batch(&self, count: usize, reply: &HttpReply) -> Result<BatchAnswer, UpstreamFailure>;
}

/// What a forge event says has changed: these repositories' entries and these owners' listings
/// must be dropped. Old names come before new ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invalidation {
    pub action: Option<String>,
    pub repos: Vec<FullName>,
    pub owners: Vec<Owner>,
    /// Owners whose App installation changed: their remembered installation goes too.
    pub installations: Vec<Owner>,
    /// Repository-level changes, for the owners' live listings (empty for owner-level events,
    /// which throw listings away instead).
    pub changes: Vec<(FullName, Fact)>,
}

/// What a repository-level change says of one record. Only narrowing facts are taken from a
/// payload; anything that could widen visibility is left to GitHub's answer (`Changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// Ask GitHub for the record again.
    Changed,
    /// It is private now (and is asked again).
    Private,
    /// It is gone from this owner under this name (deleted, renamed, transferred away).
    Removed,
}

impl Fact {
    /// The one letter the directories' wire and storage use.
    pub fn letter(self) -> char {
        match self {
            Fact::Changed => 'c',
            Fact::Private => 'p',
            Fact::Removed => 'x',
        }
    }

    pub fn from_letter(c: char) -> Option<Fact> {
        match c {
            'c' => Some(Fact::Changed),
            'p' => Some(Fact::Private),
            'x' => Some(Fact::Removed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateInfo;

    #[test]
    fn the_budget_reserve_is_a_percent_of_the_limit() {
        // (remaining, limit, reserve %) → below?
        for (remaining, limit, reserve, below) in [
            (999, Some(5_000), 20, true),
            (1_000, Some(5_000), 20, false),
            (0, Some(5_000), 0, false),
            (4_499, Some(5_000), 90, true),
            (10, None, 90, false),
            (u64::MAX, Some(u64::MAX), 90, false),
        ] {
            let rate = RateInfo {
                remaining,
                limit,
                reset_at_ms: 0,
            };
            assert_eq!(
                rate.below_reserve(reserve),
                below,
                "{remaining} {limit:?} {reserve}"
            );
        }
    }
}

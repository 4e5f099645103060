//! Which records of an owner's listing one view holds: filtered after visibility, ordered, and
//! cut to one page. Pure: the listing, the parameters and the caller in, records out.
//!
//! **Invariant**: a record the caller may not see never matches, and a redacted record matches
//! only on what it shows (`visibility`, and `q` on its name); sorted by a date it counts as
//! having none, so its place tells nothing about its state.
//!
//! **Precondition**: the listing is in name order (`cmp_names`), as every stored listing is
//! (`sort_by_name` when built, in-place inserts when patched): ties between equal dates keep it.

use super::params::{Params, Sort};
use crate::config::PrivatePolicy;
use crate::model::{Repo, Visibility};
use crate::view::{shown, Access, Shown};

/// One page of a view and how many records matched in all.
#[derive(Debug)]
pub struct Selection<'a> {
    pub total: u64,
    pub repos: Vec<&'a Repo>,
}

/// The records of `repos` this caller may see that match `p`, in `p`'s order, `p.page` only.
pub fn select<'a>(
    repos: &'a [Repo],
    p: &Params,
    access: &Access,
    policy: PrivatePolicy,
) -> Selection<'a> {
    let q = p.q.as_deref().map(str::as_bytes);
    // (order key, position in the listing): sorting the pairs orders by the key, then by name.
    let mut hits: Vec<(u64, usize)> = Vec::new();
    for (i, r) in repos.iter().enumerate() {
        let seen = shown(r, access, policy);
        if !matches(r, seen, p, q) {
            continue;
        }
        let key = match p.sort {
            Sort::Name => 0,
            Sort::PushedAt => date_key(r.pushed_at(), seen, p.descending),
            Sort::UpdatedAt => date_key(r.updated_at(), seen, p.descending),
        };
        hits.push((key, i));
    }
    match p.sort {
        Sort::Name if p.descending => hits.reverse(),
        Sort::Name => {}
        // Keys are unique with their positions, so an unstable sort is a total order.
        Sort::PushedAt | Sort::UpdatedAt => hits.sort_unstable(),
    }
    let total = hits.len() as u64;
    let (skip, take) = match p.per_page {
        Some(per_page) => {
            let per_page = per_page as usize;
            let skip = (p.page as usize).saturating_sub(1).saturating_mul(per_page);
            (skip, per_page)
        }
        None => (0, hits.len()),
    };
    let repos = hits
        .iter()
        .skip(skip)
        .take(take)
        .filter_map(|&(_, i)| repos.get(i))
        .collect();
    Selection { total, repos }
}

/// Whether `r`, as the caller sees it, passes every filter of `p`; `q` is ASCII-lowercased.
fn matches(r: &Repo, seen: Shown, p: &Params, q: Option<&[u8]>) -> bool {
    let full = match seen {
        Shown::Hidden => return false,
        // Its state is not the caller's to learn: a filter on it excludes the record.
        Shown::Redacted if p.reads_state() => return false,
        Shown::Redacted => false,
        Shown::Full => true,
    };
    if p.visibility != 0 && p.visibility & visibility_bit(r.visibility) == 0 {
        return false;
    }
    if let Some(q) = q {
        let described = full && r.description().is_some_and(|d| contains(d.as_bytes(), q));
        if !described && !contains(r.name().as_bytes(), q) {
            return false;
        }
    }
    if p.archived.is_some_and(|a| a != r.archived) || p.fork.is_some_and(|f| f != r.fork) {
        return false;
    }
    if p.ci != 0 && p.ci & ci_bit(r) == 0 {
        return false;
    }
    match (&p.language, r.language()) {
        (None, _) => true,
        (Some(want), Some(lang)) => lang.eq_ignore_ascii_case(want),
        (Some(_), None) => false,
    }
}

/// The record's bit among `params::VISIBILITIES`.
pub fn visibility_bit(v: Visibility) -> u8 {
    match v {
        Visibility::Public => 1,
        Visibility::Private => 2,
        Visibility::Internal => 4,
    }
}

/// The record's bit among `params::CI_STATES`: its state, or `none` for no CI or no state.
pub fn ci_bit(r: &Repo) -> u8 {
    use crate::model::CiState;
    match r.ci().and_then(|c| c.state) {
        Some(CiState::Success) => 1,
        Some(CiState::Failure) => 2,
        Some(CiState::Pending) => 4,
        Some(CiState::Error) => 8,
        Some(CiState::Expected) => 16,
        None => 32,
    }
}

/// Orders dates ascending or descending with no date last either way. A redacted record has
/// no date here.
fn date_key(at: Option<&str>, seen: Shown, descending: bool) -> u64 {
    let at = match seen {
        Shown::Full => at.and_then(crate::time::order_key),
        Shown::Redacted | Shown::Hidden => None,
    };
    match (at, descending) {
        (None, _) => u64::MAX,
        (Some(k), false) => k,
        // Keys are far below `u64::MAX`, so no date stays after every date.
        (Some(k), true) => u64::MAX - 1 - k,
    }
}

/// Whether `needle` (ASCII-lowercase) occurs in `hay`, ASCII letters compared without case.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    hay.windows(needle.len()).any(|w| {
        w.first().is_some_and(|b| b.to_ascii_lowercase() == first)
            && w.iter()
                .zip(needle)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

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
use memchr::memmem::Finder;

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
    let mut q = p.q.as_deref().map(Needle::new);
    // (order key, position in the listing): sorting the pairs orders by the key, then by name.
    let mut hits: Vec<(u64, usize)> = Vec::new();
    for (i, r) in repos.iter().enumerate() {
        let seen = shown(r, access, policy);
        if !matches(r, seen, p, q.as_mut()) {
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

/// Whether `r`, as the caller sees it, passes every filter of `p`; `q` is `p.q`'s searcher.
fn matches(r: &Repo, seen: Shown, p: &Params, q: Option<&mut Needle>) -> bool {
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
        // A redacted record is searched on its name only.
        let description = if full { r.description() } else { None };
        if !q.within(r.name(), description) {
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

/// `q` (ASCII-lowercased when parsed) and a buffer for the texts it is looked for in: found in
/// time linear in them (`memmem`: Two-Way, whatever the texts and `q`; a naive windowed search
/// took seconds over 20,000 descriptions of 1,000 `a`s for 99 `a`s and a `b`), the searcher
/// built once per view and the buffer reused for every record.
struct Needle<'q> {
    finder: Finder<'q>,
    lowered: Vec<u8>,
}

impl<'q> Needle<'q> {
    /// `q` must be ASCII-lowercase, as `params::parse` leaves it.
    fn new(q: &'q str) -> Self {
        Needle {
            finder: Finder::new(q.as_bytes()),
            lowered: Vec::new(),
        }
    }

    /// Whether `q` occurs in `name` or in `description` (never across the two), ASCII letters
    /// compared without case and every other byte (non-ASCII UTF-8 included) as it is.
    ///
    /// One search over both, 0xFF between them: no UTF-8 text holds that byte, `q` neither, so
    /// no match spans it. A text shorter than `q` is left out (not copied).
    fn within(&mut self, name: &str, description: Option<&str>) -> bool {
        let least = self.finder.needle().len();
        self.lowered.clear();
        if name.len() >= least {
            self.lowered.extend_from_slice(name.as_bytes());
            self.lowered.push(0xFF);
        }
        if let Some(description) = description.filter(|d| d.len() >= least) {
            self.lowered.extend_from_slice(description.as_bytes());
        }
        if self.lowered.len() < least {
            return false;
        }
        lower_ascii(&mut self.lowered);
        self.finder.find(&self.lowered).is_some()
    }
}

/// ASCII-lowercases `bytes` in place (as `make_ascii_lowercase`: other bytes unchanged), eight
/// at a time: at the crate's `opt-level = "z"` the loop is not vectorised, and byte by byte the
/// copy cost more than the search.
pub(super) fn lower_ascii(bytes: &mut [u8]) {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let mut chunks = bytes.chunks_exact_mut(8);
    for chunk in &mut chunks {
        // Always eight bytes; as an array, one load and one store (`copy_from_slice` was a call
        // to `memmove` per word).
        let Ok(word) = <&mut [u8; 8]>::try_from(chunk) else {
            continue;
        };
        let x = u64::from_ne_bytes(*word);
        // Per byte, on its low seven bits (so no carry crosses into the next byte): the sum with
        // 0x80 - b'A' has its high bit set from b'A' up, the sum with 0x7f - b'Z' above b'Z'.
        // Upper case: the first and not the second, and the byte itself ASCII (high bit clear).
        let low = x & !HIGH;
        let from_a = low + ONES * u64::from(0x80 - b'A');
        let past_z = low + ONES * u64::from(0x7f - b'Z');
        let upper = from_a & !past_z & !x & HIGH;
        // 0x80 >> 2 is 0x20, the bit between an upper-case ASCII letter and its lower case.
        *word = (x | (upper >> 2)).to_ne_bytes();
    }
    chunks.into_remainder().make_ascii_lowercase();
}

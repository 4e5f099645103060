//! `GET /v1/orgs/{owner}/summary`: counts over what one caller may see of an owner's listing,
//! and their JSON body, written by hand like the other views.
//!
//! **Invariant**: a hidden record counts nowhere; a redacted one counts in `total` and
//! `visibility` only (what its listing entry already shows), never in a count of its state.

use super::select::{ci_bit, visibility_bit};
use crate::config::PrivatePolicy;
use crate::json::Writer;
use crate::model::Repo;
use crate::names::cmp_names;
use crate::view::{shown, Access, Shown};

/// How many languages are named; the rest are summed in `other`.
pub const TOP_LANGUAGES: usize = 10;

/// The counts of one caller's summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary<'a> {
    pub total: u64,
    /// In `params::VISIBILITIES` order.
    pub visibility: [u64; 3],
    pub archived: u64,
    pub forks: u64,
    /// In `params::CI_STATES` order.
    pub ci: [u64; 6],
    /// The most common languages, most common first, ties by name.
    pub languages: Vec<(&'a str, u64)>,
    /// Records of every other language (records without one count in no language).
    pub other: u64,
    pub last_pushed_at: Option<&'a str>,
}

/// Counts `repos` as this caller may see them.
pub fn summarize<'a>(repos: &'a [Repo], access: &Access, policy: PrivatePolicy) -> Summary<'a> {
    let mut s = Summary::default();
    // A list, not a map: an owner has a few dozen languages at most, and a map of borrowed
    // names would be one more hash table compiled into the wasm.
    let mut languages: Vec<(&str, u64)> = Vec::new();
    let mut last_pushed: Option<(u64, &str)> = None;
    for r in repos {
        match shown(r, access, policy) {
            Shown::Hidden => continue,
            Shown::Redacted => {
                s.total += 1;
                add_bits(&mut s.visibility, visibility_bit(r.visibility));
                continue;
            }
            Shown::Full => {}
        }
        s.total += 1;
        add_bits(&mut s.visibility, visibility_bit(r.visibility));
        s.archived += u64::from(r.archived);
        s.forks += u64::from(r.fork);
        add_bits(&mut s.ci, ci_bit(r));
        if let Some(lang) = r.language() {
            count_language(&mut languages, lang);
        }
        if let Some(at) = r.pushed_at() {
            let key = crate::time::order_key(at).unwrap_or(0);
            if last_pushed.is_none_or(|(k, _)| key > k) {
                last_pushed = Some((key, at));
            }
        }
    }
    // The ten first by picking the first left ten times: no sort compiled in for ten names.
    while s.languages.len() < TOP_LANGUAGES {
        let first =
            (0..languages.len()).reduce(|best, i| match (languages.get(i), languages.get(best)) {
                (Some(a), Some(b)) if ranks_before(a, b) => i,
                _ => best,
            });
        let Some(i) = first else {
            break;
        };
        s.languages.push(languages.swap_remove(i));
    }
    s.other = languages.iter().map(|(_, n)| n).sum();
    s.last_pushed_at = last_pushed.map(|(_, at)| at);
    s
}

/// Counts one record of `lang`. A name found moves one place forward, so the common languages
/// are soon found first.
fn count_language<'a>(languages: &mut Vec<(&'a str, u64)>, lang: &'a str) {
    match languages.iter().position(|(l, _)| *l == lang) {
        Some(i) => {
            if let Some((_, n)) = languages.get_mut(i) {
                *n += 1;
            }
            if i > 0 {
                languages.swap(i - 1, i);
            }
        }
        None => languages.push((lang, 1)),
    }
}

/// More records first; ties by name (case-insensitively, then exactly).
fn ranks_before(a: &(&str, u64), b: &(&str, u64)) -> bool {
    let by_name = cmp_names(a.0, b.0).then_with(|| a.0.cmp(b.0));
    a.1 > b.1 || (a.1 == b.1 && by_name.is_lt())
}

/// Adds one to the count whose bit is set in `bit`.
fn add_bits(counts: &mut [u64], bit: u8) {
    for (i, c) in counts.iter_mut().enumerate() {
        if bit & (1 << i) != 0 {
            *c += 1;
        }
    }
}

impl Summary<'_> {
    /// `{"org","total","visibility":{…},"archived","forks","ci":{…},"languages":{…,"other"},
    /// "last_pushed_at","fetched_at","revalidated_at"}`.
    pub fn to_json(&self, org: &str, fetched_at: &str, revalidated_at: Option<&str>) -> String {
        let mut out = Writer::with_capacity(512);
        out.raw("{\"org\":");
        out.str(org);
        out.raw(",\"total\":");
        out.uint(self.total);
        out.raw(",\"visibility\":");
        counts(&mut out, &super::params::VISIBILITIES, &self.visibility);
        out.raw(",\"archived\":");
        out.uint(self.archived);
        out.raw(",\"forks\":");
        out.uint(self.forks);
        out.raw(",\"ci\":");
        counts(&mut out, &super::params::CI_STATES, &self.ci);
        out.raw(",\"languages\":{");
        for (name, n) in &self.languages {
            out.str(name);
            out.byte(b':');
            out.uint(*n);
            out.byte(b',');
        }
        out.raw("\"other\":");
        out.uint(self.other);
        out.raw("},\"last_pushed_at\":");
        out.opt_str(self.last_pushed_at);
        out.raw(",\"fetched_at\":");
        out.str(fetched_at);
        out.raw(",\"revalidated_at\":");
        out.opt_str(revalidated_at);
        out.byte(b'}');
        out.finish()
    }
}

/// `{"name":n,…}` with `names` and `values` side by side.
fn counts(out: &mut Writer, names: &[&str], values: &[u64]) {
    out.byte(b'{');
    for (i, (name, n)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        out.str(name);
        out.byte(b':');
        out.uint(*n);
    }
    out.byte(b'}');
}

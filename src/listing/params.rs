//! The listing parameters of `GET /v1/orgs/{owner}/repos` (filters, order, page), parsed and
//! checked from the query before any I/O, and written back in one normal form: the memory key
//! of a rendered view and the `Link` URLs, so two spellings of one view are one view.

use crate::error::ApiError;
use crate::fields::FieldSet;
use crate::json::Writer;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Every listing parameter, in the order the normal form writes them.
pub const NAMES: [&str; 10] = [
    "visibility",
    "archived",
    "fork",
    "ci",
    "language",
    "q",
    "sort",
    "direction",
    "per_page",
    "page",
];

/// `visibility` values, in the order of their bits.
pub const VISIBILITIES: [&str; 3] = ["public", "private", "internal"];
/// `ci` values, in the order of their bits; `none`: no CI, or CI without a state.
pub const CI_STATES: [&str; 6] = ["success", "failure", "pending", "error", "expected", "none"];
pub const MAX_PER_PAGE: u64 = 1000;
/// The page size of `page` given without `per_page` (DESIGN.md: as if `per_page=100` were given).
pub const DEFAULT_PER_PAGE: u32 = 100;
/// Highest `page` (pages are numbered in a `u32`; the API description says so).
pub const MAX_PAGE: u64 = u32::MAX as u64;
/// Longest `q`, in characters.
pub const MAX_Q_CHARS: usize = 100;
/// Longest `language`, in characters: a bound the API description can state (GitHub's language
/// names are far shorter), so the query of a described request stays under the 8 KiB limit.
pub const MAX_LANGUAGE_CHARS: usize = 100;

// One message per parameter, whatever was wrong with it (unknown value, repeated, empty, out of
// range): each names the parameter and what it takes.
const VISIBILITY_HELP: &str =
    "visibility takes one comma-separated list of: public, private, internal";
const ARCHIVED_HELP: &str = "archived takes one value: true or false";
const FORK_HELP: &str = "fork takes one value: true or false";
const CI_HELP: &str =
    "ci takes one comma-separated list of: success, failure, pending, error, expected, none";
const LANGUAGE_HELP: &str =
    "language takes one language name of 1 to 100 characters, matched exactly (case-insensitive)";
const Q_HELP: &str =
    "q takes one text of 1 to 100 characters, found case-insensitively in names and descriptions";
const SORT_HELP: &str = "sort takes one value: name, pushed_at or updated_at";
const DIRECTION_HELP: &str = "direction takes one value: asc or desc";
const PER_PAGE_HELP: &str = "per_page takes one whole number from 1 to 1000";
const PAGE_HELP: &str =
    "page takes one whole number from 1 to 4294967295 (pages of per_page, or of 100 without it)";

/// The order a view lists its records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    PushedAt,
    UpdatedAt,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::PushedAt => "pushed_at",
            Sort::UpdatedAt => "updated_at",
        }
    }

    /// Names ascend by default; dates descend (the latest first).
    pub fn descending_by_default(self) -> bool {
        self != Sort::Name
    }
}

/// One view's parameters, normalised: sets as bits, texts ASCII-lowercased (they are matched
/// ASCII-case-insensitively, so the lowercase form matches exactly what the given one does),
/// defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Bits over `VISIBILITIES`; 0: any.
    pub visibility: u8,
    pub archived: Option<bool>,
    pub fork: Option<bool>,
    /// Bits over `CI_STATES`; 0: any.
    pub ci: u8,
    pub language: Option<String>,
    pub q: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    /// `None`: one page holding every match (no `page`, `per_page` or `Link`); `page` alone
    /// sets it to `DEFAULT_PER_PAGE`.
    pub per_page: Option<u32>,
    pub page: u32,
}

/// The listing parameters of a query, or `None` when it names none of them (the listing is then
/// answered exactly as without this feature). Other parameters are not looked at.
///
/// # Errors
/// `InvalidParameter` naming the first parameter that is repeated, empty, or not one of its
/// allowed values.
pub fn parse(pairs: &[(String, String)]) -> Result<Option<Params>, ApiError> {
    if !pairs.iter().any(|(k, _)| NAMES.contains(&k.as_str())) {
        return Ok(None);
    }
    let visibility = match one(pairs, "visibility", VISIBILITY_HELP)? {
        Some(v) => bits(v, &VISIBILITIES, VISIBILITY_HELP)?,
        None => 0,
    };
    let archived = one(pairs, "archived", ARCHIVED_HELP)?
        .map(|v| flag(v, ARCHIVED_HELP))
        .transpose()?;
    let fork = one(pairs, "fork", FORK_HELP)?
        .map(|v| flag(v, FORK_HELP))
        .transpose()?;
    let ci = match one(pairs, "ci", CI_HELP)? {
        Some(v) => bits(v, &CI_STATES, CI_HELP)?,
        None => 0,
    };
    let language = one(pairs, "language", LANGUAGE_HELP)?
        .map(|v| text(v, MAX_LANGUAGE_CHARS, LANGUAGE_HELP))
        .transpose()?;
    let q = one(pairs, "q", Q_HELP)?
        .map(|v| text(v, MAX_Q_CHARS, Q_HELP))
        .transpose()?;
    let sort = match one(pairs, "sort", SORT_HELP)? {
        None | Some("name") => Sort::Name,
        Some("pushed_at") => Sort::PushedAt,
        Some("updated_at") => Sort::UpdatedAt,
        Some(_) => return Err(invalid(SORT_HELP)),
    };
    let descending = match one(pairs, "direction", DIRECTION_HELP)? {
        None => sort.descending_by_default(),
        Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid(DIRECTION_HELP)),
    };
    let per_page = one(pairs, "per_page", PER_PAGE_HELP)?
        .map(|v| number(v, MAX_PER_PAGE, PER_PAGE_HELP))
        .transpose()?;
    let page = one(pairs, "page", PAGE_HELP)?
        .map(|v| number(v, MAX_PAGE, PAGE_HELP))
        .transpose()?;
    // `page` alone pages by 100: the view is exactly the one `per_page=100` would ask for (the
    // same body, `Link`, normal form and memory key).
    let per_page = match (per_page, page) {
        (None, Some(_)) => Some(DEFAULT_PER_PAGE),
        (per_page, _) => per_page,
    };
    let page = page.unwrap_or(1);
    Ok(Some(Params {
        visibility,
        archived,
        fork,
        ci,
        language,
        q,
        sort,
        descending,
        per_page,
        page,
    }))
}

/// The summary counts everything the caller may see: it takes neither `fields` nor a listing
/// parameter, and says so rather than answer counts that look filtered and are not.
///
/// # Errors
/// `InvalidParameter` naming the first such parameter given.
pub fn refuse_for_summary(pairs: &[(String, String)]) -> Result<(), ApiError> {
    match pairs
        .iter()
        .find(|(k, _)| k == "fields" || NAMES.contains(&k.as_str()))
    {
        Some((k, _)) => Err(ApiError::InvalidParameter(format!(
            "the summary takes no {k} parameter: it counts every repository the caller may see"
        ))),
        None => Ok(()),
    }
}

fn invalid(help: &str) -> ApiError {
    ApiError::InvalidParameter(help.into())
}

/// The one non-empty value of `name`, if given.
fn one<'a>(
    pairs: &'a [(String, String)],
    name: &str,
    help: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut found = None;
    for (k, v) in pairs {
        if k == name {
            if found.is_some() || v.is_empty() {
                return Err(invalid(help));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

/// A comma-separated list of `allowed` values as bits; repeats collapse, empty elements do not
/// pass.
fn bits(list: &str, allowed: &[&str], help: &str) -> Result<u8, ApiError> {
    let mut out = 0u8;
    for part in list.split(',') {
        let i = allowed
            .iter()
            .position(|a| *a == part)
            .ok_or_else(|| invalid(help))?;
        out |= 1 << i;
    }
    Ok(out)
}

/// A text of at most `max` characters (not bytes), ASCII-lowercased.
fn text(v: &str, max: usize, help: &str) -> Result<String, ApiError> {
    if v.chars().count() > max {
        return Err(invalid(help));
    }
    Ok(v.to_ascii_lowercase())
}

fn flag(v: &str, help: &str) -> Result<bool, ApiError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(help)),
    }
}

/// Decimal digits only (no sign, no space), 1 to `max`.
fn number(v: &str, max: u64, help: &str) -> Result<u32, ApiError> {
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(help));
    }
    // Leading zeros are fine; more digits than any allowed value has are not parsed.
    let n: u64 = v.trim_start_matches('0').parse().unwrap_or(u64::MAX);
    if n == 0 || n > max {
        return Err(invalid(help));
    }
    u32::try_from(n).map_err(|_| invalid(help))
}

impl Params {
    /// Whether a filter reads a record's state, which a redacted record does not show.
    pub fn reads_state(&self) -> bool {
        self.archived.is_some() || self.fork.is_some() || self.ci != 0 || self.language.is_some()
    }

    /// The normal form as a query string: `fields` when not the default, then each parameter
    /// not at its default, in `NAMES` order, sets in their own order, texts percent-encoded;
    /// `per_page` and `page` always together. Two spellings of one view write the same text.
    pub fn write_query(&self, fields: FieldSet, page: u32, out: &mut Writer) {
        let mut sep = Sep(false);
        if fields != FieldSet::default_set() {
            sep.next(out, "fields=");
            let mut first = true;
            for f in fields.iter() {
                if !first {
                    out.byte(b',');
                }
                first = false;
                out.raw(f.name());
            }
        }
        write_bits(out, &mut sep, "visibility=", self.visibility, &VISIBILITIES);
        for (key, value) in [("archived=", self.archived), ("fork=", self.fork)] {
            if let Some(v) = value {
                sep.next(out, key);
                out.raw(if v { "true" } else { "false" });
            }
        }
        write_bits(out, &mut sep, "ci=", self.ci, &CI_STATES);
        for (key, value) in [("language=", &self.language), ("q=", &self.q)] {
            if let Some(v) = value {
                sep.next(out, key);
                encode(v, out);
            }
        }
        if self.sort != Sort::Name {
            sep.next(out, "sort=");
            out.raw(self.sort.as_str());
        }
        if self.descending != self.sort.descending_by_default() {
            sep.next(out, "direction=");
            out.raw(if self.descending { "desc" } else { "asc" });
        }
        if let Some(per_page) = self.per_page {
            sep.next(out, "per_page=");
            out.uint(u64::from(per_page));
            sep.next(out, "page=");
            out.uint(u64::from(page));
        }
    }

    /// The view's part of a memory key: the normal form after `?` (present even when every
    /// parameter is at its default, since the body then still carries `total`).
    pub fn key(&self) -> String {
        let mut out = Writer::with_capacity(64);
        out.byte(b'?');
        // `fields` have their own place in the key.
        self.write_query(FieldSet::default_set(), self.page, &mut out);
        out.finish()
    }

    /// The `Link` header of a paged view (`None` without `per_page`): `first`, `prev` (not on
    /// page 1), `next` (not on or past the last page) and `last`, as relative URLs under
    /// `/v1/orgs/{owner}/repos` keeping the other parameters, like GitHub's REST API. Past the
    /// last page, `prev` leads back to the last page that holds records.
    pub fn link(&self, owner: &str, fields: FieldSet, total: u64) -> Option<String> {
        let per_page = u64::from(self.per_page?);
        let last = total.div_ceil(per_page).clamp(1, u64::from(u32::MAX));
        let last = u32::try_from(last).unwrap_or(u32::MAX);
        let page = self.page;
        let mut rels: Vec<(u32, &str)> = vec![(1, "first")];
        if page > 1 {
            rels.push(((page - 1).min(last), "prev"));
        }
        if page < last {
            rels.push((page + 1, "next"));
        }
        rels.push((last, "last"));
        let mut out = Writer::with_capacity(128 * rels.len());
        for (i, (to, rel)) in rels.into_iter().enumerate() {
            if i > 0 {
                out.raw(", ");
            }
            out.raw("</v1/orgs/");
            out.raw(owner);
            out.raw("/repos?");
            self.write_query(fields, to, &mut out);
            out.raw(">; rel=\"");
            out.raw(rel);
            out.byte(b'"');
        }
        Some(out.finish())
    }
}

/// Writes `&` before every parameter but the first.
struct Sep(bool);

impl Sep {
    fn next(&mut self, out: &mut Writer, key: &str) {
        if self.0 {
            out.byte(b'&');
        }
        self.0 = true;
        out.raw(key);
    }
}

fn write_bits(out: &mut Writer, sep: &mut Sep, key: &str, bits: u8, names: &[&str]) {
    if bits == 0 {
        return;
    }
    sep.next(out, key);
    let mut first = true;
    for (i, name) in names.iter().enumerate() {
        if bits & (1 << i) != 0 {
            if !first {
                out.byte(b',');
            }
            first = false;
            out.raw(name);
        }
    }
}

/// RFC 3986's unreserved characters: everything else is percent-encoded (a space is `%20`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes all but RFC 3986's unreserved characters (a space is `%20`, not `+`).
fn encode(s: &str, out: &mut Writer) {
    for piece in utf8_percent_encode(s, UNRESERVED) {
        out.raw(piece);
    }
}

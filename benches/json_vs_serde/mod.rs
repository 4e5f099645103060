//! JSON: the hand-written hot paths (`src/json` and the code beside their types) against serde's
//! derives doing the same work on the same fixtures: a GitHub owner page of 100 nodes read into
//! `Repo`s, the stored envelope of an owner listing read and written (100 and 10,000 records), a
//! listing view of 100 records written. Each serde twin reads or writes exactly the text the hand
//! path does, and `check` asserts that once before anything is timed.
//!
//! The serde side is written as well as serde allows, so the ratio is not flattered: strings are
//! borrowed from the text where they have no escapes (`Cow` with `#[serde(borrow)]`), and records
//! are built as they are read (no intermediate `Vec` of structs); only the derives differ.
//!
//! Timing: the two take turns (`interleaved`), a batch of calls each, the order swapped every
//! round, so a busy moment of the machine lands on both; the ratio is the median of the rounds'.

use forgelens::cache::entry::{self, Entry};
use forgelens::config::PrivatePolicy;
use forgelens::fields::{Field, FieldSet};
use forgelens::forge::github::parse;
use forgelens::forge::{HttpReply, OwnerPage, RateInfo, UpstreamFailure};
use forgelens::model::{Changed, Ci, CiState, OwnerListing, Repo, RepoFields, Visibility};
use forgelens::time::{format_rfc3339, is_rfc3339, parse_rfc3339};
use forgelens::view::{project, shown, Access, OrgBody, Shown};
use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::hint::black_box;
use std::time::Instant;

/// A string borrowed from the text when it has no escapes; in an `Option` too (serde borrows a
/// `Cow` only as a field of its own, so the `Option`'s `Cow` sits in this).
#[derive(Deserialize, Serialize, Clone, PartialEq, Eq, Debug)]
#[serde(transparent)]
struct S<'a>(#[serde(borrow)] Cow<'a, str>);

impl S<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

fn opt<'b>(s: &'b Option<S<'_>>) -> Option<&'b str> {
    s.as_ref().map(S::as_str)
}

// --- (a) a GitHub GraphQL owner page ------------------------------------------------------

#[derive(Deserialize)]
struct PageReply<'a> {
    #[serde(borrow)]
    data: Option<OwnerData<'a>>,
    #[serde(default, borrow)]
    errors: Vec<GqlError<'a>>,
}

#[derive(Deserialize)]
struct GqlError<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<S<'a>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    message: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerData<'a> {
    #[serde(borrow)]
    rate_limit: Option<RateLimit<'a>>,
    #[serde(borrow)]
    repository_owner: Option<OwnerNode<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimit<'a> {
    remaining: Option<u64>,
    limit: Option<u64>,
    #[serde(borrow)]
    reset_at: Option<S<'a>>,
}

#[derive(Deserialize)]
struct OwnerNode<'a> {
    #[serde(borrow)]
    login: Cow<'a, str>,
    #[serde(borrow)]
    repositories: Connection<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection<'a> {
    nodes: Vec<Option<NodeRepo>>,
    #[serde(borrow)]
    page_info: PageInfo<'a>,
    #[serde(default)]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo<'a> {
    has_next_page: bool,
    #[serde(borrow)]
    end_cursor: Option<S<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepoNode<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    owner: Login<'a>,
    #[serde(borrow)]
    name_with_owner: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    description: Option<S<'a>>,
    visibility: Option<GhVisibility>,
    is_private: Option<bool>,
    is_archived: bool,
    is_disabled: bool,
    is_fork: bool,
    #[serde(borrow)]
    pushed_at: Option<S<'a>>,
    #[serde(borrow)]
    updated_at: Option<S<'a>>,
    #[serde(borrow)]
    primary_language: Option<Named<'a>>,
    #[serde(borrow)]
    default_branch_ref: Option<BranchRef<'a>>,
}

#[derive(Deserialize)]
struct Login<'a> {
    #[serde(borrow)]
    login: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct BranchRef<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    target: Option<Target<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target<'a> {
    #[serde(borrow)]
    oid: Option<S<'a>>,
    status_check_rollup: Option<Rollup>,
}

#[derive(Deserialize)]
struct Rollup {
    state: Option<GhState>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
enum GhVisibility {
    Public,
    Private,
    Internal,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
enum GhState {
    Success,
    Failure,
    Pending,
    Error,
    Expected,
    #[serde(other)]
    Unknown,
}

/// A node read straight into the model, as the hand parser does (no `Vec` of nodes kept).
struct NodeRepo(Repo);

impl<'de> Deserialize<'de> for NodeRepo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RepoNode::deserialize(d).map(|n| NodeRepo(n.into_repo()))
    }
}

/// `node::timestamp`: a `…Z` text is checked and kept, anything else valid normalised.
fn timestamp(s: Option<&str>) -> Option<Cow<'_, str>> {
    let s = s?;
    if s.ends_with('Z') {
        return is_rfc3339(s.as_bytes()).then_some(Cow::Borrowed(s));
    }
    parse_rfc3339(s).map(|ms| Cow::Owned(format_rfc3339(ms)))
}

impl RepoNode<'_> {
    fn into_repo(self) -> Repo {
        let visibility = match (self.visibility, self.is_private) {
            (Some(GhVisibility::Public), Some(false) | None) => Visibility::Public,
            (Some(GhVisibility::Internal), _) => Visibility::Internal,
            _ => Visibility::Private,
        };
        let (default_branch, target) = match &self.default_branch_ref {
            Some(b) => (Some(&*b.name), b.target.as_ref()),
            None => (None, None),
        };
        let ci = target.and_then(|t| {
            let state = t
                .status_check_rollup
                .as_ref()
                .and_then(|r| r.state)
                .and_then(|s| match s {
                    GhState::Success => Some(CiState::Success),
                    GhState::Failure => Some(CiState::Failure),
                    GhState::Pending => Some(CiState::Pending),
                    GhState::Error => Some(CiState::Error),
                    GhState::Expected => Some(CiState::Expected),
                    GhState::Unknown => None,
                });
            Some(Ci {
                state,
                sha: opt(&t.oid)?,
            })
        });
        let pushed_at = timestamp(opt(&self.pushed_at));
        let updated_at = timestamp(opt(&self.updated_at));
        Repo::new(RepoFields {
            name: &self.name,
            owner: &self.owner.login,
            full_name: &self.name_with_owner,
            url: &self.url,
            description: opt(&self.description),
            visibility,
            archived: self.is_archived,
            disabled: self.is_disabled,
            fork: self.is_fork,
            default_branch,
            pushed_at: pushed_at.as_deref(),
            updated_at: updated_at.as_deref(),
            language: self.primary_language.as_ref().map(|l| &*l.name),
            ci,
        })
    }
}

/// `parse::owner_page` with serde: the same HTTP checks' outcome for a 200, the same error rule
/// (anything but `NOT_FOUND` spoils the page), the same `OwnerPage`.
fn serde_owner_page(reply: &HttpReply) -> Result<OwnerPage, UpstreamFailure> {
    let unusable = |m: String| UpstreamFailure::Unusable(m);
    if reply.status != 200 {
        return Err(unusable(format!("HTTP {}", reply.status)));
    }
    let text = std::str::from_utf8(&reply.body).map_err(|e| unusable(e.to_string()))?;
    let parsed: PageReply<'_> = serde_json::from_str(text).map_err(|e| unusable(e.to_string()))?;
    if let Some(e) = parsed
        .errors
        .iter()
        .find(|e| opt(&e.kind) != Some("NOT_FOUND"))
    {
        return Err(unusable(format!(
            "GraphQL error of type {:?}",
            opt(&e.kind)
        )));
    }
    let data = parsed.data.ok_or_else(|| unusable("no data".into()))?;
    let rate = data.rate_limit.and_then(|r| {
        Some(RateInfo {
            remaining: r.remaining?,
            limit: r.limit,
            reset_at_ms: parse_rfc3339(opt(&r.reset_at)?)?,
        })
    });
    let owner = data.repository_owner.ok_or(UpstreamFailure::NotFound)?;
    let conn = owner.repositories;
    let next_cursor = match (conn.page_info.has_next_page, conn.page_info.end_cursor) {
        (false, _) => None,
        (true, Some(c)) if !c.0.is_empty() => Some(c.0.into_owned()),
        (true, _) => return Err(unusable("hasNextPage without endCursor".into())),
    };
    Ok(OwnerPage {
        login: owner.login.into_owned(),
        repos: conn.nodes.into_iter().flatten().map(|n| n.0).collect(),
        next_cursor,
        total: conn.total_count,
        rate,
        counts: None,
    })
}

// --- (b) the stored envelope of an owner listing -------------------------------------------

/// A stored record, both ways: the stored form's keys in `RepoFields` order.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    owner: Cow<'a, str>,
    #[serde(borrow)]
    full_name: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    description: Option<S<'a>>,
    visibility: StoredVisibility,
    archived: bool,
    disabled: bool,
    fork: bool,
    #[serde(borrow)]
    default_branch: Option<S<'a>>,
    #[serde(borrow)]
    pushed_at: Option<S<'a>>,
    #[serde(borrow)]
    updated_at: Option<S<'a>>,
    #[serde(borrow)]
    language: Option<S<'a>>,
    #[serde(borrow)]
    ci: Option<StoredCi<'a>>,
}

#[derive(Serialize, Deserialize)]
struct StoredCi<'a> {
    state: Option<StoredState>,
    #[serde(borrow)]
    sha: Cow<'a, str>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StoredVisibility {
    Public,
    Private,
    Internal,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StoredState {
    Success,
    Failure,
    Pending,
    Error,
    Expected,
}

fn s(text: Option<&str>) -> Option<S<'_>> {
    text.map(|t| S(Cow::Borrowed(t)))
}

impl<'a> Stored<'a> {
    fn of(r: &'a Repo) -> Stored<'a> {
        let f = r.fields();
        Stored {
            name: Cow::Borrowed(f.name),
            owner: Cow::Borrowed(f.owner),
            full_name: Cow::Borrowed(f.full_name),
            url: Cow::Borrowed(f.url),
            description: s(f.description),
            visibility: match f.visibility {
                Visibility::Public => StoredVisibility::Public,
                Visibility::Private => StoredVisibility::Private,
                Visibility::Internal => StoredVisibility::Internal,
            },
            archived: f.archived,
            disabled: f.disabled,
            fork: f.fork,
            default_branch: s(f.default_branch),
            pushed_at: s(f.pushed_at),
            updated_at: s(f.updated_at),
            language: s(f.language),
            ci: f.ci.map(|c| StoredCi {
                state: c.state.map(|s| match s {
                    CiState::Success => StoredState::Success,
                    CiState::Failure => StoredState::Failure,
                    CiState::Pending => StoredState::Pending,
                    CiState::Error => StoredState::Error,
                    CiState::Expected => StoredState::Expected,
                }),
                sha: Cow::Borrowed(c.sha),
            }),
        }
    }

    fn repo(&self) -> Repo {
        Repo::new(RepoFields {
            name: &self.name,
            owner: &self.owner,
            full_name: &self.full_name,
            url: &self.url,
            description: opt(&self.description),
            visibility: match self.visibility {
                StoredVisibility::Public => Visibility::Public,
                StoredVisibility::Private => Visibility::Private,
                StoredVisibility::Internal => Visibility::Internal,
            },
            archived: self.archived,
            disabled: self.disabled,
            fork: self.fork,
            default_branch: opt(&self.default_branch),
            pushed_at: opt(&self.pushed_at),
            updated_at: opt(&self.updated_at),
            language: opt(&self.language),
            ci: self.ci.as_ref().map(|c| Ci {
                state: c.state.map(|s| match s {
                    StoredState::Success => CiState::Success,
                    StoredState::Failure => CiState::Failure,
                    StoredState::Pending => CiState::Pending,
                    StoredState::Error => CiState::Error,
                    StoredState::Expected => CiState::Expected,
                }),
                sha: &c.sha,
            }),
        })
    }
}

/// A stored record read straight into a `Repo`.
struct StoredRepo(Repo);

impl<'de> Deserialize<'de> for StoredRepo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Stored::deserialize(d).map(|s| StoredRepo(s.repo()))
    }
}

/// The records written one by one from the `Repo`s (no `Vec` of `Stored` built first).
struct StoredRepos<'a>(&'a [Repo]);

impl Serialize for StoredRepos<'_> {
    fn serialize<Z: Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        z.collect_seq(self.0.iter().map(Stored::of))
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    fetched_at: String,
    data: Option<ListingOut<'a>>,
}

#[derive(Serialize)]
struct ListingOut<'a> {
    login: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revalidated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_at: Option<[Option<u64>; 3]>,
    repos: StoredRepos<'a>,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    #[serde(borrow)]
    fetched_at: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<ListingIn<'a>>,
}

#[derive(Deserialize)]
struct ListingIn<'a> {
    login: String,
    #[serde(default, borrow)]
    revalidated_at: Option<S<'a>>,
    #[serde(default)]
    changed_at: Option<[Option<u64>; 3]>,
    repos: Vec<StoredRepo>,
}

/// `entry::encode` with serde.
fn serde_encode(fetched_at_ms: u64, listing: &OwnerListing) -> String {
    let c = listing.changed;
    let envelope = EnvelopeOut {
        fetched_at: format_rfc3339(fetched_at_ms),
        data: Some(ListingOut {
            login: &listing.login,
            revalidated_at: listing.revalidated_at_ms.map(format_rfc3339),
            changed_at: (c != Changed::default()).then_some([c.all, c.public, c.redacted]),
            repos: StoredRepos(&listing.repos),
        }),
    };
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// `entry::decode` with serde.
fn serde_decode(text: &str) -> Option<Entry<OwnerListing>> {
    let e: EnvelopeIn<'_> = serde_json::from_str(text).ok()?;
    let data = match e.data {
        None => None,
        Some(l) => {
            let revalidated_at_ms = match &l.revalidated_at {
                Some(at) => Some(parse_rfc3339(at.as_str())?),
                None => None,
            };
            let [all, public, redacted] = l.changed_at.unwrap_or_default();
            Some(OwnerListing {
                login: l.login,
                repos: l.repos.into_iter().map(|r| r.0).collect(),
                revalidated_at_ms,
                changed: Changed {
                    all,
                    public,
                    redacted,
                },
            })
        }
    };
    Some(Entry {
        fetched_at_ms: parse_rfc3339(&e.fetched_at)?,
        data,
    })
}

// --- (c) a rendered listing view ----------------------------------------------------------

/// `view::RepoView` with serde: the chosen fields in allow-list order, as a map (a derive cannot
/// leave out fields chosen at run time).
struct ViewOut<'a> {
    repo: &'a Repo,
    fields: FieldSet,
}

/// `view::project` for the serde twin (`RepoView`'s fields are private).
fn project_serde<'a>(
    repo: &'a Repo,
    fields: FieldSet,
    access: &Access,
    policy: PrivatePolicy,
) -> Option<ViewOut<'a>> {
    match shown(repo, access, policy) {
        Shown::Full => Some(ViewOut { repo, fields }),
        Shown::Hidden => None,
        Shown::Redacted => {
            let keep = FieldSet::parse("name,full_name,visibility").unwrap_or(fields);
            let always = FieldSet::parse("name,full_name").unwrap_or(fields);
            Some(ViewOut {
                repo,
                fields: fields.intersect(keep).union(always),
            })
        }
    }
}

#[derive(Serialize)]
struct CiOut<'a> {
    state: Option<&'static str>,
    sha: &'a str,
}

impl Serialize for ViewOut<'_> {
    fn serialize<Z: Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        let r = self.repo;
        let mut m = z.serialize_map(None)?;
        for field in self.fields.iter() {
            let key = field.name();
            match field {
                Field::Name => m.serialize_entry(key, r.name())?,
                Field::Owner => m.serialize_entry(key, r.owner())?,
                Field::FullName => m.serialize_entry(key, r.full_name())?,
                Field::Url => m.serialize_entry(key, r.url())?,
                Field::Description => m.serialize_entry(key, &r.description())?,
                Field::Visibility => m.serialize_entry(key, r.visibility.as_str())?,
                Field::Private => m.serialize_entry(key, &(r.visibility != Visibility::Public))?,
                Field::Archived => m.serialize_entry(key, &r.archived)?,
                Field::Disabled => m.serialize_entry(key, &r.disabled)?,
                Field::Fork => m.serialize_entry(key, &r.fork)?,
                Field::DefaultBranch => m.serialize_entry(key, &r.default_branch())?,
                Field::PushedAt => m.serialize_entry(key, &r.pushed_at())?,
                Field::UpdatedAt => m.serialize_entry(key, &r.updated_at())?,
                Field::Language => m.serialize_entry(key, &r.language())?,
                Field::Ci => m.serialize_entry(
                    key,
                    &r.ci().map(|c| CiOut {
                        state: c.state.map(CiState::as_str),
                        sha: c.sha,
                    }),
                )?,
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct OrgBodyOut<'a> {
    org: &'a str,
    repos: Vec<ViewOut<'a>>,
    fetched_at: String,
    revalidated_at: Option<String>,
}

const FETCHED_AT: &str = "2026-11-23T22:00:00.000Z";

fn hand_view(listing: &OwnerListing, fields: FieldSet) -> String {
    let body = OrgBody {
        org: &listing.login,
        repos: listing
            .repos
            .iter()
            .filter_map(|r| project(r, fields, &Access::Anonymous, PrivatePolicy::Redact))
            .collect(),
        fetched_at: FETCHED_AT.into(),
        revalidated_at: None,
        counts: None,
    };
    body.to_json()
}

fn serde_view(listing: &OwnerListing, fields: FieldSet) -> String {
    let body = OrgBodyOut {
        org: &listing.login,
        repos: listing
            .repos
            .iter()
            .filter_map(|r| project_serde(r, fields, &Access::Anonymous, PrivatePolicy::Redact))
            .collect(),
        fetched_at: FETCHED_AT.into(),
        revalidated_at: None,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

// --- fixtures, checks, timing ---------------------------------------------------------------

/// A listing of `n` records from the bench's GitHub pages, with a revalidation time and the
/// per-scope change times set, so the envelope carries every field it can.
fn listing(replies: &[HttpReply]) -> OwnerListing {
    let mut repos = Vec::new();
    for reply in replies {
        repos.extend(parse::owner_page(reply).unwrap().repos);
    }
    OwnerListing {
        login: "bench-org".into(),
        repos,
        revalidated_at_ms: Some(1_764_000_000_123),
        changed: Changed {
            all: Some(1_764_000_000_123),
            public: None,
            redacted: Some(1_763_000_000_000),
        },
    }
}

/// The serde twins do the hand paths' work: equal values read, equal texts written.
fn check(page: &HttpReply, small: &OwnerListing, big: &OwnerListing, views: &[FieldSet]) {
    assert_eq!(
        serde_owner_page(page).unwrap(),
        parse::owner_page(page).unwrap(),
        "page"
    );
    for l in [small, big] {
        let text = entry::encode(1_700_000_000_000, Some(l));
        assert_eq!(serde_encode(1_700_000_000_000, l), text, "envelope encode");
        let hand: Entry<OwnerListing> = entry::decode(&text).unwrap();
        assert_eq!(serde_decode(&text).unwrap(), hand, "envelope decode");
        assert_eq!(hand.data.as_ref(), Some(l));
    }
    for &fields in views {
        assert_eq!(serde_view(small, fields), hand_view(small, fields), "view");
    }
    // The serde side borrows what it can: a string without escapes is not copied.
    let borrowed: Stored<'_> = serde_json::from_str(
        r#"{"name":"n","owner":"o","full_name":"o/n","url":"u","description":"d","visibility":"public",
        "archived":false,"disabled":false,"fork":false,"default_branch":null,"pushed_at":null,
        "updated_at":null,"language":null,"ci":null}"#,
    )
    .unwrap();
    assert!(matches!(borrowed.name, Cow::Borrowed(_)));
    assert!(matches!(borrowed.description, Some(S(Cow::Borrowed(_)))));
}

/// One row of the table: medians over the rounds, µs per call.
pub struct Row {
    pub path: &'static str,
    pub size: String,
    pub hand_us: f64,
    pub serde_us: f64,
    /// The median of the rounds' serde / hand.
    pub ratio: f64,
    pub rounds: usize,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// µs per call of `f` over `batch` calls.
fn per_call(batch: usize, f: &mut impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..batch {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / batch as f64
}

/// Hand and serde take turns, `rounds` times, a batch of calls each (about `BATCH_MS` of work),
/// the order swapped every round.
fn interleaved(
    path: &'static str,
    size: String,
    rounds: usize,
    mut hand: impl FnMut(),
    mut serde: impl FnMut(),
) -> Row {
    const BATCH_MS: f64 = 15.0;
    // Warm-up, and the batch size from the hand path's first calls.
    let probe = per_call(3, &mut hand).max(per_call(3, &mut hand));
    per_call(3, &mut serde);
    let batch = ((BATCH_MS * 1000.0 / probe) as usize).clamp(1, 10_000);
    let (mut hs, mut ss, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (h, s) = if round % 2 == 0 {
            let h = per_call(batch, &mut hand);
            (h, per_call(batch, &mut serde))
        } else {
            let s = per_call(batch, &mut serde);
            (per_call(batch, &mut hand), s)
        };
        hs.push(h);
        ss.push(s);
        rs.push(s / h);
    }
    Row {
        path,
        size,
        hand_us: median(hs),
        serde_us: median(ss),
        ratio: median(rs),
        rounds,
    }
}

/// Every row: the page, the envelope both ways at both sizes, the view with two field sets.
pub fn compare(pages: impl Fn(usize) -> Vec<HttpReply>, rounds: usize) -> Vec<Row> {
    let small_replies = pages(100);
    let page = &small_replies[0];
    let small = listing(&small_replies);
    let big = listing(&pages(10_000));
    let dashboard = FieldSet::parse(
        "name,url,description,visibility,archived,fork,default_branch,pushed_at,language,ci",
    )
    .unwrap();
    let default = FieldSet::default_set();
    check(
        page,
        &small,
        &big,
        &[
            dashboard,
            default,
            FieldSet::parse(&forgelens::fields::ALLOWED.join(",")).unwrap(),
        ],
    );
    let mut rows = vec![interleaved(
        "GitHub owner page: read",
        "100 nodes".into(),
        rounds,
        || {
            black_box(parse::owner_page(black_box(page)).unwrap());
        },
        || {
            black_box(serde_owner_page(black_box(page)).unwrap());
        },
    )];
    for l in [&small, &big] {
        let text = entry::encode(1_700_000_000_000, Some(l));
        let kib = (text.len() as f64 / 1024.0).round();
        let size = format!("{} records, {kib} KiB", l.repos.len());
        rows.push(interleaved(
            "stored envelope: decode",
            size.clone(),
            rounds,
            || {
                black_box(entry::decode::<OwnerListing>(black_box(&text)).unwrap());
            },
            || {
                black_box(serde_decode(black_box(&text)).unwrap());
            },
        ));
        rows.push(interleaved(
            "stored envelope: encode",
            size,
            rounds,
            || {
                black_box(entry::encode(1_700_000_000_000, Some(black_box(l))));
            },
            || {
                black_box(serde_encode(1_700_000_000_000, black_box(l)));
            },
        ));
    }
    for (name, fields) in [
        ("dashboard's fields", dashboard),
        ("default fields", default),
    ] {
        rows.push(interleaved(
            "listing view: project + write",
            format!("100 records, {name}"),
            rounds,
            || {
                black_box(hand_view(black_box(&small), fields));
            },
            || {
                black_box(serde_view(black_box(&small), fields));
            },
        ));
    }
    rows
}

/// The rows as JSON (`bench/run.mjs` renders BENCHMARKS.md's section from it).
pub fn to_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({"path": r.path, "size": r.size, "hand_us": r.hand_us, "serde_us": r.serde_us,
                    "ratio": r.ratio, "rounds": r.rounds})
            })
            .collect(),
    )
}

/// The rows as a markdown table, for `cargo bench --bench cpu -- json`.
pub fn to_markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| path | size | hand µs | serde µs | serde / hand |\n|---|---|---:|---:|---:|\n",
    );
    for r in rows {
        let flag = if r.ratio < 1.5 {
            " (**under 1.5×**)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.2}×{} |\n",
            r.path, r.size, r.hand_us, r.serde_us, r.ratio, flag
        ));
    }
    out
}

//! Test only: the serde-derived parser `parse` replaced, kept as the reference the hand-written
//! one is checked against (`parse::tests::agrees_with_the_serde_parser`). Same shapes, same
//! fail-closed rules; it builds the model through `RepoFields`.

use crate::forge::{BatchAnswer, OwnerPage, RateInfo, UpstreamFailure};
use crate::model::{Ci, CiState, Repo, RepoFields, Visibility};
use crate::time::{format_rfc3339, parse_rfc3339};
use serde::de::DeserializeOwned;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reply<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

#[derive(Deserialize)]
struct GqlError {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateLimit {
    remaining: Option<u64>,
    limit: Option<u64>,
    reset_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerData {
    rate_limit: Option<RateLimit>,
    repository_owner: Option<OwnerNode>,
}

#[derive(Deserialize)]
struct OwnerNode {
    login: String,
    repositories: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<Option<RepoNode>>,
    page_info: PageInfo,
    #[serde(default)]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Login {
    login: String,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepoNode {
    name: String,
    owner: Login,
    name_with_owner: String,
    url: String,
    description: Option<String>,
    visibility: Option<GhVisibility>,
    is_private: Option<bool>,
    is_archived: bool,
    is_disabled: bool,
    is_fork: bool,
    pushed_at: Option<String>,
    updated_at: Option<String>,
    primary_language: Option<Named>,
    default_branch_ref: Option<BranchRef>,
}

#[derive(Deserialize)]
struct BranchRef {
    name: String,
    target: Option<Target>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    oid: Option<String>,
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

impl RepoNode {
    fn into_repo(self) -> Repo {
        let visibility = match (self.visibility, self.is_private) {
            (Some(GhVisibility::Public), Some(false) | None) => Visibility::Public,
            (Some(GhVisibility::Internal), _) => Visibility::Internal,
            _ => Visibility::Private,
        };
        let (default_branch, target) = match self.default_branch_ref {
            Some(b) => (Some(b.name), b.target),
            None => (None, None),
        };
        let ci = target.and_then(|t| {
            let state = t
                .status_check_rollup
                .and_then(|r| r.state)
                .and_then(ci_state);
            Some((state, t.oid?))
        });
        let pushed_at = self.pushed_at.and_then(timestamp);
        let updated_at = self.updated_at.and_then(timestamp);
        Repo::new(RepoFields {
            name: &self.name,
            owner: &self.owner.login,
            full_name: &self.name_with_owner,
            url: &self.url,
            description: self.description.as_deref(),
            visibility,
            archived: self.is_archived,
            disabled: self.is_disabled,
            fork: self.is_fork,
            default_branch: default_branch.as_deref(),
            pushed_at: pushed_at.as_deref(),
            updated_at: updated_at.as_deref(),
            language: self.primary_language.as_ref().map(|l| l.name.as_str()),
            ci: ci.as_ref().map(|(state, sha)| Ci { state: *state, sha }),
        })
    }
}

fn ci_state(s: GhState) -> Option<CiState> {
    match s {
        GhState::Success => Some(CiState::Success),
        GhState::Failure => Some(CiState::Failure),
        GhState::Pending => Some(CiState::Pending),
        GhState::Error => Some(CiState::Error),
        GhState::Expected => Some(CiState::Expected),
        GhState::Unknown => None,
    }
}

fn timestamp(s: String) -> Option<String> {
    let ms = parse_rfc3339(&s)?;
    if s.ends_with('Z') {
        Some(s)
    } else {
        Some(format_rfc3339(ms))
    }
}

fn rate_info(r: Option<RateLimit>) -> Option<RateInfo> {
    let r = r?;
    Some(RateInfo {
        remaining: r.remaining?,
        limit: r.limit,
        reset_at_ms: parse_rfc3339(r.reset_at.as_deref()?)?,
    })
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<Reply<T>, UpstreamFailure> {
    serde_json::from_str(text).map_err(|e| UpstreamFailure::Unusable(e.to_string()))
}

/// GitHub documents one partial answer: a `NOT_FOUND` error beside a field answered `null`. Any
/// other error leaves a reply this reference does not read. What such an error means (a spent
/// rate limit, a server-side timeout) is the parser's policy, with its own table (`owner_failures` in `parse.rs`);
/// deciding it here too would only check that policy against a copy of itself.
fn check_errors(errors: &[GqlError]) -> Result<(), UpstreamFailure> {
    match errors
        .iter()
        .find(|e| e.kind.as_deref() != Some("NOT_FOUND"))
    {
        None => Ok(()),
        Some(e) => Err(UpstreamFailure::Unusable(format!(
            "GraphQL error {:?}: {}",
            e.kind, e.message
        ))),
    }
}

/// The old `owner_page`, from the body text on (the HTTP checks did not change).
pub fn owner_page(text: &str) -> Result<OwnerPage, UpstreamFailure> {
    let parsed: Reply<OwnerData> = decode(text)?;
    check_errors(&parsed.errors)?;
    let data = parsed
        .data
        .ok_or_else(|| UpstreamFailure::Unusable("reply has no data".into()))?;
    let rate = rate_info(data.rate_limit);
    let owner = data.repository_owner.ok_or(UpstreamFailure::NotFound)?;
    let conn = owner.repositories;
    let next_cursor = match (conn.page_info.has_next_page, conn.page_info.end_cursor) {
        (false, _) => None,
        (true, Some(c)) if !c.is_empty() => Some(c),
        (true, _) => {
            return Err(UpstreamFailure::Unusable(
                "hasNextPage without endCursor".into(),
            ))
        }
    };
    Ok(OwnerPage {
        login: owner.login,
        repos: conn
            .nodes
            .into_iter()
            .flatten()
            .map(RepoNode::into_repo)
            .collect(),
        next_cursor,
        total: conn.total_count,
        rate,
        counts: None,
    })
}

struct BatchData {
    rate_limit: Option<RateLimit>,
    slots: Vec<(usize, Option<RepoNode>)>,
}

impl<'de> Deserialize<'de> for BatchData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = BatchData;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of rateLimit and rN aliases")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BatchData, A::Error> {
                let mut data = BatchData {
                    rate_limit: None,
                    slots: Vec::new(),
                };
                let mut seen_rate = false;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let alias = key.strip_prefix('r').and_then(|n| n.parse::<usize>().ok());
                    match (key.as_ref(), alias) {
                        // As a derived struct refuses a repeated field.
                        ("rateLimit", _) if seen_rate => {
                            return Err(serde::de::Error::duplicate_field("rateLimit"))
                        }
                        ("rateLimit", _) => {
                            seen_rate = true;
                            data.rate_limit = map.next_value()?;
                        }
                        (_, Some(i)) => data.slots.push((i, map.next_value()?)),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(data)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The old `batch`, from the body text on.
pub fn batch(count: usize, text: &str) -> Result<BatchAnswer, UpstreamFailure> {
    let parsed: Reply<BatchData> = decode(text)?;
    check_errors(&parsed.errors)?;
    let data = parsed
        .data
        .ok_or_else(|| UpstreamFailure::Unusable("reply has no data".into()))?;
    let rate = rate_info(data.rate_limit);
    let mut slots: Vec<Option<Option<RepoNode>>> = (0..count).map(|_| None).collect();
    for (i, node) in data.slots {
        if let Some(slot) = slots.get_mut(i) {
            if slot.replace(node).is_some() {
                return Err(UpstreamFailure::Unusable(format!("reply repeats r{i}")));
            }
        }
    }
    let mut repos = Vec::with_capacity(count);
    for (i, slot) in slots.into_iter().enumerate() {
        match slot {
            None => return Err(UpstreamFailure::Unusable(format!("reply lacks r{i}"))),
            Some(node) => repos.push(node.map(RepoNode::into_repo)),
        }
    }
    Ok(BatchAnswer { repos, rate })
}

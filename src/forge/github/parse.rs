//! Parsing GitHub GraphQL replies into the forge-neutral model. Pure: bytes in, model out.
//!
//! Fail-closed rules: an unknown `visibility` or one that disagrees with `isPrivate` is treated
//! as private; any error other than a per-item `NOT_FOUND` makes the whole reply unusable.

use crate::forge::{BatchAnswer, HttpReply, OwnerPage, RateInfo, UpstreamFailure};
use crate::model::{Ci, CiState, Repo, Visibility};
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

/// GitHub's `RepositoryVisibility`; parsed as an enum so no string is allocated per repository.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
enum GhVisibility {
    Public,
    Private,
    Internal,
    /// A value GitHub may add later: treated as private (fail closed).
    #[serde(other)]
    Unknown,
}

/// GitHub's `StatusState`.
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
            Some(Ci { state, sha: t.oid? })
        });
        Repo {
            name: self.name,
            owner: self.owner.login,
            full_name: self.name_with_owner,
            url: self.url,
            description: self.description,
            visibility,
            archived: self.is_archived,
            disabled: self.is_disabled,
            fork: self.is_fork,
            default_branch,
            pushed_at: self.pushed_at.and_then(timestamp),
            updated_at: self.updated_at.and_then(timestamp),
            language: self.primary_language.map(|l| l.name),
            ci,
        }
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

/// GitHub already sends `…Z` (kept as it is, no copy); anything else valid is normalised,
/// anything invalid becomes null.
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
        reset_at_ms: parse_rfc3339(r.reset_at.as_deref()?)?,
    })
}

/// HTTP-level checks shared by every reply, then JSON decoding.
fn decode<T: DeserializeOwned>(reply: &HttpReply) -> Result<Reply<T>, UpstreamFailure> {
    let rate_signal =
        reply.header("retry-after").is_some() || reply.header("x-ratelimit-remaining") == Some("0");
    if matches!(reply.status, 403 | 429) && rate_signal {
        let retry_after_s = reply
            .header("retry-after")
            .and_then(|v| v.trim().parse().ok());
        let reset_at_ms = reply
            .header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| s.saturating_mul(1000));
        return Err(UpstreamFailure::RateLimited {
            retry_after_s,
            reset_at_ms,
        });
    }
    if matches!(reply.status, 502 | 504) {
        return Err(UpstreamFailure::Overloaded(format!(
            "HTTP {}",
            reply.status
        )));
    }
    if reply.status != 200 {
        return Err(UpstreamFailure::Unusable(format!("HTTP {}", reply.status)));
    }
    // `from_str`, as every JSON read in the crate: each reader serde_json offers is a copy of
    // its parser in the wasm.
    let text = std::str::from_utf8(&reply.body)
        .map_err(|_| UpstreamFailure::Unusable("reply is not UTF-8".into()))?;
    serde_json::from_str(text)
        .map_err(|e| UpstreamFailure::Unusable(format!("reply is not the expected JSON: {e}")))
}

/// Any error other than `NOT_FOUND` spoils the reply; a rate-limit error says so.
fn check_errors(errors: &[GqlError]) -> Result<(), UpstreamFailure> {
    for e in errors {
        match e.kind.as_deref() {
            Some("NOT_FOUND") => {}
            Some("RATE_LIMITED") => {
                return Err(UpstreamFailure::RateLimited {
                    retry_after_s: None,
                    reset_at_ms: None,
                })
            }
            // GitHub's wording when a query ran past its 10 s server timeout.
            None if e.message.starts_with("Something went wrong")
                && e.message.contains("timeout") =>
            {
                return Err(UpstreamFailure::Overloaded("GraphQL timeout".into()))
            }
            other => {
                return Err(UpstreamFailure::Unusable(format!(
                    "GraphQL error of type {other:?}"
                )))
            }
        }
    }
    Ok(())
}

/// # Errors
/// `NotFound` for a null owner, otherwise why the reply is unusable.
pub fn owner_page(reply: &HttpReply) -> Result<OwnerPage, UpstreamFailure> {
    let parsed: Reply<OwnerData> = decode(reply)?;
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
    })
}

/// A batch's `data`: `rateLimit` and the aliases `r0`…`rN`, decoded straight into typed slots
/// in one pass (no intermediate JSON tree).
struct BatchData {
    rate_limit: Option<RateLimit>,
    /// `(alias index, record or null)` in reply order.
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
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let alias = key.strip_prefix('r').and_then(|n| n.parse::<usize>().ok());
                    match (key.as_ref(), alias) {
                        ("rateLimit", _) => data.rate_limit = map.next_value()?,
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

/// # Errors
/// Why the reply is unusable: no `data`, an alias missing or malformed, an unexpected error
/// type.
pub fn batch(count: usize, reply: &HttpReply) -> Result<BatchAnswer, UpstreamFailure> {
    let parsed: Reply<BatchData> = decode(reply)?;
    check_errors(&parsed.errors)?;
    let data = parsed
        .data
        .ok_or_else(|| UpstreamFailure::Unusable("reply has no data".into()))?;
    let rate = rate_info(data.rate_limit);
    let mut slots: Vec<Option<Option<RepoNode>>> = (0..count).map(|_| None).collect();
    for (i, node) in data.slots {
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(node);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    pub(crate) fn node(owner: &str, name: &str, visibility: &str) -> Value {
        json!({
            "name": name, "owner": {"login": owner}, "nameWithOwner": format!("{owner}/{name}"),
            "url": format!("https://github.com/{owner}/{name}"), "description": null,
            "visibility": visibility, "isPrivate": visibility != "PUBLIC", "isArchived": false,
            "isDisabled": false, "isFork": true, "pushedAt": "2024-05-01T10:00:00Z",
            "updatedAt": "2024-05-02T10:00:00Z", "primaryLanguage": {"name": "Rust"},
            "defaultBranchRef": {"name": "main", "target": {"oid": "deadbeef", "statusCheckRollup": {"state": "FAILURE"}}}
        })
    }

    fn reply(status: u16, body: &Value) -> HttpReply {
        HttpReply {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    fn page(nodes: Vec<Value>, next: Option<&str>) -> Value {
        json!({"data": {"rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2024-05-01T11:00:00Z"},
            "repositoryOwner": {"login": "Octo", "repositories": {"nodes": nodes,
            "pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}}}}})
    }

    #[test]
    fn owner_page_maps_every_field() {
        let p = owner_page(&reply(
            200,
            &page(vec![node("Octo", "a", "PUBLIC")], Some("c1")),
        ))
        .unwrap();
        assert_eq!(p.login, "Octo");
        assert_eq!(p.next_cursor.as_deref(), Some("c1"));
        assert_eq!(p.rate.map(|r| r.remaining), Some(4999));
        let r = &p.repos[0];
        assert_eq!(
            (r.name.as_str(), r.full_name.as_str(), r.visibility),
            ("a", "Octo/a", Visibility::Public)
        );
        assert!(r.fork && !r.archived);
        assert_eq!(
            r.ci,
            Some(Ci {
                state: Some(CiState::Failure),
                sha: "deadbeef".into()
            })
        );
        assert_eq!(r.language.as_deref(), Some("Rust"));
    }

    #[test]
    fn visibility_fails_closed() {
        let cases = [
            ("PUBLIC", json!(false), Visibility::Public),
            ("PRIVATE", json!(true), Visibility::Private),
            ("INTERNAL", json!(true), Visibility::Internal),
            ("PUBLIC", json!(true), Visibility::Private),
            ("SECRET_NEW_KIND", json!(false), Visibility::Private),
        ];
        for (vis, is_private, expected) in cases {
            let mut n = node("o", "r", vis);
            n["isPrivate"] = is_private;
            let p = owner_page(&reply(200, &page(vec![n], None))).unwrap();
            assert_eq!(p.repos[0].visibility, expected, "{vis}");
        }
    }

    #[test]
    fn empty_repository_has_null_branch_and_ci() {
        let mut n = node("o", "empty", "PUBLIC");
        n["defaultBranchRef"] = Value::Null;
        n["pushedAt"] = Value::Null;
        let p = owner_page(&reply(200, &page(vec![n], None))).unwrap();
        assert_eq!(
            (
                p.repos[0].default_branch.clone(),
                p.repos[0].ci.clone(),
                p.repos[0].pushed_at.clone()
            ),
            (None, None, None)
        );
        let mut n = node("o", "nochecks", "PUBLIC");
        n["defaultBranchRef"]["target"]["statusCheckRollup"] = Value::Null;
        let p = owner_page(&reply(200, &page(vec![n], None))).unwrap();
        assert_eq!(
            p.repos[0].ci,
            Some(Ci {
                state: None,
                sha: "deadbeef".into()
            })
        );
    }

    #[test]
    fn owner_failures() {
        let null_owner = json!({"data": {"rateLimit": null, "repositoryOwner": null}});
        let null_owner_err = json!({"data": {"repositoryOwner": null}, "errors": [{"type": "NOT_FOUND", "path": ["repositoryOwner"], "message": "x"}]});
        let cases: Vec<(HttpReply, UpstreamFailure)> = vec![
            (reply(200, &null_owner), UpstreamFailure::NotFound),
            (reply(200, &null_owner_err), UpstreamFailure::NotFound),
            (
                reply(200, &json!({"errors": [{"message": "Bad credentials"}]})),
                UpstreamFailure::Unusable("GraphQL error of type None".into()),
            ),
            (
                reply(200, &json!({"data": null})),
                UpstreamFailure::Unusable("reply has no data".into()),
            ),
            (
                reply(200, &json!({})),
                UpstreamFailure::Unusable("reply has no data".into()),
            ),
            (
                reply(502, &json!({})),
                UpstreamFailure::Overloaded("HTTP 502".into()),
            ),
            (
                reply(401, &json!({"message": "Bad credentials"})),
                UpstreamFailure::Unusable("HTTP 401".into()),
            ),
            (
                reply(403, &json!({})),
                UpstreamFailure::Unusable("HTTP 403".into()),
            ),
            (
                reply(
                    200,
                    &json!({"data": {"repositoryOwner": null}, "errors": [{"type": "RATE_LIMITED", "message": "x"}]}),
                ),
                UpstreamFailure::RateLimited {
                    retry_after_s: None,
                    reset_at_ms: None,
                },
            ),
        ];
        for (r, expected) in cases {
            assert_eq!(
                owner_page(&r).unwrap_err(),
                expected,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
        }
        let garbage = HttpReply {
            status: 200,
            headers: vec![],
            body: b"<html>oops".to_vec(),
        };
        assert!(matches!(
            owner_page(&garbage),
            Err(UpstreamFailure::Unusable(_))
        ));
        let mut bad_page = page(vec![], None);
        bad_page["data"]["repositoryOwner"]["repositories"]["pageInfo"] =
            json!({"hasNextPage": true, "endCursor": null});
        assert!(matches!(
            owner_page(&reply(200, &bad_page)),
            Err(UpstreamFailure::Unusable(_))
        ));
        let wrong_shape = json!({"data": {"repositoryOwner": {"login": "o", "repositories": {"nodes": [{"name": 5}], "pageInfo": {"hasNextPage": false}}}}});
        assert!(matches!(
            owner_page(&reply(200, &wrong_shape)),
            Err(UpstreamFailure::Unusable(_))
        ));
    }

    #[test]
    fn http_rate_limit_signals() {
        let mut r = reply(403, &json!({"message": "secondary rate limit"}));
        r.headers = vec![("retry-after".into(), "42".into())];
        assert_eq!(
            owner_page(&r).unwrap_err(),
            UpstreamFailure::RateLimited {
                retry_after_s: Some(42),
                reset_at_ms: None
            }
        );
        let mut r = reply(429, &json!({}));
        r.headers = vec![
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), "1700000000".into()),
        ];
        assert_eq!(
            owner_page(&r).unwrap_err(),
            UpstreamFailure::RateLimited {
                retry_after_s: None,
                reset_at_ms: Some(1_700_000_000_000)
            }
        );
    }

    #[test]
    fn batch_partial_not_found() {
        let body = json!({"data": {"r0": node("o", "a", "PUBLIC"), "r1": null, "r2": node("o", "c", "PRIVATE")},
            "errors": [{"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve to a Repository"}]});
        let a = batch(3, &reply(200, &body)).unwrap();
        assert_eq!(
            a.repos
                .iter()
                .map(|r| r.as_ref().map(|r| r.name.as_str()))
                .collect::<Vec<_>>(),
            [Some("a"), None, Some("c")]
        );
    }

    #[test]
    fn batch_aliases_in_any_order_with_rate_and_unknown_keys() {
        let body = json!({"data": {"r1": node("o", "b", "PUBLIC"), "extra": {"x": 1},
            "rateLimit": {"cost": 1, "remaining": 0, "resetAt": "2026-01-01T00:00:00Z"},
            "r0": node("o", "a", "PUBLIC"), "r7": node("o", "z", "PUBLIC")}});
        let a = batch(2, &reply(200, &body)).unwrap();
        let names: Vec<_> = a
            .repos
            .iter()
            .map(|r| r.as_ref().map(|r| r.name.as_str()))
            .collect();
        assert_eq!(names, [Some("a"), Some("b")], "r7 was not asked for");
        assert_eq!(a.rate.map(|r| r.remaining), Some(0));
    }

    #[test]
    fn batch_failures() {
        let missing_alias = json!({"data": {"r0": node("o", "a", "PUBLIC")}});
        assert!(matches!(
            batch(2, &reply(200, &missing_alias)),
            Err(UpstreamFailure::Unusable(_))
        ));
        let forbidden =
            json!({"data": {"r0": null}, "errors": [{"type": "FORBIDDEN", "path": ["r0"]}]});
        assert!(matches!(
            batch(1, &reply(200, &forbidden)),
            Err(UpstreamFailure::Unusable(_))
        ));
        let malformed = json!({"data": {"r0": {"name": "x"}}});
        assert!(matches!(
            batch(1, &reply(200, &malformed)),
            Err(UpstreamFailure::Unusable(_))
        ));
        assert!(matches!(
            batch(1, &reply(200, &json!({"data": null}))),
            Err(UpstreamFailure::Unusable(_))
        ));
    }

    #[test]
    fn renamed_repository_keeps_new_name() {
        let body = json!({"data": {"r0": node("o", "new-name", "PUBLIC")}});
        let a = batch(1, &reply(200, &body)).unwrap();
        assert_eq!(
            a.repos[0].as_ref().map(|r| r.full_name.as_str()),
            Some("o/new-name")
        );
    }
}

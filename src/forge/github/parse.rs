//! Parsing GitHub GraphQL replies into the forge-neutral model. Pure: bytes in, model out.
//!
//! Read with the crate's pull reader (`json`): strings stay borrowed from the reply until the
//! model takes its copy, and nothing is built that the model does not keep. The shapes are read
//! as serde's derives read them: keys in any order, unknown keys skipped, a repeated key (a batch's
//! aliases included) or a missing required one spoils the reply.
//!
//! Fail-closed rules: an unknown `visibility` or one that disagrees with `isPrivate` is treated
//! as private; any error other than a per-item `NOT_FOUND` makes the whole reply unusable.

use crate::forge::{BatchAnswer, HttpReply, OwnerPage, RateInfo, UpstreamFailure};
use crate::json::{self, required, Keys, Reader, Seen};
use crate::model::Repo;
use crate::time::parse_rfc3339;
use std::borrow::Cow;

use super::node::NodeReader;

pub(super) type Str<'a> = Cow<'a, str>;

struct GqlError<'a> {
    kind: Option<Str<'a>>,
    message: Str<'a>,
}

struct RateLimit<'a> {
    remaining: Option<u64>,
    limit: Option<u64>,
    reset_at: Option<Str<'a>>,
}

#[derive(Clone, Copy)]
enum Top {
    Data,
    Errors,
}

const TOP_KEYS: [(&str, Top); 2] = [("data", Top::Data), ("errors", Top::Errors)];

/// The top level of a reply: `data` (read by `data` unless null) and `errors`.
fn read_reply<'a, T>(
    text: &'a str,
    data: impl FnOnce(&mut Reader<'a>) -> json::Result<T>,
) -> json::Result<(Option<T>, Vec<GqlError<'a>>)> {
    let mut r = Reader::new(text);
    let (mut read, mut found, mut errors) = (Some(data), None, Vec::new());
    let mut keys = Keys::new(&TOP_KEYS);
    keys.object(&mut r)?;
    while let Some(key) = keys.next(&mut r)? {
        match key {
            Some(Top::Data) => {
                if let (false, Some(read)) = (r.null()?, read.take()) {
                    found = Some(read(&mut r)?);
                }
            }
            Some(Top::Errors) => {
                let mut error_keys = Keys::new(&ERROR_KEYS);
                r.array()?;
                while r.element()? {
                    errors.push(read_error(&mut r, &mut error_keys)?);
                }
            }
            None => r.skip()?,
        }
    }
    r.end()?;
    Ok((found, errors))
}

#[derive(Clone, Copy)]
enum ErrorKey {
    Type,
    Message,
}

const ERROR_KEYS: [(&str, ErrorKey); 2] =
    [("type", ErrorKey::Type), ("message", ErrorKey::Message)];

fn read_error<'a>(r: &mut Reader<'a>, keys: &mut Keys<'_, ErrorKey>) -> json::Result<GqlError<'a>> {
    let mut e = GqlError {
        kind: None,
        message: Cow::Borrowed(""),
    };
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(ErrorKey::Type) => e.kind = r.opt_str()?,
            Some(ErrorKey::Message) => e.message = r.str()?,
            None => r.skip()?,
        }
    }
    Ok(e)
}

#[derive(Clone, Copy)]
enum RateKey {
    Remaining,
    ResetAt,
    Limit,
}

const RATE_KEYS: [(&str, RateKey); 3] = [
    ("remaining", RateKey::Remaining),
    ("resetAt", RateKey::ResetAt),
    ("limit", RateKey::Limit),
];

fn read_rate_limit<'a>(r: &mut Reader<'a>) -> json::Result<Option<RateLimit<'a>>> {
    if r.null()? {
        return Ok(None);
    }
    let mut rate = RateLimit {
        remaining: None,
        limit: None,
        reset_at: None,
    };
    let mut keys = Keys::new(&RATE_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(RateKey::Remaining) => rate.remaining = opt_u64(r)?,
            Some(RateKey::ResetAt) => rate.reset_at = r.opt_str()?,
            Some(RateKey::Limit) => rate.limit = opt_u64(r)?,
            None => r.skip()?,
        }
    }
    Ok(Some(rate))
}

fn opt_u64(r: &mut Reader<'_>) -> json::Result<Option<u64>> {
    Ok(if r.null()? { None } else { Some(r.u64()?) })
}

fn rate_info(r: Option<RateLimit<'_>>) -> Option<RateInfo> {
    let r = r?;
    Some(RateInfo {
        remaining: r.remaining?,
        limit: r.limit,
        reset_at_ms: parse_rfc3339(r.reset_at.as_deref()?)?,
    })
}

/// A reply GitHub sent because a rate limit is spent (403/429 with `retry-after` or
/// `x-ratelimit-remaining: 0`), GraphQL and REST alike.
pub fn rate_limited(reply: &HttpReply) -> Option<UpstreamFailure> {
    let rate_signal =
        reply.header("retry-after").is_some() || reply.header("x-ratelimit-remaining") == Some("0");
    if !(matches!(reply.status, 403 | 429) && rate_signal) {
        return None;
    }
    let retry_after_s = reply
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok());
    let reset_at_ms = reply
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000));
    Some(UpstreamFailure::RateLimited {
        retry_after_s,
        reset_at_ms,
    })
}

/// HTTP-level checks shared by every reply, then the body as text.
fn body(reply: &HttpReply) -> Result<&str, UpstreamFailure> {
    if let Some(limited) = rate_limited(reply) {
        return Err(limited);
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
    std::str::from_utf8(&reply.body)
        .map_err(|_| UpstreamFailure::Unusable("reply is not UTF-8".into()))
}

fn unexpected(e: json::Error) -> UpstreamFailure {
    UpstreamFailure::Unusable(format!("reply is not the expected JSON: {e}"))
}

/// Any error other than `NOT_FOUND` spoils the reply; a rate-limit error says so, with the reset
/// GitHub's `x-ratelimit-reset` header gives (it comes with every GraphQL answer).
fn check_errors(errors: &[GqlError<'_>], reply: &HttpReply) -> Result<(), UpstreamFailure> {
    for e in errors {
        match e.kind.as_deref() {
            Some("NOT_FOUND") => {}
            Some("RATE_LIMITED") => {
                let reset_at_ms = reply
                    .header("x-ratelimit-reset")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| s.saturating_mul(1000));
                return Err(UpstreamFailure::RateLimited {
                    retry_after_s: None,
                    reset_at_ms,
                });
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

/// An owner page's `data`: the rate limit and the owner (`None`: null, not found).
struct OwnerData<'a> {
    rate: Option<RateLimit<'a>>,
    owner: Option<OwnerNode<'a>>,
}

struct OwnerNode<'a> {
    login: Str<'a>,
    repos: Vec<Repo>,
    has_next_page: bool,
    end_cursor: Option<Str<'a>>,
    total: Option<u64>,
    counts: Option<Vec<u64>>,
}

#[derive(Clone, Copy)]
enum OwnerDataKey {
    RateLimit,
    RepositoryOwner,
}

const OWNER_DATA_KEYS: [(&str, OwnerDataKey); 2] = [
    ("rateLimit", OwnerDataKey::RateLimit),
    ("repositoryOwner", OwnerDataKey::RepositoryOwner),
];

fn read_owner_data<'a>(r: &mut Reader<'a>) -> json::Result<OwnerData<'a>> {
    let mut data = OwnerData {
        rate: None,
        owner: None,
    };
    let mut keys = Keys::new(&OWNER_DATA_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(OwnerDataKey::RateLimit) => data.rate = read_rate_limit(r)?,
            Some(OwnerDataKey::RepositoryOwner) => {
                if !r.null()? {
                    data.owner = Some(read_owner(r)?);
                }
            }
            None => r.skip()?,
        }
    }
    Ok(data)
}

#[derive(Clone, Copy)]
enum OwnerKey {
    Login,
    Repositories,
    /// A part's count, aliased `p0`…`p11` (`query::owner_query` with counts).
    Count(usize),
}

const OWNER_KEYS: [(&str, OwnerKey); 14] = [
    ("login", OwnerKey::Login),
    ("repositories", OwnerKey::Repositories),
    ("p0", OwnerKey::Count(0)),
    ("p1", OwnerKey::Count(1)),
    ("p2", OwnerKey::Count(2)),
    ("p3", OwnerKey::Count(3)),
    ("p4", OwnerKey::Count(4)),
    ("p5", OwnerKey::Count(5)),
    ("p6", OwnerKey::Count(6)),
    ("p7", OwnerKey::Count(7)),
    ("p8", OwnerKey::Count(8)),
    ("p9", OwnerKey::Count(9)),
    ("p10", OwnerKey::Count(10)),
    ("p11", OwnerKey::Count(11)),
];

fn read_owner<'a>(r: &mut Reader<'a>) -> json::Result<OwnerNode<'a>> {
    let (mut login, mut connection) = (None, None);
    let mut counts = [None; 12];
    let mut keys = Keys::new(&OWNER_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(OwnerKey::Login) => login = Some(r.str()?),
            Some(OwnerKey::Repositories) => connection = Some(read_connection(r)?),
            Some(OwnerKey::Count(i)) => {
                if let Some(slot) = counts.get_mut(i) {
                    *slot = read_count(r)?;
                }
            }
            None => r.skip()?,
        }
    }
    let (repos, (has_next_page, end_cursor), total) = required(connection, r)?;
    Ok(OwnerNode {
        login: required(login, r)?,
        repos,
        has_next_page,
        end_cursor,
        total,
        // All or none: a build plans from every part's count, or pages in order.
        counts: counts
            .iter()
            .all(Option::is_some)
            .then(|| counts.iter().map(|c| c.unwrap_or(0)).collect()),
    })
}

type Connection<'a> = (Vec<Repo>, (bool, Option<Str<'a>>), Option<u64>);

#[derive(Clone, Copy)]
enum ConnectionKey {
    Nodes,
    PageInfo,
    TotalCount,
}

const CONNECTION_KEYS: [(&str, ConnectionKey); 3] = [
    ("nodes", ConnectionKey::Nodes),
    ("pageInfo", ConnectionKey::PageInfo),
    ("totalCount", ConnectionKey::TotalCount),
];

/// `repositories`: the nodes (null ones dropped), `pageInfo` and `totalCount`.
fn read_connection<'a>(r: &mut Reader<'a>) -> json::Result<Connection<'a>> {
    let (mut repos, mut page_info, mut total) = (None, None, None);
    let mut keys = Keys::new(&CONNECTION_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(ConnectionKey::Nodes) => {
                let (mut nodes, mut node) = (Vec::with_capacity(100), NodeReader::new());
                r.array()?;
                while r.element()? {
                    nodes.extend(node.read(r)?);
                }
                repos = Some(nodes);
            }
            Some(ConnectionKey::PageInfo) => page_info = Some(read_page_info(r)?),
            Some(ConnectionKey::TotalCount) => total = opt_u64(r)?,
            None => r.skip()?,
        }
    }
    Ok((required(repos, r)?, required(page_info, r)?, total))
}

/// A count alias's `{ "totalCount": n }`: `None` unless a whole number (the build then pages in
/// order rather than plan from it).
fn read_count(r: &mut Reader<'_>) -> json::Result<Option<u64>> {
    let mut total = None;
    let mut keys = Keys::new(&CONNECTION_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(ConnectionKey::TotalCount) => total = r.number_text()?.parse().ok(),
            _ => r.skip()?,
        }
    }
    Ok(total)
}

#[derive(Clone, Copy)]
enum PageInfoKey {
    HasNextPage,
    EndCursor,
}

const PAGE_INFO_KEYS: [(&str, PageInfoKey); 2] = [
    ("hasNextPage", PageInfoKey::HasNextPage),
    ("endCursor", PageInfoKey::EndCursor),
];

fn read_page_info<'a>(r: &mut Reader<'a>) -> json::Result<(bool, Option<Str<'a>>)> {
    let (mut has_next, mut cursor) = (None, None);
    let mut keys = Keys::new(&PAGE_INFO_KEYS);
    keys.object(r)?;
    while let Some(key) = keys.next(r)? {
        match key {
            Some(PageInfoKey::HasNextPage) => has_next = Some(r.bool()?),
            Some(PageInfoKey::EndCursor) => cursor = r.opt_str()?,
            None => r.skip()?,
        }
    }
    Ok((required(has_next, r)?, cursor))
}

/// # Errors
/// `NotFound` for a null owner, otherwise why the reply is unusable.
pub fn owner_page(reply: &HttpReply) -> Result<OwnerPage, UpstreamFailure> {
    let (data, errors) = read_reply(body(reply)?, read_owner_data).map_err(unexpected)?;
    check_errors(&errors, reply)?;
    let data = data.ok_or_else(|| UpstreamFailure::Unusable("reply has no data".into()))?;
    let rate = rate_info(data.rate);
    let owner = data.owner.ok_or(UpstreamFailure::NotFound)?;
    let next_cursor = match (owner.has_next_page, owner.end_cursor) {
        (false, _) => None,
        (true, Some(c)) if !c.is_empty() => Some(c.into_owned()),
        (true, _) => {
            return Err(UpstreamFailure::Unusable(
                "hasNextPage without endCursor".into(),
            ))
        }
    };
    Ok(OwnerPage {
        login: owner.login.into_owned(),
        repos: owner.repos,
        next_cursor,
        total: owner.total,
        rate,
        counts: owner.counts,
    })
}

/// A batch's `data`: `rateLimit` and the aliases `r0`…`rN`, as `(alias index, record or null)`
/// in reply order.
type BatchData<'a> = (Option<RateLimit<'a>>, Vec<(usize, Option<Repo>)>);

// Aliases are not a fixed table, so they are matched by their number; a repeated one is refused
// in `batch`, a repeated `rateLimit` here.
fn read_batch_data<'a>(r: &mut Reader<'a>) -> json::Result<BatchData<'a>> {
    let (mut rate, mut slots, mut node) = (None, Vec::new(), NodeReader::new());
    let mut seen = Seen::default();
    r.object()?;
    while let Some(key) = r.key()? {
        let alias = key.strip_prefix('r').and_then(|n| n.parse::<usize>().ok());
        match (&*key, alias) {
            ("rateLimit", _) => {
                seen.once(0, r)?;
                rate = read_rate_limit(r)?;
            }
            (_, Some(i)) => slots.push((i, node.read(r)?)),
            _ => r.skip()?,
        }
    }
    Ok((rate, slots))
}

/// # Errors
/// Why the reply is unusable: no `data`, an alias missing or malformed, an unexpected error
/// type.
pub fn batch(count: usize, reply: &HttpReply) -> Result<BatchAnswer, UpstreamFailure> {
    let (data, errors) = read_reply(body(reply)?, read_batch_data).map_err(unexpected)?;
    check_errors(&errors, reply)?;
    let (rate, found) =
        data.ok_or_else(|| UpstreamFailure::Unusable("reply has no data".into()))?;
    let rate = rate_info(rate);
    let mut slots: Vec<Option<Option<Repo>>> = (0..count).map(|_| None).collect();
    for (i, repo) in found {
        if let Some(slot) = slots.get_mut(i) {
            if slot.replace(repo).is_some() {
                return Err(UpstreamFailure::Unusable(format!("reply repeats r{i}")));
            }
        }
    }
    let mut repos = Vec::with_capacity(count);
    for (i, slot) in slots.into_iter().enumerate() {
        match slot {
            None => return Err(UpstreamFailure::Unusable(format!("reply lacks r{i}"))),
            Some(repo) => repos.push(repo),
        }
    }
    Ok(BatchAnswer { repos, rate })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::tests::{mutate, Rng};
    use crate::model::Ci;
    use crate::model::{CiState, Visibility};
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

    #[test]
    fn a_plan_reply_gives_every_part_count_or_none() {
        let page = |counts: Value| {
            let mut owner = json!({"login": "big-org", "repositories": {"totalCount": 3,
                "nodes": [], "pageInfo": {"hasNextPage": false, "endCursor": null}}});
            for (k, v) in counts.as_object().unwrap() {
                owner[k] = v.clone();
            }
            owner_page(&reply(200, &json!({"data": {"repositoryOwner": owner}})))
        };
        let all: serde_json::Map<String, Value> = (0..12)
            .map(|i| (format!("p{i}"), json!({"totalCount": i * 10})))
            .collect();
        let want: Vec<u64> = (0..12).map(|i| i * 10).collect();
        assert_eq!(page(Value::Object(all.clone())).unwrap().counts, Some(want));
        let mut missing = all.clone();
        missing.remove("p7");
        let mut negative = all.clone();
        negative["p3"] = json!({"totalCount": -2});
        let mut fraction = all.clone();
        fraction["p3"] = json!({"totalCount": 2.5});
        let mut null = all.clone();
        null["p11"] = Value::Null;
        for case in [missing, negative, fraction] {
            assert_eq!(page(Value::Object(case)).unwrap().counts, None);
        }
        // Not an object where a count belongs: the reply is unusable, like any other malformed field.
        assert!(page(Value::Object(null)).is_err());
        let mut text = all;
        text["p0"] = json!({"totalCount": "2"});
        assert!(page(Value::Object(text)).is_err());
        assert_eq!(
            page(json!({})).unwrap().counts,
            None,
            "a page asked without counts"
        );
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
            (r.name(), r.full_name(), r.visibility),
            ("a", "Octo/a", Visibility::Public)
        );
        assert!(r.fork && !r.archived);
        assert_eq!(
            r.ci(),
            Some(Ci {
                state: Some(CiState::Failure),
                sha: "deadbeef"
            })
        );
        assert_eq!(r.language(), Some("Rust"));
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

    /// Keys GitHub may add are skipped wherever they come, before or after the known ones.
    #[test]
    fn unknown_keys_anywhere() {
        let mut n = node("o", "r", "PUBLIC");
        n["owner"] = json!({"id": 7, "login": "o", "zz": [1]});
        n["primaryLanguage"] = json!({"color": "#dea584", "name": "Rust"});
        n["defaultBranchRef"] = json!({"id": "x", "name": "main", "target": {"__typename": "Commit",
            "oid": "deadbeef", "statusCheckRollup": {"contexts": {"totalCount": 1}, "state": "SUCCESS"}}});
        let p = owner_page(&reply(200, &page(vec![n], None))).unwrap();
        let r = &p.repos[0];
        assert_eq!((r.owner(), r.language()), ("o", Some("Rust")));
        assert_eq!(
            r.ci(),
            Some(Ci {
                state: Some(CiState::Success),
                sha: "deadbeef"
            })
        );
    }

    #[test]
    fn empty_repository_has_null_branch_and_ci() {
        let mut n = node("o", "empty", "PUBLIC");
        n["defaultBranchRef"] = Value::Null;
        n["pushedAt"] = Value::Null;
        let p = owner_page(&reply(200, &page(vec![n], None))).unwrap();
        assert_eq!(
            (
                p.repos[0].default_branch(),
                p.repos[0].ci(),
                p.repos[0].pushed_at()
            ),
            (None, None, None)
        );
        let mut n = node("o", "nochecks", "PUBLIC");
        n["defaultBranchRef"]["target"]["statusCheckRollup"] = Value::Null;
        let p = owner_page(&reply(200, &page(vec![n], None))).unwrap();
        assert_eq!(
            p.repos[0].ci(),
            Some(Ci {
                state: None,
                sha: "deadbeef"
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
            // GitHub's server-side timeout: asked again at a smaller page size.
            (
                reply(
                    200,
                    &json!({"data": null, "errors": [{"message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug."}]}),
                ),
                UpstreamFailure::Overloaded("GraphQL timeout".into()),
            ),
            (
                reply(
                    200,
                    &json!({"data": {"repositoryOwner": null}, "errors": [{"type": "FORBIDDEN", "message": "x"}]}),
                ),
                UpstreamFailure::Unusable("GraphQL error of type Some(\"FORBIDDEN\")".into()),
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
        // GraphQL's RATE_LIMITED with HTTP 200: the reset is the header's, not a guess of 60 s.
        let mut r = reply(
            200,
            &json!({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}),
        );
        r.headers = vec![("x-ratelimit-reset".into(), "1700000123".into())];
        for parsed in [owner_page(&r).err(), batch(1, &r).err()] {
            assert_eq!(
                parsed,
                Some(UpstreamFailure::RateLimited {
                    retry_after_s: None,
                    reset_at_ms: Some(1_700_000_123_000)
                })
            );
        }
    }

    #[test]
    fn batch_partial_not_found() {
        let body = json!({"data": {"r0": node("o", "a", "PUBLIC"), "r1": null, "r2": node("o", "c", "PRIVATE")},
            "errors": [{"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve to a Repository"}]});
        let a = batch(3, &reply(200, &body)).unwrap();
        assert_eq!(
            a.repos
                .iter()
                .map(|r| r.as_ref().map(|r| r.name()))
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
            .map(|r| r.as_ref().map(|r| r.name()))
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
        // A repeated alias or `rateLimit` is refused, never taken from the first or the last.
        let one = node("o", "a", "PUBLIC").to_string();
        let rate = r#"{"remaining":5,"resetAt":"2024-05-01T11:00:00Z"}"#;
        for text in [
            format!(r#"{{"data":{{"r0":{one},"r0":null}}}}"#),
            format!(r#"{{"data":{{"r0":null,"r0":{one}}}}}"#),
            format!(r#"{{"data":{{"rateLimit":{rate},"r0":{one},"rateLimit":{rate}}}}}"#),
        ] {
            let raw = HttpReply {
                status: 200,
                headers: vec![],
                body: text.clone().into_bytes(),
            };
            assert!(
                matches!(batch(1, &raw), Err(UpstreamFailure::Unusable(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn renamed_repository_keeps_new_name() {
        let body = json!({"data": {"r0": node("o", "new-name", "PUBLIC")}});
        let a = batch(1, &reply(200, &body)).unwrap();
        assert_eq!(a.repos[0].as_ref().map(Repo::full_name), Some("o/new-name"));
    }

    /// Edits on the text that a `Value` cannot hold: a key written twice, a letter escaped.
    fn mutate_text(text: &str, rng: &mut Rng) -> String {
        let keys = [
            "\"name\":",
            "\"visibility\":",
            "\"isPrivate\":",
            "\"login\":",
            "\"oid\":",
            "\"data\":",
            "\"nodes\":",
            "\"r0\":",
            "\"rateLimit\":",
        ];
        match rng.below(3) {
            0 => {
                let key = keys[rng.below(keys.len())];
                let (before, after) = text.split_at(text.find(key).unwrap_or(0));
                let value = ["null", "\"PRIVATE\"", "true", "{}"][rng.below(4)];
                format!("{before}{key}{value},{after}")
            }
            1 => {
                let at = rng.below(text.len());
                let c = text.as_bytes()[at];
                if c.is_ascii_alphabetic() {
                    format!("{}\\u{:04x}{}", &text[..at], c, &text[at + 1..])
                } else {
                    text.to_string()
                }
            }
            _ => text.to_string(),
        }
    }

    fn same<T: PartialEq + std::fmt::Debug>(
        ours: &Result<T, UpstreamFailure>,
        theirs: &Result<T, UpstreamFailure>,
    ) -> bool {
        // The reference reads shapes only: a reply it cannot use is one the parser may refine by
        // policy (a rate limit, a timeout: the table in `owner_failures`), never accept.
        let kind = |e: &UpstreamFailure| match e {
            UpstreamFailure::RateLimited { .. } | UpstreamFailure::Overloaded(_) => {
                std::mem::discriminant(&UpstreamFailure::Unusable(String::new()))
            }
            other => std::mem::discriminant(other),
        };
        match (ours, theirs) {
            (Ok(a), Ok(b)) => a == b,
            // Messages differ (serde's against the reader's); the kind of failure may not.
            (Err(a), Err(b)) => kind(a) == kind(b),
            _ => false,
        }
    }

    /// The hand-written parser and the serde-derived one it replaced agree on mutated replies:
    /// the same records, or the same kind of failure.
    #[test]
    fn agrees_with_the_serde_parser() {
        use super::super::parse_reference as reference;
        let mut rng = Rng(12);
        let visibilities = ["PUBLIC", "PRIVATE", "INTERNAL", "SECRET"];
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..4000 {
            let nodes: Vec<Value> = (0..3)
                .map(|i| node("Octo", &format!("r{i}"), visibilities[rng.below(4)]))
                .collect();
            let mut body = if rng.below(2) == 0 {
                page(nodes, ["c1", ""][rng.below(2)].into())
            } else {
                let mut data = serde_json::Map::new();
                for (i, n) in nodes.into_iter().enumerate() {
                    data.insert(format!("r{i}"), n);
                }
                data.insert(
                    "rateLimit".into(),
                    json!({"remaining": 5, "resetAt": "2024-05-01T11:00:00Z"}),
                );
                json!({"data": data, "errors": [{"type": "NOT_FOUND", "path": ["r9"], "message": "m"}]})
            };
            let original = body.clone();
            for _ in 0..=rng.below(3) {
                // Half the edits go into a repository node, where most of the shape is.
                let i = rng.below(3);
                let nodes = [
                    format!("/data/repositoryOwner/repositories/nodes/{i}"),
                    format!("/data/r{i}"),
                ];
                let at = match nodes.iter().find(|p| body.pointer(p).is_some()) {
                    Some(p) if rng.below(2) == 0 => p.as_str(),
                    _ => "",
                };
                if let Some(v) = body.pointer_mut(at) {
                    mutate(v, original.pointer(at), &mut rng);
                }
            }
            let text = mutate_text(&body.to_string(), &mut rng);
            let ours = owner_page(&HttpReply {
                status: 200,
                headers: vec![],
                body: text.clone().into_bytes(),
            });
            let theirs = reference::owner_page(&text);
            assert!(
                same(&ours, &theirs),
                "{text}\nours {ours:?}\ntheirs {theirs:?}"
            );
            let reply = HttpReply {
                status: 200,
                headers: vec![],
                body: text.clone().into_bytes(),
            };
            let (ours, theirs) = (batch(3, &reply), reference::batch(3, &text));
            assert!(
                same(&ours, &theirs),
                "{text}\nours {ours:?}\ntheirs {theirs:?}"
            );
            if ours.is_ok() {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both outcomes were exercised.
        assert!(accepted > 100 && refused > 100, "{accepted} {refused}");
    }
}

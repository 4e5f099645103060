//! The read routes: owner listings (and their filtered, ordered, paged views and summary), single
//! repositories and batches, projected for the caller.

use super::query;
use super::respond::{self, DataAnswer};
use super::{rendered, Request, Response};
use crate::cache::keys;
use crate::cache::Store;
use crate::config::PrivatePolicy;
use crate::error::ApiError;
use crate::fields::{self, FieldSet};
use crate::forge::BATCH_MAX;
use crate::listing::{self, Params};
use crate::model::OwnerListing;
use crate::names::{FullName, Owner};
use crate::service::{BatchItem, Clock, Item, Listing, Served, Service, Shown, Source, Transport};
use crate::time::format_rfc3339;
use crate::view::{self, Access, BatchBody, Counts, ItemError, OrgBody, RepoView};
use std::collections::HashSet;

/// An answer made from an owner's listing, or the 202 of a listing still being built.
pub enum OwnerView {
    /// The answer, and how many records a listing view with parameters matched.
    Ready(DataAnswer, Option<u64>),
    Building(Response),
}

/// An answer made from `owner`'s listing by `render` (its body, and the count a view with
/// parameters matched): from memory under `memory_key` when rendered moments ago, else rendered
/// and kept there.
async fn owner_view<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    owner: &Owner,
    memory_key: &str,
    render: impl FnOnce(&Served<OwnerListing>) -> (String, Option<u64>),
) -> Result<OwnerView, ApiError> {
    if let Some((kept, total)) = rendered::recall_counted(svc, memory_key) {
        return Ok(OwnerView::Ready(kept, total));
    }
    let served = match svc.owner_listing(owner).await? {
        Listing::Ready(served) => served,
        Listing::Building(progress) => {
            return Ok(OwnerView::Building(respond::building(
                owner.as_str(),
                &progress,
            )))
        }
    };
    // Callers who waited for one build together: the first to render it renders it for all.
    if let Some((mut kept, total)) = rendered::recall_counted(svc, memory_key) {
        (kept.status, kept.freshness) = (served.status, served.freshness);
        return Ok(OwnerView::Ready(kept, total));
    }
    let (body, total) = render(&served);
    let mut answer = DataAnswer {
        body,
        etag: None,
        status: served.status,
        freshness: served.freshness,
        retry_after: None,
    };
    let version = served.value.version_ms(served.fetched_at_ms);
    rendered::keep(
        svc,
        memory_key,
        &mut answer,
        total,
        (served.fetched_at_ms, version),
    );
    Ok(OwnerView::Ready(answer, total))
}

/// `GET /v1/orgs/{owner}/repos`: the listing, or the view its parameters ask for (with a `Link`
/// header when paged), or 202 while its build is still under way.
pub async fn handle_get_org_repos<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    req: &Request,
    owner: &Owner,
    (fields, params): (FieldSet, Option<&Params>),
    access: &Access,
) -> Result<Response, ApiError> {
    let policy = svc.cfg.private_policy;
    let entry_key = keys::org(owner);
    let memory_key =
        rendered::listing_key(&entry_key, fields, access, owner.as_str(), policy, params);
    let render = |served: &Served<OwnerListing>| {
        let all = &served.value.repos;
        let (repos, counts) = match params {
            None => (
                all.iter()
                    .filter_map(|r| view::project(r, fields, access, policy))
                    .collect(),
                None,
            ),
            Some(p) => {
                let chosen = listing::select(all, p, access, policy);
                let counts = Counts {
                    total: chosen.total,
                    page: p.per_page.map(|per_page| (p.page, per_page)),
                };
                let repos = chosen
                    .repos
                    .into_iter()
                    .filter_map(|r| view::project(r, fields, access, policy))
                    .collect();
                (repos, Some(counts))
            }
        };
        let body = OrgBody {
            org: &served.value.login,
            repos,
            fetched_at: format_rfc3339(served.fetched_at_ms),
            // The last change this caller could see: activity on records hidden from it never
            // moves it (nor, so, the body or its ETag).
            revalidated_at: served
                .value
                .changed
                .get(view::scope(access, owner.as_str(), policy))
                .map(format_rfc3339),
            counts,
        };
        (body.to_json(), counts.map(|c| c.total))
    };
    match owner_view(svc, owner, &memory_key, render).await? {
        OwnerView::Building(resp) => Ok(resp),
        OwnerView::Ready(answer, total) => {
            let mut resp = respond::data(req, answer);
            let link = params
                .zip(total)
                .and_then(|(p, total)| p.link(owner.as_str(), fields, total));
            if let Some(link) = link {
                resp.headers.push(("link".into(), link));
            }
            Ok(resp)
        }
    }
}

/// `GET /v1/orgs/{owner}/summary`: counts over what the caller may see of the listing.
pub async fn handle_get_org_summary<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    req: &Request,
    owner: &Owner,
    access: &Access,
) -> Result<Response, ApiError> {
    let policy = svc.cfg.private_policy;
    let memory_key = rendered::summary_key(&keys::org(owner), access, owner.as_str(), policy);
    let render = |served: &Served<OwnerListing>| {
        let listing = &served.value;
        let counts = listing::summarize(&listing.repos, access, policy);
        let scope = view::scope(access, owner.as_str(), policy);
        let revalidated_at = listing.changed.get(scope).map(format_rfc3339);
        let body = counts.to_json(
            &listing.login,
            &format_rfc3339(served.fetched_at_ms),
            revalidated_at.as_deref(),
        );
        (body, None)
    };
    match owner_view(svc, owner, &memory_key, render).await? {
        OwnerView::Building(resp) => Ok(resp),
        OwnerView::Ready(answer, _) => Ok(respond::data(req, answer)),
    }
}

/// What one batch item shows the caller. A hidden record shows exactly what a missing name
/// would: not found, or the upstream failure when it is only an older copy (stale-if-error).
enum Outcome<'a> {
    Record(RepoView<'a>),
    Missing,
    Error(ApiError),
}

fn outcome<'a>(
    b: &'a BatchItem,
    fields: FieldSet,
    access: &Access,
    policy: PrivatePolicy,
) -> Outcome<'a> {
    match &b.item {
        Item::Found(repo) => match (view::project(repo, fields, access, policy), &b.source) {
            (Some(v), _) => Outcome::Record(v),
            (None, Source::Fallback(err)) => Outcome::Error(err.clone()),
            (None, _) => Outcome::Missing,
        },
        Item::NotFound => Outcome::Missing,
        Item::Failed(err) => Outcome::Error(err.clone()),
    }
}

/// `GET /v1/repos/{owner}/{repo}`.
pub async fn handle_get_repo<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    name: &FullName,
    fields: FieldSet,
    access: &Access,
) -> Result<DataAnswer, ApiError> {
    let policy = svc.cfg.private_policy;
    let memory_key = rendered::key(
        &keys::repo(name),
        fields,
        access,
        name.owner.as_str(),
        policy,
    );
    if let Some(kept) = rendered::recall(svc, &memory_key) {
        return Ok(kept);
    }
    let served = svc.repos(std::slice::from_ref(name)).await?;
    let first = served.items.first().ok_or(ApiError::Internal)?;
    match outcome(first, fields, access, policy) {
        Outcome::Record(view) => {
            let (status, freshness) = served.headers(|_| Shown::Record);
            let mut answer = DataAnswer {
                body: view.to_json(),
                etag: None,
                status,
                freshness,
                retry_after: None,
            };
            // Kept only under the name it is stored by: an old name's view would outlive a
            // webhook for the new one.
            if let (Item::Found(repo), Source::Cache { fetched_at_ms, .. }) =
                (&first.item, &first.source)
            {
                if repo.full_name().eq_ignore_ascii_case(&name.to_string()) {
                    rendered::keep(
                        svc,
                        &memory_key,
                        &mut answer,
                        None,
                        (*fetched_at_ms, *fetched_at_ms),
                    );
                }
            }
            Ok(answer)
        }
        Outcome::Missing if svc.charge_unseen().await => Err(ApiError::NotFound),
        Outcome::Missing => Err(client_limited()),
        Outcome::Error(err) => {
            svc.charge_unseen().await;
            Err(err)
        }
    }
}

/// What a name answered `not_found` becomes when the caller's budget is spent.
fn client_limited() -> ApiError {
    ApiError::ClientRateLimited {
        retry_after: crate::service::LIMITER_PERIOD_S,
    }
}

/// `GET /v1/repos?names=…`: order kept, missing and hidden names reported alike.
pub async fn handle_get_repos<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    names: &[(FullName, String)],
    fields: FieldSet,
    access: &Access,
) -> Result<DataAnswer, ApiError> {
    let wanted: Vec<FullName> = names.iter().map(|(n, _)| n.clone()).collect();
    let served = svc.repos(&wanted).await?;
    let policy = svc.cfg.private_policy;
    let mut outcomes: Vec<Outcome> = served
        .items
        .iter()
        .map(|b| outcome(b, fields, access, policy))
        .collect();
    if outcomes.iter().any(|o| !matches!(o, Outcome::Record(_))) && !svc.charge_unseen().await {
        for o in &mut outcomes {
            if matches!(o, Outcome::Missing) {
                *o = Outcome::Error(client_limited());
            }
        }
    }
    // When nothing at all could be answered, the upstream failure is the answer.
    if let Some(Outcome::Error(err)) = outcomes.first() {
        if outcomes.iter().all(|o| matches!(o, Outcome::Error(_))) {
            return Err(err.clone());
        }
    }
    let shown: Vec<Shown> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Record(_) => Shown::Record,
            Outcome::Missing => Shown::Missing,
            Outcome::Error(_) => Shown::Error,
        })
        .collect();
    let (status, freshness) = served.headers(|i| shown.get(i).copied().unwrap_or(Shown::Error));
    let retry_after = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Error(
                ApiError::RateLimited { retry_after } | ApiError::ClientRateLimited { retry_after },
            ) => Some(*retry_after),
            _ => None,
        })
        .min();
    let mut body = BatchBody {
        repos: Vec::new(),
        errors: Vec::new(),
    };
    for ((_, spelling), o) in names.iter().zip(outcomes) {
        match o {
            Outcome::Record(v) => body.repos.push(v),
            Outcome::Missing => body.errors.push(ItemError {
                name: spelling,
                code: "not_found",
            }),
            Outcome::Error(err) => body.errors.push(ItemError {
                name: spelling,
                code: err.code(),
            }),
        }
    }
    Ok(DataAnswer {
        body: body.to_json(),
        etag: None,
        status,
        freshness,
        retry_after,
    })
}

/// The query of a data route, checked before anything else: at most 8 KiB, then `fields=`.
pub fn parse_query(raw: &str) -> Result<(Vec<(String, String)>, FieldSet), ApiError> {
    query::check_len(raw)?;
    let pairs = query::parse(raw);
    let fields = parse_fields(&pairs)?;
    Ok((pairs, fields))
}

/// The query of the owner listing: `parse_query`, then the listing parameters (`None` when
/// none is given).
pub fn parse_listing_query(raw: &str) -> Result<(FieldSet, Option<Params>), ApiError> {
    let (pairs, fields) = parse_query(raw)?;
    let params = listing::params::parse(&pairs)?;
    Ok((fields, params))
}

/// The query of the summary: at most 8 KiB, and neither `fields` nor a listing parameter.
pub fn parse_summary_query(raw: &str) -> Result<(), ApiError> {
    query::check_len(raw)?;
    listing::params::refuse_for_summary(&query::parse(raw))
}

fn parse_fields(pairs: &[(String, String)]) -> Result<FieldSet, ApiError> {
    match query::values(pairs, "fields").as_slice() {
        [] => Ok(FieldSet::default_set()),
        [spec] => FieldSet::parse(spec).map_err(ApiError::InvalidFields),
        _ => Err(ApiError::InvalidFields(format!(
            "give fields once, as a comma-separated list of: {}",
            fields::ALLOWED_LIST
        ))),
    }
}

/// `names=`: exactly one parameter, no empty element, every element valid; duplicates
/// (case-insensitive) collapse to the first spelling, and the limit counts distinct names.
///
/// Linear in the input, and parsing stops at the 101st distinct name: a long list costs no more
/// than the query-length limit allows, and is refused before it would be sent anywhere.
pub fn parse_names(pairs: &[(String, String)]) -> Result<Vec<(FullName, String)>, ApiError> {
    let spec = names_value(pairs)?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut out: Vec<(FullName, String)> = Vec::new();
    for part in spec.split(',') {
        if part.is_empty() {
            return Err(ApiError::InvalidName("names holds an empty element".into()));
        }
        let name = FullName::parse(part)?;
        if !seen.insert(name.key()) {
            continue;
        }
        if out.len() == BATCH_MAX {
            // The true count is not known (parsing stopped); "more than 100" is what matters.
            return Err(ApiError::TooManyNames {
                count: BATCH_MAX + 1,
                max: BATCH_MAX,
            });
        }
        out.push((name, part.to_string()));
    }
    Ok(out)
}

/// The one non-empty `names` value.
fn names_value(pairs: &[(String, String)]) -> Result<&str, ApiError> {
    match query::values(pairs, "names").as_slice() {
        [] => Err(ApiError::InvalidName(
            "names is required: names=owner/repo,owner/repo".into(),
        )),
        [""] => Err(ApiError::InvalidName("names is empty".into())),
        [one] => Ok(one),
        _ => Err(ApiError::InvalidName(
            "give names once, as a comma-separated list".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` names `o/r0`, `o/r1`, … joined by commas.
    fn distinct(count: usize) -> String {
        (0..count)
            .map(|i| format!("o/r{i}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses `names=` out of a raw query: the spellings kept, or the error code.
    fn check(raw_query: &str) -> Result<Vec<String>, &'static str> {
        parse_names(&query::parse(raw_query))
            .map(|names| names.into_iter().map(|(_, spelling)| spelling).collect())
            .map_err(|e| e.code())
    }

    #[test]
    fn names_table() {
        let hundred: Vec<String> = (0..100).map(|i| format!("o/r{i}")).collect();
        let ok = |names: &[&str]| Ok(names.iter().map(|s| s.to_string()).collect());
        let cases: Vec<(String, Result<Vec<String>, &str>)> = vec![
            ("names=a/b".into(), ok(&["a/b"])),
            ("names=A/B,c/d,a/b,C/D".into(), ok(&["A/B", "c/d"])),
            ("names=a%2Fb,c/d".into(), ok(&["a/b", "c/d"])),
            ("".into(), Err("invalid_name")),
            ("fields=name".into(), Err("invalid_name")),
            ("names=".into(), Err("invalid_name")),
            ("names".into(), Err("invalid_name")),
            ("names=a/b,,c/d".into(), Err("invalid_name")),
            ("names=a/b,".into(), Err("invalid_name")),
            (",names=a/b".into(), Err("invalid_name")),
            ("names=a/b&names=c/d".into(), Err("invalid_name")),
            ("names=a/b,not-a-name".into(), Err("invalid_name")),
            ("names=a/b,a%252Fb/c".into(), Err("invalid_name")),
            ("names=a/b,%E2%9C%93/c".into(), Err("invalid_name")),
            // An invalid element before the 101st distinct name is still reported as such.
            (format!("names=bad,{}", distinct(200)), Err("invalid_name")),
            // The limit counts distinct names: 100 plus repeats in another case pass.
            (format!("names={},o/r0,O/R99", distinct(100)), Ok(hundred)),
            (format!("names={}", distinct(101)), Err("too_many_names")),
            // Parsing stops at the 101st distinct name, so what follows is never looked at.
            (
                format!("names={},,bad", distinct(101)),
                Err("too_many_names"),
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(check(&raw), expected, "{raw:.80}");
        }
    }

    /// 3,000 distinct names (then an invalid one) are refused as soon as the 101st is seen:
    /// before the fix every name was validated and deduplicated against all earlier ones (and
    /// the invalid tail answered `invalid_name`, with a count of 3,000 otherwise).
    #[test]
    fn thousands_of_names_stop_at_the_limit() {
        for tail in ["", ",", ",bad/"] {
            let raw = format!("names={}{tail}", distinct(3000));
            let err = parse_names(&query::parse(&raw)).unwrap_err();
            assert_eq!(
                err,
                ApiError::TooManyNames {
                    count: BATCH_MAX + 1,
                    max: BATCH_MAX
                },
                "tail {tail:?}"
            );
        }
    }

    /// The query parameters `/v1/openapi.json` describes state the bounds and values this module
    /// and `listing::params` accept (the end-to-end test `tests/e2e/params.test.mjs` sends what
    /// each schema admits, and just outside it, to the worker).
    #[test]
    fn openapi_parameters_state_the_server_bounds() {
        use crate::listing::params;
        use crate::names::{OWNER_MAX_LEN, REPO_MAX_LEN};
        let doc: serde_json::Value = serde_json::from_str(crate::http::OPENAPI).unwrap();
        let param = |name: &str| doc["components"]["parameters"][name].clone();
        let items = |name: &str| {
            let p = param(name);
            assert_eq!(
                (&p["style"], &p["explode"]),
                (&"form".into(), &false.into()),
                "{name}"
            );
            let schema = &p["schema"];
            assert_eq!(schema["minItems"], 1, "{name}");
            let values: Vec<String> = schema["items"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(schema["maxItems"], values.len(), "{name}");
            values
        };
        assert_eq!(items("fields"), fields::ALLOWED);
        assert_eq!(
            param("fields")["schema"]["default"],
            serde_json::json!(fields::DEFAULT.split(',').collect::<Vec<_>>())
        );
        assert_eq!(items("visibility"), params::VISIBILITIES);
        assert_eq!(items("ci"), params::CI_STATES);
        let schema = |name: &str| param(name)["schema"].clone();
        assert_eq!(schema("per_page")["maximum"], params::MAX_PER_PAGE);
        assert_eq!(schema("page")["maximum"], params::MAX_PAGE);
        assert_eq!(schema("q")["maxLength"], params::MAX_Q_CHARS);
        assert_eq!(schema("language")["maxLength"], params::MAX_LANGUAGE_CHARS);
        assert_eq!(schema("owner")["maxLength"], OWNER_MAX_LEN);
        assert_eq!(schema("repo")["maxLength"], REPO_MAX_LEN);
        // The listing documents exactly its parameters (and fields).
        let listing: Vec<String> = doc["paths"]["/v1/orgs/{owner}/repos"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                p["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .filter(|n| !matches!(n.as_str(), "owner" | "ifNoneMatch" | "fields"))
            .collect();
        assert_eq!(listing, params::NAMES);
        // `names`: at most 100 by its pattern, and the longest described batch query, with every
        // ',' and '/' percent-encoded and the longest fields list, stays within the 8 KiB limit.
        let names = &doc["paths"]["/v1/repos"]["get"]["parameters"][0]["schema"];
        let pattern = names["pattern"].as_str().unwrap();
        assert!(
            pattern.ends_with(&format!("){{0,{}}}$", BATCH_MAX - 1)),
            "{pattern}"
        );
        let max_chars = usize::try_from(names["maxLength"].as_u64().unwrap()).unwrap();
        let separators = 2 * BATCH_MAX - 1;
        let longest_field = fields::ALLOWED.iter().map(|f| f.len()).max().unwrap();
        let fields_bytes = fields::ALLOWED.len() * (longest_field + 3) - 3;
        let worst = "names=".len() + max_chars + 2 * separators + "&fields=".len() + fields_bytes;
        assert!(worst <= query::MAX_QUERY_BYTES, "{worst} bytes");
    }

    /// Repeats in other spellings do not count: 3,000 elements naming 100 repositories pass.
    #[test]
    fn thousands_of_repeats_collapse() {
        let raw = (0..3000)
            .map(|i| {
                let name = format!("o/r{}", i % 100);
                if i % 2 == 0 {
                    name
                } else {
                    name.to_uppercase()
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let names = parse_names(&query::parse(&format!("names={raw}"))).unwrap();
        assert_eq!(names.len(), BATCH_MAX);
        assert_eq!(names[1].1, "O/R1", "first spelling kept");
    }
}

//! The read routes: owner listings, single repositories and batches, projected for the caller.

use super::query;
use super::respond::{self, DataAnswer};
use super::{Request, Response};
use crate::cache::Store;
use crate::config::PrivatePolicy;
use crate::error::ApiError;
use crate::fields::{self, FieldSet};
use crate::forge::BATCH_MAX;
use crate::names::{FullName, Owner};
use crate::service::{BatchItem, Clock, Item, Listing, Service, Source, Transport};
use crate::time::format_rfc3339;
use crate::view::{self, Access, BatchBody, ItemError, OrgBody, RepoView};

/// `GET /v1/orgs/{owner}/repos`: the listing, or 202 while its build is still under way.
pub async fn handle_get_org_repos<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    req: &Request,
    owner: &Owner,
    fields: FieldSet,
    access: &Access,
) -> Result<Response, ApiError> {
    let served = match svc.owner_listing(owner).await? {
        Listing::Ready(served) => served,
        Listing::Building(progress) => return Ok(respond::building(owner.as_str(), &progress)),
    };
    let policy = svc.cfg.private_policy;
    let body = OrgBody {
        org: &served.value.login,
        repos: served
            .value
            .repos
            .iter()
            .filter_map(|r| view::project(r, fields, access, policy))
            .collect(),
        fetched_at: format_rfc3339(served.fetched_at_ms),
    };
    let answer = DataAnswer {
        body: to_json(&body)?,
        status: served.status,
        freshness: served.freshness,
    };
    Ok(respond::data(req, answer))
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
    let served = svc.repos(std::slice::from_ref(name)).await?;
    let first = served.items.first().ok_or(ApiError::Internal)?;
    match outcome(first, fields, access, svc.cfg.private_policy) {
        Outcome::Record(view) => {
            let (status, freshness) = served.headers(|_| true);
            Ok(DataAnswer {
                body: to_json(&view)?,
                status,
                freshness,
            })
        }
        Outcome::Missing => Err(ApiError::NotFound),
        Outcome::Error(err) => Err(err),
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
    let outcomes: Vec<Outcome> = served
        .items
        .iter()
        .map(|b| outcome(b, fields, access, policy))
        .collect();
    // When nothing at all could be answered, the upstream failure is the answer.
    if let Some(Outcome::Error(err)) = outcomes.first() {
        if outcomes.iter().all(|o| matches!(o, Outcome::Error(_))) {
            return Err(err.clone());
        }
    }
    let visible: Vec<bool> = outcomes
        .iter()
        .map(|o| matches!(o, Outcome::Record(_)))
        .collect();
    let (status, freshness) = served.headers(|i| visible.get(i).copied().unwrap_or(false));
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
        body: to_json(&body)?,
        status,
        freshness,
    })
}

pub fn parse_fields(pairs: &[(String, String)]) -> Result<FieldSet, ApiError> {
    match query::values(pairs, "fields").as_slice() {
        [] => Ok(FieldSet::default_set()),
        [spec] => FieldSet::parse(spec).map_err(ApiError::InvalidFields),
        _ => Err(ApiError::InvalidFields(format!(
            "give fields once, as a comma-separated list of: {}",
            fields::ALLOWED.join(", ")
        ))),
    }
}

/// `names=`: exactly one parameter, no empty element, every element valid; duplicates
/// (case-insensitive) collapse to the first spelling, and the limit counts distinct names.
pub fn parse_names(pairs: &[(String, String)]) -> Result<Vec<(FullName, String)>, ApiError> {
    let spec = match query::values(pairs, "names").as_slice() {
        [] => {
            return Err(ApiError::InvalidName(
                "names is required: names=owner/repo,owner/repo".into(),
            ))
        }
        [one] => *one,
        _ => {
            return Err(ApiError::InvalidName(
                "give names once, as a comma-separated list".into(),
            ))
        }
    };
    if spec.is_empty() {
        return Err(ApiError::InvalidName("names is empty".into()));
    }
    let mut out: Vec<(FullName, String)> = Vec::new();
    for part in spec.split(',') {
        if part.is_empty() {
            return Err(ApiError::InvalidName("names holds an empty element".into()));
        }
        let name = FullName::parse(part)?;
        if !out.iter().any(|(n, _)| n.key() == name.key()) {
            out.push((name, part.to_string()));
        }
    }
    if out.len() > BATCH_MAX {
        return Err(ApiError::TooManyNames {
            count: out.len(),
            max: BATCH_MAX,
        });
    }
    Ok(out)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|_| ApiError::Internal)
}

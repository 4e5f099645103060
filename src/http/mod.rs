//! HTTP in pure terms: a request and response model the shell converts to and from workers-rs
//! types, the dispatcher, and one handler per route. No JavaScript is touched here, so every route
//! is tested natively.

pub mod query;
pub mod respond;
pub mod route;

use crate::auth;
use crate::cache::Store;
use crate::config::{Config, ConfigError, Origins, VARIABLES};
use crate::error::ApiError;
use crate::fields::{self, FieldSet};
use crate::forge::github::GitHub;
use crate::forge::{find_header, BATCH_MAX};
use crate::names::{FullName, Owner, RepoName};
use crate::service::{Clock, Item, Service, Transport};
use crate::time::format_rfc3339;
use crate::view::{self, Access, BatchBody, ItemError, OrgBody};
use respond::DataAnswer;
use route::{Route, READ_METHODS};

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The raw path, not percent-decoded.
    pub path: String,
    /// The raw query string without `?`.
    pub query: String,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Everything one request needs: configuration as parsed (or why not), which variables are set
/// (for `/v1/health`), and the three seams.
pub struct Ctx<'a, S, T, C> {
    pub config: Result<Config, ConfigError>,
    pub set: Vec<(&'static str, bool)>,
    pub store: &'a S,
    pub transport: &'a T,
    pub clock: &'a C,
}

/// Answers one request. Never fails: every error becomes its JSON answer.
pub async fn handle<S: Store, T: Transport, C: Clock>(
    req: &Request,
    ctx: &Ctx<'_, S, T, C>,
) -> Response {
    let origins = ctx
        .config
        .as_ref()
        .map(|c| c.allowed_origins.clone())
        .unwrap_or(Origins::Any);
    let mut resp = match dispatch(req, ctx).await {
        Ok(resp) => resp,
        Err(err) => respond::error(&err),
    };
    respond::cors(&mut resp, &origins, req.header("origin"));
    if req.method == "HEAD" {
        resp.body.clear();
    }
    resp
}

async fn dispatch<S: Store, T: Transport, C: Clock>(
    req: &Request,
    ctx: &Ctx<'_, S, T, C>,
) -> Result<Response, ApiError> {
    let route = route::match_route(&req.path).ok_or(ApiError::NoRoute)?;
    match req.method.as_str() {
        "GET" | "HEAD" => {}
        "OPTIONS" => return Ok(respond::preflight(READ_METHODS)),
        _ => {
            return Err(ApiError::MethodNotAllowed {
                allow: READ_METHODS,
            })
        }
    }
    if route == Route::Health {
        return Ok(handle_get_health(ctx));
    }
    let cfg = ctx
        .config
        .as_ref()
        .map_err(|e| ApiError::ConfigInvalid(e.clone()))?;
    let pairs = query::parse(&req.query);
    let fields = parse_fields(&pairs)?;
    let forge = GitHub::new(&cfg.graphql_url, cfg.github_token.clone());
    let svc = Service::new(cfg, ctx.store, ctx.transport, ctx.clock, &forge);
    let answer = match route {
        Route::OrgRepos { owner } => {
            let owner = Owner::parse(owner)?;
            let access = auth::access(req.header("authorization"), cfg)?;
            handle_get_org_repos(&svc, &owner, fields, &access).await?
        }
        Route::Repo { owner, repo } => {
            let name = FullName::new(Owner::parse(owner)?, RepoName::parse(repo)?);
            let access = auth::access(req.header("authorization"), cfg)?;
            handle_get_repo(&svc, &name, fields, &access).await?
        }
        Route::Batch => {
            let names = parse_names(&pairs)?;
            let access = auth::access(req.header("authorization"), cfg)?;
            handle_get_repos(&svc, &names, fields, &access).await?
        }
        Route::Health => return Ok(handle_get_health(ctx)),
    };
    Ok(respond::data(req, answer))
}

/// `GET /v1/health`: which variables are set (booleans, never values) and the first invalid one.
fn handle_get_health<S, T, C>(ctx: &Ctx<'_, S, T, C>) -> Response {
    let config: serde_json::Map<String, serde_json::Value> = VARIABLES
        .iter()
        .map(|name| {
            let set = ctx.set.iter().any(|(n, s)| n == name && *s);
            ((*name).to_string(), serde_json::Value::Bool(set))
        })
        .collect();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "config": config,
        "config_error": ctx.config.as_ref().err().map(|e| e.name),
    });
    respond::no_store(200, body.to_string())
}

/// `GET /v1/orgs/{owner}/repos`.
async fn handle_get_org_repos<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    owner: &Owner,
    fields: FieldSet,
    access: &Access,
) -> Result<DataAnswer, ApiError> {
    let served = svc.owner_listing(owner).await?;
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
    Ok(DataAnswer {
        body: to_json(&body)?,
        status: served.status,
        freshness: served.freshness,
    })
}

/// `GET /v1/repos/{owner}/{repo}`.
async fn handle_get_repo<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    name: &FullName,
    fields: FieldSet,
    access: &Access,
) -> Result<DataAnswer, ApiError> {
    let served = svc.repos(std::slice::from_ref(name)).await?;
    match served.items.into_iter().next() {
        Some(Item::Found(repo)) => {
            let view = view::project(&repo, fields, access, svc.cfg.private_policy)
                .ok_or(ApiError::NotFound)?;
            Ok(DataAnswer {
                body: to_json(&view)?,
                status: served.status,
                freshness: served.freshness,
            })
        }
        Some(Item::Failed(err)) => Err(err),
        Some(Item::NotFound) | None => Err(ApiError::NotFound),
    }
}

/// `GET /v1/repos?names=…`: order kept, missing and hidden names reported alike.
async fn handle_get_repos<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    names: &[(FullName, String)],
    fields: FieldSet,
    access: &Access,
) -> Result<DataAnswer, ApiError> {
    let wanted: Vec<FullName> = names.iter().map(|(n, _)| n.clone()).collect();
    let served = svc.repos(&wanted).await?;
    // When nothing at all could be answered, the upstream failure is the answer.
    if let Some(Item::Failed(err)) = served.items.first() {
        if served.items.iter().all(|i| matches!(i, Item::Failed(_))) {
            return Err(err.clone());
        }
    }
    let policy = svc.cfg.private_policy;
    let mut body = BatchBody {
        repos: Vec::new(),
        errors: Vec::new(),
    };
    for ((_, spelling), item) in names.iter().zip(&served.items) {
        match item {
            Item::Found(repo) => match view::project(repo, fields, access, policy) {
                Some(v) => body.repos.push(v),
                None => body.errors.push(ItemError {
                    name: spelling,
                    code: "not_found",
                }),
            },
            Item::NotFound => body.errors.push(ItemError {
                name: spelling,
                code: "not_found",
            }),
            Item::Failed(err) => body.errors.push(ItemError {
                name: spelling,
                code: err.code(),
            }),
        }
    }
    Ok(DataAnswer {
        body: to_json(&body)?,
        status: served.status,
        freshness: served.freshness,
    })
}

fn parse_fields(pairs: &[(String, String)]) -> Result<FieldSet, ApiError> {
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
fn parse_names(pairs: &[(String, String)]) -> Result<Vec<(FullName, String)>, ApiError> {
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

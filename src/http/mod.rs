//! HTTP in pure terms: a request and response model the shell converts to and from workers-rs
//! types, the dispatcher, and one handler per route. No JavaScript is touched here, so every route
//! is tested natively.

mod data;
pub mod events;
mod head;
mod invalidate;
pub mod query;
mod rendered;
pub mod respond;
pub mod route;
mod status;
pub mod usage;

use crate::auth;
use crate::cache::Store;
use crate::config::{Config, ConfigError, Origins, VARIABLES};
use crate::error::ApiError;
use crate::forge::find_header;
use crate::forge::github::GitHub;
use crate::json::Writer;
use crate::names::{FullName, Owner, RepoName};
use crate::owners::Owners;
use crate::service::{Admit, AppSigner, Clock, Refresh, Service, Transport, Usage};
use route::Route;
use std::borrow::Cow;
use std::cell::Cell;

/// The OpenAPI 3.1 description served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");
/// The dashboard served at `/`; `__DEFAULT_OWNER__` becomes the first pinned owner.
pub const DASHBOARD: &str = include_str!("../dashboard/index.html");

/// Where the static texts served come from. Natively `Embedded`; the worker reads them from its
/// JS module (`src/shell/assets.js`, generated from the same files), keeping 36 KB of text out
/// of the wasm, whose size is budgeted (DESIGN.md) for its code.
pub trait Assets {
    fn openapi(&self) -> Cow<'static, str>;
    fn dashboard(&self) -> Cow<'static, str>;
}

/// The texts compiled in (native tests and benches).
pub struct Embedded;

impl Assets for Embedded {
    fn openapi(&self) -> Cow<'static, str> {
        Cow::Borrowed(OPENAPI)
    }
    fn dashboard(&self) -> Cow<'static, str> {
        Cow::Borrowed(DASHBOARD)
    }
}

/// Largest request body read (webhooks); anything longer is refused unread.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The raw path, not percent-decoded.
    pub path: String,
    /// The raw query string without `?`.
    pub query: String,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    /// At most `MAX_BODY` bytes; empty when `body_too_large`.
    pub body: Vec<u8>,
    /// The body had more than `MAX_BODY` bytes (counted as read, not from `Content-Length`).
    pub body_too_large: bool,
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
    /// An admitted live-events subscription (status 101, `events::Subscription::query`): the
    /// shell hands the connection to the owner's object instead of sending this answer.
    pub upgrade: Option<String>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Everything one request needs: configuration as parsed (or why not), which variables are set
/// (for `/v1/health`), and the three seams.
pub struct Ctx<'a, S, T, C> {
    pub config: &'a Result<Config, ConfigError>,
    pub set: &'a [(&'static str, bool)],
    pub store: &'a S,
    pub transport: &'a T,
    pub clock: &'a C,
    /// Where background refreshes go (the shell's `ctx.wait_until`); `None` skips them.
    pub defer: Option<&'a dyn Fn(Refresh)>,
    /// The owner directories (`OWNERS`); `None` answers owner misses with 500 `config_invalid`.
    pub owners: Option<&'a dyn Owners>,
    /// This client's budget of upstream-bound answers (`UPSTREAM_LIMITER`); `None` when unbound.
    pub limiter: Option<&'a dyn Admit>,
    /// Signs GitHub App JWTs (WebCrypto in the worker); `None` makes App mode fail upstream.
    pub signer: Option<&'a dyn AppSigner>,
    /// The OpenAPI description and the dashboard.
    pub assets: &'a dyn Assets,
    /// Writes the request's data point (`ANALYTICS`); `None` when unbound.
    pub record: Option<&'a dyn Fn(&usage::DataPoint)>,
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
    let started = ctx.clock.now_ms();
    let used = Cell::new(Usage::default());
    let route = route::match_route(&req.path);
    let mut resp = match dispatch(req, ctx, route.clone(), &used).await {
        Ok(resp) => resp,
        Err(err) => respond::error(&err),
    };
    respond::cors(&mut resp, &origins, req.header("origin"));
    resp.headers
        .push(("x-content-type-options".into(), "nosniff".into()));
    if req.method == "HEAD" {
        resp.body.clear();
    }
    if let Some(record) = ctx.record {
        let ms = ctx.clock.now_ms().saturating_sub(started);
        let event = req.header("x-github-event");
        record(&usage::data_point(
            route.as_ref(),
            &resp,
            event,
            used.get(),
            ms,
        ));
    }
    resp
}

async fn dispatch<S: Store, T: Transport, C: Clock>(
    req: &Request,
    ctx: &Ctx<'_, S, T, C>,
    route: Option<Route<'_>>,
    used: &Cell<Usage>,
) -> Result<Response, ApiError> {
    let route = route.ok_or(ApiError::NoRoute)?;
    if req.method == "OPTIONS" && route.allows("OPTIONS") {
        return Ok(respond::preflight(route.methods()));
    }
    if !route.allows(&req.method) {
        return Err(ApiError::MethodNotAllowed {
            allow: route.methods(),
        });
    }
    match route {
        Route::Health => return Ok(handle_get_health(ctx)),
        Route::OpenApi | Route::Dashboard => {
            let mut resp = match route {
                Route::OpenApi => respond::static_body(&ctx.assets.openapi(), respond::JSON),
                _ => handle_get_dashboard(ctx),
            };
            // Shared caches must not hand one origin's CORS answer to another.
            if ctx
                .config
                .as_ref()
                .is_ok_and(|c| c.allowed_origins != Origins::Any)
            {
                resp.headers.push(("vary".into(), "Origin".into()));
            }
            return Ok(resp);
        }
        _ => {}
    }
    let cfg = ctx
        .config
        .as_ref()
        .map_err(|e| ApiError::ConfigInvalid(e.clone()))?;
    let forge = GitHub::from_config(cfg);
    let mut svc = Service::new(cfg, ctx.store, ctx.transport, ctx.clock, &forge);
    if let Some(defer) = ctx.defer {
        svc = svc.with_defer(defer);
    }
    if let Some(owners) = ctx.owners {
        svc = svc.with_owners(owners);
    }
    if let Some(limiter) = ctx.limiter {
        svc = svc.with_limiter(limiter);
    }
    if let Some(signer) = ctx.signer {
        svc = svc.with_signer(signer);
    }
    let answer = route_to_handler(req, route, cfg, ctx, &svc).await;
    let mut resp = answer.unwrap_or_else(|err| respond::error(&err));
    if let Some(timing) = respond::server_timing(&svc.timing()) {
        resp.headers.push(("server-timing".into(), timing));
    }
    used.set(svc.usage());
    Ok(resp)
}

/// The routes that need configuration and the service, each validating its input before any I/O.
async fn route_to_handler<S: Store, T: Transport, C: Clock>(
    req: &Request,
    route: Route<'_>,
    cfg: &Config,
    ctx: &Ctx<'_, S, T, C>,
    svc: &Service<'_, S, T, C>,
) -> Result<Response, ApiError> {
    let authorization = req.header("authorization");
    match route {
        Route::Webhook => invalidate::handle_post_webhook(svc, req).await,
        Route::PurgeOrg { owner } => {
            let owner = Owner::parse(owner)?;
            auth::admin(authorization, cfg)?;
            invalidate::handle_delete_org_cache(svc, &owner).await
        }
        Route::PurgeRepo { owner, repo } => {
            let name = FullName::new(Owner::parse(owner)?, RepoName::parse(repo)?);
            auth::admin(authorization, cfg)?;
            invalidate::handle_delete_repo_cache(svc, &name).await
        }
        Route::Status => {
            auth::admin(authorization, cfg)?;
            let body = status::deployment(svc, &config_flags(ctx)).await;
            Ok(respond::no_store(200, body))
        }
        Route::OrgStatus { owner } => {
            // Admin only, and checked before the allow-list, so only the admin learns which
            // owners are served.
            let owner = Owner::parse(owner)?;
            auth::admin(authorization, cfg)?;
            let owner = served(cfg, owner)?;
            let body = svc.owners()?.status(&owner).await?;
            Ok(respond::no_store(200, body))
        }
        Route::OrgRepos { owner } => {
            let (fields, params) = data::parse_listing_query(&req.query)?;
            let owner = served(cfg, Owner::parse(owner)?)?;
            let access = auth::access(authorization, cfg, ctx.clock.now_ms())?;
            let view = (fields, params.as_ref());
            data::handle_get_org_repos(svc, req, &owner, view, &access).await
        }
        Route::OrgSummary { owner } => {
            data::parse_summary_query(&req.query)?;
            let owner = served(cfg, Owner::parse(owner)?)?;
            let access = auth::access(authorization, cfg, ctx.clock.now_ms())?;
            data::handle_get_org_summary(svc, req, &owner, &access).await
        }
        Route::Repo { owner, repo } => {
            let (_, fields) = data::parse_query(&req.query)?;
            let name = FullName::new(served(cfg, Owner::parse(owner)?)?, RepoName::parse(repo)?);
            let access = auth::access(authorization, cfg, ctx.clock.now_ms())?;
            let answer = data::handle_get_repo(svc, &name, fields, &access).await?;
            Ok(respond::data(req, answer))
        }
        Route::OrgEvents { owner } => {
            let sub = events::admit(req, owner, cfg, ctx.clock.now_ms())?;
            // The owner's object takes the socket: without the binding, say so before upgrading.
            svc.owners()?;
            Ok(events::upgrade(&sub))
        }
        Route::Batch => {
            let (pairs, fields) = data::parse_query(&req.query)?;
            let names = data::parse_names(&pairs)?;
            let access = auth::access(authorization, cfg, ctx.clock.now_ms())?;
            let answer = data::handle_get_repos(svc, &names, fields, &access).await?;
            Ok(respond::data(req, answer))
        }
        Route::Health | Route::OpenApi | Route::Dashboard => Err(ApiError::Internal),
    }
}

/// An owner this deployment does not serve (`ALLOWED_OWNERS`) is not found, before any I/O.
fn served(cfg: &Config, owner: Owner) -> Result<Owner, ApiError> {
    if cfg.serves(&owner) {
        Ok(owner)
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /`: the dashboard, opening on the first pinned owner. The owner is a validated login
/// (letters, digits, `-`), so it cannot break out of the script string it is placed in.
fn handle_get_dashboard<S, T, C>(ctx: &Ctx<'_, S, T, C>) -> Response {
    let first = ctx
        .config
        .as_ref()
        .ok()
        .and_then(|c| c.pinned_orgs.first())
        .map(Owner::as_str);
    let page = ctx
        .assets
        .dashboard()
        .replace("__DEFAULT_OWNER__", first.unwrap_or(""));
    let mut resp = respond::static_body(&page, "text/html; charset=utf-8");
    resp.headers.push((
        "content-security-policy".into(),
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            .into(),
    ));
    resp.headers
        .push(("referrer-policy".into(), "no-referrer".into()));
    resp
}

/// `GET /v1/health`: which variables are set (booleans, never values) and the first invalid one.
/// Which variables are set, keys sorted: `{"NAME":true,…}` (`/v1/health`, `/v1/status`).
fn config_flags<S, T, C>(ctx: &Ctx<'_, S, T, C>) -> String {
    let mut names: Vec<&str> = VARIABLES.to_vec();
    names.sort_unstable();
    let mut out = Writer::with_capacity(640);
    out.byte(b'{');
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        out.str(name);
        out.byte(b':');
        out.bool(ctx.set.iter().any(|(n, s)| n == name && *s));
    }
    out.byte(b'}');
    out.finish()
}

fn handle_get_health<S, T, C>(ctx: &Ctx<'_, S, T, C>) -> Response {
    // Keys sorted, as clients have always had them (serde_json's map sorted them).
    let mut out = Writer::with_capacity(768);
    out.raw("{\"config\":");
    out.raw(&config_flags(ctx));
    out.raw(",\"config_error\":");
    out.opt_str(ctx.config.as_ref().err().map(|e| e.name));
    out.raw(",\"status\":\"ok\",\"version\":");
    out.str(env!("CARGO_PKG_VERSION"));
    out.byte(b'}');
    respond::no_store(200, out.finish())
}

//! The workers-rs shell: the only code that touches JavaScript. It converts requests and
//! responses, reads bindings, and implements the core's seams with KV, `fetch` and `Date.now()`.

mod kv;
mod limiter;
mod owners;
mod signer;
mod upstream;

use crate::config::{Config, ConfigError, VARIABLES};
use crate::forge::github::GitHub;
use crate::http::{self, Ctx, MAX_BODY};
use crate::owners::Owners;
use crate::service::{Clock, Refresh, Service};
use futures::StreamExt;
use std::cell::RefCell;
use std::time::Duration;
use worker::js_sys::Reflect;
use worker::wasm_bindgen::JsValue;
use worker::{
    console_error, console_log, event, Context, Delay, Env, Headers, Request, Response, Result,
    ScheduleContext, ScheduledEvent,
};

/// The KV binding name fixed by DESIGN.md.
const CACHE_BINDING: &str = "CACHE";

pub(crate) struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        // Date.now() is a whole, non-negative number of milliseconds.
        worker::Date::now().as_millis()
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}

#[event(start)]
fn start() {
    // Logs a panic's message; the runtime then answers that one request with a plain 500.
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let mut core_req = to_core(&req)?;
    if core_req.method == "POST" {
        (core_req.body, core_req.body_too_large) = read_body(&mut req).await;
    }
    let lookup = |name: &str| lookup(&env, name);
    let store = kv::Kv::bound(&env, CACHE_BINDING);
    let client_limiter = limiter::ClientLimiter::bound(&env, core_req.header("cf-connecting-ip"));
    let directories = owners::DoOwners::bound(&env);
    let mut config = Config::from_lookup(lookup);
    if config.is_ok() && !store.is_bound() {
        config = Err(ConfigError {
            name: CACHE_BINDING,
            reason: "is not bound to a KV namespace",
        });
    }
    if config.is_ok() && directories.is_none() {
        config = Err(ConfigError {
            name: owners::OWNERS_BINDING,
            reason: "is not bound to the OwnerDirectory Durable Object",
        });
    }
    let set = VARIABLES
        .iter()
        .map(|name| {
            let present = if *name == CACHE_BINDING {
                store.is_bound()
            } else if *name == limiter::LIMITER_BINDING {
                client_limiter.is_some()
            } else if *name == owners::OWNERS_BINDING {
                directories.is_some()
            } else {
                lookup(name).is_some_and(|v| !v.is_empty())
            };
            (*name, present)
        })
        .collect();
    let deferred: RefCell<Vec<Refresh>> = RefCell::new(Vec::new());
    let defer = |job: Refresh| deferred.borrow_mut().push(job);
    let core_ctx = Ctx {
        config,
        set,
        store: &store,
        transport: &upstream::Fetcher,
        clock: &JsClock,
        defer: Some(&defer),
        limiter: client_limiter
            .as_ref()
            .map(|l| l as &dyn crate::service::Admit),
        owners: directories.as_ref().map(|d| d as &dyn Owners),
        signer: Some(&signer::WebCryptoSigner),
    };
    let resp = http::handle(&core_req, &core_ctx).await;
    for job in deferred.take() {
        let env = env.clone();
        ctx.wait_until(async move { run_refresh(env, job).await });
    }
    from_core(resp)
}

/// A stale entry's refresh, after the response. It owns everything it touches: `wait_until`
/// work outlives the request that scheduled it.
async fn run_refresh(env: Env, job: Refresh) {
    match background(&env) {
        Ok((config, store)) => {
            let forge = GitHub::from_config(&config);
            let mut svc = Service::new(&config, &store, &upstream::Fetcher, &JsClock, &forge)
                .with_signer(&signer::WebCryptoSigner);
            let directories = owners::DoOwners::bound(&env);
            if let Some(d) = &directories {
                svc = svc.with_owners(d);
            }
            svc.run_refresh(job).await;
        }
        Err(why) => console_error!("refresh skipped: {why}"),
    }
}

/// Cron: keeps every pinned owner's listing warm.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let (config, store) = match background(&env) {
        Ok(parts) => parts,
        Err(why) => return console_error!("cron skipped: {why}"),
    };
    let forge = GitHub::from_config(&config);
    let Some(directories) = owners::DoOwners::bound(&env) else {
        return console_error!("cron skipped: no {} binding", owners::OWNERS_BINDING);
    };
    let svc = Service::new(&config, &store, &upstream::Fetcher, &JsClock, &forge)
        .with_owners(&directories)
        .with_signer(&signer::WebCryptoSigner);
    let refreshed = svc.refresh_pinned().await;
    console_log!(
        "cron asked {} pinned owner(s) to rebuild: {}",
        refreshed.len(),
        refreshed.join(", ")
    );
}

/// Configuration and KV for work outside a request (refreshes, cron), or why there are none.
pub(crate) fn background(env: &Env) -> std::result::Result<(Config, kv::Kv), String> {
    let config = Config::from_lookup(|name| lookup(env, name))
        .map_err(|e| format!("configuration variable {} {}", e.name, e.reason))?;
    let kv = kv::Kv::bound(env, CACHE_BINDING);
    if !kv.is_bound() {
        return Err(format!("no {CACHE_BINDING} binding"));
    }
    Ok((config, kv))
}

/// A variable or secret: both are plain string properties of `env` (what `Env::secret` and
/// `Env::var` read too, through a binding-type check this does not need).
fn lookup(env: &Env, name: &str) -> Option<String> {
    Reflect::get(env, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

/// Reads at most `MAX_BODY` bytes; the flag says there was more (the rest is never read).
async fn read_body(req: &mut Request) -> (Vec<u8>, bool) {
    let Ok(mut stream) = req.stream() else {
        return (Vec::new(), false);
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        if body.len() + chunk.len() > MAX_BODY {
            return (Vec::new(), true);
        }
        body.extend_from_slice(&chunk);
    }
    (body, false)
}

/// Reads the URL without the `url` crate: its IDNA tables would add tens of KB to the wasm, and
/// the runtime has already normalised the URL.
fn to_core(req: &Request) -> Result<http::Request> {
    let url = req.inner().url();
    Ok(http::Request {
        method: req.method().to_string(),
        path: req.path(),
        query: http::query::from_url(&url).to_string(),
        headers: req
            .headers()
            .entries()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        ..http::Request::default()
    })
}

fn from_core(resp: http::Response) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in &resp.headers {
        headers.append(k, v)?;
    }
    let body = if resp.status == 204 || resp.status == 304 {
        None
    } else {
        Some(resp.body)
    };
    let out = match body {
        Some(b) => Response::from_bytes(b)?,
        None => Response::empty()?,
    };
    Ok(out.with_status(resp.status).with_headers(headers))
}

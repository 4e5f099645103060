//! The workers-rs shell: the only code that touches JavaScript. It converts requests and
//! responses, reads bindings, and implements the core's seams with KV, `fetch` and `Date.now()`.

mod kv;
mod upstream;

use crate::config::{Config, ConfigError, VARIABLES};
use crate::http::{self, Ctx};
use crate::service::Clock;
use worker::{event, Context, Env, Headers, Request, Response, Result};

/// The KV binding name fixed by DESIGN.md.
const CACHE_BINDING: &str = "CACHE";

struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        // Date.now() is a whole, non-negative number of milliseconds.
        worker::Date::now().as_millis()
    }
}

#[event(start)]
fn start() {
    // Logs a panic's message; the runtime then answers that one request with a plain 500.
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let core_req = to_core(&req)?;
    let lookup = |name: &str| -> Option<String> {
        env.secret(name)
            .ok()
            .map(|s| s.to_string())
            .or_else(|| env.var(name).ok().map(|v| v.to_string()))
    };
    let store = kv::Kv::new(env.kv(CACHE_BINDING).ok());
    let mut config = Config::from_lookup(lookup);
    if config.is_ok() && !store.is_bound() {
        config = Err(ConfigError {
            name: CACHE_BINDING,
            reason: "is not bound to a KV namespace",
        });
    }
    let set = VARIABLES
        .iter()
        .map(|name| {
            let present = if *name == CACHE_BINDING {
                store.is_bound()
            } else {
                lookup(name).is_some_and(|v| !v.is_empty())
            };
            (*name, present)
        })
        .collect();
    let ctx = Ctx {
        config,
        set,
        store: &store,
        transport: &upstream::Fetcher,
        clock: &JsClock,
    };
    let resp = http::handle(&core_req, &ctx).await;
    from_core(resp)
}

fn to_core(req: &Request) -> Result<http::Request> {
    let url = req.url()?;
    Ok(http::Request {
        method: req.method().to_string(),
        path: url.path().to_string(),
        query: url.query().unwrap_or_default().to_string(),
        headers: req
            .headers()
            .entries()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
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

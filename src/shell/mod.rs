//! The workers-rs shell: the only code that touches JavaScript. It converts requests and
//! responses, reads bindings, and implements the core's seams with KV, `fetch` and `Date.now()`.

mod assets;
mod directory;
mod edge;
mod events;
mod kv;
mod limiter;
mod owners;
mod signer;
mod storage;
mod upstream;

use crate::config::{Config, ConfigError, VARIABLES};
use crate::forge::github::GitHub;
use crate::http::{self, Ctx, MAX_BODY};
use crate::owners::Owners;
use crate::service::{Clock, Refresh, Service};
use futures::StreamExt;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::Reflect;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_error, console_log, event, web_sys, Context, Delay, Env, Request, ScheduleContext,
    ScheduledEvent,
};

/// The KV binding name fixed by DESIGN.md.
use crate::config::{ANALYTICS_BINDING, CACHE_BINDING};

pub(crate) struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        // Date.now() is a whole, non-negative number of milliseconds (the static call: no Date
        // object per reading).
        worker::js_sys::Date::now() as u64
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}

#[event(start)]
fn start() {
    // Logs a panic's message; the runtime then answers that one request with a plain 500.
    console_error_panic_hook::set_once();
    // The core's log lines (one JSON object each) go to Workers Logs.
    crate::log::set_sink(|line| worker::console_log!("{line}"));
}

/// What a request needs from `env` that does not change while the isolate lives: the parsed
/// configuration, which variables are set, and the bindings. Kept per isolate and read again
/// whenever the runtime hands over a different `env` object, so configuration is still checked
/// on every request entry without ~40 property reads and a parse each time.
pub(crate) struct Settings {
    env: JsValue,
    config: std::result::Result<Config, ConfigError>,
    set: Vec<(&'static str, bool)>,
    store: kv::Kv,
    limiter: Option<worker::js_sys::Object>,
    owners: Option<owners::DoOwners>,
    /// The `ANALYTICS` dataset, called through `Reflect` as the limiter is.
    analytics: Option<worker::js_sys::Object>,
}

impl Settings {
    /// Configuration and KV for work outside a request's answer (refreshes, the cron, the owner
    /// directories), or why there are none.
    pub(crate) fn ready(&self) -> std::result::Result<(&Config, &kv::Kv), String> {
        match &self.config {
            Ok(config) => Ok((config, &self.store)),
            Err(e) => Err(format!("configuration variable {} {}", e.name, e.reason)),
        }
    }
}

thread_local! {
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

pub(crate) fn settings(env: &Env) -> Rc<Settings> {
    let env_value: &JsValue = env.as_ref();
    let kept = SETTINGS.with_borrow(|s| s.clone());
    if let Some(kept) = kept.filter(|k| worker::js_sys::Object::is(&k.env, env_value)) {
        return kept;
    }
    let store = kv::Kv::bound(env, CACHE_BINDING);
    let limiter = limiter::binding(env);
    let directories = owners::DoOwners::bound(env);
    let analytics = bound(env, ANALYTICS_BINDING);
    let lookup = |name: &str| lookup(env, name);
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
                limiter.is_some()
            } else if *name == owners::OWNERS_BINDING {
                directories.is_some()
            } else if *name == ANALYTICS_BINDING {
                analytics.is_some()
            } else {
                lookup(name).is_some_and(|v| !v.is_empty())
            };
            (*name, present)
        })
        .collect();
    let fresh = Rc::new(Settings {
        env: env_value.clone(),
        config,
        set,
        store,
        limiter,
        owners: directories,
        analytics,
    });
    SETTINGS.set(Some(fresh.clone()));
    fresh
}

/// The fetch entry point, exported by hand rather than with `#[event(fetch)]`: the macro converts
/// every request into a `worker::Request` (which reads and parses the request's `cf` object), the
/// response back through one call per header, and always answers with a promise; `edge` does each
/// in one call and answers a HIT synchronously.
#[wasm_bindgen(js_sys = worker::js_sys)]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    edge::now_or_promise(answer(req, env, ctx))
}

async fn answer(
    req: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> std::result::Result<JsValue, JsValue> {
    let ctx = Context::new(ctx);
    let mut core_req = edge::request(&req);
    if core_req.method == "POST" {
        (core_req.body, core_req.body_too_large) = read_body(&mut Request::from(req)).await;
    }
    let settings = settings(&env);
    let client_limiter = settings
        .limiter
        .as_ref()
        .map(|b| limiter::ClientLimiter::for_client(b, core_req.header("cf-connecting-ip")));
    let deferred: RefCell<Vec<Refresh>> = RefCell::new(Vec::new());
    let defer = |job: Refresh| deferred.borrow_mut().push(job);
    let record = settings.analytics.as_ref().map(|dataset| {
        move |p: &http::usage::DataPoint| {
            // A refused data point costs the answer nothing.
            let _ = write_data_point(dataset, &p.json());
        }
    });
    let core_ctx = Ctx {
        config: &settings.config,
        set: &settings.set,
        store: &settings.store,
        transport: &upstream::Fetcher,
        clock: &JsClock,
        defer: Some(&defer),
        limiter: client_limiter
            .as_ref()
            .map(|l| l as &dyn crate::service::Admit),
        owners: settings.owners.as_ref().map(|d| d as &dyn Owners),
        signer: Some(&signer::WebCryptoSigner),
        assets: &assets::JsAssets,
        record: record
            .as_ref()
            .map(|r| r as &dyn Fn(&http::usage::DataPoint)),
    };
    let resp = http::handle(&core_req, &core_ctx).await;
    if let Some(subscription) = &resp.upgrade {
        let limiter = core_ctx.limiter;
        // Boxed: its awaits stay out of this function's state machine (wasm size).
        let connect = Box::pin(events::connect(
            settings.owners.as_ref(),
            subscription,
            limiter,
        ));
        return connect.await.map(JsValue::from);
    }
    for job in deferred.take() {
        let env = env.clone();
        ctx.wait_until(async move { run_refresh(env, job).await });
    }
    edge::response(&resp).map(JsValue::from)
}

/// `dataset.writeDataPoint(point)`, the point given as JSON text.
fn write_data_point(
    dataset: &worker::js_sys::Object,
    point: &str,
) -> std::result::Result<(), JsValue> {
    use worker::js_sys::{Function, Reflect, JSON};
    let write: Function = Reflect::get(dataset, &"writeDataPoint".into())?.dyn_into()?;
    write.call1(dataset, &JSON::parse(point)?)?;
    Ok(())
}

/// A stale entry's refresh, after the response. It owns everything it touches: `wait_until`
/// work outlives the request that scheduled it.
async fn run_refresh(env: Env, job: Refresh) {
    let settings = settings(&env);
    match settings.ready() {
        Ok((config, store)) => {
            let forge = GitHub::from_config(config);
            let mut svc = Service::new(config, store, &upstream::Fetcher, &JsClock, &forge)
                .with_signer(&signer::WebCryptoSigner);
            if let Some(d) = &settings.owners {
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
    let settings = settings(&env);
    let (config, store) = match settings.ready() {
        Ok(parts) => parts,
        Err(why) => return console_error!("cron skipped: {why}"),
    };
    let forge = GitHub::from_config(config);
    let Some(directories) = &settings.owners else {
        return console_error!("cron skipped: no {} binding", owners::OWNERS_BINDING);
    };
    let svc = Service::new(config, store, &upstream::Fetcher, &JsClock, &forge)
        .with_owners(directories)
        .with_signer(&signer::WebCryptoSigner);
    let refreshed = svc.refresh_pinned().await;
    console_log!(
        "cron asked {} pinned owner(s) to rebuild: {}",
        refreshed.len(),
        refreshed.join(", ")
    );
    // Deliveries GitHub failed to make, sent again (each hook's outcome is logged as it ends).
    let hooks = svc.recover().await;
    console_log!("cron read the deliveries of {} hook(s)", hooks.len());
}

/// The binding `name` as a plain object (called through `Reflect`), or `None` when it is absent.
pub(crate) fn bound(env: &Env, name: &str) -> Option<worker::js_sys::Object> {
    let binding = Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if binding.is_undefined() || binding.is_null() {
        return None;
    }
    Some(binding.unchecked_into())
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

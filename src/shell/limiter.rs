//! The `UPSTREAM_LIMITER` Rate Limiting binding as the core's `Admit` seam, keyed by the client's
//! address. The binding is called through `Reflect` rather than `Env::rate_limiter`, which checks
//! the binding's JavaScript class name and so refuses the local runtime's stand-in.

use crate::service::Admit;
use worker::js_sys::{Function, Object, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{console_error, Env};

/// The binding name fixed by DESIGN.md.
pub use crate::config::LIMITER_BINDING;

pub struct ClientLimiter {
    binding: Object,
    key: String,
}

/// The binding, or `None` when it is absent.
pub fn binding(env: &Env) -> Option<Object> {
    super::bound(env, LIMITER_BINDING)
}

impl ClientLimiter {
    /// The limiter for `client` (its `CF-Connecting-IP`).
    pub fn for_client(binding: &Object, client: Option<&str>) -> ClientLimiter {
        ClientLimiter {
            binding: binding.clone(),
            // Requests without an address (local tools) share one budget.
            key: client.unwrap_or("unknown").to_string(),
        }
    }

    /// `limit({key})`; a limiter that fails lets the request through rather than failing it.
    async fn limit(&self) -> bool {
        let call = async {
            let limit: Function = Reflect::get(&self.binding, &"limit".into())?.dyn_into()?;
            let arg = Object::new();
            Reflect::set(&arg, &"key".into(), &JsValue::from_str(&self.key))?;
            let promise: Promise = limit.call1(&self.binding, &arg)?.dyn_into()?;
            let outcome = JsFuture::from(promise).await?;
            Ok::<_, JsValue>(Reflect::get(&outcome, &"success".into())?.as_bool() != Some(false))
        };
        call.await.unwrap_or_else(|e| {
            console_error!("{LIMITER_BINDING} failed, request let through: {e:?}");
            true
        })
    }
}

impl Admit for ClientLimiter {
    fn admit(&self) -> futures::future::LocalBoxFuture<'_, bool> {
        Box::pin(self.limit())
    }
}

//! `Transport` on the Workers `fetch` API, cut off by an `AbortController` when the time left
//! in the request's upstream budget runs out.

use crate::forge::{HttpCall, HttpReply};
use crate::service::Transport;
use futures::future::{select, Either};
use std::time::Duration;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, AbortController, Delay, Response};

pub struct Fetcher;

impl Transport for Fetcher {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        let controller = AbortController::default();
        let signal = controller.signal();
        // web_sys directly: `worker::RequestInit` carries the `cf` options (image resizing and
        // more), whose conversion to JavaScript is ~10 KB of wasm this call never needs.
        let headers = web_sys::Headers::new().map_err(|_| "no Headers".to_string())?;
        for (k, v) in &call.headers {
            headers
                .set(k, v)
                .map_err(|_| format!("header {k} rejected"))?;
        }
        let init = web_sys::RequestInit::new();
        init.set_method(call.method);
        init.set_headers(&headers);
        // A GET with a body (even an empty one) is refused by `fetch`.
        if !call.body.is_empty() {
            init.set_body(&JsValue::from_str(&call.body));
        }
        init.set_signal(Some(&signal));
        let global: web_sys::WorkerGlobalScope = worker::js_sys::global().unchecked_into();
        let work = async {
            let resp = JsFuture::from(global.fetch_with_str_and_init(&call.url, &init))
                .await
                .and_then(|r| r.dyn_into::<web_sys::Response>())
                .map_err(|e| format!("fetch failed: {}", worker::Error::from(e)))?;
            let mut resp = Response::from(resp);
            let status = resp.status_code();
            let headers = resp
                .headers()
                .entries()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("reading the reply failed: {e}"))?;
            Ok(HttpReply {
                status,
                headers,
                body,
            })
        };
        let timer = Delay::from(Duration::from_millis(timeout_ms));
        futures::pin_mut!(work);
        match select(work, timer).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => {
                controller.abort();
                Err(format!("no reply within {timeout_ms} ms"))
            }
        }
    }
}

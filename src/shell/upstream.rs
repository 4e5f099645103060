//! `Transport` on the Workers `fetch` API, cut off by an `AbortController` when the time left
//! in the request's upstream budget runs out.

use crate::forge::{HttpCall, HttpReply};
use crate::service::Transport;
use futures::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

pub struct Fetcher;

impl Transport for Fetcher {
    async fn send(&self, call: &HttpCall, timeout_ms: u64) -> Result<HttpReply, String> {
        let headers = Headers::new();
        for (k, v) in &call.headers {
            headers
                .set(k, v)
                .map_err(|_| format!("header {k} rejected"))?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(call.method.to_string()))
            .with_headers(headers)
            // A GET with a body (even an empty one) is refused by `fetch`.
            .with_body((!call.body.is_empty()).then(|| call.body.clone().into()));
        let req = Request::new_with_init(&call.url, &init)
            .map_err(|e| format!("bad upstream request: {e}"))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let work = async {
            let mut resp = Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(|e| format!("fetch failed: {e}"))?;
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

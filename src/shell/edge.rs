//! The crossing between the runtime's `Request`/`Response` and the core's: one call each way.
//! Every value that crosses costs a call and a string decode, and on a memory HIT those calls were
//! most of the work (the `worker` crate's `Request` also parses the request's `cf` object, which is
//! never used here), so the head travels as one string each way, and the response body as the
//! bytes in wasm memory, which the runtime decodes into the text it takes cheapest.

use crate::http;
use futures::future::poll_fn;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use wasm_bindgen::prelude::*;
use worker::js_sys::Promise;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::web_sys;

#[wasm_bindgen(inline_js = r#"
export function readHead(req) {
  let head = req.method + "\n" + req.url;
  for (const [name, value] of req.headers) head += "\n" + name + ":" + value;
  return head;
}
const utf8 = new TextDecoder();
export function respond(body, hasBody, status, head) {
  // A plain object costs the runtime less than `Headers` and one `append` per header; a repeated
  // name is joined as HTTP allows (forgelens never sends Set-Cookie).
  const headers = {};
  if (head.length > 0) {
    for (const line of head.split("\n")) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1);
      headers[name] = name in headers ? headers[name] + ", " + value : value;
    }
  }
  // Text is the body the runtime takes cheapest: a view into wasm memory costs it a copy of far
  // more than the body. Every body here is UTF-8 (JSON, the page, the OpenAPI text).
  return new Response(hasBody ? utf8.decode(body) : null, { status, headers });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readHead)]
    fn read_head(req: &web_sys::Request) -> String;

    #[wasm_bindgen(catch)]
    fn respond(
        body: &[u8],
        has_body: bool,
        status: u16,
        head: &str,
    ) -> Result<web_sys::Response, JsValue>;
}

/// The core's view of a runtime request (without its body: only webhooks read one).
pub(crate) fn request(req: &web_sys::Request) -> http::Request {
    http::Request::from_head(&read_head(req))
}

/// The runtime response for a core one. 204 and 304 never carry a body.
pub(crate) fn response(resp: &http::Response) -> Result<web_sys::Response, JsValue> {
    let has_body = !matches!(resp.status, 204 | 304);
    respond(&resp.body, has_body, resp.status, &resp.head_text())
}

/// The answer of `answer` as the runtime takes it: the `Response` itself when the future finishes
/// on its first poll (a memory HIT does no I/O), else a promise of it. This skips a promise, a
/// task and a microtask per HIT. The first poll runs with a relay waker that forwards to whatever
/// waker the promise's executor polls with later, so a future that keeps only the first waker it
/// sees (`worker::Delay` does) still wakes the right task.
pub(crate) fn now_or_promise<F>(answer: F) -> JsValue
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let relay = Arc::new(Relay::default());
    let waker = Waker::from(relay.clone());
    let mut answer = Box::pin(answer);
    match answer.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(Ok(resp)) => resp,
        Poll::Ready(Err(e)) => Promise::reject(&e).into(),
        Poll::Pending => future_to_promise(poll_fn(move |cx| {
            relay.forward_to(cx.waker());
            answer.as_mut().poll(cx)
        }))
        .into(),
    }
}

#[derive(Default)]
struct Relay(Mutex<Option<Waker>>);

impl Relay {
    fn forward_to(&self, waker: &Waker) {
        if let Ok(mut slot) = self.0.lock() {
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    // A wake before the executor's first poll is not lost: that poll happens anyway.
    fn wake_by_ref(self: &Arc<Self>) {
        let waker = self.0.lock().ok().and_then(|slot| slot.clone());
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

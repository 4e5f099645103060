//! The crossing between the runtime's `Request`/`Response` and the core's: one call each way.
//! Every value that crosses costs a call and a string decode, and on a memory HIT those calls were
//! most of the work (the `worker` crate's `Request` also parses the request's `cf` object, which is
//! never used here), so the head travels as one string and the body as one view of wasm memory.

use crate::http;
use wasm_bindgen::prelude::*;
use worker::web_sys;

#[wasm_bindgen(inline_js = r#"
export function readHead(req) {
  let head = req.method + "\n" + req.url;
  for (const [name, value] of req.headers) head += "\n" + name + ":" + value;
  return head;
}
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
  return new Response(hasBody ? body : null, { status, headers });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readHead)]
    fn read_head(req: &web_sys::Request) -> String;

    #[wasm_bindgen(catch)]
    fn respond(
        body: &str,
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
    // Text is the body the runtime takes cheapest (a view into wasm memory costs it a copy of
    // far more than the body); every body here is UTF-8 (JSON, the page, the OpenAPI text).
    let body = std::str::from_utf8(&resp.body).unwrap_or_default();
    respond(body, has_body, resp.status, &resp.head_text())
}

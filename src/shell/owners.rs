//! The worker's side of the `Owners` seam: one stub call of the owner's `OwnerDirectory` Durable
//! Object (`directory.rs`) per question, its answer decoded by `owners::wire`.

use crate::names::Owner;
use crate::owners::{live, wire, Answer, Change, Owners, Told};
use futures::future::LocalBoxFuture;
use worker::wasm_bindgen::JsValue;
use worker::{console_error, web_sys, Env, Request, Response, Result};

pub use crate::config::OWNERS_BINDING;

/// The worker's side: one stub call per question, answered by the owner's object.
pub struct DoOwners {
    env: Env,
}

impl DoOwners {
    /// The directories, or `None` when the binding is missing (a configuration error).
    pub fn bound(env: &Env) -> Option<DoOwners> {
        env.durable_object(OWNERS_BINDING).ok()?;
        Some(DoOwners { env: env.clone() })
    }

    /// `op` with its numbers (`wait_ms` and `start`, or `at_ms`) for the owner's object; a
    /// `body` goes as a POST (`forget`'s keys).
    async fn ask(
        &self,
        owner: &Owner,
        op: &str,
        args: &[(&str, u64)],
        body: Option<String>,
    ) -> Result<(u16, String)> {
        let ns = self.env.durable_object(OWNERS_BINDING)?;
        let stub = ns.id_from_name(&owner.key())?.get_stub()?;
        let mut url = format!("https://owners/{op}?owner={}", owner.as_str());
        for (name, value) in args {
            url.push_str(&format!("&{name}={value}"));
        }
        let mut resp = match body {
            None => stub.fetch_with_str(&url).await?,
            Some(body) => {
                // web_sys, as in `upstream.rs`: `worker::RequestInit` converts its `cf` options
                // through serde_wasm_bindgen, several KB of wasm a POST never needs.
                let init = web_sys::RequestInit::new();
                init.set_method("POST");
                init.set_body(&JsValue::from_str(&body));
                let req = web_sys::Request::new_with_str_and_init(&url, &init)?;
                stub.fetch_with_request(Request::from(req)).await?
            }
        };
        Ok((resp.status_code(), resp.text().await?))
    }

    /// The owner's object asked to accept a live-events subscriber (`query` an admitted
    /// `http::events::Subscription`'s); `start` when the caller was charged for a build. The
    /// object's answer is handed on as it is: a `101` with the socket, or a refusal.
    pub async fn subscribe(&self, owner: &Owner, query: &str, start: bool) -> Result<Response> {
        let ns = self.env.durable_object(OWNERS_BINDING)?;
        let stub = ns.id_from_name(&owner.key())?.get_stub()?;
        let url = format!("https://owners/events?{query}&start={}", u8::from(start));
        let headers = web_sys::Headers::new()?;
        headers.set("upgrade", "websocket")?;
        let init = web_sys::RequestInit::new();
        init.set_headers(&headers);
        let req = web_sys::Request::new_with_str_and_init(&url, &init)?;
        stub.fetch_with_request(Request::from(req)).await
    }

    async fn listing_now(&self, owner: &Owner, wait_ms: u64, start: bool) -> Answer {
        let args = [("wait_ms", wait_ms), ("start", u64::from(start))];
        match self.ask(owner, "listing", &args, None).await {
            Ok((status, body)) => wire::decode(status, body),
            Err(e) => {
                console_error!("owner directory {owner} unreachable: {e}");
                Answer::Failed(crate::error::ApiError::UpstreamUnavailable(String::new()))
            }
        }
    }

    async fn change_now(
        &self,
        owner: &Owner,
        changes: &[Change],
    ) -> std::result::Result<Told, crate::error::ApiError> {
        let body = Some(live::encode_changes(changes));
        match self.ask(owner, "change", &[], body).await {
            Ok((200, _)) => Ok(Told::Applied),
            Ok((202, _)) => Ok(Told::Queued),
            Ok((204, _)) => Ok(Told::NoListing),
            other => {
                console_error!(
                    "owner directory {owner} refused changes: {:?}",
                    other.map(|(s, _)| s)
                );
                Err(crate::error::ApiError::StoreUnavailable)
            }
        }
    }

    /// `op` for the owner's object, which answers 204 when it is done.
    async fn tell(
        &self,
        owner: &Owner,
        op: &str,
        args: &[(&str, u64)],
        body: Option<String>,
    ) -> std::result::Result<(), crate::error::ApiError> {
        match self.ask(owner, op, args, body).await {
            Ok((204, _)) => Ok(()),
            other => {
                console_error!(
                    "owner directory {owner} refused {op}: {:?}",
                    other.map(|(s, _)| s)
                );
                Err(crate::error::ApiError::StoreUnavailable)
            }
        }
    }
}

impl Owners for DoOwners {
    fn listing<'a>(
        &'a self,
        owner: &'a Owner,
        wait_ms: u64,
        start: bool,
    ) -> LocalBoxFuture<'a, Answer> {
        Box::pin(self.listing_now(owner, wait_ms, start))
    }
    fn refresh<'a>(
        &'a self,
        owner: &'a Owner,
    ) -> LocalBoxFuture<'a, std::result::Result<(), crate::error::ApiError>> {
        Box::pin(self.tell(owner, "refresh", &[], None))
    }
    fn forget<'a>(
        &'a self,
        owner: &'a Owner,
        keys: &'a [String],
    ) -> LocalBoxFuture<'a, std::result::Result<(), crate::error::ApiError>> {
        let body = keys.join("\n");
        Box::pin(self.tell(owner, "forget", &[], Some(body)))
    }
    fn change<'a>(
        &'a self,
        owner: &'a Owner,
        changes: &'a [Change],
    ) -> LocalBoxFuture<'a, std::result::Result<Told, crate::error::ApiError>> {
        Box::pin(self.change_now(owner, changes))
    }
    fn invalidate<'a>(
        &'a self,
        owner: &'a Owner,
        at_ms: u64,
    ) -> LocalBoxFuture<'a, std::result::Result<(), crate::error::ApiError>> {
        Box::pin(async move {
            let args = [("at_ms", at_ms)];
            self.tell(owner, "invalidate", &args, None).await
        })
    }
    fn delivered<'a>(
        &'a self,
        owner: &'a Owner,
        replayed: bool,
    ) -> LocalBoxFuture<'a, std::result::Result<(), crate::error::ApiError>> {
        Box::pin(async move {
            let args = [("replayed", u64::from(replayed))];
            self.tell(owner, "delivered", &args, None).await
        })
    }
    fn status<'a>(
        &'a self,
        owner: &'a Owner,
    ) -> LocalBoxFuture<'a, std::result::Result<String, crate::error::ApiError>> {
        Box::pin(async move {
            match self.ask(owner, "status", &[], None).await {
                Ok((200, body)) => Ok(body),
                other => {
                    console_error!(
                        "owner directory {owner} refused status: {:?}",
                        other.map(|(s, _)| s)
                    );
                    Err(crate::error::ApiError::StoreUnavailable)
                }
            }
        })
    }
}

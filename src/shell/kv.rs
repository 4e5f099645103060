//! `Store` on Workers KV. A missing binding behaves as an empty, unwritable store; the config
//! check reports it, so this is only reached by `/v1/health`.
//!
//! The namespace is called directly (`get`, `put`, `delete` of its JavaScript object) rather
//! than through `worker::kv`, whose builders turn every option object and reply into and out
//! of JavaScript with `serde_wasm_bindgen`: several KB of wasm for four plain calls.

use crate::cache::{Store, StoreError};
use std::collections::HashMap;
use worker::js_sys::{Array, Map, Object, Promise, Reflect};
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

#[wasm_bindgen]
extern "C" {
    /// A `KVNamespace` binding.
    type KvNamespace;

    /// `get(key, "text")` → string or null; `get([keys], "text")` → Map of string or null.
    #[wasm_bindgen(method, catch)]
    fn get(this: &KvNamespace, key: &JsValue, kind: &str) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn put(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &Object,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn delete(this: &KvNamespace, key: &str) -> Result<Promise, JsValue>;
}

pub struct Kv(Option<KvNamespace>);

impl Kv {
    /// The namespace bound as `binding`, if any.
    pub fn bound(env: &Env, binding: &str) -> Kv {
        let ns = Reflect::get(env, &JsValue::from_str(binding))
            .ok()
            .filter(|v| v.is_object());
        Kv(ns.map(JsCast::unchecked_into))
    }

    pub fn is_bound(&self) -> bool {
        self.0.is_some()
    }

    fn inner(&self) -> Result<&KvNamespace, StoreError> {
        self.0
            .as_ref()
            .ok_or_else(|| StoreError::Other("no KV binding".into()))
    }
}

/// Waits for a KV call. KV reports its one-write-per-second limit as a 429 inside a JavaScript
/// error.
async fn settle(call: Result<Promise, JsValue>) -> Result<JsValue, StoreError> {
    let result = match call {
        Ok(promise) => JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    result.map_err(|e| {
        let text = worker::Error::from(e).to_string();
        if text.contains("429") || text.contains("Too Many Requests") {
            StoreError::TooManyWrites
        } else {
            StoreError::Other(text)
        }
    })
}

impl Store for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let ns = self.inner()?;
        Ok(settle(ns.get(&JsValue::from_str(key), "text"))
            .await?
            .as_string())
    }

    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let ns = self.inner()?;
        let list: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let found: Map = settle(ns.get(&list, "text")).await?.unchecked_into();
        Ok(keys
            .iter()
            .map(|k| (k.clone(), found.get(&JsValue::from_str(k)).as_string()))
            .collect())
    }

    async fn put(&self, key: &str, value: &str, ttl_s: Option<u64>) -> Result<(), StoreError> {
        let ns = self.inner()?;
        let options = Object::new();
        if let Some(ttl) = ttl_s {
            // A TTL is far below 2^53, so the number is exact.
            Reflect::set(&options, &"expirationTtl".into(), &(ttl as f64).into())
                .map_err(|_| StoreError::Other("bad put options".into()))?;
        }
        settle(ns.put(key, value, &options)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        settle(self.inner()?.delete(key)).await.map(drop)
    }
}

//! `Store` on Workers KV. A missing binding behaves as an empty, unwritable store; the config
//! check reports it, so this is only reached by `/v1/health`.

use crate::cache::{Store, StoreError};
use std::collections::HashMap;
use worker::kv::{KvError, KvStore, ToRawKvValue};
use worker::wasm_bindgen::JsValue;

pub struct Kv(Option<KvStore>);

impl Kv {
    pub fn new(store: Option<KvStore>) -> Kv {
        Kv(store)
    }

    pub fn is_bound(&self) -> bool {
        self.0.is_some()
    }

    fn inner(&self) -> Result<&KvStore, StoreError> {
        self.0
            .as_ref()
            .ok_or_else(|| StoreError::Other("no KV binding".into()))
    }
}

/// A value handed to KV as the JavaScript string it is. `KvStore::put` would take `&str`
/// through `serde_wasm_bindgen` and a number check whose `f64` formatting alone is ~14 KB of
/// wasm.
struct Text<'a>(&'a str);

impl ToRawKvValue for Text<'_> {
    fn raw_kv_value(&self) -> Result<JsValue, KvError> {
        Ok(JsValue::from_str(self.0))
    }
}

/// KV reports its one-write-per-second limit as a 429 inside a JavaScript error.
fn classify(e: KvError) -> StoreError {
    let text = e.to_string();
    if text.contains("429") || text.contains("Too Many Requests") {
        StoreError::TooManyWrites
    } else {
        StoreError::Other(text)
    }
}

impl Store for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner()?.get(key).text().await.map_err(classify)
    }

    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        self.inner()?.get_bulk(keys).text().await.map_err(classify)
    }

    async fn put(&self, key: &str, value: &str, ttl_s: Option<u64>) -> Result<(), StoreError> {
        let mut builder = self.inner()?.put(key, Text(value)).map_err(classify)?;
        if let Some(ttl) = ttl_s {
            builder = builder.expiration_ttl(ttl);
        }
        builder.execute().await.map_err(classify)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner()?.delete(key).await.map_err(classify)
    }
}

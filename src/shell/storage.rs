//! The owner's object's storage and sockets as the directory's `Checkpoints`: values kept as raw
//! strings, and frames sent to the subscribers its sockets are (`events`).

use super::events;
use crate::fields::FieldSet;
use crate::model::Scope;
use crate::names::Owner;
use crate::owners::build::READ_KEY;
use crate::owners::directory::Checkpoints;
use worker::js_sys::Map;
use worker::wasm_bindgen::JsValue;
use worker::{console_error, State, Storage};

/// Where the object remembers whose directory it is (alarms are not told).
pub(super) const OWNER_KEY: &str = "owner";

/// The object's storage and sockets as the directory's `Checkpoints`, for one owner.
pub(super) struct DoStorage<'a> {
    state: &'a State,
    storage: Storage,
    owner: String,
    /// The noted read time, kept when the build is cleared (0: none).
    read_at: u64,
}

impl<'a> DoStorage<'a> {
    /// `read_at`: the read noted in this life (0: none).
    pub(super) fn new(state: &'a State, read_at: u64, owner: &Owner) -> DoStorage<'a> {
        DoStorage {
            state,
            storage: state.storage(),
            owner: owner.as_str().to_string(),
            read_at,
        }
    }
}

/// A value stored as a raw string: `Storage::get` and `put` would go through
/// `serde_wasm_bindgen`, whose number handling formats floats (~14 KB of wasm).
pub(super) async fn read(storage: &Storage, key: &str) -> Option<String> {
    let found = storage.get_multiple(vec![key]).await.ok()?;
    found.get(&JsValue::from_str(key)).as_string()
}

impl Checkpoints for DoStorage<'_> {
    fn send(&self, scope: Option<Scope>, frame: &dyn Fn(FieldSet) -> String) {
        events::send(self.state, scope, frame);
    }
    fn subscribers(&self) -> [u32; 3] {
        events::subscribers(self.state)
    }
    async fn get(&self, key: &str) -> Option<String> {
        read(&self.storage, key).await
    }
    async fn get_many(&self, keys: &[String]) -> Vec<Option<String>> {
        let mut out = Vec::with_capacity(keys.len());
        // The storage API takes at most 128 keys per call.
        for chunk in keys.chunks(128) {
            let found: Option<Map> = self.storage.get_multiple(chunk.to_vec()).await.ok();
            for key in chunk {
                let value = found
                    .as_ref()
                    .map(|m| m.get(&JsValue::from_str(key)))
                    .and_then(|v| v.as_string());
                out.push(value);
            }
        }
        out
    }
    async fn put(&self, key: &str, value: &str) -> std::result::Result<(), String> {
        self.storage
            .put_raw(key, value)
            .await
            .map_err(|e| e.to_string())
    }
    async fn delete_many(&self, keys: &[String]) {
        for chunk in keys.chunks(128) {
            if let Err(e) = self.storage.delete_multiple(chunk.to_vec()).await {
                console_error!("owner directory storage not deleted: {e}");
            }
        }
    }
    /// Everything but whose directory this is and when it was last read.
    async fn clear(&self) {
        if let Err(e) = self.storage.delete_all().await {
            console_error!("owner directory storage not cleared: {e}");
        }
        let _ = self.storage.put_raw(OWNER_KEY, self.owner.as_str()).await;
        if self.read_at > 0 {
            let _ = self
                .storage
                .put_raw(READ_KEY, self.read_at.to_string().as_str())
                .await;
        }
    }
}

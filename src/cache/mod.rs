//! The KV cache in pure terms: key names (`keys`), the stored envelope and freshness decisions
//! (`entry`), the in-isolate memory tier over KV (`memory`), and the `Store` seam the shell
//! implements with Workers KV.

pub mod entry;
pub mod keys;
pub mod memory;

use std::collections::HashMap;

/// Why a store operation failed. KV answers 429 when one key is written more than once a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    TooManyWrites,
    Other(String),
}

/// Workers KV, or an in-memory double in tests.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// # Errors
    /// When the store cannot be read.
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// At most 100 keys: one KV operation.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn get_bulk(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StoreError>;
    /// `ttl_s` becomes KV's `expirationTtl`; `None` keeps the entry until it is replaced or deleted.
    ///
    /// # Errors
    /// When the write is refused.
    async fn put(&self, key: &str, value: &str, ttl_s: Option<u64>) -> Result<(), StoreError>;
    /// # Errors
    /// When the delete is refused.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

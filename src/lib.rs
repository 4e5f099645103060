//! forgelens: an edge cache for forge metadata. Dashboards ask which repositories an owner has,
//! whether each is public, and what state it is in; answers come from Workers KV, and misses
//! are filled with one GitHub GraphQL request per 100 repositories.
//!
//! # Layout
//! - `names`: validated owner and repository names.
//! - `config`: variables and secrets, parsed and validated.
//! - `error`: the one error enum and its mapping to HTTP status and code.
//! - `model`: the forge-neutral repository record.
//! - `fields`, `view`: the field allow-list, projection and visibility rules.
//! - `listing`: views of large owners: filters, order, pages and the summary's counts (pure).
//! - `auth`: anonymous or read-token access.
//! - `forge`: the forge boundary; `forge::github` builds GraphQL queries and parses replies.
//! - `cache`: key names, the stored envelope, freshness, and the `Store` seam.
//! - `owners`: owner listing builds of any size, checkpointed page by page (the Durable Object's core).
//! - `service`: the read path (cache, bulk upstream, store) over the `Store`/`Transport`/`Clock` seams.
//! - `http`: request/response model, routing, headers and handlers.
//! - `json`: the hot paths' JSON by hand: a borrowing pull reader and a string writer.
//! - `time`: RFC 3339 without a clock.
//! - `shell` (wasm32 only): workers-rs glue: KV, fetch with a deadline, the clock, the entry point.

pub mod auth;
pub mod base64;
pub mod cache;
pub mod config;
pub mod error;
pub mod fields;
pub mod forge;
pub mod http;
pub mod json;
pub mod listing;
pub mod log;
pub mod model;
pub mod names;
pub mod owners;
pub mod recovery;
pub mod secret;
pub mod service;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod view;

#[cfg(target_arch = "wasm32")]
mod shell;

//! Views kept in the isolate's memory tier: a HIT whose view was rendered moments ago for the same
//! entry, field set and caller scope is answered without reading KV or serializing again.

use super::respond::{self, DataAnswer};
use crate::cache::entry::{self, Freshness};
use crate::cache::memory;
use crate::cache::Store;
use crate::config::PrivatePolicy;
use crate::fields::FieldSet;
use crate::service::{CacheStatus, Clock, Service, Transport};
use crate::view::Access;
use std::rc::Rc;

/// The memory key of a view of `entry_key` (an entry of `owner`): what the caller may see of the
/// owner's private repositories is the whole of its scope.
pub fn key(
    entry_key: &str,
    fields: FieldSet,
    access: &Access,
    owner: &str,
    policy: PrivatePolicy,
) -> String {
    let scope = match (access.unlocks(owner), policy) {
        (true, _) => "all",
        (false, PrivatePolicy::Hide) => "public",
        (false, PrivatePolicy::Redact) => "redacted",
    };
    memory::rendered_key(entry_key, u32::from(fields.bits()), scope)
}

/// The view kept under `key`, while its entry is still fresh.
pub fn recall<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    key: &str,
) -> Option<DataAnswer> {
    let kept = svc.memory_rendered(key)?;
    let freshness =
        entry::found_freshness(kept.fetched_at_ms, svc.clock.now_ms(), svc.cfg.fresh_ttl);
    matches!(freshness, Freshness::Fresh { .. }).then(|| DataAnswer {
        // `String::from`, not `to_string`: no formatting machinery for a 17 KiB copy.
        body: String::from(&*kept.body),
        etag: Some(String::from(&*kept.etag)),
        status: CacheStatus::Hit,
        freshness,
        retry_after: None,
    })
}

/// Keeps a fresh view of an entry, `at` `(fetched_at, version)`, for the next callers of its scope.
pub fn keep<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    key: &str,
    answer: &mut DataAnswer,
    at: (u64, u64),
) {
    if svc.cfg.memory_ttl_ms == 0 || !matches!(answer.freshness, Freshness::Fresh { .. }) {
        return;
    }
    let etag = respond::etag(answer.body.as_bytes());
    svc.remember_rendered(
        key,
        &Rc::from(answer.body.as_str()),
        &Rc::from(etag.as_str()),
        at,
    );
    answer.etag = Some(etag);
}

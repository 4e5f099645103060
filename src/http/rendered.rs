//! Views kept in the isolate's memory tier: a HIT whose view was rendered moments ago for the same
//! entry, field set, caller scope and view (listing parameters in their normal form, or the
//! summary) is answered without reading KV or serializing again.

use super::respond::{self, DataAnswer};
use crate::cache::entry::{self, Freshness};
use crate::cache::memory;
use crate::cache::Store;
use crate::config::PrivatePolicy;
use crate::fields::FieldSet;
use crate::listing::Params;
use crate::service::{CacheStatus, Clock, Service, Transport};
use crate::view::Access;
use std::rc::Rc;

/// What the caller may see of the owner's private repositories: the whole of its scope.
fn scope(access: &Access, owner: &str, policy: PrivatePolicy) -> &'static str {
    crate::view::scope(access, owner, policy).name()
}

/// The memory key of a view of `entry_key` (an entry of `owner`).
pub fn key(
    entry_key: &str,
    fields: FieldSet,
    access: &Access,
    owner: &str,
    policy: PrivatePolicy,
) -> String {
    let scope = scope(access, owner, policy);
    memory::rendered_key(entry_key, u32::from(fields.bits()), scope)
}

/// `key` of a listing view, with its parameters' normal form when it has any (without, the key
/// is the plain listing's): two spellings of one view share it, two views never do.
pub fn listing_key(
    entry_key: &str,
    fields: FieldSet,
    access: &Access,
    owner: &str,
    policy: PrivatePolicy,
    params: Option<&Params>,
) -> String {
    let mut key = key(entry_key, fields, access, owner, policy);
    if let Some(p) = params {
        key.push('|');
        key.push_str(&p.key());
    }
    key
}

/// The memory key of the summary of `entry_key`: the scope decides every count.
pub fn summary_key(entry_key: &str, access: &Access, owner: &str, policy: PrivatePolicy) -> String {
    let mut key = String::with_capacity(entry_key.len() + 20);
    key.push_str(entry_key);
    key.push_str("|summary|");
    key.push_str(scope(access, owner, policy));
    key
}

/// The view kept under `key`, while its entry is still fresh.
pub fn recall<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    key: &str,
) -> Option<DataAnswer> {
    recall_counted(svc, key).map(|(answer, _)| answer)
}

/// `recall`, with the number of records a paged listing view matched.
pub fn recall_counted<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    key: &str,
) -> Option<(DataAnswer, Option<u64>)> {
    let kept = svc.memory_rendered(key)?;
    let freshness =
        entry::found_freshness(kept.fetched_at_ms, svc.clock.now_ms(), svc.cfg.fresh_ttl);
    if !matches!(freshness, Freshness::Fresh { .. }) {
        return None;
    }
    let answer = DataAnswer {
        // `String::from`, not `to_string`: no formatting machinery for a 17 KiB copy.
        body: String::from(&*kept.body),
        etag: Some(String::from(&*kept.etag)),
        status: CacheStatus::Hit,
        freshness,
        retry_after: None,
    };
    Some((answer, kept.total))
}

/// Keeps a fresh view of an entry, `at` `(fetched_at, version)`, for the next callers of its
/// scope; `total` is what a paged listing view matched.
pub fn keep<S: Store, T: Transport, C: Clock>(
    svc: &Service<'_, S, T, C>,
    key: &str,
    answer: &mut DataAnswer,
    total: Option<u64>,
    at: (u64, u64),
) {
    if svc.cfg.memory_ttl_ms == 0 || !matches!(answer.freshness, Freshness::Fresh { .. }) {
        return;
    }
    let etag = respond::etag(answer.body.as_bytes());
    svc.remember_rendered(
        key,
        (
            &Rc::from(answer.body.as_str()),
            &Rc::from(etag.as_str()),
            total,
        ),
        at,
    );
    answer.etag = Some(etag);
}

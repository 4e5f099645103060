//! The memory tier's bound on the real heap: with a counting allocator, a long sequence of
//! requests built to make slots (every `fields=` subset of a listing and of many repositories,
//! many names, time passing so slots expire) never grows the live heap past the tier's budget.
//! One test in its own binary: the allocator counts every thread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use forgelens::cache::memory::MAX_BYTES;
use forgelens::fields::ALLOWED;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The `fields=` value of subset `bits` of the allowed fields (never empty).
fn subset(bits: u32) -> String {
    let chosen: Vec<&str> = ALLOWED
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, f)| *f)
        .collect();
    chosen.join(",")
}

#[test]
fn no_request_sequence_grows_the_heap_past_the_tier_budget() {
    let owners: Vec<String> = (0..50).map(|i| format!("o{i:02}")).collect();
    let sizes: Vec<(&str, usize)> = owners.iter().map(|o| (o.as_str(), 200)).collect();
    let mut w = World::new(&sizes);
    w.vars = vec![
        ("MEMORY_TTL_MS", "10000".into()),
        ("FRESH_TTL_SECONDS", "3600".into()),
    ];
    // Everything is in KV first, so the sequence below asks GitHub nothing (its log would grow).
    for o in &owners {
        assert_eq!(w.get(&format!("/v1/orgs/{o}/repos")).status, 200);
    }
    let paths: Vec<String> = (1..12_000u32)
        .map(|i| {
            let fields = subset(i % ((1 << ALLOWED.len()) - 1) + 1);
            let o = &owners[(i as usize / 3) % owners.len()];
            match i % 3 {
                0 => format!("/v1/orgs/{o}/repos?fields={fields}"),
                1 => format!("/v1/repos/{o}/r{:03}?fields={fields}", i % 200),
                _ => format!(
                    "/v1/repos?names={o}/r{:03},{o}/r{:03}&fields={fields}",
                    i % 200,
                    (i * 7) % 200
                ),
            }
        })
        .collect();
    let calls = w.calls();
    let base = live();
    let mut peak = 0;
    for (i, path) in paths.iter().enumerate() {
        let r = w.get(path);
        // Every fifth repository is private: anonymous callers are told it is not found.
        assert!(matches!(r.status, 200 | 404), "{path}: {}", r.status);
        drop(r);
        peak = peak.max(live() - base);
        if i % 1_000 == 999 {
            // Slots expire as time passes: they are reaped, not left for eviction.
            w.clock.0.set(w.clock.0.get() + 4_000);
        }
    }
    assert_eq!(
        w.calls(),
        calls,
        "the sequence was answered from KV and memory"
    );
    let bound = MAX_BYTES as isize;
    assert!(
        peak <= bound,
        "the heap grew by {peak} bytes, over the tier's {bound}"
    );
    // The sequence did reach the budget: the bound is what held it, not the sequence's size.
    assert!(
        peak > bound / 2,
        "the sequence only grew the heap by {peak} bytes"
    );
    eprintln!("heap growth: at most {peak} bytes of a {bound}-byte budget");
    drop(w);
    flood_of_tiny_answers();
}

/// Answers whose keys outweigh their bodies (`fields=name` of a few hundred thousand names):
/// before the tier counted keys and slots, 16 MiB of bookkeeping held several times as much.
fn flood_of_tiny_answers() {
    let w = World::new(&[("acme", 1)]);
    let cfg = forgelens::config::Config::from_lookup(|name| {
        (name == "MEMORY_TTL_MS").then(|| "10000".to_string())
    })
    .unwrap();
    let forge = forgelens::forge::github::GitHub::from_config(&cfg);
    let svc = forgelens::service::Service::new(&cfg, &w.store, &w.gh, &w.clock, &forge);
    // A tier of its own: the one the requests filled would be evicted, not grown.
    forgelens::cache::memory::with(|t| *t = forgelens::cache::memory::Tier::new(MAX_BYTES));
    let body: std::rc::Rc<str> = r#"{"name":"r"}"#.into();
    let etag: std::rc::Rc<str> = "\"0123456789abcdef\"".into();
    let base = live();
    let mut peak = 0;
    for i in 0..300_000u32 {
        let key = format!("v1:repo:owner-{i:06}/repository-{i:06}|1|anon");
        svc.remember_rendered(&key, (&body, &etag, None), (T0, T0));
        if i % 1_000 == 0 {
            peak = peak.max(live() - base);
        }
    }
    peak = peak.max(live() - base);
    let bound = MAX_BYTES as isize;
    assert!(
        peak <= bound,
        "tiny answers grew the heap by {peak} bytes, over {bound}"
    );
    assert!(
        peak > 1 << 20,
        "only {peak} bytes were kept: the flood did not reach the tier"
    );
    eprintln!("tiny answers: at most {peak} bytes of a {bound}-byte budget");
}

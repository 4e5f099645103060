//! A deterministic simulation of the read and delivery paths: GitHub's truth as a model, two
//! worker locations (each with its own memory tier and its view of KV, which another location's
//! writes reach late), the owner directories with their alarms, and a seeded scheduler that picks
//! which pending task proceeds at every await, on one virtual clock. Each seed draws a run of
//! operations (reads in either location; GitHub changes, renames and transfers with their signed
//! deliveries delivered, lost, duplicated, replayed, delayed, reordered or sent to either
//! location; purges, installation events, cron runs, evictions) and faults (GitHub 5xx, timeouts,
//! "Something went wrong", rate limits, answers lagging a change, KV refusals and per-key write
//! limits, late alarms), and checks DESIGN.md's correctness invariants as it goes and once faults
//! stop (`sim/ops.rs` the operations, `sim/checks.rs` the checks).
//!
//! `SIM_SEEDS=n` runs seeds 1 to n (`SIM_FROM=k`: k to n) (default: enough for about a minute in CI), `SIM_SEED=s` replays one
//! seed exactly, `SIM_STEPS=k` sets the operations per seed, `SIM_KEEP_GOING=1` runs every seed
//! and lists the failing ones at the end. A failure prints the seed, the
//! invariant and the trace of the steps that led to it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod sim;

use forgelens::http::Response;
use forgelens::testkit::{mint, ADMIN_TOKEN};
use serde_json::{json, Value};
use sim::exec::{run, Sched, SimClock, Spawner, Stuck};
use sim::github::{FromDirectory, RepoState, SimGitHub, Truth};
use sim::isolate::Isolates;
use sim::kv::{SimKv, SimStore};
use sim::world::SimWorld;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

pub const T0: u64 = 1_700_000_000_000;
const SECRET: &str = "simulation-webhook-secret";
const READ_SECRET: &str = "simulation-read-token-secret-0123456789";
const OWNER: &str = "acme";
/// Where repositories transferred out go and transferred in come from (served, never read).
const ELSEWHERE: &str = "elsewhere";
const FRESH_TTL_S: u64 = 300;

/// What the checks remember of the run.
#[derive(Default)]
struct Book {
    /// Per name: the id of its last change in GitHub's truth, and when it happened.
    last_change: HashMap<String, (u64, u64)>,
    /// Per name: the last time GitHub's truth made it visible to anonymous callers (publicized,
    /// created).
    widened_at: HashMap<String, u64>,
    /// Per name: its last narrowing change whose delivery was answered 2xx, and where.
    hidden: HashMap<String, Hidden>,
    /// Changes whose delivery was answered 2xx.
    delivered: std::collections::HashSet<u64>,
    /// Per name, in order: how many frames the owner's object had sent when GitHub's truth
    /// widened it (`false`) or when a delivery narrowing it was first answered (`true`).
    marks: HashMap<String, Vec<(usize, bool)>>,
    /// Whether any answer lagged (then only narrowing changes must be in the listing at once).
    violations: Vec<String>,
    /// Owner-level invalidations answered 2xx: (sent, answered, location).
    purged: Vec<(u64, u64, usize)>,
    counts: BTreeMap<&'static str, u64>,
    next_change: u64,
    /// How long after faults stopped the owner's object still had changes queued for GitHub or
    /// a listing waiting for its KV write (sampled every 250 ms).
    quiet_after_ms: u64,
}

/// A narrowing change answered 2xx: when it happened, where its delivery was first answered
/// (applied), and when each other location answered a copy (found remembered there).
struct Hidden {
    changed: u64,
    first: (u64, usize),
    later: [Option<u64>; sim::world::LOCATIONS],
}

struct Run<'a> {
    w: &'a SimWorld<'a>,
    book: RefCell<Book>,
    steps: usize,
}

fn node_name(i: usize) -> String {
    format!("r{i:03}")
}

fn initial(sched: &Sched) -> (Truth, usize) {
    // The larger owners are built in parts side by side (at `BUILD_CONCURRENCY` above 1), mixed
    // as real ones are or nearly all in one part.
    let n = [3, 40, 130, 260, 450, 800][sched.below(6)];
    let lopsided = sched.chance(3);
    let mut repos = BTreeMap::new();
    for i in 0..n {
        let (visibility, archived, fork) = if lopsided {
            let visibility = match i % 29 {
                3 => "PRIVATE",
                17 => "INTERNAL",
                _ => "PUBLIC",
            };
            (visibility, i % 31 == 30, i % 37 == 36)
        } else {
            let visibility = match i % 7 {
                3 => "PRIVATE",
                6 => "INTERNAL",
                _ => "PUBLIC",
            };
            (visibility, i % 11 == 10, i % 13 == 12)
        };
        let ci = [Some("SUCCESS"), Some("FAILURE"), None][i % 3];
        repos.insert(
            node_name(i),
            RepoState {
                name: node_name(i),
                visibility,
                archived,
                fork,
                ci,
                pushes: 0,
            },
        );
    }
    let mut truth = Truth::new();
    truth.insert(OWNER.into(), repos);
    (truth, n)
}

fn token() -> String {
    let claims = json!({"exp": T0 / 1000 + 100_000, "orgs": [OWNER]}).to_string();
    format!(
        "Bearer {}",
        mint(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, READ_SECRET)
    )
}

fn body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

impl<'a> Run<'a> {
    pub(crate) fn count(&self, what: &'static str) {
        *self.book.borrow_mut().counts.entry(what).or_default() += 1;
    }

    pub(crate) fn violate(&self, invariant: &str, detail: String) {
        let line = format!("{invariant}: {detail}");
        self.w.note(format!("VIOLATION {line}"));
        if std::env::var("SIM_DEBUG_MEMORY").is_ok() {
            for (owner, d) in self.w.directories.borrow().iter() {
                eprintln!("object {owner} at violation: {:?}", d.memory.borrow());
            }
        }
        self.book.borrow_mut().violations.push(line);
    }

    async fn scenario(&'a self, sp: Spawner<'a>) {
        let w = self.w;
        w.note(format!(
            "start: {} repositories, MEMORY_TTL_MS {}, KV lag {} ms, UPSTREAM_TIMEOUT_MS {}, objects in isolate {}, BUILD_CONCURRENCY {}",
            w.gh.truth().get(OWNER).map_or(0, BTreeMap::len),
            w.cfg.memory_ttl_ms,
            w.kv.lag_ms.get(),
            w.cfg.upstream_timeout_ms,
            w.object_isolate,
            w.cfg.build_concurrency
        ));
        for _ in 0..self.steps {
            w.sched.sleep(w.sched.below(2_500) as u64).await;
            let roll = w.sched.below(100);
            let sp2 = sp.clone();
            match roll {
                0..=29 => sp.spawn("read", async move { self.read_anonymous(sp2).await }),
                30..=41 => sp.spawn("read other", async move { self.read_other(sp2).await }),
                42..=70 => self.change(sp.clone()).await,
                71..=74 => sp.spawn("move", async move { self.move_during_build(sp2).await }),
                75..=76 => self.stream_fault(),
                77..=80 => sp.spawn("owner-level", async move { self.owner_level(sp2).await }),
                81..=82 => sp.spawn("cron", async move {
                    let loc = self.location();
                    let asked = self.w.cron(loc).await;
                    self.count("cron");
                    self.w.note(format!("cron at {loc} asked {asked:?}"));
                }),
                83..=87 => {
                    if w.evict(OWNER) {
                        let stored = match w.stored_listing_loads(OWNER) {
                            None => "",
                            Some(true) => " (its stored listing loads)",
                            Some(false) => " (its stored listing does NOT load)",
                        };
                        w.note(format!("evicted{stored}"));
                        // DESIGN.md, "Live listings": the object keeps the complete listing in
                        // its own storage; a later life answers a KV miss from it (an idle
                        // object's storage is whole: nothing is being written).
                        if w.stored_listing_loads(OWNER) == Some(false) {
                            self.violate(
                                "stored listing",
                                "an idle object's stored live listing does not load".into(),
                            );
                        }
                        self.count("eviction");
                    }
                }
                _ => self.weather(),
            }
        }
        self.settle(sp).await;
        w.stop_alarms.set(true);
    }
}

/// What one seed did.
struct Outcome {
    violations: Vec<String>,
    trace: Vec<String>,
    steps: u64,
    counts: BTreeMap<&'static str, u64>,
    quiet_after_ms: u64,
}

/// Forgets the background-refresh claims an earlier seed left in this thread (`service::flight`
/// keeps them in a thread-local that no isolate swaps): each seed starts as a fresh deployment,
/// so a seed replays alone exactly as it ran among others.
fn forget_refresh_claims() {
    use forgelens::cache::keys;
    use forgelens::names::{FullName, Owner};
    use forgelens::service::flight::release_refresh;
    if let Ok(o) = Owner::parse(OWNER) {
        release_refresh(&keys::org(&o));
    }
    // The names single and batch reads ask (`read_other`).
    let read = (0..20).map(node_name).chain(["n001".to_string()]);
    for name in read {
        if let Ok(n) = FullName::parse(&format!("{OWNER}/{name}")) {
            release_refresh(&keys::repo(&n));
        }
    }
}

fn run_seed(seed: u64, steps: usize) -> Outcome {
    forget_refresh_claims();
    let sched = Sched::new(seed, T0);
    let (truth, _) = initial(&sched);
    let timeout = ["3000", "9000"][sched.below(2)];
    let memory_ttl = ["0", "2000", "10000"][sched.below(3)];
    let kv_lag = [0, 5_000, 60_000][sched.below(3)];
    let object_isolate = [0, 2][sched.below(2)];
    let concurrency = [1, 2, 4, 6][sched.below(4)];
    let mut vars: Vec<(&'static str, String)> = vec![
        ("GITHUB_WEBHOOK_SECRET", SECRET.into()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("READ_TOKEN_SECRET", READ_SECRET.into()),
        ("GITHUB_TOKEN", "simulated-token".into()),
        ("MEMORY_TTL_MS", memory_ttl.into()),
        ("UPSTREAM_TIMEOUT_MS", timeout.into()),
        ("FRESH_TTL_SECONDS", FRESH_TTL_S.to_string()),
        ("BUILD_CONCURRENCY", concurrency.to_string()),
    ];
    if sched.chance(2) {
        vars.push(("PINNED_ORGS", OWNER.into()));
    }
    let cfg = SimWorld::config(&vars);
    let kv = SimKv::new(&sched);
    kv.lag_ms.set(kv_lag);
    let forge = forgelens::forge::github::GitHub::from_config(&cfg);
    let gh = SimGitHub::new(&sched, truth);
    let world = SimWorld {
        sched: &sched,
        clock: SimClock(&sched),
        kv: &kv,
        stores: [0, 1].map(|loc| SimStore { kv: &kv, loc }),
        isolates: Isolates::new(3),
        object_isolate,
        gh: &gh,
        gh_dir: FromDirectory(&gh),
        directories: Default::default(),
        vars,
        cfg,
        forge,
        busy: Cell::new(0),
        alarms_busy: Cell::new(false),
        stop_alarms: Cell::new(false),
        evicted_at: RefCell::default(),
        failures_answered_until: Cell::new(0),
        alarm_late_ms: Cell::new(0),
        trace: RefCell::default(),
        responses: Cell::new(0),
    };
    let r = Run {
        w: &world,
        book: RefCell::default(),
        steps,
    };
    // The listed owner is watched: one subscriber per scope (`check_events`), so an owner-level
    // invalidation starts its rebuild at once, as the object does for its sockets.
    world
        .directories
        .borrow_mut()
        .entry(OWNER.to_ascii_lowercase())
        .or_default()
        .storage
        .subscribers
        .set([1, 1, 1]);
    let result = {
        let sp = Spawner::new();
        let sp2 = sp.clone();
        sp.spawn("scenario", r.scenario(sp2));
        sp.spawn("alarms", world.alarm_daemon());
        run(&sched, &sp, 2_000_000)
    };
    match result {
        Ok(_) => {}
        Err(Stuck::Deadlock(tasks)) => {
            r.violate("progress", format!("deadlock: {tasks:?} wait forever"))
        }
        Err(Stuck::TooManySteps(tasks)) => r.violate("progress", format!("livelock: {tasks:?}")),
    }
    r.check_cost();
    r.check_events();
    let book = r.book.into_inner();
    let mut counts = book.counts;
    counts.insert("github faults", world.gh.faults.get());
    counts.insert("lagging answers", world.gh.lagged.get());
    counts.insert("kv refusals", world.kv.refused.get());
    counts.insert("requests", world.responses.get());
    counts.insert("pages with counts", world.gh.counted_pages.get());
    counts.insert("pages of a part", world.gh.part_pages.get());
    counts.insert("pages from the back", world.gh.back_pages.get());
    Outcome {
        violations: book.violations,
        trace: world.trace.into_inner(),
        steps: steps as u64,
        counts,
        quiet_after_ms: book.quiet_after_ms,
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Seeds past CI's range that found real bugs (TESTING.md, "What it found"): always run too.
const REGRESSION_SEEDS: &[u64] = &[963, 1057, 1805, 3499, 3819, 5930, 7315, 8901];

/// Runs the seeds `SIM_SEED` (one) or `SIM_SEEDS` (how many, from 1), panicking on the first
/// violation with its seed and trace.
fn explore(default_seeds: u64) {
    let steps = env("SIM_STEPS").unwrap_or(60) as usize;
    let seeds: Vec<u64> = match env("SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let n = env("SIM_SEEDS").unwrap_or(default_seeds);
            let extra = REGRESSION_SEEDS.iter().filter(|&&s| s > n);
            let from = env("SIM_FROM").unwrap_or(1);
            (from..=n).chain(extra.copied()).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let progress = std::env::var("SIM_PROGRESS").is_ok();
    // `SIM_KEEP_GOING=1`: run every seed, then list those that failed.
    let keep_going = std::env::var("SIM_KEEP_GOING").is_ok();
    let mut failed: Vec<String> = Vec::new();
    // The slowest convergence seen: ms after faults stopped until nothing waited, and its seed.
    let mut slowest = (0, 0);
    for (i, &seed) in seeds.iter().enumerate() {
        let outcome = std::panic::catch_unwind(|| run_seed(seed, steps));
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("seed {seed}: a panic ({why}); replay with SIM_SEED={seed}");
            }
        };
        if !outcome.violations.is_empty() && keep_going {
            // Survey mode: every failing seed, its first violation, and whether an eviction
            // found the stored listing unloadable before it.
            let unloadable = outcome.trace.iter().any(|l| l.contains("does NOT load"));
            failed.push(format!(
                "seed {seed}{}: {}",
                if unloadable {
                    " (a stored listing did not load)"
                } else {
                    ""
                },
                outcome.violations[0]
            ));
            continue;
        }
        if !outcome.violations.is_empty() {
            let mut report = String::new();
            let _ = writeln!(
                report,
                "seed {seed} broke an invariant (replay: SIM_SEED={seed}):"
            );
            for v in &outcome.violations {
                let _ = writeln!(report, "  {v}");
            }
            let _ = writeln!(report, "trace (ms since start, last 80 steps):");
            let keep = env("SIM_TRACE").unwrap_or(80) as usize;
            let from = outcome.trace.len().saturating_sub(keep);
            for line in &outcome.trace[from..] {
                let _ = writeln!(report, "  {line}");
            }
            panic!("{report}");
        }
        for (k, v) in outcome.counts {
            *totals.entry(k).or_default() += v;
        }
        *totals.entry("operations").or_default() += outcome.steps;
        if outcome.quiet_after_ms >= slowest.0 {
            slowest = (outcome.quiet_after_ms, seed);
        }
        if progress && (i + 1) % 100 == 0 {
            eprintln!("{} seeds, {:.0?}", i + 1, started.elapsed());
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {} seeds broke an invariant:\n{}",
            failed.len(),
            seeds.len(),
            failed.join("\n")
        );
    }
    eprintln!(
        "simulation: {} seeds in {:.1?}, every invariant held; slowest convergence {} ms after faults stopped (seed {}); {totals:?}",
        seeds.len(),
        started.elapsed(),
        slowest.0,
        slowest.1
    );
}

/// CI's share: about a minute on two cores (`npm run simulate` explores further).
#[test]
fn the_invariants_hold_under_seeded_interleavings_and_faults() {
    explore(1_500);
}

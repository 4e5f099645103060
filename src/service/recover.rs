//! Delivery recovery (DESIGN.md, "Delivery recovery"): the hooks signed deliveries came from are
//! remembered, and each cron run reads their deliveries down to a high-water mark and has GitHub
//! send again those it failed to make. The rules are `recovery::plan`'s; this is their I/O.

use super::{Clock, Service, Transport};
use crate::cache::{keys, Store};
use crate::forge::github::deliveries::{self, HookTarget, Listed};
use crate::forge::github::parse::rate_limited;
use crate::forge::github::payload::Payload;
use crate::names::{FullName, Owner};
use crate::recovery::plan::{self, HookState, LastRun, Scan, NOT_PERMITTED_MS};
use crate::secret::Secret;
use std::cell::RefCell;

/// A learned hook is remembered this long after its last signed delivery.
const HOOK_TTL_S: u64 = 30 * 24 * 3600;
/// Hooks recovered per run (the index holds no more).
const MAX_HOOKS: usize = 100;
/// An isolate writes a hook's key again at most this often (not once per delivery).
const RELEARN_MS: u64 = 3_600_000;

thread_local! {
    /// (hook id, learned again after ms): hooks this isolate wrote recently.
    static LEARNED: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Swaps this isolate's memory of the hooks it learned with `other`: the simulation runs two
/// locations' isolates on one thread, each with its own.
#[cfg(feature = "testkit")]
pub fn swap_learned(other: &mut Vec<(u64, u64)>) {
    LEARNED.with(|l| std::mem::swap(&mut *l.borrow_mut(), other));
}

/// One hook's outcome of a run, for the log and `/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    pub target: HookTarget,
    pub state: HookState,
}

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// Remembers the hook a correctly signed delivery came from (`X-GitHub-Hook-ID`, and
    /// `X-GitHub-Hook-Installation-Target-Type` with the payload's organization or repository).
    /// Best effort: a refused write is learned from the next delivery.
    pub async fn learn_hook(&self, id: Option<&str>, kind: Option<&str>, payload: &Payload) {
        let Some(id) = id.and_then(|i| i.parse::<u64>().ok()) else {
            return;
        };
        let now = self.clock.now_ms();
        if LEARNED.with(|l| l.borrow().iter().any(|(i, until)| *i == id && *until > now)) {
            return;
        }
        let label = match kind {
            Some("organization") => payload
                .organization
                .as_ref()
                .and_then(|o| o.login.as_deref())
                .and_then(|l| Owner::parse(l).ok())
                .map(|o| format!("organization:{}", o.as_str())),
            Some("repository") => payload
                .repository
                .as_ref()
                .and_then(|r| r.full_name.as_deref())
                .and_then(|n| FullName::parse(n).ok())
                .map(|n| format!("repository:{}/{}", n.owner.as_str(), n.repo.as_str())),
            Some("integration") => {
                let _ = self
                    .store
                    .put(&keys::hook("app"), &id.to_string(), Some(HOOK_TTL_S))
                    .await;
                None
            }
            _ => None,
        };
        if let Some(label) = label {
            let key = keys::hook(&id.to_string());
            if self
                .store
                .put(&key, &label, Some(HOOK_TTL_S))
                .await
                .is_err()
            {
                return;
            }
            let mut ids = self.hook_ids().await;
            if !ids.contains(&id) && ids.len() < MAX_HOOKS {
                ids.push(id);
                let text: Vec<String> = ids.iter().map(u64::to_string).collect();
                // Not marked learned unless listed: the next delivery tries again.
                if self
                    .store
                    .put(keys::HOOKS, &text.join(","), None)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        LEARNED.with(|l| {
            let mut l = l.borrow_mut();
            l.retain(|(i, until)| *i != id && *until > now);
            l.push((id, now + RELEARN_MS));
        });
    }

    async fn hook_ids(&self) -> Vec<u64> {
        let text = self.store.get(keys::HOOKS).await.ok().flatten();
        text.unwrap_or_default()
            .split(',')
            .filter_map(|i| i.trim().parse().ok())
            .collect()
    }

    /// The hooks recovery reads: the App's (with App settings) and every hook learned.
    pub async fn hooks(&self) -> Vec<HookTarget> {
        let mut hooks = Vec::new();
        if self.cfg.app.is_some() {
            hooks.push(HookTarget::App);
        }
        for id in self.hook_ids().await {
            let label = self.store.get(&keys::hook(&id.to_string())).await;
            let target = label.ok().flatten().and_then(|l| target(&l, id));
            hooks.extend(target);
        }
        hooks
    }

    /// Each hook's state as the last run left it (`/v1/status`).
    pub async fn recovery_states(&self) -> Vec<HookReport> {
        let mut out = Vec::new();
        for target in self.hooks().await {
            let state = self.hook_state(&target).await;
            out.push(HookReport { target, state });
        }
        out
    }

    async fn hook_state(&self, target: &HookTarget) -> HookState {
        let text = self.store.get(&state_key(target)).await.ok().flatten();
        text.and_then(|t| HookState::decode(&t)).unwrap_or_default()
    }

    /// One cron run's recovery over every hook (nothing with `DELIVERY_RECOVERY=off`).
    pub async fn recover(&self) -> Vec<HookReport> {
        if !self.cfg.delivery_recovery {
            return Vec::new();
        }
        let mut out = Vec::new();
        for target in self.hooks().await {
            let mut state = self.hook_state(&target).await;
            self.recover_hook(&target, &mut state).await;
            let text = state.encode();
            let _ = self
                .store
                .put(&state_key(&target), &text, Some(HOOK_TTL_S))
                .await;
            if let Some(run) = &state.last_run {
                // Keys sorted (`crate::log::line`).
                #[derive(serde::Serialize)]
                struct Line<'a> {
                    failed_found: u32,
                    gave_up: u32,
                    hook: String,
                    hook_id: Option<u64>,
                    level: &'a str,
                    msg: &'a str,
                    permitted: bool,
                    redelivered: u32,
                }
                crate::log::line(&Line {
                    failed_found: run.failed_found,
                    gave_up: run.gave_up,
                    hook: target.label(),
                    hook_id: target.hook_id(),
                    level: "info",
                    msg: "delivery recovery",
                    permitted: run.permitted,
                    redelivered: run.redelivered,
                });
            }
            out.push(HookReport { target, state });
        }
        out
    }

    /// The credential a hook's deliveries are read with, and the rate-limit memory it spends.
    async fn hook_credential(&self, target: &HookTarget) -> Option<(Secret, String)> {
        match target {
            HookTarget::App => {
                let app = self.cfg.app.as_ref()?;
                let jwt = self.app_jwt(app).await.ok()?;
                Some((jwt, keys::ratelimit(&format!("app:{}", app.id))))
            }
            _ => {
                let auth = self.token_auth();
                Some((auth.token?, auth.rate_key))
            }
        }
    }

    async fn recover_hook(&self, target: &HookTarget, state: &mut HookState) {
        let now = self.clock.now_ms();
        if state
            .not_permitted_until_ms
            .is_some_and(|until| until > now)
        {
            return;
        }
        let mut run = LastRun {
            at_ms: now,
            permitted: true,
            ..LastRun::default()
        };
        let Some((credential, rate_key)) = self.hook_credential(target).await else {
            run.permitted = false;
            state.last_run = Some(run);
            return;
        };
        // Recovery keeps the cache right: it goes on below the reserve, never past a reset.
        if self.held_back(&rate_key, true).await.is_some() {
            return;
        }
        let api = &self.cfg.api_url;
        let timeout = self.cfg.upstream_timeout_ms;
        let mut scan = Scan::new(state, now);
        let mut cursor = state.resume.as_ref().map(|r| r.cursor.clone());
        let mut read_all = false;
        for _ in 0..plan::MAX_PAGES {
            let call = deliveries::list_call(api, target, cursor.as_deref(), &credential);
            let Ok(reply) = self.transport.send(&call, timeout).await else {
                break;
            };
            if let Some(limited) = rate_limited(&reply) {
                self.remember_failure(&rate_key, &limited).await;
                break;
            }
            match deliveries::parse_list(&reply) {
                Ok(Listed::Page(page, next)) => {
                    cursor = next;
                    if !scan.read(&page) {
                        read_all = true;
                        break;
                    }
                    if cursor.is_none() {
                        scan.ended();
                        read_all = true;
                        break;
                    }
                }
                Ok(Listed::NotPermitted(_)) => {
                    state.not_permitted_until_ms = Some(now + NOT_PERMITTED_MS);
                    run.permitted = false;
                    state.last_run = Some(run);
                    return;
                }
                Err(_) => break,
            }
        }
        if read_all || cursor.is_some() {
            scan.advance(state, if read_all { None } else { cursor });
        }
        run.failed_found = u32::try_from(scan.failed().count()).unwrap_or(u32::MAX);
        let todo = plan::plan(state, &scan, now);
        run.gave_up = todo.gave_up;
        for (guid, id) in todo.redeliver {
            let call = deliveries::attempt_call(api, target, id, &credential);
            let reply = self.transport.send(&call, timeout).await;
            if let Some(limited) = reply.as_ref().ok().and_then(rate_limited) {
                // No call to this credential until the reset; the rest wait, pending.
                self.remember_failure(&rate_key, &limited).await;
                break;
            }
            let accepted = reply.is_ok_and(|r| (200..300).contains(&r.status));
            if plan::tried(state, &guid, accepted) {
                run.gave_up += 1;
            }
            if accepted {
                run.redelivered += 1;
            }
        }
        state.last_run = Some(run);
    }
}

/// A learned hook's target from its stored label.
fn target(label: &str, id: u64) -> Option<HookTarget> {
    if let Some(login) = label.strip_prefix("organization:") {
        return Owner::parse(login)
            .ok()
            .map(|o| HookTarget::Organization(o, id));
    }
    let name = label.strip_prefix("repository:")?;
    FullName::parse(name)
        .ok()
        .map(|n| HookTarget::Repository(n, id))
}

fn state_key(target: &HookTarget) -> String {
    keys::recovery(&target.hook_id().map_or("app".into(), |i| i.to_string()))
}

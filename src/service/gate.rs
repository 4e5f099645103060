//! The one gate upstream: every GraphQL call goes through `Service::call`, which keeps the
//! request's deadline, the client's `UPSTREAM_LIMITER` budget (asked once per request) and the
//! credential's remembered GitHub limits (spent, or low below `GITHUB_BUDGET_RESERVE`, in KV so
//! every isolate and object sees them), and maps what failed to the error a caller gets.

use super::{Auth, Clock, Service, Transport, DEFAULT_RETRY_AFTER, LIMITER_PERIOD_S, MIN_KV_TTL};
use crate::cache::Store;
use crate::error::ApiError;
use crate::forge::{BatchAnswer, Forge, HttpCall, HttpReply, OwnerPage, RateInfo, UpstreamFailure};
use crate::time::{format_rfc3339, parse_rfc3339};
use std::cell::{Cell, RefCell};

/// What is remembered of a credential's GitHub budget until `until_ms` (its reset): spent, or
/// only `low` (below `GITHUB_BUDGET_RESERVE`: only essential work goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    pub until_ms: u64,
    pub low: bool,
}

/// How a low budget is written in KV; a spent one is the bare reset time.
const LOW_PREFIX: &str = "low ";

impl Limit {
    fn encode(self) -> String {
        let at = format_rfc3339(self.until_ms);
        if self.low {
            format!("{LOW_PREFIX}{at}")
        } else {
            at
        }
    }

    fn decode(text: &str) -> Option<Limit> {
        let (low, at) = match text.strip_prefix(LOW_PREFIX) {
            Some(at) => (true, at),
            None => (false, text),
        };
        parse_rfc3339(at).map(|until_ms| Limit { until_ms, low })
    }

    /// Whether this limit stops a call now (`essential` work goes on while it is only low).
    fn stops(self, now_ms: u64, essential: bool) -> bool {
        self.until_ms > now_ms && !(self.low && essential)
    }
}

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// Whether the caller may cause an upstream call (asked once per request).
    pub(super) async fn admitted(&self) -> bool {
        let Some(limiter) = self.limiter else {
            return true;
        };
        if let Some(known) = self.admitted.get() {
            return known;
        }
        let ok = limiter.admit().await;
        self.admitted.set(Some(ok));
        ok
    }

    /// For an answer holding a name answered `not_found` (missing, or a record the caller may
    /// not see): such a name costs the caller's budget what a name GitHub does not have would
    /// (asked once per request, like any upstream-bound answer), and `Server-Timing` names every
    /// backend a lookup may use, so neither the limiter nor the metric names tell a hidden
    /// record from a missing one. Returns whether the caller is admitted.
    pub async fn charge_unseen(&self) -> bool {
        let mut t = self.timing.get();
        for slot in [&mut t.mem_ms, &mut t.kv_ms, &mut t.upstream_ms] {
            slot.get_or_insert(0);
        }
        self.timing.set(t);
        self.admitted().await
    }

    /// The same service with its own upstream budget (background work).
    pub(super) fn with_budget(&self, budget_ms: u64) -> Self {
        Service {
            deadline_ms: self.clock.now_ms().saturating_add(budget_ms),
            limited_until: RefCell::new(self.limited_until.borrow().clone()),
            // Background work is not the caller's: it is never limited or timed.
            limiter: None,
            admitted: Cell::new(None),
            lookups: Cell::new(self.lookups.get()),
            timing: Cell::default(),
            usage: Cell::default(),
            ..*self
        }
    }
    /// One upstream round trip with what is left of the request's budget, unless GitHub said
    /// the rate limit is spent: then no call is made until the reset.
    pub(super) async fn call<R: HasRate>(
        &self,
        auth: &Auth,
        build: impl Fn(&dyn Forge) -> HttpCall,
        parse: impl Fn(&dyn Forge, &HttpReply) -> Result<R, UpstreamFailure>,
    ) -> Result<R, UpstreamFailure> {
        // Only parsing depends on `R`: the gates and what a reply teaches are one function each
        // for every reply type.
        let reply = self.send(auth, &build).await?;
        let parsed = parse(self.forge, &reply);
        self.note_outcome(&auth.rate_key, parsed.as_ref().map(HasRate::rate))
            .await;
        parsed
    }

    /// `call`'s round trip: the gates, then the call `build` makes, sent.
    async fn send(
        &self,
        auth: &Auth,
        build: &dyn Fn(&dyn Forge) -> HttpCall,
    ) -> Result<HttpReply, UpstreamFailure> {
        let rate_key = &auth.rate_key;
        if let Some(held) = self.held_back(rate_key, self.essential).await {
            return Err(held);
        }
        if !self.admitted().await {
            return Err(UpstreamFailure::ClientLimited);
        }
        let now = self.clock.now_ms();
        let left = self.deadline_ms.saturating_sub(now);
        if left == 0 {
            return Err(UpstreamFailure::Unavailable(
                "request deadline reached".into(),
            ));
        }
        self.asked_upstream(true);
        let reply = self.transport.send(&build(self.forge), left).await;
        self.spent(|t| &mut t.upstream_ms, now);
        let reply = reply.map_err(UpstreamFailure::Unavailable)?;
        if let (401, Some((id, key))) = (reply.status, &auth.installation) {
            // Revoked, or the App was uninstalled or suspended: not installed for a minute.
            self.not_installed(*id, key).await;
        }
        Ok(reply)
    }

    /// What `call` remembers of a parsed reply: the rate limit it reported, or its failure.
    async fn note_outcome(
        &self,
        rate_key: &str,
        outcome: Result<Option<RateInfo>, &UpstreamFailure>,
    ) {
        match outcome {
            Ok(Some(rate)) => {
                let low = rate.below_reserve(self.cfg.budget_reserve);
                let limit = Limit {
                    until_ms: rate.reset_at_ms,
                    low: rate.remaining > 0,
                };
                // Written once per window and state, not on every answer.
                let news = self.limited_until(rate_key).await != Some(limit);
                if (rate.remaining == 0 || low) && news {
                    self.remember_limit(rate_key, limit).await;
                }
            }
            Ok(None) => {}
            Err(failure) => self.remember_failure(rate_key, failure).await,
        }
    }

    /// The failure a call with the credential behind `rate_key` meets before it is sent, while
    /// a remembered limit holds it back (`essential` work goes on while the budget is only low).
    pub(super) async fn held_back(
        &self,
        rate_key: &str,
        essential: bool,
    ) -> Option<UpstreamFailure> {
        let now = self.clock.now_ms();
        let limit = self.limited_until(rate_key).await?;
        limit
            .stops(now, essential)
            .then_some(UpstreamFailure::RateLimited {
                retry_after_s: None,
                reset_at_ms: Some(limit.until_ms),
            })
    }

    /// Remembers a spent rate limit GitHub reported (a reset time, a `retry-after`, or neither).
    pub(super) async fn remember_failure(&self, rate_key: &str, failure: &UpstreamFailure) {
        let UpstreamFailure::RateLimited {
            retry_after_s,
            reset_at_ms,
        } = failure
        else {
            return;
        };
        let now = self.clock.now_ms();
        let from_retry = retry_after_s.map(|s| now.saturating_add(s.saturating_mul(1000)));
        let until_ms = reset_at_ms
            .or(from_retry)
            .unwrap_or(now + DEFAULT_RETRY_AFTER * 1000);
        let limit = Limit {
            until_ms,
            low: false,
        };
        self.remember_limit(rate_key, limit).await;
    }

    /// The budget remembered under `rate_key`, if any (read once per request and key).
    pub(crate) async fn limited_until(&self, rate_key: &str) -> Option<Limit> {
        if let Some((_, known)) = self
            .limited_until
            .borrow()
            .iter()
            .find(|(k, _)| k == rate_key)
        {
            return *known;
        }
        let started = self.clock.now_ms();
        let text = self.store.get(rate_key).await.ok().flatten();
        self.spent(|t| &mut t.kv_ms, started);
        let limit = text.as_deref().and_then(Limit::decode);
        self.set_limit(rate_key, limit);
        limit
    }

    pub(super) fn set_limit(&self, rate_key: &str, until: Option<Limit>) {
        let mut known = self.limited_until.borrow_mut();
        match known.iter_mut().find(|(k, _)| k == rate_key) {
            Some((_, slot)) => *slot = until,
            None => known.push((rate_key.to_string(), until)),
        }
    }

    /// Remembers in KV, so other isolates and objects see it too, that no call (or only
    /// essential ones) with this credential should be made until the reset.
    pub(super) async fn remember_limit(&self, rate_key: &str, limit: Limit) {
        self.set_limit(rate_key, Some(limit));
        let ttl = limit
            .until_ms
            .saturating_sub(self.clock.now_ms())
            .div_ceil(1000)
            .max(MIN_KV_TTL);
        let _ = self.store.put(rate_key, &limit.encode(), Some(ttl)).await;
    }

    pub(crate) fn failure_to_error(&self, failure: UpstreamFailure) -> ApiError {
        match failure {
            UpstreamFailure::NotFound => ApiError::NotFound,
            UpstreamFailure::Unusable(detail) | UpstreamFailure::Overloaded(detail) => {
                ApiError::Upstream(detail)
            }
            UpstreamFailure::Unavailable(detail) => ApiError::UpstreamUnavailable(detail),
            UpstreamFailure::ClientLimited => ApiError::ClientRateLimited {
                retry_after: LIMITER_PERIOD_S,
            },
            UpstreamFailure::RateLimited {
                retry_after_s,
                reset_at_ms,
            } => {
                let from_reset =
                    reset_at_ms.map(|r| r.saturating_sub(self.clock.now_ms()).div_ceil(1000));
                let retry_after = retry_after_s
                    .or(from_reset)
                    .unwrap_or(DEFAULT_RETRY_AFTER)
                    .max(1);
                ApiError::RateLimited { retry_after }
            }
        }
    }
}

/// Replies that report GitHub's remaining rate-limit budget.
pub(super) trait HasRate {
    fn rate(&self) -> Option<RateInfo>;
}

impl HasRate for OwnerPage {
    fn rate(&self) -> Option<RateInfo> {
        self.rate
    }
}

impl HasRate for BatchAnswer {
    fn rate(&self) -> Option<RateInfo> {
        self.rate
    }
}

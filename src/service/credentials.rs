//! Which credential reads an owner: with a GitHub App, the token of the App's installation on that
//! owner (installation looked up by REST and kept in KV for an hour, or 60 s when there is none;
//! token kept in KV and memory until 5 minutes before it expires); without one, `GITHUB_TOKEN`.
//!
//! A request looks up at most `MAX_LOOKUPS` installations it does not know yet; one App JWT
//! serves every REST call of the isolate until a minute before it expires; App REST rate limits
//! are remembered like GraphQL ones. A token GitHub refuses (GraphQL 401) or will not mint
//! (401/403/404) means the App is gone from that owner: it counts as not installed for 60 s,
//! and `GITHUB_TOKEN` (when set) reads it meanwhile.
//!
//! **Invariant**: tokens and the App JWT live only in `Secret`s and in this isolate's memory and
//! the worker's own KV; they are never answered, logged or put in an error text.

use super::{Clock, Service, Transport};
use crate::cache::{keys, Store};
use crate::config::AppConfig;
use crate::forge::github::app::{self, AppKey, OwnerKind, JWT_LIFETIME_S, TOKEN_MARGIN_MS};
use crate::forge::{HttpCall, HttpReply, UpstreamFailure};
use crate::names::Owner;
use crate::secret::Secret;
use futures::future::LocalBoxFuture;
use std::cell::RefCell;

/// How long a found installation is remembered in KV.
pub const INSTALLATION_TTL_S: u64 = 3600;
/// How long "the App is not installed there" is remembered (KV's minimum TTL).
pub const NO_INSTALLATION_TTL_S: u64 = 60;
const NONE: &str = "none";
/// Installations a request may look up that it does not know yet; names of further owners
/// are answered `rate_limited` (`Retry-After: 1`).
pub const MAX_LOOKUPS: u8 = 10;
/// An App JWT is reused until this long before its `exp`.
const JWT_MARGIN_MS: u64 = 60_000;

/// Signs an App JWT's signing input with RS256 (RSASSA-PKCS1-v1_5, SHA-256). The worker does it
/// with WebCrypto; the core holds no RSA code.
pub trait AppSigner {
    /// # Errors
    /// Why the key could not be imported or the signature made (never the key itself).
    fn sign<'a>(
        &'a self,
        key: &'a AppKey,
        input: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<Vec<u8>, String>>;
}

/// The credential of one upstream call and the rate-limit memory it spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub token: Option<Secret>,
    /// `v1:ratelimit:*`: per installation with an App, per token without.
    pub rate_key: String,
    /// The installation and its `v1:installation:{owner}` key, with an App.
    pub installation: Option<(u64, String)>,
}

/// Entries kept per isolate (oldest dropped first): an isolate serves few owners at a time.
const MEMORY_SLOTS: usize = 64;

thread_local! {
    /// (`v1:installation:{owner}`, installation, remembered until ms). Vecs, not maps: they are
    /// small, and each map type adds its own code to the wasm.
    static INSTALLATIONS: RefCell<Vec<(String, Option<u64>, u64)>> = const { RefCell::new(Vec::new()) };
    /// (installation id, token, usable until ms).
    static TOKENS: RefCell<Vec<(u64, Secret, u64)>> = const { RefCell::new(Vec::new()) };
    /// (App id, JWT, reusable until ms).
    static JWT: RefCell<Option<(u64, Secret, u64)>> = const { RefCell::new(None) };
}

/// Drops what this isolate remembers of the installations behind `keys` (an invalidation).
pub fn forget_installations(keys: &[String]) {
    INSTALLATIONS.with(|m| m.borrow_mut().retain(|(k, _, _)| !keys.contains(k)));
}

fn remember_installation(key: &str, id: Option<u64>, until: u64) {
    INSTALLATIONS.with(|m| {
        let mut m = m.borrow_mut();
        m.retain(|(k, _, _)| k != key);
        if m.len() >= MEMORY_SLOTS {
            m.remove(0);
        }
        m.push((key.to_string(), id, until));
    });
}

fn remember_token(id: u64, token: Option<(Secret, u64)>) {
    TOKENS.with(|m| {
        let mut m = m.borrow_mut();
        m.retain(|(i, _, _)| *i != id);
        if let Some((token, until)) = token {
            if m.len() >= MEMORY_SLOTS {
                m.remove(0);
            }
            m.push((id, token, until));
        }
    });
}

/// `none`, or the installation id, as kept in KV.
fn encode_installation(id: Option<u64>) -> String {
    id.map_or_else(|| NONE.to_string(), |id| id.to_string())
}

fn decode_installation(text: &str) -> Option<Option<u64>> {
    if text == NONE {
        return Some(None);
    }
    text.parse().ok().map(Some)
}

/// `{usable until ms} {token}`, as kept in KV.
fn decode_token(text: &str) -> Option<(Secret, u64)> {
    let (until, token) = text.split_once(' ')?;
    Some((Secret::new(token), until.parse().ok()?))
}

impl<S: Store, T: Transport, C: Clock> Service<'_, S, T, C> {
    /// `GITHUB_TOKEN`, or no credential at all.
    pub(crate) fn token_auth(&self) -> Auth {
        let token = self.cfg.github_token.clone();
        Auth {
            rate_key: keys::ratelimit(token.as_ref().map_or("", |t| t.expose())),
            token,
            installation: None,
        }
    }

    /// The credential for reading `owner`.
    ///
    /// # Errors
    /// `NotFound` when the App is not installed on `owner` and there is no `GITHUB_TOKEN` to fall
    /// back to; why the installation or its token could not be had otherwise.
    pub(crate) async fn auth(&self, owner: &Owner) -> Result<Auth, UpstreamFailure> {
        let Some(app) = &self.cfg.app else {
            return Ok(self.token_auth());
        };
        let key = keys::installation(owner);
        let minted = match self.installation(owner, app).await? {
            Some(id) => match self.installation_token(id, app).await? {
                Some(token) => Some((id, token)),
                None => {
                    self.not_installed(id, &key).await;
                    None
                }
            },
            None => None,
        };
        match minted {
            Some((id, token)) => Ok(Auth {
                token: Some(token),
                rate_key: keys::ratelimit(&format!("installation:{id}")),
                installation: Some((id, key)),
            }),
            None if self.cfg.github_token.is_some() => Ok(self.token_auth()),
            None => Err(UpstreamFailure::NotFound),
        }
    }

    /// The App is gone from the owner behind `key` (uninstalled, suspended, or its token
    /// refused): forget installation `id` and its token, and count the owner as not installed
    /// for 60 s (`GITHUB_TOKEN` reads it meanwhile, when set).
    pub(crate) async fn not_installed(&self, id: u64, key: &str) {
        remember_token(id, None);
        let until = self.clock.now_ms() + self.cfg.memory_ttl_ms;
        if self.cfg.memory_ttl_ms > 0 {
            remember_installation(key, None, until);
        }
        let none = encode_installation(None);
        let _ = futures::future::join(
            self.store.put(key, &none, Some(NO_INSTALLATION_TTL_S)),
            self.store.delete(&keys::token(id)),
        )
        .await;
    }

    /// The App's installation on `owner`: memory, KV, then REST (organizations, then users).
    async fn installation(
        &self,
        owner: &Owner,
        app: &AppConfig,
    ) -> Result<Option<u64>, UpstreamFailure> {
        let key = keys::installation(owner);
        let now = self.clock.now_ms();
        let remembered = INSTALLATIONS.with(|m| {
            m.borrow()
                .iter()
                .find(|(k, _, until)| *k == key && *until > now)
                .map(|(_, id, _)| *id)
        });
        if let Some(id) = remembered {
            return Ok(id);
        }
        let remember = |id: Option<u64>| {
            if self.cfg.memory_ttl_ms > 0 {
                let until = self.clock.now_ms() + self.cfg.memory_ttl_ms;
                remember_installation(&key, id, until);
            }
        };
        let started = self.clock.now_ms();
        let stored = self.store.get(&key).await.ok().flatten();
        self.spent(|t| &mut t.kv_ms, started);
        if let Some(id) = stored.as_deref().and_then(decode_installation) {
            remember(id);
            return Ok(id);
        }
        // A batch naming many owners unknown here must not make a REST call (and a signature)
        // for each: past the cap, their names wait a second.
        if self.lookups.get() >= MAX_LOOKUPS {
            return Err(UpstreamFailure::RateLimited {
                retry_after_s: Some(1),
                reset_at_ms: None,
            });
        }
        self.lookups.set(self.lookups.get() + 1);
        let jwt = self.app_jwt(app).await?;
        let mut found = None;
        for kind in [OwnerKind::Org, OwnerKind::User] {
            let reply = self
                .rest(app, app::installation_call(&app.api_url, owner, kind, &jwt))
                .await?;
            found = app::parse_installation(&reply)?;
            if found.is_some() {
                break;
            }
        }
        let ttl = if found.is_some() {
            INSTALLATION_TTL_S
        } else {
            NO_INSTALLATION_TTL_S
        };
        let _ = self
            .store
            .put(&key, &encode_installation(found), Some(ttl))
            .await;
        remember(found);
        Ok(found)
    }

    /// A token of installation `id`: memory, KV, then REST. Kept until 5 minutes before it
    /// expires, so no call goes out with a token about to lapse. `None` when GitHub will not
    /// mint one (401/403/404: the App is gone from the owner; see `not_installed`).
    async fn installation_token(
        &self,
        id: u64,
        app: &AppConfig,
    ) -> Result<Option<Secret>, UpstreamFailure> {
        let now = self.clock.now_ms();
        let remembered = TOKENS.with(|m| {
            m.borrow()
                .iter()
                .find(|(i, _, until)| *i == id && *until > now)
                .map(|(_, token, _)| token.clone())
        });
        if let Some(token) = remembered {
            return Ok(Some(token));
        }
        let key = keys::token(id);
        let started = self.clock.now_ms();
        let stored = self.store.get(&key).await.ok().flatten();
        self.spent(|t| &mut t.kv_ms, started);
        if let Some((token, until)) = stored.as_deref().and_then(decode_token) {
            if until > now {
                remember_token(id, Some((token.clone(), until)));
                return Ok(Some(token));
            }
        }
        let jwt = self.app_jwt(app).await?;
        let reply = self
            .rest(app, app::token_call(&app.api_url, id, &jwt))
            .await?;
        if matches!(reply.status, 401 | 403 | 404) {
            return Ok(None);
        }
        let issued = app::parse_token(&reply)?;
        let until = issued.expires_at_ms.saturating_sub(TOKEN_MARGIN_MS);
        let now = self.clock.now_ms();
        // A token that lapses within the margin serves this call only.
        if until > now {
            remember_token(id, Some((issued.token.clone(), until)));
            let ttl = (until - now) / 1000;
            if ttl >= super::MIN_KV_TTL {
                let text = format!("{until} {}", issued.token.expose());
                let _ = self.store.put(&key, &text, Some(ttl)).await;
            }
        }
        Ok(Some(issued.token))
    }

    /// The isolate's App JWT, signed by the shell when there is none usable for another minute.
    pub(super) async fn app_jwt(&self, app: &AppConfig) -> Result<Secret, UpstreamFailure> {
        let now = self.clock.now_ms();
        let kept = JWT.with(|j| {
            j.borrow()
                .as_ref()
                .filter(|(id, _, until)| *id == app.id && *until > now)
                .map(|(_, jwt, _)| jwt.clone())
        });
        if let Some(jwt) = kept {
            return Ok(jwt);
        }
        let signer = self
            .signer
            .ok_or_else(|| UpstreamFailure::Unusable("no App signer in this context".into()))?;
        let input = app::jwt_signing_input(app.id, now);
        let signature = signer
            .sign(&app.key, input.as_bytes())
            .await
            .map_err(|why| UpstreamFailure::Unusable(format!("App JWT not signed: {why}")))?;
        let jwt = app::jwt(&input, &signature);
        // `exp` is whole seconds after `now / 1000`.
        let exp_ms = (now / 1000 + JWT_LIFETIME_S) * 1000;
        let until = exp_ms.saturating_sub(JWT_MARGIN_MS);
        JWT.with(|j| *j.borrow_mut() = Some((app.id, jwt.clone(), until)));
        Ok(jwt)
    }

    /// One App REST call within what is left of the request's budget, unless the App's own
    /// rate limit is known to be spent; a spent limit GitHub reports is remembered like a
    /// GraphQL one.
    async fn rest(&self, app: &AppConfig, call: HttpCall) -> Result<HttpReply, UpstreamFailure> {
        let rate_key = keys::ratelimit(&format!("app:{}", app.id));
        // The App's own limit holds back every REST call, essential work's too.
        if let Some(held) = self.held_back(&rate_key, false).await {
            return Err(held);
        }
        let now = self.clock.now_ms();
        let left = self.deadline_ms.saturating_sub(now);
        if left == 0 {
            return Err(UpstreamFailure::Unavailable(
                "request deadline reached".into(),
            ));
        }
        self.asked_upstream(false);
        let reply = self.transport.send(&call, left).await;
        self.spent(|t| &mut t.upstream_ms, now);
        let reply = reply.map_err(UpstreamFailure::Unavailable)?;
        if let Some(limited) = crate::forge::github::parse::rate_limited(&reply) {
            self.remember_failure(&rate_key, &limited).await;
            return Err(limited);
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms() {
        for id in [None, Some(0), Some(1001)] {
            assert_eq!(decode_installation(&encode_installation(id)), Some(id));
        }
        assert_eq!(decode_installation("x"), None);
        let (t, until) = decode_token("1700000000000 ghs_abc").unwrap();
        assert_eq!((t.expose(), until), ("ghs_abc", 1_700_000_000_000));
        assert!(decode_token("ghs_abc").is_none());
    }
}

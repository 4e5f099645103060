//! `GET /v1/orgs/{owner}/events` before the upgrade: every refusal of DESIGN.md ("Live events")
//! made here, with the usual JSON errors, so nothing reaches the owner's object that it would
//! have to refuse. An admitted subscription crosses to the object as a query string
//! (`Subscription::query`); the shell hands the connection over.

use super::{data, query, Request, Response};
use crate::auth;
use crate::config::Config;
use crate::error::ApiError;
use crate::fields::FieldSet;
use crate::model::Scope;
use crate::names::Owner;
use crate::view;

/// The subprotocol a client offers and the `101` selects.
pub const PROTOCOL: &str = "forgelens.v1";
/// A read token offered as a subprotocol (browsers cannot set `Authorization` on a WebSocket).
pub const TOKEN_PROTOCOL: &str = "forgelens.token.";
/// At most this many sockets per owner (beyond: 429 before the upgrade).
pub const MAX_SUBSCRIBERS: usize = 5_000;

/// An admitted subscription: what the owner's object needs to accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub owner: Owner,
    pub scope: Scope,
    pub fields: FieldSet,
    /// Resume after this number of the scope's sequence.
    pub since: Option<u64>,
    /// The read token's `exp` (ms): the object closes the socket with 4001 then.
    pub until_ms: Option<u64>,
    /// The client offered `forgelens.v1`: the `101` selects it.
    pub protocol: bool,
}

impl Subscription {
    /// The object's query string (every value a validated name or a number).
    pub fn query(&self) -> String {
        let mut q = format!(
            "owner={}&scope={}&fields={}&protocol={}",
            self.owner.as_str(),
            self.scope.name(),
            self.fields.bits(),
            u8::from(self.protocol)
        );
        if let Some(since) = self.since {
            q.push_str(&format!("&since={since}"));
        }
        if let Some(until) = self.until_ms {
            q.push_str(&format!("&until={until}"));
        }
        q
    }

    /// `query`'s text read back (`None`: not one `query` wrote).
    pub fn from_query(raw: &str) -> Option<Subscription> {
        let pairs = query::parse(raw);
        let one = |k: &str| query::values(&pairs, k).first().copied();
        let number = |k: &str| one(k).map(str::parse::<u64>).transpose().ok();
        let scope = match one("scope")? {
            "all" => Scope::All,
            "public" => Scope::Public,
            "redacted" => Scope::Redacted,
            _ => return None,
        };
        Some(Subscription {
            owner: Owner::parse(one("owner")?).ok()?,
            scope,
            fields: FieldSet::from_bits(one("fields")?.parse().ok()?)?,
            since: number("since")?,
            until_ms: number("until")?,
            protocol: one("protocol") == Some("1"),
        })
    }
}

/// The subscription `req` asks for, or why it is refused: a bad `fields=`, `since=` or name
/// (400), an owner not served (404), a bad token (401), no `Upgrade: websocket` (426).
///
/// # Errors
/// Each refusal above, before anything is read or upgraded.
pub fn admit(
    req: &Request,
    owner: &str,
    cfg: &Config,
    now_ms: u64,
) -> Result<Subscription, ApiError> {
    let (pairs, fields) = data::parse_query(&req.query)?;
    let since = match query::values(&pairs, "since").as_slice() {
        [] => None,
        [n] if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(
            n.parse()
                .map_err(|_| ApiError::InvalidParameter(SINCE.into()))?,
        ),
        _ => return Err(ApiError::InvalidParameter(SINCE.into())),
    };
    let owner = super::served(cfg, Owner::parse(owner)?)?;
    let offered: Vec<&str> = req
        .header("sec-websocket-protocol")
        .map(|p| p.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let token = offered.iter().find_map(|p| p.strip_prefix(TOKEN_PROTOCOL));
    let bearer = token.map(|t| format!("Bearer {t}"));
    let authorization = req.header("authorization").or(bearer.as_deref());
    let (access, until_ms) = auth::access_until(authorization, cfg, now_ms)?;
    let upgrade = req.header("upgrade");
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Err(ApiError::UpgradeRequired);
    }
    let scope = view::scope(&access, &owner.key(), cfg.private_policy);
    Ok(Subscription {
        // A token for other owners only is the anonymous scope, and ends with nothing.
        until_ms: until_ms.filter(|_| scope == Scope::All),
        owner,
        scope,
        fields,
        since,
        protocol: offered.contains(&PROTOCOL),
    })
}

const SINCE: &str = "since must be a message number: a non-negative integer";

/// The answer that hands an admitted subscription to the shell: status 101, no body.
pub fn upgrade(sub: &Subscription) -> Response {
    Response {
        status: 101,
        upgrade: Some(sub.query()),
        ..Response::default()
    }
}

//! Response headers decided in one place: JSON content type, `Cache-Control`, `ETag` and
//! `If-None-Match`, CORS, `Vary` and `X-Cache`.

use super::{Request, Response};
use crate::cache::entry::Freshness;
use crate::config::Origins;
use crate::error::ApiError;
use crate::json::Writer;
use crate::owners::Progress;
use crate::service::CacheStatus;
use sha2::{Digest, Sha256};

pub const JSON: &str = "application/json; charset=utf-8";
const SWR: u64 = 60;

/// A successful data answer before headers are applied.
pub struct DataAnswer {
    pub body: String,
    /// The body's `ETag` when already known (an answer kept in memory).
    pub etag: Option<String>,
    pub status: CacheStatus,
    pub freshness: Freshness,
    /// `Retry-After` of a batch whose names include some answered `rate_limited`.
    pub retry_after: Option<u64>,
}

/// A data route's 200 (or 304 when `If-None-Match` matches).
pub fn data(req: &Request, mut answer: DataAnswer) -> Response {
    let etag = answer
        .etag
        .take()
        .unwrap_or_else(|| etag(answer.body.as_bytes()));
    let cache_control = if req.header("authorization").is_some() {
        "private, no-store".to_string()
    } else {
        format!(
            "public, max-age={}, stale-while-revalidate={SWR}",
            answer.freshness.max_age()
        )
    };
    let not_modified = req
        .header("if-none-match")
        .is_some_and(|inm| matches_etag(inm, &etag));
    let mut headers = vec![
        ("x-cache".to_string(), answer.status.as_str().to_string()),
        ("vary".to_string(), "Authorization, Origin".to_string()),
        ("etag".to_string(), etag),
        ("cache-control".to_string(), cache_control),
    ];
    if let Some(s) = answer.retry_after {
        headers.push(("retry-after".to_string(), s.to_string()));
    }
    if not_modified {
        return Response {
            status: 304,
            headers,
            body: Vec::new(),
            upgrade: None,
        };
    }
    headers.push(("content-type".to_string(), JSON.to_string()));
    Response {
        status: 200,
        headers,
        body: answer.body.into_bytes(),
        upgrade: None,
    }
}

/// The 202 body DESIGN.md fixes, keys in its order.
fn building_body(owner: &str, p: &Progress) -> String {
    let mut out = Writer::with_capacity(160);
    out.raw("{\"status\":\"building\",\"owner\":");
    out.str(owner);
    out.raw(",\"repos_fetched\":");
    out.uint(p.fetched);
    out.raw(",\"repos_total\":");
    match p.total {
        Some(total) => out.uint(total),
        None => out.raw("null"),
    }
    out.raw(",\"started_at\":");
    out.str(&crate::time::format_rfc3339(p.started_at_ms));
    out.byte(b'}');
    out.finish()
}

/// 202: an owner listing still being built with nothing cached. The body is DESIGN.md's; the
/// client polls after `Retry-After`.
pub fn building(owner: &str, progress: &Progress) -> Response {
    let mut resp = no_store(202, building_body(owner, progress));
    resp.headers.extend([
        (
            "retry-after".to_string(),
            progress.retry_after_s.clamp(1, 10).to_string(),
        ),
        (
            "x-cache".to_string(),
            CacheStatus::Miss.as_str().to_string(),
        ),
        ("vary".to_string(), "Authorization, Origin".to_string()),
    ]);
    resp
}

/// A page or document built into the worker; browsers may keep it for five minutes.
pub fn static_body(body: &str, content_type: &str) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("content-type".to_string(), content_type.to_string()),
            (
                "cache-control".to_string(),
                "public, max-age=300".to_string(),
            ),
        ],
        body: body.as_bytes().to_vec(),
        upgrade: None,
    }
}

/// Any JSON answer that must not be cached (health, errors).
pub fn no_store(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type".to_string(), JSON.to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
        ],
        body: body.into_bytes(),
        upgrade: None,
    }
}

pub fn error(err: &ApiError) -> Response {
    let mut resp = no_store(err.status(), err.body());
    match err {
        ApiError::MethodNotAllowed { allow } => resp
            .headers
            .push(("allow".to_string(), (*allow).to_string())),
        ApiError::RateLimited { retry_after } | ApiError::ClientRateLimited { retry_after } => resp
            .headers
            .push(("retry-after".to_string(), retry_after.to_string())),
        ApiError::TooManySubscribers => resp
            .headers
            .push(("retry-after".to_string(), "60".to_string())),
        ApiError::UpgradeRequired => resp
            .headers
            .push(("upgrade".to_string(), "websocket".to_string())),
        _ => {}
    }
    resp
}

/// `OPTIONS` preflight.
pub fn preflight(allow: &str) -> Response {
    Response {
        status: 204,
        headers: vec![
            (
                "access-control-allow-methods".to_string(),
                allow.to_string(),
            ),
            ("access-control-max-age".to_string(), "86400".to_string()),
            ("allow".to_string(), allow.to_string()),
        ],
        body: Vec::new(),
        upgrade: None,
    }
}

/// Adds CORS headers when the request's origin is allowed; an origin that is not gets none.
pub fn cors(resp: &mut Response, origins: &Origins, origin: Option<&str>) {
    let Some(allow) = origins.allow(origin) else {
        return;
    };
    resp.headers
        .push(("access-control-allow-origin".to_string(), allow));
    resp.headers.push((
        "access-control-allow-headers".to_string(),
        "Authorization, If-None-Match, Content-Type".to_string(),
    ));
    resp.headers.push((
        "access-control-expose-headers".to_string(),
        "X-Cache, ETag, Retry-After, Link".to_string(),
    ));
}

/// A strong validator: the first 128 bits of the body's SHA-256.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(digest.get(..16).unwrap_or_default()))
}

/// `If-None-Match` uses weak comparison: `W/` prefixes are ignored, `*` matches anything.
fn matches_etag(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// The `Server-Timing` header value of where a request spent its time, or `None` when no
/// backend was used.
pub fn server_timing(t: &crate::service::Timing) -> Option<String> {
    let parts: Vec<String> = [
        ("mem", t.mem_ms),
        ("kv", t.kv_ms),
        ("owner", t.owner_ms),
        ("upstream", t.upstream_ms),
    ]
    .iter()
    .filter_map(|(name, ms)| ms.map(|ms| format!("{name};dur={ms}")))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_table() {
        let tag = etag(b"{}");
        let cases = [
            (tag.clone(), true),
            (format!("W/{tag}"), true),
            (format!("\"other\", {tag}"), true),
            ("*".to_string(), true),
            ("\"other\"".to_string(), false),
            (tag.trim_matches('"').to_string(), false),
            (String::new(), false),
        ];
        for (header, expected) in cases {
            assert_eq!(matches_etag(&header, &tag), expected, "{header}");
        }
    }

    #[test]
    fn etag_tracks_body() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_eq!(etag(b"a").len(), 34);
    }
}

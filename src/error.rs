//! The one error type every route answers with, and the one place it maps to DESIGN.md's HTTP
//! status codes, error codes and messages. Messages never carry secrets or upstream bodies.

use crate::config::ConfigError;
use crate::names::NameError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    InvalidName(String),
    InvalidFields(String),
    TooManyNames {
        count: usize,
        max: usize,
    },
    /// A listing parameter (filter, order, page) with a bad value; the message names it and
    /// its allowed values.
    InvalidParameter(String),
    InvalidPayload(String),
    Unauthorized(String),
    BadSignature,
    NotFound,
    NoRoute,
    MethodNotAllowed {
        allow: &'static str,
    },
    PayloadTooLarge,
    /// `GET /v1/orgs/{owner}/events` without `Upgrade: websocket`.
    UpgradeRequired,
    RateLimited {
        retry_after: u64,
    },
    /// The owner's object holds `http::events::MAX_SUBSCRIBERS` sockets already.
    TooManySubscribers,
    /// This client's `UPSTREAM_LIMITER` budget is spent and the answer would need GitHub.
    ClientRateLimited {
        retry_after: u64,
    },
    ConfigInvalid(ConfigError),
    Internal,
    /// GitHub answered, but unusably; the detail is logged, not shown.
    Upstream(String),
    UpstreamUnavailable(String),
    NotConfigured(&'static str),
    /// KV refused an invalidation for about 5 s.
    StoreUnavailable,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidName(_)
            | ApiError::InvalidFields(_)
            | ApiError::TooManyNames { .. }
            | ApiError::InvalidParameter(_)
            | ApiError::InvalidPayload(_) => 400,
            ApiError::Unauthorized(_) | ApiError::BadSignature => 401,
            ApiError::NotFound | ApiError::NoRoute => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge => 413,
            ApiError::UpgradeRequired => 426,
            ApiError::RateLimited { .. }
            | ApiError::ClientRateLimited { .. }
            | ApiError::TooManySubscribers => 429,
            ApiError::ConfigInvalid(_) | ApiError::Internal => 500,
            ApiError::Upstream(_) => 502,
            ApiError::UpstreamUnavailable(_)
            | ApiError::NotConfigured(_)
            | ApiError::StoreUnavailable => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidName(_) => "invalid_name",
            ApiError::InvalidFields(_) => "invalid_fields",
            ApiError::TooManyNames { .. } => "too_many_names",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::InvalidPayload(_) => "invalid_payload",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::BadSignature => "bad_signature",
            ApiError::NotFound => "not_found",
            ApiError::NoRoute => "no_route",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UpgradeRequired => "upgrade_required",
            ApiError::RateLimited { .. }
            | ApiError::ClientRateLimited { .. }
            | ApiError::TooManySubscribers => "rate_limited",
            ApiError::ConfigInvalid(_) => "config_invalid",
            ApiError::Internal => "internal",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::StoreUnavailable => "store_unavailable",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::InvalidName(m)
            | ApiError::InvalidFields(m)
            | ApiError::InvalidParameter(m)
            | ApiError::InvalidPayload(m) => m.clone(),
            ApiError::Unauthorized(m) => m.clone(),
            ApiError::TooManyNames { max, .. } => {
                format!("more than {max} distinct names were given; at most {max} are answered per request")
            }
            ApiError::BadSignature => {
                "the X-Hub-Signature-256 header is missing, malformed or wrong".into()
            }
            ApiError::NotFound => "no such repository or owner".into(),
            ApiError::NoRoute => "no route matches this path".into(),
            ApiError::MethodNotAllowed { allow } => format!("this route answers {allow}"),
            ApiError::PayloadTooLarge => "the request body is larger than 1 MiB".into(),
            ApiError::UpgradeRequired => {
                "this route is a WebSocket: send Upgrade: websocket".into()
            }
            ApiError::RateLimited { retry_after } => {
                format!("the GitHub rate limit is exhausted and nothing is cached; retry in {retry_after} s")
            }
            ApiError::ClientRateLimited { retry_after } => format!(
                "this client asked for too many answers that are not cached; retry in {retry_after} s"
            ),
            ApiError::TooManySubscribers => {
                "this owner has as many live-event subscribers as it takes (5000); retry later"
                    .into()
            }
            ApiError::ConfigInvalid(e) => format!("configuration variable {} {}", e.name, e.reason),
            ApiError::Internal => "an unexpected error occurred".into(),
            ApiError::Upstream(_) => "GitHub answered with an unusable response".into(),
            ApiError::UpstreamUnavailable(_) => {
                "GitHub could not be reached in time and nothing is cached".into()
            }
            ApiError::NotConfigured(name) => format!("{name} is not configured on this deployment"),
            ApiError::StoreUnavailable => {
                "the cache refused the invalidation; deliver it again".into()
            }
        }
    }

    /// The error object of DESIGN.md: `{"error":{"code":…,"message":…}}`.
    pub fn body(&self) -> String {
        let mut out = crate::json::Writer::with_capacity(128);
        out.raw("{\"error\":{\"code\":");
        out.str(self.code());
        out.raw(",\"message\":");
        out.str(&self.message());
        out.raw("}}");
        out.finish()
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> ApiError {
        ApiError::InvalidName(e.0)
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        ApiError::ConfigInvalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_code_table() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::InvalidName("x".into()), 400, "invalid_name"),
            (ApiError::InvalidFields("x".into()), 400, "invalid_fields"),
            (
                ApiError::TooManyNames {
                    count: 101,
                    max: 100,
                },
                400,
                "too_many_names",
            ),
            (
                ApiError::InvalidParameter("x".into()),
                400,
                "invalid_parameter",
            ),
            (ApiError::InvalidPayload("x".into()), 400, "invalid_payload"),
            (ApiError::Unauthorized("x".into()), 401, "unauthorized"),
            (ApiError::BadSignature, 401, "bad_signature"),
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::NoRoute, 404, "no_route"),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                405,
                "method_not_allowed",
            ),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (ApiError::UpgradeRequired, 426, "upgrade_required"),
            (ApiError::TooManySubscribers, 429, "rate_limited"),
            (
                ApiError::RateLimited { retry_after: 5 },
                429,
                "rate_limited",
            ),
            (
                ApiError::ConfigInvalid(ConfigError {
                    name: "X",
                    reason: "bad",
                }),
                500,
                "config_invalid",
            ),
            (ApiError::Internal, 500, "internal"),
            (
                ApiError::Upstream("secret detail".into()),
                502,
                "upstream_error",
            ),
            (
                ApiError::UpstreamUnavailable("x".into()),
                503,
                "upstream_unavailable",
            ),
            (
                ApiError::NotConfigured("ADMIN_TOKEN"),
                503,
                "not_configured",
            ),
            (
                ApiError::ClientRateLimited { retry_after: 60 },
                429,
                "rate_limited",
            ),
            (ApiError::StoreUnavailable, 503, "store_unavailable"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status(), err.code()), (status, code), "{err:?}");
            let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
            assert_eq!(body["error"]["code"], code);
            assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    #[test]
    fn openapi_lists_exactly_these_codes() {
        let doc: serde_json::Value = serde_json::from_str(crate::http::OPENAPI).unwrap();
        let documented: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
            ["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let ours = [
            ApiError::InvalidName(String::new()),
            ApiError::InvalidFields(String::new()),
            ApiError::TooManyNames { count: 0, max: 0 },
            ApiError::InvalidParameter(String::new()),
            ApiError::InvalidPayload(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::BadSignature,
            ApiError::NotFound,
            ApiError::NoRoute,
            ApiError::MethodNotAllowed { allow: "" },
            ApiError::PayloadTooLarge,
            ApiError::UpgradeRequired,
            ApiError::TooManySubscribers,
            ApiError::RateLimited { retry_after: 0 },
            ApiError::ConfigInvalid(ConfigError {
                name: "",
                reason: "",
            }),
            ApiError::Internal,
            ApiError::Upstream(String::new()),
            ApiError::UpstreamUnavailable(String::new()),
            ApiError::NotConfigured(""),
            ApiError::StoreUnavailable,
            ApiError::ClientRateLimited { retry_after: 0 },
        ];
        // The match makes a new variant fail to compile until it is listed above.
        for e in &ours {
            match e {
                ApiError::InvalidName(_)
                | ApiError::InvalidFields(_)
                | ApiError::TooManyNames { .. }
                | ApiError::InvalidParameter(_)
                | ApiError::InvalidPayload(_)
                | ApiError::Unauthorized(_)
                | ApiError::BadSignature
                | ApiError::NotFound
                | ApiError::NoRoute
                | ApiError::MethodNotAllowed { .. }
                | ApiError::PayloadTooLarge
                | ApiError::UpgradeRequired
                | ApiError::TooManySubscribers
                | ApiError::RateLimited { .. }
                | ApiError::ConfigInvalid(_)
                | ApiError::Internal
                | ApiError::Upstream(_)
                | ApiError::UpstreamUnavailable(_)
                | ApiError::NotConfigured(_)
                | ApiError::StoreUnavailable
                | ApiError::ClientRateLimited { .. } => {}
            }
        }
        let mut codes: Vec<&str> = ours.iter().map(ApiError::code).collect();
        // Two variants share `rate_limited` (GitHub's budget, this client's budget).
        codes.dedup_by(|a, b| a == b);
        let mut seen = std::collections::HashSet::new();
        codes.retain(|c| seen.insert(*c));
        assert_eq!(documented, codes);
    }

    #[test]
    fn upstream_detail_is_not_shown() {
        let body = ApiError::Upstream("token ghp_x leaked in upstream text".into()).body();
        assert!(!body.contains("ghp_x"));
    }

    #[test]
    fn config_error_names_variable() {
        let e = ApiError::from(ConfigError {
            name: "FRESH_TTL_SECONDS",
            reason: "must be a whole number",
        });
        assert!(e.message().contains("FRESH_TTL_SECONDS"));
    }
}

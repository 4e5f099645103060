//! A directory's answers as HTTP between the worker and its Durable Object: the status says what
//! the answer is, the body carries it. Both ends are here, so they cannot drift apart.

use super::{Answer, Progress};
use crate::error::ApiError;
use crate::time::format_rfc3339;
use serde::{Deserialize, Serialize};

/// The 202 body DESIGN.md fixes, also what the object sends the worker.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildingBody {
    pub status: String,
    pub owner: String,
    pub repos_fetched: u64,
    pub repos_total: Option<u64>,
    pub started_at: String,
    /// Only between the object and the worker (the client gets it as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl BuildingBody {
    pub fn new(owner: &str, p: &Progress) -> BuildingBody {
        BuildingBody {
            status: "building".into(),
            owner: owner.to_string(),
            repos_fetched: p.fetched,
            repos_total: p.total,
            started_at: format_rfc3339(p.started_at_ms),
            retry_after: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FailedBody {
    code: String,
    #[serde(default)]
    retry_after: Option<u64>,
}

/// `(status, body)` the object answers with.
pub fn encode(owner: &str, answer: &Answer) -> (u16, String) {
    match answer {
        Answer::Complete(text) => (200, text.clone()),
        Answer::Kept(text) => (203, text.clone()),
        Answer::NotFound => (404, String::new()),
        Answer::Unstarted => (204, String::new()),
        Answer::Building(p) => {
            let body = BuildingBody {
                retry_after: Some(p.retry_after_s),
                ..BuildingBody::new(owner, p)
            };
            (202, serde_json::to_string(&body).unwrap_or_default())
        }
        Answer::Failed(err) => {
            let retry_after = match err {
                ApiError::RateLimited { retry_after } => Some(*retry_after),
                _ => None,
            };
            let body = FailedBody {
                code: err.code().to_string(),
                retry_after,
            };
            (
                err.status(),
                serde_json::to_string(&body).unwrap_or_default(),
            )
        }
    }
}

/// The answer behind the object's `(status, body)`. Anything unexpected is an internal error:
/// the object is ours, so a surprise there is a bug, not GitHub's doing.
pub fn decode(status: u16, body: String) -> Answer {
    match status {
        200 => Answer::Complete(body),
        203 => Answer::Kept(body),
        404 => Answer::NotFound,
        204 => Answer::Unstarted,
        202 => match serde_json::from_str::<BuildingBody>(&body) {
            Ok(b) => Answer::Building(Progress {
                fetched: b.repos_fetched,
                total: b.repos_total,
                started_at_ms: crate::time::parse_rfc3339(&b.started_at).unwrap_or(0),
                retry_after_s: b.retry_after.unwrap_or(2),
            }),
            Err(_) => Answer::Failed(ApiError::Internal),
        },
        _ => {
            let Ok(f) = serde_json::from_str::<FailedBody>(&body) else {
                return Answer::Failed(ApiError::Internal);
            };
            Answer::Failed(match f.code.as_str() {
                "rate_limited" => ApiError::RateLimited {
                    retry_after: f.retry_after.unwrap_or(crate::service::DEFAULT_RETRY_AFTER),
                },
                "upstream_error" => ApiError::Upstream(String::new()),
                "upstream_unavailable" => ApiError::UpstreamUnavailable(String::new()),
                _ => ApiError::Internal,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_survives_the_trip() {
        let building = Answer::Building(Progress {
            fetched: 3_400,
            total: Some(10_000),
            started_at_ms: 1_700_000_000_000,
            retry_after_s: 4,
        });
        let cases = [
            Answer::Complete(r#"{"fetched_at":"x","data":null}"#.into()),
            Answer::Kept(r#"{"fetched_at":"y","data":null}"#.into()),
            Answer::NotFound,
            Answer::Unstarted,
            building,
            Answer::Failed(ApiError::RateLimited { retry_after: 17 }),
            Answer::Failed(ApiError::Upstream(String::new())),
            Answer::Failed(ApiError::UpstreamUnavailable(String::new())),
            Answer::Failed(ApiError::Internal),
        ];
        for answer in cases {
            let (status, body) = encode("Octo", &answer);
            assert_eq!(decode(status, body), answer);
        }
    }

    #[test]
    fn failure_detail_does_not_cross() {
        let (status, body) = encode("o", &Answer::Failed(ApiError::Upstream("token x".into())));
        assert_eq!(status, 502);
        assert!(!body.contains("token"), "{body}");
    }

    #[test]
    fn surprises_are_internal_errors() {
        for (status, body) in [(202, "{"), (500, "not json"), (418, "{}")] {
            assert_eq!(
                decode(status, body.into()),
                Answer::Failed(ApiError::Internal),
                "{status} {body}"
            );
        }
    }
}

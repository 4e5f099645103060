//! A directory's answers as HTTP between the worker and its Durable Object: the status says what
//! the answer is, the body carries it. Both ends are here, so they cannot drift apart.

use super::{Answer, Progress};
use crate::error::ApiError;
/// `None` as `-`, else the number.
fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// `(status, body)` the object answers with.
pub fn encode(answer: &Answer) -> (u16, String) {
    match answer {
        Answer::Complete(text) => (200, text.clone()),
        Answer::Kept(text) => (203, text.clone()),
        Answer::NotFound => (404, String::new()),
        Answer::Unstarted => (204, String::new()),
        // Lines, not JSON: the object is ours, and typed JSON decoding costs the wasm serde's
        // error machinery.
        Answer::Building(p) => {
            let line = format!(
                "{} {} {} {}",
                p.fetched,
                opt(p.total),
                p.started_at_ms,
                p.retry_after_s
            );
            (202, line)
        }
        Answer::Failed(err) => {
            let retry_after = match err {
                ApiError::RateLimited { retry_after } => Some(*retry_after),
                _ => None,
            };
            (err.status(), format!("{} {}", err.code(), opt(retry_after)))
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
        202 => decode_progress(&body).map_or(Answer::Failed(ApiError::Internal), Answer::Building),
        _ => {
            let mut parts = body.split(' ');
            let (Some(code), Some(retry), None) = (parts.next(), parts.next(), parts.next()) else {
                return Answer::Failed(ApiError::Internal);
            };
            Answer::Failed(match code {
                "rate_limited" => ApiError::RateLimited {
                    retry_after: retry.parse().unwrap_or(crate::service::DEFAULT_RETRY_AFTER),
                },
                "upstream_error" => ApiError::Upstream(String::new()),
                "upstream_unavailable" => ApiError::UpstreamUnavailable(String::new()),
                _ => ApiError::Internal,
            })
        }
    }
}

/// `{fetched} {total or -} {started_at_ms} {retry_after_s}`.
fn decode_progress(line: &str) -> Option<Progress> {
    let mut parts = line.split(' ');
    let mut next = || parts.next();
    let fetched = next()?.parse().ok()?;
    let total = match next()? {
        "-" => None,
        t => Some(t.parse().ok()?),
    };
    let started_at_ms = next()?.parse().ok()?;
    let retry_after_s = next()?.parse().ok()?;
    if next().is_some() {
        return None;
    }
    Some(Progress {
        fetched,
        total,
        started_at_ms,
        retry_after_s,
    })
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
            let (status, body) = encode(&answer);
            assert_eq!(decode(status, body), answer);
        }
    }

    #[test]
    fn failure_detail_does_not_cross() {
        let (status, body) = encode(&Answer::Failed(ApiError::Upstream("token x".into())));
        assert_eq!(status, 502);
        assert!(!body.contains("token"), "{body}");
    }

    #[test]
    fn surprises_are_internal_errors() {
        for (status, body) in [
            (202, "{"),
            (202, "1 - 2"),
            (202, "1 - 2 3 4"),
            (202, "x - 2 3"),
            (500, "not json"),
            (500, "upstream_error"),
            (418, "{}"),
        ] {
            assert_eq!(
                decode(status, body.into()),
                Answer::Failed(ApiError::Internal),
                "{status} {body}"
            );
        }
    }
}

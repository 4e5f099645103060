//! GitHub's webhook deliveries REST API: the calls that list a hook's deliveries and ask for one
//! again, and the list's parsing (its `Link` cursor included). Paths carry only validated names
//! and numbers; the cursor GitHub made is passed back form-encoded.

use super::app::rest_call;
use crate::forge::{HttpCall, HttpReply, UpstreamFailure};
use crate::names::{FullName, Owner};
use crate::secret::Secret;
use serde::Deserialize;

/// A hook forgelens reads deliveries of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookTarget {
    /// The App's own webhook (App JWT).
    App,
    Organization(Owner, u64),
    Repository(FullName, u64),
}

impl HookTarget {
    /// `app`, `organization:<login>` or `repository:<owner>/<repo>` (as `/v1/status` says).
    pub fn label(&self) -> String {
        match self {
            HookTarget::App => "app".into(),
            HookTarget::Organization(o, _) => format!("organization:{}", o.as_str()),
            HookTarget::Repository(n, _) => {
                format!("repository:{}/{}", n.owner.as_str(), n.repo.as_str())
            }
        }
    }

    /// The hook's id (`None` for the App's until a delivery names it).
    pub fn hook_id(&self) -> Option<u64> {
        match self {
            HookTarget::App => None,
            HookTarget::Organization(_, id) | HookTarget::Repository(_, id) => Some(*id),
        }
    }

    fn base(&self, api_url: &str) -> String {
        let api = api_url.trim_end_matches('/');
        match self {
            HookTarget::App => format!("{api}/app/hook/deliveries"),
            HookTarget::Organization(o, id) => {
                format!("{api}/orgs/{}/hooks/{id}/deliveries", o.as_str())
            }
            HookTarget::Repository(n, id) => format!(
                "{api}/repos/{}/{}/hooks/{id}/deliveries",
                n.owner.as_str(),
                n.repo.as_str()
            ),
        }
    }
}

/// `GET …/deliveries?per_page=100[&cursor=…]`, newest first.
pub fn list_call(
    api_url: &str,
    target: &HookTarget,
    cursor: Option<&str>,
    credential: &Secret,
) -> HttpCall {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("per_page", "100");
    if let Some(c) = cursor {
        query.append_pair("cursor", c);
    }
    let url = format!("{}?{}", target.base(api_url), query.finish());
    rest_call("GET", url, credential)
}

/// `POST …/deliveries/{id}/attempts`: GitHub sends that delivery again.
pub fn attempt_call(api_url: &str, target: &HookTarget, id: u64, credential: &Secret) -> HttpCall {
    let url = format!("{}/{id}/attempts", target.base(api_url));
    rest_call("POST", url, credential)
}

/// One attempt of a delivery, as the list gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    /// 0 when no answer came.
    #[serde(default)]
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

impl Delivery {
    /// When it was sent, in ms (`None`: GitHub's timestamp did not read).
    pub fn at_ms(&self) -> Option<u64> {
        crate::time::parse_rfc3339(&self.delivered_at)
    }

    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// How a list call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// A page, newest first, and the cursor of the next (older) one.
    Page(Vec<Delivery>, Option<String>),
    /// 401, 403 (not a rate limit) or 404: the credential may not read this hook.
    NotPermitted(u16),
}

/// Reads a list reply. A rate limit is the caller's to recognise first (`parse::rate_limited`).
///
/// # Errors
/// Any other status, or a body that is not a list of deliveries.
pub fn parse_list(reply: &HttpReply) -> Result<Listed, UpstreamFailure> {
    match reply.status {
        200 => {}
        401 | 403 | 404 => return Ok(Listed::NotPermitted(reply.status)),
        s => {
            return Err(UpstreamFailure::Unusable(format!(
                "deliveries list: HTTP {s}"
            )))
        }
    }
    let page: Vec<Delivery> = serde_json::from_slice(&reply.body)
        .map_err(|e| UpstreamFailure::Unusable(format!("deliveries list: {e}")))?;
    let next = reply
        .headers
        .iter()
        .find(|(k, _)| k == "link")
        .and_then(|(_, v)| next_cursor(v));
    Ok(Listed::Page(page, next))
}

/// The `cursor` of a `Link` header's `rel="next"` URL.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        let (_, query) = url.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn org() -> HookTarget {
        HookTarget::Organization(Owner::parse("octo-org").unwrap(), 7)
    }

    #[test]
    fn calls_name_the_hook_by_path_and_page_by_cursor() {
        let t = Secret::new("tok");
        let cases = [
            (
                HookTarget::App,
                None,
                "https://api.github.com/app/hook/deliveries?per_page=100",
            ),
            (
                org(),
                Some("v1_a+b/="),
                "https://api.github.com/orgs/octo-org/hooks/7/deliveries?per_page=100&cursor=v1_a%2Bb%2F%3D",
            ),
            (
                HookTarget::Repository(FullName::parse("o/r.js").unwrap(), 9),
                None,
                "https://api.github.com/repos/o/r.js/hooks/9/deliveries?per_page=100",
            ),
        ];
        for (target, cursor, url) in cases {
            let call = list_call("https://api.github.com/", &target, cursor, &t);
            assert_eq!((call.method, call.url.as_str()), ("GET", url));
        }
        let call = attempt_call("https://api.github.com", &org(), 20_000_000_001, &t);
        assert_eq!(
            call.url,
            "https://api.github.com/orgs/octo-org/hooks/7/deliveries/20000000001/attempts"
        );
        assert_eq!(call.method, "POST");
        assert!(call
            .headers
            .contains(&("authorization".into(), "Bearer tok".into())));
    }

    #[test]
    fn link_headers_give_the_next_cursor() {
        let cases = [
            (
                r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12%2B3>; rel="next""#,
                Some("v1_12+3"),
            ),
            (
                r#"<https://x/?cursor=a>; rel="prev", <https://x/?per_page=2&cursor=b>; rel="next""#,
                Some("b"),
            ),
            (r#"<https://x/?cursor=a>; rel="prev""#, None),
            ("garbage", None),
            (r#"<https://x/?page=2>; rel="next""#, None),
        ];
        for (link, want) in cases {
            assert_eq!(next_cursor(link).as_deref(), want, "{link}");
        }
    }

    #[test]
    fn lists_read_as_pages_or_not_permitted() {
        let body = br#"[{"id":20000000002,"guid":"g-1","delivered_at":"2026-12-07T10:00:01Z","redelivery":false,
            "duration":0.1,"status":"Invalid HTTP Response: 503","status_code":503,"event":"repository",
            "action":"privatized","installation_id":null,"repository_id":1,"throttled_at":null}]"#;
        let reply = HttpReply {
            status: 200,
            headers: vec![(
                "link".into(),
                r#"<https://x/?cursor=c2>; rel="next""#.into(),
            )],
            body: body.to_vec(),
        };
        let Listed::Page(page, next) = parse_list(&reply).unwrap() else {
            panic!("a page")
        };
        assert_eq!(next.as_deref(), Some("c2"));
        assert_eq!(page[0].id, 20_000_000_002);
        assert!(!page[0].succeeded());
        assert_eq!(page[0].action.as_deref(), Some("privatized"));
        assert!(page[0].at_ms().is_some());
        for status in [401, 403, 404] {
            let r = HttpReply {
                status,
                ..HttpReply::default()
            };
            assert_eq!(parse_list(&r).unwrap(), Listed::NotPermitted(status));
        }
        let r = HttpReply {
            status: 502,
            ..HttpReply::default()
        };
        assert!(parse_list(&r).is_err());
        let r = HttpReply {
            status: 200,
            body: b"{}".to_vec(),
            ..HttpReply::default()
        };
        assert!(parse_list(&r).is_err());
    }
}

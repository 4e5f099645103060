//! One Workers Analytics Engine data point per answered request (DESIGN.md, Observability), built
//! here and written by the shell when `ANALYTICS` is bound: the owner as the index; the route's
//! template, the status class, `X-Cache` and the webhook event as blobs; upstream requests,
//! GitHub points, milliseconds and response bytes as doubles. Never a repository name (the route
//! is its template) nor a token.

use super::route::Route;
use super::Response;
use crate::json::Writer;
use crate::names::Owner;
use crate::service::Usage;

/// What the shell writes to the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// The owner (lowercased), or empty.
    pub index: String,
    /// Route template, status class (`2xx`…), `X-Cache` (or empty), webhook event (or empty).
    pub blobs: [String; 4],
    /// Upstream requests, GitHub points, milliseconds, response bytes (whole numbers).
    pub doubles: [u64; 4],
}

impl DataPoint {
    /// The argument of the dataset's `writeDataPoint`, as JSON (the shell parses it in one call).
    pub fn json(&self) -> String {
        let mut out = Writer::with_capacity(160);
        out.raw("{\"indexes\":[");
        out.str(&self.index);
        out.raw("],\"blobs\":");
        out.array(&self.blobs, |b, out| out.str(b));
        out.raw(",\"doubles\":");
        out.array(&self.doubles, |n, out| out.uint(*n));
        out.byte(b'}');
        out.finish()
    }
}

/// The data point of `resp`, answered for `route` in `ms` with `usage`; `event` is the
/// webhook's `X-GitHub-Event`, kept only for a delivery answered 200 (so correctly signed) and
/// only when it looks like an event name.
pub fn data_point(
    route: Option<&Route<'_>>,
    resp: &Response,
    event: Option<&str>,
    usage: Usage,
    ms: u64,
) -> DataPoint {
    let owner = route
        .and_then(Route::owner)
        .and_then(|o| Owner::parse(o).ok());
    let event = event
        .filter(|_| resp.status == 200 && matches!(route, Some(Route::Webhook)))
        .filter(|e| e.len() <= 40 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let cache = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-cache"))
        .map(|(_, v)| v.as_str());
    DataPoint {
        index: owner.map(|o| o.key()).unwrap_or_default(),
        blobs: [
            route.map_or("", Route::template).to_string(),
            class(resp.status).to_string(),
            cache.unwrap_or_default().to_string(),
            event.unwrap_or_default().to_string(),
        ],
        doubles: [
            u64::from(usage.upstream),
            u64::from(usage.points),
            ms,
            resp.body.len() as u64,
        ],
    }
}

/// `2xx`, `4xx`…: the status class.
fn class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, cache: Option<&str>, body: &str) -> Response {
        Response {
            status,
            headers: cache
                .map(|c| vec![("x-cache".to_string(), c.to_string())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            upgrade: None,
        }
    }

    #[test]
    fn a_data_point_names_the_route_never_the_repository() {
        let usage = Usage {
            upstream: 2,
            points: 1,
        };
        // (route, response, X-GitHub-Event, blobs, index)
        type Case<'a> = (
            Option<Route<'a>>,
            Response,
            Option<&'a str>,
            [&'a str; 4],
            &'a str,
        );
        let cases: [Case; 6] = [
            (
                Some(Route::OrgRepos { owner: "Octo-Org" }),
                resp(200, Some("HIT"), "{}"),
                None,
                ["/v1/orgs/{owner}/repos", "2xx", "HIT", ""],
                "octo-org",
            ),
            (
                Some(Route::Repo {
                    owner: "acme",
                    repo: "secret-plans",
                }),
                resp(404, None, "{}"),
                None,
                ["/v1/repos/{owner}/{repo}", "4xx", "", ""],
                "acme",
            ),
            (
                Some(Route::Webhook),
                resp(200, None, "{}"),
                Some("repository"),
                ["/v1/webhooks/github", "2xx", "", "repository"],
                "",
            ),
            // An unsigned delivery's header is not recorded, nor one that is not an event name.
            (
                Some(Route::Webhook),
                resp(401, None, "{}"),
                Some("repository"),
                ["/v1/webhooks/github", "4xx", "", ""],
                "",
            ),
            (
                Some(Route::Webhook),
                resp(200, None, "{}"),
                Some("Bearer abc"),
                ["/v1/webhooks/github", "2xx", "", ""],
                "",
            ),
            // No route, or an owner that is not a valid name: nothing from the path is kept.
            (
                Some(Route::OrgRepos { owner: "-bad-" }),
                resp(400, None, "{}"),
                None,
                ["/v1/orgs/{owner}/repos", "4xx", "", ""],
                "",
            ),
        ];
        for (route, resp, event, blobs, index) in cases {
            let p = data_point(route.as_ref(), &resp, event, usage, 12);
            assert_eq!(p.blobs, blobs.map(str::to_string), "{route:?}");
            assert_eq!(p.index, index, "{route:?}");
            assert_eq!(p.doubles, [2, 1, 12, 2]);
        }
        let none = data_point(None, &resp(404, None, ""), None, Usage::default(), 0);
        assert_eq!(none.blobs[0], "");
        assert_eq!(none.blobs[1], "4xx");
    }

    #[test]
    fn the_data_point_is_the_argument_write_data_point_takes() {
        let route = Route::OrgRepos { owner: "acme" };
        let p = data_point(
            Some(&route),
            &resp(200, Some("HIT"), "{}"),
            None,
            Usage::default(),
            3,
        );
        let value: serde_json::Value = serde_json::from_str(&p.json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"indexes": ["acme"],
                "blobs": ["/v1/orgs/{owner}/repos", "2xx", "HIT", ""], "doubles": [0, 0, 3, 2]})
        );
    }
}

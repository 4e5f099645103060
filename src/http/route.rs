//! Route matching by path shape. Segments are compared raw (not percent-decoded), so `%2F` inside
//! a name stays in the name and fails validation instead of changing the route.

/// A matched route with its raw (unvalidated) path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Dashboard,
    OpenApi,
    Health,
    Status,
    OrgRepos { owner: &'a str },
    OrgSummary { owner: &'a str },
    OrgStatus { owner: &'a str },
    OrgEvents { owner: &'a str },
    Repo { owner: &'a str, repo: &'a str },
    Batch,
    Webhook,
    PurgeOrg { owner: &'a str },
    PurgeRepo { owner: &'a str, repo: &'a str },
}

impl Route<'_> {
    /// The methods this route answers, as the `Allow` header lists them.
    pub fn methods(&self) -> &'static str {
        match self {
            Route::Webhook => "POST",
            // A WebSocket is never preflighted.
            Route::OrgEvents { .. } => "GET, HEAD",
            Route::PurgeOrg { .. } | Route::PurgeRepo { .. } => "DELETE, OPTIONS",
            _ => "GET, HEAD, OPTIONS",
        }
    }

    /// The owner the path names, as given (not yet validated).
    pub fn owner(&self) -> Option<&str> {
        match self {
            Route::OrgRepos { owner }
            | Route::OrgSummary { owner }
            | Route::OrgStatus { owner }
            | Route::OrgEvents { owner }
            | Route::Repo { owner, .. }
            | Route::PurgeOrg { owner }
            | Route::PurgeRepo { owner, .. } => Some(*owner),
            _ => None,
        }
    }

    /// The path template `/v1/openapi.json` documents this route under. The match is
    /// exhaustive, so a new route cannot compile without one; a test checks the document has it.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Dashboard => "/",
            Route::OpenApi => "/v1/openapi.json",
            Route::Health => "/v1/health",
            Route::Status => "/v1/status",
            Route::OrgRepos { .. } => "/v1/orgs/{owner}/repos",
            Route::OrgSummary { .. } => "/v1/orgs/{owner}/summary",
            Route::OrgStatus { .. } => "/v1/orgs/{owner}/status",
            Route::OrgEvents { .. } => "/v1/orgs/{owner}/events",
            Route::Repo { .. } => "/v1/repos/{owner}/{repo}",
            Route::Batch => "/v1/repos",
            Route::Webhook => "/v1/webhooks/github",
            Route::PurgeOrg { .. } => "/v1/cache/orgs/{owner}",
            Route::PurgeRepo { .. } => "/v1/cache/repos/{owner}/{repo}",
        }
    }

    pub fn allows(&self, method: &str) -> bool {
        let head_as_get = method == "HEAD" && self.methods().starts_with("GET");
        head_as_get || self.methods().split(", ").any(|m| m == method)
    }
}

/// The route for `path`, or `None` (404 `no_route`). Empty segments never match, so a trailing
/// slash or `//` is not the same route.
pub fn match_route(path: &str) -> Option<Route<'_>> {
    if path == "/" {
        return Some(Route::Dashboard);
    }
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    match segs.as_slice() {
        ["v1", "health"] => Some(Route::Health),
        ["v1", "status"] => Some(Route::Status),
        ["v1", "openapi.json"] => Some(Route::OpenApi),
        ["v1", "orgs", owner, "repos"] => Some(Route::OrgRepos { owner }),
        ["v1", "orgs", owner, "summary"] => Some(Route::OrgSummary { owner }),
        ["v1", "orgs", owner, "status"] => Some(Route::OrgStatus { owner }),
        ["v1", "orgs", owner, "events"] => Some(Route::OrgEvents { owner }),
        ["v1", "repos", owner, repo] => Some(Route::Repo { owner, repo }),
        ["v1", "repos"] => Some(Route::Batch),
        ["v1", "webhooks", "github"] => Some(Route::Webhook),
        ["v1", "cache", "orgs", owner] => Some(Route::PurgeOrg { owner }),
        ["v1", "cache", "repos", owner, repo] => Some(Route::PurgeRepo { owner, repo }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table() {
        let cases: &[(&str, Option<Route>)] = &[
            ("/v1/health", Some(Route::Health)),
            ("/v1/status", Some(Route::Status)),
            (
                "/v1/orgs/octo/repos",
                Some(Route::OrgRepos { owner: "octo" }),
            ),
            (
                "/v1/orgs/-bad-/repos",
                Some(Route::OrgRepos { owner: "-bad-" }),
            ),
            (
                "/v1/repos/octo/hello",
                Some(Route::Repo {
                    owner: "octo",
                    repo: "hello",
                }),
            ),
            (
                "/v1/repos/octo/a%2Fb",
                Some(Route::Repo {
                    owner: "octo",
                    repo: "a%2Fb",
                }),
            ),
            ("/v1/repos", Some(Route::Batch)),
            ("/v1/repos/", None),
            ("/v1/webhooks/github", Some(Route::Webhook)),
            ("/v1/webhooks/github/", None),
            (
                "/v1/cache/orgs/octo",
                Some(Route::PurgeOrg { owner: "octo" }),
            ),
            (
                "/v1/cache/repos/octo/r",
                Some(Route::PurgeRepo {
                    owner: "octo",
                    repo: "r",
                }),
            ),
            ("/v1/cache/repos/octo", None),
            ("/v1/health/", None),
            ("/v1/orgs/octo/repos/", None),
            (
                "/v1/orgs/octo/summary",
                Some(Route::OrgSummary { owner: "octo" }),
            ),
            ("/v1/orgs/octo/summary/", None),
            ("/v1/orgs//summary", None),
            ("/v1/orgs//repos", None),
            ("/v1/repos/octo", None),
            ("/v1/repos/octo/hello/extra", None),
            ("//v1/health", None),
            ("/v2/health", None),
            ("", None),
            ("/", Some(Route::Dashboard)),
            ("//", None),
            ("/index.html", None),
            ("/v1/openapi.json", Some(Route::OpenApi)),
        ];
        for (path, expected) in cases {
            assert_eq!(match_route(path), *expected, "{path}");
        }
    }

    /// One sample path per route; the exhaustive match in `template` keeps it complete.
    pub(crate) const SAMPLES: &[&str] = &[
        "/",
        "/v1/openapi.json",
        "/v1/health",
        "/v1/status",
        "/v1/orgs/o/repos",
        "/v1/orgs/o/summary",
        "/v1/orgs/o/status",
        "/v1/orgs/o/events",
        "/v1/repos/o/r",
        "/v1/repos",
        "/v1/webhooks/github",
        "/v1/cache/orgs/o",
        "/v1/cache/repos/o/r",
    ];

    #[test]
    fn openapi_documents_every_route_and_method() {
        let doc: serde_json::Value = serde_json::from_str(crate::http::OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut templates = Vec::new();
        for sample in SAMPLES {
            let route = match_route(sample).unwrap();
            let entry = paths
                .get(route.template())
                .unwrap_or_else(|| panic!("{} is not documented", route.template()));
            for method in route
                .methods()
                .split(", ")
                .filter(|m| !matches!(*m, "OPTIONS" | "HEAD"))
            {
                assert!(
                    entry.get(method.to_ascii_lowercase()).is_some(),
                    "{method} {} is not documented",
                    route.template()
                );
            }
            let documented: Vec<&String> = entry.as_object().unwrap().keys().collect();
            for m in documented {
                assert!(
                    route.allows(&m.to_ascii_uppercase()),
                    "{m} {} is documented but not routed",
                    route.template()
                );
            }
            templates.push(route.template());
        }
        let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
        documented.sort_unstable();
        templates.sort_unstable();
        assert_eq!(documented, templates, "documented paths and routes differ");
    }

    #[test]
    fn method_table() {
        let cases = [
            (Route::Health, "GET", true),
            (Route::Health, "HEAD", true),
            (Route::Health, "POST", false),
            (Route::Batch, "OPTIONS", true),
            (Route::Webhook, "POST", true),
            (Route::Webhook, "GET", false),
            (Route::Webhook, "HEAD", false),
            (Route::OrgEvents { owner: "o" }, "GET", true),
            (Route::OrgEvents { owner: "o" }, "OPTIONS", false),
            (Route::PurgeOrg { owner: "o" }, "DELETE", true),
            (Route::PurgeOrg { owner: "o" }, "GET", false),
            (
                Route::PurgeRepo {
                    owner: "o",
                    repo: "r",
                },
                "HEAD",
                false,
            ),
        ];
        for (route, method, ok) in cases {
            assert_eq!(route.allows(method), ok, "{route:?} {method}");
        }
    }
}

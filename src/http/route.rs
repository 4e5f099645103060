//! Route matching by path shape. Segments are compared raw (not percent-decoded), so `%2F` inside
//! a name stays in the name and fails validation instead of changing the route.

/// A matched route with its raw (unvalidated) path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    OrgRepos { owner: &'a str },
    Repo { owner: &'a str, repo: &'a str },
    Batch,
}

/// Methods every read route answers.
pub const READ_METHODS: &str = "GET, HEAD, OPTIONS";

/// The route for `path`, or `None` (404 `no_route`). Empty segments never match, so a trailing
/// slash or `//` is not the same route.
pub fn match_route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    match segs.as_slice() {
        ["v1", "health"] => Some(Route::Health),
        ["v1", "orgs", owner, "repos"] => Some(Route::OrgRepos { owner }),
        ["v1", "repos", owner, repo] => Some(Route::Repo { owner, repo }),
        ["v1", "repos"] => Some(Route::Batch),
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
            ("/v1/health/", None),
            ("/v1/orgs/octo/repos/", None),
            ("/v1/orgs//repos", None),
            ("/v1/repos/octo", None),
            ("/v1/repos/octo/hello/extra", None),
            ("//v1/health", None),
            ("/v2/health", None),
            ("", None),
            ("/", None),
        ];
        for (path, expected) in cases {
            assert_eq!(match_route(path), *expected, "{path}");
        }
    }
}

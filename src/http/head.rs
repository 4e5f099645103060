//! Request and response heads as one line-separated text each, the form they cross between the
//! shell's JavaScript and the core in: one string per request and one per response instead of a
//! call per header, because on a memory HIT those crossings are most of the work.

use super::{query, Request, Response};

impl Request {
    /// Reads `METHOD\nURL\nname:value\n…` (header names already lowercase, as `Headers`
    /// iterates them). Path and query come from the URL as the runtime normalised it: the path is
    /// kept raw (not percent-decoded), and so is the query.
    pub fn from_head(head: &str) -> Request {
        let mut lines = head.split('\n');
        let method = lines.next().unwrap_or_default().to_string();
        let url = lines.next().unwrap_or_default();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Request {
            method,
            path: path_of(url).to_string(),
            query: query::from_url(url).to_string(),
            headers,
            ..Request::default()
        }
    }
}

impl Response {
    /// The headers as `name:value` lines. A header that could not cross intact (a line break, or a
    /// colon in its name) is left out: `Headers` would refuse it, and every header here is ours.
    pub fn head_text(&self) -> String {
        let mut out = String::with_capacity(self.headers.len() * 40);
        for (k, v) in &self.headers {
            let broken = |s: &str| s.bytes().any(|b| b == b'\n' || b == b'\r');
            if k.is_empty() || k.bytes().any(|b| b == b':') || broken(k) || broken(v) {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(k);
            out.push(':');
            out.push_str(v);
        }
        out
    }
}

/// The path of an absolute URL: from the first `/` after the authority to `?` or `#`.
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let Some(start) = after_scheme.find('/') else {
        return "/";
    };
    let path = after_scheme.get(start..).unwrap_or("/");
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_from_urls() {
        let cases = [
            ("https://x.test/", "/", ""),
            ("https://x.test", "/", ""),
            ("https://x.test/v1/orgs/a/repos", "/v1/orgs/a/repos", ""),
            (
                "https://x.test:8080/v1/repos?names=a/b",
                "/v1/repos",
                "names=a/b",
            ),
            (
                "https://x.test/v1/repos?names=a/b#f",
                "/v1/repos",
                "names=a/b",
            ),
            ("https://x.test/v1/repos#f?x", "/v1/repos", ""),
            ("https://x.test/a%2Fb/c?x=%2F", "/a%2Fb/c", "x=%2F"),
            ("https://x.test/v1/orgs//repos", "/v1/orgs//repos", ""),
            ("http://127.0.0.1:8787/v1/health?", "/v1/health", ""),
        ];
        for (url, path, q) in cases {
            let req = Request::from_head(&format!("GET\n{url}"));
            assert_eq!((req.path.as_str(), req.query.as_str()), (path, q), "{url}");
        }
    }

    #[test]
    fn heads_carry_method_and_headers() {
        let req = Request::from_head(
            "HEAD\nhttps://x.test/v1/health\nauthorization:Bearer a:b\nIf-None-Match:\"x\"\norigin:https://a.test\nbroken",
        );
        assert_eq!(req.method, "HEAD");
        assert_eq!(req.header("authorization"), Some("Bearer a:b"));
        assert_eq!(req.header("if-none-match"), Some("\"x\""));
        assert_eq!(req.header("origin"), Some("https://a.test"));
        assert_eq!(
            req.headers.len(),
            3,
            "a line without a colon is not a header"
        );
        let empty = Request::from_head("");
        assert_eq!((empty.method.as_str(), empty.path.as_str()), ("", "/"));
    }

    #[test]
    fn response_heads_keep_values_whole_and_drop_what_cannot_cross() {
        let resp = Response {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("server-timing".into(), "mem;dur=0, kv;dur=3".into()),
                ("location".into(), "https://a.test:1/x".into()),
                ("x-bad".into(), "a\nb".into()),
                ("x:bad".into(), "a".into()),
                (String::new(), "a".into()),
            ],
            body: vec![],
            upgrade: None,
        };
        assert_eq!(
            resp.head_text(),
            "content-type:application/json\nserver-timing:mem;dur=0, kv;dur=3\nlocation:https://a.test:1/x"
        );
        assert_eq!(Response::default().head_text(), "");
    }
}

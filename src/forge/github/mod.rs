//! GitHub's GraphQL API as a `Forge`: query text and variables (`query`), reply parsing (`parse`),
//! the auth and `User-Agent` headers, and GitHub App authentication (`app`).

pub mod app;
pub mod deliveries;
mod node;
pub mod parse;
#[cfg(test)]
mod parse_reference;
pub mod payload;
pub mod query;
pub mod webhook;

use super::{BatchAnswer, Forge, HttpCall, HttpReply, OwnerPage, PageAsk, UpstreamFailure};
use crate::config::Config;
use crate::names::{FullName, Owner};
use crate::secret::Secret;

pub const USER_AGENT: &str = concat!("forgelens/", env!("CARGO_PKG_VERSION"));

pub struct GitHub {
    url: String,
}

impl GitHub {
    pub fn new(url: &str) -> GitHub {
        GitHub {
            url: url.to_string(),
        }
    }

    /// The GitHub that `GITHUB_GRAPHQL_URL` describes. The token is chosen per call (an App
    /// has one per installation).
    pub fn from_config(cfg: &Config) -> GitHub {
        GitHub::new(&cfg.graphql_url)
    }

    fn call(&self, body: String, token: Option<&Secret>) -> HttpCall {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("accept".to_string(), "application/json".to_string()),
            ("user-agent".to_string(), USER_AGENT.to_string()),
        ];
        if let Some(token) = token {
            headers.push((
                "authorization".to_string(),
                format!("bearer {}", token.expose()),
            ));
        }
        HttpCall {
            method: "POST",
            url: self.url.clone(),
            headers,
            body,
        }
    }
}

impl Forge for GitHub {
    fn owner_page_call(
        &self,
        owner: &Owner,
        ask: &PageAsk<'_>,
        token: Option<&Secret>,
    ) -> HttpCall {
        self.call(query::owner_page_body(owner, ask), token)
    }

    fn parse_owner_page(
        &self,
        ask: &PageAsk<'_>,
        reply: &HttpReply,
    ) -> Result<OwnerPage, UpstreamFailure> {
        let mut page = parse::owner_page(reply)?;
        if !ask.counts {
            page.counts = None;
        }
        Ok(page)
    }

    fn batch_call(&self, names: &[FullName], token: Option<&Secret>) -> HttpCall {
        self.call(query::batch_body(names), token)
    }

    fn parse_batch(&self, count: usize, reply: &HttpReply) -> Result<BatchAnswer, UpstreamFailure> {
        parse::batch(count, reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_token_and_user_agent() {
        let gh = GitHub::new("https://api.github.com/graphql");
        let t0k = Secret::new("t0k");
        let call = gh.owner_page_call(
            &Owner::parse("octo").unwrap(),
            &PageAsk {
                cursor: None,
                size: 100,
                part: None,
                back: false,
                counts: false,
            },
            Some(&t0k),
        );
        assert_eq!(call.method, "POST");
        assert!(call
            .headers
            .contains(&("authorization".into(), "bearer t0k".into())));
        assert!(call
            .headers
            .iter()
            .any(|(k, v)| k == "user-agent" && v.starts_with("forgelens/")));
        let call = gh.batch_call(&[], None);
        assert!(!call.headers.iter().any(|(k, _)| k == "authorization"));
    }
}

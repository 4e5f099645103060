//! Table-driven tests of the listing parameters, selection, order, pages, `Link` and summary,
//! over one fixture of public, private and internal records.

mod params;
mod select;
mod summary;

use super::params::Params;
use crate::http::query;
use crate::model::{Ci, CiState, Repo, RepoFields, Visibility};
use crate::view::Access;

pub(super) fn parsed(raw: &str) -> Params {
    super::params::parse(&query::parse(raw)).unwrap().unwrap()
}

pub(super) struct R {
    pub(super) name: &'static str,
    pub(super) vis: Visibility,
    pub(super) archived: bool,
    pub(super) fork: bool,
    pub(super) lang: Option<&'static str>,
    pub(super) ci: Option<Option<CiState>>,
    pub(super) pushed: Option<&'static str>,
    pub(super) desc: Option<&'static str>,
}

pub(super) const fn r(name: &'static str, vis: Visibility) -> R {
    R {
        name,
        vis,
        archived: false,
        fork: false,
        lang: None,
        ci: None,
        pushed: None,
        desc: None,
    }
}

pub(super) fn build(rs: Vec<R>) -> Vec<Repo> {
    let mut repos: Vec<Repo> = rs
        .into_iter()
        .map(|x| {
            let full = format!("Acme/{}", x.name);
            Repo::new(RepoFields {
                name: x.name,
                owner: "Acme",
                full_name: &full,
                url: "https://github.com/Acme/x",
                description: x.desc,
                visibility: x.vis,
                archived: x.archived,
                disabled: false,
                fork: x.fork,
                default_branch: x.ci.map(|_| "main"),
                pushed_at: x.pushed,
                updated_at: x.pushed,
                language: x.lang,
                ci: x.ci.map(|state| Ci { state, sha: "abc" }),
            })
        })
        .collect();
    crate::service::sort_by_name(&mut repos);
    repos
}

use Visibility::{Internal, Private, Public};

/// Eight records: public ones of every kind, and private and internal ones that would match
/// state filters if their state showed.
pub(super) fn fixture() -> Vec<Repo> {
    build(vec![
        R {
            lang: Some("Rust"),
            ci: Some(Some(CiState::Failure)),
            pushed: Some("2024-03-01T00:00:00Z"),
            desc: Some("The API server"),
            ..r("api", Public)
        },
        R {
            lang: Some("rust"),
            ci: Some(None),
            pushed: Some("2024-01-01T00:00:00Z"),
            archived: true,
            ..r("Blog", Public)
        },
        R {
            lang: Some("Go"),
            ci: None,
            pushed: None,
            fork: true,
            ..r("cli", Public)
        },
        R {
            lang: Some("Go"),
            ci: Some(Some(CiState::Success)),
            pushed: Some("2024-03-01T00:00:00Z"),
            ..r("docs", Public)
        },
        R {
            lang: Some("Rust"),
            ci: Some(Some(CiState::Failure)),
            pushed: Some("2025-01-01T00:00:00Z"),
            archived: true,
            fork: true,
            desc: Some("api secrets"),
            ..r("secret-api", Private)
        },
        R {
            lang: Some("Go"),
            ci: Some(Some(CiState::Error)),
            pushed: Some("2023-01-01T00:00:00Z"),
            ..r("Tools", Internal)
        },
        R {
            lang: Some("C"),
            ci: Some(Some(CiState::Pending)),
            pushed: Some("2024-02-01T00:00:00.5Z"),
            ..r("web", Public)
        },
        R {
            lang: None,
            ci: Some(Some(CiState::Expected)),
            pushed: Some("2024-02-01T00:00:00Z"),
            desc: Some("API docs"),
            ..r("www", Public)
        },
    ])
}

/// A read token unlocking every owner.
pub(super) fn token() -> Access {
    Access::Token {
        all: true,
        owners: Vec::new(),
    }
}

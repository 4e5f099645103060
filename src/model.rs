//! The forge-neutral repository model. Forge modules produce it, the cache stores it, views project
//! it. Nothing GitHub-specific lives here, so a second forge only has to produce these types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Internal => "internal",
        }
    }
}

/// Combined CI state of the default branch head commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CiState {
    Success,
    Failure,
    Pending,
    Error,
    Expected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ci {
    pub state: Option<CiState>,
    pub sha: String,
}

/// One repository as the cache stores it: every field of the allow-list, private ones included.
/// Visibility rules are applied when a view is made, never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repo {
    pub name: String,
    pub owner: String,
    pub full_name: String,
    pub url: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub archived: bool,
    pub disabled: bool,
    pub fork: bool,
    pub default_branch: Option<String>,
    pub pushed_at: Option<String>,
    pub updated_at: Option<String>,
    pub language: Option<String>,
    pub ci: Option<Ci>,
}

impl Repo {
    pub fn is_public(&self) -> bool {
        self.visibility == Visibility::Public
    }
}

/// Every repository of one owner, as one cache entry (`v1:org:{owner}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerListing {
    /// The owner login as GitHub spells it.
    pub login: String,
    pub repos: Vec<Repo>,
}

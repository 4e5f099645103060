//! The model's enums and their names: as stored, as answered, as GitHub spells them.

use crate::json::{self, Reader};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

    /// As a JSON string, quotes included (written without scanning for escapes).
    pub fn json(self) -> &'static str {
        match self {
            Visibility::Public => "\"public\"",
            Visibility::Private => "\"private\"",
            Visibility::Internal => "\"internal\"",
        }
    }

    pub(super) fn read_json(r: &mut Reader<'_>) -> json::Result<Visibility> {
        match &*r.str()? {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            "internal" => Ok(Visibility::Internal),
            _ => Err(r.error()),
        }
    }
}

/// Combined CI state of the default branch head commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CiState {
    Success,
    Failure,
    Pending,
    Error,
    Expected,
}

impl CiState {
    pub fn as_str(self) -> &'static str {
        match self {
            CiState::Success => "success",
            CiState::Failure => "failure",
            CiState::Pending => "pending",
            CiState::Error => "error",
            CiState::Expected => "expected",
        }
    }

    /// As a JSON string, quotes included (written without scanning for escapes).
    pub fn json(self) -> &'static str {
        match self {
            CiState::Success => "\"success\"",
            CiState::Failure => "\"failure\"",
            CiState::Pending => "\"pending\"",
            CiState::Error => "\"error\"",
            CiState::Expected => "\"expected\"",
        }
    }

    pub(super) fn read_json(r: &mut Reader<'_>) -> json::Result<CiState> {
        match &*r.str()? {
            "success" => Ok(CiState::Success),
            "failure" => Ok(CiState::Failure),
            "pending" => Ok(CiState::Pending),
            "error" => Ok(CiState::Error),
            "expected" => Ok(CiState::Expected),
            _ => Err(r.error()),
        }
    }
}

//! The model's enums and their names: as stored, as answered, as GitHub's lowercase spells them.
//! Each enum's names are written once, in its `named!` table; `as_str`, `json` (the name quoted,
//! written without scanning for escapes) and `read_json` are made from it.

use crate::json::{self, Reader};

macro_rules! named {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        // Only the tests compare the stored form with serde's (`model/tests.rs`).
        #[cfg_attr(test, derive(serde::Serialize))]
        #[cfg_attr(test, serde(rename_all = "lowercase"))]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// As a JSON string, quotes included.
            pub fn json(self) -> &'static str {
                match self {
                    $($name::$variant => concat!("\"", $text, "\"")),+
                }
            }

            pub(super) fn read_json(r: &mut Reader<'_>) -> json::Result<$name> {
                match &*r.str()? {
                    $($text => Ok($name::$variant),)+
                    _ => Err(r.error()),
                }
            }
        }
    };
}

named!(
    /// Who may see a repository.
    Visibility {
        Public = "public",
        Private = "private",
        Internal = "internal",
    }
);

named!(
    /// Combined CI state of the default branch head commit.
    CiState {
        Success = "success",
        Failure = "failure",
        Pending = "pending",
        Error = "error",
        Expected = "expected",
    }
);

//! The forge-neutral repository model. Forge modules produce it, the cache stores it, views project
//! it. Nothing GitHub-specific lives here, so a second forge only has to produce these types.
//!
//! A `Repo` keeps its ten text fields in one allocation (a listing of 10,000 records is 10,000
//! allocations, not 100,000): build one from borrowed `RepoFields`, read it with the accessors.
//! Its stored JSON form is `RepoFields`' serde form (the tests hold the two together); the crate
//! writes and reads it by hand with `json`, which is faster and smaller in the wasm.

//! Layout: `names` (the enums and their JSON names), `text` (the one-allocation text buffer),
//! `repo` (`Repo`, `RepoFields`, `Ci`), `listing` (`OwnerListing`), `stored` (the stored JSON of
//! both, by hand).

mod listing;
mod names;
mod part;
mod repo;
mod stored;
mod text;

pub use listing::{Changed, OwnerListing, Scope};
pub use names::{CiState, Visibility};
pub use part::Part;
pub use repo::{Ci, Flags, Repo, RepoFields};
pub use text::{Text, TextBuf};

#[cfg(test)]
mod tests;

//! Views of large owners, without I/O or a clock: the listing parameters (`params`: filters,
//! order, page, and their normal form), the records a view holds (`select`) and the counts of
//! the summary (`summary`). The HTTP handlers feed them an owner's cached listing.

pub mod params;
pub mod select;
pub mod summary;

#[cfg(test)]
mod tests;

pub use params::{Params, Sort};
pub use select::{select, Selection};
pub use summary::{summarize, Summary};

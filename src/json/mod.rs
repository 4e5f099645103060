//! The hot paths' JSON, by hand: a strict pull reader that borrows strings from its input
//! (`Reader`, with `Keys` to match an object's keys), a writer (`Writer`) and `Codec` for stored
//! types. These are the texts whose size grows with a listing — GitHub's pages, the stored
//! envelope and checkpointed pages, rendered views — where serde's derives cost 2.7–3.5× the CPU
//! at `opt-level = "z"` (BENCHMARKS.md, "JSON: hand-written against serde", measured by
//! `cargo bench --bench cpu -- json`, keeps the ratios current; a path under 1.5× moves to serde). Everything else (webhook payloads, App REST
//! replies, read tokens) is read with serde; serde_json is also the reference these are checked
//! against in the tests.
//!
//! The reader accepts what serde_json accepts: no trailing commas, no control characters in
//! strings, no lone surrogates, no leading zeros, nothing after the value. Values that are read
//! nest at most `MAX_DEPTH` deep (serde_json's recursion limit); values that are skipped are
//! checked as serde_json ignores them, iteratively at any depth, escapes for form only. The
//! writer escapes like serde_json, byte for byte, so stored entries and views keep their text.

/// Containers nested deeper than this are refused (serde_json's recursion limit).
pub const MAX_DEPTH: u32 = 128;

/// Where the text stopped being what the reader was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// Byte offset in the text.
    pub at: usize,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed or unexpected JSON at byte {}", self.at)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

mod keys;
mod read;
#[cfg(test)]
pub(crate) mod tests;
mod write;

pub use keys::{required, Keys, Seen};
pub use read::Reader;
pub use write::Writer;

/// A type whose JSON form is written and read by hand (stored entries, checkpointed pages).
pub trait Codec: Sized {
    /// Appends the JSON form to `out`.
    fn write_json(&self, out: &mut Writer);

    /// # Errors
    /// The value at the reader is not this type's JSON form.
    fn read_json(r: &mut Reader<'_>) -> Result<Self>;

    /// The JSON form as text.
    fn to_json(&self) -> String {
        let mut out = Writer::with_capacity(256);
        self.write_json(&mut out);
        out.finish()
    }

    /// Reads a text that holds one value of this type and nothing else.
    ///
    /// # Errors
    /// As `read_json`, or text after the value.
    fn from_json(text: &str) -> Result<Self> {
        let mut r = Reader::new(text);
        let value = Self::read_json(&mut r)?;
        r.end()?;
        Ok(value)
    }
}

//! A record's text fields gathered into one buffer, to become one `Repo` (one allocation).

use crate::json::{self, Reader};

/// The text fields of a `Repo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Name,
    Owner,
    FullName,
    Url,
    Description,
    DefaultBranch,
    PushedAt,
    UpdatedAt,
    Language,
    /// The CI head's commit: CI is present when this is.
    Sha,
}

pub(super) const TEXTS: usize = 10;

impl Text {
    pub(super) fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A record's text fields gathered, in whatever order they arrive, into one buffer, to become
/// one `Repo` (one allocation). Reused from record to record: `clear` keeps the buffer.
#[derive(Default)]
pub struct TextBuf {
    pub(super) bytes: Vec<u8>,
    /// Start and end of each field in `bytes`, in `Text` order.
    pub(super) spans: [(u32, u32); TEXTS],
    pub(super) present: u16,
}

impl TextBuf {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.present = 0;
    }

    /// Reads a JSON string into field `t`.
    ///
    /// # Errors
    /// Not a string.
    #[inline(always)]
    pub fn read(&mut self, t: Text, r: &mut Reader<'_>) -> json::Result<()> {
        let start = self.bytes.len();
        r.str_into(&mut self.bytes)?;
        self.mark(t, start);
        Ok(())
    }

    /// Reads a JSON string into field `t`, or `null` (the field is absent).
    ///
    /// # Errors
    /// Neither a string nor `null`.
    #[inline(always)]
    pub fn read_opt(&mut self, t: Text, r: &mut Reader<'_>) -> json::Result<()> {
        let start = self.bytes.len();
        if r.opt_str_into(&mut self.bytes)? {
            self.mark(t, start);
        }
        Ok(())
    }

    pub fn set(&mut self, t: Text, value: Option<&str>) {
        self.present &= !t.bit();
        if let Some(value) = value {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(value.as_bytes());
            self.mark(t, start);
        }
    }

    /// Field `t` as read, when present.
    pub fn get(&self, t: Text) -> Option<&[u8]> {
        if self.present & t.bit() == 0 {
            return None;
        }
        let (start, end) = self.spans.get(t as usize).copied().unwrap_or_default();
        self.bytes.get(start as usize..end as usize)
    }

    #[inline(always)]
    fn mark(&mut self, t: Text, start: usize) {
        // A record's text is far below 4 GiB: it comes from one reply or one KV value.
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(span) = self.spans.get_mut(t as usize) {
            *span = (at(start), at(self.bytes.len()));
        }
        self.present |= t.bit();
    }
}

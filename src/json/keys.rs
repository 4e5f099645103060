//! Matching an object's keys against a table, in the order the previous object used.

use super::{Reader, Result};

/// Most keys a `Keys` table may hold.
const MAX_KEYS: usize = 32;
/// `Keys::order` entries: no guess (the key was not in the table), no history.
const UNKNOWN: u8 = u8::MAX - 1;
const UNSEEN: u8 = u8::MAX;

/// Reads objects whose keys a table names, matching each key to its entry: keys in any order,
/// unknown keys reported (to be skipped), a key met twice refused, as serde's derives refuse it
/// (a record is never taken from the first or the last of two).
///
/// Objects of one kind come with their keys in one order (GitHub answers in the order of the
/// query, this crate writes in a fixed one), so each key is first compared, as raw bytes, with
/// the key found at the same place in the previous object (at first, table order): a run of such
/// objects costs one comparison per key and decodes no key at all.
pub struct Keys<'t, T> {
    table: &'t [(&'static str, T)],
    /// Table positions of the keys of the previous object, in its order (`UNKNOWN`: not in the
    /// table, `UNSEEN`: no previous object that long, guess table order).
    order: [u8; MAX_KEYS],
    /// Keys read in this object.
    count: usize,
    seen: u64,
}

impl<'t, T: Copy> Keys<'t, T> {
    /// `table` holds at most `MAX_KEYS` names; any beyond are never matched.
    pub fn new(table: &'t [(&'static str, T)]) -> Self {
        Keys {
            table: table.get(..MAX_KEYS).unwrap_or(table),
            order: [UNSEEN; MAX_KEYS],
            count: 0,
            seen: 0,
        }
    }

    /// Opens the next object of this kind.
    ///
    /// # Errors
    /// As `Reader::object`.
    pub fn object(&mut self, r: &mut Reader<'_>) -> Result<()> {
        r.object()?;
        self.count = 0;
        self.seen = 0;
        Ok(())
    }

    /// The next key of the open object, its colon consumed: `None` when the object closed,
    /// `Some(None)` for a key the table does not know (skip its value).
    ///
    /// # Errors
    /// Malformed JSON, or a key met before in this object.
    pub fn next(&mut self, r: &mut Reader<'_>) -> Result<Option<Option<T>>> {
        if !r.member()? {
            return Ok(None);
        }
        let slot = self.count;
        self.count += 1;
        let guess = match self.order.get(slot) {
            Some(&UNSEEN) => slot,
            Some(&i) => usize::from(i),
            None => usize::MAX,
        };
        let at = match self.table.get(guess) {
            Some((name, _)) if r.raw_key(name)? => Some(guess),
            _ => {
                let key = r.key_text()?;
                // Lengths first: most names are told apart without comparing bytes.
                self.table
                    .iter()
                    .position(|(name, _)| name.len() == key.len() && *name == key)
            }
        };
        if let Some(o) = self.order.get_mut(slot) {
            *o = at.and_then(|at| u8::try_from(at).ok()).unwrap_or(UNKNOWN);
        }
        let Some((at, (_, tag))) = at.and_then(|at| Some((at, self.table.get(at)?))) else {
            return Ok(Some(None));
        };
        let bit = 1u64 << at; // `at` < MAX_KEYS
        if self.seen & bit != 0 {
            return r.fail();
        }
        self.seen |= bit;
        Ok(Some(Some(*tag)))
    }
}

/// Records which of an object's known keys were read: a repeated key is refused, as serde's
/// derives refuse it (a record is never taken from the first or the last of two).
#[derive(Default)]
pub struct Seen(u32);

impl Seen {
    /// # Errors
    /// Key number `n` was seen before.
    pub fn once(&mut self, n: u32, r: &Reader<'_>) -> Result<()> {
        let bit = 1u32.checked_shl(n).unwrap_or(0);
        if self.0 & bit != 0 {
            return r.fail();
        }
        self.0 |= bit;
        Ok(())
    }
}

/// A required value that was absent.
///
/// # Errors
/// `value` is `None`.
pub fn required<T>(value: Option<T>, r: &Reader<'_>) -> Result<T> {
    value.ok_or(r.error())
}

//! The reader: a strict pull parser over one JSON text that borrows its strings. The cursor, its
//! scalars and containers are here; strings (`string`) and values skipped unread (`skip`) are
//! child modules, which see the cursor's invariants (position, depth, whether the open container
//! has had a member yet) without the rest of the crate seeing them.

mod skip;
mod string;

use super::{Error, Result, MAX_DEPTH};
use std::borrow::Cow;

/// A cursor over one JSON text. Objects are read with `object` then `key` until it returns
/// `None`, arrays with `array` then `element` until it returns `false`; every key's or element's
/// value must be read (or `skip`ped) before the next.
pub struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
    depth: u32,
    /// The container just opened has not had its first member yet.
    first: bool,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            pos: 0,
            depth: 0,
            first: false,
        }
    }

    pub fn error(&self) -> Error {
        Error { at: self.pos }
    }

    pub(super) fn fail<T>(&self) -> Result<T> {
        Err(self.error())
    }

    /// The next byte that is not whitespace, not consumed.
    #[inline(always)]
    pub(super) fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `byte` (after whitespace) or fails.
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() != Some(byte) {
            return self.fail();
        }
        self.pos += 1;
        Ok(())
    }

    /// Consumes `word` when the text continues with it.
    fn literal(&mut self, word: &str) -> bool {
        let found = starts_with_at(self.text.as_bytes(), self.pos, word.as_bytes());
        if found {
            self.pos += word.len();
        }
        found
    }

    /// The whole text was one value: only whitespace is left.
    ///
    /// # Errors
    /// Anything after the value.
    pub fn end(mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail(),
        }
    }

    /// Consumes a `null` when that is the next value; `false` (nothing consumed) otherwise.
    ///
    /// # Errors
    /// An `n` that does not start `null`.
    #[inline(always)]
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        if self.literal("null") {
            Ok(true)
        } else {
            self.fail()
        }
    }

    /// # Errors
    /// Anything but `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        let (word, value) = match self.peek() {
            Some(b't') => ("true", true),
            Some(b'f') => ("false", false),
            _ => return self.fail(),
        };
        if self.literal(word) {
            Ok(value)
        } else {
            self.fail()
        }
    }

    /// A non-negative integer that fits `u64` (what serde_json reads into one).
    ///
    /// # Errors
    /// A sign, fraction, exponent, leading zero, overflow, or no number at all.
    pub fn u64(&mut self) -> Result<u64> {
        self.peek();
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut n: u64 = 0;
        while let Some(&b) = bytes.get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or(Error { at: start })?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        let leading_zero = digits > 1 && bytes.get(start) == Some(&b'0');
        let more = matches!(bytes.get(self.pos), Some(b'.' | b'e' | b'E'));
        if digits == 0 || leading_zero || more {
            return Err(Error { at: start });
        }
        Ok(n)
    }

    /// A number of any JSON form, as its text (checked against JSON's grammar, not converted).
    ///
    /// # Errors
    /// Not a number.
    pub fn number_text(&mut self) -> Result<&'a str> {
        self.peek();
        let start = self.pos;
        self.number()?;
        self.text.get(start..self.pos).ok_or(Error { at: start })
    }

    fn open(&mut self, byte: u8) -> Result<()> {
        self.expect(byte)?;
        if self.depth >= MAX_DEPTH {
            return self.fail();
        }
        self.depth += 1;
        self.first = true;
        Ok(())
    }

    fn close(&mut self) {
        self.pos += 1;
        self.depth = self.depth.saturating_sub(1);
        self.first = false;
    }

    /// Opens an object; read it with `key`.
    ///
    /// # Errors
    /// The next value is not an object, or nests too deep.
    pub fn object(&mut self) -> Result<()> {
        self.open(b'{')
    }

    /// The next key of the open object, its colon consumed; `None` (the object closed) at `}`.
    ///
    /// # Errors
    /// Anything but a key or the end where one is due.
    pub fn key(&mut self) -> Result<Option<Cow<'a, str>>> {
        if !self.member()? {
            return Ok(None);
        }
        self.key_text().map(Some)
    }

    /// Moves to the next member of the open object, at its key's quote: `false` (the object
    /// closed) at `}`.
    #[inline(always)]
    pub(super) fn member(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b'}') => {
                self.close();
                return Ok(false);
            }
            Some(b',') if !self.first => {
                self.pos += 1;
                if self.peek() != Some(b'"') {
                    return self.fail();
                }
            }
            Some(b'"') if self.first => {}
            _ => return self.fail(),
        }
        self.first = false;
        Ok(true)
    }

    /// The key at the quote, and its colon.
    pub(super) fn key_text(&mut self) -> Result<Cow<'a, str>> {
        self.pos += 1;
        let key = self.string_body()?;
        self.colon()?;
        Ok(key)
    }

    #[inline(always)]
    fn colon(&mut self) -> Result<()> {
        // Compact JSON has the colon right after the key.
        if self.text.as_bytes().get(self.pos) == Some(&b':') {
            self.pos += 1;
            Ok(())
        } else {
            self.expect(b':')
        }
    }

    /// Consumes the key at the quote and its colon when the key is `name` spelled without
    /// escapes; nothing otherwise.
    #[inline(always)]
    pub(super) fn raw_key(&mut self, name: &str) -> Result<bool> {
        let bytes = self.text.as_bytes();
        let end = self.pos + 1 + name.len();
        if !starts_with_at(bytes, self.pos + 1, name.as_bytes()) || bytes.get(end) != Some(&b'"') {
            return Ok(false);
        }
        self.pos = end + 1;
        self.colon()?;
        Ok(true)
    }

    /// Opens an array; read it with `element`.
    ///
    /// # Errors
    /// The next value is not an array, or nests too deep.
    pub fn array(&mut self) -> Result<()> {
        self.open(b'[')
    }

    /// Whether the open array has another element (then read it); `false` (closed) at `]`.
    ///
    /// # Errors
    /// Anything but an element or the end where one is due.
    pub fn element(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b']') => {
                self.close();
                Ok(false)
            }
            Some(b',') if !self.first => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) if self.first => {
                self.first = false;
                Ok(true)
            }
            _ => self.fail(),
        }
    }
}

/// Whether `bytes` holds `word` at `at`. Eight bytes at a time, inlined: keys are short, and
/// a call to `memcmp` would cost more than comparing them.
#[inline(always)]
fn starts_with_at(bytes: &[u8], at: usize, word: &[u8]) -> bool {
    let Some(mut here) = bytes.get(at..at + word.len()) else {
        return false;
    };
    let mut word = word;
    while let (Some((a, rest_a)), Some((b, rest_b))) =
        (here.split_first_chunk::<8>(), word.split_first_chunk::<8>())
    {
        if a != b {
            return false;
        }
        (here, word) = (rest_a, rest_b);
    }
    let mut i = 0;
    while let (Some(a), Some(b)) = (here.get(i), word.get(i)) {
        if a != b {
            return false;
        }
        i += 1;
    }
    true
}

/// How many bytes `bytes` starts with that a JSON string holds as they are: up to the first
/// quote, backslash or control character. Inlined: it runs for every string.
#[inline(always)]
pub(super) fn plain_len(bytes: &[u8]) -> usize {
    let mut n = 0;
    // Eight bytes at a time: most strings are short and have no special byte at all.
    while let Some(word) = bytes
        .get(n..n + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let special = special_bytes(u64::from_le_bytes(word));
        if special != 0 {
            // The lowest flagged byte is exact (only bytes above a true one can be false).
            return n + (special.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while let Some(&b) = bytes.get(n) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        n += 1;
    }
    n
}

#[inline(always)]
/// The high bit of every byte of `word` that may be a quote, a backslash or below 0x20: the
/// classic SWAR tests for a zero byte and for a byte below n.
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    below(quote, 1) | below(backslash, 1) | below(word, 0x20)
}

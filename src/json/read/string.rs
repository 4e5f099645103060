//! Strings: borrowed from the text when they hold no escape, unescaped into a buffer otherwise;
//! escapes checked as serde_json checks them (surrogates paired, no control characters).

use super::{plain_len, Reader};
use crate::json::{Error, Result};
use std::borrow::Cow;

impl<'a> Reader<'a> {
    /// A string, borrowed from the text unless it holds escapes.
    ///
    /// # Errors
    /// Not a string, an unknown escape, a lone surrogate, a control character, no closing quote.
    pub fn str(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return self.fail();
        }
        self.pos += 1;
        self.string_body()
    }

    /// A string whose opening quote was consumed.
    #[inline(always)]
    pub(super) fn string_body(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let end = start + plain_len(bytes.get(start..).unwrap_or_default());
        if bytes.get(end) == Some(&b'"') {
            // The quotes are ASCII, so `start..end` lies on character boundaries.
            let run = self.text.get(start..end).ok_or(Error { at: end })?;
            self.pos = end + 1;
            return Ok(Cow::Borrowed(run));
        }
        let mut owned = Vec::new();
        self.escaped_string(&mut owned)?;
        // Whole characters of the text and whole escaped characters only.
        String::from_utf8(owned)
            .map(Cow::Owned)
            .map_err(|_| self.error())
    }

    /// Appends the string at the opening quote, unescaped, to `out`.
    ///
    /// # Errors
    /// As `str`.
    #[inline(always)]
    pub fn str_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.peek() != Some(b'"') {
            return self.fail();
        }
        self.pos += 1;
        self.string_into(out)
    }

    /// `string_into`, not inlined (strings with escapes, read as `Cow`s).
    #[inline(never)]
    pub(super) fn escaped_string(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.string_into(out)
    }

    /// Appends the string whose opening quote was consumed, unescaped, to `out`.
    #[inline(always)]
    pub(super) fn string_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let bytes = self.text.as_bytes();
        loop {
            let start = self.pos;
            let rest = bytes.get(start..).unwrap_or_default();
            let plain = plain_len(rest);
            out.extend_from_slice(rest.get(..plain).unwrap_or_default());
            self.pos = start + plain;
            match rest.get(plain) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => self.escape_into(out)?,
                _ => return self.fail(),
            }
        }
    }

    /// The escape at the backslash, as UTF-8, into `out`.
    #[cold]
    #[inline(never)]
    pub(super) fn escape_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let at = self.pos;
        let kind = self.text.as_bytes().get(at + 1).copied();
        self.pos += 2;
        let c = match kind {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => self.unicode()?,
            _ => return Err(Error { at }),
        };
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    /// The character of a `\u` escape whose four digits start at `pos`, pairing surrogates.
    pub(super) fn unicode(&mut self) -> Result<char> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.literal("\\u") {
                return self.fail();
            }
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return self.fail();
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or(self.error())
    }

    pub(super) fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(self.error())?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.fail();
        }
        let n = u32::from_str_radix(digits, 16).map_err(|_| self.error())?;
        self.pos += 4;
        Ok(n)
    }

    /// A string or `null`: `false` for `null`, else the string is appended to `out`.
    ///
    /// # Errors
    /// As `str`.
    #[inline(always)]
    pub fn opt_str_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if self.null()? {
            return Ok(false);
        }
        self.str_into(out).map(|()| true)
    }

    /// A string or `null`.
    ///
    /// # Errors
    /// As `str`.
    pub fn opt_str(&mut self) -> Result<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string_body().map(Some)
            }
            Some(b'n') if self.literal("null") => Ok(None),
            _ => self.fail(),
        }
    }
}

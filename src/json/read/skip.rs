//! Values nobody reads: checked as serde_json ignores them (escapes for form only), iteratively
//! at any depth, so a reply never fails over a field the worker does not use.

use super::{plain_len, Reader};
use crate::json::{Error, Result};

impl Reader<'_> {
    /// Reads past the next value, whatever it is, checking that it is well formed, as
    /// serde_json ignores a value: iteratively, so without a depth limit (the containers open
    /// inside it are remembered, not recursed into).
    ///
    /// # Errors
    /// The value is malformed.
    pub fn skip(&mut self) -> Result<()> {
        // The closing byte of every container open inside the value.
        let mut open = Vec::new();
        loop {
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        open.push(b'}');
                        self.skip_key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        open.push(b']');
                        continue;
                    }
                }
                Some(b'"') => self.skip_str()?,
                Some(b't' | b'f') => {
                    self.bool()?;
                }
                Some(b'n') => {
                    if !self.null()? {
                        return self.fail();
                    }
                }
                _ => self.number()?,
            }
            // A value ended: close what it ended, or go on to the next member or element.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if close == b'}' {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return self.fail(),
                }
            }
        }
    }

    /// Reads past a key of an object being skipped, and its colon.
    pub(super) fn skip_key(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return self.fail();
        }
        self.skip_str()?;
        self.colon()
    }

    /// Reads past the string at the quote without decoding it. Escapes are checked for form
    /// only (`\u` and four hex digits, a surrogate needs no partner): serde_json ignores a
    /// value this way, and a reply must not fail over a field nobody reads.
    pub(super) fn skip_str(&mut self) -> Result<()> {
        let bytes = self.text.as_bytes();
        self.pos += 1;
        loop {
            self.pos += plain_len(bytes.get(self.pos..).unwrap_or_default());
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let kind = bytes.get(self.pos + 1).copied();
                    self.pos += 2;
                    match kind {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            self.hex4()?;
                        }
                        _ => return self.fail(),
                    }
                }
                _ => return self.fail(),
            }
        }
    }

    /// Any JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    pub(in crate::json) fn number(&mut self) -> Result<()> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
        let digits = |mut i: usize| {
            while at(i).is_ascii_digit() {
                i += 1;
            }
            i
        };
        let mut i = start;
        if at(i) == b'-' {
            i += 1;
        }
        let int = i;
        i = digits(i);
        if i == int || (at(int) == b'0' && i > int + 1) {
            return Err(Error { at: start });
        }
        if at(i) == b'.' {
            let frac = i + 1;
            i = digits(frac);
            if i == frac {
                return Err(Error { at: start });
            }
        }
        if matches!(at(i), b'e' | b'E') {
            i += 1;
            if matches!(at(i), b'+' | b'-') {
                i += 1;
            }
            let exp = i;
            i = digits(exp);
            if i == exp {
                return Err(Error { at: start });
            }
        }
        self.pos = i;
        Ok(())
    }
}

//! The JSON of the hot paths, by hand: a strict pull reader that borrows strings from its input
//! (`Reader`, with `Keys` to match an object's keys), a writer (`Writer`) and `Codec` for stored
//! types. GitHub pages, stored entries and views are read and written with these instead of
//! serde's derives, which at `opt-level = "z"` cost three times the CPU (and more wasm);
//! everything else in the crate keeps serde_json.
//!
//! The reader accepts what serde_json accepts: no trailing commas, no control characters in
//! strings, no lone surrogates, no leading zeros, nothing after the value. Values that are read
//! nest at most `MAX_DEPTH` deep (serde_json's recursion limit); values that are skipped are
//! checked as serde_json ignores them, iteratively at any depth, escapes for form only. The
//! writer escapes like serde_json, byte for byte, so stored entries and views keep their text.

use std::borrow::Cow;

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

/// A cursor over one JSON text. Objects are read with `object` then `key` until it returns
/// `None`, arrays with `array` then `element` until it returns `false`; every key's or element's
/// value must be read (or `skip`ped) before the next.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
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

    fn fail<T>(&self) -> Result<T> {
        Err(self.error())
    }

    /// The next byte that is not whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
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
    fn string_body(&mut self) -> Result<Cow<'a, str>> {
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
    fn escaped_string(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.string_into(out)
    }

    /// Appends the string whose opening quote was consumed, unescaped, to `out`.
    #[inline(always)]
    fn string_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
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
    fn escape_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
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
    fn unicode(&mut self) -> Result<char> {
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

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(self.error())?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.fail();
        }
        let n = u32::from_str_radix(digits, 16).map_err(|_| self.error())?;
        self.pos += 4;
        Ok(n)
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
    fn member(&mut self) -> Result<bool> {
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
    fn key_text(&mut self) -> Result<Cow<'a, str>> {
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
    fn raw_key(&mut self, name: &str) -> Result<bool> {
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
    fn skip_key(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return self.fail();
        }
        self.skip_str()?;
        self.colon()
    }

    /// Reads past the string at the quote without decoding it. Escapes are checked for form
    /// only (`\u` and four hex digits, a surrogate needs no partner): serde_json ignores a
    /// value this way, and a reply must not fail over a field nobody reads.
    fn skip_str(&mut self) -> Result<()> {
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
    fn number(&mut self) -> Result<()> {
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
fn plain_len(bytes: &[u8]) -> usize {
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

/// JSON text being written. Bytes rather than a `String`: at `opt-level = "z"`
/// `String::push` is a call per character, `Vec::push` is inlined. Only whole characters are
/// ever written, so `finish` always has the text.
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn with_capacity(bytes: usize) -> Self {
        Writer(Vec::with_capacity(bytes))
    }

    /// One ASCII byte (punctuation).
    #[inline(always)]
    pub fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    /// Text as it is: punctuation and keys, which need no escaping.
    pub fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// `s` as a JSON string, escaped exactly as serde_json escapes it.
    pub fn str(&mut self, s: &str) {
        self.byte(b'"');
        self.escaped(s);
        self.byte(b'"');
    }

    /// A string or `null`.
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    /// `s` escaped as inside a JSON string, without the quotes.
    fn escaped(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        loop {
            let rest = bytes.get(start..).unwrap_or_default();
            let plain = plain_len(rest);
            self.0
                .extend_from_slice(rest.get(..plain).unwrap_or_default());
            let Some(&b) = rest.get(plain) else {
                return;
            };
            match b {
                b'"' => self.raw("\\\""),
                b'\\' => self.raw("\\\\"),
                0x08 => self.raw("\\b"),
                0x0c => self.raw("\\f"),
                b'\n' => self.raw("\\n"),
                b'\r' => self.raw("\\r"),
                b'\t' => self.raw("\\t"),
                // `\u00XX` with lowercase hex digits; `b` is below 0x20.
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.raw(if b < 0x10 { "\\u000" } else { "\\u001" });
                    self.byte(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
                }
            }
            start += plain + 1;
        }
    }

    /// The text written.
    pub fn finish(self) -> String {
        // Only whole characters were written (`&str` pieces and ASCII): this never falls back.
        String::from_utf8(self.0).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// splitmix64, as `tests/fuzz.rs` uses: deterministic and dependency-free.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Replaces a random value somewhere in `v` (or drops an object member, or adds one).
    /// `original` is what the unmutated reply holds at the same place.
    pub(crate) fn mutate(v: &mut Value, original: Option<&Value>, rng: &mut Rng) {
        let replacements = [
            json!(null),
            json!(0),
            json!(-1),
            json!(1.5),
            json!("x"),
            json!(""),
            json!("PUBLIC"),
            json!("INTERNAL"),
            json!("SUCCESS"),
            json!("public"),
            json!("internal"),
            json!("failure"),
            json!(true),
            json!(false),
            json!({}),
            json!([]),
            json!([null]),
            json!({"name": "n"}),
            json!("2024-05-01T10:00:00+00:00"),
            json!("2024-05-01T10:00:00.5Z"),
            json!("1969-05-01T10:00:00Z"),
        ];
        let stop = rng.below(4) == 0;
        match v {
            Value::Object(map) if !map.is_empty() && !stop => {
                let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
                match rng.below(8) {
                    0 => {
                        map.remove(&key);
                    }
                    // Unknown keys, sorted before and after the others.
                    1 => {
                        let key = ["aUnknown", "zUnknown"][rng.below(2)];
                        map.insert(key.into(), json!({"a": [1, "b"]}));
                    }
                    _ => mutate(
                        map.get_mut(&key).unwrap(),
                        original.and_then(|o| o.get(&key)),
                        rng,
                    ),
                }
            }
            Value::Array(items) if !items.is_empty() && !stop => {
                let i = rng.below(items.len());
                mutate(&mut items[i], original.and_then(|o| o.get(i)), rng);
            }
            _ => {
                // No array where the reply has an object: serde's derives read an array as a
                // struct's fields in order (`["x"]` is `{"login": "x"}`), which the reader
                // deliberately refuses.
                let object = original.is_some_and(Value::is_object);
                let fits: Vec<&Value> = replacements
                    .iter()
                    .filter(|r| !(object && r.is_array()))
                    .collect();
                *v = fits[rng.below(fits.len())].clone();
            }
        }
    }

    /// Reads any value into a serde_json `Value` through the reader, for comparison.
    fn read_value(r: &mut Reader<'_>) -> Result<Value> {
        Ok(match r.peek() {
            Some(b'{') => {
                r.object()?;
                let mut map = serde_json::Map::new();
                while let Some(k) = r.key()? {
                    let v = read_value(r)?;
                    map.insert(k.into_owned(), v);
                }
                Value::Object(map)
            }
            Some(b'[') => {
                r.array()?;
                let mut items = Vec::new();
                while r.element()? {
                    items.push(read_value(r)?);
                }
                Value::Array(items)
            }
            Some(b'"') => Value::String(r.str()?.into_owned()),
            Some(b't' | b'f') => Value::Bool(r.bool()?),
            Some(b'n') if r.null()? => Value::Null,
            _ => {
                let start = r.pos;
                r.number()?;
                serde_json::from_str(r.text.get(start..r.pos).ok_or(r.error())?)
                    .map_err(|_| r.error())?
            }
        })
    }

    fn read(text: &str) -> Option<Value> {
        let mut r = Reader::new(text);
        let v = read_value(&mut r).ok()?;
        r.end().ok()?;
        Some(v)
    }

    fn skipped(text: &str) -> bool {
        let mut r = Reader::new(text);
        r.skip().is_ok() && r.end().is_ok()
    }

    /// Accepts and reads exactly what serde_json does.
    #[test]
    fn agrees_with_serde_json() {
        let deep_ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let too_deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        // Too deep to read, not to skip (serde_json ignores values without a depth limit).
        let very_deep = format!("{}{}", "[{\"a\":".repeat(50_000), "}]".repeat(50_000));
        let cases = [
            "{}",
            "[]",
            " { \"a\" : [ 1 , 2.5 , -3e+7 , true , false , null ] } ",
            r#"{"a":{"b":{"c":[{}]}}}"#,
            r#""plain""#,
            r#""esc \" \\ \/ \b \f \n \r \t \u00e9 \u20AC \ud83d\ude00 end""#,
            r#""\u0000""#,
            "\"é ü 😀\"",
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"[,1]"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{,"a":1}"#,
            r#"[1 2]"#,
            r#""\ud83d""#,
            r#""\ud83d\u0041""#,
            r#""\ude00""#,
            r#""\x""#,
            r#""\u12""#,
            "\"tab\there\"",
            "\"unterminated",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "-0",
            "0.0e-0",
            "tru",
            "nul",
            "nulll",
            "{} {}",
            "",
            "   ",
            "{\"a\":1}x",
            "[1]]",
            "{\"a\":[}",
            deep_ok.as_str(),
            too_deep.as_str(),
            very_deep.as_str(),
        ];
        for text in cases {
            let ours = read(text);
            let theirs: Option<Value> = serde_json::from_str(text).ok();
            assert_eq!(ours, theirs, "{text}");
            let ignored = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            assert_eq!(skipped(text), ignored, "skip {text}");
        }
    }

    #[test]
    fn borrows_unless_escaped() {
        let mut r = Reader::new(r#"["plain","with \" quote"]"#);
        r.array().unwrap();
        assert!(r.element().unwrap());
        assert!(matches!(r.str().unwrap(), Cow::Borrowed("plain")));
        assert!(r.element().unwrap());
        assert!(matches!(r.str().unwrap(), Cow::Owned(s) if s == "with \" quote"));
        assert!(!r.element().unwrap());
        r.end().unwrap();
    }

    #[test]
    fn u64_as_serde_json_reads_it() {
        for text in [
            "0",
            "7",
            "18446744073709551615",
            "18446744073709551616",
            "01",
            "-1",
            "1.0",
            "1e3",
            "x",
        ] {
            let mut r = Reader::new(text);
            let ours = r.u64().ok().filter(|_| r.end().is_ok());
            assert_eq!(ours, serde_json::from_str::<u64>(text).ok(), "{text}");
        }
    }

    #[test]
    fn writes_strings_as_serde_json_does() {
        let mut all = String::new();
        for c in (0u32..0x100)
            .chain([0x2028, 0x1F600])
            .filter_map(char::from_u32)
        {
            all.push(c);
        }
        for s in ["", "plain", "a\"b\\c", "\u{7f}", all.as_str()] {
            let mut out = Writer::with_capacity(0);
            out.str(s);
            assert_eq!(out.finish(), serde_json::to_string(s).unwrap());
        }
    }

    /// A random JSON value: nested containers, escapes, non-ASCII text, numbers of every form.
    fn random_value(rng: &mut Rng, depth: u32) -> Value {
        let strings = ["", "a", "é ü", "😀", "q\"uo\\te", "line\nbreak\u{1}", "/"];
        match rng.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() >> rng.below(64)),
            3 => json!([-1.5, 0.25, 1e300, -0.0][rng.below(4)]),
            4 => Value::String(strings[rng.below(strings.len())].into()),
            5 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => {
                let keys = ["a", "b", "name", "é"];
                let map = (0..rng.below(4))
                    .map(|_| (keys[rng.below(4)].to_string(), random_value(rng, depth - 1)))
                    .collect();
                Value::Object(map)
            }
        }
    }

    /// Random edits of valid texts: the reader accepts and reads exactly what serde_json does,
    /// and `skip` accepts exactly what serde_json ignores.
    #[test]
    fn agrees_with_serde_json_on_random_texts() {
        let mut rng = Rng(3);
        let pieces = [
            "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "d83d", "n", "t", "e", "E", "0", "-",
            "+", ".", "1", " ", "\u{1}", "é",
        ];
        for _ in 0..20_000 {
            let mut text: Vec<char> = random_value(&mut rng, 3).to_string().chars().collect();
            for _ in 0..rng.below(3) {
                let at = rng.below(text.len() + 1);
                match rng.below(3) {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    _ => {
                        let piece = pieces[rng.below(pieces.len())];
                        text.splice(at..at, piece.chars());
                    }
                }
            }
            let text: String = text.into_iter().collect();
            let theirs: Option<Value> = serde_json::from_str(&text).ok();
            assert_eq!(read(&text), theirs, "{text}");
            let ignored = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            assert_eq!(skipped(&text), ignored, "skip {text}");
        }
    }
}

//! The writer: JSON text into bytes, escaped like serde_json.

use super::read::plain_len;

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

    /// `items` as a JSON array, each written by `write`.
    pub fn array<T>(&mut self, items: &[T], mut write: impl FnMut(&T, &mut Writer)) {
        self.byte(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.byte(b',');
            }
            write(item, self);
        }
        self.byte(b']');
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

    /// A whole number in decimal, without the formatting machinery.
    pub fn uint(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        // At least one digit; at most 20 for `u64::MAX`, so `at` never underflows.
        while at > 0 {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.0
            .extend_from_slice(digits.get(at..).unwrap_or_default());
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

//! RFC 3339 timestamps (UTC, `Z`) from and to Unix milliseconds. Pure arithmetic so the core never
//! reads a clock: the shell passes `now` in.

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or a `+00:00` offset) into Unix milliseconds.
/// Returns `None` for anything else, including dates before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let [y, mo, d, h, mi, sec, millis] = parts(s.as_bytes())?;
    let days = days_from_civil(i64::try_from(y).ok()?, mo, d);
    let days = u64::try_from(days).ok()?;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + millis)
}

/// Whether `parse_rfc3339` reads `s`, without the calendar arithmetic (every timestamp of a
/// GitHub page is checked, and most are kept as they are).
pub fn is_rfc3339(s: &[u8]) -> bool {
    parts(s).is_some()
}

/// A number that orders timestamps `parse_rfc3339` reads as their instants do, without the
/// calendar arithmetic: the fields' digits side by side (`YYYYMMDDhhmmss` then milliseconds).
/// Listings are sorted by it, once per record.
pub fn order_key(s: &str) -> Option<u64> {
    let [y, mo, d, h, mi, sec, millis] = parts(s.as_bytes())?;
    Some(((((y * 100 + mo) * 100 + d) * 100 + h) * 100 + mi) * 100_000 + sec * 1000 + millis)
}

/// Year, month, day, hours, minutes, seconds and milliseconds of a timestamp `parse_rfc3339`
/// reads.
fn parts(s: &[u8]) -> Option<[u64; 7]> {
    // The fixed part in one pattern: timestamps are read for every record of a page.
    #[rustfmt::skip]
    let &[
        y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1,
        b'T' | b't' | b' ', h0, h1, b':', mi0, mi1, b':', s0, s1, _, ..
    ] = s else {
        return None;
    };
    let (y, mo, d) = (
        two(y0, y1)? * 100 + two(y2, y3)?,
        two(mo0, mo1)?,
        two(d0, d1)?,
    );
    let (h, mi, sec) = (two(h0, h1)?, two(mi0, mi1)?, two(s0, s1)?);
    // Before 1970 is before the epoch; any day 1 to 31 of a month is taken (as it always was).
    if y < 1970 || !matches!(mo, 1..=12) || !matches!(d, 1..=31) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let (mut rest, mut millis) = (s.get(19..)?, 0);
    if let [b'.', frac @ ..] = rest {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, with zeros after fewer.
        for i in 0..3 {
            let digit = frac.get(i).filter(|_| i < digits);
            millis = millis * 10 + digit.map_or(0, |c| u64::from(c - b'0'));
        }
        rest = frac.get(digits..)?;
    }
    if !matches!(rest, b"Z" | b"z" | b"+00:00") {
        return None;
    }
    Some([y, mo, d, h, mi, sec, millis])
}

/// Two ASCII digits as a number; digits only (no sign, unlike `str::parse`).
#[inline(always)]
fn two(tens: u8, ones: u8) -> Option<u64> {
    let digit = |c: u8| c.is_ascii_digit().then(|| u64::from(c - b'0'));
    Some(digit(tens)? * 10 + digit(ones)?)
}

// Howard Hinnant's algorithms: exact for the proleptic Gregorian calendar, no tables.
fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(m).unwrap_or(1);
    let d = i64::try_from(d).unwrap_or(1);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_rfc3339(*ms), *text);
            assert_eq!(parse_rfc3339(text), Some(*ms), "{text}");
        }
    }

    #[test]
    fn parses_github_forms() {
        let cases: &[(&str, Option<u64>)] = &[
            ("2023-11-14T22:13:20Z", Some(1_700_000_000_000)),
            ("2023-11-14T22:13:20.5Z", Some(1_700_000_000_500)),
            ("2023-11-14T22:13:20.123456Z", Some(1_700_000_000_123)),
            ("2023-11-14T22:13:20+00:00", Some(1_700_000_000_000)),
            ("2023-11-14T22:13:20+02:00", None),
            ("2023-11-14 22:13:20Z", Some(1_700_000_000_000)),
            ("2023-13-14T22:13:20Z", None),
            ("2023-11-14T22:13:20", None),
            ("2023-11-14T22:13:20.Z", None),
            ("yesterday", None),
            ("", None),
            ("1969-12-31T23:59:59Z", None),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-02-31T00:00:00Z", Some(5_270_400_000)),
            ("２023-11-14T22:13:20Z", None),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_rfc3339(text), *ms, "{text}");
            assert_eq!(is_rfc3339(text.as_bytes()), ms.is_some(), "{text}");
            assert_eq!(order_key(text).is_some(), ms.is_some(), "{text}");
        }
    }

    /// `order_key` orders as the instants do, fractions and forms included.
    #[test]
    fn order_keys_follow_instants() {
        let texts = [
            "1970-01-01T00:00:00Z",
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20.5Z",
            "2023-11-14T22:13:20.123456Z",
            "2023-11-14T22:13:20+00:00",
            "2023-11-14T22:13:21Z",
            "2023-11-15T00:00:00.000Z",
            "2023-12-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "2099-12-31T23:59:59.999Z",
        ];
        for a in texts {
            for b in texts {
                let by_key = order_key(a).cmp(&order_key(b));
                let by_instant = parse_rfc3339(a).cmp(&parse_rfc3339(b));
                assert_eq!(by_key, by_instant, "{a} vs {b}");
            }
        }
    }
}

//! The deliveries an owner's object was told of, applied or replayed, counted by the hour over
//! the last day (`deliveries_24h` of the owner's status). Kept in the object's storage beside its
//! drift log, so an evicted object still reports them; written as lines, not serde, for size.
//! (`status.rs` counts a delivery and stores the tally.)

/// The object's storage key of its `Tally`.
pub const TALLY_KEY: &str = "deliveries";
const HOUR_MS: u64 = 60 * 60 * 1000;
/// Hours summed: the current one and the 23 before it.
const HOURS: u64 = 24;

/// Applied and replayed deliveries per hour, oldest first, the last 24 hours only.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    hours: Vec<Hour>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hour {
    /// Hours since the epoch.
    at: u64,
    applied: u32,
    replayed: u32,
}

impl Tally {
    /// Counts one delivery heard at `now_ms`.
    pub fn note(&mut self, now_ms: u64, replayed: bool) {
        let at = now_ms / HOUR_MS;
        self.prune(at);
        if self.hours.last().is_none_or(|h| h.at != at) {
            self.hours.push(Hour {
                at,
                applied: 0,
                replayed: 0,
            });
        }
        if let Some(h) = self.hours.last_mut() {
            let n = if replayed {
                &mut h.replayed
            } else {
                &mut h.applied
            };
            *n = n.saturating_add(1);
        }
    }

    /// `(applied, replayed)` over the current hour and the 23 before it.
    pub fn last_24h(&self, now_ms: u64) -> (u32, u32) {
        let at = now_ms / HOUR_MS;
        self.hours
            .iter()
            .filter(|h| h.at + HOURS > at && h.at <= at)
            .fold((0, 0), |(a, r), h| {
                (a.saturating_add(h.applied), r.saturating_add(h.replayed))
            })
    }

    fn prune(&mut self, at: u64) {
        self.hours.retain(|h| h.at + HOURS > at);
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// One `hour applied replayed` line per hour.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.hours.len() * 16);
        for h in &self.hours {
            for (n, end) in [
                (h.at, ' '),
                (h.applied.into(), ' '),
                (h.replayed.into(), '\n'),
            ] {
                out.push_str(&n.to_string());
                out.push(end);
            }
        }
        out
    }

    /// What `encode` wrote; a malformed line is skipped (a count is not worth a failed read).
    pub fn decode(text: &str) -> Tally {
        let hours = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split(' ').map(str::parse::<u64>);
                let (Some(Ok(at)), Some(Ok(applied)), Some(Ok(replayed)), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return None;
                };
                Some(Hour {
                    at,
                    applied: u32::try_from(applied).ok()?,
                    replayed: u32::try_from(replayed).ok()?,
                })
            })
            .take(HOURS as usize)
            .collect();
        Tally { hours }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000_000;

    #[test]
    fn deliveries_are_summed_over_the_last_24_hours() {
        let mut t = Tally::default();
        t.note(T, false);
        t.note(T + 1, true);
        t.note(T + 2, false);
        assert_eq!(t.last_24h(T + 2), (2, 1));
        // 23 hours on, the first hour still counts; 24 hours on, it no longer does.
        let later = T + 23 * HOUR_MS;
        t.note(later, false);
        assert_eq!(t.last_24h(later), (3, 1));
        let day = T + 24 * HOUR_MS;
        assert_eq!(t.last_24h(day), (1, 0));
        t.note(day, true);
        assert_eq!(t.hours.len(), 2, "hours older than a day are dropped");
        assert_eq!(t.last_24h(day), (1, 1));
    }

    #[test]
    fn the_tally_reads_back_what_it_wrote_and_skips_malformed_lines() {
        let mut t = Tally::default();
        t.note(T, false);
        t.note(T + 2 * HOUR_MS, true);
        let text = t.encode();
        assert_eq!(Tally::decode(&text), t);
        let cases = [
            "",
            "x 1 2\n",
            "1 2\n",
            "1 2 3 4\n",
            "1 -2 3\n",
            "1 99999999999 0\n",
        ];
        for case in cases {
            assert!(Tally::decode(case).is_empty(), "{case:?}");
        }
        assert_eq!(Tally::decode(&format!("junk\n{text}")), t);
    }
}

//! Unix time, read one way everywhere.
//!
//! The cluster's wire and catalog carry wall-clock times as unix seconds (certificate
//! validity, token expiry, recordings, sticky cookies) or unix milliseconds (statements,
//! presences, control events). [`WallClock`] is the one place the time of day is read and
//! turned into those numbers; the rules themselves (in this crate and in the roles' sans-IO
//! cores) never read it: they are handed `now` as a value by the I/O code that calls them,
//! which is what lets their tests pick any time.
//!
//! A clock set before 1970 reads as the epoch: on the issuing and on the checking side
//! alike, so the worst it does is make something look expired early.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time of `t` since the Unix epoch; a time before 1970 counts as the epoch.
pub fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Whole unix seconds of `t` (see [`since_epoch`]).
pub fn unix_secs(t: SystemTime) -> u64 {
    since_epoch(t).as_secs()
}

/// Whole unix milliseconds of `t` (see [`since_epoch`]), saturating far in the future.
pub fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(since_epoch(t).as_millis()).unwrap_or(u64::MAX)
}

/// The wall clock: what the I/O edge of a role reads `now` from before handing it, as a
/// value, to the code that decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WallClock;

impl WallClock {
    /// The time of day.
    pub fn now(self) -> SystemTime {
        SystemTime::now()
    }

    /// The time since the Unix epoch, now.
    pub fn since_epoch(self) -> Duration {
        since_epoch(self.now())
    }

    /// Unix seconds, now.
    pub fn unix_secs(self) -> u64 {
        unix_secs(self.now())
    }

    /// Unix milliseconds, now.
    pub fn unix_ms(self) -> u64 {
        unix_ms(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn before_1970_reads_as_the_epoch() {
        let early = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(unix_secs(early), 0);
        assert_eq!(unix_ms(early), 0);
    }

    #[test]
    fn the_wall_clock_is_past_this_code() {
        // 2026-11-26, when this was written: a clock that reads earlier is not this one.
        assert!(WallClock.unix_secs() >= 1_795_000_000);
        let (s, ms) = (WallClock.unix_secs(), WallClock.unix_ms());
        assert!(ms / 1000 >= s, "{ms} ms read after {s} s");
    }

    proptest! {
        #[test]
        fn seconds_are_milliseconds_rounded_down(ms in 0u64..1 << 50) {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            prop_assert_eq!(unix_ms(t), ms);
            prop_assert_eq!(unix_secs(t), ms / 1000);
        }
    }
}

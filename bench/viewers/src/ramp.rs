//! The maths of a ramp: viewers added step by step until a step misses its target, each
//! step judged on the requests that were due during it.
//!
//! A ramp is a list of cumulative viewer counts, one per step of equal length ([`counts`]).
//! The viewers a step adds start spread evenly over the step's first `join` seconds
//! ([`start_offset`]), and stay to the end. Every request belongs to the step in which it
//! was due ([`step_of`]), answered or not, so that a server falling behind shows in the
//! step that overloaded it. A step passes ([`judge`]) when no request of it failed and the
//! 99th percentile of its segments' time to first byte is below the threshold (requests
//! still unanswered when the step is judged count with the time they have waited).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::plan::Kind;
use crate::stats::Summary;
use crate::tally::LlReport;

/// The cumulative viewer counts of a ramp: `start` viewers (at most `max`), then each step
/// adds `step` viewers or, when that is more, grows the count by the factor `growth`
/// (rounded up), until `max`. Empty when `start` or `max` is 0; a single step when nothing
/// would be added (`step` 0, `growth` ≤ 1).
pub fn counts(start: usize, step: usize, growth: f64, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut current = start.min(max);
    if current == 0 {
        return out;
    }
    loop {
        out.push(current);
        if current >= max {
            break;
        }
        let grown = if growth.is_finite() && growth > 1.0 {
            (current as f64 * growth).ceil() as usize
        } else {
            current
        };
        let next = current.saturating_add(step).max(grown).min(max);
        if next <= current {
            break;
        }
        current = next;
    }
    out
}

/// The step a request due at `due` (from the start of the ramp) belongs to.
pub fn step_of(due: Duration, step_len: Duration) -> usize {
    if step_len.is_zero() {
        return 0;
    }
    (due.as_nanos() / step_len.as_nanos()) as usize
}

/// When the `index`-th of the `added` viewers that step `step` adds starts, from the start
/// of the ramp: spread evenly over the step's first `join`.
pub fn start_offset(
    step: usize,
    index: usize,
    added: usize,
    step_len: Duration,
    join: Duration,
) -> Duration {
    let within = if added == 0 {
        Duration::ZERO
    } else {
        join.min(step_len).mul_f64(index as f64 / added as f64)
    };
    step_len.saturating_mul(u32::try_from(step).unwrap_or(u32::MAX)) + within
}

/// Why a step passed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No error, segment TTFB p99 below the threshold.
    Passed,
    /// At least one request failed.
    Errors,
    /// The segments' TTFB p99 reached the threshold.
    SlowSegments,
    /// No segment was due in the step (the stream stalled, or the step is too short).
    NoSegments,
    /// A low-latency viewer's buffer ran dry.
    Stalled,
    /// The parts' TTFB p99 reached the threshold.
    SlowParts,
    /// No part was due in the step.
    NoParts,
}

impl Verdict {
    /// Whether the step passed.
    pub fn passed(self) -> bool {
        self == Verdict::Passed
    }
}

/// Judges a step from its summaries per kind: any error fails it, then segment TTFB p99
/// at or above `threshold_ms`.
pub fn judge(kinds: &BTreeMap<Kind, Summary>, threshold_ms: f64) -> Verdict {
    if kinds.values().any(|s| s.errors > 0) {
        return Verdict::Errors;
    }
    match kinds.get(&Kind::Segment) {
        Some(s) if s.ok + s.pending > 0 => {
            if s.ttfb_p99_ms < threshold_ms {
                Verdict::Passed
            } else {
                Verdict::SlowSegments
            }
        }
        _ => Verdict::NoSegments,
    }
}

/// Judges a step of low-latency viewers: any error fails it, then any stall, then part
/// TTFB p99 at or above `threshold_ms` (hinted parts counted from when they existed, see
/// [`LlReport::part_ttfb`]).
pub fn judge_ll(kinds: &BTreeMap<Kind, Summary>, ll: &LlReport, threshold_ms: f64) -> Verdict {
    if kinds.values().any(|s| s.errors > 0) {
        return Verdict::Errors;
    }
    if ll.stalls > 0 {
        return Verdict::Stalled;
    }
    match &ll.part_ttfb {
        Some(p) if p.p99_ms < threshold_ms => Verdict::Passed,
        Some(_) => Verdict::SlowParts,
        None => Verdict::NoParts,
    }
}

/// The viewers of the last step that passed before the first one that did not (0 when the
/// first step failed); with whether the ramp ended on a failure (`false`: every step
/// passed, so the count is only a lower bound).
pub fn capacity(steps: &[(usize, Verdict)]) -> (usize, bool) {
    let mut last = 0;
    for (viewers, verdict) in steps {
        if !verdict.passed() {
            return (last, true);
        }
        last = *viewers;
    }
    (last, false)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::stats::Stats;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn linear_and_geometric_counts() {
        assert_eq!(counts(100, 100, 1.0, 500), [100, 200, 300, 400, 500]);
        // Capped at max, which is always the last step.
        assert_eq!(counts(100, 150, 1.0, 500), [100, 250, 400, 500]);
        // Growth wins once it adds more than the step: 100 → +50 (step) → 150 ×1.5 = 225 …
        assert_eq!(
            counts(100, 50, 1.5, 1000),
            [100, 150, 225, 338, 507, 761, 1000]
        );
        assert_eq!(counts(200, 0, 1.0, 1000), [200], "nothing added: one step");
        assert_eq!(counts(2000, 10, 1.0, 1000), [1000], "start above max");
        assert!(counts(0, 10, 1.0, 1000).is_empty());
        assert!(counts(10, 10, 1.0, 0).is_empty());
        assert_eq!(counts(1, 0, f64::NAN, 3), [1]);
    }

    #[test]
    fn requests_belong_to_the_step_they_were_due_in() {
        let len = Duration::from_secs(10);
        assert_eq!(step_of(Duration::ZERO, len), 0);
        assert_eq!(step_of(ms(9_999), len), 0);
        assert_eq!(step_of(ms(10_000), len), 1);
        assert_eq!(step_of(ms(35_000), len), 3);
        assert_eq!(step_of(ms(35_000), Duration::ZERO), 0);
    }

    #[test]
    fn viewers_start_spread_over_the_join_window_of_their_step() {
        let (len, join) = (Duration::from_secs(10), Duration::from_secs(2));
        let starts: Vec<Duration> = (0..4).map(|i| start_offset(3, i, 4, len, join)).collect();
        assert_eq!(starts, [ms(30_000), ms(30_500), ms(31_000), ms(31_500)]);
        // A join window longer than the step is cut to the step.
        assert_eq!(
            start_offset(0, 1, 2, len, Duration::from_secs(60)),
            ms(5_000)
        );
        assert_eq!(start_offset(2, 0, 0, len, join), ms(20_000));
    }

    fn summaries(segment_ttfbs: &[u64], errors: u64, pending: &[u64]) -> BTreeMap<Kind, Summary> {
        let mut s = Stats::default();
        s.ok(Kind::Playlist, ms(1), ms(1), 100);
        for t in segment_ttfbs {
            s.ok(Kind::Segment, ms(*t), ms(*t + 10), 1000);
        }
        for _ in 0..errors {
            s.error(Kind::Playlist, None);
        }
        for w in pending {
            s.pending(Kind::Segment, ms(*w));
        }
        s.summaries()
    }

    #[test]
    fn a_step_passes_without_errors_and_with_fast_segments() {
        let fast: Vec<u64> = (1..=100).collect();
        assert_eq!(judge(&summaries(&fast, 0, &[]), 250.0), Verdict::Passed);
        assert_eq!(judge(&summaries(&fast, 1, &[]), 250.0), Verdict::Errors);
        // 2 of 100 at 250 ms or more: p99 (rank 99) is one of them.
        let mut slow = fast.clone();
        slow[98] = 250;
        slow[99] = 900;
        assert_eq!(
            judge(&summaries(&slow, 0, &[]), 250.0),
            Verdict::SlowSegments
        );
        // One slow of 100: p99 is still fast.
        let mut one = fast.clone();
        one[99] = 5000;
        assert_eq!(judge(&summaries(&one, 0, &[]), 250.0), Verdict::Passed);
        // Still unanswered counts as slow.
        assert_eq!(
            judge(&summaries(&fast[..98], 0, &[1000, 1000]), 250.0),
            Verdict::SlowSegments
        );
        assert_eq!(judge(&summaries(&[], 0, &[]), 250.0), Verdict::NoSegments);
    }

    #[test]
    fn a_low_latency_step_fails_on_an_error_a_stall_or_slow_parts() {
        use crate::ll::LlEvent;
        use crate::playout::PlayEvent;
        use crate::tally::LlTally;
        let judge = |parts: &[u64], errors: u64, stall: bool| {
            let mut s = Stats::default();
            for (i, t) in parts.iter().enumerate() {
                let kind = if i % 2 == 0 {
                    Kind::Part
                } else {
                    Kind::HintedPart
                };
                s.ok(kind, ms(*t), ms(*t + 10), 1000);
            }
            for _ in 0..errors {
                s.error(Kind::Reload, None);
            }
            // Held requests waiting are no TTFB sample.
            s.waiting(Kind::HintedPart);
            let mut tally = LlTally::default();
            if stall {
                tally.event(3, &LlEvent::Play(PlayEvent::StallBegan { at: ms(1) }));
            }
            judge_ll(&s.summaries(), &tally.report(&s, 1.0), 250.0)
        };
        let fast: Vec<u64> = (1..=100).collect();
        assert_eq!(judge(&fast, 0, false), Verdict::Passed);
        assert_eq!(judge(&fast, 1, false), Verdict::Errors);
        assert_eq!(judge(&fast, 0, true), Verdict::Stalled);
        let mut slow = fast.clone();
        slow[98] = 250;
        slow[99] = 300;
        assert_eq!(judge(&slow, 0, false), Verdict::SlowParts);
        assert_eq!(judge(&[], 0, false), Verdict::NoParts);
    }

    #[test]
    fn capacity_is_the_last_step_before_the_first_failure() {
        use Verdict::*;
        assert_eq!(
            capacity(&[
                (100, Passed),
                (200, Passed),
                (300, SlowSegments),
                (400, Passed)
            ]),
            (200, true)
        );
        assert_eq!(capacity(&[(100, Errors)]), (0, true));
        assert_eq!(capacity(&[(100, Passed), (200, Passed)]), (200, false));
        assert_eq!(capacity(&[]), (0, false));
    }

    proptest! {
        /// Counts rise strictly, end at max (when anything is added), never exceed it, and
        /// each step adds at least `step` and grows by at least `growth` (but for the cap).
        #[test]
        fn counts_rise_to_max(start in 1usize..5000, step in 1usize..2000,
                              growth in 1.0f64..3.0, max in 1usize..20_000) {
            let c = counts(start, step, growth, max);
            prop_assert!(!c.is_empty());
            prop_assert_eq!(c[0], start.min(max));
            prop_assert_eq!(*c.last().expect("non-empty"), max);
            for pair in c.windows(2) {
                prop_assert!(pair[1] > pair[0]);
                prop_assert!(pair[1] <= max);
                if pair[1] < max {
                    prop_assert!(pair[1] >= pair[0] + step);
                    prop_assert!(pair[1] as f64 >= pair[0] as f64 * growth);
                }
            }
        }

        /// Every start lies within its step's join window, in order.
        #[test]
        fn starts_stay_in_their_step(step in 0usize..50, added in 1usize..500,
                                     len_ms in 1u64..20_000, join_ms in 0u64..30_000) {
            let (len, join) = (ms(len_ms), ms(join_ms));
            let mut last = Duration::ZERO;
            for i in 0..added {
                let at = start_offset(step, i, added, len, join);
                prop_assert!(at >= last);
                last = at;
                prop_assert_eq!(step_of(at, len), step);
            }
        }
    }
}

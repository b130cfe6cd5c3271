//! Request outcomes per kind: counts, errors, bytes, and percentiles of two latencies, both
//! measured from the time a request was due: time to first byte (TTFB: the response's
//! headers received) and time to the end of the body.
//!
//! Percentiles are nearest-rank over every sample (no buckets, no interpolation): the
//! p-th percentile of n sorted samples is the one at rank ⌈p/100 · n⌉. Exact and simple;
//! a run of a few hundred thousand requests keeps a few megabytes of samples.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::plan::Kind;

/// Everything recorded for one kind of request.
#[derive(Debug, Clone, Default)]
pub struct KindStats {
    latencies: Vec<Duration>,
    ttfbs: Vec<Duration>,
    errors: u64,
    bytes: u64,
    pending: u64,
    refused: u64,
}

/// The summary of one kind, as the report prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Requests answered with a success.
    pub ok: u64,
    /// Requests that failed (connection errors, non-2xx statuses, unusable bodies).
    pub errors: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Latency from the time a request was due, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The slowest.
    pub max_ms: f64,
    /// Time to first byte (response headers received) from the time a request was due, in
    /// milliseconds: 50th percentile. Failed requests that had their headers count here
    /// too, and so do [`Stats::pending`] ones, with the time they had waited so far.
    pub ttfb_p50_ms: f64,
    /// TTFB, 90th percentile.
    pub ttfb_p90_ms: f64,
    /// TTFB, 99th percentile.
    pub ttfb_p99_ms: f64,
    /// TTFB, the slowest.
    pub ttfb_max_ms: f64,
    /// Requests still without response headers when the summary was taken (see
    /// [`Stats::pending`]); not in `ok` or `errors`.
    pub pending: u64,
    /// Hinted parts the server answered 404 (it closed the segment instead of making
    /// them): not errors ([`crate::ll`]).
    pub refused: u64,
}

/// Outcomes by kind.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    kinds: BTreeMap<Kind, KindStats>,
}

impl Stats {
    /// A success: `ttfb` from due to the response headers, `latency` from due to the end
    /// of the body, `bytes` of body.
    pub fn ok(&mut self, kind: Kind, ttfb: Duration, latency: Duration, bytes: u64) {
        let k = self.kinds.entry(kind).or_default();
        k.ttfbs.push(ttfb);
        k.latencies.push(latency);
        k.bytes += bytes;
    }

    /// A failure; `ttfb` if response headers came (an error status, a body cut short).
    pub fn error(&mut self, kind: Kind, ttfb: Option<Duration>) {
        let k = self.kinds.entry(kind).or_default();
        k.errors += 1;
        k.ttfbs.extend(ttfb);
    }

    /// A request still waiting for its response headers after `waited` (from its due
    /// time): its TTFB is at least that, and it counts as such in the TTFB percentiles, so
    /// that a summary taken while a server is stalling shows the stall.
    pub fn pending(&mut self, kind: Kind, waited: Duration) {
        let k = self.kinds.entry(kind).or_default();
        k.pending += 1;
        k.ttfbs.push(waited);
    }

    /// A request held by design ([`Kind::held`]) still waiting: counted, but its wait is no
    /// TTFB sample.
    pub fn waiting(&mut self, kind: Kind) {
        self.kinds.entry(kind).or_default().pending += 1;
    }

    /// A hinted part the server answered 404.
    pub fn refused(&mut self, kind: Kind) {
        self.kinds.entry(kind).or_default().refused += 1;
    }

    /// Requests per kind, whatever came of them.
    pub fn requests(&self) -> BTreeMap<Kind, u64> {
        self.kinds
            .iter()
            .map(|(kind, k)| {
                let ok = k.latencies.len() as u64;
                (*kind, ok + k.errors + k.pending + k.refused)
            })
            .collect()
    }

    /// The TTFB percentiles of these kinds together.
    pub fn ttfb_of(&self, kinds: &[Kind]) -> Option<Percentiles> {
        let samples = kinds
            .iter()
            .filter_map(|kind| self.kinds.get(kind))
            .flat_map(|k| k.ttfbs.iter().copied())
            .collect();
        Percentiles::of(samples)
    }

    /// Adds another viewer's outcomes.
    pub fn merge(&mut self, other: Stats) {
        for (kind, k) in other.kinds {
            let mine = self.kinds.entry(kind).or_default();
            mine.latencies.extend(k.latencies);
            mine.ttfbs.extend(k.ttfbs);
            mine.errors += k.errors;
            mine.bytes += k.bytes;
            mine.pending += k.pending;
            mine.refused += k.refused;
        }
    }

    /// Every error, of any kind.
    pub fn errors(&self) -> u64 {
        self.kinds.values().map(|k| k.errors).sum()
    }

    /// The summary per kind.
    pub fn summaries(&self) -> BTreeMap<Kind, Summary> {
        self.kinds
            .iter()
            .map(|(kind, k)| {
                let mut sorted = k.latencies.clone();
                sorted.sort_unstable();
                let mut ttfbs = k.ttfbs.clone();
                ttfbs.sort_unstable();
                let ms = |p: f64| percentile_ms(&sorted, p);
                let ttfb = |p: f64| percentile_ms(&ttfbs, p);
                (
                    *kind,
                    Summary {
                        ok: sorted.len() as u64,
                        errors: k.errors,
                        bytes: k.bytes,
                        p50_ms: ms(50.0),
                        p90_ms: ms(90.0),
                        p99_ms: ms(99.0),
                        max_ms: ms(100.0),
                        ttfb_p50_ms: ttfb(50.0),
                        ttfb_p90_ms: ttfb(90.0),
                        ttfb_p99_ms: ttfb(99.0),
                        ttfb_max_ms: ttfb(100.0),
                        pending: k.pending,
                        refused: k.refused,
                    },
                )
            })
            .collect()
    }
}

/// Nearest-rank percentiles of some samples, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many samples.
    pub count: u64,
    /// 50th percentile.
    pub p50_ms: f64,
    /// 90th.
    pub p90_ms: f64,
    /// 99th.
    pub p99_ms: f64,
    /// The largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// Those of `samples`; `None` for none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let ms = |p: f64| percentile_ms(&samples, p);
        Some(Percentiles {
            count: samples.len() as u64,
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        })
    }
}

/// [`percentile`] in milliseconds, 0 for no samples.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    percentile(sorted, p).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted`; `None` if it is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=10).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(ms(5)));
        assert_eq!(percentile(&sorted, 90.0), Some(ms(9)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(10)));
        assert_eq!(percentile(&sorted, 100.0), Some(ms(10)));
        assert_eq!(percentile(&sorted, 1.0), Some(ms(1)));
        assert_eq!(percentile(&[ms(7)], 50.0), Some(ms(7)));
        assert_eq!(percentile(&[], 50.0), None);
        // The classic example: 15, 20, 35, 40, 50 → p30 = 20, p40 = 20, p50 = 35.
        let classic = [ms(15), ms(20), ms(35), ms(40), ms(50)];
        assert_eq!(percentile(&classic, 30.0), Some(ms(20)));
        assert_eq!(percentile(&classic, 40.0), Some(ms(20)));
        assert_eq!(percentile(&classic, 50.0), Some(ms(35)));
    }

    #[test]
    fn summaries_count_and_merge() {
        let mut a = Stats::default();
        a.ok(Kind::Segment, ms(4), ms(10), 1000);
        a.error(Kind::Segment, None);
        let mut b = Stats::default();
        b.ok(Kind::Segment, ms(6), ms(30), 500);
        b.ok(Kind::Playlist, ms(1), ms(1), 100);
        a.merge(b);
        let s = a.summaries();
        assert_eq!(s[&Kind::Segment].ok, 2);
        assert_eq!(s[&Kind::Segment].errors, 1);
        assert_eq!(s[&Kind::Segment].bytes, 1500);
        assert_eq!(s[&Kind::Segment].p50_ms, 10.0);
        assert_eq!(s[&Kind::Segment].max_ms, 30.0);
        assert_eq!(s[&Kind::Segment].ttfb_p50_ms, 4.0);
        assert_eq!(s[&Kind::Segment].ttfb_max_ms, 6.0);
        assert_eq!(s[&Kind::Segment].pending, 0);
        assert_eq!(s[&Kind::Playlist].ok, 1);
        assert_eq!(a.errors(), 1);
    }

    #[test]
    fn ttfb_counts_failed_answers_and_pending_requests() {
        let mut s = Stats::default();
        for i in 1..=97 {
            s.ok(Kind::Segment, ms(i), ms(i + 100), 1);
        }
        // An error status after 500 ms: its TTFB counts, it is not ok.
        s.error(Kind::Segment, Some(ms(500)));
        // Two still waiting, for 300 and 400 ms so far.
        s.pending(Kind::Segment, ms(300));
        s.pending(Kind::Segment, ms(400));
        let seg = &s.summaries()[&Kind::Segment];
        assert_eq!((seg.ok, seg.errors, seg.pending), (97, 1, 2));
        // 100 TTFB samples: 1..=97 ms, 300, 400, 500; the 99th is 400 ms.
        assert_eq!(seg.ttfb_p99_ms, 400.0);
        assert_eq!(seg.ttfb_max_ms, 500.0);
        assert_eq!(seg.ttfb_p50_ms, 50.0);
        // The end-of-body latency has only the 97 answered.
        assert_eq!(seg.max_ms, 197.0);
    }

    proptest! {
        /// A percentile is a sample, at least as many samples are at or below it as the
        /// percentile says, and percentiles never decrease with p.
        #[test]
        fn percentiles_are_samples_and_monotone(
            mut samples in prop::collection::vec(0u64..10_000, 1..200),
            p in 1.0f64..100.0,
        ) {
            samples.sort_unstable();
            let sorted: Vec<Duration> = samples.iter().map(|v| ms(*v)).collect();
            let value = percentile(&sorted, p).expect("non-empty");
            prop_assert!(sorted.contains(&value));
            let at_or_below = sorted.iter().filter(|d| **d <= value).count();
            prop_assert!(at_or_below as f64 >= p / 100.0 * sorted.len() as f64);
            prop_assert!(percentile(&sorted, (p + 1.0).min(100.0)).expect("non-empty") >= value);
        }
    }
}

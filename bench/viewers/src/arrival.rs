//! When viewers arrive, open loop: the schedule is fixed before the run, so a viewer
//! starts at its time whether or not the ones before it got anything (a server that
//! falls behind is not spared new viewers, as it is not by a real audience).
//!
//! Two schedules over a window: paced (evenly spread, the `i`-th of `n` at `i/n` of the
//! window) and Poisson. The Poisson one is a Poisson process conditioned on its count:
//! given that `n` arrivals fall in a window, their times are `n` independent uniform
//! times, sorted; so a step of a ramp still adds exactly the viewers it says, with the
//! clumps and gaps of independent arrivals. Seeded, so a run can be repeated.

use std::time::Duration;

/// An arrival schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Evenly spread.
    Paced,
    /// Independent arrivals (a Poisson process given its count), from this seed.
    Poisson {
        /// The seed of the pseudo-random times.
        seed: u64,
    },
}

impl Arrival {
    /// The start times of `count` viewers within `window`, in order; `batch` tells the
    /// batches of one run apart (a ramp's step), so that each gets its own times.
    pub fn offsets(self, count: usize, window: Duration, batch: u64) -> Vec<Duration> {
        match self {
            Arrival::Paced => (0..count)
                .map(|i| window.mul_f64(i as f64 / count as f64))
                .collect(),
            Arrival::Poisson { seed } => {
                let mut state = seed ^ batch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut times: Vec<Duration> = (0..count)
                    .map(|_| window.mul_f64(unit(splitmix64(&mut state))))
                    .collect();
                times.sort_unstable();
                times
            }
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator; enough for
/// arrival times, and it keeps this crate free of another dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A number in [0, 1) from the top 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn paced_is_evenly_spread() {
        let at = Arrival::Paced.offsets(4, secs(2.0), 0);
        assert_eq!(at, [secs(0.0), secs(0.5), secs(1.0), secs(1.5)]);
        assert!(Arrival::Paced.offsets(0, secs(2.0), 0).is_empty());
    }

    #[test]
    fn poisson_is_repeatable_and_differs_by_seed_and_batch() {
        let a = Arrival::Poisson { seed: 7 };
        assert_eq!(a.offsets(50, secs(10.0), 3), a.offsets(50, secs(10.0), 3));
        assert_ne!(a.offsets(50, secs(10.0), 3), a.offsets(50, secs(10.0), 4));
        assert_ne!(
            a.offsets(50, secs(10.0), 3),
            Arrival::Poisson { seed: 8 }.offsets(50, secs(10.0), 3)
        );
    }

    /// The gaps of a Poisson process are exponential: their coefficient of variation is
    /// about 1 (paced gaps: 0). With 20,000 arrivals the estimate is within a few percent.
    #[test]
    fn poisson_gaps_look_exponential() {
        let times = Arrival::Poisson { seed: 1 }.offsets(20_000, secs(1000.0), 0);
        let gaps: Vec<f64> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((0.95..1.05).contains(&cv), "coefficient of variation {cv}");
        assert!((mean - 0.05).abs() < 0.002, "mean gap {mean}");
    }

    proptest! {
        /// Both schedules give `count` times, in order, inside the window.
        #[test]
        fn count_order_and_window(count in 0usize..500, window_ms in 0u64..100_000,
                                  seed in any::<u64>(), batch in any::<u64>(), poisson in any::<bool>()) {
            let arrival = if poisson { Arrival::Poisson { seed } } else { Arrival::Paced };
            let window = Duration::from_millis(window_ms);
            let at = arrival.offsets(count, window, batch);
            prop_assert_eq!(at.len(), count);
            prop_assert!(at.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(at.iter().all(|t| *t <= window));
        }
    }
}

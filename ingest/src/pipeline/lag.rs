//! Tells when a live pipeline has fallen behind real time, sans-IO.
//!
//! "Behind" means media time advances slower than the wall clock *while input is waiting*:
//! a publisher that merely sends slowly leaves the pipeline idle with nothing queued, which
//! resets the measurement, so only our own slowness can trigger shedding.

/// What [`LagMonitor::observe`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LagVerdict {
    /// Keeping up; the current lag in milliseconds (0 when caught up).
    Keeping(i64),
    /// More than the limit behind: shed load. The measurement restarts from here.
    Shed(i64),
}

/// Lag bookkeeping for one stream.
#[derive(Debug, Clone)]
pub(crate) struct LagMonitor {
    limit_ms: i64,
    /// (wall ms, media ms) when the measurement last restarted.
    base: Option<(i64, i64)>,
}

impl LagMonitor {
    /// Sheds when more than `limit_ms` behind.
    pub(crate) fn new(limit_ms: i64) -> Self {
        LagMonitor {
            limit_ms,
            base: None,
        }
    }

    /// Observes media time `media_ms` processed at wall time `wall_ms`; `input_waiting`
    /// says whether more input was queued behind it.
    pub(crate) fn observe(
        &mut self,
        wall_ms: i64,
        media_ms: i64,
        input_waiting: bool,
    ) -> LagVerdict {
        let (base_wall, base_media) = match self.base {
            // A publisher whose clock steps back restarts the measurement too.
            Some(base) if input_waiting && media_ms >= base.1 => base,
            _ => {
                self.base = Some((wall_ms, media_ms));
                return LagVerdict::Keeping(0);
            }
        };
        let lag = (wall_ms - base_wall) - (media_ms - base_media);
        if lag > self.limit_ms {
            self.base = Some((wall_ms, media_ms));
            LagVerdict::Shed(lag)
        } else {
            LagVerdict::Keeping(lag.max(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_pipeline_at_half_speed_with_a_backlog_sheds() {
        let mut m = LagMonitor::new(4000);
        let mut shed_at = None;
        for i in 0..1000 {
            // 33 ms of media processed every 66 ms of wall time, input always waiting.
            if let LagVerdict::Shed(_) = m.observe(i * 66, i * 33, true) {
                shed_at = Some(i);
                break;
            }
        }
        // 4 s of lag at 33 ms lost per frame: after about 121 frames.
        assert!(
            shed_at.is_some_and(|i| (120..=125).contains(&i)),
            "{shed_at:?}"
        );
    }

    proptest! {
        #[test]
        fn a_slow_publisher_never_causes_shedding(
            gaps in proptest::collection::vec(1i64..500, 1..500),
        ) {
            // Media arrives slower than real time, but the pipeline drains each item before
            // the next arrives: nothing is waiting.
            let mut m = LagMonitor::new(4000);
            let (mut wall, mut media) = (0, 0);
            for gap in gaps {
                wall += gap * 2;
                media += gap;
                prop_assert!(matches!(m.observe(wall, media, false), LagVerdict::Keeping(0)));
            }
        }

        #[test]
        fn a_clock_stepping_back_restarts_the_measurement(back in 1i64..1_000_000) {
            let mut m = LagMonitor::new(4000);
            m.observe(0, 1_000_000, true);
            prop_assert_eq!(m.observe(10, 1_000_000 - back, true), LagVerdict::Keeping(0));
        }

        #[test]
        fn keeping_up_never_sheds(steps in proptest::collection::vec((1i64..100, any::<bool>()), 1..500)) {
            let mut m = LagMonitor::new(4000);
            let mut t = 0;
            for (dt, waiting) in steps {
                t += dt;
                // Processed as fast as media advances.
                prop_assert!(matches!(m.observe(t, t, waiting), LagVerdict::Keeping(_)));
            }
        }
    }
}

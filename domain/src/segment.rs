//! What a segment is: a few seconds of one rendition, starting with a keyframe, identified
//! by its media sequence number. Segments of one sequence number cover the same time on
//! every rung, so a player can switch rungs at any boundary.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{RenditionName, SessionId, StreamName};

/// Everything about a segment except its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// The stream it belongs to.
    pub stream: StreamName,
    /// The rung it belongs to.
    pub rendition: RenditionName,
    /// The publish session that produced it.
    pub session: SessionId,
    /// Media sequence number; keeps counting across publisher reconnects.
    pub sequence: u64,
    /// Discontinuity sequence number: how many publisher reconnects came before it.
    pub discontinuity_sequence: u64,
    /// True for the first segment after a reconnect (`#EXT-X-DISCONTINUITY` before it).
    pub discontinuity: bool,
    /// Exact duration, from the presentation times of its boundaries.
    pub duration: Duration,
    /// Presentation time of its first frame, in 90 kHz ticks; equal on every rung.
    pub start_pts_90k: u64,
}

/// A finished segment: its description and the exact bytes every edge will serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where it belongs and how long it lasts.
    pub meta: SegmentMeta,
    /// MPEG-TS bytes, shared without copying between everyone who serves them.
    pub bytes: Bytes,
}

/// What a master playlist says about one rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionInfo {
    /// The rung's name.
    pub name: RenditionName,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second, as measured from the segments.
    pub frame_rate: f64,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// Peak and average bitrate of a rendition, measured from its segments (BANDWIDTH and
/// AVERAGE-BANDWIDTH must describe what was really sent, not what was asked for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BitrateMeter {
    peak_bps: u64,
    total_bits: u128,
    total_micros: u128,
}

impl BitrateMeter {
    /// Accounts for one segment of `byte_len` bytes lasting `duration`.
    pub fn record(&mut self, byte_len: usize, duration: Duration) {
        let micros = duration.as_micros();
        if micros == 0 {
            return;
        }
        let bits = byte_len as u128 * 8;
        let bps = bits * 1_000_000 / micros;
        self.peak_bps = self.peak_bps.max(u64::try_from(bps).unwrap_or(u64::MAX));
        self.total_bits += bits;
        self.total_micros += micros;
    }

    /// The highest bitrate of any one segment so far, in bit/s.
    pub fn peak_bps(&self) -> u64 {
        self.peak_bps
    }

    /// The average over all segments so far, in bit/s.
    pub fn average_bps(&self) -> u64 {
        if self.total_micros == 0 {
            return 0;
        }
        u64::try_from(self.total_bits * 1_000_000 / self.total_micros).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meter_reports_peak_and_average() {
        let mut m = BitrateMeter::default();
        m.record(250_000, Duration::from_secs(2)); // 1 Mb/s
        m.record(750_000, Duration::from_secs(2)); // 3 Mb/s
        assert_eq!(m.peak_bps(), 3_000_000);
        assert_eq!(m.average_bps(), 2_000_000);
    }

    proptest! {
        #[test]
        fn average_never_exceeds_peak(segs in proptest::collection::vec((0usize..5_000_000, 1u64..10_000), 1..50)) {
            let mut m = BitrateMeter::default();
            for (len, ms) in segs {
                m.record(len, Duration::from_millis(ms));
            }
            prop_assert!(m.average_bps() <= m.peak_bps());
        }
    }
}

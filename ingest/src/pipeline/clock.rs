//! The clock inside a rung's segments, shared by the muxers (`rung` for MPEG-TS, `cmaf_writer`
//! for fragments): a module of its own so that neither muxer has to import the other.

/// Timestamps inside segments: milliseconds from the first keyframe, plus a margin so
/// that decode times before it stay positive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) base_ms: i64,
    /// Unix milliseconds when the frame at `base_ms` arrived: the wall-clock anchor of
    /// `EXT-X-PROGRAM-DATE-TIME`.
    pub(super) wall_base_ms: i64,
}

impl Clock {
    const MARGIN_MS: i64 = 1400;

    /// The wall-clock time, Unix milliseconds, of presentation time `ms`.
    pub(super) fn wall_ms(self, ms: i64) -> u64 {
        u64::try_from(self.wall_base_ms.saturating_add(ms - self.base_ms)).unwrap_or(0)
    }

    /// Presentation time `ms` in 90 kHz ticks from the segment clock's origin.
    pub(super) fn to_90k(self, ms: i64) -> u64 {
        u64::try_from((ms - self.base_ms + Self::MARGIN_MS).max(0)).unwrap_or(0) * 90
    }
}

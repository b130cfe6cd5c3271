//! Where segments end, sans-IO: the one place that decides which source keyframe cuts the
//! next segment of every rung (the ladder's alignment rests on it), and hands that decision
//! to the encoded rungs' decoded frames.
//!
//! - [`BoundaryPlan`] watches the source's video frames as they come (presentation time,
//!   keyframe or not, size) and says which keyframe starts a segment and its sequence
//!   number: the first keyframe at least a target duration (less a tenth, for timestamp
//!   rounding) after the previous boundary. A publisher that stops sending keyframes would
//!   grow the open segment forever, so past a cap in media time or bytes it is an error.
//! - [`CutQueue`] carries the planned cuts to the encoded rungs: the decoder gives frames
//!   back later and possibly without the boundary frame (a frame lost in decoding), so the
//!   first decoded frame at or after a cut forces it.
//! - [`ForcedCuts`], one per encoder, matches the cuts it was asked to force with the
//!   keyframes it gives back (later, in its own order): the keyframe at a forced time
//!   starts that segment on the rung.
//!
//! The source rung is cut at the same keyframes directly; the encoded rungs force an IDR at
//! the same presentation time, so segment N of every rung starts at the same instant.

use std::collections::VecDeque;

/// The longest a segment may stay open without a keyframe, in target durations.
pub(crate) const MAX_OPEN_SEGMENT_TARGETS: i64 = 10;
/// The most source video bytes a segment may gather without a keyframe (the edges take at
/// most 16 MiB per segment by default).
pub(crate) const MAX_OPEN_SEGMENT_BYTES: usize = 16 * 1024 * 1024;

/// The open segment grew past a cap without a keyframe to end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoKeyframe {
    /// Media time it has been open, in whole seconds.
    pub(crate) seconds: i64,
    /// Source video bytes it gathered.
    pub(crate) bytes: usize,
}

/// The boundary planner of one publish session.
#[derive(Debug, Clone)]
pub(crate) struct BoundaryPlan {
    target_ms: i64,
    next_sequence: u64,
    last_cut_pts: Option<i64>,
    /// Source video bytes since the last boundary.
    open_bytes: usize,
}

impl BoundaryPlan {
    /// A plan for segments of `target_ms`, numbered from `first_sequence`.
    pub(crate) fn new(target_ms: i64, first_sequence: u64) -> Self {
        BoundaryPlan {
            target_ms: target_ms.max(1),
            next_sequence: first_sequence,
            last_cut_pts: None,
            open_bytes: 0,
        }
    }

    /// One source video frame: the sequence number of the segment it starts, if it starts
    /// one; an error if the open segment is past a cap.
    pub(crate) fn frame(
        &mut self,
        pts_ms: i64,
        keyframe: bool,
        bytes: usize,
    ) -> Result<Option<u64>, NoKeyframe> {
        let target = self.target_ms;
        let cut = keyframe
            && self
                .last_cut_pts
                .is_none_or(|last| pts_ms - last >= target - target / 10);
        let started = cut.then(|| {
            let seq = self.next_sequence;
            self.next_sequence += 1;
            self.last_cut_pts = Some(pts_ms);
            self.open_bytes = 0;
            seq
        });
        self.open_bytes = self.open_bytes.saturating_add(bytes);
        let open_ms = self.last_cut_pts.map_or(0, |last| pts_ms - last);
        if open_ms > MAX_OPEN_SEGMENT_TARGETS * target || self.open_bytes > MAX_OPEN_SEGMENT_BYTES {
            return Err(NoKeyframe {
                seconds: open_ms / 1000,
                bytes: self.open_bytes,
            });
        }
        Ok(started)
    }

    /// The sequence number the next segment will take.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next_sequence
    }
}

/// Planned cuts on their way to the encoded rungs, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct CutQueue {
    pending: VecDeque<(i64, u64)>,
}

impl CutQueue {
    /// A cut planned at `pts` for segment `sequence`.
    pub(crate) fn push(&mut self, pts: i64, sequence: u64) {
        self.pending.push_back((pts, sequence));
    }

    /// A decoded frame at `pts`: the segment it must start (an IDR forced), if any. Normally
    /// the frame at the cut's own time; if that frame was lost in decoding, the next one.
    /// Cuts it passed over together collapse into the newest.
    pub(crate) fn frame(&mut self, pts: i64) -> Option<u64> {
        let mut force = None;
        while let Some(&(cut_pts, sequence)) = self.pending.front() {
            if cut_pts > pts {
                break;
            }
            force = Some(sequence);
            self.pending.pop_front();
        }
        force
    }
}

/// The cuts one encoder was asked to force (an IDR at their time), until its output
/// reaches them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ForcedCuts {
    pending: VecDeque<(i64, u64)>,
}

impl ForcedCuts {
    /// An IDR was forced at `pts` for segment `sequence`.
    pub(crate) fn forced(&mut self, pts: i64, sequence: u64) {
        self.pending.push_back((pts, sequence));
    }

    /// An encoded packet at `pts`: the segment it starts, if it is the keyframe forced for
    /// one. A forced time the encoder's keyframes went past without honouring is dropped
    /// (that boundary is lost on this rung; the segment runs on to the next).
    pub(crate) fn packet(&mut self, pts: i64, keyframe: bool) -> Option<u64> {
        if !keyframe {
            return None;
        }
        while let Some(&(cut_pts, sequence)) = self.pending.front() {
            if cut_pts < pts {
                self.pending.pop_front();
                continue;
            }
            if cut_pts == pts {
                self.pending.pop_front();
                return Some(sequence);
            }
            break;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_first_keyframe_starts_the_first_segment() {
        let mut plan = BoundaryPlan::new(2000, 5);
        assert_eq!(plan.frame(0, false, 10), Ok(None));
        assert_eq!(plan.frame(33, true, 10), Ok(Some(5)));
        assert_eq!(plan.next_sequence(), 6);
    }

    #[test]
    fn a_keyframe_a_little_early_for_rounding_still_cuts() {
        let mut plan = BoundaryPlan::new(2000, 0);
        assert_eq!(plan.frame(0, true, 1), Ok(Some(0)));
        assert_eq!(plan.frame(1799, true, 1), Ok(None));
        assert_eq!(plan.frame(1800, true, 1), Ok(Some(1)));
    }

    #[test]
    fn an_open_segment_past_the_caps_is_an_error() {
        let mut plan = BoundaryPlan::new(1000, 0);
        assert_eq!(plan.frame(0, true, 1), Ok(Some(0)));
        assert_eq!(plan.frame(10_000, false, 1), Ok(None));
        assert_eq!(
            plan.frame(10_001, false, 1),
            Err(NoKeyframe {
                seconds: 10,
                bytes: 3
            })
        );
        let mut plan = BoundaryPlan::new(1000, 0);
        assert_eq!(plan.frame(0, true, MAX_OPEN_SEGMENT_BYTES), Ok(Some(0)));
        assert!(plan.frame(1, false, 1).is_err());
    }

    #[test]
    fn a_lost_boundary_frame_moves_the_cut_to_the_next_frame() {
        let mut cuts = CutQueue::default();
        cuts.push(2000, 1);
        cuts.push(4000, 2);
        assert_eq!(cuts.frame(1966), None);
        assert_eq!(cuts.frame(2033), Some(1));
        assert_eq!(cuts.frame(4000), Some(2));
        assert_eq!(cuts.frame(4033), None);
    }

    #[test]
    fn the_encoder_s_keyframe_at_a_forced_time_starts_the_segment() {
        let mut forced = ForcedCuts::default();
        forced.forced(2000, 1);
        forced.forced(4000, 2);
        assert_eq!(forced.packet(2000, false), None, "not a keyframe");
        assert_eq!(forced.packet(2000, true), Some(1));
        // 4000 was not honoured: the next keyframe after it does not start segment 2.
        assert_eq!(forced.packet(4033, true), None);
        assert_eq!(forced.packet(6000, true), None);
    }

    proptest! {
        /// Over any run of frames: cuts fall on keyframes only, are numbered consecutively,
        /// lie at least 0.9 target durations apart, and no keyframe that far from the last
        /// cut is passed over; the decoded frames force every cut once, at its own time.
        #[test]
        fn cuts_fall_on_keyframes_in_order_and_none_is_missed(
            target in 500i64..4000,
            first in 0u64..1000,
            frames in proptest::collection::vec((1i64..200, proptest::bool::weighted(0.1)), 1..400),
        ) {
            let mut plan = BoundaryPlan::new(target, first);
            let mut cuts = CutQueue::default();
            let mut pts = 0;
            let mut made: Vec<(i64, u64)> = Vec::new();
            for (step, keyframe) in frames {
                pts += step;
                let Ok(cut) = plan.frame(pts, keyframe, 100) else {
                    // Only past the time cap (bytes stay small here).
                    let last = made.last().map_or(0, |c| c.0);
                    prop_assert!(pts - last > MAX_OPEN_SEGMENT_TARGETS * target);
                    break;
                };
                let due = keyframe && made.last().is_none_or(|c| pts - c.0 >= target - target / 10);
                prop_assert_eq!(cut.is_some(), due, "at {} (keyframe {})", pts, keyframe);
                if let Some(seq) = cut {
                    prop_assert_eq!(seq, first + made.len() as u64);
                    made.push((pts, seq));
                    cuts.push(pts, seq);
                }
                // Decoded in step with the source: the cut is forced on its own frame.
                prop_assert_eq!(cuts.frame(pts), cut);
            }
        }
    }
}

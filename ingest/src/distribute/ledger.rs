//! Which LL-HLS parts one broadcast node took, as its pusher saw them, sans-IO: what
//! decides whether a segment may be pushed to it without its bytes.
//!
//! A CMAF segment's bytes are its parts' bytes joined, and the parts went to the node
//! just before the segment, so pushing the segment whole sends every byte twice. The
//! pusher sends it assembled instead (`domain::push_protocol::Assemble`: the body is only
//! the segment's own C2PA VSI, if any, and the node joins it and the parts it holds) only
//! when the node acknowledged (2xx) every part of that segment, from index 0 on without a
//! hole, and their lengths add up to exactly the segment's but that prefix: a part
//! dropped from the queue, refused or failed, or a segment carrying other bytes its parts
//! do not, and the segment goes whole. The node still checks what it joins against the
//! segment's signed statement, and answers `409 parts_missing` when it lacks a part; this
//! ledger only spares it the request when the answer is known.
//!
//! Parts of the next segment may come before a segment (the ladder's segments are
//! released together, once every rung has closed one; a fast rung's parts go at once), so
//! a lane keeps the runs of its last [`RUNS_PER_LANE`] segments.

use std::collections::{BTreeMap, HashMap};

use domain::push_protocol::Assemble;
use domain::{PartMeta, RenditionName, SegmentMeta, StreamName};

/// Segments per lane whose parts are tracked; the oldest goes first.
pub(crate) const RUNS_PER_LANE: usize = 4;

/// Lanes tracked; past it, the ledger starts over (segments then go whole once).
pub(crate) const MAX_LANES: usize = 1024;

/// The parts of one segment acknowledged so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Run {
    /// Parts `0..parts` acknowledged, in order.
    parts: u32,
    /// Their bytes.
    bytes: usize,
    /// A part failed or came out of order: this segment goes whole.
    broken: bool,
}

/// One pusher's ledger of the parts its node took.
#[derive(Debug, Default)]
pub(crate) struct PartLedger {
    lanes: HashMap<(StreamName, RenditionName), BTreeMap<u64, Run>>,
}

impl PartLedger {
    /// A part push ended: `taken` when the node acknowledged it.
    pub(crate) fn part(&mut self, meta: &PartMeta, len: usize, taken: bool) {
        if self.lanes.len() >= MAX_LANES {
            self.lanes.clear();
        }
        let lane = (meta.stream.clone(), meta.rendition.clone());
        let runs = self.lanes.entry(lane).or_default();
        let run = runs.entry(meta.sequence).or_default();
        if taken && !run.broken && meta.index == run.parts {
            run.parts += 1;
            run.bytes = run.bytes.saturating_add(len);
        } else {
            run.broken = true;
        }
        while runs.len() > RUNS_PER_LANE {
            runs.pop_first();
        }
    }

    /// Segment `meta`, `len` bytes after its prefix, is about to be pushed: the assembled
    /// form if the node took every part of it. The segment's run, and those before it, are forgotten.
    pub(crate) fn segment(&mut self, meta: &SegmentMeta, len: usize) -> Option<Assemble> {
        let lane = (meta.stream.clone(), meta.rendition.clone());
        let runs = self.lanes.get_mut(&lane)?;
        let run = runs.get(&meta.sequence).copied();
        *runs = runs.split_off(&meta.sequence.saturating_add(1));
        if runs.is_empty() {
            self.lanes.remove(&lane);
        }
        let run = run?;
        if run.broken || run.bytes != len {
            return None;
        }
        Assemble::new(run.parts)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::SessionId;
    use proptest::prelude::*;

    use super::*;

    fn part(rendition: &str, sequence: u64, index: u32) -> PartMeta {
        PartMeta {
            stream: StreamName::new("s").expect("valid"),
            rendition: RenditionName::new(rendition).expect("valid"),
            session: SessionId(1),
            sequence,
            index,
            discontinuity_sequence: 0,
            independent: index == 0,
            duration: Duration::from_millis(333),
            program_date_time_ms: 1_800_000_000_000,
        }
    }

    fn segment(rendition: &str, sequence: u64) -> SegmentMeta {
        SegmentMeta {
            stream: StreamName::new("s").expect("valid"),
            rendition: RenditionName::new(rendition).expect("valid"),
            session: SessionId(1),
            sequence,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_secs(2),
            start_pts_90k: 0,
        }
    }

    #[test]
    fn bodiless_only_after_every_part_was_taken() {
        let mut l = PartLedger::default();
        for i in 0..3 {
            l.part(&part("720p", 5, i), 10, true);
        }
        assert_eq!(l.segment(&segment("720p", 5), 30), Assemble::new(3));
        // Forgotten once pushed: a second push of it goes whole.
        assert_eq!(l.segment(&segment("720p", 5), 30), None);

        // A part the node did not take.
        l.part(&part("720p", 6, 0), 10, true);
        l.part(&part("720p", 6, 1), 10, false);
        l.part(&part("720p", 6, 2), 10, true);
        assert_eq!(l.segment(&segment("720p", 6), 30), None);

        // A part never pushed (dropped from the queue): a hole, or a short run.
        l.part(&part("720p", 7, 0), 10, true);
        l.part(&part("720p", 7, 2), 10, true);
        assert_eq!(l.segment(&segment("720p", 7), 20), None);
        l.part(&part("720p", 8, 0), 10, true);
        l.part(&part("720p", 8, 1), 10, true);
        assert_eq!(l.segment(&segment("720p", 8), 30), None);

        // No parts at all (a segment of a node that just joined, or MPEG-TS).
        assert_eq!(l.segment(&segment("720p", 9), 30), None);
    }

    #[test]
    fn parts_of_the_next_segment_and_other_lanes_do_not_interfere() {
        let mut l = PartLedger::default();
        l.part(&part("720p", 5, 0), 10, true);
        l.part(&part("360p", 5, 0), 4, true);
        l.part(&part("720p", 5, 1), 10, true);
        l.part(&part("720p", 6, 0), 10, true);
        l.part(&part("360p", 5, 1), 4, true);
        assert_eq!(l.segment(&segment("720p", 5), 20), Assemble::new(2));
        assert_eq!(l.segment(&segment("360p", 5), 8), Assemble::new(2));
        l.part(&part("720p", 6, 1), 10, true);
        assert_eq!(l.segment(&segment("720p", 6), 20), Assemble::new(2));
    }

    proptest! {
        /// Whatever parts were pushed and answered, in whatever order: the bodiless form
        /// comes exactly when parts 0..n of that segment were each taken once, in order,
        /// with nothing failed in between, and add up to the segment.
        #[test]
        fn bodiless_exactly_when_the_node_took_the_whole_segment(
            events in prop::collection::vec((0u32..5, any::<bool>(), 1usize..4), 0..12),
            len in 0usize..30,
        ) {
            let mut l = PartLedger::default();
            let mut model: Option<(u32, usize)> = Some((0, 0));
            for (index, taken, size) in &events {
                l.part(&part("src", 3, *index), *size, *taken);
                model = match model {
                    Some((n, bytes)) if *taken && *index == n => Some((n + 1, bytes + size)),
                    _ => None,
                };
            }
            let expected = match model {
                Some((n, bytes)) if bytes == len => Assemble::new(n),
                _ => None,
            };
            prop_assert_eq!(l.segment(&segment("src", 3), len), expected);
        }
    }
}

//! The emitting thread: every rung's output, in the order the [`SequenceAligner`] releases
//! it, onto the events channel, each segment number recorded before it leaves.

use std::sync::mpsc as std_mpsc;

use domain::{LiveEvent, Part, RenditionInfo, Segment};
use tokio::sync::mpsc;

use super::align::SequenceAligner;
use super::params::SequenceRecorder;

/// What a rung hands the emitting thread, tagged with the rung's index in the ladder.
pub(super) enum RungOutput {
    /// The rung's description, before its first part or segment (again if it changed).
    Info(usize, RenditionInfo),
    /// A finished segment.
    Segment(usize, Segment),
    /// A finished LL-HLS part.
    Part(usize, Part),
    /// The rung stopped (shed, or its encoder failed): it holds nothing back any more.
    Dropped(usize),
}

/// Runs the emitting thread until every rung's sender is gone, then flushes the aligner.
pub(super) fn emit(
    mut aligner: SequenceAligner,
    rx: std_mpsc::Receiver<RungOutput>,
    events: mpsc::Sender<LiveEvent>,
    recorder: Option<SequenceRecorder>,
) {
    let mut recorded = None;
    let mut send = |evs: Vec<LiveEvent>| {
        for e in evs {
            let sequence = match &e {
                LiveEvent::Segment(segment) => Some(segment.meta.sequence),
                // A part of segment N tells edges about N as much as the segment does.
                LiveEvent::Part(part) => Some(part.meta.sequence),
                _ => None,
            };
            if let (Some(sequence), Some(recorder)) = (sequence, &recorder) {
                let next = sequence + 1;
                if recorded.is_none_or(|r| next > r) {
                    recorder.record(next);
                    recorded = Some(next);
                }
            }
            if events.blocking_send(e).is_err() {
                return;
            }
        }
    };
    for output in rx {
        let evs = match output {
            RungOutput::Info(rung, info) => aligner.info(rung, info),
            RungOutput::Segment(rung, seg) => aligner.segment(rung, seg),
            RungOutput::Part(rung, part) => aligner.part(rung, part),
            RungOutput::Dropped(rung) => aligner.drop_rung(rung),
        };
        send(evs);
    }
    send(aligner.finish());
}

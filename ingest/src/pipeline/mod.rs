//! One stream's live pipeline: FLV media in, segments of every rung out, on dedicated
//! threads (never the async executor).
//!
//! ```text
//!             ┌─ src rung: segmenter → TS / CMAF mux ─────────────────────────────┐
//! media ─► coordinator ─ decode once ─► worker 720p: scale → x264 → segmenter → mux ┤► aligner ─► LiveEvents
//!             │                     └─► worker 480p ...                             │
//!             └─ audio (AAC → ADTS) to every rung ───────────────────────────────────┘
//! ```
//!
//! The coordinator plans the segment boundaries once: a boundary is the first source
//! keyframe at least a target duration after the previous one. The source rung cuts there;
//! the decoded frame with the same presentation time is forced to an IDR on every encoded
//! rung, so segment N starts at the same PTS everywhere. When encoding falls behind real
//! time the lowest-priority encoded rung is shed instead of queueing without bound.
//!
//! With CMAF and a part target (the default ladder), every rung also cuts its segments into
//! LL-HLS parts, which leave as soon as they close: the aligner holds segments, not parts
//! (beyond the first announcement of the renditions).
//!
//! The folder is the pipeline: everything it is made of lives here and nothing outside
//! uses it but through this file's interface ([`Pipeline`], [`MediaInput`]).
//!
//! - this file: the interface and the emitting thread (the aligner, then the events
//!   channel);
//! - `input`: [`MediaInput`], what comes in, with its codecs named ([`VideoCodec`],
//!   [`AudioCodec`]);
//! - `coordinator`: the coordinator thread: plans boundaries, cuts the source rung,
//!   decodes once, feeds the workers, sheds a rung when behind;
//! - `worker`: each encoded rung's thread;
//! - `transcode`: the FFmpeg boundary (decode, scale, x264, audio re-encoding), the only
//!   module that touches FFmpeg; decoded frames leave it as an opaque type;
//! - `rung`: labels a rung's segments and parts and packages them (MPEG-TS, or CMAF
//!   through `cmaf`: an init segment and fMP4 fragments); `clock`: the time base inside
//!   segments both muxers share;
//! - the sans-IO state machines, each with its property tests beside it: `boundary`
//!   (which source keyframe starts each segment, and the cuts handed to the encoded rungs),
//!   `segmenter` (one rung's packets into segments and LL-HLS parts), `align` (all rungs'
//!   segments released in sequence order), `lag` (when the pipeline falls behind real time).

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use domain::{Ladder, LiveEvent, Part, RenditionInfo, Segment, SessionId, StreamName};
use tokio::sync::mpsc;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;

mod align;
mod boundary;
mod clock;
mod cmaf;
mod coordinator;
mod input;
mod lag;
mod rung;
mod segmenter;
mod transcode;
mod worker;

use align::SequenceAligner;
use coordinator::Coordinator;
pub use input::{AudioCodec, MediaInput, VideoCodec};
use segmenter::AudioFrame;
use transcode::DecodedFrame;

/// Told the next sequence number before each segment number leaves the pipeline, on the
/// thread that hands segments on: a store that numbering must survive (the catalog), so
/// that whatever an edge saw is never ahead of it. It may block for a moment.
#[derive(Clone)]
pub struct SequenceRecorder(Arc<dyn Fn(u64) + Send + Sync>);

impl SequenceRecorder {
    /// A recorder calling `record(next)`.
    pub fn new(record: impl Fn(u64) + Send + Sync + 'static) -> Self {
        SequenceRecorder(Arc::new(record))
    }
}

impl std::fmt::Debug for SequenceRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SequenceRecorder")
    }
}

/// Where a pipeline's segments start and how they are labelled.
#[derive(Debug, Clone)]
pub struct PipelineParams {
    /// The stream.
    pub stream: StreamName,
    /// This publish session.
    pub session: SessionId,
    /// Sequence number of the first segment.
    pub first_sequence: u64,
    /// Discontinuity sequence of every segment of this session.
    pub discontinuity_sequence: u64,
    /// Whether the first segment follows an earlier session (`#EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// The ladder to produce.
    pub ladder: Arc<Ladder>,
    /// Live input: measure lag against the wall clock and shed rungs when behind. Off for
    /// files transcoded as fast as possible.
    pub realtime: bool,
    /// x264 threads per encoded rung (0 = x264's choice).
    pub encoder_threads: usize,
    /// Where the next sequence number is recorded before each segment number leaves.
    pub recorder: Option<SequenceRecorder>,
}

/// How a pipeline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOutcome {
    /// The sequence number the next session should start at.
    pub next_sequence: u64,
    /// Segment boundaries planned (segments per rung).
    pub segments: u64,
    /// Whether the session got as far as its first keyframe (edges know about it).
    pub started: bool,
}

/// A running pipeline: feed it with [`Pipeline::sender`], end it by dropping every sender
/// and calling [`Pipeline::finish`].
#[derive(Debug)]
pub struct Pipeline {
    input: mpsc::Sender<MediaInput>,
    thread: JoinHandle<(PipelineOutcome, Option<IngestError>)>,
}

impl Pipeline {
    /// Starts the coordinator thread. `events` receives everything edges need, in order.
    pub fn start(
        params: PipelineParams,
        events: mpsc::Sender<LiveEvent>,
        metrics: IngestMetrics,
    ) -> Result<Self, IngestError> {
        let (input, rx) = mpsc::channel(256);
        let name = format!("ingest-{}", params.stream);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || Coordinator::new(params, events, metrics).run(rx))?;
        Ok(Pipeline { input, thread })
    }

    /// A handle to send media with (async side: `send().await` applies backpressure).
    pub fn sender(&self) -> mpsc::Sender<MediaInput> {
        self.input.clone()
    }

    /// Closes the input and waits for every rung to flush; the outcome is there even when
    /// the pipeline stopped on an error (it says where numbering stands). Blocking: call it
    /// from `spawn_blocking` in async code.
    pub fn finish(self) -> (PipelineOutcome, Option<IngestError>) {
        drop(self.input);
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => (
                PipelineOutcome {
                    next_sequence: 0,
                    segments: 0,
                    started: false,
                },
                Some(IngestError::PipelineStopped(
                    "the coordinator thread panicked",
                )),
            ),
        }
    }
}

enum RungOutput {
    Info(usize, RenditionInfo),
    Segment(usize, Segment),
    Part(usize, Part),
    Dropped(usize),
}

enum WorkerInput {
    Frame(Arc<DecodedFrame>, Option<u64>),
    Audio(AudioFrame),
    Finish(i64),
}

fn emit(
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
                    (recorder.0)(next);
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

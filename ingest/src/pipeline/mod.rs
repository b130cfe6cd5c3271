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
//! Files: this one has the pipeline's interface and the emitting thread (the aligner, then
//! the events channel); `coordinator` plans boundaries and feeds the rungs; `rung` labels a
//! rung's segments and parts; `worker` runs each encoded rung's thread; `cmaf` packages a
//! rung as an init segment and fMP4 fragments.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use domain::{Ladder, LiveEvent, Part, RenditionInfo, Segment, SessionId, StreamName};
use ffmpeg_next::frame;
use tokio::sync::mpsc;

use crate::align::SequenceAligner;
use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::segmenter::AudioFrame;

mod cmaf;
mod coordinator;
mod rung;
mod worker;

use coordinator::Coordinator;

/// Media handed to a pipeline, already split out of FLV tags.
#[derive(Debug, Clone)]
pub enum MediaInput {
    /// An AVCDecoderConfigurationRecord.
    VideoConfig(Bytes),
    /// One H.264 access unit, AVCC framed.
    Video {
        /// Decode time (ms).
        dts_ms: i64,
        /// Composition offset (ms): pts = dts + cts.
        cts_ms: i32,
        /// Marked as a keyframe by the publisher.
        keyframe: bool,
        /// Length-prefixed NAL units.
        avcc: Bytes,
    },
    /// An AAC AudioSpecificConfig.
    AudioConfig(Bytes),
    /// One raw AAC frame.
    Audio {
        /// Presentation time (ms).
        pts_ms: i64,
        /// The frame.
        raw: Bytes,
    },
    /// One MP3 frame, to be re-encoded to AAC.
    Mp3 {
        /// Presentation time (ms).
        pts_ms: i64,
        /// The MP3 data.
        data: Bytes,
    },
    /// The publisher's declared frame rate (onMetaData), a hint for rate control.
    FrameRate(f64),
}

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
    Frame(Arc<frame::Video>, Option<u64>),
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

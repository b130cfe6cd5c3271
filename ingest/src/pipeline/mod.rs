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
//! uses it but through this file's interface ([`Pipeline`], fed with
//! [`intake::media::MediaInput`]: what comes in, with its codecs named, is the `intake`
//! crate's, where each protocol's adapter makes it).
//!
//! - this file: the interface, [`Pipeline`]; `params`: what it starts with and how it
//!   ended ([`PipelineParams`], [`PipelineOutcome`]), apart so that the threads below read
//!   them without importing this file back (no file of the folder imports one that
//!   imports it);
//! - `emit`: the emitting thread (the aligner, then the events channel);
//! - `coordinator`: the coordinator thread: plans boundaries, cuts the source rung,
//!   decodes once, feeds the workers, sheds a rung when behind;
//! - `worker`: each encoded rung's thread;
//! - `transcode`: the FFmpeg boundary (decode, scale, x264, audio re-encoding), the only
//!   module that touches FFmpeg; decoded frames leave it as an opaque type;
//! - `thumbnail`: a still JPEG of the lowest rung every few seconds, on its own thread;
//! - `rung`: labels a rung's segments and parts and packages them (MPEG-TS, or CMAF
//!   through `cmaf_writer`: an init segment and fMP4 fragments); `clock`: the time base inside
//!   segments both muxers share;
//! - the sans-IO state machines, each with its property tests beside it: `boundary`
//!   (which source keyframe starts each segment, and the cuts handed to the encoded rungs),
//!   `segmenter` (one rung's packets into segments and LL-HLS parts), `align` (all rungs'
//!   segments released in sequence order), `lag` (when the pipeline falls behind real time).

use std::thread::JoinHandle;

use domain::LiveEvent;
use intake::media::MediaInput;
use tokio::sync::mpsc;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;

mod align;
mod boundary;
mod clock;
mod cmaf_writer;
mod coordinator;
mod emit;
mod lag;
mod params;
mod rung;
mod segmenter;
mod source;
mod thumbnail;
mod transcode;
mod worker;

use coordinator::Coordinator;
pub use params::{PipelineOutcome, PipelineParams, SequenceRecorder, SessionFlags, StartFlags};

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

//! What a pipeline is started with ([`PipelineParams`], with its [`SequenceRecorder`]) and
//! what it says when it ends ([`PipelineOutcome`]); re-exported by the pipeline's
//! interface, and read by its threads without importing that interface back.

use std::sync::Arc;

use domain::{Ladder, SessionId, StreamName};

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

    /// Records `next` as the sequence number the stream continues at.
    pub(super) fn record(&self, next: u64) {
        (self.0)(next)
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

//! What a pipeline is started with ([`PipelineParams`], with its [`SequenceRecorder`]) and
//! what it says when it ends ([`PipelineOutcome`]); re-exported by the pipeline's
//! interface, and read by its threads without importing that interface back.

use std::sync::Arc;

use parking_lot::Mutex;

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

/// Whether the stream is private, shared by the registry (which changes it when an operator
/// does, while the stream is live) and the pipeline (which announces the session with it).
///
/// One lock orders the two: the session is announced with the value under the lock, and a
/// change after the announcement is announced again after it; a change before the
/// announcement is simply what it carries. So the last announcement an edge gets always
/// carries the current value, and nothing is announced for a session the pipeline has not
/// announced itself (one that never got a keyframe).
#[derive(Debug, Clone, Default)]
pub struct Privacy(Arc<Mutex<PrivacyState>>);

#[derive(Debug, Default)]
struct PrivacyState {
    private: bool,
    announced: bool,
}

impl Privacy {
    /// A stream that is private, or not.
    pub fn new(private: bool) -> Self {
        Privacy(Arc::new(Mutex::new(PrivacyState {
            private,
            announced: false,
        })))
    }

    /// Whether the stream is private now.
    pub fn get(&self) -> bool {
        self.0.lock().private
    }

    /// Announces the session: `send` is called with the current value, under the lock.
    pub(super) fn announce(&self, send: impl FnOnce(bool)) {
        let mut state = self.0.lock();
        state.announced = true;
        send(state.private);
    }

    /// Makes the stream private or public. `Some(value)` when the session was announced
    /// with the other value and must be announced again (after this returns).
    pub fn set(&self, private: bool) -> Option<bool> {
        let mut state = self.0.lock();
        let changed = state.private != private;
        state.private = private;
        (changed && state.announced).then_some(private)
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
    /// Whether the stream is private, announced with the session.
    pub privacy: Privacy,
    /// The session's C2PA signer: CMAF init segments get a manifest, parts and segments a
    /// VSI `emsg` (docs/provenance.md). `None`: no C2PA data.
    pub provenance: Option<Arc<certs::c2pa::LiveSigner>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A change before the session is announced is what the announcement carries; a change
    /// after it asks for another announcement; setting the same value asks for nothing.
    #[test]
    fn privacy_is_announced_again_only_after_the_first_announcement() {
        let privacy = Privacy::new(false);
        assert_eq!(privacy.set(true), None, "not announced yet");
        let mut announced = None;
        privacy.announce(|private| announced = Some(private));
        assert_eq!(announced, Some(true));
        assert_eq!(privacy.set(true), None, "unchanged");
        assert_eq!(privacy.set(false), Some(false));
        assert!(!privacy.get());
    }
}

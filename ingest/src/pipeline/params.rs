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

/// What a session start says of its stream besides its name: whether it is private and
/// whether it is recorded (`LiveEvent::SessionStarted`'s `private` and `record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartFlags {
    /// Served only with a playback token.
    pub private: bool,
    /// Kept in a recording by the nodes that record.
    pub record: bool,
}

impl Default for StartFlags {
    /// A public stream that is recorded, as every stream was before either could be set.
    fn default() -> Self {
        StartFlags {
            private: false,
            record: true,
        }
    }
}

/// The stream's [`StartFlags`], shared by the registry (which changes them when an operator
/// does, while the stream is live) and the pipeline (which announces the session with them).
///
/// One lock orders the two: the session is announced with the values under the lock, and a
/// change after the announcement is announced again after it; a change before the
/// announcement is simply what it carries. So the last announcement an edge gets always
/// carries the current values, and nothing is announced for a session the pipeline has not
/// announced itself (one that never got a keyframe).
#[derive(Debug, Clone, Default)]
pub struct SessionFlags(Arc<Mutex<FlagsState>>);

#[derive(Debug, Default)]
struct FlagsState {
    flags: StartFlags,
    announced: bool,
}

impl SessionFlags {
    /// A stream with these flags, not announced yet.
    pub fn new(flags: StartFlags) -> Self {
        SessionFlags(Arc::new(Mutex::new(FlagsState {
            flags,
            announced: false,
        })))
    }

    /// The stream's flags now.
    pub fn get(&self) -> StartFlags {
        self.0.lock().flags
    }

    /// Announces the session: `send` is called with the current flags, under the lock.
    pub(super) fn announce(&self, send: impl FnOnce(StartFlags)) {
        let mut state = self.0.lock();
        state.announced = true;
        send(state.flags);
    }

    /// Makes the stream private or public. `Some(flags)` when the session was announced
    /// with the other value and must be announced again (after this returns).
    pub fn set_private(&self, private: bool) -> Option<StartFlags> {
        self.change(|flags| flags.private = private)
    }

    /// Switches the stream's recording on or off; `Some(flags)` as for
    /// [`SessionFlags::set_private`].
    pub fn set_record(&self, record: bool) -> Option<StartFlags> {
        self.change(|flags| flags.record = record)
    }

    fn change(&self, change: impl FnOnce(&mut StartFlags)) -> Option<StartFlags> {
        let mut state = self.0.lock();
        let before = state.flags;
        change(&mut state.flags);
        (state.flags != before && state.announced).then_some(state.flags)
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
    /// Whether the stream is private and recorded, announced with the session.
    pub flags: SessionFlags,
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
    fn flags_are_announced_again_only_after_the_first_announcement() {
        let flags = SessionFlags::new(StartFlags::default());
        assert_eq!(flags.set_private(true), None, "not announced yet");
        let mut announced = None;
        flags.announce(|f| announced = Some(f));
        let private = StartFlags {
            private: true,
            record: true,
        };
        assert_eq!(announced, Some(private));
        assert_eq!(flags.set_private(true), None, "unchanged");
        assert_eq!(flags.set_private(false), Some(StartFlags::default()));
        assert!(!flags.get().private);
    }

    /// Recording is switched like privacy: announced again only once announced and only on
    /// a change, each announcement carrying both values as they stand.
    #[test]
    fn recording_is_switched_like_privacy() {
        let flags = SessionFlags::new(StartFlags {
            private: true,
            record: true,
        });
        assert_eq!(flags.set_record(false), None, "not announced yet");
        let mut announced = None;
        flags.announce(|f| announced = Some(f));
        assert_eq!(
            announced,
            Some(StartFlags {
                private: true,
                record: false
            })
        );
        assert_eq!(flags.set_record(false), None, "unchanged");
        assert_eq!(
            flags.set_record(true),
            Some(StartFlags {
                private: true,
                record: true
            })
        );
        assert_eq!(
            flags.set_private(false),
            Some(StartFlags::default()),
            "a privacy change keeps the recording as it is"
        );
    }
}

//! What one RTMP connection may do before and while it publishes, sans-IO: the decisions
//! of the driver in `super`, taken apart from its socket so that each can be tested alone.
//!
//! - `connect` only to the configured application (a trailing `/` allowed);
//! - one publish per connection, and only with a stream key the registry knows;
//! - no playback (viewers get HLS);
//! - at most [`SETUP_BYTES`] from the peer until its publish is accepted, the handshake's
//!   leftover included: what an unauthorised connection can make the ingest hold;
//! - a run of malformed tags is dropped tag by tag, but more than
//!   [`MAX_BAD_TAGS_IN_A_ROW`] video tags in a row end the connection, and so does a video
//!   codec the pipeline does not take (an audio tag never does: video carries on without).
//!
//! Each refusal says what the peer is told (an RTMP status code and description), which
//! `sealcast_ingest_publishes{result}` label counts it, and whether the connection ends.

use std::fmt;

/// Bytes a client may send after the handshake before its publish is accepted. Real
/// clients send a few hundred (connect, createStream, publish); the bound keeps what an
/// unauthorised connection makes us hold (rml_rtmp buffers messages of up to 16 MiB) to
/// this, times the connection cap.
pub(super) const SETUP_BYTES: usize = 128 * 1024;
/// Malformed tags tolerated in a row before the connection is dropped.
pub(super) const MAX_BAD_TAGS_IN_A_ROW: u32 = 50;

/// A request the policy turns down, with the RTMP status the peer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `connect` to an application other than the configured one.
    UnknownApp,
    /// A second `publish` on a connection that already publishes.
    AlreadyPublishing,
    /// A `publish` with a stream key the registry does not know.
    UnknownKey,
    /// A `play`: viewers are served over HLS.
    Play,
    /// The operator's `on_publish` hook said no (or could not be asked).
    HookRefused,
    /// Too many wrong stream keys from this address lately.
    HeldBack,
    /// This ingest publishes as many streams as it may.
    Full,
}

impl Refusal {
    /// The RTMP status code and description the peer is sent.
    pub(super) fn status(self) -> (&'static str, &'static str) {
        match self {
            Refusal::UnknownApp => (
                "NetConnection.Connect.Rejected",
                "unknown application: publish to /live",
            ),
            Refusal::AlreadyPublishing => (
                "NetStream.Publish.BadName",
                "this connection is already publishing",
            ),
            Refusal::UnknownKey => ("NetStream.Publish.Unauthorized", "unknown stream key"),
            Refusal::Play => (
                "NetStream.Play.Failed",
                "playback is served over HLS, not RTMP",
            ),
            Refusal::HookRefused => ("NetStream.Publish.Unauthorized", "publish refused"),
            Refusal::HeldBack => (
                "NetStream.Publish.Unauthorized",
                "too many wrong stream keys from this address; retry later",
            ),
            Refusal::Full => (
                "NetStream.Publish.Rejected",
                "this ingest publishes its maximum of streams; retry later",
            ),
        }
    }

    /// The `result` label of `sealcast_ingest_publishes` it is counted under, if any.
    pub(super) fn counted_as(self) -> Option<&'static str> {
        match self {
            Refusal::UnknownApp => Some("bad_app"),
            // Counted where they are decided (the registry's admission: `bad_key`,
            // `hook_refused`, `held_back`, `full`).
            Refusal::UnknownKey
            | Refusal::AlreadyPublishing
            | Refusal::Play
            | Refusal::HookRefused
            | Refusal::HeldBack
            | Refusal::Full => None,
        }
    }

    /// Whether the connection ends once the peer has its answer: a peer that got the app
    /// or the key wrong has nothing else to do here; one that asked for a second publish or
    /// for playback may still be publishing.
    pub(super) fn ends_connection(self) -> bool {
        matches!(
            self,
            Refusal::UnknownApp
                | Refusal::UnknownKey
                | Refusal::HookRefused
                | Refusal::HeldBack
                | Refusal::Full
        )
    }
}

/// More than [`SETUP_BYTES`] arrived before a publish was accepted: the connection is cut
/// without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OversizedSetup;

impl OversizedSetup {
    /// The `result` label of `sealcast_ingest_publishes` it is counted under.
    pub(super) const COUNTED_AS: &'static str = "oversized_setup";
}

impl fmt::Display for OversizedSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "more than {} KiB before a publish was accepted",
            SETUP_BYTES / 1024
        )
    }
}

/// What a media tag turned out to be, once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    /// Media for the pipeline.
    Media,
    /// A valid tag that carries nothing for the pipeline (end of sequence, info).
    Nothing,
    /// A codec the pipeline does not take.
    Unsupported,
    /// Bytes that do not parse.
    Malformed,
}

/// What the driver does with a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagVerdict {
    /// Hand its media to the pipeline.
    Forward,
    /// Nothing to do.
    Ignore,
    /// Drop it and carry on; `first` when it starts a run of bad tags (worth a log line:
    /// the rest of the run is not).
    Drop {
        /// The first bad tag of a run.
        first: bool,
    },
    /// End the connection with the tag's error.
    End,
}

/// The policy state of one connection.
#[derive(Debug, Clone)]
pub(super) struct PublishPolicy {
    /// The application publishers `connect` to (`live`).
    app: String,
    /// Whether a publish was accepted (then the setup cap no longer applies).
    publishing: bool,
    /// Bytes received before the publish was accepted.
    setup_bytes: usize,
    /// Bad tags since the last good video tag.
    bad_tags: u32,
}

impl PublishPolicy {
    /// A connection to a server for `app` whose handshake left `handshake_leftover` bytes
    /// of the peer's next message (counted against the setup cap).
    pub(super) fn new(app: &str, handshake_leftover: usize) -> Self {
        PublishPolicy {
            app: app.to_owned(),
            publishing: false,
            setup_bytes: handshake_leftover,
            bad_tags: 0,
        }
    }

    /// Whether a publish was accepted on this connection.
    pub(super) fn publishing(&self) -> bool {
        self.publishing
    }

    /// A `connect` to `app_name`.
    pub(super) fn connect(&self, app_name: &str) -> Result<(), Refusal> {
        if app_name.trim_end_matches('/') == self.app {
            Ok(())
        } else {
            Err(Refusal::UnknownApp)
        }
    }

    /// A `publish` request, before its key is checked.
    pub(super) fn publish_requested(&self) -> Result<(), Refusal> {
        if self.publishing {
            Err(Refusal::AlreadyPublishing)
        } else {
            Ok(())
        }
    }

    /// The registry checked the key of the requested publish: `known` or not.
    pub(super) fn key_checked(&mut self, known: bool) -> Result<(), Refusal> {
        if known {
            self.publishing = true;
            Ok(())
        } else {
            Err(Refusal::UnknownKey)
        }
    }

    /// A `play` request.
    pub(super) fn play_requested(&self) -> Refusal {
        Refusal::Play
    }

    /// `n` more bytes arrived from the peer.
    pub(super) fn received(&mut self, n: usize) -> Result<(), OversizedSetup> {
        if self.publishing {
            return Ok(());
        }
        self.setup_bytes = self.setup_bytes.saturating_add(n);
        if self.setup_bytes > SETUP_BYTES {
            Err(OversizedSetup)
        } else {
            Ok(())
        }
    }

    /// What the peer's silence means, when a read times out.
    pub(super) fn silence(&self) -> &'static str {
        if self.publishing {
            "publisher went silent"
        } else {
            "no publish within the setup time"
        }
    }

    /// A video tag of the publish.
    pub(super) fn video_tag(&mut self, tag: Tag) -> TagVerdict {
        match tag {
            Tag::Media => {
                self.bad_tags = 0;
                TagVerdict::Forward
            }
            Tag::Nothing => TagVerdict::Ignore,
            Tag::Unsupported => TagVerdict::End,
            Tag::Malformed => {
                self.bad_tags = self.bad_tags.saturating_add(1);
                if self.bad_tags > MAX_BAD_TAGS_IN_A_ROW {
                    TagVerdict::End
                } else {
                    TagVerdict::Drop {
                        first: self.bad_tags == 1,
                    }
                }
            }
        }
    }

    /// An audio tag of the publish. A bad one counts towards the run, but only video ends
    /// it: audio the pipeline cannot use leaves the video playable.
    pub(super) fn audio_tag(&mut self, tag: Tag) -> TagVerdict {
        match tag {
            Tag::Media => TagVerdict::Forward,
            Tag::Nothing => TagVerdict::Ignore,
            Tag::Unsupported | Tag::Malformed => {
                self.bad_tags = self.bad_tags.saturating_add(1);
                TagVerdict::Drop {
                    first: self.bad_tags == 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn publishing() -> PublishPolicy {
        let mut policy = PublishPolicy::new("live", 0);
        assert_eq!(policy.key_checked(true), Ok(()));
        policy
    }

    #[test]
    fn only_the_configured_app_is_connected_to() {
        let policy = PublishPolicy::new("live", 0);
        assert_eq!(policy.connect("live"), Ok(()));
        assert_eq!(policy.connect("live/"), Ok(()));
        for other in ["", "Live", "live2", "/live", "app"] {
            assert_eq!(policy.connect(other), Err(Refusal::UnknownApp), "{other:?}");
        }
        let (code, description) = Refusal::UnknownApp.status();
        assert_eq!(code, "NetConnection.Connect.Rejected");
        assert_eq!(description, "unknown application: publish to /live");
        assert_eq!(Refusal::UnknownApp.counted_as(), Some("bad_app"));
        assert!(Refusal::UnknownApp.ends_connection());
    }

    #[test]
    fn one_publish_per_connection_and_only_with_a_known_key() {
        let mut policy = PublishPolicy::new("live", 0);
        assert_eq!(policy.publish_requested(), Ok(()));
        assert_eq!(policy.key_checked(false), Err(Refusal::UnknownKey));
        assert!(!policy.publishing());
        assert_eq!(
            Refusal::UnknownKey.status(),
            ("NetStream.Publish.Unauthorized", "unknown stream key")
        );
        assert_eq!(
            Refusal::UnknownKey.counted_as(),
            None,
            "the registry counts it"
        );
        assert!(Refusal::UnknownKey.ends_connection());

        assert_eq!(policy.key_checked(true), Ok(()));
        assert!(policy.publishing());
        assert_eq!(policy.publish_requested(), Err(Refusal::AlreadyPublishing));
        assert_eq!(
            Refusal::AlreadyPublishing.status().0,
            "NetStream.Publish.BadName"
        );
        assert_eq!(Refusal::AlreadyPublishing.counted_as(), None);
        assert!(!Refusal::AlreadyPublishing.ends_connection());
    }

    #[test]
    fn playback_is_refused_without_ending_the_connection() {
        let refusal = PublishPolicy::new("live", 0).play_requested();
        assert_eq!(
            refusal.status(),
            (
                "NetStream.Play.Failed",
                "playback is served over HLS, not RTMP"
            )
        );
        assert!(!refusal.ends_connection());
        assert_eq!(refusal.counted_as(), None);
    }

    #[test]
    fn the_setup_cap_counts_the_handshake_leftover_and_ends_at_publish() {
        let mut policy = PublishPolicy::new("live", 1000);
        assert_eq!(policy.received(SETUP_BYTES - 1000), Ok(()));
        assert_eq!(policy.received(1), Err(OversizedSetup));
        assert_eq!(
            OversizedSetup.to_string(),
            "more than 128 KiB before a publish was accepted"
        );
        assert_eq!(OversizedSetup::COUNTED_AS, "oversized_setup");

        let mut policy = publishing();
        assert_eq!(policy.received(usize::MAX), Ok(()));
        assert_eq!(policy.received(usize::MAX), Ok(()));
    }

    #[test]
    fn silence_means_what_the_connection_was_waiting_for() {
        assert_eq!(
            PublishPolicy::new("live", 0).silence(),
            "no publish within the setup time"
        );
        assert_eq!(publishing().silence(), "publisher went silent");
    }

    #[test]
    fn an_unsupported_video_codec_ends_the_connection_and_audio_never_does() {
        let mut policy = publishing();
        assert_eq!(policy.video_tag(Tag::Unsupported), TagVerdict::End);
        let mut policy = publishing();
        assert_eq!(
            policy.audio_tag(Tag::Unsupported),
            TagVerdict::Drop { first: true }
        );
        for _ in 0..1000 {
            assert_ne!(policy.audio_tag(Tag::Malformed), TagVerdict::End);
        }
        assert_eq!(policy.audio_tag(Tag::Media), TagVerdict::Forward);
        assert_eq!(policy.video_tag(Tag::Nothing), TagVerdict::Ignore);
    }

    proptest! {
        /// Before a publish, the connection is cut exactly at the read that takes the
        /// bytes received (the handshake's leftover included) past the cap.
        #[test]
        fn setup_is_cut_exactly_past_the_cap(
            leftover in 0usize..4096,
            reads in proptest::collection::vec(0usize..40_000, 0..16),
        ) {
            let mut policy = PublishPolicy::new("live", leftover);
            let mut total = leftover;
            for n in reads {
                total += n;
                let outcome = policy.received(n);
                prop_assert_eq!(outcome.is_err(), total > SETUP_BYTES);
                if outcome.is_err() {
                    break;
                }
            }
        }

        /// A run of malformed tags (video or audio) ends the connection at the first
        /// malformed video tag that makes the run longer than the limit; a good video tag
        /// ends the run; only the first tag of a run asks for a log line.
        #[test]
        fn a_run_of_bad_tags_ends_the_connection_past_the_limit(
            tags in proptest::collection::vec((any::<bool>(), 0u8..3), 0..300),
        ) {
            let mut policy = publishing();
            let mut run = 0u32;
            for (video, kind) in tags {
                let tag = match kind {
                    0 => Tag::Media,
                    1 => Tag::Nothing,
                    _ => Tag::Malformed,
                };
                let verdict = if video { policy.video_tag(tag) } else { policy.audio_tag(tag) };
                match tag {
                    Tag::Media => {
                        prop_assert_eq!(verdict, TagVerdict::Forward);
                        if video {
                            run = 0;
                        }
                    }
                    Tag::Nothing => prop_assert_eq!(verdict, TagVerdict::Ignore),
                    _ => {
                        run += 1;
                        if video && run > MAX_BAD_TAGS_IN_A_ROW {
                            prop_assert_eq!(verdict, TagVerdict::End);
                            break;
                        }
                        prop_assert_eq!(verdict, TagVerdict::Drop { first: run == 1 });
                    }
                }
            }
        }
    }
}

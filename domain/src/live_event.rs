//! What an ingest tells the edges about a live stream, in order.
//!
//! Inside an ingest these values travel over a channel; to the edges, a segment's bytes go
//! by HTTP push and its signature over MQTT, and every other event goes as the JSON of a
//! signed statement ([`crate::push_protocol::ControlEvent`], which wraps these very values: the
//! wire form is this enum's serde form, `{"type": "session_started", ...}`).

use serde::{Deserialize, Serialize};

use crate::{Part, RenditionInfo, RenditionName, Segment, SessionId, StreamName, Thumbnail};

/// One thing that happened to a live stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveEvent {
    /// A publish session started: renditions will follow in ladder order. Sent again with
    /// the same session when the stream's privacy or recording changes while it is live.
    SessionStarted {
        /// The stream.
        stream: StreamName,
        /// The new session.
        session: SessionId,
        /// Whether the stream is private: its resources are served only with a playback
        /// token. Edges learn it here, in the signed statement that opens the session, so
        /// that nothing unsigned can make a stream public and no segment is served before
        /// its privacy is known. Left out of the JSON when false (a public stream's event
        /// reads as it always did).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        private: bool,
        /// Whether the nodes that record keep this session in a recording. An operator
        /// switches it off per stream (`streams set --no-record`, the admin API); it travels
        /// here, signed, because edges act only on what an ingest signed. Left out of the
        /// JSON when true, and true when absent: an older ingest's start, which never says,
        /// still means "record", and a recorded stream's event reads as it always did.
        #[serde(default = "recorded", skip_serializing_if = "is_recorded")]
        record: bool,
    },
    /// A rendition's description, sent before its first segment and again if it changes
    /// (for example once its frame rate has been measured).
    Rendition {
        /// The stream.
        stream: StreamName,
        /// What the rendition is.
        info: RenditionInfo,
    },
    /// A finished segment. Never serialized: segments travel as pushed bytes with their
    /// signed statement.
    #[serde(skip)]
    Segment(Segment),
    /// A finished LL-HLS part of the segment being cut. Never serialized: parts travel like
    /// segments, as pushed bytes with their signed statement.
    #[serde(skip)]
    Part(Part),
    /// A thumbnail of the stream (a still JPEG of its lowest rung). Never serialized:
    /// thumbnails travel as pushed bytes with their signed statement.
    #[serde(skip)]
    Thumbnail(Thumbnail),
    /// A rendition stopped being produced (shed because encoding fell behind real time).
    RenditionDropped {
        /// The stream.
        stream: StreamName,
        /// The rendition that stops.
        rendition: RenditionName,
    },
    /// The publisher stopped and did not come back: playlists get `#EXT-X-ENDLIST`.
    Ended {
        /// The stream.
        stream: StreamName,
        /// The session that ended.
        session: SessionId,
    },
}

/// The default of [`LiveEvent::SessionStarted`]'s `record`: streams are recorded.
fn recorded() -> bool {
    true
}

/// Whether a session start's `record` is the default, left out of its JSON.
fn is_recorded(record: &bool) -> bool {
    *record
}

impl LiveEvent {
    /// The stream the event is about.
    pub fn stream(&self) -> &StreamName {
        match self {
            Self::SessionStarted { stream, .. }
            | Self::Rendition { stream, .. }
            | Self::RenditionDropped { stream, .. }
            | Self::Ended { stream, .. } => stream,
            Self::Segment(s) => &s.meta.stream,
            Self::Part(p) => &p.meta.stream,
            Self::Thumbnail(t) => &t.meta.stream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A public stream's session start reads as it did before streams could be private
    /// (edges of an older build take it); a private one says so.
    #[test]
    fn privacy_is_in_the_session_start_only_when_private() {
        let start = |private| LiveEvent::SessionStarted {
            stream: StreamName::new("s").expect("valid"),
            session: SessionId(7),
            private,
            record: true,
        };
        let public = serde_json::to_string(&start(false)).expect("encodes");
        assert_eq!(
            public,
            r#"{"type":"session_started","stream":"s","session":7}"#
        );
        let private = serde_json::to_string(&start(true)).expect("encodes");
        assert_eq!(
            private,
            r#"{"type":"session_started","stream":"s","session":7,"private":true}"#
        );
        for (json, event) in [(public, start(false)), (private, start(true))] {
            assert_eq!(
                serde_json::from_str::<LiveEvent>(&json).expect("decodes"),
                event
            );
        }
    }

    /// A stream that is not recorded says so; one that is reads as before (an older
    /// ingest's start, without the field, means "record"), and both decode to what was sent.
    #[test]
    fn recording_is_in_the_session_start_only_when_off() {
        let start = |private, record| LiveEvent::SessionStarted {
            stream: StreamName::new("s").expect("valid"),
            session: SessionId(7),
            private,
            record,
        };
        let off = serde_json::to_string(&start(false, false)).expect("encodes");
        assert_eq!(
            off,
            r#"{"type":"session_started","stream":"s","session":7,"record":false}"#
        );
        let old = r#"{"type":"session_started","stream":"s","session":7,"private":true}"#;
        assert_eq!(
            serde_json::from_str::<LiveEvent>(old).expect("decodes"),
            start(true, true)
        );
        for event in [start(false, false), start(true, false), start(true, true)] {
            let json = serde_json::to_string(&event).expect("encodes");
            assert_eq!(
                serde_json::from_str::<LiveEvent>(&json).expect("decodes"),
                event
            );
        }
    }
}

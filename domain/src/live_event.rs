//! What an ingest tells the edges about a live stream, in order.
//!
//! Inside an ingest these values travel over a channel; to the edges, a segment's bytes go
//! by HTTP push and its signature over MQTT, and every other event goes as the JSON of a
//! signed statement ([`crate::push_protocol::ControlEvent`], which wraps these very values: the
//! wire form is this enum's serde form, `{"type": "session_started", ...}`).

use serde::{Deserialize, Serialize};

use crate::{Part, RenditionInfo, RenditionName, Segment, SessionId, StreamName};

/// One thing that happened to a live stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveEvent {
    /// A publish session started: renditions will follow in ladder order. Sent again with
    /// the same session when the stream's privacy changes while it is live.
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
}

//! The thumbnails a node verified: each stream's latest, served at
//! `/live/{stream}/thumbnail.jpg` with its signed statement at `thumbnail.jpg.sig`, and
//! named in `/api/v1/streams` (`thumbnail_url`).
//!
//! Only an edge puts a thumbnail here, after its signature verified against a trusted
//! ingest key and its bytes matched the statement's length and digest (`edge::thumbnail`);
//! this holds and orders them: a thumbnail replaces the one held only if it is of the
//! stream's live session and comes after it (sequence, then capture time), or if the one
//! held is of an earlier session. So a replayed older thumbnail never takes a newer one's
//! place. The bytes and the statement are kept together, one swap for both.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use domain::paths::PublicPath;
use domain::wire::ThumbnailStatement;
use domain::{SessionId, StreamName};
use http::HeaderValue;
use parking_lot::RwLock;

use crate::respond::{self, Ranges, JPEG_TYPE, STATEMENT_TYPE};
use crate::view::{Document, SEGMENT_CACHE_CONTROL};

/// How long a client or cache may keep the live thumbnail: about one thumbnail's interval.
pub(crate) const THUMBNAIL_CACHE_CONTROL: HeaderValue =
    HeaderValue::from_static("public, max-age=5");

/// A verified thumbnail as it is served.
#[derive(Debug)]
pub(crate) struct HeldThumbnail {
    /// What its signature bound.
    pub(crate) statement: ThumbnailStatement,
    /// The JPEG.
    pub(crate) image: Document,
    /// Its signed statement, the envelope the node verified.
    pub(crate) signed: Document,
}

impl HeldThumbnail {
    /// A verified thumbnail's bytes and envelope, as documents.
    pub(crate) fn new(statement: ThumbnailStatement, jpeg: Bytes, envelope: Bytes) -> Self {
        HeldThumbnail {
            statement,
            image: Document::statement(jpeg, THUMBNAIL_CACHE_CONTROL),
            signed: Document::statement(envelope, THUMBNAIL_CACHE_CONTROL),
        }
    }
}

/// What [`Thumbnails::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Kept as the stream's latest.
    Kept,
    /// Not of the stream's live session (none, or another).
    OtherSession,
    /// Not after the one held.
    Stale,
}

/// Each stream's latest verified thumbnail. Bounded by the node's streams: one entry per
/// stream that is live on the node (an offer for a stream that is not is refused).
#[derive(Debug, Default)]
pub(crate) struct Thumbnails {
    latest: RwLock<HashMap<StreamName, Arc<HeldThumbnail>>>,
}

impl Thumbnails {
    /// Keeps `held` (verified) as its stream's latest if it is of `live`, the stream's
    /// live session on this node, and after the one held.
    pub(crate) fn offer(&self, held: HeldThumbnail, live: Option<SessionId>) -> Offered {
        let statement = &held.statement;
        if live != Some(statement.session) {
            return Offered::OtherSession;
        }
        let mut latest = self.latest.write();
        if let Some(current) = latest.get(&statement.stream) {
            if current.statement.session == statement.session
                && !current.statement.precedes(statement)
            {
                return Offered::Stale;
            }
        }
        latest.insert(statement.stream.clone(), Arc::new(held));
        Offered::Kept
    }

    /// The latest of `stream`, if any.
    pub(crate) fn latest(&self, stream: &StreamName) -> Option<Arc<HeldThumbnail>> {
        self.latest.read().get(stream).cloned()
    }

    /// Where the latest of `stream` is served, if there is one.
    pub(crate) fn url(&self, stream: &StreamName) -> Option<String> {
        self.latest
            .read()
            .contains_key(stream)
            .then(|| PublicPath::Thumbnail(stream.clone()).to_string())
    }
}

/// The answer to a recording's `thumbnail.jpg` (or its `.sig`), read from its
/// recording: immutable like the recording's media (it is written once).
pub(crate) fn vod_response(
    path: &PublicPath,
    bytes: Bytes,
    headers: &http::HeaderMap,
) -> Result<axum::response::Response, crate::BroadcastError> {
    let doc = Document::statement(bytes, SEGMENT_CACHE_CONTROL);
    let content_type = match path {
        PublicPath::VodThumbnail(..) => JPEG_TYPE,
        _ => STATEMENT_TYPE,
    };
    respond::document(&doc, content_type, Ranges::No, headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::wire::{KeyId, SignatureAlgorithm};

    fn held(session: u64, sequence: u64, captured_ms: u64) -> HeldThumbnail {
        let statement = ThumbnailStatement {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: KeyId([1; 16]),
            stream: StreamName::new("cam").expect("valid"),
            session: SessionId(session),
            sequence,
            captured_ms,
            width: 320,
            height: 180,
            byte_len: 3,
            digest: [0; 32],
        };
        HeldThumbnail::new(statement, Bytes::from_static(b"jpg"), Bytes::new())
    }

    #[test]
    fn only_later_thumbnails_of_the_live_session_replace_the_one_held() {
        let t = Thumbnails::default();
        let cam = StreamName::new("cam").expect("valid");
        assert_eq!(t.offer(held(1, 5, 10), None), Offered::OtherSession);
        assert_eq!(
            t.offer(held(1, 5, 10), Some(SessionId(2))),
            Offered::OtherSession
        );
        assert_eq!(t.url(&cam), None);
        assert_eq!(t.offer(held(1, 5, 10), Some(SessionId(1))), Offered::Kept);
        assert_eq!(t.offer(held(1, 5, 10), Some(SessionId(1))), Offered::Stale);
        assert_eq!(t.offer(held(1, 4, 99), Some(SessionId(1))), Offered::Stale);
        assert_eq!(t.offer(held(1, 5, 11), Some(SessionId(1))), Offered::Kept);
        assert_eq!(t.offer(held(2, 0, 0), Some(SessionId(2))), Offered::Kept);
        assert_eq!(
            t.latest(&cam).map(|h| h.statement.session),
            Some(SessionId(2))
        );
        assert_eq!(t.url(&cam).as_deref(), Some("/live/cam/thumbnail.jpg"));
    }
}

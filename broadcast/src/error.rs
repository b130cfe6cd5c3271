//! The crate's one error type, and the one place where errors become HTTP responses.
//!
//! Variants carry the names involved so logs say what went wrong; the response body never
//! does: clients get a fixed, short message per variant as `{"error": "..."}`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{RenditionName, SessionId, StreamName};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

/// Why a broadcast node refused an event or a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// An event or a request named a stream this node has never seen start.
    #[error("unknown stream {stream}")]
    UnknownStream {
        /// The stream asked for.
        stream: StreamName,
    },
    /// An event or a request named a rendition the stream does not have (never announced,
    /// not announced by the live session, or dropped).
    #[error("unknown rendition {rendition} of stream {stream}")]
    UnknownRendition {
        /// The stream.
        stream: StreamName,
        /// The rendition asked for.
        rendition: RenditionName,
    },
    /// A segment that this node does not hold: not yet published, or slid out of the window
    /// (and out of the grace period after it) long ago.
    #[error("segment {sequence} of {stream}/{rendition} is not available")]
    UnknownSegment {
        /// The stream.
        stream: StreamName,
        /// The rendition.
        rendition: RenditionName,
        /// The media sequence number asked for.
        sequence: u64,
    },
    /// The stream exists but no rendition has both a description and a segment yet, so
    /// there is no master playlist to serve.
    #[error("stream {stream} has no playable rendition yet")]
    NotReady {
        /// The stream.
        stream: StreamName,
    },
    /// A segment whose sequence number is not after the last one of its rendition: a
    /// replay or a reorder. The window is unchanged.
    #[error("segment {sequence} of {stream}/{rendition} is not after the last one ({last})")]
    OutOfOrder {
        /// The stream.
        stream: StreamName,
        /// The rendition.
        rendition: RenditionName,
        /// The sequence number that was refused.
        sequence: u64,
        /// The last sequence number in the window.
        last: u64,
    },
    /// An event of a publish session that is not the stream's live session (an earlier
    /// session, or one that never started).
    #[error("session {session} is not the live session of stream {stream}")]
    StaleSession {
        /// The stream.
        stream: StreamName,
        /// The session the event belonged to.
        session: SessionId,
    },
    /// An event that needs a live session arrived after the stream ended.
    #[error("stream {stream} is not live")]
    NotLive {
        /// The stream.
        stream: StreamName,
    },
    /// The request path is not part of the public URL layout, or a name in it is invalid
    /// (this includes `..` and percent-encoded tricks).
    #[error("no such path")]
    NotFound,
    /// A `Range` request that no byte of the segment satisfies.
    #[error("range not satisfiable for a body of {len} bytes")]
    RangeNotSatisfiable {
        /// Length of the whole segment, sent back in `Content-Range: bytes */len`.
        len: u64,
    },
    /// The metrics registry could not be rendered as text.
    #[error("encoding metrics failed")]
    Metrics(#[source] std::fmt::Error),
    /// The HTTP server failed (accepting connections or serving them).
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
}

impl BroadcastError {
    /// The status and the public message: fixed text, never the `Display` of the error.
    fn public(&self) -> (StatusCode, &'static str) {
        match self {
            Self::UnknownStream { .. } => (StatusCode::NOT_FOUND, "unknown stream"),
            Self::UnknownRendition { .. } => (StatusCode::NOT_FOUND, "unknown rendition"),
            Self::UnknownSegment { .. } => (StatusCode::NOT_FOUND, "segment not available"),
            Self::NotReady { .. } => (
                StatusCode::NOT_FOUND,
                "stream has no playable rendition yet",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not found"),
            // Only reachable through event delivery; a later push endpoint answers with
            // these, so they are mapped here with the rest.
            Self::OutOfOrder { .. } => (StatusCode::CONFLICT, "segment out of order"),
            Self::StaleSession { .. } => (StatusCode::CONFLICT, "stale session"),
            Self::NotLive { .. } => (StatusCode::CONFLICT, "stream is not live"),
            Self::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
            }
            Self::Metrics(_) | Self::Serve(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl IntoResponse for BroadcastError {
    fn into_response(self) -> Response {
        let (status, message) = self.public();
        if status.is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(&self), "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::RangeNotSatisfiable { len } = self {
            if let Ok(value) = HeaderValue::try_from(format!("bytes */{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
        }
        response
    }
}

//! The crate's one error type, and the one place where errors become HTTP responses.
//!
//! Variants carry the names involved so logs say what went wrong; the response body never
//! does: clients get a fixed, short message per variant as `{"error": "..."}` (the one
//! exception names the offending push header, which the client sent itself).

use std::borrow::Cow;

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
    /// An LL-HLS part that this node does not hold and is not holding requests for.
    #[error("part {sequence}.{part} of {stream}/{rendition} is not available")]
    UnknownPart {
        /// The stream.
        stream: StreamName,
        /// The rendition.
        rendition: RenditionName,
        /// The media sequence number of its segment.
        sequence: u64,
        /// The part index asked for.
        part: u32,
        /// It will never exist here: its segment is listed whole and the parts held add up
        /// to it (the part a preload hint named when the segment ended before it, which
        /// every LL-HLS player asks for once a segment), or it is older than the last
        /// segment. Otherwise it is too far ahead to hold the request for.
        gone: bool,
    },
    /// A playlist request whose `_HLS_msn` / `_HLS_part` / `_HLS_skip` query is invalid.
    #[error("invalid playlist query: {0}")]
    BadQuery(#[source] domain::DomainError),
    /// A blocking playlist request for a segment more than two ahead of the last one
    /// (RFC 8216bis §6.2.5.2).
    #[error("_HLS_msn too far ahead of the playlist")]
    TooFarAhead,
    /// A blocking playlist request (or a preload-hinted part) that was not satisfied
    /// within three target durations.
    #[error("blocking request not satisfied in time")]
    BlockTimeout,
    /// A recording that is not finished on this node's disk (never recorded here, still
    /// being written, deleted), or a node that keeps no recordings.
    #[error("unknown recording {id} of stream {stream}")]
    UnknownRecording {
        /// The stream.
        stream: StreamName,
        /// The recording (its session id).
        id: SessionId,
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
    /// The recordings directory could not be prepared, read or changed.
    #[error("accessing the recordings directory failed")]
    Recordings(#[source] std::io::Error),
    /// The archive of recordings failed (unavailable, refused): answered 503, its text
    /// (which names a key, never a credential) kept for the log.
    #[error("the recordings archive failed")]
    Archive(#[source] archive::ArchiveError),
    /// Something that spawns a task was called outside a tokio runtime.
    #[error("no tokio runtime to run on")]
    NoRuntime,
    /// The HTTP server failed (accepting connections or serving them).
    #[error("http server failed")]
    Serve(#[source] std::io::Error),
    /// An internal push without `authorization: Bearer <push token>`, or with another
    /// token. Checked before anything else about the request.
    #[error("push not authorized")]
    Unauthorized,
    /// A push body over its cap: a segment over `max_segment_bytes`, an event over
    /// `domain::wire::MAX_SIGNED_EVENT_LEN`. Refused as soon as it is known, never buffered.
    #[error("push body over the {limit}-byte limit")]
    TooLarge {
        /// The cap that was exceeded.
        limit: usize,
    },
    /// A segment push whose metadata headers (or signed statement header) are missing or
    /// invalid; the header is named in the response.
    #[error("missing or invalid header {0}")]
    BadHeader(&'static str),
    /// An event push whose signed body is not a valid `domain::push_protocol::ControlEvent`.
    #[error("invalid control event")]
    BadEvent(#[source] serde_json::Error),
    /// An event push refused before its event was read: not a signed statement, a
    /// signature the trust store refused, or signed too long ago (the label of
    /// `sealcast_control_events_refused_total`).
    #[error("control event refused: {reason}")]
    EventRefused {
        /// Why, one of `crate::metrics::EVENT_REFUSALS`.
        reason: &'static str,
    },
    /// A pushed thumbnail refused: its statement missing or malformed, its bytes not what
    /// it signed, or its signature not trusted (the label of `sealcast_thumbnails_total`).
    #[error("thumbnail refused: {reason}")]
    ThumbnailRefused {
        /// Why, one of the refusals of `crate::metrics::THUMBNAIL_OUTCOMES`.
        reason: &'static str,
    },
    /// The request body could not be read (the client went away or sent a broken stream).
    #[error("reading the request body failed")]
    Body(#[source] axum::Error),
    /// A method the path does not take (the internal API is `PUT` segments, `POST` events).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The configuration cannot work (for example a public URL that presence would not
    /// carry).
    #[error("invalid edge configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: &'static str,
    },
    /// A control message (or the statement header of a push) that does not decode.
    #[error("undecodable payload: {0}")]
    Undecodable(#[from] domain::DomainError),
    /// A certificate or revocation the trust store refused (not signed by the pinned root,
    /// expired, of another algorithm, malformed).
    #[error("untrusted statement: {0}")]
    Untrusted(#[from] certs::CertsError),
    /// A control message that decodes but does not belong on its topic (a statement of
    /// another rendition, a certificate of another node).
    #[error("{what} on this topic")]
    TopicMismatch {
        /// What arrived.
        what: &'static str,
    },
    /// A background computation (signature verification) panicked or was cancelled.
    #[error("a background task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The MoQ publisher could not be set up (its TLS trust, most likely).
    #[error("MoQ egress: {0}")]
    Moq(String),
    /// A valid token of a private stream that does not open this request (another client
    /// network's, a live-only token for a recording, or refused by the `on_play` hook).
    /// Requests that show no knowledge of the stream (no token, one that is not valid,
    /// another stream's) get the answer of a stream that does not exist instead.
    #[error("playback token does not open this: {reason}")]
    AccessRefused {
        /// Why.
        reason: &'static str,
    },
}

impl From<domain::push_protocol::BadHeader> for BroadcastError {
    fn from(e: domain::push_protocol::BadHeader) -> Self {
        Self::BadHeader(e.0)
    }
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody {
    error: Cow<'static, str>,
}

impl BroadcastError {
    /// The status and the public message: fixed text, never the `Display` of the error.
    fn public(&self) -> (StatusCode, Cow<'static, str>) {
        let (status, message) = match self {
            Self::UnknownStream { .. } => (StatusCode::NOT_FOUND, "unknown stream"),
            Self::UnknownRendition { .. } => (StatusCode::NOT_FOUND, "unknown rendition"),
            Self::UnknownSegment { .. } => (StatusCode::NOT_FOUND, "segment not available"),
            Self::NotReady { .. } => (
                StatusCode::NOT_FOUND,
                "stream has no playable rendition yet",
            ),
            Self::UnknownRecording { .. } => (StatusCode::NOT_FOUND, "unknown recording"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not found"),
            Self::UnknownPart { .. } => (StatusCode::NOT_FOUND, "part not available"),
            Self::BadQuery(_) => (StatusCode::BAD_REQUEST, "invalid playlist query"),
            Self::TooFarAhead => (StatusCode::BAD_REQUEST, "_HLS_msn too far ahead"),
            Self::BlockTimeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not available in time; retry",
            ),
            // Answers of the event push endpoint (and logged when the gate publishes).
            Self::OutOfOrder { .. } => (StatusCode::CONFLICT, "segment out of order"),
            Self::StaleSession { .. } => (StatusCode::CONFLICT, "stale session"),
            Self::NotLive { .. } => (StatusCode::CONFLICT, "stream is not live"),
            Self::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
            }
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            Self::BadHeader(name) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Cow::Owned(format!("missing or invalid header {name}")),
                )
            }
            Self::BadEvent(_) => (StatusCode::BAD_REQUEST, "invalid control event"),
            Self::EventRefused {
                reason: "malformed",
            } => (StatusCode::BAD_REQUEST, "not a signed control event"),
            // The certificate may still be on its way over MQTT: worth a retry.
            Self::EventRefused {
                reason: "unknown_key",
            } => (StatusCode::SERVICE_UNAVAILABLE, "signing key not known yet"),
            Self::EventRefused { .. } => (StatusCode::FORBIDDEN, "control event refused"),
            Self::ThumbnailRefused { .. } => (StatusCode::FORBIDDEN, "thumbnail refused"),
            Self::Body(_) => (StatusCode::BAD_REQUEST, "could not read the body"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            // A private stream's own token that does not open this.
            Self::AccessRefused { .. } => (
                StatusCode::FORBIDDEN,
                "the playback token does not open this",
            ),
            // Control-plane errors, logged by the MQTT side; mapped for completeness.
            Self::Undecodable(_) | Self::Untrusted(_) | Self::TopicMismatch { .. } => {
                (StatusCode::BAD_REQUEST, "invalid payload")
            }
            Self::Metrics(_)
            | Self::Serve(_)
            | Self::Config { .. }
            | Self::Task(_)
            | Self::Moq(_)
            | Self::NoRuntime
            | Self::Recordings(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            Self::Archive(_) => (StatusCode::SERVICE_UNAVAILABLE, "recordings unavailable"),
        };
        (status, Cow::Borrowed(message))
    }
}

impl BroadcastError {
    /// How long a shared cache in front may keep this answer (docs/architecture.md,
    /// Caching). Errors are not stored, but for two answers that every LL-HLS player
    /// holding the same request gets at once: a cache then answers them all from one
    /// fetch instead of sending each to the origin.
    fn cache_control(&self) -> HeaderValue {
        match self {
            // A part that will never exist: for about a segment, as long as anyone asks.
            Self::UnknownPart { gone: true, .. } => HeaderValue::from_static("public, max-age=2"),
            // A hold that ran out (the stream stalled): the next try a second later, once
            // per cache, not once per viewer.
            Self::BlockTimeout => HeaderValue::from_static("public, max-age=1"),
            // Anything else may be different a moment later (a part another edge already
            // has), or concerns one caller.
            _ => HeaderValue::from_static("no-store"),
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
        let cache_control = self.cache_control();
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, cache_control);
        if let Self::Unauthorized = self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::RangeNotSatisfiable { len } = self {
            if let Ok(value) = HeaderValue::try_from(format!("bytes */{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
        }
        response
    }
}

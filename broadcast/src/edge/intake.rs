//! The internal push API (`domain::push_protocol`): ingest pushes segment bytes and control events
//! to the node.
//!
//! Order of checks, cheapest and most telling first: the bearer token (401, before anything
//! else, so an unauthenticated client learns nothing about paths or streams), the path
//! (404), the method (405), the metadata headers (400 naming the header), a declared
//! `Content-Length` over the cap (413 without reading a byte), whether the node takes a
//! segment for this stream, session and rendition (404 / 409); then the body is streamed in
//! chunk by chunk, hashed with SHA-256 as it arrives, and refused with 413 the moment it
//! passes the cap, so at most the cap is ever buffered.
//!
//! A part (`PUT /internal/v1/parts/{stream}/{rendition}/{seq}/{part}`, LL-HLS) goes the
//! same way ([`take`] serves both), with its headers ([`PartHeaders`]) and into the part
//! gate; its statement comes only over MQTT (parts are never re-sent, so there is no
//! catch-up form).
//!
//! A segment push with [`domain::push_protocol::ASSEMBLE_HEADER`] and no body asks the node to make the segment
//! of its parts `0..N` (`Edge::assemble`); the body must be empty (413 otherwise, as over
//! a cap of zero). The answer is 202 as for pushed bytes, or `409` with
//! `{"error":"parts_missing"}` when a part is not here: the ingest then pushes the whole
//! segment. That answer is written here rather than as a `BroadcastError`: it is not a
//! refusal but the push protocol's request for the bytes, and its body is the protocol's
//! ([`PARTS_MISSING_BODY`]).
//!
//! A thumbnail (`PUT /internal/v1/thumbnails/{stream}`) carries its signed statement in
//! the statement header, which is required and decoded before the body is read (a
//! thumbnail statement of the path's stream, else 403); the body is capped at
//! `MAX_THUMBNAIL_BYTES` (413 past it) and hashed as it streams in, then the statement is
//! verified and the bytes checked against it (`edge::thumbnail`) before the node keeps it.
//!
//! An event is a signed statement (`domain::wire::SignedEvent`): it takes effect only
//! once its signature verified against a trusted ingest key (`Edge::verify_event`); the
//! push token alone changes no playlist.
//!
//! Accepted segments go to the signature gate, not to the window: the answer (202) means
//! "held", and the segment is published once a verified statement agrees with it.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use domain::push_protocol::{
    Assemble, ControlEvent, InternalPath, PartHeaders, SegmentHeaders, PARTS_MISSING_BODY,
    STATEMENT_HEADER,
};
use domain::wire::MAX_SIGNED_EVENT_LEN;
use domain::wire::{MediaStatement, SignedMedia};
use domain::{RenditionName, StreamName, MAX_THUMBNAIL_BYTES};
use http::request::Parts;
use http::{header, HeaderMap, Method, StatusCode};
use sha2::{Digest, Sha256};

use super::{Assembly, Edge, Pushable};
use crate::BroadcastError;

/// How long a push body may take to arrive in full.
const PUSH_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The internal push API's routes, for [`Edge::router`] to add to the node's.
pub(super) fn routes(edge: Arc<Edge>) -> axum::Router {
    // Parsed by `InternalPath`, the one parser of the push API, inside the handler.
    // A pusher that stops sending mid-body must not hold its buffer forever.
    axum::Router::new().route(
        "/internal/{*rest}",
        axum::routing::any(move |request: Request| handle(Arc::clone(&edge), request)).layer(
            tower_http::timeout::RequestBodyTimeoutLayer::new(PUSH_BODY_TIMEOUT),
        ),
    )
}

/// Handles every request under `/internal/`.
async fn handle(edge: Arc<Edge>, request: Request) -> Result<Response, BroadcastError> {
    let (parts, body) = request.into_parts();
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !edge.config.push_token.authorizes(presented) {
        return Err(BroadcastError::Unauthorized);
    }
    match InternalPath::parse(parts.uri.path()) {
        Some(InternalPath::Segment(stream, rendition, sequence)) if parts.method == Method::PUT => {
            segment(&edge, &parts, body, stream, rendition, sequence).await
        }
        Some(InternalPath::Part(stream, rendition, sequence, index))
            if parts.method == Method::PUT =>
        {
            part(&edge, &parts, body, (stream, rendition, sequence, index)).await
        }
        Some(InternalPath::Events) if parts.method == Method::POST => {
            event(&edge, &parts.headers, body).await
        }
        Some(InternalPath::Thumbnail(stream)) if parts.method == Method::PUT => {
            thumbnail(&edge, &parts.headers, body, &stream).await
        }
        Some(_) => Err(BroadcastError::MethodNotAllowed),
        None => Err(BroadcastError::NotFound),
    }
}

/// A pushed segment, with the signed statement of a catch-up push if it carries one.
async fn segment(
    edge: &Edge,
    parts: &Parts,
    body: Body,
    stream: StreamName,
    rendition: RenditionName,
    sequence: u64,
) -> Result<Response, BroadcastError> {
    let headers = &parts.headers;
    let meta = SegmentHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))?
        .meta(stream, rendition, sequence);
    let signed = match headers.get(STATEMENT_HEADER) {
        None => None,
        Some(value) => Some(statement_header(value.as_bytes(), &meta)?),
    };
    match Assemble::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))? {
        None => take(edge, headers, body, meta, signed).await,
        Some(form) => assemble(edge, headers, body, meta, form, signed).await,
    }
}

/// An assembled segment push: the segment made of the body (its prefix, a VSI `emsg` or
/// nothing) and the parts held, or `409` naming them missing.
async fn assemble(
    edge: &Edge,
    headers: &HeaderMap,
    body: Body,
    claim: domain::SegmentMeta,
    form: Assemble,
    signed: Option<(Bytes, SignedMedia, MediaStatement)>,
) -> Result<Response, BroadcastError> {
    let limit = Assemble::MAX_PREFIX;
    let declared = declared_length(headers, limit)?;
    edge.check_push(&claim)?;
    let prefix = read_capped(body, limit, declared, |_| {}).await?;
    let at = claim.sequence;
    match edge.assemble(claim, prefix, form.parts)? {
        Assembly::Offered => {}
        Assembly::Missing(index) => {
            tracing::debug!(sequence = at, part = index, "cannot assemble: part missing");
            let answer = (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "application/json")],
                PARTS_MISSING_BODY,
            );
            return Ok(answer.into_response());
        }
    }
    if let Some((envelope, signed, statement)) = signed {
        edge.offer_statement(envelope, signed, statement).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A pushed LL-HLS part.
async fn part(
    edge: &Edge,
    parts: &Parts,
    body: Body,
    (stream, rendition, sequence, index): (StreamName, RenditionName, u64, u32),
) -> Result<Response, BroadcastError> {
    let headers = &parts.headers;
    let meta = PartHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))?
        .meta(stream, rendition, sequence, index);
    take(edge, headers, body, meta, None).await
}

/// Takes pushed bytes described by `claim`: the cap, whether the node takes them now,
/// the body hashed as it streams in, then into their gate (202: held until a verified
/// statement agrees), with the statement that came along, if any.
async fn take<C: Pushable>(
    edge: &Edge,
    headers: &HeaderMap,
    body: Body,
    claim: C,
    signed: Option<(Bytes, SignedMedia, MediaStatement)>,
) -> Result<Response, BroadcastError> {
    let limit = edge.config.max_segment_bytes;
    let declared = declared_length(headers, limit)?;
    edge.check_push(&claim)?;
    let (bytes, digest) = read_hashed(body, limit, declared).await?;
    tracing::debug!(
        stream = %claim.stream(),
        rendition = %claim.rendition(),
        at = ?claim.key(),
        len = bytes.len(),
        "pushed"
    );
    edge.offer_bytes(claim, bytes, digest);
    if let Some((envelope, signed, statement)) = signed {
        edge.offer_statement(envelope, signed, statement).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The body, at most `limit` bytes, and its SHA-256, hashed while it streams in.
async fn read_hashed(
    body: Body,
    limit: usize,
    declared: Option<usize>,
) -> Result<(Bytes, [u8; 32]), BroadcastError> {
    let mut hasher = Sha256::new();
    let bytes = read_capped(body, limit, declared, |chunk| hasher.update(chunk)).await?;
    Ok((bytes, hasher.finalize().into()))
}

/// The signed statement of a catch-up push: hex of `SignedMedia::encode`, for exactly
/// the pushed segment. Verified later exactly like one that came over MQTT.
fn statement_header(
    value: &[u8],
    meta: &domain::SegmentMeta,
) -> Result<(Bytes, SignedMedia, MediaStatement), BroadcastError> {
    let bad = || BroadcastError::BadHeader(STATEMENT_HEADER);
    let bytes = hex::decode(value).map_err(|_| bad())?;
    let signed = SignedMedia::decode(&bytes).map_err(|_| bad())?;
    let statement = signed.segment().map_err(|_| bad())?;
    if statement.stream != meta.stream
        || statement.rendition != meta.rendition
        || statement.sequence != meta.sequence
    {
        return Err(bad());
    }
    Ok((
        Bytes::from(bytes),
        signed,
        MediaStatement::Segment(statement),
    ))
}

/// A pushed thumbnail: its statement (required, in the statement header) decoded and the
/// declared length checked before a byte of the body is read, the body capped at
/// [`MAX_THUMBNAIL_BYTES`] and hashed as it streams in, then verified and kept (204) or
/// refused (403). A thumbnail of another session, or not newer, is taken and dropped
/// (204: nothing to retry).
async fn thumbnail(
    edge: &Edge,
    headers: &HeaderMap,
    body: Body,
    stream: &StreamName,
) -> Result<Response, BroadcastError> {
    let value = headers
        .get(STATEMENT_HEADER)
        .ok_or_else(|| edge.thumbnail_refused("malformed"))?;
    let signed = super::thumbnail::statement_header(value.as_bytes(), stream)
        .map_err(|reason| edge.thumbnail_refused(reason))?;
    let declared = declared_length(headers, MAX_THUMBNAIL_BYTES)?;
    edge.node().check_stream(stream)?;
    let (bytes, digest) = read_hashed(body, MAX_THUMBNAIL_BYTES, declared).await?;
    edge.take_thumbnail(signed, bytes, digest).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn event(edge: &Edge, headers: &HeaderMap, body: Body) -> Result<Response, BroadcastError> {
    let declared = declared_length(headers, MAX_SIGNED_EVENT_LEN)?;
    let bytes = read_capped(body, MAX_SIGNED_EVENT_LEN, declared, |_| {}).await?;
    let event = edge.verify_event(&bytes).await?;
    match event {
        ControlEvent::Synced { ingest } => {
            tracing::info!(%ingest, "ingest finished sending its window");
            edge.readiness.lock().synced(ingest);
        }
        other => {
            if let Some(live) = other.into_live() {
                // The envelope goes with it: a rendition description's is `init.mp4.sig`.
                edge.control(live, bytes)?;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The declared `Content-Length`, refused at once if over `limit`.
fn declared_length(headers: &HeaderMap, limit: usize) -> Result<Option<usize>, BroadcastError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    let declared = value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(BroadcastError::BadHeader("content-length"))?;
    match usize::try_from(declared) {
        Ok(n) if n <= limit => Ok(Some(n)),
        _ => Err(BroadcastError::TooLarge { limit }),
    }
}

/// Reads `body` chunk by chunk, handing each chunk to `each` as it arrives; fails with
/// `TooLarge` as soon as more than `limit` bytes came, having buffered at most `limit`.
async fn read_capped(
    mut body: Body,
    limit: usize,
    declared: Option<usize>,
    mut each: impl FnMut(&[u8]),
) -> Result<Bytes, BroadcastError> {
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(chunk) = frame.map_err(BroadcastError::Body)?.into_data() else {
            continue; // trailers
        };
        if chunk.len() > limit - buffer.len() {
            return Err(BroadcastError::TooLarge { limit });
        }
        each(&chunk);
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_and_hashes_up_to_the_cap() {
        let mut seen = 0;
        let bytes = read_capped(Body::from("abcdef"), 6, None, |c| seen += c.len())
            .await
            .expect("fits");
        assert_eq!((&bytes[..], seen), (&b"abcdef"[..], 6));
        let over = read_capped(Body::from("abcdefg"), 6, None, |_| {}).await;
        assert!(matches!(over, Err(BroadcastError::TooLarge { limit: 6 })));
        // (Bodies of many chunks are exercised over a real socket in tests/broadcast/intake.rs.)
    }

    #[test]
    fn declared_lengths_over_the_cap_are_refused_at_once() {
        let mut h = HeaderMap::new();
        assert_eq!(declared_length(&h, 10).ok(), Some(None));
        h.insert(header::CONTENT_LENGTH, "10".parse().expect("value"));
        assert_eq!(declared_length(&h, 10).ok(), Some(Some(10)));
        h.insert(header::CONTENT_LENGTH, "11".parse().expect("value"));
        assert!(matches!(
            declared_length(&h, 10),
            Err(BroadcastError::TooLarge { limit: 10 })
        ));
    }
}

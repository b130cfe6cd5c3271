//! The WHIP HTTP resource (RFC 9725) of an ingest: an axum [`Router`] (tested with
//! `oneshot`, served by `super::http`).
//!
//! | request | answer |
//! |---|---|
//! | `POST /whip/{stream}`, `Content-Type: application/sdp`, `Authorization: Bearer KEY` | `201 Created`: the SDP answer, `Location: /whip/{stream}/{node}/{session}`, `ETag` |
//! | `DELETE /whip/{stream}/{node}/{session}`, the same Bearer key | `200 OK`: the session ends, the stream ends at once (as an RTMP unpublish) |
//! | `PATCH` on either (trickle ICE, ICE restart) | `405`: the ingest is ICE-lite, its candidates (UDP, and ICE-TCP's passive one unless turned off) are in the answer |
//! | `OPTIONS` on either | `204` with `Allow` (and `Accept-Post: application/sdp`) |
//! | `GET /healthz` | `200 ok` (the load balancer's check) |
//!
//! Refusals, in the order they are checked, so that a stranger costs as little as it can
//! and holds nothing: `415` (not `application/sdp`), `401` (no Bearer token; with
//! `WWW-Authenticate`), `429` (too many wrong keys from this client lately), `503` (at a
//! session cap; with `Retry-After`, before the catalog is asked; nothing is held), `429`
//! (more than [`MAX_OFFERS_PER_CLIENT`] offers in flight from this client), `408` (the
//! offer did not arrive within [`OFFER_TIMEOUT`]), `413`/`400` (the offer too large or
//! malformed), `422` (no H.264 video to take), `403` (the key is unknown or another
//! stream's — one catalog lookup, what a wrong RTMP key costs; a key of stream A posted to
//! `/whip/B` never takes A over), `503` (the catalog did not answer). Only then is a
//! session place reserved (`503` if the caps filled meanwhile): a POST with a wrong key
//! or a body that never comes holds no place. A client is an IPv4 address or an IPv6 /64
//! ([`ClientGroup`]), the address the load balancer forwarded for. Every
//! error body is short JSON; the key is never logged, echoed or put in a URL.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use domain::paths::{PublicPath, WhipSessionId};
use domain::{ClientGroup, NodeId, StreamName};
use intake::webrtc::sdp::{self, OfferRefusal, MAX_OFFER_BYTES};
use rand_core::{OsRng, RngCore};
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::net::TcpType;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::{Command, NewSession, SessionHandle, Table};
use super::table::{Full, Ticket};
use crate::registry::{Admit, NotAdmitted, Protocol, Publish, Registry, StreamKey};

/// `Retry-After` of a 503: a session ends within its idle timeout.
const RETRY_AFTER: HeaderValue = HeaderValue::from_static("5");
const SDP: HeaderValue = HeaderValue::from_static("application/sdp");
const ALLOW_ENDPOINT: HeaderValue = HeaderValue::from_static("POST, OPTIONS");
const ALLOW_SESSION: HeaderValue = HeaderValue::from_static("DELETE, OPTIONS");
/// How long the offer's body may take once its header arrived: an offer is a few KiB
/// that a publisher sends at once, and a POST whose body never comes is answered `408`.
pub(crate) const OFFER_TIMEOUT: Duration = Duration::from_secs(5);
/// Offers being read or checked at once from one client (an IPv4 address, an IPv6 /64):
/// past it, `429` at once.
pub(crate) const MAX_OFFERS_PER_CLIENT: usize = 8;

/// The client address of a connection (its TCP peer), put on every request by the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// What every WHIP request shares.
pub(crate) struct Whip {
    pub(crate) registry: Arc<Registry>,
    pub(crate) table: Table,
    pub(crate) driver: mpsc::Sender<Command>,
    /// This ingest, named in every session's URL so the load balancer routes it back here.
    pub(crate) node: NodeId,
    /// The ICE candidate every answer lists.
    pub(crate) advertised: SocketAddr,
    pub(crate) provider: Arc<CryptoProvider>,
    /// One DTLS certificate for every session (generated at start: an EC key per POST
    /// would be a CPU lever for strangers); its fingerprint is in every answer.
    pub(crate) certificate: DtlsCert,
    /// Every session's owner task, joined on shutdown.
    pub(crate) owners: TaskTracker,
    /// The server's shutdown: every session ends cleanly on it.
    pub(crate) stop: CancellationToken,
    /// Offers in flight per client, before their key checked out.
    pub(crate) offering: Offering,
    /// Answers list an ICE-TCP candidate (passive) beside the UDP one.
    pub(crate) ice_tcp: bool,
}

impl std::fmt::Debug for Whip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whip")
            .field("node", &self.node)
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

/// The WHIP routes.
pub(crate) fn router(whip: Arc<Whip>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/whip/{*rest}", any(dispatch))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "not found") })
        .with_state(whip)
}

/// A refusal: status and a short JSON body.
fn refuse(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn with_header(mut response: Response, name: header::HeaderName, value: HeaderValue) -> Response {
    response.headers_mut().insert(name, value);
    response
}

async fn dispatch(State(whip): State<Arc<Whip>>, request: Request) -> Response {
    let path = PublicPath::parse(request.uri().path());
    let method = request.method().clone();
    match (path, method) {
        (Some(PublicPath::WhipEndpoint(stream)), Method::POST) => {
            let peer = request.extensions().get::<Peer>().map(|p| p.0);
            post(&whip, stream, peer, request).await
        }
        (Some(PublicPath::WhipSession(stream, node, id)), Method::DELETE) => {
            delete(&whip, &stream, &node, id, request.headers()).await
        }
        (Some(PublicPath::WhipEndpoint(_)), Method::OPTIONS) => {
            let response = with_header(
                StatusCode::NO_CONTENT.into_response(),
                header::ALLOW,
                ALLOW_ENDPOINT,
            );
            with_header(
                response,
                header::HeaderName::from_static("accept-post"),
                SDP,
            )
        }
        (Some(PublicPath::WhipSession(..)), Method::OPTIONS) => with_header(
            StatusCode::NO_CONTENT.into_response(),
            header::ALLOW,
            ALLOW_SESSION,
        ),
        (Some(PublicPath::WhipEndpoint(_)), _) => with_header(
            refuse(StatusCode::METHOD_NOT_ALLOWED, "POST an SDP offer here"),
            header::ALLOW,
            ALLOW_ENDPOINT,
        ),
        (Some(PublicPath::WhipSession(..)), _) => with_header(
            refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "this ingest is ICE-lite: no trickle ICE or ICE restart; DELETE ends the session",
            ),
            header::ALLOW,
            ALLOW_SESSION,
        ),
        _ => refuse(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The Bearer token of `Authorization`, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A refusal the client may try again after [`RETRY_AFTER`].
fn retry_later(status: StatusCode, message: &'static str) -> Response {
    with_header(refuse(status, message), header::RETRY_AFTER, RETRY_AFTER)
}

fn held_back() -> Response {
    retry_later(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong stream keys from this address; retry later",
    )
}

fn unauthorized() -> Response {
    with_header(
        refuse(
            StatusCode::UNAUTHORIZED,
            "send the stream key as a Bearer token",
        ),
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sealcast\""),
    )
}

fn is_sdp(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"))
}

/// The publisher's address: what the load balancer says it forwarded for (it sets the
/// header itself, replacing any the client sent; this port is the cluster's, not the
/// public's), else the connection's peer.
fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .or(peer.map(|p| p.ip()))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The 503 of a session cap, counted as `whip_over_session_cap`.
fn over_cap(metrics: &crate::IngestMetrics, ip: IpAddr, full: Full) -> Response {
    metrics.publish("whip_over_session_cap");
    tracing::warn!(%ip, ?full, "WHIP publish refused: at a WebRTC session cap");
    let message = match full {
        Full::Global => "this ingest takes no more WebRTC sessions now",
        Full::PerIp => "too many WebRTC sessions from this address",
    };
    retry_later(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// The offers being read and checked now (before a key is known good), per client: a
/// client past [`MAX_OFFERS_PER_CLIENT`] is answered at once, so that one address cannot
/// hold the listener's connections with bodies that never come.
#[derive(Debug, Default)]
pub(crate) struct Offering(parking_lot::Mutex<HashMap<ClientGroup, usize>>);

impl Offering {
    /// One more offer from `client`, counted until the guard drops; `None` at the cap.
    fn enter(&self, client: ClientGroup) -> Option<OfferGuard<'_>> {
        let mut counts = self.0.lock();
        let count = counts.entry(client).or_insert(0);
        if *count >= MAX_OFFERS_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(OfferGuard {
            offering: self,
            client,
        })
    }
}

/// An offer being read or checked, counted in [`Offering`] while it lives.
struct OfferGuard<'a> {
    offering: &'a Offering,
    client: ClientGroup,
}

impl Drop for OfferGuard<'_> {
    fn drop(&mut self) {
        let mut counts = self.offering.0.lock();
        if let Some(count) = counts.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// A reserved place in the table, given back unless the session opened.
struct Reservation<'a> {
    table: &'a Table,
    ticket: Option<Ticket>,
}

impl Reservation<'_> {
    fn take(mut self) -> Option<Ticket> {
        self.ticket.take()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.table.lock().cancel(ticket);
        }
    }
}

/// Random printable ICE credentials (RFC 8839: ufrag 4+, password 22+ ice-chars) and a
/// session id, from the operating system's generator.
fn credentials() -> (IceCreds, WhipSessionId) {
    let mut bytes = [0u8; 8 + 16 + 16];
    OsRng.fill_bytes(&mut bytes);
    let ufrag = hex::encode(&bytes[..8]);
    let pass = hex::encode(&bytes[8..24]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[24..]);
    (
        IceCreds { ufrag, pass },
        WhipSessionId(u128::from_be_bytes(id)),
    )
}

/// `POST /whip/{stream}`.
async fn post(
    whip: &Whip,
    stream: StreamName,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    let metrics = whip.registry.metrics().clone();
    let headers = request.headers().clone();
    if !is_sdp(&headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the offer as Content-Type: application/sdp",
        );
    }
    let Some(key) = bearer(&headers).map(StreamKey::new) else {
        metrics.publish("whip_no_key");
        return unauthorized();
    };
    let ip = client_ip(&headers, peer);
    // Before the admission below asks too: a client held back costs no offer read.
    if whip.registry.held_back(ip).is_some() {
        tracing::debug!(%ip, "WHIP publish refused: too many wrong keys lately");
        return held_back();
    }
    // A look at the caps, holding nothing: at a cap a stranger costs no catalog lookup.
    let checked = whip.table.lock().check(ip);
    if let Err(full) = checked {
        return over_cap(&metrics, ip, full);
    }
    // The offer and the key are checked before any place is held: a POST whose key is
    // wrong, or whose body never comes, holds no session place (issue 45 item 5).
    let Some(offering) = whip.offering.enter(ClientGroup::of(ip)) else {
        metrics.publish("whip_offers_in_flight");
        tracing::debug!(%ip, "WHIP publish refused: too many offers in flight from this client");
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "too many offers in flight from this address",
        );
    };
    let body = match tokio::time::timeout(
        OFFER_TIMEOUT,
        to_bytes(request.into_body(), MAX_OFFER_BYTES),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the offer is larger than 32 KiB",
            )
        }
        Err(_) => {
            metrics.publish("whip_slow_offer");
            tracing::debug!(%ip, "WHIP publish refused: the offer did not arrive in time");
            return refuse(StatusCode::REQUEST_TIMEOUT, "send the whole offer at once");
        }
    };
    match sdp::summarize(&body) {
        Ok(summary) if summary.h264 => {}
        Ok(_) => {
            metrics.publish("whip_unsupported_codec");
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "offer H.264 video (packetization-mode=1), and Opus audio if any",
            );
        }
        Err(OfferRefusal::Malformed(why)) => {
            metrics.publish("whip_bad_offer");
            return refuse(StatusCode::BAD_REQUEST, why);
        }
    }
    // RTMP's and SRT's admission (logged and counted there), for the stream the URL names;
    // the publish starts (taking the stream over) once the offer is answered.
    let admitted = whip
        .registry
        .admit(Admit {
            protocol: Protocol::Whip,
            key: &key,
            client: ip,
            stream: Some(&stream),
        })
        .await;
    let admission = match admitted {
        Ok(admission) => admission,
        Err(NotAdmitted::HeldBack { .. }) => return held_back(),
        Err(NotAdmitted::WrongKey) => {
            return refuse(StatusCode::FORBIDDEN, "wrong stream key for this stream")
        }
        Err(NotAdmitted::HookRefused(_)) => {
            return refuse(StatusCode::FORBIDDEN, "publish refused")
        }
        Err(NotAdmitted::Full { .. }) => {
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "this ingest publishes its maximum of streams; retry later",
            );
        }
        Err(NotAdmitted::Catalog(e)) => {
            tracing::warn!(error = %e, "WHIP publish refused: the catalog did not answer");
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "the catalog did not answer",
            );
        }
    };
    drop(offering);
    let reserved = whip.table.lock().reserve(ip);
    let reservation = match reserved {
        Ok(ticket) => Reservation {
            table: &whip.table,
            ticket: Some(ticket),
        },
        Err(full) => return over_cap(&metrics, ip, full),
    };
    // The text is UTF-8: summarize read it.
    let offer = String::from_utf8_lossy(&body);
    let (credentials, id) = credentials();
    let ufrag = credentials.ufrag.clone();
    let (rtc, answer) = match whip.answer(&offer, credentials) {
        Ok(answered) => answered,
        Err(status) => {
            metrics.publish("whip_bad_offer");
            return match status {
                StatusCode::UNPROCESSABLE_ENTITY => refuse(
                    status,
                    "no H.264 video could be agreed on: offer packetization-mode=1",
                ),
                _ => refuse(StatusCode::BAD_REQUEST, "the offer could not be answered"),
            };
        }
    };
    let publish = match whip.registry.start_publish(admission).await {
        Ok(publish) => publish,
        Err(e) => {
            tracing::warn!(stream = %stream, error = %e, "WHIP publish failed to start");
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "the stream could not be started",
            );
        }
    };
    let handle = SessionHandle {
        stream: stream.clone(),
        dropped: CancellationToken::new(),
        deleted: CancellationToken::new(),
    };
    let Some(ticket) = reservation.take() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "the session was lost");
    };
    let opened = whip
        .table
        .lock()
        .open(ticket, id, ufrag.clone(), Instant::now(), handle.clone());
    if opened.is_err() {
        whip.registry.end_publish(publish, true).await;
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "session ids collided");
    }
    let new = NewSession {
        id,
        rtc,
        stream: stream.clone(),
        input: publish.sender(),
        segment_target: whip.registry.ladder().segment_target,
    };
    if whip.driver.send(Command::Add(Box::new(new))).await.is_err() {
        whip.table.lock().remove(id);
        whip.registry.end_publish(publish, true).await;
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the ingest is stopping");
    }
    metrics.publish("accepted");
    tracing::info!(%ip, stream = %stream, session = %publish.session(), "WHIP publish accepted");
    whip.owners.spawn(own(
        publish,
        handle,
        id,
        whip.driver.clone(),
        Arc::clone(&whip.registry),
        whip.stop.clone(),
    ));
    let location = PublicPath::WhipSession(stream, whip.node.clone(), id).to_string();
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, SDP);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(location) = HeaderValue::try_from(location) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(etag) = HeaderValue::try_from(format!("\"{ufrag}\"")) {
        headers.insert(header::ETAG, etag);
    }
    response
}

impl Whip {
    /// A session for `offer`: its `Rtc` (ICE-lite, the shared certificate, H.264 and Opus
    /// only, our candidates: UDP, and TCP passive when ICE-TCP is on) and the answer; `Err` with the status to refuse with.
    fn answer(&self, offer: &str, credentials: IceCreds) -> Result<(Rtc, String), StatusCode> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|_| StatusCode::BAD_REQUEST)?;
        // str0m 0.24 panics on some offers (fixed in 0.25): such an offer is a 400.
        let answered = catch_unwind(AssertUnwindSafe(|| {
            let mut rtc = RtcConfig::new()
                .set_ice_lite(true)
                .set_crypto_provider(Arc::clone(&self.provider))
                .set_dtls_cert(self.certificate.clone())
                .set_local_ice_credentials(credentials)
                .clear_codecs()
                .enable_h264(true)
                .enable_opus(true, false)
                .build(Instant::now());
            let candidate = Candidate::host(self.advertised, "udp").ok()?;
            rtc.add_local_candidate(candidate)?;
            if self.ice_tcp {
                let tcp = Candidate::builder()
                    .tcp()
                    .host(self.advertised)
                    .tcptype(TcpType::Passive)
                    .build()
                    .ok()?;
                rtc.add_local_candidate(tcp)?;
            }
            let answer = rtc.sdp_api().accept_offer(offer).ok()?;
            Some((rtc, answer.to_sdp_string()))
        }));
        let (rtc, answer) = answered.ok().flatten().ok_or(StatusCode::BAD_REQUEST)?;
        match sdp::summarize(answer.as_bytes()) {
            Ok(summary) if summary.h264 => Ok((rtc, answer)),
            _ => Err(StatusCode::UNPROCESSABLE_ENTITY),
        }
    }
}

/// `DELETE /whip/{stream}/{node}/{session}`.
async fn delete(
    whip: &Whip,
    stream: &StreamName,
    node: &NodeId,
    id: WhipSessionId,
    headers: &HeaderMap,
) -> Response {
    if node != &whip.node {
        return refuse(StatusCode::NOT_FOUND, "no such session here");
    }
    let Some(key) = bearer(headers) else {
        return unauthorized();
    };
    let handle = whip.table.lock().get(id).cloned();
    // A session already deleted is gone at once, though its owner may still be ending it.
    let Some(handle) = handle.filter(|h| &h.stream == stream && !h.deleted.is_cancelled()) else {
        return refuse(StatusCode::NOT_FOUND, "no such session");
    };
    let key = StreamKey::new(key);
    match whip.registry.key_publishes(&key, stream).await {
        Ok(true) => {
            handle.deleted.cancel();
            StatusCode::OK.into_response()
        }
        Ok(false) => refuse(StatusCode::FORBIDDEN, "wrong stream key for this stream"),
        Err(_) => retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "the catalog did not answer",
        ),
    }
}

/// Owns one session's publish until it ends — deleted, taken over, ended by an operator,
/// dropped by the driver, or the server's shutdown — then has the driver forget the
/// session and the registry end the publish: at once after a DELETE, an operator's end or
/// a shutdown (as an RTMP unpublish), after the grace period when the peer just went away.
async fn own(
    publish: Publish,
    handle: SessionHandle,
    id: WhipSessionId,
    driver: mpsc::Sender<Command>,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    let clean = tokio::select! {
        () = handle.deleted.cancelled() => true,
        () = stop.cancelled() => true,
        () = publish.ended_by_operator() => true,
        () = publish.taken_over() => {
            tracing::info!(stream = %handle.stream, "a new publisher with the same key took over this WHIP stream");
            false
        }
        () = handle.dropped.cancelled() => false,
    };
    let _ = driver.send(Command::Remove(id)).await;
    registry.end_publish(publish, clean).await;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use async_trait::async_trait;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use domain::Ladder;
    use tower::ServiceExt;

    use super::*;
    use crate::authority::{AuthorityError, Numbering, StreamAuthority};
    use crate::registry::IngestSettings;
    use crate::webrtc::table::{Limits, SessionTable};
    use crate::IngestMetrics;

    /// Keys to streams, nothing else.
    #[derive(Debug)]
    struct Keys(HashMap<&'static str, &'static str>);

    #[async_trait]
    impl StreamAuthority for Keys {
        async fn authenticate(&self, key: &str) -> Result<Option<StreamName>, AuthorityError> {
            Ok(self.0.get(key).map(|s| StreamName::new(*s)).transpose()?)
        }
        async fn begin_numbering(&self, _: &StreamName) -> Result<Numbering, AuthorityError> {
            Ok(Numbering {
                first_sequence: 0,
                discontinuity_sequence: 0,
                discontinuity: false,
            })
        }
        async fn mark_live(&self, _: &StreamName, _: i64) -> Result<(), AuthorityError> {
            Ok(())
        }
        async fn advance_sequence(&self, _: &StreamName, _: u64) -> Result<(), AuthorityError> {
            Ok(())
        }
    }

    /// FFmpeg 9's WHIP offer, audio and video, as it sent one.
    fn offer() -> String {
        let fingerprint = (0..32)
            .map(|i| format!("{i:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        [
            "v=0",
            "o=FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1",
            "s=FFmpegPublishSession",
            "t=0 0",
            "a=group:BUNDLE 0 1",
            "a=extmap-allow-mixed",
            "a=msid-semantic: WMS",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "c=IN IP4 0.0.0.0",
            "a=ice-ufrag:36c740b1",
            "a=ice-pwd:a6a2cf52cd7521748535cf92255a14ef",
            &format!("a=fingerprint:sha-256 {fingerprint}"),
            "a=setup:passive",
            "a=mid:0",
            "a=sendonly",
            "a=msid:FFmpeg audio",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "a=ssrc:442299852 cname:FFmpeg",
            "a=ssrc:442299852 msid:FFmpeg audio",
            "m=video 9 UDP/TLS/RTP/SAVPF 106",
            "c=IN IP4 0.0.0.0",
            "a=ice-ufrag:36c740b1",
            "a=ice-pwd:a6a2cf52cd7521748535cf92255a14ef",
            &format!("a=fingerprint:sha-256 {fingerprint}"),
            "a=setup:passive",
            "a=mid:1",
            "a=sendonly",
            "a=msid:FFmpeg video",
            "a=rtcp-mux",
            "a=rtcp-rsize",
            "a=rtpmap:106 H264/90000",
            "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "a=ssrc:1234 cname:FFmpeg",
            "a=ssrc:1234 msid:FFmpeg video",
            "",
        ]
        .join("\r\n")
    }

    struct Fixture {
        app: Router,
        whip: Arc<Whip>,
        commands: mpsc::Receiver<Command>,
    }

    fn fixture(max_sessions: usize) -> Fixture {
        fixture_capped(max_sessions, None)
    }

    fn fixture_capped(max_sessions: usize, max_streams: Option<usize>) -> Fixture {
        let (events, _) = mpsc::channel(16);
        let settings = IngestSettings {
            app: "live".into(),
            ladder: Arc::new(Ladder::default()),
            encoder_threads: 1,
            end_grace: Duration::ZERO,
            max_connections: 8,
            max_streams,
            provenance: None,
        };
        let keys = Keys(HashMap::from([("key-a", "a"), ("key-b", "b")]));
        let registry = Registry::new(settings, Arc::new(keys), events, IngestMetrics::default());
        let (driver, commands) = mpsc::channel(16);
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        let certificate = provider
            .dtls_provider
            .generate_certificate()
            .expect("a DTLS certificate");
        let limits = Limits {
            max_sessions,
            max_per_ip: max_sessions,
            setup_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_addresses: 4,
        };
        let whip = Arc::new(Whip {
            registry,
            table: Arc::new(parking_lot::Mutex::new(SessionTable::new(limits))),
            driver,
            node: NodeId::new("ingest7").expect("valid"),
            advertised: "127.0.0.1:8189".parse().expect("address"),
            provider,
            certificate,
            owners: TaskTracker::new(),
            stop: CancellationToken::new(),
            offering: Offering::default(),
            ice_tcp: true,
        });
        Fixture {
            app: router(Arc::clone(&whip)),
            whip,
            commands,
        }
    }

    fn post(path: &str, content_type: &str, key: Option<&str>, body: String) -> HttpRequest<Body> {
        let mut request = HttpRequest::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        request.body(Body::from(body)).expect("request")
    }

    /// A whole, valid offer for `stream` with `key`, answered.
    async fn offer_to(app: &Router, stream: &str, key: &str) -> (StatusCode, HeaderMap, String) {
        let path = format!("/whip/{stream}");
        status(app, post(&path, "application/sdp", Some(key), offer())).await
    }

    async fn status(app: &Router, request: HttpRequest<Body>) -> (StatusCode, HeaderMap, String) {
        let response = app.clone().oneshot(request).await.expect("answered");
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, 1 << 20).await.expect("body");
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// A body that sends `first`, says so on `polled`, then never sends the rest: a slow
    /// POST, which the handler is reading once `polled` fired.
    fn stalled(first: String, polled: tokio::sync::oneshot::Sender<()>) -> Body {
        let mut polled = Some(polled);
        let mut first = Some(bytes::Bytes::from(first));
        Body::from_stream(futures::stream::poll_fn(move |_| {
            if let Some(tx) = polled.take() {
                let _ = tx.send(());
            }
            match first.take() {
                Some(chunk) => std::task::Poll::Ready(Some(Ok::<_, std::io::Error>(chunk))),
                None => std::task::Poll::Pending,
            }
        }))
    }

    /// A POST from `client` with `key` whose offer stops halfway; returns once the handler
    /// is reading it, with the task that waits for its answer.
    async fn slow_post(
        app: &Router,
        client: &str,
        key: &str,
    ) -> tokio::task::JoinHandle<StatusCode> {
        let half = offer()[..200].to_owned();
        let (tx, polled) = tokio::sync::oneshot::channel();
        let request = HttpRequest::post("/whip/a")
            .header(header::CONTENT_TYPE, "application/sdp")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header("x-forwarded-for", client)
            .body(stalled(half, tx))
            .expect("request");
        let app = app.clone();
        let task = tokio::spawn(async move {
            match app.oneshot(request).await {
                Ok(response) => response.status(),
                Err(never) => match never {},
            }
        });
        polled.await.expect("the handler reads the body");
        task
    }

    /// Issue 45 item 5: POSTs with a wrong key whose offers never finish, from many
    /// addresses, hold no session place: a keyed publish is answered while they wait (on
    /// the old code each had reserved a place before its body was read, and the keyed
    /// publish got 503).
    #[tokio::test]
    async fn slow_posts_with_wrong_keys_hold_no_place() {
        let mut f = fixture(2);
        let mut slow = Vec::new();
        for n in 1..=2 {
            slow.push(slow_post(&f.app, &format!("192.0.2.{n}"), "sk_wrong").await);
        }
        let (got, _, answer) = offer_to(&f.app, "a", "key-a").await;
        assert_eq!(got, StatusCode::CREATED, "{answer}");
        assert!(matches!(f.commands.recv().await, Some(Command::Add(_))));
        assert!(slow.iter().all(|t| !t.is_finished()));
        for task in slow {
            task.abort();
        }
    }

    /// Issue 45 item 5: an offer that does not arrive within the deadline is answered 408
    /// (the old code waited for the connection's 60 s lifetime, holding a place).
    #[tokio::test(start_paused = true)]
    async fn an_offer_that_never_arrives_is_answered_408() {
        let f = fixture(1);
        let slow = slow_post(&f.app, "192.0.2.1", "key-a").await;
        let started = tokio::time::Instant::now();
        assert_eq!(slow.await.ok(), Some(StatusCode::REQUEST_TIMEOUT));
        assert_eq!(started.elapsed(), OFFER_TIMEOUT);
    }

    /// Issue 45 item 5: offers in flight are capped per client, and an IPv6 client is its
    /// /64: the addresses of one /64 share the cap, another /64 is not held back.
    #[tokio::test]
    async fn offers_in_flight_are_capped_per_64() {
        let f = fixture(4);
        let mut slow = Vec::new();
        for n in 1..=MAX_OFFERS_PER_CLIENT {
            let client = format!("2001:db8:0:1::{n:x}");
            slow.push(slow_post(&f.app, &client, "sk_wrong").await);
        }
        let from = |client: &str| {
            let mut request = post("/whip/a", "application/sdp", Some("sk_wrong"), offer());
            request.headers_mut().insert(
                "x-forwarded-for",
                HeaderValue::from_str(client).expect("header"),
            );
            request
        };
        let (got, headers, _) = status(&f.app, from("2001:db8:0:1:ffff::9")).await;
        assert_eq!(got, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key(header::RETRY_AFTER));
        let (got, _, _) = status(&f.app, from("2001:db8:0:2::1")).await;
        assert_eq!(got, StatusCode::FORBIDDEN);
        // Once they are answered, the /64 may offer again.
        for task in slow {
            task.abort();
            let _ = task.await;
        }
        let (got, _, _) = status(&f.app, from("2001:db8:0:1::1")).await;
        assert_eq!(got, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn refusals_in_rfc_9725_terms() {
        let f = fixture(4);
        let cases = [
            (
                post("/whip/a", "text/plain", Some("key-a"), offer()),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                post("/whip/a", "application/sdp", None, offer()),
                StatusCode::UNAUTHORIZED,
            ),
            (
                post("/whip/a", "application/sdp", Some("key-a"), "hello".into()),
                StatusCode::BAD_REQUEST,
            ),
            (
                post(
                    "/whip/a",
                    "application/sdp",
                    Some("key-a"),
                    offer().replace("H264/90000", "VP8/90000"),
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                post("/whip/a", "application/sdp", Some("nope"), offer()),
                StatusCode::FORBIDDEN,
            ),
            (
                post("/whip/a", "application/sdp", Some("key-b"), offer()),
                StatusCode::FORBIDDEN,
            ),
            (
                post("/whip/a/b", "application/sdp", Some("key-a"), offer()),
                StatusCode::NOT_FOUND,
            ),
            (
                post("/whip/../a", "application/sdp", Some("key-a"), offer()),
                StatusCode::NOT_FOUND,
            ),
        ];
        for (request, expected) in cases {
            let what = format!("{} {}", request.method(), request.uri());
            let (got, headers, body) = status(&f.app, request).await;
            assert_eq!(got, expected, "{what}: {body}");
            assert!(!body.contains("key-"), "{what} echoed a key: {body}");
            if got == StatusCode::UNAUTHORIZED {
                assert!(headers.contains_key(header::WWW_AUTHENTICATE));
            }
        }
        // Stream b's key posted to /whip/a took nothing over, started nothing.
        assert!(f.whip.registry.live_sessions().is_empty());
        let patch = HttpRequest::patch("/whip/a/ingest7/0123456789abcdef0123456789abcdef")
            .body(Body::empty())
            .expect("request");
        let (got, headers, _) = status(&f.app, patch).await;
        assert_eq!(got, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers.get(header::ALLOW), Some(&ALLOW_SESSION));
        let options = HttpRequest::options("/whip/a")
            .body(Body::empty())
            .expect("request");
        let (got, headers, _) = status(&f.app, options).await;
        assert_eq!(got, StatusCode::NO_CONTENT);
        assert_eq!(headers.get("accept-post"), Some(&SDP));
    }

    #[tokio::test]
    async fn an_offer_past_the_stream_cap_is_answered_503_and_a_takeover_is_not() {
        let mut f = fixture_capped(4, Some(1));
        let (got, _, answer) = offer_to(&f.app, "a", "key-a").await;
        assert_eq!(got, StatusCode::CREATED, "{answer}");
        assert!(matches!(f.commands.recv().await, Some(Command::Add(_))));
        let (got, headers, body) = offer_to(&f.app, "b", "key-b").await;
        assert_eq!(got, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(headers.contains_key(header::RETRY_AFTER));
        assert!(body.contains("maximum of streams"), "{body}");
        assert!(!body.contains("key-"), "echoed a key: {body}");
        // Stream a's publisher coming back takes its stream over, full or not.
        let (got, _, answer) = offer_to(&f.app, "a", "key-a").await;
        assert_eq!(got, StatusCode::CREATED, "{answer}");
        let live = f.whip.registry.live_sessions();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].stream.as_str(), "a");
    }

    #[tokio::test]
    async fn an_offer_is_answered_and_a_delete_ends_the_session() {
        let mut f = fixture(1);
        let (got, headers, answer) = offer_to(&f.app, "a", "key-a").await;
        assert_eq!(got, StatusCode::CREATED, "{answer}");
        assert_eq!(headers.get(header::CONTENT_TYPE), Some(&SDP));
        assert!(answer.contains("a=ice-lite"), "{answer}");
        let candidate = |proto: &str, rest: &str| {
            answer.lines().any(|l| {
                l.starts_with("a=candidate:")
                    && l.to_ascii_lowercase().contains(&format!(" {proto} "))
                    && l.contains(rest)
            })
        };
        assert!(candidate("udp", "127.0.0.1 8189 typ host"), "{answer}");
        // ICE-TCP's candidate: the same address, passive (the publisher connects).
        assert!(
            candidate("tcp", "127.0.0.1 8189 typ host tcptype passive"),
            "{answer}"
        );
        assert!(answer.contains("H264/90000"), "{answer}");
        assert!(headers.contains_key(header::ETAG));
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .expect("a Location")
            .to_owned();
        let Some(PublicPath::WhipSession(stream, node, id)) = PublicPath::parse(&location) else {
            panic!("{location} is not a WHIP session path");
        };
        assert_eq!((stream.as_str(), node.as_str()), ("a", "ingest7"));
        assert!(matches!(f.commands.recv().await, Some(Command::Add(new)) if new.id == id));
        assert_eq!(f.whip.registry.live_sessions().len(), 1);

        // At the cap (one): the next offer waits.
        let (got, headers, _) = offer_to(&f.app, "a", "key-a").await;
        assert_eq!(got, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.contains_key(header::RETRY_AFTER));

        let delete = |key: &str| {
            HttpRequest::delete(&location)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::empty())
                .expect("request")
        };
        assert_eq!(
            status(&f.app, delete("key-b")).await.0,
            StatusCode::FORBIDDEN
        );
        let elsewhere = location.replace("ingest7", "ingest8");
        let misrouted = HttpRequest::delete(&elsewhere)
            .header(header::AUTHORIZATION, "Bearer key-a")
            .body(Body::empty())
            .expect("request");
        assert_eq!(status(&f.app, misrouted).await.0, StatusCode::NOT_FOUND);
        assert_eq!(status(&f.app, delete("key-a")).await.0, StatusCode::OK);
        // The owner has the driver forget it, and the stream ends.
        assert!(matches!(f.commands.recv().await, Some(Command::Remove(gone)) if gone == id));
        f.whip.owners.close();
        f.whip.owners.wait().await;
        assert!(f.whip.registry.live_sessions().is_empty());
    }
}

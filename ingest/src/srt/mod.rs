//! SRT ingest: callers publish MPEG-TS over SRT (`srt://HOST:9000?streamid=KEY`) on a UDP
//! port of their own, into the same registry and pipelines as RTMP publishers.
//!
//! SRT itself is `srt-tokio` (srt-rs, pure Rust): one listener on one UDP socket
//! multiplexes every caller; the handshake is answered statelessly (SYN cookies) until a
//! caller reaches access control, where this module decides, before anything is
//! accepted (docs/architecture.md says why this implementation):
//!
//! 1. the caps (module `caps`): at most `max_sessions` sessions, `max_sessions_per_ip` from one
//!    address, or the caller is rejected with `SRT_REJX_OVERLOAD`;
//! 2. the `streamid` (module `streamid`): `#!::r=live/KEY,m=publish`, `#!::r=KEY,m=publish` or a
//!    bare key, or `SRT_REJX_BAD_REQUEST` / `SRT_REJX_BAD_MODE`;
//! 3. encryption: with a passphrase configured a caller must encrypt with it (else
//!    `SRT_REJX_UNAUTHORIZED`, or `SRT_REJ_BADSECRET` from the handshake itself); without one a
//!    caller that encrypts is rejected the same way;
//! 4. the stream key, asked of the registry like an RTMP publish: an unknown key costs the
//!    caller `SRT_REJX_FORBIDDEN` and nothing else (no pipeline, no state kept);
//! 5. the handshake completes (with the passphrase's check); only then does the publish
//!    start, taking the stream over from a publisher already on it.
//!
//! An accepted caller's datagrams go through its adapter, [`intake::srt`] (our bounded
//! MPEG-TS demuxer; pure, so the fuzz harnesses reach it without FFmpeg), into the stream's
//! pipeline. The session ends when the caller closes (a clean
//! end: playlists end at once), goes silent for [`IDLE_TIMEOUT`] or breaks the
//! connection (an abrupt end: the registry's grace period applies), when another publisher
//! takes the stream over (on any protocol), when an operator ends it, on shutdown, or
//! after [`MAX_BAD_INPUT`] unreadable pieces in a row. Keys are never logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use intake::media::MediaInput;
use intake::srt::{SrtSettings, TsInputs};
use parking_lot::Mutex;
use srt_protocol::settings::{KeySettings, KeySize, Passphrase};
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::{ConnectionRequest, SrtListener};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::IngestError;
use crate::registry::{Admit, NotAdmitted, Protocol, Publish, Registry, StreamKey};

mod caps;
mod streamid;

use caps::{OverCap, SessionCaps};
use streamid::StreamIdRefusal;

/// A publisher silent this long is gone (SRT's own keepalives arrive every second; its
/// peer idle timeout is five).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Unreadable pieces of MPEG-TS in a row after which a session ends.
pub const MAX_BAD_INPUT: u32 = 200;
/// How long an accepted caller has to complete its handshake; its session slot is
/// released after that whatever happened (issue 45 item 17: a caller that never did held
/// its slot for ever). srt-protocol itself gives up on a caller after
/// `srt_protocol::listener::PENDING_TIMEOUT`; this is the ingest's own bound on its slot.
pub const ACCEPT_DEADLINE: Duration = Duration::from_secs(5);

/// Accepts SRT callers on `socket` until `shutdown`; every session is tracked and awaited.
pub async fn serve(
    socket: UdpSocket,
    registry: Arc<Registry>,
    settings: SrtSettings,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    settings.validate()?;
    let local = socket.local_addr()?;
    let (mut listener, mut incoming) = SrtListener::builder()
        .latency(settings.latency)
        .socket(socket)
        .bind(local)
        .await?;
    let caps = Arc::new(Mutex::new(SessionCaps::new(
        settings.max_sessions,
        settings.max_sessions_per_ip,
    )));
    let settings = Arc::new(settings);
    let sessions = TaskTracker::new();
    let result = loop {
        let request = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            request = incoming.incoming().next() => request,
        };
        let Some(request) = request else {
            // The listener's task ended without being asked to: every session is gone too.
            break Err(IngestError::PipelineStopped("the SRT listener stopped"));
        };
        let session = Session {
            registry: Arc::clone(&registry),
            caps: Arc::clone(&caps),
            settings: Arc::clone(&settings),
            shutdown: shutdown.clone(),
        };
        sessions.spawn(session.run(request));
    };
    sessions.close();
    sessions.wait().await;
    listener.close().await;
    result
}

/// What every session shares.
struct Session {
    registry: Arc<Registry>,
    caps: Arc<Mutex<SessionCaps>>,
    settings: Arc<SrtSettings>,
    shutdown: CancellationToken,
}

/// Releases a session's slot when it ends, however it ends.
struct Slot {
    caps: Arc<Mutex<SessionCaps>>,
    peer: SocketAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.lock().close(self.peer.ip());
    }
}

/// How a session ended, for the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Clean,
    Abrupt,
}

impl Session {
    async fn run(self, request: ConnectionRequest) {
        let peer = request.remote();
        match self.admit(request).await {
            Ok(()) => tracing::debug!(%peer, "SRT session closed"),
            Err(e) => tracing::warn!(%peer, error = %e, "SRT session ended with an error"),
        }
    }

    /// Access control, then the session.
    async fn admit(self, request: ConnectionRequest) -> Result<(), IngestError> {
        let peer = request.remote();
        let metrics = self.registry.metrics().clone();
        let opened = self.caps.lock().open(peer.ip());
        if let Err(over) = opened {
            metrics.publish("over_connection_cap");
            let which = match over {
                OverCap::Total => "every SRT session slot is taken",
                OverCap::PerAddress => "this address has all the SRT sessions it may have",
            };
            tracing::debug!(%peer, which, "SRT caller rejected");
            return reject(request, ServerRejectReason::Overload).await;
        }
        let _slot = Slot {
            caps: Arc::clone(&self.caps),
            peer,
        };
        let publish =
            match streamid::parse(request.stream_id().map(|s| s.as_str()), self.registry.app()) {
                Ok(publish) => publish,
                Err(refusal) => {
                    metrics.publish("bad_request");
                    tracing::warn!(%peer, %refusal, "SRT caller rejected");
                    let reason = match refusal {
                        StreamIdRefusal::BadRequest(_) => ServerRejectReason::BadRequest,
                        StreamIdRefusal::BadMode => ServerRejectReason::BadMode,
                    };
                    return reject(request, reason).await;
                }
            };
        let key_settings = match (&self.settings.passphrase, request.key_size()) {
            (None, KeySize::Unspecified) => None,
            // A caller may leave its key size unsaid (libsrt's default `pbkeylen`, which
            // FFmpeg and GStreamer keep): the handshake then takes it from the caller's key
            // material (vendor/srt-protocol/FORK.md), and refuses a caller with none
            // (`SRT_REJ_UNSECURE`) or with another passphrase (`SRT_REJ_BADSECRET`).
            (Some(passphrase), size) => Some(KeySettings {
                key_size: match size {
                    KeySize::Unspecified => KeySize::AES128,
                    size => size,
                },
                passphrase: Passphrase::try_from(passphrase.clone())
                    .map_err(|e| IngestError::Config(e.to_string()))?,
            }),
            (None, _) => {
                metrics.publish("bad_encryption");
                tracing::warn!(%peer, "SRT caller rejected: it encrypts, and this listener has no passphrase");
                return reject(request, ServerRejectReason::Unauthorized).await;
            }
        };
        // The client's strikes, the key and the operator's hook are asked first without
        // starting anything, so a caller held back, with an unknown key or refused gets its
        // rejection reason (the registry logs and counts which); the publish, which takes
        // the stream over, starts only once the handshake has also checked the passphrase:
        // a caller with the key but not the passphrase interrupts nobody.
        let key = StreamKey::new(publish.key.clone());
        let admitted = self
            .registry
            .admit(Admit {
                protocol: Protocol::Srt,
                key: &key,
                client: peer.ip(),
                stream: None,
            })
            .await;
        let admission = match admitted {
            Ok(admission) => admission,
            Err(NotAdmitted::Catalog(e)) => return Err(IngestError::Catalog(e)),
            // SRT_REJX_OVERLOAD: the caller may try again, or another ingest.
            Err(NotAdmitted::Full { .. }) => {
                return reject(request, ServerRejectReason::Overload).await
            }
            Err(
                NotAdmitted::HeldBack { .. } | NotAdmitted::WrongKey | NotAdmitted::HookRefused(_),
            ) => return reject(request, ServerRejectReason::Forbidden).await,
        };
        let socket = accept(request, key_settings).await?;
        let publish = self.registry.start_publish(admission).await?;
        tracing::info!(%peer, stream = %publish.stream(), session = %publish.session(), "SRT publish accepted");
        metrics.publish("accepted");
        let sender = publish.sender();
        let ended = self.receive(socket, &publish, sender, peer).await;
        let clean = matches!(ended, Ok(End::Clean));
        self.registry.end_publish(publish, clean).await;
        ended.map(drop)
    }

    /// The caller's MPEG-TS into the pipeline until the session ends.
    async fn receive(
        &self,
        mut socket: srt_tokio::SrtSocket,
        publish: &Publish,
        sender: mpsc::Sender<MediaInput>,
        peer: SocketAddr,
    ) -> Result<End, IngestError> {
        let mut inputs = TsInputs::new();
        let mut media = Vec::new();
        let mut bad_in_a_row = 0u32;
        loop {
            let next = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(End::Clean),
                _ = publish.taken_over() => {
                    tracing::info!(%peer, "a new publisher with the same key took over this stream");
                    return Ok(End::Abrupt);
                }
                _ = publish.ended_by_operator() => {
                    tracing::info!(%peer, "an operator ended this stream");
                    return Ok(End::Clean);
                }
                next = tokio::time::timeout(IDLE_TIMEOUT, socket.next()) => next,
            };
            let bytes = match next {
                Err(_) => return Err(IngestError::Srt("publisher went silent".into())),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(Some(Ok((_, bytes)))) => bytes,
            };
            match inputs.push(&bytes, &mut media) {
                Ok(()) => bad_in_a_row = 0,
                Err(e) => {
                    bad_in_a_row += 1;
                    if bad_in_a_row == 1 {
                        tracing::warn!(%peer, error = %e, "skipping unreadable MPEG-TS");
                    }
                    if bad_in_a_row > MAX_BAD_INPUT {
                        return Err(IngestError::Srt(format!(
                            "more than {MAX_BAD_INPUT} unreadable pieces of MPEG-TS in a row: {e}"
                        )));
                    }
                }
            }
            forward(&sender, &mut media).await?;
        }
        // The caller closed: what the demuxer still holds is complete.
        let _ = inputs.finish(&mut media);
        forward(&sender, &mut media).await?;
        Ok(End::Clean)
    }
}

/// Hands converted media to the pipeline (awaiting its room: backpressure reaches SRT's
/// receive buffer, whose latency window then drops what is too late).
async fn forward(
    sender: &mpsc::Sender<MediaInput>,
    media: &mut Vec<MediaInput>,
) -> Result<(), IngestError> {
    for input in media.drain(..) {
        sender
            .send(input)
            .await
            .map_err(|_| IngestError::PipelineStopped("the stream's pipeline stopped"))?;
    }
    Ok(())
}

/// Accepts a caller, giving it [`ACCEPT_DEADLINE`] to complete its handshake.
async fn accept(
    request: ConnectionRequest,
    key_settings: Option<KeySettings>,
) -> Result<srt_tokio::SrtSocket, IngestError> {
    tokio::time::timeout(ACCEPT_DEADLINE, request.accept(key_settings))
        .await
        .map_err(|_| IngestError::Srt("the caller did not complete its handshake in time".into()))?
        .map_err(IngestError::Io)
}

/// Rejects a caller with `reason`, sent in the handshake (the caller's libsrt reports it
/// as `SRT_REJX_…`, the reason minus 1000).
async fn reject(request: ConnectionRequest, reason: ServerRejectReason) -> Result<(), IngestError> {
    request
        .reject(RejectReason::Server(reason))
        .await
        .map_err(IngestError::Io)
}

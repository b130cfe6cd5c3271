//! The tokio driver around `rml_rtmp`'s sans-IO server session: accept, handshake,
//! `connect` to app `live`, `publish` with a stream key from the catalog, then media into a
//! [`crate::pipeline::Pipeline`].
//!
//! Everything from the socket is untrusted: a failed handshake, an unknown app, a wrong key,
//! a codec we do not take, a malformed tag — each ends in a log line (and an RTMP error
//! status where the protocol has one) for that connection only. Stream keys are never
//! logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::IngestError;
use crate::pipeline::MediaInput;
use crate::registry::{Publish, Registry};

/// Time allowed from TCP accept to an accepted publish.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher silent this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Malformed tags tolerated in a row before the connection is dropped.
const MAX_BAD_TAGS_IN_A_ROW: u32 = 50;
/// Bytes a client may send after the handshake before its publish is accepted. Real
/// clients send a few hundred (connect, createStream, publish); the bound keeps what an
/// unauthorised connection makes us hold (rml_rtmp buffers messages of up to 16 MiB) to
/// this, times the connection cap.
const SETUP_BYTES: usize = 128 * 1024;
/// RTMP connections open at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// The first pause after a failed accept (doubling up to [`MAX_ACCEPT_BACKOFF`]), so that
/// running out of file descriptors does not spin the accept loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts RTMP connections until `shutdown`; every connection is tracked and awaited.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(registry.max_connections()));
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(x) => {
                        backoff = ACCEPT_BACKOFF;
                        x
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, pause = ?backoff, "RTMP accept failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    // Closed at once: a flood of connections costs a file descriptor each
                    // for a moment, nothing more.
                    registry.metrics().publish("over_connection_cap");
                    tracing::debug!(%peer, "RTMP connection refused: at the connection cap");
                    drop(socket);
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let registry = Arc::clone(&registry);
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    let _slot = slot;
                    match connection(socket, peer, registry, shutdown).await {
                        Ok(()) => tracing::debug!(%peer, "RTMP connection closed"),
                        Err(e) => tracing::warn!(%peer, error = %e, "RTMP connection ended with an error"),
                    }
                });
            }
        }
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

struct Conn {
    socket: TcpStream,
    session: ServerSession,
}

impl Conn {
    async fn write_results(
        &mut self,
        results: Vec<ServerSessionResult>,
        events: &mut Vec<ServerSessionEvent>,
    ) -> Result<(), IngestError> {
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.socket.write_all(&packet.bytes).await?
                }
                ServerSessionResult::RaisedEvent(e) => events.push(e),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    async fn reject(
        &mut self,
        request_id: u32,
        code: &str,
        description: &str,
    ) -> Result<(), IngestError> {
        let results = self
            .session
            .reject_request(request_id, code, description)
            .map_err(|e| IngestError::Rtmp(e.to_string()))?;
        self.write_results(results, &mut Vec::new()).await?;
        let _ = self.socket.flush().await;
        Ok(())
    }
}

async fn handshake(socket: &mut TcpStream) -> Result<Vec<u8>, IngestError> {
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 8192];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(IngestError::Rtmp("peer closed during the handshake".into()));
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| IngestError::Rtmp(format!("handshake failed: {e}")))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

async fn connection(
    mut socket: TcpStream,
    peer: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let leftover = tokio::time::timeout(SETUP_TIMEOUT, handshake(&mut socket))
        .await
        .map_err(|_| IngestError::Rtmp("handshake timed out".into()))??;
    let (session, initial) = ServerSession::new(ServerSessionConfig::new())
        .map_err(|e| IngestError::Rtmp(e.to_string()))?;
    let mut conn = Conn { socket, session };
    let mut events = Vec::new();
    conn.write_results(initial, &mut events).await?;

    let mut publish: Option<Publish> = None;
    let mut sender: Option<mpsc::Sender<MediaInput>> = None;
    let mut clean_end = false;
    let mut bad_tags = 0u32;
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    let mut setup_bytes = leftover.len();
    let mut pending = leftover;
    let mut buf = vec![0u8; 64 * 1024];

    let result: Result<(), IngestError> = async {
        loop {
            if !pending.is_empty() {
                let input = std::mem::take(&mut pending);
                // A peer's bytes that rml_rtmp refuses (malformed chunks or AMF, AMF nested
                // deeper than the forked rml_amf0 allows) end this connection only.
                let results = conn.session.handle_input(&input).map_err(|e| {
                    registry.metrics().publish("protocol_error");
                    IngestError::Rtmp(format!("protocol error: {e}"))
                })?;
                conn.write_results(results, &mut events).await?;
            }
            for event in std::mem::take(&mut events) {
                match event {
                    ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                        if app_name.trim_end_matches('/') != registry.app() {
                            tracing::warn!(%peer, app = %app_name.escape_debug(), "RTMP connect to an unknown application");
                            registry.metrics().publish("bad_app");
                            conn.reject(request_id, "NetConnection.Connect.Rejected", "unknown application: publish to /live").await?;
                            return Ok(());
                        }
                        let results = conn.session.accept_request(request_id).map_err(|e| IngestError::Rtmp(e.to_string()))?;
                        conn.write_results(results, &mut events).await?;
                    }
                    ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                        if publish.is_some() {
                            conn.reject(request_id, "NetStream.Publish.BadName", "this connection is already publishing").await?;
                            continue;
                        }
                        match registry.begin_publish(&stream_key).await? {
                            None => {
                                tracing::warn!(%peer, "RTMP publish refused: unknown stream key");
                                registry.metrics().publish("bad_key");
                                conn.reject(request_id, "NetStream.Publish.Unauthorized", "unknown stream key").await?;
                                return Ok(());
                            }
                            Some(p) => {
                                tracing::info!(%peer, stream = %p.stream(), session = %p.session(), "RTMP publish accepted");
                                registry.metrics().publish("accepted");
                                sender = Some(p.sender());
                                publish = Some(p);
                                let results = conn.session.accept_request(request_id).map_err(|e| IngestError::Rtmp(e.to_string()))?;
                                conn.write_results(results, &mut events).await?;
                            }
                        }
                    }
                    ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                        if let (Some(tx), Some(fps)) = (&sender, metadata.video_frame_rate) {
                            let _ = tx.send(MediaInput::FrameRate(f64::from(fps))).await;
                        }
                    }
                    ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                        let Some(tx) = &sender else { continue };
                        match crate::rtmp_inputs::video(&data, i64::from(timestamp.value)) {
                            Ok(Some(input)) => {
                                bad_tags = 0;
                                if tx.send(input).await.is_err() {
                                    return Err(IngestError::PipelineStopped("the stream's pipeline stopped"));
                                }
                            }
                            Ok(None) => {}
                            Err(e @ IngestError::UnsupportedCodec { .. }) => return Err(e),
                            Err(e) => {
                                bad_tags += 1;
                                if bad_tags == 1 {
                                    tracing::warn!(%peer, error = %e, "dropping a malformed video tag");
                                }
                                if bad_tags > MAX_BAD_TAGS_IN_A_ROW {
                                    return Err(e);
                                }
                            }
                        }
                    }
                    ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                        let Some(tx) = &sender else { continue };
                        match crate::rtmp_inputs::audio(&data, i64::from(timestamp.value)) {
                            Ok(Some(input)) => {
                                if tx.send(input).await.is_err() {
                                    return Err(IngestError::PipelineStopped("the stream's pipeline stopped"));
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                bad_tags += 1;
                                if bad_tags == 1 {
                                    tracing::warn!(%peer, error = %e, "dropping an audio tag");
                                }
                            }
                        }
                    }
                    ServerSessionEvent::PublishStreamFinished { .. } => {
                        clean_end = true;
                        return Ok(());
                    }
                    ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                        conn.reject(request_id, "NetStream.Play.Failed", "playback is served over HLS, not RTMP").await?;
                    }
                    _ => {}
                }
            }
            let read_timeout = if publish.is_some() {
                tokio::time::Instant::now() + IDLE_TIMEOUT
            } else {
                deadline
            };
            let taken_over = async {
                match &publish {
                    Some(p) => p.taken_over().await,
                    None => std::future::pending().await,
                }
            };
            let ended_by_operator = async {
                match &publish {
                    Some(p) => p.ended_by_operator().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    clean_end = true;
                    return Ok(());
                }
                _ = taken_over => {
                    tracing::info!(%peer, "a new publisher with the same key took over this stream");
                    return Ok(());
                }
                _ = ended_by_operator => {
                    tracing::info!(%peer, "an operator ended this stream");
                    clean_end = true;
                    return Ok(());
                }
                read = tokio::time::timeout_at(read_timeout, conn.socket.read(&mut buf)) => {
                    let n = read.map_err(|_| IngestError::Rtmp(if publish.is_some() { "publisher went silent".into() } else { "no publish within the setup time".into() }))??;
                    if n == 0 {
                        return Ok(());
                    }
                    if publish.is_none() {
                        setup_bytes += n;
                        if setup_bytes > SETUP_BYTES {
                            registry.metrics().publish("oversized_setup");
                            return Err(IngestError::Rtmp(format!(
                                "more than {} KiB before a publish was accepted",
                                SETUP_BYTES / 1024
                            )));
                        }
                    }
                    pending = buf[..n].to_vec();
                }
            }
        }
    }
    .await;

    drop(sender);
    if let Some(p) = publish {
        registry.end_publish(p, clean_end).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use rml_rtmp::sessions::{ServerSession, ServerSessionConfig};

    /// An AMF0 command nested 200,000 levels deep (1 MB) is a session error, not a stack
    /// overflow (rml_amf0 recursed once per level: vendor/rml_amf0/FORK.md).
    #[test]
    fn deeply_nested_amf_is_refused_not_recursed_into() {
        for depth in [20_000, 200_000] {
            let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).expect("session");
            let bytes = testkit::rtmp::command_chunks(&testkit::rtmp::nested_strict_arrays(depth));
            assert!(
                session.handle_input(&bytes).is_err(),
                "depth {depth} accepted"
            );
        }
    }

    /// The first 128-byte chunk of a 300-byte command, then a continuation on the same chunk
    /// stream that restates the length as 10: a session error, not an integer wrap and a
    /// `capacity overflow` panic (rml_rtmp's deserializer: vendor/rml_rtmp/FORK.md; found by
    /// the `rtmp_session` fuzz target).
    #[test]
    fn a_continuation_that_shrinks_its_message_is_refused() {
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).expect("session");
        let mut bytes = vec![0x03, 0, 0, 0, 0x00, 0x01, 0x2c, 20, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0x05; 128]);
        bytes.extend_from_slice(&[0x43, 0, 0, 0, 0, 0, 10, 20]);
        bytes.extend_from_slice(&[0x05; 10]);
        let outcome = std::panic::catch_unwind(move || session.handle_input(&bytes).is_err());
        assert!(matches!(outcome, Ok(true)), "{outcome:?}");
    }
}

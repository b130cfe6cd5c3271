//! The tokio driver around `rml_rtmp`'s sans-IO server session: accept, handshake,
//! `connect` to app `live`, `publish` with a stream key from the catalog, then media into a
//! [`crate::pipeline::Pipeline`].
//!
//! Everything from the socket is untrusted: a failed handshake, an unknown app, a wrong key,
//! a codec we do not take, a malformed tag — each ends in a log line (and an RTMP error
//! status where the protocol has one) for that connection only. Stream keys are never
//! logged.
//!
//! The answer to `connect` states what Enhanced RTMP publishers may send
//! ([`enhanced_rtmp_capabilities`]): OBS and ffmpeg send HEVC or AV1 only to a server that
//! lists it.
//!
//! - this file: the socket side: connections accepted by `plumbing`'s [`AcceptLoop`]
//!   (the cap is `[ingest] max_connections`), the handshake, bytes into the session and
//!   its answers back, timeouts, the registry and the pipeline;
//! - `policy`: what a connection may do, sans-IO (the app, one publish per connection,
//!   the bytes allowed before it, a run of bad tags), with its own tests;
//! - its adapter, FLV tag bodies into [`MediaInput`], is [`intake::rtmp`] (pure, so the
//!   fuzz harnesses reach it without FFmpeg).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use intake::media::MediaInput;
use intake::rtmp as inputs;
use intake::IntakeError;
use plumbing::accept::{AcceptLoop, Handler};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::IngestError;
use crate::registry::{Admit, NotAdmitted, Protocol, Publish, Registry, StreamKey};

mod policy;

use policy::{PublishPolicy, Refusal, Tag, TagVerdict};

/// Time allowed from TCP accept to an accepted publish.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher silent this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts RTMP connections until `shutdown`; every connection is tracked and awaited.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let accept = AcceptLoop::new("RTMP", registry.max_connections());
    let publishers = Publishers {
        registry,
        shutdown: shutdown.clone(),
    };
    accept.run(listener, publishers, &shutdown).await;
    Ok(())
}

/// What every RTMP connection shares.
struct Publishers {
    registry: Arc<Registry>,
    /// The server's shutdown: a publishing connection ends cleanly on it.
    shutdown: CancellationToken,
}

impl Handler<TcpStream> for Publishers {
    fn serve(
        &mut self,
        socket: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let _ = socket.set_nodelay(true);
        let registry = Arc::clone(&self.registry);
        let shutdown = self.shutdown.clone();
        async move {
            match connection(socket, peer, registry, shutdown).await {
                Ok(()) => tracing::debug!(%peer, "RTMP connection closed"),
                Err(e) => tracing::warn!(%peer, error = %e, "RTMP connection ended with an error"),
            }
        }
    }

    /// Closed at once: a flood of connections costs a file descriptor each for a moment,
    /// nothing more.
    fn refused(&mut self, peer: SocketAddr) {
        self.registry.metrics().publish("over_connection_cap");
        tracing::debug!(%peer, "RTMP connection refused: at the connection cap");
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

/// One connection from accept to close: the handshake, then the session until the publish
/// ends (or is refused), then the publish handed back to the registry.
async fn connection(
    mut socket: TcpStream,
    peer: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    // A connection still in its handshake at shutdown has nothing to end cleanly: it
    // closes at once instead of holding the shutdown up until its deadline.
    let leftover = tokio::select! {
        handshaken = tokio::time::timeout(SETUP_TIMEOUT, handshake(&mut socket)) => handshaken
            .map_err(|_| IngestError::Rtmp("handshake timed out".into()))??,
        () = shutdown.cancelled() => return Ok(()),
    };
    let mut config = ServerSessionConfig::new();
    config.connect_result_properties = enhanced_rtmp_capabilities();
    let (session, initial) =
        ServerSession::new(config).map_err(|e| IngestError::Rtmp(e.to_string()))?;
    let policy = PublishPolicy::new(registry.app(), leftover.len());
    let mut conn = Connection {
        socket,
        session,
        peer,
        registry,
        policy,
        publish: None,
        sender: None,
        events: Vec::new(),
    };
    conn.events = conn.write_results(initial).await?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let result = conn.run(leftover, deadline, &shutdown).await;
    drop(conn.sender.take());
    if let Some(p) = conn.publish.take() {
        let clean = matches!(result, Ok(End::Clean));
        conn.registry.end_publish(p, clean).await;
    }
    result.map(drop)
}

/// How a connection ended, for the registry: a clean end (unpublish, shutdown, an
/// operator's end) ends the stream's playlists at once, any other after a grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Clean,
    Abrupt,
}

/// What waiting on the socket brought.
enum Waited {
    /// This many bytes were read into the buffer.
    Bytes(usize),
    /// The connection is over.
    End(End),
}

/// One connection after its handshake.
struct Connection {
    socket: TcpStream,
    session: ServerSession,
    peer: SocketAddr,
    registry: Arc<Registry>,
    policy: PublishPolicy,
    /// The accepted publish, from the key check to the end.
    publish: Option<Publish>,
    /// Where its media goes: the pipeline's input.
    sender: Option<mpsc::Sender<MediaInput>>,
    /// Events the session raised while answering, handled after the next read.
    events: Vec<ServerSessionEvent>,
}

impl Connection {
    /// Feeds the session until the connection ends: `pending` bytes first (what the
    /// handshake left), then whatever the socket brings, each read within the setup
    /// `deadline` until a publish is accepted.
    async fn run(
        &mut self,
        mut pending: Vec<u8>,
        deadline: Instant,
        shutdown: &CancellationToken,
    ) -> Result<End, IngestError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if !pending.is_empty() {
                self.feed(&std::mem::take(&mut pending)).await?;
            }
            for event in std::mem::take(&mut self.events) {
                if let Some(end) = self.event(event).await? {
                    return Ok(end);
                }
            }
            match self.wait(&mut buf, deadline, shutdown).await? {
                Waited::Bytes(n) => pending = buf[..n].to_vec(),
                Waited::End(end) => return Ok(end),
            }
        }
    }

    /// The peer's bytes into the session, its answers back to the peer. Bytes rml_rtmp
    /// refuses (malformed chunks or AMF, AMF nested deeper than the forked rml_amf0 allows)
    /// end this connection only.
    async fn feed(&mut self, input: &[u8]) -> Result<(), IngestError> {
        let results = self.session.handle_input(input).map_err(|e| {
            self.registry.metrics().publish("protocol_error");
            IngestError::Rtmp(format!("protocol error: {e}"))
        })?;
        let raised = self.write_results(results).await?;
        self.events.extend(raised);
        Ok(())
    }

    /// Writes the session's packets to the peer; returns the events it raised.
    async fn write_results(
        &mut self,
        results: Vec<ServerSessionResult>,
    ) -> Result<Vec<ServerSessionEvent>, IngestError> {
        let mut raised = Vec::new();
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.socket.write_all(&packet.bytes).await?
                }
                ServerSessionResult::RaisedEvent(e) => raised.push(e),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(raised)
    }

    /// Handles one session event; `Some` when the connection is over.
    async fn event(&mut self, event: ServerSessionEvent) -> Result<Option<End>, IngestError> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                if let Err(refusal) = self.policy.connect(&app_name) {
                    tracing::warn!(peer = %self.peer, app = %app_name.escape_debug(), "RTMP connect to an unknown application");
                    return self.refuse(request_id, refusal).await;
                }
                self.accept(request_id).await?;
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => return self.publish(request_id, &stream_key).await,
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let (Some(tx), Some(fps)) = (&self.sender, metadata.video_frame_rate) {
                    let _ = tx.send(MediaInput::FrameRate(f64::from(fps))).await;
                }
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.media(Kind::Video, &data, timestamp.value).await?,
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.media(Kind::Audio, &data, timestamp.value).await?,
            ServerSessionEvent::PublishStreamFinished { .. } => return Ok(Some(End::Clean)),
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                let refusal = self.policy.play_requested();
                return self.refuse(request_id, refusal).await;
            }
            _ => {}
        }
        Ok(None)
    }

    /// A `publish`: one per connection, with a key the registry knows.
    async fn publish(
        &mut self,
        request_id: u32,
        stream_key: &str,
    ) -> Result<Option<End>, IngestError> {
        if let Err(refusal) = self.policy.publish_requested() {
            return self.refuse(request_id, refusal).await;
        }
        let key = StreamKey::new(stream_key);
        let admitted = self
            .registry
            .admit(Admit {
                protocol: Protocol::Rtmp,
                key: &key,
                client: self.peer.ip(),
                stream: None,
            })
            .await;
        // The registry logged and counted the refusals; the policy says how each is answered.
        let admission = match admitted {
            Ok(admission) => Some(admission),
            Err(NotAdmitted::WrongKey) => None,
            Err(NotAdmitted::HeldBack { .. }) => {
                return self.refuse(request_id, Refusal::HeldBack).await
            }
            Err(NotAdmitted::HookRefused(_)) => {
                return self.refuse(request_id, Refusal::HookRefused).await
            }
            Err(NotAdmitted::Full { .. }) => return self.refuse(request_id, Refusal::Full).await,
            Err(NotAdmitted::Catalog(e)) => return Err(IngestError::Catalog(e)),
        };
        if let Err(refusal) = self.policy.key_checked(admission.is_some()) {
            return self.refuse(request_id, refusal).await;
        }
        if let Some(admission) = admission {
            let p = self.registry.start_publish(admission).await?;
            tracing::info!(peer = %self.peer, stream = %p.stream(), session = %p.session(), "RTMP publish accepted");
            self.registry.metrics().publish("accepted");
            self.sender = Some(p.sender());
            self.publish = Some(p);
            self.accept(request_id).await?;
        }
        Ok(None)
    }

    /// One audio or video tag of the publish into the pipeline, as the policy says.
    async fn media(&mut self, kind: Kind, data: &Bytes, timestamp: u32) -> Result<(), IngestError> {
        let Some(tx) = &self.sender else {
            return Ok(()); // media before a publish has nowhere to go
        };
        let timestamp = i64::from(timestamp);
        let parsed = match kind {
            Kind::Video => inputs::video(data, timestamp),
            Kind::Audio => inputs::audio(data, timestamp),
        };
        let tag = match &parsed {
            Ok(Some(_)) => Tag::Media,
            Ok(None) => Tag::Nothing,
            Err(IntakeError::UnsupportedCodec { .. }) => Tag::Unsupported,
            Err(_) => Tag::Malformed,
        };
        let verdict = match kind {
            Kind::Video => self.policy.video_tag(tag),
            Kind::Audio => self.policy.audio_tag(tag),
        };
        match (verdict, parsed) {
            (TagVerdict::Forward, Ok(Some(input))) => tx
                .send(input)
                .await
                .map_err(|_| IngestError::PipelineStopped("the stream's pipeline stopped"))?,
            (TagVerdict::End, Err(e)) => return Err(e.into()),
            (TagVerdict::Drop { first: true }, Err(e)) => match kind {
                Kind::Video => {
                    tracing::warn!(peer = %self.peer, error = %e, "dropping a malformed video tag")
                }
                Kind::Audio => {
                    tracing::warn!(peer = %self.peer, error = %e, "dropping an audio tag")
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// Waits for the peer's next bytes, or for the end of the connection: the server's
    /// shutdown, a takeover, an operator's end, the peer's silence or close.
    async fn wait(
        &mut self,
        buf: &mut [u8],
        setup_deadline: Instant,
        shutdown: &CancellationToken,
    ) -> Result<Waited, IngestError> {
        let read_timeout = if self.policy.publishing() {
            Instant::now() + IDLE_TIMEOUT
        } else {
            setup_deadline
        };
        let publish = &self.publish;
        let taken_over = async {
            match publish {
                Some(p) => p.taken_over().await,
                None => std::future::pending().await,
            }
        };
        let ended_by_operator = async {
            match publish {
                Some(p) => p.ended_by_operator().await,
                None => std::future::pending().await,
            }
        };
        let peer = self.peer;
        let read = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Waited::End(End::Clean)),
            _ = taken_over => {
                tracing::info!(%peer, "a new publisher with the same key took over this stream");
                return Ok(Waited::End(End::Abrupt));
            }
            _ = ended_by_operator => {
                tracing::info!(%peer, "an operator ended this stream");
                return Ok(Waited::End(End::Clean));
            }
            read = tokio::time::timeout_at(read_timeout, self.socket.read(buf)) => read,
        };
        let n = read.map_err(|_| IngestError::Rtmp(self.policy.silence().into()))??;
        if n == 0 {
            return Ok(Waited::End(End::Abrupt));
        }
        if let Err(over) = self.policy.received(n) {
            self.registry
                .metrics()
                .publish(policy::OversizedSetup::COUNTED_AS);
            return Err(IngestError::Rtmp(over.to_string()));
        }
        Ok(Waited::Bytes(n))
    }

    /// Accepts the session's request `request_id` (a `connect` or a `publish`).
    async fn accept(&mut self, request_id: u32) -> Result<(), IngestError> {
        let results = self
            .session
            .accept_request(request_id)
            .map_err(|e| IngestError::Rtmp(e.to_string()))?;
        let raised = self.write_results(results).await?;
        self.events.extend(raised);
        Ok(())
    }

    /// Answers request `request_id` with the refusal's status and counts it; `Some` when
    /// the refusal ends the connection.
    async fn refuse(
        &mut self,
        request_id: u32,
        refusal: Refusal,
    ) -> Result<Option<End>, IngestError> {
        if let Some(result) = refusal.counted_as() {
            self.registry.metrics().publish(result);
        }
        let (code, description) = refusal.status();
        let results = self
            .session
            .reject_request(request_id, code, description)
            .map_err(|e| IngestError::Rtmp(e.to_string()))?;
        // What the session raises while refusing is of no interest.
        self.write_results(results).await?;
        let _ = self.socket.flush().await;
        Ok(refusal.ends_connection().then_some(End::Abrupt))
    }
}

/// What the answer to `connect` says this server takes, as E-RTMP v2 has a server state
/// it: `fourCcList` (v1's list, which clients still read), `videoFourCcInfoMap` and
/// `audioFourCcInfoMap` (each FourCC with `CanDecode` = 1, and `CanForward` = 4 for the
/// video codecs the `src` rung passes through) and `capsEx` (`Multitrack` = 2: the
/// default track of a multitrack publish is taken; `ModEx` = 4: its prefixes are read).
pub fn enhanced_rtmp_capabilities() -> HashMap<String, Amf0Value> {
    use container::ertmp::{AudioFourCc, VideoFourCc, FOURCCS};
    const CAN_DECODE: f64 = 1.0;
    const CAN_FORWARD: f64 = 4.0;
    let map = |entries: Vec<(&str, f64)>| {
        Amf0Value::Object(
            entries
                .into_iter()
                .map(|(fourcc, flags)| (fourcc.to_owned(), Amf0Value::Number(flags)))
                .collect(),
        )
    };
    let video = [
        VideoFourCc::Avc,
        VideoFourCc::Hevc,
        VideoFourCc::Av1,
        VideoFourCc::Vp9,
    ]
    .map(|c| (c.fourcc(), CAN_DECODE + CAN_FORWARD));
    let audio = [
        AudioFourCc::Aac,
        AudioFourCc::Opus,
        AudioFourCc::Ac3,
        AudioFourCc::Eac3,
        AudioFourCc::Mp3,
    ]
    .map(|c| (c.fourcc(), CAN_DECODE));
    HashMap::from([
        (
            "fourCcList".to_owned(),
            Amf0Value::StrictArray(
                FOURCCS
                    .iter()
                    .map(|f| Amf0Value::Utf8String((*f).to_owned()))
                    .collect(),
            ),
        ),
        ("videoFourCcInfoMap".to_owned(), map(video.to_vec())),
        ("audioFourCcInfoMap".to_owned(), map(audio.to_vec())),
        ("capsEx".to_owned(), Amf0Value::Number(2.0 + 4.0)),
    ])
}

/// Which kind of media tag.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Video,
    Audio,
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

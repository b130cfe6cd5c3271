//! An RTMP publisher built on rml_rtmp's client session that sends whatever FLV tag bytes a
//! test gives it — what no well-behaved encoder does — after a genuine handshake, connect
//! and publish.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the server may stay silent while the client waits for an answer.
const SILENCE: Duration = Duration::from_secs(10);

/// A connection that completed the handshake, `connect` and `publish`.
pub struct RtmpPublisher {
    socket: TcpStream,
    session: ClientSession,
}

impl std::fmt::Debug for RtmpPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpPublisher")
            .field("peer", &self.socket.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

fn rtmp_error(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("{e:?}")
}

impl RtmpPublisher {
    /// Connects to `addr`, application `app`, and publishes live under `key`; returns
    /// once the server accepted the publish.
    pub async fn publish(addr: SocketAddr, app: &str, key: &str) -> Result<Self> {
        let mut socket = TcpStream::connect(addr).await?;
        let leftover = handshake(&mut socket).await?;
        let (session, initial) =
            ClientSession::new(ClientSessionConfig::new()).map_err(rtmp_error)?;
        let mut publisher = RtmpPublisher { socket, session };
        publisher.send(initial).await?;
        if !leftover.is_empty() {
            let results = publisher
                .session
                .handle_input(&leftover)
                .map_err(rtmp_error)?;
            publisher.send(results).await?;
        }
        let r = publisher
            .session
            .request_connection(app.to_owned())
            .map_err(rtmp_error)?;
        publisher.send(vec![r]).await?;
        publisher
            .until(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted))
            .await
            .context("connect not accepted")?;
        let r = publisher
            .session
            .request_publishing(key.to_owned(), PublishRequestType::Live)
            .map_err(rtmp_error)?;
        publisher.send(vec![r]).await?;
        publisher
            .until(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))
            .await
            .context("publish not accepted")?;
        Ok(publisher)
    }

    /// Sends `tag` (an FLV video tag body) as video data at `timestamp_ms`. An error when
    /// the server has closed the connection.
    pub async fn video(&mut self, tag: &[u8], timestamp_ms: u32) -> Result<()> {
        let r = self
            .session
            .publish_video_data(
                Bytes::copy_from_slice(tag),
                RtmpTimestamp::new(timestamp_ms),
                false,
            )
            .map_err(rtmp_error)?;
        self.send(vec![r]).await.map(drop)
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.socket.shutdown().await;
    }

    async fn send(&mut self, results: Vec<ClientSessionResult>) -> Result<Vec<ClientSessionEvent>> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => self.socket.write_all(&p.bytes).await?,
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    /// Reads and answers the server until an event `want` accepts.
    async fn until(&mut self, want: impl Fn(&ClientSessionEvent) -> bool) -> Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = tokio::time::timeout(SILENCE, self.socket.read(&mut buf))
                .await
                .context("server silent")??;
            ensure!(n > 0, "server closed the connection");
            let results = self.session.handle_input(&buf[..n]).map_err(rtmp_error)?;
            if self.send(results).await?.iter().any(&want) {
                return Ok(());
            }
        }
    }
}

/// The client side of the RTMP handshake; what the server sent past it.
async fn handshake(socket: &mut TcpStream) -> Result<Vec<u8>> {
    let mut hs = Handshake::new(PeerType::Client);
    socket
        .write_all(&hs.generate_outbound_p0_and_p1().map_err(rtmp_error)?)
        .await?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tokio::time::timeout(SILENCE, socket.read(&mut buf))
            .await
            .context("server silent during the handshake")??;
        ensure!(n > 0, "closed during handshake");
        match hs.process_bytes(&buf[..n]).map_err(rtmp_error)? {
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

/// The default RTMP chunk size, before any `SetChunkSize`.
const DEFAULT_CHUNK: usize = 128;

/// An AMF0 body of `depth` nested one-element strict arrays around a null
/// (`0A 00 00 00 01` × depth, `05`): what overflowed the stack of a recursive decoder.
pub fn nested_strict_arrays(depth: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(depth * 5 + 1);
    for _ in 0..depth {
        body.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
    }
    body.push(0x05);
    body
}

/// `body` as an AMF0 command message (type 20) on chunk stream 3, message stream 0, cut
/// into chunks of the default size: bytes a client may send right after the handshake.
pub fn command_chunks(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).min(0xFF_FFFF);
    let mut out = Vec::with_capacity(body.len() + body.len() / DEFAULT_CHUNK + 12);
    out.push(0x03); // fmt 0, chunk stream 3
    out.extend_from_slice(&[0, 0, 0]); // timestamp
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(20); // AMF0 command
    out.extend_from_slice(&[0, 0, 0, 0]); // message stream id (little endian)
    for (i, chunk) in body.chunks(DEFAULT_CHUNK).enumerate() {
        if i > 0 {
            out.push(0xC3); // fmt 3, chunk stream 3: a continuation
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// Completes the handshake with the RTMP server at `addr`, sends `bytes`, and waits until
/// the server closes the connection (reading and discarding what it sends); an error if it
/// has not within `within`.
pub async fn send_and_expect_close(addr: SocketAddr, bytes: &[u8], within: Duration) -> Result<()> {
    let mut socket = TcpStream::connect(addr).await?;
    handshake(&mut socket).await?;
    // The server may close while the bytes are still going out: that is the answer too.
    let _ = socket.write_all(bytes).await;
    let mut buf = vec![0u8; 65536];
    tokio::time::timeout(within, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .context("the server kept the connection open")
}

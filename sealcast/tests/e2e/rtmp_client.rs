//! A minimal RTMP publisher (rml_rtmp's client session) that sends malformed FLV tags —
//! something no well-behaved encoder would do.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(
    socket: &mut TcpStream,
    results: Vec<ClientSessionResult>,
    events: &mut Vec<ClientSessionEvent>,
) -> anyhow::Result<()> {
    for r in results {
        match r {
            ClientSessionResult::OutboundResponse(p) => socket.write_all(&p.bytes).await?,
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    Ok(())
}

async fn until(
    socket: &mut TcpStream,
    session: &mut ClientSession,
    want: impl Fn(&ClientSessionEvent) -> bool,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .context("server silent")??;
        anyhow::ensure!(n > 0, "server closed the connection");
        let results = session
            .handle_input(&buf[..n])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut events = Vec::new();
        send(socket, results, &mut events).await?;
        if events.iter().any(&want) {
            return Ok(());
        }
    }
}

/// Publishes with a valid key, then sends video tags whose AVC payload lies about its
/// NAL lengths and a tag too short to be a tag; the server must survive and either drop
/// them or close this connection.
pub(crate) async fn publish_malformed_tags(addr: SocketAddr, key: &str) -> anyhow::Result<()> {
    let mut socket = TcpStream::connect(addr).await?;
    let mut hs = Handshake::new(PeerType::Client);
    socket
        .write_all(
            &hs.generate_outbound_p0_and_p1()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        )
        .await?;
    let mut buf = vec![0u8; 8192];
    let leftover = loop {
        let n = socket.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed during handshake");
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, initial) =
        ClientSession::new(ClientSessionConfig::new()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut events = Vec::new();
    send(&mut socket, initial, &mut events).await?;
    if !leftover.is_empty() {
        let results = session
            .handle_input(&leftover)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        send(&mut socket, results, &mut events).await?;
    }
    let r = session
        .request_connection("live".into())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    send(&mut socket, vec![r], &mut events).await?;
    until(&mut socket, &mut session, |e| {
        matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
    })
    .await?;
    let r = session
        .request_publishing(key.into(), PublishRequestType::Live)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    send(&mut socket, vec![r], &mut events).await?;
    until(&mut socket, &mut session, |e| {
        matches!(e, ClientSessionEvent::PublishRequestAccepted)
    })
    .await?;

    let tags: [&[u8]; 4] = [
        // AVC sequence header that is too short to be a decoder configuration record.
        &[0x17, 0x00, 0, 0, 0, 0x01],
        // AVC NALU with a 4-byte length far beyond the payload.
        &[0x17, 0x01, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x65, 0x88],
        // One byte: not even a tag header.
        &[0x17],
        // Empty.
        &[],
    ];
    for (i, tag) in tags.iter().enumerate() {
        let r = session
            .publish_video_data(
                Bytes::copy_from_slice(tag),
                RtmpTimestamp::new(i as u32 * 33),
                false,
            )
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if send(&mut socket, vec![r], &mut events).await.is_err() {
            break; // the server may close on us: that is a clean end too
        }
    }
    let _ = socket.shutdown().await;
    Ok(())
}

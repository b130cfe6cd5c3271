//! The RTMP server's limits before authentication, against a real server on a free port
//! (the catalog an in-memory fake): a connection cap, and a bound on the bytes a client may
//! send before its publish is accepted.

use std::sync::Arc;
use std::time::Duration;

use ingest::{IngestMetrics, Registry};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const CAP: usize = 4;

/// A registry for "live" with at most [`CAP`] connections, its catalog a fake that allows
/// nothing in particular, and the receiving end of its events (kept open by the caller).
fn registry(
    metrics: &IngestMetrics,
) -> (
    Arc<Registry>,
    tokio::sync::mpsc::Receiver<domain::LiveEvent>,
) {
    let catalog = Arc::new(crate::support::Authority::default());
    let (events, keep) = tokio::sync::mpsc::channel(16);
    let registry = Registry::new(
        crate::support::settings(Duration::from_secs(1), CAP, None),
        catalog,
        events,
        metrics.clone(),
    );
    (registry, keep)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_and_oversized_setups_are_closed() {
    let metrics = IngestMetrics::default();
    let (registry, _events) = registry(&metrics);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let server = tokio::spawn(ingest::rtmp::serve(listener, registry, stop.clone()));

    // CAP connections that never start the handshake hold every slot (until the setup
    // timeout); the next one is closed on arrival and counted.
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut extra = TcpStream::connect(addr).await.expect("connect");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut byte))
        .await
        .expect("the connection over the cap was not closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Counted as it is closed: the count may land just after the client saw the close.
    let counted = tokio::time::Instant::now() + Duration::from_secs(5);
    while crate::support::publishes(&metrics, "over_connection_cap") < 1.0
        && tokio::time::Instant::now() < counted
    {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        crate::support::publishes(&metrics, "over_connection_cap"),
        1.0
    );

    // Slots come back when connections go. A client that then sends 200 KiB after the
    // handshake without being authorised is closed and counted.
    drop(held);
    let body = vec![0x05u8; 200 * 1024];
    let bytes = testkit::rtmp::command_chunks(&body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match testkit::rtmp::send_and_expect_close(addr, &bytes, Duration::from_secs(5)).await {
            Ok(()) if crate::support::publishes(&metrics, "oversized_setup") == 1.0 => break,
            // Refused at the cap again (the held ones were not yet gone), or closed for
            // another reason: try again until the slots are back.
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no slot came back, or the setup was not refused as oversized"
                );
                // Polling pace while the server notices the dropped connections.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    stop.cancel();
    server.await.expect("joins").expect("serves");
}

/// A connection that never finishes its handshake does not hold the server's shutdown up
/// until its setup deadline (10 s): the server returns as soon as it is stopped. It once
/// waited the deadline out, and so did `sealcast up` on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_in_progress_does_not_hold_shutdown_up() {
    let (registry, _events) = registry(&IngestMetrics::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let server = tokio::spawn(ingest::rtmp::serve(listener, registry, stop.clone()));

    // C0 and half of C1: the handshake has begun and will not go on. The server's first
    // answer byte says it is in the handshake.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    silent
        .write_all(&[3u8; 1 + 768])
        .await
        .expect("the first half of the handshake");
    let mut first = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), silent.read_exact(&mut first))
        .await
        .expect("the server answers")
        .expect("read");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops at once, not at the handshake's deadline")
        .expect("joins")
        .expect("serves");
}

//! `serve` over a real socket: HTTP/1.1, HTTP/2 prior knowledge, and graceful shutdown.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Bounds every wait so a broken server fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(10);

async fn http1(addr: std::net::SocketAddr, path: &str) -> String {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(LIMIT, conn.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn serves_http1_and_h2c_then_shuts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let node = live_node();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(broadcast::serve(listener, node, shutdown.clone()));

    let health = http1(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(
        health
            .to_ascii_lowercase()
            .contains(&format!("x-sealcast-node: {NODE}\r\n")),
        "{health}"
    );
    assert!(health.ends_with("\r\n\r\nok"), "{health}");

    let segment = http1(addr, "/live/demo/720p/4.ts").await;
    assert!(segment.starts_with("HTTP/1.1 200 OK\r\n"), "{segment}");
    assert!(segment
        .to_ascii_lowercase()
        .contains("content-type: video/mp2t\r\n"));

    let missing = http1(addr, "/live/../master.m3u8").await;
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );

    // HTTP/2 with prior knowledge: the server answers the preface with a SETTINGS frame.
    let mut h2 = TcpStream::connect(addr).await.expect("connect");
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("preface");
    let mut frame_header = [0u8; 9];
    tokio::time::timeout(LIMIT, h2.read_exact(&mut frame_header))
        .await
        .expect("settings in time")
        .expect("read");
    assert_eq!(frame_header[3], 0x4, "first frame is SETTINGS");
    drop(h2);

    // An idle keep-alive connection must not hold shutdown up.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 12];
    idle.read_exact(&mut buf).await.expect("status line");
    assert_eq!(&buf, b"HTTP/1.1 200");

    shutdown.cancel();
    tokio::time::timeout(LIMIT, server)
        .await
        .expect("serve returns after shutdown")
        .expect("task")
        .expect("serve ok");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

/// Issue 13's slow-connection attack: 4,000 connections that send part of a request header
/// and then a byte every two seconds. A normal request is still answered at once, and the
/// node closes every one of them once the header deadline (10 s) passes, counting each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_closed_and_do_not_delay_others() {
    const SLOW: usize = 4_000;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let node = live_node();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(broadcast::serve(
        listener,
        std::sync::Arc::clone(&node),
        shutdown.clone(),
    ));

    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await
            .expect("write");
        slow.push(conn);
    }
    let started = tokio::time::Instant::now();
    let health = http1(addr, "/healthz").await;
    let took = started.elapsed();
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(
        took < Duration::from_secs(2),
        "a normal request took {took:?}"
    );

    // Each connection trickles a byte every two seconds and waits for the node to close it.
    let closers: Vec<_> = slow
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                let mut byte = [0u8; 64];
                loop {
                    tokio::select! {
                        read = conn.read(&mut byte) => match read {
                            Ok(0) | Err(_) => return true,
                            Ok(_) => {} // a 408 or the like, then the close
                        },
                        () = tokio::time::sleep(Duration::from_secs(2)) => {
                            if conn.write_all(b"a").await.is_err() {
                                return true;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let all_closed = tokio::time::timeout(Duration::from_secs(60), async {
        for closer in closers {
            assert!(closer.await.expect("joins"));
        }
    })
    .await;
    assert!(all_closed.is_ok(), "slow connections still open after 60 s");

    let metrics = http1(addr, "/metrics").await;
    let closed: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("sealcast_http_connections_closed_total{reason=\"header_timeout\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        closed >= SLOW as f64,
        "{closed} closed for a slow header; {metrics}"
    );
    shutdown.cancel();
    server.await.expect("joins").expect("serves");
}

//! The metrics listener (a standalone ingest's and the load balancer's) within its limits:
//! connections beyond the cap are closed on arrival, a request header that trickles in is
//! cut off at its deadline, and the slots they held serve a scrape afterwards.

use std::sync::Arc;
use std::time::Duration;

use plumbing::metrics_server::{serve_with, MetricsLimits};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Reads until the server closes the connection (bounded, so a server that never closes
/// fails the test instead of hanging it).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    out
}

#[tokio::test]
async fn slow_and_surplus_metrics_connections_are_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = MetricsLimits {
        max_connections: 2,
        header_read_timeout: Duration::from_millis(300),
        connection_lifetime: Duration::from_secs(30),
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve_with(
        listener,
        Arc::new(Registry::default()),
        plumbing::Liveness::new(),
        limits,
        stop.clone(),
    ));

    // Two connections take the slots with half a request header each.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    // A third is closed on arrival, without an answer.
    let mut surplus = TcpStream::connect(addr).await.expect("connect");
    let _ = surplus
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut surplus).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // The slow ones are cut off at their header deadline, never answered with metrics.
    for s in &mut slow {
        let answer = String::from_utf8_lossy(&read_until_closed(s).await).into_owned();
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    // Their slots serve a scrape again (a slot is freed when its task ends, just after
    // the close: retried until then, bounded by the read timeout above).
    let mut answer = String::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        answer = String::from_utf8_lossy(&read_until_closed(&mut s).await).into_owned();
        if !answer.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("# EOF"), "{answer}");
    stop.cancel();
    server.await.expect("joined").expect("served");
}

/// `/healthz` tells the truth (issue 45): `200` while every listener task of the role
/// runs, `503` with the dead listener's name once one stopped unasked.
#[tokio::test]
async fn healthz_fails_once_a_listener_task_died() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let liveness = plumbing::Liveness::new();
    let stop = CancellationToken::new();
    let server = tokio::spawn(plumbing::metrics_server::serve(
        listener,
        Arc::new(Registry::default()),
        liveness.clone(),
        stop.clone(),
    ));
    let healthz = || async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        String::from_utf8_lossy(&read_until_closed(&mut s).await).into_owned()
    };
    // A listener task that serves until its socket fails under it.
    let rtmp_stop = CancellationToken::new();
    let guard = liveness.guard("rtmp", &rtmp_stop);
    let (fail, failed) = tokio::sync::oneshot::channel::<()>();
    let rtmp = tokio::spawn(async move {
        let _alive = guard;
        let _ = failed.await;
    });
    assert!(healthz().await.starts_with("HTTP/1.1 200 OK"));
    drop(fail);
    rtmp.await.expect("the listener task ended");
    let answer = healthz().await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""dead":["rtmp"]"#), "{answer}");
    stop.cancel();
    server.await.expect("joined").expect("served");
}

//! The QUIC front door's sockets, against a plain UDP echo with a TCP listener on the same
//! port (what the door's liveness check connects to): datagrams go both ways, one over the
//! size cap is dropped, a relay that is gone leaves rotation, and a flood of sources on
//! 127.0.0.2-9 gets no more flows than the cap. The real moq-relay behind the door, with a
//! QUIC client through it, is the next step (issue 48).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use loadbalancer::quic_door::{DoorLimits, QuicDoor, QuicDoorConfig, RelayChecks};
use loadbalancer::LbMetrics;
use tokio::net::UdpSocket;
use tokio::time::Instant;

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A UDP echo and a TCP listener on one port. The UDP port the kernel picks may be taken
/// for TCP (another test's connection), so a pair is tried until one binds both.
async fn echo() -> (u16, tokio::task::JoinHandle<()>, std::net::TcpListener) {
    let mut tries = 0;
    let (udp, port, tcp) = loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("ok");
        let port = udp.local_addr().expect("ok").port();
        match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(tcp) => break (udp, port, tcp),
            Err(e) => {
                tries += 1;
                assert!(tries < 50, "no port free for both UDP and TCP: {e}");
            }
        }
    };
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&buf[..n], from).await;
        }
    });
    (port, task, tcp)
}

fn door(port: u16, max_flows: usize) -> (QuicDoor, SocketAddr) {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("ok");
    let addr = socket.local_addr().expect("ok");
    let door = QuicDoor::start(
        socket,
        QuicDoorConfig {
            relays: vec![format!("127.0.0.1:{port}")],
            limits: DoorLimits {
                max_flows,
                ..DoorLimits::default()
            },
            checks: RelayChecks {
                resolve_every: Duration::from_millis(100),
                check_every: Duration::from_millis(100),
                timeout: Duration::from_millis(300),
            },
        },
        LbMetrics::default(),
        plumbing::Liveness::new().guard("quic", &tokio_util::sync::CancellationToken::new()),
    )
    .expect("ok");
    (door, addr)
}

#[tokio::test]
async fn forwards_both_ways_and_drops_a_dead_relay() {
    let (port, task, tcp) = echo().await;
    let (door, addr) = door(port, 16);
    until("checked", || door.eligible_relays() == 1).await;
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("ok");
    client.send_to(b"hello", addr).await.expect("ok");
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf))
        .await
        .expect("ok")
        .expect("ok");
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(door.flows(), 1);
    // Oversize: dropped.
    client.send_to(&[0u8; 1501], addr).await.expect("ok");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buf))
            .await
            .is_err()
    );
    task.abort();
    drop(tcp);
    until("the dead relay out", || door.eligible_relays() == 0).await;
    door.stop().await;
}

#[tokio::test]
async fn a_flood_stays_within_the_cap() {
    let (port, _task, _tcp) = echo().await;
    let (door, addr) = door(port, 4);
    until("checked", || door.eligible_relays() == 1).await;
    let mut sources = Vec::new();
    for i in 0..50u8 {
        let s = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2 + i % 8), 0))
            .await
            .expect("ok");
        s.send_to(b"junk", addr).await.expect("ok");
        sources.push(s);
    }
    // The first four are answered; wait until their echoes are back.
    let mut answered = 0;
    for s in &sources {
        let mut buf = [0u8; 16];
        if tokio::time::timeout(Duration::from_millis(200), s.recv_from(&mut buf))
            .await
            .is_ok()
        {
            answered += 1;
        }
    }
    assert_eq!(answered, 4);
    assert_eq!(door.flows(), 4);
    door.stop().await;
}

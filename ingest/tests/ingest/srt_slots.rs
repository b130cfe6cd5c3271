//! The SRT listener's session slots against a real listener on a free UDP port (the
//! catalog an in-memory fake), driven by raw handshakes: a caller whose handshake can
//! never complete does not keep its address's slot (issue 45 item 17).

use std::sync::Arc;
use std::time::Duration;

use ingest::{IngestMetrics, Registry};
use intake::srt::SrtSettings;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// A caller's HSv5 handshake: an induction (`cookie` 0), or a conclusion with `cookie`,
/// the stream id `sid` and, if `hsreq`, the SRT handshake request libsrt sends.
fn handshake(conclusion: bool, cookie: i32, sid: &str, hsreq: bool) -> Vec<u8> {
    let mut d = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    d.extend(5u32.to_be_bytes());
    let flags: u32 = match (conclusion, hsreq) {
        (false, _) => 0x4a17,
        (true, true) => 0b101,
        (true, false) => 0b100,
    };
    d.extend(flags.to_be_bytes());
    d.extend(1u32.to_be_bytes());
    d.extend(1500u32.to_be_bytes());
    d.extend(8192u32.to_be_bytes());
    d.extend(if conclusion { -1i32 } else { 1 }.to_be_bytes());
    d.extend(0x1234u32.to_be_bytes());
    d.extend(cookie.to_be_bytes());
    d.extend([1, 0, 0, 127]);
    d.extend([0; 12]);
    if conclusion {
        if hsreq {
            d.extend([0, 1, 0, 3]);
            d.extend([0, 1, 5, 1, 0, 0, 0, 0xbf, 0, 0x78, 0, 0x78]);
        }
        // The stream id as SRT writes strings: 32-bit little-endian words.
        let mut words = sid.as_bytes().to_vec();
        words.resize(sid.len().div_ceil(4) * 4, 0);
        d.extend([0, 5]);
        d.extend(u16::try_from(words.len() / 4).expect("short").to_be_bytes());
        for word in words.chunks(4) {
            d.extend(word.iter().rev());
        }
    }
    d
}

/// The next datagram's handshake type (a rejection is 1000 or more), if one comes soon.
async fn answer(socket: &UdpSocket) -> Option<(i32, i32)> {
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n >= 48).then(|| {
        let word = |at: usize| i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        (word(36), word(44))
    })
}

/// Induction then conclusion from a new port; the listener's answer to the conclusion.
async fn call(to: std::net::SocketAddr, sid: &str, hsreq: bool) -> Option<i32> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket
        .send_to(&handshake(false, 0, "", false), to)
        .await
        .expect("send");
    let (_, cookie) = answer(&socket).await?;
    socket
        .send_to(&handshake(true, cookie, sid, hsreq), to)
        .await
        .expect("send");
    answer(&socket).await.map(|(kind, _)| kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_hsreq_is_rejected_and_keeps_no_slot() {
    let catalog = Arc::new(crate::support::Authority::default());
    catalog.add("sk_srt_slot_key", "cam", 0);
    let (events, _keep) = tokio::sync::mpsc::channel(16);
    let registry = Registry::new(
        crate::support::settings(Duration::from_secs(1), 4, None),
        catalog,
        events,
        IngestMetrics::default(),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let to = socket.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let settings = SrtSettings {
        max_sessions_per_ip: 1,
        ..SrtSettings::default()
    };
    let server = tokio::spawn(ingest::srt::serve(socket, registry, settings, stop.clone()));

    // A valid key but no HSREQ: a rejection (SRT_REJ_ROGUE), not silence while its slot
    // is held.
    let first = call(to, "sk_srt_slot_key", false).await;
    assert_eq!(first, Some(1004), "the caller without HSREQ");
    // The address's one slot is free: the next caller reaches the key check (an unknown
    // key, SRT_REJX_FORBIDDEN) instead of being refused for the cap (SRT_REJX_OVERLOAD).
    let second = call(to, "sk_unknown", true).await;
    assert_eq!(second, Some(2403), "the next caller from the same address");

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the listener stops")
        .expect("joins")
        .expect("ends cleanly");
}

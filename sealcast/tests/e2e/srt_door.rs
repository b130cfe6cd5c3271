//! Issue 45's SRT door against the real listener, on loopback: the datagrams that killed
//! srt-protocol's listener task (item 1), a flood from distinct addresses (item 2) and a
//! forged cookie (item 3). The protocol-level tests are in `vendor/srt-protocol`
//! (`FORK.md`); these check that the `sealcast up` process really holds.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio::process::Command;

use crate::cluster::Cluster;
use testkit::ffmpeg::Publisher;

/// A handshake datagram (HSv5) of `shake_type` with `cookie` and these extensions (type,
/// 32-bit words as SRT writes them).
fn handshake(shake_type: i32, cookie: i32, extensions: &[(u16, &[u8])]) -> Vec<u8> {
    let mut d = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    d.extend(5u32.to_be_bytes());
    // Induction: the SRT magic code; conclusion: HSREQ | CONFIG.
    d.extend(if shake_type == 1 { 0x4a17u32 } else { 0b101 }.to_be_bytes());
    d.extend(1u32.to_be_bytes()); // initial sequence number
    d.extend(1500u32.to_be_bytes());
    d.extend(8192u32.to_be_bytes());
    d.extend(shake_type.to_be_bytes());
    d.extend(0x1234u32.to_be_bytes()); // socket id
    d.extend(cookie.to_be_bytes());
    d.extend([1, 0, 0, 127]);
    d.extend([0; 12]);
    for (ty, words) in extensions {
        d.extend(ty.to_be_bytes());
        d.extend(u16::try_from(words.len() / 4).unwrap_or(0).to_be_bytes());
        d.extend(*words);
    }
    d
}

/// HSREQ: SRT 1.5.1, libsrt's flags, 120 ms both ways.
const HSREQ: &[u8] = &[0, 1, 5, 1, 0, 0, 0, 0xbf, 0, 0x78, 0, 0x78];

/// An induction from `socket`, and the cookie the listener answered with.
async fn cookie(socket: &UdpSocket, to: SocketAddr) -> anyhow::Result<i32> {
    socket.send_to(&handshake(1, 0, &[]), to).await?;
    let mut answer = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut answer))
        .await
        .context("no answer to an induction")??;
    anyhow::ensure!(n >= 64, "a short answer to an induction: {n} bytes");
    Ok(i32::from_be_bytes([
        answer[44], answer[45], answer[46], answer[47],
    ]))
}

/// The handshake type of the next datagram on `socket` within `wait`, if one comes.
async fn answer_type(socket: &UdpSocket, wait: Duration) -> anyhow::Result<Option<i32>> {
    let mut answer = [0u8; 1500];
    match tokio::time::timeout(wait, socket.recv_from(&mut answer)).await {
        Err(_) => Ok(None),
        Ok(received) => {
            let (n, _) = received?;
            anyhow::ensure!(n >= 40, "a short answer: {n} bytes");
            Ok(Some(i32::from_be_bytes([
                answer[36], answer[37], answer[38], answer[39],
            ])))
        }
    }
}

/// A short 240p publish over SRT with Debian's ffmpeg; the stream goes live.
async fn publish_goes_live(cluster: &Cluster, stream: &str) -> anyhow::Result<()> {
    let key = cluster.add_stream(stream).await?;
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=426x240:rate=25:duration=12",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:duration=12"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-bf",
            "0",
        ])
        .args(["-c:a", "aac", "-f", "mpegts"])
        .arg(cluster.srt_url(&key))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting ffmpeg")?;
    let publisher = Publisher::from_child(child, "ffmpeg over SRT");
    cluster
        .wait_media(stream, "src", 1, Duration::from_secs(30))
        .await
        .with_context(|| format!("{stream} after the datagrams"))?;
    publisher.wait_success().await
}

/// Item 1: the handshakes libsrt sends for `congestion=file`, `transtype=file`,
/// `packetfilter=fec` and a group, an empty reject and zero-length extensions, each with
/// a genuine cookie (so they reach the listener's answer) and without: each genuine one
/// is answered with a rejection, and afterwards an SRT publish still goes live (before
/// the fix the first of them ended the listener's task, and no caller was answered
/// again).
pub(crate) async fn killer_datagrams_then_a_publish(cluster: &Cluster) -> anyhow::Result<()> {
    let to = cluster.srt_addr();
    let killers: [(u16, &[u8]); 7] = [
        (6, b"elif"),
        (7, b",cefsloc\x0001:"),
        (8, &[1, 0, 0, 0]),
        (0, &[]),
        (5, &[]),
        (6, &[]),
        (7, &[]),
    ];
    for (ty, words) in killers {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        socket
            .send_to(&handshake(-1, 0, &[(ty, words), (1, HSREQ)]), to)
            .await?;
        let cookie = cookie(&socket, to).await?;
        let datagram = handshake(-1, cookie, &[(ty, words), (1, HSREQ)]);
        socket.send_to(&datagram, to).await?;
        let answer = answer_type(&socket, Duration::from_secs(5)).await?;
        match (ty, answer) {
            // A rejection (a code of 1000 or more); libsrt's reason for each is in the
            // fork's tests.
            (_, Some(code)) if code >= 1000 => {}
            // An empty stream id is a caller the ingest rejects too; an empty string
            // extension otherwise is dropped as unparsable, without an answer.
            (5..=7, None) if words.is_empty() => {}
            (_, other) => anyhow::bail!("extension {ty}: answered {other:?}"),
        }
    }
    publish_goes_live(cluster, "srt-after-killers").await
}

/// Item 3: a conclusion carrying a forged cookie (none, guesses, the cookie another
/// address was handed) gets no answer at all, while the genuine one is answered.
pub(crate) async fn forged_cookie_gets_no_conclusion(cluster: &Cluster) -> anyhow::Result<()> {
    let to = cluster.srt_addr();
    let other = UdpSocket::bind("127.0.0.1:0").await?;
    let someone_elses = cookie(&other, to).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let sid: &[u8] = b"aaaa";
    for forged in [0, 1, -1, 0x1234_5678, someone_elses] {
        let datagram = handshake(-1, forged, &[(1, HSREQ), (5, sid)]);
        socket.send_to(&datagram, to).await?;
        anyhow::ensure!(
            answer_type(&socket, Duration::from_millis(500))
                .await?
                .is_none(),
            "a conclusion with the forged cookie {forged} was answered"
        );
    }
    let genuine = cookie(&socket, to).await?;
    socket
        .send_to(&handshake(-1, genuine, &[(1, HSREQ), (5, sid)]), to)
        .await?;
    let answer = answer_type(&socket, Duration::from_secs(5)).await?;
    // An unknown key: SRT_REJX_FORBIDDEN (2403).
    anyhow::ensure!(answer == Some(2403), "the genuine cookie: {answer:?}");
    Ok(())
}

/// The process's resident memory, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// Item 2: 200,000 inductions from as many source addresses (127.20.0.0/14, loopback
/// only) to a cluster of its own (so that no other test's memory is counted): the
/// process's RSS is back within 32 MiB of where it was within 60 s (before the fix it
/// grew by about 260 MiB for good), and an SRT publish goes live afterwards.
pub(crate) async fn datagram_flood_memory_returns() -> anyhow::Result<()> {
    const DATAGRAMS: u32 = 200_000;
    let cluster = Cluster::start_with(&["--broadcast", "1"]).await?;
    let result = async {
        let pid = cluster.pid().await.context("no process id")?;
        let to = cluster.srt_addr();
        let before = rss_kib(pid)?;
        let started = Instant::now();
        let answered = tokio::task::spawn_blocking(move || -> anyhow::Result<u32> {
            let induction = handshake(1, 0, &[]);
            let mut answered = 0;
            for n in 0..DATAGRAMS {
                let [_, b, c, d] = n.to_be_bytes();
                let from = SocketAddr::from((Ipv4Addr::new(127, 20 + b, c, d), 0));
                let socket = std::net::UdpSocket::bind(from)?;
                // A full socket buffer drops some: what arrives is what counts.
                let _ = socket.send_to(&induction, to);
                // One caller in a thousand waits for its answer: the flood reaches the
                // listener, and the listener still answers during it. Like a real SRT
                // caller it sends its induction again every 250 ms, up to 2 s: one lost in
                // the flood's full socket buffer is the network's loss, not the listener's.
                if n % 1000 == 0 {
                    socket.set_read_timeout(Some(Duration::from_millis(250)))?;
                    let mut answer = [0u8; 1500];
                    for attempt in 0..8 {
                        if attempt > 0 {
                            let _ = socket.send_to(&induction, to);
                        }
                        if socket.recv_from(&mut answer).is_ok() {
                            answered += 1;
                            break;
                        }
                    }
                }
            }
            Ok(answered)
        })
        .await??;
        anyhow::ensure!(
            answered >= DATAGRAMS / 1000 * 9 / 10,
            "{answered} of {} sampled inductions answered",
            DATAGRAMS / 1000
        );
        let sent = started.elapsed();
        let peak = rss_kib(pid)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let settled = loop {
            let now = rss_kib(pid)?;
            if now <= before + 32 * 1024 {
                break now;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "RSS {before} KiB before {DATAGRAMS} datagrams, {now} KiB 60 s after (peak {peak})"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        eprintln!(
            "srt flood: {DATAGRAMS} datagrams in {sent:?} ({answered} of {} sampled answered); RSS {before} KiB before, {peak} KiB after, {settled} KiB settled",
            DATAGRAMS / 1000
        );
        publish_goes_live(&cluster, "srt-after-flood").await
    }
    .await;
    let stopped = cluster.stop_and_check_logs().await;
    result.and(stopped)
}

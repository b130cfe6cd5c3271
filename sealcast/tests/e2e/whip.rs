//! WHIP (RFC 9725) through the load balancer, with real publishers: FFmpeg 9's `whip`
//! muxer (the static build PyPI's imageio-ffmpeg installs) and Chromium on the `/publish`
//! page with its fake camera, each offering the DTLS role it offers by default (FFmpeg
//! `setup:passive`, so the ingest is the DTLS client; Chromium `actpass`, so the ingest
//! is the server), and FFmpeg offering the other role too (the takeover test). Each comes
//! out as the whole aligned ladder that ffprobe reads and Chromium plays; wrong keys and malformed offers get RFC 9725's answers;
//! garbage on the WebRTC port (UDP, and TCP for ICE-TCP) changes nothing for the streams
//! being published; Chromium left with only the TCP candidate publishes over ICE-TCP; a WHIP
//! publisher takes a stream over from an RTMP one and back; slow POSTs with wrong keys from
//! many addresses take no session place from a publisher with its key (issue 45 item 5).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use testkit::browser::{Browser, BrowserOptions};
use testkit::ffmpeg::{self, Publisher, TestPattern};
use tokio::process::Command;

use crate::cluster::Cluster;

/// The rungs a 1280x720 source comes out as.
const LADDER_720P: [(&str, u32, u32); 4] = [
    ("src", 1280, 720),
    ("720p", 1280, 720),
    ("480p", 854, 480),
    ("360p", 640, 360),
];

/// FFmpeg 9, as `testkit::ffmpeg::ffmpeg9` finds it.
fn ffmpeg9() -> anyhow::Result<std::path::PathBuf> {
    testkit::ffmpeg::ffmpeg9()
}

/// The DTLS role FFmpeg's WHIP muxer offers (RFC 8842): either must work.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DtlsRole {
    /// FFmpeg's default: it offers `setup:passive` and waits as DTLS server; the ingest
    /// answers `setup:active` and starts the handshake.
    Default,
    /// `-whip_flags dtls_active`: FFmpeg is the DTLS client, the ingest the server.
    Active,
}

impl DtlsRole {
    fn ffmpeg_args(self) -> &'static [&'static str] {
        match self {
            DtlsRole::Default => &[],
            DtlsRole::Active => &["-whip_flags", "dtls_active"],
        }
    }
}

/// FFmpeg 9 publishing a `width`x`height` 30 fps test pattern with a tone over WHIP to
/// `cluster`'s `stream` for `seconds`, offering DTLS `role`: [`publish_whip_to`] its load
/// balancer.
fn publish_whip(
    cluster: &Cluster,
    stream: &str,
    key: &str,
    size: (u32, u32),
    seconds: u32,
    role: DtlsRole,
) -> anyhow::Result<Publisher> {
    publish_whip_to(
        &whip_url(cluster, stream),
        &cluster.ca(),
        key,
        size,
        seconds,
        role,
    )
}

/// FFmpeg 9 publishing a `width`x`height` 30 fps test pattern with a tone over WHIP to
/// `url` (a load balancer's `https://…/whip/NAME`, whose certificate `ca` signed) for
/// `seconds`: x264 without B-frames (WebRTC has none), a keyframe
/// every 2 s (FFmpeg's muxer answers no keyframe request), Opus. FFmpeg's HTTPS trusts the
/// cluster's CA through OpenSSL's `SSL_CERT_FILE` (its WHIP muxer has no CA option).
/// `role` is the DTLS role FFmpeg offers to take.
pub(crate) fn publish_whip_to(
    url: &str,
    ca: &std::path::Path,
    key: &str,
    (width, height): (u32, u32),
    seconds: u32,
    role: DtlsRole,
) -> anyhow::Result<Publisher> {
    let child = Command::new(ffmpeg9()?)
        .env("SSL_CERT_FILE", ca)
        .args(["-hide_banner", "-loglevel", "warning", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=30"))
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "60",
            "-keyint_min",
            "60",
        ])
        .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "1500k"])
        .args(["-c:a", "libopus", "-ac", "2", "-ar", "48000", "-b:a", "96k"])
        .args(role.ffmpeg_args())
        .args(["-f", "whip", "-authorization", key, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting FFmpeg 9")?;
    Ok(Publisher::from_child(
        child,
        &format!("FFmpeg 9 WHIP {width}x{height}"),
    ))
}

fn whip_url(cluster: &Cluster, stream: &str) -> String {
    format!("{}/whip/{stream}", cluster.https)
}

/// An HTTPS client that trusts the cluster's CA.
fn client(cluster: &Cluster) -> anyhow::Result<reqwest::Client> {
    let ca = std::fs::read(cluster.ca())?;
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// FFmpeg 9 publishes 720p over WHIP through the load balancer with its default options
/// (only the URL and the key given): the whole ladder, aligned, probed, and played by
/// Chromium through the load balancer.
pub(crate) async fn ffmpeg9_ladder(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("whipff").await?;
    let publisher = publish_whip(cluster, "whipff", &key, (1280, 720), 40, DtlsRole::Default)?;
    crate::ladder::check_ladder(cluster, "whipff", &LADDER_720P)
        .await
        .map_err(|e| e.context("the ladder of FFmpeg 9's WHIP publish"))?;
    let watch = async {
        tokio::time::sleep(Duration::from_secs(8)).await;
        anyhow::Ok(())
    };
    let ((), stall, _) = crate::pages::plays_through(&cluster.https, "whipff", watch).await?;
    ensure!(stall < 1.5, "Chromium's video stood still {stall:.1} s");
    publisher.wait_success().await?;
    // The muxer's DELETE ends the stream at once.
    cluster.wait_ended("whipff").await?;
    Ok(())
}

/// Chromium publishes from `/publish` with its fake camera and microphone: the page goes
/// live, shows a bitrate and the time since start, the stream comes out as four aligned
/// rungs, and Stop ends it.
pub(crate) async fn chromium_publish_page(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("whipweb").await?;
    let options = BrowserOptions {
        fake_media: true,
        ..BrowserOptions::default()
    };
    let mut browser = Browser::start_with(1280, 800, options).await?;
    let outcome = async {
        browser.goto(&format!("{}/publish", cluster.https)).await?;
        browser
            .execute(
                "document.getElementById('stream-name').value = arguments[0].name;
                 document.getElementById('stream-key').value = arguments[0].key;
                 document.getElementById('start').click();",
                json!({ "name": "whipweb", "key": key }),
            )
            .await?;
        let live = browser
            .wait_for(
                "the page is live",
                "const p = window.sealcast && window.sealcast.publish;
                 if (!p) return null;
                 if (p.state === 'failed') return { failed: p.error };
                 return p.state === 'live' && p.bitrateKbps > 0 && p.elapsedMs > 1000 ? p : null;",
                Value::Null,
                Duration::from_secs(45),
                |_| Ok(()),
            )
            .await?;
        ensure!(
            live["codec"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case("video/H264")),
            "the page does not send H.264: {live}"
        );
        ensure!(
            live["resource"]
                .as_str()
                .is_some_and(|r| r.contains("/whip/whipweb/")),
            "no session URL: {live}"
        );
        let master = cluster
            .wait_master("whipweb", 4, Duration::from_secs(45))
            .await?;
        check_aligned(cluster, "whipweb", &master).await?;
        // The page shows what it sends.
        let shown = browser
            .execute(
                "return [document.getElementById('st-bitrate').textContent,
                         document.getElementById('st-elapsed').textContent];",
                Value::Null,
            )
            .await?;
        ensure!(
            shown[0].as_str().is_some_and(|s| s.ends_with("kb/s"))
                && shown[1].as_str().is_some_and(|s| s.contains(':')),
            "the page shows no bitrate or time: {shown}"
        );
        browser
            .execute("document.getElementById('stop').click();", Value::Null)
            .await?;
        cluster.wait_ended("whipweb").await?;
        // Nothing but this origin was asked for anything.
        let events = browser.events().await?;
        let origin = cluster.https.as_str();
        ensure!(
            events.requests.iter().all(|u| u.starts_with(origin)),
            "the page requested outside its origin: {:?}",
            events.requests
        );
        ensure!(events.errors.is_empty(), "page errors: {:?}", events.errors);
        anyhow::Ok(())
    }
    .await;
    let _ = browser.quit().await;
    outcome
}

/// What the ICE-TCP trial's page does: publishes the fake camera over WHIP by itself, and
/// takes every UDP candidate out of the answer before it reads it, as a publisher whose
/// network lets no UDP out would be left with only the TCP one; reports in
/// `window.iceTcp`.
const PUBLISH_WITHOUT_UDP: &str = r#"
const { name, key } = arguments[0];
const report = window.iceTcp = { state: 'starting' };
(async () => {
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    audio: true });
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  report.pc = pc;
  for (const track of media.getTracks()) {
    pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
  }
  pc.addEventListener('connectionstatechange', () => { report.state = pc.connectionState; });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') done();
    });
    setTimeout(done, 3000);
  });
  const response = await fetch(`/whip/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` },
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw new Error(`the POST was answered ${response.status}`);
  report.resource = new URL(response.headers.get('location'), location.href).href;
  const lines = (await response.text()).split('\r\n');
  const candidates = lines.filter((l) => l.startsWith('a=candidate:'));
  report.candidates = candidates;
  const kept = lines.filter((l) => !(l.startsWith('a=candidate:') && / udp /i.test(l)));
  await pc.setRemoteDescription({ type: 'answer', sdp: kept.join('\r\n') });
  // The picture keeps its size while the TCP path's estimate ramps up (as the /publish
  // page does): a size change is a new source configuration for the ladder.
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const parameters = sender.getParameters();
    parameters.degradationPreference = 'maintain-resolution';
    await sender.setParameters(parameters);
  }
  report.state = pc.connectionState;
})().catch((e) => { report.state = 'failed'; report.error = String(e); });
"#;

/// The selected candidate pair of the ICE-TCP trial's connection, once it is connected.
const SELECTED_PAIR: &str = r#"
const report = window.iceTcp;
if (!report) return null;
if (report.state === 'failed') return { failed: report.error || 'the connection failed' };
if (report.state !== 'connected') return null;
return (async () => {
  const stats = await report.pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  let sent = 0;
  stats.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') sent += s.bytesSent; });
  return { local: local && local.protocol, tcpType: local && local.tcpType,
           remote: remote && remote.protocol, remotePort: remote && remote.port,
           candidates: report.candidates, resource: report.resource, sent };
})();
"#;

/// Chromium publishes to a WHIP answer whose UDP candidate it never sees (the page takes
/// it out, as a network that lets no UDP out leaves a publisher with only TCP): it
/// connects over ICE-TCP to the passive TCP candidate, its own stats name TCP as the
/// selected pair's protocol, the stream comes out as four aligned rungs, and a DELETE
/// ends it.
pub(crate) async fn chromium_over_ice_tcp(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("whiptcp").await?;
    let options = BrowserOptions {
        fake_media: true,
        ..BrowserOptions::default()
    };
    let mut browser = Browser::start_with(1280, 800, options).await?;
    let outcome = async {
        // Any page of the cluster's origin: the script posts to its /whip/.
        browser.goto(&format!("{}/publish", cluster.https)).await?;
        browser
            .execute(
                PUBLISH_WITHOUT_UDP,
                json!({ "name": "whiptcp", "key": key }),
            )
            .await?;
        let pair = browser
            .wait_for(
                "Chromium is connected over ICE-TCP and sending",
                SELECTED_PAIR,
                Value::Null,
                Duration::from_secs(45),
                |_| Ok(()),
            )
            .await?;
        let candidates = pair["candidates"].as_array().cloned().unwrap_or_default();
        ensure!(
            candidates
                .iter()
                .filter_map(Value::as_str)
                .any(|c| c.contains(" tcp ") && c.contains("tcptype passive")),
            "the answer listed no passive TCP candidate: {pair}"
        );
        ensure!(
            pair["local"] == "tcp" && pair["remote"] == "tcp" && pair["tcpType"] == "active",
            "the selected pair is not Chromium's active TCP to our passive one: {pair}"
        );
        let master = cluster
            .wait_master("whiptcp", 4, Duration::from_secs(45))
            .await?;
        check_aligned(cluster, "whiptcp", &master).await?;
        let resource = pair["resource"].as_str().context("no session URL")?;
        let status = browser
            .execute(
                "return fetch(arguments[0].resource, { method: 'DELETE',
                   headers: { authorization: `Bearer ${arguments[0].key}` } })
                   .then((r) => r.status);",
                json!({ "resource": resource, "key": key }),
            )
            .await?;
        ensure!(status == 200, "DELETE answered {status}");
        cluster.wait_ended("whiptcp").await?;
        anyhow::Ok(())
    }
    .await;
    let _ = browser.quit().await;
    outcome
}

/// Every rung of `master` lists segments whose first frames are keyframes at the same
/// presentation time on every rung (what ffprobe reads), and none longer than a target
/// duration.
async fn check_aligned(
    cluster: &Cluster,
    stream: &str,
    master: &m3u8_rs::MasterPlaylist,
) -> anyhow::Result<()> {
    let mut firsts: std::collections::BTreeMap<u64, Vec<(String, f64)>> = Default::default();
    for variant in &master.variants {
        let rung = variant.uri.trim_end_matches("/index.m3u8").to_owned();
        let playlist = cluster
            .wait_media(stream, &rung, 3, Duration::from_secs(45))
            .await?;
        let init = cluster
            .get_bytes(&format!("/live/{stream}/{rung}/init.mp4"))
            .await?;
        for (i, segment) in playlist.segments.iter().enumerate().skip(1) {
            ensure!(
                f64::from(segment.duration) <= playlist.target_duration as f64 + 0.5,
                "{rung}: EXTINF {} past TARGETDURATION {}",
                segment.duration,
                playlist.target_duration
            );
            let seq = playlist.media_sequence + i as u64;
            let bytes = cluster
                .get_bytes(&format!("/live/{stream}/{rung}/{seq}.m4s"))
                .await?;
            let probe = ffmpeg::probe_segment(Some(&init), &bytes).await?;
            ensure!(probe.first_video_is_key, "{rung}/{seq}: no keyframe first");
            ensure!(probe.has_audio, "{rung}/{seq}: no AAC audio");
            firsts
                .entry(seq)
                .or_default()
                .push((rung.clone(), probe.first_video_pts));
        }
    }
    let mut compared = 0;
    for (seq, rungs) in &firsts {
        if rungs.len() < 2 {
            continue;
        }
        compared += 1;
        for (rung, pts) in rungs {
            ensure!(
                (pts - rungs[0].1).abs() < 1e-6,
                "segment {seq}: {rung} starts at {pts}, {} at {}",
                rungs[0].0,
                rungs[0].1
            );
        }
    }
    ensure!(compared > 0, "no segment was probed on two rungs");
    Ok(())
}

/// A minimal offer FFmpeg 9 would send (H.264 and Opus), for the refusals below.
fn offer() -> String {
    let fingerprint = (0..32)
        .map(|i| format!("{i:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let section = |kind: &str, pt: u32, mid: u32, rtpmap: &str, fmtp: &str| {
        format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:e2etest1\r\n\
             a=ice-pwd:e2etestpasswordpassword12\r\na=fingerprint:sha-256 {fingerprint}\r\n\
             a=setup:passive\r\na=mid:{mid}\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:{pt} {rtpmap}\r\n{fmtp}"
        )
    };
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n{}{}",
        section("audio", 111, 0, "opus/48000/2", ""),
        section(
            "video",
            106,
            1,
            "H264/90000",
            "a=fmtp:106 packetization-mode=1;profile-level-id=42e01f\r\n"
        ),
    )
}

/// Wrong and missing keys, malformed and codec-less offers get RFC 9725's answers through
/// the load balancer; a session is answered with the ingest's one candidate; garbage on
/// that UDP port, and a session that never connects, leave `healthy` producing segments.
pub(crate) async fn refusals_and_garbage(cluster: &Cluster, healthy: &str) -> anyhow::Result<()> {
    let before = cluster
        .wait_media(healthy, "src", 1, Duration::from_secs(30))
        .await?;
    let before_last = before.media_sequence + before.segments.len() as u64;
    let key = cluster.add_stream("whipbad").await?;
    let other = cluster.add_stream("whipother").await?;
    let http = client(cluster)?;
    let url = whip_url(cluster, "whipbad");
    let post = |key: Option<&str>, content_type: &str, body: String| {
        let mut request = http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let cases = [
        (None, "application/sdp", offer(), 401),
        (Some("sk_wrong"), "application/sdp", offer(), 403),
        (Some(other.as_str()), "application/sdp", offer(), 403),
        (Some(key.as_str()), "text/plain", offer(), 415),
        (
            Some(key.as_str()),
            "application/sdp",
            "v=0\r\nnonsense".to_owned(),
            400,
        ),
        (
            Some(key.as_str()),
            "application/sdp",
            offer().replace("H264/90000", "VP8/90000"),
            422,
        ),
    ];
    for (key, content_type, body, expected) in cases {
        let response = post(key, content_type, body).await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        ensure!(
            status == expected,
            "expected {expected}, got {status}: {text}"
        );
        ensure!(
            key.is_none_or(|k| !text.contains(k)),
            "the answer echoed the key: {text}"
        );
    }
    // A good offer from a publisher that never connects: answered, then it expires.
    let response = post(Some(&key), "application/sdp", offer()).await?;
    ensure!(
        response.status().as_u16() == 201,
        "a good offer got {}",
        response.status()
    );
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("no Location")?
        .to_owned();
    let answer = response.text().await?;
    let candidate = candidate(&answer).with_context(|| format!("no candidate in {answer}"))?;
    // Garbage, a forged STUN request, a DTLS hello with nothing before it.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let mut junk: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        vec![0; 1500],
        vec![
            0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            0x00, 0x08, 0x00, 0x00,
        ],
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
        vec![0x80, 106, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x65],
    ];
    for i in 0..2000u32 {
        junk.push(i.to_be_bytes().repeat(1 + (i % 300) as usize));
    }
    for datagram in &junk {
        socket.send_to(datagram, candidate).await?;
    }
    // The same port over TCP (ICE-TCP): a first frame that is not STUN, STUN naming no
    // session, a frame longer than a datagram; each connection is closed at once.
    let mut forged = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    forged.extend_from_slice(&[9; 12]);
    forged.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
    forged.extend_from_slice(b"nobody:x");
    let framed = |bytes: &[u8]| {
        let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(bytes);
        frame
    };
    for first in [framed(b"hello"), framed(&forged), vec![0xff, 0xff, 0, 0]] {
        tcp_refused(candidate, &first).await?;
    }
    // The session's DELETE with another stream's key is refused, with its own accepted.
    let session = format!("{}{location}", cluster.https);
    let wrong = http.delete(&session).bearer_auth(&other).send().await?;
    ensure!(
        wrong.status().as_u16() == 403,
        "DELETE with another key: {}",
        wrong.status()
    );
    let deleted = http.delete(&session).bearer_auth(&key).send().await?;
    ensure!(
        deleted.status().as_u16() == 200,
        "DELETE: {}",
        deleted.status()
    );
    let gone = http.delete(&session).bearer_auth(&key).send().await?;
    ensure!(
        gone.status().as_u16() == 404,
        "a second DELETE: {}",
        gone.status()
    );

    // The healthy stream goes on: a segment newer than any before the garbage comes.
    cluster
        .wait_media_until(healthy, "src", Duration::from_secs(15), |p| {
            p.media_sequence + p.segments.len() as u64 > before_last
        })
        .await
        .with_context(|| format!("{healthy} stopped producing segments after {before_last}"))?;
    Ok(())
}

/// Connects to ICE-TCP at `at`, sends `first`, and expects the ingest to close the
/// connection within 5 s (its setup timeout is 10 s: the frame closed it).
async fn tcp_refused(at: SocketAddr, first: &[u8]) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(at)
        .await
        .with_context(|| format!("ICE-TCP at {at}"))?;
    stream.write_all(first).await?;
    let mut buf = [0u8; 256];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(()),
        Ok(Ok(n)) => anyhow::bail!("ICE-TCP answered {n} bytes to {first:02x?}"),
        Err(_) => anyhow::bail!("ICE-TCP kept a connection open after {first:02x?}"),
    }
}

/// The `IP PORT` of the answer's (first, UDP) host candidate.
fn candidate(answer: &str) -> Option<SocketAddr> {
    answer.lines().find_map(|line| {
        let fields: Vec<&str> = line.strip_prefix("a=candidate:")?.split(' ').collect();
        let ip = fields.get(4)?.parse().ok()?;
        let port = fields.get(5)?.trim().parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

/// An RTMP publisher is taken over by a WHIP one with the same key (FFmpeg as the DTLS
/// client), which is taken over by RTMP again: the media sequence keeps counting, each
/// takeover is a discontinuity.
pub(crate) async fn takeover_across_protocols(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("whipswap").await?;
    let rtmp = TestPattern::new(426, 240, 30, 60).publish(&cluster.rtmp_url(&key))?;
    let first = cluster
        .wait_media("whipswap", "src", 2, Duration::from_secs(30))
        .await?;
    let whip = publish_whip(cluster, "whipswap", &key, (426, 240), 60, DtlsRole::Active)?;
    // The RTMP publisher is told to go.
    ensure!(
        !rtmp.wait().await?.success(),
        "the RTMP publisher was not taken over"
    );
    let second = cluster
        .wait_media_until("whipswap", "src", Duration::from_secs(30), |p| {
            p.segments.iter().filter(|s| s.discontinuity).count() >= 1
                && p.segments.last().is_some_and(|s| !s.discontinuity)
        })
        .await?;
    ensure!(
        second.media_sequence + second.segments.len() as u64
            > first.media_sequence + first.segments.len() as u64,
        "the sequence did not continue"
    );
    let rtmp_again = TestPattern::new(426, 240, 30, 8).publish(&cluster.rtmp_url(&key))?;
    ensure!(
        !whip.wait().await?.success(),
        "the WHIP publisher was not taken over"
    );
    rtmp_again.wait_success().await?;
    let ended = cluster.wait_ended("whipswap").await?;
    // Discontinuities still in the window, plus those that left it (counted by
    // EXT-X-DISCONTINUITY-SEQUENCE).
    let in_window = ended.segments.iter().filter(|s| s.discontinuity).count() as u64;
    ensure!(
        in_window + ended.discontinuity_sequence >= 2,
        "two takeovers, {in_window} discontinuities in the window and {} before it",
        ended.discontinuity_sequence
    );
    Ok(())
}

/// An offer's body that sends its first bytes, says so on `polled`, and never sends the
/// rest: a slow POST.
struct Stalled {
    first: Option<bytes::Bytes>,
    polled: Option<tokio::sync::oneshot::Sender<()>>,
}

impl axum::body::HttpBody for Stalled {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        if let Some(polled) = self.polled.take() {
            let _ = polled.send(());
        }
        match self.first.take() {
            Some(first) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first)))),
            None => std::task::Poll::Pending,
        }
    }
}

/// Slow POSTs through the load balancer, each from an address of its own; how many.
const SLOW_POSTS: u8 = 64;

/// Issue 45 item 5: 64 POSTs with a wrong key whose offers never finish, each from its own
/// loopback address (so no per-address cap stops them) and sent again as soon as they are
/// answered, leave a publisher with its key working: FFmpeg 9 publishes over WHIP and its
/// stream comes out. On the old code each of them held one of the ingest's 64 session
/// places (reserved before the body was read or the key checked) and every WHIP publish
/// got 503. The slow ones are cut off at the offer deadline (counted as `whip_slow_offer`;
/// the load balancer may hold the `408` until the body it is still reading ends), never
/// answered with a session.
///
/// On a cluster of its own: the 64 held POSTs go through the load balancer's WHIP route,
/// which the other WHIP trials of the shared cluster use at the same time.
pub(crate) async fn slow_keyless_posts_leave_whip_working() -> anyhow::Result<()> {
    let cluster = Cluster::start_with(&["--broadcast", "1"]).await?;
    let result = slow_keyless_posts_on(&cluster).await;
    let stopped = cluster.stop_and_check_logs().await;
    result.and(stopped)
}

async fn slow_keyless_posts_on(cluster: &Cluster) -> anyhow::Result<()> {
    let slow_before = crate::publishers::publishes(cluster, "whip_slow_offer").await?;
    let key = cluster.add_stream("whipslow").await?;
    let url = whip_url(cluster, "whipslow");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(cluster.ca())?)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut attackers = tokio::task::JoinSet::new();
    let mut started = Vec::new();
    let half = offer()[..300].to_owned();
    for n in 1..=SLOW_POSTS {
        let client = reqwest::Client::builder()
            .add_root_certificate(ca.clone())
            .local_address(std::net::IpAddr::from([127, 0, 1, n]))
            .build()?;
        let (ready, polled) = tokio::sync::oneshot::channel();
        started.push(polled);
        let (url, half, stop) = (url.clone(), half.clone(), stop.clone());
        attackers.spawn(async move {
            let mut ready = Some(ready);
            let mut answers = Vec::new();
            // Bounded: a slow POST is answered within seconds, and the publish below takes
            // well under a minute.
            for _ in 0..30 {
                let body = Stalled {
                    first: Some(bytes::Bytes::from(half.clone())),
                    polled: ready.take(),
                };
                let request = client
                    .post(&url)
                    .header("content-type", "application/sdp")
                    .bearer_auth("sk_not_this_streams_key")
                    .body(reqwest::Body::wrap(body))
                    .send();
                tokio::select! {
                    answered = request => answers.push(answered.map(|r| r.status().as_u16()).map_err(|e| e.to_string())),
                    () = stop.cancelled() => break,
                }
            }
            answers
        });
    }
    for polled in started {
        polled
            .await
            .context("a slow POST was not sent (is 127.0.1.0/24 on loopback?)")?;
    }
    let publisher = publish_whip(cluster, "whipslow", &key, (426, 240), 20, DtlsRole::Default)?;
    let published = cluster
        .wait_media("whipslow", "src", 2, Duration::from_secs(40))
        .await
        .context("the keyed WHIP publish did not come out while slow POSTs waited");
    // The slow ones are cut off at the offer deadline (5 s after each began): wait for
    // the ingest to count them, a bounded while, before the attackers stop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut slow = 0.0;
    while tokio::time::Instant::now() < deadline {
        slow = crate::publishers::publishes(cluster, "whip_slow_offer").await? - slow_before;
        if slow >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.cancel();
    let mut answers = Vec::new();
    while let Some(joined) = attackers.join_next().await {
        answers.extend(joined?);
    }
    published?;
    publisher.wait_success().await?;
    let statuses: Vec<u16> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .copied()
        .collect();
    ensure!(
        statuses.iter().all(|s| !(200..300).contains(s)),
        "a POST with a wrong key was answered with a session: {statuses:?}"
    );
    ensure!(
        slow >= 1.0,
        "no slow POST was cut off at the offer deadline (whip_slow_offer {slow}); answers: {answers:?}"
    );
    cluster.wait_ended("whipslow").await?;
    Ok(())
}

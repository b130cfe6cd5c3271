//! Writes the fuzz targets' seed corpora into `fuzz/corpus/` (and the fixed root the
//! `certificates` target trusts into `fuzz/seeds/`): real bytes wherever a real program
//! makes them.
//!
//! - `rtmp_session`: what ffmpeg sends when it publishes, captured by a server that
//!   answers like the ingest (rml_rtmp, `connect` and `publish` accepted).
//! - `flv`, `h264`, `aac`: an FLV file ffmpeg wrote, its first tag bodies, its AVC decoder
//!   configuration, SPS and AudioSpecificConfig.
//! - `srt_packet`, `srt_listener`: an SRT caller's handshake (induction, then a conclusion
//!   with HSREQ and a stream id, as ffmpeg's libsrt sends them), its keepalive, ACK, NAK and
//!   data, made with srt-protocol's own types; `fuzz/regressions/` holds the datagrams of
//!   issue 45 (config extensions, a zero-length extension, many callers).
//! - `hls_playlist`: the playlists `domain::hls` renders (media windows, low-latency
//!   windows with parts and delta updates, recordings, a master).
//! - `cmaf_c2pa` is not written here: its seeds are a signed part, segment and init segment
//!   from `certs`' test `a_sample_stream_signs_every_part_and_segment`, copied in once.
//! - the rest: values the cluster really sends, made with its own types and keys.
//!
//! Run it with `cargo run -p fuzzing --example seeds` (ffmpeg on the PATH; `-- srt` or
//! `-- hls` for the SRT and HLS targets alone); the output is committed. Certificates are signed by a fresh root each run, written alongside.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use certs::signing::{RootKey, SignatureAlgorithm, SigningKey, Validity};
use domain::push_protocol::{ControlEvent, SegmentHeaders};
use domain::wire::{PartStatement, SegmentStatement, SignedMedia};
use domain::{LiveEvent, NodeId, RenditionInfo, RenditionName, SegmentMeta, SessionId, StreamName};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use sha2::{Digest, Sha256};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let corpus = |target: &str| -> Result<PathBuf> {
        let dir = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    };
    // SRT alone (`-- srt`): datagrams made with srt-protocol's own types; HLS alone
    // (`-- hls`): playlists domain::hls renders.
    let only = std::env::args().nth(1);
    if only.as_deref() != Some("hls") {
        srt_seeds(&fuzz)?;
    }
    if only.as_deref() != Some("srt") {
        hls_seeds(&fuzz)?;
    }
    if matches!(only.as_deref(), Some("srt" | "hls")) {
        return Ok(());
    }
    let tmp = std::env::temp_dir().join(format!("sealcast-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;

    // RTMP: an ffmpeg publish and a GStreamer one, as the ingest's server sees them.
    std::fs::write(
        corpus("rtmp_session")?.join("ffmpeg-publish"),
        capture_publish()?,
    )?;
    if Path::new(GST_LAUNCH).exists() {
        std::fs::write(
            corpus("rtmp_session")?.join("gstreamer-publish"),
            capture_gstreamer_publish()?,
        )?;
    } else {
        eprintln!("{GST_LAUNCH} is not installed: the GStreamer seed is left as it is");
    }

    // FLV and the codec configurations inside it.
    let flv_path = tmp.join("seed.flv");
    let mut args = ffmpeg_input();
    args.extend(["-f", "flv", flv_path.to_str().ok_or("path")?]);
    ffmpeg(&args)?;
    let flv = std::fs::read(&flv_path)?;
    std::fs::write(corpus("flv")?.join("ffmpeg.flv"), &flv)?;
    let mut reader = container::FlvReader::new(&flv[..])?;
    let (mut video, mut audio) = (0, 0);
    while let Some(tag) = reader.next_tag()? {
        let body: &Bytes = &tag.body;
        match tag.kind {
            container::TagKind::Video if video < 3 => {
                std::fs::write(corpus("flv")?.join(format!("video-tag-{video}")), body)?;
                if video == 0 && body.len() > 5 {
                    // AVC sequence header: the decoder configuration record after 5 bytes.
                    let record = &body[5..];
                    std::fs::write(corpus("h264")?.join("avc-config"), record)?;
                    let config = container::h264::AvcConfig::parse(record)?;
                    if let Some(sps) = config.sps.first() {
                        std::fs::write(corpus("h264")?.join("sps"), sps)?;
                    }
                }
                video += 1;
            }
            container::TagKind::Audio if audio < 2 => {
                std::fs::write(corpus("flv")?.join(format!("audio-tag-{audio}")), body)?;
                if audio == 0 && body.len() > 2 {
                    std::fs::write(corpus("aac")?.join("audio-specific-config"), &body[2..])?;
                }
                audio += 1;
            }
            _ => {}
        }
    }

    // Keys: a root and a certified ingest key of each algorithm.
    let now = 1_800_000_000;
    std::fs::create_dir_all(fuzz.join("seeds"))?;
    for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
        let root = RootKey::generate(algorithm)?;
        let ingest = SigningKey::generate(algorithm)?;
        let name = if algorithm == SignatureAlgorithm::Ed25519 {
            "ed25519"
        } else {
            "mldsa65"
        };
        if algorithm == SignatureAlgorithm::Ed25519 {
            std::fs::write(
                fuzz.join("seeds/root.ed25519.pub"),
                root.public_key().public_key().as_bytes(),
            )?;
        }
        let cert = root.certify(
            ingest.public_key(),
            NodeId::new("ingest1")?,
            Validity::starting_at(now - 60, Duration::from_secs(30 * 86_400)),
        )?;
        std::fs::write(
            corpus("certificates")?.join(format!("certificate-{name}")),
            cert.encode(),
        )?;
        // A broadcast node's signed presence, with the edge key's certificate inside.
        let edge = SigningKey::generate(algorithm)?;
        let edge_cert = root.certify_edge(
            edge.public_key(),
            NodeId::new("broadcast")?,
            Validity::starting_at(now - 60, Duration::from_secs(30 * 86_400)),
        )?;
        let presence = domain::presence::Presence {
            role: domain::presence::Role::Broadcast,
            state: domain::presence::PresenceState::Ready,
            url: Some("http://10.0.0.5:8080".into()),
            direct_url: None,
        };
        std::fs::write(
            corpus("presence_load")?.join(format!("presence-signed-{name}")),
            certs::signing::PresenceSigner::new(edge, &edge_cert)?.sign(
                &NodeId::new("broadcast1")?,
                &presence,
                now * 1000,
            ),
        )?;
        std::fs::write(
            corpus("certificates")?.join(format!("edge-certificate-{name}")),
            edge_cert.encode(),
        )?;
        let revocation = root.revoke(ingest.key_id(), now);
        std::fs::write(
            corpus("certificates")?.join(format!("revocation-{name}")),
            revocation.encode(),
        )?;
        // What a viewer fetches: the certificate and the revocation in one trust bundle.
        let bundle = certs::signing::TrustBundle {
            certificates: vec![cert.encode()],
            revocations: vec![revocation.encode()],
        };
        std::fs::write(
            corpus("certificates")?.join(format!("trust-bundle-{name}")),
            bundle.encode(),
        )?;

        let meta = segment_meta()?;
        let bytes = b"segment bytes";
        let statement = SegmentStatement::from_meta(
            &meta,
            algorithm,
            ingest.key_id(),
            bytes.len() as u64,
            Sha256::digest(bytes).into(),
        )
        .encode();
        let signed = SignedMedia::new(statement.clone(), ingest.sign(&statement));
        std::fs::write(
            corpus("manifest")?.join(format!("manifest-{name}")),
            &statement,
        )?;
        std::fs::write(
            corpus("manifest")?.join(format!("envelope-{name}")),
            signed.encode(),
        )?;
        let part = domain::PartMeta {
            stream: meta.stream.clone(),
            rendition: meta.rendition.clone(),
            session: meta.session,
            sequence: meta.sequence,
            index: 2,
            discontinuity_sequence: meta.discontinuity_sequence,
            independent: false,
            duration: std::time::Duration::from_millis(333),
            program_date_time_ms: 1_800_000_000_000,
        };
        let part_statement = PartStatement::from_meta(
            &part,
            algorithm,
            ingest.key_id(),
            bytes.len() as u64,
            Sha256::digest(bytes).into(),
        )
        .encode();
        let signed_part = SignedMedia::new(part_statement.clone(), ingest.sign(&part_statement));
        std::fs::write(
            corpus("manifest")?.join(format!("part-manifest-{name}")),
            &part_statement,
        )?;
        std::fs::write(
            corpus("manifest")?.join(format!("part-envelope-{name}")),
            signed_part.encode(),
        )?;
        let event = serde_json::to_vec(&ControlEvent::Live(LiveEvent::SessionStarted {
            stream: StreamName::new("demo")?,
            session: SessionId(0x5eed),
            private: false,
            record: true,
        }))?;
        let signed_event = ingest.sign_event(event, now * 1000);
        std::fs::write(
            corpus("manifest")?.join(format!("statement-{name}")),
            &signed_event.statement_bytes,
        )?;
        std::fs::write(
            corpus("manifest")?.join(format!("signed-event-{name}")),
            signed_event.encode(),
        )?;
    }

    // Control events, as JSON.
    let stream = StreamName::new("demo")?;
    let events = [
        ControlEvent::Live(LiveEvent::SessionStarted {
            stream: stream.clone(),
            session: SessionId(1),
            private: true,
            record: true,
        }),
        ControlEvent::Live(LiveEvent::Rendition {
            stream: stream.clone(),
            info: RenditionInfo {
                name: RenditionName::new("720p")?,
                width: 1280,
                height: 720,
                frame_rate: 29.97,
                codecs: "avc1.64001f,mp4a.40.2".parse()?,
                init: Some(domain::InitSegment::new(bytes::Bytes::from_static(
                    b"\0\0\0\x10ftypiso6\0\0\0\0",
                ))?),
                part_target_us: Some(333_000),
            },
        }),
        ControlEvent::Live(LiveEvent::RenditionDropped {
            stream: stream.clone(),
            rendition: RenditionName::new("360p")?,
        }),
        ControlEvent::Live(LiveEvent::Ended {
            stream,
            session: SessionId(1),
        }),
        ControlEvent::Synced {
            ingest: NodeId::new("ingest1")?,
        },
        // A stream whose recording is switched off (the only start that says `record`).
        ControlEvent::Live(LiveEvent::SessionStarted {
            stream: StreamName::new("demo")?,
            session: SessionId(2),
            private: false,
            record: false,
        }),
    ];
    for (i, event) in events.iter().enumerate() {
        std::fs::write(
            corpus("control_event")?.join(format!("event-{i}")),
            serde_json::to_vec(event)?,
        )?;
    }

    // A segment push: path, then headers.
    let meta = segment_meta()?;
    let mut push = String::from("/internal/v1/segments/demo/720p/42\n");
    for (name, value) in SegmentHeaders::of(&meta).pairs() {
        push.push_str(&format!("{name}: {value}\n"));
    }
    std::fs::write(corpus("push_request")?.join("segment"), push)?;
    std::fs::write(
        corpus("push_request")?.join("events"),
        "/internal/v1/events\n",
    )?;
    std::fs::write(
        corpus("push_request")?.join("part"),
        "/internal/v1/parts/demo/720p/42/3\nx-sealcast-session: 24301\nx-sealcast-discontinuity-sequence: 0\nx-sealcast-independent: 0\nx-sealcast-duration-us: 333000\n",
    )?;

    // Presence and load reports, as nodes publish them.
    let presence = domain::presence::Presence {
        role: domain::presence::Role::Broadcast,
        state: domain::presence::PresenceState::Ready,
        url: Some("http://10.0.0.5:8080".into()),
        direct_url: Some("https://broadcast1.example".into()),
    };
    std::fs::write(corpus("presence_load")?.join("presence"), presence.encode())?;
    std::fs::write(
        corpus("presence_load")?.join("load"),
        br#"{"role":"broadcast","at":1800000000,"cpu_percent":12.5,"memory_bytes":52428800,"connections":40,"bytes_out":123456789,"viewers":{"demo":38},"segments":{"published":100,"verified":100,"rejected":0}}"#,
    )?;

    // The sticky cookie (the harness's fixed key) and Host values.
    let cookies = loadbalancer::StickyCookies::new(loadbalancer::CookieKey::new(&[7; 32])?);
    let issued = cookies.issue(
        &NodeId::new("broadcast1")?,
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(now),
    );
    std::fs::write(
        corpus("cookie_host")?.join("cookie"),
        format!("sealcast_node={issued}"),
    )?;
    std::fs::write(
        corpus("cookie_host")?.join("host"),
        "streaming.example:8443",
    )?;
    std::fs::write(corpus("cookie_host")?.join("host-v6"), "[::1]:443")?;

    // Configuration files: the example, and small ones.
    std::fs::write(
        corpus("config")?.join("example.toml"),
        std::fs::read(fuzz.join("../sealcast.example.toml"))?,
    )?;
    std::fs::write(
        corpus("config")?.join("ingest.toml"),
        "[ingest]\napp = \"live\"\nend_grace_seconds = 5.0\nmax_connections = 64\n",
    )?;

    // Names and small values.
    for (i, name) in [
        "/live/demo/master.m3u8",
        "/live/demo/720p/index.m3u8",
        "/live/demo/720p/42.ts",
        "/live/demo/720p/init.mp4",
        "/live/demo/720p/42.m4s",
        "/live/demo/720p/42.3.m4s",
        "/vod/demo/00000000000000aa/720p/init.mp4",
        "/vod/demo/00000000000000aa/master.m3u8",
        "sealcast/v1/nodes/broadcast1/presence",
        "sealcast/v1/streams/demo/720p/manifest",
        "mqtt://sealcast:secret@127.0.0.1:1884",
        "0123456789abcdef0123456789abcdef",
        "0000000000005eed",
        "avc1.64001f,mp4a.40.2",
        "_HLS_msn=42&_HLS_part=2&_HLS_skip=YES",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(corpus("names")?.join(format!("name-{i}")), name)?;
    }
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}

fn segment_meta() -> Result<SegmentMeta> {
    Ok(SegmentMeta {
        stream: StreamName::new("demo")?,
        rendition: RenditionName::new("720p")?,
        session: SessionId(0x5eed),
        sequence: 42,
        discontinuity_sequence: 1,
        discontinuity: false,
        duration: Duration::from_millis(2002),
        start_pts_90k: 180_000,
    })
}

/// Two seconds of a small test pattern with audio, x264 and AAC, as a publisher sends.
fn ffmpeg_input() -> Vec<&'static str> {
    vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=15",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "15",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
    ]
}

fn ffmpeg(args: &[&str]) -> Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()?;
    if !status.success() {
        return Err(format!("ffmpeg {args:?}: {status}").into());
    }
    Ok(())
}

/// Everything ffmpeg sends to publish two seconds, up to 64 KiB, answered by rml_rtmp as
/// the ingest answers (handshake, `connect` and `publish` accepted).
/// What an ffmpeg publisher sends an RTMP server (answered as the ingest answers it).
fn capture_publish() -> Result<Vec<u8>> {
    capture(|url| {
        let mut command = Command::new("ffmpeg");
        command
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(ffmpeg_input())
            .args(["-f", "flv", url]);
        command
    })
}

/// The GStreamer binary, when installed (Debian: gstreamer1.0-tools and the good, bad
/// and ugly plugin sets).
const GST_LAUNCH: &str = "/usr/bin/gst-launch-1.0";

/// What a GStreamer publisher (`x264enc ! flvmux ! rtmpsink`, with AAC from `voaacenc`)
/// sends an RTMP server.
fn capture_gstreamer_publish() -> Result<Vec<u8>> {
    capture(|url| {
        let mut command = Command::new(GST_LAUNCH);
        command.arg("-q").args(
            format!(
                "videotestsrc is-live=true num-buffers=60 ! video/x-raw,width=160,height=120,framerate=15/1 \
                 ! x264enc tune=zerolatency key-int-max=15 ! h264parse ! queue ! mux. \
                 audiotestsrc is-live=true num-buffers=100 ! audioconvert ! voaacenc ! aacparse ! queue ! mux. \
                 flvmux name=mux streamable=true ! rtmpsink location=\"{url} live=1\""
            )
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        );
        command
    })
}

/// Runs the publisher `command(url)` makes against a capturing RTMP server on a free port
/// and returns the first 64 KiB it sent.
fn capture(command: impl FnOnce(&str) -> Command) -> Result<Vec<u8>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("rtmp://{}/live/sk_seed", listener.local_addr()?);
    let mut publisher = command(&url).spawn()?;
    let (mut socket, _) = listener.accept()?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut captured = Vec::new();
    let mut handshake = Handshake::new(PeerType::Server);
    let mut session: Option<ServerSession> = None;
    let mut buf = [0u8; 8192];
    while captured.len() < 64 * 1024 {
        let n = match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        captured.extend_from_slice(&buf[..n]);
        let mut input = buf[..n].to_vec();
        if session.is_none() {
            match handshake.process_bytes(&input)? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    socket.write_all(&response_bytes)?;
                    continue;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    socket.write_all(&response_bytes)?;
                    let (s, initial) = ServerSession::new(ServerSessionConfig::new())?;
                    answer(&mut socket, initial)?;
                    session = Some(s);
                    input = remaining_bytes;
                }
            }
        }
        let Some(s) = session.as_mut() else { continue };
        let mut pending = s.handle_input(&input)?;
        while !pending.is_empty() {
            let mut next = Vec::new();
            for result in pending {
                match result {
                    ServerSessionResult::OutboundResponse(packet) => {
                        socket.write_all(&packet.bytes)?
                    }
                    ServerSessionResult::RaisedEvent(
                        ServerSessionEvent::ConnectionRequested { request_id, .. }
                        | ServerSessionEvent::PublishStreamRequested { request_id, .. },
                    ) => next.extend(s.accept_request(request_id)?),
                    _ => {}
                }
            }
            pending = next;
        }
    }
    let _ = publisher.kill();
    let _ = publisher.wait();
    Ok(captured)
}

fn answer(socket: &mut std::net::TcpStream, results: Vec<ServerSessionResult>) -> Result<()> {
    for result in results {
        if let ServerSessionResult::OutboundResponse(packet) = result {
            socket.write_all(&packet.bytes)?;
        }
    }
    Ok(())
}

/// HLS playlists as the cluster renders them (`domain::hls`), for `hls_playlist`: MPEG-TS,
/// CMAF and recorded media windows with a gap and a discontinuity, a low-latency window
/// (full, a delta update, ended) with parts, dates, the hint and a report, and a master.
fn hls_seeds(fuzz: &Path) -> Result<()> {
    use domain::hls::{
        render_master, Entry, LlWindow, MediaWindow, PartEntry, RenditionReport, Variant,
    };
    let dir = fuzz.join("corpus").join("hls_playlist");
    std::fs::create_dir_all(&dir)?;
    let mut media = MediaWindow::new(6, Duration::from_secs(2));
    for sequence in 40..48u64 {
        media
            .push(Entry {
                sequence,
                duration: Duration::from_millis(2002 - (sequence % 3) * 500),
                discontinuity_sequence: u64::from(sequence >= 45),
                discontinuity: sequence == 45,
                gap: sequence == 43,
            })
            .map_err(|e| format!("{e:?}"))?;
    }
    std::fs::write(dir.join("media-ts"), media.render())?;
    std::fs::write(dir.join("media-cmaf"), media.render_cmaf())?;
    std::fs::write(dir.join("recording-ts"), media.render_vod())?;
    std::fs::write(dir.join("recording-cmaf"), media.render_cmaf_vod())?;

    let part = Duration::from_millis(333);
    let mut ll = LlWindow::new(10, Duration::from_secs(2), part);
    for sequence in 100..111u64 {
        let date = Some(1_700_000_000_000 + (sequence as i64 - 100) * 1998);
        let parts = if sequence == 110 { 2 } else { 6 };
        // A discontinuity at 107, by two (a session that ended before its first segment).
        let dseq = if sequence >= 107 { 4 } else { 2 };
        for i in 0..parts {
            let entry = PartEntry {
                duration: part,
                independent: i == 0,
                gap: sequence == 108 && i == 3,
            };
            ll.push_part(sequence, entry, dseq, date)?;
        }
        if sequence < 110 {
            ll.finish_segment(
                sequence,
                Duration::from_millis(1998),
                false,
                (dseq, false),
                None,
            )?;
        }
    }
    let reports = [RenditionReport {
        uri: "../720p/index.m3u8".into(),
        last_msn: 110,
        last_part: Some(1),
    }];
    std::fs::write(dir.join("ll"), ll.render(false, &reports))?;
    std::fs::write(dir.join("ll-delta"), ll.render(true, &reports))?;
    ll.end();
    std::fs::write(dir.join("ll-ended"), ll.render(false, &[]))?;

    let variant = |name: &str, width: u32, height: u32| -> Result<Variant> {
        Ok(Variant {
            info: RenditionInfo {
                name: RenditionName::new(name)?,
                width,
                height,
                frame_rate: 29.97,
                codecs: "avc1.64001f,mp4a.40.2".parse()?,
                init: None,
                part_target_us: Some(333_000),
            },
            peak_bps: u64::from(height) * 5_000,
            average_bps: u64::from(height) * 4_000,
        })
    };
    let master = render_master(&[variant("720p", 1280, 720)?, variant("360p", 640, 360)?]);
    std::fs::write(dir.join("master"), master)?;
    Ok(())
}

/// The SRT targets' seeds and the regressions of issue 45 (items 1 and 2).
fn srt_seeds(fuzz: &Path) -> Result<()> {
    use fuzzing::{srt_listener_record, SRT_ANSWER, SRT_SEND, SRT_SEND_WITH_COOKIE, SRT_TICK};
    use srt_protocol::options::{PacketCount, PacketSize, SrtVersion};
    use srt_protocol::packet::*;

    let dir = |kind: &str, target: &str| -> Result<PathBuf> {
        let dir = fuzz.join(kind).join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    };
    let bytes = |packet: Packet| {
        let mut out = Vec::new();
        packet.serialize(&mut out);
        out
    };
    let control = |control_type: ControlTypes| {
        Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(1_000),
            dest_sockid: SocketId(0x1234),
            control_type,
        })
    };
    let shake = |shake_type: ShakeType, info: HsV5Info| {
        control(ControlTypes::Handshake(HandshakeControlInfo {
            init_seq_num: SeqNumber::new_truncate(0x2a2a),
            max_packet_size: PacketSize(1500),
            max_flow_size: PacketCount(8192),
            shake_type,
            socket_id: SocketId(0x1234),
            syn_cookie: 0,
            peer_addr: [127, 0, 0, 1].into(),
            info: HandshakeVsInfo::V5(info),
        }))
    };
    let hsreq = Some(SrtControlPacket::HandshakeRequest(SrtHandshake {
        version: SrtVersion::new(1, 5, 1),
        flags: SrtShakeFlags::SUPPORTED
            | SrtShakeFlags::TLPKTDROP
            | SrtShakeFlags::NAKREPORT
            | SrtShakeFlags::STREAM,
        send_latency: Duration::from_millis(120),
        recv_latency: Duration::from_millis(120),
    }));
    let conclusion = |ext_config: Vec<SrtControlPacket>, sid: Option<&str>| {
        bytes(shake(
            ShakeType::Conclusion,
            HsV5Info {
                ext_hs: hsreq.clone(),
                sid: sid.map(str::to_owned),
                ext_config,
                ..HsV5Info::default()
            },
        ))
    };
    let induction = bytes(shake(ShakeType::Induction, HsV5Info::default()));
    let publish = conclusion(Vec::new(), Some("#!::r=live/KEY,m=publish"));
    let keepalive = bytes(control(ControlTypes::KeepAlive));
    let ack = bytes(control(ControlTypes::Ack(Acknowledgement::Lite(
        SeqNumber::new_truncate(7),
    ))));
    let nak = bytes(control(ControlTypes::Nak(CompressedLossList::from(
        SeqNumber::new_truncate(3)..SeqNumber::new_truncate(9),
    ))));
    let data = bytes(Packet::Data(DataPacket {
        seq_number: SeqNumber::new_truncate(0x2a2a),
        message_loc: PacketLocation::ONLY,
        in_order_delivery: false,
        encryption: DataEncryption::None,
        retransmitted: false,
        message_number: MsgNumber::new_truncate(1),
        timestamp: TimeStamp::from_micros(2_000),
        dest_sockid: SocketId(0x1234),
        payload: Bytes::from_static(&[0x47; 188]),
    }));
    let shutdown = bytes(control(ControlTypes::Shutdown));

    // Issue 45 item 1: the config extensions libsrt sends for congestion=file,
    // transtype=file, packetfilter=fec and groups, and zero-length ones (followed by a
    // `live` congestion extension, so that they are not the last 4 bytes, which upstream
    // did not read).
    let live = || SrtControlPacket::Congestion("live".into());
    let cols = FilterSpec(
        [("cols", "10"), ("rows", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let filter = FilterSpec(
        [("fec", ""), ("cols", "10"), ("rows", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let killers = [
        (
            "config-reject",
            conclusion(vec![SrtControlPacket::Reject, live()], None),
        ),
        (
            "config-filter",
            conclusion(vec![SrtControlPacket::Filter(cols)], None),
        ),
        (
            "config-congestion-file",
            conclusion(vec![SrtControlPacket::Congestion("file".into())], None),
        ),
        (
            "config-filter-fec",
            conclusion(vec![SrtControlPacket::Filter(filter)], None),
        ),
        (
            "config-group",
            conclusion(
                vec![SrtControlPacket::Group {
                    ty: GroupType::Broadcast,
                    flags: GroupFlags::empty(),
                    weight: 0,
                }],
                None,
            ),
        ),
        ("empty-stream-id", conclusion(vec![live()], Some(""))),
        (
            "empty-congestion",
            conclusion(
                vec![SrtControlPacket::Congestion(String::new()), live()],
                None,
            ),
        ),
    ];

    let packets = dir("corpus", "srt_packet")?;
    for (name, datagram) in [
        ("induction", &induction),
        ("conclusion-publish", &publish),
        ("keepalive", &keepalive),
        ("ack", &ack),
        ("nak", &nak),
        ("data", &data),
        ("shutdown", &shutdown),
    ] {
        std::fs::write(packets.join(name), datagram)?;
    }
    let regressions = dir("regressions", "srt_packet")?;
    for (name, datagram) in &killers {
        std::fs::write(regressions.join(name), datagram)?;
    }

    // The listener: a caller that connects, one that is rejected, one that never
    // finishes, strangers' keepalives, and time passing.
    let mut session = Vec::new();
    session.extend(srt_listener_record(1, SRT_SEND, &induction));
    session.extend(srt_listener_record(1, SRT_SEND_WITH_COOKIE, &publish));
    session.extend(srt_listener_record(1, SRT_ANSWER, &[]));
    session.extend(srt_listener_record(1, SRT_SEND, &data));
    session.extend(srt_listener_record(1, SRT_SEND, &keepalive));
    session.extend(srt_listener_record(2, SRT_SEND, &induction));
    session.extend(srt_listener_record(2, SRT_SEND_WITH_COOKIE, &publish));
    session.extend(srt_listener_record(2, SRT_ANSWER, &[0]));
    session.extend(srt_listener_record(3, SRT_SEND, &induction));
    session.extend(srt_listener_record(3, SRT_SEND_WITH_COOKIE, &publish));
    session.extend(srt_listener_record(4, SRT_SEND, &keepalive));
    session.extend(srt_listener_record(1, SRT_TICK, &[0; 100]));
    session.extend(srt_listener_record(1, SRT_SEND, &shutdown));
    std::fs::write(dir("corpus", "srt_listener")?.join("callers"), session)?;

    let listener_regressions = dir("regressions", "srt_listener")?;
    for (name, datagram) in &killers {
        let mut input = srt_listener_record(9, SRT_SEND, &induction);
        input.extend(srt_listener_record(9, SRT_SEND_WITH_COOKIE, datagram));
        input.extend(srt_listener_record(9, SRT_ANSWER, &[]));
        std::fs::write(listener_regressions.join(name), input)?;
    }
    // Issue 45 item 2: inductions and keepalives from 4,000 address:port pairs.
    let mut many = Vec::new();
    for n in 0..2_000u16 {
        many.extend(srt_listener_record(n, SRT_SEND, &induction));
        many.extend(srt_listener_record(n + 2_000, SRT_SEND, &keepalive));
    }
    std::fs::write(listener_regressions.join("many-addresses"), many)?;
    Ok(())
}

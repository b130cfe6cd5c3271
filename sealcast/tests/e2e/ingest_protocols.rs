//! What OBS, ffmpeg and browsers send today (issue 32), from real publishers: FFmpeg 9
//! (PyPI's imageio-ffmpeg) over Enhanced RTMP with HEVC and with AV1, over SRT with H.264
//! and with HEVC, and Debian's ffmpeg 5.1 over SRT. Each yields the 4-rung ladder, keyframe
//! aligned, ffprobe decoding every rung (the `src` rung in the publisher's own codec), and
//! Chromium plays it through the load balancer. A wrong key is refused with the protocol's
//! own error, and malformed input on either protocol leaves a live stream playing.
//!
//! The publishes are heavy (720p through four rungs): each first encodes its source ahead of
//! time (`-t` seconds as fast as the encoder goes) and then publishes the file in real time
//! without re-encoding (`-re -c copy`), so no publisher encoder competes with the ingest
//! for the two cores while the ladder is checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use testkit::ffmpeg::{self, Publisher};
use tokio::process::Command;

use crate::cluster::Cluster;

/// The renditions a 720p source produces, with their sizes.
const LADDER_720P: [(&str, u32, u32); 4] = [
    ("src", 1280, 720),
    ("720p", 1280, 720),
    ("480p", 854, 480),
    ("360p", 640, 360),
];

/// Seconds each publish lasts at most: the ladder check, then Chromium starting and
/// playing, with room for a slow machine (the publish is ended once both passed).
const PUBLISH_SECONDS: u32 = 50;

/// How a source is encoded ahead of time.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// x265, Opus audio (what OBS sends with an HEVC encoder over E-RTMP).
    Hevc,
    /// SVT-AV1, AC-3 audio.
    Av1,
    /// x264, AAC audio.
    H264,
}

impl Source {
    /// ffmpeg's video and audio encoder arguments: a keyframe every 2 s, no scene cuts.
    fn encoder_args(self) -> Vec<&'static str> {
        match self {
            Source::Hevc => vec![
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-b:v",
                "2500k",
                "-x265-params",
                "keyint=60:min-keyint=60:scenecut=0:log-level=error",
                "-c:a",
                "libopus",
                "-b:a",
                "96k",
            ],
            Source::Av1 => vec![
                "-c:v",
                "libsvtav1",
                "-preset",
                "12",
                "-b:v",
                "2000k",
                "-g",
                "60",
                "-svtav1-params",
                "scd=0",
                "-c:a",
                "ac3",
                "-b:a",
                "128k",
            ],
            Source::H264 => vec![
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "2500k",
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-sc_threshold",
                "0",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
            ],
        }
    }

    /// The codec ffprobe names for the `src` rung, and the start of its `CODECS` entry.
    fn src_codec(self) -> (&'static str, &'static str) {
        match self {
            Source::Hevc => ("hevc", "hvc1."),
            Source::Av1 => ("av1", "av01."),
            Source::H264 => ("h264", "avc1."),
        }
    }
}

/// Encodes `seconds` of a 1280x720 30 fps test pattern with a tone as `source` into an FLV
/// file under `dir` with `program` (FFmpeg 9 or Debian's), as fast as it goes.
async fn encode(
    program: &Path,
    source: Source,
    dir: &Path,
    seconds: u32,
) -> anyhow::Result<PathBuf> {
    let out = dir.join(format!("{source:?}.flv"));
    let result = Command::new(program)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
        .args(source.encoder_args())
        .args(["-f", "flv"])
        .arg(&out)
        .output()
        .await
        .context("running ffmpeg")?;
    anyhow::ensure!(
        result.status.success(),
        "encoding {source:?} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    Ok(out)
}

/// Publishes `file` in real time, unchanged, as `format` (`flv`, `mpegts`) to `url`.
fn publish(program: &Path, file: &Path, format: &str, url: &str) -> anyhow::Result<Publisher> {
    let child = Command::new(program)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-i",
        ])
        .arg(file)
        .args(["-c", "copy", "-f", format, url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting ffmpeg")?;
    Ok(Publisher::from_child(child, &format!("ffmpeg -f {format}")))
}

/// FFmpeg 9 over E-RTMP with HEVC (and Opus).
pub(crate) async fn ertmp_hevc(cluster: &Cluster) -> anyhow::Result<()> {
    let ffmpeg9 = ffmpeg::ffmpeg9()?;
    ladder_from(cluster, "ertmp-hevc", &ffmpeg9, Source::Hevc, |key| {
        ("flv", cluster.rtmp_url(key))
    })
    .await
}

/// FFmpeg 9 over E-RTMP with AV1 (and AC-3).
pub(crate) async fn ertmp_av1(cluster: &Cluster) -> anyhow::Result<()> {
    let ffmpeg9 = ffmpeg::ffmpeg9()?;
    ladder_from(cluster, "ertmp-av1", &ffmpeg9, Source::Av1, |key| {
        ("flv", cluster.rtmp_url(key))
    })
    .await
}

/// FFmpeg 9 over SRT with H.264 and AAC.
pub(crate) async fn srt_h264(cluster: &Cluster) -> anyhow::Result<()> {
    let ffmpeg9 = ffmpeg::ffmpeg9()?;
    ladder_from(cluster, "srt-h264", &ffmpeg9, Source::H264, |key| {
        ("mpegts", cluster.srt_url(key))
    })
    .await
}

/// FFmpeg 9 over SRT with HEVC and Opus.
pub(crate) async fn srt_hevc(cluster: &Cluster) -> anyhow::Result<()> {
    let ffmpeg9 = ffmpeg::ffmpeg9()?;
    ladder_from(cluster, "srt-hevc", &ffmpeg9, Source::Hevc, |key| {
        ("mpegts", cluster.srt_url(key))
    })
    .await
}

/// Debian's ffmpeg 5.1 (libsrt 1.5) over SRT, with the bare key as streamid.
pub(crate) async fn srt_debian_ffmpeg(cluster: &Cluster) -> anyhow::Result<()> {
    ladder_from(
        cluster,
        "srt-debian",
        Path::new("ffmpeg"),
        Source::H264,
        |key| ("mpegts", cluster.srt_url_bare(key)),
    )
    .await
}

/// One publisher through the whole cluster: encoded ahead of time, published in real time
/// as `url(key)` says, then the ladder checked, then Chromium plays it; the publisher must
/// still be publishing (or have finished cleanly) when both passed.
async fn ladder_from(
    cluster: &Cluster,
    stream: &str,
    program: &Path,
    source: Source,
    url: impl Fn(&str) -> (&'static str, String),
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = encode(program, source, dir.path(), PUBLISH_SECONDS).await?;
    let key = cluster.add_stream(stream).await?;
    let (format, url) = url(&key);
    let publisher = publish(program, &file, format, &url)?;
    check_ladder(cluster, stream, source)
        .await
        .with_context(|| format!("the ladder of {stream}"))?;
    let ((), stall, state) =
        crate::pages::plays_through(&cluster.https, stream, async { anyhow::Ok(()) })
            .await
            .with_context(|| format!("Chromium playing {stream}"))?;
    anyhow::ensure!(
        stall < 2.0,
        "{stream}: the video stood still {stall:.1} s ({state})"
    );
    // Everything is checked: the rest of the input would add nothing but time.
    publisher.finish_early().await
}

/// Every rung of [`LADDER_720P`] in the master playlist with its codec, and three common
/// segments of every rung probed: the size, a keyframe first, the `src` rung in the
/// source's codec, AAC audio, and the same first PTS on every rung.
async fn check_ladder(cluster: &Cluster, stream: &str, source: Source) -> anyhow::Result<()> {
    let master = cluster
        .wait_master(stream, LADDER_720P.len(), Duration::from_secs(40))
        .await?;
    let (src_codec, src_codecs) = source.src_codec();
    for (name, w, h) in LADDER_720P {
        let v = master
            .variants
            .iter()
            .find(|v| v.uri == format!("{name}/index.m3u8"))
            .with_context(|| format!("no {name} variant"))?;
        let codecs = v.codecs.clone().unwrap_or_default();
        let video = if name == "src" { src_codecs } else { "avc1." };
        anyhow::ensure!(
            codecs.starts_with(video) && codecs.contains("mp4a.40.2"),
            "{name}: CODECS {codecs}"
        );
        anyhow::ensure!(
            v.resolution.as_ref().map(|r| (r.width, r.height))
                == Some((u64::from(w), u64::from(h))),
            "{name}: RESOLUTION {:?}",
            v.resolution
        );
    }
    let mut first_pts: BTreeMap<u64, Vec<(&str, f64)>> = BTreeMap::new();
    for (name, w, h) in LADDER_720P {
        let playlist = cluster
            .wait_media(stream, name, 4, Duration::from_secs(40))
            .await?;
        let init = cluster
            .get_bytes(&format!("/live/{stream}/{name}/init.mp4"))
            .await?;
        // The segments but the first and the last listed (those may be cut short).
        for i in 1..playlist.segments.len().saturating_sub(1).min(4) {
            let seq = playlist.media_sequence + i as u64;
            let bytes = cluster
                .get_bytes(&format!("/live/{stream}/{name}/{seq}.m4s"))
                .await?;
            let codec = if name == "src" { src_codec } else { "h264" };
            let probe = ffmpeg::probe_segment_of(Some(&init), &bytes, codec)
                .await
                .with_context(|| format!("{stream}/{name}/{seq}"))?;
            anyhow::ensure!(
                (probe.width, probe.height) == (w, h)
                    && probe.first_video_is_key
                    && probe.has_audio,
                "{name}/{seq}: {}x{}, keyframe first {}, audio {}",
                probe.width,
                probe.height,
                probe.first_video_is_key,
                probe.has_audio
            );
            first_pts
                .entry(seq)
                .or_default()
                .push((name, probe.first_video_pts));
        }
    }
    let mut compared = 0;
    for (seq, firsts) in &first_pts {
        if firsts.len() < 2 {
            continue;
        }
        compared += 1;
        for (name, pts) in firsts {
            anyhow::ensure!(
                (pts - firsts[0].1).abs() < 1e-6,
                "segment {seq}: first PTS of {name} is {pts}, of {} is {}",
                firsts[0].0,
                firsts[0].1
            );
        }
    }
    anyhow::ensure!(
        compared >= 1,
        "no segment number common to the rungs: {first_pts:?}"
    );
    Ok(())
}

/// A wrong key is refused with each protocol's own error: RTMP's
/// `NetStream.Publish.Unauthorized` status for an E-RTMP (HEVC) publish, the SRT handshake's
/// rejection reason for an SRT one, as ffmpeg prints them.
pub(crate) async fn wrong_keys(cluster: &Cluster) -> anyhow::Result<()> {
    let ffmpeg9 = ffmpeg::ffmpeg9()?;
    let dir = tempfile::tempdir()?;
    let file = encode(&ffmpeg9, Source::Hevc, dir.path(), 3).await?;
    let wrong = "sk_0000000000000000000000000000000000000000000000000000000000000000";

    let (status, stderr) = publish(&ffmpeg9, &file, "flv", &cluster.rtmp_url(wrong))?
        .wait_with_stderr()
        .await?;
    anyhow::ensure!(!status.success(), "an E-RTMP publish with a wrong key ran");
    anyhow::ensure!(
        stderr.contains("unknown stream key") || stderr.contains("Unauthorized"),
        "ffmpeg did not print the RTMP refusal: {stderr}"
    );

    for program in [ffmpeg9.as_path(), Path::new("ffmpeg")] {
        let (status, stderr) = publish(program, &file, "mpegts", &cluster.srt_url(wrong))?
            .wait_with_stderr()
            .await?;
        anyhow::ensure!(!status.success(), "an SRT publish with a wrong key ran");
        anyhow::ensure!(
            stderr.to_ascii_lowercase().contains("reject"),
            "{} did not print the SRT rejection: {stderr}",
            program.display()
        );
    }
    Ok(())
}

/// Malformed input on each protocol while `healthy` plays: garbage datagrams on the SRT
/// port, an SRT caller whose payload is not MPEG-TS, an RTMP publisher whose E-RTMP tags
/// are malformed. Each is dropped or ends on its own; `healthy` keeps producing segments.
pub(crate) async fn malformed_input(cluster: &Cluster, healthy: &str) -> anyhow::Result<()> {
    let before = cluster
        .wait_media(healthy, "src", 1, Duration::from_secs(30))
        .await?;
    let before_last = before.media_sequence + before.segments.len() as u64;

    // Datagrams that are no SRT at all, from many source ports.
    for i in 0..200u32 {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let noise: Vec<u8> = (0..(64 + i % 1200)).map(|b| (b * 31 + i) as u8).collect();
        socket.send_to(&noise, cluster.srt_addr()).await?;
    }

    // A caller with a valid key whose payload is raw PCM, not MPEG-TS: nothing starts, and
    // the session ends when the caller does.
    let key = cluster.add_stream("srt-garbage").await?;
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "anoisesrc=d=4:r=48000", "-f", "s16le"])
        .arg(cluster.srt_url(&key))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let _ = Publisher::from_child(child, "ffmpeg -f s16le over SRT")
        .wait()
        .await?;
    anyhow::ensure!(
        !cluster
            .live_stream_names()
            .await?
            .iter()
            .any(|s| s == "srt-garbage"),
        "a stream went live from garbage"
    );

    // E-RTMP tags that lie about their sizes, then a multitrack message with too many
    // tracks, then an unknown FourCC: the publish ends, nothing else does.
    let key = cluster.add_stream("ertmp-garbage").await?;
    let mut publisher = testkit::rtmp::RtmpPublisher::publish(cluster.rtmp_addr, "live", &key)
        .await
        .context("publishing")?;
    let mut many_tracks = vec![0x96, 0x11];
    many_tracks.extend_from_slice(b"hvc1");
    for id in 1..=40u8 {
        many_tracks.extend_from_slice(&[id, 0, 0, 1, 0]);
    }
    for body in [
        b"\x91hvc1\x00".to_vec(),
        b"\x96\x11hvc1\x00\x00\xff\xff".to_vec(),
        b"\x97\xff\xff\xff".to_vec(),
        many_tracks,
        b"\x90vvc1\x01\x02".to_vec(),
    ] {
        if publisher.video(&body, 0).await.is_err() {
            break;
        }
    }
    publisher.close().await;

    let after = cluster
        .wait_media(healthy, "src", 1, Duration::from_secs(30))
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = cluster
            .wait_media(healthy, "src", 1, Duration::from_secs(10))
            .await?;
        if now.media_sequence + now.segments.len() as u64 > before_last + 1 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{healthy} stopped producing segments: {} then {}",
            before_last,
            after.media_sequence + after.segments.len() as u64
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

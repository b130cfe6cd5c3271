//! The ladder: a 720p publish comes out as every rung of the ladder, keyframe-aligned,
//! with the promised sizes, codecs and segment durations, identical on every node, and
//! ends as a VOD recording on disk.

use std::time::Duration;

use testkit::ffmpeg::{self, TestPattern};

use crate::cluster::Cluster;
use crate::edges;

/// The renditions a 720p source must produce, with their sizes.
const LADDER_720P: [(&str, u32, u32); 4] = [
    ("src", 1280, 720),
    ("720p", 1280, 720),
    ("480p", 854, 480),
    ("360p", 640, 360),
];

/// The names of [`LADDER_720P`]'s rungs.
fn rungs() -> Vec<&'static str> {
    LADDER_720P.iter().map(|r| r.0).collect()
}

/// The ffmpeg CLI publishing 720p30 + AAC: every rung, aligned, on every node the same
/// bytes; then its recording.
pub(crate) async fn ffmpeg_720p_ladder(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("cam1").await?;
    let cam1 = TestPattern::new(1280, 720, 30, 18).publish(&cluster.rtmp_url(&key))?;
    check_ladder(cluster, "cam1", &LADDER_720P).await?;
    // Each rung's LL playlist reports where the others stand.
    for (name, ..) in &LADDER_720P {
        let text = cluster
            .get_bytes(&format!("/live/cam1/{name}/index.m3u8"))
            .await?;
        let text = String::from_utf8_lossy(&text);
        for (other, ..) in LADDER_720P.iter().filter(|(o, ..)| o != name) {
            anyhow::ensure!(
                text.contains(&format!(
                    "#EXT-X-RENDITION-REPORT:URI=\"../{other}/index.m3u8\""
                )),
                "{name}'s playlist has no rendition report of {other}:\n{text}"
            );
        }
    }
    edges::check_identical(cluster.client(), &cluster.nodes, "cam1", &rungs())
        .await
        .map_err(|e| e.context("the same segments on every node"))?;
    cam1.wait_success().await?;
    check_recording(cluster, "cam1", &rungs())
        .await
        .map_err(|e| e.context("the recording"))
}

/// `sealcast source` (the test pattern with a burnt-in clock) to the same ingest.
pub(crate) async fn sealcast_source_ladder(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("pattern").await?;
    let source = cluster.sealcast_source(&cluster.rtmp_url(&key), 24)?;
    check_ladder(cluster, "pattern", &LADDER_720P).await?;
    source.wait_success().await
}

/// An ended stream is in the archive as a VOD recording: every rung's playlist is VOD with
/// ENDLIST and lists what that rung's live playlist ended with (a rung the ingest shed
/// because the machine fell behind real time ends earlier, live and recorded alike), and
/// ffprobe reads it whole.
async fn check_recording(cluster: &Cluster, stream: &str, rungs: &[&str]) -> anyhow::Result<()> {
    let mut live_ends = Vec::new();
    for rung in rungs {
        let end = cluster
            .wait_media_until(stream, rung, Duration::from_secs(30), |p| p.end_list)
            .await
            .map_err(|e| e.context(format!("{stream}/{rung} never got EXT-X-ENDLIST")))?;
        live_ends.push(end);
    }
    // `up`'s archive (a directory of the /vod/ layout under `recordings/`); the recorder's
    // own directory is only its spool.
    let dir = cluster
        .data_dir()
        .join("archive")
        .join("recordings")
        .join(stream);
    // The recorder writes on its own thread, the uploader after it: wait for the master
    // playlist to appear.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let master = loop {
        let found = std::fs::read_dir(&dir)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path().join("master.m3u8"))
            .find(|p| p.exists());
        if let Some(found) = found {
            break found;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no recording of {stream} under {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let recording = anyhow::Context::context(master.parent(), "recording dir")?;
    for (rung, live_end) in rungs.iter().zip(&live_ends) {
        let last_live = live_end.media_sequence + live_end.segments.len() as u64 - 1;
        let text = std::fs::read_to_string(recording.join(rung).join("index.m3u8"))?;
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("{rung}: VOD playlist does not parse: {e:?}"))?;
        anyhow::ensure!(
            p.end_list && p.playlist_type == Some(m3u8_rs::MediaPlaylistType::Vod),
            "{rung}: not a finished VOD playlist"
        );
        // Everything the live window ended with, and everything before it.
        let last = p.media_sequence + p.segments.len() as u64 - 1;
        anyhow::ensure!(
            last == last_live && p.media_sequence <= live_end.media_sequence,
            "{rung}: the recording lists {}..={last}; live ended with {}..={last_live}",
            p.media_sequence,
            live_end.media_sequence
        );
        // The source rung is never shed, and 18 s outlast the live window: its recording
        // holds segments the live playlist no longer lists. (An encoded rung shed early
        // under load may end before its window slid.)
        anyhow::ensure!(
            *rung != "src" || p.segments.len() > live_end.segments.len(),
            "src: the recording holds {} segments, no more than the live window's {}",
            p.segments.len(),
            live_end.segments.len()
        );
    }
    let (duration, stderr) = ffmpeg::duration_seconds(&recording.join("src/index.m3u8")).await?;
    anyhow::ensure!(
        duration > 10.0,
        "ffprobe reads {duration:.1} s of the recording: {stderr}"
    );
    Ok(())
}

pub(crate) async fn check_ladder(
    cluster: &Cluster,
    stream: &str,
    expected: &[(&str, u32, u32)],
) -> anyhow::Result<()> {
    let master = cluster
        .wait_master(stream, expected.len(), Duration::from_secs(30))
        .await?;
    let names: Vec<&str> = master
        .variants
        .iter()
        .map(|v| v.uri.trim_end_matches("/index.m3u8"))
        .collect();
    for (name, w, h) in expected {
        anyhow::ensure!(names.contains(name), "master lacks {name}: {names:?}");
        let v = master
            .variants
            .iter()
            .find(|v| v.uri == format!("{name}/index.m3u8"))
            .expect("checked above");
        let res = v.resolution.as_ref().map(|r| (r.width, r.height));
        anyhow::ensure!(
            res == Some((u64::from(*w), u64::from(*h))),
            "{name}: RESOLUTION {res:?}"
        );
        anyhow::ensure!(
            v.bandwidth > 0 && v.average_bandwidth.is_some(),
            "{name}: BANDWIDTH"
        );
        anyhow::ensure!(
            v.frame_rate.is_some_and(|f| (f - 30.0).abs() < 0.5),
            "{name}: FRAME-RATE {:?}",
            v.frame_rate
        );
        let codecs = v.codecs.clone().unwrap_or_default();
        anyhow::ensure!(
            codecs.starts_with("avc1.") && codecs.contains("mp4a.40.2"),
            "{name}: CODECS {codecs}"
        );
    }
    // Wait until every rung lists at least 3 segments, then inspect the common ones.
    let mut playlists = Vec::new();
    for (name, ..) in expected {
        playlists.push(
            cluster
                .wait_media(stream, name, 3, Duration::from_secs(30))
                .await?,
        );
    }
    let mut first_pts_by_seq: std::collections::BTreeMap<u64, Vec<(String, f64)>> =
        Default::default();
    for ((name, w, h), playlist) in expected.iter().zip(&playlists) {
        anyhow::ensure!(
            playlist.target_duration >= 2,
            "{name}: target duration {}",
            playlist.target_duration
        );
        for (i, seg) in playlist.segments.iter().enumerate() {
            let seq = playlist.media_sequence + i as u64;
            anyhow::ensure!(
                seg.uri == format!("{seq}.m4s"),
                "{name}: segment {i} is {} not {seq}.m4s",
                seg.uri
            );
            anyhow::ensure!(
                f64::from(seg.duration) <= playlist.target_duration as f64,
                "{name}: EXTINF {} > TARGETDURATION {}",
                seg.duration,
                playlist.target_duration
            );
        }
        // Probe the segments but the first and last (those may be partial at start/end).
        for (i, seg) in playlist
            .segments
            .iter()
            .enumerate()
            .take(playlist.segments.len() - 1)
            .skip(1)
        {
            let seq = playlist.media_sequence + i as u64;
            anyhow::ensure!(
                (f64::from(seg.duration) - 2.0).abs() <= 0.2,
                "{name}/{seq}: EXTINF {} not within 10% of 2 s",
                seg.duration
            );
            let init = cluster
                .get_bytes(&format!("/live/{stream}/{name}/init.mp4"))
                .await?;
            let bytes = cluster
                .get_bytes(&format!("/live/{stream}/{name}/{seq}.m4s"))
                .await?;
            let probe = ffmpeg::probe_segment(Some(&init), &bytes).await?;
            anyhow::ensure!(
                (probe.width, probe.height) == (*w, *h),
                "{name}/{seq}: {}x{}",
                probe.width,
                probe.height
            );
            anyhow::ensure!(
                probe.first_video_is_key,
                "{name}/{seq}: first video frame is not a keyframe"
            );
            anyhow::ensure!(probe.has_audio, "{name}/{seq}: no AAC audio");
            anyhow::ensure!(
                (probe.video_duration - 2.0).abs() <= 0.2,
                "{name}/{seq}: video lasts {:.3} s",
                probe.video_duration
            );
            first_pts_by_seq
                .entry(seq)
                .or_default()
                .push((name.to_string(), probe.first_video_pts));
        }
    }
    let mut compared = 0;
    for (seq, firsts) in &first_pts_by_seq {
        if firsts.len() < 2 {
            continue;
        }
        compared += 1;
        let reference = firsts[0].1;
        for (name, pts) in firsts {
            anyhow::ensure!(
                (pts - reference).abs() < 1e-6,
                "segment {seq}: first PTS of {name} is {pts}, of {} is {reference}",
                firsts[0].0
            );
        }
    }
    anyhow::ensure!(compared > 0, "no segment was probed on two rungs");
    Ok(())
}

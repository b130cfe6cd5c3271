//! End to end: the real `sealcast up` process, the real `ffmpeg` CLI as publisher, and
//! `ffprobe` and headless Chromium reading what comes out. One binary, one cluster,
//! started once.
//!
//! Heavy publishes (720p30 through the whole ladder) run one after another — two of them
//! at once would not fit in the two cores CI machines have. Light ones (240p, source rung
//! only) run beside them, so "other streams keep going" is checked under real load.

mod cluster;
#[path = "../support/compose.rs"]
mod compose;
mod compose_cluster;
mod edges;
mod lb;
mod probe;
mod rtmp_client;
mod web;

use std::time::Duration;

use cluster::{Cluster, Publisher};

/// The renditions a 720p source must produce, with their sizes.
const LADDER_720P: [(&str, u32, u32); 4] = [
    ("src", 1280, 720),
    ("720p", 1280, 720),
    ("480p", 854, 480),
    ("360p", 640, 360),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_end_to_end() {
    let cluster = Cluster::start().await;
    let result = run_all(&cluster).await;
    cluster.stop_and_check_logs().await;
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

async fn run_all(cluster: &Cluster) -> anyhow::Result<()> {
    // 1. ffmpeg CLI, 720p30 + AAC, through the ladder; bad inputs alongside it.
    let key = cluster.add_stream("cam1").await?;
    let cam1 = Publisher::ffmpeg_testsrc(&cluster.rtmp_url(&key), 1280, 720, 30, 18)?;
    let rungs: Vec<&str> = LADDER_720P.iter().map(|r| r.0).collect();
    let ca = cluster.ca();
    let (ladder, bad, refusals, balanced) = tokio::join!(
        async {
            check_ladder(cluster, "cam1", &LADDER_720P).await?;
            edges::check_identical(cluster.client(), &cluster.nodes, "cam1", &rungs).await
        },
        check_bad_inputs(cluster, "cam1"),
        edges::check_push_refusals(cluster),
        lb::check_sticky_and_bad_requests(&cluster.https, &cluster.http_redirect, &ca, "cam1"),
    );
    ladder.map_err(|e| e.context("ffmpeg 720p ladder on three nodes"))?;
    balanced.map_err(|e| e.context("load balancer of up"))?;
    bad.map_err(|e| e.context("bad inputs"))?;
    refusals.map_err(|e| e.context("push API refusals"))?;
    cam1.wait_success().await?;
    cluster.wait_ended("cam1").await?;
    check_recording(cluster, "cam1", &rungs)
        .await
        .map_err(|e| e.context("cam1 recording"))?;

    // 2. `sealcast source` to the same ingest; the signature gate under attack, garbage on
    //    the broker, a node joining late, one killed and one that never answers, all while
    //    it plays.
    let key = cluster.add_stream("pattern").await?;
    let src = cluster.sealcast_source(&cluster.rtmp_url(&key), 70)?;
    check_ladder(cluster, "pattern", &LADDER_720P)
        .await
        .map_err(|e| e.context("sealcast source ladder"))?;
    edges::check_gate(cluster, "pattern")
        .await
        .map_err(|e| e.context("signature gate"))?;
    edges::check_garbage_on_the_broker(cluster, "pattern")
        .await
        .map_err(|e| e.context("garbage on the broker"))?;
    edges::check_late_join_and_failures(cluster, "pattern")
        .await
        .map_err(|e| e.context("late join, killed node, silent node"))?;
    src.wait_success().await?;

    // 3. Publisher reconnects with the same key; MP3 audio beside it.
    let (recon, mp3, takeover) = tokio::join!(
        check_reconnect(cluster),
        check_mp3_audio(cluster),
        check_takeover(cluster)
    );
    recon.map_err(|e| e.context("reconnect"))?;
    mp3.map_err(|e| e.context("MP3 audio"))?;
    takeover.map_err(|e| e.context("takeover"))?;

    // 4. The admin API, webhooks, the player and the dashboard in Chromium, VOD.
    web::check_api_player_and_dashboard(cluster)
        .await
        .map_err(|e| e.context("API, player and dashboard"))?;

    // 5. The docker-compose.yml cluster as separate processes: Mosquitto with the
    //    compose file's ACLs, PostgreSQL, two ingests, scaled broadcast replicas, the lb.
    compose_cluster::check_compose_cluster()
        .await
        .map_err(|e| e.context("the compose cluster as separate processes"))?;
    Ok(())
}

/// An ended stream is on disk as a VOD recording: every rung's playlist is VOD with
/// ENDLIST and lists what the live playlist ended with, and ffprobe reads it whole.
async fn check_recording(cluster: &Cluster, stream: &str, rungs: &[&str]) -> anyhow::Result<()> {
    let live_end = cluster.wait_ended(stream).await?;
    let last_live = live_end.media_sequence + live_end.segments.len() as u64 - 1;
    let dir = cluster.data_dir().join("recordings").join(stream);
    // The recorder writes on its own thread: wait for the master playlist to appear.
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
    for rung in rungs {
        let text = std::fs::read_to_string(recording.join(rung).join("index.m3u8"))?;
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("{rung}: VOD playlist does not parse: {e:?}"))?;
        anyhow::ensure!(
            p.end_list && p.playlist_type == Some(m3u8_rs::MediaPlaylistType::Vod),
            "{rung}: not a finished VOD playlist"
        );
        let last = p.media_sequence + p.segments.len() as u64 - 1;
        anyhow::ensure!(
            last == last_live && p.segments.len() as u64 > live_end.segments.len() as u64,
            "{rung}: the recording ends at {last} with {} segments; live ended at {last_live}",
            p.segments.len()
        );
    }
    let (duration, stderr) = probe::duration_seconds(&recording.join("src/index.m3u8")).await?;
    anyhow::ensure!(
        duration > 10.0,
        "ffprobe reads {duration:.1} s of the recording: {stderr}"
    );
    Ok(())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn check_ladder(
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
                seg.uri == format!("{seq}.ts"),
                "{name}: segment {i} is {} not {seq}.ts",
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
            let bytes = cluster
                .get_bytes(&format!("/live/{stream}/{name}/{seq}.ts"))
                .await?;
            let probe = probe::probe_segment(&bytes).await?;
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

/// Bad inputs while `healthy` is being published: each is refused or ends cleanly, and the
/// healthy stream keeps producing segments throughout.
async fn check_bad_inputs(cluster: &Cluster, healthy: &str) -> anyhow::Result<()> {
    let before = cluster
        .wait_media(healthy, "src", 1, Duration::from_secs(30))
        .await?;
    let before_last = before.media_sequence + before.segments.len() as u64;

    // Wrong key: ffmpeg is refused.
    let wrong = Publisher::ffmpeg_testsrc(
        &cluster.rtmp_url("sk_0000000000000000000000000000000000000000000000000000000000000000"),
        320,
        240,
        15,
        4,
    )?;
    anyhow::ensure!(
        !wrong.wait().await?.success(),
        "a publish with a wrong key was accepted"
    );

    // Garbage bytes on the RTMP port: the connection is closed.
    cluster.send_garbage_to_rtmp().await?;

    // A non-H.264 video codec (Sorenson Spark).
    let key = cluster.add_stream("flv1").await?;
    let flv1 = Publisher::ffmpeg_custom(
        &cluster.rtmp_url(&key),
        &["-c:v", "flv1"],
        "aac",
        320,
        240,
        15,
        4,
    )?;
    anyhow::ensure!(
        !flv1.wait().await?.success(),
        "a Sorenson publish ran to completion"
    );
    anyhow::ensure!(
        cluster
            .live_stream_names()
            .await?
            .iter()
            .all(|n| n != "flv1"),
        "flv1 is listed as live"
    );

    // A malformed FLV tag after a valid publish handshake.
    let key = cluster.add_stream("malformed").await?;
    rtmp_client::publish_malformed_tags(cluster.rtmp_addr, &key).await?;

    // A publisher that vanishes mid-segment: its stream ends (after the grace period).
    let key = cluster.add_stream("vanish").await?;
    let vanish = Publisher::ffmpeg_testsrc(&cluster.rtmp_url(&key), 426, 240, 30, 60)?;
    cluster
        .wait_media("vanish", "src", 1, Duration::from_secs(20))
        .await?;
    tokio::time::sleep(Duration::from_millis(700)).await; // into the middle of a segment, not a sync point
    vanish.kill_hard();
    cluster.wait_ended("vanish").await?;

    // The healthy stream kept going.
    let after = cluster
        .wait_media(healthy, "src", 1, Duration::from_secs(10))
        .await?;
    let after_last = after.media_sequence + after.segments.len() as u64;
    anyhow::ensure!(
        after_last > before_last,
        "{healthy} stopped producing segments ({before_last} → {after_last})"
    );
    Ok(())
}

async fn check_reconnect(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("recon").await?;
    let first = Publisher::ffmpeg_testsrc(&cluster.rtmp_url(&key), 426, 240, 30, 7)?;
    first.wait_success().await?;
    let ended = cluster.wait_ended("recon").await?;
    let last_before = ended.media_sequence + ended.segments.len() as u64 - 1;
    anyhow::ensure!(
        !ended.segments.iter().any(|s| s.discontinuity),
        "discontinuity before any reconnect"
    );

    let second = Publisher::ffmpeg_testsrc(&cluster.rtmp_url(&key), 426, 240, 30, 7)?;
    let playlist = cluster
        .wait_media_until("recon", "src", Duration::from_secs(30), |p| {
            p.segments.iter().any(|s| s.discontinuity)
        })
        .await?;
    let idx = playlist
        .segments
        .iter()
        .position(|s| s.discontinuity)
        .expect("found above");
    let seq_after = playlist.media_sequence + idx as u64;
    anyhow::ensure!(
        seq_after == last_before + 1,
        "sequence restarted: {last_before} then {seq_after}"
    );
    // The window still holds the first session's segment before the discontinuity, or
    // starts at it: either way the first listed segment is of discontinuity sequence 0.
    anyhow::ensure!(
        playlist.discontinuity_sequence == 0,
        "EXT-X-DISCONTINUITY-SEQUENCE is {} with the first reconnect in the window",
        playlist.discontinuity_sequence
    );
    second.wait_success().await?;
    let ended = cluster.wait_ended("recon").await?;
    for (i, s) in ended.segments.iter().enumerate() {
        anyhow::ensure!(
            s.uri == format!("{}.ts", ended.media_sequence + i as u64),
            "sequence gap in {:?}",
            s.uri
        );
    }
    Ok(())
}

/// A publisher sending MP3 audio: the segments carry AAC.
async fn check_mp3_audio(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("mp3").await?;
    let publisher =
        Publisher::ffmpeg_audio_codec(&cluster.rtmp_url(&key), "libmp3lame", 426, 240, 30, 7)?;
    let playlist = cluster
        .wait_media("mp3", "src", 2, Duration::from_secs(30))
        .await?;
    let seq = playlist.media_sequence + 1;
    let bytes = cluster
        .get_bytes(&format!("/live/mp3/src/{seq}.ts"))
        .await?;
    let probe = probe::probe_segment(&bytes).await?;
    anyhow::ensure!(
        probe.has_audio,
        "segment {seq} of an MP3 publish has no AAC audio"
    );
    publisher.wait_success().await?;
    Ok(())
}

/// A second publisher with the same key while the first is live (OBS reconnecting before
/// the server noticed the old connection died): the new one takes over, the old one is
/// disconnected, numbering continues after a discontinuity.
async fn check_takeover(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("takeover").await?;
    let first = Publisher::ffmpeg_testsrc(&cluster.rtmp_url(&key), 426, 240, 30, 60)?;
    let before = cluster
        .wait_media("takeover", "src", 2, Duration::from_secs(30))
        .await?;
    let second = Publisher::ffmpeg_testsrc(&cluster.rtmp_url(&key), 426, 240, 30, 6)?;
    anyhow::ensure!(
        !first.wait().await?.success(),
        "the first publisher was not disconnected"
    );
    let playlist = cluster
        .wait_media_until("takeover", "src", Duration::from_secs(30), |p| {
            p.segments.iter().any(|s| s.discontinuity)
        })
        .await?;
    let idx = playlist
        .segments
        .iter()
        .position(|s| s.discontinuity)
        .expect("found above");
    anyhow::ensure!(
        playlist.media_sequence + idx as u64
            >= before.media_sequence + before.segments.len() as u64,
        "sequence numbers went back after the takeover"
    );
    second.wait_success().await?;
    cluster.wait_ended("takeover").await?;
    Ok(())
}

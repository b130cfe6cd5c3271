//! Publishers that misbehave or come and go: bad keys, codecs and bytes, a publisher that
//! vanishes, one that reconnects, one that takes over its own stream, MP3 audio.

use std::time::Duration;

use anyhow::Context;

use testkit::ffmpeg::{self, TestPattern};
use testkit::rtmp::RtmpPublisher;

use crate::cluster::Cluster;

/// A light test pattern (240p30, so the source rung only) for `seconds`.
fn light(seconds: u32) -> TestPattern {
    TestPattern::new(426, 240, 30, seconds)
}

/// Bad inputs while `healthy` is being published: each is refused or ends cleanly, and the
/// healthy stream keeps producing segments throughout.
pub(crate) async fn bad_inputs(cluster: &Cluster, healthy: &str) -> anyhow::Result<()> {
    let before = cluster
        .wait_media(healthy, "src", 1, Duration::from_secs(30))
        .await?;
    let before_last = before.media_sequence + before.segments.len() as u64;

    // A publisher that sends one keyframe and then never another (x264 with an infinite
    // keyframe interval), running alongside the rest: its open segment would grow without
    // bound, so after ten target durations the publish ends with an error naming it.
    let key = cluster.add_stream("nokeyframe").await?;
    let started = std::time::Instant::now();
    let keyframeless = light(90)
        .video_args(&["-x264-params", "keyint=infinite:scenecut=0"])
        .publish(&cluster.rtmp_url(&key))?;

    // Wrong key: ffmpeg is refused.
    let wrong = TestPattern::new(320, 240, 15, 4).publish(
        &cluster.rtmp_url("sk_0000000000000000000000000000000000000000000000000000000000000000"),
    )?;
    anyhow::ensure!(
        !wrong.wait().await?.success(),
        "a publish with a wrong key was accepted"
    );

    // Garbage bytes on the RTMP port: the connection is closed.
    cluster.send_garbage_to_rtmp().await?;

    // A non-H.264 video codec (Sorenson Spark).
    let key = cluster.add_stream("flv1").await?;
    let flv1 = TestPattern::new(320, 240, 15, 4)
        .video_codec(&["-c:v", "flv1"])
        .publish(&cluster.rtmp_url(&key))?;
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
    publish_malformed_tags(cluster, &key).await?;

    // A publisher that vanishes mid-segment: its stream ends (after the grace period).
    let key = cluster.add_stream("vanish").await?;
    let vanish = light(60).publish(&cluster.rtmp_url(&key))?;
    cluster
        .wait_media("vanish", "src", 1, Duration::from_secs(20))
        .await?;
    tokio::time::sleep(Duration::from_millis(700)).await; // into the middle of a segment, not a sync point
    vanish.kill_hard();
    cluster.wait_ended("vanish").await?;

    anyhow::ensure!(
        !keyframeless.wait().await?.success(),
        "a publisher without keyframes ran to completion"
    );
    anyhow::ensure!(
        started.elapsed() < Duration::from_secs(60),
        "the keyframe-less publisher ran for {:?}",
        started.elapsed()
    );
    anyhow::ensure!(
        cluster.log().await.contains("no keyframe for"),
        "the log does not say why the keyframe-less publish ended"
    );

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

pub(crate) async fn reconnect(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("recon").await?;
    let first = light(7).publish(&cluster.rtmp_url(&key))?;
    first.wait_success().await?;
    let ended = cluster.wait_ended("recon").await?;
    let last_before = ended.media_sequence + ended.segments.len() as u64 - 1;
    anyhow::ensure!(
        !ended.segments.iter().any(|s| s.discontinuity),
        "discontinuity before any reconnect"
    );

    let second = light(7).publish(&cluster.rtmp_url(&key))?;
    let (playlist, seq_after) = first_discontinuity(cluster, "recon").await?;
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
            s.uri == format!("{}.m4s", ended.media_sequence + i as u64),
            "sequence gap in {:?}",
            s.uri
        );
    }
    Ok(())
}

/// A publisher sending MP3 audio: the segments carry AAC.
pub(crate) async fn mp3_audio(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("mp3").await?;
    let publisher = light(7)
        .audio_codec("libmp3lame")
        .publish(&cluster.rtmp_url(&key))?;
    let playlist = cluster
        .wait_media("mp3", "src", 2, Duration::from_secs(30))
        .await?;
    let seq = playlist.media_sequence + 1;
    let init = cluster.get_bytes("/live/mp3/src/init.mp4").await?;
    let bytes = cluster
        .get_bytes(&format!("/live/mp3/src/{seq}.m4s"))
        .await?;
    let probe = ffmpeg::probe_segment(Some(&init), &bytes).await?;
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
pub(crate) async fn takeover(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("takeover").await?;
    let first = light(60).publish(&cluster.rtmp_url(&key))?;
    let before = cluster
        .wait_media("takeover", "src", 2, Duration::from_secs(30))
        .await?;
    let second = light(6).publish(&cluster.rtmp_url(&key))?;
    anyhow::ensure!(
        !first.wait().await?.success(),
        "the first publisher was not disconnected"
    );
    let (_, seq_after) = first_discontinuity(cluster, "takeover").await?;
    anyhow::ensure!(
        seq_after >= before.media_sequence + before.segments.len() as u64,
        "sequence numbers went back after the takeover"
    );
    second.wait_success().await?;
    cluster.wait_ended("takeover").await?;
    Ok(())
}

/// Waits until `stream`'s source rung lists a discontinuity: the playlist, and the
/// sequence number of the first segment after the discontinuity.
async fn first_discontinuity(
    cluster: &Cluster,
    stream: &str,
) -> anyhow::Result<(m3u8_rs::MediaPlaylist, u64)> {
    let playlist = cluster
        .wait_media_until(stream, "src", Duration::from_secs(30), |p| {
            p.segments.iter().any(|s| s.discontinuity)
        })
        .await?;
    let index = playlist
        .segments
        .iter()
        .position(|s| s.discontinuity)
        .unwrap_or_default();
    let sequence = playlist.media_sequence + index as u64;
    Ok((playlist, sequence))
}

/// Publishes with a valid key, then sends video tags whose AVC payload lies about its NAL
/// lengths and a tag too short to be a tag; the server must survive and either drop them
/// or close this connection.
async fn publish_malformed_tags(cluster: &Cluster, key: &str) -> anyhow::Result<()> {
    let mut publisher = RtmpPublisher::publish(cluster.rtmp_addr, "live", key).await?;
    let tags: [&[u8]; 4] = [
        // AVC sequence header that is too short to be a decoder configuration record.
        &[0x17, 0x00, 0, 0, 0, 0x01],
        // AVC NALU with a 4-byte length far beyond the payload.
        &[0x17, 0x01, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x65, 0x88],
        // One byte: not even a tag header.
        &[0x17],
        // Empty.
        &[],
    ];
    for (i, tag) in (0u32..).zip(tags) {
        if publisher.video(tag, i * 33).await.is_err() {
            return Ok(()); // the server may close on us: that is a clean end too
        }
    }
    publisher.close().await;
    Ok(())
}

/// `sealcast_ingest_publishes_total{result}` as broadcast1 exports it (under `up` the
/// ingest's families are on every node's /metrics).
pub(crate) async fn publishes(cluster: &Cluster, result: &str) -> anyhow::Result<f64> {
    let text = crate::edges::metrics(cluster.client(), &cluster.nodes[0]).await?;
    let prefix = format!("sealcast_ingest_publishes_total{{result=\"{result}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0))
}

/// The crash of issue 13: right after the handshake, with no stream key, one AMF0 command
/// of strict arrays nested 20,000 and then 200,000 levels deep (100 KB, 1 MB). The first
/// reaches the decoder and is refused as a protocol error; the second is over the
/// pre-publish byte budget and closed before it is decoded. Each connection is closed and
/// counted under its reason; the process stays up and `live` keeps publishing.
pub(crate) async fn nested_amf(cluster: &Cluster, live: &str) -> anyhow::Result<()> {
    let before = cluster
        .wait_media(live, "src", 1, Duration::from_secs(30))
        .await?;
    let last = before.media_sequence + before.segments.len() as u64;
    for (depth, reason) in [(20_000, "protocol_error"), (200_000, "oversized_setup")] {
        let counted = publishes(cluster, reason).await?;
        let bytes = testkit::rtmp::command_chunks(&testkit::rtmp::nested_strict_arrays(depth));
        testkit::rtmp::send_and_expect_close(cluster.rtmp_addr, &bytes, Duration::from_secs(20))
            .await
            .with_context(|| format!("nested AMF at depth {depth}"))?;
        let now = publishes(cluster, reason).await?;
        anyhow::ensure!(
            now > counted,
            "the connection with AMF nested {depth} deep was not counted as {reason}"
        );
    }
    cluster
        .wait_media_until(live, "src", Duration::from_secs(30), |p| {
            p.media_sequence + p.segments.len() as u64 > last + 1
        })
        .await
        .context("the live stream stopped after the nested AMF")?;
    Ok(())
}

/// A viewer watching a live stream whose publisher stops and, a little later, starts
/// again (OBS restarted, a dropped link): the player sees the end, then, left alone, plays
/// the new session once the stream is listed live again (`web/src/player.js`, the list
/// refresh), through the load balancer.
pub(crate) async fn viewer_resumes(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream("comeback").await?;
    let url = cluster.rtmp_url(&key);
    let first = light(60).publish(&url)?;
    let comeback = async move {
        first.wait_success().await?;
        light(30).publish(&url)
    };
    let second = crate::pages::resumes(&cluster.https, "comeback", comeback).await?;
    second.finish_early().await
}

//! Time-shift (issue 49): a recorded live stream's last minutes stay seekable, on every
//! node of `up` (the first records, the others share its window), from the disk while the
//! archive catches up and from the archive after; the player goes back and comes back to
//! live in Chromium, verifying everything; the window goes with the stream.

use std::time::{Duration, Instant};

use m3u8_rs::MediaPlaylist;

use crate::cluster::{get_opt, Cluster};

const STREAM: &str = "timeshift";

/// How long the stream is published: long enough for the player to go 30 s back.
const PUBLISH_SECS: u32 = 120;

pub(crate) async fn check(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream(STREAM).await?;
    // `sealcast source`: its clock stamp tells how far behind live the picture is.
    let publisher =
        cluster.sealcast_source_sized(&cluster.rtmp_url(&key), "426x240", PUBLISH_SECS)?;

    // Every node serves the window: the first, which records, and the others.
    let windows = wait_window(cluster, 24.0).await?;
    let live = cluster
        .wait_media(STREAM, "src", 3, Duration::from_secs(30))
        .await?;
    for (node, window) in cluster.nodes.iter().zip(&windows) {
        anyhow::ensure!(
            !window.end_list && window.segments.len() >= 10,
            "{node}: the window lists {} segments (ended: {})",
            window.segments.len(),
            window.end_list
        );
        anyhow::ensure!(
            window.media_sequence < live.media_sequence,
            "{node}: the window starts at {}, no earlier than the live playlist ({})",
            window.media_sequence,
            live.media_sequence
        );
        // Its oldest segment, long gone from the live window, and its statement.
        let oldest = window.media_sequence;
        let client = cluster.client();
        let response = client
            .get(format!("{node}/live/{STREAM}/src/{oldest}.m4s"))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "{node}: segment {oldest} of the window: {}",
            response.status()
        );
        anyhow::ensure!(
            response
                .headers()
                .get(broadcast::VERIFIED_HEADER)
                .is_some_and(|v| v == "true"),
            "{node}: segment {oldest} of the window is not marked verified"
        );
        let bytes = response.bytes().await?;
        anyhow::ensure!(
            bytes.len() > 1000,
            "{node}: segment {oldest} is {} bytes",
            bytes.len()
        );
        let sig = get_opt(
            client,
            node,
            &format!("/live/{STREAM}/src/{oldest}.m4s.sig"),
        )
        .await?;
        anyhow::ensure!(sig.is_some(), "{node}: no statement for segment {oldest}");
        // A number before the window is not served from it.
        if let Some(before) = oldest.checked_sub(1) {
            let gone = get_opt(client, node, &format!("/live/{STREAM}/src/{before}.m4s")).await?;
            anyhow::ensure!(
                gone.is_none(),
                "{node}: segment {before}, before the window, was served"
            );
        }
    }

    // The viewer, through the load balancer.
    let seen = crate::pages::time_shift(&cluster.https, STREAM, 20.0, 30.0).await?;
    eprintln!("time-shift in Chromium: {seen}");

    // The window goes with the stream: the recording plays it from now on.
    publisher.finish_early().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let gone = get_opt(
            cluster.client(),
            &cluster.http,
            &format!("/live/{STREAM}/dvr.m3u8"),
        )
        .await?
        .is_none();
        if gone {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the time-shift window outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until every node's window of the source rung holds `secs` seconds, and the
/// master lists it; each node's window.
async fn wait_window(cluster: &Cluster, secs: f32) -> anyhow::Result<Vec<MediaPlaylist>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let client = cluster.client();
    'wait: loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the time-shift window never reached {secs} s on every node"
        );
        let mut windows = Vec::new();
        for node in &cluster.nodes {
            let master = get_opt(client, node, &format!("/live/{STREAM}/dvr.m3u8")).await?;
            let media = get_opt(client, node, &format!("/live/{STREAM}/src/dvr.m3u8")).await?;
            let (Some(master), Some(media)) = (master, media) else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'wait;
            };
            let master = m3u8_rs::parse_master_playlist_res(&master)
                .map_err(|e| anyhow::anyhow!("{node}: the window's master: {e:?}"))?;
            anyhow::ensure!(
                master.variants.iter().any(|v| v.uri == "src/dvr.m3u8"),
                "{node}: the window's master lists {:?}",
                master.variants.iter().map(|v| &v.uri).collect::<Vec<_>>()
            );
            let media = m3u8_rs::parse_media_playlist_res(&media)
                .map_err(|e| anyhow::anyhow!("{node}: the window: {e:?}"))?;
            let held: f32 = media.segments.iter().map(|s| s.duration).sum();
            if held < secs {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'wait;
            }
            windows.push(media);
        }
        return Ok(windows);
    }
}

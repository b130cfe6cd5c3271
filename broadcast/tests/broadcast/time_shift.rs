//! Time-shift through the public routes: a recording node keeps each live stream's last
//! minutes seekable (`/live/{s}/dvr.m3u8`), serves the segments the live window no longer
//! holds from its recording, shares the window with a node that does not record, and lets
//! it go with the stream.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use broadcast::Node;
use domain::{LiveEvent, NodeId};
use http::StatusCode;

/// A node recording into `dir` with a time-shift window of `window`.
fn recording_node(dir: &Path, window: Duration) -> Arc<Node> {
    Arc::new(
        Node::new(NodeId::new(NODE).expect("valid"), node_config())
            .with_time_shift_window(window)
            .with_recordings(dir.to_path_buf())
            .expect("recordings"),
    )
}

/// `demo` live on `node` (720p, segments `0..count`), everything on disk.
fn live_for(node: &Node, count: u64) {
    start(node);
    announce(node, "720p", 720);
    for seq in 0..count {
        publish(node, "720p", seq);
    }
    node.flush_recordings();
}

async fn text(node: &Arc<Node>, uri: &str) -> (StatusCode, String) {
    let response = send(node, get(uri)).await;
    let status = response.status();
    (
        status,
        String::from_utf8(body(response).await.to_vec()).expect("utf-8"),
    )
}

#[tokio::test]
async fn a_recorded_live_stream_stays_seekable_past_its_live_window() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = recording_node(tmp.path(), broadcast::DEFAULT_DVR_WINDOW);
    live_for(&node, 10);

    let (status, list) = text(&node, "/api/v1/streams").await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(
        list[0]["dvr"]["master_url"], "/live/demo/dvr.m3u8",
        "{list}"
    );
    assert_eq!(list[0]["dvr"]["seconds"], 20.0, "{list}");

    let (status, master) = text(&node, "/live/demo/dvr.m3u8").await;
    assert_eq!(status, StatusCode::OK, "{master}");
    let master = m3u8_rs::parse_master_playlist_res(master.as_bytes()).expect("a master");
    let uris: Vec<&str> = master.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["720p/dvr.m3u8"]);

    let (status, media) = text(&node, "/live/demo/720p/dvr.m3u8").await;
    assert_eq!(status, StatusCode::OK, "{media}");
    let media = m3u8_rs::parse_media_playlist_res(media.as_bytes()).expect("a playlist");
    assert_eq!(media.media_sequence, 0);
    assert_eq!(media.segments.len(), 10);
    assert!(
        !media.end_list,
        "the window moves on while the stream is live"
    );
    assert_eq!(media.segments[0].uri, "0.ts", "named as in the live tree");

    // Segment 0 slid out of the live window (3 listed, 2 kept) long ago: the recording's.
    let response = send(&node, get("/live/demo/720p/0.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(broadcast::VERIFIED_HEADER)
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(body(response).await, segment_bytes(0));
    // The live window's own, as before.
    let response = send(&node, get("/live/demo/720p/9.ts")).await;
    assert_eq!(body(response).await, segment_bytes(9));
    // Not listed, not served; another format of the same number neither.
    for uri in [
        "/live/demo/720p/10.ts",
        "/live/demo/720p/0.m4s",
        "/live/demo/480p/0.ts",
    ] {
        assert_eq!(
            send(&node, get(uri)).await.status(),
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    // These segments came unsigned (no statement to record): none is made up.
    assert_eq!(
        send(&node, get("/live/demo/720p/0.ts.sig")).await.status(),
        StatusCode::NOT_FOUND
    );

    // A node that does not record serves the recording node's window.
    let other = Arc::new(
        Node::new(NodeId::new("broadcast-2").expect("valid"), node_config())
            .with_time_shift_of(&node),
    );
    live_for(&other, 10);
    let response = send(&other, get("/live/demo/720p/0.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, segment_bytes(0));
    let (status, _) = text(&other, "/live/demo/720p/dvr.m3u8").await;
    assert_eq!(status, StatusCode::OK);

    // The stream ends: its recording takes over, the window goes.
    node.apply(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    })
    .expect("end");
    node.flush_recordings();
    for uri in ["/live/demo/dvr.m3u8", "/live/demo/720p/dvr.m3u8"] {
        assert_eq!(
            send(&node, get(uri)).await.status(),
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    let (_, list) = text(&node, "/api/v1/streams").await;
    assert!(!list.contains("dvr"), "{list}");
}

#[tokio::test]
async fn the_window_keeps_what_it_is_set_to_and_zero_keeps_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = recording_node(tmp.path(), Duration::from_secs(9));
    live_for(&node, 12);
    let (_, media) = text(&node, "/live/demo/720p/dvr.m3u8").await;
    let media = m3u8_rs::parse_media_playlist_res(media.as_bytes()).expect("a playlist");
    // The fewest segments that still cover 9 s: five of 2 s.
    assert_eq!(media.media_sequence, 7);
    assert_eq!(media.segments.len(), 5);
    assert_eq!(
        send(&node, get("/live/demo/720p/6.ts")).await.status(),
        StatusCode::NOT_FOUND
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let node = recording_node(tmp.path(), Duration::ZERO);
    live_for(&node, 12);
    assert_eq!(
        send(&node, get("/live/demo/dvr.m3u8")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&node, get("/live/demo/720p/0.ts")).await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, list) = text(&node, "/api/v1/streams").await;
    assert!(!list.contains("dvr"), "{list}");
}

#[tokio::test]
async fn a_node_that_does_not_record_has_no_window() {
    let node = live_node();
    assert_eq!(
        send(&node, get("/live/demo/720p/dvr.m3u8")).await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, list) = text(&node, "/api/v1/streams").await;
    assert!(list.contains("\"demo\"") && !list.contains("dvr"), "{list}");
}

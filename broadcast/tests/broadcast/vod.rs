//! Recordings through the public routes: a stream recorded to disk, ended, then listed on
//! `/api/v1/recordings` and played back from `/vod/...` with `tower::ServiceExt::oneshot`
//! (no socket).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use axum::body::Body;
use broadcast::{Node, NodeConfig, RecordingInfo};
use domain::{LiveEvent, NodeId, RenditionName, Segment, SegmentMeta, SessionId};
use http::{header, Request, StatusCode};
use tokio::sync::mpsc;

fn header_str(response: &http::Response<Body>, name: impl header::AsHeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii"))
        .unwrap_or_default()
}

async fn json(response: http::Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&body(response).await).expect("json body")
}

/// `SESSION` as recording ids are spelled.
const RECORDING: &str = "000000000000feed";
const MASTER: &str = "/vod/demo/000000000000feed/master.m3u8";

/// A recording node that recorded `demo` (720p and 480p, segments 0..=4) until it ended,
/// and the info its observer was given.
/// A node recording into `dir` (window 3, 2 s segments), and what its observer hears.
fn recording_node(dir: &Path) -> (Arc<Node>, mpsc::UnboundedReceiver<RecordingInfo>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let node = Arc::new(
        Node::new(
            NodeId::new(NODE).expect("valid"),
            NodeConfig {
                window: 3,
                segment_target: Duration::from_secs(2),
            },
        )
        .with_recording_observer(Arc::new(move |info| {
            let _ = tx.send(info);
        }))
        .with_recordings(dir.to_path_buf())
        .expect("recordings"),
    );
    (node, rx)
}

async fn recorded(dir: &Path) -> (Arc<Node>, RecordingInfo) {
    let (node, mut rx) = recording_node(dir);
    start(&node);
    announce(&node, "720p", 720);
    announce(&node, "480p", 480);
    for seq in 0..5 {
        publish(&node, "720p", seq);
        publish(&node, "480p", seq);
    }
    let info = end_and_wait(&node, &mut rx).await;
    (node, info)
}

/// Ends the stream; the recording's info once the observer hears of it (once every file
/// is written).
async fn end_and_wait(
    node: &Node,
    rx: &mut mpsc::UnboundedReceiver<RecordingInfo>,
) -> RecordingInfo {
    node.apply(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    })
    .expect("end");
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the recording finishes")
        .expect("observer called")
}

/// `uri` resolved against the URL of the playlist that lists it.
fn resolve(playlist_url: &str, uri: &str) -> String {
    assert!(
        !uri.starts_with('/') && !uri.contains("://"),
        "relative: {uri}"
    );
    let base = &playlist_url[..=playlist_url.rfind('/').expect("a path")];
    format!("{base}{uri}")
}

#[tokio::test]
async fn a_finished_recording_is_listed_and_plays_back_as_vod() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (node, info) = recorded(tmp.path()).await;
    assert_eq!(info.id, SESSION);
    assert_eq!(info.master_url, MASTER);

    // Listed, as documented.
    let response = send(&node, get("/api/v1/recordings")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_str(&response, header::CACHE_CONTROL), "no-cache");
    let list = json(response).await;
    let entry = &list[0];
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(entry["stream"], "demo");
    assert_eq!(entry["id"], RECORDING);
    assert_eq!(entry["duration_secs"], 10.0);
    assert_eq!(entry["renditions"], serde_json::json!(["720p", "480p"]));
    assert_eq!(entry["master_url"], MASTER);
    assert!(entry["started_at"].as_u64() <= entry["ended_at"].as_u64());
    let typed: Vec<RecordingInfo> = serde_json::from_value(list).expect("round trip");
    assert_eq!(typed, std::slice::from_ref(&info));
    assert_eq!(node.recordings().await.expect("lists"), [info]);

    // The master lists relative variants; each media playlist is VOD with relative
    // segment URIs; each segment is the bytes that were served live.
    let response = send(&node, get(MASTER)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_str(&response, header::CONTENT_TYPE),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(
        header_str(&response, header::CACHE_CONTROL),
        "public, max-age=60"
    );
    assert!(response.headers().get("x-sealcast-verified").is_none());
    let master = m3u8_rs::parse_master_playlist_res(&body(response).await)
        .expect("parses")
        .variants;
    assert_eq!(master.len(), 2);
    for variant in master {
        let media_url = resolve(MASTER, &variant.uri);
        let response = send(&node, get(&media_url)).await;
        assert_eq!(response.status(), StatusCode::OK, "{media_url}");
        assert_eq!(
            header_str(&response, header::CACHE_CONTROL),
            "public, max-age=60"
        );
        let text = body(response).await;
        assert!(std::str::from_utf8(&text)
            .expect("utf-8")
            .contains("#EXT-X-PLAYLIST-TYPE:VOD"));
        let media = m3u8_rs::parse_media_playlist_res(&text).expect("parses");
        assert!(media.end_list);
        assert_eq!(media.segments.len(), 5, "the whole recording, not a window");
        for (seq, segment) in media.segments.iter().enumerate() {
            let url = resolve(&media_url, &segment.uri);
            let response = send(&node, get(&url)).await;
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            assert_eq!(header_str(&response, header::CONTENT_TYPE), "video/mp2t");
            assert_eq!(
                header_str(&response, header::CACHE_CONTROL),
                "public, max-age=31536000, s-maxage=120, immutable"
            );
            assert_eq!(header_str(&response, "x-sealcast-verified"), "true");
            assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
            assert_eq!(body(response).await, segment_bytes(seq as u64), "{url}");
        }
    }
}

#[tokio::test]
async fn vod_segments_take_ranges_and_validators_like_live_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (node, _) = recorded(tmp.path()).await;
    let url = format!("/vod/demo/{RECORDING}/720p/3.ts");

    let live_etag = header_str(
        &send(&node, get("/live/demo/720p/3.ts")).await,
        header::ETAG,
    )
    .to_owned();
    let response = send(&node, get(&url)).await;
    let etag = header_str(&response, header::ETAG).to_owned();
    assert_eq!(etag, live_etag, "same bytes, same validator");

    let request = Request::get(&url)
        .header(header::RANGE, "bytes=10-19")
        .body(Body::empty())
        .expect("request");
    let response = send(&node, request).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_str(&response, header::CONTENT_RANGE),
        "bytes 10-19/1000"
    );
    assert_eq!(header_str(&response, "x-sealcast-verified"), "true");
    assert_eq!(body(response).await, segment_bytes(3).slice(10..20));

    let request = Request::get(&url)
        .header(header::RANGE, "bytes=5000-")
        .body(Body::empty())
        .expect("request");
    let response = send(&node, request).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    for uri in [url.as_str(), MASTER] {
        let first = send(&node, get(uri)).await;
        let etag = header_str(&first, header::ETAG).to_owned();
        let request = Request::get(uri)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .expect("request");
        let response = send(&node, request).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{uri}");
    }
}

#[tokio::test]
async fn missing_recordings_and_traversal_attempts_are_404_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A file beside the recordings that no path may reach.
    std::fs::write(tmp.path().join("secret.ts"), b"secret").expect("file");
    let recordings = tmp.path().join("recordings");
    let (node, _) = recorded(&recordings).await;
    for (uri, message) in [
        (
            "/vod/demo/000000000000beef/master.m3u8",
            "unknown recording",
        ),
        ("/vod/demo/000000000000beef/720p/0.ts", "unknown recording"),
        (
            "/vod/other/000000000000feed/master.m3u8",
            "unknown recording",
        ),
        (
            "/vod/demo/000000000000feed/1080p/index.m3u8",
            "unknown rendition",
        ),
        (
            "/vod/demo/000000000000feed/720p/99.ts",
            "segment not available",
        ),
        (
            "/vod/demo/000000000000feed/1080p/0.ts",
            "segment not available",
        ),
        ("/vod/demo/feed/master.m3u8", "not found"),
        ("/vod/demo/000000000000FEED/master.m3u8", "not found"),
        ("/vod/demo/000000000000feed/recording.json", "not found"),
        ("/vod/demo/000000000000feed/720p/0.ts.tmp", "not found"),
        ("/vod/demo/000000000000feed/../../secret.ts", "not found"),
        (
            "/vod/demo/000000000000feed/..%2f..%2fsecret.ts",
            "not found",
        ),
        (
            "/vod/demo/000000000000feed/720p/%2e%2e/index.m3u8",
            "not found",
        ),
        ("/vod/../secret.ts", "not found"),
        ("/vod/demo/..%2F..%2F/master.m3u8", "not found"),
        ("/vod/demo//master.m3u8", "not found"),
        ("/vod/", "not found"),
        ("/vod/demo/000000000000feed/720p/index.m3u8/", "not found"),
    ] {
        let response = send(&node, get(uri)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(
            header_str(&response, header::CONTENT_TYPE),
            "application/json",
            "{uri}"
        );
        assert_eq!(
            json(response).await,
            serde_json::json!({ "error": message }),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn a_recording_in_progress_is_neither_listed_nor_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (node, _) = recorded(tmp.path()).await;
    // The publisher is back: a new session, a new recording, still being written.
    let session = SessionId(0xbeef);
    node.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session,
        private: false,
        record: true,
    })
    .expect("start");
    announce(&node, "720p", 720);
    node.apply(LiveEvent::Segment(Segment {
        meta: SegmentMeta {
            stream: stream(),
            rendition: RenditionName::new("720p").expect("valid"),
            session,
            sequence: 5,
            discontinuity_sequence: 1,
            discontinuity: true,
            duration: Duration::from_secs(2),
            start_pts_90k: 0,
        },
        bytes: segment_bytes(5),
    }))
    .expect("publish");
    node.flush_recordings(); // everything queued is on disk
    assert!(tmp.path().join("demo/000000000000beef/720p/5.ts").is_file());
    let list = json(send(&node, get("/api/v1/recordings")).await).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["id"], RECORDING);
    let response = send(&node, get("/vod/demo/000000000000beef/720p/5.ts")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(response).await["error"], "unknown recording");
}

#[tokio::test]
async fn a_forgotten_recording_is_gone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (node, _) = recorded(tmp.path()).await;
    node.forget_recording(&stream(), SESSION)
        .await
        .expect("forgets");
    assert!(!tmp.path().join("demo").join(RECORDING).exists());
    let list = json(send(&node, get("/api/v1/recordings")).await).await;
    assert_eq!(list, serde_json::json!([]));
    assert_eq!(
        send(&node, get(MASTER)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(matches!(
        node.forget_recording(&stream(), SESSION).await,
        Err(broadcast::BroadcastError::UnknownRecording { .. })
    ));
}

#[tokio::test]
async fn a_node_sharing_the_disk_serves_the_same_recordings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_recorder, info) = recorded(tmp.path()).await;
    let reader = Arc::new(
        Node::new(
            NodeId::new("edge-test-2").expect("valid"),
            NodeConfig::default(),
        )
        .with_recording_library(tmp.path().to_path_buf()),
    );
    assert_eq!(reader.recordings().await.expect("lists"), [info]);
    let response = send(&reader, get(&format!("/vod/demo/{RECORDING}/480p/4.ts"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, segment_bytes(4));
}

#[tokio::test]
async fn nodes_without_recordings_list_none_and_serve_none() {
    let node = live_node();
    let list = json(send(&node, get("/api/v1/recordings")).await).await;
    assert_eq!(list, serde_json::json!([]));
    let response = send(&node, get(MASTER)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(response).await["error"], "unknown recording");
}

#[tokio::test]
async fn vod_requests_are_counted_under_fixed_route_labels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (node, _) = recorded(tmp.path()).await;
    for uri in [
        MASTER,
        "/vod/demo/000000000000feed/720p/index.m3u8",
        "/vod/demo/000000000000feed/720p/0.ts",
        "/vod/demo/000000000000feed/720p/junk",
        "/api/v1/recordings",
        "/",
        "/dashboard",
        "/assets/player.js",
    ] {
        let _ = send(&node, get(uri)).await;
    }
    let text =
        String::from_utf8(body(send(&node, get("/metrics")).await).await.to_vec()).expect("utf-8");
    for label in [
        "vod_master",
        "vod_media",
        "vod_segment",
        "recordings",
        "index",
        "dashboard",
        "asset",
    ] {
        let needle = format!("sealcast_http_requests_total{{route=\"{label}\",status=\"200\"}} 1");
        assert!(text.contains(&needle), "{needle} missing in\n{text}");
    }
    assert!(text.contains("sealcast_http_requests_total{route=\"unmatched\",status=\"404\"} 1"));
}

/// The recordings disk fills up mid-stream (a small tmpfs: real ENOSPC). Live serving goes
/// on with every segment; the recording keeps what fitted and lists what it lost as gaps.
#[tokio::test]
async fn a_full_recordings_disk_costs_recorded_segments_not_live_ones() {
    // Room for about four of the eight 96 KiB segments, and the small files.
    let disk = testkit::disk::SmallDisk::new(448 * 1024).expect("a small disk");
    let (node, mut rx) = recording_node(disk.path());
    let big = |seq: u64| bytes::Bytes::from(vec![seq as u8; 96 * 1024]);
    start(&node);
    announce(&node, "720p", 720);
    for seq in 0..8 {
        node.apply(LiveEvent::Segment(Segment {
            meta: SegmentMeta {
                stream: stream(),
                rendition: RenditionName::new("720p").expect("valid"),
                session: SESSION,
                sequence: seq,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: Duration::from_secs(2),
                start_pts_90k: seq * 180_000,
            },
            bytes: big(seq),
        }))
        .expect("publish");
        // Live serves every segment as it comes, full disk or not.
        let response = send(&node, get(&format!("/live/demo/720p/{seq}.ts"))).await;
        assert_eq!(response.status(), StatusCode::OK, "live segment {seq}");
        assert_eq!(body(response).await, big(seq));
    }
    let playlist = body(send(&node, get("/live/demo/720p/index.m3u8")).await).await;
    let live = m3u8_rs::parse_media_playlist_res(&playlist).expect("live playlist");
    assert_eq!(live.media_sequence + live.segments.len() as u64, 8);
    assert!(live.segments.iter().all(|s| s.unknown_tags.is_empty()));

    let info = end_and_wait(&node, &mut rx).await;
    assert_eq!(
        info.renditions,
        [RenditionName::new("720p").expect("valid")]
    );
    let dir = disk.path().join("demo").join(RECORDING).join("720p");
    let text = std::fs::read_to_string(dir.join("index.m3u8")).expect("recorded playlist");
    let recorded = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
    assert!(recorded.end_list);
    assert_eq!(recorded.segments.len(), 8, "every number listed:\n{text}");
    let mut kept = 0;
    let mut lost = 0;
    for (i, s) in recorded.segments.iter().enumerate() {
        let seq = recorded.media_sequence + i as u64;
        if s.unknown_tags.iter().any(|t| t.tag == "X-GAP") {
            lost += 1;
            assert!(!dir.join(format!("{seq}.ts")).exists(), "{seq} is a gap");
        } else {
            kept += 1;
            assert_eq!(
                std::fs::read(dir.join(&s.uri)).expect("recorded segment"),
                big(seq)
            );
        }
    }
    assert!(kept >= 2 && lost >= 2, "kept {kept}, lost {lost}:\n{text}");
    drop(node);
}

//! Recording switched off and on per stream (issue 50): an edge told, in a signed session
//! start, not to record a stream finishes the recording it has at that segment and records
//! nothing more of it while its live playlist goes on; told to record again (the same
//! session, signed later), it carries that recording on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::edge::*;
use crate::support::*;
use broadcast::{Edge, Node, RecordingInfo};
use certs::signing::SignatureAlgorithm;
use domain::push_protocol::ControlEvent;
use domain::time::WallClock;
use domain::{LiveEvent, NodeId};
use http::StatusCode;
use tokio::sync::mpsc;

/// An edge whose node records into `dir`, with `demo` (720p) started and recorded, and
/// what the recording observer hears.
async fn recording_edge(
    dir: &Path,
    cluster: &Cluster,
) -> (Arc<Edge>, mpsc::UnboundedReceiver<RecordingInfo>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let node = Arc::new(
        Node::new(NodeId::new(NODE).expect("valid"), node_config())
            .with_recording_observer(Arc::new(move |info| {
                let _ = tx.send(info);
            }))
            .with_recordings(dir.to_path_buf())
            .expect("recordings"),
    );
    let edge = Edge::new(node, edge_config(cluster, node_config())).expect("edge");
    edge.handle_message(&cluster.cert_message()).await;
    for event in start_events(&[("720p", 720)]) {
        let response = call(&edge, cluster.event_request(&event)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    (edge, rx)
}

/// The session start of `demo` again, saying `record`, signed `later_ms` after now (so
/// that it is newer than every start sent before it: a start signed no later than the
/// newest one taken changes nothing).
async fn switch(edge: &Arc<Edge>, cluster: &Cluster, record: bool, later_ms: u64) {
    let event = ControlEvent::Live(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: false,
        record,
    });
    let body = signed_event(&cluster.ingest, &event, WallClock.unix_ms() + later_ms);
    let response = call(edge, raw_event_request(body)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Pushes segment `seq` of 720p and delivers its signed statement.
async fn publish_signed(edge: &Arc<Edge>, cluster: &Cluster, seq: u64) {
    let meta = meta("720p", seq);
    let bytes = segment_bytes(seq);
    let response = call(edge, push_request(&meta, bytes.clone())).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    edge.handle_message(&statement_message(&cluster.sign(&meta, &bytes), &meta))
        .await;
}

async fn live_playlist(edge: &Arc<Edge>) -> String {
    let response = call(edge, get("/live/demo/720p/index.m3u8")).await;
    assert_eq!(response.status(), StatusCode::OK);
    String::from_utf8(body(response).await.to_vec()).expect("utf-8")
}

async fn finished(rx: &mut mpsc::UnboundedReceiver<RecordingInfo>) -> RecordingInfo {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a recording is finished")
        .expect("the observer is there")
}

#[tokio::test]
async fn a_stream_not_recorded_plays_live_and_records_again_when_switched_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::new(SignatureAlgorithm::Ed25519);
    let (edge, mut rx) = recording_edge(tmp.path(), &cluster).await;
    let recording = tmp.path().join("demo").join(SESSION.to_string());
    let file = |seq: u64| recording.join(format!("720p/{seq}.ts"));

    publish_signed(&edge, &cluster, 0).await;
    publish_signed(&edge, &cluster, 1).await;
    // Switched off: what was recorded is finished at once, playable and listed.
    switch(&edge, &cluster, false, 1_000).await;
    let info = finished(&mut rx).await;
    assert_eq!((info.stream.clone(), info.id), (stream(), SESSION));
    assert_eq!(info.duration_secs, 4.0, "segments 0 and 1");
    publish_signed(&edge, &cluster, 2).await;
    publish_signed(&edge, &cluster, 3).await;
    edge.node().flush_recordings();
    let live = live_playlist(&edge).await;
    assert!(
        live.contains("\n3.ts\n"),
        "the live playlist goes on: {live}"
    );
    assert!(file(0).is_file() && file(1).is_file());
    for seq in [2, 3] {
        assert!(
            !file(seq).exists(),
            "segment {seq} recorded while recording was off"
        );
    }
    let listed = body(call(&edge, get("/api/v1/recordings")).await).await;
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // Switched on again: the session's recording carries on.
    switch(&edge, &cluster, true, 2_000).await;
    publish_signed(&edge, &cluster, 4).await;
    publish_signed(&edge, &cluster, 5).await;
    edge.node().flush_recordings();
    assert!(file(4).is_file() && file(5).is_file(), "recording again");
    assert!(live_playlist(&edge).await.contains("\n5.ts\n"));

    let end = ControlEvent::Live(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    });
    let response = call(&edge, cluster.event_request(&end)).await;
    assert!(response.status().is_success());
    let info = finished(&mut rx).await;
    assert_eq!(info.duration_secs, 8.0, "segments 0, 1, 4 and 5");
    let text = std::fs::read_to_string(recording.join("720p/index.m3u8")).expect("playlist");
    let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
    let listed: Vec<(&str, bool)> = playlist
        .segments
        .iter()
        .map(|s| (s.uri.as_str(), s.discontinuity))
        .collect();
    // Nothing of the time it was off, not even as gaps, and no discontinuity: the session
    // carries on in its discontinuity sequence, which a verifying player counts.
    assert_eq!(
        listed,
        [
            ("0.ts", false),
            ("1.ts", false),
            ("4.ts", false),
            ("5.ts", false)
        ],
        "{text}"
    );
    assert!(!text.contains("#EXT-X-GAP"), "{text}");
}

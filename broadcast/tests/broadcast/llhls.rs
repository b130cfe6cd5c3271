//! LL-HLS on CMAF through an edge: parts pushed and signed like segments, the LL playlist
//! (parts, preload hint, server control, init segment, delta update), blocking playlist
//! reload and preload-hinted part requests held until a part is published, tampered parts
//! refused, segments pushed without a body made of the parts held (issue 46), and CMAF
//! recordings played back as VOD. Driven with
//! `tower::ServiceExt::oneshot` and real keys and certificates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::edge::*;
use crate::support::*;
use axum::body::Body;
use broadcast::{Edge, Node, NodeConfig};
use bytes::Bytes;
use certs::signing::{SignatureAlgorithm, SigningKey};
use domain::push_protocol::{is_parts_missing, Assemble, ControlEvent, InternalPath, PartHeaders};
use domain::segment::{InitSegment, PartMeta};
use domain::topics::Topic;
use domain::wire::{PartStatement, SignedMedia};
use domain::{LiveEvent, NodeId, RenditionInfo};
use http::{header, Request, StatusCode};
use plumbing::Message;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const INIT: &[u8] = b"\0\0\0\x18ftypiso6 init segment";
const PART_TARGET_US: u64 = 334_000;

fn cmaf_info(r: &str, height: u32) -> RenditionInfo {
    RenditionInfo {
        init: Some(InitSegment::new(Bytes::from_static(INIT)).expect("small")),
        part_target_us: Some(PART_TARGET_US),
        ..rendition_info(r, height)
    }
}

fn part_meta(r: &str, sequence: u64, index: u32) -> PartMeta {
    PartMeta {
        stream: stream(),
        rendition: rendition(r),
        session: SESSION,
        sequence,
        index,
        discontinuity_sequence: 0,
        independent: index == 0,
        duration: Duration::from_micros(PART_TARGET_US),
        program_date_time_ms: 1_800_000_000_000,
    }
}

fn part_bytes(sequence: u64, index: u32) -> Bytes {
    Bytes::from(format!("moof+mdat of part {sequence}.{index}").into_bytes())
}

fn sign_part(key: &SigningKey, meta: &PartMeta, bytes: &[u8]) -> SignedMedia {
    let statement = PartStatement::from_meta(
        meta,
        key.algorithm(),
        key.key_id(),
        bytes.len() as u64,
        Sha256::digest(bytes).into(),
    );
    let statement_bytes = statement.encode();
    let signature = key.sign(&statement_bytes);
    SignedMedia::new(statement_bytes, signature)
}

fn part_statement_message(signed: &SignedMedia, meta: &PartMeta) -> Message {
    Message {
        topic: Topic::MediaStatements(meta.stream.clone(), meta.rendition.clone()),
        payload: Bytes::from(signed.encode()),
        retained: false,
    }
}

fn push_part_request(meta: &PartMeta, bytes: Bytes) -> Request<Body> {
    let mut builder = Request::put(
        InternalPath::Part(
            meta.stream.clone(),
            meta.rendition.clone(),
            meta.sequence,
            meta.index,
        )
        .to_string(),
    )
    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    .header(header::CONTENT_LENGTH, bytes.len());
    for (name, value) in PartHeaders::of(meta).pairs() {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(bytes)).expect("request")
}

/// An edge (window 10, 1 s segments) with stream `demo` started, CMAF renditions `720p`
/// and `480p` with parts, and segment 0 of both published.
pub(crate) async fn edge() -> (Arc<Edge>, Cluster) {
    let cluster = Cluster::new(SignatureAlgorithm::Ed25519);
    let node = Arc::new(Node::new(
        NodeId::new(NODE).expect("valid"),
        NodeConfig {
            window: 10,
            segment_target: Duration::from_secs(1),
        },
    ));
    let edge = Edge::new(node, edge_config(&cluster, node_config())).expect("edge");
    edge.handle_message(&cluster.cert_message()).await;
    let mut events = vec![ControlEvent::Live(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: false,
        record: true,
    })];
    for (r, h) in [("720p", 720), ("480p", 480)] {
        events.push(ControlEvent::Live(LiveEvent::Rendition {
            stream: stream(),
            info: cmaf_info(r, h),
        }));
    }
    for event in events {
        let response = call(&edge, cluster.event_request(&event)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    for r in ["720p", "480p"] {
        publish_segment(&edge, &cluster, r, 0).await;
    }
    (edge, cluster)
}

fn node_config() -> NodeConfig {
    NodeConfig {
        window: 10,
        segment_target: Duration::from_secs(1),
    }
}

/// Pushes segment `sequence` of `r` (its bytes: its parts 0..3 concatenated) with its
/// signed statement.
pub(crate) async fn publish_segment(edge: &Arc<Edge>, cluster: &Cluster, r: &str, sequence: u64) {
    let mut meta = meta(r, sequence);
    meta.duration = Duration::from_secs(1);
    let bytes: Vec<u8> = (0..3)
        .flat_map(|i| part_bytes(sequence, i).to_vec())
        .collect();
    let signed = cluster.sign(&meta, &bytes);
    let response = call(edge, push_request(&meta, Bytes::from(bytes))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    edge.handle_message(&statement_message(&signed, &meta))
        .await;
}

/// Pushes part `index` of segment `sequence` of `r` and its signed statement.
pub(crate) async fn publish_part(
    edge: &Arc<Edge>,
    cluster: &Cluster,
    r: &str,
    sequence: u64,
    index: u32,
) {
    let meta = part_meta(r, sequence, index);
    let bytes = part_bytes(sequence, index);
    let signed = sign_part(&cluster.ingest, &meta, &bytes);
    let response = call(edge, push_part_request(&meta, bytes)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    edge.handle_message(&part_statement_message(&signed, &meta))
        .await;
}

pub(crate) async fn text(edge: &Arc<Edge>, uri: &str) -> (StatusCode, String) {
    let response = call(edge, get(uri)).await;
    let status = response.status();
    (
        status,
        String::from_utf8(body(response).await.to_vec()).expect("utf-8"),
    )
}

async fn metrics(edge: &Arc<Edge>) -> String {
    text(edge, "/metrics").await.1
}

pub(crate) const MEDIA: &str = "/live/demo/720p/index.m3u8";

#[tokio::test]
async fn the_ll_playlist_lists_parts_with_every_ll_tag_and_parses() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    publish_part(&edge, &cluster, "720p", 1, 1).await;
    let (status, playlist) = text(&edge, MEDIA).await;
    assert_eq!(status, StatusCode::OK);
    let parsed = m3u8_rs::parse_media_playlist_res(playlist.as_bytes()).expect("parses");
    assert_eq!(parsed.segments.len(), 1);
    assert_eq!(parsed.segments[0].uri, "0.m4s");
    for tag in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
        "#EXT-X-PART-INF:PART-TARGET=",
        "#EXT-X-MAP:URI=\"init.mp4\"",
        "#EXT-X-PART:DURATION=0.33400,URI=\"1.0.m4s\",INDEPENDENT=YES",
        "#EXT-X-PART:DURATION=0.33400,URI=\"1.1.m4s\"",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.2.m4s\"",
        "#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=0",
        // The signed capture time of the open segment's part 0.
        "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00.000Z\n#EXT-X-PART:DURATION=0.33400,URI=\"1.0.m4s\"",
    ] {
        assert!(playlist.contains(tag), "{tag} missing:\n{playlist}");
    }
    // The other rendition reports this one's last part.
    let (_, other) = text(&edge, "/live/demo/480p/index.m3u8").await;
    assert!(
        other.contains("URI=\"../720p/index.m3u8\",LAST-MSN=1,LAST-PART=1"),
        "{other}"
    );
    // init.mp4, the fragment, the parts; not the MPEG-TS extension.
    let response = call(&edge, get("/live/demo/720p/init.mp4")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(response.headers()[broadcast::VERIFIED_HEADER], "true");
    assert_eq!(&body(response).await[..], INIT);
    let response = call(&edge, get("/live/demo/720p/1.1.m4s")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[broadcast::VERIFIED_HEADER], "true");
    assert_eq!(body(response).await, part_bytes(1, 1));
    assert_eq!(text(&edge, "/live/demo/720p/0.m4s").await.0, StatusCode::OK);
    assert_eq!(
        text(&edge, "/live/demo/720p/0.ts").await.0,
        StatusCode::NOT_FOUND
    );
    // A part that is neither held nor may come within a hold (more than a segment past
    // the hint).
    assert_eq!(
        text(&edge, "/live/demo/720p/3.0.m4s").await.0,
        StatusCode::NOT_FOUND
    );
    let m = metrics(&edge).await;
    assert_eq!(metric(&m, "sealcast_parts_published_total"), 2.0);
}

#[tokio::test]
async fn a_blocking_request_for_the_next_part_is_held_and_answered_promptly() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    let router = edge.service();
    let mut held = tokio::spawn(router.oneshot(get(&format!("{MEDIA}?_HLS_msn=1&_HLS_part=1"))));
    // Still held a while later: part 1.1 does not exist yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut held)
            .await
            .is_err(),
        "answered before the part existed"
    );
    publish_part(&edge, &cluster, "720p", 1, 1).await;
    let applied = Instant::now();
    let response = held.await.expect("task").expect("infallible");
    let took = applied.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let playlist = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
    assert!(playlist.contains("URI=\"1.1.m4s\""), "{playlist}");
    assert!(
        took < Duration::from_millis(500),
        "answered {took:?} after the part"
    );
    eprintln!("blocking reload answered {took:?} after the part was applied");

    // Already listed: at once. Too far ahead or malformed: 400 with a JSON body.
    let (status, _) = text(&edge, &format!("{MEDIA}?_HLS_msn=1&_HLS_part=0")).await;
    assert_eq!(status, StatusCode::OK);
    for query in ["_HLS_msn=9", "_HLS_part=1", "_HLS_msn=x", "_HLS_skip=NO"] {
        let (status, body) = text(&edge, &format!("{MEDIA}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(json["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn a_blocking_request_gives_up_after_three_target_durations() {
    let (edge, _cluster) = edge().await;
    let (status, _) = text(&edge, &format!("{MEDIA}?_HLS_msn=2")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_preload_hinted_part_is_served_once_published() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    let router = edge.service();
    let mut held = tokio::spawn(router.oneshot(get("/live/demo/720p/1.1.m4s")));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut held)
            .await
            .is_err(),
        "answered before the part existed"
    );
    publish_part(&edge, &cluster, "720p", 1, 1).await;
    let applied = Instant::now();
    let response = held.await.expect("task").expect("infallible");
    let took = applied.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, part_bytes(1, 1));
    assert!(
        took < Duration::from_millis(500),
        "served {took:?} after the part"
    );
    eprintln!("preload-hinted part served {took:?} after it was applied");
}

#[tokio::test]
async fn the_delta_update_skips_old_segments() {
    let (edge, cluster) = edge().await;
    for seq in 1..10 {
        publish_segment(&edge, &cluster, "720p", seq).await;
    }
    let (_, full) = text(&edge, MEDIA).await;
    let (status, delta) = text(&edge, &format!("{MEDIA}?_HLS_skip=YES")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    assert!(!full.contains("EXT-X-SKIP"), "{full}");
    assert!(delta.len() < full.len());
    assert!(delta.contains("9.m4s"));
}

#[tokio::test]
async fn a_tampered_part_is_refused_counted_and_never_listed_or_served() {
    let (edge, cluster) = edge().await;
    let meta = part_meta("720p", 1, 0);
    let genuine = part_bytes(1, 0);
    let signed = sign_part(&cluster.ingest, &meta, &genuine);
    // The right token, other bytes.
    let response = call(&edge, push_part_request(&meta, Bytes::from_static(b"evil"))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    edge.handle_message(&part_statement_message(&signed, &meta))
        .await;
    let m = metrics(&edge).await;
    assert_eq!(
        metric(
            &m,
            "sealcast_parts_rejected_total{reason=\"digest_mismatch\"}"
        ),
        1.0
    );
    assert_eq!(metric(&m, "sealcast_parts_published_total"), 0.0);
    let (_, playlist) = text(&edge, MEDIA).await;
    assert!(!playlist.contains("1.0.m4s\","), "{playlist}");

    // Signed by a key the cluster never certified: refused as unknown.
    let stranger = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let meta = part_meta("720p", 1, 1);
    let signed = sign_part(&stranger, &meta, &part_bytes(1, 1));
    call(&edge, push_part_request(&meta, part_bytes(1, 1))).await;
    edge.handle_message(&part_statement_message(&signed, &meta))
        .await;
    let m = metrics(&edge).await;
    assert_eq!(
        metric(&m, "sealcast_parts_rejected_total{reason=\"unknown_key\"}"),
        1.0
    );
    // Never served: the request waits for a part 1.1 that may yet come (a genuine one),
    // and is given up.
    let response = call(&edge, get("/live/demo/720p/1.1.m4s")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Without the token: 401; bad headers: 400 naming the header.
    let mut request = push_part_request(&part_meta("720p", 1, 2), part_bytes(1, 2));
    request.headers_mut().remove(header::AUTHORIZATION);
    assert_eq!(
        call(&edge, request).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut request = push_part_request(&part_meta("720p", 1, 2), part_bytes(1, 2));
    request.headers_mut().insert(
        domain::push_protocol::INDEPENDENT_HEADER,
        "maybe".parse().expect("value"),
    );
    let response = call(&edge, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_cmaf_recording_plays_as_vod_with_its_init_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let node = Arc::new(
        Node::new(NodeId::new(NODE).expect("valid"), node_config())
            .with_recording_observer(Arc::new(move |info| {
                let _ = tx.send(info);
            }))
            .with_recordings(dir.path().to_path_buf())
            .expect("recordings"),
    );
    start(&node);
    node.apply(LiveEvent::Rendition {
        stream: stream(),
        info: cmaf_info("720p", 720),
    })
    .expect("announce");
    for seq in 0..3 {
        node.apply(LiveEvent::Segment(domain::Segment {
            meta: meta("720p", seq),
            bytes: part_bytes(seq, 0),
        }))
        .expect("segment");
    }
    node.apply(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    })
    .expect("end");
    let info = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("in time")
        .expect("recording");
    let base = format!("/vod/demo/{}/720p", info.id);
    let response = send(&node, get(&format!("{base}/index.m3u8"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let playlist = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
    let parsed = m3u8_rs::parse_media_playlist_res(playlist.as_bytes()).expect("parses");
    assert!(parsed.end_list);
    assert_eq!(parsed.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    let uris: Vec<_> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(uris, ["0.m4s", "1.m4s", "2.m4s"]);
    assert!(
        playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""),
        "{playlist}"
    );
    let response = send(&node, get(&format!("{base}/init.mp4"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&body(response).await[..], INIT);
    let response = send(&node, get(&format!("{base}/1.m4s"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(body(response).await, part_bytes(1, 0));
    let response = send(&node, get(&format!("{base}/1.ts"))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// The metadata of segment `sequence` of `r` as `publish_segment` pushes it (1 s).
fn segment_meta(r: &str, sequence: u64) -> domain::SegmentMeta {
    let mut meta = meta(r, sequence);
    meta.duration = Duration::from_secs(1);
    meta
}

/// The bytes of segment `sequence`: its parts 0..3 joined.
fn joined(sequence: u64) -> Bytes {
    let bytes: Vec<u8> = (0..3)
        .flat_map(|i| part_bytes(sequence, i).to_vec())
        .collect();
    Bytes::from(bytes)
}

/// A bodiless push of segment `sequence` of `r`: assemble it from parts 0..`parts`.
fn assemble_request(r: &str, sequence: u64, parts: u32) -> Request<Body> {
    let (name, value) = Assemble::new(parts).expect("in range").pair();
    push(&segment_meta(r, sequence))
        .header(name, value)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("request")
}

/// Pushes part `index` of segment `sequence` of `r` with `bytes`, its statement not sent.
async fn push_part(edge: &Arc<Edge>, r: &str, sequence: u64, index: u32, bytes: Bytes) {
    let response = call(
        edge,
        push_part_request(&part_meta(r, sequence, index), bytes),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

/// Delivers the signed statement of segment `sequence` of `r` (over its genuine bytes).
async fn segment_statement(edge: &Arc<Edge>, cluster: &Cluster, r: &str, sequence: u64) {
    let meta = segment_meta(r, sequence);
    let signed = cluster.sign(&meta, &joined(sequence));
    edge.handle_message(&statement_message(&signed, &meta))
        .await;
}

#[tokio::test]
async fn a_bodiless_segment_push_is_made_of_the_parts_and_published_once_its_statement_verifies() {
    let (edge, cluster) = edge().await;
    let pushed_before = metric(&metrics(&edge).await, "sealcast_push_bytes_total");
    // 720p: every part published (verified) first.
    for i in 0..3 {
        publish_part(&edge, &cluster, "720p", 1, i).await;
    }
    let response = call(&edge, assemble_request("720p", 1, 3)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // Held until the segment's own statement comes.
    assert_eq!(
        call(&edge, get("/live/demo/720p/1.m4s")).await.status(),
        StatusCode::NOT_FOUND
    );
    segment_statement(&edge, &cluster, "720p", 1).await;
    let response = call(&edge, get("/live/demo/720p/1.m4s")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, joined(1));
    let (_, playlist) = text(&edge, MEDIA).await;
    assert!(playlist.contains("\n1.m4s\n"), "{playlist}");
    // The parts are still served, the same bytes.
    let response = call(&edge, get("/live/demo/720p/1.1.m4s")).await;
    assert_eq!(body(response).await, part_bytes(1, 1));

    // 480p: parts pushed, their statements not here yet (only pushed once each: the
    // segment's statement is what checks the joined bytes).
    for i in 0..3 {
        push_part(&edge, "480p", 1, i, part_bytes(1, i)).await;
    }
    let response = call(&edge, assemble_request("480p", 1, 3)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    segment_statement(&edge, &cluster, "480p", 1).await;
    let response = call(&edge, get("/live/demo/480p/1.m4s")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, joined(1));

    let m = metrics(&edge).await;
    assert_eq!(
        metric(
            &m,
            "sealcast_segments_assembled_total{outcome=\"assembled\"}"
        ),
        2.0
    );
    // Only the parts' bytes came over the network.
    let parts: usize = (0..3).map(|i| part_bytes(1, i).len()).sum();
    assert_eq!(
        metric(&m, "sealcast_push_bytes_total") - pushed_before,
        (2 * parts) as f64
    );
}

#[tokio::test]
async fn a_bodiless_push_missing_a_part_gets_409_and_nothing_until_the_whole_segment() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    publish_part(&edge, &cluster, "720p", 1, 2).await;
    let response = call(&edge, assemble_request("720p", 1, 3)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let answer = body(response).await;
    assert!(is_parts_missing(409, &answer), "{answer:?}");
    segment_statement(&edge, &cluster, "720p", 1).await;
    assert_eq!(
        call(&edge, get("/live/demo/720p/1.m4s")).await.status(),
        StatusCode::NOT_FOUND
    );
    // The ingest's answer to the 409: the whole segment.
    let response = call(&edge, push_request(&segment_meta("720p", 1), joined(1))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = call(&edge, get("/live/demo/720p/1.m4s")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, joined(1));

    // A part with a rival (which is genuine only its statement can say) is missing too.
    push_part(&edge, "480p", 1, 0, part_bytes(1, 0)).await;
    push_part(&edge, "480p", 1, 0, Bytes::from_static(b"rival")).await;
    for i in 1..3 {
        push_part(&edge, "480p", 1, i, part_bytes(1, i)).await;
    }
    let response = call(&edge, assemble_request("480p", 1, 3)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let m = metrics(&edge).await;
    assert_eq!(
        metric(
            &m,
            "sealcast_segments_assembled_total{outcome=\"parts_missing\"}"
        ),
        2.0
    );

    // An assembled push carries at most a segment's VSI as its body.
    let (name, value) = Assemble::new(3).expect("in range").pair();
    let request = push(&segment_meta("480p", 1))
        .header(name, value)
        .body(Body::from(vec![0u8; Assemble::MAX_PREFIX + 1]))
        .expect("request");
    assert_eq!(
        call(&edge, request).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let request = push(&segment_meta("480p", 1))
        .header(name, "0")
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&edge, request).await.status(), StatusCode::BAD_REQUEST);
}

/// Publishes parts 0..3 of 720p's segment `sequence`, then its assembled push with a VSI of
/// its own as the body; returns the segment's bytes (that VSI, then the parts), which its
/// statement (not sent) must sign.
async fn push_parts_and_vsi(edge: &Arc<Edge>, cluster: &Cluster, sequence: u64) -> Bytes {
    for i in 0..3 {
        publish_part(edge, cluster, "720p", sequence, i).await;
    }
    let prefix = Bytes::from_static(b"the segment's own VSI emsg");
    let (name, value) = Assemble::new(3).expect("in range").pair();
    let request = push(&segment_meta("720p", sequence))
        .header(name, value)
        .header(header::CONTENT_LENGTH, prefix.len())
        .body(Body::from(prefix.clone()))
        .expect("request");
    assert_eq!(call(edge, request).await.status(), StatusCode::ACCEPTED);
    [prefix, joined(sequence)].concat().into()
}

/// A signed segment is its own C2PA VSI and its parts (docs/provenance.md): the assembled
/// push carries the VSI as its body, the node puts it first, and the segment's statement
/// over those bytes publishes it; the parts, as published, are still served alone.
#[tokio::test]
async fn an_assembled_push_puts_its_body_before_the_parts() {
    let (edge, cluster) = edge().await;
    let whole = push_parts_and_vsi(&edge, &cluster, 1).await;
    assert_eq!(
        call(&edge, get("/live/demo/720p/1.m4s")).await.status(),
        StatusCode::NOT_FOUND
    );
    let meta = segment_meta("720p", 1);
    let signed = cluster.sign(&meta, &whole);
    edge.handle_message(&statement_message(&signed, &meta))
        .await;
    let response = call(&edge, get("/live/demo/720p/1.m4s")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, whole);
    let response = call(&edge, get("/live/demo/720p/1.2.m4s")).await;
    assert_eq!(body(response).await, part_bytes(1, 2));
}

/// The part after a published segment's last (what the preload hint named while the
/// segment was open) never comes: it is answered 404 at once, not held until the next
/// segment ends. The segment's bytes are its own VSI and then its parts, so more than the
/// parts' (a player bridging over HTTP, the MoQ player's, asks for exactly that part).
#[tokio::test]
async fn the_part_after_a_whole_segments_last_is_gone_at_once() {
    let (edge, cluster) = edge().await;
    let whole = push_parts_and_vsi(&edge, &cluster, 1).await;
    let meta = segment_meta("720p", 1);
    let signed = cluster.sign(&meta, &whole);
    edge.handle_message(&statement_message(&signed, &meta))
        .await;
    assert_eq!(
        call(&edge, get("/live/demo/720p/1.m4s")).await.status(),
        StatusCode::OK
    );
    for uri in ["/live/demo/720p/1.3.m4s", "/live/demo/720p/1.3.m4s.sig"] {
        // A hold lasts three target durations (3 s here).
        let response = tokio::time::timeout(Duration::from_secs(1), call(&edge, get(uri)))
            .await
            .unwrap_or_else(|_| panic!("{uri} held, though segment 1 is whole"));
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
    }
}

/// A segment pushed whole before its last part (as may happen on any edge): the request
/// for that part is held, and answered once the part comes.
#[tokio::test]
async fn the_last_part_of_a_segment_pushed_before_it_is_held_until_it_comes() {
    let (edge, cluster) = edge().await;
    for i in 0..2 {
        publish_part(&edge, &cluster, "720p", 1, i).await;
    }
    publish_segment(&edge, &cluster, "720p", 1).await;
    let router = edge.service();
    let mut held = tokio::spawn(router.oneshot(get("/live/demo/720p/1.2.m4s")));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut held)
            .await
            .is_err(),
        "answered before the part came"
    );
    publish_part(&edge, &cluster, "720p", 1, 2).await;
    let response = held.await.expect("task").expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, part_bytes(1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_segment_assembled_from_a_tampered_part_is_never_published_and_becomes_a_gap() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    // The right token, other bytes, and no genuine part 1 ever pushed.
    push_part(
        &edge,
        "720p",
        1,
        1,
        Bytes::from_static(b"moof+mdat of part 1.X"),
    )
    .await;
    publish_part(&edge, &cluster, "720p", 1, 2).await;
    let response = call(&edge, assemble_request("720p", 1, 3)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    segment_statement(&edge, &cluster, "720p", 1).await;
    let m = metrics(&edge).await;
    assert_eq!(
        metric(
            &m,
            "sealcast_segments_rejected_total{reason=\"digest_mismatch\"}"
        ),
        1.0
    );
    assert_eq!(
        call(&edge, get("/live/demo/720p/1.m4s")).await.status(),
        StatusCode::NOT_FOUND
    );
    edge.tick();
    let (_, playlist) = text(&edge, MEDIA).await;
    assert!(!playlist.contains("#EXT-X-GAP"), "not yet: {playlist}");
    tokio::time::advance(Duration::from_secs(1)).await;
    edge.tick();
    let (_, playlist) = text(&edge, MEDIA).await;
    assert!(playlist.contains("#EXT-X-GAP\n1.m4s\n"), "{playlist}");
    assert_eq!(
        call(&edge, get("/live/demo/720p/1.m4s")).await.status(),
        StatusCode::NOT_FOUND
    );
}

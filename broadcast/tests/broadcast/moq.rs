//! MoQ egress through the real moq-relay (the `moq-relay` crate's binary, another
//! implementation): a node publishes its stream to the relay, and a subscriber made with
//! moq-tokio (the same project's client library, not ours) reads the catalog, the media
//! track and its statements track back through the relay: a group per segment from its
//! first part, an object per part, byte for byte what LL-HLS serves. Its stream (a CMAF
//! rendition with parts, fed to a node in-process) is `moq_player`'s too.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use broadcast::{MoqConfig, Node};
use bytes::Bytes;
use domain::segment::{InitSegment, PartMeta};
use domain::{LiveEvent, Part, RenditionInfo, Segment, SegmentMeta, StreamName};
use moq_tokio::moq_net;
use tokio_util::sync::CancellationToken;

use crate::support::*;

pub(crate) const INIT: &[u8] = b"\0\0\0\x18ftypiso6 init segment of the moq test";
pub(crate) const PARTS: u32 = 3;
pub(crate) const RENDITION: &str = "720p";

pub(crate) fn part_bytes(sequence: u64, index: u32) -> Bytes {
    Bytes::from(format!("moof+mdat of part {sequence}.{index}").into_bytes())
}

pub(crate) fn cmaf_announce(node: &Node) {
    cmaf_announce_of(node, &stream());
}

/// [`cmaf_announce`] for another stream of the node.
pub(crate) fn cmaf_announce_of(node: &Node, stream: &StreamName) {
    node.apply(LiveEvent::Rendition {
        stream: stream.clone(),
        info: RenditionInfo {
            name: RENDITION.parse().expect("valid"),
            width: 1280,
            height: 720,
            frame_rate: 30.0,
            codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
            init: Some(InitSegment::new(Bytes::from_static(INIT)).expect("small")),
            part_target_us: Some(334_000),
        },
    })
    .expect("announce");
}

pub(crate) fn publish_part(node: &Node, sequence: u64, index: u32) {
    publish_part_of(node, &stream(), sequence, index);
}

fn publish_part_of(node: &Node, stream: &StreamName, sequence: u64, index: u32) {
    node.apply(LiveEvent::Part(Part {
        meta: PartMeta {
            stream: stream.clone(),
            rendition: RENDITION.parse().expect("valid"),
            session: SESSION,
            sequence,
            index,
            discontinuity_sequence: 0,
            independent: index == 0,
            duration: Duration::from_millis(334),
            program_date_time_ms: 1_800_000_000_000 + sequence * 1000,
        },
        bytes: part_bytes(sequence, index),
    }))
    .expect("part");
}

pub(crate) fn publish_segment(node: &Node, sequence: u64) {
    publish_segment_of(node, &stream(), sequence);
}

fn publish_segment_of(node: &Node, stream: &StreamName, sequence: u64) {
    let bytes: Vec<u8> = (0..PARTS)
        .flat_map(|i| part_bytes(sequence, i).to_vec())
        .collect();
    node.apply(LiveEvent::Segment(Segment {
        meta: SegmentMeta {
            stream: stream.clone(),
            rendition: RENDITION.parse().expect("valid"),
            session: SESSION,
            sequence,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_millis(1002),
            start_pts_90k: sequence * 90_000,
        },
        bytes: Bytes::from(bytes),
    }))
    .expect("segment");
}

pub(crate) fn publish_whole(node: &Node, sequence: u64) {
    publish_whole_of(node, &stream(), sequence);
}

/// [`publish_whole`] for another stream of the node.
pub(crate) fn publish_whole_of(node: &Node, stream: &StreamName, sequence: u64) {
    for index in 0..PARTS {
        publish_part_of(node, stream, sequence, index);
    }
    publish_segment_of(node, stream, sequence);
}

/// A moq-relay of its own, and a started node with [`RENDITION`] announced.
pub(crate) async fn relay_and_node() -> (testkit::moq::Relay, Arc<Node>) {
    let relay = tokio::task::spawn_blocking(|| testkit::moq::Relay::start(&[]))
        .await
        .expect("joined")
        .expect("moq-relay starts");
    let node = node();
    start(&node);
    cmaf_announce(&node);
    (relay, node)
}

/// The node's MoQ egress to `relay` (public streams, no key), until the token is cancelled.
pub(crate) fn egress(
    node: &Arc<Node>,
    relay: &testkit::moq::Relay,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), broadcast::BroadcastError>>,
) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(broadcast::run_moq(
        Arc::clone(node),
        MoqConfig {
            relays: vec![relay.url().parse().expect("url")],
            roots: Vec::new(),
            fingerprints: vec![relay.fingerprint.clone()],
            key: None,
        },
        stop.clone(),
    ));
    (stop, task)
}

/// A moq-tokio client that trusts `relay`'s certificate.
pub(crate) fn client(relay: &testkit::moq::Relay) -> moq_tokio::Client {
    relay.client().expect("a client")
}

/// `name`'s track of `broadcast`, subscribed.
pub(crate) async fn subscribe(
    broadcast: &moq_net::broadcast::Consumer,
    name: &str,
) -> moq_net::track::Subscriber {
    broadcast
        .track(name)
        .expect("the track")
        .subscribe(None)
        .await
        .expect("subscribed")
}

pub(crate) async fn next_frame(group: &mut moq_net::group::Consumer) -> Option<Bytes> {
    tokio::time::timeout(Duration::from_secs(10), group.read_frame())
        .await
        .expect("a frame within 10 s")
        .expect("a readable group")
        .map(|frame| frame.payload)
}

pub(crate) async fn next_group(track: &mut moq_net::track::Subscriber) -> moq_net::group::Consumer {
    tokio::time::timeout(Duration::from_secs(10), track.recv_group())
        .await
        .expect("a group within 10 s")
        .expect("a readable track")
        .expect("the track goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reaches_a_moq_tokio_subscriber_through_moq_relay() {
    let (relay, node) = relay_and_node().await;
    publish_whole(&node, 0);
    publish_whole(&node, 1);

    let (stop, egress) = egress(&node, &relay);

    let origin = moq_tokio::origin::spawn();
    let client = client(&relay);
    let _connection = client
        .with_subscriber(origin.clone())
        .connect(relay.url().parse::<url::Url>().expect("url"));
    let broadcast = tokio::time::timeout(
        Duration::from_secs(20),
        origin.consume().routed_broadcast(STREAM),
    )
    .await
    .unwrap_or_else(|_| panic!("no broadcast within 20 s; the relay said:\n{}", relay.log()))
    .expect("the broadcast");

    // The catalog: hang's shape, the init segment in it, and our section beside it.
    let mut catalog_track = subscribe(&broadcast, "catalog.json").await;
    let mut group = next_group(&mut catalog_track).await;
    let catalog: serde_json::Value =
        serde_json::from_slice(&next_frame(&mut group).await.expect("catalog object"))
            .expect("JSON");
    let video = &catalog["video"]["renditions"][RENDITION];
    assert_eq!(video["codec"], "avc1.64001f", "{catalog}");
    assert_eq!(video["codedHeight"], 720, "{catalog}");
    assert_eq!(video["container"]["kind"], "cmaf", "{catalog}");
    let init = base64::engine::general_purpose::STANDARD
        .decode(video["container"]["init"].as_str().expect("init"))
        .expect("base64");
    assert_eq!(init, INIT);
    assert_eq!(
        catalog["sealcast"]["renditions"][RENDITION]["statements"],
        "720p.sig"
    );
    assert_eq!(
        catalog["sealcast"]["renditions"][RENDITION]["session"],
        SESSION.to_string(),
        "the catalog names the publish session of the init segment"
    );

    let mut media = subscribe(&broadcast, RENDITION).await;
    let mut statements = subscribe(&broadcast, "720p.sig").await;

    // Live from here: segments 2..=4 part by part, each read back as it goes out.
    for sequence in 2..5u64 {
        let node = Arc::clone(&node);
        tokio::task::spawn_blocking(move || publish_whole(&node, sequence))
            .await
            .expect("published");
    }
    let mut groups = Vec::new();
    loop {
        let mut group = next_group(&mut media).await;
        let sequence = group.sequence;
        let mut objects = Vec::new();
        while objects.len() < PARTS as usize {
            match next_frame(&mut group).await {
                Some(object) => objects.push(object),
                None => break,
            }
        }
        let expected: Vec<Bytes> = (0..PARTS).map(|i| part_bytes(sequence, i)).collect();
        assert_eq!(objects, expected, "group {sequence} is its segment's parts");
        groups.push(sequence);
        if sequence == 4 {
            break;
        }
    }
    assert!(
        groups.windows(2).all(|w| w[0] < w[1]) && groups[0] >= 1,
        "groups in order from a segment start: {groups:?}"
    );
    // The statements track has the same groups: the delegation, then a statement per part
    // (empty here: a node fed in-process holds no statements).
    let mut group = next_group(&mut statements).await;
    assert!(group.sequence >= 1);
    let mut count = 0;
    while let Some(statement) = next_frame(&mut group).await {
        assert!(statement.is_empty(), "no statements in this node");
        count += 1;
        if count == PARTS + 1 {
            break;
        }
    }
    assert_eq!(count, PARTS + 1, "a delegation and one statement per part");

    // The publisher reconnects (a new session takes the stream over and announces the
    // rendition again, here with the same init bytes): the catalog goes out again naming
    // the new session, so a player can tell which session's parts its init segment
    // decodes.
    let again = domain::SessionId(0xbeef);
    node.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session: again,
        private: false,
        record: true,
    })
    .expect("the new session starts");
    cmaf_announce(&node);
    let mut group = next_group(&mut catalog_track).await;
    let catalog: serde_json::Value =
        serde_json::from_slice(&next_frame(&mut group).await.expect("catalog object"))
            .expect("JSON");
    assert_eq!(
        catalog["sealcast"]["renditions"][RENDITION]["session"],
        again.to_string(),
        "{catalog}"
    );

    stop.cancel();
    egress.await.expect("joined").expect("egress stops cleanly");
}

/// A node that holds a stream only from the middle of a segment (as one that restarted
/// mid-segment does) does not announce it until a segment begins: a relay routes a stream
/// through its newest announcement, and this node would have nothing from the start of a
/// group to serve. Once the next segment's first part is in, it announces, and the media
/// track's first group is that segment from its first part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_announces_a_stream_only_once_it_holds_a_group_from_its_start() {
    let (relay, node) = relay_and_node().await;
    // Live from a whole segment (as one caught up on after a restart), then the middle
    // of the next one: its first part came before the node did.
    publish_segment(&node, 0);
    for index in 1..PARTS {
        publish_part(&node, 1, index);
    }

    let (stop, egress) = egress(&node, &relay);
    let origin = moq_tokio::origin::spawn();
    let _connection = client(&relay)
        .with_subscriber(origin.clone())
        .connect(relay.url().parse::<url::Url>().expect("url"));
    let consumer = origin.consume();
    let mut routed = Box::pin(consumer.routed_broadcast(STREAM));
    // Two of the node's rescans (1 s each) with only the middle of segment 1: announcing
    // with the catalog, as before, is routed well within them.
    let early = tokio::time::timeout(Duration::from_secs(2), routed.as_mut()).await;
    assert!(
        early.is_err(),
        "announced while holding only the middle of a segment; the relay said:\n{}",
        relay.log()
    );

    // Segment 1 ends and the next one begins.
    publish_segment(&node, 1);
    publish_part(&node, 2, 0);
    let broadcast = tokio::time::timeout(Duration::from_secs(20), routed)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "not announced within 20 s of a segment's start; the relay said:\n{}",
                relay.log()
            )
        })
        .expect("the broadcast");
    let mut media = subscribe(&broadcast, RENDITION).await;
    let mut group = next_group(&mut media).await;
    assert_eq!(
        group.sequence, 2,
        "the first group is the segment that began"
    );
    assert_eq!(next_frame(&mut group).await, Some(part_bytes(2, 0)));

    stop.cancel();
    egress.await.expect("joined").expect("egress stops cleanly");
}

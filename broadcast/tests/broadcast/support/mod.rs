//! Builders shared by the integration tests: a node with one live stream, and requests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use broadcast::{Node, NodeConfig};
use bytes::Bytes;
use domain::{
    LiveEvent, NodeId, RenditionInfo, RenditionName, Segment, SegmentMeta, SessionId, StreamName,
};
use http::{Request, Response};
use tower::ServiceExt;

pub const NODE: &str = "edge-test-1";
pub const STREAM: &str = "demo";
pub const SESSION: SessionId = SessionId(0xfeed);

pub fn stream() -> StreamName {
    StreamName::new(STREAM).expect("valid")
}

/// The window shape of the test nodes: three segments of two seconds.
pub fn node_config() -> NodeConfig {
    NodeConfig {
        window: 3,
        segment_target: Duration::from_secs(2),
    }
}

pub fn node() -> Arc<Node> {
    Arc::new(Node::new(NodeId::new(NODE).expect("valid"), node_config()))
}

pub fn start(node: &Node) {
    node.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: false,
        record: true,
    })
    .expect("start");
}

pub fn announce(node: &Node, rendition: &str, height: u32) {
    node.apply(LiveEvent::Rendition {
        stream: stream(),
        info: RenditionInfo {
            name: RenditionName::new(rendition).expect("valid"),
            width: height * 16 / 9,
            height,
            frame_rate: 30.0,
            codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
            init: None,
            part_target_us: None,
        },
    })
    .expect("announce");
}

/// The bytes of segment `sequence`: recognisable, and different per sequence number.
pub fn segment_bytes(sequence: u64) -> Bytes {
    (0..1000u32)
        .map(|i| (i as u64 + sequence) as u8)
        .collect::<Vec<u8>>()
        .into()
}

pub fn publish(node: &Node, rendition: &str, sequence: u64) {
    publish_bytes(node, rendition, sequence, segment_bytes(sequence));
}

/// Segment `sequence` of `rendition` with these bytes.
pub fn publish_bytes(node: &Node, rendition: &str, sequence: u64, bytes: Bytes) {
    node.apply(LiveEvent::Segment(Segment {
        meta: SegmentMeta {
            stream: stream(),
            rendition: RenditionName::new(rendition).expect("valid"),
            session: SESSION,
            sequence,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_secs(2),
            start_pts_90k: sequence * 180_000,
        },
        bytes,
    }))
    .expect("publish");
}

/// A node with stream `demo`, renditions `720p` and `480p`, segments 0..=4 of each.
pub fn live_node() -> Arc<Node> {
    let node = node();
    start(&node);
    announce(&node, "720p", 720);
    announce(&node, "480p", 480);
    for seq in 0..5 {
        publish(&node, "720p", seq);
        publish(&node, "480p", seq);
    }
    node
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

/// `request` answered by `node` as production serves it: as an edge
/// ([`broadcast::Edge::service`]) of a cluster of its own.
pub async fn send(node: &Arc<Node>, request: Request<Body>) -> Response<Body> {
    let cluster = edge::Cluster::new(certs::signing::SignatureAlgorithm::Ed25519);
    let config = edge::edge_config(&cluster, node_config());
    let edge = broadcast::Edge::new(Arc::clone(node), config).expect("an edge");
    edge.service().oneshot(request).await.expect("infallible")
}

pub async fn body(response: Response<Body>) -> Bytes {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
}

/// Status, headers (in order) and body of an answer: what two serving paths must agree on.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// The whole of `response`, for comparing answers.
pub async fn answer(response: Response<Body>) -> Answer {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.to_string(), value)
        })
        .collect();
    (status, headers, body(response).await.to_vec())
}

pub mod edge;

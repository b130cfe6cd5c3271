//! Builders for edge tests: a cluster's keys and certificate, signed statements, push and
//! event requests, and control messages as the broker would deliver them.

use domain::time::WallClock;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use broadcast::{Edge, EdgeConfig, NodeConfig};
use bytes::Bytes;
use certs::signing::{RootKey, SignatureAlgorithm, SigningKey, Validity};
use domain::broker::BrokerAddress;
use domain::push_protocol::{ControlEvent, InternalPath, SegmentHeaders, STATEMENT_HEADER};
use domain::topics::Topic;
use domain::wire::{SegmentStatement, SignedMedia};
use domain::{LiveEvent, NodeId, RenditionInfo, RenditionName, SegmentMeta};
use http::{header, Request, Response};
use plumbing::Message;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use super::{stream, SESSION};

pub const TOKEN: &str = "test-push-token-0123456789";
pub const INGEST: &str = "ingest1";

/// A cluster root and one certified ingest key.
pub struct Cluster {
    pub root: RootKey,
    pub ingest: SigningKey,
    pub cert: Vec<u8>,
    /// The broadcast nodes' edge key, certified by `root`.
    pub edge: std::sync::Arc<certs::signing::PresenceSigner>,
}

impl Cluster {
    pub fn new(algorithm: SignatureAlgorithm) -> Self {
        let root = RootKey::generate(algorithm).expect("root key");
        let ingest = SigningKey::generate(algorithm).expect("ingest key");
        let now = WallClock.unix_secs();
        let cert = root
            .certify(
                ingest.public_key(),
                ingest_id(),
                Validity::new(now - 60, now + 3600).expect("validity"),
            )
            .expect("same algorithm")
            .encode();
        let edge_key = SigningKey::generate(algorithm).expect("edge key");
        let edge_cert = root
            .certify_edge(
                edge_key.public_key(),
                domain::NodeId::new("broadcast").expect("id"),
                Validity::new(now - 60, now + 3600).expect("validity"),
            )
            .expect("same algorithm");
        let edge = std::sync::Arc::new(
            certs::signing::PresenceSigner::new(edge_key, &edge_cert).expect("signer"),
        );
        Cluster {
            root,
            ingest,
            cert,
            edge,
        }
    }

    /// What the load balancer and the ingests check presences with.
    pub fn presences(&self) -> certs::signing::PresenceVerifier {
        certs::signing::PresenceVerifier::new(self.root.public_key())
    }

    /// The statement of `bytes` described by `meta`, signed by the certified ingest key.
    pub fn sign(&self, meta: &SegmentMeta, bytes: &[u8]) -> SignedMedia {
        sign_with(&self.ingest, meta, bytes)
    }

    /// `event` pushed as the certified ingest sends it: signed now.
    pub fn event_request(&self, event: &ControlEvent) -> Request<Body> {
        raw_event_request(signed_event(&self.ingest, event, WallClock.unix_ms()))
    }

    /// The certificate as the broker delivers it (retained).
    pub fn cert_message(&self) -> Message {
        Message {
            topic: Topic::IngestCertificate(ingest_id()),
            payload: Bytes::from(self.cert.clone()),
            retained: true,
        }
    }
}

pub fn sign_with(key: &SigningKey, meta: &SegmentMeta, bytes: &[u8]) -> SignedMedia {
    let statement = SegmentStatement::from_meta(
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

pub fn ingest_id() -> NodeId {
    NodeId::new(INGEST).expect("valid")
}

pub fn rendition(r: &str) -> RenditionName {
    RenditionName::new(r).expect("valid")
}

/// Metadata of segment `sequence` of `demo/{r}`.
pub fn meta(r: &str, sequence: u64) -> SegmentMeta {
    SegmentMeta {
        stream: stream(),
        rendition: rendition(r),
        session: SESSION,
        sequence,
        discontinuity_sequence: 0,
        discontinuity: false,
        duration: Duration::from_secs(2),
        start_pts_90k: sequence * 180_000,
    }
}

/// A statement message on its proper topic.
pub fn statement_message(signed: &SignedMedia, meta: &SegmentMeta) -> Message {
    Message {
        topic: Topic::MediaStatements(meta.stream.clone(), meta.rendition.clone()),
        payload: Bytes::from(signed.encode()),
        retained: false,
    }
}

pub fn edge_config(cluster: &Cluster, node: NodeConfig) -> EdgeConfig {
    EdgeConfig::new(
        node,
        cluster.root.public_key(),
        domain::push_protocol::PushToken::new(TOKEN).expect("token"),
        std::sync::Arc::clone(&cluster.edge),
        // Never connected (a test that runs the MQTT side sets its own broker) nor served.
        BrokerAddress::new("127.0.0.1", 1),
        "http://127.0.0.1:8081",
    )
}

/// `PUT` of a segment with the right token and headers.
pub fn push(meta: &SegmentMeta) -> http::request::Builder {
    let mut builder = Request::put(
        InternalPath::Segment(meta.stream.clone(), meta.rendition.clone(), meta.sequence)
            .to_string(),
    )
    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    for (name, value) in SegmentHeaders::of(meta).pairs() {
        builder = builder.header(name, value);
    }
    builder
}

pub fn push_request(meta: &SegmentMeta, bytes: Bytes) -> Request<Body> {
    push(meta)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::from(bytes))
        .expect("request")
}

/// A catch-up push: the signed statement travels in the header.
pub fn push_with_statement(
    meta: &SegmentMeta,
    bytes: Bytes,
    signed: &SignedMedia,
) -> Request<Body> {
    push(meta)
        .header(STATEMENT_HEADER, hex::encode(signed.encode()))
        .body(Body::from(bytes))
        .expect("request")
}

/// `event` as an ingest with `key` signs it, stating `issued_at_ms` as the time.
/// `event` as an ingest with `key` signs it, stating `issued_at_ms` as the time.
pub fn signed_event(key: &SigningKey, event: &ControlEvent, issued_at_ms: u64) -> Vec<u8> {
    key.sign_event(serde_json::to_vec(event).expect("json"), issued_at_ms)
        .encode()
}

/// `POST /internal/v1/events` with the right token and `body` as it is.
pub fn raw_event_request(body: Vec<u8>) -> Request<Body> {
    Request::post(InternalPath::Events.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(body))
        .expect("request")
}

pub fn rendition_info(r: &str, height: u32) -> RenditionInfo {
    RenditionInfo {
        name: rendition(r),
        width: height * 16 / 9,
        height,
        frame_rate: 30.0,
        codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
        init: None,
        part_target_us: None,
    }
}

/// The stream-start events an ingest sends: session, then renditions.
pub fn start_events(renditions: &[(&str, u32)]) -> Vec<ControlEvent> {
    let mut events = vec![ControlEvent::Live(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: false,
        record: true,
    })];
    for (r, h) in renditions {
        events.push(ControlEvent::Live(LiveEvent::Rendition {
            stream: stream(),
            info: rendition_info(r, *h),
        }));
    }
    events
}

pub async fn call(edge: &Arc<Edge>, request: Request<Body>) -> Response<Body> {
    edge.service().oneshot(request).await.expect("infallible")
}

/// One line of `/metrics` with this prefix, parsed as its value (0 if absent).
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

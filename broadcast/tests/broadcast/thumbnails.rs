//! Thumbnails through an edge's push API, with real keys: one signed by the certified
//! ingest key is served at `/live/{stream}/thumbnail.jpg` with its statement and named in
//! `/api/v1/streams`; a forged signature, a foreign (uncertified) key, bytes that are not
//! the ones signed, another stream's statement, a segment's statement, an older thumbnail,
//! an earlier session's, and an oversized body are never served, and each is counted.

use std::sync::Arc;
use std::time::Duration;

use crate::support::edge::*;
use crate::support::*;
use axum::body::Body;
use broadcast::{Edge, NodeConfig};
use bytes::Bytes;
use certs::signing::{SignatureAlgorithm, SigningKey};
use domain::push_protocol::{InternalPath, STATEMENT_HEADER};
use domain::time::WallClock;
use domain::wire::{SignedThumbnail, ThumbnailStatement};
use domain::{SessionId, StreamName, ThumbnailMeta, MAX_THUMBNAIL_BYTES};
use http::{header, Request, StatusCode};
use sha2::{Digest, Sha256};

/// An edge with a certified ingest key and stream `demo` started (session `SESSION`).
async fn edge(algorithm: SignatureAlgorithm) -> (Arc<Edge>, Cluster) {
    let cluster = Cluster::new(algorithm);
    let config = edge_config(
        &cluster,
        NodeConfig {
            window: 3,
            segment_target: Duration::from_secs(2),
        },
    );
    let edge = Edge::new(node(), config).expect("edge");
    edge.handle_message(&cluster.cert_message()).await;
    for event in start_events(&[("360p", 360)]) {
        let response = call(&edge, cluster.event_request(&event)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    (edge, cluster)
}

fn meta(session: SessionId, sequence: u64) -> ThumbnailMeta {
    ThumbnailMeta {
        stream: stream(),
        session,
        sequence,
        captured_ms: WallClock.unix_ms(),
        width: 320,
        height: 180,
    }
}

/// A JPEG-looking picture, different per `seed`.
fn jpeg(seed: u8) -> Bytes {
    let mut bytes = vec![0xff, 0xd8, 0xff, 0xe0];
    bytes.extend(std::iter::repeat_n(seed, 500));
    bytes.extend([0xff, 0xd9]);
    Bytes::from(bytes)
}

/// The statement of `bytes` described by `meta`, signed by `key`.
fn signed(key: &SigningKey, meta: &ThumbnailMeta, bytes: &[u8]) -> Vec<u8> {
    let statement = ThumbnailStatement::from_meta(
        meta,
        key.algorithm(),
        key.key_id(),
        bytes.len() as u64,
        Sha256::digest(bytes).into(),
    );
    SignedThumbnail::sign(&statement, |b| key.sign(b)).encode()
}

fn push(envelope: Option<&[u8]>, body: Bytes) -> Request<Body> {
    let mut request = Request::put(InternalPath::Thumbnail(stream()).to_string())
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "image/jpeg");
    if let Some(envelope) = envelope {
        request = request.header(STATEMENT_HEADER, hex::encode(envelope));
    }
    request.body(Body::from(body)).expect("request")
}

async fn served(edge: &Arc<Edge>) -> Option<(Bytes, Bytes)> {
    let image = call(edge, get("/live/demo/thumbnail.jpg")).await;
    if image.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(image.headers()[header::CACHE_CONTROL], "public, max-age=5");
    let image = body(image).await;
    let sig = call(edge, get("/live/demo/thumbnail.jpg.sig")).await;
    assert_eq!(sig.status(), StatusCode::OK);
    Some((image, body(sig).await))
}

async fn outcome(edge: &Arc<Edge>, outcome: &str) -> f64 {
    let text = body(call(edge, get("/metrics")).await).await;
    let text = String::from_utf8(text.to_vec()).expect("utf-8");
    metric(
        &text,
        &format!("sealcast_thumbnails_total{{outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test]
async fn only_verified_thumbnails_of_the_live_session_are_served() {
    for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
        let (edge, cluster) = edge(algorithm).await;
        assert_eq!(served(&edge).await, None, "nothing before a thumbnail");

        // Refused, each for its reason, and nothing served.
        let picture = jpeg(1);
        let m = meta(SESSION, 4);
        let mut forged = signed(&cluster.ingest, &m, &picture);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let foreign = SigningKey::generate(algorithm).expect("key");
        let mut other_stream = m.clone();
        other_stream.stream = StreamName::new("other").expect("valid");
        let segment = cluster
            .sign(&crate::support::edge::meta("360p", 4), &picture)
            .encode();
        let too_large = Bytes::from(vec![0xff; MAX_THUMBNAIL_BYTES + 1]);
        let cases: [(&str, Option<Vec<u8>>, Bytes, StatusCode); 7] = [
            (
                "bad_signature",
                Some(forged),
                picture.clone(),
                StatusCode::FORBIDDEN,
            ),
            (
                "unknown_key",
                Some(signed(&foreign, &m, &picture)),
                picture.clone(),
                StatusCode::FORBIDDEN,
            ),
            (
                "digest_mismatch",
                Some(signed(&cluster.ingest, &m, &picture)),
                jpeg(2),
                StatusCode::FORBIDDEN,
            ),
            (
                "malformed",
                Some(signed(&cluster.ingest, &other_stream, &picture)),
                picture.clone(),
                StatusCode::FORBIDDEN,
            ),
            (
                "malformed",
                Some(segment),
                picture.clone(),
                StatusCode::FORBIDDEN,
            ),
            ("malformed", None, picture.clone(), StatusCode::FORBIDDEN),
            (
                "too large",
                Some(signed(&cluster.ingest, &m, &picture)),
                too_large,
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
        ];
        for (what, envelope, bytes, status) in cases {
            let response = call(&edge, push(envelope.as_deref(), bytes)).await;
            assert_eq!(response.status(), status, "{algorithm:?} {what}");
            assert_eq!(served(&edge).await, None, "{algorithm:?} {what} served");
        }
        for reason in ["bad_signature", "unknown_key", "digest_mismatch"] {
            assert_eq!(outcome(&edge, reason).await, 1.0, "{reason}");
        }
        assert_eq!(outcome(&edge, "malformed").await, 3.0);

        // A genuine one is served, bytes and statement as pushed, and listed.
        let good = signed(&cluster.ingest, &m, &picture);
        let response = call(&edge, push(Some(&good), picture.clone())).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            served(&edge).await,
            Some((picture.clone(), Bytes::from(good.clone())))
        );
        let list = body(call(&edge, get("/api/v1/streams")).await).await;
        let list: serde_json::Value = serde_json::from_slice(&list).expect("json");
        assert_eq!(list[0]["thumbnail_url"], "/live/demo/thumbnail.jpg");

        // An older one (a replay), and one of another session, do not replace it.
        let older = jpeg(3);
        let envelope = signed(&cluster.ingest, &meta(SESSION, 3), &older);
        let response = call(&edge, push(Some(&envelope), older.clone())).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let stale = jpeg(4);
        let envelope = signed(&cluster.ingest, &meta(SessionId(SESSION.0 - 1), 9), &stale);
        let response = call(&edge, push(Some(&envelope), stale.clone())).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            served(&edge).await,
            Some((picture.clone(), Bytes::from(good)))
        );
        assert_eq!(outcome(&edge, "stale").await, 1.0);
        assert_eq!(outcome(&edge, "other_session").await, 1.0);

        // A newer one replaces it.
        let newer = jpeg(5);
        let envelope = signed(&cluster.ingest, &meta(SESSION, 5), &newer);
        let response = call(&edge, push(Some(&envelope), newer.clone())).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(served(&edge).await, Some((newer, Bytes::from(envelope))));
        assert_eq!(outcome(&edge, "kept").await, 2.0);
    }
}

//! The edge's internal push API and signature gate, driven through
//! `tower::ServiceExt::oneshot` with real keys and certificates (one test over a real
//! socket, for a chunked body).

use std::sync::Arc;
use std::time::Duration;

use crate::support::edge::*;
use crate::support::*;
use axum::body::Body;
use broadcast::{Edge, NodeConfig};
use bytes::Bytes;
use certs::signing::{SignatureAlgorithm, SigningKey};
use domain::push_protocol::{ControlEvent, DURATION_HEADER, STATEMENT_HEADER};
use domain::time::WallClock;
use domain::topics::Topic;
use domain::{LiveEvent, NodeId};
use http::{header, Request, StatusCode};
use plumbing::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CAP: usize = 4096;
const HOLD: Duration = Duration::from_millis(500);
/// How many hold times a started lane waits for a statement that may only be late: the
/// edge gate's own `SILENT_HOLDS`, written out so that a change to it is a change here too.
const SILENT_HOLDS: u32 = 8;

/// An edge with a certified ingest key and stream `demo` (rendition `720p`) started.
async fn edge(algorithm: SignatureAlgorithm) -> (Arc<Edge>, Cluster) {
    let cluster = Cluster::new(algorithm);
    let node = node();
    let mut config = edge_config(
        &cluster,
        NodeConfig {
            window: 3,
            segment_target: Duration::from_secs(2),
        },
    );
    config.max_segment_bytes = CAP;
    config.hold = HOLD;
    let edge = Edge::new(node, config).expect("edge");
    edge.handle_message(&cluster.cert_message()).await;
    for event in start_events(&[("720p", 720)]) {
        let response = call(&edge, cluster.event_request(&event)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    (edge, cluster)
}

async fn error_of(response: http::Response<Body>) -> String {
    let json: serde_json::Value = serde_json::from_slice(&body(response).await).expect("json");
    json["error"].as_str().expect("error string").to_owned()
}

async fn metrics(edge: &Arc<Edge>) -> String {
    let response = call(edge, get("/metrics")).await;
    String::from_utf8(body(response).await.to_vec()).expect("utf-8")
}

fn rejected(text: &str, reason: &str) -> f64 {
    metric(
        text,
        &format!("sealcast_segments_rejected_total{{reason=\"{reason}\"}}"),
    )
}

async fn segment_status(edge: &Arc<Edge>, r: &str, seq: u64) -> StatusCode {
    call(edge, get(&format!("/live/demo/{r}/{seq}.ts")))
        .await
        .status()
}

async fn playlist(edge: &Arc<Edge>) -> String {
    let response = call(edge, get("/live/demo/720p/index.m3u8")).await;
    assert_eq!(response.status(), StatusCode::OK);
    String::from_utf8(body(response).await.to_vec()).expect("utf-8")
}

/// Pushes segment `seq` of 720p (genuine bytes) and delivers its signed statement by MQTT.
async fn publish_genuine(edge: &Arc<Edge>, cluster: &Cluster, seq: u64) {
    let meta = meta("720p", seq);
    let bytes = segment_bytes(seq);
    let response = call(edge, push_request(&meta, bytes.clone())).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    edge.handle_message(&statement_message(&cluster.sign(&meta, &bytes), &meta))
        .await;
}

#[tokio::test]
async fn pushes_without_the_token_are_401_before_anything_else() {
    let (edge, _) = edge(SignatureAlgorithm::Ed25519).await;
    let meta = meta("720p", 0);
    // No token, a wrong one, and the right one without the `Bearer` scheme.
    for auth in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
        for path in [
            "/internal/v1/segments/demo/720p/0",
            "/internal/v1/segments/../720p/0",
            "/internal/v1/events",
        ] {
            let mut request = push(&meta).uri(path);
            if let Some(headers) = request.headers_mut() {
                headers.remove(header::AUTHORIZATION);
                if let Some(auth) = auth {
                    headers.insert(header::AUTHORIZATION, auth.parse().expect("value"));
                }
            }
            let response = call(&edge, request.body(Body::from("x")).expect("request")).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{auth:?} {path}"
            );
            assert_eq!(response.headers()["x-sealcast-node"], NODE);
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(error_of(response).await, "unauthorized");
        }
    }
}

#[tokio::test]
async fn oversized_segments_are_413() {
    let (edge, _) = edge(SignatureAlgorithm::Ed25519).await;
    let meta = meta("720p", 0);
    // Declared too large: refused before the body is read.
    let response = call(&edge, push_request(&meta, Bytes::from(vec![0x47; CAP + 1]))).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(response).await, "body too large");
    // Not declared: refused while streaming.
    let request = push(&meta)
        .body(Body::from(vec![0x47; CAP + 1]))
        .expect("request");
    assert_eq!(
        call(&edge, request).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Exactly the cap is fine.
    let request = push(&meta)
        .body(Body::from(vec![0x47; CAP]))
        .expect("request");
    assert_eq!(call(&edge, request).await.status(), StatusCode::ACCEPTED);
    // Events have their own, smaller cap.
    let request = Request::post("/internal/v1/events")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from(vec![
            b' ';
            domain::wire::MAX_SIGNED_EVENT_LEN + 1
        ]))
        .expect("request");
    assert_eq!(
        call(&edge, request).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_413_over_a_real_socket() {
    let (edge, _) = edge(SignatureAlgorithm::Ed25519).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let router = edge.router();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });

    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "PUT /internal/v1/segments/demo/720p/0 HTTP/1.1\r\nHost: test\r\n\
         Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n"
    );
    for (name, value) in domain::push_protocol::SegmentHeaders::of(&meta("720p", 0)).pairs() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.expect("head");
    // Chunks of 1000 bytes, far past the cap; the server may answer and stop reading at
    // any point, so write errors are expected.
    let chunk = format!("3e8\r\n{}\r\n", "G".repeat(1000));
    for _ in 0..64 {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut response = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    assert_eq!(&response, b"HTTP/1.1 413");
    assert_eq!(
        segment_status(&edge, "720p", 0).await,
        StatusCode::NOT_FOUND
    );
    shutdown.cancel();
    server.await.expect("task").expect("served");
}

#[tokio::test]
async fn bad_paths_unknown_streams_and_bad_headers() {
    let (edge, _) = edge(SignatureAlgorithm::Ed25519).await;
    let meta0 = meta("720p", 0);
    for path in [
        "/internal/v1/segments/demo/720p/../0",
        "/internal/v1/segments/demo/720p/0.ts",
        "/internal/v1/segments/demo/720p",
        "/internal/v2/events",
    ] {
        let request = push(&meta0).uri(path).body(Body::empty()).expect("request");
        let response = call(&edge, request).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_of(response).await, "not found");
    }
    // No SessionStarted for this stream.
    let mut ghost = meta("720p", 0);
    ghost.stream = domain::StreamName::new("ghost").expect("valid");
    let response = call(&edge, push_request(&ghost, segment_bytes(0))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(response).await, "unknown stream");
    // A rendition never announced.
    let response = call(&edge, push_request(&meta("1080p", 0), segment_bytes(0))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Another session than the live one.
    let mut stale = meta0.clone();
    stale.session = domain::SessionId(1);
    let response = call(&edge, push_request(&stale, segment_bytes(0))).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // A missing header, and a bad one: named in the answer.
    let mut request = push_request(&meta0, segment_bytes(0));
    request.headers_mut().remove(DURATION_HEADER);
    let response = call(&edge, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(response).await,
        format!("missing or invalid header {DURATION_HEADER}")
    );
    let mut request = push_request(&meta0, segment_bytes(0));
    request
        .headers_mut()
        .insert(STATEMENT_HEADER, "not-hex".parse().expect("value"));
    let response = call(&edge, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_of(response).await,
        format!("missing or invalid header {STATEMENT_HEADER}")
    );
    // Wrong method.
    let request = push(&meta0)
        .method("POST")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        call(&edge, request).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    // Nothing of that reached the window or the gate.
    assert_eq!(
        metric(&metrics(&edge).await, "sealcast_pending_segments"),
        0.0
    );
}

#[tokio::test]
async fn events_bad_json_is_400_and_refused_events_409() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    // Not a signed statement at all (the JSON an older ingest sent included).
    for bad in [
        &b"{"[..],
        br#"{"type":"ended","stream":"demo","session":1}"#,
        b"",
    ] {
        let response = call(&edge, raw_event_request(bad.to_vec())).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(response).await, "not a signed control event");
    }
    // Signed, but not a valid event.
    for bad in [
        &b"{"[..],
        br#"{"type":"segment"}"#,
        br#"{"type":"ended","stream":"../x","session":1}"#,
    ] {
        let body = cluster
            .ingest
            .sign_event(bad.to_vec(), WallClock.unix_ms())
            .encode();
        let response = call(&edge, raw_event_request(body)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_of(response).await, "invalid control event");
    }
    let stale_end = ControlEvent::Live(LiveEvent::Ended {
        stream: stream(),
        session: domain::SessionId(1),
    });
    let response = call(&edge, cluster.event_request(&stale_end)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_of(response).await, "stale session");
    let ghost = ControlEvent::Live(LiveEvent::Ended {
        stream: domain::StreamName::new("ghost").expect("valid"),
        session: SESSION,
    });
    assert_eq!(
        call(&edge, cluster.event_request(&ghost)).await.status(),
        StatusCode::NOT_FOUND
    );
    let synced = ControlEvent::Synced {
        ingest: NodeId::new("ingest1").expect("valid"),
    };
    assert_eq!(
        call(&edge, cluster.event_request(&synced)).await.status(),
        StatusCode::NO_CONTENT
    );
}

/// Issue 13's playlist rewrite: with the push token alone (or an old statement, or the key
/// of another ingest) no control event changes what the node lists.
#[tokio::test]
async fn events_need_a_fresh_signature_of_a_trusted_ingest() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    let master = || async {
        String::from_utf8(
            body(call(&edge, get("/live/demo/master.m3u8")).await)
                .await
                .to_vec(),
        )
        .expect("utf-8")
    };
    let media_before = playlist(&edge).await;
    let master_before = master().await;
    let end = ControlEvent::Live(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    });
    let rogue = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let now = WallClock.unix_ms();
    let ten_minutes = 600_000;
    let refused = [
        // Signed by a key no certificate vouches for.
        // (503: its certificate may be on its way, so the ingest retries.)
        (
            signed_event(&rogue, &end, now),
            StatusCode::SERVICE_UNAVAILABLE,
            "unknown_key",
        ),
        // Signed by the trusted key, ten minutes ago or ten minutes ahead.
        (
            signed_event(&cluster.ingest, &end, now - ten_minutes),
            StatusCode::FORBIDDEN,
            "stale",
        ),
        (
            signed_event(&cluster.ingest, &end, now + ten_minutes),
            StatusCode::FORBIDDEN,
            "stale",
        ),
        // A genuine statement whose signature was altered.
        (
            {
                let mut b = signed_event(&cluster.ingest, &end, now);
                let last = b.len() - 1;
                b[last] ^= 1;
                b
            },
            StatusCode::FORBIDDEN,
            "bad_signature",
        ),
        // "Window sent" in the name of another ingest.
        (
            signed_event(
                &cluster.ingest,
                &ControlEvent::Synced {
                    ingest: NodeId::new("ingest2").expect("valid"),
                },
                now,
            ),
            StatusCode::FORBIDDEN,
            "bad_signature",
        ),
    ];
    for (i, (body, status, reason)) in refused.into_iter().enumerate() {
        let before = metric(
            &metrics(&edge).await,
            &format!("sealcast_control_events_refused_total{{reason=\"{reason}\"}}"),
        );
        let response = call(&edge, raw_event_request(body)).await;
        assert_eq!(response.status(), status, "case {i}");
        let after = metric(
            &metrics(&edge).await,
            &format!("sealcast_control_events_refused_total{{reason=\"{reason}\"}}"),
        );
        assert_eq!(after, before + 1.0, "case {i} counted as {reason}");
    }
    // The codecs injection, even signed by the trusted key, is refused as invalid.
    let injected = br#"{"type":"rendition","stream":"demo","info":{"name":"720p","width":1280,"height":720,"frame_rate":30.0,"codecs":"avc1\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://evil.example/x.m3u8"}}"#;
    let body = cluster.ingest.sign_event(injected.to_vec(), now).encode();
    assert_eq!(
        call(&edge, raw_event_request(body)).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(playlist(&edge).await, media_before);
    assert_eq!(master().await, master_before);
    assert!(!master().await.contains("evil.example"));

    // A rendition change signed before the start of the live session (an old statement
    // replayed within the skew) is refused; one signed after it is taken.
    let older = ControlEvent::Live(LiveEvent::Rendition {
        stream: stream(),
        info: rendition_info("720p", 480),
    });
    let response = call(
        &edge,
        raw_event_request(signed_event(&cluster.ingest, &older, now - 60_000)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(master().await, master_before);
    let response = call(&edge, cluster.event_request(&older)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(master().await.contains("RESOLUTION=853x480"));
}

#[tokio::test]
async fn a_verified_segment_is_served_byte_identical() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    let response = call(&edge, get("/live/demo/720p/0.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, segment_bytes(0));
    assert!(playlist(&edge).await.contains("\n0.ts\n"));
    let text = metrics(&edge).await;
    assert_eq!(
        metric(
            &text,
            "sealcast_segments_published_total{stream=\"demo\",rendition=\"720p\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "sealcast_manifests_verified_total"), 1.0);
    assert_eq!(metric(&text, "sealcast_push_bytes_total"), 1000.0);
    assert_eq!(
        metric(&text, "sealcast_signature_verify_seconds_count"),
        1.0
    );
    assert_eq!(metric(&text, "sealcast_signature_wait_seconds_count"), 1.0);
    assert_eq!(metric(&text, "sealcast_pending_segments"), 0.0);
    for reason in [
        "bad_signature",
        "unknown_key",
        "replay",
        "timeout",
        "overflow",
    ] {
        assert_eq!(rejected(&text, reason), 0.0, "{reason} listed at zero");
    }
}

#[tokio::test]
async fn ml_dsa_65_catch_up_push_carries_its_statement() {
    let (edge, cluster) = edge(SignatureAlgorithm::MlDsa65).await;
    let meta0 = meta("720p", 0);
    let bytes = segment_bytes(0);
    let signed = cluster.sign(&meta0, &bytes);
    let response = call(&edge, push_with_statement(&meta0, bytes.clone(), &signed)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = call(&edge, get("/live/demo/720p/0.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, bytes);
    // A header statement for another sequence number is refused outright.
    let meta1 = meta("720p", 1);
    let response = call(
        &edge,
        push_with_statement(&meta1, segment_bytes(1), &signed),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Live MQTT delivery works for ML-DSA too.
    publish_genuine(&edge, &cluster, 1).await;
    assert_eq!(segment_status(&edge, "720p", 1).await, StatusCode::OK);
}

#[tokio::test]
async fn tampered_bytes_are_never_served() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    let meta0 = meta("720p", 0);
    let genuine = segment_bytes(0);
    let mut tampered = genuine.to_vec();
    tampered[500] ^= 0x01;
    call(&edge, push_request(&meta0, Bytes::from(tampered))).await;
    edge.handle_message(&statement_message(&cluster.sign(&meta0, &genuine), &meta0))
        .await;
    assert_eq!(
        segment_status(&edge, "720p", 0).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(rejected(&metrics(&edge).await, "digest_mismatch"), 1.0);
    // A correct retry of the push still matches the verified statement.
    call(&edge, push_request(&meta0, genuine.clone())).await;
    let response = call(&edge, get("/live/demo/720p/0.ts")).await;
    assert_eq!(body(response).await, genuine);
}

#[tokio::test]
async fn statements_of_uncertified_keys_and_bad_signatures_are_refused() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    // Signed by a key no certificate vouches for.
    let stranger = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let meta0 = meta("720p", 0);
    let bytes = segment_bytes(0);
    call(&edge, push_request(&meta0, bytes.clone())).await;
    edge.handle_message(&statement_message(
        &sign_with(&stranger, &meta0, &bytes),
        &meta0,
    ))
    .await;
    // A certified key, but the signature does not verify.
    let mut forged = cluster.sign(&meta0, &bytes);
    forged.signature[7] ^= 0x80;
    edge.handle_message(&statement_message(&forged, &meta0))
        .await;
    assert_eq!(
        segment_status(&edge, "720p", 0).await,
        StatusCode::NOT_FOUND
    );
    let text = metrics(&edge).await;
    assert_eq!(rejected(&text, "unknown_key"), 1.0);
    assert_eq!(rejected(&text, "bad_signature"), 1.0);
    assert_eq!(metric(&text, "sealcast_manifests_verified_total"), 0.0);
    assert_eq!(metric(&text, "sealcast_pending_segments"), 1.0);
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    let key_id = cluster.ingest.key_id();
    edge.handle_message(&Message {
        topic: Topic::Revocation(key_id),
        payload: Bytes::from(
            cluster
                .root
                .revoke(key_id, WallClock.unix_secs() - 1)
                .encode(),
        ),
        retained: true,
    })
    .await;
    let meta0 = meta("720p", 0);
    let bytes = segment_bytes(0);
    call(&edge, push_request(&meta0, bytes.clone())).await;
    edge.handle_message(&statement_message(&cluster.sign(&meta0, &bytes), &meta0))
        .await;
    assert_eq!(rejected(&metrics(&edge).await, "revoked_key"), 1.0);
    assert_eq!(
        segment_status(&edge, "720p", 0).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_statement_for_an_older_sequence_is_a_replay() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    publish_genuine(&edge, &cluster, 1).await;
    let meta0 = meta("720p", 0);
    edge.handle_message(&statement_message(
        &cluster.sign(&meta0, &segment_bytes(0)),
        &meta0,
    ))
    .await;
    let text = metrics(&edge).await;
    assert_eq!(rejected(&text, "replay"), 1.0);
    assert_eq!(
        metric(
            &text,
            "sealcast_segments_published_total{stream=\"demo\",rendition=\"720p\"}"
        ),
        2.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_statement_becomes_a_gap_after_the_hold() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    // Segment 1's statement never comes; segment 2 is complete but waits for 1.
    call(&edge, push_request(&meta("720p", 1), segment_bytes(1))).await;
    publish_genuine(&edge, &cluster, 2).await;
    assert_eq!(
        segment_status(&edge, "720p", 2).await,
        StatusCode::NOT_FOUND
    );
    edge.tick();
    assert!(!playlist(&edge).await.contains("#EXT-X-GAP"), "not yet");

    tokio::time::advance(HOLD).await;
    edge.tick();
    let text = playlist(&edge).await;
    assert!(
        text.contains("0.ts\n#EXT-X-GAP\n#EXTINF:2,\n1.ts\n"),
        "{text}"
    );
    assert!(text.contains("\n2.ts\n"), "{text}");
    assert_eq!(
        segment_status(&edge, "720p", 1).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(segment_status(&edge, "720p", 2).await, StatusCode::OK);
    let metrics = metrics(&edge).await;
    assert_eq!(rejected(&metrics, "timeout"), 1.0);
    assert_eq!(metric(&metrics, "sealcast_pending_segments"), 0.0);
}

#[tokio::test]
async fn garbage_control_messages_are_counted_and_change_nothing() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    let other = domain::StreamName::new("other").expect("valid");
    let meta1 = meta("720p", 1);
    let genuine1 = cluster.sign(&meta1, &segment_bytes(1));
    let garbage = [
        (
            Topic::Presence(ingest_id()),
            "presence",
            b"{not json".to_vec(),
        ),
        (
            Topic::IngestCertificate(ingest_id()),
            "certificate",
            b"\x00\x01".to_vec(),
        ),
        (
            Topic::Revocation(cluster.ingest.key_id()),
            "revocation",
            b"junk".to_vec(),
        ),
        (
            Topic::MediaStatements(stream(), rendition("720p")),
            "manifest",
            b"\xff\xff\xff\xff".to_vec(),
        ),
        // A valid statement on another stream's topic.
        (
            Topic::MediaStatements(other, rendition("720p")),
            "manifest",
            genuine1.encode(),
        ),
        // Another cluster's certificate.
        (
            Topic::IngestCertificate(ingest_id()),
            "certificate",
            Cluster::new(SignatureAlgorithm::Ed25519).cert,
        ),
    ];
    for (topic, _, payload) in &garbage {
        edge.handle_message(&Message {
            topic: topic.clone(),
            payload: Bytes::from(payload.clone()),
            retained: false,
        })
        .await;
    }
    // Cleared retained messages are silent.
    for topic in [
        Topic::Presence(ingest_id()),
        Topic::IngestCertificate(ingest_id()),
        Topic::MediaStatements(stream(), rendition("720p")),
    ] {
        edge.handle_message(&Message {
            topic,
            payload: Bytes::new(),
            retained: true,
        })
        .await;
    }
    let text = metrics(&edge).await;
    for (kind, count) in [
        ("presence", 1.0),
        ("certificate", 2.0),
        ("revocation", 1.0),
        ("manifest", 2.0),
    ] {
        assert_eq!(
            metric(
                &text,
                &format!("sealcast_control_messages_ignored_total{{kind=\"{kind}\"}}")
            ),
            count,
            "{kind}"
        );
    }
    // Everything still works: the key is still trusted, segments still publish.
    assert_eq!(segment_status(&edge, "720p", 0).await, StatusCode::OK);
    publish_genuine(&edge, &cluster, 1).await;
    assert_eq!(segment_status(&edge, "720p", 1).await, StatusCode::OK);
}

#[tokio::test]
async fn readiness_is_503_until_the_node_is_ready() {
    let (edge, _) = edge(SignatureAlgorithm::Ed25519).await;
    let response = call(&edge, get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-sealcast-node"], NODE);
    assert_eq!(call(&edge, get("/healthz")).await.status(), StatusCode::OK);
    edge.node().mark_ready();
    edge.node().wait_ready().await;
    assert_eq!(call(&edge, get("/readyz")).await.status(), StatusCode::OK);
}

async fn readiness_body(edge: &Arc<Edge>) -> (StatusCode, String) {
    let response = call(edge, get("/readyz")).await;
    let status = response.status();
    (
        status,
        String::from_utf8(body(response).await.to_vec()).expect("utf-8"),
    )
}

/// Signed statements keep coming while the pushes are lost: once that has lasted a second
/// the node says `behind` (its presence too, so the load balancer gives it no new
/// viewers) while still serving; the first segment at live with its bytes, settled for a
/// second, makes it `ready` again.
#[tokio::test(start_paused = true)]
async fn a_node_whose_pushes_stop_says_behind_until_it_catches_up() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    edge.node().mark_ready();
    publish_genuine(&edge, &cluster, 0).await;
    let statement_only = |seq| {
        let meta = meta("720p", seq);
        statement_message(&cluster.sign(&meta, &segment_bytes(seq)), &meta)
    };
    edge.handle_message(&statement_only(1)).await;
    edge.tick();
    assert_eq!(
        metric(&metrics(&edge).await, "sealcast_segments_behind_live"),
        1.0
    );
    edge.handle_message(&statement_only(2)).await;
    edge.tick();
    assert_eq!(
        metric(&metrics(&edge).await, "sealcast_segments_behind_live"),
        2.0
    );
    assert_eq!(
        readiness_body(&edge).await,
        (StatusCode::OK, "ready".into()),
        "not settled"
    );
    tokio::time::advance(Duration::from_millis(1000)).await;
    edge.tick();
    assert_eq!(
        readiness_body(&edge).await,
        (StatusCode::OK, "behind".into())
    );
    assert!(edge.node().is_behind());

    // Pushes again: segment 3 arrives whole and is published at once.
    publish_genuine(&edge, &cluster, 3).await;
    assert_eq!(segment_status(&edge, "720p", 3).await, StatusCode::OK);
    edge.tick();
    assert_eq!(
        metric(&metrics(&edge).await, "sealcast_segments_behind_live"),
        0.0
    );
    assert!(edge.node().is_behind(), "not settled");
    tokio::time::advance(Duration::from_millis(1000)).await;
    edge.tick();
    assert_eq!(
        readiness_body(&edge).await,
        (StatusCode::OK, "ready".into())
    );
}

#[tokio::test]
async fn an_end_waits_for_the_segments_pushed_before_it() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    // Segment 1's bytes arrive, then the end, then (late, over MQTT) its statement.
    let m1 = meta("720p", 1);
    let bytes = segment_bytes(1);
    let response = call(&edge, push_request(&m1, bytes.clone())).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let end = ControlEvent::Live(LiveEvent::Ended {
        stream: m1.stream.clone(),
        session: m1.session,
    });
    let response = call(&edge, cluster.event_request(&end)).await;
    assert!(response.status().is_success());
    assert!(
        !playlist(&edge).await.contains("#EXT-X-ENDLIST"),
        "the end overtook segment 1"
    );
    edge.handle_message(&statement_message(&cluster.sign(&m1, &bytes), &m1))
        .await;
    let text = playlist(&edge).await;
    assert!(text.contains("\n1.ts\n"), "{text}");
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    // With nothing waiting, an event takes effect at once (here: a repeated end).
    let response = call(&edge, cluster.event_request(&end)).await;
    assert!(response.status().is_success());
}

#[tokio::test(start_paused = true)]
async fn an_end_behind_a_missing_statement_follows_the_gap() {
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    publish_genuine(&edge, &cluster, 0).await;
    let m1 = meta("720p", 1);
    let response = call(&edge, push_request(&m1, segment_bytes(1))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let end = ControlEvent::Live(LiveEvent::Ended {
        stream: m1.stream.clone(),
        session: m1.session,
    });
    assert!(call(&edge, cluster.event_request(&end))
        .await
        .status()
        .is_success());
    // No statement says live moved on: the bytes wait eight hold times (the gate's
    // SILENT_HOLDS: their statement may be late), and the end waits behind them.
    tokio::time::advance(HOLD * SILENT_HOLDS - Duration::from_millis(10)).await;
    edge.tick();
    assert!(!playlist(&edge).await.contains("#EXT-X-ENDLIST"));
    tokio::time::advance(Duration::from_millis(20)).await;
    edge.tick();
    let text = playlist(&edge).await;
    assert!(text.contains("#EXT-X-GAP"), "{text}");
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
}

#[tokio::test]
async fn a_rendition_announced_while_segments_wait_takes_its_first_segment() {
    // The ingest sends: src segment 0, then the 480p announcement, then 480p segment 0.
    // The announcement waits behind src segment 0 (no statement yet); the 480p push must
    // still be taken, and published after the announcement.
    let (edge, cluster) = edge(SignatureAlgorithm::Ed25519).await;
    let src0 = meta("720p", 0);
    let bytes = segment_bytes(0);
    assert_eq!(
        call(&edge, push_request(&src0, bytes.clone()))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let announce = ControlEvent::Live(LiveEvent::Rendition {
        stream: src0.stream.clone(),
        info: rendition_info("480p", 480),
    });
    assert!(call(&edge, cluster.event_request(&announce))
        .await
        .status()
        .is_success());
    let low0 = meta("480p", 0);
    let low_bytes = segment_bytes(100);
    assert_eq!(
        call(&edge, push_request(&low0, low_bytes.clone()))
            .await
            .status(),
        StatusCode::ACCEPTED,
        "the first segment of a rendition announced behind the gate was refused"
    );
    edge.handle_message(&statement_message(&cluster.sign(&low0, &low_bytes), &low0))
        .await;
    edge.handle_message(&statement_message(&cluster.sign(&src0, &bytes), &src0))
        .await;
    assert_eq!(segment_status(&edge, "480p", 0).await, StatusCode::OK);
    assert_eq!(segment_status(&edge, "720p", 0).await, StatusCode::OK);
}

/// Issue 47: what viewers rebuild their trust from, the provenance anchors of other C2PA
/// signers' CAs among it: served as the key directory gave them (PEM), empty without any.
#[tokio::test]
async fn the_edge_serves_the_root_the_bundle_and_the_provenance_anchors() {
    let cluster = Cluster::new(SignatureAlgorithm::Ed25519);
    let node_config = NodeConfig {
        window: 3,
        segment_target: Duration::from_secs(2),
    };
    let now = WallClock.unix_secs();
    let validity = certs::signing::Validity::new(now - 10, now + 3600).expect("valid");
    let anchors = vec![
        cluster.root.anchor_provenance(b"a CA", validity),
        cluster.root.anchor_provenance(b"another CA", validity),
    ];
    let mut config = edge_config(&cluster, node_config);
    config.provenance_anchors = anchors.clone();
    let edge = Edge::new(node(), config).expect("edge");
    let root = body(call(&edge, get("/trust/v1/root.pub")).await).await;
    assert_eq!(
        root.as_ref(),
        cluster.root.public_key().file_bytes().as_slice()
    );
    let bundle = body(call(&edge, get("/trust/v1/bundle")).await).await;
    assert!(certs::signing::TrustBundle::decode(&bundle).is_ok());
    let response = call(&edge, get("/trust/v1/provenance-anchors")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-pem-file"
    );
    let served = certs::c2pa::anchors_from_pem(&body(response).await).expect("PEM anchors");
    assert_eq!(served, anchors);

    let edge = Edge::new(node(), edge_config(&cluster, node_config)).expect("edge");
    let response = call(&edge, get("/trust/v1/provenance-anchors")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body(response).await.is_empty());
}

/// Issue 16: a revocation kept in the key directory holds from the node's start, before
/// (or without) the broker's retained message, and whatever the broker delivers later.
#[tokio::test]
async fn a_kept_revocation_holds_from_the_start() {
    let cluster = Cluster::new(SignatureAlgorithm::Ed25519);
    let mut config = edge_config(
        &cluster,
        NodeConfig {
            window: 3,
            segment_target: Duration::from_secs(2),
        },
    );
    config.revocations = vec![
        cluster
            .root
            .revoke(cluster.ingest.key_id(), WallClock.unix_secs() - 10)
            .encode(),
        // Not the root's: skipped, the node still starts.
        b"not a revocation".to_vec(),
    ];
    let edge = Edge::new(node(), config).expect("edge");
    edge.handle_message(&cluster.cert_message()).await;
    let start = &start_events(&[("720p", 720)])[0];
    let response = call(&edge, cluster.event_request(start)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        metric(
            &metrics(&edge).await,
            "sealcast_control_events_refused_total{reason=\"revoked_key\"}"
        ),
        1.0
    );
}

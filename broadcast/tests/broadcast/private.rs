//! A private stream's refusals say nothing about whether it exists (issue 45 item 14): a
//! request for it that shows no knowledge of it (no token, a token that does not verify,
//! another stream's) gets exactly what the same request gets for a stream this node never
//! heard of, status, headers and body alike, for every kind of resource, on the direct
//! path and through the router; and neither list shows it.

use domain::time::WallClock;
use std::sync::Arc;

use axum::body::Body;
use broadcast::{AccessConfig, Node};
use certs::tokens::{Claims, PlaybackKey, TokenVerifier};
use domain::{LiveEvent, NodeId, StreamName};
use http::{Method, Request};
use tower::ServiceExt;

use crate::support::edge::{edge_config, Cluster};
use crate::support::*;

fn key() -> PlaybackKey {
    PlaybackKey::new(&[5; 32]).expect("key")
}

fn token_for(stream: &str) -> String {
    let now = WallClock.unix_secs();
    key().mint(&Claims::new(
        StreamName::new(stream).expect("valid"),
        now,
        now + 600,
    ))
}

/// A node holding the private live stream `demo` (three segments), that checks tokens.
fn private_node() -> Arc<Node> {
    let node =
        Node::new(NodeId::new(NODE).expect("valid"), node_config()).with_access(AccessConfig {
            verifier: Some(Arc::new(TokenVerifier::new(key()))),
            ..AccessConfig::default()
        });
    let node = Arc::new(node);
    node.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: true,
        record: true,
    })
    .expect("start");
    announce(&node, "720p", 720);
    for seq in 0..3 {
        publish(&node, "720p", seq);
    }
    node
}

/// Every kind of resource under a stream's trees, with `{s}` for the stream's name.
const RESOURCES: &[&str] = &[
    "/live/{s}/master.m3u8",
    "/live/{s}/dvr.m3u8",
    "/live/{s}/720p/index.m3u8",
    "/live/{s}/720p/dvr.m3u8",
    "/live/{s}/720p/index.m3u8?_HLS_msn=2",
    "/live/{s}/720p/index.m3u8?_HLS_msn=2&_HLS_part=0",
    "/live/{s}/720p/index.m3u8?_HLS_msn=x",
    "/live/{s}/720p/index.m3u8?_HLS_skip=YES",
    "/live/{s}/720p/1.ts",
    "/live/{s}/720p/1.m4s",
    "/live/{s}/720p/1.0.m4s",
    "/live/{s}/720p/init.mp4",
    "/live/{s}/720p/1.ts.sig",
    "/live/{s}/720p/1.0.m4s.sig",
    "/live/{s}/720p/1.partkey",
    "/live/{s}/9999p/index.m3u8",
    "/live/{s}/thumbnail.jpg",
    "/live/{s}/thumbnail.jpg.sig",
    "/live/{s}/nothing/at/all",
    "/live/{s}/",
    "/vod/{s}/00000000000000ff/master.m3u8",
    "/vod/{s}/00000000000000ff/720p/index.m3u8",
    "/vod/{s}/00000000000000ff/720p/1.ts",
    "/vod/{s}/00000000000000ff/720p/init.mp4",
    "/vod/{s}/00000000000000ff/720p/1.ts.sig",
    "/vod/{s}/00000000000000ff/thumbnail.jpg",
    "/vod/{s}/00000000000000ff/thumbnail.jpg.sig",
    "/vod/{s}/not-an-id/master.m3u8",
    "/vod/{s}/",
];

/// Issue 45 item 14: without a token (or with one that shows nothing), a private live
/// stream and a stream that does not exist are answered alike; it once answered 401 for
/// the one and 404 for the other.
#[tokio::test]
async fn a_private_stream_is_answered_as_if_it_did_not_exist() {
    let node = private_node();
    let cluster = Cluster::new(certs::signing::SignatureAlgorithm::Ed25519);
    let edge = broadcast::Edge::new(Arc::clone(&node), edge_config(&cluster, node_config()))
        .expect("an edge");
    let other = token_for("other");
    let queries = [
        String::new(),
        "token=forged".to_owned(),
        "token=a&token=b".to_owned(),
        "token=".to_owned(),
        format!("token={other}"),
    ];
    let mut compared = 0;
    for resource in RESOURCES {
        for extra in &queries {
            for method in [Method::GET, Method::HEAD] {
                let uri = |s: &str| {
                    let path = resource.replace("{s}", s);
                    match (extra.is_empty(), path.contains('?')) {
                        (true, _) => path,
                        (false, true) => format!("{path}&{extra}"),
                        (false, false) => format!("{path}?{extra}"),
                    }
                };
                let request = |uri: &str| {
                    Request::builder()
                        .method(method.clone())
                        .uri(uri)
                        .body(Body::empty())
                        .expect("request")
                };
                let (private, ghost) = (uri(STREAM), uri("ghost"));
                for via_router in [false, true] {
                    let (edge, request) = (&edge, &request);
                    let ask = |uri: String| async move {
                        let response = if via_router {
                            edge.router().oneshot(request(&uri)).await
                        } else {
                            edge.service().oneshot(request(&uri)).await
                        };
                        answer(response.expect("infallible")).await
                    };
                    let hidden = ask(private.clone()).await;
                    let absent = ask(ghost.clone()).await;
                    assert_eq!(
                        hidden, absent,
                        "{method} {private} (router: {via_router}) against {ghost}"
                    );
                    assert!(
                        matches!(hidden.0, 400 | 404 | 405),
                        "{method} {private}: {}",
                        hidden.0
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, RESOURCES.len() * 5 * 2 * 2);

    // The stream is there: a token of its own, from a client this node cannot place,
    // learns as much (403), and only such a token does.
    let mine = token_for(STREAM);
    let response = edge
        .router()
        .oneshot(get(&format!("/live/{STREAM}/master.m3u8?token={mine}")))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 403);
}

/// Neither the node's stream list nor its recordings list shows a private stream.
#[tokio::test]
async fn the_lists_leave_a_private_stream_out() {
    let node = private_node();
    for list in ["/api/v1/streams", "/api/v1/recordings"] {
        let response = send(&node, get(list)).await;
        assert_eq!(response.status(), 200, "{list}");
        let text = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
        assert!(!text.contains(STREAM), "{list}: {text}");
    }
    // Made public, it is listed: the check above could see it.
    node.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: false,
        record: true,
    })
    .expect("start again");
    let response = send(&node, get("/api/v1/streams")).await;
    let text = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
    assert!(text.contains(STREAM), "{text}");
}

/// A playlist request from `client` as a load balancer on loopback forwards it.
fn forwarded(uri: &str, client: &str) -> Request<Body> {
    let lb: std::net::SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    Request::get(uri)
        .header("x-forwarded-for", client)
        .extension(axum::extract::ConnectInfo(broadcast::Peer(lb)))
        .body(Body::empty())
        .expect("request")
}

/// Issue 45 item 11: viewers are counted once answered, by the client the guard judges,
/// an IPv6 /64 as one. Requests refused for their token, or for a stream that does not
/// exist, once counted each client (and every address of a /64 apart).
#[tokio::test]
async fn viewers_are_counted_after_the_check_and_by_their_64() {
    let node = private_node();
    let demo = stream();
    let viewers = |node: &Node| {
        node.load(std::time::Instant::now())
            .viewers
            .get(&demo)
            .copied()
    };
    assert_eq!(viewers(&node), Some(0), "live, nobody watching");
    // Refused (no token, a forged one), from many addresses of one /64 and elsewhere.
    for n in 1..=50u16 {
        for query in ["", "?token=forged"] {
            let client = format!("2001:db8:1:2::{n:x}");
            let uri = format!("/live/{STREAM}/720p/index.m3u8{query}");
            let response = send(&node, forwarded(&uri, &client)).await;
            assert_eq!(response.status(), 404);
            let master = format!("/live/{STREAM}/master.m3u8{query}");
            send(&node, forwarded(&master, &format!("198.51.100.{n}"))).await;
        }
    }
    assert_eq!(viewers(&node), Some(0), "refused requests count no one");
    // A stream that does not exist counts no one either.
    send(&node, forwarded("/live/ghost/master.m3u8", "198.51.100.1")).await;
    assert!(node
        .load(std::time::Instant::now())
        .viewers
        .keys()
        .all(|s| s == &demo));

    // Made public, its answered playlists count: a /64 as one viewer.
    node.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session: SESSION,
        private: false,
        record: true,
    })
    .expect("start again");
    for n in 1..=50u16 {
        let client = format!("2001:db8:1:2::{n:x}");
        let uri = format!("/live/{STREAM}/720p/index.m3u8");
        assert_eq!(send(&node, forwarded(&uri, &client)).await.status(), 200);
    }
    assert_eq!(viewers(&node), Some(1), "one /64, one viewer");
    let uri = format!("/live/{STREAM}/master.m3u8");
    send(&node, forwarded(&uri, "2001:db8:1:3::1")).await;
    send(&node, forwarded(&uri, "198.51.100.7")).await;
    assert_eq!(viewers(&node), Some(3));
}

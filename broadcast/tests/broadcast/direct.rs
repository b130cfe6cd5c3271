//! The live tree's direct path ([`broadcast::Edge::service`] answers a `GET` under
//! `/live/` without the router) answers exactly as the router does: status, every header
//! and the body, for every kind of live resource, errors, conditional and ranged requests,
//! and a private stream's refusal.

use std::sync::Arc;

use axum::body::Body;
use broadcast::Node;
use domain::LiveEvent;
use http::Request;
use tower::ServiceExt;

use crate::support::edge::{edge_config, Cluster};
use crate::support::*;

/// Asks the router and the service the same requests and compares what they answer.
async fn same_answers(node: &Arc<Node>, requests: &[(&str, &[(&str, &str)])]) {
    let cluster = Cluster::new(certs::signing::SignatureAlgorithm::Ed25519);
    let edge = broadcast::Edge::new(Arc::clone(node), edge_config(&cluster, node_config()))
        .expect("an edge");
    for (uri, headers) in requests {
        let request = || {
            let mut builder = Request::get(*uri);
            for (name, value) in *headers {
                builder = builder.header(*name, *value);
            }
            builder.body(Body::empty()).expect("request")
        };
        let routed = answer(edge.router().oneshot(request()).await.expect("infallible")).await;
        let direct = answer(edge.service().oneshot(request()).await.expect("infallible")).await;
        assert_eq!(direct, routed, "GET {uri} {headers:?}");
    }
}

#[tokio::test]
async fn the_direct_path_answers_as_the_router_does() {
    let node = live_node();
    let etag = {
        let response = send(&node, get("/live/demo/720p/index.m3u8")).await;
        response.headers()["etag"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    same_answers(
        &node,
        &[
            ("/live/demo/master.m3u8", &[]),
            ("/live/demo/720p/index.m3u8", &[]),
            ("/live/demo/720p/index.m3u8", &[("if-none-match", &etag)]),
            ("/live/demo/720p/index.m3u8?_HLS_msn=2", &[]),
            ("/live/demo/720p/index.m3u8?_HLS_msn=x", &[]),
            ("/live/demo/720p/3.ts", &[]),
            ("/live/demo/720p/3.ts", &[("range", "bytes=0-9")]),
            ("/live/demo/720p/3.ts", &[("range", "bytes=999999-")]),
            ("/live/demo/720p/3.ts.sig", &[]),
            ("/live/demo/720p/3.m4s", &[]),
            ("/live/demo/720p/99.ts", &[]),
            ("/live/demo/720p/init.mp4", &[]),
            ("/live/demo/9999p/index.m3u8", &[]),
            ("/live/nobody/master.m3u8", &[]),
            ("/live/", &[]),
            ("/live/demo/../secret", &[]),
            (
                "/live/demo/720p/3.ts",
                &[("origin", "https://player.example")],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_private_stream_is_refused_alike_on_both_paths() {
    let node = node();
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
    same_answers(
        &node,
        &[
            ("/live/demo/master.m3u8", &[]),
            ("/live/demo/720p/index.m3u8?token=forged", &[]),
            ("/live/demo/720p/1.ts?token=a&token=b", &[]),
        ],
    )
    .await;
}

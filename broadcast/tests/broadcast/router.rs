//! The public routes, driven through `tower::ServiceExt::oneshot` (no socket) on the
//! router a node is served with ([`broadcast::Edge::router`]).

use crate::support::*;
use axum::body::Body;
use http::{header, Method, Request, StatusCode};

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

#[tokio::test]
async fn master_playlist_lists_variants_with_playlist_headers() {
    let node = live_node();
    let response = send(&node, get("/live/demo/master.m3u8")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_str(&response, header::CONTENT_TYPE),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(
        header_str(&response, header::CACHE_CONTROL),
        "public, max-age=1"
    );
    assert!(header_str(&response, header::ETAG).starts_with('"'));
    assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
    let text = body(response).await;
    let master = m3u8_rs::parse_master_playlist_res(&text).expect("parses");
    let uris: Vec<_> = master.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["720p/index.m3u8", "480p/index.m3u8"]);
    assert_eq!(master.variants[0].bandwidth, 4000, "1000 bytes per 2 s");
}

#[tokio::test]
async fn media_playlist_is_the_sliding_window() {
    let node = live_node();
    let response = send(&node, get("/live/demo/720p/index.m3u8")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_str(&response, header::CONTENT_TYPE),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(
        header_str(&response, header::CACHE_CONTROL),
        "public, max-age=1"
    );
    let text = body(response).await;
    let media = m3u8_rs::parse_media_playlist_res(&text).expect("parses");
    assert_eq!(media.media_sequence, 2);
    assert_eq!(media.segments.len(), 3);
    assert!(!media.end_list);
}

#[tokio::test]
async fn segments_are_served_whole_with_immutable_caching() {
    let node = live_node();
    let response = send(&node, get("/live/demo/480p/4.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_str(&response, header::CONTENT_TYPE), "video/mp2t");
    assert_eq!(
        header_str(&response, header::CACHE_CONTROL),
        "public, max-age=31536000, s-maxage=120, immutable"
    );
    assert_eq!(header_str(&response, header::ACCEPT_RANGES), "bytes");
    assert_eq!(header_str(&response, header::CONTENT_LENGTH), "1000");
    assert_eq!(body(response).await, segment_bytes(4));
}

#[tokio::test]
async fn segments_that_just_slid_out_stay_fetchable_for_a_while() {
    let node = live_node();
    // Window 3 over 0..=4 lists 2, 3, 4; 0 and 1 are the two kept for late readers.
    for seq in 0..5 {
        let response = send(&node, get(&format!("/live/demo/720p/{seq}.ts"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{seq}");
    }
    publish(&node, "720p", 5);
    let response = send(&node, get("/live/demo/720p/0.ts")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = send(&node, get("/live/demo/720p/1.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn etags_turn_repeat_requests_into_304() {
    let node = live_node();
    for uri in [
        "/live/demo/master.m3u8",
        "/live/demo/720p/index.m3u8",
        "/live/demo/720p/3.ts",
    ] {
        let first = send(&node, get(uri)).await;
        let etag = header_str(&first, header::ETAG).to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{uri}: strong etag {etag}"
        );

        let again = Request::get(uri)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .expect("request");
        let response = send(&node, again).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(header_str(&response, header::ETAG), etag);
        assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
        assert!(body(response).await.is_empty());

        let stale = Request::get(uri)
            .header(header::IF_NONE_MATCH, "\"something-else\"")
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&node, stale).await.status(), StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn playlist_etag_changes_when_the_window_moves() {
    let node = live_node();
    let before = send(&node, get("/live/demo/720p/index.m3u8")).await;
    let before = header_str(&before, header::ETAG).to_owned();
    publish(&node, "720p", 5);
    let after = send(&node, get("/live/demo/720p/index.m3u8")).await;
    assert_ne!(header_str(&after, header::ETAG), before);
}

#[tokio::test]
async fn segment_etag_is_stable_across_nodes() {
    let a = live_node();
    let b = live_node();
    let ra = send(&a, get("/live/demo/720p/3.ts")).await;
    let rb = send(&b, get("/live/demo/720p/3.ts")).await;
    assert_eq!(header_str(&ra, header::ETAG), header_str(&rb, header::ETAG));
    let pa = send(&a, get("/live/demo/720p/index.m3u8")).await;
    let pb = send(&b, get("/live/demo/720p/index.m3u8")).await;
    assert_eq!(header_str(&pa, header::ETAG), header_str(&pb, header::ETAG));
}

#[tokio::test]
async fn head_sends_the_headers_without_the_body() {
    let node = live_node();
    for (uri, len) in [
        ("/live/demo/720p/2.ts", "1000"),
        ("/live/demo/master.m3u8", ""),
    ] {
        let get_response = send(&node, get(uri)).await;
        let head = Request::head(uri).body(Body::empty()).expect("request");
        let response = send(&node, head).await;
        assert_eq!(response.status(), StatusCode::OK);
        for name in [
            header::CONTENT_TYPE,
            header::ETAG,
            header::CACHE_CONTROL,
            header::CONTENT_LENGTH,
        ] {
            assert_eq!(
                header_str(&response, &name),
                header_str(&get_response, &name),
                "{uri} {name}"
            );
        }
        if !len.is_empty() {
            assert_eq!(header_str(&response, header::CONTENT_LENGTH), len);
        }
        assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
        assert!(body(response).await.is_empty());
    }
}

async fn ranged(node: &std::sync::Arc<broadcast::Node>, range: &str) -> http::Response<Body> {
    let request = Request::get("/live/demo/720p/3.ts")
        .header(header::RANGE, range)
        .body(Body::empty())
        .expect("request");
    send(node, request).await
}

#[tokio::test]
async fn byte_ranges_are_served_as_206() {
    let node = live_node();
    let whole = segment_bytes(3);
    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=900-5000", 900, 999),
    ] {
        let response = ranged(&node, range).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header_str(&response, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/1000"),
            "{range}"
        );
        assert_eq!(
            header_str(&response, header::CONTENT_LENGTH),
            (end - start + 1).to_string()
        );
        assert_eq!(header_str(&response, header::CONTENT_TYPE), "video/mp2t");
        assert_eq!(body(response).await, whole.slice(start..=end), "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_ranges_are_416() {
    let node = live_node();
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let response = ranged(&node, range).await;
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_eq!(header_str(&response, header::CONTENT_RANGE), "bytes */1000");
        assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
        assert_eq!(json(response).await["error"], "range not satisfiable");
    }
    // Not understood (several ranges): the whole segment, which is always allowed.
    let response = ranged(&node, "bytes=0-1,5-6").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn playlists_ignore_ranges() {
    let node = live_node();
    let request = Request::get("/live/demo/720p/index.m3u8")
        .header(header::RANGE, "bytes=0-3")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&node, request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let node = live_node();
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/live/demo/720p/3.ts")
        .header(header::ORIGIN, "https://player.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "range")
        .body(Body::empty())
        .expect("request");
    let response = send(&node, preflight).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header_str(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "*"
    );
    let methods = header_str(&response, header::ACCESS_CONTROL_ALLOW_METHODS).to_ascii_uppercase();
    for m in ["GET", "HEAD", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    assert_eq!(header_str(&response, "x-sealcast-node"), NODE);

    let simple = Request::get("/live/demo/master.m3u8")
        .header(header::ORIGIN, "https://player.example")
        .body(Body::empty())
        .expect("request");
    let response = send(&node, simple).await;
    assert_eq!(
        header_str(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "*"
    );
    let exposed = header_str(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS).to_ascii_lowercase();
    for h in [
        "content-length",
        "content-range",
        "x-sealcast-node",
        "x-sealcast-verified",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
}

#[tokio::test]
async fn unknown_things_are_404_json_and_still_name_the_node() {
    let node = live_node();
    for (uri, message) in [
        ("/live/nope/master.m3u8", "unknown stream"),
        ("/live/demo/1080p/index.m3u8", "unknown rendition"),
        ("/live/demo/1080p/3.ts", "unknown rendition"),
        ("/live/demo/720p/99.ts", "segment not available"),
        ("/live/../master.m3u8", "not found"),
        ("/live/demo/../720p/index.m3u8", "not found"),
        ("/live/demo/..%2f720p/index.m3u8", "not found"),
        ("/live/-bad/master.m3u8", "not found"),
        ("/live/demo/720p/-1.ts", "not found"),
        ("/live/demo/720p/x.ts", "not found"),
        ("/live/demo//index.m3u8", "not found"),
        ("/live/", "not found"),
        ("/nothing/here", "not found"),
        ("/etc/passwd", "not found"),
    ] {
        let response = send(&node, get(uri)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(header_str(&response, "x-sealcast-node"), NODE, "{uri}");
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
async fn a_stream_without_playable_renditions_has_no_master() {
    let node = node();
    start(&node);
    let response = send(&node, get("/live/demo/master.m3u8")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    announce(&node, "720p", 720);
    let response = send(&node, get("/live/demo/master.m3u8")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        send(&node, get("/live/demo/720p/index.m3u8"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    publish(&node, "720p", 0);
    assert_eq!(
        send(&node, get("/live/demo/master.m3u8")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn ended_streams_are_cached_longer_and_listed_as_not_live() {
    let node = live_node();
    node.apply(domain::LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    })
    .expect("end");
    let response = send(&node, get("/live/demo/720p/index.m3u8")).await;
    assert_eq!(
        header_str(&response, header::CACHE_CONTROL),
        "public, max-age=60"
    );
    let text = body(response).await;
    assert!(
        m3u8_rs::parse_media_playlist_res(&text)
            .expect("parses")
            .end_list
    );
    let response = send(&node, get("/live/demo/master.m3u8")).await;
    assert_eq!(
        header_str(&response, header::CACHE_CONTROL),
        "public, max-age=60"
    );
    let list = json(send(&node, get("/api/v1/streams")).await).await;
    assert_eq!(list[0]["live"], false);
}

#[tokio::test]
async fn stream_list_describes_renditions() {
    let node = live_node();
    let response = send(&node, get("/api/v1/streams")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_str(&response, header::CONTENT_TYPE),
        "application/json"
    );
    let list = json(response).await;
    assert_eq!(
        list,
        serde_json::json!([{
            "name": "demo",
            "live": true,
            "master_url": "/live/demo/master.m3u8",
            "renditions": [
                { "name": "720p", "width": 1280, "height": 720, "codecs": "avc1.64001f,mp4a.40.2",
                  "frame_rate": 30.0, "bandwidth": 4000, "average_bandwidth": 4000 },
                { "name": "480p", "width": 853, "height": 480, "codecs": "avc1.64001f,mp4a.40.2",
                  "frame_rate": 30.0, "bandwidth": 4000, "average_bandwidth": 4000 },
            ],
        }])
    );
    let typed: Vec<broadcast::StreamSummary> = serde_json::from_value(list).expect("round trip");
    assert_eq!(typed, node.live_streams());
}

#[tokio::test]
async fn health() {
    let node = live_node();
    let response = send(&node, get("/healthz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
    assert_eq!(body(response).await, "ok");
}

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                   worker-src 'self' blob:; connect-src 'self'; style-src 'self'; \
                   script-src 'self'; base-uri 'none'; frame-ancestors 'none'";

#[tokio::test]
async fn pages_are_the_embedded_front_end_with_security_headers() {
    let node = live_node();
    for (uri, file) in [
        ("/", "src/index.html"),
        ("/dashboard", "src/dashboard.html"),
    ] {
        let response = send(&node, get(uri)).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            header_str(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_str(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header_str(&response, header::CONTENT_SECURITY_POLICY), CSP);
        assert_eq!(
            header_str(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert_eq!(
            header_str(&response, header::REFERRER_POLICY),
            "no-referrer"
        );
        assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
        let on_disk =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/").to_owned() + file)
                .expect("web file");
        assert_eq!(body(response).await, on_disk, "{uri}");
    }
}

#[tokio::test]
async fn assets_have_their_types_and_revalidate_to_304() {
    let node = live_node();
    for (uri, content_type) in [
        ("/assets/hls.min.js", "text/javascript; charset=utf-8"),
        ("/assets/player.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let response = send(&node, get(uri)).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(header_str(&response, header::CONTENT_TYPE), content_type);
        assert_eq!(header_str(&response, header::CACHE_CONTROL), "no-cache");
        assert_eq!(
            header_str(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        let etag = header_str(&response, header::ETAG).to_owned();
        assert!(
            etag.starts_with('"') && etag.len() > 2,
            "{uri}: strong {etag}"
        );
        assert!(!body(response).await.is_empty());

        let again = Request::get(uri)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .expect("request");
        let response = send(&node, again).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(header_str(&response, header::ETAG), etag);
        assert!(body(response).await.is_empty());
    }
    let hls = body(send(&node, get("/assets/hls.min.js")).await).await;
    assert!(
        hls.len() > 100_000,
        "hls.js itself, not a stub: {} bytes",
        hls.len()
    );
    for uri in [
        "/assets/",
        "/assets/index.html",
        "/assets/hls.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/index.html",
        "/dashboard/",
    ] {
        let response = send(&node, get(uri)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn live_segments_say_they_were_verified() {
    let node = live_node();
    let response = send(&node, get("/live/demo/720p/3.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_str(&response, "x-sealcast-verified"), "true");
    let response = ranged(&node, "bytes=0-9").await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header_str(&response, "x-sealcast-verified"), "true");
    // Playlists are not segments.
    let response = send(&node, get("/live/demo/720p/index.m3u8")).await;
    assert!(response.headers().get("x-sealcast-verified").is_none());
}

#[tokio::test]
async fn metrics_count_publishes_and_requests() {
    let node = live_node();
    let _ = send(&node, get("/live/demo/master.m3u8")).await;
    let _ = send(&node, get("/live/nope/master.m3u8")).await;
    let response = send(&node, get("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
    let text = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
    for needle in [
        "sealcast_segments_published_total{stream=\"demo\",rendition=\"720p\"} 5",
        "sealcast_segments_published_total{stream=\"demo\",rendition=\"480p\"} 5",
        "sealcast_live_streams 1",
        "sealcast_http_requests_total{route=\"master\",status=\"200\"} 1",
        "sealcast_http_requests_total{route=\"master\",status=\"404\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
}

#[tokio::test]
async fn other_methods_are_refused() {
    let node = live_node();
    let post = Request::post("/live/demo/master.m3u8")
        .body(Body::empty())
        .expect("request");
    let response = send(&node, post).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header_str(&response, "x-sealcast-node"), NODE);
}

#[tokio::test]
async fn playlist_fetchers_count_as_viewers_in_the_load() {
    let node = live_node();
    let now = std::time::Instant::now();
    assert_eq!(
        node.load(now).viewers.values().sum::<u64>(),
        0,
        "a live stream nobody watches"
    );
    // Through a load balancer on loopback (a trusted proxy): the client it forwarded.
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.1"] {
        let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let request = Request::builder()
            .uri("/live/demo/720p/index.m3u8")
            .header("x-forwarded-for", client)
            .extension(axum::extract::ConnectInfo(broadcast::Peer(peer)))
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&node, request).await.status(), StatusCode::OK);
    }
    // Segments and other streams' 404s do not make viewers.
    send(&node, get("/live/demo/720p/0.ts")).await;
    send(&node, get("/live/other/master.m3u8")).await;
    let load = node.load(std::time::Instant::now());
    let demo = domain::StreamName::new("demo").expect("valid");
    assert_eq!(load.viewers.get(&demo), Some(&2), "{:?}", load.viewers);
    assert_eq!(load.viewers.len(), 1);
    assert!(load.bytes_out > 0, "playlist and segment bytes are counted");
    assert!(
        load.segments.verified > 0,
        "published segments count as verified"
    );
    // And in Prometheus, for Grafana's viewers per node.
    let response = send(&node, get("/metrics")).await;
    let text = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
    assert!(
        text.contains("sealcast_viewers{stream=\"demo\"} 2"),
        "no viewer gauge in\n{text}"
    );
    assert!(
        text.lines().any(|l| l == "sealcast_node_viewers 2"),
        "the node's total is not the streams' sum in\n{text}"
    );
}

/// The autoscaler's metric is there when nobody watches: on a node with a live stream
/// and none of its viewers, and on one without any live stream, whose
/// `sealcast_viewers` has no series at all. A HorizontalPodAutoscaler that finds no
/// series for a pod never scales down (issue 50 item 5).
#[tokio::test]
async fn a_node_nobody_watches_exports_zero_viewers() {
    for (what, node) in [
        ("no live stream", node()),
        ("a live stream nobody watches", live_node()),
    ] {
        let response = send(&node, get("/metrics")).await;
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        let text = String::from_utf8(body(response).await.to_vec()).expect("utf-8");
        assert!(
            text.lines().any(|l| l == "sealcast_node_viewers 0"),
            "{what}: no sealcast_node_viewers 0 in\n{text}"
        );
    }
}

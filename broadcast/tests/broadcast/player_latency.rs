//! The player keeps a live low-latency stream at the latency hls.js aims at
//! (`web/src/player.js`, "staying at the target latency"): its decision, run in Debian's
//! Chromium on the page a node serves, for every case that matters.
//!
//! hls.js's own catch-up acts only with more than a second buffered ahead, which a target
//! of a second never has; the player's steering replaces it. What it does is a pure
//! function of hls.js's latency, its target and the buffer ahead, exposed on the page as
//! `window.sealcast.latencyStep`, so the shipped code is what is tested.

use axum::Router;
use domain::wire::SignatureAlgorithm;
use serde_json::{json, Value};
use testkit::browser::Browser;
use tokio::net::TcpListener;

/// Serves a node's public router (the player page and its assets) on 127.0.0.1:0.
async fn serve_node() -> String {
    let cluster = crate::support::edge::Cluster::new(SignatureAlgorithm::Ed25519);
    let edge = broadcast::Edge::new(
        crate::support::node(),
        crate::support::edge::edge_config(&cluster, crate::support::node_config()),
    )
    .expect("an edge");
    let app = Router::new().fallback_service(edge.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// Chromium on the player page a node serves, once the page exposes
/// `window.sealcast[function]`.
async fn player_page(function: &str) -> Browser {
    let origin = serve_node().await;
    let mut browser = Browser::start(800, 600).await.expect("Chromium");
    browser
        .goto(&format!("{origin}/"))
        .await
        .expect("the player page");
    browser
        .wait_for(
            &format!("window.sealcast.{function}"),
            "return window.sealcast && typeof window.sealcast[arguments[0]] === 'function' ? true : null;",
            json!(function),
            std::time::Duration::from_secs(30),
            |_| Ok(()),
        )
        .await
        .unwrap_or_else(|e| panic!("the page exposes {function}: {e}"));
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_steers_back_to_its_target_latency() {
    let mut browser = player_page("latencyStep").await;
    // (latency, target, buffered ahead) → the playback rate.
    let cases = [
        // At the target, or within the 0.1 s of slack: 1.
        ((1.0, 1.0, 0.9), 1.0),
        ((1.08, 1.0, 0.9), 1.0),
        // A quarter of a second behind, where hls.js's own catch-up never acted: a tenth
        // faster.
        ((1.25, 1.0, 0.9), 1.1),
        // Far behind (the start, up to a segment back): a quarter faster.
        ((2.8, 1.0, 2.5), 1.25),
        // After a stall hls.js aims further back; the player follows its target.
        ((1.25, 2.0, 1.9), 1.0),
        // Too little buffered ahead to go faster: never starves the buffer.
        ((1.25, 1.0, 0.3), 1.0),
        ((2.8, 1.0, 0.2), 1.0),
        // hls.js knows no latency yet.
        ((f64::NAN, 1.0, 1.0), 1.0),
    ];
    for ((latency, target, ahead), wanted) in cases {
        // NaN is not JSON: it goes as null and the page turns it back into NaN.
        let as_js = |x: f64| if x.is_nan() { Value::Null } else { json!(x) };
        let got = browser
            .execute(
                "const n = (x) => (x === null ? NaN : x); const [l, t, a] = arguments[0]; \
                 return window.sealcast.latencyStep(n(l), n(t), n(a));",
                json!([as_js(latency), as_js(target), as_js(ahead)]),
            )
            .await
            .expect("run latencyStep");
        assert!(
            got.as_f64().is_some_and(|g| (g - wanted).abs() < 1e-9),
            "latency {latency}, target {target}, ahead {ahead}: {got}, wanted {wanted}"
        );
    }
    let events = browser.events().await.expect("page events");
    assert!(events.errors.is_empty(), "uncaught {:?}", events.errors);
    browser.quit().await.expect("quit");
}

/// A rung shed by a struggling ingest ends its playlist while the stream goes on, and the
/// edge drops it from the master playlist (`broadcast::stream`'s `drop_rendition`). The
/// player tells that from the stream's end by the rungs a fresh master playlist lists
/// (`window.sealcast.listedRungs`, fed here what `domain::hls::render_master` writes):
/// the playing rung gone and others listed, it starts over on those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_reads_which_rungs_a_master_playlist_still_lists() {
    use crate::support::edge::rendition_info;
    use domain::hls::{render_master, Variant};

    let mut browser = player_page("listedRungs").await;
    let master = |rungs: &[(&str, u32)]| {
        render_master(
            &rungs
                .iter()
                .map(|(name, height)| Variant {
                    info: rendition_info(name, *height),
                    peak_bps: 1_000_000,
                    average_bps: 800_000,
                })
                .collect::<Vec<_>>(),
        )
    };
    let cases = [
        (
            master(&[("src", 720), ("480p", 480), ("360p", 360)]),
            json!(["src", "480p", "360p"]),
        ),
        // 360p shed: what the edge's master playlist says after `RenditionDropped`.
        (
            master(&[("src", 720), ("480p", 480)]),
            json!(["src", "480p"]),
        ),
        (master(&[]), json!([])),
        // A private stream's master playlist carries the token on every URI.
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n480p/index.m3u8?token=pt_x\n".to_owned(),
            json!(["480p"]),
        ),
    ];
    for (text, wanted) in cases {
        let got = browser
            .execute(
                "return window.sealcast.listedRungs(arguments[0]);",
                json!(text),
            )
            .await
            .expect("run listedRungs");
        assert_eq!(got, wanted, "the rungs listed by\n{text}");
    }
    let events = browser.events().await.expect("page events");
    assert!(events.errors.is_empty(), "uncaught {:?}", events.errors);
    browser.quit().await.expect("quit");
}

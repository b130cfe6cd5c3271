//! What every answer tells a shared cache in front (docs/architecture.md, Caching), one
//! test per kind of resource, through the router an edge serves (`Edge::router`): parts,
//! segments and `init.mp4`; live, blocking and delta playlists; the master; the 404 of a
//! part that will never exist and of one that may yet come; a timed-out hold; ended
//! playlists; the API and the pages. No answer carries `Vary`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use broadcast::Edge;
use domain::push_protocol::ControlEvent;
use domain::LiveEvent;
use http::{header, Request, Response, StatusCode};
use tower::ServiceExt;

use crate::llhls::{edge, publish_part, publish_segment, MEDIA};
use crate::support::edge::call;
use crate::support::{get, live_node, send, stream, SESSION};

const IMMUTABLE: &str = "public, max-age=31536000, s-maxage=120, immutable";

/// The answer's `Cache-Control` (checked to come without `Vary`).
fn cache_control(response: &Response<Body>) -> String {
    assert!(
        response.headers().get(header::VARY).is_none(),
        "an answer varies: {:?}",
        response.headers()
    );
    response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_owned()
}

/// Status and `Cache-Control` of a GET of `uri`.
async fn fetch(edge: &Arc<Edge>, uri: &str) -> (StatusCode, String) {
    let response = call(edge, get(uri)).await;
    (response.status(), cache_control(&response))
}

#[tokio::test]
async fn parts_and_segments_are_immutable() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    for uri in ["/live/demo/720p/0.m4s", "/live/demo/720p/1.0.m4s"] {
        assert_eq!(
            fetch(&edge, uri).await,
            (StatusCode::OK, IMMUTABLE.into()),
            "{uri}"
        );
    }
    // MPEG-TS segments too.
    let node = live_node();
    let response = send(&node, get("/live/demo/720p/0.ts")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), IMMUTABLE);
}

#[tokio::test]
async fn init_is_kept_as_briefly_as_the_playlist_and_revalidated() {
    // Not immutable: its URL is the rendition's, and every publish session changes it. A
    // shared cache keeps it as long as a playlist; a browser asks again on every use (a
    // player starting over right after its publisher came back must not take the last
    // session's init from its own cache). Either asks with its ETag and gets a 304
    // without a body.
    let (edge, _cluster) = edge().await;
    let response = call(&edge, get("/live/demo/720p/init.mp4")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "public, max-age=0, s-maxage=1");
    let etag = response.headers()[header::ETAG].clone();
    let again = Request::get("/live/demo/720p/init.mp4")
        .header(header::IF_NONE_MATCH, etag)
        .body(Body::empty())
        .expect("request");
    let response = call(&edge, again).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cache_control(&response), "public, max-age=0, s-maxage=1");
}

#[tokio::test]
async fn live_playlists_are_kept_a_second() {
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    let delta = format!("{MEDIA}?_HLS_skip=YES");
    for uri in [MEDIA, delta.as_str(), "/live/demo/master.m3u8"] {
        assert_eq!(
            fetch(&edge, uri).await,
            (StatusCode::OK, "public, max-age=1".into()),
            "{uri}"
        );
    }
    // Plain HLS (MPEG-TS, 2 s segments): half the target duration.
    let node = live_node();
    let response = send(&node, get(MEDIA)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "public, max-age=1");
}

#[tokio::test]
async fn a_blocking_reload_is_kept_six_part_targets_under_its_url() {
    // Parts of 0.334 s: six of them are 2 s. Full and delta answers alike, with or without
    // `_HLS_part`, answered at once or after a hold.
    let (edge, cluster) = edge().await;
    publish_part(&edge, &cluster, "720p", 1, 0).await;
    for query in [
        "_HLS_msn=1&_HLS_part=0",
        "_HLS_msn=1&_HLS_part=0&_HLS_skip=YES",
        "_HLS_msn=0",
        "_HLS_skip=YES&_HLS_msn=0",
    ] {
        assert_eq!(
            fetch(&edge, &format!("{MEDIA}?{query}")).await,
            (StatusCode::OK, "public, max-age=2".into()),
            "{query}"
        );
    }
    let held = tokio::spawn(
        edge.service()
            .oneshot(get(&format!("{MEDIA}?_HLS_msn=1&_HLS_part=1"))),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish_part(&edge, &cluster, "720p", 1, 1).await;
    let response = held.await.expect("task").expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), "public, max-age=2");
    // A malformed query is an error of that request alone.
    assert_eq!(
        fetch(&edge, &format!("{MEDIA}?_HLS_part=1")).await,
        (StatusCode::BAD_REQUEST, "no-store".into())
    );
}

#[tokio::test]
async fn a_part_that_will_never_exist_is_cached_briefly_one_that_may_come_is_not() {
    // Every LL-HLS player holds a request for the hinted part; when the segment ends before
    // it, they all get a 404 that a cache may keep, so that it answers them all at once.
    let (edge, cluster) = edge().await;
    for index in 0..3 {
        publish_part(&edge, &cluster, "720p", 1, index).await;
    }
    let held = tokio::spawn(edge.service().oneshot(get("/live/demo/720p/1.3.m4s")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!held.is_finished(), "the hinted part was not held");
    publish_segment(&edge, &cluster, "720p", 1).await;
    let response = held.await.expect("task").expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(cache_control(&response), "public, max-age=2");
    // Asked again afterwards, and a part older than the parts kept: the same.
    for uri in ["/live/demo/720p/1.3.m4s", "/live/demo/720p/0.7.m4s"] {
        assert_eq!(
            fetch(&edge, uri).await,
            (StatusCode::NOT_FOUND, "public, max-age=2".into()),
            "{uri}"
        );
    }
    // A part past the hint, up to the end of the segment after the hinted one's: another
    // edge may have it already (its playlist is a part or two ahead), and this one a
    // moment later; held like the hinted one.
    let ahead = tokio::spawn(edge.service().oneshot(get("/live/demo/720p/2.2.m4s")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !ahead.is_finished(),
        "a part just past the hint was not held"
    );
    ahead.abort();
    // Further ahead: not held, and not stored either (it will exist).
    assert_eq!(
        fetch(&edge, "/live/demo/720p/4.0.m4s").await,
        (StatusCode::NOT_FOUND, "no-store".into())
    );
    // A segment not here yet: likewise.
    assert_eq!(
        fetch(&edge, "/live/demo/720p/5.m4s").await,
        (StatusCode::NOT_FOUND, "no-store".into())
    );
}

#[tokio::test]
async fn a_hold_that_times_out_is_kept_a_second() {
    // 1 s segments: given up after 3 s. Every request held on that URL gets the 503 at once
    // from a cache, which asks the origin again a second later.
    let (edge, _cluster) = edge().await;
    assert_eq!(
        fetch(&edge, &format!("{MEDIA}?_HLS_msn=2")).await,
        (StatusCode::SERVICE_UNAVAILABLE, "public, max-age=1".into())
    );
}

#[tokio::test]
async fn ended_playlists_are_kept_a_minute() {
    let (edge, cluster) = edge().await;
    let ended = ControlEvent::Live(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    });
    let response = call(&edge, cluster.event_request(&ended)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for uri in [MEDIA, "/live/demo/master.m3u8"] {
        assert_eq!(
            fetch(&edge, uri).await,
            (StatusCode::OK, "public, max-age=60".into()),
            "{uri}"
        );
    }
    // A browser still revalidates the init: the next session may change it.
    assert_eq!(
        fetch(&edge, "/live/demo/720p/init.mp4").await,
        (StatusCode::OK, "public, max-age=0, s-maxage=60".into())
    );
}

#[tokio::test]
async fn the_api_and_the_pages_are_revalidated_as_before() {
    let (edge, _cluster) = edge().await;
    for uri in ["/api/v1/streams", "/", "/healthz"] {
        assert_eq!(
            fetch(&edge, uri).await,
            (StatusCode::OK, "no-cache".into()),
            "{uri}"
        );
    }
    assert_eq!(
        fetch(&edge, "/live/nosuch/master.m3u8").await,
        (StatusCode::NOT_FOUND, "no-store".into())
    );
}

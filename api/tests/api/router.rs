//! The API's answers, through `tower::ServiceExt::oneshot` on an in-memory catalog: keys
//! and scopes, bad bodies, unknown names, and the happy paths.

use std::sync::Arc;
use std::time::Instant;

use api::{router, Api, ClusterView};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalog::{Catalog, Scope};
use domain::load::{IngestStream, LoadReport, RungSpeed, SegmentCounts};
use domain::presence::Role;
use domain::{NodeId, RenditionName, StreamName};
use parking_lot::Mutex;
use serde_json::Value;
use tower::ServiceExt;

struct Fixture {
    api: Api,
    catalog: Catalog,
    cluster: Arc<Mutex<ClusterView>>,
    admin: String,
    reader: String,
}

async fn fixture() -> Fixture {
    let catalog = Catalog::open("sqlite::memory:").await.expect("catalog");
    let (_, admin) = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("admin key");
    let (_, reader) = catalog
        .add_api_key("reader", Scope::Read)
        .await
        .expect("read key");
    let cluster = Arc::new(Mutex::new(ClusterView::default()));
    Fixture {
        api: Api::new(Some(catalog.clone()), Arc::clone(&cluster), None),
        catalog,
        cluster,
        admin: admin.expose_secret().to_owned(),
        reader: reader.expose_secret().to_owned(),
    }
}

async fn call(
    api: &Api,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = router(api.clone())
        .oneshot(request.body(Body::from(body.to_owned())).expect("request"))
        .await
        .expect("answer");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, value)
}

#[tokio::test]
async fn keys_are_required_and_scoped() {
    let f = fixture().await;
    for key in [None, Some("ak_nope"), Some("sk_0000"), Some("")] {
        let (status, body) = call(&f.api, "GET", "/api/v1/nodes", key, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert!(body["error"]
            .as_str()
            .is_some_and(|e| e.contains("x-api-key")));
    }
    let (status, _) = call(&f.api, "GET", "/api/v1/nodes", Some(&f.reader), "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams",
        Some(&f.reader),
        r#"{"name":"a"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Unauthorised callers learn nothing about their body.
    let (status, _) = call(&f.api, "POST", "/api/v1/catalog/streams", None, "{").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.catalog.remove_api_key("reader").await.expect("removed");
    let (status, _) = call(&f.api, "GET", "/api/v1/nodes", Some(&f.reader), "").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a removed key fails at once"
    );
}

#[tokio::test]
async fn bad_bodies_and_unknown_names_get_clear_answers() {
    let f = fixture().await;
    let admin = Some(f.admin.as_str());
    for (body, expect) in [
        ("{", "JSON"),
        (r#"{"name": 5}"#, "JSON"),
        (r#"{"name":"a","extra":1}"#, "JSON"),
        (r#"{"name":"../etc"}"#, "stream name"),
        (r#"{"name":""}"#, "stream name"),
    ] {
        let (status, answer) = call(&f.api, "POST", "/api/v1/catalog/streams", admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = answer["error"].as_str().expect("message");
        assert!(message.contains(expect), "{body}: {message}");
    }
    let (status, _) = call(&f.api, "GET", "/api/v1/catalog/streams/nope", admin, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&f.api, "DELETE", "/api/v1/catalog/streams/nope", admin, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams/nope/rotate-key",
        admin,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&f.api, "POST", "/api/v1/live/nope/end", admin, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&f.api, "DELETE", "/api/v1/webhooks/abc", admin, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&f.api, "DELETE", "/api/v1/webhooks/99", admin, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = call(
        &f.api,
        "POST",
        "/api/v1/webhooks",
        admin,
        r#"{"url":"ftp://example.com/x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = call(&f.api, "GET", "/api/v1/sessions?stream=../x", admin, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(100 * 1024));
    let (status, _) = call(&f.api, "POST", "/api/v1/catalog/streams", admin, &big).await;
    assert!(status.is_client_error(), "an oversized body: {status}");
}

#[tokio::test]
async fn streams_keys_and_webhooks_round_trip() {
    let f = fixture().await;
    let admin = Some(f.admin.as_str());
    let (status, created) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams",
        admin,
        r#"{"name":"cam"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("sk_"));
    let (status, _) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams",
        admin,
        r#"{"name":"cam"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let cam = StreamName::new("cam").expect("valid");
    assert_eq!(
        f.catalog.authenticate(&key).await.expect("auth"),
        Some(cam.clone())
    );

    let (status, rotated) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams/cam/rotate-key",
        admin,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_key = rotated["key"].as_str().expect("key");
    assert_eq!(f.catalog.authenticate(&key).await.expect("auth"), None);
    assert_eq!(
        f.catalog.authenticate(new_key).await.expect("auth"),
        Some(cam)
    );

    let (status, list) = call(
        &f.api,
        "GET",
        "/api/v1/catalog/streams",
        Some(&f.reader),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "cam");
    assert!(
        list.to_string().find("sk_").is_none(),
        "no key in a listing"
    );

    let (status, hook) = call(
        &f.api,
        "POST",
        "/api/v1/webhooks",
        admin,
        r#"{"url":"http://127.0.0.1:9/hook","events":["publish"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    // Read keys never see webhook URLs; admin keys do.
    let (status, _) = call(&f.api, "GET", "/api/v1/webhooks", Some(&f.reader), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, hooks) = call(&f.api, "GET", "/api/v1/webhooks", admin, "").await;
    assert_eq!(hooks[0]["events"], serde_json::json!(["publish"]));
    assert_eq!(hooks[0]["url"], "http://127.0.0.1:9/hook");
    let id = hook["id"].as_i64().expect("id");
    let (status, _) = call(
        &f.api,
        "DELETE",
        &format!("/api/v1/webhooks/{id}"),
        admin,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, _) = call(&f.api, "DELETE", "/api/v1/catalog/streams/cam", admin, "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(f.catalog.authenticate(new_key).await.expect("auth"), None);
}

/// Recording is on for a new stream, off when its body says so; GET shows it and PATCH
/// switches it without touching its privacy.
#[tokio::test]
async fn recording_is_shown_and_switched() {
    let f = fixture().await;
    let admin = Some(f.admin.as_str());
    let (status, created) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams",
        admin,
        r#"{"name":"kept"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["record"], true);
    let (status, created) = call(
        &f.api,
        "POST",
        "/api/v1/catalog/streams",
        admin,
        r#"{"name":"live-only","record":false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["record"], false);
    let (_, got) = call(
        &f.api,
        "GET",
        "/api/v1/catalog/streams/live-only",
        Some(&f.reader),
        "",
    )
    .await;
    assert_eq!(
        (got["record"].clone(), got["private"].clone()),
        (false.into(), false.into())
    );

    let (status, patched) = call(
        &f.api,
        "PATCH",
        "/api/v1/catalog/streams/kept",
        admin,
        r#"{"record":false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["record"], false);
    assert_eq!(patched["private"], false);
    let kept = StreamName::new("kept").expect("valid");
    assert!(!f.catalog.is_recorded(&kept).await.expect("read"));
    let (_, patched) = call(
        &f.api,
        "PATCH",
        "/api/v1/catalog/streams/kept",
        admin,
        r#"{"record":true,"private":true}"#,
    )
    .await;
    assert_eq!(
        (patched["record"].clone(), patched["private"].clone()),
        (true.into(), true.into())
    );
    // A read key may not switch it; a wrong type is a clear 400.
    let (status, _) = call(
        &f.api,
        "PATCH",
        "/api/v1/catalog/streams/kept",
        Some(&f.reader),
        r#"{"record":false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &f.api,
        "PATCH",
        "/api/v1/catalog/streams/kept",
        admin,
        r#"{"record":"no"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(f.catalog.is_recorded(&kept).await.expect("read"));
}

#[tokio::test]
async fn live_and_nodes_come_from_the_cluster_view() {
    let f = fixture().await;
    let now = Instant::now();
    let stream = StreamName::new("cam").expect("valid");
    {
        let mut view = f.cluster.lock();
        view.report(
            NodeId::new("ingest1").expect("valid"),
            LoadReport {
                role: Role::Ingest,
                at: 1,
                cpu_percent: 50.0,
                memory_bytes: 1,
                connections: 1,
                bytes_out: 0,
                viewers: Default::default(),
                segments: SegmentCounts::default(),
                streams: vec![IngestStream {
                    stream: stream.clone(),
                    session: "00000000000000aa".into(),
                    started_at: 1,
                    renditions: vec![RungSpeed {
                        rendition: RenditionName::new("720p").expect("valid"),
                        encode_fps: Some(30.0),
                        realtime_factor: Some(1.0),
                    }],
                }],
            },
            now,
        );
        view.report(
            NodeId::new("broadcast1").expect("valid"),
            LoadReport {
                role: Role::Broadcast,
                at: 1,
                cpu_percent: 5.0,
                memory_bytes: 1,
                connections: 3,
                bytes_out: 10,
                viewers: [(stream, 2)].into_iter().collect(),
                segments: SegmentCounts {
                    verified: 10,
                    rejected: 1,
                    gaps: 0,
                },
                streams: Vec::new(),
            },
            now,
        );
    }
    let (status, live) = call(&f.api, "GET", "/api/v1/live", Some(&f.reader), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live[0]["name"], "cam");
    assert_eq!(live[0]["viewers"], 2);
    assert_eq!(live[0]["nodes"][0]["node"], "broadcast1");
    assert_eq!(live[0]["renditions"][0]["encode_fps"], 30.0);
    let (_, nodes) = call(&f.api, "GET", "/api/v1/nodes", Some(&f.reader), "").await;
    assert_eq!(nodes.as_array().map(Vec::len), Some(2));
    assert_eq!(nodes[0]["node"], "broadcast1");
    assert_eq!(nodes[0]["segments"]["rejected"], 1);
    assert_eq!(nodes[0]["healthy"], true);
}

#[tokio::test]
async fn without_a_catalog_catalog_routes_say_so() {
    let cluster = Arc::new(Mutex::new(ClusterView::default()));
    let api = Api::new(None, cluster, None);
    let (status, body) = call(&api, "GET", "/api/v1/nodes", Some("ak_x"), "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("catalog")));
}

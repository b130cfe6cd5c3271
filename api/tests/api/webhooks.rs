//! Webhook deliveries against a real HTTP receiver on a free port: every subscribed hook
//! gets the event, a failing receiver is retried until it answers 2xx, and an event nobody
//! subscribed to goes nowhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::{Destinations, WebhookPayload, Webhooks};
use axum::http::StatusCode;
use catalog::{Catalog, WebhookEvent};
use serde_json::Value;
use tokio::sync::mpsc;

/// A receiver that fails its first `failures` requests with 503, then records bodies.
async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Value>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            let counted = Arc::clone(&counted);
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) < failures {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let _ = tx.send(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx, attempts)
}

fn payload(event: WebhookEvent) -> WebhookPayload {
    WebhookPayload {
        event,
        stream: "cam".into(),
        session: "00000000000000aa".into(),
        at: 1_763_800_000,
        node: "ingest1".into(),
        master_url: None,
    }
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_takes_the_event() {
    let catalog = Catalog::open("sqlite::memory:").await.expect("catalog");
    let (url, mut bodies, attempts) = receiver(1).await;
    catalog
        .add_webhook(&url, &[WebhookEvent::Publish])
        .await
        .expect("webhook");
    let hooks = Webhooks::new(catalog.clone(), Destinations::Any).expect("HTTP client");
    hooks.notify(payload(WebhookEvent::Unpublish));
    hooks.notify(payload(WebhookEvent::Publish));
    let body = tokio::time::timeout(Duration::from_secs(20), bodies.recv())
        .await
        .expect("delivered in time")
        .expect("a body");
    assert_eq!(body["event"], "publish");
    assert_eq!(body["stream"], "cam");
    assert!(body.get("master_url").is_none());
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "one failure, one retry");
    hooks.close().await;
    assert!(bodies.try_recv().is_err(), "unpublish had no subscriber");
}

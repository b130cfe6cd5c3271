//! The admin API, webhooks, VOD and the web pages, the way operators and viewers meet
//! them: over HTTPS through the load balancer, the player and dashboard in headless
//! Chromium ([`crate::pages`]), a webhook receiver on a free port, and ffmpeg publishing.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use tokio::process::Command;
use tokio::sync::mpsc;

use testkit::ffmpeg::TestPattern;

use crate::cluster::{Cluster, BIN};
use crate::lb;
use crate::pages;

/// The stream this part publishes (480p source: src + 480p + 360p rungs).
const STREAM: &str = "web";

/// An API client: the load balancer's HTTPS URL and a key (or none).
struct ApiClient {
    client: reqwest::Client,
    base: String,
}

impl ApiClient {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| {
                format!("{method} {path} answered {status} with non-JSON {text:?}")
            })?
        };
        Ok((status, value))
    }

    async fn get(&self, path: &str, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, key, None).await
    }

    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    async fn delete(&self, path: &str, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::DELETE, path, key, None).await
    }

    /// Polls `GET path` with `key` until `done` accepts the answer.
    async fn wait_for(
        &self,
        path: &str,
        key: Option<&str>,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, value) = self.get(path, key).await?;
            if status == 200 && done(&value) {
                return Ok(value);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{what}: GET {path} still answers {status} {value}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `sealcast api-keys add NAME --scope SCOPE` against the running cluster's catalog.
async fn add_api_key(cluster: &Cluster, name: &str, scope: &str) -> anyhow::Result<String> {
    let out = Command::new(BIN)
        .args(["api-keys", "add", name, "--scope", scope, "--data-dir"])
        .arg(cluster.data_dir())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "api-keys add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    anyhow::ensure!(key.starts_with("ak_"), "unexpected key output");
    Ok(key)
}

/// A webhook receiver on a free port: every JSON body POSTed to it arrives on the channel.
async fn webhook_receiver() -> anyhow::Result<(String, mpsc::UnboundedReceiver<Value>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

/// Waits for the webhook `event` of `stream`, skipping others.
async fn next_hook(
    hooks: &mut mpsc::UnboundedReceiver<Value>,
    event: &str,
    stream: &str,
) -> anyhow::Result<Value> {
    let wait = async {
        while let Some(v) = hooks.recv().await {
            if v["event"] == event && v["stream"] == stream {
                return Some(v);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .ok()
        .flatten()
        .with_context(|| format!("no {event} webhook for {stream}"))
}

/// The whole part: API errors and scopes, a stream created and its key rotated through
/// the API, webhooks, the player, the dashboard, ending a session, the recording played.
pub(crate) async fn check_api_player_and_dashboard(cluster: &Cluster) -> anyhow::Result<()> {
    let api = ApiClient {
        client: lb::https_client(&cluster.ca())?,
        base: cluster.https.clone(),
    };
    let admin = cluster.admin_key.as_str();
    // Screenshots of an earlier run must not be mistaken for this one's.
    let _ = std::fs::remove_dir_all(pages::ARTIFACTS);
    let reader = add_api_key(cluster, "reader", "read").await?;

    // Keys and scopes.
    for (key, what) in [(None, "no key"), (Some("ak_0123"), "a made-up key")] {
        let (status, body) = api.get("/api/v1/nodes", key).await?;
        anyhow::ensure!(status == 401, "{what}: {status} {body}");
        anyhow::ensure!(body["error"].is_string(), "{what}: no error message");
    }
    let (status, _) = api
        .post("/api/v1/catalog/streams", Some(&reader), r#"{"name":"x"}"#)
        .await?;
    anyhow::ensure!(status == 403, "a read-only key created a stream: {status}");
    let (status, body) = api
        .post("/api/v1/catalog/streams", Some(admin), r#"{"name":"#)
        .await?;
    anyhow::ensure!(
        status == 400 && body["error"].as_str().is_some_and(|e| e.contains("JSON")),
        "bad JSON: {status} {body}"
    );
    let (status, body) = api
        .post("/api/v1/catalog/streams", Some(admin), r#"{"name":"../x"}"#)
        .await?;
    anyhow::ensure!(status == 400, "a bad name: {status} {body}");
    let (status, _) = api
        .get("/api/v1/catalog/streams/nosuch", Some(&reader))
        .await?;
    anyhow::ensure!(status == 404, "an unknown stream: {status}");
    let (status, _) = api.post("/api/v1/live/nosuch/end", Some(admin), "").await?;
    anyhow::ensure!(status == 404, "ending a stream that is not live: {status}");

    // The nodes, as the cluster reports them.
    api.wait_for(
        "/api/v1/nodes",
        Some(&reader),
        "every node reporting",
        |v| {
            let healthy = |prefix: &str| {
                v.as_array().map_or(0, |a| {
                    a.iter()
                        .filter(|n| {
                            n["node"].as_str().is_some_and(|id| id.starts_with(prefix))
                                && n["healthy"] == true
                        })
                        .count()
                })
            };
            healthy("broadcast") >= 3 && healthy("ingest") >= 1
        },
    )
    .await?;

    // A stream made through the API, a webhook, and a publish.
    let (status, created) = api
        .post(
            "/api/v1/catalog/streams",
            Some(admin),
            &json!({ "name": STREAM }).to_string(),
        )
        .await?;
    anyhow::ensure!(status == 201, "creating {STREAM}: {status} {created}");
    let old_key = created["key"].as_str().context("no key")?.to_owned();
    let (hook_url, mut hooks) = webhook_receiver().await?;
    let (status, hook) = api
        .post(
            "/api/v1/webhooks",
            Some(admin),
            &json!({ "url": hook_url }).to_string(),
        )
        .await?;
    anyhow::ensure!(status == 201, "adding a webhook: {status} {hook}");
    // `sealcast source`: its clock stamp lets the player show glass-to-glass latency.
    let publisher = cluster.sealcast_source_sized(&cluster.rtmp_url(&old_key), "854x480", 300)?;
    let published = next_hook(&mut hooks, "publish", STREAM).await?;
    let session = published["session"]
        .as_str()
        .context("no session")?
        .to_owned();
    lb::wait_live(&api.client, &api.base, STREAM).await?;

    // The player and the dashboard in Chromium.
    let live = pages::live(&api.base, STREAM, "broadcast").await?;
    let levels = live["levels"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(levels >= 3, "the player offered {levels} rungs: {live}");
    api.wait_for(
        "/api/v1/live",
        Some(&reader),
        "the stream live with viewers",
        |v| {
            v.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s["name"] == STREAM
                        && s["session"] == session.as_str()
                        && s["renditions"].as_array().is_some_and(|r| r.len() >= 3)
                })
            })
        },
    )
    .await?;
    let dashboard = pages::dashboard(&api.base, STREAM, admin).await?;
    anyhow::ensure!(
        dashboard["rungs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "src") && r.len() >= 3),
        "the dashboard does not show the stream's rungs: {dashboard}"
    );

    // Rotating the key: the old one no longer publishes (the live session goes on).
    let (status, rotated) = api
        .post(
            &format!("/api/v1/catalog/streams/{STREAM}/rotate-key"),
            Some(admin),
            "",
        )
        .await?;
    anyhow::ensure!(status == 200, "rotating the key: {status} {rotated}");
    let new_key = rotated["key"].as_str().context("no new key")?.to_owned();
    anyhow::ensure!(new_key != old_key, "the key did not change");
    let refused = TestPattern::new(320, 240, 15, 5)
        .publish(&cluster.rtmp_url(&old_key))?
        .wait()
        .await?;
    anyhow::ensure!(!refused.success(), "the old key still publishes");

    // Ending the session through the API: the publisher is dropped, the stream ends, the
    // recording becomes VOD, and each step is told to the webhook.
    let (status, body) = api
        .post(&format!("/api/v1/live/{STREAM}/end"), Some(admin), "")
        .await?;
    anyhow::ensure!(status == 202, "ending {STREAM}: {status} {body}");
    let _ = publisher.wait().await?;
    next_hook(&mut hooks, "unpublish", STREAM).await?;
    cluster.wait_ended(STREAM).await?;
    let ready = next_hook(&mut hooks, "recording_ready", STREAM).await?;
    let recordings = api
        .wait_for("/api/v1/recordings", None, "the recording listed", |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|r| r["stream"] == STREAM))
        })
        .await?;
    let recording = recordings
        .as_array()
        .and_then(|a| a.iter().find(|r| r["stream"] == STREAM))
        .context("recording")?;
    let id = recording["id"].as_str().context("recording id")?.to_owned();
    anyhow::ensure!(
        ready["master_url"] == recording["master_url"],
        "the webhook and the list disagree: {ready} {recording}"
    );
    let (status, sessions) = api
        .get(&format!("/api/v1/sessions?stream={STREAM}"), Some(&reader))
        .await?;
    anyhow::ensure!(
        status == 200
            && sessions[0]["session"] == session.as_str()
            && sessions[0]["ended_at"].is_i64(),
        "the session is not recorded as ended: {sessions}"
    );
    let played = pages::recording(&api.base, STREAM, &id).await?;
    anyhow::ensure!(
        played["ended"] == true,
        "the recording did not play to its end: {played}"
    );

    // The new key publishes.
    TestPattern::new(320, 240, 15, 3)
        .publish(&cluster.rtmp_url(&new_key))?
        .wait_success()
        .await
        .context("publishing with the rotated key")?;

    // Deleting the recording and the webhook.
    let (status, _) = api
        .delete(&format!("/api/v1/recordings/{STREAM}/{id}"), Some(&reader))
        .await?;
    anyhow::ensure!(status == 403, "a read-only key deleted a recording");
    let (status, _) = api
        .delete(&format!("/api/v1/recordings/{STREAM}/{id}"), Some(admin))
        .await?;
    anyhow::ensure!(status == 204, "deleting the recording: {status}");
    api.wait_for("/api/v1/recordings", None, "the recording gone", |v| {
        v.as_array()
            .is_some_and(|a| !a.iter().any(|r| r["id"] == id.as_str()))
    })
    .await?;
    let hook_id = hook["id"].as_i64().context("webhook id")?;
    let (status, _) = api
        .delete(&format!("/api/v1/webhooks/{hook_id}"), Some(admin))
        .await?;
    anyhow::ensure!(status == 204, "deleting the webhook: {status}");
    Ok(())
}

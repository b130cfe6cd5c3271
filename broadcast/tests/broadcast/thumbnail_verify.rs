//! The page checks thumbnails itself: verify.js's `verifyThumbnail`, in Chromium, on the
//! cases `certs::signing::playback::thumbnail_vectors` makes (which its Rust twin,
//! `certs::signing::playback::thumbnail`, runs in certs' tests), for both algorithms, on
//! WebCrypto and on the vendored library (`?verify=library`), with every verdict asserted.
//! Then the loader the player and the dashboard use (`ThumbnailLoader`): a genuine
//! thumbnail comes back as a blob URL and counts as verified; a tampered one is never
//! handed out and counts as refused.
//!
//! A local axum server on 127.0.0.1:0 serves the test page, the cases, the trust material
//! and two thumbnails; `/assets/…` comes from a node's own router.

use axum::routing::get;
use axum::Router;
use certs::signing::playback::thumbnail_vectors::{thumbnail_cases, thumbnail_cases_json};
use certs::signing::playback::vectors::{media, Keys, STREAM};
use certs::signing::{RootKey, SignatureAlgorithm};
use domain::wire::{SignedThumbnail, ThumbnailStatement};
use domain::{SessionId, StreamName, ThumbnailMeta};
use http::header;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::browser::Browser;
use tokio::net::TcpListener;

const PAGE_LIMIT: Duration = Duration::from_secs(60);

/// The pages' Content Security Policy (broadcast/src/assets.rs).
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     worker-src 'self' blob:; connect-src 'self'; style-src 'self'; script-src 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

const TEST_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>thumbnails</title>
<script type="module" src="/thumbnail-test.js"></script>
</head><body><p>verifyThumbnail under test</p></body></html>"#;

const TEST_SCRIPT: &str = r#"
import { Refusal, ThumbnailLoader, Trust, openTrust, verifyThumbnail } from '/assets/verify.js';

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));

async function main() {
  const cases = await (await fetch('/thumbnail-vectors.json')).json();
  const opened = await openTrust();
  if (!opened.trust) return { failed: `no trust: ${opened.failure && opened.failure.message}` };
  const bundle = new Uint8Array(await (await fetch('/trust/v1/bundle')).arrayBuffer());
  const verdicts = [];
  for (const c of cases) {
    const trust = new Trust(opened.trust.root, opened.trust.backend);
    await trust.admitBundle(bundle);
    const expect = c.recording === null
      ? { stream: c.stream }
      : { stream: c.stream, session: BigInt(`0x${c.recording}`), recorded: true };
    try {
      await verifyThumbnail(trust, fromHex(c.jpeg), fromHex(c.sidecar), expect, c.now_ms);
      verdicts.push('ok');
    } catch (e) {
      verdicts.push(e instanceof Refusal ? e.reason : `threw ${e}`);
    }
  }
  const loader = new ThumbnailLoader(Promise.resolve(opened));
  const good = await loader.load('/live/demo/thumbnail.jpg');
  const again = await loader.load('/live/demo/thumbnail.jpg');
  const tampered = await loader.load('/live/tampered/thumbnail.jpg');
  const missing = await loader.load('/live/nothing/thumbnail.jpg');
  return {
    mode: opened.mode,
    verdicts,
    loader: {
      good: typeof good === 'string' && good.startsWith('blob:'),
      same: good === again,
      tampered,
      missing,
      counts: loader.counts,
    },
  };
}

main().then(
  (r) => { window.result = r; },
  (e) => { window.result = { failed: `${e && e.stack || e}` }; },
);
"#;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn root_file(root: &RootKey) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("root.pub");
    root.public_key().write_file(&path).expect("write root.pub");
    std::fs::read(&path).expect("read root.pub")
}

/// A live thumbnail of `stream`, signed by the certified ingest key: the JPEG and its
/// sidecar.
fn live_thumbnail(keys: &Keys, stream: &str) -> (Vec<u8>, Vec<u8>) {
    let jpeg = media(77, 2000);
    let meta = ThumbnailMeta {
        stream: StreamName::new(stream).expect("valid"),
        session: SessionId(1),
        sequence: 3,
        captured_ms: keys.now * 1000,
        width: 320,
        height: 180,
    };
    let statement = ThumbnailStatement::from_meta(
        &meta,
        keys.ingest.algorithm(),
        keys.ingest.key_id(),
        jpeg.len() as u64,
        Sha256::digest(&jpeg).into(),
    );
    let sidecar = SignedThumbnail::sign(&statement, |b| keys.ingest.sign(b)).encode();
    (jpeg, sidecar)
}

async fn serve(keys: &Keys, cases: Value) -> String {
    let octets = |bytes: Vec<u8>, kind: &'static str| {
        move || {
            let bytes = bytes.clone();
            async move { ([(header::CONTENT_TYPE, kind)], bytes) }
        }
    };
    let cluster = crate::support::edge::Cluster::new(SignatureAlgorithm::Ed25519);
    let edge = broadcast::Edge::new(
        crate::support::node(),
        crate::support::edge::edge_config(&cluster, crate::support::node_config()),
    )
    .expect("an edge");
    let (jpeg, sidecar) = live_thumbnail(keys, STREAM);
    let (mut tampered, tampered_sidecar) = live_thumbnail(keys, "tampered");
    tampered[10] ^= 1;
    let cases = cases.to_string();
    let app = Router::new()
        .route(
            "/thumbnail-test.html",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CONTENT_SECURITY_POLICY, CSP),
                    ],
                    TEST_PAGE,
                )
            }),
        )
        .route(
            "/thumbnail-test.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    TEST_SCRIPT,
                )
            }),
        )
        .route(
            "/thumbnail-vectors.json",
            get(move || {
                let cases = cases.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], cases) }
            }),
        )
        .route(
            "/trust/v1/root.pub",
            get(octets(root_file(&keys.root), "application/octet-stream")),
        )
        .route(
            "/trust/v1/bundle",
            get(octets(keys.bundle().encode(), "application/octet-stream")),
        )
        .route("/live/demo/thumbnail.jpg", get(octets(jpeg, "image/jpeg")))
        .route(
            "/live/demo/thumbnail.jpg.sig",
            get(octets(sidecar, "application/octet-stream")),
        )
        .route(
            "/live/tampered/thumbnail.jpg",
            get(octets(tampered, "image/jpeg")),
        )
        .route(
            "/live/tampered/thumbnail.jpg.sig",
            get(octets(tampered_sidecar, "application/octet-stream")),
        )
        .fallback_service(edge.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test]
async fn the_page_verifies_thumbnails_itself() {
    let mut browser = Browser::start(800, 600).await.expect("Chromium");
    for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        let keys = Keys::new(algorithm, now_secs());
        let cases = thumbnail_cases(&keys);
        let origin = serve(&keys, thumbnail_cases_json(&cases)).await;
        for query in ["", "?verify=library"] {
            let url = format!("{origin}/thumbnail-test.html{query}");
            browser.goto(&url).await.expect("open the page");
            let result = browser
                .wait_for(
                    "the page has its verdicts",
                    "return window.result || null",
                    Value::Null,
                    PAGE_LIMIT,
                    |_| Ok(()),
                )
                .await
                .unwrap_or_else(|e| panic!("{url}: {e:#}"));
            assert!(result.get("failed").is_none(), "{url}: {result}");
            let verdicts = result["verdicts"].as_array().expect("verdicts");
            assert_eq!(verdicts.len(), cases.len(), "{url}");
            let wrong: Vec<String> = cases
                .iter()
                .zip(verdicts)
                .filter(|(c, v)| *v != c.expect.map_or("ok", |r| r.label()))
                .map(|(c, v)| format!("{}: expected {:?}, got {v}", c.name, c.expect))
                .collect();
            assert!(
                wrong.is_empty(),
                "{url} ({algorithm:?}):\n{}",
                wrong.join("\n")
            );
            let loader = &result["loader"];
            assert_eq!(loader["good"], true, "{url}: {loader}");
            assert_eq!(
                loader["same"], true,
                "{url}: held, not fetched anew: {loader}"
            );
            assert_eq!(loader["tampered"], Value::Null, "{url}: {loader}");
            assert_eq!(loader["missing"], Value::Null, "{url}: {loader}");
            assert_eq!(loader["counts"]["verified"], 1, "{url}: {loader}");
            assert_eq!(loader["counts"]["refused"], 1, "{url}: {loader}");
            assert_eq!(
                loader["counts"]["reasons"][0]["reason"], "digest_mismatch",
                "{url}: {loader}"
            );
        }
    }
    browser.quit().await.expect("quit");
}

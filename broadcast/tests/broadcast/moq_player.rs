//! The browser's MoQ subscriber (`web/src/moq.js`) in Chromium, through the real
//! moq-relay: a node publishes its stream to the relay (as in `moq`), and a test page
//! connects to the relay over WebTransport, pinning its self-signed certificate by hash,
//! reads the catalog and whole groups of the media track while the node keeps publishing,
//! and hands back what it read; every object must be, byte for byte, the part the node was
//! given for that group and index.
//!
//! (`moq_auth` opens the same page on a relay that checks playback tokens, for its
//! `secret` case.) The page also asks for a broadcast and a track the relay does not have (the refusals
//! must be errors that say so), and two hostile or misconfigured cases must fail instead of
//! hanging: a wrong certificate hash, and a page whose Content Security Policy keeps
//! `connect-src` to its own origin (the production pages' policy), which WebTransport to
//! the relay is subject to.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use broadcast::Node;
use http::header;
use serde_json::Value;
use testkit::browser::Browser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::moq::{
    egress, part_bytes, publish_part, publish_segment, publish_whole, relay_and_node, PARTS,
    RENDITION,
};
use crate::support::*;

/// How long the page may take for one case.
const PAGE_LIMIT: Duration = Duration::from_secs(60);
/// How often the live publisher sends the next part.
const PART_EVERY: Duration = Duration::from_millis(200);

/// The pages' Content Security Policy (broadcast/src/assets.rs) up to `connect-src`.
fn csp(connect_src: &str) -> String {
    format!(
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
         worker-src 'self' blob:; connect-src {connect_src}; style-src 'self'; \
         script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

const TEST_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moq.js</title>
<script type="module" src="/moq-test.js"></script>
</head><body><p>moq.js under test</p></body></html>"#;

/// `?case=read`: the catalog, then whole groups of the media track until two are in, then
/// the refusals; `?case=connect` (with any hash): whether connecting fails, and how.
const TEST_SCRIPT: &str = r#"
import { MoqSession } from '/moq.js';

const query = new URLSearchParams(location.search);
const relay = query.get('relay');
const fingerprint = query.get('fingerprint');
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const within = (ms, promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer to ${what} in ${ms} ms`)), ms)),
]);

// What the relay answers a subscription to something it does not have.
async function refusal(session, broadcast, name) {
  const track = await session.subscribe(broadcast, name);
  try {
    const group = await within(10000, track.nextGroup(), `${broadcast}/${name}`);
    return { group: group && group.sequence };
  } catch (e) {
    return { error: e.message };
  } finally {
    track.close();
  }
}

async function read() {
  const session = await MoqSession.connect(relay, { certificateHashes: [fingerprint] });
  const catalogTrack = await session.subscribe('demo', 'catalog.json');
  const first = await catalogTrack.nextGroup();
  const catalog = new TextDecoder().decode(await first.nextObject());
  const catalogEnd = await first.nextObject();
  catalogTrack.close();

  const media = await session.subscribe('demo', '720p');
  const groups = [];
  let whole = 0;
  while (whole < 2) {
    const group = await media.nextGroup();
    if (group === null) throw new Error('the media track ended');
    const objects = [];
    for (let o = await group.nextObject(); o !== null; o = await group.nextObject()) objects.push(hex(o));
    groups.push({ sequence: group.sequence, frameStart: group.frameStart, objects });
    if (group.frameStart === 0 && objects.length > 0) whole += 1;
  }
  media.close();
  const afterClose = await media.nextGroup();

  const unknownBroadcast = await refusal(session, 'nobody-here', '720p');
  const unknownTrack = await refusal(session, 'demo', 'no-such-track');
  session.close();
  const closed = await session.closed.then(() => 'resolved', (e) => `rejected: ${e.message}`);
  return {
    version: session.version, catalog, catalogEnd, groups, afterClose: afterClose === null,
    unknownBroadcast, unknownTrack, closed,
  };
}

async function connect() {
  try {
    const session = await MoqSession.connect(relay, { certificateHashes: [fingerprint] });
    session.close();
    return { connected: true };
  } catch (e) {
    return { error: e.message };
  }
}

// `?token=…`: the private stream `secret` (issue 48, `moq_auth`): refused without the
// token, its catalog with it in the session URL's query, a forged one refused at connect.
async function secret() {
  const token = query.get('token');
  const hashes = { certificateHashes: [fingerprint] };
  const anonymous = await MoqSession.connect(relay, hashes);
  const refused = await refusal(anonymous, '_private/secret', 'catalog.json');
  anonymous.close();
  const dial = new URL(relay);
  dial.searchParams.set('token', token);
  const session = await MoqSession.connect(dial.href, hashes);
  const track = await session.subscribe('_private/secret', 'catalog.json');
  const group = await within(10000, track.nextGroup(), 'the private catalog');
  const catalog = new TextDecoder().decode(await group.nextObject());
  session.close();
  // One letter or digit past the 40th changed (to another one: a forgery, not a copy).
  const at = 40 + token.slice(40).search(/[A-Za-z0-9]/);
  const flip = token[at] === 'A' ? 'B' : 'A';
  const forged = new URL(relay);
  forged.searchParams.set('token', `${token.slice(0, at)}${flip}${token.slice(at + 1)}`);
  let forgedResult;
  try {
    (await MoqSession.connect(forged.href, hashes)).close();
    forgedResult = { connected: true };
  } catch (e) {
    forgedResult = { error: e.message };
  }
  return { refused, catalog, forged: forgedResult };
}

const cases = { read, connect, secret };
within(45000, cases[query.get('case')](), 'the case').then(
  (r) => { window.result = r; },
  (e) => { window.result = { failed: `${e && e.stack || e}` }; },
);
"#;

/// Publishes segments from `first` on, a part every [`PART_EVERY`], until `done`.
async fn publish_live(node: Arc<Node>, first: u64, done: CancellationToken) {
    let mut tick = tokio::time::interval(PART_EVERY);
    for sequence in first.. {
        for index in 0..PARTS {
            tokio::select! {
                _ = done.cancelled() => return,
                _ = tick.tick() => {}
            }
            let node = Arc::clone(&node);
            tokio::task::spawn_blocking(move || {
                publish_part(&node, sequence, index);
                if index + 1 == PARTS {
                    publish_segment(&node, sequence);
                }
            })
            .await
            .expect("published");
        }
    }
}

/// Waits until the relay has the node's broadcast, seen by moq-tokio's subscriber, so the
/// page's first subscription finds it.
async fn broadcast_reaches(relay: &testkit::moq::Relay) {
    let client = crate::moq::client(relay);
    let origin = moq_tokio::origin::spawn();
    let _connection = client
        .with_subscriber(origin.clone())
        .connect(relay.url().parse::<url::Url>().expect("url"));
    tokio::time::timeout(
        Duration::from_secs(20),
        origin.consume().routed_broadcast(STREAM),
    )
    .await
    .unwrap_or_else(|_| panic!("no broadcast within 20 s; the relay said:\n{}", relay.log()))
    .expect("the broadcast");
}

/// Serves the test page (under a policy letting it reach `relay`, and at `/strict.html`
/// under the production one), its script and moq.js. Returns the origin.
pub(crate) async fn serve(relay: &str) -> String {
    let open = csp(&format!("'self' {}", relay.trim_end_matches('/')));
    let page = |policy: String| {
        move || {
            let policy = policy.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                        (header::CONTENT_SECURITY_POLICY, policy),
                    ],
                    TEST_PAGE,
                )
            }
        }
    };
    let script = |body: &'static str| {
        move || async move {
            (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                body,
            )
        }
    };
    let app = Router::new()
        .route("/moq-test.html", get(page(open)))
        .route("/strict.html", get(page(csp("'self'"))))
        .route("/moq-test.js", get(script(TEST_SCRIPT)))
        .route(
            "/moq.js",
            get(script(include_str!("../../../web/src/moq.js"))),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// The relay's URL for Chromium: by its address, since Chromium's QUIC dial of
/// `https://localhost:PORT/` is refused (`QUIC_PACKET_WRITE_ERROR`, it seems to go to `::1`
/// only, where the relay on 127.0.0.1 does not listen). The certificate, made for
/// `localhost`, is pinned by its hash, and Chromium checks no name then.
pub(crate) fn browser_url(relay: &testkit::moq::Relay) -> String {
    format!("https://127.0.0.1:{}/", relay.port)
}

/// Opens `page` with `case`, the relay's URL and `fingerprint`, and returns what the page
/// leaves in `window.result`; a failure shows the relay's log and the page's.
async fn run_case(
    browser: &mut Browser,
    page: &str,
    case: &str,
    relay: &testkit::moq::Relay,
    fingerprint: &str,
) -> Value {
    run_case_with(browser, page, case, relay, fingerprint, &[]).await
}

/// [`run_case`] with `more` query parameters for the page.
pub(crate) async fn run_case_with(
    browser: &mut Browser,
    page: &str,
    case: &str,
    relay: &testkit::moq::Relay,
    fingerprint: &str,
    more: &[(&str, &str)],
) -> Value {
    let relay_url = browser_url(relay);
    let params = [
        ("case", case),
        ("relay", relay_url.as_str()),
        ("fingerprint", fingerprint),
    ];
    let url = url::Url::parse_with_params(page, params.iter().chain(more)).expect("page url");
    browser.goto(url.as_str()).await.expect("open the page");
    let outcome = browser
        .wait_for(
            &format!("the page's {case} case is done"),
            "return window.result || null",
            Value::Null,
            PAGE_LIMIT,
            |_| Ok(()),
        )
        .await;
    let events = browser.events().await.expect("page events").clone();
    match outcome {
        Ok(result) => {
            assert!(
                events.errors.is_empty(),
                "{case}: uncaught errors in the page: {:?}",
                events.errors
            );
            result
        }
        Err(error) => panic!(
            "{url}: {error:#}\npage notes:\n{}\nuncaught:\n{}\nthe relay said:\n{}",
            events.notes.join("\n"),
            events.errors.join("\n"),
            relay.log()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_js_in_chromium_reads_a_node_s_tracks_through_moq_relay() {
    let (relay, node) = relay_and_node().await;
    publish_whole(&node, 0);
    publish_whole(&node, 1);

    let (stop, egress) = egress(&node, &relay);
    broadcast_reaches(&relay).await;

    let origin = serve(&browser_url(&relay)).await;
    let mut browser = Browser::start(800, 600).await.expect("browser");
    let page = format!("{origin}/moq-test.html");

    // Live: the node publishes while the page reads.
    let done = CancellationToken::new();
    let live = tokio::spawn(publish_live(Arc::clone(&node), 2, done.clone()));
    let result = run_case(&mut browser, &page, "read", &relay, &relay.fingerprint).await;
    done.cancel();
    live.await.expect("the live publisher stops");

    assert_eq!(result["version"], "moq-lite-06", "{result}");
    let catalog: Value =
        serde_json::from_str(result["catalog"].as_str().expect("catalog text")).expect("JSON");
    let video = &catalog["video"]["renditions"][RENDITION];
    assert_eq!(video["container"]["kind"], "cmaf", "{catalog}");
    assert_eq!(video["codec"], "avc1.64001f", "{catalog}");
    assert_eq!(result["catalogEnd"], Value::Null, "one object: {result}");

    let groups = result["groups"].as_array().expect("groups");
    let mut sequences = Vec::new();
    for group in groups {
        let sequence = group["sequence"].as_u64().expect("sequence");
        let start = group["frameStart"].as_u64().expect("frame start") as u32;
        let objects = group["objects"].as_array().expect("objects");
        for (i, object) in objects.iter().enumerate() {
            let bytes = hex::decode(object.as_str().expect("hex")).expect("hex");
            assert_eq!(
                bytes,
                part_bytes(sequence, start + i as u32),
                "group {sequence} object {}",
                start + i as u32
            );
        }
        if start == 0 {
            assert_eq!(objects.len(), PARTS as usize, "whole group {sequence}");
        }
        sequences.push(sequence);
    }
    assert!(
        sequences.len() >= 2 && sequences.windows(2).all(|w| w[0] < w[1]),
        "groups rise: {sequences:?}"
    );
    assert_eq!(result["afterClose"], true, "a closed track ends: {result}");
    for refused in ["unknownBroadcast", "unknownTrack"] {
        let error = result[refused]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("not found") || error.contains("unroutable"),
            "{refused}: {result}"
        );
    }
    assert_eq!(result["closed"], "resolved", "{result}");

    // Hostile: a certificate hash that is not the relay's. The connection must fail, and
    // say so, rather than hang or connect.
    let wrong = "00".repeat(32);
    let result = run_case(&mut browser, &page, "connect", &relay, &wrong).await;
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("WebTransport") && error.contains("failed"),
        "a wrong hash: {result}"
    );

    // The production pages' policy keeps connect-src to their own origin: the relay is out
    // of reach until the policy names it.
    let strict = format!("{origin}/strict.html");
    let result = run_case(&mut browser, &strict, "connect", &relay, &relay.fingerprint).await;
    let error = result["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Content Security Policy"),
        "connect-src 'self': {result}"
    );

    browser.quit().await.expect("quits");
    stop.cancel();
    egress.await.expect("joined").expect("egress stops cleanly");
}

//! The player verifies what it plays (issue 31): `web/src/verify.js` run in Debian's
//! Chromium against statements made by the real signing code (`certs`, `domain`), for both
//! algorithms, once on the browser's own WebCrypto and once on the vendored library
//! (forced with `?verify=library`), with the exact verdict and reason of every check
//! asserted here. The cases are the ones `certs`' own tests run through the Rust twin
//! (`certs::signing::playback::vectors`, made once for both, served as `/vectors.json`);
//! what only a browser does stays here: the hls.js loader wrapper (`loader_files`), the
//! root pin, the player page, and playback of recordings. The C2PA live-video cases
//! (`certs::c2pa::vectors`, which the Rust validator `certs::c2pa::validate` runs too) go
//! through verify.js's `C2paLiveValidator` the same way, served as `/c2pa-vectors.json`.
//!
//! A local axum server on 127.0.0.1:0 (a secure context, so WebCrypto is there) serves a
//! test page and its script, the vectors, the trust material at the plan's URLs
//! (`/trust/v1/root.pub`, `/trust/v1/bundle`) and a few fragments with their sidecars;
//! everything else (the player page, `/assets/…` with the vendored modules and the worker)
//! comes from the node's own router, so the embedded files, their content types and the
//! pages' Content Security Policy are the production ones.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use certs::c2pa::vectors as c2pa_vectors;
use certs::signing::playback::vectors::{
    self, Case, Fragment, FragmentKind, Keys, LATER_SESSION, RENDITION, SEGMENT_MS, SESSION, STREAM,
};
use certs::signing::{RootKey, SigningKey};
use domain::wire::SignatureAlgorithm;
use domain::SessionId;
use http::header;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use testkit::browser::Browser;
use tokio::net::TcpListener;

/// How late a recording's init statement is answered (see `serve`).
const INIT_STATEMENT_DELAY: std::time::Duration = std::time::Duration::from_millis(400);
/// A recording signed by a key revoked since.
const BACKDATED_SESSION: SessionId = SessionId(0x5ea1_0000_0000_0003);
/// How long the page may take for everything it is asked.
const PAGE_LIMIT: Duration = Duration::from_secs(60);
/// The rung `provenance_fragments` switches to and back from.
const OTHER_RENDITION: &str = "720p";

/// The claim signer of the C2PA-signed rendition `provenance_fragments` makes.
const PROVENANCE_SIGNER: &str = "ingest-c2pa";

/// The pages' Content Security Policy (broadcast/src/assets.rs), for the test page too.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     worker-src 'self' blob:; connect-src 'self'; style-src 'self'; script-src 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

const TEST_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>verify.js</title>
<script src="/assets/hls.min.js" defer></script>
<script type="module" src="/verify-test.js"></script>
</head><body><p>verify.js under test</p></body></html>"#;

/// Runs every case of /vectors.json through a fresh PlaybackVerifier over a fresh Trust of
/// the root and bundle the page's origin serves (`openTrust`, as the player does; a case's
/// delegations stay in its own), then the loader's fragments through the hls.js loader
/// wrapper; leaves the outcome in `window.result`.
const TEST_SCRIPT: &str = r#"
import {
  C2PA, C2paLiveValidator, PlaybackVerifier, cosignatureChecker, Trust, VerificationSession, groupHex, openTrust,
  pinnedFingerprint, sidecarUrl, verifyingLoader,
} from '/assets/verify.js';

const fromHex = (hex) => (hex === null ? null : Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16)));

async function cases(vectors, opened) {
  const bundle = new Uint8Array(await (await fetch('/trust/v1/bundle')).arrayBuffer());
  const out = [];
  for (const c of vectors.cases) {
    const trust = new Trust(opened.trust.root, opened.trust.backend);
    await trust.admitBundle(bundle);
    let now = 0;
    // What `{seq}.partkey` serves for the step being checked (the player fetches it from
    // the part's origin; the Rust twin is handed it the same way).
    let partKey = null;
    const verifier = new PlaybackVerifier(trust, {
      refreshTrust: () => trust.admitBundle(bundle),
      fetchDelegation: async () => partKey,
      now: () => now,
      playback: c.playback,
    });
    const verdicts = [];
    for (const s of c.steps) {
      if (s.reposition) verifier.reposition();
      now = s.now_ms;
      partKey = fromHex(s.part_key);
      const gaps = new Set(s.gaps);
      const v = await verifier.check({
        url: s.url, bytes: fromHex(s.bytes), sidecar: fromHex(s.sidecar), sequence: s.sequence,
        part: s.part, discontinuity: s.discontinuity, duration: s.duration,
        // What an ended playlist made the player say before issue 45: it must not count.
        live: false, gap: (n) => gaps.has(n),
      });
      verdicts.push(v.ok ? 'ok' : v.reason);
    }
    out.push({ name: c.name, verdicts });
  }
  return out;
}

// A fragment the player lets go of while it is checked does not move the position: one a
// reposition overtook (hls.js flushed its buffer on a manual rung switch) and one whose
// load is no longer wanted (hls.js then loads it again). The first case's init, 10, 11 and
// 12 on one rung; beside each, the same steps with the fragment taken, which must refuse
// the step back and the repeat.
async function overtaken(vectors, opened) {
  const bundle = new Uint8Array(await (await fetch('/trust/v1/bundle')).arrayBuffer());
  const steps = vectors.cases[0].steps;
  const rung = (s) => s.url.split('/')[3]; // /live/{stream}/{rendition}/…
  const at = (n) => steps.find((s) => s.sequence === n && s.part === null && rung(s) === rung(steps[1]));
  const fresh = async () => {
    const trust = new Trust(opened.trust.root, opened.trust.backend);
    await trust.admitBundle(bundle);
    const verifier = new PlaybackVerifier(trust, { now: () => steps[0].now_ms });
    const init = steps[0];
    await verifier.check({ url: init.url, bytes: fromHex(init.bytes), sidecar: fromHex(init.sidecar), sequence: null, part: null, discontinuity: 0, duration: null, gap: () => false });
    return verifier;
  };
  const check = (verifier, s, wanted) => verifier.check({
    url: s.url, bytes: fromHex(s.bytes), sidecar: fromHex(s.sidecar), sequence: s.sequence,
    part: s.part, discontinuity: s.discontinuity, duration: s.duration, gap: () => false, wanted,
  });
  const verdict = (v) => (v.ok ? 'ok' : v.reason);
  const out = {};
  for (const overtake of [true, false]) {
    const verifier = await fresh();
    const pending = check(verifier, at(12));
    if (overtake) verifier.reposition();
    const first = verdict(await pending);
    out[overtake ? 'repositioned' : 'taken'] = [first, verdict(await check(verifier, at(10)))];
  }
  for (const wanted of [false, true]) {
    const verifier = await fresh();
    const verdicts = [verdict(await check(verifier, at(10)))];
    verdicts.push(verdict(await check(verifier, at(11), () => wanted)));
    verdicts.push(verdict(await check(verifier, at(11))));
    out[wanted ? 'wanted' : 'let_go'] = verdicts;
  }
  return out;
}

// The fLoader around hls.js's own default loader, on fragments served with their sidecars:
// what hls.js would be handed for each.
async function loader(vectors) {
  const tally = { mode: '', verified: 0, refused: [], refusedCount: 0, fingerprint: '', timeMs: 0 };
  const session = new VerificationSession(openTrust(), tally);
  const Loader = verifyingLoader(window.Hls.DefaultConfig.loader, session, (ctx) => ctx.fields);
  const config = window.Hls.DefaultConfig;
  const policy = { ...config.fragLoadPolicy.default, timeoutRetry: null, errorRetry: null };
  const out = [];
  for (const f of vectors.loader) {
    const seen = { url: f.url, progress: [], success: false, error: null };
    await new Promise((resolve) => {
      const l = new Loader(config);
      if (f.abort) {
        // hls.js lets go of a load (a rung switch, a seek) once its bytes are in and its
        // sidecar is still on the way (held by the server): no verdict may come of it.
        const aborting = () => {
          if (l.state === 'checking') l.abort();
          else if (l.state === 'loading') setTimeout(aborting, 1);
        };
        setTimeout(aborting, 1);
      }
      l.load(
        { url: f.url, responseType: 'arraybuffer', fields: f.fields },
        { loadPolicy: policy, timeout: 10000, maxRetry: 0, retryDelay: 0, maxRetryDelay: 0 },
        {
          onProgress: (_stats, _ctx, data) => seen.progress.push(data.byteLength),
          // hls.js destroys a loader from inside its callbacks (FragmentLoader.resetLoader).
          onSuccess: () => { seen.success = true; l.destroy(); resolve(); },
          onError: (e) => { seen.error = e.code; l.destroy(); resolve(); },
          onAbort: () => { seen.error = 'aborted'; resolve(); },
          onTimeout: () => { seen.error = 'timeout'; resolve(); },
        },
      );
    });
    out.push(seen);
  }
  return { fragments: out, tally: { verified: tally.verified, refused: tally.refused, refusedCount: tally.refusedCount } };
}

// Every C2PA case through a fresh validator pinned to the case's root, at the case's time,
// on the page's crypto backend (WebCrypto, or the library with ?verify=library), its
// co-signatures checked against the case's bundle as the player does.
async function c2pa(backend) {
  const vectors = await (await fetch('/c2pa-vectors.json')).json();
  const out = [];
  for (const c of vectors.cases) {
    const root = await Trust.root(fromHex(c.root_pub));
    const trust = new Trust(root, backend);
    await trust.admitBundle(fromHex(c.bundle));
    const check = cosignatureChecker(trust);
    const cosigned = [];
    const anchors = c.anchors.map(fromHex);
    const validator = new C2paLiveValidator({
      root, backend, now: () => c.now_ms, anchors: () => anchors,
      cosigned: async (x) => {
        const v = await check(x);
        cosigned.push(v);
        return v;
      },
    });
    const verdicts = [];
    for (const s of c.steps) {
      const v = await validator.check({ rendition: c.name, kind: s.kind, bytes: fromHex(s.bytes) });
      verdicts.push(v.ok ? { verdict: v.status, signer: v.signer ?? null } : { verdict: v.code, detail: v.detail });
    }
    out.push({ name: c.name, verdicts, cosigned });
  }
  return out;
}

// Hostile C2PA data: the first case's steps, one of them changed (a bit flipped, cut
// short, a byte overwritten; C2PA_MUTATIONS rounds, deterministic), each round through a
// fresh validator: every verdict must be a verdict or a refusal with a C2PA status code.
const C2PA_MUTATIONS = 210;
async function c2paMutations(backend) {
  const vectors = await (await fetch('/c2pa-vectors.json')).json();
  const c = vectors.cases[0];
  const root = await Trust.root(fromHex(c.root_pub));
  const codes = new Set(Object.values(C2PA));
  let seed = 0x2545f491;
  const rnd = (n) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let runs = 0;
  const odd = [];
  for (let i = 0; i < C2PA_MUTATIONS; i += 1) {
    const steps = c.steps.map((s) => ({ kind: s.kind, bytes: fromHex(s.bytes) }));
    const t = steps[i % steps.length];
    const how = i % 3;
    if (how === 0) t.bytes[rnd(t.bytes.length)] ^= 1 << rnd(8);
    else if (how === 1) t.bytes = t.bytes.subarray(0, rnd(t.bytes.length));
    else t.bytes[rnd(t.bytes.length)] = rnd(256);
    const validator = new C2paLiveValidator({ root, backend, now: () => c.now_ms });
    for (const s of steps) {
      const v = await validator.check({ rendition: 'r', kind: s.kind, bytes: s.bytes });
      runs += 1;
      if (!(v.ok && (v.status === 'verified' || v.status === 'unsigned')) && !(!v.ok && codes.has(v.code))) {
        odd.push({ round: i, kind: s.kind, verdict: v });
      }
    }
  }
  return { runs, steps: c.steps.length, odd: odd.slice(0, 5) };
}

// The player's session (VerificationSession: our statement, then C2PA) over a rendition
// whose media carry C2PA data anchored by the page's root: each fragment's verdict, and
// the tally's provenance and refusals.
async function provenance(list) {
  const tally = { mode: '', verified: 0, refused: [], refusedCount: 0, fingerprint: '', timeMs: 0 };
  const session = new VerificationSession(openTrust(), tally);
  const verdicts = [];
  for (const f of list) {
    const v = await session.check({
      url: f.url, bytes: fromHex(f.bytes), sidecar: fromHex(f.sidecar), sequence: f.sequence,
      part: null, discontinuity: f.discontinuity, duration: f.duration, gap: () => false,
      newestDiscontinuity: f.newest,
    });
    verdicts.push(v.ok ? 'ok' : v.reason);
  }
  return { verdicts, provenance: tally.provenance, refused: tally.refused.map((r) => r.reason) };
}

async function main() {
  const vectors = await (await fetch('/vectors.json')).json();
  const opened = await openTrust();
  if (!opened.trust) return { failed: `no trust: ${opened.failure && opened.failure.message}` };
  // An operator's pin, as index.html would carry it (upper case, colons between groups).
  const doc = document.implementation.createHTMLDocument('');
  const meta = doc.createElement('meta');
  meta.name = 'sealcast-root';
  meta.content = groupHex(opened.fingerprint).toUpperCase().replace(/ /g, ':');
  doc.head.append(meta);
  const pinned = await openTrust({ pin: pinnedFingerprint(doc) });
  const wrong = await openTrust({ pin: '00'.repeat(32) });
  return {
    mode: opened.mode,
    fingerprint: opened.fingerprint,
    pin: { pinned: pinned.mode, wrong: wrong.failure && wrong.failure.reason },
    sidecar: sidecarUrl('/live/demo/360p/7.3.m4s?token=abc'),
    cases: await cases(vectors, opened),
    loader: await loader(vectors),
    overtaken: await overtaken(vectors, opened),
    c2pa: await c2pa(opened.trust.backend),
    c2paMutations: await c2paMutations(opened.trust.backend),
    provenance: await provenance(vectors.provenance),
    provenanceSwitch: await provenance(vectors.provenanceSwitch),
    provenanceRestart: await provenance(vectors.provenanceRestart),
    provenanceStale: await provenance(vectors.provenanceStale),
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

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A fragment answered altered, and cacheable for a year like a genuine segment, to a
/// request that lets caches answer, and genuine (`no-store`) to one that asks past every
/// cache (`Cache-Control: no-cache`, what `fetch` with `cache: 'reload'` sends): (altered,
/// genuine), by path. A retry that the browser's cache may answer gets the altered bytes.
type Flaky = HashMap<String, (Vec<u8>, Vec<u8>)>;

/// What the loader check serves and expects.
struct LoaderFiles {
    /// Path -> bytes.
    files: HashMap<String, Vec<u8>>,
    /// Served altered until asked past every cache, then genuine.
    flaky: Flaky,
    /// Paths whose answer never comes.
    held: Vec<String>,
    /// What hls.js must be handed for each fragment (`delivered`: `None`, nothing;
    /// otherwise the fragment's length), whether the page aborts it, and the refusals each
    /// must cause.
    expected: Value,
}

/// Fragments served over HTTP for the loader check: a refused fragment is fetched again
/// twice, past the browser's cache, before hls.js hears of it (issue 45 item 18); a load
/// hls.js lets go of while its sidecar is on the way is no refusal (a rung switch in
/// Chromium counted one, `missing_signature`, in CI). Not among the shared vectors: these
/// are the loader's fetching, refetching and aborting around the checks, and the Rust twin
/// fetches nothing.
fn loader_files(k: &Keys) -> LoaderFiles {
    let mut files = HashMap::new();
    let mut list = Vec::new();
    let fields = |f: &Fragment| {
        json!({ "sequence": f.sequence, "part": null, "discontinuity": 0,
                "duration": SEGMENT_MS as f64 / 1e3, "live": true })
    };
    // First, so that every later load (a round trip each) comes after whatever the
    // aborted sidecar would set off.
    let abandoned = Fragment::segment(24);
    files.insert(abandoned.url(), abandoned.bytes.clone());
    let held = vec![format!("{}.sig", abandoned.url())];
    list.push(
        json!({ "url": abandoned.url(), "fields": fields(&abandoned), "delivered": null,
                "abort": true }),
    );
    let good = Fragment::segment(20);
    files.insert(good.url(), good.bytes.clone());
    files.insert(format!("{}.sig", good.url()), good.sign(&k.ingest));
    list.push(json!({ "url": good.url(), "fields": fields(&good), "delivered": good.bytes.len() }));

    let tampered = Fragment::segment(21);
    let mut bytes = tampered.bytes.clone();
    bytes[100] ^= 0x80;
    files.insert(tampered.url(), bytes);
    files.insert(format!("{}.sig", tampered.url()), tampered.sign(&k.ingest));
    list.push(
        json!({ "url": tampered.url(), "fields": fields(&tampered), "delivered": null,
                "reasons": (["digest_mismatch"; 3]) }),
    );

    let unsigned = Fragment::segment(22);
    files.insert(unsigned.url(), unsigned.bytes.clone());
    list.push(
        json!({ "url": unsigned.url(), "fields": fields(&unsigned), "delivered": null,
                "reasons": (["missing_signature"; 3]) }),
    );

    // Altered once (and kept by the browser's cache, were it asked), then genuine: the
    // fresh copy is handed on.
    let flaky = Fragment::segment(23);
    let mut altered = flaky.bytes.clone();
    altered[200] ^= 0x04;
    files.insert(format!("{}.sig", flaky.url()), flaky.sign(&k.ingest));
    list.push(
        json!({ "url": flaky.url(), "fields": fields(&flaky), "delivered": flaky.bytes.len(),
                "reasons": ["digest_mismatch"] }),
    );
    let flaky = HashMap::from([(flaky.url(), (altered, flaky.bytes))]);
    LoaderFiles {
        files,
        flaky,
        held,
        expected: Value::Array(list),
    }
}

/// A server for one cluster's vectors: the test page, its script, the vectors, the trust
/// material and the loader's fragments, in front of a node's router. Returns its origin.
async fn serve(
    root_file: Vec<u8>,
    bundle: Vec<u8>,
    vectors: Value,
    files: HashMap<String, Vec<u8>>,
    flaky: Flaky,
    held: Vec<String>,
) -> String {
    let octets = |bytes: Vec<u8>| {
        move || {
            let bytes = bytes.clone();
            async move { ([(header::CONTENT_TYPE, "application/octet-stream")], bytes) }
        }
    };
    // The node as production serves it: an edge's router (of a cluster of its own: the edge
    // trusts nothing here, it only serves the pages and assets).
    let cluster = crate::support::edge::Cluster::new(SignatureAlgorithm::Ed25519);
    let edge = broadcast::Edge::new(
        crate::support::node(),
        crate::support::edge::edge_config(&cluster, crate::support::node_config()),
    )
    .expect("an edge");
    let vectors = vectors.to_string();
    let mut app = Router::new()
        .route(
            "/verify-test.html",
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
            "/verify-test.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    TEST_SCRIPT,
                )
            }),
        )
        .route(
            "/vectors.json",
            get(move || {
                let vectors = vectors.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], vectors) }
            }),
        )
        .route("/trust/v1/root.pub", get(octets(root_file)))
        .route("/trust/v1/bundle", get(octets(bundle)));
    for (path, bytes) in files {
        // A recording's init statement comes last, as it may under load: its first
        // segment's statement is in before it, and the player must still judge that
        // segment at the time its init says (the revoked key's backdated recording plays).
        if path.starts_with("/vod/") && path.ends_with("/init.mp4.sig") {
            let answer = octets(bytes);
            app = app.route(
                &path,
                get(move || async move {
                    tokio::time::sleep(INIT_STATEMENT_DELAY).await;
                    answer().await
                }),
            );
            continue;
        }
        app = app.route(&path, get(octets(bytes)));
    }
    for path in held {
        app = app.route(&path, get(std::future::pending::<axum::response::Response>));
    }
    for (path, (altered, genuine)) in flaky {
        let answer = move |headers: http::HeaderMap| {
            let fresh = headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("no-cache"));
            let (bytes, cache) = if fresh {
                (genuine.clone(), "no-store")
            } else {
                (altered.clone(), "public, max-age=31536000, immutable")
            };
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "video/mp4"),
                        (header::CACHE_CONTROL, cache),
                    ],
                    bytes,
                )
            }
        };
        app = app.route(&path, get(answer));
    }
    let app = app.fallback_service(edge.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// The root key file's bytes, as an edge serves it at /trust/v1/root.pub.
fn root_file(root: &RootKey) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("root.pub");
    root.public_key().write_file(&path).expect("write root.pub");
    std::fs::read(&path).expect("read root.pub")
}

/// SHA-256(algorithm code || root public key), hex: the fingerprint the player shows.
fn fingerprint(root: &RootKey) -> String {
    let public = root.public_key();
    let mut input = vec![root.algorithm().code()];
    input.extend_from_slice(public.public_key().as_bytes());
    hex::encode(sha256(&input))
}

const MODE_WEBCRYPTO: &str = "in this browser (WebCrypto)";
const MODE_LIBRARY: &str = "in this browser (library)";

/// Opens `url` and waits until `script` returns something, which it returns; on a timeout
/// the failure shows what the page holds (its verification tally, hls.js errors, log).
async fn open_and_wait(browser: &mut Browser, url: &str, what: &str, script: &str) -> Value {
    browser.goto(url).await.expect("open the page");
    match browser
        .wait_for(what, script, Value::Null, PAGE_LIMIT, |_| Ok(()))
        .await
    {
        Ok(value) => value,
        Err(error) => {
            let state = browser
                .execute(
                    "const s = window.sealcast || {}; const v = document.getElementById('video'); \
                     return { result: window.result, verification: s.verification, \
                              errors: s.errors, time: v && v.currentTime, \
                              ready: v && v.readyState, paused: v && v.paused, \
                              mediaError: v && v.error && v.error.message, \
                              buffered: v && Array.from({ length: v.buffered.length }, \
                                (_, i) => [v.buffered.start(i), v.buffered.end(i)]), \
                              hlsState: s.hls && s.hls.streamController && s.hls.streamController.state };",
                    Value::Null,
                )
                .await
                .unwrap_or_default();
            let notes = browser
                .events()
                .await
                .map(|e| format!("{}\nuncaught:\n{}", e.notes.join("\n"), e.errors.join("\n")))
                .unwrap_or_default();
            panic!("{url}: {error:#}\npage: {state}\nlog:\n{notes}")
        }
    }
}

/// Runs the page at `origin` (with `query`) and checks its verdicts against `expected`;
/// returns what the page found (its C2PA verdicts are checked by `check_c2pa`).
async fn run_page(
    browser: &mut Browser,
    origin: &str,
    query: &str,
    expected: &[Case],
    loader: &Value,
    mode: &str,
    fingerprint: &str,
) -> Value {
    let what = format!("{origin}/verify-test.html{query}");
    let result = open_and_wait(
        browser,
        &what,
        "the test page has its verdicts",
        "return window.result || null",
    )
    .await;
    assert_eq!(result["mode"], mode, "{what}: {result}");
    assert_eq!(result["fingerprint"], fingerprint, "{what}");
    assert_eq!(
        result["pin"]["pinned"], mode,
        "{what}: the page's own pin: {result}"
    );
    assert_eq!(result["pin"]["wrong"], "root_mismatch", "{what}: {result}");
    assert!(
        result["sidecar"]
            .as_str()
            .is_some_and(|u| u.ends_with("/live/demo/360p/7.3.m4s.sig?token=abc")),
        "{what}: the sidecar URL keeps the query after .sig: {}",
        result["sidecar"]
    );

    let mut wrong = Vec::new();
    let got = result["cases"].as_array().expect("cases");
    assert_eq!(got.len(), expected.len(), "{what}");
    for (case, outcome) in expected.iter().zip(got) {
        let name = case.name;
        assert_eq!(outcome["name"], name, "{what}");
        let verdicts = outcome["verdicts"].as_array().expect("verdicts");
        for (i, (step, verdict)) in case.steps.iter().zip(verdicts).enumerate() {
            if verdict != step.expect.label() {
                wrong.push(format!(
                    "{name}, step {} ({}): expected {}, got {verdict}",
                    i + 1,
                    step.url,
                    step.expect.label()
                ));
            }
        }
        assert_eq!(verdicts.len(), case.steps.len(), "{what}: {name}");
    }
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));

    // The loader: hls.js is handed a fragment's bytes (once, whole) only when it verified;
    // a refused one ends in an error hls.js retries, with nothing handed over.
    let fragments = result["loader"]["fragments"].as_array().expect("fragments");
    for (want, seen) in loader.as_array().expect("loader").iter().zip(fragments) {
        match want["delivered"].as_u64() {
            None if want["abort"] == true => {
                assert_eq!(seen["progress"], json!([]), "{what}: {seen}");
                assert_eq!(seen["success"], false, "{what}: {seen}");
                assert_eq!(seen["error"], "aborted", "{what}: {seen}");
            }
            Some(len) => {
                assert_eq!(seen["progress"], json!([len]), "{what}: {seen}");
                assert_eq!(seen["success"], true, "{what}: {seen}");
            }
            None => {
                assert_eq!(
                    seen["progress"],
                    json!([]),
                    "{what}: refused bytes handed on: {seen}"
                );
                assert_eq!(seen["success"], false, "{what}: {seen}");
                assert_eq!(seen["error"], 502, "{what}: {seen}");
            }
        }
    }
    // A check overtaken by a reposition, or let go of, leaves the position where it was.
    assert_eq!(
        result["overtaken"],
        json!({
            "repositioned": ["ok", "ok"],
            "taken": ["ok", "reordered_sequence"],
            "let_go": ["ok", "ok", "ok"],
            "wanted": ["ok", "ok", "repeated_sequence"],
        }),
        "{what}: {}",
        result["overtaken"]
    );
    let tally = &result["loader"]["tally"];
    assert_eq!(tally["verified"], 2, "{what}: {tally}");
    let reasons: Vec<&str> = tally["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    let wanted: Vec<Value> = loader
        .as_array()
        .expect("loader")
        .iter()
        .flat_map(|f| f["reasons"].as_array().cloned().unwrap_or_default())
        .collect();
    let wanted: Vec<&str> = wanted.iter().filter_map(Value::as_str).collect();
    assert_eq!(reasons, wanted, "{what}: {tally}");
    result
}

/// The C2PA cases as the page reads them: each step's kind and bytes in hex.
fn c2pa_json(cases: &[c2pa_vectors::Case]) -> Value {
    let cases: Vec<Value> = cases
        .iter()
        .map(|c| {
            let steps: Vec<Value> = c
                .steps
                .iter()
                .map(|s| {
                    let kind = match s.kind {
                        c2pa_vectors::Kind::Init => "init",
                        c2pa_vectors::Kind::Segment => "segment",
                        c2pa_vectors::Kind::Part => "part",
                    };
                    json!({ "kind": kind, "bytes": hex::encode(&s.bytes) })
                })
                .collect();
            let anchors: Vec<String> = c.anchors.iter().map(hex::encode).collect();
            json!({ "name": c.name, "root_pub": hex::encode(&c.root_pub),
                    "bundle": hex::encode(&c.bundle), "now_ms": c.now_ms,
                    "anchors": anchors, "steps": steps })
        })
        .collect();
    json!({ "cases": cases })
}

/// A rendition whose media carry C2PA data as an ingest writes it (its provenance CA
/// anchored by the page's root `k.root`, claim signer [`PROVENANCE_SIGNER`]), each with its
/// sidecar: the init segment, segment 30, segment 31 with a byte of its media changed after
/// its VSI was made (its sidecar signed over the changed bytes: only C2PA can tell) and
/// segment 32; then a publish session after a discontinuity, its own manifest and session
/// key: segment 33 before its init segment was loaded again (not C2PA-checked: the player
/// has not seen its manifest), its init segment and segment 34; then a third session whose
/// claim signer the root revoked (its credential id among the bundle's revocations,
/// returned here): its init segment is refused. Each with the verdict the player's session
/// must give. Second, a rung switch and back (`switch`): 360p's 30 and 31, 720p's init
/// and 32, then 360p's 31 (the previous number on another rung, as hls.js loads a rung it
/// switches back to from the playhead), 32 and 33 accepted; 360p's 32 once more refused
/// by C2PA (its numbers rise within one stay on a rendition).
fn provenance_fragments(k: &Keys) -> ProvenanceFragments {
    use certs::c2pa::{stream_assertion, LiveSigner, ProvenanceCa};
    use certs::signing::Validity;
    let org = "sealcast test cluster";
    let ca = ProvenanceCa::generate(org, k.now - 60).expect("a provenance CA");
    let der = ca.cert_der().expect("the CA's DER");
    let validity = Validity::new(k.now - 60, k.now + 86_400).expect("a validity");
    let anchor = k.root.anchor_provenance(&der, validity);
    let claim = std::sync::Arc::new(
        ca.issue(org, PROVENANCE_SIGNER, k.now - 60)
            .expect("a claim signer")
            .with_anchor(anchor.clone()),
    );
    let revoked = std::sync::Arc::new(
        ca.issue(org, PROVENANCE_SIGNER, k.now - 60)
            .expect("a claim signer")
            .with_anchor(anchor),
    );
    let revocation = k.root.revoke(revoked.credential_id(), k.now - 30).encode();
    // Co-signed by a key the root never certified.
    let stranger = std::sync::Arc::new(
        ca.issue(org, PROVENANCE_SIGNER, k.now - 60)
            .expect("a claim signer")
            .with_anchor(k.root.anchor_provenance(&der, validity))
            .with_cosigner(SigningKey::generate(k.root.algorithm()).expect("a key")),
    );
    // One rendition of one publish session: its init segment and its segments.
    let session_of = |claim: &std::sync::Arc<certs::c2pa::ClaimSigner>,
                      id: SessionId,
                      discontinuity: u64,
                      rendition: &'static str| {
        let live = LiveSigner::new(
            std::sync::Arc::clone(claim),
            k.now - 60,
            Duration::from_secs(86_400),
            1,
        );
        let label = LiveSigner::manifest_label(STREAM, &id.to_string(), rendition);
        let extra = vec![stream_assertion(STREAM, &id.to_string(), rendition)];
        let init = live
            .sign_init(
                &c2pa_vectors::plain_init(),
                &label,
                &format!("demo {rendition}"),
                extra,
            )
            .expect("a signed init segment");
        let init = Fragment {
            kind: FragmentKind::Init,
            rendition,
            stated_ms: k.now * 1000,
            bytes: init,
            ..Fragment::init()
        };
        let segment = move |seq: u32, alter: bool| {
            let data = c2pa_vectors::plain_fragment(seq);
            let vsi = live
                .sign_fragment(
                    &data,
                    domain::c2pa::vsi::Numbering::Fragment,
                    &label,
                    k.now,
                    90_000,
                    180_000,
                )
                .expect("a VSI");
            let mut bytes = [vsi, data].concat();
            if alter {
                if let Some(last) = bytes.last_mut() {
                    *last ^= 1;
                }
            }
            Fragment {
                rendition,
                session: id,
                discontinuity,
                bytes,
                ..Fragment::segment(u64::from(seq))
            }
        };
        (init, segment)
    };
    let session = |claim: &std::sync::Arc<certs::c2pa::ClaimSigner>, id, discontinuity| {
        session_of(claim, id, discontinuity, RENDITION)
    };
    let (init, segment) = session(&claim, SESSION, 0);
    let (later_init, later) = session(&claim, LATER_SESSION, 1);
    let (revoked_init, revoked_segment) = session(&revoked, BACKDATED_SESSION, 2);
    let (stranger_init, _) = session(&stranger, SESSION, 3);
    let list = [
        (init.clone(), "ok"),
        (segment(30, false), "ok"),
        (segment(31, true), "livevideo.segment.invalid"),
        (segment(32, false), "ok"),
        (later(33, false), "ok"),
        (
            Fragment {
                discontinuity: 1,
                session: LATER_SESSION,
                ..later_init.clone()
            },
            "ok",
        ),
        (later(34, false), "ok"),
        (
            Fragment {
                discontinuity: 2,
                session: BACKDATED_SESSION,
                ..revoked_init
            },
            "signingCredential.revoked",
        ),
        (revoked_segment(35, false), "livevideo.segment.invalid"),
        (
            Fragment {
                discontinuity: 3,
                ..stranger_init
            },
            "io.sealcast.cosignature.mismatch",
        ),
    ];
    let (other_init, other) = session_of(&claim, SESSION, 0, OTHER_RENDITION);
    let switch = [
        (init, "ok"),
        (segment(30, false), "ok"),
        (segment(31, false), "ok"),
        (other_init, "ok"),
        (other(32, false), "ok"),
        (segment(31, false), "ok"),
        (segment(32, false), "ok"),
        (segment(33, false), "ok"),
        // 33 was the switch fragment back onto this rung: the number before it is hls.js
        // backtracking, which our statements allow, and so C2PA's numbers start over.
        (segment(32, false), "ok"),
        // Onto the other rung, and hls.js backtracking there: the number before the switch
        // fragment, then the switch fragment again (our statements allow both, so C2PA's
        // numbers start over there too), then on.
        (other(34, false), "ok"),
        (other(33, false), "ok"),
        (other(34, false), "ok"),
        (other(35, false), "ok"),
    ];
    // A player starting right after its publisher came back: `init.mp4` is the later
    // session's (its URL is the rendition's), the playlist still lists the earlier one's
    // last segment before the discontinuity. That segment cannot be C2PA-checked with the
    // init in hand: not checked, not refused; the later session's are checked.
    let later_init = Fragment {
        discontinuity: 1,
        session: LATER_SESSION,
        ..later_init
    };
    let restart = [
        (later_init.clone(), "ok"),
        (segment(32, false), "ok"),
        (later(33, false), "ok"),
    ];
    // The same segment when the playlist lists no later session (the init in hand is not
    // the newest session's, it is the wrong one): refused, as before.
    let stale = [
        (later_init, "ok"),
        (segment(32, false), "livevideo.segment.invalid"),
    ];
    let as_json = |list: &[(Fragment, &str)], newest: Option<u64>| -> Value {
        list.iter()
            .map(|(f, want)| {
                json!({ "url": f.url(), "bytes": hex::encode(&f.bytes),
                        "sidecar": hex::encode(f.sign(&k.ingest)), "sequence": f.sequence,
                        "discontinuity": f.discontinuity, "newest": newest,
                        "duration": SEGMENT_MS as f64 / 1e3, "want": want })
            })
            .collect()
    };
    ProvenanceFragments {
        list: as_json(&list, None),
        switch: as_json(&switch, None),
        restart: as_json(&restart, Some(1)),
        stale: as_json(&stale, Some(0)),
        revocation,
    }
}

/// What [`provenance_fragments`] makes.
struct ProvenanceFragments {
    /// One rendition across publish sessions.
    list: Value,
    /// A rung switch and back, then a switch with hls.js backtracking.
    switch: Value,
    /// A player starting over after a reconnect, on the earlier session's last segment.
    restart: Value,
    /// The same segment with an init segment that is not the newest session's.
    stale: Value,
    /// The revocation of the third session's claim signer.
    revocation: Vec<u8>,
}

/// The player's session on `provenance_fragments` (`result.provenance` of the test page):
/// every verdict, the claim signer named, the counts (segment 33 unchecked), and the C2PA
/// refusal in `refused`.
fn check_provenance(what: &str, result: &Value, list: &Value) {
    let seen = &result["provenance"];
    check_verdicts(what, seen, list);
    let tally = &seen["provenance"];
    assert_eq!(tally["signer"], PROVENANCE_SIGNER, "{what}: {seen}");
    assert_eq!(tally["verified"], 5, "{what}: {seen}");
    assert_eq!(tally["refused"], 4, "{what}: {seen}");
    assert_eq!(tally["unchecked"], 1, "{what}: {seen}");
    assert_eq!(
        seen["refused"],
        json!([
            "livevideo.segment.invalid",
            "signingCredential.revoked",
            "livevideo.segment.invalid",
            "io.sealcast.cosignature.mismatch"
        ]),
        "{what}: {seen}"
    );
}

/// The player session's verdict on each fragment of `list` (`seen`: what the page's
/// `provenance` function returned for it) is the one the fragment wants.
fn check_verdicts(what: &str, seen: &Value, list: &Value) {
    let want: Vec<&Value> = list
        .as_array()
        .expect("fragments")
        .iter()
        .map(|f| &f["want"])
        .collect();
    let got: Vec<&Value> = seen["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .collect();
    assert_eq!(got, want, "{what}: {seen}");
}

/// verify.js's C2PA verdicts (`result.c2pa` of the test page) against the vectors': the
/// verdict or refusal code of every step, and the claim signer of every verified init.
fn check_c2pa(what: &str, result: &Value, expected: &[c2pa_vectors::Case]) {
    let got = result["c2pa"].as_array().expect("C2PA verdicts");
    assert_eq!(got.len(), expected.len(), "{what}: {}", result["c2pa"]);
    let mut wrong = Vec::new();
    for (case, outcome) in expected.iter().zip(got) {
        assert_eq!(outcome["name"], case.name, "{what}");
        let verdicts = outcome["verdicts"].as_array().expect("verdicts");
        assert_eq!(verdicts.len(), case.steps.len(), "{what}: {}", case.name);
        // Every verified init segment's co-signature was checked, and verified (where the
        // manifest carries one: ours).
        let inits = case
            .steps
            .iter()
            .filter(|s| {
                matches!(s.kind, c2pa_vectors::Kind::Init)
                    && matches!(s.expect, c2pa_vectors::Expect::Verified)
            })
            .count()
            * usize::from(case.cosigned);
        let cosigned = outcome["cosigned"].as_array().expect("co-signatures");
        assert_eq!(cosigned.len(), inits, "{what}: {}: {outcome}", case.name);
        assert!(
            cosigned.iter().all(|v| v == true),
            "{what}: {}: {outcome}",
            case.name
        );
        for (i, (step, verdict)) in case.steps.iter().zip(verdicts).enumerate() {
            let want = match step.expect {
                c2pa_vectors::Expect::Verified => "verified",
                c2pa_vectors::Expect::Unsigned => "unsigned",
                c2pa_vectors::Expect::Refused(code) => code,
            };
            if verdict["verdict"] != want {
                wrong.push(format!(
                    "{}, step {}: expected {want}, got {verdict}",
                    case.name,
                    i + 1
                ));
            }
            let init = matches!(step.kind, c2pa_vectors::Kind::Init);
            if init && want == "verified" && verdict["signer"] != case.signer {
                wrong.push(format!(
                    "{}, step {}: signed by {}, not {}",
                    case.name,
                    i + 1,
                    verdict["signer"],
                    case.signer
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{what}, C2PA:\n{}", wrong.join("\n"));
    // Changed C2PA data: every step of every round got a verdict or a C2PA code.
    let mutations = &result["c2paMutations"];
    let steps = expected.first().map_or(0, |c| c.steps.len());
    assert_eq!(mutations["steps"], steps, "{what}: {mutations}");
    assert_eq!(mutations["runs"], 210 * steps, "{what}: {mutations}");
    assert_eq!(mutations["odd"], json!([]), "{what}: {mutations}");
}

/// The player page itself (the node's `/`, its module script and CSP): it fetches the
/// root key, shows how it verifies and the root's fingerprint, and throws nothing.
async fn check_player_page(
    browser: &mut Browser,
    origin: &str,
    query: &str,
    mode: &str,
    fingerprint: &str,
) {
    let url = format!("{origin}/{query}");
    let seen = open_and_wait(
        browser,
        &url,
        "the player shows how it verifies",
        "const v = window.sealcast && window.sealcast.verification; \
             if (!v || !v.mode) return null; \
             return { mode: v.mode, fingerprint: v.fingerprint, \
                      shownMode: document.getElementById('ov-verify-mode').textContent, \
                      shownRoot: document.getElementById('ov-root').textContent };",
    )
    .await;
    let events = browser.events().await.expect("page events");
    assert!(
        events.errors.is_empty(),
        "{url}: uncaught {:?}",
        events.errors
    );
    assert_eq!(seen["mode"], mode, "{url}: {seen}");
    assert_eq!(seen["fingerprint"], fingerprint, "{url}: {seen}");
    assert_eq!(seen["shownMode"], mode, "{url}: {seen}");
    let shown = seen["shownRoot"]
        .as_str()
        .unwrap_or_default()
        .replace(' ', "");
    assert_eq!(shown, fingerprint, "{url}: {seen}");
}

/// A recording of 6 s of CMAF (ffmpeg, 320x180 H.264, three 2 s segments), signed as an
/// ingest would sign it: the files the node would serve under
/// `/vod/demo/{session}/360p/` (with their sidecars) and the master playlist, by path.
/// `tamper` flips one byte of segment 1 (its sidecar stays the genuine one).
fn recording(k: &Keys, session: SessionId, tamper: bool) -> HashMap<String, Vec<u8>> {
    let tree = format!("/vod/{STREAM}/{session}");
    recorded(&tree, session, &k.ingest, k.now * 1000, tamper)
}

/// The files of a recording made by `recording`, under `tree` (`/vod/{stream}/{id}` or,
/// for a live stream that ended, `/live/{stream}`), signed by `signer`, its rendition
/// described (so its segments count as signed, in a recording) at `described_ms`.
fn recorded(
    tree: &str,
    session: SessionId,
    signer: &SigningKey,
    described_ms: u64,
    tamper: bool,
) -> HashMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new("ffmpeg")
        .current_dir(dir.path())
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args([
            "testsrc2=size=320x180:rate=30",
            "-t",
            "6",
            "-c:v",
            "libx264",
        ])
        .args(["-preset", "veryfast", "-g", "60", "-keyint_min", "60"])
        .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p", "-f", "hls"])
        .args([
            "-hls_time",
            "2",
            "-hls_segment_type",
            "fmp4",
            "-hls_playlist_type",
            "vod",
        ])
        .args(["-hls_fmp4_init_filename", "init.mp4"])
        .args(["-hls_segment_filename", "seg%d.m4s", "out.m3u8"])
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg: {status}");
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect("ffmpeg output");
    let base = format!("{tree}/{RENDITION}");
    let mut files = HashMap::new();
    let init = Fragment {
        stated_ms: described_ms,
        bytes: read("init.mp4"),
        ..Fragment::init()
    };
    files.insert(format!("{base}/init.mp4.sig"), init.sign(signer));
    files.insert(format!("{base}/init.mp4"), init.bytes);
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    for sequence in 0..3u64 {
        let segment = Fragment {
            session,
            bytes: read(&format!("seg{sequence}.m4s")),
            ..Fragment::segment(sequence)
        };
        let sidecar = segment.sign(signer);
        let mut bytes = segment.bytes;
        if tamper && sequence == 1 {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
        }
        files.insert(format!("{base}/{sequence}.m4s.sig"), sidecar);
        files.insert(format!("{base}/{sequence}.m4s"), bytes);
        playlist += &format!("#EXTINF:{:.5},\n{sequence}.m4s\n", SEGMENT_MS as f64 / 1e3);
    }
    playlist += "#EXT-X-ENDLIST\n";
    files.insert(format!("{base}/index.m3u8"), playlist.into_bytes());
    let master = format!(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180\n{RENDITION}/index.m3u8\n"
    );
    files.insert(format!("{tree}/master.m3u8"), master.into_bytes());
    files
}

/// The player page plays a recording: every fragment hls.js is handed was verified first,
/// and a tampered segment is refused and never reaches the media buffer.
async fn check_playback(browser: &mut Browser, origin: &str, good: SessionId, tampered: SessionId) {
    let state = "const v = window.sealcast.verification; \
                 const video = document.getElementById('video'); const b = video.buffered; \
                 const s = { mode: v.mode, verified: v.verified, refused: v.refused, \
                             time: video.currentTime, buffered: b.length ? b.end(b.length - 1) : 0 };";
    let url = format!("{origin}/#vod/{STREAM}/{good}");
    let seen = open_and_wait(
        browser,
        &url,
        "all of the recording verified and played past its first segment",
        &format!(
            "{state} if (s.refused.length) return {{ failed: JSON.stringify(s) }}; \
             return s.verified >= 4 && s.time > 2.5 ? s : null;"
        ),
    )
    .await;
    assert_eq!(seen["mode"], MODE_WEBCRYPTO, "{url}: {seen}");

    let url = format!("{origin}/#vod/{STREAM}/{tampered}");
    let seen = open_and_wait(
        browser,
        &url,
        "the tampered segment was refused",
        &format!("{state} return s.refused.length ? s : null;"),
    )
    .await;
    let refused = &seen["refused"][0];
    assert_eq!(refused["reason"], "digest_mismatch", "{url}: {seen}");
    let segment = format!("/vod/{STREAM}/{tampered}/{RENDITION}/1.m4s");
    assert!(
        refused["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&segment)),
        "{url}: {seen}"
    );
    // Segment 0 played; segment 1's bytes never reached the buffer, so nothing past 2 s did.
    let buffered = seen["buffered"].as_f64().unwrap_or(f64::MAX);
    assert!(buffered <= 2.1, "{url}: buffered to {buffered} s: {seen}");
    let events = browser.events().await.expect("page events");
    assert!(
        events.errors.is_empty(),
        "{url}: uncaught {:?}",
        events.errors
    );
}

/// Issue 45 item 4, in the player itself: media signed by a stolen key that the root has
/// since revoked, its rendition described ten minutes before the revocation, served as a
/// live stream that ended (`#EXT-X-ENDLIST`, `#EXT-X-PLAYLIST-TYPE:VOD` under `/live/`): every
/// fragment is refused (`revoked_key`) and nothing plays, because live is the viewer's pick
/// (`#live/…`), not the playlist's say. The same media as the recording `backdated`
/// (`#vod/…`) plays: a recording's statements count as signed when they say.
async fn check_no_downgrade(browser: &mut Browser, origin: &str, backdated: SessionId) {
    let state = "const v = window.sealcast.verification; \
                 const video = document.getElementById('video'); const b = video.buffered; \
                 const s = { verified: v.verified, refused: v.refused, refusedCount: v.refusedCount, \
                             time: video.currentTime, buffered: b.length ? b.end(b.length - 1) : 0 };";
    // A private stream's link: the page plays it without looking for it in the list.
    let url = format!("{origin}/#live/{STREAM}?token=t");
    let seen = open_and_wait(
        browser,
        &url,
        "the ended live stream's fragments are refused",
        &format!("{state} return s.refusedCount >= 2 ? s : null;"),
    )
    .await;
    let refused = seen["refused"].as_array().cloned().unwrap_or_default();
    assert!(
        refused.iter().all(|r| r["reason"] == "revoked_key"),
        "{url}: {seen}"
    );
    assert_eq!(seen["verified"], 0, "{url}: {seen}");
    assert_eq!(seen["buffered"].as_f64(), Some(0.0), "{url}: {seen}");

    // A fresh page: nothing of the refused playback can still be counting.
    browser.goto("about:blank").await.expect("a blank page");
    let url = format!("{origin}/#vod/{STREAM}/{backdated}");
    open_and_wait(
        browser,
        &url,
        "the recording signed before the revocation verified and played",
        &format!(
            "{state} if (s.refused.length) return {{ failed: JSON.stringify(s) }}; \
             return s.verified >= 4 && s.time > 2.5 ? s : null;"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_verifies_every_fragment_itself() {
    let mut browser = Browser::start(800, 600).await.expect("Chromium");
    // The C2PA cases carry their own root and clock: made once, run on every page.
    let c2pa_cases = c2pa_vectors::cases();
    let c2pa_file = c2pa_json(&c2pa_cases).to_string().into_bytes();
    for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        // The real clock: the player page plays recordings signed at it.
        let keys = Keys::new(algorithm, now_secs());
        let ProvenanceFragments {
            list: provenance,
            switch: provenance_switch,
            restart: provenance_restart,
            stale: provenance_stale,
            revocation,
        } = provenance_fragments(&keys);
        let mut bundle = keys.bundle();
        bundle.revocations.push(revocation);
        let bundle = bundle.encode();
        let expected = vectors::cases(&keys);
        let LoaderFiles {
            mut files,
            flaky,
            held,
            expected: loader,
        } = loader_files(&keys);
        // Real playback once, on the default algorithm.
        let playback = algorithm == SignatureAlgorithm::MlDsa65;
        if playback {
            files.extend(recording(&keys, SESSION, false));
            files.extend(recording(&keys, LATER_SESSION, true));
            // Signed by the revoked key, described ten minutes before its revocation: as a
            // live stream that ended, and as a recording.
            let backdated = keys.now * 1000 - 600_000;
            let live = format!("/live/{STREAM}");
            files.extend(recorded(&live, SESSION, &keys.revoked, backdated, false));
            let vod = format!("/vod/{STREAM}/{BACKDATED_SESSION}");
            files.extend(recorded(
                &vod,
                BACKDATED_SESSION,
                &keys.revoked,
                backdated,
                false,
            ));
        }
        files.insert("/c2pa-vectors.json".to_owned(), c2pa_file.clone());
        let vectors = json!({ "cases": vectors::to_json(&expected), "loader": loader,
                              "provenance": provenance,
                              "provenanceSwitch": provenance_switch,
                              "provenanceRestart": provenance_restart,
                              "provenanceStale": provenance_stale });
        let print = fingerprint(&keys.root);
        let root_file = root_file(&keys.root);
        // index.html tells operators to pin `tail -c +16 root.pub | sha256sum`.
        assert_eq!(hex::encode(sha256(&root_file[15..])), print);
        let origin = serve(root_file, bundle, vectors, files, flaky, held).await;
        for (query, mode) in [("", MODE_WEBCRYPTO), ("?verify=library", MODE_LIBRARY)] {
            let result = run_page(
                &mut browser,
                &origin,
                query,
                &expected,
                &loader,
                mode,
                &print,
            )
            .await;
            let what = format!("{origin}/verify-test.html{query}");
            check_c2pa(&what, &result, &c2pa_cases);
            check_provenance(&what, &result, &provenance);
            check_verdicts(&what, &result["provenanceSwitch"], &provenance_switch);
            check_verdicts(&what, &result["provenanceRestart"], &provenance_restart);
            let restarted = &result["provenanceRestart"]["provenance"];
            assert_eq!(restarted["unchecked"], 1, "{what}: {restarted}");
            assert_eq!(restarted["verified"], 2, "{what}: {restarted}");
            check_verdicts(&what, &result["provenanceStale"], &provenance_stale);
            check_player_page(&mut browser, &origin, query, mode, &print).await;
        }
        if playback {
            check_playback(&mut browser, &origin, SESSION, LATER_SESSION).await;
            check_no_downgrade(&mut browser, &origin, BACKDATED_SESSION).await;
        }
    }
    browser.quit().await.expect("quit");
}

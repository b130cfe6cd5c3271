//! Viewers verify what they play (issue 31), end to end: a tampering proxy of the test's
//! own between the viewer and the load balancer changes one thing at a time, and the
//! player in Chromium (on WebCrypto, then on the vendored library) and `sealcast verify`
//! each refuse it with its reason, while playback goes on.
//!
//! The proxy (an axum server on `http://127.0.0.1:0`, a secure context for the browser)
//! forwards every request to the load balancer and, once armed, alters the first thing
//! that fits its mode:
//!
//! | mode | what changes | the refusal |
//! |---|---|---|
//! | `FlipPart` | one byte of the next part | `digest_mismatch` |
//! | `Foreign` | the next segment or part, with its sidecar, replaced by another stream's genuine one signed by the same ingest | `wrong_stream` |
//! | `Older` | the next segment or part, with its sidecar, replaced by an older one of the same stream | `wrong_sequence` |
//! | `SkipPart` | the media playlist's last part line, inside the open segment, pointed at the part after it | `wrong_part` |
//! | `NoSignature` | the next sidecar answered 404 | `missing_signature` |
//!
//! Tampered answers are `no-store`, so the retry a refusal leads to fetches the genuine
//! bytes and playback carries on.
//!
//! Besides the modes, the proxy can flip a byte in one media response of every N
//! ([`Proxy::flip_every`], issue 45 item 18) and keep the answer's own `Cache-Control`
//! (a year, immutable, for a segment): the browser's cache would hand back the altered
//! bytes to a plain retry, so the player must fetch a fresh copy past it, and playback
//! must go on. That no refused byte reached the media buffer is read
//! from the loader's own record (`verification.handed`: every load it handed to hls.js,
//! by id; a refusal carries its load's id), not from the overlay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::{json, Value};
use testkit::browser::Browser;
use testkit::ffmpeg::TestPattern;
use tokio::sync::OnceCell;

use crate::cluster::{Cluster, BIN};

/// The rendition tampered with: the fixture's light stream has the source rung only.
const RENDITION: &str = "src";

/// What the proxy alters once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    FlipPart,
    Foreign,
    Older,
    SkipPart,
    NoSignature,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::FlipPart,
        Mode::Foreign,
        Mode::Older,
        Mode::SkipPart,
        Mode::NoSignature,
    ];
}

/// What the proxy did in the current arming.
#[derive(Debug, Default)]
struct Armed {
    mode: Option<Mode>,
    /// The fragment path altered (without `.sig`).
    victim: Option<String>,
    media_done: bool,
    sig_done: bool,
    /// The refusal this arming must cause.
    expect: Option<&'static str>,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    stream: String,
    /// The other stream whose genuine fragments stand in for ours (`Foreign`).
    foreign: String,
    armed: Mutex<Armed>,
    /// Flip a byte in one media response of this many (0: none), answers kept cacheable.
    flip_every: AtomicU64,
    /// Media responses of the stream seen while `flip_every` is on.
    media_seen: AtomicU64,
    /// The stand-in for the victim (media, sidecar), made once per arming.
    substitute: Mutex<Arc<OnceCell<Substitute>>>,
}

/// A victim's stand-in: its media and its sidecar.
type Substitute = (Vec<u8>, Vec<u8>);

/// The tampering proxy.
pub(crate) struct Proxy {
    pub(crate) origin: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy to the cluster's load balancer that alters `stream`'s fragments (with
    /// `foreign`'s, in `Foreign` mode).
    pub(crate) async fn start(cluster: &Cluster, stream: &str, foreign: &str) -> Result<Self> {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(cluster.ca())?)?;
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(30))
            .build()?;
        let shared = Arc::new(Shared {
            upstream: cluster.https.clone(),
            client,
            stream: stream.to_owned(),
            foreign: foreign.to_owned(),
            armed: Mutex::new(Armed::default()),
            flip_every: AtomicU64::new(0),
            media_seen: AtomicU64::new(0),
            substitute: Mutex::new(Arc::new(OnceCell::new())),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Proxy {
            origin,
            shared,
            task,
        })
    }

    /// Alters the next thing `mode` fits.
    pub(crate) fn arm(&self, mode: Mode) {
        *self.shared.substitute.lock() = Arc::new(OnceCell::new());
        let expect = match mode {
            Mode::FlipPart => "digest_mismatch",
            Mode::Foreign => "wrong_stream",
            Mode::Older => "wrong_sequence",
            // Decided when the playlist is rewritten.
            Mode::SkipPart => "wrong_part",
            Mode::NoSignature => "missing_signature",
        };
        *self.shared.armed.lock() = Armed {
            mode: Some(mode),
            expect: Some(expect),
            ..Armed::default()
        };
    }

    /// From now on flips a byte in one of every `n` media responses (segments and parts)
    /// of the stream, keeping their `Cache-Control`, counting them afresh; 0 stops it (the
    /// count stays, for [`Proxy::media_seen`]).
    pub(crate) fn flip_every(&self, n: u64) {
        if n > 0 {
            self.shared.media_seen.store(0, Ordering::SeqCst);
        }
        self.shared.flip_every.store(n, Ordering::SeqCst);
    }

    /// Media responses seen since [`Proxy::flip_every`] last started flipping.
    pub(crate) fn media_seen(&self) -> u64 {
        self.shared.media_seen.load(Ordering::SeqCst)
    }

    /// Stops altering; what the arming altered (its victim's path) and the refusal due.
    pub(crate) fn disarm(&self) -> (Option<String>, Option<&'static str>) {
        let mut armed = self.shared.armed.lock();
        let done = (armed.victim.take(), armed.expect);
        *armed = Armed::default();
        done
    }

    /// What the current arming altered so far.
    pub(crate) fn victim(&self) -> (Option<String>, Option<&'static str>) {
        let armed = self.shared.armed.lock();
        (armed.victim.clone(), armed.expect)
    }
}

/// `/live/{stream}/{rendition}/{seq}.m4s` or `{seq}.{part}.m4s`: (sequence, part).
fn fragment_of(path: &str, stream: &str) -> Option<(u64, Option<u32>)> {
    let file = path.strip_prefix(&format!("/live/{stream}/{RENDITION}/"))?;
    let stem = file.strip_suffix(".m4s")?;
    match stem.split_once('.') {
        None => Some((stem.parse().ok()?, None)),
        Some((seq, part)) => Some((seq.parse().ok()?, Some(part.parse().ok()?))),
    }
}

/// What to do with one request.
enum Action {
    Pass,
    FlipMedia,
    /// Flip a byte, keeping the answer cacheable.
    FlipCacheable,
    Substitute {
        sig: bool,
        victim: String,
    },
    NotFound,
    RewritePlaylist,
}

fn decide(shared: &Shared, path: &str) -> Action {
    let every = shared.flip_every.load(Ordering::SeqCst);
    if every > 0 && fragment_of(path, &shared.stream).is_some() {
        let seen = shared.media_seen.fetch_add(1, Ordering::SeqCst) + 1;
        if seen.is_multiple_of(every) {
            return Action::FlipCacheable;
        }
        return Action::Pass;
    }
    let mut armed = shared.armed.lock();
    let Some(mode) = armed.mode else {
        return Action::Pass;
    };
    if mode == Mode::SkipPart {
        let playlist = format!("/live/{}/{RENDITION}/index.m3u8", shared.stream);
        if path == playlist && armed.victim.is_none() {
            return Action::RewritePlaylist;
        }
        return Action::Pass;
    }
    let (media, sig) = match path.strip_suffix(".sig") {
        Some(media) => (media, true),
        None => (path, false),
    };
    let Some((_, part)) = fragment_of(media, &shared.stream) else {
        return Action::Pass;
    };
    if armed.victim.is_none() {
        let fits = match mode {
            Mode::FlipPart => part.is_some() && !sig,
            Mode::NoSignature => sig,
            _ => true,
        };
        if !fits {
            return Action::Pass;
        }
        armed.victim = Some(media.to_owned());
    }
    if armed.victim.as_deref() != Some(media) {
        return Action::Pass;
    }
    match (mode, sig) {
        (Mode::FlipPart, false) if !armed.media_done => {
            armed.media_done = true;
            Action::FlipMedia
        }
        (Mode::NoSignature, true) if !armed.sig_done => {
            armed.sig_done = true;
            Action::NotFound
        }
        (Mode::Foreign | Mode::Older, false) if !armed.media_done => {
            armed.media_done = true;
            Action::Substitute {
                sig: false,
                victim: media.to_owned(),
            }
        }
        (Mode::Foreign | Mode::Older, true) if !armed.sig_done => {
            armed.sig_done = true;
            Action::Substitute {
                sig: true,
                victim: media.to_owned(),
            }
        }
        _ => Action::Pass,
    }
}

/// Forwards one request to the load balancer, altering it as armed.
async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match forward_inner(&shared, request).await {
        Ok(response) => response,
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(format!("proxy: {e:#}")))
            .unwrap_or_default(),
    }
}

async fn forward_inner(shared: &Shared, request: Request) -> Result<Response> {
    let path = request.uri().path().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    let action = decide(shared, &path);
    if let Action::NotFound = action {
        return Ok(tampered(StatusCode::NOT_FOUND, "text/plain", Vec::new()));
    }
    if let Action::Substitute { sig, victim } = &action {
        let cell = Arc::clone(&shared.substitute.lock());
        let (media, sidecar) = cell
            .get_or_try_init(|| substitute(shared, victim))
            .await?
            .clone();
        let body = if *sig { sidecar } else { media };
        let kind = if *sig {
            "application/octet-stream"
        } else {
            "video/mp4"
        };
        return Ok(tampered(StatusCode::OK, kind, body));
    }
    let mut upstream = shared.client.get(format!("{}{target}", shared.upstream));
    for name in [
        header::COOKIE,
        header::RANGE,
        header::IF_NONE_MATCH,
        header::ACCEPT,
    ] {
        if let Some(value) = request.headers().get(&name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut body = answer.bytes().await?.to_vec();
    let mut altered = false;
    match action {
        Action::FlipCacheable if status == StatusCode::OK && !body.is_empty() => {
            let middle = body.len() / 2;
            body[middle] ^= 0x01;
        }
        Action::FlipMedia if status == StatusCode::OK && !body.is_empty() => {
            let middle = body.len() / 2;
            body[middle] ^= 0x01;
            altered = true;
        }
        Action::RewritePlaylist if status == StatusCode::OK => {
            if let Some((text, victim, expect)) =
                skip_a_part(&String::from_utf8_lossy(&body), &path)
            {
                body = text.into_bytes();
                let mut armed = shared.armed.lock();
                armed.victim = Some(victim);
                armed.expect = Some(expect);
                altered = true;
            }
        }
        _ => {}
    }
    let mut response = Response::builder().status(status);
    for (name, value) in headers.iter() {
        let keep = [
            header::CONTENT_TYPE,
            header::CACHE_CONTROL,
            header::ETAG,
            header::SET_COOKIE,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::RETRY_AFTER,
        ]
        .contains(name)
            || name.as_str().starts_with("x-sealcast-");
        if keep && !(altered && name == header::CACHE_CONTROL) {
            response = response.header(name, value);
        }
    }
    if altered {
        response = response.header(header::CACHE_CONTROL, "no-store");
    }
    Ok(response.body(Body::from(body))?)
}

/// An answer made here: never kept by a cache, so a retry asks again.
fn tampered(status: StatusCode, kind: &'static str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The stand-in for `victim` (media, sidecar): another stream's latest fragment of the
/// same kind (`Foreign`), or an older one of the same stream (`Older`).
async fn substitute(shared: &Shared, victim: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let mode = shared.armed.lock().mode;
    let (sequence, part) = fragment_of(victim, &shared.stream).context("not a fragment")?;
    let candidates: Vec<String> = match mode {
        Some(Mode::Foreign) => {
            let foreign = &shared.foreign;
            let playlist = get(shared, &format!("/live/{foreign}/{RENDITION}/index.m3u8")).await?;
            let text = String::from_utf8_lossy(&playlist).into_owned();
            let uri = match part {
                None => text
                    .lines()
                    .rev()
                    .find(|l| l.ends_with(".m4s") && !l.starts_with('#')),
                Some(_) => text
                    .lines()
                    .rev()
                    .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
                    .find_map(|l| l.split("URI=\"").nth(1))
                    .and_then(|rest| rest.split('"').next()),
            }
            .context("nothing listed for the foreign stream")?;
            vec![format!("/live/{foreign}/{RENDITION}/{uri}")]
        }
        _ => {
            let base = format!("/live/{}/{RENDITION}", shared.stream);
            match part {
                None => (1..=3)
                    .rev()
                    .filter_map(|back| sequence.checked_sub(back))
                    .map(|s| format!("{base}/{s}.m4s"))
                    .collect(),
                Some(p) => {
                    let before = sequence.checked_sub(1).context("no older segment")?;
                    vec![
                        format!("{base}/{before}.{p}.m4s"),
                        format!("{base}/{before}.0.m4s"),
                    ]
                }
            }
        }
    };
    for path in candidates {
        if let (Ok(media), Ok(sidecar)) = (
            get(shared, &path).await,
            get(shared, &format!("{path}.sig")).await,
        ) {
            return Ok((media, sidecar));
        }
    }
    bail!("no stand-in for {victim}")
}

async fn get(shared: &Shared, path: &str) -> Result<Vec<u8>> {
    let response = shared
        .client
        .get(format!("{}{path}", shared.upstream))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.bytes().await?.to_vec())
}

/// The playlist with its last part line pointing at the part its preload hint names: the
/// new text, the part path now listed in the wrong place, and the refusal due.
fn skip_a_part(text: &str, playlist_path: &str) -> Option<(String, String, &'static str)> {
    let uri_of = |line: &str| -> Option<String> {
        line.split("URI=\"")
            .nth(1)?
            .split('"')
            .next()
            .map(str::to_owned)
    };
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.iter().rposition(|l| l.starts_with("#EXT-X-PART:"))?;
    let listed = uri_of(lines[last])?;
    let hinted = lines
        .iter()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .copied()
        .and_then(uri_of)?;
    // Only inside the open segment: when the last listed part ends a finished segment, a
    // reader may fetch that segment whole and never ask for the part the line names (the
    // next playlist, a part later, is rewritten instead).
    let seq = |uri: &str| uri.split('.').next().map(str::to_owned);
    if seq(&listed) != seq(&hinted) {
        return None;
    }
    // And only for a part that will exist: a 2 s segment of 0.333 s parts always has parts
    // 0 to 4, while a hinted sixth or seventh part may never be made (the segment ends
    // first), and its 404 is no refusal.
    let index = hinted
        .split('.')
        .nth(1)
        .and_then(|i| i.parse::<u32>().ok())?;
    if index > 4 {
        return None;
    }
    let expect = "wrong_part";
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out[last] = lines[last].replace(&format!("URI=\"{listed}\""), &format!("URI=\"{hinted}\""));
    let dir = playlist_path.rsplit_once('/')?.0;
    Some((out.join("\n") + "\n", format!("{dir}/{hinted}"), expect))
}

/// A second stream, `name`, whose genuine fragments stand in for ours; kept publishing
/// while the returned publisher lives.
async fn foreign_stream(cluster: &Cluster, name: &str) -> Result<testkit::ffmpeg::Publisher> {
    let key = cluster.add_stream(name).await?;
    let publisher = TestPattern::new(426, 240, 30, 600).publish(&cluster.rtmp_url(&key))?;
    cluster
        .wait_media(name, RENDITION, 3, Duration::from_secs(60))
        .await
        .context("the foreign stream")?;
    Ok(publisher)
}

/// The page's verification tally, what the loader handed to hls.js, and what the C2PA
/// data said (`provenance`, and the overlay's line of it).
const TALLY: &str = "const s = window.sealcast; const v = s.verification; \
    const video = document.getElementById('video'); \
    return { mode: v.mode, verified: v.verified, refusedCount: v.refusedCount, \
             refused: v.refused, handed: (v.handed || []).map((h) => h.id), \
             time: video.currentTime, paused: video.paused, errors: s.errors, \
             provenance: v.provenance, \
             shownProvenance: document.getElementById('ov-provenance').textContent };";

/// The C2PA status codes the player refuses with (verify.js `C2PA`).
const C2PA_CODES: [&str; 10] = [
    "livevideo.init.invalid",
    "signingCredential.untrusted",
    "signingCredential.expired",
    "signingCredential.revoked",
    "io.sealcast.cosignature.mismatch",
    "claimSignature.mismatch",
    "assertion.hashedURI.mismatch",
    "assertion.bmffHash.mismatch",
    "livevideo.sessionkey.invalid",
    "livevideo.segment.invalid",
];

/// The player at `origin` (a cache in front of the cluster, say) plays `stream`, verifies
/// its fragments and the C2PA data in them, names the claim signer and shows it in the
/// overlay, and refuses nothing; gives the page's C2PA tally.
pub(crate) async fn player_provenance_through(origin: &str, stream: &str) -> Result<Value> {
    let mut browser = Browser::start(960, 540).await?;
    let outcome = async {
        browser.goto(&format!("{origin}/#live/{stream}")).await?;
        browser
            .wait_for(
                "the player verifies C2PA, plays and shows who signed (the overlay is redrawn on its own clock)",
                &format!(
                    "{TALLY_PREDICATE} const p = window.sealcast.verification.provenance; \
                     const shown = document.getElementById('ov-provenance').textContent; \
                     return t.time > 2 && p && p.verified >= 5 && shown.startsWith('signed by') ? t : null;"
                ),
                Value::Null,
                Duration::from_secs(60),
                |_| Ok(()),
            )
            .await?;
        let end = browser.execute(TALLY, Value::Null).await?;
        anyhow::ensure!(end["refusedCount"] == 0, "refusals: {end}");
        let provenance = provenance_shown(&end)?;
        Ok(provenance.clone())
    }
    .await;
    let outcome = with_page_state(&browser, outcome).await;
    browser.quit().await?;
    outcome
}

/// `outcome`, an error carrying the page's tally (what a failure's reader needs).
async fn with_page_state<T>(browser: &Browser, outcome: Result<T>) -> Result<T> {
    match outcome {
        Ok(v) => Ok(v),
        Err(e) => {
            let state = browser
                .execute(TALLY, Value::Null)
                .await
                .unwrap_or_default();
            Err(e.context(format!("the page: {state}")))
        }
    }
}

/// The page's C2PA tally when the C2PA data in the media verified (issue 47): the init
/// segment's claim signer is named and shown in the overlay, at least five fragments and
/// the manifest's co-signature verified, and nothing was refused by a C2PA code.
fn provenance_shown(end: &Value) -> Result<&Value> {
    let provenance = &end["provenance"];
    let signer = provenance["signer"].as_str().unwrap_or_default();
    anyhow::ensure!(!signer.is_empty(), "no C2PA signer: {provenance}");
    anyhow::ensure!(
        provenance["refused"] == 0
            && provenance["verified"].as_u64().unwrap_or(0) >= 5
            && provenance["cosigned"].as_u64().unwrap_or(0) >= 1,
        "C2PA (verified, and the init segment's co-signature too): {provenance}"
    );
    let c2pa_refusals: Vec<&Value> = end["refused"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| C2PA_CODES.contains(&r["reason"].as_str().unwrap_or_default()))
        .collect();
    anyhow::ensure!(c2pa_refusals.is_empty(), "C2PA refusals: {c2pa_refusals:?}");
    anyhow::ensure!(
        end["shownProvenance"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("signed by {signer}"))),
        "the overlay shows {}",
        end["shownProvenance"]
    );
    Ok(provenance)
}

/// (a)-(c): the player through the proxy, each mode once, on `path` (WebCrypto) and with
/// the library forced (`?verify=library`).
pub(crate) async fn check_player(cluster: &Cluster, stream: &str) -> Result<Value> {
    let foreign = "verify-foreign-player";
    let _publisher = foreign_stream(cluster, foreign).await?;
    let proxy = Proxy::start(cluster, stream, foreign).await?;
    let mut seen = Vec::new();
    for (query, mode) in [
        ("", "in this browser (WebCrypto)"),
        ("?verify=library", "in this browser (library)"),
    ] {
        let mut browser = Browser::start(960, 540).await?;
        let outcome = player_run(&mut browser, &proxy, stream, query, mode).await;
        let outcome = with_page_state(&browser, outcome).await;
        browser.quit().await?;
        seen.push(outcome?);
    }
    Ok(json!(seen))
}

async fn player_run(
    browser: &mut Browser,
    proxy: &Proxy,
    stream: &str,
    query: &str,
    mode: &str,
) -> Result<Value> {
    let origin = &proxy.origin;
    browser
        .goto(&format!("{origin}/{query}#live/{stream}"))
        .await?;
    let start = browser
        .wait_for(
            "the player verifies and plays",
            &format!("{TALLY_PREDICATE} return t.verified >= 5 && t.time > 1 ? t : null;"),
            Value::Null,
            Duration::from_secs(60),
            |_| Ok(()),
        )
        .await?;
    anyhow::ensure!(start["mode"] == mode, "mode {}, not {mode}", start["mode"]);
    anyhow::ensure!(
        start["refusedCount"] == 0,
        "refusals before anything was altered: {start}"
    );
    let mut cases = Vec::new();
    for case in Mode::ALL {
        // Counted before the proxy is armed: the alteration can be refused at once.
        let before = browser.execute(TALLY, Value::Null).await?;
        let count = before["refusedCount"].as_u64().unwrap_or(0);
        proxy.arm(case);
        let refused = browser
            .wait_for(
                &format!("{case:?} is refused"),
                &format!("{TALLY_PREDICATE} return t.refusedCount > arguments[0] ? t : null;"),
                json!(count),
                Duration::from_secs(45),
                |_| Ok(()),
            )
            .await
            .with_context(|| format!("{case:?}: the proxy altered {:?}", proxy.victim()))?;
        let (victim, expect) = proxy.disarm();
        let victim = victim.context("the proxy altered nothing")?;
        let last = refused["refused"]
            .as_array()
            .and_then(|r| r.last())
            .cloned()
            .unwrap_or_default();
        anyhow::ensure!(
            last["reason"] == expect.unwrap_or_default()
                && last["url"].as_str().is_some_and(|u| u.contains(&victim)),
            "{case:?}: expected {expect:?} for {victim}, the player refused {last}"
        );
        // The loader's own record: the refused load was never handed to hls.js.
        let id = last["id"].clone();
        anyhow::ensure!(id.is_u64(), "{case:?}: the refusal names no load: {last}");
        anyhow::ensure!(
            refused["handed"].as_array().is_some_and(|h| !h.is_empty()),
            "{case:?}: the loader handed nothing to hls.js"
        );
        anyhow::ensure!(
            !refused["handed"]
                .as_array()
                .is_some_and(|h| h.contains(&id)),
            "{case:?}: refused load {id} was handed to hls.js"
        );
        // Playback goes on, verifying.
        let t = refused["time"].as_f64().unwrap_or(0.0);
        let verified = refused["verified"].as_u64().unwrap_or(0);
        let after = browser
            .wait_for(
                &format!("after {case:?}, playback goes on"),
                &format!(
                    "{TALLY_PREDICATE} return t.time >= arguments[0][0] + 3 && t.verified > arguments[0][1] + 3 && !t.paused ? t : null;"
                ),
                json!([t, verified]),
                Duration::from_secs(45),
                |_| Ok(()),
            )
            .await?;
        let handed = after["handed"].as_array().cloned().unwrap_or_default();
        for refusal in after["refused"].as_array().into_iter().flatten() {
            anyhow::ensure!(
                !handed.contains(&refusal["id"]),
                "{case:?}: a refused load was handed to hls.js: {refusal}"
            );
        }
        cases.push(json!({ "case": format!("{case:?}"), "refused": last }));
    }
    let end = browser.execute(TALLY, Value::Null).await?;
    anyhow::ensure!(
        end["errors"].as_array().is_some_and(Vec::is_empty),
        "player errors: {}",
        end["errors"]
    );
    // The C2PA data in the media verified too (issue 47), every alteration above having
    // been caught first by our own statements.
    let provenance = provenance_shown(&end)?;
    Ok(
        json!({ "mode": mode, "cases": cases, "verified": end["verified"],
               "provenance": provenance }),
    )
}

/// Issue 45 item 18: through a proxy that flips a byte in one media response of five (and
/// leaves each answer as cacheable as the node made it), every altered fragment is refused
/// and playback goes on for 20 s: each refusal leads to a fresh copy, which verifies.
pub(crate) async fn check_player_under_tampering(cluster: &Cluster, stream: &str) -> Result<Value> {
    let proxy = Proxy::start(cluster, stream, "").await?;
    let mut browser = Browser::start(960, 540).await?;
    let outcome = tampered_run(&mut browser, &proxy, stream).await;
    proxy.flip_every(0);
    let outcome = with_page_state(&browser, outcome).await;
    browser.quit().await?;
    outcome
}

async fn tampered_run(browser: &mut Browser, proxy: &Proxy, stream: &str) -> Result<Value> {
    let origin = &proxy.origin;
    browser.goto(&format!("{origin}/#live/{stream}")).await?;
    let start = browser
        .wait_for(
            "the player verifies and plays",
            &format!("{TALLY_PREDICATE} return t.verified >= 5 && t.time > 1 ? t : null;"),
            Value::Null,
            Duration::from_secs(60),
            |_| Ok(()),
        )
        .await?;
    anyhow::ensure!(
        start["refusedCount"] == 0,
        "refusals before anything was altered: {start}"
    );
    proxy.flip_every(5);
    let from = start["time"].as_f64().unwrap_or(0.0);
    // 20 s of playback, with time to spare for the start and a stall or two, but not for
    // a player that stopped.
    let end = browser
        .wait_for(
            "20 s of playback through the tampering proxy",
            &format!(
                "{TALLY_PREDICATE} return t.time >= arguments[0] + 20 && !t.paused ? t : null;"
            ),
            json!(from),
            Duration::from_secs(45),
            |_| Ok(()),
        )
        .await?;
    proxy.flip_every(0);
    let flipped = proxy.media_seen() / 5;
    let refused = end["refused"].as_array().cloned().unwrap_or_default();
    let handed = end["handed"].as_array().cloned().unwrap_or_default();
    // Every refusal is of an altered byte (a fragment given up on shows as a skip), and
    // no refused load reached hls.js.
    for r in &refused {
        anyhow::ensure!(
            r["reason"] == "digest_mismatch",
            "refused for another reason than the altered byte: {r}"
        );
        anyhow::ensure!(
            !handed.contains(&r["id"]),
            "a refused load was handed to hls.js: {r}"
        );
    }
    // A clean copy of every refused fragment was had and handed on, not given up on.
    let handed_urls = browser
        .execute(
            "return (window.sealcast.verification.handed || []).map((h) => h.url);",
            Value::Null,
        )
        .await?;
    let handed_urls = handed_urls.as_array().cloned().unwrap_or_default();
    for r in &refused {
        anyhow::ensure!(
            handed_urls.contains(&r["url"]),
            "{} was refused and never played: {r}",
            r["url"]
        );
    }
    anyhow::ensure!(
        flipped >= 5 && end["refusedCount"].as_u64().unwrap_or(0) >= 5,
        "{flipped} fragments altered, and the player refused {}",
        end["refusedCount"]
    );
    Ok(
        json!({ "flipped": flipped, "refused": end["refusedCount"], "verified": end["verified"],
               "played": end["time"].as_f64().unwrap_or(0.0) - from }),
    )
}

/// The tally under `t`, failing the wait on a player error.
const TALLY_PREDICATE: &str = "const s = window.sealcast; \
    if (!s) return null; \
    if (s.errors.length) return { failed: JSON.stringify(s.errors) }; \
    const v = s.verification; const video = document.getElementById('video'); \
    const t = { mode: v.mode, verified: v.verified, refusedCount: v.refusedCount, \
                refused: v.refused, handed: (v.handed || []).map((h) => h.id), \
                time: video.currentTime, paused: video.paused };";

/// (d): `sealcast verify` through the proxy names each alteration and exits non-zero, and
/// exits zero on the untouched stream.
pub(crate) async fn check_command(cluster: &Cluster, stream: &str) -> Result<Value> {
    let foreign = "verify-foreign-command";
    let _publisher = foreign_stream(cluster, foreign).await?;
    let proxy = Proxy::start(cluster, stream, foreign).await?;
    let root = cluster.data_dir().join("keys").join("root.pub");
    let master = format!("{}/live/{stream}/master.m3u8", proxy.origin);
    let run = |seconds: u64| {
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(["verify", &master, "--seconds", &seconds.to_string()])
            .arg("--root-pub")
            .arg(&root)
            .env("SEALCAST_LOG", "warn")
            .kill_on_drop(true);
        command
    };
    let untouched = tokio::time::timeout(Duration::from_secs(60), run(4).output())
        .await
        .context("sealcast verify took over a minute")??;
    let text = String::from_utf8_lossy(&untouched.stdout).into_owned();
    anyhow::ensure!(
        untouched.status.success() && text.contains("refused 0"),
        "untouched: {} {text}{}",
        untouched.status,
        String::from_utf8_lossy(&untouched.stderr)
    );
    // Issue 47: every rendition's C2PA data verified too, chained to the same root.
    let c2pa = text
        .lines()
        .find(|l| l.starts_with("C2PA: "))
        .with_context(|| format!("no C2PA summary: {text}"))?;
    let words: Vec<&str> = c2pa.split_whitespace().collect();
    anyhow::ensure!(
        words
            .get(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            > 0
            && words
                .get(5)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                > 0
            && c2pa.ends_with("; 0 renditions unsigned"),
        "untouched, C2PA: {c2pa}"
    );
    let mut cases = vec![json!({ "case": "untouched", "summary": text.trim() })];
    for case in Mode::ALL {
        proxy.arm(case);
        let output = tokio::time::timeout(Duration::from_secs(60), run(6).output())
            .await
            .context("sealcast verify took over a minute")??;
        let (victim, expect) = proxy.disarm();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let victim =
            victim.with_context(|| format!("{case:?}: the proxy altered nothing: {text}"))?;
        let expect = expect.unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with("refused ") && l.contains(&victim))
            .with_context(|| format!("{case:?}: no refusal of {victim}: {text}"))?;
        anyhow::ensure!(
            !output.status.success() && line.split_whitespace().nth(2) == Some(expect),
            "{case:?}: expected {expect} for {victim}, exit {}: {text}",
            output.status
        );
        cases.push(json!({ "case": format!("{case:?}"), "line": line }));
    }
    Ok(json!(cases))
}

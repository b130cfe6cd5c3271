//! One viewer of `bench/viewer-verify.sh` (issue 31), `sealcast-bench sample viewer-verify
//! ORIGIN STREAM RENDITION SECONDS QUERY`: a headless Chromium (testkit's WebDriver
//! client, as `sealcast-glass` drives it) plays a live stream at one rung for SECONDS, and
//! the page's own records say what verifying cost it: the Resource Timing entries
//! (`encodedBodySize`, the bodies as they came over the wire) and
//! `window.sealcast.verification` (the time the loader spent in its checks, what it
//! verified and refused). Prints one JSON line, [`crate::reports::viewer_verify::measure`]'s
//! record. It was Python (`bench/viewer_verify.py`, with a WebDriver client of its own, in
//! git history before this module), whose record it prints.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use testkit::browser::Browser;

use crate::reports::viewer_verify::measure;

/// What one viewer plays.
#[derive(Debug, clap::Args)]
pub struct Viewer {
    /// Where the player page is (the load balancer's origin).
    pub origin: String,
    /// The stream played.
    pub stream: String,
    /// The rung played.
    pub rendition: String,
    /// Seconds measured once the rung plays (and 5 more have passed).
    pub seconds: f64,
    /// The page's query (`?verify=library`; empty for none).
    #[arg(allow_hyphen_values = true)]
    pub query: String,
}

/// Plays the rung asked for (`arguments[0]`): true once the player plays it, a string
/// when the stream has no such rung.
const PLAYS: &str = "const s = window.sealcast; const v = document.getElementById('video');
    if (!s || !s.hls || !s.hls.levels.length || v.currentTime <= 0) return false;
    const i = s.levels.findIndex((l) => l.name === arguments[0]);
    if (i < 0) return 'no rendition ' + arguments[0];
    if (s.hls.currentLevel !== i) s.hls.currentLevel = i;
    return s.playingLevel === i;";

/// At the start: the resource timings cleared (and room for every entry to come), the
/// media time, the verification's counters and the page's clock.
const START: &str =
    "performance.setResourceTimingBufferSize(1000000); performance.clearResourceTimings();
    const v = window.sealcast.verification;
    return { t: document.getElementById('video').currentTime, timeMs: v.timeMs,
             verified: v.verified, refused: v.refusedCount, wall: performance.now() };";

/// At the end: the same, the verification path, and every resource since the start.
const END: &str = "const v = window.sealcast.verification;
    const entries = performance.getEntriesByType('resource').map((e) => [e.name, e.encodedBodySize, e.transferSize]);
    return { t: document.getElementById('video').currentTime, timeMs: v.timeMs, mode: v.mode,
             verified: v.verified, refused: v.refusedCount, wall: performance.now(), entries };";

/// `sample viewer-verify`: the run's record, one JSON line.
pub fn run(viewer: &Viewer) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let (start, end) = runtime.block_on(async {
        let mut browser = Browser::start(960, 540).await?;
        let records = records(&mut browser, viewer).await;
        // The session is closed either way; a failure to close it is not the run's.
        let _ = browser.quit().await;
        records
    })?;
    let record = measure(
        &start,
        &end,
        &viewer.stream,
        &viewer.rendition,
        &viewer.query,
    )?;
    Ok(serde_json::to_string(&record)?)
}

/// Opens the player, waits (90 s at most, asking every 0.5 s) until it plays the rung,
/// lets 5 s pass, then reads the page's records at the start and SECONDS later.
async fn records(browser: &mut Browser, viewer: &Viewer) -> anyhow::Result<(Value, Value)> {
    let origin = viewer.origin.trim_end_matches('/');
    let (query, stream) = (&viewer.query, &viewer.stream);
    browser
        .goto(&format!("{origin}/{query}#live/{stream}"))
        .await?;
    let rung = Value::String(viewer.rendition.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if tokio::time::Instant::now() >= deadline {
            let said = browser
                .execute(
                    "return window.sealcast && { v: window.sealcast.verification, e: window.sealcast.errors }",
                    Value::Null,
                )
                .await?;
            bail!("the player did not play the rendition: {said}");
        }
        match browser.execute(PLAYS, rung.clone()).await? {
            Value::Bool(true) => break,
            Value::String(why) => bail!(why),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = browser.execute(START, Value::Null).await?;
    let seconds = Duration::try_from_secs_f64(viewer.seconds).context("SECONDS")?;
    tokio::time::sleep(seconds).await;
    let end = browser.execute(END, Value::Null).await?;
    Ok((start, end))
}

//! `sealcast-glass`: glass-to-glass latency as a viewer sees it. Opens the player page
//! (`{origin}/#live/{stream}`) in headless Chromium, waits until the video plays, then for
//! `--seconds` notes every 250 ms the latency the player's overlay reads from the clock
//! `sealcast source` stamps into each frame (`window.sealcast.glassToGlass`), the media
//! time, and hls.js's own estimate. Prints one JSON object: the samples, percentiles of
//! the stamped latency, and the longest stall (wall time over which media time stood
//! still). The page may be served by anything that serves the player (a sealcast node, the
//! load balancer, or a peer's server holding a copy of it).

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde_json::{json, Value};
use testkit::browser::Browser;

/// Glass-to-glass latency of a live stream in Chromium.
#[derive(Debug, Parser)]
#[command(name = "sealcast-glass", version)]
struct Args {
    /// Where the player page is (`https://127.0.0.1:8443`).
    origin: String,
    /// The stream to play.
    stream: String,
    /// Seconds to sample once the video plays.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds of playback to let pass before sampling (the player settles on its live
    /// edge).
    #[arg(long, default_value_t = 10)]
    settle: u64,
    /// The path the player must take: `moq` (Media over QUIC) or `hls` (LL-HLS), the
    /// page's `?transport=`; unset, the player chooses. A run whose player took another
    /// path fails.
    #[arg(long, value_parser = ["moq", "hls"])]
    transport: Option<String>,
    /// Also report the page's requests up to the end of the settling (the browser's
    /// resource timing: path, start and end in ms since navigation), and the video's
    /// buffered ranges then, to see how playback started.
    #[arg(long)]
    trace: bool,
}

/// Installed in the page: notes (wall ms, stamped latency s, media time s, hls.js latency
/// s) every 250 ms, and every error hls.js reports (its `details`, with the wall ms).
const SAMPLER: &str = "const v = document.getElementById('video'); window.__glass = []; \
    window.__glassErrors = []; window.__glassWaiting = 0; \
    v.addEventListener('waiting', () => { window.__glassWaiting += 1; }); const s0 = window.sealcast || {}; \
    if (s0.hls && window.Hls) s0.hls.on(window.Hls.Events.ERROR, (_e, d) => \
    window.__glassErrors.push([performance.now(), d.details, Boolean(d.fatal)])); \
    window.__glassTimer = setInterval(() => { const s = window.sealcast || {}; \
    window.__glass.push([performance.now(), s.glassToGlass, v.currentTime, \
    s.hls ? s.hls.latency : null]); }, 250);";

/// Read once the video plays: where hls.js started against where it aims to be (its
/// latency, target latency and live sync position), the buffered ranges, and the
/// milliseconds since the page's navigation began.
const START: &str = "const v = document.getElementById('video'); const h = (window.sealcast || {}).hls; \
    const b = []; for (let i = 0; i < v.buffered.length; i += 1) b.push([v.buffered.start(i), v.buffered.end(i)]); \
    return { since_navigation_ms: performance.now(), current_time: v.currentTime, buffered: b, \
    latency: h ? h.latency : null, target_latency: h ? h.targetLatency : null, \
    live_sync_position: h ? h.liveSyncPosition : null };";

/// With `--trace`: the page's requests so far (path and query, start and end in ms since
/// navigation; the browser keeps the first 250) and the buffered ranges.
const TRACE: &str = "const v = document.getElementById('video'); const b = []; \
    for (let i = 0; i < v.buffered.length; i += 1) b.push([v.buffered.start(i), v.buffered.end(i)]); \
    const r = performance.getEntriesByType('resource').map((e) => { const u = new URL(e.name); \
    return [u.pathname + u.search, Math.round(e.startTime), Math.round(e.responseEnd)]; }); \
    return { requests: r, buffered: b, current_time: v.currentTime, now_ms: performance.now() };";

/// Read at the end: how the player checked what it played (its own verification, not the
/// node's word), and the errors hls.js reported while sampling.
const VERDICT: &str = "const s = window.sealcast || {}; const v = s.verification || {}; \
    return { transport: s.transport || '', moq: s.moq || null, \
    mode: v.mode || '', verified: v.verified || 0, refused: v.refusedCount || 0, \
    reasons: (v.refused || []).slice(-5).map((r) => r.reason), \
    details: (v.refused || []).slice(-5).map((r) => r.detail || ''), \
    refused_urls: (v.refused || []).slice(-5).map((r) => String(r.url || '').split('?')[0]), \
    check_ms: v.timeMs || 0, waiting_events: window.__glassWaiting || 0, errors: window.__glassErrors || [] };";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut browser = Browser::start(1280, 800).await?;
    let result = sample(&mut browser, &args).await;
    browser.quit().await?;
    let report = serde_json::to_string(&result?)?;
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{report}");
    }
    Ok(())
}

async fn sample(browser: &mut Browser, args: &Args) -> anyhow::Result<Value> {
    let origin = args.origin.trim_end_matches('/');
    let query = args
        .transport
        .as_ref()
        .map(|t| format!("?transport={t}"))
        .unwrap_or_default();
    browser
        .goto(&format!("{origin}/{query}#live/{}", args.stream))
        .await?;
    browser
        .wait_for(
            "the video plays",
            "const v = document.getElementById('video'); return v && v.currentTime > 0 && !v.paused;",
            Value::Null,
            Duration::from_secs(60),
            |_| Ok(()),
        )
        .await?;
    if let Some(wanted) = &args.transport {
        let wanted = if wanted == "hls" { "ll-hls" } else { "moq" };
        let took = browser
            .execute(
                "return (window.sealcast || {}).transport || '';",
                Value::Null,
            )
            .await?;
        anyhow::ensure!(
            took.as_str() == Some(wanted),
            "the player plays over {took}, not {wanted}"
        );
    }
    let start = browser.execute(START, Value::Null).await?;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let trace = if args.trace {
        browser.execute(TRACE, Value::Null).await?
    } else {
        Value::Null
    };
    browser.execute(SAMPLER, Value::Null).await?;
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let raw = browser
        .execute(
            "clearInterval(window.__glassTimer); return window.__glass;",
            Value::Null,
        )
        .await?;
    let verdict = browser.execute(VERDICT, Value::Null).await?;
    let samples: Vec<(f64, Option<f64>, f64, Option<f64>)> = raw
        .as_array()
        .context("no samples")?
        .iter()
        .filter_map(|s| Some((s[0].as_f64()?, s[1].as_f64(), s[2].as_f64()?, s[3].as_f64())))
        .collect();
    let mut stamped: Vec<f64> = samples.iter().filter_map(|s| s.1).collect();
    stamped.sort_by(f64::total_cmp);
    let mut estimated: Vec<f64> = samples.iter().filter_map(|s| s.3).collect();
    estimated.sort_by(f64::total_cmp);
    Ok(json!({
        "stream": args.stream,
        "origin": origin,
        "transport": args.transport,
        "samples": samples.len(),
        "stamped_samples": stamped.len(),
        "glass_to_glass_s": summary(&stamped),
        "hlsjs_latency_s": summary(&estimated),
        "longest_stall_s": longest_stall(&samples),
        "media_rate": media_rate(&samples),
        "start": start,
        "trace": trace,
        "player": verdict,
    }))
}

/// p50, p90 and max of sorted values (null when there are none).
fn summary(sorted: &[f64]) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    json!({ "p50": at(0.5), "p90": at(0.9), "max": at(1.0), "min": at(0.0) })
}

/// Media seconds played per wall second over the sampling: 1 when playback kept pace,
/// below 1 when it waited for media (however short each wait), which adds as much to the
/// latency (null with fewer than two samples).
fn media_rate(samples: &[(f64, Option<f64>, f64, Option<f64>)]) -> Value {
    match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => json!((b.2 - a.2) / ((b.0 - a.0) / 1000.0)),
        _ => Value::Null,
    }
}

/// The longest wall time, in seconds, over which media time did not advance.
fn longest_stall(samples: &[(f64, Option<f64>, f64, Option<f64>)]) -> f64 {
    let mut longest: f64 = 0.0;
    let mut since = samples.first().map_or(0.0, |s| s.0);
    for pair in samples.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if after.2 > before.2 {
            since = after.0;
        } else {
            longest = longest.max((after.0 - since) / 1000.0);
        }
    }
    longest
}

//! `sealcast-dvr-seek`: how long a viewer waits after going back in a live stream (issue
//! 49's goal: 10 minutes back plays within 1 s in Chromium). Each round opens a fresh
//! headless Chromium (no cached segments), plays the stream live, then asks to go `--back`
//! seconds behind live and times it until the video plays again (media time moving, data
//! ahead): ours through the player page (`{ours}/#live/{stream}`,
//! `window.sealcast.seekBack`, the time-shift window, every fragment verified), and, when
//! `--peer` is given, the same through the peer's page (bench/peers/dvr/index.html: hls.js
//! on a long sliding playlist that a plain HTTP server serves), interleaved. Prints one
//! JSON object: every round's time to play, how far behind live the picture then was (ours:
//! the stamp `sealcast source` draws into each frame), and percentiles.

use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};
use testkit::browser::Browser;

/// Time to play after seeking back in a live stream, ours and a peer's.
#[derive(Debug, Parser)]
#[command(name = "sealcast-dvr-seek", version)]
struct Args {
    /// Where our player page is (`https://127.0.0.1:8443`).
    ours: String,
    /// The stream to play.
    stream: String,
    /// The peer's page (`http://127.0.0.1:PORT/index.html`).
    #[arg(long)]
    peer: Option<String>,
    /// Seconds behind live to go.
    #[arg(long, default_value_t = 600.0)]
    back: f64,
    /// Rounds (each side once per round).
    #[arg(long, default_value_t = 6)]
    rounds: u32,
}

/// The longest one seek may take before the round counts as failed.
const SEEK_LIMIT: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut ours = Vec::new();
    let mut peer = Vec::new();
    for round in 1..=args.rounds {
        eprintln!("dvr-seek: round {round}/{}", args.rounds);
        let (origin, stream, back) = (args.ours.clone(), args.stream.clone(), args.back);
        ours.push(measure(move |b| Box::pin(seek_ours(b, origin, stream, back))).await);
        if let Some(url) = args.peer.clone() {
            peer.push(measure(move |b| Box::pin(seek_peer(b, url, args.back))).await);
        }
    }
    let report = json!({
        "back_s": args.back,
        "rounds": args.rounds,
        "ours": { "runs": ours, "seek_ms": summary(&ours) },
        "peer": args.peer.as_ref().map(|_| json!({ "runs": peer, "seek_ms": summary(&peer) })),
    });
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

type Check<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Value>> + 'a>>;

/// One measurement in a fresh browser; a failure is a run with its reason.
async fn measure(check: impl for<'a> FnOnce(&'a mut Browser) -> Check<'a>) -> Value {
    let mut browser = match Browser::start(1280, 800).await {
        Ok(b) => b,
        Err(e) => return json!({ "failed": format!("{e:#}") }),
    };
    let outcome = check(&mut browser).await;
    let _ = browser.quit().await;
    outcome.unwrap_or_else(|e| json!({ "failed": format!("{e:#}") }))
}

async fn seek_ours(
    browser: &mut Browser,
    origin: String,
    stream: String,
    back: f64,
) -> anyhow::Result<Value> {
    let origin = origin.trim_end_matches('/');
    browser.goto(&format!("{origin}/#live/{stream}")).await?;
    browser
        .wait_for(
            "the stream plays live with a long enough window",
            "const v = document.getElementById('video'); const s = window.sealcast; \
             return v && v.currentTime > 0 && !v.paused && s.timeshift.available >= arguments[0];",
            json!(back + 5.0),
            Duration::from_secs(60),
            |_| Ok(()),
        )
        .await?;
    browser
        .execute("window.sealcast.seekBack(arguments[0]);", json!(back))
        .await?;
    let done = browser
        .wait_for(
            "the video plays behind live",
            "const t = window.sealcast.timeshift; \
             return t.active && t.seekMs !== null ? { seek_ms: t.seekMs } : false;",
            Value::Null,
            SEEK_LIMIT,
            |_| Ok(()),
        )
        .await?;
    // The overlay reads the stamp every 0.5 s.
    let seen = browser
        .wait_for(
            "the picture's stamp is read",
            "const s = window.sealcast; const v = s.verification; \
             return s.glassToGlass !== null && s.glassToGlass > 1 ? \
               { behind_s: s.glassToGlass, verified: v.verified, refused: v.refusedCount, \
                 transport: s.transport } : false;",
            Value::Null,
            Duration::from_secs(10),
            |_| Ok(()),
        )
        .await?;
    Ok(json!({
        "seek_ms": done["seek_ms"],
        "behind_s": seen["behind_s"],
        "verified": seen["verified"],
        "refused": seen["refused"],
    }))
}

async fn seek_peer(browser: &mut Browser, url: String, back: f64) -> anyhow::Result<Value> {
    browser.goto(&url).await?;
    browser.execute("window.peerLive();", Value::Null).await?;
    browser
        .wait_for(
            "the peer's stream plays live",
            "const v = document.getElementById('video'); \
             return v.currentTime > 0 && !v.paused && window.peer.total >= arguments[0];",
            json!(back + 5.0),
            Duration::from_secs(60),
            |_| Ok(()),
        )
        .await?;
    browser
        .execute("window.peerSeekBack(arguments[0]);", json!(back))
        .await?;
    let done = browser
        .wait_for(
            "the peer's video plays behind live",
            "const p = window.peer; if (p.error) return { failed: p.error }; \
             return p.seekMs !== null ? { seek_ms: p.seekMs, behind_s: p.behind } : false;",
            Value::Null,
            SEEK_LIMIT,
            |_| Ok(()),
        )
        .await?;
    anyhow::ensure!(done.get("failed").is_none(), "the peer failed: {done}");
    Ok(done)
}

/// p50 and max of the runs' `seek_ms`, and how many failed.
fn summary(runs: &[Value]) -> Value {
    let mut ms: Vec<f64> = runs.iter().filter_map(|r| r["seek_ms"].as_f64()).collect();
    ms.sort_by(f64::total_cmp);
    let failed = runs.len() - ms.len();
    if ms.is_empty() {
        return json!({ "failed": failed });
    }
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    json!({ "p50": at(0.5), "max": at(1.0), "min": at(0.0), "failed": failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_failures_apart() {
        let runs = [
            json!({ "seek_ms": 300 }),
            json!({ "failed": "x" }),
            json!({ "seek_ms": 100 }),
        ];
        let s = summary(&runs);
        assert_eq!(s["p50"], 300.0);
        assert_eq!(s["min"], 100.0);
        assert_eq!(s["failed"], 1);
        assert_eq!(summary(&[])["failed"], 0);
    }
}

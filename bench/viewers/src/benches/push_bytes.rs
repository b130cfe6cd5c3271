//! `sealcast-bench run push-bytes`: bench/push-bytes.sh (issue 46 item 2): each fragment
//! crosses from ingest to edge once. With LL-HLS parts, the ingest pushes a segment to a
//! node that took all its parts without its bytes (the node joins the parts);
//! `SEALCAST_PUSH_WHOLE_SEGMENTS=1` makes it push every segment whole, as before.
//!
//! Both modes in one run, ROUNDS times interleaved (`assembled`, `whole`, …): each time a
//! fresh `sealcast up` ([`crate::harness::up::up`]: one ingest, two broadcast nodes,
//! the source rung only, CMAF, 2 s segments, 0.333 s parts) with `sealcast source`
//! publishing 720p30 at 3000 kb/s over RTMP, a 10 s settle, then SECONDS measured:
//! - ingest→edge bytes: the ingest's `sealcast_ingest_push_bytes_total` (body bytes sent,
//!   retries included, per node and kind), per second of media and per node, from both
//!   nodes' `/metrics` before and after;
//! - the segments' publication latency on node 1: a client follows the media playlist with
//!   blocking reloads (`_HLS_msn`) and takes, for every segment as it is listed, the time
//!   since its end (its EXT-X-PROGRAM-DATE-TIME plus EXTINF); the parts' path is the same
//!   in both modes ([`crate::reports::push_bytes`]'s `follow`);
//! - gaps: `#EXT-X-GAP` listed and `sealcast_segment_gaps_total` on both nodes; how the
//!   segments went (`sealcast_ingest_segment_pushes_total` by form).
//!
//! Nothing is pinned (the script pinned nothing). The report:
//! [`crate::reports::push_bytes`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::harness::cluster::{add_stream, latency_config, source_720p};
use crate::harness::up::{up, UpArgs};
use crate::harness::{get, say, wait_for, Work};

/// What the script passes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds measured per mode and round.
    #[arg(default_value_t = 60)]
    pub seconds: u64,
    /// Rounds: each measures both modes.
    #[arg(default_value_t = 2)]
    pub rounds: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The stream's name.
const STREAM: &str = "bytes";

/// Runs the benchmark; `report` is given the measurements (`results.jsonl`: one JSON line
/// per mode and round) while the run's directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut work = Work::temp("push-bytes")?;
    let results = work.path("results.jsonl");
    std::fs::write(&results, "")?;
    for round in 1..=args.rounds {
        for mode in ["assembled", "whole"] {
            say(&format!("push-bytes: round {round}, {mode}"));
            let line = measure(&mut work, args, mode, round)?;
            let mut file = std::fs::OpenOptions::new().append(true).open(&results)?;
            writeln!(file, "{line}")?;
        }
    }
    report(&results)
}

/// One cluster in `mode` (assembled or whole), measured: the results line.
fn measure(work: &mut Work, args: &Args, mode: &str, round: u64) -> anyhow::Result<String> {
    let dir = work.path(format!("{mode}-{round}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("sealcast.toml"), latency_config("0.333", false))?;
    let whole: &[(&str, &str)] = if mode == "whole" {
        &[("SEALCAST_PUSH_WHOLE_SEGMENTS", "1")]
    } else {
        &[]
    };
    let cluster = up(
        work,
        &format!("up-{mode}-{round}"),
        &args.bin,
        &UpArgs::configured(&dir, 2).loopback(),
        2,
        Duration::from_secs(60),
        whole,
    )?;
    let node1 = cluster.url("broadcast1")?;
    let node2 = cluster.url("broadcast2")?;
    let rtmp = cluster.url("obs-server")?;
    let key = add_stream(&args.bin, &dir.join("data"), STREAM)?;
    let source_url = format!("{rtmp}/{key}");
    let source = source_720p(
        work,
        &args.bin,
        &format!("source-{mode}-{round}"),
        &source_url,
        None,
    )?;
    let playlist = format!("{node1}/live/{STREAM}/src/index.m3u8");
    if !wait_for(Duration::from_secs(30), || {
        get(&playlist, None, 10).is_some()
    }) {
        anyhow::bail!("no playlist in 30 s{}", work.logs());
    }
    // The settle: the stream runs 10 s before the measurement.
    std::thread::sleep(Duration::from_secs(10));
    let metrics = |node: &str, file: &str| -> anyhow::Result<()> {
        let body = get(&format!("{node}/metrics"), None, 10)
            .with_context(|| format!("{node}/metrics did not answer"))?;
        std::fs::write(dir.join(file), body)?;
        Ok(())
    };
    metrics(&node1, "before-1.txt")?;
    metrics(&node2, "before-2.txt")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let latency = runtime.block_on(crate::reports::push_bytes::follow(
        &playlist,
        args.seconds as f64,
    ))?;
    std::fs::write(
        dir.join("latency.json"),
        serde_json::to_string(&latency)? + "\n",
    )?;
    metrics(&node1, "after-1.txt")?;
    metrics(&node2, "after-2.txt")?;
    work.stop(&[source, cluster.pid], Duration::from_secs(5));
    crate::reports::push_bytes::measure_dir(&dir, mode, round as i64, args.seconds as f64)
}

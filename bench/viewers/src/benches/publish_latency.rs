//! `sealcast-bench run publish-latency`: bench/publish-latency.sh, as far as the build
//! allows: how long after a segment closes at the ingest it is listed on every broadcast
//! node, how far apart the 3 nodes list it, and what the signature gate adds.
//!
//! `sealcast up --broadcast 3` ([`crate::harness::up`], on every core, as the script ran
//! it) gets a real-time `sealcast source` publish at 720p30 for SECONDS, its stream key
//! through the source's environment; once every node answers `/healthz` and a second more
//! has passed, [`crate::publish_latency::poll`] (`sample publish-latency`) polls each node's
//! media playlists of RENDITIONS (720p and src) every 10 ms and records when each sequence
//! number first appears on each node, and the `up` process's CPU. The publish over, 3 s
//! more (the last segment: cut on unpublish, pushed, verified) and the polls stop.
//!
//! The ingest exports no per-segment close time, so the report
//! ([`crate::reports::publish_latency`]) gives the skew across nodes (last − first listing
//! per segment) and the listing jitter against the publisher's real-time clock, plus, from
//! the nodes' /metrics, `sealcast_signature_verify_seconds` (mean verify time),
//! `sealcast_signature_wait_seconds` (bytes arrived → published: the gate's added latency),
//! `sealcast_ingest_push_seconds` and `sealcast_ingest_sign_seconds`, and verification time
//! as a share of the process CPU. There is no "verification off" switch to compare against.
//! The `up` process's warnings and errors (the probe's aside) are printed before the report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::harness::up::{up, UpArgs};
use crate::harness::{get, say, wait_for, Work};
use crate::publish_latency::{poll, Poll};

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds published.
    #[arg(default_value_t = 60)]
    pub seconds: u64,
    /// The renditions polled, comma-separated.
    #[arg(long, env = "RENDITIONS", default_value = "720p,src")]
    pub renditions: String,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// The raw results (default bench/out/publish-latency.json).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// Runs the benchmark; `report` is given the raw JSON (`raw.json`) while the run's
/// directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut work = Work::temp("publish-latency")?;
    // No `--config` (the binary's default ladder); data and certificates in the run's
    // directory, every listener (the load balancer's too) on a free port of 127.0.0.1.
    let dir = work.path("cluster");
    std::fs::create_dir_all(&dir)?;
    let up_args = UpArgs::defaults(&dir, 3).loopback();
    let cluster = up(
        &mut work,
        "up",
        &args.bin,
        &up_args,
        3,
        Duration::from_secs(30),
        &[],
    )
    .context("publish-latency")?;
    let nodes: Vec<String> = cluster.nodes().into_iter().map(str::to_owned).collect();
    let rtmp = cluster.field("obs-server").unwrap_or_default().to_owned();
    let key = cluster.stream_key("main").unwrap_or_default().to_owned();
    // Every node ready (caught up with the ingest) before the publish starts.
    for node in &nodes {
        let health = format!("{}/healthz", node.trim_end_matches('/'));
        wait_for(Duration::from_secs(10), || get(&health, None, 10).is_some());
    }
    std::thread::sleep(Duration::from_secs(1));

    let poll_args = Poll {
        pid: cluster.pid,
        stream: "main".to_owned(),
        renditions: args.renditions.clone(),
        interval: 0.01,
        ready: work.path("ready"),
        stop: work.path("stop"),
        publisher: format!(
            "`sealcast source` 1280x720 30 fps 2500 kb/s, 2 s GOP, real time, {} s",
            args.seconds
        ),
        urls: nodes.clone(),
    };
    let raw = std::thread::scope(|scope| -> anyhow::Result<String> {
        let poller = scope.spawn(|| poll(&poll_args));
        wait_for(Duration::from_secs(10), || poll_args.ready.exists());
        say(&format!(
            "publish-latency: publishing {}s of 720p30 to {} nodes",
            args.seconds,
            nodes.len()
        ));
        let published = (|| -> anyhow::Result<()> {
            // The stream key reaches the publisher through its environment, not its arguments.
            let url = format!("{rtmp}/{key}");
            let duration = args.seconds.to_string();
            let source = work.start_unpinned(
                "source",
                &args.bin,
                [
                    "source",
                    "--size",
                    "1280x720",
                    "--fps",
                    "30",
                    "--duration",
                    &duration,
                ],
                &[("SEALCAST_SOURCE_URL", &url)],
            )?;
            ensure!(work.wait(source)?, "sealcast source failed{}", work.logs());
            std::thread::sleep(Duration::from_secs(3)); // the last segment: cut on unpublish, pushed, verified
            Ok(())
        })();
        std::fs::File::create(&poll_args.stop)?;
        let raw = poller
            .join()
            .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
        published?;
        raw
    })?;
    let raw_file = work.path("raw.json");
    std::fs::write(&raw_file, raw + "\n")?;
    let err = std::fs::read_to_string(work.path("up.err")).unwrap_or_default();
    for line in warnings(&err) {
        say(&format!("publish-latency: up: {line}"));
    }
    report(&raw_file)
}

/// The lines of `up`'s log that hold ` WARN ` or ` ERROR ` (the probe's aside), each cut to
/// 300 characters.
pub fn warnings(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains("client_id=\"probe\"")
        })
        .map(|l| l.chars().take(300).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_the_scripts_grep() {
        let log = "a  INFO x\nb  WARN y\nc ERROR z client_id=\"probe\"\nd ERROR w\nWARN first\n";
        assert_eq!(warnings(log), ["b  WARN y", "d ERROR w"]);
        let long = format!(" WARN {}", "é".repeat(400));
        assert_eq!(warnings(&long)[0].chars().count(), 300);
    }
}

//! `sealcast-bench run archive-disk`: bench/archive-disk.sh (issue 49): disk per recorded
//! hour, and where it is.
//!
//! A fresh `sealcast up` ([`crate::harness::up::up`]) with NODES broadcast nodes and
//! the default ladder's shape (the source rung, 720p, 480p and 360p x264, CMAF, 2 s
//! segments, 0.333 s parts) records a 720p30 `sealcast source` (3000 kb/s) for SECONDS
//! into its local archive (the default: `archive` in the data directory); then, once node
//! 1 lists the recording and the spool has drained (`sealcast-bench sample
//! archive-recording`, up to 300 s), `du` gives the archive's bytes, the spool's and every
//! other node directory's (`sample archive-disk`). Per recorded hour is the archive's
//! bytes over the recording's duration; before issue 49 every node kept its own copy,
//! NODES times that.
//!
//! Nothing is pinned (the script pinned nothing). The report:
//! [`crate::reports::archive_disk`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::ensure;

use crate::harness::cluster::{add_stream, latency_config, source_720p};
use crate::harness::up::{up, UpArgs};
use crate::harness::{driver_to, say, Work};

/// What the script passes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds recorded.
    #[arg(default_value_t = 120)]
    pub seconds: u64,
    /// Broadcast nodes.
    #[arg(default_value_t = 3)]
    pub nodes: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The stream's name.
const STREAM: &str = "disk";

/// Runs the benchmark; `report` is given the measurement (`result.json`, what `sample
/// archive-disk` printed) while the cluster and the run's directory are still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut work = Work::temp("archive-disk")?;
    let dir = work.path("up");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("sealcast.toml"), latency_config("0.333", true))?;
    let cluster = up(
        &mut work,
        "up",
        &args.bin,
        &UpArgs::configured(&dir, args.nodes).loopback(),
        args.nodes,
        Duration::from_secs(90),
        &[],
    )?;
    let node1 = cluster.url("broadcast1")?;
    let rtmp = cluster.url("obs-server")?;
    let key = add_stream(&args.bin, &dir.join("data"), STREAM)?;
    say(&format!(
        "archive-disk: recording {} s on {} nodes",
        args.seconds, args.nodes
    ));
    let source_url = format!("{rtmp}/{key}");
    let seconds = args.seconds.to_string();
    let source = source_720p(&mut work, &args.bin, "source", &source_url, Some(&seconds))?;
    ensure!(work.wait(source)?, "sealcast source failed{}", work.logs());
    let recording = dir.join("recording.json");
    ensure!(
        driver_to(
            &[
                "sample".as_ref(),
                "archive-recording".as_ref(),
                node1.as_ref(),
                STREAM.as_ref(),
                "--within".as_ref(),
                "300".as_ref(),
            ],
            &recording,
        )?,
        "the recording was not archived within 300 s{}",
        work.logs()
    );
    let result = work.path("result.json");
    let nodes = args.nodes.to_string();
    ensure!(
        driver_to(
            &[
                "sample".as_ref(),
                "archive-disk".as_ref(),
                dir.as_os_str(),
                "--nodes".as_ref(),
                nodes.as_ref(),
                "--seconds".as_ref(),
                seconds.as_ref(),
            ],
            &result,
        )?,
        "sample archive-disk failed"
    );
    report(&result)
}

//! `sealcast-bench run c2pa-overhead`: bench/c2pa-overhead.sh (issue 47): what C2PA live
//! video (docs/provenance.md) costs a viewer in bytes, beside what our own statements
//! cost.
//!
//! One `sealcast up` ([`crate::harness::up::up`]: one ingest, one broadcast node, the
//! default ladder: src, 720p, 480p, 360p; CMAF, 2 s segments, 0.333 s parts) with
//! `sealcast source` publishing 720p30 at 3000 kb/s over RTMP; after a 10 s settle, a
//! client (`sealcast-bench sample c2pa-overhead`) follows every rung's media playlist for
//! SECONDS and fetches each new part and segment once with its statement (`.sig`), as a
//! viewer of parts and a viewer of segments would, and each init segment. Per rung:
//! - a parts viewer's C2PA bytes: the VSI `emsg` boxes at the front of each part, as a
//!   share of the parts' bytes; a segments viewer's: every VSI in each segment (its own and
//!   its parts'), as a share of the segments' bytes;
//! - the statements' share (the `.sig` sidecars a viewer fetches beside them);
//! - the init segment's size and its C2PA `uuid` box.
//!
//! Nothing is pinned (the script pinned nothing). The report:
//! [`crate::reports::c2pa_overhead`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::ensure;

use crate::harness::cluster::{add_stream, latency_config, source_720p};
use crate::harness::up::{up, UpArgs};
use crate::harness::{driver_to, get, wait_for, Work};

/// What the script passes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds the playlists are followed.
    #[arg(default_value_t = 30)]
    pub seconds: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The stream's name.
const STREAM: &str = "bytes";

/// Runs the benchmark; `report` is given the measurement (`measure.json`, what `sample
/// c2pa-overhead` printed) while the cluster and the run's directory are still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut work = Work::temp("c2pa-overhead")?;
    let dir = work.path("run");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("sealcast.toml"), latency_config("0.333", true))?;
    let cluster = up(
        &mut work,
        "up",
        &args.bin,
        &UpArgs::configured(&dir, 1).loopback(),
        1,
        Duration::from_secs(60),
        &[],
    )?;
    let node = cluster.url("broadcast1")?;
    let rtmp = cluster.url("obs-server")?;
    let key = add_stream(&args.bin, &dir.join("data"), STREAM)?;
    let source_url = format!("{rtmp}/{key}");
    source_720p(&mut work, &args.bin, "source", &source_url, None)?;
    let playlist = format!("{node}/live/{STREAM}/360p/index.m3u8");
    if !wait_for(Duration::from_secs(30), || {
        get(&playlist, None, 10).is_some()
    }) {
        anyhow::bail!("no playlist in 30 s{}", work.logs());
    }
    // The settle: the stream runs 10 s before the measurement.
    std::thread::sleep(Duration::from_secs(10));
    let measure = dir.join("measure.json");
    let base = format!("{node}/live/{STREAM}");
    let seconds = args.seconds.to_string();
    ensure!(
        driver_to(
            &[
                "sample".as_ref(),
                "c2pa-overhead".as_ref(),
                base.as_ref(),
                "--seconds".as_ref(),
                seconds.as_ref(),
            ],
            &measure,
        )?,
        "sample c2pa-overhead failed{}",
        work.logs()
    );
    report(&measure)
}

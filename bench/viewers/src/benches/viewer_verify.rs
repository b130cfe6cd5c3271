//! `sealcast-bench run viewer-verify`: bench/viewer-verify.sh (issue 31), what it costs a
//! viewer to check every fragment itself.
//!
//! One `sealcast up` (one broadcast node, the load balancer; [`crate::harness::up`], on
//! every core, as the script ran it) with the source rung and a 360p rung, LL-HLS parts of
//! 0.333 s, fed 720p30 by `sealcast source` for the whole run; one Chromium viewer at a
//! time plays the 360p rung through the load balancer for SECONDS, once with the browser's
//! own WebCrypto and once with the vendored library forced (`?verify=library`), ROUNDS
//! times in that order; [`crate::viewer_verify::run`] (`sample viewer-verify`) reads the
//! page's own records:
//! - verification CPU per viewer-second (the time the loader spent in its checks, over the
//!   media seconds played),
//! - requests and bytes added per viewer-second by sidecars, part-key delegations and the
//!   trust bundle, against the media's, and the same without the part delegation (every
//!   part's sidecar at the size of an ML-DSA-65 envelope: computed from the same requests).
//!
//! A viewer's run that fails is said and left out; the others go on. The added latency per
//! part is bench/latency.sh's `ll` against `ll-noverify`. The report:
//! [`crate::reports::viewer_verify`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::harness::cluster::latency_config;
use crate::harness::up::{up, UpArgs};
use crate::harness::{get, say, wait_for, Work};
use crate::viewer_verify::Viewer;

/// What the script passes (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds each viewer plays.
    #[arg(default_value_t = 60)]
    pub seconds: u64,
    /// Rounds: each plays once with WebCrypto, once with the library.
    #[arg(default_value_t = 3)]
    pub rounds: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// The raw results (default bench/out/viewer-verify.json).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The cluster's configuration: the latency benchmarks' with parts of 0.333 s, the source
/// rung and a 360p rung.
fn config() -> String {
    latency_config("0.333", false)
        + "\n[[ladder.rungs]]\nname = \"360p\"\nkind = \"encode\"\nheight = 360\n\
           bitrate_kbps = 730\nmaxrate_kbps = 781\nbufsize_kbits = 1095\n"
}

/// Runs the benchmark; `report` is given the viewers' records (`runs.jsonl`) while the
/// run's directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut work = Work::temp("viewer-verify")?;
    let dir = work.path("up");
    std::fs::create_dir_all(&dir)?;
    let config_file = dir.join("sealcast.toml");
    std::fs::write(&config_file, config())?;
    let certs = dir.join("certs");
    let cluster = up(
        &mut work,
        "up/up",
        &args.bin,
        &UpArgs::configured(&dir, 1).loopback(),
        1,
        Duration::from_secs(60),
        &[],
    )
    .context("viewer-verify")?;
    let origin = cluster.field("player").unwrap_or_default().to_owned();
    let key = cluster.stream_key("main").unwrap_or_default();
    let rtmp = cluster.field("obs-server").unwrap_or_default();

    let total = ((args.seconds + 40) * 2 * args.rounds + 60).to_string();
    // The stream key reaches the publisher through its environment, not its arguments.
    let url = format!("{rtmp}/{key}");
    work.start_unpinned(
        "source",
        &args.bin,
        [
            "source",
            "--size",
            "1280x720",
            "--fps",
            "30",
            "--duration",
            &total,
        ],
        &[("SEALCAST_SOURCE_URL", &url)],
    )?;
    let playlist = format!("{}/live/main/360p/index.m3u8", origin.trim_end_matches('/'));
    let ca = certs.join("ca.pem");
    wait_for(Duration::from_secs(60), || {
        get(&playlist, Some(&ca), 10).is_some()
    });

    let mut lines = String::new();
    for round in 1..=args.rounds {
        for query in ["", "?verify=library"] {
            say(&format!(
                "viewer-verify: round {round}/{} {} ({}s)",
                args.rounds,
                if query.is_empty() { "WebCrypto" } else { query },
                args.seconds
            ));
            let viewer = Viewer {
                origin: origin.clone(),
                stream: "main".to_owned(),
                rendition: "360p".to_owned(),
                seconds: args.seconds as f64,
                query: query.to_owned(),
            };
            match crate::viewer_verify::run(&viewer) {
                Ok(record) => {
                    let round = format!("round={round}");
                    lines.push_str(&crate::runs::tagged(&record, &[round], &[])?);
                    lines.push('\n');
                }
                Err(e) => say(&format!("viewer-verify: run failed: {e:#}")),
            }
        }
    }
    let runs = work.path("runs.jsonl");
    std::fs::write(&runs, &lines)?;
    report(&runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_the_scripts() {
        assert_eq!(
            config(),
            "[ingest]\nend_grace_seconds = 2.0\n\n[ladder]\nsegment_target = 2.0\nwindow = 6\n\
             preset = \"veryfast\"\nformat = \"cmaf\"\npart_target = 0.333\n\n\
             [[ladder.rungs]]\nname = \"src\"\nkind = \"source\"\n\n\
             [[ladder.rungs]]\nname = \"360p\"\nkind = \"encode\"\nheight = 360\n\
             bitrate_kbps = 730\nmaxrate_kbps = 781\nbufsize_kbits = 1095\n"
        );
    }
}

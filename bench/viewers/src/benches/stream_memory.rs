//! `sealcast-bench run stream-memory`: bench/stream-memory.sh: the resident memory a
//! broadcast node adds for each live stream, against the floor, the bytes of the window it
//! lists.
//!
//! The roles run one per process, as a cluster runs them, so the node's RSS is its own (not
//! the ingest's transcoders and buffers), none of them pinned: a private Mosquitto on a
//! free loopback port ([`crate::harness::cluster::mosquitto`]), `sealcast keys init` (once)
//! and `sealcast streams add` for the keys and the catalog, `sealcast ingest`, and
//! `sealcast broadcast` (NODE_WORKERS tokio workers, the node under test). The run's
//! directory is on disk, not tmpfs, as the script had it. Live streams are published with
//! `sealcast source` at real-time pace, added one by one: stream k starts, and once every
//! rung of it lists a full window and has slid on by GRACE+1 segments (the node then also
//! holds the segments it keeps fetchable after they leave the window; polled,
//! [`crate::floor::wait`]), the node is sampled for SAMPLE_SECONDS (every 0.5 s,
//! [`crate::memory_point::sample`]): VmRSS, RssAnon, RssFile (`/proc/PID/status`) and Pss
//! (`smaps_rollup`), and the floor, read from the node itself: every rung's media playlist
//! of every stream, and the size of every segment, LL-HLS part and init segment it lists.
//! Medians over the samples. RSS(0) is sampled the same way before the first stream. After
//! the last stream: the rungs the ingest shed (its metrics) and the node's and the ingest's
//! CPU ticks. Fresh processes every run.
//!
//! The ladder (`--ladder cheap`, the default): the default ladder's shape and bitrates (the
//! source and three encoded rungs at 3000 / 1200 / 730 kb/s, 2 s segments, window 6, CMAF
//! with 0.333 s parts) at a quarter of the pixels: the source 640x360 30 fps at 2500 kb/s,
//! encoded rungs of 360 / 270 / 180 lines, x264 ultrafast, one thread each (the product's
//! default ladder transcodes a 720p source at about 1.4 cores per stream, which a 2-core
//! machine cannot do for more than one stream in real time; what a node keeps depends on
//! bytes, rungs and parts, not on pixels). `--ladder default`: the product's defaults (no
//! configuration file) and a 1280x720 source.
//!
//! The report: [`crate::reports::stream_memory`] (`raw.jsonl`: one JSON object a point,
//! and one a run).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::harness::cluster::mosquitto;
use crate::harness::{get, say, wait_for, Work, STOP_GRACE, UNPINNED};
use crate::memory_point::{point_text, sample, Show};

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs, each with fresh processes.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// Live streams added one by one per run.
    #[arg(default_value_t = 3)]
    pub streams: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `cheap` (the default ladder's shape at a quarter of the pixels) or `default`.
    #[arg(long, env = "LADDER", default_value = "cheap")]
    pub ladder: String,
    /// Seconds each point is sampled (whole).
    #[arg(long, env = "SAMPLE_SECONDS", default_value_t = 4)]
    pub sample_seconds: u64,
    /// The node's tokio worker threads.
    #[arg(long, env = "NODE_WORKERS", default_value_t = 1)]
    pub node_workers: u64,
    /// Words put before the node's command, for experiments and profiles (`env
    /// MIMALLOC_PURGE_DELAY=0`, `valgrind --tool=massif …`); they must exec the node in
    /// their own process. The figures then describe that, not the product.
    #[arg(
        long,
        env = "NODE_PREFIX",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub node_prefix: String,
    /// The raw results (default bench/out/stream-memory.json).
    #[arg(long, env = "STREAM_MEMORY_RESULTS")]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// `[ladder] window`: the product's default, and the cheap ladder's.
const WINDOW: usize = 6;
/// `broadcast::stream::GRACE_SEGMENTS`: segments kept fetchable after the window.
pub const GRACE: i64 = 2;
/// The rungs of either ladder (the source and three encoded).
const RUNGS: usize = 4;
/// The source's bitrate, kb/s.
pub const SOURCE_KBPS: u64 = 2500;

/// The cheap ladder's configuration.
const CHEAP_CONFIG: &str = r#"[ingest]
encoder_threads = 1
end_grace_seconds = 2.0

[ladder]
segment_target = 2.0
window = 6
preset = "ultrafast"
format = "cmaf"
part_target = 0.333

[[ladder.rungs]]
name = "src"
kind = "source"

[[ladder.rungs]]
name = "360p"
kind = "encode"
height = 360
bitrate_kbps = 3000
maxrate_kbps = 3210
bufsize_kbits = 4500

[[ladder.rungs]]
name = "270p"
kind = "encode"
height = 270
bitrate_kbps = 1200
maxrate_kbps = 1284
bufsize_kbits = 1800

[[ladder.rungs]]
name = "180p"
kind = "encode"
height = 180
bitrate_kbps = 730
maxrate_kbps = 781
bufsize_kbits = 1095
"#;

/// What the report is told of the run besides the raw lines.
#[derive(Debug)]
pub struct Measured<'a> {
    /// `raw.jsonl`.
    pub raw: &'a Path,
    /// The source's picture size.
    pub size: &'static str,
}

/// Runs the benchmark; `report` is given the raw lines while the run's directory is still
/// there.
pub fn run(
    args: &Args,
    report: impl FnOnce(Measured<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure!(
        args.runs >= 1 && args.streams >= 1,
        "usage: bench/stream-memory.sh [RUNS [STREAMS]]"
    );
    ensure!(
        args.sample_seconds >= 1,
        "SAMPLE_SECONDS is a whole number of seconds"
    );
    let mut work = Work::temp("stream-memory")?;
    let (size, config) = match args.ladder.as_str() {
        "cheap" => {
            let config = work.path("sealcast.toml");
            std::fs::write(&config, CHEAP_CONFIG)?;
            ("640x360", Some(config))
        }
        "default" => ("1280x720", None),
        _ => bail!("LADDER is cheap or default"),
    };
    // The keys, once: root, push token, edge key, ingest1's signing key (no secret on a
    // command line: the roles find them through SEALCAST_KEYS_DIR).
    let keys = work.path("keys");
    let keys_data = work.path("keys-data");
    let out = sealcast(&args.bin, &[])
        .arg("keys")
        .arg("--data-dir")
        .arg(&keys_data)
        .arg("--keys-dir")
        .arg(&keys)
        .arg("init")
        .output()
        .context("running sealcast keys init")?;
    if !out.status.success() {
        let _ = std::io::stderr().write_all(&out.stdout);
        let _ = std::io::stderr().write_all(&out.stderr);
        bail!("sealcast keys init failed");
    }
    let raw = work.path("raw.jsonl");
    std::fs::write(&raw, "")?;
    for run in 1..=args.runs {
        one_run(&mut work, args, run, &keys, config.as_deref(), size, &raw)?;
    }
    report(Measured { raw: &raw, size })
}

/// `sealcast` with a clean environment and `envs`.
fn sealcast(bin: &Path, envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin);
    crate::harness::clean_env(&mut command);
    command.envs(envs.iter().copied());
    command
}

/// One run: the broker, the catalog with the streams, the ingest and the node; RSS(0), then
/// the streams one by one; the run's line; everything stopped.
fn one_run(
    work: &mut Work,
    args: &Args,
    run: u64,
    keys: &Path,
    config: Option<&Path>,
    size: &str,
    raw: &Path,
) -> anyhow::Result<()> {
    let dir = work.path(format!("run{run}"));
    std::fs::create_dir_all(&dir)?;
    let mqtt_url = mosquitto(work, UNPINNED)?;
    let mq_pid = work.pid("mosquitto").context("no mosquitto was started")?;
    let keys_dir = keys.display().to_string();
    let env = [
        ("SEALCAST_MQTT_URL", mqtt_url.as_str()),
        ("SEALCAST_KEYS_DIR", keys_dir.as_str()),
    ];
    let ingest_data = dir.join("ingest");
    // The stream keys stay in memory, for the sources' environment.
    let mut stream_keys = Vec::new();
    for k in 1..=args.streams {
        let out = sealcast(&args.bin, &env)
            .args(["streams", "add", &format!("s{k}"), "--data-dir"])
            .arg(&ingest_data)
            .output()
            .context("running sealcast streams add")?;
        ensure!(
            out.status.success(),
            "sealcast streams add failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        stream_keys.push(String::from_utf8(out.stdout)?.trim().to_owned());
    }
    let config_args: Vec<&OsStr> = match config {
        Some(c) => vec!["--config".as_ref(), c.as_os_str()],
        None => Vec::new(),
    };

    let mut ingest_args: Vec<&OsStr> = vec![
        "ingest".as_ref(),
        "--data-dir".as_ref(),
        ingest_data.as_os_str(),
    ];
    ingest_args.extend(&config_args);
    for (flag, value) in [
        ("--rtmp-listen", "127.0.0.1:0"),
        ("--srt-listen", "127.0.0.1:0"),
        ("--webrtc-listen", "127.0.0.1:0"),
        // Else `ingest` takes 0.0.0.0:8088 for WHIP, and two runs at once collide.
        ("--whip-listen", "127.0.0.1:0"),
        ("--metrics-listen", "127.0.0.1:0"),
        ("--node-id", "ingest1"),
    ] {
        ingest_args.extend([OsStr::new(flag), OsStr::new(value)]);
    }
    let ingest = work.start("ingest", UNPINNED, &args.bin, ingest_args, &env)?;
    // Polled until it is ready or has exited.
    wait_for(Duration::from_secs(30), || {
        work.out_has_line("ingest", "metrics ") || work.alive(ingest, "ingest").is_err()
    });
    if !work.out_has_line("ingest", "metrics ") {
        bail!("sealcast ingest did not start{}", work.logs());
    }
    let rtmp = work
        .out_field("ingest", "obs-server ")
        .context("the ingest printed no obs-server")?;
    let ingest_metrics = work
        .out_field("ingest", "metrics ")
        .context("the ingest printed no metrics")?;

    let node_data = dir.join("node");
    let workers = args.node_workers.to_string();
    let mut node_env = env.to_vec();
    node_env.push(("TOKIO_WORKER_THREADS", workers.as_str()));
    let mut prefix = args.node_prefix.split_whitespace();
    let (program, mut node_args): (PathBuf, Vec<&OsStr>) = match prefix.next() {
        Some(first) => {
            let mut a: Vec<&OsStr> = prefix.map(OsStr::new).collect();
            a.push(args.bin.as_os_str());
            (PathBuf::from(first), a)
        }
        None => (args.bin.clone(), Vec::new()),
    };
    node_args.extend([
        "broadcast".as_ref(),
        "--data-dir".as_ref(),
        node_data.as_os_str(),
    ]);
    node_args.extend(&config_args);
    for (flag, value) in [("--listen", "127.0.0.1:0"), ("--node-id", "sm-node")] {
        node_args.extend([OsStr::new(flag), OsStr::new(value)]);
    }
    let node_pid = work.start("node", UNPINNED, &program, node_args, &node_env)?;
    wait_for(Duration::from_secs(60), || {
        work.out_has_line("node", "sm-node ") || work.alive(node_pid, "node").is_err()
    });
    if !work.out_has_line("node", "sm-node ") {
        bail!("sealcast broadcast did not become ready{}", work.logs());
    }
    let node = work
        .out_field("node", "sm-node ")
        .context("the node printed no URL")?
        .trim_end_matches('/')
        .to_owned();

    // RSS(0), then the streams one by one.
    let seconds = args.sample_seconds as f64;
    let point = sample(&node, node_pid, seconds, &[])?;
    append(
        raw,
        &format!("{{\"run\": {run}, \"streams\": 0, \"point\": {point}}}"),
    )?;
    say(&format!(
        "stream-memory: run {run}: 0 streams: RSS {} KiB",
        point_text(&point, Show::Rss)?
    ));
    let mut sources = Vec::new();
    let mut names = Vec::new();
    for (k, key) in (1..=args.streams).zip(&stream_keys) {
        let name = format!("s{k}");
        let url = format!("{rtmp}/{key}");
        let bitrate = SOURCE_KBPS.to_string();
        let source = work.start(
            &format!("source{k}"),
            UNPINNED,
            &args.bin,
            [
                "source",
                "--size",
                size,
                "--fps",
                "30",
                "--bitrate",
                &bitrate,
                "--gop",
                "2",
            ],
            &[("SEALCAST_SOURCE_URL", &url)],
        )?;
        sources.push(source);
        names.push(name.clone());
        let t0 = Instant::now();
        if let Err(e) = crate::floor::wait(&node, &name, RUNGS, WINDOW, GRACE, 120.0) {
            say(&format!("{e:#}"));
            bail!("stream {name}: no full window on the node{}", work.logs());
        }
        let waited = t0.elapsed().as_secs();
        for p in &sources {
            if work.alive(*p, "sealcast source").is_err() {
                bail!("a publisher stopped{}", work.logs());
            }
        }
        let point = sample(&node, node_pid, seconds, &names)?;
        append(
            raw,
            &format!(
                "{{\"run\": {run}, \"streams\": {k}, \"wait_s\": {waited}, \"point\": {point}}}"
            ),
        )?;
        let listed: u64 = point_text(&point, Show::Rungs)?
            .parse()
            .context("the point's rungs")?;
        let want = k * RUNGS as u64;
        if listed != want {
            say(&format!(
                "stream-memory: run {run}: {k} streams list {listed} rungs, not {want}: a rung \
                 was shed (CPU), the floor misses it"
            ));
        }
        say(&format!(
            "stream-memory: run {run}: {k} streams (window full after {waited} s): {}",
            point_text(&point, Show::Summary)?
        ));
    }
    let shed = get(&ingest_metrics, None, 30)
        .map(|m| rungs_shed(&String::from_utf8_lossy(&m)))
        .unwrap_or_else(|| "0".to_owned());
    let ticks = |pid: u32| {
        crate::procstat::sample(&[pid])
            .watched
            .with_context(|| format!("no CPU time of {pid} in /proc"))
    };
    let (node_ticks, ingest_ticks) = (ticks(node_pid)?, ticks(ingest)?);
    let hz = crate::procstat::clock_ticks();
    append(
        raw,
        &format!(
            "{{\"run\": {run}, \"shed\": {shed}, \"node_ticks\": {node_ticks}, \
             \"ingest_ticks\": {ingest_ticks}, \"hz\": {hz}}}"
        ),
    )?;
    let logs: Vec<(String, String)> = ["node.err", "ingest.err"]
        .iter()
        .map(|log| {
            let path = work.path(log);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (path.display().to_string(), text)
        })
        .collect();
    let lines = logs.iter().flat_map(|(path, text)| warnings(path, text));
    for line in lines.take(20) {
        say(&format!("stream-memory: log: {line}"));
    }
    for p in sources {
        work.stop(&[p], STOP_GRACE);
    }
    work.stop(&[node_pid], STOP_GRACE);
    work.stop(&[ingest], STOP_GRACE);
    work.stop(&[mq_pid], STOP_GRACE);
    let _ = std::fs::remove_dir_all(node_data.join("recordings"));
    Ok(())
}

/// The rungs the ingest shed: every `sealcast_ingest_rungs_shed…` series summed, as awk's
/// `s += $NF` printed `s + 0`.
pub fn rungs_shed(metrics: &str) -> String {
    let total: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("sealcast_ingest_rungs_shed"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0;
    format!("{total}")
}

/// The warning and error lines of a log, each `FILE:LINE` cut to 300 characters, as
/// `grep -E " (WARN|ERROR) " FILES | cut -c1-300` printed them.
fn warnings<'a>(file: &'a str, text: &'a str) -> impl Iterator<Item = String> + 'a {
    text.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(move |l| format!("{file}:{l}").chars().take(300).collect())
}

/// Appends `line` and a newline to `file`.
fn append(file: &Path, line: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .with_context(|| file.display().to_string())?;
    writeln!(f, "{line}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_sheds_as_awk_summed_it() {
        let metrics = "# HELP sealcast_ingest_rungs_shed rungs shed\n\
                       sealcast_ingest_rungs_shed{stream=\"s1\"} 1\n\
                       sealcast_ingest_rungs_shed{stream=\"s2\"} 2\nsealcast_other 9\n";
        assert_eq!(rungs_shed(metrics), "3");
        assert_eq!(rungs_shed(""), "0");
    }

    #[test]
    fn warnings_are_grep_lines_with_their_file() {
        let log = "2026 INFO fine\n2026  WARN odd\n2026 ERROR bad\nWARN at the start\n";
        let lines: Vec<String> = warnings("/w/node.err", log).collect();
        assert_eq!(
            lines,
            ["/w/node.err:2026  WARN odd", "/w/node.err:2026 ERROR bad"]
        );
        let long = format!("x WARN {}", "y".repeat(400));
        assert_eq!(warnings("f", &long).next().map(|l| l.len()), Some(300));
    }
}

//! `sealcast-bench run capacity`: bench/capacity.sh, how many real-time viewers one edge
//! worker holds, ours against nginx (plain HTTP) and, through a load balancer over TLS,
//! ours against HAProxy, side by side on the same live stream, interleaved.
//!
//! The live stream ([`crate::harness::cluster`]): a cluster of separate processes, so that
//! the node under test runs alone on its core: a mosquitto broker, `sealcast ingest` and
//! `sealcast source` (a 640x360 30 fps test pattern, ~730 kb/s, 2 s GOP, real time, for
//! the whole run) on core 1, and one `sealcast broadcast` node (`TOKIO_WORKER_THREADS=1`)
//! on core 0. The ladder is the source rung only, named `360p` (the publisher's own H.264,
//! not re-encoded: no transcode CPU anywhere), CMAF, 2 s segments, a window of 6, no LL-HLS
//! parts (plain HLS, as the viewers play it).
//!
//! The peers:
//! - nginx (`worker_processes 1`, `sendfile on`, `access_log off`, no open_file_cache,
//!   core 0) serving a mirror of the node's live stream from tmpfs
//!   ([`crate::harness::peers::nginx_on_hls_mirror`]): a poller on core 1
//!   (`sealcast-bench mirror --interval 0.1`) asks the node for its 360p media playlist
//!   every 100 ms over keep-alive HTTP and, when it changed, fetches the new segments (and
//!   the init segment) first, then the playlist, each written to a temporary file and
//!   renamed into place, so nginx never serves a partial file nor a playlist listing a
//!   segment it lacks. Same bytes, the same window, at most ~100 ms behind the node. While
//!   nginx is measured the node moves to core 1 (it keeps taking the live stream and
//!   feeding the mirror), so core 0 is nginx's alone.
//! - HAProxy (`nbthread 1`, core 0) over TLS 1.3 with HTTP/2 by ALPN, in front of the same
//!   node, against `sealcast lb` (`TOKIO_WORKER_THREADS=1`, core 0), which finds the node
//!   by its signed presence over MQTT as in a cluster and keys its sticky cookie with the
//!   key `sealcast keys init` made; the same certificate (`sealcast certs`). HAProxy offers
//!   only the TLS 1.3 cipher suite ours picks; both negotiations are printed. In this part
//!   the node stays on core 0 with the load balancer under test: the count is what one
//!   load-balancer worker and one node worker on one core hold, and both peers pay the
//!   same node.
//!
//! The load: `sealcast-viewers` (one runtime thread, core 1) ramps viewers of the 360p
//! rung, each like hls.js (master, the media playlist once per target duration open loop,
//! every new segment as soon as it is listed, from the live edge; its own client and
//! keep-alive connections; plain HTTP/1.1 to the node and nginx, TLS + h2 through the load
//! balancers). Every STEP_SECS it adds viewers (START, then +STEP or ×GROWTH, whichever
//! adds more, up to MAX_VIEWERS; the TLS ramps have their own TLS_*; new viewers join over
//! the step's first JOIN_SECS) and judges the step on the requests that were due in it: it
//! passes when none failed and the segments' time to first byte (response headers, from
//! the time the request was due) has p99 < TTFB_MS. The count is the viewers of the last
//! step that passed. When the step that failed shows the load generator short of CPU
//! (issue lag p99 > LAG_LIMIT_MS, or core 1 busy ≥ GEN_BUSY), the report gives the count
//! as a lower bound, not as the server's; likewise a ramp that reached its maximum.
//!
//! RUNS runs; each runs the pairs A B, the order flipping every run (node nginx lb
//! haproxy, then nginx node haproxy lb, ...). The report (`sealcast-bench report
//! capacity`, [`crate::reports::capacity`]) gives the ratios ours/peer per run and the
//! peer against itself in consecutive runs (A/A) as the noise floor.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::harness::cluster::{mosquitto, LlCluster, Publishing, Started};
use crate::harness::peers::{cipher, haproxy_tls_front, nginx_on_hls_mirror, MirroredNginx};
use crate::harness::{get, open_files_limit, pin, program, say, today, version, wait_for, Work};
use crate::live::{progress_line, Ramp};
use crate::reports::capacity::Run;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs: each runs every system once.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-viewers`.
    #[arg(long)]
    pub viewers_bin: PathBuf,
    /// The parts, separated by spaces: 1 (node vs nginx), 2 (lb vs HAProxy).
    #[arg(long, env = "PARTS", default_value = "1 2")]
    pub parts: String,
    /// Seconds per step.
    #[arg(long, env = "STEP_SECS", default_value_t = 8.0)]
    pub step_secs: f64,
    /// Seconds over which a step's new viewers join.
    #[arg(long, env = "JOIN_SECS", default_value_t = 4.0)]
    pub join_secs: f64,
    /// Seconds before a step's judgement starts.
    #[arg(long, env = "SETTLE_SECS", default_value_t = 1.0)]
    pub settle_secs: f64,
    /// The segments' TTFB p99 a step must stay under, ms.
    #[arg(long, env = "TTFB_MS", default_value_t = 250.0)]
    pub ttfb_ms: f64,
    /// Plain HTTP ramps: the first step's viewers.
    #[arg(long, env = "START", default_value_t = 1000)]
    pub start: i64,
    /// Plain HTTP ramps: viewers added per step at least.
    #[arg(long, env = "STEP", default_value_t = 500)]
    pub step: i64,
    /// Plain HTTP ramps: growth per step at least.
    #[arg(long, env = "GROWTH", default_value_t = 1.25)]
    pub growth: f64,
    /// Plain HTTP ramps: the last step's viewers at most.
    #[arg(long, env = "MAX_VIEWERS", default_value_t = 9000)]
    pub max_viewers: i64,
    /// TLS ramps: the first step's viewers.
    #[arg(long, env = "TLS_START", default_value_t = 250)]
    pub tls_start: i64,
    /// TLS ramps: viewers added per step at least.
    #[arg(long, env = "TLS_STEP", default_value_t = 250)]
    pub tls_step: i64,
    /// TLS ramps: growth per step at least.
    #[arg(long, env = "TLS_GROWTH", default_value_t = 1.2)]
    pub tls_growth: f64,
    /// TLS ramps: the last step's viewers at most.
    #[arg(long, env = "TLS_MAX_VIEWERS", default_value_t = 6000)]
    pub tls_max_viewers: i64,
    /// Issue lag p99 (ms) above which the load generator was short of CPU.
    #[arg(long, env = "LAG_LIMIT_MS", default_value_t = 50.0)]
    pub lag_limit_ms: f64,
    /// Core 1's busy share from which the load generator was short of CPU.
    #[arg(long, env = "GEN_BUSY", default_value_t = 0.95)]
    pub gen_busy: f64,
    /// The raw results (default bench/out/capacity.json).
    #[arg(long, env = "CAPACITY_RESULTS")]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The ramps' directory and what the report is told of the run.
#[derive(Debug)]
pub struct Ramps<'a> {
    /// `SYSTEM-RUN.json` per system and run.
    pub dir: &'a Path,
    /// The run, as `report capacity` takes it.
    pub run: Run,
}

/// The stream's name.
const STREAM: &str = "cap";

/// Runs the benchmark; `report` is given the ramps while they are still on disk.
pub fn run(
    args: &Args,
    report: impl FnOnce(Ramps<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "usage: bench/capacity.sh [RUNS]");
    let parts: Vec<&str> = args.parts.split_whitespace().collect();
    ensure!(
        parts.iter().all(|p| matches!(*p, "1" | "2")),
        "PARTS is a list of 1 and 2"
    );
    let (part1, part2) = (parts.contains(&"1"), parts.contains(&"2"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        cores >= 2,
        "needs two cores (servers on core 0, everything else on core 1)"
    );
    // Every viewer holds up to two connections (HTTP/1.1), the servers one per connection.
    let nofile = open_files_limit()?;
    for m in [args.max_viewers, args.tls_max_viewers] {
        let need = 2 * m + 1000;
        ensure!(
            u64::try_from(need).is_ok_and(|n| n <= nofile),
            "MAX_VIEWERS={m} needs {need} open files; the limit is {nofile}"
        );
    }

    // --- 1. the cluster: broker, keys, node, ingest, live source
    let mut work = Work::tmpfs("capacity")?;
    let mqtt = mosquitto(&mut work, "1")?;
    let cluster = LlCluster::setup(&work, &args.bin, STREAM, 0.0, &mqtt)?;
    let node = cluster.node(
        &mut work,
        "capnode",
        "0",
        &[],
        &[("TOKIO_WORKER_THREADS", "1")],
    )?;
    let publishing = cluster.publish(&mut work, "1")?;
    let playlist = cluster.playlist("360p");
    let master = cluster.master();
    say("capacity: waiting for the node to list 3 segments of the live stream");
    let media_url = format!("{}{playlist}", node.url);
    if !wait_for(Duration::from_secs(60), || {
        get(&media_url, None, 2)
            .is_some_and(|body| segments_listed(&String::from_utf8_lossy(&body)) >= 3)
    }) {
        work.alive(publishing.source, "sealcast source")?;
        bail!("the node did not list 3 segments in 60 s{}", work.logs());
    }
    let node_master = get(&format!("{}{master}", node.url), None, 10).unwrap_or_default();
    let node_master = String::from_utf8_lossy(&node_master);
    ensure!(
        node_master
            .lines()
            .any(|l| l.starts_with("360p/index.m3u8")),
        "the master playlist does not list 360p/index.m3u8: {node_master}"
    );

    // --- 2. nginx on a mirror of the node's live stream
    let nginx = nginx_on_hls_mirror(&mut work, &node.url, STREAM, nofile, "0.1")?;
    let seg = nginx.same_part.clone();
    let seg_path = format!("/live/{STREAM}/360p/{seg}");
    let seg_bytes = get(&format!("{}{seg_path}", node.url), None, 10)
        .context("the node's segment")?
        .len();
    say(&format!(
        "capacity: node {} and nginx {} serve the same stream (segment {seg}: {seg_bytes} bytes)",
        node.url, nginx.url
    ));

    // --- 3. the load balancers over TLS, in front of the node
    let (mut ours_tls, mut ha_tls) = (String::new(), String::new());
    let (mut lb, mut haproxy) = (None, None);
    if part2 {
        let ours = cluster.lb_on(
            &mut work,
            "caplb",
            "0",
            &playlist,
            &[("TOKIO_WORKER_THREADS", "1")],
        )?;
        ours_tls = cipher(&ours.url, &cluster.ca)?;
        let suite = ours_tls
            .split_whitespace()
            .nth(1)
            .filter(|s| !s.is_empty())
            .context("no TLS cipher suite from our load balancer")?
            .to_owned();
        let node_port = node.url.rsplit(':').next().unwrap_or_default();
        let theirs = haproxy_tls_front(
            &mut work,
            &cluster.certs,
            &cluster.ca,
            &suite,
            (nofile / 2).saturating_sub(100),
            "120s",
            &format!("127.0.0.1:{node_port}"),
            &playlist,
        )?;
        ha_tls = cipher(&theirs.url, &cluster.ca)?;
        say(&format!(
            "capacity: TLS ours: {ours_tls}; HAProxy: {ha_tls}"
        ));
        ensure!(
            ha_tls.split_whitespace().nth(1) == Some(suite.as_str()),
            "HAProxy negotiated {ha_tls}, ours {ours_tls}"
        );
        let direct = get(&format!("{}{seg_path}", node.url), None, 10);
        for url in [&ours.url, &theirs.url] {
            ensure!(
                get(&format!("{url}{seg_path}"), Some(&cluster.ca), 10) == direct,
                "{url} serves different bytes for {seg}"
            );
        }
        lb = Some(ours);
        haproxy = Some(theirs);
    }

    // --- 4. ramps
    let ramps = work.path("ramps");
    std::fs::create_dir_all(&ramps)?;
    let systems = Systems {
        node: &node,
        nginx: &nginx,
        lb: lb.as_ref(),
        haproxy: haproxy.as_ref(),
        publishing,
        ca: &cluster.ca,
        master: &master,
    };
    let began = Instant::now();
    for run in 1..=args.runs {
        for system in order(run, part1, part2) {
            ramp_once(&mut work, args, &systems, system, run, &ramps)?;
        }
    }
    pin("0", &[node.pid])?;
    let elapsed = began.elapsed().as_secs() as i64;

    // --- 5. report
    let run = Run {
        runs: args.runs,
        parts: args.parts.clone(),
        step_secs: args.step_secs,
        join_secs: args.join_secs,
        ttfb_ms: args.ttfb_ms,
        start: args.start,
        step: args.step,
        growth: args.growth,
        max_viewers: args.max_viewers,
        tls_start: args.tls_start,
        tls_step: args.tls_step,
        tls_growth: args.tls_growth,
        tls_max_viewers: args.tls_max_viewers,
        lag_limit_ms: args.lag_limit_ms,
        gen_busy: args.gen_busy,
        segment_bytes: seg_bytes as i64,
        elapsed,
        ours_tls,
        ha_tls,
        nginx_version: version(&program("nginx"), "-v"),
        haproxy_version: version(&program("haproxy"), "-v"),
        date: today(false)?,
    };
    report(Ramps { dir: &ramps, run })
}

/// The systems of run `run` in order: the pairs A B (node nginx, lb haproxy) in odd runs,
/// B A in even ones.
pub fn order(run: u64, part1: bool, part2: bool) -> Vec<&'static str> {
    let mut order = Vec::new();
    let odd = run % 2 == 1;
    if part1 {
        order.extend(if odd {
            ["node", "nginx"]
        } else {
            ["nginx", "node"]
        });
    }
    if part2 {
        order.extend(if odd {
            ["lb", "haproxy"]
        } else {
            ["haproxy", "lb"]
        });
    }
    order
}

/// The lines of a media playlist that are not tags (`grep -vc '^#'`): its segments.
pub fn segments_listed(playlist: &str) -> usize {
    playlist.lines().filter(|l| !l.starts_with('#')).count()
}

/// What the servers a ramp may be against are.
struct Systems<'a> {
    node: &'a Started,
    nginx: &'a MirroredNginx,
    lb: Option<&'a Started>,
    haproxy: Option<&'a Started>,
    publishing: Publishing,
    ca: &'a Path,
    master: &'a str,
}

/// One ramp of `sealcast-viewers` (core 1, one thread) against `system` in run `run`, its
/// report in `ramps/SYSTEM-RUN.json`; the node on core 1 while nginx is measured, else on
/// core 0.
fn ramp_once(
    work: &mut Work,
    args: &Args,
    s: &Systems<'_>,
    system: &str,
    run: u64,
    ramps: &Path,
) -> anyhow::Result<()> {
    let node = s.node.pid;
    let missing = || format!("no {system} in this run");
    let ca = s.ca.display().to_string();
    let (url, watch, mut extra): (String, Vec<u32>, Vec<String>) = match system {
        "node" => (s.node.url.clone(), vec![node], vec!["--http1".into()]),
        "nginx" => (
            s.nginx.url.clone(),
            s.nginx.pids.clone(),
            vec!["--http1".into()],
        ),
        "lb" => {
            let lb = s.lb.with_context(missing)?;
            (lb.url.clone(), vec![lb.pid, node], vec!["--ca".into(), ca])
        }
        "haproxy" => {
            let haproxy = s.haproxy.with_context(missing)?;
            (
                haproxy.url.clone(),
                vec![haproxy.pid, node],
                vec!["--ca".into(), ca],
            )
        }
        other => bail!("no system {other} (node, nginx, lb, haproxy)"),
    };
    let (start, step, growth, max) = if matches!(system, "node" | "nginx") {
        (args.start, args.step, args.growth, args.max_viewers)
    } else {
        (
            args.tls_start,
            args.tls_step,
            args.tls_growth,
            args.tls_max_viewers,
        )
    };
    extra.extend([
        "--start".into(),
        start.to_string(),
        "--step".into(),
        step.to_string(),
        "--growth".into(),
        growth.to_string(),
        "--viewers".into(),
        max.to_string(),
    ]);
    for p in &watch {
        extra.extend(["--watch-pid".into(), p.to_string()]);
    }
    // The node leaves core 0 to nginx while nginx is measured.
    pin(if system == "nginx" { "1" } else { "0" }, &[node])?;
    work.alive(s.publishing.source, "sealcast source")?;
    work.alive(s.nginx.mirror, "the mirror")?;
    for p in &watch {
        work.alive(*p, system)?;
    }
    say(&format!("capacity: run {run}/{} {system}", args.runs));
    let out = ramps.join(format!("{system}-{run}.json"));
    let mut command = Command::new("taskset");
    crate::harness::clean_env(&mut command);
    command
        .args(["-c", "1"])
        .arg(&args.viewers_bin)
        .arg(format!("{url}{}", s.master))
        .args(["--rendition", "360p", "--threads", "1", "--timeout", "10"])
        .args(["--step-secs", &args.step_secs.to_string()])
        .args(["--join-secs", &args.join_secs.to_string()])
        .args(["--settle-secs", &args.settle_secs.to_string()])
        .args(["--stop-ttfb-ms", &args.ttfb_ms.to_string()])
        .args(&extra)
        .arg("--json")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("starting sealcast-viewers")?;
    // Progress: each step as it is judged, its other lines indented; the last few kept for
    // a failure.
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut err = std::io::stderr();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            let _ = write!(
                err,
                "{}",
                progress_line(Ramp::Capacity, &format!("{line}\n"))
            );
            tail.push(line);
            if tail.len() > 3 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait()?;
    ensure!(
        status.success(),
        "sealcast-viewers failed against {system}: {}",
        tail.join("\n")
    );
    ensure!(
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 0),
        "sealcast-viewers wrote no report for {system}"
    );
    // Connections closed, sockets gone, before the next ramp.
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_flips_every_run() {
        assert_eq!(order(1, true, true), ["node", "nginx", "lb", "haproxy"]);
        assert_eq!(order(2, true, true), ["nginx", "node", "haproxy", "lb"]);
        assert_eq!(order(3, false, true), ["lb", "haproxy"]);
        assert_eq!(order(4, true, false), ["nginx", "node"]);
    }

    #[test]
    fn the_segments_are_the_lines_not_tags() {
        let playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\n1.m4s\n\
                        #EXTINF:2.0,\n2.m4s\n";
        assert_eq!(segments_listed(playlist), 2);
        assert_eq!(segments_listed(""), 0);
    }
}

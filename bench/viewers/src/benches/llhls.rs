//! `sealcast-bench run llhls --row node|lb`: bench/llhls-node.sh and bench/llhls-lb.sh
//! (issue 33, the first two rows of "benchmarks of the real workload"), which were
//! bench/llhls-common.sh's bash.
//!
//! The live stream ([`crate::harness::cluster`]): a mosquitto broker, `sealcast ingest` and
//! `sealcast source` (a 640x360 30 fps test pattern, ~730 kb/s, 2 s GOP, real time, for the
//! whole run), and `sealcast broadcast` nodes. The ladder is the source rung only, named
//! `360p` (not re-encoded: no transcode CPU anywhere), CMAF, 2 s segments, LL-HLS parts of
//! `--part-target` (0.333 s, the shipping default), a window of 6.
//!
//! The systems:
//! - row `node`: `node`, `sealcast broadcast` at its shipping defaults (one tokio worker
//!   per core); `node-1w`, a second node fed by the same ingest with
//!   `TOKIO_WORKER_THREADS=1`, since the peer runs one worker; `nginx` (one worker,
//!   sendfile, no access log) serving a mirror of the node's LL-HLS files on tmpfs
//!   ([`crate::harness::peers::nginx_on_mirror`]), polled by its viewers (it cannot hold
//!   a request until a part exists). All over plain HTTP/1.1 keep-alive.
//! - row `lb`: `sealcast lb` over TLS in front of the node, at its defaults (`lb`) and
//!   with one worker (`lb-1w`), against HAProxy (one thread, the same TLS 1.3 suite) in
//!   front of the same node.
//!
//! The viewers: `sealcast-viewers --mode ll` (hls.js in low-latency mode: one blocking
//! playlist reload after another, the preload-hinted part asked for as soon as it is
//! hinted, every listed part, one client per viewer, each from its own loopback address,
//! `--sources`), or `--mode ll-poll` against nginx. The ramp: viewers arrive open loop
//! over the first JOIN_SECS of each STEP_SECS step; a step passes when no request failed,
//! no viewer stalled and the parts' TTFB p99 < TTFB_MS ([`mod@crate::ramp`]).
//!
//! Placement on this 2-core machine: the servers under test on core 0; broker, ingest,
//! source, mirror, the servers not under test and the load generator (one thread) on the
//! other core. Processes whose thread count is their default start on both cores and are
//! pinned before each ramp.
//!
//! RUNS runs; each runs every system once, the order rotating every run. The report
//! (`sealcast-bench report llhls`, [`crate::reports::llhls_common`]) reads the ramps.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::harness::cluster::{mosquitto, LlCluster, Started};
use crate::harness::peers::{cipher, haproxy_tls_front, nginx_on_mirror, MirroredNginx};
use crate::harness::{get, open_files_limit, pin, program, rotation, say, today, Work};
use crate::live::{progress_line, Ramp};
use crate::reports::llhls_common::{Row, Run};

/// What the scripts pass, and the environment variables they read (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs: each runs every system once.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// The row: `node` (bench/llhls-node.sh) or `lb` (bench/llhls-lb.sh).
    #[arg(long, value_enum)]
    pub row: Row,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-viewers`.
    #[arg(long)]
    pub viewers_bin: PathBuf,
    /// The systems, in order, separated by spaces (default: the row's all).
    #[arg(long, env = "SYSTEMS")]
    pub systems: Option<String>,
    /// The ramp's first step (node 200, lb 100).
    #[arg(long, env = "START")]
    pub start: Option<String>,
    /// Viewers added per step at least (node 200, lb 100).
    #[arg(long, env = "STEP")]
    pub step: Option<String>,
    /// Growth per step at least.
    #[arg(long, env = "GROWTH", default_value = "1.25")]
    pub growth: String,
    /// The ramp's last step at most (node 4000, lb 3000).
    #[arg(long, env = "MAX_VIEWERS")]
    pub max_viewers: Option<String>,
    /// Seconds per step.
    #[arg(long, env = "STEP_SECS", default_value = "8")]
    pub step_secs: String,
    /// Seconds over which a step's viewers arrive.
    #[arg(long, env = "JOIN_SECS", default_value = "4")]
    pub join_secs: String,
    /// Seconds before a step's judgement starts.
    #[arg(long, env = "SETTLE_SECS", default_value = "2")]
    pub settle_secs: String,
    /// The parts' TTFB p99 a step must stay under, ms.
    #[arg(long, env = "TTFB_MS", default_value = "250")]
    pub ttfb_ms: String,
    /// poisson or paced.
    #[arg(long, env = "ARRIVAL", default_value = "poisson")]
    pub arrival: String,
    /// Client addresses (0: every viewer from 127.0.0.1) (default MAX_VIEWERS).
    #[arg(long, env = "SOURCES")]
    pub sources: Option<String>,
    /// The parts' target duration.
    #[arg(long, env = "PART_TARGET", default_value_t = 0.333)]
    pub part_target: f64,
    /// Issue lag p99 (ms) from which the load generator was short of CPU.
    #[arg(long, env = "LAG_LIMIT_MS", default_value_t = 50.0)]
    pub lag_limit_ms: f64,
    /// Core 1's busy share from which the load generator was short of CPU.
    #[arg(long, env = "GEN_BUSY", default_value_t = 0.95)]
    pub gen_busy: f64,
    /// The raw results (default bench/out/llhls-ROW.json).
    #[arg(long, env = "LLHLS_RESULTS")]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The ramps' directory and what the report is told of the run.
#[derive(Debug)]
pub struct Ramps<'a> {
    /// `SYSTEM-RUN.json` (and `SYSTEM-RUN.counted`) per system and run.
    pub dir: &'a Path,
    /// The run, as `report llhls` takes it.
    pub run: Run,
}

/// The stream's name.
const STREAM: &str = "ll";

/// Runs the benchmark; `report` is given the ramps while they are still on disk.
pub fn run(
    args: &Args,
    report: impl FnOnce(Ramps<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let row = args.row;
    let (systems, start, step, max) = match row {
        Row::Node => ("node node-1w nginx", "200", "200", "4000"),
        Row::Lb => ("lb lb-1w haproxy", "100", "100", "3000"),
    };
    let systems = args.systems.clone().unwrap_or_else(|| systems.to_owned());
    let start = args.start.clone().unwrap_or_else(|| start.to_owned());
    let step = args.step.clone().unwrap_or_else(|| step.to_owned());
    let max_viewers = args.max_viewers.clone().unwrap_or_else(|| max.to_owned());
    let sources = args.sources.clone().unwrap_or_else(|| max_viewers.clone());
    let name = format!("llhls-{}", row_name(row));
    ensure!(args.runs >= 1, "usage: bench/{name}.sh [RUNS]");
    ensure!(
        matches!(args.arrival.as_str(), "poisson" | "paced"),
        "ARRIVAL is poisson or paced"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    ensure!(
        cores >= 2,
        "needs two cores (servers on core 0, everything else on core 1)"
    );
    let max_n: u64 = max_viewers.parse().context("MAX_VIEWERS is a count")?;
    // An LL-HLS viewer over HTTP/1.1 keeps up to 3 connections (a held reload, a held hint,
    // a part), over HTTP/2 one; a proxy one more to the node per held request.
    let nofile = open_files_limit()?;
    ensure!(
        4 * max_n + 1000 <= nofile,
        "MAX_VIEWERS={max_n} needs {} open files; the limit is {nofile}",
        4 * max_n + 1000
    );

    let mut work = Work::tmpfs(&name)?;
    let mqtt = mosquitto(&mut work, "1")?;
    let cluster = LlCluster::setup(&work, &args.bin, STREAM, args.part_target, &mqtt)?;
    let playlist = cluster.playlist("360p");
    let node = cluster.node(&mut work, "llnode", "0,1", &[], &[])?;
    let node1w = match row {
        Row::Node => Some(cluster.node(
            &mut work,
            "llnode1w",
            "0,1",
            &[],
            &[("TOKIO_WORKER_THREADS", "1")],
        )?),
        Row::Lb => None,
    };
    let publishing = cluster.publish(&mut work, "1")?;
    say(&format!(
        "{name}: waiting for the node to list 3 segments with parts"
    ));
    if !cluster.wait_listed(&node.url, "360p", Duration::from_secs(60)) {
        work.alive(publishing.source, "sealcast source")?;
        bail!(
            "the node did not list 3 segments with parts in 60 s{}",
            work.logs()
        );
    }
    if let Some(n) = &node1w {
        ensure!(
            cluster.wait_listed(&n.url, "360p", Duration::from_secs(20)),
            "the second node did not list the stream"
        );
    }
    let listed = get(&format!("{}{playlist}", node.url), None, 5).context("the node's playlist")?;
    let part = crate::harness::last_part_uri(&String::from_utf8_lossy(&listed))
        .map(str::to_owned)
        .context("the node lists no part")?;
    let part_bytes = get(&format!("{}/live/{STREAM}/360p/{part}", node.url), None, 5)
        .context("the node's last part")?
        .len();
    say(&format!("{name}: live, a part is {part_bytes} bytes"));

    let mut servers = Servers {
        node: node.clone(),
        node1w: node1w.clone(),
        nginx: None,
        lb: None,
        lb1w: None,
        haproxy: None,
    };
    let (mut server_tls, mut peer_tls) = (String::new(), String::new());
    match row {
        Row::Node => {
            let upstream = node1w.as_ref().map_or(&node.url, |n| &n.url);
            let nginx = nginx_on_mirror(&mut work, upstream, STREAM, nofile)?;
            say(&format!(
                "{name}: nginx {} mirrors the node (part {}: the same bytes)",
                nginx.url, nginx.same_part
            ));
            servers.nginx = Some(nginx);
        }
        Row::Lb => {
            let lb = cluster.lb(&mut work, "lldefault", &playlist, &[])?;
            let lb1w = cluster.lb(
                &mut work,
                "ll1w",
                &playlist,
                &[("TOKIO_WORKER_THREADS", "1")],
            )?;
            server_tls = cipher(&lb.url, &cluster.ca)?;
            let suite = server_tls
                .split_whitespace()
                .nth(1)
                .context("no TLS cipher suite from our load balancer")?
                .to_owned();
            let node_port = node.url.rsplit(':').next().unwrap_or_default();
            // Timeouts above the node's hold of a blocking request (3 target durations).
            let haproxy = haproxy_tls_front(
                &mut work,
                &cluster.certs,
                &cluster.ca,
                &suite,
                (nofile / 2).saturating_sub(100),
                "120s",
                &format!("127.0.0.1:{node_port}"),
                &playlist,
            )?;
            peer_tls = cipher(&haproxy.url, &cluster.ca)?;
            say(&format!(
                "{name}: TLS ours: {server_tls}; HAProxy: {peer_tls}"
            ));
            ensure!(
                peer_tls.split_whitespace().nth(1) == Some(suite.as_str()),
                "HAProxy negotiated {peer_tls}, ours {server_tls}"
            );
            servers.lb = Some(lb);
            servers.lb1w = Some(lb1w);
            servers.haproxy = Some(haproxy);
        }
    }

    let ramps = work.path("ramps");
    std::fs::create_dir_all(&ramps)?;
    let order: Vec<&str> = systems.split_whitespace().collect();
    ensure!(!order.is_empty(), "SYSTEMS names no system");
    let master = cluster.master();
    let began = Instant::now();
    for run in 1..=args.runs {
        // Rotate: each system leads once in every len(SYSTEMS) runs.
        for &system in rotation(&order, run) {
            let ramp = RampOf {
                system,
                run,
                runs: args.runs,
                out: &ramps,
                name: &name,
                publishing_source: publishing.source,
                ca: &cluster.ca,
                master: &master,
            };
            ramp_once(
                &mut work,
                args,
                &servers,
                &ramp,
                (
                    start.as_str(),
                    step.as_str(),
                    max_viewers.as_str(),
                    sources.as_str(),
                ),
            )?;
        }
    }
    let elapsed = began.elapsed().as_secs() as i64;

    let version = |program_name: &str, flag: &str| -> String {
        Command::new(program(program_name))
            .arg(flag)
            .output()
            .map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text.trim_end().to_owned()
            })
            .unwrap_or_default()
    };
    let run = Run {
        row,
        runs: args.runs,
        cores,
        systems: systems.clone(),
        step_secs: args.step_secs.clone(),
        join_secs: args.join_secs.clone(),
        ttfb_ms: args.ttfb_ms.clone(),
        start,
        step,
        growth: args.growth.clone(),
        max_viewers,
        arrival: args.arrival.clone(),
        sources,
        part_target: args.part_target,
        part_bytes: part_bytes as i64,
        elapsed,
        lag_limit_ms: args.lag_limit_ms,
        gen_busy: args.gen_busy,
        server_tls,
        peer_tls,
        nginx_version: version("nginx", "-v"),
        haproxy_version: version("haproxy", "-v"),
        date: today(false)?,
    };
    report(Ramps { dir: &ramps, run })
}

/// The servers a ramp may be against.
struct Servers {
    node: Started,
    node1w: Option<Started>,
    nginx: Option<MirroredNginx>,
    lb: Option<Started>,
    lb1w: Option<Started>,
    haproxy: Option<Started>,
}

/// One ramp: against which system, in which run.
struct RampOf<'a> {
    system: &'a str,
    run: u64,
    runs: u64,
    out: &'a Path,
    name: &'a str,
    publishing_source: u32,
    ca: &'a Path,
    master: &'a str,
}

/// One ramp of `sealcast-viewers` (core 1, one thread) against the system, its report in
/// `ramps/SYSTEM-RUN.json`; the servers under test pinned to core 0, the others to core 1.
fn ramp_once(
    work: &mut Work,
    args: &Args,
    s: &Servers,
    ramp: &RampOf<'_>,
    (start, step, max_viewers, sources): (&str, &str, &str, &str),
) -> anyhow::Result<()> {
    let system = ramp.system;
    let pid = |x: &Option<Started>| x.as_ref().map(|x| x.pid);
    let need = |x: Option<u32>, what: &str| x.with_context(|| format!("no {what} in this row"));
    let node = s.node.pid;
    let mut mode = "ll";
    let mut extra: Vec<String> = vec!["--http1".into()];
    let (url, watch): (String, Vec<u32>) = match system {
        "node" => {
            let other = need(pid(&s.node1w), "node-1w")?;
            pin("0", &[node])?;
            pin("1", &[other])?;
            (s.node.url.clone(), vec![node])
        }
        "node-1w" => {
            let one = need(pid(&s.node1w), "node-1w")?;
            pin("0", &[one])?;
            pin("1", &[node])?;
            (
                s.node1w.as_ref().map(|n| n.url.clone()).unwrap_or_default(),
                vec![one],
            )
        }
        "nginx" => {
            let nginx = s.nginx.as_ref().context("no nginx in this row")?;
            let mut others = vec![node];
            others.extend(pid(&s.node1w));
            pin("1", &others)?;
            mode = "ll-poll";
            (nginx.url.clone(), nginx.pids.clone())
        }
        "lb" | "lb-1w" | "haproxy" => {
            let lb = need(pid(&s.lb), "lb")?;
            let lb1w = need(pid(&s.lb1w), "lb-1w")?;
            extra = vec!["--ca".into(), ramp.ca.display().to_string()];
            match system {
                "lb" => {
                    pin("0", &[lb, node])?;
                    pin("1", &[lb1w])?;
                    (
                        s.lb.as_ref().map(|l| l.url.clone()).unwrap_or_default(),
                        vec![lb, node],
                    )
                }
                "lb-1w" => {
                    pin("0", &[lb1w, node])?;
                    pin("1", &[lb])?;
                    (
                        s.lb1w.as_ref().map(|l| l.url.clone()).unwrap_or_default(),
                        vec![lb1w, node],
                    )
                }
                _ => {
                    let haproxy = s.haproxy.as_ref().context("no HAProxy in this row")?;
                    pin("0", &[node])?;
                    pin("1", &[lb, lb1w])?;
                    (haproxy.url.clone(), vec![haproxy.pid, node])
                }
            }
        }
        other => bail!("no system {other} (node, node-1w, nginx, lb, lb-1w, haproxy)"),
    };
    for p in &watch {
        extra.extend(["--watch-pid".into(), p.to_string()]);
        work.alive(*p, system)?;
    }
    work.alive(ramp.publishing_source, "sealcast source")?;
    say(&format!(
        "{}: run {}/{} {system}",
        ramp.name, ramp.run, ramp.runs
    ));
    let out = ramp.out.join(format!("{system}-{}.json", ramp.run));
    let seed = ramp.run.to_string();
    let timeout = "15".to_string();
    let mut command = Command::new("taskset");
    crate::harness::clean_env(&mut command);
    command
        .args(["-c", "1"])
        .arg(&args.viewers_bin)
        .arg(format!("{url}{}", ramp.master))
        .args(["--mode", mode, "--arrival", &args.arrival, "--seed", &seed])
        .args([
            "--rendition",
            "360p",
            "--threads",
            "1",
            "--timeout",
            &timeout,
        ])
        .args([
            "--step-secs",
            &args.step_secs,
            "--join-secs",
            &args.join_secs,
        ])
        .args([
            "--settle-secs",
            &args.settle_secs,
            "--stop-ttfb-ms",
            &args.ttfb_ms,
        ])
        .args(["--start", start, "--step", step, "--growth", &args.growth])
        .args(["--viewers", max_viewers, "--sources", sources])
        .args(&extra)
        .arg("--json")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("starting sealcast-viewers")?;
    // Its step lines as progress lines, its other lines indented, as they come; the last
    // few kept for a failure.
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let mut err = std::io::stderr();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            let _ = write!(err, "{}", progress_line(Ramp::Llhls, &format!("{line}\n")));
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
    // Through ours, which collapses playlist requests only for viewers the node counted
    // lately: the viewers the node counts now (the last 10 s, so the ramp's last step).
    if matches!(system, "lb" | "lb-1w") {
        if let Some(metrics) = get(&format!("{}/metrics", s.node.url), None, 2) {
            let counted = viewers_counted(&String::from_utf8_lossy(&metrics));
            std::fs::write(
                ramp.out.join(format!("{system}-{}.counted", ramp.run)),
                format!("{counted}\n"),
            )?;
        }
    }
    // Connections closed, sockets gone, before the next ramp.
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

/// The viewers a node counts: `sealcast_viewers` series summed (awk's `n += $NF`, printed
/// as `n + 0`).
pub fn viewers_counted(metrics: &str) -> String {
    let total: f64 = metrics
        .lines()
        .filter(|l| {
            l.strip_prefix("sealcast_viewers")
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>()
        // An empty sum is -0; awk's `n + 0` prints 0.
        + 0.0;
    format!("{total}")
}

/// `node` or `lb`, as the scripts' names have it.
fn row_name(row: Row) -> &'static str {
    match row {
        Row::Node => "node",
        Row::Lb => "lb",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_counts_its_viewers_as_awk_summed_them() {
        let metrics = "# TYPE sealcast_viewers gauge\nsealcast_viewers{stream=\"ll\"} 120\n\
                       sealcast_viewers{stream=\"x\"} 3\nsealcast_viewers_total 9\n";
        assert_eq!(viewers_counted(metrics), "123");
        assert_eq!(viewers_counted(""), "0");
    }
}

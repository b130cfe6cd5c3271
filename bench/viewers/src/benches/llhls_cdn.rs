//! `sealcast-bench run llhls-cdn`: bench/llhls-cdn.sh (issue 33, the third row of
//! "benchmarks of the real workload"), which was bash: LL-HLS viewers through a cache tier
//! (Varnish with deploy/varnish/sealcast.vcl) in front of the load balancer. What it
//! shows: how many requests reach the origin as the audience grows (the goal: flat, the
//! same at 100, 1,000 and 10,000 viewers), and the latency the cache adds (goal ≤ 0.3 s at
//! p50).
//!
//! The live stream ([`crate::harness::cluster`]): a mosquitto broker, `sealcast ingest` and
//! `sealcast source` (a 640x360 30 fps test pattern, ~730 kb/s, 2 s GOP, real time), the
//! source rung only, named `360p` (not re-encoded), CMAF, 2 s segments, LL-HLS parts of
//! `--part-target` (0.333 s, the shipping default), a window of 6; one `sealcast broadcast`
//! node and one `sealcast lb`, both at their shipping defaults (one tokio worker per core),
//! the node found by its signed presence over MQTT. The load balancer also listens on its
//! origin listener (`--origin-listen`: plain HTTP, for a cache; Varnish does not speak TLS
//! to a backend), and Varnish (Debian's 7.1, the VCL of deploy/varnish/, an `origin.vcl`
//! written here naming that listener: [`crate::harness::peers::varnish`]) sits in front of
//! it. Varnish is started afresh on a new port before every audience: the threads of
//! 10,000 HTTP/2 sessions keep about 2 MB of memory each after their viewers left (20 GB
//! of the machine's 24), and the next audience would be measured on a machine short of
//! memory. Before each audience, once Varnish is back, the stream must be listed again at
//! the node, through the load balancer and through Varnish (after an audience the machine
//! could not serve, the node may have fallen behind its ingest and the load balancer may
//! have taken it out of rotation for a while).
//!
//! Placement on this 2-core machine: node, load balancer and Varnish on core 0; broker,
//! ingest, source and the load generator (`sealcast-viewers`, one thread) on core 1.
//!
//! Systems, each a fixed audience for STEP_SECS (viewers arriving open loop, Poisson, over
//! the first JOIN_SECS), interleaved over RUNS runs, the order rotating every run:
//! - `lb-100`: 100 viewers straight to the load balancer over TLS + HTTP/2, the reference
//!   for the latency the cache adds;
//! - `cdn-N` for each N of AUDIENCES (100 1000 10000): N viewers through Varnish over
//!   HTTP/2 without TLS (h2c, one connection per viewer as a browser has to a CDN;
//!   HTTP/1.1 would need up to three per viewer, 30,000 descriptors at 10,000 viewers,
//!   over this machine's limit of 20,000 per process).
//!
//! Each viewer is `sealcast-viewers --mode ll` (bench/viewers, src/ll.rs): like hls.js in
//! low-latency mode, one blocking reload after another, the preload-hinted part asked for
//! as it is hinted, every listed part, delta updates.
//!
//! Measured in each run of each system, over the part of the step after the viewers
//! joined (from JOIN_SECS + 1 s to the step's end; [`crate::reports::llhls_cdn`]):
//! - origin requests per second: the node's own request counter
//!   (`sealcast_http_requests_total`, the routes a viewer's request reaches: master, media,
//!   part, segment, init; not the load balancer's health checks), sampled every second by
//!   `sealcast-bench sample llhls-cdn-origin` ([`crate::live::origin_samples`], a process
//!   of its own for the run's audience, started 1 s before the viewers); and per part per
//!   rendition (divided by the parts the node published per second, from its playlist at
//!   the end);
//! - Varnish's backend requests, hits and misses (varnishstat) over the same time;
//! - what the viewers saw: latency behind the live edge (wall clock at a part's arrival
//!   minus its EXT-X-PROGRAM-DATE-TIME), part time to first byte, blocking-reload waits,
//!   stalls, failed requests, requests per second; and how late the generator issued its
//!   requests and its CPU. When it was short of CPU (issue lag p99 > LAG_LIMIT_MS, or core
//!   1 ≥ GEN_BUSY busy), the audience asked for is more than the machine could generate:
//!   the row says the client was the limit.
//!
//! The latency the cache adds: latency behind the edge p50 of `cdn-100` minus that of
//! `lb-100` in the same run (median over runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};

use crate::harness::cluster::{mosquitto, LlCluster, Started};
use crate::harness::peers::{children, varnish, varnish_vcl, varnish_version};
use crate::harness::{get, open_files_limit, rotation, say, today, wait_for, Work};
use crate::live::{free_port, window_listed};
use crate::reports::llhls_cdn::{parts_per_second, step, Run};

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs: each measures every system once.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-viewers`.
    #[arg(long)]
    pub viewers_bin: PathBuf,
    /// The audiences through the cache (`cdn-N`), viewer counts separated by spaces.
    #[arg(long, env = "AUDIENCES", default_value = "100 1000 10000")]
    pub audiences: String,
    /// Seconds each audience is measured.
    #[arg(long, env = "STEP_SECS", default_value_t = 30)]
    pub step_secs: u64,
    /// Seconds over which an audience's viewers arrive.
    #[arg(long, env = "JOIN_SECS", default_value_t = 10)]
    pub join_secs: u64,
    /// The parts' target duration.
    #[arg(long, env = "PART_TARGET", default_value_t = 0.333)]
    pub part_target: f64,
    /// Issue lag p99 (ms) from which the load generator was short of CPU.
    #[arg(long, env = "LAG_LIMIT_MS", default_value_t = 50.0)]
    pub lag_limit_ms: f64,
    /// Core 1's busy share from which the load generator was short of CPU.
    #[arg(long, env = "GEN_BUSY", default_value_t = 0.95)]
    pub gen_busy: f64,
    /// Varnish's worker threads at most (its HTTP/2 sessions hold one each).
    #[arg(long, env = "VARNISH_THREADS", default_value_t = 12000)]
    pub varnish_threads: u64,
    /// The raw results (default bench/out/llhls-cdn.json).
    #[arg(long, env = "LLHLS_RESULTS")]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The runs' directory and what the report is told of the run.
#[derive(Debug)]
pub struct Runs<'a> {
    /// `SYSTEM-RUN.json`, `.times` and `.samples` per system and run.
    pub dir: &'a Path,
    /// The run, as `report llhls-cdn` takes it.
    pub run: Run,
}

/// The stream's name.
const STREAM: &str = "ll";
/// The name progress lines and failures go by.
const NAME: &str = "llhls-cdn";

/// Runs the benchmark; `report` is given the runs while they are still on disk.
pub fn run(args: &Args, report: impl FnOnce(Runs<'_>) -> anyhow::Result<()>) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "usage: bench/llhls-cdn.sh [RUNS]");
    let audiences: Vec<&str> = args.audiences.split_whitespace().collect();
    for n in &audiences {
        ensure!(
            is_count(n),
            "AUDIENCES are viewer counts: {}",
            args.audiences
        );
    }
    ensure!(
        args.step_secs > args.join_secs + 3,
        "STEP_SECS must leave at least 3 s after JOIN_SECS"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
    ensure!(
        cores >= 2,
        "needs two cores (servers on core 0, everything else on core 1)"
    );
    let nofile = open_files_limit()?;
    let most = audiences
        .iter()
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    ensure!(
        most + 1000 <= nofile,
        "{most} viewers need {} open files; the limit is {nofile}",
        most + 1000
    );

    // --- 1. the live stream, its node and its load balancer
    let mut work = Work::tmpfs(NAME)?;
    let mqtt = mosquitto(&mut work, "1")?;
    let cluster = LlCluster::setup(&work, &args.bin, STREAM, args.part_target, &mqtt)?;
    let node = cluster.node(&mut work, "llnode", "0", &[], &[])?;
    let publishing = cluster.publish(&mut work, "1")?;
    // Every emulated viewer has this machine's one address: no per-client limits (issue
    // 34), as behind a CDN, whose addresses a deployment exempts the same way.
    let origin_port = free_port()?;
    let origin_listen = format!("127.0.0.1:{origin_port}");
    let lb = cluster.lb_started(
        &mut work,
        "llcdn",
        "0",
        &["--origin-listen", &origin_listen],
    )?;

    // --- 2. Varnish in front of the load balancer's origin listener
    let vcl = varnish_vcl(&work, origin_port)?;
    let varnish = varnish(&mut work, &vcl, args.varnish_threads)?;
    let mut servers = Servers {
        node,
        lb,
        varnish,
        source: publishing.source,
        ca: cluster.ca.clone(),
        playlist: cluster.playlist("360p"),
        vcl,
        threads: args.varnish_threads,
    };
    say(&format!(
        "{NAME}: waiting for the stream through the load balancer and Varnish"
    ));
    servers.listed(&mut work, 60)?;
    let master = cluster.master();
    let cache_status = header(
        &format!("{}{master}", servers.varnish.url),
        "x-sealcast-cache",
    );
    ensure!(
        cache_status.is_some_and(|s| !s.is_empty()),
        "Varnish answered without x-sealcast-cache: not deploy/varnish/sealcast.vcl?{}",
        work.logs()
    );
    say(&format!(
        "{NAME}: live; Varnish {} in front of {} (origin listener :{origin_port})",
        servers.varnish.url, servers.lb.url
    ));

    // --- 3. runs
    let runs_dir = work.path("runs");
    std::fs::create_dir_all(&runs_dir)?;
    let mut systems = vec!["lb-100".to_owned()];
    systems.extend(audiences.iter().map(|n| format!("cdn-{n}")));
    let began = Instant::now();
    for run in 1..=args.runs {
        // Rotate: each system leads once in every len(SYSTEMS) runs.
        for system in rotation(&systems, run) {
            let one = One {
                system,
                run,
                dir: &runs_dir,
                master: &master,
            };
            audience(&mut work, args, &mut servers, &one)?;
        }
    }
    let elapsed = began.elapsed().as_secs() as i64;
    // Parts the node published per second over the runs, from its playlist: PART-TARGET
    // is what the segmenter aims at; the measured rate is what the per-part figures
    // divide by.
    let playlist = get(
        &format!("{}{}", servers.node.url, servers.playlist),
        None,
        5,
    )
    .context("the node's playlist did not answer")?;
    let parts_per_sec = parts_per_second(&String::from_utf8_lossy(&playlist))?
        .parse()
        .context("the parts per second")?;

    // --- 4. report
    let run = Run {
        runs: args.runs,
        systems: systems.join(" "),
        step_secs: args.step_secs as f64,
        join_secs: args.join_secs as f64,
        lag_limit_ms: args.lag_limit_ms,
        gen_busy: args.gen_busy,
        parts_per_sec,
        part_target: args.part_target,
        cores,
        varnish_version: varnish_version(),
        elapsed,
        date: today(false)?,
    };
    report(Runs {
        dir: &runs_dir,
        run,
    })
}

/// Whether `n` is a viewer count as the script's `^[1-9][0-9]*$` had it.
fn is_count(n: &str) -> bool {
    !n.starts_with('0') && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
}

/// The servers under test and what restarting Varnish needs.
struct Servers {
    node: Started,
    lb: Started,
    varnish: Started,
    /// `sealcast source`.
    source: u32,
    /// The CA the load balancer's certificate chains to.
    ca: PathBuf,
    /// The media playlist's path.
    playlist: String,
    /// Varnish's `origin.vcl` directory.
    vcl: PathBuf,
    /// Varnish's worker threads at most.
    threads: u64,
}

impl Servers {
    /// Waits for the stream to be listed (three segments and their parts: a window to
    /// join) at the node (within `node_secs`), then through the load balancer (60 s) and
    /// through Varnish (20 s).
    fn listed(&self, work: &mut Work, node_secs: u64) -> anyhow::Result<()> {
        if !listed(&self.node.url, &self.playlist, None, node_secs) {
            work.alive(self.source, "sealcast source")?;
            bail!(
                "the node did not list 3 segments with parts in {node_secs} s{}",
                work.logs()
            );
        }
        if !listed(&self.lb.url, &self.playlist, Some(&self.ca), 60) {
            work.alive(self.lb.pid, "sealcast lb")?;
            bail!("the load balancer did not answer in 60 s{}", work.logs());
        }
        if !listed(&self.varnish.url, &self.playlist, None, 20) {
            work.alive(self.varnish.pid, "Varnish")?;
            bail!("Varnish did not answer in 20 s{}", work.logs());
        }
        Ok(())
    }

    /// A fresh Varnish on a new port, once the stream is listed again; how long that
    /// took, when it took a while.
    fn restart_varnish(&mut self, work: &mut Work) -> anyhow::Result<()> {
        let t0 = Instant::now();
        work.stop(&[self.varnish.pid], Duration::from_secs(60));
        self.varnish = varnish(work, &self.vcl, self.threads)?;
        self.listed(work, 120)?;
        let took = t0.elapsed().as_secs();
        if took >= 5 {
            say(&format!(
                "{NAME}: the stream was listed again after {took} s"
            ));
        }
        Ok(())
    }
}

/// Whether `base` + `playlist` lists a window to join within `secs` (`curl -sf
/// --max-time 2`, trusting `ca`, piped to `sealcast-bench check ll-window`).
fn listed(base: &str, playlist: &str, ca: Option<&Path>, secs: u64) -> bool {
    let url = format!("{base}{playlist}");
    wait_for(Duration::from_secs(secs), || {
        get(&url, ca, 2).is_some_and(|body| window_listed(&String::from_utf8_lossy(&body)))
    })
}

/// The value of the response header `name` of a GET of `url` (`curl -s -o /dev/null -D
/// -`), none when it has none.
fn header(url: &str, name: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", url])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    header_value(&String::from_utf8_lossy(&out.stdout), name)
}

/// The value of the header `name` (any case) in a response's head, as the script's `tr -d
/// '\r' | awk -F': ' 'tolower($1) == NAME { print $2 }'` found it.
fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.trim_end_matches('\r').split_once(": ")?;
        key.eq_ignore_ascii_case(name).then(|| value.to_owned())
    })
}

/// One audience: which system, in which run.
struct One<'a> {
    system: &'a str,
    run: u64,
    dir: &'a Path,
    master: &'a str,
}

/// The time now as `date +%s.%N` prints it.
fn unix_now() -> anyhow::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock")?;
    Ok(format!("{}.{:09}", now.as_secs(), now.subsec_nanos()))
}

/// One fixed audience of the system (`lb-N` or `cdn-N`): a fresh Varnish, the origin
/// sampler, then `sealcast-viewers` (core 1, one thread); the viewers' report in
/// `runs/SYSTEM-RUN.json`, the samples in `.samples`, the start and end times in `.times`.
fn audience(work: &mut Work, args: &Args, s: &mut Servers, one: &One<'_>) -> anyhow::Result<()> {
    let (system, run) = (one.system, one.run);
    let n = system
        .split_once('-')
        .map(|(_, n)| n)
        .context("a system is lb-N or cdn-N")?;
    for pid in [s.node.pid, s.lb.pid, s.varnish.pid, s.source] {
        work.alive(pid, &format!("a server (pid {pid})"))?;
    }
    say(&format!("{NAME}: run {run}/{} {system}", args.runs));
    s.restart_varnish(work)?;
    let (url, extra): (&str, Vec<String>) = if system.starts_with("lb-") {
        (&s.lb.url, vec!["--ca".into(), s.ca.display().to_string()])
    } else if system.starts_with("cdn-") {
        (&s.varnish.url, vec!["--h2c".into()])
    } else {
        bail!("no system {system} (lb-N, cdn-N)");
    };
    let base = one.dir.join(format!("{system}-{run}"));
    let with = |ext: &str| base.with_extension(ext);
    // Every second, "unix-time node-requests varnish-backend-requests hits misses", the
    // node's requests summed over the routes viewers reach, until stopped.
    let me = std::env::current_exe().context("this program's path")?;
    let samples = with("samples");
    let varnish_dir = work.path("varnish");
    let sampler = work.start_unpinned(
        "sample",
        &me,
        [
            "sample".as_ref(),
            "llhls-cdn-origin".as_ref(),
            s.node.url.as_ref(),
            varnish_dir.as_os_str(),
            samples.as_os_str(),
        ] as [&std::ffi::OsStr; 5],
        &[],
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let times = with("times");
    std::fs::write(&times, unix_now()? + "\n")?;
    // Varnish's manager and its child (the cache): the CPU of both is the cache's.
    let mut watch = vec![s.node.pid, s.lb.pid, s.varnish.pid];
    watch.extend(children(s.varnish.pid)?);
    let report = with("json");
    let err = with("err");
    let seed = run.to_string();
    let (step_secs, join_secs) = (args.step_secs.to_string(), args.join_secs.to_string());
    let mut command = Command::new("taskset");
    crate::harness::clean_env(&mut command);
    command
        .args(["-c", "1"])
        .arg(&args.viewers_bin)
        .arg(format!("{url}{}", one.master))
        .args(["--mode", "ll", "--arrival", "poisson", "--seed", &seed])
        .args(["--rendition", "360p", "--threads", "1", "--timeout", "15"])
        .args(["--step-secs", &step_secs, "--join-secs", &join_secs])
        .args(["--settle-secs", "2", "--stop-ttfb-ms", "1000000"])
        .args(["--start", n, "--step", n, "--viewers", n])
        .args(&extra);
    for pid in &watch {
        command.args(["--watch-pid", &pid.to_string()]);
    }
    command
        .arg("--json")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).with_context(|| err.display().to_string())?);
    let status = command.status().context("starting sealcast-viewers")?;
    if !status.success() {
        let log = std::fs::read_to_string(&err).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        bail!(
            "sealcast-viewers failed against {system}: {}{}",
            lines[lines.len().saturating_sub(3)..].join("\n"),
            work.logs()
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&times)
        .with_context(|| times.display().to_string())?;
    std::io::Write::write_all(&mut file, (unix_now()? + "\n").as_bytes())?;
    work.stop(&[sampler], Duration::from_secs(5));
    ensure!(
        std::fs::metadata(&report).is_ok_and(|m| m.len() > 0),
        "sealcast-viewers wrote no report for {system}{}",
        work.logs()
    );
    match std::fs::read_to_string(&report)
        .map_err(anyhow::Error::from)
        .and_then(|text| step(&text))
    {
        Ok(line) => say(&line),
        Err(e) => say(&format!("{NAME}: no progress line for {system}: {e:#}")),
    }
    // Connections closed, sockets gone, the cache's held objects expired, before the next.
    std::thread::sleep(Duration::from_secs(5));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_counts_as_the_script_had_them() {
        for good in ["1", "100", "10000"] {
            assert!(is_count(good), "{good}");
        }
        for bad in ["", "0", "012", "1e3", "-5", "+5", "10 "] {
            assert!(!is_count(bad), "{bad}");
        }
    }

    #[test]
    fn the_cache_status_is_read_from_the_head() {
        let head = "HTTP/1.1 200 OK\r\nX-Sealcast-Cache: MISS\r\nAge: 0\r\n\r\n";
        assert_eq!(
            header_value(head, "x-sealcast-cache").as_deref(),
            Some("MISS")
        );
        assert_eq!(header_value(head, "via"), None);
    }

    #[test]
    fn the_times_are_date_s_n() {
        let now = unix_now().expect("the clock");
        let (secs, nanos) = now.split_once('.').expect("a dot");
        assert!(
            secs.parse::<u64>().is_ok_and(|s| s > 1_600_000_000),
            "{now}"
        );
        assert_eq!(nanos.len(), 9, "{now}");
    }
}

//! `sealcast-bench run memory`: bench/memory.sh (issue 18): the resident memory a server
//! adds for each idle keep-alive viewer connection, ours against the peers, side by side in
//! the same run.
//!
//! Every measurement gets fresh processes (a process keeps memory it freed, so a second
//! load on the same one would look free), none of them pinned:
//! - `node`: `sealcast up --broadcast 1` at the binary's defaults (a tokio worker per core,
//!   [`crate::harness::up::up`]), a 4 s `sealcast source` publish so that its live
//!   playlists exist (the stream ends; its playlists stay), then CONNECTIONS connections to
//!   the node's own port over plain HTTP/1.1;
//! - `node-1w`: the same with `TOKIO_WORKER_THREADS=1`, as the peers run one worker;
//! - `nginx`: nginx (`worker_processes 1`, [`crate::harness::peers::nginx_idle`]) serving a
//!   copy of the same master playlist from the run's directory (tmpfs), plain HTTP/1.1;
//! - `lb`, `lb-1w`: the same through `up`'s load balancer (Pingora) over TLS, HTTP/2 by
//!   ALPN;
//! - `haproxy`: HAProxy (`nbthread 1`, [`crate::harness::peers::haproxy_idle`]) over TLS,
//!   HTTP/2 by ALPN, in front of that `up`'s node, TLS 1.3 offering only the cipher suite
//!   ours picks (both printed, [`crate::harness::peers::cipher_h2`]).
//!
//! Each connection (`sealcast-idle`, its own client) asks once for the master playlist,
//! reads the answer whole and then stays open, idle. The server's resident memory (VmRSS,
//! all its processes: nginx's master and worker) is read once settled
//! ([`crate::harness::settled_rss_kib`]) before the connections open (after five requests,
//! so that what one request sets up once is in it) and after they all have their answer;
//! the difference over the connections held is the figure. RUNS runs, the targets
//! interleaved (the order turns every run); median with min–max, and each peer's spread as
//! its noise. The report: [`crate::reports::memory`] (`raw.txt` and `ciphers`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::peers::{children, cipher_h2, haproxy_idle, nginx_idle};
use crate::harness::up::{up, UpArgs};
use crate::harness::{get, open_files_limit, say, settled_rss_kib, wait_for, Work, STOP_GRACE};
use crate::reports::python::parse_json;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs: each measures every target once.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// Connections held per measurement (9,000 by default, not the 10,000: HAProxy
    /// reserves two descriptors per client connection and the open-file limit here is
    /// 20,000).
    #[arg(default_value_t = 9000)]
    pub connections: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-idle`.
    #[arg(long)]
    pub idle_bin: PathBuf,
    /// The targets, in order, separated by spaces.
    #[arg(
        long,
        env = "TARGETS",
        default_value = "node node-1w nginx lb lb-1w haproxy"
    )]
    pub targets: String,
    /// Consecutive samples (one a second) within 1 % that make a settled RSS.
    #[arg(long, env = "SETTLE", default_value_t = 12)]
    pub settle: usize,
    /// The raw results (default bench/out/memory.json).
    #[arg(long, env = "MEMORY_RESULTS")]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The master playlist every connection asks for.
const MASTER: &str = "/live/main/master.m3u8";

/// Runs the benchmark; `report` is given `raw.txt` and `ciphers` while the run's directory
/// is still there.
pub fn run(
    args: &Args,
    report: impl FnOnce(&Path, &Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure!(
        args.runs >= 1 && args.connections >= 1,
        "usage: bench/memory.sh [RUNS [CONNECTIONS]]"
    );
    let nofile = open_files_limit()?;
    ensure!(
        nofile > args.connections + 512,
        "the open-file limit ({nofile}) is below {} connections",
        args.connections
    );
    let targets: Vec<&str> = args.targets.split_whitespace().collect();
    ensure!(!targets.is_empty(), "TARGETS names no target");
    for target in &targets {
        ensure!(
            matches!(
                *target,
                "node" | "node-1w" | "nginx" | "lb" | "lb-1w" | "haproxy"
            ),
            "no target {target} (node, node-1w, nginx, lb, lb-1w, haproxy)"
        );
    }
    let mut work = Work::tmpfs("memory")?;
    let raw = work.path("raw.txt");
    // The TLS version and suite each TLS target negotiated (none when no target is TLS).
    let ciphers = work.path("ciphers");
    std::fs::write(&raw, "")?;
    std::fs::write(&ciphers, "")?;
    for run in 1..=args.runs {
        // The order turns every run.
        let turn = (run as usize - 1) % targets.len();
        let order = targets[turn..].iter().chain(&targets[..turn]);
        for &target in order {
            let r = measure(&mut work, args, target, &ciphers)?;
            say(&format!(
                "memory: run {run} {target}: {r} (RSS KiB before, after; connections open, failed)"
            ));
            append(&raw, &format!("{run} {target} {r}"))?;
        }
    }
    report(&raw, &ciphers)
}

/// One target measured with fresh processes: "BEFORE AFTER OPEN FAILED".
fn measure(work: &mut Work, args: &Args, target: &str, ciphers: &Path) -> anyhow::Result<String> {
    let workers = target.ends_with("-1w").then_some("1");
    let up_dir = work.path("up");
    let r = match target {
        "node" | "node-1w" => {
            let up = start_up(work, args, &up_dir, workers)?;
            let url = format!("{}{MASTER}", up.node);
            let r = hold(work, args, &url, &[up.pid], &["--http1"])?;
            work.stop(&[up.pid], STOP_GRACE);
            r
        }
        "nginx" => {
            let up = start_up(work, args, &up_dir, None)?;
            let www = work.path("www");
            if www.exists() {
                std::fs::remove_dir_all(&www)?;
            }
            std::fs::create_dir_all(www.join("live/main"))?;
            let master = get(&format!("{}{MASTER}", up.node), None, 10)
                .context("the node's master playlist")?;
            std::fs::write(www.join("live/main/master.m3u8"), master)?;
            work.stop(&[up.pid], STOP_GRACE);
            readable(&www)?;
            let nginx = nginx_idle(work, &www, args.connections, MASTER)?;
            let mut pids = vec![nginx.pid];
            pids.extend(children(nginx.pid)?);
            let url = format!("{}{MASTER}", nginx.url);
            let r = hold(work, args, &url, &pids, &["--http1"])?;
            work.stop(&[nginx.pid], STOP_GRACE);
            r
        }
        "lb" | "lb-1w" => {
            let up = start_up(work, args, &up_dir, workers)?;
            let tls = cipher_h2(&up.player, &up.ca)?;
            say(&format!("memory: lb TLS {tls}"));
            append(ciphers, &format!("lb-cipher {tls}"))?;
            let url = format!("{}{MASTER}", up.player);
            let ca = up.ca.display().to_string();
            let r = hold(work, args, &url, &[up.pid], &["--ca", &ca])?;
            work.stop(&[up.pid], STOP_GRACE);
            r
        }
        _ => {
            let up = start_up(work, args, &up_dir, None)?;
            // HAProxy offers only the suite our load balancer picks, so both pay the same.
            let ours = cipher_h2(&up.player, &up.ca)?;
            let suite = ours
                .split_whitespace()
                .nth(1)
                .context("no TLS cipher suite from our load balancer")?;
            let server = up.node.trim_start_matches("http://");
            let haproxy = haproxy_idle(
                work,
                &up.certs,
                &up.ca,
                suite,
                args.connections + 200,
                server,
                MASTER,
            )?;
            let tls = cipher_h2(&haproxy.url, &up.ca)?;
            say(&format!("memory: haproxy TLS {tls}"));
            append(ciphers, &format!("haproxy-cipher {tls}"))?;
            let url = format!("{}{MASTER}", haproxy.url);
            let ca = up.ca.display().to_string();
            let r = hold(work, args, &url, &[haproxy.pid], &["--ca", &ca])?;
            work.stop(&[haproxy.pid], STOP_GRACE);
            work.stop(&[up.pid], STOP_GRACE);
            r
        }
    };
    Ok(r)
}

/// `sealcast up` with one broadcast node, started by [`start_up`].
#[derive(Debug)]
struct UpOne {
    /// Its pid (every role is in this one process).
    pid: u32,
    /// The node's base URL (`broadcast1`, plain HTTP), without a trailing `/`.
    node: String,
    /// The load balancer's base URL (`player`, HTTPS), without a trailing `/`.
    player: String,
    /// `--certs-dir`: the load balancer's `server.pem` and `server.key`.
    certs: PathBuf,
    /// The CA's certificate, which the load balancer's chains to.
    ca: PathBuf,
}

/// A fresh `sealcast up --broadcast 1 --no-limits` ([`up`]; every connection of a
/// benchmark comes from one address, which the per-client limits would refuse after a few
/// hundred), its data and certificates in `dir` (emptied first), every listener on a free
/// port of 127.0.0.1, not pinned, with `TOKIO_WORKER_THREADS=workers` when given (else
/// the binary's default, a worker per core), once it printed its URLs (at most 30 s);
/// then its stream `main` published for 4 s (it ends; its playlists stay), once its node
/// lists it (at most 20 s).
fn start_up(
    work: &mut Work,
    args: &Args,
    dir: &Path,
    workers: Option<&str>,
) -> anyhow::Result<UpOne> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let envs: Vec<(&str, &str)> = workers
        .map(|w| ("TOKIO_WORKER_THREADS", w))
        .into_iter()
        .collect();
    let started = up(
        work,
        "up",
        &args.bin,
        &UpArgs::defaults(dir, 1).no_limits().loopback(),
        1,
        Duration::from_secs(30),
        &envs,
    )?;
    let certs = dir.join("certs");
    let up = UpOne {
        pid: started.pid,
        node: started.url("broadcast1")?,
        player: started.url("player")?,
        ca: certs.join("ca.pem"),
        certs,
    };
    let rtmp = started.url("obs-server")?;
    let key = started
        .stream_key("main")
        .context("sealcast up printed no key for main")?;
    // The key goes only into the source's environment.
    let source_url = format!("{rtmp}/{key}");
    let log = std::fs::File::create(dir.join("source.log"))?;
    let mut source = Command::new(&args.bin);
    crate::harness::clean_env(&mut source);
    let status = source
        .args([
            "source",
            "--size",
            "640x360",
            "--fps",
            "30",
            "--duration",
            "4",
        ])
        .env("SEALCAST_SOURCE_URL", &source_url)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running sealcast source")?;
    if !status.success() {
        let log = std::fs::read_to_string(dir.join("source.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("sealcast source failed ({status}):\n{}", tail.join("\n"));
    }
    let master = format!("{}{MASTER}", up.node);
    if !wait_for(Duration::from_secs(20), || get(&master, None, 10).is_some()) {
        work.alive(up.pid, "sealcast up")?;
        bail!("the node lists no stream{}", work.logs());
    }
    Ok(up)
}

/// Opens the connections to `url` (`sealcast-idle` with `idle_args`) and reads the resident
/// memory of `pids` settled before they open and once all have answered; "BEFORE AFTER OPEN
/// FAILED".
fn hold(
    work: &mut Work,
    args: &Args,
    url: &str,
    pids: &[u32],
    idle_args: &[&str],
) -> anyhow::Result<String> {
    // A few requests first, so that what one request sets up once is in "before".
    for _ in 0..5 {
        let _ = Command::new("curl")
            .args(["-sfk", "-o", "/dev/null", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let before = settled(pids, args.settle)?;
    let (out, err) = (work.path("idle.out"), work.path("idle.err"));
    let mut idle = Command::new(&args.idle_bin);
    crate::harness::clean_env(&mut idle);
    let connections = args.connections.to_string();
    let child = idle
        .arg(url)
        .args(["--connections", &connections, "--concurrency", "64"])
        .args(idle_args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .spawn()
        .context("starting sealcast-idle")?;
    // It holds its connections until its standard input closes: dropping `Holding` closes
    // it (and a failure here ends it with the rest).
    let mut holding = Holding(child);
    wait_for(Duration::from_secs(120), || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 0)
            || !matches!(holding.0.try_wait(), Ok(None))
    });
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let line = text.lines().next().unwrap_or_default().to_owned();
    if line.is_empty() {
        let err = std::fs::read_to_string(&err).unwrap_or_default();
        let _ = std::io::stderr().write_all(err.as_bytes());
        bail!("sealcast-idle gave no report for {url}");
    }
    let after = settled(pids, args.settle)?;
    drop(holding.0.stdin.take());
    let _ = holding.0.wait();
    let report = parse_json(&line).with_context(|| format!("sealcast-idle's report: {line}"))?;
    let field = |key: &str| -> anyhow::Result<i64> {
        report
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .with_context(|| format!("no {key} in sealcast-idle's report: {line}"))
    };
    let (open, failed) = (field("open")?, field("failed")?);
    if failed != 0 {
        say(&format!(
            "memory: {failed} of {} connections to {url} failed: {line}",
            args.connections
        ));
    }
    Ok(format!("{before} {after} {open} {failed}"))
}

/// `sealcast-idle` while it holds its connections; on drop its standard input closes and
/// it is waited for.
struct Holding(Child);

impl Drop for Holding {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The settled resident memory of `pids` ([`settled_rss_kib`]), saying so when it did not
/// settle.
fn settled(pids: &[u32], settle: usize) -> anyhow::Result<u64> {
    let (kib, settled) = settled_rss_kib(pids, settle)?;
    if !settled {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        say(&format!(
            "memory: RSS of {} did not settle in 90 s; last sample taken",
            pids.join(" ")
        ));
    }
    Ok(kib)
}

/// `chmod -R a+rX`: every file under `dir` readable by all, every directory also
/// searchable (nginx's worker drops privileges).
fn readable(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir)?;
    let mode = meta.permissions().mode();
    let add = if meta.is_dir() || mode & 0o111 != 0 {
        0o555
    } else {
        0o444
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | add))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            readable(&entry?.path())?;
        }
    }
    Ok(())
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

//! `sealcast-bench run lb-profile`: bench/lb-profile.sh, where the load balancer's CPU
//! goes, counted repeatably: user-space instructions per request of `sealcast lb`
//! (Pingora) and of HAProxy 2.6, each run under valgrind's callgrind with the same load, in
//! front of the same nginx backend (`bench/peers/nginx/lb-profile-backend.conf`, the
//! files of [`crate::harness::backends::backend_files`]), over TLS 1.3 (one suite, h2 by
//! ALPN), sticky by cookie. Instruction counts do not depend on what else the machine runs, so this
//! complements bench/lb.sh's CPU-seconds (which include the kernel's share).
//!
//! Our load balancer finds the backend by its signed presence on the run's own Mosquitto;
//! HAProxy by its configuration (`bench/peers/haproxy/lb-profile.cfg`). Each is started
//! under callgrind with instrumentation off (`--instr-atstart=no`), pinned to core 1, with
//! one thread (`TOKIO_WORKER_THREADS=1`, `--no-collapse` as bench/lb.sh has it); h2load and
//! the backend on core 0.
//!
//! For the playlist (193 B): h2load -c CLIENTS -n REQUESTS --rps PLAYLIST_RPS; for the
//! segment (200 KiB): -c SEG_CLIENTS -n REQUESTS/20 (rounded up) --rps SEGMENT_RPS; each
//! with the backend's cookie, after an uncounted warm-up (4 requests per client, so the
//! pool to the backend is full). Instrumentation is switched on just before the load and
//! off just after it (`callgrind_control -i`): start-up, certificates, the cookie fetch and
//! the warm-up are not counted; the clients' TLS handshakes are. callgrind writes its
//! counts when the process exits (SIGTERM, SIGKILL after 60 s); `callgrind_annotate` lists
//! them. The order: the playlist (ours, then HAProxy), then the segment likewise. The
//! report ([`crate::reports::lb_profile`]) breaks ours down by crate.
//!
//! Read with care (the report's notes say it too): valgrind's virtual CPU has no SHA
//! extensions and no VAES, and counts every byte a `rep movsb` copies as one instruction.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::backends::{
    backend_files, haproxy_pem, port_of, publish_retained, sign_presence, PLAYLIST, SEGMENT,
};
use crate::harness::cluster::{keys_and_certs, mosquitto};
use crate::harness::peers::nginx;
use crate::harness::{all_cores, peer_file, program, render, say, wait_for, Work};
use crate::live::free_port;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Playlist requests counted (a twentieth as many segments).
    #[arg(default_value_t = 20000)]
    pub requests: u64,
    /// h2load's clients for the playlist.
    #[arg(default_value_t = 100)]
    pub clients: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-presence`: signs the backend's presence.
    #[arg(long)]
    pub presence_bin: PathBuf,
    /// Playlist requests per second per client: paced well below what a load balancer
    /// manages under valgrind (~50x slower), so its health checks keep answering in time.
    #[arg(long, env = "PLAYLIST_RPS", default_value_t = 2)]
    pub playlist_rps: u64,
    /// Segment requests per second per client.
    #[arg(long, env = "SEGMENT_RPS", default_value_t = 1)]
    pub segment_rps: u64,
    /// h2load's clients for the segment: 200 KiB answers at 100 a second are more than a
    /// load balancer under valgrind keeps up with while its health checks answer in time.
    #[arg(long, env = "SEG_CLIENTS", default_value_t = 10)]
    pub seg_clients: u64,
    /// The raw results.
    #[arg(
        long,
        env = "LB_PROFILE_RESULTS",
        default_value = "bench/out/lb-profile.json"
    )]
    pub results: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

impl Args {
    /// Segment requests counted: a twentieth of the playlist's, rounded up.
    pub fn seg_requests(&self) -> u64 {
        self.requests.div_ceil(20)
    }
}

/// The one TLS 1.3 suite the clients offer.
const TLS13_CIPHER: &str = "TLS_AES_128_GCM_SHA256";

/// The run's fixed parts, for each profile.
struct Bench<'a> {
    args: &'a Args,
    mqtt_url: String,
    backend: u16,
    data: PathBuf,
    certs: PathBuf,
    ca: PathBuf,
    pem: PathBuf,
}

/// Runs the benchmark; `report` is given the run's directory (`cg.NAME.KIND.txt` and
/// `cg.NAME.KIND.h2load` per load balancer and kind) while it is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    ensure!(
        args.requests >= 1 && args.clients >= 1,
        "usage: bench/lb-profile.sh [REQUESTS [CLIENTS]]"
    );
    let mut work = Work::tmpfs("lbprof")?;

    // The backend, the broker, keys.
    let www = work.path("www");
    backend_files(&www)?;
    let backend = free_port()?;
    nginx(
        &mut work,
        "nginx",
        "0",
        "nginx/lb-profile-backend.conf",
        "nginx",
        &[
            ("PORT", &backend.to_string()),
            ("ROOT", &www.display().to_string()),
        ],
    )?;
    let mqtt_url = mosquitto(&mut work, &all_cores())?;
    let (data, certs) = keys_and_certs(&work, &args.bin)?;
    let pem = haproxy_pem(&work, &certs)?;
    let presence = work.path("presence");
    sign_presence(
        &args.presence_bin,
        &data.join("keys"),
        "bench-b1",
        &format!("http://127.0.0.1:{backend}"),
        &presence,
    )?;
    let mq_port = port_of(&mqtt_url)?;
    for _ in 0..100 {
        if publish_retained(mq_port, 2, "sealcast/v1/nodes/bench-b1/presence", &presence) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let bench = Bench {
        args,
        mqtt_url,
        backend,
        ca: certs.join("ca.pem"),
        data,
        certs,
        pem,
    };
    for kind in ["playlist", "segment"] {
        for name in ["sealcast", "haproxy"] {
            bench.profile(&mut work, name, kind)?;
        }
    }
    report(work.dir())
}

impl Bench<'_> {
    /// Starts the load balancer `name` under callgrind (instrumentation off), its counts to
    /// go to `out`; its pid and base URL once it answers.
    fn start(&self, work: &mut Work, name: &str, out: &Path) -> anyhow::Result<(u32, String)> {
        let port = free_port()?;
        let mut vg: Vec<String> = vec![
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", out.display()),
            "--dump-instr=no".into(),
            "--instr-atstart=no".into(),
        ];
        let pid = if name == "sealcast" {
            vg.push(self.args.bin.display().to_string());
            vg.extend(
                [
                    "lb",
                    "--data-dir",
                    &self.data.display().to_string(),
                    "--certs-dir",
                    &self.certs.display().to_string(),
                    "--mqtt-url",
                    &self.mqtt_url,
                    "--https-listen",
                    &format!("127.0.0.1:{port}"),
                    "--http-listen",
                    &format!("127.0.0.1:{}", free_port()?),
                    "--metrics-listen",
                    &format!("127.0.0.1:{}", free_port()?),
                    "--node-id",
                    "bench-lb",
                    "--no-access-log",
                    "--no-limits",
                    "--no-collapse",
                ]
                .map(String::from),
            );
            work.start(
                "lb",
                "1",
                &program("valgrind"),
                &vg,
                &[("TOKIO_WORKER_THREADS", "1")],
            )?
        } else {
            let conf = work.path("haproxy.cfg");
            render(
                &peer_file("haproxy/lb-profile.cfg"),
                &conf,
                &[
                    ("PORT", &port.to_string()),
                    ("PEM", &self.pem.display().to_string()),
                    ("BACKEND_PORT", &self.backend.to_string()),
                ],
            )?;
            vg.push(program("haproxy").display().to_string());
            vg.extend(["-db".into(), "-f".into(), conf.display().to_string()]);
            work.start("haproxy", "1", &program("valgrind"), &vg, &[])?
        };
        let base = format!("https://localhost:{port}");
        if !self.wait_ok(120, &format!("{base}{PLAYLIST}")) {
            bail!(
                "lb-profile: {name} did not answer under valgrind in 120 s{}",
                work.logs()
            );
        }
        Ok((pid, base))
    }

    /// One profiled run of `name` under the `kind` load: its instructions in
    /// `WORK/cg.NAME.KIND` (`.txt`: callgrind_annotate's listing; `.h2load`: h2load's
    /// lines on what succeeded and what TLS it negotiated, on one line).
    fn profile(&self, work: &mut Work, name: &str, kind: &str) -> anyhow::Result<()> {
        let out = work.path(format!("cg.{name}.{kind}"));
        let (pid, base) = self.start(work, name, &out)?;
        let cookie = cookie(&format!("{base}{PLAYLIST}"), &self.ca)
            .with_context(|| format!("lb-profile: {name} issued no sticky cookie"))?;
        let args = self.args;
        let (n, path, rps, clients) = if kind == "playlist" {
            (args.requests, PLAYLIST, args.playlist_rps, args.clients)
        } else {
            (
                args.seg_requests(),
                SEGMENT,
                args.segment_rps,
                args.seg_clients,
            )
        };
        let url = format!("{base}{path}");
        let header = format!("cookie: {cookie}");
        let suite = format!("--tls13-ciphers={TLS13_CIPHER}");
        let c = clients.to_string();
        // Warm-up, not counted: CLIENTS connections each, so the pool to the backend is
        // full (under valgrind, 100 connections opened at once can miss the 1 s connect
        // timeout).
        let warm = (clients * 4).to_string();
        let _ = h2load(&["-t1", "-c", &c, "-n", &warm, &suite, "-H", &header, &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        ensure!(
            self.wait_ok(30, &url),
            "lb-profile: {name} does not answer after the warm-up"
        );
        callgrind_control("on", pid)?;
        let (n, rps) = (n.to_string(), rps.to_string());
        let loaded = h2load(&[
            "-t1", "-c", &c, "-n", &n, "--rps", &rps, &suite, "-H", &header, &url,
        ])
        .output()
        .context("running h2load")?;
        let mut printed = loaded.stdout;
        printed.extend(loaded.stderr);
        let h2load_file = work.path(format!("h2load.{name}.{kind}"));
        std::fs::write(&h2load_file, &printed)?;
        let printed = String::from_utf8_lossy(&printed);
        ensure!(
            loaded.status.success(),
            "lb-profile: h2load failed on {name}\n{printed}"
        );
        callgrind_control("off", pid)?;
        // callgrind writes its counts when the process exits.
        work.stop(&[pid], Duration::from_secs(60));
        ensure!(
            std::fs::metadata(&out).is_ok_and(|m| m.len() > 0),
            "lb-profile: callgrind wrote nothing for {name}"
        );
        let annotated = Command::new("callgrind_annotate")
            .args(["--auto=no", "--threshold=100"])
            .arg(&out)
            .output()
            .context("running callgrind_annotate")?;
        ensure!(
            annotated.status.success(),
            "callgrind_annotate failed on {}",
            out.display()
        );
        std::fs::write(work.path(format!("cg.{name}.{kind}.txt")), annotated.stdout)?;
        let summary: String = printed
            .lines()
            .filter(|l| {
                [
                    "succeeded",
                    "TLS Protocol",
                    "Cipher",
                    "Application protocol",
                ]
                .iter()
                .any(|w| l.contains(w))
            })
            .map(|l| format!("{l} "))
            .collect();
        std::fs::write(work.path(format!("cg.{name}.{kind}.h2load")), &summary)?;
        let head: String = summary.bytes().take(200).map(char::from).collect();
        say(&format!("lb-profile: {name} {kind}: {head}"));
        Ok(())
    }

    /// Whether `url` answers (`curl -sf`, 5 s at most each) within `secs` seconds,
    /// trusting the run's CA.
    fn wait_ok(&self, secs: u64, url: &str) -> bool {
        wait_for(Duration::from_secs(secs), || {
            crate::harness::get(url, Some(&self.ca), 5).is_some()
        })
    }
}

/// h2load on core 0 with `args`.
fn h2load(args: &[&str]) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-c", "0"]).arg(program("h2load")).args(args);
    command
}

/// `callgrind_control -i on|off PID`: instrumentation switched.
fn callgrind_control(switch: &str, pid: u32) -> anyhow::Result<()> {
    let status = Command::new("callgrind_control")
        .args(["-i", switch, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running callgrind_control")?;
    ensure!(
        status.success(),
        "callgrind_control -i {switch} {pid} failed"
    );
    Ok(())
}

/// The sticky cookie (`sealcast_node=…`) a new viewer of `url` is given, trusting `ca`.
fn cookie(url: &str, ca: &Path) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(ca)
        .args(["-D", "-", "-o", "/dev/null", url])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let headers = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    headers.lines().find_map(|line| {
        let (key, value) = line.split_once(": ")?;
        let value = value.strip_prefix("sealcast_node=").map(|_| value)?;
        key.eq_ignore_ascii_case("set-cookie")
            .then(|| value.split(';').next().unwrap_or(value).to_owned())
    })
}

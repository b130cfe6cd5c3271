//! `sealcast-bench run lb`: bench/lb.sh, load-balancer overhead: `sealcast lb` (Pingora)
//! against HAProxy 2.6, both sticky by cookie, over TLS with HTTP/2, in front of the same
//! two backends.
//!
//! Backends: two nginx instances (`worker_processes 1`, files on tmpfs:
//! `bench/peers/nginx/lb-backend.conf`) serving `/live/bench/src/index.m3u8` (a small
//! playlist), `/live/bench/src/1.ts` (~200 KB of TS packets with random payload) and
//! `/healthz`, each adding `x-sealcast-node: bench-b1` / `bench-b2`, with a `stub_status`
//! port (accepts and requests counters). Our load balancer learns them from retained MQTT
//! presence on the run's own Mosquitto (signed with the edge key of the keys `sealcast keys
//! init` makes for the run, by `sealcast-presence`); HAProxy from its configuration
//! (`bench/peers/haproxy/lb.cfg`): `balance leastconn`, `cookie sealcast_node insert
//! indirect nocache`, `http-reuse always`, `/healthz` checks every second (as ours). Both
//! serve the certificate `sealcast certs` makes, one thread each (`nbthread 1`; a 1-worker
//! tokio runtime, `--no-collapse`: this measures what proxying a request costs), pinned to
//! core 1; h2load and the backends run on core 0.
//!
//! Viewers are sticky: one cookie per backend is taken from each load balancer with curl
//! (cookie-less requests until each backend has been chosen once; the cookie must then keep
//! a viewer there without a new cookie), then two h2load processes, half of the clients
//! each, send one of the two cookies over TLS/h2 (the one TLS 1.3 suite `--tls13-cipher`,
//! so both negotiate the same; the run stops when the warm-up shows they did not). Loads,
//! interleaved ours/HAProxy (the order flips every run), RUNS times each:
//! - saturating: h2load -c CLIENTS -m STREAMS -D SECONDS on the playlist, then on the
//!   segment. The load balancer's CPU (utime+stime from `/proc/PID/stat`) around each load
//!   gives CPU ms per 1000 requests and per MB;
//! - paced, for the latency figure: h2load -c LAT_CLIENTS -m 1 --rps LAT_RPS (per client)
//!   through each load balancer and directly on the backends over plain HTTP/1.1 (`--h1`,
//!   the same clients and rate; direct first in odd runs, last in even ones). Added latency
//!   = p50/p99 through the load balancer minus direct, from h2load's per-request log.
//!
//! Backend connection reuse = 1 - TCP connections the backends accepted / requests they
//! served (stub_status deltas around each load, less the status request itself). HAProxy's
//! health checks, a new backend connection each, are paused through its stats socket while
//! ours is measured. A warm-up load of 2 s per load balancer is not recorded. The report:
//! [`crate::reports::lb`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::backends::{
    backend_counts, backend_files, get_any, haproxy_pem, non_empty, port_of, publish_retained,
    running, sign_presence, status_of, sticky_cookies, PLAYLIST, SEGMENT,
};
use crate::harness::cluster::{keys_and_certs, mosquitto};
use crate::harness::peers::{haproxy as start_haproxy, nginx};
use crate::harness::{
    all_cores, cpu_seconds_between, cpu_ticks, get, os_args, program, say, wait_for, Work,
};
use crate::live::free_port;
use crate::reports::lb::Health;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Interleaved runs of every load.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// Seconds per load.
    #[arg(default_value_t = 10)]
    pub seconds: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-presence`: signs the backends' presences.
    #[arg(long)]
    pub presence_bin: PathBuf,
    /// h2load's clients at the saturating load (even: half per backend).
    #[arg(long, env = "CLIENTS", default_value_t = 100)]
    pub clients: u64,
    /// Streams per client at the saturating load.
    #[arg(long, env = "STREAMS", default_value_t = 1)]
    pub streams: u64,
    /// h2load's clients at the paced load (even).
    #[arg(long, env = "LAT_CLIENTS", default_value_t = 10)]
    pub lat_clients: u64,
    /// Requests per second per client at the paced load.
    #[arg(long, env = "LAT_RPS", default_value_t = 50)]
    pub lat_rps: u64,
    /// The one TLS 1.3 suite the clients offer.
    #[arg(long, env = "TLS13_CIPHER", default_value = "TLS_AES_128_GCM_SHA256")]
    pub tls13_cipher: String,
    /// The raw results.
    #[arg(long, env = "LB_RESULTS", default_value = "bench/out/lb.json")]
    pub results: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// What the report is told of the run.
#[derive(Debug)]
pub struct Measured {
    /// The loads, one JSON object a line.
    pub results: PathBuf,
    /// Our load balancer's `/metrics` after the runs (empty when it did not answer).
    pub metrics: PathBuf,
    /// The playlist's size.
    pub playlist_bytes: u64,
    /// The segment's size.
    pub segment_bytes: u64,
    /// The HAProxy measured.
    pub haproxy: PathBuf,
    /// The nginx of the backends.
    pub nginx: PathBuf,
}

/// A backend: its ports and pid.
struct Backend {
    http: u16,
    status: u16,
}

/// A load balancer under test.
struct Balancer {
    name: &'static str,
    port: u16,
    pid: u32,
    /// The sticky cookie for b1 and for b2 (`sealcast_node=…`).
    cookies: [String; 2],
}

/// The run's fixed parts, for each load.
struct Bench<'a> {
    args: &'a Args,
    backends: [Backend; 2],
    results: PathBuf,
    socket: PathBuf,
}

/// Runs the benchmark; `report` is given what it measured while the run's directory is
/// still there.
pub fn run(
    args: &Args,
    report: impl FnOnce(&Measured) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure!(
        args.runs >= 1 && args.seconds >= 1,
        "usage: bench/lb.sh [RUNS [SECONDS]] (whole numbers)"
    );
    ensure!(
        args.clients.is_multiple_of(2) && args.clients >= 2,
        "CLIENTS must be even (two h2load processes, one per backend)"
    );
    ensure!(
        args.lat_clients.is_multiple_of(2) && args.lat_clients >= 2,
        "LAT_CLIENTS must be even"
    );
    let runid = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        std::process::id()
    );
    let mut work = Work::tmpfs("lb")?;

    // 1. The MQTT broker: our load balancer finds its backends there.
    let mqtt_url = mosquitto(&mut work, &all_cores())?;
    let mq_port = port_of(&mqtt_url)?;
    let probe = |port: u16| {
        Command::new("timeout")
            .args([
                "2",
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-q", "1", "-t", "sealcast/v1/bench-probe", "-n"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !wait_for(Duration::from_secs(10), || probe(mq_port)) {
        bail!("lb: mosquitto did not start{}", work.logs());
    }

    // 2. Two nginx backends.
    let www = work.path("www");
    backend_files(&www)?;
    let playlist_bytes = std::fs::metadata(www.join(PLAYLIST.trim_start_matches('/')))?.len();
    let segment = std::fs::read(www.join(SEGMENT.trim_start_matches('/')))?;
    let www_text = www.display().to_string();
    let mut backends = Vec::new();
    for name in ["b1", "b2"] {
        let (http, status) = (free_port()?, free_port()?);
        let pid = nginx(
            &mut work,
            &format!("nginx-{name}"),
            "0",
            "nginx/lb-backend.conf",
            &format!("nginx-{name}"),
            &[
                ("PORT", &http.to_string()),
                ("STATUS_PORT", &status.to_string()),
                ("ROOT", &www_text),
                ("NAME", name),
            ],
        )?;
        let healthz = format!("http://127.0.0.1:{http}/healthz");
        if !wait_for(Duration::from_secs(10), || {
            get(&healthz, None, 120).is_some()
        }) {
            work.alive(pid, &format!("nginx {name}"))?;
            bail!("lb: nginx {name} did not answer in 10 s{}", work.logs());
        }
        backends.push(Backend { http, status });
    }
    let [b1, b2]: [Backend; 2] = backends
        .try_into()
        .map_err(|_| anyhow::anyhow!("two backends"))?;
    ensure!(
        backend_counts(b1.status).is_some(),
        "lb: nginx stub_status does not answer"
    );

    // 3. TLS and keys.
    let (data, certs) = keys_and_certs(&work, &args.bin)?;
    let ca = certs.join("ca.pem");
    for f in ["ca.pem", "server.pem", "server.key"] {
        ensure!(non_empty(&certs.join(f)), "lb: sealcast certs wrote no {f}");
    }
    ensure!(
        non_empty(&data.join("keys/cookie-key")),
        "lb: sealcast keys init wrote no cookie-key"
    );
    // HAProxy: chain and key in one file.
    let pem = haproxy_pem(&work, &certs)?;

    // 4. The backends' presence, for our load balancer (it believes only presences signed
    // with the cluster's edge key).
    for (name, backend) in [("b1", &b1), ("b2", &b2)] {
        let node = format!("bench-{name}-{runid}");
        let file = work.path(format!("presence-{name}"));
        let url = format!("http://127.0.0.1:{}", backend.http);
        sign_presence(&args.presence_bin, &data.join("keys"), &node, &url, &file)?;
        let topic = format!("sealcast/v1/nodes/{node}/presence");
        ensure!(
            publish_retained(mq_port, 5, &topic, &file),
            "lb: could not publish presence to {mqtt_url}"
        );
    }

    // 5. The two load balancers, each on core 1.
    let ha_port = free_port()?;
    let socket = work.path("haproxy.sock");
    let haproxy = program("haproxy");
    let ha_pid = start_haproxy(
        &mut work,
        "1",
        "haproxy/lb.cfg",
        &[
            ("SOCKET", &socket.display().to_string()),
            ("PORT", &ha_port.to_string()),
            ("PEM", &pem.display().to_string()),
            ("B1_PORT", &b1.http.to_string()),
            ("B2_PORT", &b2.http.to_string()),
        ],
        true,
    )?;

    let ours_port = free_port()?;
    let metrics_port = free_port()?;
    let https = format!("127.0.0.1:{ours_port}");
    let http = format!("127.0.0.1:{}", free_port()?);
    let metrics = format!("127.0.0.1:{metrics_port}");
    let node_id = format!("bench-lb-{runid}");
    let ours_pid = work.start(
        "lb",
        "1",
        &args.bin,
        os_args(&[
            "lb".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--certs-dir".as_ref(),
            certs.as_os_str(),
            "--mqtt-url".as_ref(),
            mqtt_url.as_ref(),
            "--https-listen".as_ref(),
            https.as_ref(),
            "--http-listen".as_ref(),
            http.as_ref(),
            "--metrics-listen".as_ref(),
            metrics.as_ref(),
            "--node-id".as_ref(),
            node_id.as_ref(),
            "--no-access-log".as_ref(),
            "--no-limits".as_ref(),
            "--no-collapse".as_ref(),
        ]),
        &[("TOKIO_WORKER_THREADS", "1")],
    )?;
    let printed = wait_for(Duration::from_secs(30), || {
        work.out_has_line("lb", "player ") || !running(ours_pid)
    }) && work.out_has_line("lb", "player ");
    if !printed {
        work.alive(ours_pid, "sealcast lb")?;
        bail!(
            "lb: sealcast lb did not print its player line in 30 s{}",
            work.logs()
        );
    }
    for (name, port, pid) in [
        ("HAProxy", ha_port, ha_pid),
        ("sealcast lb", ours_port, ours_pid),
    ] {
        let url = format!("https://localhost:{port}{PLAYLIST}");
        let ok = wait_for(Duration::from_secs(20), || {
            !running(pid) || status_of(&url, &ca) == "200"
        }) && running(pid);
        if !ok {
            work.alive(pid, name)?;
            bail!(
                "lb: {name} did not answer 200 on {PLAYLIST} in 20 s{}",
                work.logs()
            );
        }
    }

    // 6. One sticky cookie per backend from each load balancer.
    let mut balancers = Vec::new();
    for (name, port, pid) in [
        ("haproxy", ha_port, ha_pid),
        ("sealcast", ours_port, ours_pid),
    ] {
        let cookies = sticky_cookies(name, port, &ca)?;
        say(&format!(
            "lb: {name} cookies: {} | {}",
            cookies[0], cookies[1]
        ));
        balancers.push(Balancer {
            name,
            port,
            pid,
            cookies,
        });
    }
    for (name, port) in [("sealcast lb", ours_port), ("HAProxy", ha_port)] {
        let url = format!("https://localhost:{port}{SEGMENT}");
        ensure!(
            get_any(&url, &ca) == segment,
            "lb: {name} serves different bytes for {SEGMENT}"
        );
    }
    let [ha, ours]: [Balancer; 2] = balancers
        .try_into()
        .map_err(|_| anyhow::anyhow!("two load balancers"))?;

    // 7. Loads.
    let bench = Bench {
        args,
        backends: [b1, b2],
        results: work.path("results.jsonl"),
        socket,
    };
    std::fs::write(&bench.results, "")?;
    // Warm-up (page cache, connection pools, TLS session state), not recorded.
    say("lb: warm-up");
    for lb in [&ha, &ours] {
        bench.load(&mut work, Some(lb), "segment", "load", 0, 2)?;
    }
    // Both must have negotiated the same TLS version, suite and protocol.
    let (line, same) = crate::reports::lb::tls_check(&std::fs::read_to_string(&bench.results)?)?;
    say(&line);
    ensure!(
        same,
        "lb: the load balancers negotiated different TLS (see above)"
    );
    std::fs::write(&bench.results, "")?;

    for run in 1..=args.runs {
        let order = if run % 2 == 1 {
            [&ha, &ours]
        } else {
            [&ours, &ha]
        };
        let names = |o: &[Option<&Balancer>]| {
            o.iter()
                .map(|b| b.map_or("direct", |b| b.name))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let saturating: Vec<Option<&Balancer>> = order.iter().map(|b| Some(*b)).collect();
        for kind in ["playlist", "segment"] {
            say(&format!(
                "lb: run {run}/{} {kind}, saturating ({})",
                args.runs,
                names(&saturating)
            ));
            for lb in &saturating {
                bench.load(&mut work, *lb, kind, "load", run, args.seconds)?;
            }
        }
        // Latency: direct first in odd runs, last in even ones.
        let mut paced = saturating.clone();
        if run % 2 == 1 {
            paced.insert(0, None);
        } else {
            paced.push(None);
        }
        for kind in ["playlist", "segment"] {
            say(&format!(
                "lb: run {run}/{} {kind}, paced ({})",
                args.runs,
                names(&paced)
            ));
            for lb in &paced {
                bench.load(&mut work, *lb, kind, "paced", run, args.seconds)?;
            }
        }
    }
    let metrics_file = work.path("lb.metrics");
    let scraped = get(&format!("http://127.0.0.1:{metrics_port}/metrics"), None, 5);
    std::fs::write(&metrics_file, scraped.unwrap_or_default())?;

    // 8. Report.
    report(&Measured {
        results: bench.results.clone(),
        metrics: metrics_file,
        playlist_bytes,
        segment_bytes: segment.len() as u64,
        haproxy,
        nginx: program("nginx"),
    })
}

impl Bench<'_> {
    /// One load: two h2load processes (one per backend cookie, half the clients each) on
    /// core 0 against `lb` (`None`: the backends themselves, HTTP/1.1), `kind` playlist or
    /// segment, `mode` load (saturating) or paced; appends one JSON line to the results,
    /// with what both printed and logged summed ([`crate::reports::lb::h2load_pair`]).
    fn load(
        &self,
        work: &mut Work,
        lb: Option<&Balancer>,
        kind: &str,
        mode: &str,
        run: u64,
        secs: u64,
    ) -> anyhow::Result<()> {
        let args = self.args;
        let server = lb.map_or("direct", |b| b.name);
        let path = if kind == "segment" { SEGMENT } else { PLAYLIST };
        let mut h2args: Vec<String> = if mode == "load" {
            vec![
                "-c".into(),
                (args.clients / 2).to_string(),
                "-m".into(),
                args.streams.to_string(),
            ]
        } else {
            vec![
                "-c".into(),
                (args.lat_clients / 2).to_string(),
                "-m".into(),
                "1".into(),
                "--rps".into(),
                args.lat_rps.to_string(),
            ]
        };
        h2args.extend(["-D".into(), secs.to_string()]);
        match lb {
            None => h2args.push("--h1".into()),
            Some(_) => h2args.push(format!("--tls13-ciphers={}", args.tls13_cipher)),
        }
        let targets: Vec<(String, String)> = self
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| match lb {
                None => (
                    format!("http://127.0.0.1:{}{path}", b.http),
                    "x-bench: direct".to_owned(),
                ),
                Some(lb) => (
                    format!("https://localhost:{}{path}", lb.port),
                    format!("cookie: {}", lb.cookies[i]),
                ),
            })
            .collect();
        let health = if server == "haproxy" {
            Health::Enable
        } else {
            Health::Disable
        };
        crate::reports::lb::health(&self.socket, health)?;
        let before_counts = self.counts()?;
        let before = match lb {
            Some(lb) => cpu_ticks(&[lb.pid])?,
            None => 0,
        };
        let mut pids = Vec::new();
        for (i, (url, header)) in targets.iter().enumerate() {
            let log = work.path(format!("h2.{i}.log"));
            let _ = std::fs::remove_file(&log);
            let mut all: Vec<String> = vec![
                (secs + 30).to_string(),
                program("h2load").display().to_string(),
                "-t1".into(),
            ];
            all.extend(h2args.iter().cloned());
            all.extend([
                "-H".into(),
                header.clone(),
                format!("--log-file={}", log.display()),
                url.clone(),
            ]);
            pids.push(work.start(&format!("h2.{i}"), "0", Path::new("timeout"), &all, &[])?);
        }
        for pid in pids {
            let status = work.wait_status(pid)?;
            if !status.success() {
                say(&format!(
                    "lb: h2load exited with {} ({server} {kind} {mode})",
                    status.code().unwrap_or(-1)
                ));
            }
        }
        let cpu = match lb {
            Some(lb) => {
                work.alive(lb.pid, lb.name)?;
                let after = cpu_ticks(&[lb.pid])?;
                cpu_seconds_between(before, after)?
            }
            None => "0".to_owned(),
        };
        let after_counts = self.counts()?;
        let read = |name: &str| std::fs::read_to_string(work.path(name));
        let outs = [read("h2.0.out")?, read("h2.1.out")?];
        let logs = [
            crate::reports::h2load::read_log(&work.path("h2.0.log"))?,
            crate::reports::h2load::read_log(&work.path("h2.1.log"))?,
        ];
        let pair = crate::reports::lb::h2load_pair(
            [outs[0].as_str(), outs[1].as_str()],
            [logs[0].as_deref(), logs[1].as_deref()],
        );
        let out = serde_json::to_string(&pair)?;
        // Backend deltas, less the stub_status request that read the "after" figures.
        let delta = |i: usize| after_counts[i] - before_counts[i] - 1;
        let line = format!(
            "{{\"server\":\"{server}\",\"kind\":\"{kind}\",\"mode\":\"{mode}\",\"run\":{run},\"cpu_s\":{cpu},\
             \"backend\":{{\"b1_accepts\":{},\"b1_requests\":{},\"b2_accepts\":{},\"b2_requests\":{}}},\"h2load\":{out}}}\n",
            delta(0),
            delta(1),
            delta(2),
            delta(3)
        );
        let mut results = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.results)?;
        std::io::Write::write_all(&mut results, line.as_bytes())?;
        let requests = crate::reports::calc::Calc::Field {
            key: "requests".into(),
            line: out,
        }
        .run()?;
        if requests == "0" {
            bail!(
                "lb: no request succeeded ({server} {kind} {mode})\n{}",
                outs[0]
            );
        }
        Ok(())
    }

    /// Both backends' stub_status "accepts requests": b1's two, then b2's.
    fn counts(&self) -> anyhow::Result<[i64; 4]> {
        let mut all = Vec::new();
        for backend in &self.backends {
            all.extend(
                backend_counts(backend.status).context("lb: nginx stub_status did not answer")?,
            );
        }
        all.try_into()
            .map_err(|_| anyhow::anyhow!("lb: nginx stub_status did not answer"))
    }
}

//! `sealcast-viewers`: runs N emulated HLS viewers against a master playlist and prints
//! request latency percentiles per kind as JSON (see the library's documentation).
//! `--mode ll` makes them LL-HLS viewers (blocking reloads, preload hints, delta updates),
//! `--mode ll-poll` LL-HLS viewers of a server that cannot block (the playlist polled
//! every part target); both add latency behind the live edge, stalls, part TTFB and
//! requests per second, overall and per viewer. With `--step-secs` it ramps instead:
//! viewers added step by step until a step's segment (LL: part) TTFB p99 reaches
//! `--stop-ttfb-ms`, a request fails or (LL) a viewer stalls, one JSON line per step on
//! standard error as it is judged, the whole ramp as JSON at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use url::Url;
use viewers::arrival::Arrival;
use viewers::ll::LlMode;
use viewers::plan::Pick;
use viewers::{ramp, run, ClientFactory, Config, Mode, RampConfig};

/// The player the viewers behave like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Player {
    /// hls.js on plain HLS: the playlist once per target duration, whole segments.
    Hls,
    /// hls.js in low-latency mode: blocking reloads, preload hints, delta updates, parts.
    Ll,
    /// Low-latency viewers of a server that cannot block: the playlist polled every part
    /// target (or `--poll-ms`), parts as they are listed, no hints.
    LlPoll,
}

/// How viewers arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Arrivals {
    /// Evenly spread.
    Paced,
    /// Independent arrivals (Poisson), seeded by `--seed`.
    Poisson,
}

/// N paced HLS viewers; latency per request kind, from the time each request was due.
#[derive(Debug, Parser)]
#[command(name = "sealcast-viewers", version)]
struct Args {
    /// The master playlist (`https://localhost:8443/live/demo/master.m3u8`).
    master: Url,
    /// How many viewers (with `--step-secs`: at most this many).
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Seconds the run lasts (not with `--step-secs`: the steps make the length).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds over which the viewers start (see `--arrival`).
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// The player the viewers behave like.
    #[arg(long, value_enum, default_value_t = Player::Hls)]
    mode: Player,
    /// `--mode ll-poll`: milliseconds between playlist reloads (default: the part target).
    #[arg(long)]
    poll_ms: Option<u64>,
    /// How viewers arrive over `--ramp` (a ramp: over each step's `--join-secs`), open
    /// loop either way.
    #[arg(long, value_enum, default_value_t = Arrivals::Paced)]
    arrival: Arrivals,
    /// The seed of Poisson arrivals.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The rendition to watch (default: the master's first variant).
    #[arg(long)]
    rendition: Option<String>,
    /// HTTP/1.1 only (over TLS, ALPN otherwise picks HTTP/2 when the server offers it).
    #[arg(long, conflicts_with = "h2c")]
    http1: bool,
    /// HTTP/2 without TLS (prior knowledge), for `http://` URLs.
    #[arg(long)]
    h2c: bool,
    /// Viewers connect from this many loopback addresses in turn (127.1.0.1 on; 0: the
    /// system's choice), so that a server in front counts them apart, as it would
    /// viewers on the Internet. The target must be on loopback.
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(viewers::MAX_SOURCES)))]
    sources: u32,
    /// A PEM certificate authority to trust for `https://` (the cluster's `ca.pem`).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Also write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seconds before a request without an answer fails.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Ramp: seconds per step. Each step adds viewers, which stay; the ramp stops after the
    /// first step that fails.
    #[arg(long)]
    step_secs: Option<f64>,
    /// Ramp: viewers added per step (at least; see `--growth`).
    #[arg(long, default_value_t = 100)]
    step: usize,
    /// Ramp: viewers of the first step (default: `--step`).
    #[arg(long)]
    start: Option<usize>,
    /// Ramp: each step grows the viewers by at least this factor (1: only `--step`).
    #[arg(long, default_value_t = 1.0)]
    growth: f64,
    /// Ramp: the viewers a step adds start spread over its first this many seconds.
    #[arg(long, default_value_t = 2.0)]
    join_secs: f64,
    /// Ramp: a step is judged this many seconds after its end.
    #[arg(long, default_value_t = 1.0)]
    settle_secs: f64,
    /// Ramp: a step fails when its segments' (LL: parts') time to first byte reaches this
    /// at p99 (or a request fails, or an LL viewer stalls).
    #[arg(long, default_value_t = 250.0)]
    stop_ttfb_ms: f64,
    /// Ramp: a process (the server under test) whose CPU time each step reports;
    /// repeatable.
    #[arg(long = "watch-pid")]
    watch_pid: Vec<u32>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ca = args.ca.as_deref().map(viewers::read_ca).transpose()?;
    let timeout = Duration::try_from_secs_f64(args.timeout).context("--timeout")?;
    let (http1, h2c) = (args.http1, args.h2c);
    let mode = match args.mode {
        Player::Hls => Mode::Hls,
        Player::Ll => Mode::Ll(LlMode::Blocking),
        Player::LlPoll => Mode::Ll(LlMode::Poll(args.poll_ms.map(Duration::from_millis))),
    };
    let arrival = match args.arrival {
        Arrivals::Paced => Arrival::Paced,
        Arrivals::Poisson => Arrival::Poisson { seed: args.seed },
    };
    // Plain HLS: one idle keep-alive connection per viewer; a request made while another
    // is in flight opens a second one, which is closed once both are done. LL-HLS over
    // HTTP/1.1 always has a reload and a hinted part in flight, often a part too: a
    // browser keeps up to 6 connections per host. Over HTTP/2 all go on one.
    let idle = if mode == Mode::Hls { 1 } else { 6 };
    let (sources, made) = (args.sources, std::sync::atomic::AtomicU32::new(0));
    let client: ClientFactory = Arc::new(move || {
        let mut builder = reqwest::Client::builder()
            .local_address((sources > 0).then(|| {
                let n = made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::net::IpAddr::V4(viewers::loopback_source(n % sources))
            }))
            .timeout(timeout)
            .pool_max_idle_per_host(idle)
            .tls_built_in_root_certs(false);
        if let Some(ca) = &ca {
            builder = builder.add_root_certificate(ca.clone());
        }
        if http1 {
            builder = builder.http1_only();
        }
        if h2c {
            builder = builder.http2_prior_knowledge();
        }
        builder.build().unwrap_or_default()
    });
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    let pick = args.rendition.clone().map_or(Pick::First, Pick::Named);
    let http = if args.http1 {
        "1.1"
    } else if args.h2c {
        "h2c"
    } else {
        "auto"
    };
    let report = match args.step_secs {
        None => {
            let config = Config {
                master: args.master.clone(),
                viewers: args.viewers,
                duration: Duration::from_secs(args.duration),
                ramp: Duration::from_secs_f64(args.ramp.max(0.0)),
                pick,
                mode,
                arrival,
            };
            let done = runtime.block_on(run(&config, move || client()));
            let mut report = serde_json::json!({
                "master": args.master.as_str(),
                "player": name(args.mode),
                "arrival": name(args.arrival),
                "viewers": args.viewers,
                "duration_secs": args.duration,
                "http": http,
                "errors": done.stats.errors(),
                "kinds": done.stats.summaries(),
            });
            if let Some(ll) = &done.ll {
                report["ll"] = serde_json::to_value(ll)?;
                report["per_viewer"] = serde_json::to_value(&done.viewers)?;
            }
            report
        }
        Some(step_secs) => {
            let secs = |v: f64, name: &str| {
                Duration::try_from_secs_f64(v.max(0.0)).with_context(|| format!("--{name}"))
            };
            let config = RampConfig {
                master: args.master.clone(),
                pick,
                counts: viewers::ramp::counts(
                    args.start.unwrap_or(args.step),
                    args.step,
                    args.growth,
                    args.viewers,
                ),
                step: secs(step_secs, "step-secs")?,
                join: secs(args.join_secs, "join-secs")?,
                arrival,
                settle: secs(args.settle_secs, "settle-secs")?,
                threshold_ms: args.stop_ttfb_ms,
                mode,
                watch: args.watch_pid.clone(),
            };
            anyhow::ensure!(!config.step.is_zero(), "--step-secs must be above 0");
            let done = runtime.block_on(ramp(&config, client, |step| {
                if let Ok(line) = serde_json::to_string(step) {
                    #[allow(clippy::print_stderr)] // progress, one line per step
                    {
                        eprintln!("{line}");
                    }
                }
            }));
            serde_json::json!({
                "master": args.master.as_str(),
                "mode": "ramp",
                "player": name(args.mode),
                "arrival": name(args.arrival),
                "http": http,
                "step_secs": step_secs,
                "join_secs": args.join_secs,
                "settle_secs": args.settle_secs,
                "stop_ttfb_ms": args.stop_ttfb_ms,
                "threads": args.threads,
                "planned": config.counts,
                "capacity": done.capacity,
                "ended_on_failure": done.ended_on_failure,
                "steps": done.steps,
                "per_viewer": done.viewers,
            })
        }
    };
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{text}");
    }
    Ok(())
}

/// The name a value has on the command line.
fn name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

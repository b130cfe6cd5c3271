//! `sealcast-bench run moq-cost`: bench/moq-cost.sh (issue 48's cost goals): viewers per
//! server CPU-second over MoQ against the same node's LL-HLS viewers, and memory per
//! connected viewer, measured side by side in one run.
//!
//! The live stream as bench/llhls-node.sh has it ([`crate::harness::cluster`]): a
//! mosquitto broker, `sealcast ingest` and `sealcast source` (640x360 30 fps, ~730 kb/s,
//! 2 s GOP, the source rung only, named 360p, CMAF, parts of 0.333 s), all on core 1. On
//! core 0, the servers under test: one `sealcast broadcast` node at its shipping defaults,
//! which also publishes the stream to a moq-relay (anonymous rules, loopback only, path
//! MTU discovery on as the product's relays run), as the product does with `--moq-relay`.
//!
//! The systems, each with VIEWERS viewers on core 1 (one thread), interleaved over RUNS
//! runs, the order rotating:
//! - `ll-hls`: `sealcast-viewers --mode ll` against the node (hls.js in low-latency mode,
//!   one HTTP/1.1 keep-alive client per viewer, each from its own loopback address);
//! - `ll-tls`: the same viewers through `sealcast lb` over TLS (HTTP/2, as browsers reach
//!   the node): the servers are the lb and the node. MoQ's transport is encrypted by
//!   design, so this is the LL-HLS figure to set it beside;
//! - `moq`: `sealcast-moq-viewers` against the relay (a QUIC connection per viewer, the
//!   rendition's media and statements tracks, every object read);
//! - `nginx`, the peer: nginx (one worker, sendfile) on a mirror of the node's LL-HLS
//!   files ([`crate::harness::peers::nginx_on_mirror`]), its viewers polling.
//!
//! For each: the servers' CPU (node + relay; lb + node for ll-tls; nginx's master and
//! worker) over WINDOW seconds without viewers, then, once every viewer is in and SETTLE
//! seconds more have passed, over WINDOW seconds with them; the difference divided by the
//! viewers is a viewer's cost. Memory per viewer likewise, from resident memory.
//!
//! With `--variant` (moq-relay flags) or `--variant-bin` (another build of moq-relay), a
//! second relay runs with them beside the first, the node publishes to both, and a fifth
//! system, `moq+` (node + that relay), is measured in the same rotation. The report:
//! [`crate::reports::moq_cost`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use crate::harness::cluster::{moq_relay, mosquitto, LlCluster, Started};
use crate::harness::peers::nginx_on_mirror;
use crate::harness::{cpu_seconds, open_files_limit, pin, rotation, rss_kib, say, Work};

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Viewers per system.
    #[arg(default_value_t = 200)]
    pub viewers: u64,
    /// Runs: each measures every system once.
    #[arg(default_value_t = 3)]
    pub runs: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-viewers`.
    #[arg(long)]
    pub viewers_bin: PathBuf,
    /// `sealcast-moq-viewers`.
    #[arg(long)]
    pub moq_viewers_bin: PathBuf,
    /// moq-relay.
    #[arg(long)]
    pub relay_bin: PathBuf,
    /// A second relay's flags, measured as `moq+`.
    #[arg(
        long,
        env = "RELAY_VARIANT",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub variant: String,
    /// The second relay's binary, when it is another build (default: `--relay-bin`); with
    /// no `--variant`, it runs with the first relay's flags.
    #[arg(long, env = "RELAY_VARIANT_BIN")]
    pub variant_bin: Option<PathBuf>,
    /// What that build is, for the report (`--features io-uring,jemalloc`); default its path.
    #[arg(long, env = "RELAY_VARIANT_BUILD")]
    pub variant_build: Option<String>,
    /// Seconds each CPU reading spans.
    #[arg(long, env = "WINDOW", default_value_t = 20)]
    pub window: u64,
    /// Seconds after the viewers are in before the reading.
    #[arg(long, env = "SETTLE", default_value_t = 5)]
    pub settle: u64,
    /// Seconds over which the viewers arrive.
    #[arg(long, env = "JOIN", default_value_t = 10)]
    pub join: u64,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The stream's name.
const STREAM: &str = "ll";

/// The flags of the product's relays (path MTU discovery on), the first relay's.
const SHIPPED: &str = "--quic-mtu-discovery";

/// Runs the benchmark; `report` is given the measurements (`runs.jsonl`: one JSON line per
/// system and run) while the run's directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    ensure!(
        args.viewers >= 1 && args.runs >= 1,
        "usage: bench/moq-cost.sh [VIEWERS] [RUNS]"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        cores >= 2,
        "needs two cores (servers on core 0, everything else on core 1)"
    );
    let nofile = open_files_limit()?;
    let mut work = Work::tmpfs("moq-cost")?;
    let mqtt = mosquitto(&mut work, "1")?;
    let cluster = LlCluster::setup(&work, &args.bin, STREAM, 0.333, &mqtt)?;

    let shipped = [SHIPPED.to_owned()];
    let (relay, fingerprint) = moq_relay(&mut work, &args.relay_bin, "relay", "0", &shipped)?;
    let mut systems = vec!["ll-hls", "ll-tls", "moq", "nginx"];
    let mut relays = vec![relay.url.clone()];
    let mut fingerprints = vec![fingerprint.clone()];
    let second = if let Some(variant) = args.second_relay_flags() {
        let bin = args.variant_bin.as_ref().unwrap_or(&args.relay_bin);
        let (relay2, fingerprint2) = moq_relay(&mut work, bin, "relay2", "0", &variant)?;
        relays.push(relay2.url.clone());
        fingerprints.push(fingerprint2.clone());
        systems.push("moq+");
        Some((relay2, fingerprint2))
    } else {
        None
    };
    let (relays, fingerprints) = (relays.join(","), fingerprints.join(","));
    let node = cluster.node(
        &mut work,
        "moqnode",
        "0,1",
        &[
            "--moq-relay",
            &relays,
            "--moq-relay-fingerprint",
            &fingerprints,
        ],
        &[],
    )?;
    let publishing = cluster.publish(&mut work, "1")?;
    if !cluster.wait_listed(&node.url, "360p", Duration::from_secs(60)) {
        work.alive(publishing.source, "sealcast source")?;
        anyhow::bail!(
            "the node did not list 3 segments with parts in 60 s{}",
            work.logs()
        );
    }
    let nginx = nginx_on_mirror(&mut work, &node.url, STREAM, nofile)?;
    say(&format!(
        "moq-cost: nginx {} mirrors the node (part {}: the same bytes)",
        nginx.url, nginx.same_part
    ));
    // The load balancer over TLS in front of the node, finding it by its signed presence.
    let lb = cluster.lb(&mut work, "moqlb", &cluster.playlist("360p"), &[])?;
    let mut on_core0 = vec![node.pid, relay.pid, lb.pid];
    on_core0.extend(second.as_ref().map(|(r, _)| r.pid));
    pin("0", &on_core0)?;

    let mut lines = String::new();
    for run in 1..=args.runs {
        // Rotate: each system leads in turn.
        for &system in rotation(&systems, run) {
            let (servers, viewers) = match system {
                "ll-hls" => (
                    vec![node.pid, relay.pid],
                    Viewers::Ll {
                        url: &node.url,
                        mode: "ll",
                        tls: None,
                    },
                ),
                "ll-tls" => (
                    vec![node.pid, lb.pid],
                    Viewers::Ll {
                        url: &lb.url,
                        mode: "ll",
                        tls: Some(&cluster.ca),
                    },
                ),
                "nginx" => (
                    nginx.pids.clone(),
                    Viewers::Ll {
                        url: &nginx.url,
                        mode: "ll-poll",
                        tls: None,
                    },
                ),
                "moq" => (
                    vec![node.pid, relay.pid],
                    Viewers::Moq {
                        relay: &relay,
                        fingerprint: &fingerprint,
                    },
                ),
                _ => {
                    let (relay2, fingerprint2) = second.as_ref().context("no second relay")?;
                    (
                        vec![node.pid, relay2.pid],
                        Viewers::Moq {
                            relay: relay2,
                            fingerprint: fingerprint2,
                        },
                    )
                }
            };
            for (pid, name) in [
                (publishing.source, "sealcast source"),
                (node.pid, "node"),
                (relay.pid, "moq-relay"),
                (lb.pid, "lb"),
                (nginx.mirror, "mirror"),
            ] {
                work.alive(pid, name)?;
            }
            say(&format!(
                "moq-cost: run {run}/{} {system} ({} viewers)",
                args.runs, args.viewers
            ));
            let line = measure(&mut work, args, system, run, &servers, &viewers, &cluster)?;
            lines.push_str(&line);
            lines.push('\n');
            // Connections closed before the next measurement.
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    let runs = work.path("runs.jsonl");
    std::fs::write(&runs, &lines)?;
    report(&runs)
}

/// Whose viewers a measurement runs.
enum Viewers<'a> {
    /// `sealcast-viewers` against an LL-HLS server (`tls`: the CA to trust).
    Ll {
        url: &'a str,
        mode: &'a str,
        tls: Option<&'a Path>,
    },
    /// `sealcast-moq-viewers` against a relay.
    Moq {
        relay: &'a Started,
        fingerprint: &'a str,
    },
}

/// One measurement: the servers' CPU and memory without viewers over WINDOW, then with
/// them; the JSON line of the run.
fn measure(
    work: &mut Work,
    args: &Args,
    system: &str,
    run: u64,
    servers: &[u32],
    viewers: &Viewers<'_>,
    cluster: &LlCluster,
) -> anyhow::Result<String> {
    let window = Duration::from_secs(args.window);
    let lasts = args.join + args.settle + args.window + 3;
    let idle_rss = rss_kib(servers)?;
    let t0 = cpu_seconds(servers)?;
    std::thread::sleep(window);
    let idle_cpu = cpu_seconds(servers)? - t0;
    let name = format!("viewers-{system}-{run}");
    let n = args.viewers.to_string();
    let (program, viewer_args): (&Path, Vec<String>) = match viewers {
        Viewers::Ll { url, mode, tls } => {
            let mut a: Vec<String> = vec![format!("{url}{}", cluster.master())];
            a.extend(["--mode", *mode, "--rendition", "360p", "--threads", "1"].map(String::from));
            match tls {
                Some(ca) => a.extend(["--ca".into(), ca.display().to_string()]),
                None => a.push("--http1".into()),
            }
            a.extend(["--viewers".into(), n.clone(), "--sources".into(), n.clone()]);
            a.extend([
                "--ramp".into(),
                args.join.to_string(),
                "--duration".into(),
                lasts.to_string(),
            ]);
            a.extend(["--timeout".into(), "15".into()]);
            (args.viewers_bin.as_path(), a)
        }
        Viewers::Moq { relay, fingerprint } => {
            let a = vec![
                relay.url.clone(),
                STREAM.to_owned(),
                "--fingerprint".into(),
                fingerprint.to_string(),
                "--track".into(),
                "360p".into(),
                "--viewers".into(),
                n.clone(),
                "--ramp".into(),
                args.join.to_string(),
                "--duration".into(),
                (lasts - args.join).to_string(),
            ];
            (args.moq_viewers_bin.as_path(), a)
        }
    };
    let pid = work.start(&name, "1", program, &viewer_args, &[])?;
    std::thread::sleep(Duration::from_secs(args.join + args.settle));
    let busy_rss = rss_kib(servers)?;
    let t0 = cpu_seconds(servers)?;
    std::thread::sleep(window);
    let busy_cpu = cpu_seconds(servers)? - t0;
    if !work.wait(pid)? {
        let err = std::fs::read_to_string(work.path(format!("{name}.err"))).unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        anyhow::bail!(
            "the {system} viewers failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let out = std::fs::read_to_string(work.path(format!("{name}.out")))?;
    let report: Value = crate::reports::python::parse_json(out.trim())
        .with_context(|| format!("the {system} viewers' report"))?;
    Ok(line(
        system,
        run,
        args,
        idle_cpu,
        busy_cpu,
        (idle_rss, busy_rss),
        report,
    ))
}

/// A measurement's JSON line, as the report reads it (CPU seconds to the millisecond).
pub fn line(
    system: &str,
    run: u64,
    args: &Args,
    idle_cpu: f64,
    busy_cpu: f64,
    (idle_rss, busy_rss): (u64, u64),
    report: Value,
) -> String {
    let ms = |s: f64| (s * 1000.0).round() / 1000.0;
    json!({
        "system": system,
        "run": run,
        "viewers": args.viewers,
        "window_s": args.window,
        "idle_cpu_s": ms(idle_cpu),
        "busy_cpu_s": ms(busy_cpu),
        "idle_rss_kib": idle_rss,
        "busy_rss_kib": busy_rss,
        "report": report,
    })
    .to_string()
}

impl Args {
    /// The second relay's flags, when there is one: `--variant`'s, or the first relay's
    /// when only the build differs.
    fn second_relay_flags(&self) -> Option<Vec<String>> {
        let flags: Vec<String> = self.variant.split_whitespace().map(str::to_owned).collect();
        match (flags.is_empty(), &self.variant_bin) {
            (false, _) => Some(flags),
            (true, Some(_)) => Some(vec![SHIPPED.to_owned()]),
            (true, None) => None,
        }
    }

    /// The second relay as the report names it: its flags, and the build when it is
    /// another.
    pub fn variant_label(&self) -> String {
        let flags = self.second_relay_flags().unwrap_or_default().join(" ");
        match (&self.variant_bin, &self.variant_build) {
            (None, _) => flags,
            (Some(_), Some(build)) => format!("{flags}` built with `{build}"),
            (Some(bin), None) => format!("{flags}` built as `{}", bin.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(variant: &str, bin: Option<&str>, build: Option<&str>) -> Args {
        Args {
            viewers: 1,
            runs: 1,
            bin: "sealcast".into(),
            viewers_bin: "v".into(),
            moq_viewers_bin: "m".into(),
            relay_bin: "relay".into(),
            variant: variant.into(),
            variant_bin: bin.map(PathBuf::from),
            variant_build: build.map(str::to_owned),
            window: 1,
            settle: 1,
            join: 1,
            no_doc: true,
        }
    }

    #[test]
    fn the_second_relay_is_named_by_its_flags_and_build() {
        assert_eq!(args("", None, None).second_relay_flags(), None);
        assert_eq!(args("", None, None).variant_label(), "");
        let flags = args(" --runtime-workers 1 ", None, None);
        assert_eq!(flags.variant_label(), "--runtime-workers 1");
        let build = args("", Some("/b/moq-relay"), Some("--features jemalloc"));
        assert_eq!(build.second_relay_flags(), Some(vec![SHIPPED.to_owned()]));
        assert_eq!(
            build.variant_label(),
            "--quic-mtu-discovery` built with `--features jemalloc"
        );
        assert_eq!(
            args("--x", Some("/b/moq-relay"), None).variant_label(),
            "--x` built as `/b/moq-relay"
        );
    }
}

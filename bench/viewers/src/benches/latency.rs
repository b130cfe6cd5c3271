//! `sealcast-bench run latency`: bench/latency.sh, glass-to-glass latency in Chromium, read
//! from the clock `sealcast source` stamps into every frame, for
//! - `ll`: sealcast LL-HLS (CMAF, parts of 0.333 s), through the load balancer over HTTPS,
//! - `plain`: sealcast plain HLS (CMAF without parts: what a player without LL support
//!   gets), through the load balancer over HTTPS,
//! - `nginx`, the peer: nginx-rtmp's HLS (`hls_fragment 2s`), served by nginx over HTTP
//!   (`bench/peers/nginx/rtmp.conf`),
//!
//! all fed by one publisher: `sealcast source` publishes 720p30 to nginx-rtmp, which plays
//! it out as HLS and pushes the same RTMP stream on to both sealcast clusters (each a
//! `sealcast up` with two broadcast nodes, on every core, as the script ran them:
//! [`crate::harness::up`]). Each viewer is the same page (the sealcast player, hls.js in
//! low-latency mode; nginx serves a copy of it, taken from a node, next to its HLS), opened
//! by bench/viewers' `sealcast-glass`, which samples the stamped latency every 250 ms for
//! SECONDS after a 10 s settle. The three are measured in turn, ROUNDS times interleaved
//! (ll, plain, nginx, ll, ...); a browser run that fails is recorded as failed and the
//! others go on. The LL cluster's `/metrics` before and after the runs give the signing
//! and verification cost and the part gate's wait. p50/p90/max over every sample of a
//! system, and the longest stall: [`crate::reports::latency`].
//!
//! The ladders are the source rung only by default (LADDER=src): two cores cannot run three
//! x264 rungs, two clusters, nginx, the publisher and Chromium without falling behind real
//! time, which would measure the machine, not the delivery path. LADDER=full uses the
//! default ladder on the LL cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::harness::cluster::latency_config;
use crate::harness::up::{up, Up, UpArgs};
use crate::harness::{get, peer_file, program, render, say, wait_for, Work};
use crate::live::free_port;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds each browser run samples.
    #[arg(default_value_t = 60)]
    pub seconds: u64,
    /// Rounds: each measures the three systems.
    #[arg(default_value_t = 5)]
    pub rounds: u64,
    /// The LL cluster's ladder: `src` (the source rung only) or `full`.
    #[arg(long, env = "LADDER", default_value = "src")]
    pub ladder: String,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-glass`.
    #[arg(long)]
    pub glass_bin: PathBuf,
    /// The raw results (default bench/out/latency.json).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// What the report reads: the runs and the LL node's metrics before and after.
#[derive(Debug)]
pub struct Measured<'a> {
    /// `runs.jsonl`: one `sealcast-glass` record a line with its system and round.
    pub runs: &'a Path,
    /// `m0.json`.
    pub before: &'a Path,
    /// `m1.json`.
    pub after: &'a Path,
}

/// One sealcast cluster per mode, each with its own data directory and ports
/// (`WORK/NAME`), once its second node is up.
fn cluster(
    work: &mut Work,
    bin: &Path,
    name: &str,
    part: &str,
    ladder: &str,
) -> anyhow::Result<Up> {
    let dir = work.path(name);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("sealcast.toml");
    std::fs::write(&config, latency_config(part, ladder == "full"))?;
    up(
        work,
        &format!("{name}/up"),
        bin,
        &UpArgs::configured(&dir, 2).loopback(),
        2,
        Duration::from_secs(60),
        &[],
    )
    .with_context(|| format!("latency: sealcast up ({name})"))
}

/// The port of an `rtmp://HOST:PORT/…` URL.
fn rtmp_port(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("rtmp://")?;
    let hostport = rest.split('/').next()?;
    hostport.rsplit_once(':').map(|(_, port)| port)
}

/// How nginx's stream is listed, the way a node lists one: the player plays a stream it
/// finds listed.
const PEER_LISTING: &str = r#"[{"name":"peer","live":true,"master_url":"/live/peer/master.m3u8","renditions":[{"name":"src","width":1280,"height":720,"codecs":"avc1.64001f","frame_rate":30.0,"bandwidth":2600000,"average_bandwidth":2600000}]}]"#;

/// Runs the benchmark; `report` is given the runs and the metrics while the run's
/// directory is still there.
pub fn run(
    args: &Args,
    report: impl FnOnce(Measured<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut work = Work::temp("latency")?;
    let ll = cluster(&mut work, &args.bin, "ll", "0.333", &args.ladder)?;
    let plain = cluster(&mut work, &args.bin, "plain", "0", "src")?;
    let field = |up: &Up, key: &str| up.field(key).unwrap_or_default().to_owned();
    let key = |up: &Up| up.stream_key("main").unwrap_or_default().to_owned();
    let port = |up: &Up| {
        rtmp_port(up.field("obs-server").unwrap_or_default())
            .unwrap_or_default()
            .to_owned()
    };

    // nginx-rtmp: HLS of its own, and the same stream pushed on to both clusters.
    let nginx_rtmp = free_port()?.to_string();
    let nginx_http = free_port()?.to_string();
    let nginx = work.path("nginx");
    for sub in ["hls", "www/assets", "www/api/v1", "logs"] {
        std::fs::create_dir_all(nginx.join(sub))?;
    }
    let conf = nginx.join("nginx.conf");
    render(
        &peer_file("nginx/rtmp.conf"),
        &conf,
        &[
            ("DIR", &nginx.display().to_string()),
            ("RTMP_PORT", &nginx_rtmp),
            ("HTTP_PORT", &nginx_http),
            ("LL_RTMP_PORT", &port(&ll)),
            ("LL_KEY", &key(&ll)),
            ("PLAIN_RTMP_PORT", &port(&plain)),
            ("PLAIN_KEY", &key(&plain)),
        ],
    )?;
    work.start_unpinned(
        "nginx/logs/stdout",
        &program("nginx"),
        [
            "-c".as_ref(),
            conf.as_os_str(),
            "-p".as_ref(),
            nginx.as_os_str(),
        ],
        &[],
    )?;

    // The same player page next to nginx's HLS, copied from a sealcast node.
    let node = field(&ll, "broadcast1");
    let node = node.trim_end_matches('/');
    let www = nginx.join("www");
    let copy = |path: &str, to: &Path| -> anyhow::Result<()> {
        let body = get(&format!("{node}{path}"), None, 30)
            .with_context(|| format!("the node's {path}"))?;
        std::fs::write(to, body).with_context(|| to.display().to_string())
    };
    copy("/", &www.join("index.html"))?;
    for asset in ["hls.min.js", "player.js", "style.css", "dashboard.js"] {
        copy(&format!("/assets/{asset}"), &www.join("assets").join(asset))?;
    }
    std::fs::write(www.join("api/v1/streams"), format!("{PEER_LISTING}\n"))?;
    std::fs::write(www.join("api/v1/recordings"), "[]\n")?;

    say("latency: publishing 720p30 to nginx-rtmp, relayed to both clusters");
    let total = ((args.seconds + 25) * 3 * args.rounds + 60).to_string();
    let to_nginx = format!("rtmp://127.0.0.1:{nginx_rtmp}/live/bench");
    work.start_unpinned(
        "source",
        &args.bin,
        [
            "source",
            "--url",
            &to_nginx,
            "--size",
            "1280x720",
            "--fps",
            "30",
            "--duration",
            &total,
        ],
        &[],
    )?;

    let ll_origin = field(&ll, "player").trim_end_matches('/').to_owned();
    let plain_origin = field(&plain, "player").trim_end_matches('/').to_owned();
    let nginx_origin = format!("http://127.0.0.1:{nginx_http}");
    let waits = [
        (
            format!("{ll_origin}/live/main/master.m3u8"),
            Some(work.path("ll/certs/ca.pem")),
        ),
        (
            format!("{plain_origin}/live/main/master.m3u8"),
            Some(work.path("plain/certs/ca.pem")),
        ),
        (format!("{nginx_origin}/live/peer/master.m3u8"), None),
    ];
    for (url, ca) in &waits {
        if !wait_for(Duration::from_secs(60), || {
            get(url, ca.as_deref(), 10).is_some()
        }) {
            let mut why = format!("latency: {url} never answered");
            for f in [
                "nginx/logs/stdout.err",
                "nginx/logs/error.log",
                "source.err",
                "ll/up.err",
                "plain/up.err",
            ] {
                let text = std::fs::read_to_string(work.path(f)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                why.push_str(&format!(
                    "\n== {f}\n{}",
                    lines[lines.len().saturating_sub(5)..].join("\n")
                ));
            }
            bail!(why);
        }
    }

    // The LL cluster's counters before and after: signing and verification cost, part gate
    // wait.
    let ll_node = field(&ll, "broadcast1");
    let before = work.path("m0.json");
    std::fs::write(&before, crate::publish_latency::snapshot(&ll_node)? + "\n")?;
    let mut lines = String::new();
    for round in 1..=args.rounds {
        for system in ["ll", "plain", "nginx"] {
            let (origin, stream) = match system {
                "ll" => (ll_origin.as_str(), "main"),
                "plain" => (plain_origin.as_str(), "main"),
                _ => (nginx_origin.as_str(), "peer"),
            };
            say(&format!(
                "latency: round {round}/{}, {system} ({}s)",
                args.rounds, args.seconds
            ));
            let record = glass(&mut work, &args.glass_bin, origin, stream, args.seconds)?;
            let record = record.unwrap_or_else(|why| {
                say(&format!("latency: {system}: the browser run failed: {why}"));
                crate::runs::glass_failed(&why)
            });
            lines.push_str(&crate::runs::tagged(
                &record,
                &[format!("round={round}")],
                &[format!("system={system}")],
            )?);
            lines.push('\n');
        }
    }
    let after = work.path("m1.json");
    std::fs::write(&after, crate::publish_latency::snapshot(&ll_node)? + "\n")?;
    let runs = work.path("runs.jsonl");
    std::fs::write(&runs, &lines)?;
    report(Measured {
        runs: &runs,
        before: &before,
        after: &after,
    })
}

/// One `sealcast-glass ORIGIN STREAM --seconds S EXTRA…` run (`RUST_BACKTRACE=0`), on every
/// core: its record, or why it failed (the first 600 bytes of its standard error).
pub fn glass(
    work: &mut Work,
    glass_bin: &Path,
    origin: &str,
    stream: &str,
    seconds: u64,
) -> anyhow::Result<Result<String, String>> {
    glass_with(work, glass_bin, origin, stream, seconds, &[])
}

/// [`glass`] with `extra` arguments after its own.
pub fn glass_with(
    work: &mut Work,
    glass_bin: &Path,
    origin: &str,
    stream: &str,
    seconds: u64,
    extra: &[&str],
) -> anyhow::Result<Result<String, String>> {
    let seconds = seconds.to_string();
    let mut args = vec![origin, stream, "--seconds", &seconds];
    args.extend(extra);
    let pid = work.start_unpinned("glass", glass_bin, &args, &[("RUST_BACKTRACE", "0")])?;
    let ok = work.wait(pid)?;
    let err = std::fs::read(work.path("glass.err")).unwrap_or_default();
    if ok {
        return Ok(Ok(std::fs::read_to_string(work.path("glass.out"))?));
    }
    let head = &err[..err.len().min(600)];
    Ok(Err(String::from_utf8_lossy(head).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rtmp_port_is_read_from_the_url() {
        assert_eq!(rtmp_port("rtmp://127.0.0.1:41935/live"), Some("41935"));
        assert_eq!(rtmp_port("rtmp://127.0.0.1:41935"), Some("41935"));
        assert_eq!(rtmp_port("http://x:1/"), None);
    }
}

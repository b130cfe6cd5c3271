//! `sealcast-bench run ingest-latency`: bench/ingest-latency.sh, glass-to-glass latency per
//! ingest protocol (issue 32), LL-HLS in Chromium: RTMP (the reference), SRT and WHIP into
//! one `sealcast up` cluster (two broadcast nodes, on every core, as the script ran it:
//! [`crate::harness::up`]), measured in turn, ROUNDS times interleaved (rtmp, srt, whip,
//! rtmp, ...).
//!
//! PROTOCOLS="source rtmp srt whip" adds `sealcast source` publishing over RTMP itself (no
//! pipe, no ffmpeg): bench/latency.sh's publisher, the reference for the others' extra
//! delay. `rtmp-bframes` is the RTMP publish with the source encoding as OBS does by
//! default (x264 `veryfast` with B-frames and a lookahead) instead of for low latency: what
//! the publisher's encoder adds.
//!
//! Each publish: `sealcast source` draws its pattern with the machine-readable clock stamp
//! (720p30, x264 with a keyframe every 2 s, AAC; `--low-latency`: x264's zerolatency tune,
//! no B-frames and no lookahead, as a streamer who wants low latency sets OBS) into a pipe,
//! and
//! - rtmp: Debian's ffmpeg copies it unchanged (`-c copy -f flv`) to the ingest's RTMP port;
//! - srt: Debian's ffmpeg copies it unchanged into MPEG-TS over SRT
//!   (`streamid=#!::r=live/KEY,m=publish`, SRT latency 120 ms) to the ingest's SRT port;
//! - whip: FFmpeg 9 (`--ffmpeg9`) re-encodes it the way a WebRTC encoder sends (x264
//!   zerolatency, no B-frames, a keyframe every 2 s, Opus) and publishes it with its `whip`
//!   muxer (`-whip_flags dtls_active`) through the load balancer. The re-encode adds
//!   FFmpeg's own encoding delay (the stamp is in the picture, so what is measured is still
//!   camera-to-screen for this publisher).
//!
//! Each protocol publishes a stream of its own (`latPROTO`, its key made by `sealcast
//! streams add` and kept in the run's memory and its publishers' arguments). Once the
//! stream's media playlist is live again (a preload hint, no end: the playlists of the
//! round before stay served, ended, until the new session replaces them), bench/viewers'
//! `sealcast-glass` opens the player through the load balancer and samples the stamped
//! latency every 250 ms for SECONDS after a 10 s settle; the publisher then stops. A run
//! that fails is recorded as failed and the others go on. p50/p90/max over every sample of
//! a protocol, and the longest stall. Goal: p50 <= 1.5 s for SRT and WHIP. The report:
//! [`crate::reports::ingest_latency`].
//!
//! The ladder is the source rung only by default (LADDER=src), as in bench/latency.sh.
//! MoQ mode (issue 48): TRANSPORTS="moq hls" plays every publish both ways, interleaved (a
//! publish per run): over Media over QUIC (`?transport=moq`, the player's WebTransport to
//! the moq-relay `sealcast up --moq-run-relay` runs, every object verified) and over LL-HLS
//! beside it. PART sets the part (and so the MoQ object) duration. Goal over MoQ: p50 <=
//! 0.5 s, no stall.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::cluster::{add_stream, latency_config};
use crate::harness::up::{up, UpArgs};
use crate::harness::{get, program, say, wait_for, Work};
use crate::live::free_port;

/// What the script passes, and the environment variables it reads (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds each browser run samples.
    #[arg(default_value_t = 60)]
    pub seconds: u64,
    /// Rounds: each measures every protocol (over every transport).
    #[arg(default_value_t = 3)]
    pub rounds: u64,
    /// The ladder: `src` (the source rung only) or `full`.
    #[arg(long, env = "LADDER", default_value = "src")]
    pub ladder: String,
    /// The protocols, in the order measured (`source`, `rtmp`, `rtmp-bframes`, `srt`,
    /// `whip`).
    #[arg(long, env = "PROTOCOLS", default_value = "rtmp rtmp-bframes srt whip")]
    pub protocols: String,
    /// The transports each publish is played over (`hls`; `moq hls`: MoQ mode).
    #[arg(long, env = "TRANSPORTS", default_value = "hls")]
    pub transports: String,
    /// The part's (and MoQ object's) duration in seconds, as given.
    #[arg(long, env = "PART", default_value = "0.333")]
    pub part: String,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-glass`.
    #[arg(long)]
    pub glass_bin: PathBuf,
    /// FFmpeg 9 (WHIP's publisher).
    #[arg(long)]
    pub ffmpeg9: PathBuf,
    /// moq-relay, which `up` runs (MoQ mode).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// moq-relay's build, `debug` or `release`, as the report says it.
    #[arg(long, default_value = "debug")]
    pub relay_build: String,
    /// The raw results (default bench/out/ingest-latency.json, bench/out/moq-latency.json
    /// in MoQ mode).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The cluster a publish goes to.
struct Cluster {
    /// The `sealcast` binary.
    bin: PathBuf,
    /// The load balancer's URL (no trailing slash).
    origin: String,
    /// The ingest's RTMP URL (`rtmp://HOST:PORT/live`).
    rtmp: String,
    /// Its SRT URL.
    srt: String,
    /// The CA the load balancer's certificate chains to.
    ca: PathBuf,
    /// FFmpeg 9.
    ffmpeg9: PathBuf,
}

/// Runs the benchmark; `report` is given the runs (`runs.jsonl`) while the run's
/// directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    ensure!(
        args.ffmpeg9.is_file(),
        "ingest-latency: no FFmpeg 9 (run scripts/setup.sh test)"
    );
    let mut work = Work::temp("ingest-latency")?;
    let dir = work.path("cluster");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("sealcast.toml");
    std::fs::write(&config, latency_config(&args.part, args.ladder == "full"))?;
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let mut up_args = UpArgs::configured(&dir, 2).loopback();
    if args.transports.split_whitespace().any(|t| t == "moq") {
        let relay = args
            .relay_bin
            .as_ref()
            .context("ingest-latency: MoQ mode needs moq-relay (--relay-bin)")?;
        ensure!(
            relay.is_file(),
            "ingest-latency: no moq-relay at {} (run scripts/setup.sh test)",
            relay.display()
        );
        up_args = up_args
            .arg("--moq-run-relay")
            .arg(relay)
            .arg("--moq-relay-listen")
            .arg(format!("127.0.0.1:{}", free_port()?));
    }
    let cluster = up(
        &mut work,
        "cluster/up",
        &args.bin,
        &up_args,
        2,
        Duration::from_secs(60),
        &[],
    )
    .context("ingest-latency")?;
    let origin = cluster.field("player").unwrap_or_default();
    let target = Cluster {
        bin: args.bin.clone(),
        origin: origin.trim_end_matches('/').to_owned(),
        rtmp: cluster.field("obs-server").unwrap_or_default().to_owned(),
        srt: cluster
            .field("srt-server")
            .context("ingest-latency: sealcast up printed no srt-server line")?
            .to_owned(),
        ca: certs.join("ca.pem"),
        ffmpeg9: args.ffmpeg9.clone(),
    };
    // One stream per protocol; the keys stay in this run (never on a command line of ours
    // that outlives the run, never in a log of ours).
    let protocols: Vec<&str> = args.protocols.split_whitespace().collect();
    let mut keys = Vec::new();
    for proto in &protocols {
        let key = add_stream(&args.bin, &data, &format!("lat{proto}"))
            .with_context(|| format!("ingest-latency: no key for lat{proto}"))?;
        keys.push(key);
    }

    let mut lines = String::new();
    for round in 1..=args.rounds {
        for (proto, key) in protocols.iter().zip(&keys) {
            for transport in args.transports.split_whitespace() {
                say(&format!(
                    "ingest-latency: round {round}/{}, {proto} over {transport} ({}s)",
                    args.rounds, args.seconds
                ));
                let publishing = publish(&mut work, &target, proto, key, args.seconds)?;
                // The stream's media playlist live again: from the second round on, the
                // playlists of the round before stay served, ended, until the new session
                // replaces them, and a player opened on those would play an ended stream.
                let media = format!("{}/live/lat{proto}/src/index.m3u8", target.origin);
                let live = wait_for(Duration::from_secs(60), || {
                    get(&media, Some(&target.ca), 10).is_some_and(|p| {
                        let p = String::from_utf8_lossy(&p);
                        p.contains("PRELOAD-HINT") && !p.contains("ENDLIST")
                    })
                });
                let stream = format!("lat{proto}");
                let outcome = if live {
                    super::latency::glass_with(
                        &mut work,
                        &args.glass_bin,
                        &target.origin,
                        &stream,
                        args.seconds,
                        &["--transport", transport],
                    )?
                } else {
                    Err(String::new())
                };
                let record = outcome.unwrap_or_else(|why| {
                    let why = if why.is_empty() {
                        let log = publisher_log(&work, proto);
                        let lines: Vec<&str> = log.lines().collect();
                        format!(
                            "the {proto} stream never came out: {} ",
                            lines[lines.len().saturating_sub(3)..].join(" ")
                        )
                    } else {
                        why
                    };
                    say(&format!("ingest-latency: {proto} failed: {why}"));
                    crate::runs::glass_failed(&why)
                });
                lines.push_str(&crate::runs::tagged(
                    &record,
                    &[format!("round={round}")],
                    &[
                        format!("protocol={proto}"),
                        format!("transport={transport}"),
                    ],
                )?);
                lines.push('\n');
                for pid in publishing {
                    work.stop(&[pid], crate::harness::STOP_GRACE);
                }
            }
        }
    }
    let runs = work.path("runs.jsonl");
    std::fs::write(&runs, &lines)?;
    report(&runs)
}

/// What PROTO's publisher said (`publisher-PROTO.out` and `.err`).
fn publisher_log(work: &Work, proto: &str) -> String {
    let read = |ext: &str| {
        std::fs::read_to_string(work.path(format!("publisher-{proto}.{ext}"))).unwrap_or_default()
    };
    read("out") + &read("err")
}

/// Starts PROTO's publish of `SECONDS + 60` s: the source into a pipe and PROTO's publisher
/// from it (or, for `source`, `sealcast source` straight over RTMP, its URL with the key
/// in its environment); their pids.
fn publish(
    work: &mut Work,
    cluster: &Cluster,
    proto: &str,
    key: &str,
    seconds: u64,
) -> anyhow::Result<Vec<u32>> {
    let duration = (seconds + 60).to_string();
    let mut source: Vec<std::ffi::OsString> = vec!["source".into()];
    let fifo = work.path(format!("source-{proto}.flv"));
    let rtmp_url = format!("{}/{key}", cluster.rtmp);
    if proto == "source" {
        // Our own publisher straight over RTMP, no pipe and no ffmpeg (bench/latency.sh's).
        source.extend(
            [
                "--size",
                "1280x720",
                "--fps",
                "30",
                "--duration",
                &duration,
                "--low-latency",
            ]
            .iter()
            .map(Into::into),
        );
        let pid = work.start_unpinned(
            &format!("publisher-{proto}"),
            &cluster.bin,
            &source,
            &[("SEALCAST_SOURCE_URL", &rtmp_url)],
        )?;
        return Ok(vec![pid]);
    }
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .context("running mkfifo")?;
    ensure!(made.success(), "mkfifo {} failed", fifo.display());
    source.extend(["--output".into(), fifo.clone().into_os_string()]);
    source.extend(
        ["--size", "1280x720", "--fps", "30", "--duration", &duration]
            .iter()
            .map(Into::into),
    );
    if proto != "rtmp-bframes" {
        source.push("--low-latency".into());
    }
    let mut pids =
        vec![work.start_unpinned(&format!("source-{proto}"), &cluster.bin, &source, &[])?];
    let mut ffmpeg: Vec<std::ffi::OsString> = [
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostdin",
        "-f",
        "flv",
        "-i",
    ]
    .iter()
    .map(Into::into)
    .collect();
    ffmpeg.push(fifo.clone().into());
    let name = format!("publisher-{proto}");
    let pid = match proto {
        "rtmp" | "rtmp-bframes" => {
            ffmpeg.extend(["-c", "copy", "-f", "flv"].iter().map(Into::into));
            ffmpeg.push(rtmp_url.into());
            work.start_unpinned(&name, &program("ffmpeg"), &ffmpeg, &[])?
        }
        "srt" => {
            ffmpeg.extend(["-c", "copy", "-f", "mpegts"].iter().map(Into::into));
            ffmpeg.push(
                format!(
                    "{}?streamid=#!::r=live/{key},m=publish&latency=120000&pkt_size=1316",
                    cluster.srt
                )
                .into(),
            );
            work.start_unpinned(&name, &program("ffmpeg"), &ffmpeg, &[])?
        }
        "whip" => {
            ffmpeg.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-tune",
                    "zerolatency",
                    "-profile:v",
                    "baseline",
                    "-bf",
                    "0",
                    "-g",
                    "60",
                    "-keyint_min",
                    "60",
                    "-sc_threshold",
                    "0",
                    "-pix_fmt",
                    "yuv420p",
                    "-b:v",
                    "2500k",
                    "-c:a",
                    "libopus",
                    "-ac",
                    "2",
                    "-ar",
                    "48000",
                    "-b:a",
                    "96k",
                    "-whip_flags",
                    "dtls_active",
                    "-f",
                    "whip",
                    "-authorization",
                ]
                .iter()
                .map(Into::into),
            );
            ffmpeg.push(key.into());
            ffmpeg.push(format!("{}/whip/lat{proto}", cluster.origin).into());
            let ca = cluster.ca.display().to_string();
            work.start_unpinned(&name, &cluster.ffmpeg9, &ffmpeg, &[("SSL_CERT_FILE", &ca)])?
        }
        other => bail!("ingest-latency: no protocol {other}"),
    };
    pids.push(pid);
    Ok(pids)
}

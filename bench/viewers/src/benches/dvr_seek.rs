//! `sealcast-bench run dvr-seek`: bench/dvr-seek.sh, issue 49's goal: seeking back in a
//! live stream plays within 1 s in Chromium.
//!
//! A fresh `sealcast up` ([`crate::harness::up`], on every core, as the script ran it: one
//! broadcast node, the source rung only, CMAF, 2 s segments, parts of 0.333 s, a 30-minute
//! time-shift window) gets an 854x480 30 fps `sealcast source` (1200 kb/s, 2 s GOP) over
//! RTMP for BACK + 600 s, on a stream `dvr` of its own (the key through the source's
//! environment); the peer gets the same pattern from a second `sealcast source` through a
//! pipe, packaged by FFmpeg's hls muxer (2 s fMP4 segments, a 30-minute sliding playlist)
//! and served as files by nginx (`bench/peers/nginx/files.conf`, one worker) with a page
//! running the same hls.js (`bench/peers/dvr/index.html`). Once both windows hold BACK
//! seconds and a 30 s margin (ours read from the node's `/api/v1/streams`, waited for up
//! to BACK + 300 s; the peer's playlist, up to 120 s more), bench/viewers'
//! `sealcast-dvr-seek` plays each live in a fresh headless Chromium and goes BACK seconds
//! behind live, ROUNDS times interleaved, timing from the request to playing media. Ours
//! verifies every fragment it plays; the peer checks nothing. The report:
//! [`crate::reports::dvr_seek`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::cluster::{add_stream, latency_config};
use crate::harness::up::{up, UpArgs};
use crate::harness::{get, peer_file, program, render, say, wait_for, Work};
use crate::live::free_port;
use crate::reports::dvr_seek::{playlist_seconds, window_seconds};

/// What the script passes (`--help` names them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds each round seeks back.
    #[arg(default_value_t = 600)]
    pub back: u64,
    /// Rounds: each seeks in ours and in the peer.
    #[arg(default_value_t = 6)]
    pub rounds: u64,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// `sealcast-dvr-seek`.
    #[arg(long)]
    pub seek_bin: PathBuf,
    /// The raw results (default bench/out/dvr-seek.json).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The stream measured.
const STREAM: &str = "dvr";

/// Runs the benchmark; `report` is given what `sealcast-dvr-seek` printed while the run's
/// directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let publish = (args.back + 600).to_string();
    let mut work = Work::tmpfs("dvr-seek")?;
    let dir = work.path("up");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("sealcast.toml");
    std::fs::write(&config, latency_config("0.333", false))?;
    let data = dir.join("data");
    let up_args = UpArgs::configured(&dir, 1)
        .args(["--dvr-window", "30m"])
        .loopback();
    let cluster = up(
        &mut work,
        "up",
        &args.bin,
        &up_args,
        1,
        Duration::from_secs(90),
        &[],
    )
    .context("dvr-seek")?;
    let origin = cluster.field("player").unwrap_or_default();
    let origin = origin.trim_end_matches('/').to_owned();
    let node = cluster.field("broadcast1").unwrap_or_default();
    let node = node.trim_end_matches('/').to_owned();
    let rtmp = cluster.field("obs-server").unwrap_or_default().to_owned();
    let key = add_stream(&args.bin, &data, STREAM)?;
    let url = format!("{rtmp}/{key}");
    let pattern = [
        "--size",
        "854x480",
        "--fps",
        "30",
        "--bitrate",
        "1200",
        "--gop",
        "2",
        "--duration",
    ];
    let mut ours: Vec<&str> = vec!["source"];
    ours.extend(pattern);
    ours.push(&publish);
    work.start_unpinned(
        "ours-source",
        &args.bin,
        &ours,
        &[("SEALCAST_SOURCE_URL", &url)],
    )?;

    // The peer: the same pattern, packaged by FFmpeg, served by nginx.
    let root = work.path("peer");
    std::fs::create_dir_all(root.join("hls"))?;
    std::fs::copy(peer_file("dvr/index.html"), root.join("index.html"))
        .context("copying bench/peers/dvr/index.html")?;
    std::fs::copy(
        "web/vendor/hls.js-1.7.4/hls.min.js",
        root.join("hls.min.js"),
    )
    .context("copying web/vendor/hls.js-1.7.4/hls.min.js")?;
    let fifo = work.path("peer.flv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .context("running mkfifo")?;
    ensure!(made.success(), "mkfifo {} failed", fifo.display());
    let mut peer: Vec<&std::ffi::OsStr> =
        vec!["source".as_ref(), "--output".as_ref(), fifo.as_os_str()];
    peer.extend(pattern.iter().map(std::ffi::OsStr::new));
    peer.push(publish.as_ref());
    work.start_unpinned("peer-source", &args.bin, &peer, &[])?;
    let playlist = root.join("hls/index.m3u8");
    let mut ffmpeg: Vec<&std::ffi::OsStr> = [
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostdin",
        "-f",
        "flv",
        "-i",
    ]
    .iter()
    .map(std::ffi::OsStr::new)
    .collect();
    ffmpeg.push(fifo.as_os_str());
    ffmpeg.extend(
        [
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "900",
            "-hls_segment_type",
            "fmp4",
            "-hls_flags",
            "delete_segments+independent_segments+temp_file",
        ]
        .iter()
        .map(std::ffi::OsStr::new),
    );
    ffmpeg.push(playlist.as_os_str());
    work.start_unpinned("peer-hls", &program("ffmpeg"), &ffmpeg, &[])?;
    let port = free_port()?.to_string();
    let nginx = work.path("nginx");
    std::fs::create_dir_all(nginx.join("tmp"))?;
    let conf = nginx.join("nginx.conf");
    render(
        &peer_file("nginx/files.conf"),
        &conf,
        &[
            ("DIR", &nginx.display().to_string()),
            ("PORT", &port),
            ("ROOT", &root.display().to_string()),
            ("NOFILE", "4096"),
            ("CONNECTIONS", "3996"),
        ],
    )?;
    work.start_unpinned(
        "nginx",
        &program("nginx"),
        ["-c".as_ref(), conf.as_os_str()],
        &[],
    )?;

    let hold = (args.back + 30) as f64;
    say(&format!(
        "dvr-seek: waiting until both windows hold {hold} s"
    ));
    let streams = format!("{node}/api/v1/streams");
    let ours_held = wait_for(Duration::from_secs(args.back + 300), || {
        get(&streams, None, 10).is_some_and(|listing| {
            window_seconds(&String::from_utf8_lossy(&listing), STREAM)
                .is_ok_and(|s| s.is_some_and(|s| s >= hold))
        })
    });
    if !ours_held {
        bail!("our time-shift window never held {hold} s{}", work.logs());
    }
    let peer_held = wait_for(Duration::from_secs(120), || {
        std::fs::read_to_string(&playlist)
            .ok()
            .and_then(|text| playlist_seconds(&text).ok())
            .is_some_and(|s| s >= hold)
    });
    if !peer_held {
        bail!("the peer's playlist never held {hold} s{}", work.logs());
    }

    say(&format!(
        "dvr-seek: {} rounds, {} s back",
        args.rounds, args.back
    ));
    let peer_page = format!("http://127.0.0.1:{port}/index.html");
    let (back, rounds) = (args.back.to_string(), args.rounds.to_string());
    let seek = work.start_unpinned(
        "seek",
        &args.seek_bin,
        [
            origin.as_str(),
            STREAM,
            "--peer",
            &peer_page,
            "--back",
            &back,
            "--rounds",
            &rounds,
        ],
        &[],
    )?;
    if !work.wait(seek)? {
        bail!("sealcast-dvr-seek failed{}", work.logs());
    }
    report(&work.path("seek.out"))
}

//! `sealcast-bench run ll-quality`: bench/ll-quality.sh (issue 17): what the ingest's
//! low-latency x264 settings cost in quality.
//!
//! The same source encoded at the same bitrate with the settings of an encoded rung
//! without parts (`plain`: `veryfast`, frame threads, B-frames and lookahead as the preset
//! has them) and with parts (`ll`: the same plus
//! `bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1`, as `ingest::transcode`
//! opens x264 when parts are on). Both keep the ingest's other settings (2 s closed GOPs,
//! no scene cuts, VBV maxrate 107 %, buffer 150 %). For each of the ladder's three encoded
//! rungs (720p 3000, 480p 1200, 360p 730 kb/s), plain then ll: the encode's wall time,
//! its size, and PSNR and SSIM against the source scaled to the rung's height, on a
//! SECONDS long 720p30 raw source with motion and detail (ffmpeg's testsrc2 with noise).
//! The ffmpeg CLI (the one on the PATH) encodes and compares; its x264 is the library the
//! ingest links. Nothing is pinned (the script pinned nothing).
//!
//! The encodes go one a line into `encodes.tsv` (rung, mode, kb/s, bytes, nanoseconds,
//! ffmpeg's `Parsed_psnr` and `Parsed_ssim` lines), which the report reads:
//! [`crate::reports::ll_quality`].

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context};

use crate::harness::Work;

/// What the script passes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The source's length in seconds.
    #[arg(default_value_t = 30)]
    pub seconds: u64,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The ladder's encoded rungs: name, height, kb/s.
const RUNGS: [(&str, u32, u64); 3] = [("720p", 720, 3000), ("480p", 480, 1200), ("360p", 360, 730)];

/// Runs the benchmark; `report` is given the encodes (`encodes.tsv`) while the run's
/// directory is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    ensure!(args.seconds >= 1, "usage: bench/ll-quality.sh [SECONDS]");
    let work = Work::temp("ll-quality")?;
    let source = work.path("source.nut");
    let secs = args.seconds.to_string();
    ffmpeg(&[
        "-v".as_ref(),
        "error".as_ref(),
        "-f".as_ref(),
        "lavfi".as_ref(),
        "-i".as_ref(),
        "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t".as_ref(),
        "-t".as_ref(),
        secs.as_ref(),
        "-c:v".as_ref(),
        "rawvideo".as_ref(),
        "-pix_fmt".as_ref(),
        "yuv420p".as_ref(),
        source.as_os_str(),
    ])?;
    let encodes = work.path("encodes.tsv");
    std::fs::write(&encodes, "")?;
    for (name, height, kbps) in RUNGS {
        let (maxrate, bufsize) = (kbps * 107 / 100, kbps * 3 / 2);
        let base = format!(
            "keyint=60:min-keyint=60:scenecut=0:open-gop=0:vbv-maxrate={maxrate}:vbv-bufsize={bufsize}"
        );
        for mode in ["plain", "ll"] {
            let params = if mode == "ll" {
                format!("{base}:bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1")
            } else {
                base.clone()
            };
            let out = work.path(format!("{name}-{mode}.mp4"));
            let scale = format!("scale=-2:{height}");
            let bitrate = format!("{kbps}k");
            let start = Instant::now();
            ffmpeg(&[
                "-v".as_ref(),
                "error".as_ref(),
                "-y".as_ref(),
                "-i".as_ref(),
                source.as_os_str(),
                "-vf".as_ref(),
                scale.as_ref(),
                "-c:v".as_ref(),
                "libx264".as_ref(),
                "-preset".as_ref(),
                "veryfast".as_ref(),
                "-b:v".as_ref(),
                bitrate.as_ref(),
                "-x264-params".as_ref(),
                params.as_ref(),
                "-an".as_ref(),
                out.as_os_str(),
            ])?;
            let nanos = start.elapsed().as_nanos();
            let metrics = metrics(&out, &source, height)?;
            let size = std::fs::metadata(&out)
                .with_context(|| out.display().to_string())?
                .len();
            let mut file = std::fs::OpenOptions::new().append(true).open(&encodes)?;
            writeln!(file, "{name}\t{mode}\t{kbps}\t{size}\t{nanos}\t{metrics}")?;
        }
    }
    report(&encodes)
}

/// Runs the ffmpeg CLI with `args`, its output on ours; fails when it does.
fn ffmpeg(args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .status()
        .context("running ffmpeg")?;
    ensure!(status.success(), "ffmpeg failed ({status})");
    Ok(())
}

/// ffmpeg's PSNR and SSIM lines of `encoded` against `source` scaled to `height`, each
/// followed by a space (the script's `grep -E "Parsed_(psnr|ssim)" | tr '\n' ' '`).
fn metrics(encoded: &Path, source: &Path, height: u32) -> anyhow::Result<String> {
    let lavfi =
        format!("[0:v]split[a][b];[1:v]scale=-2:{height},split[r1][r2];[a][r1]psnr;[b][r2]ssim");
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(encoded)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &lavfi, "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .context("running ffmpeg")?;
    ensure!(out.status.success(), "ffmpeg's PSNR and SSIM failed");
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: String = log
        .lines()
        .filter(|l| l.contains("Parsed_psnr") || l.contains("Parsed_ssim"))
        .map(|l| format!("{l} "))
        .collect();
    ensure!(!lines.is_empty(), "ffmpeg printed no PSNR or SSIM");
    Ok(lines)
}

//! `sealcast-bench run ladder`: bench/ladder.sh: the ingest ladder transcoder against the
//! ffmpeg CLI.
//!
//! The same 60 s OBS-like 720p30 FLV (`sealcast source --output`: H.264 with B-frames,
//! 2 s GOP, AAC, 4000 kb/s) goes through `sealcast ladder` and through `ffmpeg
//! -filter_complex split/scale` with the same settings, run as fast as possible,
//! interleaved A B A B over RUNS runs, each timed by `/usr/bin/time` (wall, user and
//! system seconds):
//! - both write CMAF (fMP4 init + .m4s segments), 2 s segments, a passthrough `src` rung,
//!   audio copied, frames passed through as they come (no frame-rate conversion);
//! - the encoded rungs: x264 `veryfast`, 2 s closed GOPs without scene cuts, the same
//!   bitrate / maxrate / bufsize (VBV) per rung, bicubic scaling;
//! - by default sealcast runs its shipping ladder (CMAF with LL-HLS parts), where x264
//!   runs without B-frames or lookahead and with slice threads (what `tune=zerolatency`
//!   sets), and ffmpeg is given the same x264 parameters; `--parts 0` (`LADDER_PARTS=0`)
//!   runs the ladder without parts (sealcast.example.toml with `part_target = 0`) and
//!   ffmpeg with x264's own defaults.
//!
//! Checked, from the first run's outputs: each encoded rung's size, and its PSNR against
//! the source scaled to the rung's size (frames paired by index; `quality`), which the
//! report compares with ffmpeg's (within 0.1 dB, bitrate within 5 %, else it refuses:
//! not like for like). The ffmpeg CLI and ffprobe are the ones on the PATH. Nothing is
//! pinned (the script pinned nothing). The report: [`crate::reports::ladder`] (CPU-seconds
//! and wall-time ratios, ffmpeg / ours, with an A/A ratio of ffmpeg against itself).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context};

use crate::harness::{say, Work};

/// What the script passes, and the environment variable it reads.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs: each runs both sides once.
    #[arg(default_value_t = 5)]
    pub runs: u64,
    /// 1: the shipping ladder, with LL-HLS parts; 0: without parts.
    #[arg(long, env = "LADDER_PARTS", default_value_t = 1)]
    pub parts: u8,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

/// The x264 parameters both sides are given with parts.
const LL_X264: &str = "bframes=0:rc-lookahead=0:sync-lookahead=0:sliced-threads=1";

/// The encoded rungs: name, width, height.
const RUNGS: [(&str, u32, u32); 3] = [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)];

/// What a run was given.
struct Setup {
    /// The fixture.
    fixture: PathBuf,
    /// `sealcast ladder`'s arguments before `--input` (a `--config` without parts).
    ours: Vec<PathBuf>,
    /// The x264 parameters (none without parts).
    x264: String,
}

/// Runs the benchmark; `report` is given the run's directory (`runs`, `quality` and the
/// first run's outputs) and the x264 parameters, while the directory is still there.
pub fn run(
    args: &Args,
    report: impl FnOnce(&Path, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let work = Work::temp("ladder")?;
    let fixture = work.path("fixture.flv");
    let status = Command::new(&args.bin)
        .arg("source")
        .arg("--output")
        .arg(&fixture)
        .args(["--size", "1280x720", "--fps", "30", "--bitrate", "4000"])
        .args(["--gop", "2", "--duration", "60", "--fast"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .context("running sealcast source")?;
    ensure!(
        status.success(),
        "sealcast source could not write the fixture"
    );
    let mut setup = Setup {
        fixture,
        ours: Vec::new(),
        x264: LL_X264.to_owned(),
    };
    if args.parts == 0 {
        let example =
            std::fs::read_to_string("sealcast.example.toml").context("sealcast.example.toml")?;
        let plain = without_parts(&example);
        ensure!(
            plain.lines().any(|l| l == "part_target = 0"),
            "sealcast.example.toml has no part_target to turn off"
        );
        let path = work.path("plain.toml");
        std::fs::write(&path, plain)?;
        setup.ours = vec!["--config".into(), path];
        setup.x264 = String::new();
    }

    let runs = work.path("runs");
    std::fs::write(&runs, "")?;
    for i in 1..=args.runs {
        say(&format!("ladder: run {i}/{}", args.runs));
        let ours = run_ours(&work, args, &setup, &work.path(format!("ours{i}")))?;
        let ffmpeg = run_ffmpeg(&work, &setup, &work.path(format!("ff{i}")))?;
        let mut file = std::fs::OpenOptions::new().append(true).open(&runs)?;
        writeln!(file, "ours {ours}")?;
        writeln!(file, "ffmpeg {ffmpeg}")?;
    }

    // Like for like? Bitrate and PSNR per rung, from run 1.
    let quality = work.path("quality");
    std::fs::write(&quality, "")?;
    for (name, w, h) in RUNGS {
        let ours = work.path(format!("ours.{name}.mp4"));
        let ff = work.path(format!("ff.{name}.mp4"));
        let ours_dir = work.path("ours1").join(name);
        join_rung(&ours_dir, &ours_dir.join("init.mp4"), "", &ours)?;
        let ff_dir = work.path("ff1");
        join_rung(
            &ff_dir,
            &ff_dir.join(format!("{name}_init.mp4")),
            &format!("{name}_"),
            &ff,
        )?;
        for (side, file) in [("ours", &ours), ("ff", &ff)] {
            let size = probe_size(file)?;
            if size != format!("{w},{h}") {
                bail!("{side}'s {name} is {size}, not {w},{h}{}", work.logs());
            }
            let psnr = psnr(file, &setup.fixture, w, h)?;
            let mut out = std::fs::OpenOptions::new().append(true).open(&quality)?;
            writeln!(out, "{side} {name} {psnr}")?;
        }
    }
    report(work.dir(), &setup.x264)
}

/// `example` with every line starting `part_target = ` made `part_target = 0` (the
/// script's `sed 's/^part_target = .*/part_target = 0/'`).
pub fn without_parts(example: &str) -> String {
    example
        .split('\n')
        .map(|line| {
            if line.starts_with("part_target = ") {
                "part_target = 0"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `/usr/bin/time -f "%e %U %S" -o WORK/time` before `program`: its "wall user system"
/// seconds once `command` has run.
fn timed(work: &Work, mut command: Command, what: &str) -> anyhow::Result<String> {
    let time = work.path("time");
    let status = command
        .status()
        .with_context(|| format!("running {what} under /usr/bin/time"))?;
    ensure!(status.success(), "{what} failed ({status})");
    let text = std::fs::read_to_string(&time).context("/usr/bin/time's output")?;
    Ok(text.trim_end_matches('\n').to_owned())
}

/// The time command for `program`.
fn time_command(work: &Work, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%e %U %S", "-o"])
        .arg(work.path("time"))
        .arg(program)
        .stdin(Stdio::null());
    command
}

/// `sealcast ladder` into `out` (its report in `OUT.report`, its log in `OUT.err`), without
/// a `SEALCAST_CONFIG` of the environment: "wall user system".
fn run_ours(work: &Work, args: &Args, setup: &Setup, out: &Path) -> anyhow::Result<String> {
    let report = std::fs::File::create(out.with_extension("report"))?;
    let err_path = out.with_extension("err");
    let err = std::fs::File::create(&err_path)?;
    let mut command = time_command(work, &args.bin);
    command
        .env_remove("SEALCAST_CONFIG")
        .arg("ladder")
        .args(&setup.ours)
        .arg("--input")
        .arg(&setup.fixture)
        .arg("--output")
        .arg(out)
        .stdout(report)
        .stderr(err);
    timed(work, command, "sealcast ladder").map_err(|e| {
        let log = std::fs::read_to_string(&err_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n");
        anyhow::anyhow!("{e}\n{tail}")
    })
}

/// The ffmpeg CLI's ladder into `out`, the same settings: "wall user system".
fn run_ffmpeg(work: &Work, setup: &Setup, out: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    let mut command = time_command(work, "ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(&setup.fixture)
        .args([
            "-filter_complex",
            "[0:v]split=3[a][b][c];[a]scale=1280:720:flags=bicubic[v720];\
             [b]scale=854:480:flags=bicubic[v480];[c]scale=640:360:flags=bicubic[v360]",
        ])
        .args([
            "-map", "0:v", "-map", "[v720]", "-map", "[v480]", "-map", "[v360]",
        ])
        .args(["-map", "0:a", "-map", "0:a", "-map", "0:a", "-map", "0:a"])
        .args(["-c:v:0", "copy"])
        .args([
            "-c:v:1",
            "libx264",
            "-b:v:1",
            "3000k",
            "-maxrate:v:1",
            "3210k",
        ])
        .args(["-bufsize:v:1", "4500k"])
        .args([
            "-c:v:2",
            "libx264",
            "-b:v:2",
            "1200k",
            "-maxrate:v:2",
            "1284k",
        ])
        .args(["-bufsize:v:2", "1800k"])
        .args([
            "-c:v:3",
            "libx264",
            "-b:v:3",
            "730k",
            "-maxrate:v:3",
            "781k",
        ])
        .args(["-bufsize:v:3", "1095k"])
        .args(["-preset", "veryfast", "-g", "60", "-keyint_min", "60"])
        .args([
            "-sc_threshold",
            "0",
            "-flags",
            "+cgop",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-fps_mode", "passthrough"]);
    if !setup.x264.is_empty() {
        command.args(["-x264-params", &setup.x264]);
    }
    command
        .args(["-c:a", "copy"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
        .args([
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "%v_init.mp4",
        ])
        .arg("-hls_segment_filename")
        .arg(out.join("%v_%d.m4s"))
        .args([
            "-var_stream_map",
            "v:0,a:0,name:src v:1,a:1,name:720p v:2,a:2,name:480p v:3,a:3,name:360p",
        ])
        .args(["-master_pl_name", "master.m3u8"])
        .arg(out.join("%v.m3u8"));
    timed(work, command, "ffmpeg")
}

/// One fMP4 file per rung: `init`, then the media segments of `dir` named `PREFIX` and a
/// digit, `….m4s`, in version order (`sort -V`), into `out`.
fn join_rung(dir: &Path, init: &Path, prefix: &str, out: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| {
            name.strip_prefix(prefix).is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_ascii_digit()) && rest.ends_with(".m4s")
            })
        })
        .collect();
    names.sort_by(|a, b| version_order(a, b));
    let mut bytes = std::fs::read(init).with_context(|| init.display().to_string())?;
    for name in names {
        bytes.extend(std::fs::read(dir.join(&name))?);
    }
    std::fs::write(out, bytes)?;
    Ok(())
}

/// `sort -V`'s order for names of digits and other characters: runs of digits compared as
/// numbers, the rest as text.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, xa), (db, xb)) in ca.iter().zip(&cb) {
        let order = if *da && *db {
            let (na, nb) = (xa.trim_start_matches('0'), xb.trim_start_matches('0'));
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            xa.cmp(xb)
        };
        if order.is_ne() {
            return order;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// "WIDTH,HEIGHT" of `file`'s video (ffprobe).
fn probe_size(file: &Path) -> anyhow::Result<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["stream=width,height", "-of", "csv=p=0"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .context("running ffprobe")?;
    ensure!(
        out.status.success(),
        "ffprobe could not read {}",
        file.display()
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_owned())
}

/// The average PSNR (dB) of `file` against `fixture` scaled bicubic to `w`x`h`, frames
/// paired by index (the outputs' timestamps lie on a 1/30 s grid, the FLV's are whole
/// milliseconds, so pairing by time would compare neighbours); empty when ffmpeg printed
/// none (the report then refuses).
fn psnr(file: &Path, fixture: &Path, w: u32, h: u32) -> anyhow::Result<String> {
    let grid = "settb=1/90000,setpts=N*3000";
    let lavfi = format!("[0:v]{grid}[d];[1:v]scale={w}:{h}:flags=bicubic,{grid}[r];[d][r]psnr");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(file)
        .arg("-i")
        .arg(fixture)
        .args(["-lavfi", &lavfi, "-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .context("running ffmpeg")?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(average_psnr(&text).unwrap_or_default())
}

/// The last `average:` figure of a line holding `PSNR ` (the script's `sed -n
/// 's/.*PSNR .*average:\([0-9.]*\).*/\1/p' | tail -1`).
pub fn average_psnr(log: &str) -> Option<String> {
    log.lines().rev().find_map(|line| {
        let after = &line[line.find("PSNR ")? + 5..];
        let at = after.rfind("average:")? + "average:".len();
        let figure: String = after[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        Some(figure)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_sort_as_sort_v_sorts_them() {
        let mut names = vec!["720p_10.m4s", "720p_9.m4s", "720p_0.m4s", "720p_100.m4s"];
        names.sort_by(|a, b| version_order(a, b));
        assert_eq!(
            names,
            ["720p_0.m4s", "720p_9.m4s", "720p_10.m4s", "720p_100.m4s"]
        );
        let mut ours = vec!["12.m4s", "2.m4s", "1.m4s"];
        ours.sort_by(|a, b| version_order(a, b));
        assert_eq!(ours, ["1.m4s", "2.m4s", "12.m4s"]);
    }

    #[test]
    fn the_average_psnr_is_the_last_lines() {
        let log = "frame= 1\n[Parsed_psnr_2 @ 0x1] PSNR y:40.1 u:44.0 v:45.2 average:41.23 min:38.0 max:44.1\n\
                   [Parsed_psnr_2 @ 0x1] PSNR y:40.1 average:39.50 min:1\n";
        assert_eq!(average_psnr(log).as_deref(), Some("39.50"));
        assert_eq!(average_psnr("nothing\n"), None);
    }

    #[test]
    fn without_parts_turns_part_target_off() {
        let example = "[ladder]\npart_target = 0.333\n# part_target = 1\n";
        assert_eq!(
            without_parts(example),
            "[ladder]\npart_target = 0\n# part_target = 1\n"
        );
    }
}

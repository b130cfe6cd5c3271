//! `sealcast-bench run ladder-codecs`: bench/ladder-codecs.sh (issue 32): ladder CPU for
//! a 1080p60 HEVC and a 1080p60 AV1 source on this machine. Does the ingest keep real time
//! with the default ladder (src passed through, 720p, 480p and 360p encoded by x264), or
//! shed rungs visibly (`sealcast_ingest_rungs_shed`, the dashboard's realtime factor)
//! without stalling the stream?
//!
//! FFmpeg 9 (PyPI's imageio-ffmpeg, as `scripts/setup.sh test` installs it; the script
//! finds it) first encodes SECONDS of a 1920x1080 60 fps test pattern with a 1 kHz tone
//! once per codec, ahead of time (x265 `ultrafast` at 8 Mb/s; SVT-AV1 preset 10 at 6 Mb/s;
//! a keyframe every 2 s, no scene cuts, Opus audio), so that no encoder of the publisher
//! competes with the ingest during the measurement. Then one `sealcast up`
//! ([`crate::harness::up::up`]: the default ladder, 2 broadcast nodes, the ingest's
//! end grace of 2 s), and for each codec in turn FFmpeg 9 publishes that file in real time
//! over Enhanced RTMP (`-re -c copy -f flv`) with the stream key `up` printed. Every 2 s
//! while it publishes: the CPU of `sealcast up` since the publish began
//! ([`crate::harness::cpu_ticks`]) and, from node 1's `/metrics`, each rung's realtime
//! factor, the pipeline's lag and the rungs shed (one line of `samples.jsonl`,
//! [`crate::reports::ladder_codecs::sample`]). 4 s after the publish ends (the grace), the
//! src rung's playlist and the master are kept: the src segments must cover the publish
//! without a gap (the stream never stalls, whatever was shed); 4 s more before the next
//! codec.
//!
//! Nothing is pinned (the script pinned nothing). The report:
//! [`crate::reports::ladder_codecs`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::harness::up::{up, UpArgs};
use crate::harness::{cpu_ticks, get, say, Work};
use crate::reports::ladder_codecs::{sample, Tick};

/// What the script passes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds of each codec's source, published in real time.
    #[arg(default_value_t = 60)]
    pub seconds: u64,
    /// The codecs, in turn (`hevc`, `av1`), separated by spaces.
    #[arg(default_value = "hevc av1")]
    pub codecs: String,
    /// The `sealcast` binary under test.
    #[arg(long)]
    pub bin: PathBuf,
    /// FFmpeg 9 (E-RTMP HEVC and AV1, libx265, libsvtav1).
    #[arg(long)]
    pub ffmpeg9: PathBuf,
    /// Print the section only; the doc (the driver's `--docs`) is left as it is.
    #[arg(long)]
    pub no_doc: bool,
}

impl Args {
    /// The codecs, in turn.
    pub fn codecs(&self) -> Vec<String> {
        self.codecs.split_whitespace().map(str::to_owned).collect()
    }
}

/// The encoder's arguments of `codec`.
fn video(codec: &str) -> anyhow::Result<&'static [&'static str]> {
    Ok(match codec {
        "hevc" => &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-b:v",
            "8M",
            "-x265-params",
            "keyint=120:min-keyint=120:scenecut=0:log-level=error",
        ],
        "av1" => &[
            "-c:v",
            "libsvtav1",
            "-preset",
            "10",
            "-b:v",
            "6M",
            "-g",
            "120",
            "-svtav1-params",
            "scd=0",
        ],
        _ => bail!("unknown codec {codec} (hevc, av1)"),
    })
}

/// Seconds since the epoch (`date +%s.%N`).
fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs the benchmark; `report` is given the run's directory (`samples.jsonl`, and per
/// codec `src-CODEC.m3u8` and `master-CODEC.m3u8`) while it is still there.
pub fn run(args: &Args, report: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let codecs = args.codecs();
    for codec in &codecs {
        video(codec)?;
    }
    let mut work = Work::temp("ladder-codecs")?;
    let secs = args.seconds.to_string();
    for codec in &codecs {
        say(&format!(
            "ladder-codecs: encoding {secs}s of 1080p60 {codec} ahead of time"
        ));
        let err = std::fs::File::create(work.path(format!("encode-{codec}.err")))?;
        let status = Command::new(&args.ffmpeg9)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60"])
            .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
            .args(["-t", &secs, "-pix_fmt", "yuv420p"])
            .args(video(codec)?)
            .args(["-c:a", "libopus", "-b:a", "128k", "-f", "flv"])
            .arg(work.path(format!("{codec}.flv")))
            .stdin(Stdio::null())
            .stderr(err)
            .status()
            .context("running FFmpeg 9")?;
        ensure!(status.success(), "encoding {codec} failed{}", work.logs());
    }

    let dir = work.path("cluster");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("sealcast.toml"),
        "[ingest]\nend_grace_seconds = 2.0\n",
    )?;
    let cluster = up(
        &mut work,
        "up",
        &args.bin,
        &UpArgs::configured(&dir, 2).loopback(),
        2,
        Duration::from_secs(60),
        &[],
    )?;
    let obs = cluster.url("obs-server")?;
    let node = cluster.url("broadcast1")?;
    let key = cluster
        .stream_key("main")
        .context("sealcast up printed no key of stream main")?
        .to_owned();
    let tick = crate::procstat::clock_ticks();

    let samples = work.path("samples.jsonl");
    std::fs::write(&samples, "")?;
    for codec in &codecs {
        say(&format!(
            "ladder-codecs: publishing 1080p60 {codec} over E-RTMP for {secs}s"
        ));
        let flv = work.path(format!("{codec}.flv"));
        let target = format!("{obs}/{key}");
        let name = format!("publish-{codec}");
        let publisher = work.start_unpinned(
            &name,
            &args.ffmpeg9,
            [
                "-hide_banner".as_ref(),
                "-loglevel".as_ref(),
                "error".as_ref(),
                "-nostdin".as_ref(),
                "-re".as_ref(),
                "-i".as_ref(),
                flv.as_os_str(),
                "-c".as_ref(),
                "copy".as_ref(),
                "-f".as_ref(),
                "flv".as_ref(),
                std::ffi::OsStr::new(&target),
            ],
            &[],
        )?;
        let start = epoch();
        let before = cpu_ticks(&[cluster.pid])?;
        while work.alive(publisher, &name).is_ok() {
            std::thread::sleep(Duration::from_secs(2));
            let now = epoch();
            let ticks = cpu_ticks(&[cluster.pid])?;
            // A node that does not answer gives a sample without series.
            let metrics = get(&format!("{node}/metrics"), None, 10).unwrap_or_default();
            let tick = Tick {
                codec: codec.clone(),
                start,
                now,
                before,
                ticks,
                tick,
            };
            let line = sample(&tick, &String::from_utf8_lossy(&metrics));
            let mut file = std::fs::OpenOptions::new().append(true).open(&samples)?;
            writeln!(file, "{line}")?;
        }
        if !work.wait(publisher)? {
            let log = std::fs::read(work.path(format!("{name}.err"))).unwrap_or_default();
            let tail = String::from_utf8_lossy(&log[log.len().saturating_sub(400)..]).into_owned();
            say(&format!(
                "ladder-codecs: the {codec} publisher exited with an error: {tail}"
            ));
        }
        // The src playlist once the stream ended (grace 2 s): what it covered, and any gap.
        std::thread::sleep(Duration::from_secs(4));
        for (file, path) in [
            (format!("src-{codec}.m3u8"), "/live/main/src/index.m3u8"),
            (format!("master-{codec}.m3u8"), "/live/main/master.m3u8"),
        ] {
            let body = get(&format!("{node}{path}"), None, 10).unwrap_or_default();
            std::fs::write(work.path(file), body)?;
        }
        std::thread::sleep(Duration::from_secs(4));
    }
    report(work.dir())
}

//! The ffmpeg and ffprobe CLIs: a test pattern published over RTMP or written to a file
//! the way an encoder would (keyframes every two seconds, AAC), and what ffprobe reads in
//! a file or segment.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A test pattern (`testsrc2` with a 1 kHz tone), H.264 with a keyframe every two seconds
/// and no scene-cut keyframes, as an encoder set up for HLS sends it.
#[derive(Debug, Clone)]
pub struct TestPattern {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// How long it lasts.
    pub seconds: u32,
    /// The video encoder's arguments (`-c:v ...`); x264 `ultrafast` by default.
    pub video: Vec<String>,
    /// The audio codec (`aac`, `libmp3lame`).
    pub audio: String,
    /// Whether input is read at its own pace (`-re`, a live publisher) or as fast as
    /// possible (a file).
    pub realtime: bool,
    /// The ffmpeg to run: Debian's (`ffmpeg` on the PATH) or another, such as [`ffmpeg9`].
    pub program: PathBuf,
    /// The muxer: `flv` (RTMP, E-RTMP with FFmpeg 9's HEVC and AV1) or `mpegts` (SRT).
    pub format: String,
}

impl TestPattern {
    /// `width`x`height` at `fps` for `seconds`, x264 at 1.5 Mb/s, AAC, in real time.
    pub fn new(width: u32, height: u32, fps: u32, seconds: u32) -> Self {
        let gop = (fps * 2).to_string();
        let video = [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ];
        TestPattern {
            width,
            height,
            fps,
            seconds,
            video: video.iter().map(|s| (*s).to_owned()).collect(),
            audio: "aac".to_owned(),
            realtime: true,
            program: PathBuf::from("ffmpeg"),
            format: "flv".to_owned(),
        }
        .video_args(&["-b:v", "1500k"])
    }

    /// With these video encoder arguments instead of x264's (`-c:v flv1`).
    pub fn video_codec(mut self, args: &[&str]) -> Self {
        self.video = args.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// With these arguments added to the video encoder's.
    pub fn video_args(mut self, args: &[&str]) -> Self {
        self.video.extend(args.iter().map(|s| (*s).to_owned()));
        self
    }

    /// With another audio codec.
    pub fn audio_codec(mut self, codec: &str) -> Self {
        self.audio = codec.to_owned();
        self
    }

    /// Run by `program` (another ffmpeg, such as [`ffmpeg9`]) rather than Debian's.
    pub fn program(mut self, program: &Path) -> Self {
        self.program = program.to_path_buf();
        self
    }

    /// Muxed as `format` (`mpegts` for SRT) rather than FLV.
    pub fn format(mut self, format: &str) -> Self {
        self.format = format.to_owned();
        self
    }

    /// As fast as possible rather than in real time.
    pub fn fast(mut self) -> Self {
        self.realtime = false;
        self
    }

    /// ffmpeg's arguments to send it in its format (FLV unless [`TestPattern::format`] said
    /// otherwise) to `output` (a URL or a path).
    pub fn args(&self, output: &str) -> Vec<String> {
        let (w, h, fps) = (self.width, self.height, self.fps);
        let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if self.realtime {
            args.push("-re".to_owned());
        }
        args.extend(
            [
                "-f".to_owned(),
                "lavfi".to_owned(),
                "-i".to_owned(),
                format!("testsrc2=size={w}x{h}:rate={fps}"),
                "-f".to_owned(),
                "lavfi".to_owned(),
                "-i".to_owned(),
                "sine=frequency=1000:sample_rate=48000".to_owned(),
                "-t".to_owned(),
                self.seconds.to_string(),
            ]
            .into_iter()
            .chain(self.video.iter().cloned())
            .chain(
                [
                    "-c:a",
                    &self.audio,
                    "-b:a",
                    "128k",
                    "-f",
                    &self.format,
                    output,
                ]
                .iter()
                .map(|s| (*s).to_owned()),
            ),
        );
        args
    }

    /// Publishes it to `url` (`rtmp://...`, or `srt://...` with the `mpegts` format).
    pub fn publish(&self, url: &str) -> Result<Publisher> {
        let child = Command::new(&self.program)
            .args(self.args(url))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting ffmpeg")?;
        Ok(Publisher {
            child,
            what: format!("ffmpeg {}x{}", self.width, self.height),
        })
    }

    /// Writes it to the file `path` (blocking), FLV unless [`TestPattern::format`] said
    /// otherwise.
    pub fn write_flv(&self, path: &Path) -> Result<()> {
        let path = path.to_str().context("a UTF-8 path")?;
        let out = std::process::Command::new(&self.program)
            .args(self.args(path))
            .stdin(Stdio::null())
            .output()
            .context("running ffmpeg")?;
        ensure!(
            out.status.success(),
            "ffmpeg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

/// An ffmpeg publishing (or any publisher process): killed when dropped.
#[derive(Debug)]
pub struct Publisher {
    child: Child,
    what: String,
}

impl Publisher {
    /// Wraps a publisher process a test started itself (stderr piped for
    /// [`Publisher::wait_success`]'s message).
    pub fn from_child(child: Child, what: &str) -> Self {
        Publisher {
            child,
            what: what.to_owned(),
        }
    }

    /// Its exit status, however long it takes: for a publisher meant to run as long as
    /// the test needs it (one `wait` would give up on after two minutes, ending it).
    pub async fn exited(mut self) -> Result<ExitStatus> {
        Ok(self.child.wait().await?)
    }

    /// Its exit status (two minutes at most).
    pub async fn wait(mut self) -> Result<ExitStatus> {
        Ok(
            tokio::time::timeout(Duration::from_secs(120), self.child.wait())
                .await
                .with_context(|| format!("{} hung", self.what))??,
        )
    }

    /// Its exit, which must be a success (the error has what it printed).
    pub async fn wait_success(mut self) -> Result<()> {
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .with_context(|| format!("{} hung", self.what))??;
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err).await;
        }
        ensure!(status.success(), "{} failed ({status}): {err}", self.what);
        Ok(())
    }

    /// Its exit status and what it printed on stderr (two minutes at most): for a refusal
    /// the test wants to read, such as an SRT rejection reason.
    pub async fn wait_with_stderr(mut self) -> Result<(ExitStatus, String)> {
        let mut err = String::new();
        let mut stderr = self.child.stderr.take();
        let read = async {
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_string(&mut err).await;
            }
        };
        let status = tokio::time::timeout(Duration::from_secs(120), async {
            read.await;
            self.child.wait().await
        })
        .await
        .with_context(|| format!("{} hung", self.what))??;
        Ok((status, err))
    }

    /// Ends a publisher whose output the test has checked, without waiting out the rest of
    /// its input: one that already exited must have succeeded (the error has what it
    /// printed); one still publishing is killed.
    pub async fn finish_early(mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(_) => self.wait_success().await,
            None => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Ok(())
            }
        }
    }

    /// SIGKILL: the publisher vanishes without an unpublish.
    pub fn kill_hard(mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGSTOP (`stopped`) or SIGCONT: a publisher whose encoder or network stalls, its
    /// connection kept open.
    pub fn stall(&self, stopped: bool) -> Result<()> {
        let pid = self
            .child
            .id()
            .with_context(|| format!("{} exited", self.what))?;
        crate::process::signal(pid, if stopped { "STOP" } else { "CONT" })
    }
}

/// `ffprobe -v error ARGS -of json PATH`, parsed; an error if ffprobe fails or says
/// anything on stderr (a complaint about the stream is a finding). Blocking.
pub fn ffprobe(path: &Path, args: &[&str]) -> Result<Value> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "json"])
        .arg(path)
        .output()
        .context("running ffprobe")?;
    parse_probe(path, &out)
}

/// [`ffprobe`] without blocking the executor.
pub async fn ffprobe_async(path: &Path, args: &[&str]) -> Result<Value> {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "json"])
        .arg(path)
        .output()
        .await
        .context("running ffprobe")?;
    parse_probe(path, &out)
}

fn parse_probe(path: &Path, out: &std::process::Output) -> Result<Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "ffprobe {} failed: {stderr}",
        path.display()
    );
    ensure!(
        stderr.trim().is_empty(),
        "ffprobe {} complained: {stderr}",
        path.display()
    );
    serde_json::from_slice(&out.stdout).context("ffprobe's JSON")
}

/// The streams and frames of a file (`-show_streams -show_frames`).
pub fn streams_and_frames(path: &Path) -> Result<Value> {
    ffprobe(path, &["-show_streams", "-show_frames"])
}

/// The one stream of `kind` (`video`, `audio`) of a probe.
pub fn stream<'a>(probe: &'a Value, kind: &str) -> Result<&'a Value> {
    let streams = probe["streams"].as_array().context("no streams")?;
    let matching: Vec<&Value> = streams.iter().filter(|s| s["codec_type"] == kind).collect();
    ensure!(
        matching.len() == 1,
        "one {kind} stream expected, found {}",
        matching.len()
    );
    Ok(matching[0])
}

/// The frames of `kind` of a probe, in order.
pub fn frames<'a>(probe: &'a Value, kind: &str) -> Vec<&'a Value> {
    probe["frames"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["media_type"] == kind).collect())
        .unwrap_or_default()
}

/// A number ffprobe printed as a string (`"1.234"`) or a number.
pub fn number(v: &Value) -> Option<f64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
}

/// What a media segment holds, as ffprobe sees it.
#[derive(Debug, Clone)]
pub struct SegmentProbe {
    /// Video width.
    pub width: u32,
    /// Video height.
    pub height: u32,
    /// Whether it has an AAC audio stream.
    pub has_audio: bool,
    /// Whether the first video frame is a keyframe (the segment decodes on its own).
    pub first_video_is_key: bool,
    /// Smallest video PTS in seconds.
    pub first_video_pts: f64,
    /// From the first to past the last video frame, in seconds.
    pub video_duration: f64,
}

/// Probes a segment's bytes (H.264 video required): a CMAF segment after its init
/// segment `init`, or an MPEG-TS segment on its own (`init` is `None`).
pub async fn probe_segment(init: Option<&[u8]>, bytes: &[u8]) -> Result<SegmentProbe> {
    probe_segment_of(init, bytes, "h264").await
}

/// [`probe_segment`] for a segment whose video is `codec` as ffprobe names it (`h264`,
/// `hevc`, `av1`, `vp9`): a `src` rung passing the publisher's codec through.
pub async fn probe_segment_of(
    init: Option<&[u8]>,
    bytes: &[u8],
    codec: &str,
) -> Result<SegmentProbe> {
    let suffix = if init.is_some() { ".mp4" } else { ".ts" };
    let file = tempfile::Builder::new().suffix(suffix).tempfile()?;
    std::fs::write(file.path(), [init.unwrap_or_default(), bytes].concat())?;
    let v = ffprobe_async(file.path(), &["-show_streams", "-show_frames"]).await?;
    let video = stream(&v, "video")?;
    ensure!(
        video["codec_name"] == codec,
        "video codec {}, not {codec}",
        video["codec_name"]
    );
    let has_audio = v["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["codec_type"] == "audio" && s["codec_name"] == "aac");
    let video_frames = frames(&v, "video");
    ensure!(!video_frames.is_empty(), "no video frames");
    let mut all: Vec<f64> = video_frames
        .iter()
        .filter_map(|f| number(&f["pts_time"]))
        .collect();
    all.sort_by(f64::total_cmp);
    let first = *all.first().context("no pts")?;
    let last = *all.last().context("no pts")?;
    let step = if all.len() > 1 {
        (last - first) / (all.len() - 1) as f64
    } else {
        0.0
    };
    Ok(SegmentProbe {
        width: video["width"].as_u64().unwrap_or(0) as u32,
        height: video["height"].as_u64().unwrap_or(0) as u32,
        has_audio,
        first_video_is_key: video_frames[0]["key_frame"] == 1,
        first_video_pts: first,
        video_duration: last - first + step,
    })
}

/// The duration ffprobe reports for a whole file or playlist, in seconds, and what it said
/// on stderr meanwhile (not an error here: callers decide).
pub async fn duration_seconds(path: &Path) -> Result<(f64, String)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .await
        .context("running ffprobe")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "ffprobe {}: {stderr}", path.display());
    let seconds = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("ffprobe printed no duration")?;
    Ok((seconds, stderr.into_owned()))
}

/// FFmpeg 9, the static build PyPI's imageio-ffmpeg ships (scripts/setup.sh test installs
/// it into the tools' virtual environment): what publishes Enhanced RTMP (HEVC, AV1) and
/// SRT with a current libsrt, where Debian 12's ffmpeg 5.1 sends neither E-RTMP. The path
/// in `SEALCAST_TEST_FFMPEG9`, else the one the environment's Python reports.
pub fn ffmpeg9() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SEALCAST_TEST_FFMPEG9") {
        return Ok(PathBuf::from(path));
    }
    let tools = std::env::var_os("SEALCAST_KUBERNETES_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/sealcast/kubernetes-tools"))
        })
        .context("no HOME to find the tools' virtual environment in")?;
    let out = std::process::Command::new(tools.join("bin/python"))
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output()
        .with_context(|| {
            format!(
                "running {}/bin/python (scripts/setup.sh test installs it)",
                tools.display()
            )
        })?;
    ensure!(
        out.status.success(),
        "imageio-ffmpeg is not installed in {} (scripts/setup.sh test): {}",
        tools.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    ensure!(
        path.is_file(),
        "imageio-ffmpeg names {}, which is not there",
        path.display()
    );
    Ok(path)
}

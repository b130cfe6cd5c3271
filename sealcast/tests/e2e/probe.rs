//! ffprobe on a segment.

use anyhow::Context;
use tokio::process::Command;

pub(crate) struct SegmentProbe {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) has_audio: bool,
    pub(crate) first_video_is_key: bool,
    /// Smallest video PTS in seconds.
    pub(crate) first_video_pts: f64,
    /// From the first to past the last video frame, in seconds.
    pub(crate) video_duration: f64,
}

pub(crate) async fn probe_segment(bytes: &[u8]) -> anyhow::Result<SegmentProbe> {
    let file = tempfile::Builder::new().suffix(".ts").tempfile()?;
    std::fs::write(file.path(), bytes)?;
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_frames",
            "-of",
            "json",
        ])
        .arg(file.path())
        .output()
        .await
        .context("running ffprobe")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "ffprobe failed: {stderr}");
    anyhow::ensure!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let streams = v["streams"].as_array().context("streams")?;
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .context("no video stream")?;
    anyhow::ensure!(
        video["codec_name"] == "h264",
        "video codec {}",
        video["codec_name"]
    );
    let has_audio = streams
        .iter()
        .any(|s| s["codec_type"] == "audio" && s["codec_name"] == "aac");
    let frames = v["frames"].as_array().context("frames")?;
    let video_frames: Vec<&serde_json::Value> = frames
        .iter()
        .filter(|f| f["media_type"] == "video")
        .collect();
    anyhow::ensure!(!video_frames.is_empty(), "no video frames");
    let pts = |f: &serde_json::Value| f["pts_time"].as_str().and_then(|s| s.parse::<f64>().ok());
    let mut all: Vec<f64> = video_frames.iter().filter_map(|f| pts(f)).collect();
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
/// on stderr meanwhile.
pub(crate) async fn duration_seconds(path: &std::path::Path) -> anyhow::Result<(f64, String)> {
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
    anyhow::ensure!(out.status.success(), "ffprobe {}: {stderr}", path.display());
    let seconds = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("ffprobe printed no duration")?;
    Ok((seconds, stderr.into_owned()))
}

//! The pipeline over an FLV file (what `sealcast ladder` and the benchmark run): a real
//! ffmpeg-made FLV in, a ladder on disk out, checked with ffprobe.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use domain::Ladder;

fn ffprobe_first_video_frame(path: &Path) -> (bool, String) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let first = text.lines().next().expect("a frame").to_owned();
    let (key, pts) = first.split_once(',').expect("key,pts");
    (key == "1", pts.to_owned())
}

#[test]
fn a_file_becomes_an_aligned_ladder_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join("in.flv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"])
        .args([
            "-t",
            "7",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-keyint_min",
            "60",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ])
        .arg(&flv)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let report = ingest::file::transcode_file(&flv, &out, Arc::new(Ladder::default()), 0)
        .expect("transcodes");

    // 854x480 skips 720p; src, 480p and 360p remain, with the same segment count.
    let mut names: Vec<_> = report.segments.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["360p", "480p", "src"]);
    let counts: Vec<u64> = names.iter().map(|n| report.segments[n]).collect();
    assert!(
        counts.iter().all(|c| *c == counts[0] && *c >= 3),
        "{counts:?}"
    );

    let master = std::fs::read(out.join("master.m3u8")).expect("master written");
    let master = m3u8_rs::parse_master_playlist_res(&master).expect("master parses");
    assert_eq!(master.variants.len(), 3);

    // Every segment of every rung starts with a keyframe, at the same time on each rung.
    for seq in 0..counts[0] {
        let firsts: Vec<(bool, String)> = names
            .iter()
            .map(|n| ffprobe_first_video_frame(&out.join(n).join(format!("{seq}.ts"))))
            .collect();
        assert!(
            firsts.iter().all(|(key, _)| *key),
            "segment {seq}: {firsts:?}"
        );
        assert!(
            firsts.iter().all(|(_, pts)| *pts == firsts[0].1),
            "segment {seq}: {firsts:?}"
        );
    }
    let playlist = std::fs::read(out.join("360p/index.m3u8")).expect("playlist");
    let playlist = m3u8_rs::parse_media_playlist_res(&playlist).expect("parses");
    assert!(playlist.end_list);
    assert_eq!(playlist.segments.len() as u64, counts[0]);
}

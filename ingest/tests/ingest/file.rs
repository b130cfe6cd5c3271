//! The pipeline over an FLV file (what `sealcast ladder` and the benchmark run): a real
//! ffmpeg-made FLV in, a ladder on disk out, checked with ffprobe.

use std::path::Path;
use std::sync::Arc;

use domain::Ladder;
use testkit::ffmpeg::{self, TestPattern};

/// Whether the first video frame of `path` is a keyframe, and its PTS (as ffprobe prints
/// it, so equal times compare equal).
fn ffprobe_first_video_frame(path: &Path) -> (bool, String) {
    let probe = ffmpeg::ffprobe(
        path,
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,pts_time",
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let first = &probe["frames"][0];
    (
        first["key_frame"] == 1,
        first["pts_time"].as_str().expect("a frame").to_owned(),
    )
}

#[test]
fn a_file_becomes_an_aligned_ladder_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join("in.flv");
    TestPattern::new(854, 480, 30, 7)
        .fast()
        .write_flv(&flv)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    // MPEG-TS, as before CMAF became the default (tests/cmaf.rs covers CMAF).
    let ladder = Ladder {
        format: domain::SegmentFormat::Ts,
        ..Ladder::default()
    };
    let report = ingest::file::transcode_file(&flv, &out, Arc::new(ladder), 0).expect("transcodes");

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

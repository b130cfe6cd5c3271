//! The segmenter's tests: segments as before, and parts (property tests).

use super::*;
use proptest::prelude::*;

fn video(pts: i64, key: bool) -> VideoPacket {
    VideoPacket {
        pts_ms: pts,
        dts_ms: pts,
        keyframe: key,
        data: Bytes::new(),
    }
}

fn segments(closed: Vec<Closed>) -> Vec<ClosedSegment> {
    closed
        .into_iter()
        .filter_map(|c| match c {
            Closed::Segment(s) => Some(s),
            Closed::Part(_) => None,
        })
        .collect()
}

fn audio(pts: i64) -> AudioFrame {
    AudioFrame {
        pts_ms: pts,
        data: Bytes::new(),
    }
}

/// Feeds a 30 fps video with a keyframe every `gop` frames and 21.33 ms audio frames,
/// the audio arriving `audio_lead_ms` ahead of the video it goes with.
fn run(frames: i64, gop: i64, audio_lead_ms: i64, with_audio: bool) -> Vec<ClosedSegment> {
    segments(run_parts(frames, gop, audio_lead_ms, with_audio, None))
}

/// Like [`run`], with parts of `part_target_ms`: everything that comes out, in order.
fn run_parts(
    frames: i64,
    gop: i64,
    audio_lead_ms: i64,
    with_audio: bool,
    part_target_ms: Option<i64>,
) -> Vec<Closed> {
    let mut seg = RungSegmenter::with_parts(with_audio, part_target_ms);
    let mut out = Vec::new();
    // (arrival, is_video, pts, frame number)
    let mut events: Vec<(i64, bool, i64, i64)> = Vec::new();
    for f in 0..frames {
        events.push((f * 100 / 3, true, f * 100 / 3, f));
    }
    if with_audio {
        let mut a = 0;
        while a * 64 / 3 < frames * 100 / 3 {
            let pts = a * 64 / 3;
            events.push((pts - audio_lead_ms, false, pts, 0));
            a += 1;
        }
    }
    events.sort_by_key(|e| (e.0, !e.1));
    let mut seq = 0;
    for (_, is_video, pts, frame) in events {
        if is_video {
            let key = frame % gop == 0;
            let cut = key.then(|| {
                seq += 1;
                seq - 1
            });
            out.extend(seg.push_video(video(pts, key), cut));
        } else {
            out.extend(seg.push_audio(audio(pts)));
        }
    }
    out.extend(seg.finish(frames * 100 / 3));
    out
}

#[test]
fn cuts_at_every_planned_boundary() {
    let segs = run(180, 60, 0, true);
    assert_eq!(segs.len(), 3);
    assert_eq!(
        segs.iter().map(|s| s.sequence).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(segs[0].start_pts_ms, 0);
    assert_eq!(segs[0].end_pts_ms, 2000);
    assert!(segs.iter().all(|s| s.video.len() == 60));
}

#[test]
fn audio_split_does_not_depend_on_when_audio_arrives() {
    let a = run(300, 60, 0, true);
    let b = run(300, 60, 700, true);
    let c = run(300, 60, -200, true);
    let split = |segs: &[ClosedSegment]| {
        segs.iter()
            .map(|s| s.audio.iter().map(|f| f.pts_ms).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(split(&a), split(&b));
    assert_eq!(split(&a), split(&c));
}

#[test]
fn video_only_streams_close_on_the_boundary() {
    let mut seg = RungSegmenter::new(false);
    assert!(seg.push_video(video(0, true), Some(5)).is_empty());
    let closed = segments(seg.push_video(video(2000, true), Some(6)));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].sequence, 5);
}

#[test]
fn video_before_the_first_boundary_is_dropped() {
    let mut seg = RungSegmenter::new(false);
    assert!(seg.push_video(video(0, false), None).is_empty());
    seg.push_video(video(33, true), Some(0));
    seg.push_video(video(300, false), None);
    let closed = segments(seg.finish(333));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].video.len(), 2);
    assert_eq!(closed[0].start_pts_ms, 33);
}

/// A stream that ends a frame after a boundary does not leave a one-frame segment (the
/// e2e recording that never ended in Chromium); one that ends 300 ms after does.
#[test]
fn a_last_segment_of_a_frame_is_left_out() {
    for parts in [None, Some(333)] {
        let mut seg = RungSegmenter::with_parts(true, parts);
        let mut out = Vec::new();
        for f in 0..61 {
            out.extend(seg.push_video(
                video(f * 100 / 3, f % 60 == 0),
                (f % 60 == 0).then_some(f as u64 / 60),
            ));
        }
        out.extend(seg.push_audio(audio(1990)));
        out.extend(seg.finish(2033));
        let segs = segments(out.clone());
        assert_eq!(
            segs.iter().map(|s| s.sequence).collect::<Vec<_>>(),
            [0],
            "{parts:?}"
        );
        assert!(out.iter().all(|c| match c {
            Closed::Part(p) => p.sequence == 0,
            Closed::Segment(s) => s.sequence == 0,
        }));

        let mut seg = RungSegmenter::with_parts(false, parts);
        let mut out = Vec::new();
        for f in 0..70 {
            out.extend(seg.push_video(
                video(f * 100 / 3, f % 60 == 0),
                (f % 60 == 0).then_some(f as u64 / 60),
            ));
        }
        out.extend(seg.finish(2333));
        let segs = segments(out);
        assert_eq!(
            segs.iter().map(|s| s.sequence).collect::<Vec<_>>(),
            [0, 1],
            "{parts:?}"
        );
        assert_eq!(segs[1].video.len(), 10);
    }
}

proptest! {
    #[test]
    fn every_frame_lands_once_in_the_segment_covering_it(
        frames in 1i64..400,
        gop in 1i64..120,
        lead in -500i64..1500,
    ) {
        let segs = run(frames, gop, lead, true);
        let total_video: usize = segs.iter().map(|s| s.video.len()).sum();
        // Every frame, except a last segment shorter than MIN_LAST_SEGMENT_MS.
        let last_key = (frames - 1) / gop * gop;
        let sliver = frames * 100 / 3 - last_key * 100 / 3 < MIN_LAST_SEGMENT_MS;
        prop_assert_eq!(total_video as i64, if sliver { last_key } else { frames });
        let mut last_end = None;
        for (i, s) in segs.iter().enumerate() {
            prop_assert_eq!(s.sequence, i as u64);
            prop_assert!(s.start_pts_ms < s.end_pts_ms);
            if let Some(end) = last_end {
                prop_assert_eq!(s.start_pts_ms, end);
            }
            last_end = Some(s.end_pts_ms);
            prop_assert!(s.video[0].keyframe);
            for a in &s.audio {
                prop_assert!(s.start_pts_ms <= a.pts_ms && a.pts_ms < s.end_pts_ms);
            }
            prop_assert!(s.audio.windows(2).all(|w| w[0].pts_ms < w[1].pts_ms));
        }
        // No audio frame inside the covered range is lost.
        let covered_end = last_end.unwrap_or(0);
        let expected = (0..).map(|a: i64| a * 64 / 3).take_while(|p| *p < covered_end.min(frames * 100 / 3)).count();
        let got: usize = segs.iter().map(|s| s.audio.len()).sum();
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn parts_come_out_before_their_segment_and_as_soon_as_they_close() {
    let mut seg = RungSegmenter::with_parts(false, Some(333));
    assert!(seg.push_video(video(0, true), Some(0)).is_empty());
    let mut out = Vec::new();
    for f in 1..=10 {
        out.extend(seg.push_video(video(f * 100 / 3, false), None));
    }
    // 0, 33, ..., 266 ms in part 0; the frame at 300 ms would take it to 334 ms (one
    // more frame interval), past the 333 ms target, so it opens part 1.
    assert_eq!(out.len(), 1, "{out:?}");
    let Closed::Part(p) = &out[0] else {
        panic!("a part first: {out:?}")
    };
    assert_eq!((p.index, p.start_pts_ms, p.end_pts_ms), (0, 0, 300));
    assert!(p.independent && !p.last);
    assert_eq!(p.video.len(), 9);
    let out = seg.push_video(video(2000, true), Some(1));
    let kinds: Vec<_> = out
        .iter()
        .map(|c| match c {
            Closed::Part(p) => format!("part {}.{} last={}", p.sequence, p.index, p.last),
            Closed::Segment(s) => format!("segment {} of {}", s.sequence, s.parts),
        })
        .collect();
    assert_eq!(kinds, ["part 0.1 last=true", "segment 0 of 2"]);
}

proptest! {
    /// Parts tile their segment: contiguous, numbered from 0, the first independent, every
    /// sample of the segment in exactly one of its parts (in order), durations adding up,
    /// none longer than the target (plus a millisecond of timestamp rounding) except the
    /// stream's last.
    #[test]
    fn parts_tile_every_segment(
        frames in 1i64..300,
        gop in 1i64..120,
        lead in -500i64..1500,
        with_audio in any::<bool>(),
        target in 100i64..1000,
    ) {
        let out = run_parts(frames, gop, lead, with_audio, Some(target));
        let mut parts: Vec<ClosedPart> = Vec::new();
        let mut segs = 0usize;
        let mut last_end: Option<i64> = None;
        let total = out.iter().filter(|c| matches!(c, Closed::Segment(_))).count();
        for c in out {
            match c {
                Closed::Part(p) => {
                    prop_assert_eq!(p.index as usize, parts.len());
                    prop_assert!(p.start_pts_ms < p.end_pts_ms);
                    if let Some(prev) = parts.last() {
                        prop_assert_eq!(p.start_pts_ms, prev.end_pts_ms);
                        prop_assert_eq!(p.sequence, prev.sequence);
                    } else {
                        prop_assert!(p.independent);
                        if let Some(end) = last_end {
                            prop_assert_eq!(p.start_pts_ms, end);
                        }
                    }
                    prop_assert_eq!(p.independent, p.video.first().is_some_and(|v| v.keyframe));
                    for a in &p.audio {
                        prop_assert!(p.start_pts_ms <= a.pts_ms && a.pts_ms < p.end_pts_ms);
                    }
                    parts.push(p);
                }
                Closed::Segment(s) => {
                    segs += 1;
                    prop_assert!(!parts.is_empty());
                    prop_assert_eq!(s.parts as usize, parts.len());
                    prop_assert!(parts.last().is_some_and(|p| p.last));
                    prop_assert!(parts.iter().rev().skip(1).all(|p| !p.last));
                    prop_assert_eq!(parts[0].start_pts_ms, s.start_pts_ms);
                    let video: Vec<VideoPacket> =
                        parts.iter().flat_map(|p| p.video.clone()).collect();
                    let audio: Vec<AudioFrame> =
                        parts.iter().flat_map(|p| p.audio.clone()).collect();
                    prop_assert_eq!(&video, &s.video);
                    prop_assert_eq!(&audio, &s.audio);
                    let sum: i64 = parts.iter().map(|p| p.end_pts_ms - p.start_pts_ms).sum();
                    prop_assert_eq!(sum, s.end_pts_ms - s.start_pts_ms);
                    let stream_end = segs == total;
                    for (i, p) in parts.iter().enumerate() {
                        let at_stream_end = stream_end && i + 1 == parts.len();
                        if !at_stream_end {
                            prop_assert!(
                                p.end_pts_ms - p.start_pts_ms <= target + 1,
                                "part {}.{} lasts {} ms", p.sequence, p.index, p.end_pts_ms - p.start_pts_ms
                            );
                        }
                    }
                    last_end = Some(s.end_pts_ms);
                    parts.clear();
                }
            }
        }
        prop_assert!(parts.is_empty(), "parts without their segment");
        // The same segments as without parts; except that a short last segment is kept
        // once one of its parts went out (without parts, it is left out).
        let plain = run(frames, gop, lead, with_audio);
        let last_key = (frames - 1) / gop * gop;
        let short_last = frames * 100 / 3 - last_key * 100 / 3 < MIN_LAST_SEGMENT_MS;
        prop_assert!(
            plain.len() == segs || (short_last && plain.len() + 1 == segs),
            "{} segments with parts, {} without", segs, plain.len()
        );
    }
}

//! The LL-HLS side of the live state: parts in order, buffered and dropped, reports,
//! CMAF without parts, and MPEG-TS unchanged.

use std::time::Duration;

use bytes::Bytes;
use domain::segment::{InitSegment, PartMeta};
use domain::{SegmentMeta, SessionId};
use proptest::prelude::*;

use super::*;

fn stream() -> StreamName {
    StreamName::new("demo").expect("valid")
}

fn rendition(r: &str) -> RenditionName {
    RenditionName::new(r).expect("valid")
}

fn info(r: &str, init: bool, part_target_us: Option<u64>) -> RenditionInfo {
    RenditionInfo {
        name: rendition(r),
        width: 1280,
        height: 720,
        frame_rate: 30.0,
        codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
        init: init.then(|| InitSegment::new(Bytes::from_static(b"ftypmoov")).expect("small")),
        part_target_us,
    }
}

fn segment(r: &str, sequence: u64) -> LiveEvent {
    LiveEvent::Segment(Segment {
        meta: SegmentMeta {
            stream: stream(),
            rendition: rendition(r),
            session: SessionId(1),
            sequence,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_millis(1002),
            start_pts_90k: 0,
        },
        bytes: Bytes::from(vec![sequence as u8; 30]),
    })
}

fn part(r: &str, sequence: u64, index: u32) -> LiveEvent {
    LiveEvent::Part(Part {
        meta: PartMeta {
            stream: stream(),
            rendition: rendition(r),
            session: SessionId(1),
            sequence,
            index,
            discontinuity_sequence: 0,
            independent: index == 0,
            duration: Duration::from_millis(334),
            program_date_time_ms: 1_800_000_000_000,
        },
        bytes: Bytes::from(vec![index as u8; 10]),
    })
}

/// A live stream with `renditions` announced as (name, CMAF?, part target).
fn live(renditions: &[(&str, bool, Option<u64>)]) -> StreamState {
    let mut s = StreamState::new(
        stream(),
        NodeConfig {
            window: 4,
            segment_target: Duration::from_secs(1),
        },
    );
    s.apply(LiveEvent::SessionStarted {
        stream: stream(),
        session: SessionId(1),
        private: false,
        record: true,
    })
    .expect("start");
    for (r, init, part_target) in renditions {
        s.apply(LiveEvent::Rendition {
            stream: stream(),
            info: info(r, *init, *part_target),
        })
        .expect("announce");
    }
    s
}

fn playlist(s: &StreamState, r: &str) -> String {
    let view = s.view();
    let r = view.renditions.get(&rendition(r)).expect("rendition");
    String::from_utf8(r.playlist.body.to_vec()).expect("utf-8")
}

const LL: Option<u64> = Some(334_000);

#[test]
fn parts_are_listed_with_a_preload_hint_and_reports_of_the_others() {
    let mut s = live(&[("720p", true, LL), ("480p", true, LL)]);
    for r in ["720p", "480p"] {
        s.apply(segment(r, 0)).expect("segment");
    }
    s.apply(part("720p", 1, 0)).expect("part");
    s.apply(part("720p", 1, 1)).expect("part");
    let text = playlist(&s, "720p");
    for needle in [
        "#EXT-X-MAP:URI=\"init.mp4\"",
        "#EXT-X-PART-INF:PART-TARGET=0.33400",
        "#EXT-X-PART:DURATION=0.33400,URI=\"1.0.m4s\",INDEPENDENT=YES",
        "#EXT-X-PART:DURATION=0.33400,URI=\"1.1.m4s\"",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.2.m4s\"",
        "#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=0",
        "0.m4s",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    // The other rendition's report moved with the part.
    let other = playlist(&s, "480p");
    assert!(
        other.contains("#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=1,LAST-PART=1"),
        "{other}"
    );
    let view = s.view();
    let r = view.renditions.get(&rendition("720p")).expect("rendition");
    assert_eq!(&r.part(1, 1).expect("held").body[..], &[1u8; 10][..]);
    assert_eq!(&r.init.as_ref().expect("init").body[..], b"ftypmoov");
    assert!(r.delta.is_some());
    assert!(r.ll.is_some());
    assert_eq!(r.format, SegmentFormat::Cmaf);
}

#[test]
fn parts_wait_for_their_turn_and_late_ones_are_dropped() {
    let mut s = live(&[("720p", true, LL)]);
    s.apply(segment("720p", 0)).expect("segment");
    // Index 1 before 0, and the next segment's part before this one finished.
    s.apply(part("720p", 1, 1)).expect("part");
    s.apply(part("720p", 2, 0)).expect("part");
    assert!(!playlist(&s, "720p").contains("1.1.m4s"));
    s.apply(part("720p", 1, 0)).expect("part");
    let text = playlist(&s, "720p");
    assert!(
        text.contains("1.0.m4s") && text.contains("1.1.m4s"),
        "{text}"
    );
    assert!(!text.contains("2.0.m4s"), "{text}");
    s.apply(segment("720p", 1)).expect("segment");
    let text = playlist(&s, "720p");
    assert!(text.contains("URI=\"2.0.m4s\""), "{text}");
    assert!(
        text.contains("PRELOAD-HINT:TYPE=PART,URI=\"2.1.m4s\""),
        "{text}"
    );
    // A part of a finished segment is dropped quietly.
    s.apply(part("720p", 1, 2)).expect("dropped, not refused");
    assert!(!playlist(&s, "720p").contains("1.2.m4s"));
    // A gap finishes the open segment.
    s.gap(&rendition("720p"), 2, Duration::from_secs(1), None)
        .expect("gap");
    let text = playlist(&s, "720p");
    assert!(text.contains("#EXT-X-GAP\n2.m4s"), "{text}");
    // The end: ENDLIST, no hint.
    s.apply(LiveEvent::Ended {
        stream: stream(),
        session: SessionId(1),
    })
    .expect("end");
    let text = playlist(&s, "720p");
    assert!(
        text.ends_with("#EXT-X-ENDLIST\n") && !text.contains("PRELOAD-HINT"),
        "{text}"
    );
}

#[test]
fn cmaf_without_a_part_target_and_ts_keep_plain_playlists() {
    let mut s = live(&[("720p", true, None), ("ts", false, LL)]);
    s.apply(segment("720p", 0)).expect("segment");
    s.apply(segment("ts", 0)).expect("segment");
    assert!(s.apply(part("720p", 1, 0)).is_err(), "no LL on this one");
    let cmaf = playlist(&s, "720p");
    assert!(cmaf.contains("#EXT-X-MAP:URI=\"init.mp4\"\n") && cmaf.contains("\n0.m4s\n"));
    assert!(!cmaf.contains("PART"), "{cmaf}");
    let ts = playlist(&s, "ts");
    assert!(
        ts.contains("0.ts") && !ts.contains("MAP") && !ts.contains("PART"),
        "{ts}"
    );
    let view = s.view();
    assert_eq!(view.renditions[&rendition("ts")].format, SegmentFormat::Ts);
    assert!(view.renditions[&rendition("ts")].init.is_none());
}

#[derive(Debug, Clone)]
enum Step {
    Part(u64, u32),
    Segment(u64),
}

proptest! {
    /// Whatever order parts and segments come in: every segment lists a prefix of its
    /// parts in index order, the playlist parses, and only listed parts' bytes are kept
    /// beyond the segments that list them.
    #[test]
    fn listed_parts_are_always_in_order_and_the_playlist_parses(
        steps in prop::collection::vec(
            prop_oneof![
                (0u64..8, 0u32..4).prop_map(|(s, i)| Step::Part(s, i)),
                (0u64..8).prop_map(Step::Segment),
            ],
            1..60,
        ),
    ) {
        let mut s = live(&[("720p", true, LL)]);
        for step in steps {
            let _ = match step {
                Step::Part(seq, i) => s.apply(part("720p", seq, i)),
                Step::Segment(seq) => s.apply(segment("720p", seq)),
            };
            let view = s.view();
            let Some(r) = view.renditions.get(&rendition("720p")) else { continue };
            let text = String::from_utf8(r.playlist.body.to_vec()).expect("utf-8");
            prop_assert!(m3u8_rs::parse_media_playlist_res(text.as_bytes()).is_ok(), "{}", text);
            let mut last: Option<(u64, u32)> = None;
            for line in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
                let uri = line.split("URI=\"").nth(1).and_then(|u| u.split('"').next()).expect("uri");
                let mut it = uri.trim_end_matches(".m4s").split('.');
                let seq: u64 = it.next().and_then(|n| n.parse().ok()).expect("seq");
                let idx: u32 = it.next().and_then(|n| n.parse().ok()).expect("idx");
                match last {
                    Some((ls, li)) if ls == seq => prop_assert_eq!(idx, li + 1),
                    _ => prop_assert_eq!(idx, 0),
                }
                prop_assert!(r.part(seq, idx).is_some(), "{} listed but not held", uri);
                last = Some((seq, idx));
            }
        }
    }
}

/// Segment `sequence` of `r` with these bytes.
fn segment_with(r: &str, sequence: u64, bytes: Vec<u8>) -> LiveEvent {
    let LiveEvent::Segment(mut s) = segment(r, sequence) else {
        unreachable!("segment() makes a segment")
    };
    s.bytes = Bytes::from(bytes);
    LiveEvent::Segment(s)
}

/// Whether `inner` lies inside `outer`'s buffer.
fn within(inner: &Bytes, outer: &Bytes) -> bool {
    let (start, end) = (
        outer.as_ptr() as usize,
        outer.as_ptr() as usize + outer.len(),
    );
    let p = inner.as_ptr() as usize;
    p >= start && p + inner.len() <= end
}

#[test]
fn parts_of_a_published_segment_share_its_bytes_when_they_are_its_bytes() {
    let mut s = live(&[("720p", true, LL)]);
    s.apply(segment("720p", 0)).expect("segment");
    for i in 0..3 {
        s.apply(part("720p", 1, i)).expect("part");
    }
    // Segment 1 is its three parts joined (each part is ten bytes of its index).
    let joined: Vec<u8> = (0..3u8).flat_map(|i| [i; 10]).collect();
    s.apply(segment_with("720p", 1, joined)).expect("segment");
    for i in 0..3 {
        s.apply(part("720p", 2, i)).expect("part");
    }
    // Segment 2 is not: its parts keep their own bytes, and still answer.
    s.apply(segment_with("720p", 2, vec![9u8; 30]))
        .expect("segment");
    let view = s.view();
    let r = view.renditions.get(&rendition("720p")).expect("rendition");
    let whole = &r.segment(1).expect("segment 1 held").body;
    for i in 0..3u32 {
        let part = &r.part(1, i).expect("part held").body;
        assert_eq!(&part[..], &[i as u8; 10][..]);
        assert!(within(part, whole), "part 1.{i} is a copy");
    }
    let other = &r.segment(2).expect("segment 2 held").body;
    for i in 0..3u32 {
        let part = &r.part(2, i).expect("part held").body;
        assert_eq!(&part[..], &[i as u8; 10][..]);
        assert!(
            !within(part, other),
            "part 2.{i} shares bytes it does not have"
        );
    }
}

#[test]
fn a_last_part_that_comes_after_its_segment_is_listed_when_it_continues_it() {
    let mut s = live(&[("720p", true, LL)]);
    s.apply(segment("720p", 0)).expect("segment");
    s.apply(part("720p", 1, 0)).expect("part");
    s.apply(part("720p", 1, 1)).expect("part");
    // Segment 1 is its three parts joined; its third part comes after it.
    let joined: Vec<u8> = (0..3u8).flat_map(|i| [i; 10]).collect();
    s.apply(segment_with("720p", 1, joined)).expect("segment");
    assert!(!playlist(&s, "720p").contains("1.2.m4s"));
    s.apply(part("720p", 1, 2)).expect("late part");
    let text = playlist(&s, "720p");
    assert!(
        text.contains("URI=\"1.1.m4s\"\n#EXT-X-PART:DURATION=0.33400,URI=\"1.2.m4s\"\n#EXTINF"),
        "{text}"
    );
    let view = s.view();
    let r = view.renditions.get(&rendition("720p")).expect("rendition");
    let whole = &r.segment(1).expect("held").body;
    for i in 0..3u32 {
        assert!(within(&r.part(1, i).expect("held").body, whole), "1.{i}");
    }
    // A part past the segment's bytes, or of an older segment, is dropped.
    s.apply(part("720p", 1, 3)).expect("dropped, not refused");
    s.apply(part("720p", 2, 0)).expect("part");
    s.apply(segment_with("720p", 2, vec![0u8; 10]))
        .expect("segment");
    s.apply(part("720p", 1, 3)).expect("dropped, not refused");
    let text = playlist(&s, "720p");
    assert!(!text.contains("1.3.m4s"), "{text}");
}

#[test]
fn late_parts_waiting_for_their_turn_join_the_segment_that_finishes() {
    let mut s = live(&[("720p", true, LL)]);
    s.apply(segment("720p", 0)).expect("segment");
    s.apply(part("720p", 1, 0)).expect("part");
    // Part 2 came before part 1, and the segment before both got their turn.
    s.apply(part("720p", 1, 2)).expect("part");
    let joined: Vec<u8> = (0..3u8).flat_map(|i| [i; 10]).collect();
    s.apply(segment_with("720p", 1, joined)).expect("segment");
    assert!(!playlist(&s, "720p").contains("1.1.m4s"));
    s.apply(part("720p", 1, 1)).expect("late part");
    // Part 2 waited for part 1 and follows it.
    let text = playlist(&s, "720p");
    assert!(text.contains("URI=\"1.2.m4s\"\n#EXTINF"), "{text}");
}

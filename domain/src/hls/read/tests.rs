//! The reader against the writer: what `hls` renders reads back to the values it was
//! rendered from (render→parse round trips over arbitrary windows), and the refusals.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::hls::{render_master, Entry, LlWindow, MediaWindow, PartEntry, Variant};
use crate::segment::RenditionInfo;
use crate::RenditionName;

const T0: i64 = 1_700_000_000_000;

fn media(text: &str) -> Result<ReadMedia, DomainError> {
    read_media(text.as_bytes())
}

/// The reason of a refusal, or a panic if it was not one.
fn reason(result: Result<impl std::fmt::Debug, DomainError>) -> &'static str {
    match result {
        Err(DomainError::InvalidPlaylist { reason, .. }) => reason,
        other => panic!("not refused: {other:?}"),
    }
}

/// What the node renders (`LlWindow`): three complete segments with parts on the last
/// two, an open one with two parts, the hint, a report.
const NODE: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.999\n\
#EXT-X-PART-INF:PART-TARGET=0.33300\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2.00000,\n100.m4s\n\
#EXT-X-PART:DURATION=1.00000,URI=\"101.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"101.1.m4s\"\n\
#EXTINF:2.00000,\n101.m4s\n\
#EXT-X-PART:DURATION=1.00000,URI=\"102.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"102.1.m4s\",GAP=YES\n\
#EXTINF:2.00000,\n#EXT-X-GAP\n102.m4s\n\
#EXT-X-PART:DURATION=0.50000,URI=\"103.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.50000,URI=\"103.1.m4s\"\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"103.2.m4s\"\n\
#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=103,LAST-PART=1\n";

#[test]
fn reads_what_the_node_writes() {
    let p = media(NODE).expect("parses");
    assert_eq!(p.target_duration, Some(Duration::from_secs(2)));
    assert!(p.can_block_reload && p.independent_segments && !p.ended && !p.vod);
    assert_eq!(p.can_skip_until, Some(Duration::from_secs(12)));
    assert_eq!(p.part_hold_back, Some(Duration::from_millis(999)));
    assert_eq!(p.part_target, Some(Duration::from_millis(333)));
    assert_eq!(p.map.as_deref(), Some("init.mp4"));
    assert_eq!(p.media_sequence, 100);
    let seqs: Vec<(u64, bool, usize)> = p
        .segments
        .iter()
        .map(|s| (s.sequence, s.complete(), s.parts.len()))
        .collect();
    assert_eq!(
        seqs,
        [
            (100, true, 0),
            (101, true, 2),
            (102, true, 2),
            (103, false, 2)
        ]
    );
    assert!(p.segments[2].gap && p.segments[2].parts[1].gap);
    assert!(p.is_gap(102) && !p.is_gap(101));
    assert!(p.segments[1].parts[0].independent && !p.segments[1].parts[1].independent);
    let dates: Vec<((u64, u32), Option<i64>)> = p
        .parts()
        .map(|(at, part)| (at, part.program_date_time_ms))
        .collect();
    assert_eq!(
        dates,
        [
            ((101, 0), Some(T0 + 2000)),
            ((101, 1), Some(T0 + 3000)),
            ((102, 0), Some(T0 + 4000)),
            ((102, 1), Some(T0 + 5000)),
            ((103, 0), Some(T0 + 6000)),
            ((103, 1), Some(T0 + 6500)),
        ]
    );
    assert_eq!(p.last_part(), Some((103, 1)));
    assert_eq!(p.preload_hint.as_deref(), Some("103.2.m4s"));
    assert_eq!(p.hint_position(), Some((103, 2)));
    assert_eq!(
        p.reports,
        [RenditionReport {
            uri: "../720p/index.m3u8".into(),
            last_msn: 103,
            last_part: Some(1)
        }]
    );
}

/// hls.js's numbering: the discontinuity before a segment's first part counts for it, the
/// map in force goes with each segment, the open segment has no URI.
#[test]
fn numbers_discontinuities_and_maps_as_hls_js_does() {
    let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXTINF:2.00000,\n10.m4s\n\
        #EXT-X-GAP\n#EXTINF:2.00000,\n11.m4s\n\
        #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n\
        #EXT-X-PART:DURATION=0.33333,URI=\"12.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.33333,URI=\"12.1.m4s\"\n\
        #EXTINF:0.66666,\n12.m4s\n\
        #EXT-X-PART:DURATION=0.33333,URI=\"13.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.1.m4s\"\n";
    let p = media(text).expect("parses");
    let seqs: Vec<(u64, u64, bool, Option<&str>)> = p
        .segments
        .iter()
        .map(|e| {
            (
                e.sequence,
                e.discontinuity_sequence,
                e.gap,
                e.map.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        [
            (10, 3, false, Some("init.mp4")),
            (11, 3, true, Some("init.mp4")),
            (12, 4, false, Some("init-2.mp4")),
            (13, 4, false, Some("init-2.mp4"))
        ]
    );
    assert_eq!(p.map.as_deref(), Some("init.mp4"));
    assert_eq!(p.segments[2].duration, Some(Duration::from_micros(666_660)));
    assert_eq!(p.segments[3].uri, None);
    assert_eq!(p.segments[3].duration, None);
}

#[test]
fn a_delta_update_numbers_from_after_the_skip_and_a_closed_segment_hints_the_next() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20Z\n\
#EXT-X-PART:DURATION=1.0,URI=\"13.0.m4s\"\n#EXTINF:1.0,\n13.m4s\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.m4s\"\n";
    let p = media(text).expect("parses");
    assert_eq!((p.skipped, p.segments[0].sequence), (3, 13));
    assert_eq!(p.hint_position(), Some((14, 0)));
    assert_eq!(p.segments[0].parts[0].program_date_time_ms, Some(T0));
}

#[test]
fn masters_list_their_variants() {
    let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a,b\",RESOLUTION=640x360\n\
        720p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nsrc/index.m3u8\n";
    let variants = read_master(text.as_bytes()).expect("parses");
    let uris: Vec<&str> = variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["720p/index.m3u8", "src/index.m3u8"]);
    assert_eq!(variants[0].codecs.as_deref(), Some("a,b"));
    assert_eq!(variants[0].resolution, Some((640, 360)));
    assert_eq!(variants[1].bandwidth, Some(2));
    for refused in [
        "#EXTM3U\n",
        "<html>",
        "#EXTM3U\n#EXTINF:2,\n1.ts\n",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\na.m3u8\n",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\na.m3u8\n",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=640\na.m3u8\n",
    ] {
        assert!(read_master(refused.as_bytes()).is_err(), "{refused:?}");
    }
    let mut many = String::from("#EXTM3U\n");
    for i in 0..=MAX_VARIANTS {
        many.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH=1\n{i}/index.m3u8\n"));
    }
    assert_eq!(reason(read_master(many.as_bytes())), "too many variants");
}

#[test]
fn date_times_with_offsets_and_fractions() {
    assert_eq!(date_time_ms("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(date_time_ms("2023-11-14T22:13:20.000Z"), Ok(T0));
    assert_eq!(date_time_ms("2023-11-14T22:13:20.5Z"), Ok(T0 + 500));
    assert_eq!(date_time_ms("2023-11-14T22:13:20.123456Z"), Ok(T0 + 123));
    assert_eq!(date_time_ms("2023-11-14T23:13:20+01:00"), Ok(T0));
    assert_eq!(date_time_ms("2023-11-14T21:13:20-0100"), Ok(T0));
    assert_eq!(date_time_ms("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
    for bad in [
        "",
        "2023-11-14",
        "2023-13-14T22:13:20Z",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20.Z",
        "2023-11-14 22:13:20Z",
        "２０２３-11-14T22:13:20Z",
    ] {
        assert!(date_time_ms(bad).is_err(), "{bad}");
    }
}

#[test]
fn durations_are_read_exactly() {
    assert_eq!(seconds("2"), Ok(Duration::from_secs(2)));
    assert_eq!(seconds("2.002"), Ok(Duration::from_millis(2002)));
    assert_eq!(seconds("0.33300"), Ok(Duration::from_millis(333)));
    assert_eq!(seconds(".5"), Ok(Duration::from_millis(500)));
    assert_eq!(seconds("1.0000000019"), Ok(Duration::new(1, 1)));
    assert_eq!(seconds("86400"), Ok(Duration::from_secs(86_400)));
    for bad in [
        "",
        ".",
        "-1",
        "1e3",
        "nan",
        "inf",
        "86400.001",
        "1.2.3",
        "+1",
    ] {
        assert!(seconds(bad).is_err(), "{bad}");
    }
    assert_eq!(integer("18446744073709551615"), Ok(u64::MAX));
    for bad in ["", "-2", "+2", "18446744073709551616", "1.0", "0x10"] {
        assert!(integer(bad).is_err(), "{bad}");
    }
}

#[test]
fn attributes_with_quotes_and_commas() {
    let list = "DURATION=0.33,URI=\"a,b.m4s\",GAP=YES";
    assert_eq!(
        attributes(list),
        Ok(vec![
            ("DURATION", "0.33"),
            ("URI", "a,b.m4s"),
            ("GAP", "YES")
        ])
    );
    assert!(attributes("URI=\"a\"x").is_err());
    assert!(attributes("URI").is_err());
    assert!(attributes(&"A=1,".repeat(MAX_ATTRIBUTES + 1)).is_err());
}

#[test]
fn refuses_what_it_cannot_trust() {
    let refused = [
        ("", "no #EXTM3U"),
        ("#EXT-X-TARGETDURATION:2\n", "no #EXTM3U"),
        ("#EXTM3U\n1.ts\n", "a URI without EXTINF"),
        (
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n",
            "not a decimal integer",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:-2\n",
            "not a decimal integer",
        ),
        ("#EXTM3U\n#EXTINF:2,\n", "EXTINF without a URI"),
        (
            "#EXTM3U\n#EXT-X-PART:URI=\"1.0.m4s\"\n",
            "EXT-X-PART without DURATION or URI",
        ),
        (
            "#EXTM3U\n#EXT-X-PART:DURATION=1,URI=\"a\n",
            "an unterminated quoted attribute",
        ),
        (
            "#EXTM3U\n#EXT-X-PART:DURATION=nan,URI=\"a\"\n",
            "not a duration in seconds",
        ),
        (
            "#EXTM3U\n#EXTINF:2,\n1.m4s\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n",
            "EXT-X-SKIP after a segment",
        ),
        (
            "#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n",
            "EXT-X-SKIP after a segment",
        ),
        (
            "#EXTM3U\n#EXTINF:2,\n1.ts\n#EXT-X-MEDIA-SEQUENCE:5\n",
            "a sequence number after the first segment",
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na/index.m3u8\n",
            "a master playlist",
        ),
        (
            "#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n",
            "EXT-X-MAP without URI",
        ),
        (
            "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n",
            "not an ISO 8601 date-time",
        ),
        (
            "#EXTM3U\n#EXT-X-RENDITION-REPORT:URI=\"a\",LAST-PART=4294967296\n",
            "LAST-PART out of range",
        ),
        (
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:1,\na\n#EXTINF:1,\nb\n",
            "media sequence out of range",
        ),
    ];
    for (text, why) in refused {
        assert_eq!(reason(media(text)), why, "{text:?}");
    }
    // The line is named.
    assert_eq!(
        media("#EXTM3U\n\n#EXT-X-TARGETDURATION:2\n#EXTINF:x,\n1.ts\n"),
        Err(DomainError::InvalidPlaylist {
            line: 4,
            reason: "not a duration in seconds"
        })
    );
    // Lenient where players are: unknown tags, comments, CRLF, no target duration.
    let p = media(
        "#EXTM3U\r\n# a comment\r\n#EXT-X-NEW-TAG:X=1\r\n#EXTINF:2,\r\n1.ts\r\n#EXT-X-ENDLIST\r\n",
    )
    .expect("parses");
    assert!(p.ended && p.target_duration.is_none());
    assert_eq!(p.segments[0].duration, Some(Duration::from_secs(2)));
}

#[test]
fn every_cap_is_a_refusal() {
    let head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n";
    let mut many = String::from(head);
    for i in 0..=MAX_SEGMENTS {
        many.push_str(&format!("#EXTINF:2,\n{i}.m4s\n"));
    }
    assert_eq!(reason(media(&many)), "too many segments");
    let mut parts = String::from(head);
    for i in 0..=MAX_PARTS {
        parts.push_str(&format!("#EXT-X-PART:DURATION=1,URI=\"{i}\"\n"));
    }
    assert_eq!(reason(media(&parts)), "too many parts");
    let mut reports = String::from(head);
    for _ in 0..=MAX_REPORTS {
        reports.push_str("#EXT-X-RENDITION-REPORT:URI=\"a\",LAST-MSN=1\n");
    }
    assert_eq!(reason(media(&reports)), "too many rendition reports");
    let long_uri = format!("{head}#EXTINF:2,\n{}\n", "a".repeat(MAX_URI + 1));
    assert_eq!(reason(media(&long_uri)), "a URI that is empty or too long");
    let long_line = format!("{head}#EXT-X-X:{}\n", "a".repeat(MAX_LINE));
    assert_eq!(reason(media(&long_line)), "a line longer than 4096 bytes");
    let mut huge = head.as_bytes().to_vec();
    huge.resize(MAX_PLAYLIST + 1, b'\n');
    assert_eq!(reason(read_media(&huge)), "larger than 1 MiB");
    assert_eq!(reason(read_master(&huge)), "larger than 1 MiB");
    assert_eq!(reason(read_media(b"#EXTM3U\n\xff\n")), "not UTF-8");
}

/// A media window's entries from `first` on, `(duration ms, discontinuity, gap)` each,
/// with consistent discontinuity sequences from `base`.
/// A window of `specs`' entries: `EXTINF` ms, how far the discontinuity sequence moves
/// on (by more than one: sessions that ended before their first segment), gap.
fn media_window(first: u64, base: u64, cap: usize, specs: &[(u64, u64, bool)]) -> MediaWindow {
    let mut w = MediaWindow::new(cap, Duration::from_secs(2));
    let mut disc_seq = base;
    for (i, &(ms, jump, gap)) in specs.iter().enumerate() {
        disc_seq += jump;
        let discontinuity = jump > 0;
        w.push(Entry {
            sequence: first + i as u64,
            duration: Duration::from_millis(ms),
            discontinuity_sequence: disc_seq,
            discontinuity,
            gap,
        })
        .expect("in order");
    }
    w
}

/// What the reader should make of `w`'s entries, `.{ext}` URIs, `map` in force.
fn expected_segments(w: &MediaWindow, ext: &str, map: Option<&str>) -> Vec<ReadSegment> {
    w.entries()
        .map(|e| ReadSegment {
            sequence: e.sequence,
            discontinuity_sequence: e.discontinuity_sequence,
            discontinuity: e.discontinuity,
            duration: Some(e.duration),
            uri: Some(format!("{}.{ext}", e.sequence)),
            gap: e.gap,
            map: map.map(str::to_owned),
            program_date_time_ms: None,
            parts: Vec::new(),
        })
        .collect()
}

/// One segment of an LL window: its parts `(ms, independent, gap)` (none: published
/// whole), `EXTINF` ms, gap, how far its discontinuity sequence is past the one before
/// (more than one: sessions that ended before their first segment), and a date if it
/// starts one.
type LlSpec = (Vec<(u64, bool, bool)>, u64, bool, u64, Option<i64>);

fn ll_spec() -> impl Strategy<Value = LlSpec> {
    (
        prop::collection::vec((1u64..1500, any::<bool>(), prop::bool::weighted(0.1)), 0..7),
        500u64..6000,
        prop::bool::weighted(0.1),
        prop::sample::select(vec![0u64, 0, 0, 0, 0, 0, 0, 1, 1, 2, 5]),
        prop::option::of(0i64..4_000_000_000_000),
    )
}

fn part_entry(&(ms, independent, gap): &(u64, bool, bool)) -> PartEntry {
    PartEntry {
        duration: Duration::from_millis(ms),
        independent,
        gap,
    }
}

/// What the reader should make of a window's segment, listed after `disc_seq`.
fn expected_ll(s: &crate::hls::LlSegment, disc_seq: u64, complete: bool) -> ReadSegment {
    let mut at = s.program_date_time_ms;
    ReadSegment {
        sequence: s.sequence,
        discontinuity_sequence: disc_seq,
        discontinuity: s.discontinuity,
        duration: complete.then_some(s.duration),
        uri: complete.then(|| format!("{}.m4s", s.sequence)),
        gap: s.gap,
        map: Some("init.mp4".into()),
        program_date_time_ms: s.program_date_time_ms,
        parts: s
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let date = at;
                at = at.map(|ms| ms + millis(p.duration));
                ReadPart {
                    duration: p.duration,
                    uri: format!("{}.{i}.m4s", s.sequence),
                    independent: p.independent,
                    gap: p.gap,
                    program_date_time_ms: date,
                }
            })
            .collect(),
    }
}

fn codecs() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "avc1.64001f,mp4a.40.2",
        "avc1.42e01e",
        "hvc1.1.6.L93.B0,mp4a.40.2",
    ])
}

proptest! {
    /// Whatever bytes come, the reader answers (no panic), and what it accepts keeps
    /// its caps and its numbering.
    #[test]
    fn any_input_is_answered_within_bounds(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(p) = read_media(&body) {
            prop_assert!(p.segments.len() <= MAX_SEGMENTS);
            prop_assert!(p.reports.len() <= MAX_REPORTS);
        }
        if let Ok(v) = read_master(&body) {
            prop_assert!(!v.is_empty() && v.len() <= MAX_VARIANTS);
        }
    }

    /// Text that looks like a playlist, shuffled from the writer's own lines.
    #[test]
    fn playlist_like_lines_are_answered(lines in prop::collection::vec(prop::sample::select(
        NODE.lines().chain(["#EXT-X-SKIP:SKIPPED-SEGMENTS=2", "#EXT-X-DISCONTINUITY",
            "#EXT-X-ENDLIST", "#EXT-X-STREAM-INF:BANDWIDTH=5", "x.m3u8"]).collect::<Vec<_>>()), 0..60)) {
        let text = format!("#EXTM3U\n{}", lines.join("\n"));
        if let Ok(p) = media(&text) {
            for (i, s) in p.segments.iter().enumerate() {
                prop_assert_eq!(s.sequence, p.media_sequence + p.skipped + i as u64);
                prop_assert!(s.complete() || i + 1 == p.segments.len());
            }
        }
        let _ = read_master(text.as_bytes());
    }

    /// A plain media window, MPEG-TS or CMAF, live or recorded, reads back to its entries.
    #[test]
    fn media_windows_read_back(
        first in 0u64..1_000_000_000,
        base in 0u64..1000,
        cap in 1usize..12,
        specs in prop::collection::vec(
            (1u64..6000, prop::sample::select(vec![0u64, 0, 0, 0, 0, 0, 0, 1, 1, 2, 5]),
             prop::bool::weighted(0.1)), 0..30),
        ended in any::<bool>(),
    ) {
        let mut w = media_window(first, base, cap, &specs);
        if ended {
            w.end();
        }
        let target = Some(Duration::from_secs(w.target_duration()));
        let head = |p: &ReadMedia| (p.target_duration, p.media_sequence, p.independent_segments);
        let first_listed = w.entries().next().map_or(0, |e| e.sequence);
        for (text, ext, map, vod) in [
            (w.render(), "ts", None, false),
            (w.render_cmaf(), "m4s", Some("init.mp4"), false),
            (w.render_vod(), "ts", None, true),
            (w.render_cmaf_vod(), "m4s", Some("init.mp4"), true),
        ] {
            let p = media(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(head(&p), (target, first_listed, true));
            let mut want = expected_segments(&w, ext, map);
            if ext == "ts" {
                // m3u8-rs writes EXTINF from an f32: exact to a microsecond, not to the digit.
                for (got, want) in p.segments.iter().zip(&mut want) {
                    let close = got.duration.zip(want.duration).is_some_and(|(a, b)| {
                        a.abs_diff(b) <= Duration::from_micros(1)
                    });
                    prop_assert!(close, "{:?} for {:?}", got.duration, want.duration);
                    want.duration = got.duration;
                }
            }
            prop_assert_eq!(&p.segments, &want);
            prop_assert_eq!((p.ended, p.vod), (ended || vod, vod));
            prop_assert_eq!(p.map.as_deref(), map);
        }
    }

    /// A low-latency window (parts, gaps, discontinuities, dates, the open segment, the
    /// hint, reports, a delta update or not, ended or not) reads back to what it lists.
    #[test]
    fn ll_windows_read_back(
        first in 0u64..1_000_000_000,
        base in 0u64..1000,
        cap in 1usize..10,
        specs in prop::collection::vec(ll_spec(), 0..14),
        open in prop::option::of(ll_spec()),
        part_target_ms in 100u64..2000,
        skip in any::<bool>(),
        ended in any::<bool>(),
        reports in prop::collection::vec(
            ("[a-z0-9]{1,8}", any::<u64>(), prop::option::of(any::<u32>())), 0..4),
    ) {
        let part_target = Duration::from_millis(part_target_ms);
        let mut w = LlWindow::new(cap, Duration::from_secs(2), part_target);
        // Dates are consistent: each segment starts where the one before ended, but after
        // a discontinuity (or first), where it says.
        let mut next_date: Option<i64> = None;
        let mut seq = first;
        let mut dseq = base;
        for (i, (parts, ms, gap, jump, date)) in specs.iter().enumerate() {
            let disc = *jump > 0;
            let date = if i == 0 || disc { *date } else { next_date };
            dseq += jump;
            for p in parts {
                w.push_part(seq, part_entry(p), dseq, date).expect("in order");
            }
            w.finish_segment(seq, Duration::from_millis(*ms), *gap, (dseq, disc), date)
                .expect("in order");
            next_date = date.map(|d| d + *ms as i64);
            seq += 1;
        }
        if let Some((parts, _, _, jump, date)) = &open {
            // The open segment's discontinuity follows from the last complete one's.
            let disc = *jump > 0 && !specs.is_empty();
            let date = if specs.is_empty() || disc { *date } else { next_date };
            dseq += jump;
            for p in parts {
                w.push_part(seq, part_entry(p), dseq, date).expect("in order");
            }
        }
        if ended {
            w.end();
        }
        let reports: Vec<RenditionReport> = reports
            .into_iter()
            .map(|(uri, last_msn, last_part)| RenditionReport {
                uri: format!("../{uri}/index.m3u8"),
                last_msn,
                last_part,
            })
            .collect();
        let text = w.render(skip, &reports);
        let p = media(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

        let (disc_seq, target, segments, open) = w.listing();
        // Every listed segment reads back in the discontinuity sequence it was given, as
        // hls.js counts it: what the player checks against the ingest's signature.
        let mut expected = Vec::new();
        for s in &segments {
            expected.push(expected_ll(s, s.discontinuity_sequence, true));
        }
        if let Some(o) = open.as_ref().filter(|o| !o.parts.is_empty()) {
            expected.push(expected_ll(o, o.discontinuity_sequence, false));
        }
        let skipped = usize::try_from(p.skipped).expect("small");
        prop_assert!(skip || skipped == 0);
        prop_assert!(skipped <= segments.len());
        let mut listed: Vec<ReadSegment> = expected.split_off(skipped);
        if skipped > 0 {
            // A delta update does not say which skipped segment had a discontinuity.
            for (got, want) in p.segments.iter().zip(&mut listed) {
                want.discontinuity_sequence = got.discontinuity_sequence;
            }
        }
        prop_assert_eq!(&p.segments, &listed);
        prop_assert_eq!(p.target_duration, Some(Duration::from_secs(target)));
        let first_listed = segments.first().or(open.as_ref()).map_or(0, |s| s.sequence);
        prop_assert_eq!(p.media_sequence, first_listed);
        prop_assert_eq!(p.discontinuity_sequence, disc_seq);
        prop_assert_eq!(p.part_target, Some(part_target));
        prop_assert_eq!(p.part_hold_back, Some(part_target * 3));
        prop_assert_eq!(p.can_skip_until, Some(Duration::from_secs(6 * target)));
        prop_assert!(p.can_block_reload && p.independent_segments && !p.vod);
        prop_assert_eq!(p.ended, ended);
        prop_assert_eq!(&p.reports, &reports);
        let hinted = w.hinted_part();
        prop_assert_eq!(
            p.preload_hint.clone(),
            hinted.map(|(s, i)| format!("{s}.{i}.m4s"))
        );
        if !p.segments.is_empty() {
            prop_assert_eq!(p.hint_position(), hinted);
        }
    }

    /// A master playlist reads back to its variants.
    #[test]
    fn masters_read_back(variants in prop::collection::vec(
        ("[a-z0-9]{1,8}", 1u32..8000, 1u32..8000, 1u64..1_000_000_000, 0u64..1_000_000_000,
         codecs()), 1..8)) {
        let variants: Vec<Variant> = variants
            .into_iter()
            .map(|(name, width, height, peak_bps, average_bps, codecs)| Variant {
                info: RenditionInfo {
                    name: RenditionName::new(name).expect("valid"),
                    width,
                    height,
                    frame_rate: 30.0,
                    codecs: codecs.parse().expect("valid"),
                    init: None,
                    part_target_us: None,
                },
                peak_bps,
                average_bps,
            })
            .collect();
        let text = render_master(&variants);
        let read = read_master(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let expected: Vec<ReadVariant> = variants
            .iter()
            .map(|v| ReadVariant {
                uri: format!("{}/index.m3u8", v.info.name),
                bandwidth: Some(v.peak_bps),
                average_bandwidth: Some(v.average_bps.max(1)),
                codecs: Some(v.info.codecs.to_string()),
                resolution: Some((u64::from(v.info.width), u64::from(v.info.height))),
            })
            .collect();
        prop_assert_eq!(read, expected);
    }
}

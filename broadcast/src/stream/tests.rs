use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use domain::{SegmentMeta, SessionId};
use proptest::prelude::*;

use super::*;

const RENDITIONS: [&str; 3] = ["720p", "480p", "src"];

fn stream() -> StreamName {
    StreamName::new("demo").expect("valid")
}

fn rendition(r: &str) -> RenditionName {
    RenditionName::new(r).expect("valid")
}

fn info(r: &str) -> RenditionInfo {
    RenditionInfo {
        name: rendition(r),
        width: 1280,
        height: 720,
        frame_rate: 30.0,
        codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
        init: None,
        part_target_us: None,
    }
}

fn start(session: u64) -> LiveEvent {
    LiveEvent::SessionStarted {
        stream: stream(),
        session: SessionId(session),
        private: false,
        record: true,
    }
}

fn announce(r: &str) -> LiveEvent {
    LiveEvent::Rendition {
        stream: stream(),
        info: info(r),
    }
}

fn segment(r: &str, session: u64, sequence: u64, len: usize, millis: u64) -> LiveEvent {
    LiveEvent::Segment(Segment {
        meta: SegmentMeta {
            stream: stream(),
            rendition: rendition(r),
            session: SessionId(session),
            sequence,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_millis(millis),
            start_pts_90k: sequence * 180_000,
        },
        bytes: Bytes::from(vec![0x47; len]),
    })
}

fn dropped(r: &str) -> LiveEvent {
    LiveEvent::RenditionDropped {
        stream: stream(),
        rendition: rendition(r),
    }
}

fn ended(session: u64) -> LiveEvent {
    LiveEvent::Ended {
        stream: stream(),
        session: SessionId(session),
    }
}

fn state(window: usize) -> StreamState {
    StreamState::new(
        stream(),
        NodeConfig {
            window,
            segment_target: Duration::from_secs(2),
        },
    )
}

fn master_names(view: &StreamView) -> Vec<String> {
    let Some(master) = &view.master else {
        return Vec::new();
    };
    let parsed = m3u8_rs::parse_master_playlist_res(&master.body).expect("master parses");
    parsed
        .variants
        .iter()
        .map(|v| v.uri.trim_end_matches("/index.m3u8").to_owned())
        .collect()
}

fn media_text(view: &StreamView, r: &str) -> String {
    let doc = &view.renditions[&rendition(r)].playlist;
    String::from_utf8(doc.body.to_vec()).expect("utf-8")
}

/// Everything a reader can observe, to compare before and after a refused event.
fn fingerprint(view: &StreamView) -> String {
    let mut names: Vec<_> = view.renditions.keys().collect();
    names.sort();
    let mut out = format!(
        "{:?}|{:?}",
        view.summary,
        view.master.as_ref().map(|m| &m.etag)
    );
    for n in names {
        let r = &view.renditions[n];
        let seqs: Vec<u64> = r.segments.iter().map(|(s, _)| *s).collect();
        out.push_str(&format!("|{n}:{:?}:{seqs:?}", r.playlist.etag));
    }
    out
}

#[test]
fn keeps_two_segments_after_they_slide_out() {
    let mut s = state(3);
    s.apply(start(1)).expect("start");
    s.apply(announce("720p")).expect("announce");
    for seq in 0..6 {
        s.apply(segment("720p", 1, seq, 100, 2000))
            .expect("segment");
    }
    let view = s.view();
    let r = &view.renditions[&rendition("720p")];
    let held: Vec<u64> = r.segments.iter().map(|(s, _)| *s).collect();
    assert_eq!(held, [1, 2, 3, 4, 5]);
    let text = media_text(&view, "720p");
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3"), "{text}");
    assert!(!text.contains("\n2.ts"), "{text}");
}

#[test]
fn a_replay_is_refused_and_changes_nothing() {
    let mut s = state(3);
    s.apply(start(1)).expect("start");
    s.apply(announce("720p")).expect("announce");
    s.apply(segment("720p", 1, 5, 100, 2000)).expect("segment");
    let before = fingerprint(&s.view());
    for seq in [5, 4] {
        let err = s
            .apply(segment("720p", 1, seq, 999, 2000))
            .expect_err("replay");
        assert!(
            matches!(err, BroadcastError::OutOfOrder { sequence, last: 5, .. } if sequence == seq),
            "{err:?}"
        );
    }
    assert_eq!(fingerprint(&s.view()), before);
}

#[test]
fn segments_need_a_known_rendition_of_the_live_session() {
    let mut s = state(3);
    assert!(matches!(
        s.apply(segment("720p", 1, 0, 1, 2000)),
        Err(BroadcastError::NotLive { .. })
    ));
    s.apply(start(1)).expect("start");
    assert!(matches!(
        s.apply(segment("720p", 1, 0, 1, 2000)),
        Err(BroadcastError::UnknownRendition { .. })
    ));
    s.apply(announce("720p")).expect("announce");
    assert!(matches!(
        s.apply(segment("720p", 2, 0, 1, 2000)),
        Err(BroadcastError::StaleSession { .. })
    ));
    s.apply(segment("720p", 1, 0, 1, 2000)).expect("segment");
}

#[test]
fn master_lists_renditions_in_announcement_order_once_they_have_a_segment() {
    let mut s = state(3);
    s.apply(start(1)).expect("start");
    assert!(s.view().master.is_none());
    for r in RENDITIONS {
        s.apply(announce(r)).expect("announce");
    }
    assert!(s.view().master.is_none(), "no segment yet");
    s.apply(segment("src", 1, 0, 100, 2000)).expect("segment");
    s.apply(segment("720p", 1, 0, 100, 2000)).expect("segment");
    assert_eq!(master_names(&s.view()), ["720p", "src"]);
    s.apply(segment("480p", 1, 0, 100, 2000)).expect("segment");
    assert_eq!(master_names(&s.view()), ["720p", "480p", "src"]);
    // A re-announcement (e.g. measured frame rate) keeps the position.
    s.apply(announce("720p")).expect("announce");
    assert_eq!(master_names(&s.view()), ["720p", "480p", "src"]);
}

#[test]
fn bandwidth_is_measured_from_segments() {
    let mut s = state(3);
    s.apply(start(1)).expect("start");
    s.apply(announce("720p")).expect("announce");
    s.apply(segment("720p", 1, 0, 250_000, 2000))
        .expect("1 Mb/s");
    s.apply(segment("720p", 1, 1, 750_000, 2000))
        .expect("3 Mb/s");
    let view = s.view();
    let text =
        String::from_utf8(view.master.as_ref().expect("master").body.to_vec()).expect("utf-8");
    assert!(text.contains("BANDWIDTH=3000000"), "{text}");
    assert!(text.contains("AVERAGE-BANDWIDTH=2000000"), "{text}");
    let r = &view.summary.renditions[0];
    assert_eq!((r.bandwidth, r.average_bandwidth), (3_000_000, 2_000_000));
}

#[test]
fn a_dropped_rendition_leaves_the_master_and_ends_its_playlist() {
    let mut s = state(3);
    s.apply(start(1)).expect("start");
    for r in ["720p", "480p"] {
        s.apply(announce(r)).expect("announce");
        s.apply(segment(r, 1, 0, 100, 2000)).expect("segment");
    }
    s.apply(dropped("720p")).expect("drop");
    let view = s.view();
    assert_eq!(master_names(&view), ["480p"]);
    assert!(media_text(&view, "720p").contains("#EXT-X-ENDLIST"));
    assert!(!media_text(&view, "480p").contains("#EXT-X-ENDLIST"));
    assert!(view.renditions[&rendition("720p")].segment(0).is_some());
    assert!(matches!(
        s.apply(segment("720p", 1, 1, 100, 2000)),
        Err(BroadcastError::UnknownRendition { .. })
    ));
}

#[test]
fn an_ended_stream_stays_listed_with_endlist_everywhere() {
    let mut s = state(3);
    s.apply(start(1)).expect("start");
    for r in ["720p", "480p"] {
        s.apply(announce(r)).expect("announce");
        s.apply(segment(r, 1, 0, 100, 2000)).expect("segment");
    }
    assert_eq!(
        s.view().master.as_ref().expect("master").cache_control,
        "public, max-age=1"
    );
    s.apply(ended(1)).expect("end");
    s.apply(ended(1)).expect("a repeated end is harmless");
    assert!(matches!(
        s.apply(ended(2)),
        Err(BroadcastError::StaleSession { .. })
    ));
    let view = s.view();
    assert!(!view.summary.live);
    assert_eq!(master_names(&view), ["720p", "480p"]);
    assert_eq!(
        view.master.as_ref().expect("master").cache_control,
        "public, max-age=60"
    );
    for r in ["720p", "480p"] {
        assert!(media_text(&view, r).contains("#EXT-X-ENDLIST"));
        assert_eq!(
            view.renditions[&rendition(r)].playlist.cache_control,
            "public, max-age=60"
        );
    }
    assert!(matches!(
        s.apply(segment("720p", 1, 1, 100, 2000)),
        Err(BroadcastError::NotLive { .. })
    ));
}

#[test]
fn a_reconnect_keeps_counting_and_closes_rungs_the_new_session_lacks() {
    let mut s = state(4);
    s.apply(start(1)).expect("start");
    for r in ["720p", "480p"] {
        s.apply(announce(r)).expect("announce");
        s.apply(segment(r, 1, 0, 100, 2000)).expect("segment");
    }
    s.apply(start(2)).expect("reconnect");
    s.apply(announce("720p")).expect("announce");
    // Until the new session's first segment, the old ladder is still offered.
    assert_eq!(master_names(&s.view()), ["720p", "480p"]);
    let LiveEvent::Segment(mut seg) = segment("720p", 2, 1, 100, 2000) else {
        unreachable!()
    };
    seg.meta.discontinuity = true;
    seg.meta.discontinuity_sequence = 1;
    s.apply(LiveEvent::Segment(seg))
        .expect("segment of the new session");
    let view = s.view();
    assert_eq!(master_names(&view), ["720p"]);
    assert!(media_text(&view, "480p").contains("#EXT-X-ENDLIST"));
    let text = media_text(&view, "720p");
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n#EXTINF:2,\n1.ts"),
        "{text}"
    );
    assert!(matches!(
        s.apply(segment("720p", 1, 2, 100, 2000)),
        Err(BroadcastError::StaleSession { .. })
    ));
}

/// A reconnect's part-key delegation may come before the new session announced the
/// rendition: it is kept then, and served for its segments once the rendition is
/// announced, ahead of the old session's delegation whose run covers the same numbers.
/// One of a session that never announces the rendition is never served.
#[test]
fn a_delegation_that_comes_before_its_announcement_is_served_once_announced() {
    let delegation = |tag: &'static [u8]| Bytes::from_static(tag);
    let served = |s: &StreamState, sequence: u64| {
        s.view().renditions[&rendition("720p")]
            .part_key(sequence)
            .map(|d| d.body.clone())
    };
    let mut s = state(4);
    s.apply(start(1)).expect("start");
    s.apply(announce("720p")).expect("announce");
    s.part_key(&rendition("720p"), SessionId(1), (0, 7), delegation(b"old"));
    s.apply(segment("720p", 1, 0, 100, 2000)).expect("segment");
    assert_eq!(served(&s, 3), Some(delegation(b"old")));

    // The new session's delegation, before its start and before its announcement.
    s.part_key(&rendition("720p"), SessionId(2), (1, 8), delegation(b"new"));
    s.part_key(
        &rendition("720p"),
        SessionId(3),
        (1, 8),
        delegation(b"never"),
    );
    s.apply(start(2)).expect("reconnect");
    assert_eq!(
        served(&s, 3),
        Some(delegation(b"old")),
        "not before it is announced"
    );
    s.apply(announce("720p")).expect("announce again");
    assert_eq!(served(&s, 1), Some(delegation(b"new")));
    assert_eq!(served(&s, 8), Some(delegation(b"new")));
    assert_eq!(
        served(&s, 0),
        Some(delegation(b"old")),
        "the old run's own segment"
    );
    assert!(
        s.view().renditions[&rendition("720p")]
            .part_keys
            .iter()
            .all(|(_, d)| d.body != delegation(b"never")),
        "another session's delegation is not served"
    );
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Start(u64),
    Announce(usize),
    /// `None` session: the live one; `None` sequence: one after the last accepted. Both
    /// are `Some` now and then, to replay, reorder and mix sessions.
    Segment {
        r: usize,
        session: Option<u64>,
        sequence: Option<u64>,
        len: usize,
        millis: u64,
    },
    Drop(usize),
    End(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1u64..4).prop_map(Op::Start),
        3 => (0usize..3).prop_map(Op::Announce),
        16 => (
            0usize..3,
            proptest::option::weighted(0.2, 1u64..4),
            proptest::option::weighted(0.2, 0u64..40),
            0usize..3000,
            0u64..7000,
        ).prop_map(
            |(r, session, sequence, len, millis)| Op::Segment { r, session, sequence, len, millis }
        ),
        1 => (0usize..3).prop_map(Op::Drop),
        1 => (1u64..4).prop_map(Op::End),
    ]
}

/// The event for `op` given the state so far (`next`: next sequence per rendition).
fn event(op: &Op, s: &StreamState, next: &[u64; 3]) -> LiveEvent {
    match *op {
        Op::Start(s) => start(s),
        Op::Announce(r) => announce(RENDITIONS[r]),
        Op::Segment {
            r,
            session,
            sequence,
            len,
            millis,
        } => segment(
            RENDITIONS[r],
            session.unwrap_or(s.last_session.map_or(1, |s| s.0)),
            sequence.unwrap_or(next[r]),
            len,
            millis,
        ),
        Op::Drop(r) => dropped(RENDITIONS[r]),
        Op::End(s) => ended(s),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_histories_keep_every_invariant(
        ops in proptest::collection::vec(op(), 0..120),
        window in 1usize..6,
        started in any::<bool>(),
    ) {
        let mut s = state(window);
        let mut announced_order: Vec<String> = Vec::new();
        let mut next = [0u64; 3];
        // Half the histories start with a live session and a full ladder, so that most of
        // their events are accepted; the other half start from nothing.
        let prelude = [Op::Start(1), Op::Announce(0), Op::Announce(1), Op::Announce(2)];
        let prelude = if started { &prelude[..] } else { &[] };
        for op in prelude.iter().chain(&ops) {
            let before = fingerprint(&s.view());
            let event = event(op, &s, &next);
            if let (LiveEvent::Segment(seg), Op::Segment { r, .. }) = (&event, op) {
                next[*r] = next[*r].max(seg.meta.sequence + 1);
            }
            let result = s.apply(event);
            let view = s.view();
            match (&result, op) {
                (Err(_), _) => prop_assert_eq!(fingerprint(&view), before, "refused {:?} changed state", op),
                (Ok(()), Op::Announce(r)) if !announced_order.iter().any(|n| n == RENDITIONS[*r]) => {
                    announced_order.push(RENDITIONS[*r].to_owned());
                }
                (Ok(()), Op::Segment { r, .. }) => {
                    prop_assert!(master_names(&view).iter().any(|n| n == RENDITIONS[*r]));
                }
                (Ok(()), Op::Drop(r)) => {
                    prop_assert!(!master_names(&view).iter().any(|n| n == RENDITIONS[*r]));
                }
                _ => {}
            }

            // Master: parses, lists only renditions with a playable playlist, in
            // first-announcement order, and agrees with the summary.
            let listed = master_names(&view);
            let order: Vec<&String> = announced_order.iter().filter(|n| listed.contains(n)).collect();
            prop_assert_eq!(order.len(), listed.len());
            prop_assert!(order.iter().zip(&listed).all(|(a, b)| *a == b));
            let summary: Vec<String> = view.summary.renditions.iter().map(|r| r.name.to_string()).collect();
            prop_assert_eq!(&summary, &listed);
            prop_assert_eq!(view.summary.live, s.is_live());

            for (name, r) in &view.renditions {
                let parsed = m3u8_rs::parse_media_playlist_res(&r.playlist.body)
                    .map_err(|e| TestCaseError::fail(format!("{name}: {e:?}")))?;
                prop_assert!(!parsed.segments.is_empty());
                prop_assert!(parsed.segments.len() <= window);
                prop_assert!(r.segments.len() <= window + GRACE_SEGMENTS);
                prop_assert!(r.segments.windows(2).all(|w| w[0].0 < w[1].0));
                // Every listed segment is fetchable.
                for seg in &parsed.segments {
                    let seq: u64 = seg.uri.trim_end_matches(".ts").parse().expect("number");
                    prop_assert!(r.segment(seq).is_some());
                }
                if !s.is_live() {
                    prop_assert!(parsed.end_list);
                }
            }
            for name in &listed {
                prop_assert!(view.renditions.contains_key(&rendition(name)));
            }
        }
    }

    #[test]
    fn in_one_session_the_master_lists_exactly_the_renditions_with_segments(
        segments in proptest::collection::vec((0usize..3, 0u64..30), 0..60),
    ) {
        let mut s = state(4);
        s.apply(start(7)).expect("start");
        for r in RENDITIONS {
            s.apply(announce(r)).expect("announce");
        }
        let mut with_segments = HashSet::new();
        for (r, seq) in segments {
            if s.apply(segment(RENDITIONS[r], 7, seq, 500, 2000)).is_ok() {
                with_segments.insert(RENDITIONS[r].to_owned());
            }
            let listed: HashSet<String> = master_names(&s.view()).into_iter().collect();
            prop_assert_eq!(&listed, &with_segments);
        }
    }
}

//! Releases the segments of all rungs of a stream in sequence order, sans-IO.
//!
//! Rungs finish a given segment at different moments (the source rung needs no encoding;
//! encoded rungs lag by the encoder's delay). Edges should list segment N on every rung at
//! about the same time, and the master playlist should list the rungs in ladder order, so
//! outputs wait here until every active rung has produced segment N — or until one rung is
//! two segments ahead, which means another is stuck and must not hold the rest back.
//!
//! LL-HLS parts are not held: a part is worth something only while it is fresh. The one
//! wait they share is the first announcement: edges refuse parts of a rendition they have
//! not been told about, and renditions are announced in ladder order, so at stream start
//! parts wait until every active rung has its description; then all are announced, in
//! ladder order, and parts flow as they come.

use std::collections::BTreeMap;

use domain::{LiveEvent, Part, RenditionInfo, Segment, StreamName};

/// Orders one stream's outputs.
#[derive(Debug)]
pub(crate) struct SequenceAligner {
    stream: StreamName,
    rungs: Vec<RungState>,
    /// sequence → rung index → segment
    pending: BTreeMap<u64, BTreeMap<usize, Segment>>,
    /// Parts waiting for the first announcement, in arrival order, with their rung.
    held_parts: Vec<(usize, Part)>,
}

#[derive(Debug)]
struct RungState {
    active: bool,
    info: Option<RenditionInfo>,
    announced: bool,
    highest: Option<u64>,
}

impl SequenceAligner {
    /// An aligner for `rungs` rungs, numbered in ladder order.
    pub(crate) fn new(stream: StreamName, rungs: usize) -> Self {
        SequenceAligner {
            stream,
            rungs: (0..rungs)
                .map(|_| RungState {
                    active: true,
                    info: None,
                    announced: false,
                    highest: None,
                })
                .collect(),
            pending: BTreeMap::new(),
            held_parts: Vec::new(),
        }
    }

    /// A rung's description; announced with its first segment, or at once if it changes later.
    pub(crate) fn info(&mut self, rung: usize, info: RenditionInfo) -> Vec<LiveEvent> {
        let Some(state) = self.rungs.get_mut(rung) else {
            return Vec::new();
        };
        let changed = state.info.as_ref() != Some(&info);
        state.info = Some(info.clone());
        if state.announced && changed {
            vec![LiveEvent::Rendition {
                stream: self.stream.clone(),
                info,
            }]
        } else {
            self.release_parts(false)
        }
    }

    /// A finished part of a rung: out at once if its rung was announced, else held until
    /// the first announcement.
    pub(crate) fn part(&mut self, rung: usize, part: Part) -> Vec<LiveEvent> {
        let Some(state) = self.rungs.get(rung) else {
            return Vec::new();
        };
        if state.announced {
            return vec![LiveEvent::Part(part)];
        }
        self.held_parts.push((rung, part));
        self.release_parts(false)
    }

    /// Announces every active rung with a description, in ladder order, and releases the
    /// held parts of announced rungs: once every active rung has its description (or one
    /// was already announced with a segment), or at the end (`all`). Parts of a rung that
    /// can never be announced are dropped.
    fn release_parts(&mut self, all: bool) -> Vec<LiveEvent> {
        if self.held_parts.is_empty() {
            return Vec::new();
        }
        let ready = all
            || self.rungs.iter().any(|r| r.announced)
            || self.rungs.iter().all(|r| !r.active || r.info.is_some());
        if !ready {
            return Vec::new();
        }
        let mut out = Vec::new();
        for state in self.rungs.iter_mut().filter(|r| r.active && !r.announced) {
            if let Some(info) = &state.info {
                state.announced = true;
                out.push(LiveEvent::Rendition {
                    stream: self.stream.clone(),
                    info: info.clone(),
                });
            }
        }
        let rungs = &self.rungs;
        out.extend(
            self.held_parts
                .drain(..)
                .filter(|(rung, _)| rungs[*rung].announced)
                .map(|(_, part)| LiveEvent::Part(part)),
        );
        out
    }

    /// A finished segment of a rung.
    pub(crate) fn segment(&mut self, rung: usize, segment: Segment) -> Vec<LiveEvent> {
        let Some(state) = self.rungs.get_mut(rung) else {
            return Vec::new();
        };
        let seq = segment.meta.sequence;
        state.highest = Some(state.highest.map_or(seq, |h| h.max(seq)));
        self.pending.entry(seq).or_default().insert(rung, segment);
        self.release(false)
    }

    /// A rung stops (shed or failed): nothing waits for it any more.
    pub(crate) fn drop_rung(&mut self, rung: usize) -> Vec<LiveEvent> {
        let Some(state) = self.rungs.get_mut(rung) else {
            return Vec::new();
        };
        if !state.active {
            return Vec::new();
        }
        state.active = false;
        let mut out = self.release_parts(false);
        out.extend(self.release(false));
        if let Some(info) = &self.rungs[rung].info {
            if self.rungs[rung].announced {
                out.push(LiveEvent::RenditionDropped {
                    stream: self.stream.clone(),
                    rendition: info.name.clone(),
                });
            }
        }
        out
    }

    /// Releases everything still waiting (the stream is ending).
    pub(crate) fn finish(&mut self) -> Vec<LiveEvent> {
        let mut out = self.release_parts(true);
        out.extend(self.release(true));
        out
    }

    fn release(&mut self, all: bool) -> Vec<LiveEvent> {
        let mut out = Vec::new();
        while let Some((&seq, group)) = self.pending.first_key_value() {
            let complete = self
                .rungs
                .iter()
                .enumerate()
                .all(|(i, r)| !r.active || group.contains_key(&i));
            let overtaken = self
                .rungs
                .iter()
                .any(|r| r.highest.is_some_and(|h| h >= seq + 2));
            if !(all || complete || overtaken) {
                break;
            }
            let Some((_, group)) = self.pending.pop_first() else {
                break;
            };
            for (rung, segment) in group {
                let state = &mut self.rungs[rung];
                if !state.announced {
                    let Some(info) = state.info.clone() else {
                        // A segment without a description cannot be listed in a master
                        // playlist; the rung's worker always sends info first.
                        continue;
                    };
                    state.announced = true;
                    out.push(LiveEvent::Rendition {
                        stream: self.stream.clone(),
                        info,
                    });
                }
                out.push(LiveEvent::Segment(segment));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use domain::{RenditionName, SegmentMeta, SessionId};
    use proptest::prelude::*;
    use std::time::Duration;

    fn name(i: usize) -> RenditionName {
        RenditionName::new(format!("r{i}")).expect("valid")
    }

    fn info(i: usize) -> RenditionInfo {
        RenditionInfo {
            name: name(i),
            width: 640,
            height: 360,
            frame_rate: 30.0,
            codecs: "avc1.64001e".parse().expect("valid codecs"),
            init: None,
            part_target_us: None,
        }
    }

    fn seg(i: usize, seq: u64) -> Segment {
        Segment {
            meta: SegmentMeta {
                stream: StreamName::new("s").expect("valid"),
                rendition: name(i),
                session: SessionId(1),
                sequence: seq,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: Duration::from_secs(2),
                start_pts_90k: seq * 180_000,
            },
            bytes: Bytes::new(),
        }
    }

    #[test]
    fn waits_for_every_rung_then_releases_in_ladder_order() {
        let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 3);
        for i in 0..3 {
            assert!(a.info(i, info(i)).is_empty());
        }
        assert!(a.segment(0, seg(0, 7)).is_empty());
        assert!(a.segment(2, seg(2, 7)).is_empty());
        let out = a.segment(1, seg(1, 7));
        let kinds: Vec<String> = out
            .iter()
            .map(|e| match e {
                LiveEvent::Rendition { info, .. } => format!("info {}", info.name),
                LiveEvent::Segment(s) => format!("seg {} {}", s.meta.rendition, s.meta.sequence),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            ["info r0", "seg r0 7", "info r1", "seg r1 7", "info r2", "seg r2 7"]
        );
    }

    fn part(i: usize, seq: u64, index: u32) -> Part {
        Part {
            meta: domain::PartMeta {
                stream: StreamName::new("s").expect("valid"),
                rendition: name(i),
                session: SessionId(1),
                sequence: seq,
                index,
                discontinuity_sequence: 0,
                independent: index == 0,
                duration: Duration::from_millis(333),
                program_date_time_ms: 1_800_000_000_000,
            },
            bytes: Bytes::new(),
        }
    }

    fn describe(out: &[LiveEvent]) -> Vec<String> {
        out.iter()
            .map(|e| match e {
                LiveEvent::Rendition { info, .. } => format!("info {}", info.name),
                LiveEvent::Segment(s) => format!("seg {} {}", s.meta.rendition, s.meta.sequence),
                LiveEvent::Part(p) => format!(
                    "part {} {}.{}",
                    p.meta.rendition, p.meta.sequence, p.meta.index
                ),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn parts_wait_for_the_first_announcement_then_flow() {
        let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 3);
        // The source rung is first to cut a part; the encoded rungs lag.
        assert!(a.info(0, info(0)).is_empty());
        assert!(a.part(0, part(0, 0, 0)).is_empty());
        assert!(a.info(2, info(2)).is_empty());
        assert!(a.part(2, part(2, 0, 0)).is_empty());
        assert!(a.part(0, part(0, 0, 1)).is_empty());
        let out = a.info(1, info(1));
        assert_eq!(
            describe(&out),
            [
                "info r0",
                "info r1",
                "info r2",
                "part r0 0.0",
                "part r2 0.0",
                "part r0 0.1"
            ]
        );
        // From now on parts leave at once, ahead of the segments' alignment.
        assert_eq!(describe(&a.part(1, part(1, 0, 0))), ["part r1 0.0"]);
        assert!(a.segment(0, seg(0, 0)).is_empty());
        assert_eq!(describe(&a.part(0, part(0, 1, 0))), ["part r0 1.0"]);
        a.segment(1, seg(1, 0));
        assert_eq!(
            describe(&a.segment(2, seg(2, 0))),
            ["seg r0 0", "seg r1 0", "seg r2 0"]
        );
    }

    #[test]
    fn a_rung_dropped_before_its_description_does_not_hold_parts() {
        let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 2);
        a.info(0, info(0));
        assert!(a.part(0, part(0, 0, 0)).is_empty());
        assert_eq!(describe(&a.drop_rung(1)), ["info r0", "part r0 0.0"]);
    }

    #[test]
    fn a_stuck_rung_does_not_hold_the_others_back() {
        let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 2);
        a.info(0, info(0));
        a.info(1, info(1));
        assert!(a.segment(0, seg(0, 0)).is_empty());
        assert!(a.segment(0, seg(0, 1)).is_empty());
        let out = a.segment(0, seg(0, 2));
        assert_eq!(
            out.len(),
            2,
            "segment 0 released once rung 0 is two ahead: {out:?}"
        );
    }

    #[test]
    fn dropping_a_rung_releases_what_waited_for_it() {
        let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 2);
        a.info(0, info(0));
        a.info(1, info(1));
        a.segment(1, seg(1, 0));
        a.segment(0, seg(0, 0));
        a.segment(0, seg(0, 1));
        let out = a.drop_rung(1);
        assert!(matches!(out.first(), Some(LiveEvent::Segment(s)) if s.meta.sequence == 1));
        assert!(matches!(
            out.last(),
            Some(LiveEvent::RenditionDropped { .. })
        ));
    }

    proptest! {
        #[test]
        fn every_segment_is_released_once_and_per_rung_in_order(
            order in proptest::collection::vec((0usize..3, 0u64..1), 1..60).prop_map(|v| v.into_iter().map(|(r, _)| r).collect::<Vec<_>>())
        ) {
            let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 3);
            for i in 0..3 { a.info(i, info(i)); }
            let mut next = [0u64; 3];
            let mut out = Vec::new();
            for r in order {
                out.extend(a.segment(r, seg(r, next[r])));
                next[r] += 1;
            }
            out.extend(a.finish());
            let mut seen = [Vec::new(), Vec::new(), Vec::new()];
            for e in out {
                if let LiveEvent::Segment(s) = e {
                    let r: usize = s.meta.rendition.as_str()[1..].parse().expect("index");
                    seen[r].push(s.meta.sequence);
                }
            }
            for r in 0..3 {
                prop_assert_eq!(&seen[r], &(0..next[r]).collect::<Vec<_>>());
            }
        }

        /// Whatever the order rungs deliver in (each its description before its first
        /// part), no part leaves before its rung's description, renditions are first
        /// announced in ladder order, and every part leaves once, in its rung's order.
        #[test]
        fn no_part_before_its_rendition(
            order in proptest::collection::vec(0usize..3, 1..60),
        ) {
            let mut a = SequenceAligner::new(StreamName::new("s").expect("valid"), 3);
            let mut next = [0u32; 3];
            let mut out = Vec::new();
            for r in order {
                if next[r] == 0 {
                    out.extend(a.info(r, info(r)));
                }
                out.extend(a.part(r, part(r, 0, next[r])));
                next[r] += 1;
            }
            out.extend(a.finish());
            let mut announced = Vec::new();
            let mut seen = [Vec::new(), Vec::new(), Vec::new()];
            for e in &out {
                match e {
                    LiveEvent::Rendition { info, .. } => {
                        announced.push(info.name.as_str()[1..].parse::<usize>().expect("index"));
                    }
                    LiveEvent::Part(p) => {
                        let r: usize = p.meta.rendition.as_str()[1..].parse().expect("index");
                        prop_assert!(announced.contains(&r));
                        seen[r].push(p.meta.index);
                    }
                    _ => {}
                }
            }
            prop_assert!(announced.windows(2).all(|w| w[0] < w[1]), "{:?}", announced);
            for r in 0..3 {
                prop_assert_eq!(&seen[r], &(0..next[r]).collect::<Vec<_>>());
            }
        }
    }
}

//! Releases the segments of all rungs of a stream in sequence order, sans-IO.
//!
//! Rungs finish a given segment at different moments (the source rung needs no encoding;
//! encoded rungs lag by the encoder's delay). Edges should list segment N on every rung at
//! about the same time, and the master playlist should list the rungs in ladder order, so
//! outputs wait here until every active rung has produced segment N — or until one rung is
//! two segments ahead, which means another is stuck and must not hold the rest back.

use std::collections::BTreeMap;

use domain::{LiveEvent, RenditionInfo, RenditionName, Segment, StreamName};

/// Orders one stream's outputs.
#[derive(Debug)]
pub struct SequenceAligner {
    stream: StreamName,
    rungs: Vec<RungState>,
    /// sequence → rung index → segment
    pending: BTreeMap<u64, BTreeMap<usize, Segment>>,
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
    pub fn new(stream: StreamName, rungs: usize) -> Self {
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
        }
    }

    /// A rung's description; announced with its first segment, or at once if it changes later.
    pub fn info(&mut self, rung: usize, info: RenditionInfo) -> Vec<LiveEvent> {
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
            Vec::new()
        }
    }

    /// A finished segment of a rung.
    pub fn segment(&mut self, rung: usize, segment: Segment) -> Vec<LiveEvent> {
        let Some(state) = self.rungs.get_mut(rung) else {
            return Vec::new();
        };
        let seq = segment.meta.sequence;
        state.highest = Some(state.highest.map_or(seq, |h| h.max(seq)));
        self.pending.entry(seq).or_default().insert(rung, segment);
        self.release(false)
    }

    /// A rung stops (shed or failed): nothing waits for it any more.
    pub fn drop_rung(&mut self, rung: usize) -> Vec<LiveEvent> {
        let Some(state) = self.rungs.get_mut(rung) else {
            return Vec::new();
        };
        if !state.active {
            return Vec::new();
        }
        state.active = false;
        let mut out = self.release(false);
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
    pub fn finish(&mut self) -> Vec<LiveEvent> {
        self.release(true)
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

    /// Names of the rungs that are still produced.
    pub fn active_renditions(&self) -> Vec<RenditionName> {
        self.rungs
            .iter()
            .filter(|r| r.active)
            .filter_map(|r| r.info.as_ref().map(|i| i.name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use domain::{SegmentMeta, SessionId};
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
    }
}

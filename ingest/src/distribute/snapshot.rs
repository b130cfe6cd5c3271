//! What a broadcast node that joins late (or fell behind and is resynced) must be told
//! before live events make sense to it: for every stream, whether it is live or ended, its
//! current session, each rendition's latest description (and whether it was dropped), and
//! the last `window` segments of every rendition with their signed envelopes once signed.
//!
//! Sans-IO: live events in, push items out. The distributor records every event here and,
//! in the same task, turns the snapshot into a node's first queue entries, so that nothing
//! is missed or sent twice between the snapshot and the live events that follow it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use domain::push_protocol::ControlEvent;
use domain::{
    LiveEvent, NodeId, Part, RenditionInfo, RenditionName, Segment, SessionId, StreamName,
    Thumbnail,
};

/// Ended streams whose last window is kept for late joiners; older ones are forgotten
/// (their segments would otherwise be held for ever).
pub(crate) const MAX_ENDED_STREAMS: usize = 8;

/// A segment as the distributor holds it: the bytes (shared with every node's queue, never
/// copied) and its signed envelope, filled in once by the signer.
#[derive(Debug)]
pub(crate) struct HeldSegment {
    /// What every node is sent.
    pub(crate) segment: Segment,
    /// [`domain::wire::SignedMedia::encode`] of this segment, once signed. Shared
    /// through the `Arc`, so a catch-up push queued before signing finished still carries
    /// it if it is ready by the time the push goes out.
    pub(crate) envelope: OnceLock<Bytes>,
}

impl HeldSegment {
    pub(crate) fn new(segment: Segment) -> Arc<Self> {
        Arc::new(HeldSegment {
            segment,
            envelope: OnceLock::new(),
        })
    }
}

/// A thumbnail and its signed statement, as every node is sent it (signed before it is
/// queued: its statement travels in the push, not over MQTT).
#[derive(Debug)]
pub(crate) struct SignedThumbnailPush {
    /// The picture.
    pub(crate) thumbnail: Thumbnail,
    /// [`domain::wire::SignedThumbnail::encode`] of it.
    pub(crate) envelope: Bytes,
}

/// One request in a node's queue.
#[derive(Debug, Clone)]
pub(crate) enum PushItem {
    /// `POST /internal/v1/events`.
    Control(ControlEvent),
    /// `PUT /internal/v1/segments/…`.
    Segment {
        /// The segment.
        held: Arc<HeldSegment>,
        /// Catch-up push: send the envelope along in the statement header if it is ready
        /// (the node missed the MQTT message). Live pushes leave it to MQTT.
        catch_up: bool,
    },
    /// `PUT /internal/v1/parts/…`: an LL-HLS part, live only (never in the snapshot: it is
    /// stale by the time a node joins, and its segment follows).
    Part(Arc<Part>),
    /// `PUT /internal/v1/thumbnails/…`: a signed thumbnail, given way like a part (a later
    /// one replaces it). Not in the snapshot; the distributor sends a joining node each
    /// stream's latest.
    Thumbnail(Arc<SignedThumbnailPush>),
}

impl PushItem {
    /// The item carrying a live event (a segment is wrapped for sharing); `None` for a
    /// thumbnail, which is pushed only once signed ([`PushItem::Thumbnail`]).
    pub(crate) fn from_live(event: LiveEvent) -> Option<Self> {
        match event {
            LiveEvent::Segment(segment) => Some(PushItem::Segment {
                held: HeldSegment::new(segment),
                catch_up: false,
            }),
            LiveEvent::Part(part) => Some(PushItem::Part(Arc::new(part))),
            other => ControlEvent::from_live(&other).map(PushItem::Control),
        }
    }
}

#[derive(Debug)]
struct RenditionState {
    name: RenditionName,
    info: Option<RenditionInfo>,
    dropped: bool,
    /// Ascending by sequence number, at most `window` long.
    segments: VecDeque<Arc<HeldSegment>>,
}

#[derive(Debug, Default)]
struct StreamState {
    session: Option<SessionId>,
    /// As the latest session start said (a repeated start changes only these two).
    private: bool,
    /// Whether the session is recorded (set with `session`, so never read at its default).
    record: bool,
    ended: bool,
    /// In order of first appearance, which is ladder order.
    renditions: Vec<RenditionState>,
}

impl StreamState {
    fn rendition(&mut self, name: &RenditionName) -> &mut RenditionState {
        let at = match self.renditions.iter().position(|r| &r.name == name) {
            Some(at) => at,
            None => {
                self.renditions.push(RenditionState {
                    name: name.clone(),
                    info: None,
                    dropped: false,
                    segments: VecDeque::new(),
                });
                self.renditions.len() - 1
            }
        };
        &mut self.renditions[at]
    }
}

/// The state of every stream this ingest distributes, as a late joiner needs it.
#[derive(Debug)]
pub(crate) struct Snapshot {
    window: usize,
    streams: BTreeMap<StreamName, StreamState>,
    /// Ended streams, oldest first, for [`MAX_ENDED_STREAMS`].
    ended: VecDeque<StreamName>,
}

impl Snapshot {
    /// Keeps `window` segments per rendition (at least one).
    pub(crate) fn new(window: usize) -> Self {
        Snapshot {
            window: window.max(1),
            streams: BTreeMap::new(),
            ended: VecDeque::new(),
        }
    }

    /// Takes in one event, in the order the distributor sends it out.
    pub(crate) fn record(&mut self, item: &PushItem) {
        match item {
            PushItem::Segment { held, .. } => {
                let meta = &held.segment.meta;
                let window = self.window;
                let stream = self.streams.entry(meta.stream.clone()).or_default();
                let segments = &mut stream.rendition(&meta.rendition).segments;
                // The pipeline releases segments in order; should one come out of order,
                // keep the window sorted and let a repeat replace the earlier copy.
                let sequence = meta.sequence;
                match segments.binary_search_by_key(&sequence, |h| h.segment.meta.sequence) {
                    Ok(at) => segments[at] = Arc::clone(held),
                    Err(at) => segments.insert(at, Arc::clone(held)),
                }
                while segments.len() > window {
                    segments.pop_front();
                }
            }
            PushItem::Control(event) => self.record_control(event),
            // Parts are ephemeral: a late joiner gets their segments. Thumbnails are kept by
            // the distributor, the latest per stream.
            PushItem::Part(_) | PushItem::Thumbnail(_) => {}
        }
    }

    fn record_control(&mut self, event: &ControlEvent) {
        match event {
            ControlEvent::Live(LiveEvent::SessionStarted {
                stream,
                session,
                private,
                record,
            }) => {
                self.ended.retain(|s| s != stream);
                let state = self.streams.entry(stream.clone()).or_default();
                state.session = Some(*session);
                state.private = *private;
                state.record = *record;
                state.ended = false;
            }
            ControlEvent::Live(LiveEvent::Rendition { stream, info }) => {
                let rendition = self.streams.entry(stream.clone()).or_default();
                let rendition = rendition.rendition(&info.name);
                rendition.info = Some(info.clone());
                rendition.dropped = false;
            }
            ControlEvent::Live(LiveEvent::RenditionDropped { stream, rendition }) => {
                if let Some(state) = self.streams.get_mut(stream) {
                    state.rendition(rendition).dropped = true;
                }
            }
            ControlEvent::Live(LiveEvent::Ended { stream, .. }) => {
                if let Some(state) = self.streams.get_mut(stream) {
                    state.ended = true;
                    self.ended.retain(|s| s != stream);
                    self.ended.push_back(stream.clone());
                }
                while self.ended.len() > MAX_ENDED_STREAMS {
                    if let Some(oldest) = self.ended.pop_front() {
                        self.streams.remove(&oldest);
                    }
                }
            }
            // Segments and parts are never control events (`ControlEvent::from_live` leaves
            // them out).
            ControlEvent::Synced { .. }
            | ControlEvent::Live(
                LiveEvent::Segment(_) | LiveEvent::Part(_) | LiveEvent::Thumbnail(_),
            ) => {}
        }
    }

    /// What a joining node's queue starts with: per stream `SessionStarted`, the
    /// renditions' descriptions, the held segments in sequence order (as catch-up pushes),
    /// the dropped renditions and `Ended` if the stream ended; then `Synced` from `ingest`.
    pub(crate) fn sync_items(&self, ingest: &NodeId) -> Vec<PushItem> {
        let mut items = Vec::new();
        for (name, state) in &self.streams {
            if let Some(session) = state.session {
                items.push(PushItem::Control(ControlEvent::Live(
                    LiveEvent::SessionStarted {
                        stream: name.clone(),
                        session,
                        private: state.private,
                        record: state.record,
                    },
                )));
            }
            for rendition in &state.renditions {
                if let Some(info) = &rendition.info {
                    items.push(PushItem::Control(ControlEvent::Live(
                        LiveEvent::Rendition {
                            stream: name.clone(),
                            info: info.clone(),
                        },
                    )));
                }
            }
            // Segment N of every rung together, in ladder order, as they went out live.
            let mut segments: Vec<(u64, usize, &Arc<HeldSegment>)> = state
                .renditions
                .iter()
                .enumerate()
                .flat_map(|(rung, r)| {
                    r.segments
                        .iter()
                        .map(move |h| (h.segment.meta.sequence, rung, h))
                })
                .collect();
            segments.sort_by_key(|(sequence, rung, _)| (*sequence, *rung));
            items.extend(segments.into_iter().map(|(_, _, held)| PushItem::Segment {
                held: Arc::clone(held),
                catch_up: true,
            }));
            for rendition in state.renditions.iter().filter(|r| r.dropped) {
                items.push(PushItem::Control(ControlEvent::Live(
                    LiveEvent::RenditionDropped {
                        stream: name.clone(),
                        rendition: rendition.name.clone(),
                    },
                )));
            }
            if let (true, Some(session)) = (state.ended, state.session) {
                items.push(PushItem::Control(ControlEvent::Live(LiveEvent::Ended {
                    stream: name.clone(),
                    session,
                })));
            }
        }
        items.push(PushItem::Control(ControlEvent::Synced {
            ingest: ingest.clone(),
        }));
        items
    }

    /// How many segments are held for `stream`/`rendition` (for tests and checks).
    #[cfg(test)]
    fn held(&self, stream: &StreamName, rendition: &RenditionName) -> Vec<u64> {
        self.streams
            .get(stream)
            .and_then(|s| s.renditions.iter().find(|r| &r.name == rendition))
            .map(|r| r.segments.iter().map(|h| h.segment.meta.sequence).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use domain::SegmentMeta;
    use proptest::prelude::*;

    use super::*;

    fn stream(i: u8) -> StreamName {
        StreamName::new(format!("s{i}")).expect("valid")
    }

    fn rendition(i: u8) -> RenditionName {
        RenditionName::new(format!("r{i}")).expect("valid")
    }

    fn info(i: u8) -> RenditionInfo {
        RenditionInfo {
            name: rendition(i),
            width: 640,
            height: 360,
            frame_rate: 25.0,
            codecs: "avc1.64001e,mp4a.40.2".parse().expect("valid codecs"),
            init: None,
            part_target_us: None,
        }
    }

    fn segment(s: u8, r: u8, session: u64, sequence: u64) -> LiveEvent {
        LiveEvent::Segment(Segment {
            meta: SegmentMeta {
                stream: stream(s),
                rendition: rendition(r),
                session: SessionId(session),
                sequence,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: Duration::from_secs(2),
                start_pts_90k: sequence * 180_000,
            },
            bytes: Bytes::from(vec![r; 16]),
        })
    }

    fn ingest() -> NodeId {
        NodeId::new("ingest1").expect("valid")
    }

    /// A readable form of push items, to compare orders.
    fn describe(items: &[PushItem]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                PushItem::Control(ControlEvent::Live(LiveEvent::SessionStarted {
                    stream,
                    session,
                    ..
                })) => {
                    format!("start {stream} {}", session.0)
                }
                PushItem::Control(ControlEvent::Live(LiveEvent::Rendition { stream, info })) => {
                    format!("rendition {stream} {}", info.name)
                }
                PushItem::Control(ControlEvent::Live(LiveEvent::RenditionDropped {
                    stream,
                    rendition,
                })) => {
                    format!("dropped {stream} {rendition}")
                }
                PushItem::Control(ControlEvent::Live(LiveEvent::Ended { stream, session })) => {
                    format!("ended {stream} {}", session.0)
                }
                PushItem::Control(ControlEvent::Live(LiveEvent::Segment(s))) => {
                    format!("segment as an event {}", s.meta.sequence)
                }
                PushItem::Control(ControlEvent::Live(LiveEvent::Part(p))) => {
                    format!("part as an event {}", p.meta.sequence)
                }
                PushItem::Control(ControlEvent::Synced { ingest }) => format!("synced {ingest}"),
                PushItem::Segment { held, catch_up } => {
                    let m = &held.segment.meta;
                    format!(
                        "segment {} {} {} {catch_up}",
                        m.stream, m.rendition, m.sequence
                    )
                }
                PushItem::Part(p) => format!("part {}", p.meta.sequence),
                PushItem::Thumbnail(t) => format!("thumbnail {}", t.thumbnail.meta.sequence),
                PushItem::Control(ControlEvent::Live(LiveEvent::Thumbnail(t))) => {
                    format!("thumbnail as an event {}", t.meta.sequence)
                }
            })
            .collect()
    }

    fn feed(snapshot: &mut Snapshot, events: Vec<LiveEvent>) {
        for e in events {
            snapshot.record(&PushItem::from_live(e).expect("an item"));
        }
    }

    #[test]
    fn an_empty_snapshot_is_just_synced() {
        assert_eq!(
            describe(&Snapshot::new(3).sync_items(&ingest())),
            ["synced ingest1"]
        );
    }

    #[test]
    fn sync_order_and_window() {
        let mut snapshot = Snapshot::new(2);
        let mut events = vec![
            LiveEvent::SessionStarted {
                stream: stream(1),
                session: SessionId(7),
                private: false,
                record: true,
            },
            LiveEvent::Rendition {
                stream: stream(1),
                info: info(0),
            },
            LiveEvent::Rendition {
                stream: stream(1),
                info: info(1),
            },
        ];
        for n in 0..4 {
            events.push(segment(1, 0, 7, n));
            events.push(segment(1, 1, 7, n));
        }
        events.push(LiveEvent::RenditionDropped {
            stream: stream(1),
            rendition: rendition(1),
        });
        events.push(segment(1, 0, 7, 4));
        events.push(LiveEvent::Ended {
            stream: stream(1),
            session: SessionId(7),
        });
        feed(&mut snapshot, events);
        assert_eq!(
            describe(&snapshot.sync_items(&ingest())),
            [
                "start s1 7",
                "rendition s1 r0",
                "rendition s1 r1",
                "segment s1 r1 2 true",
                "segment s1 r0 3 true",
                "segment s1 r1 3 true",
                "segment s1 r0 4 true",
                "dropped s1 r1",
                "ended s1 7",
                "synced ingest1",
            ]
        );
        // A new session revives the stream and a new description un-drops the rendition.
        feed(
            &mut snapshot,
            vec![
                LiveEvent::SessionStarted {
                    stream: stream(1),
                    session: SessionId(8),
                    private: false,
                    record: true,
                },
                LiveEvent::Rendition {
                    stream: stream(1),
                    info: info(1),
                },
            ],
        );
        let items = describe(&snapshot.sync_items(&ingest()));
        assert_eq!(items[0], "start s1 8");
        assert!(!items
            .iter()
            .any(|i| i.starts_with("ended") || i.starts_with("dropped")));
    }

    /// A late joiner learns the privacy and recording the latest start said: a repeated
    /// start of the live session (an operator made the stream private, or switched its
    /// recording off, while live) changes those and nothing else of the window.
    #[test]
    fn a_repeated_start_changes_privacy_and_recording_only() {
        let start = |private| LiveEvent::SessionStarted {
            stream: stream(1),
            session: SessionId(7),
            private,
            record: !private,
        };
        let mut snapshot = Snapshot::new(3);
        feed(
            &mut snapshot,
            vec![
                start(false),
                LiveEvent::Rendition {
                    stream: stream(1),
                    info: info(0),
                },
                segment(1, 0, 7, 0),
                start(true),
                segment(1, 0, 7, 1),
            ],
        );
        let items = snapshot.sync_items(&ingest());
        assert_eq!(
            describe(&items),
            [
                "start s1 7",
                "rendition s1 r0",
                "segment s1 r0 0 true",
                "segment s1 r0 1 true",
                "synced ingest1"
            ]
        );
        assert!(matches!(
            &items[0],
            PushItem::Control(ControlEvent::Live(LiveEvent::SessionStarted {
                private: true,
                record: false,
                ..
            }))
        ));
    }

    #[test]
    fn envelopes_are_shared_with_queued_items() {
        let mut snapshot = Snapshot::new(2);
        let item = PushItem::from_live(segment(1, 0, 1, 0)).expect("an item");
        snapshot.record(&item);
        let PushItem::Segment { held, .. } = &item else {
            panic!("a segment")
        };
        held.envelope
            .set(Bytes::from_static(b"env"))
            .expect("first set");
        let synced = snapshot.sync_items(&ingest());
        let PushItem::Segment { held, catch_up } = &synced[0] else {
            panic!("a segment first: {:?}", describe(&synced))
        };
        assert!(catch_up);
        assert_eq!(held.envelope.get().map(|b| &b[..]), Some(&b"env"[..]));
    }

    #[test]
    fn only_a_few_ended_streams_are_kept() {
        let mut snapshot = Snapshot::new(2);
        for s in 0..(MAX_ENDED_STREAMS as u8 + 3) {
            feed(
                &mut snapshot,
                vec![
                    LiveEvent::SessionStarted {
                        stream: stream(s),
                        session: SessionId(1),
                        private: false,
                        record: true,
                    },
                    segment(s, 0, 1, 0),
                    LiveEvent::Ended {
                        stream: stream(s),
                        session: SessionId(1),
                    },
                ],
            );
        }
        assert_eq!(snapshot.streams.len(), MAX_ENDED_STREAMS);
        assert!(snapshot.held(&stream(0), &rendition(0)).is_empty());
        assert_eq!(
            snapshot.held(&stream(MAX_ENDED_STREAMS as u8 + 2), &rendition(0)),
            [0]
        );
    }

    /// A random but plausible run: per stream, sessions start and end, renditions are
    /// described and dropped, segments count up per stream.
    fn events() -> impl Strategy<Value = Vec<LiveEvent>> {
        proptest::collection::vec((0u8..3, 0u8..3, 0u8..10, 1u64..4), 0..200).prop_map(|ops| {
            let mut next: HashMap<u8, u64> = HashMap::new();
            let mut session: HashMap<u8, u64> = HashMap::new();
            ops.into_iter()
                .map(|(s, r, kind, skip)| {
                    let sess = *session.entry(s).or_insert(1);
                    match kind {
                        0 => {
                            session.insert(s, sess + 1);
                            LiveEvent::SessionStarted {
                                stream: stream(s),
                                session: SessionId(sess + 1),
                                private: false,
                                record: true,
                            }
                        }
                        1 => LiveEvent::Rendition {
                            stream: stream(s),
                            info: info(r),
                        },
                        2 => LiveEvent::RenditionDropped {
                            stream: stream(s),
                            rendition: rendition(r),
                        },
                        3 => LiveEvent::Ended {
                            stream: stream(s),
                            session: SessionId(sess),
                        },
                        _ => {
                            let n = next.entry(s).or_insert(0);
                            *n += skip;
                            segment(s, r, sess, *n)
                        }
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_window_holds_the_last_segments_and_sync_is_ordered(
            window in 1usize..6,
            events in events(),
        ) {
            let mut snapshot = Snapshot::new(window);
            let mut fed: HashMap<(StreamName, RenditionName), Vec<u64>> = HashMap::new();
            for e in events {
                if let LiveEvent::Segment(s) = &e {
                    fed.entry((s.meta.stream.clone(), s.meta.rendition.clone()))
                        .or_default()
                        .push(s.meta.sequence);
                }
                snapshot.record(&PushItem::from_live(e).expect("an item"));
            }
            // Never more than `window` per rendition, and exactly the last ones fed.
            for ((s, r), seqs) in &fed {
                let held = snapshot.held(s, r);
                prop_assert!(held.len() <= window);
                if snapshot.streams.contains_key(s) {
                    let tail = &seqs[seqs.len().saturating_sub(window)..];
                    prop_assert_eq!(&held[..], tail);
                }
            }
            // Per stream: start → renditions → segments ascending → dropped → ended?;
            // `Synced` exactly once, last.
            let items = snapshot.sync_items(&ingest());
            let synced = items
                .iter()
                .filter(|i| matches!(i, PushItem::Control(ControlEvent::Synced { .. })))
                .count();
            prop_assert_eq!(synced, 1);
            let last_is_synced =
                matches!(items.last(), Some(PushItem::Control(ControlEvent::Synced { .. })));
            prop_assert!(last_is_synced);
            let mut phase: HashMap<StreamName, (u8, u64)> = HashMap::new();
            let mut finished: Vec<StreamName> = Vec::new();
            for item in &items[..items.len() - 1] {
                let (s, rank, seq) = match item {
                    PushItem::Control(ControlEvent::Live(LiveEvent::SessionStarted { stream, .. })) => (stream, 0, 0),
                    PushItem::Control(ControlEvent::Live(LiveEvent::Rendition { stream, .. })) => (stream, 1, 0),
                    PushItem::Segment { held, catch_up } => {
                        prop_assert!(catch_up);
                        (&held.segment.meta.stream, 2, held.segment.meta.sequence)
                    }
                    PushItem::Control(ControlEvent::Live(LiveEvent::RenditionDropped { stream, .. })) => (stream, 3, 0),
                    PushItem::Control(ControlEvent::Live(LiveEvent::Ended { stream, .. })) => (stream, 4, 0),
                    PushItem::Part(_)
                    | PushItem::Thumbnail(_)
                    | PushItem::Control(
                        ControlEvent::Synced { .. }
                        | ControlEvent::Live(LiveEvent::Segment(_) | LiveEvent::Part(_) | LiveEvent::Thumbnail(_)),
                    ) => unreachable!(),
                };
                // Streams do not interleave.
                if finished.last() != Some(s) {
                    prop_assert!(!finished.contains(s));
                    finished.push(s.clone());
                }
                let last = phase.entry(s.clone()).or_insert((0, 0));
                prop_assert!(rank >= last.0, "{:?}", describe(&items));
                if rank == 2 && last.0 == 2 {
                    prop_assert!(seq >= last.1);
                }
                *last = (rank, seq);
            }
        }
    }
}

//! One broadcast node's queue of pushes: the distributor puts, the node's pusher takes.
//!
//! The distributor must never wait for a node, so putting never blocks: a full queue is
//! dropped whole and the node is marked for a resync, and live events for it are skipped
//! until then (the resync's snapshot covers them). Once the pusher has finished the
//! request it had in flight and finds the queue empty, it asks the distributor for the
//! resync once; the distributor answers by putting the snapshot and `Synced` at the head of
//! an empty queue. The snapshot does not count against the limit until its `Synced` has
//! been taken, so a window larger than the limit cannot overflow on its own.
//!
//! LL-HLS parts give way first: a part is queued only while the queue is under half its
//! limit, and dropped (counted) otherwise, so a slow node loses parts — which its segments
//! make up for — well before it loses its queue. A segment queued takes out the parts of
//! earlier segments still waiting: they are stale (an edge drops parts of a segment before
//! its last), and pushing them after a stall would only delay what follows. Its own parts
//! stay, ahead of it: an edge still lists a late part of its last segment, and every edge
//! must list the same parts (a cache in front takes any edge's answer for all of them).
//!
//! [`QueueState`] is the bookkeeping, plain and tested here; [`NodeQueue`] adds the lock
//! and the wake-up.

use std::collections::VecDeque;

use domain::push_protocol::ControlEvent;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::snapshot::PushItem;

/// Whether (and where in) a resync a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resync {
    /// In step with live events.
    No,
    /// Its queue overflowed and was dropped; waiting for its in-flight request to finish.
    Pending,
    /// The pusher asked the distributor for the snapshot.
    Requested,
}

/// What [`QueueState::put`] did with a live item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    /// Queued.
    Queued,
    /// The queue was full: it was dropped, and the node will be resynced.
    Overflowed,
    /// Skipped: a resync is under way, whose snapshot covers the item.
    Skipped,
    /// A part was dropped: the queue is too full to spend it on parts.
    PartDropped,
}

/// What the pusher gets next.
#[derive(Debug)]
pub(crate) enum Take {
    /// Send this.
    Item(PushItem),
    /// The queue is drained after an overflow: ask the distributor for a resync.
    NeedSync,
    /// Nothing now.
    Empty,
    /// Closed and drained: stop.
    Closed,
}

/// The bookkeeping of one node's queue.
#[derive(Debug)]
pub(crate) struct QueueState {
    items: VecDeque<PushItem>,
    limit: usize,
    /// Queued snapshot items still ahead of their `Synced`, on top of `limit`.
    allowance: usize,
    resync: Resync,
    closed: bool,
}

impl QueueState {
    /// An empty queue of at most `limit` live items (at least one).
    pub(crate) fn new(limit: usize) -> Self {
        QueueState {
            items: VecDeque::new(),
            limit: limit.max(1),
            allowance: 0,
            resync: Resync::No,
            closed: false,
        }
    }

    /// Queues a live item without ever blocking.
    pub(crate) fn put(&mut self, item: PushItem) -> Put {
        if self.resync != Resync::No || self.closed {
            return Put::Skipped;
        }
        if matches!(item, PushItem::Part(_)) && 2 * self.items.len() >= self.limit + self.allowance
        {
            return Put::PartDropped;
        }
        if let PushItem::Thumbnail(t) = &item {
            // A thumbnail gives way like a part (the next one is seconds away), and takes
            // the place of an older one of its stream still waiting.
            if 2 * self.items.len() >= self.limit + self.allowance {
                return Put::Skipped;
            }
            let stream = &t.thumbnail.meta.stream;
            self.items.retain(
                |queued| !matches!(queued, PushItem::Thumbnail(q) if &q.thumbnail.meta.stream == stream),
            );
        }
        if let PushItem::Segment { held, .. } = &item {
            // Parts of earlier segments still queued are stale (an edge would drop them as
            // late), so they go rather than delay what follows. The segment's own stay: an
            // edge that lists its other parts lists these too, late.
            let meta = &held.segment.meta;
            self.items.retain(|queued| match queued {
                PushItem::Part(p) => {
                    p.meta.sequence >= meta.sequence
                        || p.meta.stream != meta.stream
                        || p.meta.rendition != meta.rendition
                }
                _ => true,
            });
        }
        if self.items.len() >= self.limit + self.allowance {
            self.items.clear();
            self.allowance = 0;
            self.resync = Resync::Pending;
            return Put::Overflowed;
        }
        self.items.push_back(item);
        Put::Queued
    }

    /// Whether the pusher asked for a resync that has not been given yet.
    pub(crate) fn sync_requested(&self) -> bool {
        self.resync == Resync::Requested
    }

    /// Starts the queue over with `items` (a snapshot ending in `Synced`): what a new
    /// member gets first, and the answer to a resync request.
    pub(crate) fn sync(&mut self, items: Vec<PushItem>) {
        self.items.clear();
        self.allowance = items.len();
        self.items.extend(items);
        self.resync = Resync::No;
    }

    /// The next thing for the pusher to do.
    pub(crate) fn take(&mut self) -> Take {
        if let Some(item) = self.items.pop_front() {
            if matches!(item, PushItem::Control(ControlEvent::Synced { .. })) {
                self.allowance = 0;
            }
            return Take::Item(item);
        }
        if self.closed {
            return Take::Closed;
        }
        if self.resync == Resync::Pending {
            self.resync = Resync::Requested;
            return Take::NeedSync;
        }
        Take::Empty
    }

    /// No more items will come: the pusher stops once it has sent what is queued.
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Queued items.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.items.len()
    }
}

/// [`QueueState`] shared between the distributor and one pusher.
#[derive(Debug)]
pub(crate) struct NodeQueue {
    state: Mutex<QueueState>,
    /// Wakes the pusher (one waiter, so a stored permit is never lost).
    ready: Notify,
}

impl NodeQueue {
    /// An empty queue of at most `limit` live items.
    pub(crate) fn new(limit: usize) -> Self {
        NodeQueue {
            state: Mutex::new(QueueState::new(limit)),
            ready: Notify::new(),
        }
    }

    /// See [`QueueState::put`].
    pub(crate) fn put(&self, item: PushItem) -> Put {
        let put = self.state.lock().put(item);
        if put == Put::Queued {
            self.ready.notify_one();
        }
        put
    }

    /// See [`QueueState::sync_requested`].
    pub(crate) fn sync_requested(&self) -> bool {
        self.state.lock().sync_requested()
    }

    /// See [`QueueState::sync`].
    pub(crate) fn sync(&self, items: Vec<PushItem>) {
        self.state.lock().sync(items);
        self.ready.notify_one();
    }

    /// See [`QueueState::close`].
    pub(crate) fn close(&self) {
        self.state.lock().close();
        self.ready.notify_one();
    }

    /// Waits for the next thing to do: an item, a resync to ask for, or the end.
    pub(crate) async fn next(&self) -> Take {
        loop {
            match self.state.lock().take() {
                Take::Empty => {}
                other => return other,
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{LiveEvent, NodeId, SessionId, StreamName};
    use proptest::prelude::*;

    use super::*;

    fn event(n: u64) -> PushItem {
        PushItem::Control(ControlEvent::Live(LiveEvent::SessionStarted {
            stream: StreamName::new("s").expect("valid"),
            session: SessionId(n),
            private: false,
            record: true,
        }))
    }

    fn synced() -> PushItem {
        PushItem::Control(ControlEvent::Synced {
            ingest: NodeId::new("ingest1").expect("valid"),
        })
    }

    fn session_of(take: Take) -> Option<u64> {
        match take {
            Take::Item(PushItem::Control(ControlEvent::Live(LiveEvent::SessionStarted {
                session,
                ..
            }))) => Some(session.0),
            _ => None,
        }
    }

    #[test]
    fn overflow_drops_the_queue_and_resyncs_once_drained() {
        let mut q = QueueState::new(2);
        assert_eq!(q.put(event(1)), Put::Queued);
        assert_eq!(q.put(event(2)), Put::Queued);
        assert_eq!(q.put(event(3)), Put::Overflowed);
        assert_eq!(q.len(), 0);
        assert_eq!(q.put(event(4)), Put::Skipped);
        // Drained (its in-flight request done): ask once.
        assert!(matches!(q.take(), Take::NeedSync));
        assert!(q.sync_requested());
        assert!(matches!(q.take(), Take::Empty));
        assert_eq!(q.put(event(5)), Put::Skipped);
        // The snapshot may exceed the limit; live items then queue behind it.
        q.sync(vec![event(10), event(11), event(12), synced()]);
        assert!(!q.sync_requested());
        assert_eq!(q.put(event(6)), Put::Queued);
        assert_eq!(q.put(event(7)), Put::Queued);
        assert_eq!(session_of(q.take()), Some(10));
        assert_eq!(session_of(q.take()), Some(11));
        assert_eq!(session_of(q.take()), Some(12));
        assert!(matches!(
            q.take(),
            Take::Item(PushItem::Control(ControlEvent::Synced { .. }))
        ));
        assert_eq!(session_of(q.take()), Some(6));
        assert_eq!(session_of(q.take()), Some(7));
        assert!(matches!(q.take(), Take::Empty));
    }

    fn part() -> PushItem {
        part_of(0)
    }

    fn part_of(sequence: u64) -> PushItem {
        PushItem::Part(std::sync::Arc::new(domain::Part {
            meta: domain::PartMeta {
                stream: StreamName::new("s").expect("valid"),
                rendition: domain::RenditionName::new("src").expect("valid"),
                session: SessionId(1),
                sequence,
                index: 0,
                discontinuity_sequence: 0,
                independent: true,
                duration: std::time::Duration::from_millis(333),
                program_date_time_ms: 1_800_000_000_000,
            },
            bytes: bytes::Bytes::new(),
        }))
    }

    #[test]
    fn parts_give_way_before_the_queue_overflows() {
        let mut q = QueueState::new(4);
        assert_eq!(q.put(part()), Put::Queued);
        assert_eq!(q.put(event(1)), Put::Queued);
        // Half full: parts are dropped, other items still queue up to the limit.
        assert_eq!(q.put(part()), Put::PartDropped);
        assert_eq!(q.put(event(2)), Put::Queued);
        assert_eq!(q.put(event(3)), Put::Queued);
        assert_eq!(q.put(part()), Put::PartDropped);
        assert_eq!(q.len(), 4);
        assert!(matches!(q.take(), Take::Item(PushItem::Part(_))));
        assert!(matches!(q.take(), Take::Item(_)));
        assert!(matches!(q.take(), Take::Item(_)));
        assert_eq!(q.put(part()), Put::Queued);
    }

    #[test]
    fn a_queued_segment_takes_the_stale_parts_of_earlier_segments_out() {
        let mut q = QueueState::new(16);
        for sequence in [4, 5, 5, 6] {
            assert_eq!(q.put(part_of(sequence)), Put::Queued);
        }
        let segment = LiveEvent::Segment(domain::Segment {
            meta: domain::SegmentMeta {
                stream: StreamName::new("s").expect("valid"),
                rendition: domain::RenditionName::new("src").expect("valid"),
                session: SessionId(1),
                sequence: 5,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: std::time::Duration::from_secs(2),
                start_pts_90k: 0,
            },
            bytes: bytes::Bytes::new(),
        });
        let item = PushItem::from_live(segment).expect("an item");
        assert_eq!(q.put(item), Put::Queued);
        // The part of 4 went; those of 5 (its own, which every edge must list alike) and of
        // 6 (not yet in a segment) stay, before it.
        let sequences: Vec<String> = std::iter::from_fn(|| match q.take() {
            Take::Item(PushItem::Part(p)) => Some(format!("part {}", p.meta.sequence)),
            Take::Item(PushItem::Segment { held, .. }) => {
                Some(format!("segment {}", held.segment.meta.sequence))
            }
            _ => None,
        })
        .collect();
        assert_eq!(sequences, ["part 5", "part 5", "part 6", "segment 5"]);
    }

    #[test]
    fn closing_drains_first() {
        let mut q = QueueState::new(4);
        q.put(event(1));
        q.close();
        assert_eq!(q.put(event(2)), Put::Skipped);
        assert_eq!(session_of(q.take()), Some(1));
        assert!(matches!(q.take(), Take::Closed));
    }

    proptest! {
        /// Whatever happens, the queue never holds more than its limit plus the snapshot,
        /// and live items come out in the order they went in.
        #[test]
        fn bounded_and_in_order(limit in 1usize..8, ops in proptest::collection::vec(0u8..10, 0..300)) {
            let mut q = QueueState::new(limit);
            let mut next = 0u64;
            let mut last_out = None;
            let mut snapshot_len = 0;
            for op in ops {
                match op {
                    0..=5 => {
                        next += 1;
                        q.put(event(next));
                    }
                    6..=8 => match q.take() {
                        // Live items queued behind the snapshot may still exceed the
                        // limit after `Synced`; no new one is queued until they drain.
                        Take::Item(PushItem::Control(ControlEvent::Synced { .. })) => {
                            last_out = None;
                        }
                        Take::NeedSync => {
                            prop_assert!(q.sync_requested());
                            snapshot_len = 3;
                            q.sync(vec![event(0), event(0), synced()]);
                        }
                        t => {
                            if let Some(n) = session_of(t) {
                                if n != 0 {
                                    prop_assert!(last_out < Some(n));
                                    last_out = Some(n);
                                }
                            }
                        }
                    },
                    _ => {}
                }
                prop_assert!(q.len() <= limit + snapshot_len);
            }
        }
    }
}

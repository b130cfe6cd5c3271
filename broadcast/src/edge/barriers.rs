//! Control events queued behind the signature gate, sans-IO.
//!
//! The ingest sends a stream's control events (session start, rendition, drop, end) and its
//! segments over one ordered path, but on an edge the segments wait in the gate for their
//! signatures while the events (already verified) do not. So an event that arrives while
//! segments of its stream are still held waits, as a barrier, until every one of them is
//! published or given up on; an end must not overtake the last segments. A segment pushed
//! after the event (beyond what the barrier waits for) must not overtake it either: it
//! releases the barrier first.
//!
//! [`Barriers`] keeps that queue: the edge tells it what the gate holds when an event
//! arrives, and what the gate decides (before and after applying each output), and it hands
//! back the events to apply now, in the order they arrived per stream. Nothing here
//! applies anything or reads a clock.

use std::collections::{HashMap, VecDeque};

use domain::{LiveEvent, RenditionName, StreamName};

/// An event that belongs to one stream.
pub(crate) trait OfStream {
    /// Its stream.
    fn stream(&self) -> &StreamName;
}

impl OfStream for LiveEvent {
    fn stream(&self) -> &StreamName {
        LiveEvent::stream(self)
    }
}

/// The queue of events waiting behind the gate.
#[derive(Debug)]
pub(crate) struct Barriers<E> {
    queue: VecDeque<Barrier<E>>,
}

/// An event that waits until, in every rendition of its stream, the segments that were
/// held when it arrived are published or given up on.
#[derive(Debug)]
struct Barrier<E> {
    event: E,
    /// Rendition → the highest sequence number it waits for.
    waits: HashMap<RenditionName, u64>,
    /// When it arrived (the caller's clock, milliseconds).
    since_ms: u64,
}

impl<E> Default for Barriers<E> {
    fn default() -> Self {
        Barriers {
            queue: VecDeque::new(),
        }
    }
}

impl<E: OfStream> Barriers<E> {
    /// An event arrives; `held` is what the gate holds for its stream (rendition, highest
    /// sequence). Returns it if it may be applied now: nothing held and nothing of its
    /// stream queued before it.
    pub(crate) fn arrive(
        &mut self,
        event: E,
        held: Vec<(RenditionName, u64)>,
        now_ms: u64,
    ) -> Option<E> {
        if held.is_empty() && !self.holds(event.stream()) {
            return Some(event);
        }
        self.queue.push_back(Barrier {
            event,
            waits: held.into_iter().collect(),
            since_ms: now_ms,
        });
        None
    }

    /// Whether events of `stream` are queued.
    pub(crate) fn holds(&self, stream: &StreamName) -> bool {
        self.queue.iter().any(|b| b.event.stream() == stream)
    }

    /// Before the gate's output for `stream`/`rendition`/`sequence` is applied: the events
    /// it would overtake, to apply first, in order.
    pub(crate) fn before(
        &mut self,
        stream: &StreamName,
        rendition: &RenditionName,
        sequence: u64,
    ) -> Vec<E> {
        let mut out = Vec::new();
        while let Some(pos) = self.queue.iter().position(|b| b.event.stream() == stream) {
            let overtakes = self.queue[pos]
                .waits
                .get(rendition)
                .is_none_or(|max| sequence > *max);
            if !overtakes {
                break;
            }
            if let Some(b) = self.queue.remove(pos) {
                out.push(b.event);
            }
        }
        out
    }

    /// After the gate's output for `stream`/`rendition`/`sequence` was applied (published
    /// or given up on): it no longer holds the barriers that waited for it. Returns the
    /// events that wait for nothing any more, in order.
    pub(crate) fn resolved(
        &mut self,
        stream: &StreamName,
        rendition: &RenditionName,
        sequence: u64,
    ) -> Vec<E> {
        for b in self.queue.iter_mut().filter(|b| b.event.stream() == stream) {
            if b.waits.get(rendition).is_some_and(|max| sequence >= *max) {
                b.waits.remove(rendition);
            }
        }
        self.ready()
    }

    /// The events at the front of each stream's queue that wait for nothing any more, in
    /// order.
    pub(crate) fn ready(&mut self) -> Vec<E> {
        let mut out = Vec::new();
        let mut blocked: Vec<StreamName> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            let stream = self.queue[i].event.stream();
            if !blocked.contains(stream) && self.queue[i].waits.is_empty() {
                if let Some(b) = self.queue.remove(i) {
                    out.push(b.event);
                }
                continue;
            }
            blocked.push(stream.clone());
            i += 1;
        }
        out
    }

    /// Events queued longer than `patience` (everything a barrier waits for is resolved
    /// within the gate's own limits, so one still here has waited for something that will
    /// not come): released rather than kept forever, in order.
    pub(crate) fn expire(&mut self, now_ms: u64, patience: u64) -> Vec<E> {
        let mut out = Vec::new();
        while self
            .queue
            .front()
            .is_some_and(|b| now_ms.saturating_sub(b.since_ms) > patience)
        {
            if let Some(b) = self.queue.pop_front() {
                out.push(b.event);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A test event: its stream and a number in arrival order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Ev(StreamName, usize);

    impl OfStream for Ev {
        fn stream(&self) -> &StreamName {
            &self.0
        }
    }

    fn s(name: &str) -> StreamName {
        StreamName::new(name).expect("valid")
    }

    fn r(name: &str) -> RenditionName {
        RenditionName::new(name).expect("valid")
    }

    #[test]
    fn an_event_with_nothing_held_goes_at_once() {
        let mut b = Barriers::default();
        assert_eq!(b.arrive(Ev(s("a"), 0), vec![], 0), Some(Ev(s("a"), 0)));
        assert!(!b.holds(&s("a")));
    }

    #[test]
    fn an_end_waits_for_the_segments_held_before_it() {
        let mut b = Barriers::default();
        assert_eq!(b.arrive(Ev(s("a"), 0), vec![(r("src"), 7)], 0), None);
        assert!(b.holds(&s("a")));
        // Segment 6 is published: not yet.
        assert!(b.before(&s("a"), &r("src"), 6).is_empty());
        assert!(b.resolved(&s("a"), &r("src"), 6).is_empty());
        // 7 given up on: now.
        assert!(b.before(&s("a"), &r("src"), 7).is_empty());
        assert_eq!(b.resolved(&s("a"), &r("src"), 7), vec![Ev(s("a"), 0)]);
        assert!(!b.holds(&s("a")));
    }

    #[test]
    fn a_later_segment_releases_the_barrier_before_it_is_applied() {
        let mut b = Barriers::default();
        b.arrive(Ev(s("a"), 0), vec![(r("src"), 7)], 0);
        assert_eq!(b.before(&s("a"), &r("src"), 8), vec![Ev(s("a"), 0)]);
        // Another rendition the barrier did not wait for overtakes it too.
        b.arrive(Ev(s("a"), 1), vec![(r("src"), 9)], 0);
        assert_eq!(b.before(&s("a"), &r("360p"), 0), vec![Ev(s("a"), 1)]);
    }

    #[test]
    fn events_of_one_stream_keep_their_order_and_others_do_not_wait() {
        let mut b = Barriers::default();
        b.arrive(Ev(s("a"), 0), vec![(r("src"), 3)], 0);
        // Queued behind the first, though nothing more is held.
        assert_eq!(b.arrive(Ev(s("a"), 1), vec![], 0), None);
        assert_eq!(b.arrive(Ev(s("b"), 2), vec![], 0), Some(Ev(s("b"), 2)));
        assert_eq!(
            b.resolved(&s("a"), &r("src"), 3),
            vec![Ev(s("a"), 0), Ev(s("a"), 1)]
        );
    }

    #[test]
    fn a_barrier_left_waiting_expires_after_its_patience() {
        let mut b = Barriers::default();
        b.arrive(Ev(s("a"), 0), vec![(r("src"), 3)], 100);
        assert!(b.expire(1100, 1000).is_empty());
        assert_eq!(b.expire(1101, 1000), vec![Ev(s("a"), 0)]);
    }

    /// One step of a run: an event arriving (holding up to `held`), or the gate deciding
    /// on a segment.
    #[derive(Debug, Clone)]
    enum Step {
        Event { stream: u8, held: Option<u64> },
        Segment { stream: u8, sequence: u64 },
        Expire,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..2, proptest::option::of(0u64..6))
                .prop_map(|(stream, held)| Step::Event { stream, held }),
            (0u8..2, 0u64..8).prop_map(|(stream, sequence)| Step::Segment { stream, sequence }),
            Just(Step::Expire),
        ]
    }

    proptest! {
        /// Every event comes out exactly once (the last expiry flushes the queue), those
        /// of one stream in arrival order, and none after a segment of its stream beyond
        /// what it waited for was applied.
        #[test]
        fn events_come_out_once_in_order_and_never_after_what_follows_them(
            steps in proptest::collection::vec(step(), 0..60),
        ) {
            let streams = [s("a"), s("b")];
            let rendition = r("src");
            let mut b = Barriers::default();
            let mut out: Vec<Ev> = Vec::new();
            // Per event: the highest sequence it waited for (None: nothing).
            let mut waited: Vec<Option<u64>> = Vec::new();
            let mut now = 0;
            for step in steps {
                now += 10;
                match step {
                    Step::Event { stream, held } => {
                        let id = waited.len();
                        waited.push(held);
                        let held = held.map(|h| vec![(rendition.clone(), h)]).unwrap_or_default();
                        let ev = Ev(streams[usize::from(stream)].clone(), id);
                        out.extend(b.arrive(ev, held, now));
                    }
                    Step::Segment { stream, sequence } => {
                        let name = &streams[usize::from(stream)];
                        out.extend(b.before(name, &rendition, sequence));
                        // The segment is applied now: the first event of this stream
                        // still queued (the rest follow it) waited for it or a later one.
                        if let Some(first) = b.queue.iter().find(|q| q.event.stream() == name) {
                            let max = waited[first.event.1];
                            prop_assert!(max.is_some_and(|m| sequence <= m),
                                "segment {} overtook event {} (waited for {:?})", sequence, first.event.1, max);
                        }
                        out.extend(b.resolved(name, &rendition, sequence));
                    }
                    Step::Expire => out.extend(b.expire(now, 25)),
                }
            }
            out.extend(b.expire(u64::MAX, 0));
            let mut ids: Vec<usize> = out.iter().map(|e| e.1).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, (0..waited.len()).collect::<Vec<_>>());
            for name in &streams {
                let order: Vec<usize> = out.iter().filter(|e| &e.0 == name).map(|e| e.1).collect();
                prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{:?}", order);
            }
        }
    }
}

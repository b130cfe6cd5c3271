//! The spool's queue, pure: what is waiting to be archived, in the order it was offered,
//! bounded in bytes.
//!
//! Every item names a file on the node's disk and the archive key it goes to, with its
//! size and the moment it may be uploaded (its stream's writer delay, see `mod.rs`). The
//! queue counts the bytes of every item it holds, those being uploaded included; an offer
//! that would take it past its bound drops the oldest waiting items first, then the
//! oldest being uploaded (a store that hangs must not keep the bound for itself: what it
//! may still take is counted as dropped, and the queue forgets it), and drops the new item
//! itself only if it is larger than the bound. Items of one
//! stream share their delay, so they are taken in the order they went in: a recording's
//! statements before their media, its media before its playlists, `recording.json` last.
//!
//! Several items may be in flight at once (a store answers each request after a round
//! trip; one at a time, a node could not keep up with many streams). Create-only items
//! (media, statements) are independent; a replacing one (a playlist, `recording.json`) is
//! taken only when nothing else is in flight, and nothing else is taken while it is: so a
//! recording's playlists and its `recording.json`, which lists it, reach the archive after
//! every file they name.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use archive::ArchiveKey;

/// How an item is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Create-only (`put_if_absent`, after a `HEAD`): the same bytes on every node (a
    /// segment, an init segment, a signed statement). The first writer's copy stays.
    Once,
    /// Replacing (`put`): a playlist or `recording.json`, which a recording that carries
    /// on after a restart writes again, longer.
    Replace,
}

/// One file waiting to be archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Where it goes.
    pub(crate) key: ArchiveKey,
    /// The file on this node's disk holding its bytes.
    pub(crate) path: PathBuf,
    /// Its size in bytes, as offered.
    pub(crate) size: u64,
    /// Not before this moment.
    pub(crate) due: Instant,
    /// How it is written.
    pub(crate) write: Write,
    /// Whether the local file goes once the archive has it (a segment or its statement:
    /// the spool's bulk). Init segments, playlists and `recording.json` stay on disk,
    /// small, for the recorder that reads them.
    pub(crate) remove_after: bool,
}

/// What is waiting, bounded in bytes.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The most bytes held (waiting and in flight).
    limit: u64,
    /// Waiting, oldest first.
    waiting: VecDeque<Item>,
    /// Bytes of the waiting items and of those in flight.
    bytes: u64,
    /// In flight, oldest taken first.
    in_flight: VecDeque<Item>,
}

impl Queue {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            waiting: VecDeque::new(),
            bytes: 0,
            in_flight: VecDeque::new(),
        }
    }

    /// Bytes held, those in flight included.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether nothing is waiting or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_empty()
    }

    /// Queues `item`; returns what was dropped to keep within the bound (the oldest
    /// waiting items, then the oldest in flight, or `item` itself when it is larger than
    /// the bound).
    pub(crate) fn offer(&mut self, item: Item) -> Vec<Item> {
        let mut dropped = Vec::new();
        if item.size > self.limit {
            dropped.push(item);
            return dropped;
        }
        while self.bytes + item.size > self.limit {
            let Some(oldest) = self
                .waiting
                .pop_front()
                .or_else(|| self.in_flight.pop_front())
            else {
                break;
            };
            self.bytes -= oldest.size;
            dropped.push(oldest);
        }
        self.bytes += item.size;
        self.waiting.push_back(item);
        dropped
    }

    /// The oldest item due at `now`, taken out to be uploaded (its bytes still counted
    /// until [`Queue::done`] or [`Queue::retry`]), while fewer than `most` are in flight;
    /// else when the next one is due (`None`: when one in flight is back). A replacing
    /// item waits until nothing is in flight, and nothing is taken while one is.
    pub(crate) fn take_due(&mut self, now: Instant, most: usize) -> Result<Item, Option<Instant>> {
        let replacing = self.in_flight.iter().any(|i| i.write == Write::Replace);
        if replacing || self.in_flight.len() >= most {
            return Err(None);
        }
        let Some(index) = self.waiting.iter().position(|i| i.due <= now) else {
            return Err(self.waiting.iter().map(|i| i.due).min());
        };
        if self.waiting[index].write == Write::Replace && !self.in_flight.is_empty() {
            return Err(None);
        }
        let Some(item) = self.waiting.remove(index) else {
            return Err(None);
        };
        self.in_flight.push_back(item.clone());
        Ok(item)
    }

    /// `item`, taken, is archived (or given up on).
    pub(crate) fn done(&mut self, item: &Item) {
        if self.back(item) {
            self.bytes -= item.size;
        }
    }

    /// `item`, taken, could not be archived yet: it goes back to the front.
    pub(crate) fn retry(&mut self, item: Item) {
        if self.back(&item) {
            self.waiting.push_front(item);
        }
    }

    /// `item` is no longer in flight; false if it was not (dropped meanwhile).
    fn back(&mut self, item: &Item) -> bool {
        match self.in_flight.iter().position(|i| i == item) {
            Some(index) => {
                self.in_flight.remove(index);
                true
            }
            None => false,
        }
    }

    /// Every waiting item is due now (the node is stopping and archives what it can).
    pub(crate) fn hurry(&mut self, now: Instant) {
        for item in &mut self.waiting {
            item.due = item.due.min(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use archive::RecordingFile;
    use domain::paths::MediaFile;
    use domain::{RenditionName, SessionId, StreamName};
    use proptest::prelude::*;
    use std::time::Duration;

    fn item(stream: &str, n: u64, size: u64, due: Instant) -> Item {
        let stream = StreamName::new(stream).expect("valid");
        let r = RenditionName::new("src").expect("valid");
        Item {
            key: ArchiveKey::recording(
                &stream,
                SessionId(1),
                RecordingFile::Media(r, MediaFile::Fragment(n)),
            )
            .expect("valid"),
            path: PathBuf::from(format!("{n}.m4s")),
            size,
            due,
            write: Write::Once,
            remove_after: true,
        }
    }

    fn replacing(stream: &str, due: Instant) -> Item {
        let stream = StreamName::new(stream).expect("valid");
        Item {
            key: ArchiveKey::recording(&stream, SessionId(1), RecordingFile::Info).expect("valid"),
            path: PathBuf::from("recording.json"),
            size: 1,
            due,
            write: Write::Replace,
            remove_after: false,
        }
    }

    #[test]
    fn drops_the_oldest_past_the_bound_in_flight_last() {
        let now = Instant::now();
        let mut q = Queue::new(10);
        assert!(q.offer(item("a", 0, 4, now)).is_empty());
        let first = q.take_due(now, 4).expect("due");
        assert_eq!(first.key, item("a", 0, 4, now).key);
        assert!(q.offer(item("a", 1, 4, now)).is_empty());
        let dropped = q.offer(item("a", 2, 4, now));
        assert_eq!(
            dropped,
            vec![item("a", 1, 4, now)],
            "the oldest waiting one goes"
        );
        assert_eq!(q.bytes(), 8);
        let newest = q.offer(item("a", 3, 7, now));
        assert_eq!(
            newest,
            vec![item("a", 2, 4, now), first.clone()],
            "the rest waiting goes, then the one in flight: the newest stays"
        );
        assert_eq!(q.bytes(), 7);
        q.done(&first);
        assert_eq!(q.bytes(), 7, "a dropped item coming back changes nothing");
        assert_eq!(
            q.offer(item("a", 4, 11, now)).len(),
            1,
            "larger than the bound"
        );
    }

    #[test]
    fn waits_for_the_due_time_and_retries_from_the_front() {
        let now = Instant::now();
        let later = now + Duration::from_secs(3);
        let mut q = Queue::new(100);
        q.offer(item("b", 0, 1, later));
        q.offer(item("a", 0, 1, now));
        q.offer(item("a", 1, 1, now));
        let a = q.take_due(now, 1).expect("a is due");
        assert_eq!(q.take_due(now, 1), Err(None), "at most one in flight");
        let a1 = q.take_due(now, 2).expect("a second one, when two may be");
        q.retry(a.clone());
        q.done(&a1);
        assert_eq!(q.take_due(now, 2).expect("again"), a);
        q.done(&a);
        assert_eq!(q.take_due(now, 2), Err(Some(later)));
        q.hurry(now);
        let b = q.take_due(now, 2).expect("hurried");
        q.done(&b);
        assert!(q.is_empty());
    }

    #[test]
    fn a_replacing_item_goes_alone_after_what_came_before() {
        let now = Instant::now();
        let mut q = Queue::new(100);
        q.offer(item("a", 0, 1, now));
        q.offer(replacing("a", now));
        q.offer(item("b", 0, 1, now));
        let media = q.take_due(now, 8).expect("media");
        assert_eq!(
            q.take_due(now, 8),
            Err(None),
            "recording.json waits for the media in flight, and what follows waits for it"
        );
        q.done(&media);
        let info = q.take_due(now, 8).expect("alone now");
        assert_eq!(info.write, Write::Replace);
        assert_eq!(q.take_due(now, 8), Err(None), "nothing beside it");
        q.retry(info.clone());
        assert_eq!(q.take_due(now, 8).expect("again, first"), info);
        q.done(&info);
        assert!(q.take_due(now, 8).is_ok());
    }

    proptest! {
        /// Whatever is offered, taken, retried or finished, up to three in flight (some of
        /// them dropped meanwhile): the bytes held never pass the bound and equal what is
        /// held; one stream's items are
        /// first taken in offer order; a replacing item is taken only with nothing in
        /// flight, and nothing is taken beside it.
        #[test]
        fn bounded_in_order_and_replacing_alone(ops in proptest::collection::vec((0u8..5, 0u64..40, 0u8..3), 1..200)) {
            let now = Instant::now();
            let mut q = Queue::new(100);
            let mut seq = [0u64; 3];
            let mut last_first_take = [None::<u64>; 3];
            let mut in_flight: Vec<Item> = Vec::new();
            let mut retried: Vec<Item> = Vec::new();
            let names = ["a", "b", "c"];
            for (op, size, s) in ops {
                let s = usize::from(s);
                let due = now + Duration::from_secs(s as u64);
                match op {
                    0 => {
                        q.offer(item(names[s], seq[s], size, due));
                        seq[s] += 1;
                    }
                    1 => {
                        if size % 4 == 0 {
                            q.offer(replacing(names[s], due));
                        } else {
                            q.offer(item(names[s], seq[s], size, due));
                            seq[s] += 1;
                        }
                    }
                    2 => {
                        let before = q.in_flight.len();
                        let alone = q.in_flight.iter().any(|i| i.write == Write::Replace);
                        if let Ok(i) = q.take_due(now + Duration::from_secs(5), 3) {
                            prop_assert!(before < 3, "at most three in flight");
                            prop_assert!(!alone, "nothing beside a replacing item");
                            if i.write == Write::Replace {
                                prop_assert_eq!(before, 0, "a replacing item goes alone");
                            } else if !retried.contains(&i) {
                                if let ArchiveKey::Recording { stream, file: RecordingFile::Media(_, MediaFile::Fragment(n)), .. } = &i.key {
                                    let st = names.iter().position(|x| stream.as_str() == *x).expect("ours");
                                    prop_assert!(last_first_take[st].is_none_or(|l| l < *n), "in order");
                                    last_first_take[st] = Some(*n);
                                }
                            }
                            in_flight.push(i);
                        }
                    }
                    _ => {
                        if !in_flight.is_empty() {
                            let i = in_flight.remove(size as usize % in_flight.len());
                            if op == 3 {
                                q.done(&i);
                            } else {
                                retried.push(i.clone());
                                q.retry(i);
                            }
                        }
                    }
                }
                prop_assert!(q.bytes() <= 100);
                let held: u64 = q.waiting.iter().chain(&q.in_flight).map(|i| i.size).sum();
                prop_assert_eq!(q.bytes(), held);
                prop_assert!(q.in_flight.iter().all(|i| in_flight.contains(i)), "the queue's in flight were taken");
            }
        }
    }
}

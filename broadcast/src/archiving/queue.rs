//! The spool's queue, pure: what is waiting to be archived, in the order it was offered,
//! bounded in bytes.
//!
//! Every item names a file on the node's disk and the archive key it goes to, with its
//! size and the moment it may be uploaded (its stream's writer delay, see `mod.rs`). The
//! queue counts the bytes of every item it holds, the one being uploaded included; an offer
//! that would take it past its bound drops the oldest waiting items first (never the one
//! being uploaded), and drops the new item itself if that is not enough. Items of one
//! stream share their delay, so they come out in the order they went in: a recording's
//! statements before their media, its media before its playlists, `recording.json` last.

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
    /// Bytes of the waiting items and of the one in flight.
    bytes: u64,
    /// The size of the item in flight, if one is.
    in_flight: Option<u64>,
}

impl Queue {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            waiting: VecDeque::new(),
            bytes: 0,
            in_flight: None,
        }
    }

    /// Bytes held, the item in flight included.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether nothing is waiting or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_none()
    }

    /// Queues `item`; returns what was dropped to keep within the bound (the oldest
    /// waiting items, or `item` itself when even an empty queue could not take it).
    pub(crate) fn offer(&mut self, item: Item) -> Vec<Item> {
        let mut dropped = Vec::new();
        let in_flight = self.in_flight.unwrap_or(0);
        if item.size > self.limit.saturating_sub(in_flight) {
            dropped.push(item);
            return dropped;
        }
        while self.bytes + item.size > self.limit {
            let Some(oldest) = self.waiting.pop_front() else {
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
    /// until [`Queue::done`] or [`Queue::retry`]); else when the next one is due. `None`
    /// while an item is in flight.
    pub(crate) fn take_due(&mut self, now: Instant) -> Result<Item, Option<Instant>> {
        if self.in_flight.is_some() {
            return Err(None);
        }
        let Some(index) = self.waiting.iter().position(|i| i.due <= now) else {
            return Err(self.waiting.iter().map(|i| i.due).min());
        };
        let Some(item) = self.waiting.remove(index) else {
            return Err(None);
        };
        self.in_flight = Some(item.size);
        Ok(item)
    }

    /// The item in flight is archived (or given up on).
    pub(crate) fn done(&mut self) {
        if let Some(size) = self.in_flight.take() {
            self.bytes -= size;
        }
    }

    /// The item in flight could not be archived yet: it goes back to the front.
    pub(crate) fn retry(&mut self, item: Item) {
        if self.in_flight.take().is_some() {
            self.waiting.push_front(item);
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

    #[test]
    fn drops_the_oldest_past_the_bound_and_never_the_one_in_flight() {
        let now = Instant::now();
        let mut q = Queue::new(10);
        assert!(q.offer(item("a", 0, 4, now)).is_empty());
        let first = q.take_due(now).expect("due");
        assert_eq!(first.key, item("a", 0, 4, now).key);
        assert!(q.offer(item("a", 1, 4, now)).is_empty());
        let dropped = q.offer(item("a", 2, 4, now));
        assert_eq!(dropped.len(), 1, "the oldest waiting one goes");
        assert_eq!(dropped[0].size, 4);
        assert_eq!(q.bytes(), 8);
        let too_big = q.offer(item("a", 3, 7, now));
        assert_eq!(
            too_big.len(),
            1,
            "what cannot fit beside the one in flight is dropped"
        );
        q.done();
        assert_eq!(q.bytes(), 4);
    }

    #[test]
    fn waits_for_the_due_time_and_retries_from_the_front() {
        let now = Instant::now();
        let later = now + Duration::from_secs(3);
        let mut q = Queue::new(100);
        q.offer(item("b", 0, 1, later));
        q.offer(item("a", 0, 1, now));
        let a = q.take_due(now).expect("a is due");
        assert!(
            matches!(q.take_due(now), Err(None)),
            "one in flight at a time"
        );
        q.retry(a.clone());
        assert_eq!(q.take_due(now).expect("again"), a);
        q.done();
        assert_eq!(q.take_due(now), Err(Some(later)));
        q.hurry(now);
        assert!(q.take_due(now).is_ok());
        q.done();
        assert!(q.is_empty());
    }

    proptest! {
        /// Whatever is offered, taken, retried or finished: the bytes held never pass the
        /// bound, equal what is held, and one stream's items come out in offer order.
        #[test]
        fn bounded_and_in_order(ops in proptest::collection::vec((0u8..4, 0u64..40, 0u8..3), 1..200)) {
            let now = Instant::now();
            let mut q = Queue::new(100);
            let mut seq = [0u64; 3];
            let mut last_out = [None::<u64>; 3];
            let mut in_flight: Option<Item> = None;
            let names = ["a", "b", "c"];
            for (op, size, s) in ops {
                let s = usize::from(s);
                match op {
                    0 | 1 => {
                        q.offer(item(names[s], seq[s], size, now + Duration::from_secs(s as u64)));
                        seq[s] += 1;
                    }
                    2 => {
                        if in_flight.is_none() {
                            if let Ok(i) = q.take_due(now + Duration::from_secs(5)) {
                                in_flight = Some(i);
                            }
                        }
                    }
                    _ => {
                        if let Some(i) = in_flight.take() {
                            if size % 2 == 0 {
                                q.done();
                                let n = match &i.key {
                                    ArchiveKey::Recording { file: RecordingFile::Media(_, MediaFile::Fragment(n)), .. } => *n,
                                    _ => unreachable!(),
                                };
                                let st = names
                                    .iter()
                                    .position(|x| matches!(&i.key, ArchiveKey::Recording { stream, .. } if stream.as_str() == *x))
                                    .expect("one of ours");
                                prop_assert!(last_out[st].is_none_or(|l| l < n), "in order");
                                last_out[st] = Some(n);
                            } else {
                                q.retry(i);
                            }
                        }
                    }
                }
                prop_assert!(q.bytes() <= 100);
                let held: u64 = q.waiting.iter().map(|i| i.size).sum::<u64>() + q.in_flight.unwrap_or(0);
                prop_assert_eq!(q.bytes(), held);
            }
        }
    }
}

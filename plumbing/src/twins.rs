//! Sans-IO: which incoming messages are twins of one already handed over.
//!
//! A client of several brokers ([`crate::bus`]) is subscribed on each, and a publisher
//! publishes on each, so every message arrives once per broker the two share. [`Twins`]
//! lets the first copy through and drops the copies the other connections owe: when a
//! message arrives on connection `i`, it remembers that each *other connected* connection
//! owes one copy of it; a copy that pays such a debt is a twin. A debt not paid within
//! the time to live is forgotten (that broker missed it, or lags too much for its copy to
//! be recognised: it is then handed over again, which a receiver must take anyway, as it
//! takes a QoS 1 redelivery).
//!
//! Each broker delivers one publisher's messages in order, so the first copies are in
//! order too: a copy of a later message cannot come first from any broker without the
//! earlier message having come from that same broker before it. A repeated payload (a
//! presence that goes `ready`, `behind`, `ready`) is a new message, not a twin, because
//! each copy pays only one debt, the oldest.
//!
//! Messages are known by a keyed 64-bit hash of topic and payload (SipHash with a random
//! key per process): nobody who cannot read the key can make two messages collide.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// How long a copy is waited for. Two brokers hand a message on within milliseconds of
/// each other; a broker that lags behind by more than this is a broker in trouble.
pub const TWIN_WAIT: Duration = Duration::from_secs(30);

/// Most debts remembered (oldest forgotten first): about 40 bytes each.
pub const MAX_DEBTS: usize = 65_536;

/// The twin filter of one client.
#[derive(Debug)]
pub struct Twins {
    keys: RandomState,
    /// Unpaid debts by message: (debt id, connections that owe a copy, as a bit set).
    owed: HashMap<u64, VecDeque<(u64, u64)>>,
    /// Every debt in the order it was made, to forget it when it is too old.
    ages: VecDeque<(Instant, u64, u64)>,
    next_id: u64,
    wait: Duration,
    cap: usize,
}

impl Default for Twins {
    fn default() -> Self {
        Self::new(TWIN_WAIT, MAX_DEBTS)
    }
}

impl Twins {
    /// A filter that waits `wait` for a copy and remembers at most `cap` debts.
    pub fn new(wait: Duration, cap: usize) -> Self {
        Twins {
            keys: RandomState::new(),
            owed: HashMap::new(),
            ages: VecDeque::new(),
            next_id: 0,
            wait,
            cap: cap.max(1),
        }
    }

    /// The key of a message: topic and payload.
    pub fn key(&self, topic: &str, payload: &[u8]) -> u64 {
        let mut hasher = self.keys.build_hasher();
        topic.hash(&mut hasher);
        payload.hash(&mut hasher);
        hasher.finish()
    }

    /// A message `key` arrived on connection `link` (below 64) at `now`, while the
    /// connections in `connected` (a bit set) were up: true to hand it over, false for a
    /// twin of one handed over already.
    pub fn first(&mut self, key: u64, link: usize, connected: u64, now: Instant) -> bool {
        self.forget_before(now);
        let bit = 1u64.checked_shl(link as u32).unwrap_or(0);
        if let Some(debts) = self.owed.get_mut(&key) {
            if let Some(at) = debts.iter().position(|(_, owing)| owing & bit != 0) {
                let paid = &mut debts[at].1;
                *paid &= !bit;
                if *paid == 0 {
                    debts.remove(at);
                    if debts.is_empty() {
                        self.owed.remove(&key);
                    }
                }
                return false;
            }
        }
        let owing = connected & !bit;
        if owing != 0 {
            let id = self.next_id;
            self.next_id += 1;
            self.owed.entry(key).or_default().push_back((id, owing));
            self.ages.push_back((now, key, id));
            while self.ages.len() > self.cap {
                self.forget_oldest();
            }
        }
        true
    }

    /// Debts waiting for a copy.
    pub fn len(&self) -> usize {
        self.owed.values().map(VecDeque::len).sum()
    }

    /// Whether no copy is awaited.
    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .ages
            .front()
            .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > self.wait)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        let Some((_, key, id)) = self.ages.pop_front() else {
            return;
        };
        if let Some(debts) = self.owed.get_mut(&key) {
            debts.retain(|(debt, _)| *debt != id);
            if debts.is_empty() {
                self.owed.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOTH: u64 = 0b11;

    #[test]
    fn the_second_copy_is_a_twin_and_a_third_is_new() {
        let now = Instant::now();
        let mut twins = Twins::default();
        let k = twins.key("t", b"p");
        assert!(twins.first(k, 0, BOTH, now));
        assert!(!twins.first(k, 1, BOTH, now));
        assert!(twins.is_empty());
        // Published again: a new message.
        assert!(twins.first(k, 1, BOTH, now));
        assert!(!twins.first(k, 0, BOTH, now));
    }

    #[test]
    fn a_copy_from_the_same_connection_is_new() {
        let now = Instant::now();
        let mut twins = Twins::default();
        let k = twins.key("t", b"p");
        assert!(twins.first(k, 0, BOTH, now));
        assert!(twins.first(k, 0, BOTH, now));
        assert_eq!(twins.len(), 2);
    }

    #[test]
    fn a_connection_that_was_down_owes_nothing() {
        let now = Instant::now();
        let mut twins = Twins::default();
        let k = twins.key("t", b"p");
        assert!(twins.first(k, 0, 0b01, now));
        assert!(twins.is_empty());
        // Its retained copy after it comes back is handed over (state again, harmless).
        assert!(twins.first(k, 1, BOTH, now));
    }

    #[test]
    fn debts_are_forgotten_after_the_wait_and_beyond_the_cap() {
        let now = Instant::now();
        let mut twins = Twins::new(Duration::from_secs(1), 2);
        let (a, b, c) = (
            twins.key("t", b"a"),
            twins.key("t", b"b"),
            twins.key("u", b"a"),
        );
        assert_ne!(a, c, "the topic is part of the key");
        assert!(twins.first(a, 0, BOTH, now));
        assert!(twins.first(b, 0, BOTH, now));
        assert!(twins.first(c, 0, BOTH, now));
        assert_eq!(twins.len(), 2, "the cap forgot the oldest");
        assert!(twins.first(a, 1, BOTH, now), "forgotten: handed over again");
        assert_eq!(twins.len(), 2, "a new debt, the oldest (b) forgotten");
        let later = now + Duration::from_secs(2);
        assert!(twins.first(c, 1, BOTH, later), "too late to be a twin");
        assert_eq!(twins.len(), 1, "only the debt just made");
    }

    proptest! {
        /// Two brokers hand over the same messages (repeats included), each in order, in
        /// any interleaving: every message comes out exactly once, in order.
        #[test]
        fn any_interleaving_of_two_copies_comes_out_once_in_order(
            messages in proptest::collection::vec(0u8..4, 0..40),
            picks in proptest::collection::vec(any::<bool>(), 0..80),
        ) {
            let now = Instant::now();
            let mut twins = Twins::default();
            let (mut next, mut out) = ([0usize; 2], Vec::new());
            let mut picks = picks.into_iter();
            while next[0] < messages.len() || next[1] < messages.len() {
                let link = if next[0] == messages.len() {
                    1
                } else if next[1] == messages.len() {
                    0
                } else {
                    usize::from(picks.next().unwrap_or(false))
                };
                let m = messages[next[link]];
                next[link] += 1;
                if twins.first(twins.key("t", &[m]), link, BOTH, now) {
                    out.push(m);
                }
            }
            // Equal payloads are interchangeable, so "in order, once" is the same list.
            prop_assert_eq!(out, messages);
            prop_assert!(twins.is_empty());
        }
    }
}

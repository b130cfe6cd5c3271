//! Backoff for failed secret attempts per client address, sans-IO: the API's `x-api-key`
//! and the ingest's stream keys.
//!
//! Keys are 256-bit random values, so guessing one is hopeless either way; what this
//! bounds is what a guesser costs us (a catalog query and a log line per attempt) and how
//! loud it can make the logs. After [`StrikePolicy::free`] failures an address is refused
//! without a check for [`StrikePolicy::first_penalty`], doubling with every further
//! failure up to [`StrikePolicy::max_penalty`]; an address that stays quiet for
//! [`StrikePolicy::forget_after`] starts afresh, and a success forgets it at once. A real
//! user who mistypes a key a few times never waits.
//!
//! A client is a [`ClientGroup`]: an IPv4 address or an IPv6 /64, the rule of every
//! per-client cap (one subscriber holds a whole /64, so counting single IPv6 addresses
//! would give one guesser 2^64 fresh starts).
//!
//! The table is bounded: when full, clients quiet for `forget_after` are swept, at most
//! once per [`SWEEP_EVERY`] (so a flood of new clients against a full table costs one sweep
//! a second, not one per attempt); if it is still full, new clients are not tracked
//! (checked every time, as without this) rather than evicting one that is being held back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use domain::ClientGroup;

/// How often, at most, a full table is swept for clients gone quiet.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How failures turn into waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrikePolicy {
    /// Failures allowed before any wait.
    pub free: u32,
    /// The first wait.
    pub first_penalty: Duration,
    /// The longest wait.
    pub max_penalty: Duration,
    /// Quiet time after which an address's failures are forgotten.
    pub forget_after: Duration,
    /// Addresses tracked at most.
    pub max_addresses: usize,
}

impl Default for StrikePolicy {
    /// Five free failures, then 1 s doubling to 5 min, forgotten after 10 quiet minutes,
    /// 65,536 addresses.
    fn default() -> Self {
        StrikePolicy {
            free: 5,
            first_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(300),
            forget_after: Duration::from_secs(600),
            max_addresses: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

/// Failures per client address.
#[derive(Debug)]
pub struct Strikes {
    policy: StrikePolicy,
    records: HashMap<ClientGroup, Record>,
    /// When a full table was last swept.
    last_sweep: Option<Instant>,
}

impl Strikes {
    /// No failures yet.
    pub fn new(policy: StrikePolicy) -> Self {
        Strikes {
            policy,
            records: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Whether `client` may try now; if not, how long it must wait.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.records.get(&ClientGroup::of(client)) {
            Some(r) if r.blocked_until > now => Err(r.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// `client` presented a wrong secret at `now`; returns the wait it now has, if any.
    pub fn failed(&mut self, client: IpAddr, now: Instant) -> Option<Duration> {
        let policy = self.policy;
        let client = ClientGroup::of(client);
        if !self.records.contains_key(&client) && self.records.len() >= policy.max_addresses {
            let due = self
                .last_sweep
                .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
            if due {
                self.last_sweep = Some(now);
                self.records.retain(|_, r| {
                    now.saturating_duration_since(r.last_failure) < policy.forget_after
                        || r.blocked_until > now
                });
            }
            if self.records.len() >= policy.max_addresses {
                return None;
            }
        }
        let record = self.records.entry(client).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if now.saturating_duration_since(record.last_failure) >= policy.forget_after {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        let over = record.failures.checked_sub(policy.free)?.checked_sub(1)?;
        let penalty = policy
            .first_penalty
            .checked_mul(1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(policy.max_penalty)
            .min(policy.max_penalty);
        record.blocked_until = now + penalty;
        Some(penalty)
    }

    /// `client` presented a good secret: its failures are forgotten.
    pub fn succeeded(&mut self, client: IpAddr) {
        self.records.remove(&ClientGroup::of(client));
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn free_failures_then_doubling_waits_then_forgiveness() {
        let mut s = Strikes::new(StrikePolicy::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(s.failed(ip(1), t0), None);
            assert_eq!(s.check(ip(1), t0), Ok(()));
        }
        assert_eq!(s.failed(ip(1), t0), Some(Duration::from_secs(1)));
        assert_eq!(s.check(ip(1), t0), Err(Duration::from_secs(1)));
        assert_eq!(s.check(ip(2), t0), Ok(()), "others are not held back");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.check(ip(1), t1), Ok(()));
        assert_eq!(s.failed(ip(1), t1), Some(Duration::from_secs(2)));
        assert_eq!(s.failed(ip(1), t1), Some(Duration::from_secs(4)));
        for _ in 0..20 {
            s.failed(ip(1), t1);
        }
        assert_eq!(s.check(ip(1), t1), Err(Duration::from_secs(300)));
        // Ten quiet minutes after the last failure: a fresh start.
        let later = t1 + Duration::from_secs(600);
        assert_eq!(s.check(ip(1), later), Ok(()));
        assert_eq!(s.failed(ip(1), later), None);
        s.succeeded(ip(1));
        assert!(s.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_keeps_who_is_held_back() {
        let policy = StrikePolicy {
            free: 0,
            max_addresses: 4,
            ..StrikePolicy::default()
        };
        let mut s = Strikes::new(policy);
        let t0 = Instant::now();
        for n in 0..4 {
            assert!(s.failed(ip(n), t0).is_some());
        }
        assert_eq!(s.failed(ip(9), t0), None, "not tracked: the table is full");
        assert_eq!(s.len(), 4);
        assert!(s.check(ip(0), t0).is_err());
        // Once the old ones are forgotten, a new one is tracked.
        let later = t0 + Duration::from_secs(601);
        assert!(s.failed(ip(9), later).is_some());
        assert!(s.len() <= 4);
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let policy = StrikePolicy {
            free: 2,
            ..StrikePolicy::default()
        };
        let mut s = Strikes::new(policy);
        let t0 = Instant::now();
        let host = |n: u16| IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, n, 1]);
        // Three addresses of one /64, one wrong key each: the third is over the two free.
        assert_eq!(s.failed(host(1), t0), None);
        assert_eq!(s.failed(host(2), t0), None);
        assert!(s.failed(host(3), t0).is_some());
        assert!(s.check(host(4), t0).is_err(), "the whole /64 waits");
        let other = IpAddr::from([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]);
        assert_eq!(s.check(other, t0), Ok(()), "the next /64 is someone else");
        // An IPv4 client seen as IPv4-mapped IPv6 is that IPv4 client.
        let v4 = IpAddr::from([192, 0, 2, 7]);
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        for _ in 0..3 {
            s.failed(v4, t0);
        }
        assert!(s.check(mapped, t0).is_err());
    }

    #[test]
    fn a_full_table_is_swept_at_most_once_a_second() {
        let policy = StrikePolicy {
            free: 0,
            max_addresses: 4,
            forget_after: Duration::from_secs(10),
            ..StrikePolicy::default()
        };
        let mut s = Strikes::new(policy);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for n in 0..4 {
            assert!(s.failed(ip(n), t0).is_some());
        }
        // A newcomer sweeps the full table (nobody is quiet yet) and is not tracked.
        assert_eq!(s.failed(ip(10), at(9_500)), None);
        // Now everyone is quiet, but the last sweep was less than a second ago: newcomers
        // are not tracked, and nothing walks the table for them.
        assert_eq!(s.failed(ip(11), at(10_100)), None);
        assert_eq!(s.failed(ip(12), at(10_400)), None);
        assert_eq!(s.len(), 4);
        // A second after the last sweep, the next newcomer sweeps and is tracked.
        assert!(s.failed(ip(13), at(10_600)).is_some());
        assert_eq!(s.len(), 1);
    }

    proptest! {
        /// Waits never exceed the maximum, never shrink while failures go on within the
        /// memory, and at most `free` failures pass without one.
        #[test]
        fn waits_are_bounded_and_monotonic(gaps in proptest::collection::vec(0u64..5_000, 1..60)) {
            let policy = StrikePolicy::default();
            let mut s = Strikes::new(policy);
            let mut now = Instant::now();
            let mut last: Option<Duration> = None;
            let mut unpunished = 0;
            for gap in gaps {
                now += Duration::from_millis(gap);
                match s.failed(ip(1), now) {
                    Some(wait) => {
                        prop_assert!(wait <= policy.max_penalty);
                        if let Some(before) = last {
                            prop_assert!(wait >= before);
                        }
                        last = Some(wait);
                    }
                    None => {
                        prop_assert!(last.is_none());
                        unpunished += 1;
                    }
                }
            }
            prop_assert!(unpunished <= policy.free);
        }
    }
}

//! Per-client budgets for what is public: new connections and requests, each a token
//! bucket per client address, sans-IO (the time is passed in).
//!
//! A client is its address; IPv6 clients by their /64 ([`domain::ClientGroup`]: one
//! subscriber gets a whole /64, so counting single addresses would give an attacker 2^64
//! budgets). The defaults are far above what any audience needs: a low-latency viewer
//! makes about ten requests a second, and an office or a carrier-grade NAT puts tens of
//! them behind one address.
//!
//! Memory is bounded: the table is split into shards, each holding at most a fixed number
//! of clients. A client whose bucket has filled up again is the same as one never seen, so
//! when a shard is full such entries are swept; if it is still full (a flood from more
//! distinct addresses than the bound), the newcomers of that shard share one overflow
//! bucket, so that the flood is limited like a single client while every client already in
//! the table keeps its own budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::ClientGroup;
use parking_lot::Mutex;

use crate::metrics::LbMetrics;

/// Shards of a [`Budget`]'s table (a power of two): requests of different clients rarely
/// wait for the same lock.
const SHARDS: usize = 16;

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_second: f64,
    burst: f64,
}

impl Rate {
    /// `per_second` on average, up to `burst` at once; `None` unless both are positive and
    /// the burst is at least one.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0 && burst > 0).then_some(Rate {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
        })
    }

    /// The default request budget of a client: 300 a second, 600 at once.
    pub const REQUESTS: Rate = Rate {
        per_second: 300.0,
        burst: 600.0,
    };

    /// The default connection budget of a client: 50 new connections a second, 100 at once.
    pub const CONNECTIONS: Rate = Rate {
        per_second: 50.0,
        burst: 100.0,
    };
}

/// What the load balancer limits and how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientLimits {
    /// Requests per client.
    pub requests: Rate,
    /// New connections per client.
    pub connections: Rate,
    /// Clients remembered per budget at most.
    pub max_clients: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            requests: Rate::REQUESTS,
            connections: Rate::CONNECTIONS,
            max_clients: 65_536,
        }
    }
}

/// One client's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    /// The tokens it would hold at `now`.
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.burst)
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let level = self.level(rate, now);
        self.at = now.max(self.at);
        if level >= 1.0 {
            self.tokens = level - 1.0;
            Ok(())
        } else {
            self.tokens = level;
            Err(Duration::from_secs_f64((1.0 - level) / rate.per_second))
        }
    }
}

/// The shard of a client's bucket.
fn shard_of(client: ClientGroup) -> usize {
    (client.mix() >> 60) as usize % SHARDS
}

#[derive(Debug)]
struct Shard {
    buckets: HashMap<ClientGroup, Bucket>,
    /// Shared by newcomers while the shard is full.
    overflow: Option<Bucket>,
}

/// Token buckets per client for one kind of thing (requests, or new connections).
#[derive(Debug)]
pub struct Budget {
    rate: Rate,
    per_shard: usize,
    shards: Vec<Mutex<Shard>>,
}

impl Budget {
    /// Buckets of `rate`, for at most `max_clients` clients (rounded up to the shards).
    pub fn new(rate: Rate, max_clients: usize) -> Self {
        Budget {
            rate,
            per_shard: max_clients.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        overflow: None,
                    })
                })
                .collect(),
        }
    }

    /// One more for the client at `ip`, at `now`: allowed, or refused with how long the
    /// client should wait.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let client = ClientGroup::of(ip);
        let rate = self.rate;
        let mut shard = self.shards[shard_of(client)].lock();
        if let Some(bucket) = shard.buckets.get_mut(&client) {
            return bucket.take(rate, now);
        }
        if shard.buckets.len() >= self.per_shard {
            // Clients whose bucket is full again are as good as never seen.
            shard.buckets.retain(|_, b| b.level(rate, now) < rate.burst);
        }
        if shard.buckets.len() < self.per_shard {
            let mut bucket = Bucket::full(rate, now);
            let taken = bucket.take(rate, now);
            shard.buckets.insert(client, bucket);
            return taken;
        }
        shard
            .overflow
            .get_or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now)
    }

    /// Clients held now, over all shards.
    pub fn clients(&self) -> usize {
        self.shards.iter().map(|s| s.lock().buckets.len()).sum()
    }
}

/// How long the answer to a request over its client's budget is held before the 429 goes
/// out. A client that waits for its answers (an HTTP/1.1 connection makes one request at a
/// time, an HTTP/2 one at most its concurrent streams) is thereby slowed to its budget
/// instead of costing the load balancer a parse and a refusal as fast as it can send: a
/// flood of 16 connections took both cores of a 2-core machine and made another client's
/// answers four times slower. A held refusal costs a timer. It is no longer than the
/// shortest `Retry-After` the client is told, so a client that heeds it loses nothing.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(1);

/// The `Retry-After` value for a wait: whole seconds, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Pingora's connection filter over a connection [`Budget`]: a client over its budget is
/// dropped as it connects, before the TLS handshake costs anything.
#[derive(Debug)]
pub struct ConnectionBudget {
    budget: Budget,
    metrics: LbMetrics,
}

impl ConnectionBudget {
    /// A filter taking one of `budget` per new connection.
    pub fn new(budget: Budget, metrics: LbMetrics) -> Arc<Self> {
        Arc::new(ConnectionBudget { budget, metrics })
    }
}

#[async_trait::async_trait]
impl pingora::listeners::ConnectionFilter for ConnectionBudget {
    async fn should_accept(&self, addr: Option<&std::net::SocketAddr>) -> bool {
        let Some(addr) = addr else {
            return true;
        };
        match self.budget.take(addr.ip(), Instant::now()) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.limited("connection");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn a_burst_then_the_rate() {
        let budget = Budget::new(Rate::new(10, 5).expect("rate"), 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(budget.take(ip(1), t0), Ok(()));
        }
        let wait = budget.take(ip(1), t0).expect_err("over the burst");
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(retry_after_secs(wait), 1);
        // Another client is untouched.
        assert_eq!(budget.take(ip(2), t0), Ok(()));
        // A tenth of a second later, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(budget.take(ip(1), t1), Ok(()));
        assert!(budget.take(ip(1), t1).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let budget = Budget::new(Rate::new(1, 2).expect("rate"), 100);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(budget.take(a, t0).is_ok());
        assert!(budget.take(b, t0).is_ok());
        assert!(budget.take(a, t0).is_err(), "same /64");
        assert!(budget.take(c, t0).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert!(budget.take(mapped, t0).is_ok());
        assert!(budget.take("10.0.0.1".parse().expect("ip"), t0).is_ok());
        assert!(budget.take(mapped, t0).is_err(), "mapped IPv4 is IPv4");
    }

    #[test]
    fn a_flood_of_addresses_shares_one_bucket_and_the_table_stays_bounded() {
        let budget = Budget::new(Rate::new(1, 1).expect("rate"), SHARDS * 2);
        let t0 = Instant::now();
        // Known clients with empty buckets (one request each took their only token).
        let mut refused = 0;
        for n in 0..10_000 {
            if budget.take(ip(n), t0).is_err() {
                refused += 1;
            }
        }
        assert!(budget.clients() <= SHARDS * 2);
        // All but the table's clients and one overflow token per shard were refused.
        assert!(refused >= 10_000 - SHARDS * 3, "{refused}");
        // A second later every bucket is full again: the sweep makes room for newcomers.
        let t1 = t0 + Duration::from_secs(2);
        for n in 20_000..20_000 + SHARDS as u32 * 2 {
            let _ = budget.take(ip(n), t1);
        }
        assert!(budget.clients() <= SHARDS * 2);
    }

    proptest! {
        /// Over any run of requests of one client, no more were allowed than the burst
        /// plus the rate times the time elapsed, and another client's requests change
        /// nothing of its outcomes.
        #[test]
        fn never_more_than_burst_plus_rate(
            gaps_ms in proptest::collection::vec(0u64..200, 1..300),
            others in proptest::collection::vec(any::<bool>(), 300),
            per_second in 1u32..50,
            burst in 1u32..20,
        ) {
            let rate = Rate::new(per_second, burst).expect("rate");
            let alone = Budget::new(rate, 1000);
            let shared = Budget::new(rate, 1000);
            let t0 = Instant::now();
            let mut at = t0;
            let mut allowed = 0u64;
            for (i, gap) in gaps_ms.iter().enumerate() {
                at += Duration::from_millis(*gap);
                if others[i] {
                    let _ = shared.take(ip(99), at);
                }
                let a = alone.take(ip(1), at);
                let b = shared.take(ip(1), at);
                prop_assert_eq!(a.is_ok(), b.is_ok());
                if a.is_ok() {
                    allowed += 1;
                }
                let elapsed = at.duration_since(t0).as_secs_f64();
                prop_assert!(
                    allowed as f64 <= f64::from(burst) + elapsed * f64::from(per_second) + 1e-6,
                    "{} allowed in {}s", allowed, elapsed
                );
            }
        }

        /// A refusal's wait is enough: after it, the request is allowed.
        #[test]
        fn the_retry_after_is_honest(per_second in 1u32..100, burst in 1u32..10) {
            let budget = Budget::new(Rate::new(per_second, burst).expect("rate"), 10);
            let t0 = Instant::now();
            let mut wait = None;
            for _ in 0..=burst {
                if let Err(w) = budget.take(ip(1), t0) {
                    wait = Some(w);
                }
            }
            let wait = wait.expect("over the burst");
            prop_assert!(budget.take(ip(1), t0 + wait + Duration::from_micros(1)).is_ok());
        }
    }
}

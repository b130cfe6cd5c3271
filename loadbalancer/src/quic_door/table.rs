//! The QUIC front door's flow table, sans-IO: which relay each viewer's datagrams go to,
//! which relays may take flows, and what a flood of source addresses can cost.
//!
//! - **Flows are keyed by the viewer's address** (IP and port, the 4-tuple as the door
//!   sees it), as L4 balancers do. QUIC connection-id routing would survive a viewer's
//!   address change, but moq-relay picks random connection ids with no server id in them
//!   (no QUIC-LB encoding), so the door could only learn them by parsing the relay's
//!   packets, and a migrating viewer is rare next to a load-balancer failover, which the
//!   address key already survives (below).
//! - **A new flow's relay is the rendezvous-hash winner** of the viewer's address over the
//!   eligible relays. Every load balancer ranks the same way from the same relay list, so
//!   when the floating address moves from `lb1` to `lb2`, the viewer's datagrams reach the
//!   same relay from a new source address, which QUIC treats as a path migration: the
//!   connection lives on. A relay that joins takes only its own share of new flows; one
//!   that leaves moves only its own flows.
//! - **A relay is eligible** while it is listed (DNS), it has passed a health check and
//!   not failed [`OUT_AFTER_FAILED_CHECKS`] in a row since, and it has not gone silent:
//!   datagrams forwarded to it and no answer from it for [`DoorLimits::silence`]. A silent
//!   or refused (ICMP) relay stays out until a health check passes again.
//! - **A relay whose last check failed takes no new flow** while another one passed its
//!   last check, but keeps the flows it has until it is out. A viewer whose relay died
//!   dials again from a new port, that is as a new flow, so this is what decides how soon
//!   re-dials stop reaching a dead relay: one failed check, not two; and a relay that
//!   missed one check under load loses none of its viewers.
//! - **A flow whose relay is no longer eligible moves on its next datagram**: the shell
//!   opens a new upstream socket to the new winner. The viewer's QUIC connection does not
//!   survive that (the new relay does not know it); the player dials again and
//!   subscribes again.
//! - **Bounds**: at most [`DoorLimits::max_flows`] flows. At the cap a new viewer takes the
//!   place of the flow idle longest if that one has been idle for
//!   [`DoorLimits::evictable_after`] (a spoofed source sends once and falls silent; a
//!   playing viewer is never idle that long); otherwise its datagram is dropped
//!   ([`DropReason::TableFull`]) and every established flow keeps its place. Flows idle for
//!   [`DoorLimits::idle`] expire.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const RENDEZVOUS_DOMAIN: &[u8] = b"sealcast/v1 quic door\0";

/// How many flows the door keeps and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorLimits {
    /// Flows (and so upstream sockets) at most.
    pub max_flows: usize,
    /// A flow with no datagram either way for this long is forgotten.
    pub idle: Duration,
    /// At the cap, a flow idle this long may give its place to a new viewer.
    pub evictable_after: Duration,
    /// A relay sent datagrams and answering none of them for this long is taken out.
    pub silence: Duration,
}

impl Default for DoorLimits {
    fn default() -> Self {
        DoorLimits {
            max_flows: 16_384,
            // QUIC's idle timeouts are 30 s in moq-relay and browsers; a little longer here
            // so the door never forgets a connection its ends still hold.
            idle: Duration::from_secs(60),
            evictable_after: Duration::from_secs(5),
            silence: Duration::from_secs(5),
        }
    }
}

/// Why a viewer's datagram was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No relay is eligible.
    NoRelay,
    /// The table is at its cap and no flow may give up its place.
    TableFull,
}

impl DropReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoRelay => "no_relay",
            DropReason::TableFull => "table_full",
        }
    }
}

/// Consecutive failed health checks that take a relay out (its flows move). One is enough
/// to keep new flows off it.
pub const OUT_AFTER_FAILED_CHECKS: u8 = 3;

/// What to do with a viewer's datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on the flow's upstream socket, to `relay`.
    Forward {
        /// The flow's relay.
        relay: SocketAddr,
    },
    /// Open a new upstream socket to `relay` for this viewer (closing the one it had, if
    /// any), then send it.
    Open {
        /// The relay chosen.
        relay: SocketAddr,
        /// The relay the flow had, when it moved off one that is gone.
        moved_from: Option<SocketAddr>,
        /// The viewer whose flow gave its place up (its socket is to be closed).
        evicted: Option<SocketAddr>,
    },
    /// Drop it.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    relay: SocketAddr,
    last_seen: Instant,
}

#[derive(Debug, Clone, Copy, Default)]
struct RelayState {
    /// A health check passed since it was listed (a relay starts unchecked: out).
    checked: bool,
    /// Health checks failed in a row since the last that passed.
    failed_checks: u8,
    /// The first datagram forwarded to it since it last answered.
    unanswered_since: Option<Instant>,
}

/// The door's state: relays and flows.
#[derive(Debug)]
pub struct FlowTable {
    limits: DoorLimits,
    relays: BTreeMap<SocketAddr, RelayState>,
    flows: HashMap<SocketAddr, Flow>,
    /// `(last_seen, viewer)` of every flow, oldest first: expiry and eviction.
    by_age: BTreeSet<(Instant, SocketAddr)>,
}

impl FlowTable {
    /// An empty table.
    pub fn new(limits: DoorLimits) -> Self {
        FlowTable {
            limits,
            relays: BTreeMap::new(),
            flows: HashMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> DoorLimits {
        self.limits
    }

    /// Flows held now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// The relay `viewer`'s flow goes to, if it has one.
    pub fn relay_of(&self, viewer: SocketAddr) -> Option<SocketAddr> {
        self.flows.get(&viewer).map(|f| f.relay)
    }

    /// The relays listed now (resolved from DNS). A relay new to the list starts
    /// unchecked; one no longer listed is gone, and its flows move on their next datagram.
    pub fn set_relays(&mut self, listed: impl IntoIterator<Item = SocketAddr>) {
        let listed: BTreeSet<SocketAddr> = listed.into_iter().collect();
        self.relays.retain(|addr, _| listed.contains(addr));
        for addr in listed {
            self.relays.entry(addr).or_default();
        }
    }

    /// The relays listed now.
    pub fn relays(&self) -> Vec<SocketAddr> {
        self.relays.keys().copied().collect()
    }

    /// The result of a health check of `relay`. A pass also forgives its silence; a
    /// failure keeps new flows off it, [`OUT_AFTER_FAILED_CHECKS`] in a row take it out.
    pub fn set_health(&mut self, relay: SocketAddr, healthy: bool) {
        if let Some(state) = self.relays.get_mut(&relay) {
            if healthy {
                state.checked = true;
                state.failed_checks = 0;
                state.unanswered_since = None;
            } else {
                state.failed_checks = state.failed_checks.saturating_add(1);
            }
        }
    }

    /// The relay refused a datagram (ICMP port unreachable): out until a check passes.
    pub fn relay_refused(&mut self, relay: SocketAddr) {
        if let Some(state) = self.relays.get_mut(&relay) {
            state.failed_checks = state.failed_checks.max(OUT_AFTER_FAILED_CHECKS);
        }
    }

    /// Whether `relay` may take flows at `now`.
    pub fn is_eligible(&self, relay: SocketAddr, now: Instant) -> bool {
        self.relays
            .get(&relay)
            .is_some_and(|state| self.state_eligible(state, now))
    }

    /// The relays that may take flows at `now`.
    pub fn eligible(&self, now: Instant) -> usize {
        self.relays
            .values()
            .filter(|state| self.state_eligible(state, now))
            .count()
    }

    fn state_eligible(&self, state: &RelayState, now: Instant) -> bool {
        state.checked
            && state.failed_checks < OUT_AFTER_FAILED_CHECKS
            && state
                .unanswered_since
                .is_none_or(|since| now.saturating_duration_since(since) < self.limits.silence)
    }

    /// A datagram from `viewer` at `now`: where it goes.
    pub fn viewer_sent(&mut self, viewer: SocketAddr, now: Instant) -> Verdict {
        if let Some(flow) = self.flows.get(&viewer).copied() {
            if self.is_eligible(flow.relay, now) {
                self.touch(viewer, flow, now);
                self.forwarded(flow.relay, now);
                return Verdict::Forward { relay: flow.relay };
            }
            // Its relay is gone: the flow moves (the viewer's connection will not survive
            // it, but its next one will find a relay).
            let Some(relay) = self.choose(viewer, now) else {
                return Verdict::Drop(DropReason::NoRelay);
            };
            self.touch(viewer, Flow { relay, ..flow }, now);
            self.forwarded(relay, now);
            return Verdict::Open {
                relay,
                moved_from: Some(flow.relay),
                evicted: None,
            };
        }
        let Some(relay) = self.choose(viewer, now) else {
            return Verdict::Drop(DropReason::NoRelay);
        };
        let mut evicted = None;
        if self.flows.len() >= self.limits.max_flows {
            match self.by_age.first().copied() {
                Some((seen, oldest))
                    if now.saturating_duration_since(seen) >= self.limits.evictable_after =>
                {
                    self.remove(oldest);
                    evicted = Some(oldest);
                }
                _ => return Verdict::Drop(DropReason::TableFull),
            }
        }
        let flow = Flow {
            relay,
            last_seen: now,
        };
        self.flows.insert(viewer, flow);
        self.by_age.insert((now, viewer));
        self.forwarded(relay, now);
        Verdict::Open {
            relay,
            moved_from: None,
            evicted,
        }
    }

    /// A datagram from `relay` for `viewer`'s flow at `now`: the relay lives, the flow is
    /// in use. False when the flow is gone or now belongs to another relay (drop it).
    pub fn relay_sent(&mut self, viewer: SocketAddr, relay: SocketAddr, now: Instant) -> bool {
        if let Some(state) = self.relays.get_mut(&relay) {
            state.unanswered_since = None;
        }
        match self.flows.get(&viewer).copied() {
            Some(flow) if flow.relay == relay => {
                self.touch(viewer, flow, now);
                true
            }
            _ => false,
        }
    }

    /// Forgets the flows idle for [`DoorLimits::idle`] at `now`; their viewers (whose
    /// upstream sockets are to be closed).
    pub fn expire(&mut self, now: Instant) -> Vec<SocketAddr> {
        let mut expired = Vec::new();
        while let Some((seen, viewer)) = self.by_age.first().copied() {
            if now.saturating_duration_since(seen) < self.limits.idle {
                break;
            }
            self.remove(viewer);
            expired.push(viewer);
        }
        expired
    }

    /// The rendezvous winner for `viewer` among the relays eligible at `now` whose last
    /// check passed; among every eligible relay when none did.
    pub fn choose(&self, viewer: SocketAddr, now: Instant) -> Option<SocketAddr> {
        let winner = |last_passed: bool| {
            self.relays
                .iter()
                .filter(|(_, state)| {
                    self.state_eligible(state, now) && (!last_passed || state.failed_checks == 0)
                })
                .map(|(addr, _)| (score(*addr, viewer), *addr))
                .max()
                .map(|(_, addr)| addr)
        };
        winner(true).or_else(|| winner(false))
    }

    fn touch(&mut self, viewer: SocketAddr, flow: Flow, now: Instant) {
        self.by_age.remove(&(flow.last_seen, viewer));
        // A clock that went backwards (it does not: `Instant`) must not reorder the set.
        let seen = now.max(flow.last_seen);
        self.by_age.insert((seen, viewer));
        self.flows.insert(
            viewer,
            Flow {
                relay: flow.relay,
                last_seen: seen,
            },
        );
    }

    fn forwarded(&mut self, relay: SocketAddr, now: Instant) {
        if let Some(state) = self.relays.get_mut(&relay) {
            state.unanswered_since.get_or_insert(now);
        }
    }

    fn remove(&mut self, viewer: SocketAddr) {
        if let Some(flow) = self.flows.remove(&viewer) {
            self.by_age.remove(&(flow.last_seen, viewer));
        }
    }
}

/// The rendezvous weight of `relay` for `viewer`: the first 8 bytes of a SHA-256 over
/// both addresses, so every load balancer computes the same.
fn score(relay: SocketAddr, viewer: SocketAddr) -> u64 {
    let mut hash = Sha256::new();
    hash.update(RENDEZVOUS_DOMAIN);
    hash.update(relay.to_string().as_bytes());
    hash.update([0]);
    hash.update(viewer.to_string().as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

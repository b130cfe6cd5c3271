//! Where the relays are: each `host:port` of `--moq-relays` resolved again every
//! [`RelayChecks::resolve_every`] (so `docker compose --scale relay=N` and a Kubernetes
//! headless Service are followed), and each address checked by a TCP connect to the same
//! port every [`RelayChecks::check_every`]: moq-relay serves its HTTP side
//! (`--web-http-listen`) on the TCP port of its QUIC listener in every deployment of ours.
//! A refused or timed-out connect keeps new flows off the relay, a few in a row take it
//! out (its flows move on their next datagram): see [`super::table`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::table::FlowTable;
use crate::metrics::LbMetrics;

/// How often the relays are looked up and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayChecks {
    /// DNS lookups of the relay names.
    pub resolve_every: Duration,
    /// TCP connects to each relay.
    pub check_every: Duration,
    /// How long a connect may take.
    pub timeout: Duration,
}

impl Default for RelayChecks {
    fn default() -> Self {
        RelayChecks {
            resolve_every: Duration::from_secs(5),
            // A relay that dies takes no new flow within 0.45 s (one failed check): well
            // before a player takes its silent session for lost (0.7 s, web/src/moq-play.js)
            // and dials again from a new port, so the new flow goes to a relay that
            // answers. A relay's kernel answers a connect whatever the relay's load, so
            // 250 ms without one is a dead or unreachable relay or a starved load
            // balancer; either way only three in a row move its flows. Five connects a
            // second per relay cost nothing.
            check_every: Duration::from_millis(200),
            timeout: Duration::from_millis(250),
        }
    }
}

/// Resolves and checks the relays into `table` until `stop`.
pub(crate) async fn follow(
    names: Vec<String>,
    checks: RelayChecks,
    table: Arc<Mutex<FlowTable>>,
    metrics: LbMetrics,
    stop: CancellationToken,
) {
    let mut resolve = tokio::time::interval(checks.resolve_every);
    resolve.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut check = tokio::time::interval(checks.check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = resolve.tick() => {
                // Bounded: a resolver that hangs must not hold the checks (or the
                // shutdown) up; the relays stay as they were until the next lookup.
                let looked_up = tokio::select! {
                    () = stop.cancelled() => return,
                    looked_up = tokio::time::timeout(checks.resolve_every, lookup(&names)) => looked_up,
                };
                let Ok(listed) = looked_up else {
                    tracing::warn!("looking the QUIC relays up took too long; kept the last list");
                    continue;
                };
                table.lock().set_relays(listed);
                // Check new ones at once rather than at the next tick.
                check_all(&table, checks.timeout, &metrics).await;
            }
            _ = check.tick() => check_all(&table, checks.timeout, &metrics).await,
        }
    }
}

/// Every address every name resolves to now; a name that does not resolve adds none (and
/// is logged), so a relay tier scaled to zero is an empty list, not an error.
async fn lookup(names: &[String]) -> BTreeSet<SocketAddr> {
    let mut listed = BTreeSet::new();
    for name in names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(addrs) => listed.extend(addrs),
            Err(e) => tracing::debug!(relay = %name, error = %e, "relay name did not resolve"),
        }
    }
    listed
}

/// One TCP connect per relay, all at once.
async fn check_all(table: &Mutex<FlowTable>, timeout: Duration, metrics: &LbMetrics) {
    let relays = table.lock().relays();
    let mut checks = tokio::task::JoinSet::new();
    for relay in relays {
        checks.spawn(async move {
            let connect = tokio::net::TcpStream::connect(relay);
            let ok = matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)));
            (relay, ok)
        });
    }
    let results = checks.join_all().await;
    let now = std::time::Instant::now();
    let mut table = table.lock();
    for (relay, ok) in results {
        let was = table.is_eligible(relay, now);
        table.set_health(relay, ok);
        if was && !table.is_eligible(relay, now) {
            tracing::warn!(%relay, "a QUIC relay failed its checks; its flows move");
        }
    }
    metrics.set_quic_relays(table.eligible(now));
}

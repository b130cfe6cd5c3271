//! Who the broadcast nodes are and whether they can take viewers.
//!
//! - [`Pool`]: the [`Backends`] choice together with where each node is (its resolved
//!   address, and its own public URL for direct mode). The proxy reads it per request.
//! - [`follow_presence`]: nodes join and leave with their retained MQTT presence; `ready`
//!   in the presence makes them ready, `offline` (a clean stop or the last will) or a
//!   cleared presence removes them. A presence counts only when signed by an edge key the
//!   cluster root certified ([`PresenceVerifier`]); anything else is refused, logged and
//!   counted in `sealcast_lb_presences_refused_total{reason}`, and changes nothing.
//! - [`check_health`]: `GET /healthz` on every member each interval; one failure takes a
//!   node out of rotation, one success (after the address resolves) brings it back. A
//!   node that joins is checked at once rather than at the next tick.
//! - Ingests that announce a WHIP URL (in a presence their own certified key signed: the
//!   verifier refuses an unsigned one with an address) join `Pool::ingests`, checked the
//!   same way; `/whip/…` goes to them ([`crate::ingests`]).

use domain::time::WallClock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certs::signing::PresenceVerifier;
use domain::broker::BrokerAddress;
use domain::presence::{Presence, PresenceState, Role};
use domain::topics::Topic;
use domain::NodeId;
use parking_lot::{Mutex, RwLock};
use plumbing::{BusEvent, BusOptions, Message, Qos};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ingests::Ingests;
use crate::metrics::LbMetrics;
use crate::selection::{Backends, Weight};

/// Where one broadcast node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its base URL from presence (`http://10.0.0.5:8080`).
    pub url: String,
    /// The address the URL resolved to at the last health check.
    pub addr: Option<SocketAddr>,
    /// Its own public base URL, for direct mode.
    pub direct_url: Option<String>,
}

/// The backend set and the nodes' addresses, shared by the proxy and the membership tasks.
#[derive(Debug)]
pub struct Pool {
    backends: Mutex<Backends>,
    upstreams: RwLock<HashMap<NodeId, Upstream>>,
    /// The ingests taking WHIP publishes.
    ingests: RwLock<Ingests>,
    joined: Notify,
    eligible: tokio::sync::watch::Sender<usize>,
    metrics: LbMetrics,
}

impl Pool {
    /// An empty pool choosing with `backends`.
    pub fn new(backends: Backends, metrics: LbMetrics) -> Arc<Self> {
        Arc::new(Pool {
            backends: Mutex::new(backends),
            upstreams: RwLock::new(HashMap::new()),
            ingests: RwLock::new(Ingests::default()),
            joined: Notify::new(),
            eligible: tokio::sync::watch::Sender::new(0),
            metrics,
        })
    }

    /// Runs `f` on the backend set (the lock is held only for `f`).
    pub fn with_backends<T>(&self, f: impl FnOnce(&mut Backends) -> T) -> T {
        f(&mut self.backends.lock())
    }

    /// Runs a membership or health change on the backend set and updates the
    /// eligible-backends and behind-backends gauges.
    fn change<T>(&self, f: impl FnOnce(&mut Backends) -> T) -> T {
        let mut backends = self.backends.lock();
        let out = f(&mut backends);
        // Draining nodes are left out: they serve only as a last resort.
        let eligible = backends.iter().filter(|(_, s)| s.is_staying()).count();
        let caught_up = backends.iter().filter(|(_, s)| s.is_caught_up()).count();
        drop(backends);
        self.metrics.set_eligible(eligible, eligible - caught_up);
        self.eligible
            .send_if_modified(|count| std::mem::replace(count, eligible) != eligible);
        out
    }

    /// Waits until at least `n` nodes are present, ready, healthy and not draining.
    pub async fn wait_eligible(&self, n: usize) {
        self.wait_eligible_count(|count| count >= n).await;
    }

    /// Waits until the number of eligible nodes satisfies `f`.
    pub async fn wait_eligible_count(&self, mut f: impl FnMut(usize) -> bool) {
        let mut eligible = self.eligible.subscribe();
        let _ = eligible.wait_for(|count| f(*count)).await;
    }

    /// How many nodes are present, ready, healthy and not draining now.
    pub fn eligible(&self) -> usize {
        *self.eligible.borrow()
    }

    /// Where `node` is.
    pub fn upstream(&self, node: &NodeId) -> Option<Upstream> {
        self.upstreams.read().get(node).cloned()
    }

    /// The members and their URLs.
    pub fn members(&self) -> Vec<(NodeId, Upstream)> {
        self.upstreams
            .read()
            .iter()
            .map(|(node, up)| (node.clone(), up.clone()))
            .collect()
    }

    /// Runs `f` on the ingests taking WHIP publishes (the lock is held only for `f`).
    pub fn with_ingests<T>(&self, f: impl FnOnce(&Ingests) -> T) -> T {
        f(&self.ingests.read())
    }

    /// Applies an ingest's presence (believed: signed by its own key when it names an
    /// address): it takes WHIP publishes while it is up with a URL.
    pub fn apply_ingest_presence(&self, node: &NodeId, presence: Option<&Presence>) {
        let url = presence
            .filter(|p| p.role == Role::Ingest && p.is_up())
            .and_then(|p| p.url.clone());
        match url {
            Some(url) => {
                if self.ingests.write().announce(node.clone(), url.clone()) {
                    tracing::info!(%node, %url, "ingest takes WHIP publishes");
                    self.joined.notify_one();
                }
            }
            None => {
                if self.ingests.write().leave(node) {
                    tracing::info!(%node, "ingest no longer takes WHIP publishes");
                }
            }
        }
    }

    /// Records a health check of an ingest (or a connection it refused).
    pub fn set_ingest_health(&self, node: &NodeId, addr: Option<SocketAddr>, healthy: bool) {
        self.ingests.write().set_health(node, addr, healthy);
    }

    /// Applies a broadcast node's presence.
    pub fn apply_presence(&self, node: &NodeId, presence: Option<&Presence>) {
        let up = presence.filter(|p| p.role == Role::Broadcast && p.is_up());
        let Some(presence) = up else {
            let left = self.upstreams.write().remove(node).is_some();
            if left {
                self.change(|b| b.leave(node));
                tracing::info!(%node, "broadcast node left");
            }
            return;
        };
        let Some(url) = presence.url.clone() else {
            return;
        };
        // A node behind live is still ready: it keeps its viewers, but takes new ones only
        // when no node is caught up; a draining one serves only while no other node may
        // (`selection`).
        let ready = matches!(
            presence.state,
            PresenceState::Ready | PresenceState::Behind | PresenceState::Draining
        );
        let behind = presence.state == PresenceState::Behind;
        let draining = presence.state == PresenceState::Draining;
        let joined = {
            let mut upstreams = self.upstreams.write();
            match upstreams.get_mut(node) {
                Some(existing) if existing.url == url => {
                    existing.direct_url = presence.direct_url.clone();
                    false
                }
                _ => {
                    upstreams.insert(
                        node.clone(),
                        Upstream {
                            url: url.clone(),
                            addr: None,
                            direct_url: presence.direct_url.clone(),
                        },
                    );
                    true
                }
            }
        };
        self.change(|b| {
            if joined {
                // A node that moved to a new URL starts over: unhealthy until checked.
                b.leave(node);
                b.join(node.clone(), Weight::ONE);
            }
            b.set_ready(node, ready);
            b.set_behind(node, behind);
            b.set_draining(node, draining);
        });
        if joined {
            tracing::info!(%node, %url, ready, "broadcast node joined");
            self.joined.notify_one();
        }
    }

    /// Records a health check (or a failed connection from the proxy).
    pub fn set_health(&self, node: &NodeId, addr: Option<SocketAddr>, healthy: bool) {
        if let Some(addr) = addr {
            if let Some(up) = self.upstreams.write().get_mut(node) {
                up.addr = Some(addr);
            }
        }
        let was = self.change(|b| {
            let was = b.get(node).map(|s| s.healthy);
            b.set_healthy(node, healthy);
            was
        });
        match was {
            Some(false) if healthy => tracing::info!(%node, "broadcast node is healthy"),
            Some(true) if !healthy => {
                tracing::warn!(%node, "broadcast node failed; out of rotation")
            }
            _ => {}
        }
    }
}

/// Follows broadcast presence on the broker until `stop`.
pub async fn follow_presence(
    pool: Arc<Pool>,
    verifier: PresenceVerifier,
    broker: BrokerAddress,
    client_id: String,
    stop: CancellationToken,
) {
    let mut options = BusOptions::new(broker, client_id);
    // A clean session: every (re)connect delivers the retained presences afresh.
    options.persistent = false;
    options.subscriptions = vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)];
    let connection = stop.child_token();
    let (bus, mut events, task) = plumbing::connect(options, connection.clone());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            event = events.recv() => match event {
                Some(BusEvent::Connected) => tracing::debug!("following broadcast presence"),
                Some(BusEvent::Message(message)) => apply(&pool, &verifier, &message),
                // The connection's token is a child of `stop`: on shutdown both ends race.
                None if stop.is_cancelled() => break,
                None => {
                    tracing::error!("the MQTT connection task ended; membership is frozen");
                    stop.cancelled().await;
                    break;
                }
            },
        }
    }
    let _ = bus.disconnect();
    connection.cancel();
    if let Err(e) = task.await {
        tracing::error!(error = %e, "the MQTT connection task failed");
    }
}

fn apply(pool: &Pool, verifier: &PresenceVerifier, message: &Message) {
    let Topic::Presence(node) = &message.topic else {
        return;
    };
    if message.payload.is_empty() {
        pool.apply_presence(node, None);
        pool.apply_ingest_presence(node, None);
        return;
    }
    // One or two signature checks per presence change: rare, and microseconds (Ed25519) to
    // a fraction of a millisecond (ML-DSA-65), so done in place.
    match verifier.check(node, &message.payload, WallClock.unix_secs()) {
        Ok(presence) if presence.role == Role::Ingest => {
            pool.apply_ingest_presence(node, Some(&presence))
        }
        Ok(presence) => pool.apply_presence(node, Some(&presence)),
        Err(e) => {
            tracing::warn!(%node, reason = e.reason(), error = %e, "refused a presence message");
            pool.metrics.presence_refused(e.reason());
        }
    }
}

/// Health-check settings.
#[derive(Debug, Clone, Copy)]
pub struct HealthChecks {
    /// Time between rounds.
    pub interval: Duration,
    /// Longest wait for one answer.
    pub timeout: Duration,
}

impl Default for HealthChecks {
    fn default() -> Self {
        HealthChecks {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
        }
    }
}

/// Checks every member each interval (and at once when one joins) until `stop`.
pub async fn check_health(pool: Arc<Pool>, settings: HealthChecks, stop: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot make the health-check client; no node will be checked");
            return;
        }
    };
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
            () = pool.joined.notified() => {}
        }
        let mut checks = tokio::task::JoinSet::new();
        for (node, upstream) in pool.members() {
            let client = client.clone();
            checks.spawn(async move {
                let (addr, healthy) = check_one(&client, &upstream.url).await;
                (node, addr, healthy, false)
            });
        }
        let ingests: Vec<(NodeId, String)> = pool.with_ingests(|i| {
            i.members()
                .map(|(node, entry)| (node.clone(), entry.url.clone()))
                .collect()
        });
        for (node, url) in ingests {
            let client = client.clone();
            checks.spawn(async move {
                let (addr, healthy) = check_one(&client, &url).await;
                (node, addr, healthy, true)
            });
        }
        while let Some(done) = checks.join_next().await {
            match done {
                Ok((node, addr, healthy, true)) => pool.set_ingest_health(&node, addr, healthy),
                Ok((node, addr, healthy, false)) => pool.set_health(&node, addr, healthy),
                Err(_) => {}
            }
        }
    }
}

/// Asks the node's `/healthz`; the address it answered from is where the proxy connects
/// (so a node's name is resolved once per check, by the check itself).
async fn check_one(client: &reqwest::Client, url: &str) -> (Option<SocketAddr>, bool) {
    match client
        .get(format!("{}/healthz", url.trim_end_matches('/')))
        .send()
        .await
    {
        Ok(response) => (response.remote_addr(), response.status().is_success()),
        Err(_) => (None, false),
    }
}

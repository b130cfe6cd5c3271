//! Distribution: from this ingest's live events to every broadcast node, over HTTP push
//! (segment bytes, control events) and MQTT (presence, certificate, signed statements).
//!
//! ```text
//! LiveEvents ─► distributor task ─┬─► node queue ─► pusher (one task per node) ─► HTTP PUT/POST
//!                 │   ▲           └─► node queue ─► pusher ─► …
//!                 │   └─ presence (MQTT) → membership; resync requests from pushers
//!                 ├─► snapshot (window per rendition, for late joiners)
//!                 └─► signing thread ─► envelope into the snapshot ─► outbox task ─► MQTT
//! ```
//!
//! The distributor task is the only one that sees live events, membership changes and the
//! snapshot, so "send a joining node the window, then live events" needs no lock and can
//! neither lose nor repeat an event. It never waits for a node or the broker: node queues
//! and the outbox take items without blocking, and the signing thread hashes and signs
//! while the bytes are already being pushed.
//!
//! - `snapshot`: sans-IO state of every stream as a late joiner needs it.
//! - `membership`: sans-IO broadcast membership from presence messages.
//! - `queue`: a node's bounded queue, overflow and resync bookkeeping.
//! - `pusher`: a node's pusher: HTTP requests, retries, failure accounting.
//! - `ledger`: sans-IO, which parts a node took: whether a segment may go bodiless.
//! - `sign`: hashing and signing on a blocking thread.
//! - `outbox`: every MQTT publish, in order, from one task.
//!
//! Long because it holds the distribution loop and its configuration; membership,
//! snapshots, signing and the pushers are its submodules.

mod ledger;
mod membership;
mod outbox;
mod pusher;
mod queue;
mod sign;
mod snapshot;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use certs::signing::{IngestCertificate, PresenceSigner, PresenceVerifier, SigningKey};
use domain::broker::BrokerAddress;
use domain::presence::{Presence, PresenceState, Role};
use domain::push_protocol::PushToken;
use domain::time::WallClock;
use domain::topics::Topic;
use domain::{LiveEvent, NodeId, StreamName};
use plumbing::{BusEvent, BusOptions, Qos};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::membership::{Change, Membership};
use self::outbox::{Outgoing, OUTBOX_LEN};
use self::pusher::{PushSettings, Pusher, SyncRequest};
use self::queue::{NodeQueue, Put};
use self::sign::SignJob;
use self::snapshot::{PushItem, SignedThumbnailPush, Snapshot};
use crate::error::IngestError;
use crate::metrics::IngestMetrics;

/// The environment variable the binary reads [`DistributeConfig::whole_segments`] from
/// (`1` turns it on).
pub const WHOLE_SEGMENTS_VARIABLE: &str = "SEALCAST_PUSH_WHOLE_SEGMENTS";

/// Most streams whose latest thumbnail is kept for joining nodes (one live stream each).
const MAX_THUMBNAIL_STREAMS: usize = 4096;

/// How long shutdown waits for the outbox to hand its last messages to the MQTT client.
const OUTBOX_GRACE: Duration = Duration::from_secs(3);
/// How long shutdown waits for the broker to echo the offline presence.
const OFFLINE_ECHO_WAIT: Duration = Duration::from_secs(3);
/// How long shutdown gives the DISCONNECT to go out before closing the connection.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// How this ingest distributes what it produces.
#[derive(Clone)]
pub struct DistributeConfig {
    /// This ingest's node id (`ingest1`): its MQTT client id is `ingest-{node_id}`, its
    /// presence and certificate topics are named by it, and it signs `Synced` with it.
    pub node_id: NodeId,
    /// Signs every segment statement.
    pub signing_key: Arc<SigningKey>,
    /// [`IngestCertificate::encode`] of the certificate for `signing_key`, announced
    /// (retained) so edges admit the key.
    pub certificate: Vec<u8>,
    /// The MQTT broker.
    pub broker: BrokerAddress,
    /// Presented on every push.
    pub push_token: PushToken,
    /// Checks broadcast presences against the cluster root: only nodes that signed theirs
    /// with a certified edge key are pushed to.
    pub presences: PresenceVerifier,
    /// Segments per rendition kept for late joiners (the ladder's window + 2, so a node
    /// that joins can serve a full playlist at once).
    pub window: usize,
    /// Time limit of one push attempt.
    pub push_timeout: Duration,
    /// Attempts per push before it is given up.
    pub push_attempts: u32,
    /// Requests queued per node before its queue is dropped and the node resynced.
    pub node_queue: usize,
    /// Where this ingest takes WHIP publishes (its WHIP HTTP base URL), announced in its
    /// presence, which it then signs with `signing_key` so that the load balancer believes
    /// it ([`DistributeConfig::with_whip_url`]).
    pub whip_url: Option<String>,
    /// Push every segment with its bytes, even to a node that took all its parts (which
    /// then assembles it from them otherwise). A diagnostic, for benchmarks that compare
    /// both (`SEALCAST_PUSH_WHOLE_SEGMENTS=1`); off by default.
    pub whole_segments: bool,
}

impl DistributeConfig {
    /// Default time limit of one push attempt.
    pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default attempts per push.
    pub const DEFAULT_PUSH_ATTEMPTS: u32 = 3;
    /// Default queue length per node.
    pub const DEFAULT_NODE_QUEUE: usize = 256;

    /// A configuration with the default push timeout, attempts and queue length.
    pub fn new(
        node_id: NodeId,
        signing_key: Arc<SigningKey>,
        certificate: Vec<u8>,
        broker: BrokerAddress,
        push_token: PushToken,
        presences: PresenceVerifier,
        window: usize,
    ) -> Self {
        DistributeConfig {
            node_id,
            signing_key,
            certificate,
            broker,
            push_token,
            presences,
            window,
            push_timeout: Self::DEFAULT_PUSH_TIMEOUT,
            push_attempts: Self::DEFAULT_PUSH_ATTEMPTS,
            node_queue: Self::DEFAULT_NODE_QUEUE,
            whip_url: None,
            whole_segments: false,
        }
    }

    /// Announces `url` as where this ingest takes WHIP publishes.
    pub fn with_whip_url(mut self, url: String) -> Self {
        self.whip_url = Some(url);
        self
    }

    /// Refuses settings that cannot work, and a certificate that is not for this node's key
    /// (every edge would refuse every segment).
    fn validate(&self) -> Result<(), IngestError> {
        if self.window == 0 {
            return Err(IngestError::InvalidDistributeConfig(
                "window must be at least 1",
            ));
        }
        if self.push_attempts == 0 {
            return Err(IngestError::InvalidDistributeConfig(
                "push_attempts must be at least 1",
            ));
        }
        if self.push_timeout.is_zero() {
            return Err(IngestError::InvalidDistributeConfig(
                "push_timeout must be above zero",
            ));
        }
        if self.node_queue == 0 {
            return Err(IngestError::InvalidDistributeConfig(
                "node_queue must be at least 1",
            ));
        }
        let certificate =
            IngestCertificate::decode(&self.certificate).map_err(IngestError::Certificate)?;
        if certificate.key_id() != self.signing_key.key_id() {
            return Err(IngestError::CertificateMismatch(
                "it certifies another signing key",
            ));
        }
        if certificate.node_id() != &self.node_id {
            return Err(IngestError::CertificateMismatch(
                "it names another ingest node",
            ));
        }
        if WallClock.unix_secs() > certificate.validity().not_after() {
            tracing::warn!(
                key_id = %certificate.key_id(),
                not_after = certificate.validity().not_after(),
                "the ingest certificate has expired: edges will refuse every segment until it is renewed"
            );
        }
        Ok(())
    }
}

impl fmt::Debug for DistributeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributeConfig")
            .field("node_id", &self.node_id)
            .field("signing_key", &self.signing_key)
            .field("certificate_len", &self.certificate.len())
            .field("broker", &self.broker)
            .field("push_token", &self.push_token)
            .field("presences", &self.presences)
            .field("window", &self.window)
            .field("push_timeout", &self.push_timeout)
            .field("push_attempts", &self.push_attempts)
            .field("node_queue", &self.node_queue)
            .field("whip_url", &self.whip_url)
            .field("whole_segments", &self.whole_segments)
            .finish()
    }
}

/// Consumes live events until the channel closes or `shutdown`; returns after a clean MQTT
/// disconnect.
///
/// When the channel closes, what is queued for each node is still sent (for at most
/// `push_timeout × push_attempts`); on `shutdown` pending pushes are abandoned. Either way
/// the envelopes of segments already received are signed and published, then the offline
/// presence.
pub async fn distribute(
    config: DistributeConfig,
    mut events: mpsc::Receiver<LiveEvent>,
    metrics: IngestMetrics,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    config.validate()?;
    let client = reqwest::Client::builder()
        // Pushes stay inside the cluster: an HTTP(S)_PROXY meant for the outside world
        // must not capture them.
        .no_proxy()
        .connect_timeout(config.push_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(IngestError::HttpClient)?;

    // Not a child of `shutdown`: the connection outlives it long enough to say goodbye.
    let bus_shutdown = CancellationToken::new();
    let own_presence = Topic::Presence(config.node_id.clone());
    let mut options = BusOptions::new(config.broker.clone(), format!("ingest-{}", config.node_id));
    options.persistent = true;
    options.last_will = Some((
        own_presence.clone(),
        Presence::offline(Role::Ingest).encode(),
    ));
    options.subscriptions = vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)];
    let (bus, mut bus_events, bus_task) = plumbing::connect(options, bus_shutdown.clone());

    let (outbox_tx, outbox_rx) = mpsc::channel(OUTBOX_LEN);
    let mut outbox_task = tokio::spawn(outbox::run(bus.clone(), outbox_rx));
    let (sign_tx, sign_rx) = mpsc::unbounded_channel();
    let (thumbnails_tx, mut thumbnails_rx) = mpsc::unbounded_channel();
    let signer = sign::spawn(
        Arc::clone(&config.signing_key),
        sign_rx,
        outbox_tx.clone(),
        thumbnails_tx,
        metrics.clone(),
    );
    let (sync_tx, mut sync_rx) = mpsc::unbounded_channel();
    let drain_grace = config.push_timeout * config.push_attempts;

    // A presence that names an address is signed (the load balancer believes no other).
    let whip = match &config.whip_url {
        Some(url) => {
            let certificate =
                IngestCertificate::decode(&config.certificate).map_err(IngestError::Certificate)?;
            let signer = PresenceSigner::new(Arc::clone(&config.signing_key), &certificate)
                .map_err(IngestError::Certificate)?;
            Some((url.clone(), signer))
        }
        None => None,
    };
    let mut distributor = Distributor {
        whip,
        node_id: config.node_id.clone(),
        certificate: config.certificate,
        snapshot: Snapshot::new(config.window),
        membership: Membership::new(config.presences.clone()),
        members: HashMap::new(),
        generation: 0,
        node_queue: config.node_queue,
        settings: PushSettings {
            client,
            token: config.push_token,
            timeout: config.push_timeout,
            attempts: config.push_attempts,
            metrics: metrics.clone(),
            sync_requests: sync_tx,
            key: Arc::clone(&config.signing_key),
            whole_segments: config.whole_segments,
        },
        pushers: TaskTracker::new(),
        pushers_shutdown: shutdown.child_token(),
        signer: Some(sign_tx),
        outbox: outbox_tx.clone(),
        metrics,
        thumbnails: HashMap::new(),
    };
    tracing::info!(node = %config.node_id, broker = %config.broker, "distributing to broadcast nodes");

    let result = loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            Some(request) = sync_rx.recv() => distributor.resync(&request),
            Some(thumbnail) = thumbnails_rx.recv() => distributor.thumbnail(thumbnail),
            bus_event = bus_events.recv() => match bus_event {
                Some(BusEvent::Connected) => distributor.connected(),
                Some(BusEvent::Message(m)) => {
                    if let Topic::Presence(node) = m.topic {
                        distributor.presence(node, &m.payload);
                    }
                }
                None => break Err(IngestError::MqttStopped),
            },
            event = events.recv() => match event {
                Some(event) => distributor.live(event),
                None => break Ok(()),
            },
        }
    };

    // Sign what was received; its bytes went out already.
    distributor.signer = None;
    if let Err(e) = signer.await {
        tracing::error!(error = %e, "the signing thread failed");
    }
    let drain = result.is_ok() && !shutdown.is_cancelled();
    distributor.wind_down(drain, drain_grace).await;

    // Goodbye: offline presence after everything else, then a clean disconnect.
    let offline = Outgoing {
        topic: own_presence.clone(),
        qos: Qos::AtLeastOnce,
        retain: true,
        payload: Presence::offline(Role::Ingest).encode(),
    };
    if outbox_tx.try_send(offline).is_err() {
        tracing::warn!("the MQTT outbox is full; leaving the offline presence to the last will");
    }
    drop(outbox_tx);
    if tokio::time::timeout(OUTBOX_GRACE, &mut outbox_task)
        .await
        .is_err()
    {
        tracing::warn!("the broker did not take the last MQTT messages in time");
        outbox_task.abort();
        let _ = outbox_task.await;
    }
    if result.is_ok() {
        await_offline_echo(&mut bus_events, &own_presence).await;
        if bus.disconnect().is_ok() {
            // The connection task ends once the DISCONNECT is out: the events stream ends.
            let _ = tokio::time::timeout(DISCONNECT_GRACE, async {
                while bus_events.recv().await.is_some() {}
            })
            .await;
        }
    }
    bus_shutdown.cancel();
    drop(bus_events);
    if let Err(e) = bus_task.await {
        tracing::error!(error = %e, "the MQTT connection task failed");
    }
    tracing::info!(node = %config.node_id, "distribution stopped");
    result
}

/// Waits (bounded) until the broker delivers our own offline presence back to us: then it
/// holds it as the retained state, and disconnecting loses nothing.
async fn await_offline_echo(bus_events: &mut mpsc::Receiver<BusEvent>, own: &Topic) {
    let echoed = tokio::time::timeout(OFFLINE_ECHO_WAIT, async {
        while let Some(event) = bus_events.recv().await {
            if let BusEvent::Message(m) = event {
                if &m.topic == own && Presence::decode(&m.payload).is_ok_and(|p| !p.is_up()) {
                    return;
                }
            }
        }
    })
    .await;
    if echoed.is_err() {
        tracing::warn!("the broker did not confirm the offline presence; the last will covers it");
    }
}

/// One broadcast member, as the distributor holds it.
#[derive(Debug)]
struct Member {
    /// Tells this member's pusher from a later one of the same node (see [`SyncRequest`]).
    generation: u64,
    queue: Arc<NodeQueue>,
    /// Stops its pusher.
    cancel: CancellationToken,
}

/// The distributor task's state.
#[derive(Debug)]
struct Distributor {
    /// The WHIP URL this ingest announces, and the signer of its presence.
    whip: Option<(String, PresenceSigner)>,
    node_id: NodeId,
    certificate: Vec<u8>,
    snapshot: Snapshot,
    membership: Membership,
    members: HashMap<NodeId, Member>,
    generation: u64,
    node_queue: usize,
    settings: PushSettings,
    /// Owns every pusher task; joined at the end.
    pushers: TaskTracker,
    /// Parent of every member's cancel token; cancelled by `shutdown`.
    pushers_shutdown: CancellationToken,
    /// Segments and parts to sign; `None` once closed.
    signer: Option<mpsc::UnboundedSender<SignJob>>,
    outbox: mpsc::Sender<Outgoing>,
    metrics: IngestMetrics,
    /// Each live stream's latest signed thumbnail, for nodes that join (or resync).
    thumbnails: HashMap<StreamName, Arc<SignedThumbnailPush>>,
}

impl Distributor {
    /// A live event: into the snapshot, into every member's queue (a part only if the
    /// queue has room to spare), and a segment or part to the signer.
    fn live(&mut self, event: LiveEvent) {
        let event = match event {
            LiveEvent::Thumbnail(thumbnail) => {
                if let Some(signer) = &self.signer {
                    let _ = signer.send(SignJob::Thumbnail(thumbnail));
                }
                return;
            }
            LiveEvent::Ended { stream, session } => {
                self.thumbnails.remove(&stream);
                LiveEvent::Ended { stream, session }
            }
            event => event,
        };
        let Some(item) = PushItem::from_live(event) else {
            return;
        };
        self.snapshot.record(&item);
        for (node, member) in &self.members {
            let put = member.queue.put(item.clone());
            if put == Put::PartDropped {
                self.metrics.part_dropped(node);
            }
            if put == Put::Overflowed {
                self.metrics.push_resync(node);
                tracing::warn!(
                    node = %node,
                    limit = self.node_queue,
                    "a broadcast node fell behind: its queue is dropped, and it will be sent the live window once its current push ends"
                );
            }
        }
        let job = match &item {
            PushItem::Segment { held, .. } => Some(SignJob::Segment(Arc::clone(held))),
            PushItem::Part(part) => Some(SignJob::Part(Arc::clone(part))),
            PushItem::Control(_) | PushItem::Thumbnail(_) => None,
        };
        if let (Some(job), Some(signer)) = (job, &self.signer) {
            // The thread ends only after this sender is dropped.
            let _ = signer.send(job);
        }
    }

    /// A thumbnail came back signed: to every member, and kept as its stream's latest.
    fn thumbnail(&mut self, signed: Arc<SignedThumbnailPush>) {
        let stream = signed.thumbnail.meta.stream.clone();
        for member in self.members.values() {
            let _ = member.queue.put(PushItem::Thumbnail(Arc::clone(&signed)));
        }
        if self.thumbnails.len() < MAX_THUMBNAIL_STREAMS || self.thumbnails.contains_key(&stream) {
            self.thumbnails.insert(stream, signed);
        }
    }

    /// Every stream's latest thumbnail, after a node's window.
    fn send_thumbnails(&self, queue: &NodeQueue) {
        for signed in self.thumbnails.values() {
            let _ = queue.put(PushItem::Thumbnail(Arc::clone(signed)));
        }
    }

    /// (Re)connected to the broker: announce presence and certificate again (a broker
    /// without persistence has forgotten them).
    fn connected(&self) {
        let presence = Presence {
            role: Role::Ingest,
            state: PresenceState::Ready,
            url: self.whip.as_ref().map(|(url, _)| url.clone()),
            direct_url: None,
        };
        let announced = match &self.whip {
            Some((_, signer)) => signer.sign(&self.node_id, &presence, WallClock.unix_ms()),
            None => presence.encode(),
        };
        for (topic, payload) in [
            (Topic::Presence(self.node_id.clone()), announced),
            (
                Topic::IngestCertificate(self.node_id.clone()),
                self.certificate.clone(),
            ),
        ] {
            let message = Outgoing {
                topic,
                qos: Qos::AtLeastOnce,
                retain: true,
                payload,
            };
            if self.outbox.try_send(message).is_err() {
                tracing::warn!("the MQTT outbox is full; presence or certificate not announced");
            }
        }
    }

    /// A presence message of `node`.
    fn presence(&mut self, node: NodeId, payload: &[u8]) {
        if node == self.node_id {
            return;
        }
        match self.membership.apply(&node, payload, WallClock.unix_secs()) {
            Change::None => {}
            Change::Invalid(reason) => {
                tracing::warn!(node = %node, reason, "ignoring an unusable presence message");
            }
            Change::Joined(url) => self.join(node, url),
            Change::Rejoined(url) => {
                self.leave(&node);
                self.join(node, url);
            }
            Change::Left => self.leave(&node),
        }
        self.metrics.set_members(self.members.len());
    }

    /// Starts pushing to a new member: the window first, then live events.
    fn join(&mut self, node: NodeId, url: String) {
        self.generation += 1;
        let queue = Arc::new(NodeQueue::new(self.node_queue));
        let sync = self.snapshot.sync_items(&self.node_id);
        tracing::info!(node = %node, url, items = sync.len(), "broadcast node joined; sending it the live window");
        queue.sync(sync);
        self.send_thumbnails(&queue);
        let cancel = self.pushers_shutdown.child_token();
        let pusher = Pusher {
            node: node.clone(),
            url,
            generation: self.generation,
            queue: Arc::clone(&queue),
            settings: self.settings.clone(),
            ledger: ledger::PartLedger::default(),
        };
        self.pushers.spawn(pusher.run(cancel.clone()));
        self.members.insert(
            node,
            Member {
                generation: self.generation,
                queue,
                cancel,
            },
        );
    }

    /// Stops pushing to a member; what was queued for it is dropped.
    fn leave(&mut self, node: &NodeId) {
        if let Some(member) = self.members.remove(node) {
            member.queue.close();
            member.cancel.cancel();
            tracing::info!(node = %node, "broadcast node left");
        }
    }

    /// A pusher whose queue overflowed has drained: give it the window again.
    fn resync(&mut self, request: &SyncRequest) {
        let Some(member) = self.members.get(&request.node) else {
            return;
        };
        if member.generation == request.generation && member.queue.sync_requested() {
            let sync = self.snapshot.sync_items(&self.node_id);
            tracing::info!(node = %request.node, items = sync.len(), "resyncing a broadcast node");
            member.queue.sync(sync);
            self.send_thumbnails(&member.queue);
        }
    }

    /// Stops every pusher: after they sent what is queued (bounded by `grace`) if `drain`,
    /// at once otherwise. Returns once all are joined.
    async fn wind_down(self, drain: bool, grace: Duration) {
        for member in self.members.values() {
            member.queue.close();
        }
        self.pushers.close();
        if drain
            && tokio::time::timeout(grace, self.pushers.wait())
                .await
                .is_err()
        {
            tracing::warn!("some broadcast nodes did not take their last pushes in time");
        }
        self.pushers_shutdown.cancel();
        self.pushers.wait().await;
    }
}

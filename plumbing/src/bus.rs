//! A role's connection to the brokers.
//!
//! [`connect`] returns at once; a task drives rumqttc's event loop until shutdown, one per
//! broker the address names. After every (re)connect it subscribes to the role's filters
//! again and reports [`BusEvent::Connected`], so the role can publish its retained state
//! again (presence, certificate) — a broker that restarted without persistence has
//! forgotten it. Failed connections are retried with a backoff capped at two seconds.
//!
//! Several brokers (`mqtt://user:pw@a:1883,b:1883`) are independent brokers of one
//! cluster, with the same users and ACLs and no bridge between them: the client is
//! connected to each at once, subscribed on each, and publishes on each that is
//! connected; its last will is set on each. So losing a broker costs nothing: every
//! message still comes through the others, nothing waits for a failover, and a broker's
//! death is never taken for its clients' (they are still connected elsewhere, so no will
//! fires; a client that dies loses every connection and every broker publishes its will).
//! Each message then arrives once per broker; [`crate::twins`] hands the first copy over
//! and drops the others, keeping each broker's order.
//!
//! While a broker is away nothing drains its connection's request queue (256 requests):
//! publishes skip a connection that is down while another is up; advisory messages
//! ([`Bus::publish_advisory`]) are dropped instead of queued, and a role's goodbye
//! ([`Bus::try_publish`], [`Bus::disconnect`]) never waits for room, so no role's shutdown
//! waits on a broker that is not there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::broker::BrokerAddress;
use domain::topics::Topic;
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::twins::Twins;
use crate::PlumbingError;

/// Largest incoming packet. Our own payloads are a few KiB (an ML-DSA-65 certificate is the
/// largest, about 5.3 KiB); anything bigger is not ours. rumqttc drops the connection on a
/// larger packet, so the cap is generous: a retained oversized message would otherwise be
/// redelivered on every reconnect.
const MAX_INCOMING: usize = 1024 * 1024;
const MAX_OUTGOING: usize = 64 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Delivery guarantee of a publish or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Fire and forget.
    AtMostOnce,
    /// Acknowledged, redelivered until acknowledged (signed statements).
    AtLeastOnce,
}

impl From<Qos> for QoS {
    fn from(q: Qos) -> Self {
        match q {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
        }
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// The brokers (one connection to each).
    pub broker: BrokerAddress,
    /// MQTT client id; unique in the cluster (the node id, with a role prefix).
    pub client_id: String,
    /// Keep the session (subscriptions, queued QoS 1 messages) across reconnects.
    pub persistent: bool,
    /// Published by the broker if the connection drops: topic, payload, retained.
    pub last_will: Option<(Topic, Vec<u8>)>,
    /// Filters to subscribe to after every connect (see [`Topic`]'s `filter_all_*`).
    pub subscriptions: Vec<(&'static str, Qos)>,
    /// Keep-alive interval; a dead peer is noticed after about one and a half of these.
    pub keep_alive: Duration,
}

impl BusOptions {
    /// Options with the usual defaults: persistent session, no will, no subscriptions,
    /// 5 s keep-alive.
    pub fn new(broker: BrokerAddress, client_id: impl Into<String>) -> Self {
        BusOptions {
            broker,
            client_id: client_id.into(),
            persistent: true,
            last_will: None,
            subscriptions: Vec::new(),
            keep_alive: Duration::from_secs(5),
        }
    }
}

/// A message that arrived on one of our topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published (already parsed; messages on other topics never get here).
    pub topic: Topic,
    /// The payload, undecoded: the receiving role decodes and validates it.
    pub payload: Bytes,
    /// Whether the broker delivered it as a retained message.
    pub retained: bool,
}

/// What the connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// Connected (again): subscriptions are renewed; publish retained state again.
    Connected,
    /// A message on a subscribed topic.
    Message(Message),
}

/// One broker's connection, as the [`Bus`] sees it.
#[derive(Debug)]
struct Link {
    client: AsyncClient,
    /// Whether the connection task holds a connection the broker acknowledged.
    connected: Arc<AtomicBool>,
}

impl Link {
    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn try_publish(&self, topic: &str, qos: Qos, retain: bool, payload: &[u8]) -> bool {
        self.client
            .try_publish(topic, qos.into(), retain, payload.to_vec())
            .is_ok()
    }
}

/// Publishes on the connections; cheap to clone.
#[derive(Debug, Clone)]
pub struct Bus {
    /// One per broker, in the address's order.
    links: Arc<[Link]>,
    /// Cancelled by [`Bus::disconnect`]: a connection that is down then ends at once
    /// instead of trying again, when another broker speaks for the role.
    leaving: CancellationToken,
}

impl Bus {
    /// Publishes `payload` on `topic`. Returns once the message is queued on a connection
    /// (QoS 1 messages are then kept and resent until the broker acknowledges them, across
    /// reconnects): on every connected one that has room, without waiting; if none took
    /// it, it waits for room on the first connected connection, or, with every broker away,
    /// is queued on each that has room and otherwise waits for the first's queue, which is
    /// full after enough publishes with the brokers away: not for a goodbye
    /// ([`Bus::try_publish`]).
    pub async fn publish(
        &self,
        topic: &Topic,
        qos: Qos,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PlumbingError> {
        let (topic, payload) = (topic.to_string(), payload.into());
        if self.queue(&topic, qos, retain, &payload) {
            return Ok(());
        }
        let wait_on = self
            .links
            .iter()
            .find(|l| l.is_connected())
            .or_else(|| self.links.first())
            .ok_or(PlumbingError::Closed)?;
        wait_on
            .client
            .publish(topic, qos.into(), retain, payload)
            .await
            .map_err(|_| PlumbingError::Closed)
    }

    /// Queues `payload` on `topic` where there is room, without waiting: on every
    /// connected connection, or with every broker away on each connection.
    /// [`PlumbingError::Busy`] if none has room (the brokers have not taken requests for a
    /// while).
    pub fn try_publish(
        &self,
        topic: &Topic,
        qos: Qos,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PlumbingError> {
        if self.queue(&topic.to_string(), qos, retain, &payload.into()) {
            Ok(())
        } else {
            Err(PlumbingError::Busy)
        }
    }

    /// How many brokers the connection holds now (of [`BrokerAddress::len`]).
    pub fn connected(&self) -> usize {
        self.links.iter().filter(|l| l.is_connected()).count()
    }

    /// The non-waiting publish: true if some connection took it.
    fn queue(&self, topic: &str, qos: Qos, retain: bool, payload: &[u8]) -> bool {
        let connected = self.links.iter().filter(|l| l.is_connected());
        let mut taken = 0;
        for link in connected {
            taken += usize::from(link.try_publish(topic, qos, retain, payload));
        }
        if taken == 0 && !self.links.iter().any(Link::is_connected) {
            // Every broker away: whichever comes back first sends it.
            for link in self.links.iter() {
                taken += usize::from(link.try_publish(topic, qos, retain, payload));
            }
        }
        taken > 0
    }

    /// Publishes an advisory message (a load report: at most once, not retained, sent
    /// again soon) on the connected brokers; dropped with [`PlumbingError::Busy`] if none
    /// is connected. Queued while a broker is away, such messages would be stale when they
    /// left, and enough of them would fill the queue in front of every other publish.
    pub fn publish_advisory(
        &self,
        topic: &Topic,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PlumbingError> {
        let (topic, payload) = (topic.to_string(), payload.into());
        let mut taken = false;
        for link in self.links.iter().filter(|l| l.is_connected()) {
            taken |= link.try_publish(&topic, Qos::AtMostOnce, false, &payload);
        }
        if taken {
            Ok(())
        } else {
            Err(PlumbingError::Busy)
        }
    }

    /// Removes the retained message of `topic` (an empty retained publish).
    pub async fn clear_retained(&self, topic: &Topic) -> Result<(), PlumbingError> {
        self.publish(topic, Qos::AtLeastOnce, true, Vec::new())
            .await
    }

    /// Asks for a clean disconnect from every broker, without waiting: the brokers will
    /// not publish the last will. Requests already queued (a final presence, say) go out
    /// first; then each connection task ends, and once all have the event receiver
    /// reports the end, which is how a caller knows they were written. A connection that
    /// is down ends at once when there are several (the others carry the goodbye).
    /// [`PlumbingError::Busy`] if no queue has room (the brokers are away: the last will
    /// speaks for the role).
    pub fn disconnect(&self) -> Result<(), PlumbingError> {
        self.leaving.cancel();
        let mut taken = false;
        for link in self.links.iter() {
            taken |= link.client.try_disconnect().is_ok();
        }
        if taken {
            Ok(())
        } else {
            Err(PlumbingError::Busy)
        }
    }
}

/// Connects to the brokers in the background. Incoming messages and connects arrive on the
/// returned receiver (bounded: a role that stops reading slows the connections down rather
/// than growing a queue), each message once however many brokers brought it. The task
/// ends when `shutdown` is cancelled, the receiver is dropped, or every connection ended
/// after [`Bus::disconnect`].
pub fn connect(
    options: BusOptions,
    shutdown: CancellationToken,
) -> (Bus, mpsc::Receiver<BusEvent>, JoinHandle<()>) {
    let leaving = CancellationToken::new();
    let brokers = options.broker.split();
    let several = brokers.len() > 1;
    let (merged_tx, merged_rx) = mpsc::channel(1024);
    let mut links = Vec::new();
    let mut drivers = JoinSet::new();
    for (index, broker) in brokers.into_iter().enumerate() {
        let (client, event_loop) = AsyncClient::new(mqtt_options(&options, &broker), 256);
        let connected = Arc::new(AtomicBool::new(false));
        links.push(Link {
            client: client.clone(),
            connected: Arc::clone(&connected),
        });
        let driver = Driver {
            index,
            broker,
            client_id: options.client_id.clone(),
            subscriptions: options.subscriptions.clone(),
            client,
            connected,
            tx: merged_tx.clone(),
            leaving: several.then(|| leaving.clone()),
            shutdown: shutdown.clone(),
        };
        drivers.spawn(driver.drive(event_loop));
    }
    drop(merged_tx);
    let links: Arc<[Link]> = links.into();
    let bus = Bus {
        links: Arc::clone(&links),
        leaving,
    };
    let (tx, rx) = mpsc::channel(1024);
    let task = tokio::spawn(merge(links, drivers, merged_rx, tx, shutdown));
    (bus, rx, task)
}

fn mqtt_options(options: &BusOptions, broker: &BrokerAddress) -> MqttOptions {
    let mut mqtt = MqttOptions::new(options.client_id.clone(), broker.host(), broker.port());
    mqtt.set_keep_alive(options.keep_alive.max(Duration::from_secs(1)))
        .set_clean_session(!options.persistent)
        .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
        .set_inflight(100);
    if let Some((user, password)) = broker.credentials() {
        mqtt.set_credentials(user, password);
    }
    if let Some((topic, payload)) = &options.last_will {
        mqtt.set_last_will(LastWill::new(
            topic.to_string(),
            payload.clone(),
            QoS::AtLeastOnce,
            true,
        ));
    }
    mqtt
}

/// Hands the connections' events to the role: every connect, and the first copy of each
/// message ([`Twins`]). Owns the connection tasks: they end with it.
async fn merge(
    links: Arc<[Link]>,
    mut drivers: JoinSet<()>,
    mut merged: mpsc::Receiver<(usize, BusEvent)>,
    tx: mpsc::Sender<BusEvent>,
    shutdown: CancellationToken,
) {
    let mut twins = Twins::default();
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => break,
            received = merged.recv() => received,
        };
        // None: every connection task ended (shutdown, or disconnect).
        let Some((index, event)) = received else {
            break;
        };
        if let BusEvent::Message(m) = &event {
            if links.len() > 1 {
                let connected = links
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.is_connected())
                    .fold(0u64, |set, (i, _)| set | (1 << i));
                let key = twins.key(&m.topic.to_string(), &m.payload);
                if !twins.first(key, index, connected, Instant::now()) {
                    continue;
                }
            }
        }
        if !deliver(&tx, event, &shutdown).await {
            break;
        }
    }
    drivers.shutdown().await;
}

/// One broker's connection task.
struct Driver {
    index: usize,
    broker: BrokerAddress,
    client_id: String,
    subscriptions: Vec<(&'static str, Qos)>,
    client: AsyncClient,
    connected: Arc<AtomicBool>,
    tx: mpsc::Sender<(usize, BusEvent)>,
    /// With several brokers: cancelled by [`Bus::disconnect`], ending a connection that is
    /// down.
    leaving: Option<CancellationToken>,
    shutdown: CancellationToken,
}

impl Driver {
    async fn drive(self, mut event_loop: rumqttc::EventLoop) {
        let never = CancellationToken::new();
        let leaving = self.leaving.as_ref().unwrap_or(&never);
        let broker = &self.broker;
        let mut backoff = Duration::from_millis(100);
        loop {
            let polled = tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = leaving.cancelled(), if !self.connected.load(Ordering::Acquire) => break,
                polled = event_loop.poll() => polled,
            };
            let event = match polled {
                Ok(event) => event,
                Err(e) => {
                    if self.connected.swap(false, Ordering::AcqRel) {
                        tracing::warn!(%broker, error = %Reason(&e), "MQTT connection lost; reconnecting");
                    } else {
                        tracing::debug!(%broker, error = %Reason(&e), "MQTT connect failed; retrying");
                    }
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = leaving.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            match event {
                Event::Incoming(Packet::ConnAck(_)) => {
                    backoff = Duration::from_millis(100);
                    self.connected.store(true, Ordering::Release);
                    tracing::info!(%broker, client = %self.client_id, "MQTT connected");
                    for (filter, qos) in &self.subscriptions {
                        // Queued on the client's request channel; the event loop sends it.
                        if self.client.try_subscribe(*filter, (*qos).into()).is_err() {
                            tracing::warn!(filter, "could not queue an MQTT subscription");
                        }
                    }
                    if !self.hand_over(BusEvent::Connected).await {
                        break;
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let Some(topic) = Topic::parse(&p.topic) else {
                        tracing::debug!(topic = %p.topic, "message on a topic that is not ours; ignored");
                        continue;
                    };
                    let message = Message {
                        topic,
                        payload: p.payload,
                        retained: p.retain,
                    };
                    if !self.hand_over(BusEvent::Message(message)).await {
                        break;
                    }
                }
                // We asked to disconnect ([`Bus::disconnect`]): the connection is done.
                Event::Outgoing(rumqttc::Outgoing::Disconnect) => break,
                _ => {}
            }
        }
        self.connected.store(false, Ordering::Release);
    }

    /// Hands `event` to the merge; false if it is gone or shutdown came first.
    async fn hand_over(&self, event: BusEvent) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            sent = self.tx.send((self.index, event)) => sent.is_ok(),
        }
    }
}

/// Hands `event` to the role; false if the role is gone or shutdown came first (a role
/// that stopped reading must not hold its connection task up).
async fn deliver(
    tx: &mpsc::Sender<BusEvent>,
    event: BusEvent,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        sent = tx.send(event) => sent.is_ok(),
    }
}

/// A connection error without anything secret in it (rumqttc errors never carry the
/// password, but keep what is logged short).
struct Reason<'a>(&'a ConnectionError);

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            ConnectionError::ConnectionRefused(code) => {
                write!(f, "refused by the broker: {code:?}")
            }
            ConnectionError::Io(e) => write!(f, "{e}"),
            other => write!(f, "{other}"),
        }
    }
}

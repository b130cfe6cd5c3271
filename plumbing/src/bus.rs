//! A role's connection to the broker.
//!
//! [`connect`] returns at once; a task drives rumqttc's event loop until shutdown. After
//! every (re)connect it subscribes to the role's filters again and reports
//! [`BusEvent::Connected`], so the role can publish its retained state again (presence,
//! certificate) — a broker that restarted without persistence has forgotten it. Failed
//! connections are retried with a backoff capped at two seconds.
//!
//! While the broker is away nothing drains the connection's request queue (256 requests):
//! advisory messages ([`Bus::publish_advisory`]) are dropped instead of queued, and a role's
//! goodbye ([`Bus::try_publish`], [`Bus::disconnect`]) never waits for room, so no role's
//! shutdown waits on a broker that is not there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::broker::BrokerAddress;
use domain::topics::Topic;
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    /// The broker.
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

/// Publishes on the connection; cheap to clone.
#[derive(Debug, Clone)]
pub struct Bus {
    client: AsyncClient,
    /// Whether the connection task holds a connection the broker acknowledged.
    connected: Arc<AtomicBool>,
}

impl Bus {
    /// Publishes `payload` on `topic`. Returns once the message is queued on the
    /// connection (QoS 1 messages are then kept and resent until the broker acknowledges
    /// them, across reconnects). Waits while the queue is full, which it is after enough
    /// publishes with the broker away: not for a goodbye ([`Bus::try_publish`]).
    pub async fn publish(
        &self,
        topic: &Topic,
        qos: Qos,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PlumbingError> {
        self.client
            .publish(topic.to_string(), qos.into(), retain, payload.into())
            .await
            .map_err(|_| PlumbingError::Closed)
    }

    /// Queues `payload` on `topic` if the queue has room, without waiting:
    /// [`PlumbingError::Busy`] if it has none (the broker has not taken requests for a
    /// while).
    pub fn try_publish(
        &self,
        topic: &Topic,
        qos: Qos,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PlumbingError> {
        self.client
            .try_publish(topic.to_string(), qos.into(), retain, payload.into())
            .map_err(|_| PlumbingError::Busy)
    }

    /// Publishes an advisory message (a load report: at most once, not retained, sent
    /// again soon) if the broker is connected; dropped with [`PlumbingError::Busy`]
    /// otherwise. Queued while the broker is away, such messages would be stale when they
    /// left, and enough of them would fill the queue in front of every other publish.
    pub fn publish_advisory(
        &self,
        topic: &Topic,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), PlumbingError> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(PlumbingError::Busy);
        }
        self.try_publish(topic, Qos::AtMostOnce, false, payload)
    }

    /// Removes the retained message of `topic` (an empty retained publish).
    pub async fn clear_retained(&self, topic: &Topic) -> Result<(), PlumbingError> {
        self.publish(topic, Qos::AtLeastOnce, true, Vec::new())
            .await
    }

    /// Asks for a clean disconnect, without waiting: the broker will not publish the last
    /// will. Requests already queued (a final presence, say) go out first; then the
    /// connection task ends and the event receiver reports the end, which is how a caller
    /// knows they were written. [`PlumbingError::Busy`] if the queue has no room (the
    /// broker is away: the last will speaks for the role).
    pub fn disconnect(&self) -> Result<(), PlumbingError> {
        self.client
            .try_disconnect()
            .map_err(|_| PlumbingError::Busy)
    }
}

/// Connects to the broker in the background. Incoming messages and connects arrive on the
/// returned receiver (bounded: a role that stops reading slows the connection down rather
/// than growing a queue). The task ends when `shutdown` is cancelled or the receiver is
/// dropped.
pub fn connect(
    options: BusOptions,
    shutdown: CancellationToken,
) -> (Bus, mpsc::Receiver<BusEvent>, JoinHandle<()>) {
    let mut mqtt = MqttOptions::new(
        options.client_id.clone(),
        options.broker.host().to_owned(),
        options.broker.port(),
    );
    mqtt.set_keep_alive(options.keep_alive.max(Duration::from_secs(1)))
        .set_clean_session(!options.persistent)
        .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
        .set_inflight(100);
    if let Some((user, password)) = options.broker.credentials() {
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
    let (client, event_loop) = AsyncClient::new(mqtt, 256);
    let (tx, rx) = mpsc::channel(1024);
    let connected = Arc::new(AtomicBool::new(false));
    let bus = Bus {
        client: client.clone(),
        connected: Arc::clone(&connected),
    };
    let task = tokio::spawn(drive(options, client, event_loop, tx, connected, shutdown));
    (bus, rx, task)
}

async fn drive(
    options: BusOptions,
    client: AsyncClient,
    mut event_loop: rumqttc::EventLoop,
    tx: mpsc::Sender<BusEvent>,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let polled = tokio::select! {
            () = shutdown.cancelled() => break,
            polled = event_loop.poll() => polled,
        };
        let event = match polled {
            Ok(event) => event,
            Err(e) => {
                if connected.swap(false, Ordering::AcqRel) {
                    tracing::warn!(broker = %options.broker, error = %Reason(&e), "MQTT connection lost; reconnecting");
                } else {
                    tracing::debug!(broker = %options.broker, error = %Reason(&e), "MQTT connect failed; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                backoff = Duration::from_millis(100);
                connected.store(true, Ordering::Release);
                tracing::info!(broker = %options.broker, client = %options.client_id, "MQTT connected");
                for (filter, qos) in &options.subscriptions {
                    // Queued on the client's request channel; the event loop sends it.
                    if client.try_subscribe(*filter, (*qos).into()).is_err() {
                        tracing::warn!(filter, "could not queue an MQTT subscription");
                    }
                }
                if !deliver(&tx, BusEvent::Connected, &shutdown).await {
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
                if !deliver(&tx, BusEvent::Message(message), &shutdown).await {
                    break;
                }
            }
            // We asked to disconnect ([`Bus::disconnect`]): the connection is done.
            Event::Outgoing(rumqttc::Outgoing::Disconnect) => break,
            _ => {}
        }
    }
    connected.store(false, Ordering::Release);
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

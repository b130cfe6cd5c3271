//! The edge's MQTT side: what it learns from the broker and what it announces there.
//!
//! In: ingest certificates and revocations (into the trust store), signed statements of
//! segments and of LL-HLS parts (into the gate or the part gate, after verification on the
//! blocking pool), presences (which ingests are up, for
//! readiness). Messages are handled one at a time in arrival order, so a retained
//! certificate is admitted before the statements that need it.
//!
//! Out: this node's retained presence (`joining`, then `ready`, and `behind` while the gate
//! is more than a segment behind live: [`super::ready::Lag`]), published again after
//! every (re)connect (and received back: its live echo tells readiness that every
//! retained presence has arrived); a retained `offline` as last will and on shutdown; its load report
//! every two seconds, when [`EdgeConfig::load_reports`](crate::EdgeConfig::load_reports)
//! gives one. The connection's client id is the node id, so a broker ACL can let each
//! node write only `sealcast/v1/nodes/{its id}/...` (`pattern write ... %c ...`).
//!
//! A payload that does not decode or does not fit its topic is one warning and one count in
//! `sealcast_control_messages_ignored_total{kind}`, and changes nothing else. An empty
//! payload is a cleared retained message: normal, ignored without a word.

use std::sync::Arc;
use std::time::Duration;

use domain::load::REPORT_EVERY;
use domain::presence::{Announcement, Presence, Role};
use domain::topics::Topic;
use domain::wire::{MediaStatement, SignedMedia, PART_KEY_TAG};
use plumbing::{Bus, BusEvent, BusOptions, Message, Qos};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Edge;
use crate::BroadcastError;

/// How often readiness is re-evaluated.
const READY_CHECK: Duration = Duration::from_millis(100);

/// How long shutdown waits for the offline presence and the DISCONNECT to leave. Should
/// they not, the broker publishes the (identical) last will when the connection drops.
const GOODBYE: Duration = Duration::from_secs(2);

/// Handles one message from the broker ([`Edge::handle_message`]).
pub(super) async fn handle(edge: &Edge, message: &Message) {
    let kind = match &message.topic {
        Topic::Presence(_) => "presence",
        Topic::IngestCertificate(_) => "certificate",
        Topic::Revocation(_) => "revocation",
        // The label keeps the old word; it is wire (`metrics::MESSAGE_KINDS`).
        Topic::MediaStatements(..) => "manifest",
        // Not subscribed; nothing to do with it.
        Topic::NodeLoad(_) | Topic::IngestLoad(_) => return,
    };
    if let Topic::Presence(node) = &message.topic {
        if !message.retained && node == edge.node().id() {
            edge.echoed(&message.payload);
            return;
        }
    }
    if message.payload.is_empty() {
        // A cleared retained message. A cleared presence means the node is gone.
        if let Topic::Presence(node) = &message.topic {
            edge.readiness.lock().ingest(node.clone(), false);
        }
        return;
    }
    if let Err(e) = decode_and_apply(edge, message).await {
        tracing::warn!(kind, topic = %message.topic, error = %e, "ignored a control message");
        edge.node().metrics.control_ignored(kind);
    }
}

async fn decode_and_apply(edge: &Edge, message: &Message) -> Result<(), BroadcastError> {
    let payload = message.payload.clone();
    match &message.topic {
        Topic::Presence(node) => {
            // Broadcast peers' presences say nothing an edge needs; ingest presences
            // (plain, or signed by the ingest when they name its WHIP URL) tell readiness
            // which ingests are up.
            let presence = match Announcement::decode(&payload)? {
                Announcement::Plain(presence) => Some(presence),
                signed @ Announcement::Signed(_) => signed.claimed().ok(),
            };
            if let Some(presence) = presence.filter(|p| p.role == Role::Ingest) {
                edge.readiness.lock().ingest(node.clone(), presence.is_up());
            }
            Ok(())
        }
        Topic::IngestCertificate(node) => edge.admit_certificate(node.clone(), payload).await,
        Topic::Revocation(key_id) => edge.revoke(*key_id, payload).await,
        Topic::MediaStatements(stream, rendition) => {
            // Segment and part statements share the topic, told apart by their tag, and
            // so do the part-key delegations (the statement opens after the envelope's
            // four length bytes).
            if payload
                .get(4..)
                .is_some_and(|s| s.starts_with(PART_KEY_TAG))
            {
                return edge.offer_part_key((stream, rendition), payload).await;
            }
            let signed = SignedMedia::decode(&payload)?;
            let statement = signed.statement()?;
            let (s, r) = match &statement {
                MediaStatement::Segment(m) => (&m.stream, &m.rendition),
                MediaStatement::Part(m) => (&m.stream, &m.rendition),
            };
            if s != stream || r != rendition {
                return Err(BroadcastError::TopicMismatch {
                    what: "statement of another stream or rendition",
                });
            }
            edge.offer_statement(payload, signed, statement).await
        }
        Topic::NodeLoad(_) | Topic::IngestLoad(_) => Ok(()),
    }
}

/// The connection options of an edge: the node id as client id, persistent session,
/// offline will, our filters.
fn options(edge: &Edge) -> BusOptions {
    let node = edge.node().id();
    let mut options = BusOptions::new(edge.config.broker.clone(), node.to_string());
    options.persistent = true;
    // Signed when the connection is made; an offline presence needs no freshness.
    options.last_will = Some((
        Topic::Presence(node.clone()),
        edge.signed_presence(&Presence::offline(Role::Broadcast)),
    ));
    options.subscriptions = vec![
        (Topic::filter_all_presence(), Qos::AtLeastOnce),
        (Topic::filter_all_certificates(), Qos::AtLeastOnce),
        (Topic::filter_all_revocations(), Qos::AtLeastOnce),
        (Topic::filter_all_media_statements(), Qos::AtLeastOnce),
    ];
    options
}

/// Runs the MQTT side until `stop`, then says goodbye.
pub(crate) async fn run(edge: Arc<Edge>, stop: CancellationToken) {
    // The connection gets its own token: on shutdown it must outlive `stop` long enough to
    // carry the offline presence and the DISCONNECT.
    let connection = CancellationToken::new();
    let (bus, mut events, task) = plumbing::connect(options(&edge), connection.clone());
    let presence = Topic::Presence(edge.node().id().clone());
    let mut ready_check = tokio::time::interval(READY_CHECK);
    ready_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let load = Topic::NodeLoad(edge.node().id().clone());
    let mut report = tokio::time::interval(REPORT_EVERY);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    let mut announced = edge.presence_state();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            event = events.recv(), if open => match event {
                Some(BusEvent::Connected) => {
                    announced = edge.presence_state();
                    announce(&bus, &presence, edge.presence()).await;
                }
                Some(BusEvent::Message(message)) => edge.handle_message(&message).await,
                None => {
                    // Only happens if the connection task ended on its own.
                    tracing::error!("the MQTT connection task ended; control messages stop");
                    open = false;
                }
            },
            _ = ready_check.tick() => {
                // Ready once; then behind or ready again as the gate's lag settles.
                edge.check_ready();
                let state = edge.presence_state();
                if state != announced {
                    announced = state;
                    announce(&bus, &presence, edge.presence()).await;
                }
            }
            _ = report.tick(), if edge.config.load_reports.is_some() => {
                if let Some(sampler) = &edge.config.load_reports {
                    let payload = sampler.sample().encode();
                    // Advisory and sent again in two seconds: dropped while the broker is
                    // away, never queued behind it (`Bus::publish_advisory`).
                    if let Err(e) = bus.publish_advisory(&load, payload) {
                        tracing::debug!(error = %e, "could not publish the load report");
                    }
                }
            }
        }
    }
    let offline = edge.signed_presence(&Presence::offline(Role::Broadcast));
    goodbye(&bus, &presence, offline, &mut events).await;
    connection.cancel();
    if let Err(e) = task.await {
        tracing::error!(error = %e, "the MQTT connection task failed");
    }
}

/// Publishes our retained presence.
async fn announce(bus: &Bus, topic: &Topic, payload: Vec<u8>) {
    if let Err(e) = bus.publish(topic, Qos::AtLeastOnce, true, payload).await {
        tracing::warn!(error = %e, "could not publish presence");
    }
}

/// Publishes `offline` (retained) and disconnects. Requests leave in order and the
/// connection task ends once its DISCONNECT is out (`plumbing::Bus::disconnect`), so the end
/// of the event stream means the offline presence has been written. Nothing here waits on
/// the broker for longer than `GOODBYE`: with the broker away, the queue may be full and
/// the events never end; the last will then speaks for the node.
async fn goodbye(
    bus: &Bus,
    topic: &Topic,
    offline: Vec<u8>,
    events: &mut mpsc::Receiver<BusEvent>,
) {
    if let Err(e) = bus.try_publish(topic, Qos::AtLeastOnce, true, offline) {
        tracing::warn!(error = %e, "could not queue the offline presence; the last will covers it");
        return;
    }
    if bus.disconnect().is_err() {
        return;
    }
    let drained =
        tokio::time::timeout(GOODBYE, async { while events.recv().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::debug!("broker did not confirm the disconnect in time; the last will covers it");
    }
}

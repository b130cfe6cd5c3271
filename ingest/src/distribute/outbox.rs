//! Every MQTT publish of the ingest, in order, from one task.
//!
//! Publishing waits when the MQTT client's own queue is full (a broker that is slow or
//! away), and neither the distributor nor the signing thread may wait for the broker, so
//! they hand messages to this task through a bounded channel without blocking. One task
//! also keeps the order: presence before certificate, statements of a rendition in
//! sequence order, the offline presence last.

use domain::topics::Topic;
use plumbing::{Bus, Qos};
use tokio::sync::mpsc;

/// Messages waiting for the broker; beyond this, new ones are dropped with a warning.
pub(crate) const OUTBOX_LEN: usize = 4096;

/// One publish.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) topic: Topic,
    pub(crate) qos: Qos,
    pub(crate) retain: bool,
    pub(crate) payload: Vec<u8>,
}

/// Publishes until the channel closes and is drained, or the connection is gone.
pub(crate) async fn run(bus: Bus, mut messages: mpsc::Receiver<Outgoing>) {
    while let Some(m) = messages.recv().await {
        if bus
            .publish(&m.topic, m.qos, m.retain, m.payload)
            .await
            .is_err()
        {
            tracing::debug!("the MQTT connection is closed; the outbox stops");
            return;
        }
    }
}

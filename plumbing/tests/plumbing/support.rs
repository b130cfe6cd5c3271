//! What the bus tests share: waiting for a message, and making sure a subscription is in
//! place before a QoS 1 message is published (one published before would never arrive).

use std::time::Duration;

use domain::topics::Topic;
use plumbing::{Bus, BusEvent, Message, Qos};
use tokio::sync::mpsc;

/// The longest any step of a bus test may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Waits for the first message on `topic` (skipping others and connects).
pub(crate) async fn next_on(rx: &mut mpsc::Receiver<BusEvent>, topic: &Topic) -> Message {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match rx.recv().await.expect("connection alive") {
                BusEvent::Message(m) if &m.topic == topic => return m,
                _ => {}
            }
        }
    })
    .await
    .expect("message within the deadline")
}

/// Publishes probes on `topic` through `bus` (at most once, payload `label n`) until `rx`
/// gets the one just published within 200 ms: the subscription it comes through is in
/// place.
pub(crate) async fn probe_until_heard(
    rx: &mut mpsc::Receiver<BusEvent>,
    bus: &Bus,
    topic: &Topic,
    label: &str,
) {
    tokio::time::timeout(DEADLINE, async {
        for n in 0u32.. {
            let payload = format!("{label} {n}").into_bytes();
            bus.publish(topic, Qos::AtMostOnce, false, payload.clone())
                .await
                .expect("publish");
            let arrived = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match rx.recv().await.expect("connection alive") {
                        BusEvent::Message(m) if m.payload == payload => return,
                        _ => {}
                    }
                }
            })
            .await;
            if arrived.is_ok() {
                return;
            }
        }
    })
    .await
    .expect("the subscription is in place");
}

//! The bus against real brokers: the embedded one and Mosquitto (a throwaway one on a free
//! port, or `SEALCAST_TEST_MQTT_URL`'s; see `testkit::mosquitto`).
//! Retained messages reach late subscribers, a dropped connection publishes its last
//! will, QoS 1 messages arrive, messages on foreign topics never surface.

use domain::broker::BrokerAddress;
use domain::topics::Topic;
use domain::NodeId;
use plumbing::{connect, Bus, BusEvent, BusOptions, EmbeddedBroker, Qos};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{next_on, probe_until_heard, DEADLINE};

fn unique(prefix: &str) -> NodeId {
    NodeId::new(format!("{prefix}-{:08x}", rand::random::<u32>())).expect("valid")
}

async fn connected(rx: &mut mpsc::Receiver<BusEvent>) {
    tokio::time::timeout(DEADLINE, async {
        while rx.recv().await.expect("connection alive") != BusEvent::Connected {}
    })
    .await
    .expect("connects");
}

async fn client(
    broker: &BrokerAddress,
    id: &str,
    will: Option<(Topic, Vec<u8>)>,
    subscriptions: Vec<(&'static str, Qos)>,
    shutdown: &CancellationToken,
) -> (Bus, mpsc::Receiver<BusEvent>, tokio::task::JoinHandle<()>) {
    let mut options = BusOptions::new(broker.clone(), id);
    options.last_will = will;
    options.subscriptions = subscriptions;
    options.persistent = false;
    let (bus, mut rx, task) = connect(options, shutdown.child_token());
    connected(&mut rx).await;
    (bus, rx, task)
}

async fn exercise(broker: BrokerAddress) {
    let shutdown = CancellationToken::new();
    let node = unique("bus-test");
    let presence = Topic::Presence(node.clone());

    // A node with a last will publishes retained presence.
    let (node_bus, _node_rx, node_task) = client(
        &broker,
        &format!("t-{node}"),
        Some((presence.clone(), b"offline".to_vec())),
        vec![],
        &shutdown,
    )
    .await;
    node_bus
        .publish(&presence, Qos::AtLeastOnce, true, b"online".to_vec())
        .await
        .expect("publish");

    // A later subscriber gets it as a retained message. It also subscribes to statements.
    let (_watcher, mut rx, _watcher_task) = client(
        &broker,
        &format!("w-{node}"),
        None,
        vec![
            (Topic::filter_all_presence(), Qos::AtLeastOnce),
            (Topic::filter_all_media_statements(), Qos::AtLeastOnce),
        ],
        &shutdown,
    )
    .await;
    let m = next_on(&mut rx, &presence).await;
    assert_eq!(&m.payload[..], b"online");

    // The watcher's two subscriptions are two SUBSCRIBE packets; the retained presence
    // shows only the first in place. Probe the second until a probe arrives, so the
    // statement below is not published before the broker holds that subscription (a
    // QoS 1 message published before it would never be delivered).
    let probe = Topic::MediaStatements(
        domain::StreamName::new(node.as_str()).expect("valid"),
        domain::RenditionName::new("probe").expect("valid"),
    );
    probe_until_heard(&mut rx, &node_bus, &probe, "probe").await;

    // QoS 1 delivery on a statement topic.
    let statement = Topic::MediaStatements(
        domain::StreamName::new(node.as_str()).expect("valid"),
        domain::RenditionName::new("src").expect("valid"),
    );
    node_bus
        .publish(&statement, Qos::AtLeastOnce, false, vec![1, 2, 3])
        .await
        .expect("publish");
    let m = next_on(&mut rx, &statement).await;
    assert_eq!((&m.payload[..], m.retained), (&[1u8, 2, 3][..], false));

    // The node vanishes without a DISCONNECT: the broker publishes its will.
    node_task.abort();
    let m = next_on(&mut rx, &presence).await;
    assert_eq!(&m.payload[..], b"offline");

    // Clean up the retained message on a shared broker.
    let (cleaner, _c_rx, _c_task) =
        client(&broker, &format!("c-{node}"), None, vec![], &shutdown).await;
    cleaner.clear_retained(&presence).await.expect("clear");
    cleaner.disconnect().expect("disconnect");
    shutdown.cancel();
}

#[tokio::test]
async fn embedded_broker() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().expect("addr")).expect("starts");
    exercise(broker.address()).await;
}

/// The login of `sealcast up`'s broker: the bus works with it, and a client without it, or
/// with another password, gets no session (so cannot announce a node or read a statement).
#[tokio::test]
async fn embedded_broker_with_a_login_takes_only_that_login() {
    let broker = EmbeddedBroker::start_with_login(
        "127.0.0.1:0".parse().expect("addr"),
        plumbing::EMBEDDED_BROKER_USER,
        "0123456789abcdef0123456789abcdef",
    )
    .expect("starts");
    exercise(broker.address()).await;
    let addr = broker.local_addr();
    let outcome = |login: Option<(&'static str, &'static str)>| {
        tokio::task::spawn_blocking(move || testkit::mosquitto::connack(addr, login))
    };
    assert_eq!(
        outcome(Some(("sealcast", "0123456789abcdef0123456789abcdef")))
            .await
            .expect("no panic"),
        Some(0)
    );
    for login in [
        None,
        Some(("sealcast", "wrong")),
        Some(("other", "0123456789abcdef0123456789abcdef")),
    ] {
        let got = outcome(login).await.expect("no panic");
        assert_ne!(got, Some(0), "{login:?} was accepted");
    }
}

#[tokio::test]
async fn mosquitto() {
    let broker = tokio::task::spawn_blocking(testkit::mosquitto::broker)
        .await
        .expect("no panic")
        .unwrap_or_else(|e| panic!("{e:#}"));
    exercise(BrokerAddress::new(broker.host, broker.port)).await;
}

#[tokio::test]
async fn an_absent_broker_is_retried_without_error() {
    // A port nothing listens on: the bus keeps trying and shuts down when told.
    let port = testkit::net::free_port().expect("port");
    let shutdown = CancellationToken::new();
    let (_bus, _rx, task) = connect(
        BusOptions::new(BrokerAddress::new("127.0.0.1", port), "nobody"),
        shutdown.child_token(),
    );
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("stops on shutdown")
        .expect("no panic");
}

/// With the broker away, nothing drains the connection's queue: an advisory message is
/// dropped, not queued; a goodbye neither waits for room nor blocks once the queue is full;
/// the connection task still stops when told. Each call here would wait for ever if it
/// waited for room.
#[tokio::test]
async fn an_absent_broker_never_makes_a_publisher_wait() {
    let port = testkit::net::free_port().expect("port");
    let shutdown = CancellationToken::new();
    let (bus, _rx, task) = connect(
        BusOptions::new(BrokerAddress::new("127.0.0.1", port), "nobody"),
        shutdown.child_token(),
    );
    let topic = Topic::NodeLoad(unique("load"));
    for _ in 0..1000 {
        assert!(
            matches!(
                bus.publish_advisory(&topic, b"load".to_vec()),
                Err(plumbing::PlumbingError::Busy)
            ),
            "an advisory message is dropped while the broker is away"
        );
    }
    // Fill the queue (256 requests) with what a role would keep, then one more.
    let presence = Topic::Presence(unique("node"));
    let queued = (0..1000)
        .take_while(|_| {
            bus.try_publish(&presence, Qos::AtLeastOnce, true, b"p".to_vec())
                .is_ok()
        })
        .count();
    assert!(
        (1..1000).contains(&queued),
        "the queue took {queued} requests"
    );
    assert!(
        matches!(bus.disconnect(), Err(plumbing::PlumbingError::Busy)),
        "a full queue refuses the disconnect at once"
    );
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("stops on shutdown")
        .expect("no panic");
}

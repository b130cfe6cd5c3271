//! The bus against two real Mosquitto brokers (issue 50 item 3), started by each test on
//! free ports with no bridge between them, as compose and Kubernetes run them: every
//! client is connected to both. A broker killed (SIGKILL) under a stream of QoS 1
//! statements loses none of them and repeats none; a broker's death is not its clients'
//! (no last will), a client's death is (the other broker's will); a broker that restarts
//! empty gets the retained state again from its clients; a client whose other broker is
//! dead still leaves at once.

use std::time::Duration;

use domain::broker::BrokerAddress;
use domain::topics::Topic;
use domain::{NodeId, RenditionName, StreamName};
use plumbing::{connect, Bus, BusEvent, BusOptions, Qos};
use testkit::mosquitto::Mosquitto;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{next_on, probe_until_heard, DEADLINE};

/// How long a broker's death may hold a statement up.
const FAILOVER: Duration = Duration::from_secs(3);

/// A throwaway Mosquitto: anonymous, no persistence, on a free loopback port.
/// Mosquitto keeps a copy of the conf, so this one goes at once.
async fn mosquitto() -> Mosquitto {
    let conf = std::env::temp_dir().join(format!("{}.conf", unique("plumbing-broker")));
    std::fs::write(
        &conf,
        "listener 1883\nallow_anonymous true\npersistence false\nlog_dest stderr\n",
    )
    .expect("conf");
    let started = tokio::task::spawn_blocking({
        let conf = conf.clone();
        move || Mosquitto::start(&conf, &[])
    })
    .await
    .expect("no panic");
    let _ = std::fs::remove_file(&conf);
    started.unwrap_or_else(|e| panic!("{e:#}"))
}

/// Two of them.
async fn two_brokers() -> (Mosquitto, Mosquitto) {
    (mosquitto().await, mosquitto().await)
}

fn address(brokers: &[&Mosquitto]) -> BrokerAddress {
    let port = |m: &Mosquitto| m.port(1883).expect("listener");
    brokers
        .iter()
        .skip(1)
        .fold(BrokerAddress::new("127.0.0.1", port(brokers[0])), |a, m| {
            a.with_server("127.0.0.1", port(m))
        })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn statements(stream: &str, rendition: &str) -> Topic {
    Topic::MediaStatements(
        StreamName::new(stream).expect("valid"),
        RenditionName::new(rendition).expect("valid"),
    )
}

struct Client {
    bus: Bus,
    rx: mpsc::Receiver<BusEvent>,
    task: tokio::task::JoinHandle<()>,
}

/// A client of `broker`, returned once it is connected to `connects` brokers.
async fn client(
    broker: BrokerAddress,
    will: Option<(Topic, Vec<u8>)>,
    subscriptions: Vec<(&'static str, Qos)>,
    connects: usize,
    shutdown: &CancellationToken,
) -> Client {
    let mut options = BusOptions::new(broker, unique("c"));
    options.last_will = will;
    options.subscriptions = subscriptions;
    let (bus, mut rx, task) = connect(options, shutdown.child_token());
    tokio::time::timeout(DEADLINE, async {
        for _ in 0..connects {
            while rx.recv().await.expect("connection alive") != BusEvent::Connected {}
        }
    })
    .await
    .expect("connects to every broker");
    Client { bus, rx, task }
}

/// Publishes through `broker` alone until `watcher` gets it: the watcher's subscription
/// on that broker is in place.
async fn probe(
    broker: &Mosquitto,
    watcher: &mut Client,
    topic: &Topic,
    shutdown: &CancellationToken,
) {
    let through = client(address(&[broker]), None, vec![], 1, shutdown).await;
    let port = broker.port(1883).expect("port");
    probe_until_heard(
        &mut watcher.rx,
        &through.bus,
        topic,
        &format!("probe {port}"),
    )
    .await;
    through.bus.disconnect().expect("disconnect");
}

/// Issue 50 item 3: a broker killed under a steady stream of QoS 1 statements (one every
/// 20 ms, as parts and segments of a few renditions come). The subscriber gets every one,
/// once, in order, and the first after the kill within [`FAILOVER`] of it.
#[tokio::test]
async fn a_broker_killed_under_a_stream_of_statements_loses_and_repeats_none() {
    let (a, b) = two_brokers().await;
    let both = address(&[&a, &b]);
    let shutdown = CancellationToken::new();
    let stream = unique("s");
    let topic = statements(&stream, "src");

    let mut watcher = client(
        both.clone(),
        None,
        vec![(Topic::filter_all_media_statements(), Qos::AtLeastOnce)],
        2,
        &shutdown,
    )
    .await;
    let probes = statements(&stream, "probe");
    probe(&a, &mut watcher, &probes, &shutdown).await;
    probe(&b, &mut watcher, &probes, &shutdown).await;
    let publisher = client(both, None, vec![], 2, &shutdown).await;

    const COUNT: u32 = 300;
    const KILL_AT: u32 = 100;
    let sending = {
        let (bus, topic) = (publisher.bus.clone(), topic.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for n in 0..COUNT {
                tick.tick().await;
                bus.publish(&topic, Qos::AtLeastOnce, false, n.to_be_bytes().to_vec())
                    .await
                    .expect("publish");
            }
        })
    };
    let mut a = Some(a);
    let (mut got, mut killed_at, mut first_after_kill) = (Vec::new(), None, None);
    while got.len() < COUNT as usize {
        let m = next_on(&mut watcher.rx, &topic).await;
        assert!(!m.retained);
        let n = u32::from_be_bytes(m.payload[..].try_into().expect("4 bytes"));
        got.push(n);
        if let Some(killed) = killed_at {
            first_after_kill.get_or_insert_with(|| Instant::now() - killed);
        }
        if n == KILL_AT {
            // SIGKILL: the broker saves nothing and says goodbye to nobody.
            drop(a.take());
            killed_at = Some(Instant::now());
        }
    }
    sending.await.expect("no panic");
    assert_eq!(
        got,
        (0..COUNT).collect::<Vec<_>>(),
        "every statement once, in order"
    );
    let held = first_after_kill.expect("statements after the kill");
    eprintln!("the first statement after the kill came {held:?} after it");
    assert!(
        held < FAILOVER,
        "the first statement after the kill took {held:?}"
    );
    // Nothing more comes (no late twin) before a marker published after the last.
    let marker = statements(&stream, "marker");
    publisher
        .bus
        .publish(&marker, Qos::AtLeastOnce, false, b"end".to_vec())
        .await
        .expect("publish");
    tokio::time::timeout(DEADLINE, async {
        loop {
            match watcher.rx.recv().await.expect("connection alive") {
                BusEvent::Message(m) if m.topic == marker => return,
                BusEvent::Message(m) if m.topic == topic => panic!("a repeat: {m:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("the marker arrives");
    shutdown.cancel();
}

/// A broker's death is not a node's: the node is still connected to the other, which
/// publishes no will. The node's own death is: the surviving broker publishes its will.
#[tokio::test]
async fn a_dead_broker_is_not_a_dead_node_but_a_dead_node_is() {
    let (a, b) = two_brokers().await;
    let both = address(&[&a, &b]);
    let shutdown = CancellationToken::new();
    let presence = Topic::Presence(NodeId::new(unique("node")).expect("valid"));

    let node = client(
        both.clone(),
        Some((presence.clone(), b"offline".to_vec())),
        vec![],
        2,
        &shutdown,
    )
    .await;
    node.bus
        .publish(&presence, Qos::AtLeastOnce, true, b"online".to_vec())
        .await
        .expect("publish");
    let mut watcher = client(
        both,
        None,
        vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)],
        2,
        &shutdown,
    )
    .await;
    assert_eq!(
        &next_on(&mut watcher.rx, &presence).await.payload[..],
        b"online"
    );

    drop(a);
    // What the node says after the broker died comes after anything the death caused.
    node.bus
        .publish(&presence, Qos::AtLeastOnce, true, b"still here".to_vec())
        .await
        .expect("publish");
    let m = next_on(&mut watcher.rx, &presence).await;
    assert_eq!(&m.payload[..], b"still here", "a broker's death made {m:?}");

    // The node vanishes without a DISCONNECT: the live broker publishes its will.
    node.task.abort();
    let m = next_on(&mut watcher.rx, &presence).await;
    assert_eq!(&m.payload[..], b"offline");
    drop(b);
    shutdown.cancel();
}

/// A broker that comes back without its retained messages (its volume lost) reports a
/// connect of its own, on which the role announces itself there again: a client of that
/// broker alone then finds the retained presence.
#[tokio::test]
async fn a_broker_back_without_its_state_is_told_it_again() {
    let (a, b) = two_brokers().await;
    let shutdown = CancellationToken::new();
    let presence = Topic::Presence(NodeId::new(unique("node")).expect("valid"));
    let mut node = client(address(&[&a, &b]), None, vec![], 2, &shutdown).await;
    node.bus
        .publish(&presence, Qos::AtLeastOnce, true, b"online".to_vec())
        .await
        .expect("publish");

    let a = tokio::task::spawn_blocking(move || {
        let mut a = a;
        a.restart_forgetting().map(|()| a)
    })
    .await
    .expect("no panic")
    .unwrap_or_else(|e| panic!("{e:#}"));
    // The role's answer to a connect: its retained state again.
    tokio::time::timeout(DEADLINE, async {
        while node.rx.recv().await.expect("connection alive") != BusEvent::Connected {}
    })
    .await
    .expect("reconnects to the restarted broker");
    node.bus
        .publish(&presence, Qos::AtLeastOnce, true, b"online".to_vec())
        .await
        .expect("publish");

    let mut late = client(
        address(&[&a]),
        None,
        vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)],
        1,
        &shutdown,
    )
    .await;
    let m = next_on(&mut late.rx, &presence).await;
    assert_eq!((&m.payload[..], m.retained), (&b"online"[..], true));
    shutdown.cancel();
}

/// With one broker dead, a goodbye does not wait for it: the disconnect reaches the live
/// one and the connection task ends by itself, without the shutdown token.
#[tokio::test]
async fn a_client_leaves_at_once_when_one_broker_is_dead() {
    let a = mosquitto().await;
    let dead = testkit::net::free_port().expect("port");
    let shutdown = CancellationToken::new();
    let broker = address(&[&a]).with_server("127.0.0.1", dead);
    let mut c = client(broker, None, vec![], 1, &shutdown).await;
    c.bus.disconnect().expect("disconnect");
    tokio::time::timeout(DEADLINE, async { while c.rx.recv().await.is_some() {} })
        .await
        .expect("the receiver ends");
    tokio::time::timeout(DEADLINE, c.task)
        .await
        .expect("the task ends")
        .expect("no panic");
    shutdown.cancel();
}

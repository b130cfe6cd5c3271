//! `run_edge` against a real MQTT broker (the embedded one) and real sockets: certificate
//! and statements over MQTT, bytes and events over HTTP push, readiness and presence,
//! garbage on every topic, and a clean goodbye.

use std::future::Future;
use std::time::Duration;

use crate::support::edge::*;
use crate::support::*;
use bytes::Bytes;
use certs::signing::{SignatureAlgorithm, SigningKey};
use domain::broker::BrokerAddress;
use domain::load::{LoadReport, SegmentCounts};
use domain::presence::{Presence, PresenceState, Role};
use domain::push_protocol::{ControlEvent, InternalPath, SegmentHeaders};
use domain::time::WallClock;
use domain::topics::Topic;
use domain::wire::KeyId;
use domain::NodeId;
use plumbing::{connect, Bus, BusEvent, BusOptions, EmbeddedBroker, Qos};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bounds every wait, so a broken edge fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` until it returns `Some`, or panics with `what` after the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn client(
    broker: &BrokerAddress,
    id: &str,
    subscriptions: Vec<(&'static str, Qos)>,
    shutdown: &CancellationToken,
) -> (Bus, mpsc::Receiver<BusEvent>) {
    let mut options = BusOptions::new(broker.clone(), id);
    options.persistent = false;
    options.subscriptions = subscriptions;
    let (bus, mut rx, _task) = connect(options, shutdown.child_token());
    tokio::time::timeout(DEADLINE, async {
        while rx.recv().await.expect("connection alive") != BusEvent::Connected {}
    })
    .await
    .expect("connects");
    (bus, rx)
}

/// Waits for a presence of `node` in `state` (retained or live).
async fn presence_of(
    verifier: &certs::signing::PresenceVerifier,
    rx: &mut mpsc::Receiver<BusEvent>,
    node: &NodeId,
    state: PresenceState,
) -> Presence {
    let topic = Topic::Presence(node.clone());
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let BusEvent::Message(m) = rx.recv().await.expect("connection alive") {
                if m.topic == topic {
                    // A node's own presence must verify as the load balancer checks it.
                    if let Ok(p) = verifier.check(node, &m.payload, WallClock.unix_secs()) {
                        if p.state == state {
                            return p;
                        }
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("presence {state:?} of {node} within the deadline"))
}

struct Http<'a> {
    client: reqwest::Client,
    base: String,
    /// The certified ingest key control events are signed with.
    key: &'a SigningKey,
}

impl Http<'_> {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// Pushes `event` signed as the ingest signs it, again while the node answers 503 (its
    /// certificate not yet in from the broker), as the ingest's pusher does.
    async fn event(&self, event: &ControlEvent) -> reqwest::StatusCode {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status = self
                .client
                .post(format!("{}{}", self.base, InternalPath::Events))
                .bearer_auth(TOKEN)
                .body(signed_event(self.key, event, WallClock.unix_ms()))
                .send()
                .await
                .expect("request")
                .status();
            if status != reqwest::StatusCode::SERVICE_UNAVAILABLE
                || std::time::Instant::now() > deadline
            {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn push(&self, seq: u64) -> reqwest::StatusCode {
        let meta = meta("720p", seq);
        let path = InternalPath::Segment(meta.stream.clone(), meta.rendition.clone(), seq);
        let mut request = self
            .client
            .put(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .body(segment_bytes(seq));
        for (name, value) in SegmentHeaders::of(&meta).pairs() {
            request = request.header(name, value);
        }
        request.send().await.expect("request").status()
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("text")
    }

    /// Waits until segment `seq` of 720p is served, and returns its bytes.
    async fn segment(&self, seq: u64) -> Bytes {
        eventually(&format!("segment {seq} published"), || async {
            let response = self.get(&format!("/live/demo/720p/{seq}.ts")).await;
            if response.status() == reqwest::StatusCode::OK {
                Some(response.bytes().await.expect("body"))
            } else {
                None
            }
        })
        .await
    }
}

async fn publish_statement(bus: &Bus, cluster: &Cluster, seq: u64) {
    let meta = meta("720p", seq);
    let signed = cluster.sign(&meta, &segment_bytes(seq));
    bus.publish(
        &Topic::MediaStatements(meta.stream.clone(), meta.rendition.clone()),
        Qos::AtLeastOnce,
        false,
        signed.encode(),
    )
    .await
    .expect("publish");
}

#[tokio::test]
async fn an_edge_over_a_real_broker() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().expect("addr")).expect("broker");
    let address = broker.address();
    let clients = CancellationToken::new();
    let cluster = Cluster::new(SignatureAlgorithm::Ed25519);
    let verifier = cluster.presences();

    // The ingest side announces its certificate and itself, retained, before the edge runs.
    let (ingest, _ingest_rx) = client(&address, "test-ingest", vec![], &clients).await;
    ingest
        .publish(
            &Topic::IngestCertificate(ingest_id()),
            Qos::AtLeastOnce,
            true,
            cluster.cert.clone(),
        )
        .await
        .expect("certificate");
    let ingest_presence = Presence {
        role: Role::Ingest,
        state: PresenceState::Ready,
        url: None,
        direct_url: None,
    };
    ingest
        .publish(
            &Topic::Presence(ingest_id()),
            Qos::AtLeastOnce,
            true,
            ingest_presence.encode(),
        )
        .await
        .expect("presence");
    let (_watcher, mut presences) = client(
        &address,
        "test-watcher",
        vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)],
        &clients,
    )
    .await;
    // Published in order on one connection: the certificate is on the broker too.
    presence_of(
        &verifier,
        &mut presences,
        &ingest_id(),
        PresenceState::Ready,
    )
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let node = node();
    let mut config = edge_config(&cluster, *node.config());
    config.broker = address.clone();
    config.public_url = base.clone();
    config.ready_timeout = Duration::from_secs(60);
    // Long enough for the checks made while it drains, well inside `DEADLINE`.
    config.drain = Duration::from_secs(6);
    let report = LoadReport {
        role: Role::Broadcast,
        at: 1_700_000_000,
        cpu_percent: 12.5,
        memory_bytes: 1 << 20,
        connections: 3,
        bytes_out: 4096,
        viewers: Default::default(),
        segments: SegmentCounts {
            verified: 7,
            rejected: 1,
            gaps: 0,
        },
        streams: Vec::new(),
    };
    let sampled = report.clone();
    config.load_reports = Some(broadcast::LoadSampler::new(move || sampled.clone()));
    let (_loads_watcher, mut loads) = client(
        &address,
        "test-loads",
        vec![(Topic::filter_all_node_loads(), Qos::AtMostOnce)],
        &clients,
    )
    .await;
    let shutdown = CancellationToken::new();
    let edge = tokio::spawn(broadcast::run_edge(
        std::sync::Arc::clone(&node),
        config,
        listener,
        shutdown.clone(),
    ));
    let http = Http {
        client: reqwest::Client::new(),
        base,
        key: &cluster.ingest,
    };
    let node_id = node.id().clone();

    // Joining: announced, not ready while the ingest that is up has not synced it.
    let joining = presence_of(&verifier, &mut presences, &node_id, PresenceState::Joining).await;
    assert_eq!(joining.role, Role::Broadcast);
    assert_eq!(joining.url.as_deref(), Some(http.base.as_str()));
    assert_eq!(http.get("/healthz").await.status(), reqwest::StatusCode::OK);
    assert_eq!(
        http.get("/readyz").await.status(),
        reqwest::StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(!node.is_ready());

    // The ingest sends the stream's start and its window (nothing yet), then Synced.
    for event in start_events(&[("720p", 720)]) {
        assert_eq!(http.event(&event).await, reqwest::StatusCode::NO_CONTENT);
    }
    let synced = ControlEvent::Synced {
        ingest: ingest_id(),
    };
    assert_eq!(http.event(&synced).await, reqwest::StatusCode::NO_CONTENT);
    tokio::time::timeout(DEADLINE, node.wait_ready())
        .await
        .expect("ready in time");
    presence_of(&verifier, &mut presences, &node_id, PresenceState::Ready).await;
    assert_eq!(http.get("/readyz").await.status(), reqwest::StatusCode::OK);
    // Retained: a load balancer that subscribes later learns it too.
    let (_late, mut late) = client(
        &address,
        "test-late-ready",
        vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)],
        &clients,
    )
    .await;
    presence_of(&verifier, &mut late, &node_id, PresenceState::Ready).await;

    // The node's load report comes out on its own topic, as the sampler made it.
    let load_topic = Topic::NodeLoad(node_id.clone());
    let received = tokio::time::timeout(DEADLINE, async {
        loop {
            if let BusEvent::Message(m) = loads.recv().await.expect("connection alive") {
                if m.topic == load_topic {
                    return LoadReport::decode(&m.payload).expect("a load report");
                }
            }
        }
    })
    .await
    .expect("a load report within the deadline");
    assert_eq!(received, report);

    // Bytes over HTTP, statement over MQTT: published, byte for byte.
    assert_eq!(http.push(0).await, reqwest::StatusCode::ACCEPTED);
    publish_statement(&ingest, &cluster, 0).await;
    assert_eq!(http.segment(0).await, segment_bytes(0));

    // Garbage on every topic we read: counted, ignored.
    let garbage = [
        Topic::Presence(NodeId::new("garbage-node").expect("valid")),
        Topic::IngestCertificate(ingest_id()),
        Topic::Revocation(KeyId([7; 16])),
        Topic::MediaStatements(stream(), rendition("720p")),
    ];
    for topic in &garbage {
        ingest
            .publish(topic, Qos::AtLeastOnce, false, b"\x00garbage\xff".to_vec())
            .await
            .expect("publish");
    }
    eventually("every garbage message counted", || async {
        let text = http.metrics().await;
        ["presence", "certificate", "revocation", "manifest"]
            .iter()
            .all(|kind| {
                metric(
                    &text,
                    &format!("sealcast_control_messages_ignored_total{{kind=\"{kind}\"}}"),
                ) == 1.0
            })
            .then_some(())
    })
    .await;
    // Still serving, still publishing.
    assert_eq!(http.segment(0).await, segment_bytes(0));
    publish_statement(&ingest, &cluster, 1).await;
    assert_eq!(http.push(1).await, reqwest::StatusCode::ACCEPTED);
    assert_eq!(http.segment(1).await, segment_bytes(1));
    let text = http.metrics().await;
    assert_eq!(metric(&text, "sealcast_manifests_verified_total"), 2.0);
    assert_eq!(metric(&text, "sealcast_pending_segments"), 0.0);

    // Shutdown: first a drain, in which the node says so, serves and is still fed.
    shutdown.cancel();
    presence_of(&verifier, &mut presences, &node_id, PresenceState::Draining).await;
    let readyz = http.get("/readyz").await;
    assert_eq!(readyz.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(readyz.text().await.expect("body"), "draining");
    assert_eq!(http.segment(1).await, segment_bytes(1));
    publish_statement(&ingest, &cluster, 2).await;
    assert_eq!(http.push(2).await, reqwest::StatusCode::ACCEPTED);
    assert_eq!(http.segment(2).await, segment_bytes(2));
    assert!(!edge.is_finished(), "still draining");
    // Then the offline presence, and the server is gone.
    tokio::time::timeout(DEADLINE, edge)
        .await
        .expect("run_edge returns after shutdown")
        .expect("task")
        .expect("run_edge ok");
    let offline = presence_of(&verifier, &mut presences, &node_id, PresenceState::Offline).await;
    assert_eq!(offline.role, Role::Broadcast);
    let (_late, mut late) = client(
        &address,
        "test-late-offline",
        vec![(Topic::filter_all_presence(), Qos::AtLeastOnce)],
        &clients,
    )
    .await;
    presence_of(&verifier, &mut late, &node_id, PresenceState::Offline).await;
    assert!(
        http.client
            .get(format!("{}/healthz", http.base))
            .send()
            .await
            .is_err(),
        "listener closed"
    );
    clients.cancel();
}

/// An edge whose broker has been away for a long while still stops when told to (issue
/// 50: a node whose broker was gone logged "HTTP stopped" and never exited). Before, each
/// load report waited for room in the connection's request queue, which nothing drains
/// while the broker is away: after 256 reports (8.5 minutes) the MQTT side stood still in
/// that wait and never saw the shutdown. Time is paused, so the minutes pass at once; the
/// broker's address refuses every connection.
#[tokio::test(start_paused = true)]
async fn an_edge_whose_broker_is_long_gone_still_stops() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let broker = BrokerAddress::new("127.0.0.1", testkit::net::free_port().expect("port"));
    let cluster = Cluster::new(SignatureAlgorithm::Ed25519);
    let node = node();
    let mut config = edge_config(&cluster, *node.config());
    config.broker = broker;
    let sampled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sampled);
    config.load_reports = Some(broadcast::LoadSampler::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        LoadReport {
            role: Role::Broadcast,
            at: 1_700_000_000,
            cpu_percent: 0.0,
            memory_bytes: 0,
            connections: 0,
            bytes_out: 0,
            viewers: Default::default(),
            segments: SegmentCounts::default(),
            streams: Vec::new(),
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let shutdown = CancellationToken::new();
    let edge = tokio::spawn(broadcast::run_edge(
        Arc::clone(&node),
        config,
        listener,
        shutdown.clone(),
    ));

    // Ten minutes without a broker: 300 reports due, more than the queue holds.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let reports = sampled.load(Ordering::Relaxed);
    assert!(
        reports >= 290,
        "the MQTT side stood still after {reports} load reports"
    );
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, edge)
        .await
        .expect("run_edge returns after shutdown, broker or not")
        .expect("task")
        .expect("run_edge ok");
}

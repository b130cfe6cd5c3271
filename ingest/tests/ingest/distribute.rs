//! Distribution against real sockets: the embedded MQTT broker, fake broadcast nodes as
//! small axum servers on port 0 that announce themselves with presence, and `distribute`
//! fed with hand-made live events. Every wait is on something arriving, with generous
//! deadlines; nothing sleeps to synchronise.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use bytes::Bytes;
use certs::signing::{
    PartScope, PresenceSigner, PresenceVerifier, RootKey, SigningKey, TrustStore, Validity,
};
use domain::broker::BrokerAddress;
use domain::presence::{Presence, PresenceState, Role};
use domain::push_protocol::{
    ControlEvent, InternalPath, PartHeaders, PushToken, SegmentHeaders, ASSEMBLE_HEADER,
    PARTS_MISSING_BODY, STATEMENT_HEADER,
};
use domain::topics::Topic;
use domain::wire::{MediaStatement, SignatureAlgorithm, SignedMedia, PART_KEY_TAG};
use domain::{
    LiveEvent, NodeId, Part, PartMeta, RenditionInfo, RenditionName, Segment, SegmentMeta,
    SessionId, StreamName,
};
use ingest::{distribute, DistributeConfig, IngestError, IngestMetrics};
use plumbing::{Bus, BusEvent, BusOptions, EmbeddedBroker, Message, Qos};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(15);
const TOKEN: &str = "test-push-token-0123456789";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn node_id(s: &str) -> NodeId {
    NodeId::new(s).expect("valid")
}

fn stream() -> StreamName {
    StreamName::new("cam1").expect("valid")
}

fn rendition(s: &str) -> RenditionName {
    RenditionName::new(s).expect("valid")
}

fn info(name: &str) -> RenditionInfo {
    RenditionInfo {
        name: rendition(name),
        width: 640,
        height: 360,
        frame_rate: 25.0,
        codecs: "avc1.64001e,mp4a.40.2".parse().expect("valid codecs"),
        init: None,
        part_target_us: None,
    }
}

/// The start of session `n` of the test stream, as the ingest announces it.
fn session_started(n: u64) -> LiveEvent {
    LiveEvent::SessionStarted {
        stream: stream(),
        session: SessionId(n),
        private: false,
        record: true,
    }
}

/// The description of `rendition` of the test stream ([`info`]).
fn announced(rendition: &str) -> LiveEvent {
    LiveEvent::Rendition {
        stream: stream(),
        info: info(rendition),
    }
}

/// The bytes of segment `sequence` of `rendition`: distinct for every segment.
fn bytes_of(rendition: &str, sequence: u64) -> Bytes {
    Bytes::from(format!("\x47 segment {rendition} {sequence} ").repeat(500))
}

fn segment(rendition: &str, session: u64, sequence: u64) -> LiveEvent {
    LiveEvent::Segment(Segment {
        meta: SegmentMeta {
            stream: stream(),
            rendition: self::rendition(rendition),
            session: SessionId(session),
            sequence,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_millis(2000),
            start_pts_90k: sequence * 180_000,
        },
        bytes: bytes_of(rendition, sequence),
    })
}

/// What a fake node received.
#[derive(Debug, Clone)]
enum Received {
    Event {
        event: ControlEvent,
        authorization: Option<String>,
    },
    Segment {
        meta: SegmentMeta,
        headers: HeaderMap,
        body: Bytes,
    },
    Part {
        meta: PartMeta,
        headers: HeaderMap,
        body: Bytes,
    },
}

impl Received {
    /// A short description, to compare orders.
    fn describe(&self) -> String {
        match self {
            Received::Event { event, .. } => match event {
                ControlEvent::Live(LiveEvent::SessionStarted { session, .. }) => {
                    format!("start {}", session.0)
                }
                ControlEvent::Live(LiveEvent::Rendition { info, .. }) => {
                    format!("rendition {}", info.name)
                }
                ControlEvent::Live(LiveEvent::RenditionDropped { rendition, .. }) => {
                    format!("dropped {rendition}")
                }
                ControlEvent::Live(LiveEvent::Ended { session, .. }) => {
                    format!("ended {}", session.0)
                }
                ControlEvent::Synced { ingest } => format!("synced {ingest}"),
                ControlEvent::Live(LiveEvent::Segment(s)) => {
                    format!("segment as an event {}", s.meta.sequence)
                }
                ControlEvent::Live(LiveEvent::Part(p)) => {
                    format!("part as an event {}", p.meta.sequence)
                }
                ControlEvent::Live(LiveEvent::Thumbnail(t)) => {
                    format!("thumbnail as an event {}", t.meta.sequence)
                }
            },
            Received::Segment { meta, headers, .. } => match headers.get(ASSEMBLE_HEADER) {
                Some(parts) => format!(
                    "segment {} {} of {} parts",
                    meta.rendition,
                    meta.sequence,
                    parts.to_str().unwrap_or("?")
                ),
                None => format!("segment {} {}", meta.rendition, meta.sequence),
            },
            Received::Part { meta, .. } => {
                format!("part {} {}.{}", meta.rendition, meta.sequence, meta.index)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Acknowledge,
    Fail500,
    /// Acknowledges everything but a bodiless segment push, which it answers `409
    /// parts_missing` (a node that lost a part).
    MissParts,
    /// Acknowledges everything but parts, which fail with 500.
    FailParts,
}

#[derive(Clone)]
struct NodeState {
    behaviour: Behaviour,
    received: mpsc::UnboundedSender<Received>,
    /// Every request, described as `METHOD what` (for counting attempts).
    attempts: mpsc::UnboundedSender<String>,
    /// If set, each answer waits for a permit: the test decides when the node responds.
    gate: Option<Arc<Semaphore>>,
}

async fn handle(
    State(state): State<NodeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let received = match (method.clone(), InternalPath::parse(uri.path())) {
        (Method::POST, Some(InternalPath::Events)) => {
            // What an edge does before the event counts: a signed statement whose
            // body is the event (the signature itself is checked in the edge's tests).
            let Some(event) = domain::wire::SignedEvent::decode(&body)
                .and_then(|e| e.statement())
                .ok()
                .and_then(|s| serde_json::from_slice::<ControlEvent>(&s.body).ok())
            else {
                return (StatusCode::BAD_REQUEST, "bad event");
            };
            Received::Event {
                event,
                authorization,
            }
        }
        (Method::PUT, Some(InternalPath::Segment(s, r, n))) => {
            let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let Ok(parsed) = SegmentHeaders::parse(get) else {
                return (StatusCode::BAD_REQUEST, "bad headers");
            };
            Received::Segment {
                meta: parsed.meta(s, r, n),
                headers: headers.clone(),
                body,
            }
        }
        (Method::PUT, Some(InternalPath::Part(s, r, n, i))) => {
            let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let Ok(parsed) = PartHeaders::parse(get) else {
                return (StatusCode::BAD_REQUEST, "bad part headers");
            };
            Received::Part {
                meta: parsed.meta(s, r, n, i),
                headers: headers.clone(),
                body,
            }
        }
        _ => return (StatusCode::NOT_FOUND, "not found"),
    };
    let _ = state
        .attempts
        .send(format!("{method} {}", received.describe()));
    if let Some(gate) = &state.gate {
        if let Ok(permit) = gate.acquire().await {
            permit.forget();
        }
    }
    let bodiless = headers.contains_key(ASSEMBLE_HEADER);
    match (state.behaviour, &received) {
        (Behaviour::Fail500, _) | (Behaviour::FailParts, Received::Part { .. }) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "broken")
        }
        (Behaviour::MissParts, Received::Segment { .. }) if bodiless => {
            (StatusCode::CONFLICT, PARTS_MISSING_BODY)
        }
        _ => {
            let _ = state.received.send(received);
            (StatusCode::OK, "")
        }
    }
}

/// A fake broadcast node: an HTTP server and an MQTT connection with its presence.
struct FakeNode {
    id: NodeId,
    url: String,
    received: mpsc::UnboundedReceiver<Received>,
    attempts: mpsc::UnboundedReceiver<String>,
    bus: Bus,
    _bus_events: mpsc::Receiver<BusEvent>,
    _tasks: Vec<JoinHandle<()>>,
}

impl FakeNode {
    async fn start(
        broker: &BrokerAddress,
        id: &str,
        behaviour: Behaviour,
        shutdown: &CancellationToken,
    ) -> FakeNode {
        Self::start_gated(broker, id, behaviour, None, shutdown).await
    }

    async fn start_gated(
        broker: &BrokerAddress,
        id: &str,
        behaviour: Behaviour,
        gate: Option<Arc<Semaphore>>,
        shutdown: &CancellationToken,
    ) -> FakeNode {
        let node = Self::start_silent(broker, id, behaviour, gate, shutdown).await;
        node.announce(PresenceState::Joining).await;
        node
    }

    /// A node that has not announced itself yet.
    async fn start_silent(
        broker: &BrokerAddress,
        id: &str,
        behaviour: Behaviour,
        gate: Option<Arc<Semaphore>>,
        shutdown: &CancellationToken,
    ) -> FakeNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (received_tx, received) = mpsc::unbounded_channel();
        let (attempts_tx, attempts) = mpsc::unbounded_channel();
        let router = Router::new().fallback(handle).with_state(NodeState {
            behaviour,
            received: received_tx,
            attempts: attempts_tx,
            gate,
        });
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .expect("serves");
        });
        let (bus, bus_events, bus_task) =
            mqtt_client(broker, &format!("broadcast-{id}"), id, vec![], shutdown).await;
        FakeNode {
            id: node_id(id),
            url,
            received,
            attempts,
            bus,
            _bus_events: bus_events,
            _tasks: vec![server, bus_task],
        }
    }

    fn presence(&self, state: PresenceState) -> Presence {
        Presence {
            role: Role::Broadcast,
            state,
            url: (state != PresenceState::Offline).then(|| self.url.clone()),
            direct_url: None,
        }
    }

    /// Publishes this node's presence, signed with the cluster's edge key.
    async fn announce(&self, state: PresenceState) {
        let payload = edge().0.sign(&self.id, &self.presence(state), now() * 1000);
        self.publish_presence(&self.id, payload).await;
    }

    async fn publish_presence(&self, node: &NodeId, payload: Vec<u8>) {
        self.bus
            .publish(
                &Topic::Presence(node.clone()),
                Qos::AtLeastOnce,
                true,
                payload,
            )
            .await
            .expect("publish");
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.received.recv())
            .await
            .expect("a push within the deadline")
            .expect("server alive")
    }

    async fn next_n(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }
}

/// A connected MQTT client (its last will: offline presence of `node`).
async fn mqtt_client(
    broker: &BrokerAddress,
    client_id: &str,
    node: &str,
    subscriptions: Vec<(&'static str, Qos)>,
    shutdown: &CancellationToken,
) -> (Bus, mpsc::Receiver<BusEvent>, JoinHandle<()>) {
    let mut options = BusOptions::new(broker.clone(), client_id);
    options.persistent = false;
    options.subscriptions = subscriptions;
    options.last_will = Some((
        Topic::Presence(node_id(node)),
        edge().0.sign(
            &node_id(node),
            &Presence::offline(Role::Broadcast),
            now() * 1000,
        ),
    ));
    let (bus, mut rx, task) = plumbing::connect(options, shutdown.child_token());
    tokio::time::timeout(DEADLINE, async {
        while rx.recv().await.expect("connection alive") != BusEvent::Connected {}
    })
    .await
    .expect("connects");
    (bus, rx, task)
}

async fn next_message(
    rx: &mut mpsc::Receiver<BusEvent>,
    want: impl Fn(&Message) -> bool,
) -> Message {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let BusEvent::Message(m) = rx.recv().await.expect("connection alive") {
                if want(&m) {
                    return m;
                }
            }
        }
    })
    .await
    .expect("message within the deadline")
}

/// The broadcast nodes' edge key (signing their presences) and what checks it: one root
/// for the whole test binary.
fn edge() -> &'static (PresenceSigner, PresenceVerifier) {
    static EDGE: OnceLock<(PresenceSigner, PresenceVerifier)> = OnceLock::new();
    EDGE.get_or_init(|| {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let key = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        let cert = root
            .certify_edge(
                key.public_key(),
                node_id("broadcast"),
                Validity::starting_at(now() - 60, Duration::from_secs(3600)),
            )
            .expect("certified");
        (
            PresenceSigner::new(key, &cert).expect("signer"),
            PresenceVerifier::new(root.public_key()),
        )
    })
}

/// The keys of one ingest: its signing key, its certificate, and the trust an edge has.
struct Keys {
    key: Arc<SigningKey>,
    certificate: Vec<u8>,
    trust: TrustStore,
}

fn keys(ingest: &NodeId) -> Keys {
    let root = RootKey::generate(SignatureAlgorithm::MlDsa65).expect("root");
    let key = SigningKey::generate(SignatureAlgorithm::MlDsa65).expect("key");
    let certificate = root
        .certify(
            key.public_key(),
            ingest.clone(),
            Validity::starting_at(now() - 60, Duration::from_secs(3600)),
        )
        .expect("certified")
        .encode();
    Keys {
        key: Arc::new(key),
        certificate,
        trust: TrustStore::new(root.public_key()),
    }
}

/// Checks an envelope against the trust store and the bytes it must describe.
fn check_envelope(trust: &TrustStore, envelope: &[u8], meta: &SegmentMeta, bytes: &[u8]) {
    let envelope = SignedMedia::decode(envelope).expect("an envelope");
    let statement = envelope.segment().expect("a statement");
    trust
        .verify(
            statement.key_id,
            &envelope.statement_bytes,
            &envelope.signature,
            now(),
        )
        .expect("the signature verifies");
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    assert_eq!(statement.digest, digest, "digest of {meta:?}");
    assert_eq!(statement.byte_len, bytes.len() as u64);
    assert_eq!(
        (
            &statement.stream,
            &statement.rendition,
            statement.sequence,
            statement.session
        ),
        (&meta.stream, &meta.rendition, meta.sequence, meta.session)
    );
}

fn metrics_text(metrics: &IngestMetrics) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("encodes");
    out
}

fn metric(metrics: &IngestMetrics, series: &str) -> Option<f64> {
    metrics_text(metrics)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the metric `series` has the value `want` (polled: the distributor updates
/// it as it handles presence, and nothing else tells the test).
async fn metric_reaches(metrics: &IngestMetrics, series: &str, want: f64) {
    tokio::time::timeout(DEADLINE, async {
        while metric(metrics, series) != Some(want) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{series} never reached {want}:\n{}", metrics_text(metrics)));
}

struct Running {
    events: mpsc::Sender<LiveEvent>,
    metrics: IngestMetrics,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), IngestError>>,
}

fn start(config: DistributeConfig) -> Running {
    let (events, rx) = mpsc::channel(64);
    let metrics = IngestMetrics::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(distribute(config, rx, metrics.clone(), shutdown.clone()));
    Running {
        events,
        metrics,
        shutdown,
        task,
    }
}

impl Running {
    async fn send(&self, events: impl IntoIterator<Item = LiveEvent>) {
        for e in events {
            self.events.send(e).await.expect("distributing");
        }
    }
}

async fn broker() -> EmbeddedBroker {
    tokio::task::spawn_blocking(|| EmbeddedBroker::start("127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("joined")
        .expect("broker starts")
}

fn config(ingest: &NodeId, keys: &Keys, broker: &BrokerAddress, window: usize) -> DistributeConfig {
    DistributeConfig::new(
        ingest.clone(),
        Arc::clone(&keys.key),
        keys.certificate.clone(),
        broker.clone(),
        PushToken::new(TOKEN).expect("token"),
        edge().1.clone(),
        window,
    )
}

/// Asserts a live segment push: path, headers, token, bytes, and no statement header.
fn check_live_segment(r: &Received, want: &LiveEvent) {
    let (
        Received::Segment {
            meta,
            headers,
            body,
        },
        LiveEvent::Segment(want),
    ) = (r, want)
    else {
        panic!("expected a segment, got {}", r.describe());
    };
    assert_eq!(meta, &want.meta);
    assert_eq!(body, &want.bytes);
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(
        headers.get(STATEMENT_HEADER).is_none(),
        "live pushes leave the envelope to MQTT"
    );
}

fn check_event(r: &Received, want: &LiveEvent) {
    let Received::Event {
        event,
        authorization,
    } = r
    else {
        panic!("expected an event, got {}", r.describe());
    };
    assert_eq!(Some(event), ControlEvent::from_live(want).as_ref());
    assert_eq!(
        authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

fn check_live(received: &[Received], sent: &[LiveEvent]) {
    assert_eq!(received.len(), sent.len());
    for (r, e) in received.iter().zip(sent) {
        match e {
            LiveEvent::Segment(_) => check_live_segment(r, e),
            _ => check_event(r, e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_everything_in_order_and_late_joiners_the_window() {
    let broker = broker().await;
    let address = broker.address();
    let shutdown = CancellationToken::new();
    let ingest = node_id("ingest1");
    let mut keys = keys(&ingest);

    let (_watcher, mut watch, _watch_task) = mqtt_client(
        &address,
        "watcher",
        "watcher",
        vec![
            (Topic::filter_all_media_statements(), Qos::AtLeastOnce),
            (Topic::filter_all_certificates(), Qos::AtLeastOnce),
            (Topic::filter_all_presence(), Qos::AtLeastOnce),
        ],
        &shutdown,
    )
    .await;
    let mut a = FakeNode::start(&address, "a", Behaviour::Acknowledge, &shutdown).await;
    let mut b = FakeNode::start(&address, "b", Behaviour::Acknowledge, &shutdown).await;

    let run = start(config(&ingest, &keys, &address, 3));

    // Each node first gets the (empty) window: just `Synced`.
    for node in [&mut a, &mut b] {
        assert_eq!(node.next().await.describe(), "synced ingest1");
    }
    // The ingest's presence says ready, and then comes its certificate.
    let presence = next_message(&mut watch, |m| {
        m.topic == Topic::Presence(ingest.clone())
            && Presence::decode(&m.payload).is_ok_and(|p| p.state == PresenceState::Ready)
    })
    .await;
    assert_eq!(
        Presence::decode(&presence.payload).expect("presence").role,
        Role::Ingest
    );

    // The certificate admits the key.
    let cert = next_message(&mut watch, |m| {
        m.topic == Topic::IngestCertificate(ingest.clone())
    })
    .await;
    assert_eq!(&cert.payload[..], &keys.certificate[..]);
    keys.trust
        .add_certificate(&cert.payload, now())
        .expect("the announced certificate is admitted");
    let mut sent = vec![session_started(7), announced("src"), announced("360p")];
    for n in 0..5 {
        sent.push(segment("src", 7, n));
        sent.push(segment("360p", 7, n));
    }
    run.send(sent.clone()).await;
    for node in [&mut a, &mut b] {
        let got = node.next_n(sent.len()).await;
        check_live(&got, &sent);
    }

    // Every segment's envelope arrives over MQTT, in order per rendition, verifies, and
    // binds the pushed bytes.
    let mut last: HashMap<String, u64> = HashMap::new();
    for _ in 0..10 {
        let m = next_message(&mut watch, |m| {
            matches!(m.topic, Topic::MediaStatements(..))
        })
        .await;
        assert!(!m.retained);
        let Topic::MediaStatements(s, r) = &m.topic else {
            unreachable!()
        };
        let statement = SignedMedia::decode(&m.payload)
            .expect("envelope")
            .segment()
            .expect("statement");
        if let Some(prev) = last.insert(r.to_string(), statement.sequence) {
            assert!(statement.sequence > prev, "in order per rendition");
        }
        let LiveEvent::Segment(seg) = segment(r.as_str(), 7, statement.sequence) else {
            unreachable!()
        };
        assert_eq!(s, &stream());
        check_envelope(&keys.trust, &m.payload, &seg.meta, &seg.bytes);
    }

    // A late joiner gets the window (the last 3 segments per rendition, signed envelopes
    // in the header, as they are all signed by now), then `Synced`, then live events.
    let mut c = FakeNode::start(&address, "c", Behaviour::Acknowledge, &shutdown).await;
    let got = c.next_n(3 + 6 + 1).await;
    let described: Vec<String> = got.iter().map(Received::describe).collect();
    assert_eq!(
        described,
        [
            "start 7",
            "rendition src",
            "rendition 360p",
            "segment src 2",
            "segment 360p 2",
            "segment src 3",
            "segment 360p 3",
            "segment src 4",
            "segment 360p 4",
            "synced ingest1",
        ]
    );
    for r in &got[3..9] {
        let Received::Segment {
            meta,
            headers,
            body,
        } = r
        else {
            unreachable!()
        };
        let envelope = headers
            .get(STATEMENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .expect("a catch-up push carries its envelope");
        assert_eq!(envelope, envelope.to_lowercase());
        let envelope = hex::decode(envelope).expect("hex");
        check_envelope(&keys.trust, &envelope, meta, body);
        assert_eq!(body, &bytes_of(meta.rendition.as_str(), meta.sequence));
    }
    let more = vec![
        segment("src", 7, 5),
        segment("360p", 7, 5),
        LiveEvent::Ended {
            stream: stream(),
            session: SessionId(7),
        },
    ];
    run.send(more.clone()).await;
    for node in [&mut a, &mut b, &mut c] {
        let got = node.next_n(more.len()).await;
        check_live(&got, &more);
    }
    assert_eq!(metric(&run.metrics, "sealcast_ingest_members"), Some(3.0));

    // Garbage presence is ignored, and so is an unsigned one naming a node that never
    // announced itself (it would get the push token); an offline presence removes the
    // node. All come from b's connection in this order, so once b is gone the others have
    // been seen too.
    let mut evil =
        FakeNode::start_silent(&address, "evil", Behaviour::Acknowledge, None, &shutdown).await;
    b.publish_presence(&node_id("junk"), b"not json".to_vec())
        .await;
    b.publish_presence(&evil.id, evil.presence(PresenceState::Ready).encode())
        .await;
    b.announce(PresenceState::Offline).await;
    metric_reaches(&run.metrics, "sealcast_ingest_members", 2.0).await;
    let after = vec![session_started(8), segment("src", 8, 6)];
    run.send(after.clone()).await;
    for node in [&mut a, &mut c] {
        let got = node.next_n(after.len()).await;
        check_live(&got, &after);
    }
    assert!(
        b.received.try_recv().is_err(),
        "nothing for a node that left"
    );
    assert!(
        evil.received.try_recv().is_err() && evil.attempts.try_recv().is_err(),
        "nothing for a node whose presence was not signed"
    );

    let text = metrics_text(&run.metrics);
    for series in [
        "sealcast_ingest_push_seconds_count{node=\"a\"}",
        "sealcast_ingest_sign_seconds_count",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
    assert!(!text.contains(TOKEN));

    // The events channel closes: distribution drains, says offline, disconnects.
    let Running { events, task, .. } = run;
    drop(events);
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("clean");
    // The last segment was signed and published, then the offline presence.
    next_message(&mut watch, |m| {
        matches!(m.topic, Topic::MediaStatements(..))
            && SignedMedia::decode(&m.payload)
                .ok()
                .and_then(|e| e.segment().ok())
                .is_some_and(|m| m.sequence == 6)
    })
    .await;
    next_message(&mut watch, |m| {
        m.topic == Topic::Presence(ingest.clone())
            && Presence::decode(&m.payload).is_ok_and(|p| !p.is_up())
    })
    .await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_delays_nobody_and_server_errors_are_retried() {
    let broker = broker().await;
    let address = broker.address();
    let shutdown = CancellationToken::new();
    let ingest = node_id("ingest1");
    let keys = keys(&ingest);

    let mut a = FakeNode::start(&address, "a", Behaviour::Acknowledge, &shutdown).await;
    let mut e = FakeNode::start(&address, "e", Behaviour::Fail500, &shutdown).await;
    // A node that accepts connections and never answers.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = dead.accept().await {
            held.push(socket);
        }
    });
    let (dead_bus, _dead_events, _dead_task) =
        mqtt_client(&address, "broadcast-d", "d", vec![], &shutdown).await;
    dead_bus
        .publish(
            &Topic::Presence(node_id("d")),
            Qos::AtLeastOnce,
            true,
            edge().0.sign(
                &node_id("d"),
                &Presence {
                    role: Role::Broadcast,
                    state: PresenceState::Ready,
                    url: Some(dead_url),
                    direct_url: None,
                },
                now() * 1000,
            ),
        )
        .await
        .expect("publish");

    let mut config = config(&ingest, &keys, &address, 4);
    config.push_timeout = Duration::from_secs(3);
    config.push_attempts = 3;
    let run = start(config);
    assert_eq!(a.next().await.describe(), "synced ingest1");
    metric_reaches(&run.metrics, "sealcast_ingest_members", 3.0).await;

    // The dead node holds each push for 3 s × 3 attempts; a gets every segment long before
    // that would have let even the second one through.
    let started = Instant::now();
    let mut sent = vec![session_started(1)];
    sent.extend((0..5).map(|n| segment("src", 1, n)));
    run.send(sent.clone()).await;
    let got = a.next_n(sent.len()).await;
    check_live(&got, &sent);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a healthy node waited {:?}",
        started.elapsed()
    );

    // The node answering 500 got every request `push_attempts` times: once its first
    // attempt at segment 1 arrives, segment 0 is done with.
    let mut attempts: Vec<String> = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while attempts.last().map(String::as_str) != Some("PUT segment src 1") {
            attempts.push(e.attempts.recv().await.expect("server alive"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("attempts so far: {attempts:?}"));
    let count = |what: &str| attempts.iter().filter(|a| *a == what).count();
    assert_eq!(count("POST synced ingest1"), 3, "{attempts:?}");
    assert_eq!(count("POST start 1"), 3, "{attempts:?}");
    assert_eq!(count("PUT segment src 0"), 3, "{attempts:?}");
    assert!(e.received.try_recv().is_err());
    assert!(
        metric(
            &run.metrics,
            "sealcast_ingest_push_failures_total{node=\"e\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "{}",
        metrics_text(&run.metrics)
    );
    assert_eq!(
        metric(
            &run.metrics,
            "sealcast_ingest_push_seconds_count{node=\"a\"}"
        ),
        Some(5.0)
    );

    // Shutdown does not wait for the dead node.
    let stopping = Instant::now();
    run.shutdown.cancel();
    tokio::time::timeout(DEADLINE, run.task)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("clean");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    hold.abort();
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_queue_overflows_is_resynced_with_the_window() {
    let broker = broker().await;
    let address = broker.address();
    let shutdown = CancellationToken::new();
    let ingest = node_id("ingest1");
    let keys = keys(&ingest);

    // The node takes requests but answers only when the test lets it.
    let gate = Arc::new(Semaphore::new(0));
    let mut g = FakeNode::start_gated(
        &address,
        "g",
        Behaviour::Acknowledge,
        Some(Arc::clone(&gate)),
        &shutdown,
    )
    .await;
    let mut config = config(&ingest, &keys, &address, 3);
    config.node_queue = 4;
    config.push_timeout = Duration::from_secs(10);
    let run = start(config);
    // Its first request (`Synced` of the empty window) is in flight and held.
    let first = tokio::time::timeout(DEADLINE, g.attempts.recv())
        .await
        .expect("a request")
        .expect("server alive");
    assert_eq!(first, "POST synced ingest1");

    // Eleven more events than its queue holds: it overflows once and is skipped after.
    let mut sent = vec![session_started(1)];
    sent.extend((0..11).map(|n| segment("src", 1, n)));
    run.send(sent).await;
    metric_reaches(
        &run.metrics,
        "sealcast_ingest_push_resyncs_total{node=\"g\"}",
        1.0,
    )
    .await;

    // Let it answer: the held request completes, then the window (the last 3 segments)
    // and `Synced` again; then live events follow.
    gate.add_permits(1000);
    let got: Vec<String> = g.next_n(6).await.iter().map(Received::describe).collect();
    assert_eq!(
        got,
        [
            "synced ingest1",
            "start 1",
            "segment src 8",
            "segment src 9",
            "segment src 10",
            "synced ingest1",
        ]
    );
    run.send([segment("src", 1, 11)]).await;
    assert_eq!(g.next().await.describe(), "segment src 11");
    assert_eq!(
        metric(
            &run.metrics,
            "sealcast_ingest_push_resyncs_total{node=\"g\"}"
        ),
        Some(1.0)
    );

    run.shutdown.cancel();
    tokio::time::timeout(DEADLINE, run.task)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("clean");
    shutdown.cancel();
}

fn part(rendition: &str, sequence: u64, index: u32) -> LiveEvent {
    LiveEvent::Part(Part {
        meta: PartMeta {
            stream: stream(),
            rendition: self::rendition(rendition),
            session: SessionId(7),
            sequence,
            index,
            discontinuity_sequence: 0,
            independent: index == 0,
            duration: Duration::from_millis(333),
            program_date_time_ms: 1_800_000_000_000,
        },
        bytes: Bytes::from(format!("moof+mdat {rendition} {sequence}.{index}")),
    })
}

/// LL-HLS parts go to every node at once with their metadata in headers, their envelopes
/// (part statements) verify and bind the bytes, and a late joiner is not sent any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_pushed_with_their_headers_and_signed_but_not_kept() {
    let broker = broker().await;
    let address = broker.address();
    let shutdown = CancellationToken::new();
    let ingest = node_id("ingest1");
    let mut keys = keys(&ingest);
    let (_watcher, mut watch, _watch_task) = mqtt_client(
        &address,
        "watcher",
        "watcher",
        vec![
            (Topic::filter_all_media_statements(), Qos::AtLeastOnce),
            (Topic::filter_all_certificates(), Qos::AtLeastOnce),
        ],
        &shutdown,
    )
    .await;
    let mut a = FakeNode::start(&address, "a", Behaviour::Acknowledge, &shutdown).await;
    let run = start(config(&ingest, &keys, &address, 3));
    assert_eq!(a.next().await.describe(), "synced ingest1");
    let cert = next_message(&mut watch, |m| {
        m.topic == Topic::IngestCertificate(ingest.clone())
    })
    .await;
    keys.trust
        .add_certificate(&cert.payload, now())
        .expect("admitted");

    let sent = vec![
        session_started(7),
        announced("src"),
        part("src", 0, 0),
        part("src", 0, 1),
        segment("src", 7, 0),
        part("src", 1, 0),
    ];
    // The parts of segment 0 are taken before the segment is sent: a segment queued
    // takes out its parts still waiting in a node's queue (they are stale by then).
    run.send(sent[..4].to_vec()).await;
    let mut got = a.next_n(4).await;
    run.send(sent[4..].to_vec()).await;
    got.extend(a.next_n(sent.len() - 4).await);
    let described: Vec<String> = got.iter().map(Received::describe).collect();
    assert_eq!(
        described,
        [
            "start 7",
            "rendition src",
            "part src 0.0",
            "part src 0.1",
            "segment src 0",
            "part src 1.0"
        ]
    );
    for (r, e) in got.iter().zip(&sent) {
        if let (
            Received::Part {
                meta,
                headers,
                body,
            },
            LiveEvent::Part(want),
        ) = (r, e)
        {
            assert_eq!(meta, &want.meta, "the headers carry the metadata");
            assert_eq!(body, &want.bytes);
            assert_eq!(
                headers.get("authorization").and_then(|v| v.to_str().ok()),
                Some(format!("Bearer {TOKEN}").as_str())
            );
        }
    }

    // Envelopes on the rendition's statement topic, in order, not retained: a part-key
    // delegation before the first part of each segment of its run (the certified key
    // vouching for the key that signs the parts), parts verifying under it as part
    // statements binding the pushed bytes, the segment under the certified key.
    let mut order = Vec::new();
    for _ in 0..6 {
        let m = next_message(&mut watch, |m| {
            m.topic == Topic::MediaStatements(stream(), rendition("src"))
        })
        .await;
        assert!(!m.retained);
        if m.payload
            .get(4..)
            .is_some_and(|s| s.starts_with(PART_KEY_TAG))
        {
            let delegation = keys
                .trust
                .admit_delegation(&m.payload, now())
                .expect("the delegation is the certified key's");
            let s = delegation.statement();
            order.push(format!(
                "part key {}..={}",
                s.first_sequence, s.last_sequence
            ));
            continue;
        }
        let envelope = SignedMedia::decode(&m.payload).expect("envelope");
        match envelope.statement().expect("a statement") {
            MediaStatement::Part(statement) => {
                let scope = PartScope {
                    stream: &statement.stream,
                    session: statement.session,
                    rendition: &statement.rendition,
                    sequence: statement.sequence,
                };
                keys.trust
                    .verify_part(
                        statement.key_id,
                        scope,
                        &envelope.statement_bytes,
                        &envelope.signature,
                        now(),
                    )
                    .expect("the part's signature verifies");
                let LiveEvent::Part(want) = part("src", statement.sequence, statement.index) else {
                    unreachable!()
                };
                let digest: [u8; 32] = Sha256::digest(&want.bytes).into();
                assert_eq!(statement.digest, digest);
                assert_eq!(statement.byte_len, want.bytes.len() as u64);
                assert_eq!(statement.independent, want.meta.independent);
                order.push(format!("part {}.{}", statement.sequence, statement.index));
            }
            MediaStatement::Segment(statement) => {
                order.push(format!("segment {}", statement.sequence));
            }
        }
    }
    assert_eq!(
        order,
        [
            "part key 0..=4",
            "part 0.0",
            "part 0.1",
            "segment 0",
            "part key 0..=4",
            "part 1.0"
        ]
    );

    // A late joiner gets the segment window, never parts.
    let mut c = FakeNode::start(&address, "c", Behaviour::Acknowledge, &shutdown).await;
    let got: Vec<String> = c.next_n(4).await.iter().map(Received::describe).collect();
    assert_eq!(
        got,
        [
            "start 7",
            "rendition src",
            "segment src 0",
            "synced ingest1"
        ]
    );
    metric_reaches(&run.metrics, "sealcast_ingest_parts_signed_total", 3.0).await;
    assert!(metrics_text(&run.metrics).contains("sealcast_ingest_part_sign_seconds_count 3"));

    let Running { events, task, .. } = run;
    drop(events);
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("clean");
    shutdown.cancel();
}

/// Segment `sequence` of `rendition` whose bytes are its `parts` parts (`part`) joined,
/// as the ingest's CMAF segmenter makes it.
fn joined_segment(rendition: &str, sequence: u64, parts: u32) -> LiveEvent {
    let LiveEvent::Segment(mut s) = segment(rendition, 7, sequence) else {
        unreachable!()
    };
    let mut bytes = Vec::new();
    for i in 0..parts {
        let LiveEvent::Part(p) = part(rendition, sequence, i) else {
            unreachable!()
        };
        bytes.extend_from_slice(&p.bytes);
    }
    s.bytes = Bytes::from(bytes);
    LiveEvent::Segment(s)
}

/// The events of one stream with parts: segment 0 is its two parts joined, segment 1
/// carries a byte its parts do not.
fn ll_events() -> Vec<LiveEvent> {
    let LiveEvent::Segment(mut one) = joined_segment("src", 1, 2) else {
        unreachable!()
    };
    one.bytes = Bytes::from([&one.bytes[..], b"+"].concat());
    vec![
        session_started(7),
        announced("src"),
        part("src", 0, 0),
        part("src", 0, 1),
        joined_segment("src", 0, 2),
        part("src", 1, 0),
        part("src", 1, 1),
        LiveEvent::Segment(one),
    ]
}

/// A segment goes without its bytes to a node that took every one of its parts (and whole
/// where its parts do not add up to it); a node that answers `parts_missing` gets the whole
/// segment at once; a node that failed a part gets it whole. Bytes pushed are counted per
/// node and kind, segments per form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_go_bodiless_only_where_every_part_was_taken_and_whole_on_parts_missing() {
    let broker = broker().await;
    let address = broker.address();
    let shutdown = CancellationToken::new();
    let ingest = node_id("ingest1");
    let keys = keys(&ingest);
    let mut a = FakeNode::start(&address, "a", Behaviour::Acknowledge, &shutdown).await;
    let mut b = FakeNode::start(&address, "b", Behaviour::MissParts, &shutdown).await;
    let mut c = FakeNode::start(&address, "c", Behaviour::FailParts, &shutdown).await;
    let run = start(config(&ingest, &keys, &address, 3));
    for node in [&mut a, &mut b, &mut c] {
        assert_eq!(node.next().await.describe(), "synced ingest1");
    }
    let sent = ll_events();
    // Segment 1 queued would take out the parts of segment 0 still waiting (stale by
    // then): segment 0 is taken everywhere first, as 2 s of media take in a real stream.
    run.send(sent[..5].to_vec()).await;
    let mut got = a.next_n(5).await;
    let mut got_b = b.next_n(5).await;
    let mut got_c = c.next_n(3).await;
    run.send(sent[5..].to_vec()).await;
    got.extend(a.next_n(3).await);
    got_b.extend(b.next_n(3).await);
    got_c.extend(c.next_n(1).await);
    let described: Vec<String> = got.iter().map(Received::describe).collect();
    assert_eq!(
        described,
        [
            "start 7",
            "rendition src",
            "part src 0.0",
            "part src 0.1",
            "segment src 0 of 2 parts",
            "part src 1.0",
            "part src 1.1",
            "segment src 1",
        ]
    );
    let Received::Segment { body, meta, .. } = &got[4] else {
        unreachable!()
    };
    assert!(body.is_empty(), "no bytes for a segment made of its parts");
    let LiveEvent::Segment(zero) = &sent[4] else {
        unreachable!()
    };
    assert_eq!(
        meta, &zero.meta,
        "the headers carry the metadata all the same"
    );
    check_live_segment(&got[7], &sent[7]);

    // b answered the bodiless push with parts_missing: the bytes came at once.
    check_live_segment(&got_b[4], &sent[4]);
    let mut tried = Vec::new();
    while tried.len() < 9 {
        tried.push(
            tokio::time::timeout(DEADLINE, b.attempts.recv())
                .await
                .expect("in time")
                .expect("open"),
        );
    }
    assert_eq!(
        tried[5..7],
        ["PUT segment src 0 of 2 parts", "PUT segment src 0"]
    );

    // c failed the parts: whole segments only.
    let got: Vec<String> = got_c.iter().map(Received::describe).collect();
    assert_eq!(
        got,
        ["start 7", "rendition src", "segment src 0", "segment src 1"]
    );

    let series = |node: &str, label: &str| {
        metric(
            &run.metrics,
            &format!("sealcast_ingest_segment_pushes_total{{node=\"{node}\",form=\"{label}\"}}"),
        )
    };
    metric_reaches(
        &run.metrics,
        "sealcast_ingest_segment_pushes_total{node=\"c\",form=\"whole\"}",
        2.0,
    )
    .await;
    assert_eq!(series("a", "assembled"), Some(1.0));
    assert_eq!(series("a", "whole"), Some(1.0));
    assert_eq!(series("b", "fallback"), Some(1.0));
    assert_eq!(series("b", "whole"), Some(1.0));
    let LiveEvent::Segment(one) = &sent[7] else {
        unreachable!()
    };
    let bytes = |node: &str| {
        metric(
            &run.metrics,
            &format!("sealcast_ingest_push_bytes_total{{node=\"{node}\",kind=\"segment\"}}"),
        )
    };
    assert_eq!(bytes("a"), Some(one.bytes.len() as f64));
    assert_eq!(
        bytes("b"),
        Some((zero.bytes.len() + one.bytes.len()) as f64)
    );

    let Running { events, task, .. } = run;
    drop(events);
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("clean");
    shutdown.cancel();
}

/// With `whole_segments` (`SEALCAST_PUSH_WHOLE_SEGMENTS=1`), every segment goes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diagnostic_switch_pushes_every_segment_whole() {
    let broker = broker().await;
    let address = broker.address();
    let shutdown = CancellationToken::new();
    let ingest = node_id("ingest1");
    let keys = keys(&ingest);
    let mut a = FakeNode::start(&address, "a", Behaviour::Acknowledge, &shutdown).await;
    let mut config = config(&ingest, &keys, &address, 3);
    config.whole_segments = true;
    let run = start(config);
    assert_eq!(a.next().await.describe(), "synced ingest1");
    let sent = ll_events();
    // Segment 1 queued would take out the parts of segment 0 still waiting (stale by
    // then): segment 0 is taken first, as 2 s of media take in a real stream.
    run.send(sent[..5].to_vec()).await;
    let mut got = a.next_n(5).await;
    run.send(sent[5..].to_vec()).await;
    got.extend(a.next_n(3).await);
    check_live_segment(&got[4], &sent[4]);
    check_live_segment(&got[7], &sent[7]);
    let Running { events, task, .. } = run;
    drop(events);
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("clean");
    shutdown.cancel();
}

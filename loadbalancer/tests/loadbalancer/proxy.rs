//! The load balancer started as `sealcast lb` starts it, against an embedded broker and two
//! tiny HTTP backends: backends come and go with their presence; direct mode redirects
//! playlists to the node's own URL; hash mode places a client without a cookie; with no
//! node left, 503 with a JSON body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certs::signing::{
    PresenceSigner, PresenceVerifier, RootKey, SignatureAlgorithm, SigningKey, Validity,
};
use domain::presence::{Presence, PresenceState, Role};
use domain::topics::Topic;
use domain::NodeId;
use loadbalancer::cookie::{CookieKey, StickyCookies};
use loadbalancer::members::HealthChecks;
use loadbalancer::proxy::ProxySettings;
use loadbalancer::tls::CertificateFiles;
use loadbalancer::{LbConfig, LbListeners, LbMetrics, Mode, Running};
use plumbing::{BusOptions, EmbeddedBroker, Qos};
use tokio_util::sync::CancellationToken;

pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An HTTP server answering everything with 200 and `x-sealcast-node: {id}`.
pub(crate) async fn backend(id: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .fallback(move || async move { ([("x-sealcast-node", id)], format!("served by {id}\n")) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

pub(crate) struct Setup {
    _broker: EmbeddedBroker,
    /// Signs the test backends' presences with an edge key `verifier`'s root certified.
    signer: PresenceSigner,
    verifier: PresenceVerifier,
    _tls: tempfile::TempDir,
    pub(crate) ca: Vec<u8>,
    bus: plumbing::Bus,
    pub(crate) stop: CancellationToken,
    broker: domain::broker::BrokerAddress,
    files: CertificateFiles,
}

pub(crate) async fn setup() -> Setup {
    let broker =
        tokio::task::spawn_blocking(|| EmbeddedBroker::start("127.0.0.1:0".parse().expect("addr")))
            .await
            .expect("join")
            .expect("broker");
    let tls = tempfile::tempdir().expect("tempdir");
    let dir = certs::TlsDir::new(tls.path());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    dir.init(&certs::tls::ServerNames::new(2), now)
        .expect("certificates");
    let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
    let edge = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("edge key");
    let edge_cert = root
        .certify_edge(
            edge.public_key(),
            NodeId::new("broadcast").expect("id"),
            Validity::starting_at(now, Duration::from_secs(3600)),
        )
        .expect("certified");
    let stop = CancellationToken::new();
    let (bus, mut events, _task) = plumbing::connect(
        BusOptions::new(broker.address(), "test-announcer"),
        stop.clone(),
    );
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Setup {
        ca: std::fs::read(dir.ca_certificate_path()).expect("ca"),
        files: CertificateFiles {
            chain: dir.server_chain_path(),
            key: dir.server_key_path(),
        },
        broker: broker.address(),
        _broker: broker,
        signer: PresenceSigner::new(edge, &edge_cert).expect("signer"),
        verifier: PresenceVerifier::new(root.public_key()),
        _tls: tls,
        bus,
        stop,
    }
}

impl Setup {
    pub(crate) fn start(&self, mode: Mode, direct: bool, id: &str) -> (Running, String) {
        self.start_with(mode, direct, id, LbMetrics::default())
    }

    fn start_with(
        &self,
        mode: Mode,
        direct: bool,
        id: &str,
        metrics: LbMetrics,
    ) -> (Running, String) {
        let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "https://localhost:{}",
            https.local_addr().expect("addr").port()
        );
        let listeners = LbListeners {
            https,
            http: None,
            origin: None,
            quic: None,
        };
        let running =
            loadbalancer::start(self.config(mode, direct, id), listeners, metrics).expect("starts");
        (running, base)
    }

    pub(crate) fn config(&self, mode: Mode, direct: bool, id: &str) -> LbConfig {
        LbConfig {
            broker: self.broker.clone(),
            client_id: id.to_owned(),
            presences: self.verifier.clone(),
            certificate: self.files.clone(),
            reload_interval: Duration::from_secs(1),
            cookies: StickyCookies::new(CookieKey::new(&[7; 32]).expect("key")),
            mode,
            proxy: ProxySettings {
                direct,
                access_log: false,
                collapse: true,
            },
            health: HealthChecks {
                interval: Duration::from_millis(200),
                timeout: Duration::from_millis(500),
            },
            acme_dir: None,
            fallback_host: "localhost".into(),
            limits: None,
            trusted_caches: Default::default(),
            tokens: None,
            quic: None,
        }
    }

    pub(crate) async fn announce(
        &self,
        node: &str,
        state: PresenceState,
        url: &str,
        direct: Option<&str>,
    ) {
        let presence = Presence {
            role: Role::Broadcast,
            state,
            url: Some(url.to_owned()),
            direct_url: direct.map(str::to_owned),
        };
        self.publish_presence(node, &presence).await;
    }

    /// Publishes `presence` as `node`'s retained presence, signed with the edge key.
    pub(crate) async fn publish_presence(&self, node: &str, presence: &Presence) {
        let node = NodeId::new(node).expect("id");
        let payload = self.signer.sign(&node, presence, now_ms());
        self.publish_raw(&node, payload).await;
    }

    async fn publish_raw(&self, node: &NodeId, payload: Vec<u8>) {
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

    pub(crate) fn client(&self) -> reqwest::Client {
        self.client_at(std::net::Ipv4Addr::LOCALHOST)
    }

    /// A client whose connections come from `address` (any of 127.0.0.0/8 reaches the load
    /// balancer on 127.0.0.1): a viewer of its own.
    pub(crate) fn client_at(&self, address: std::net::Ipv4Addr) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::V4(address))
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca).expect("ca"))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }
}

pub(crate) async fn eligible(running: &Running, n: usize) {
    tokio::time::timeout(DEADLINE, running.pool().wait_eligible(n))
        .await
        .expect("backends eligible in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_direct_mode_hash_mode_and_no_backend() {
    let s = setup().await;
    let (b1, b2) = (backend("b1").await, backend("b2").await);
    let direct_b1 = "https://broadcast1.streaming-cluster.test";
    s.announce("b1", PresenceState::Ready, &b1, Some(direct_b1))
        .await;
    s.announce("b2", PresenceState::Joining, &b2, None).await;

    // Direct mode: a playlist is a redirect to the node's own host; other paths are proxied.
    let (direct, base) = s.start(Mode::Cookie, true, "lb-direct");
    eligible(&direct, 1).await;
    let client = s.client();
    let r = client
        .get(format!("{base}/live/cam/master.m3u8?x=1"))
        .send()
        .await
        .expect("playlist");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("{direct_b1}/live/cam/master.m3u8?x=1").as_str()
    );
    assert!(r.headers().contains_key("set-cookie"));
    let r = client
        .get(format!("{base}/live/cam/src/1.ts"))
        .send()
        .await
        .expect("segment");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-sealcast-node"], "b1", "b2 is still joining");
    // A node's metrics and push API are not for viewers.
    for path in ["/metrics", "/internal/v1/events", "/internal"] {
        let r = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("private path");
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            !r.headers().contains_key("x-sealcast-node"),
            "{path} reached a node"
        );
    }

    // Hash mode: the same client address always lands on the same node, no cookie.
    s.announce("b2", PresenceState::Ready, &b2, None).await;
    let (hashed, hbase) = s.start(Mode::Hash, false, "lb-hash");
    eligible(&hashed, 2).await;
    let mut nodes = Vec::new();
    for _ in 0..10 {
        let r = client.get(format!("{hbase}/")).send().await.expect("get");
        assert_eq!(r.status(), 200);
        assert!(!r.headers().contains_key("set-cookie"));
        nodes.push(
            r.headers()["x-sealcast-node"]
                .to_str()
                .expect("ascii")
                .to_owned(),
        );
    }
    assert!(nodes.windows(2).all(|w| w[0] == w[1]), "{nodes:?}");

    // Both go offline: no node, 503 with Retry-After and a JSON error.
    for node in ["b1", "b2"] {
        s.publish_presence(node, &Presence::offline(Role::Broadcast))
            .await;
    }
    tokio::time::timeout(DEADLINE, hashed.pool().wait_eligible_count(|n| n == 0))
        .await
        .expect("nodes left");
    let r = client.get(format!("{hbase}/")).send().await.expect("get");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["error"].is_string());

    direct.stop().await;
    hashed.stop().await;
    s.stop.cancel();
}

/// Presences the cluster's edge key did not sign (unsigned, signed under another root, or
/// a real node's signed presence replayed on another node's topic) are refused and
/// counted; every viewer goes to the one real node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presences_not_signed_by_the_cluster_edge_key_get_no_viewers() {
    let s = setup().await;
    let (real, evil) = (backend("real").await, backend("evil").await);
    let evil_presence = Presence {
        role: Role::Broadcast,
        state: PresenceState::Ready,
        url: Some(evil.clone()),
        direct_url: None,
    };
    s.publish_raw(&NodeId::new("evil1").expect("id"), evil_presence.encode())
        .await;
    let stranger_root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
    let stranger_key = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let stranger_cert = stranger_root
        .certify_edge(
            stranger_key.public_key(),
            NodeId::new("broadcast").expect("id"),
            Validity::starting_at(now_ms() / 1000, Duration::from_secs(3600)),
        )
        .expect("certified");
    let stranger = PresenceSigner::new(stranger_key, &stranger_cert).expect("signer");
    let evil2 = NodeId::new("evil2").expect("id");
    s.publish_raw(&evil2, stranger.sign(&evil2, &evil_presence, now_ms()))
        .await;
    let replayed = s.signer.sign(
        &NodeId::new("real").expect("id"),
        &Presence {
            url: Some(real.clone()),
            ..evil_presence.clone()
        },
        now_ms(),
    );
    s.publish_raw(&NodeId::new("evil3").expect("id"), replayed)
        .await;
    s.announce("real", PresenceState::Ready, &real, None).await;

    let metrics = LbMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let (lb, base) = s.start_with(Mode::Cookie, false, "lb-forged", metrics);
    eligible(&lb, 1).await;
    let refused = || {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        text.lines()
            .filter(|l| l.starts_with("sealcast_lb_presences_refused_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while refused() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "refusals counted: {}",
            refused()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let members: Vec<_> = lb.pool().members().into_iter().map(|(n, _)| n).collect();
    assert_eq!(members, vec![NodeId::new("real").expect("id")]);
    let client = s.client();
    for _ in 0..20 {
        let r = client
            .get(format!("{base}/live/cam/master.m3u8"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.headers()["x-sealcast-node"], "real");
    }
    lb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_listener_proxies_plain_http_for_a_cache_in_front() {
    // Varnish cannot fetch over TLS: the origin listener serves the same proxy over plain
    // HTTP, where the plain-HTTP port only redirects.
    let s = setup().await;
    let b1 = backend("b1").await;
    s.announce("b1", PresenceState::Ready, &b1, None).await;
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (https, http, origin) = (bind(), bind(), bind());
    let port = |l: &std::net::TcpListener| l.local_addr().expect("addr").port();
    let (http_port, origin_port) = (port(&http), port(&origin));
    let listeners = LbListeners {
        https,
        http: Some(http),
        origin: Some(origin),
        quic: None,
    };
    let lb = loadbalancer::start(
        s.config(Mode::Cookie, false, "lb-origin"),
        listeners,
        LbMetrics::default(),
    )
    .expect("starts");
    eligible(&lb, 1).await;
    let client = s.client();
    let r = client
        .get(format!(
            "http://127.0.0.1:{origin_port}/live/cam/720p/index.m3u8?_HLS_msn=3"
        ))
        .send()
        .await
        .expect("origin listener");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-sealcast-node"], "b1");
    assert_eq!(r.text().await.expect("body"), "served by b1\n");
    // The public plain-HTTP port still only redirects; /healthz is answered on both.
    let r = client
        .get(format!("http://127.0.0.1:{http_port}/live/cam/master.m3u8"))
        .send()
        .await
        .expect("http listener");
    assert_eq!(r.status(), 308);
    let r = client
        .get(format!("http://127.0.0.1:{origin_port}/healthz"))
        .send()
        .await
        .expect("origin health");
    assert_eq!(r.status(), 200);
    lb.stop().await;
    s.stop.cancel();
}

/// A node that holds each request until the test releases its phase (the `phase` query
/// parameter), answering with the `cc` parameter as its `Cache-Control` (default public),
/// and counts what reached it per phase.
struct HeldNode {
    url: String,
    seen: std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<u32, usize>>>,
    /// The `x-forwarded-for` of every request, as a node counts its viewers.
    forwarded: std::sync::Arc<parking_lot::Mutex<std::collections::BTreeSet<String>>>,
    release: tokio::sync::watch::Sender<u32>,
}

impl HeldNode {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(std::collections::HashMap::new()));
        let (release, _) = tokio::sync::watch::channel(0u32);
        let forwarded =
            std::sync::Arc::new(parking_lot::Mutex::new(std::collections::BTreeSet::new()));
        let (counted, released) = (std::sync::Arc::clone(&seen), release.clone());
        let addresses = std::sync::Arc::clone(&forwarded);
        let app = axum::Router::new().fallback(move |uri: http::Uri, headers: http::HeaderMap| {
            let (seen, mut released) = (std::sync::Arc::clone(&counted), released.subscribe());
            if let Some(from) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                addresses.lock().insert(from.to_owned());
            }
            async move {
                let param = |name: &str| {
                    uri.query()
                        .unwrap_or("")
                        .split('&')
                        .find_map(|p| p.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
                };
                let phase: u32 = param("phase").and_then(|p| p.parse().ok()).unwrap_or(0);
                *seen.lock().entry(phase).or_insert(0) += 1;
                let _ = released.wait_for(|r| *r >= phase).await;
                let cache_control = param("cc").unwrap_or_else(|| "public, max-age=2".into());
                (
                    [("cache-control", cache_control)],
                    format!("answer to {uri}\n"),
                )
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        HeldNode {
            url,
            seen,
            forwarded,
            release,
        }
    }

    fn seen(&self, phase: u32) -> usize {
        self.seen.lock().get(&phase).copied().unwrap_or(0)
    }
}

/// Polls `done` until it holds (or fails the test after [`DEADLINE`]).
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Identical requests held at the same time go to the node once and share its public
/// answer, each with its own cookie; an answer that is not public sends every waiting
/// request to the node itself; a request with a playback token is never collapsed, and a
/// live playlist request only when its node has counted that viewer lately.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_held_together_reach_the_node_once() {
    let s = setup().await;
    let node = HeldNode::start().await;
    s.announce("held", PresenceState::Ready, &node.url, None)
        .await;
    let metrics = LbMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let (lb, base) = s.start_with(Mode::Cookie, false, "lb-collapse", metrics);
    eligible(&lb, 1).await;
    let client = s.client();
    let metric = |name: &str| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let viewers: Vec<reqwest::Client> = (2..=5)
        .map(|k| s.client_at(std::net::Ipv4Addr::new(127, 0, 0, k)))
        .collect();
    let send_from = |clients: Vec<&reqwest::Client>, path: &str| {
        clients
            .into_iter()
            .map(|client| {
                let request = client.get(format!("{base}{path}")).send();
                tokio::spawn(async move {
                    let r = request.await.expect("answer");
                    (r.status().as_u16(), r.text().await.expect("body"))
                })
            })
            .collect::<Vec<_>>()
    };
    let send_all = |n: usize, path: String| {
        (0..n)
            .map(|_| {
                let request = client.get(format!("{base}{path}")).send();
                tokio::spawn(async move {
                    let r = request.await.expect("answer");
                    let cookie = r.headers().contains_key("set-cookie");
                    let cache_control = r.headers()["cache-control"]
                        .to_str()
                        .expect("ascii")
                        .to_owned();
                    (
                        r.status().as_u16(),
                        cookie,
                        cache_control,
                        r.text().await.expect("body"),
                    )
                })
            })
            .collect::<Vec<_>>()
    };

    // Ten viewers' request for the hinted part, held by the node: one reaches it.
    let hinted = "/live/cam/720p/5.1.m4s?phase=1";
    let answers = send_all(10, hinted.to_owned());
    until("nine requests wait for the first", || {
        node.seen(1) >= 1 && metric("sealcast_lb_followers_waiting") == 9
    })
    .await;
    node.release.send_replace(1);
    for answer in answers {
        let (status, cookie, cache_control, body) = answer.await.expect("join");
        assert_eq!(status, 200);
        assert!(cookie, "each viewer gets its own cookie");
        assert_eq!(cache_control, "public, max-age=2");
        assert_eq!(body, format!("answer to {hinted}\n"));
    }
    assert_eq!(
        node.seen(1),
        1,
        "identical held requests reached the node once"
    );
    assert_eq!(metric("sealcast_lb_collapsed_total{outcome=\"shared\"}"), 9);
    assert_eq!(metric("sealcast_lb_followers_waiting"), 0);

    // A part the node says no shared cache may keep: each waiting request asks itself.
    let part = "/live/cam/720p/5.2.m4s?cc=no-store&phase=2";
    let answers = send_all(5, part.to_owned());
    until("four requests wait for the first", || {
        node.seen(2) >= 1 && metric("sealcast_lb_followers_waiting") == 4
    })
    .await;
    node.release.send_replace(2);
    for answer in answers {
        let (status, _, cache_control, _) = answer.await.expect("join");
        assert_eq!((status, cache_control.as_str()), (200, "no-store"));
    }
    assert_eq!(node.seen(2), 5, "an answer not public is nobody else's");
    assert_eq!(metric("sealcast_lb_collapsed_total{outcome=\"own\"}"), 4);

    // With a playback token, each request is its viewer's own.
    let path = "/live/town-hall/720p/5.1.m4s?token=abc&phase=3";
    let answers = send_all(3, path.to_owned());
    until("three requests held at the node", || node.seen(3) == 3).await;
    assert_eq!(metric("sealcast_lb_followers_waiting"), 0);
    node.release.send_replace(3);
    for answer in answers {
        assert_eq!(answer.await.expect("join").0, 200);
    }

    // A viewer's first blocking reload reaches the node, which counts its viewers by their
    // playlist requests: three viewers, three requests, none waiting for another.
    let reload =
        |phase: u32| format!("/live/cam/720p/index.m3u8?_HLS_msn=5&_HLS_part=1&phase={phase}");
    let shared = metric("sealcast_lb_collapsed_total{outcome=\"shared\"}");
    let answers = send_from(viewers[..3].iter().collect(), &reload(4));
    until("three first reloads held at the node", || node.seen(4) == 3).await;
    assert_eq!(metric("sealcast_lb_followers_waiting"), 0);
    node.release.send_replace(4);
    for answer in answers {
        assert_eq!(answer.await.expect("join").0, 200);
    }
    // Counted now, the same three viewers' reloads (three each) reach it once, while a
    // fourth viewer's first one goes on its own.
    let (counted, new) = (viewers[..3].iter().cycle().take(9), &viewers[3]);
    let answers = send_from(counted.collect(), &reload(5));
    until("eight counted reloads wait for the first", || {
        node.seen(5) >= 1 && metric("sealcast_lb_followers_waiting") == 8
    })
    .await;
    let first = send_from(vec![new], &reload(5));
    until("the new viewer's reload at the node", || node.seen(5) == 2).await;
    assert_eq!(metric("sealcast_lb_followers_waiting"), 8);
    node.release.send_replace(5);
    for answer in answers.into_iter().chain(first) {
        let (status, body) = answer.await.expect("join");
        assert_eq!((status, body), (200, format!("answer to {}\n", reload(5))));
    }
    assert_eq!(node.seen(5), 2);
    let counted: Vec<String> = (2..=5).map(|k| format!("127.0.0.{k}")).collect();
    assert!(
        counted.iter().all(|a| node.forwarded.lock().contains(a)),
        "the node saw every viewer: {:?}",
        node.forwarded.lock()
    );
    assert_eq!(
        metric("sealcast_lb_collapsed_total{outcome=\"shared\"}"),
        shared + 8
    );
    lb.stop().await;
    s.stop.cancel();
}

//! Playback tokens and publish auth on MoQ (issue 48), through the real moq-relay asking
//! the node (`--auth-url unix://…`, `broadcast::run_moq_auth`) who may do what: the node
//! publishes its public stream under its name and its private stream under
//! `_private/NAME`, with a fresh publish credential on each dial. Subscribers made with
//! moq-tokio (the relay's own client library) show that
//!
//! - an anonymous session reads the public stream, and neither reads the private one nor
//!   has it announced;
//! - a token for the private stream reads it (`?token=` in the dial URL, as LL-HLS takes
//!   it), also when bound to the relay-reported address; a token of another stream is
//!   admitted without it; an expired, forged, or otherwise-bound token is refused at
//!   connect;
//! - a stream turning private leaves its public name and appears under the private one;
//! - a publisher without the node's credential is refused, or admitted as a viewer when
//!   it also subscribes, and publishes nothing; one with a forged credential is refused;
//! - the relay's log (at the level deployments run it) holds no token or credential;
//! - in Chromium, `web/src/moq.js` dialing `https://127.0.0.1:PORT/?token=…` over
//!   WebTransport reads the private stream, is refused it without the token, and is
//!   refused at connect with a forged one, whose error does not show it.

use std::sync::Arc;
use std::time::Duration;

use broadcast::{MoqAuthConfig, MoqConfig, MoqKey, Node};
use certs::tokens::{Claims, PlaybackKey, TokenVerifier};
use domain::time::WallClock;
use domain::{LiveEvent, NodeId, SessionId, StreamName};
use moq_tokio::moq_net;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::moq::{
    client, cmaf_announce, cmaf_announce_of, next_frame, next_group, part_bytes, publish_whole,
    publish_whole_of, subscribe, RENDITION,
};
use crate::support::*;

const PRIVATE: &str = "secret";
/// The private stream's session: the one the `moq` helpers publish parts of.
const PRIVATE_SESSION: SessionId = SESSION;
/// How long a session may take to be admitted or refused, or a broadcast to show up.
const LIMIT: Duration = Duration::from_secs(20);
/// How long something that must not show up is given to show up anyway, once what is
/// allowed has shown up (announcements of one relay arrive together).
const NEVER: Duration = Duration::from_secs(3);

fn key() -> PlaybackKey {
    PlaybackKey::new(&[6; 32]).expect("key")
}

fn private_stream() -> StreamName {
    StreamName::new(PRIVATE).expect("valid")
}

fn token(stream: &str, edit: impl FnOnce(&mut Claims)) -> String {
    let now = WallClock.unix_secs();
    let mut claims = Claims::new(StreamName::new(stream).expect("valid"), now, now + 600);
    edit(&mut claims);
    key().mint(&claims)
}

/// A node with the public stream `demo` and the private stream `secret`, its auth
/// endpoint on a Unix socket, a relay asking it, and the node publishing to the relay.
struct Setup {
    node: Arc<Node>,
    relay: testkit::moq::Relay,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let node = Arc::new(
            Node::new(NodeId::new(NODE).expect("valid"), node_config()).with_access(
                broadcast::AccessConfig {
                    verifier: Some(Arc::new(TokenVerifier::new(key()))),
                    ..broadcast::AccessConfig::default()
                },
            ),
        );
        start(&node);
        cmaf_announce(&node);
        node.apply(LiveEvent::SessionStarted {
            stream: private_stream(),
            session: PRIVATE_SESSION,
            private: true,
            record: true,
        })
        .expect("start");
        cmaf_announce_of(&node, &private_stream());
        for sequence in 0..2 {
            publish_whole(&node, sequence);
            publish_whole_of(&node, &private_stream(), sequence);
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("moq-auth.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind the socket");
        let moq_key = MoqKey::random();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn({
            let serving = broadcast::run_moq_auth(
                broadcast::MoqAuthority::Node(Arc::clone(&node)),
                MoqAuthConfig {
                    key: moq_key.clone(),
                    root: "/".to_owned(),
                },
                listener,
                stop.clone(),
            );
            async move { serving.await.expect("the auth endpoint serves") }
        }));
        let auth_url = format!("unix://{}", socket.display());
        let relay = tokio::task::spawn_blocking(move || {
            testkit::moq::Relay::start_with_auth(&auth_url, &[])
        })
        .await
        .expect("joined")
        .expect("moq-relay starts");
        tasks.push(tokio::spawn({
            let egress = broadcast::run_moq(
                Arc::clone(&node),
                MoqConfig {
                    relays: vec![relay.url().parse().expect("url")],
                    roots: Vec::new(),
                    fingerprints: vec![relay.fingerprint.clone()],
                    key: Some(moq_key),
                },
                stop.clone(),
            );
            async move { egress.await.expect("egress stops cleanly") }
        }));
        Setup {
            node,
            relay,
            stop,
            tasks,
            _dir: dir,
        }
    }

    fn url(&self, query: Option<&str>) -> url::Url {
        let mut url: url::Url = self.relay.url().parse().expect("url");
        url.set_query(query);
        url
    }

    /// A subscriber session dialed with `query`: admitted (its origin and connection), or
    /// the error it was refused with.
    async fn subscriber(
        &self,
        query: Option<&str>,
    ) -> Result<(moq_net::origin::Producer, moq_tokio::Connection), String> {
        let origin = moq_tokio::origin::spawn();
        let connection = client(&self.relay)
            .with_subscriber(origin.clone())
            .with_reconnect(false)
            .connect(self.url(query));
        match tokio::time::timeout(LIMIT, connection.established()).await {
            Ok(Ok(connection)) => Ok((origin, connection)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => panic!(
                "no answer to a session within {LIMIT:?}; the relay said:\n{}",
                self.relay.log()
            ),
        }
    }

    /// Whether a session dialed with `query` is refused: at connect, or closed by the
    /// relay within [`LIMIT`] (moq-lite over QUIC may report a session up before the
    /// relay's answer arrives).
    async fn refuses(&self, query: &str) -> bool {
        let connection = match self.subscriber(Some(query)).await {
            Ok((_, connection)) => connection,
            Err(_) => return true,
        };
        tokio::time::timeout(LIMIT, connection.closed())
            .await
            .is_ok()
    }

    async fn finish(self) -> String {
        self.stop.cancel();
        for task in self.tasks {
            task.await.expect("joined");
        }
        self.relay.log()
    }
}

/// `path`'s broadcast through `origin`, within [`LIMIT`].
async fn broadcast(
    setup: &Setup,
    origin: &moq_net::origin::Producer,
    path: &str,
) -> moq_net::broadcast::Consumer {
    tokio::time::timeout(LIMIT, origin.consume().routed_broadcast(path))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no {path} within {LIMIT:?}; the relay said:\n{}",
                setup.relay.log()
            )
        })
        .expect("the broadcast")
}

/// Whether `path` shows up through `origin` within [`NEVER`].
async fn shows_up(origin: &moq_net::origin::Producer, path: &str) -> bool {
    tokio::time::timeout(NEVER, origin.consume().routed_broadcast(path))
        .await
        .is_ok_and(|b| b.is_ok())
}

/// Every path announced to `origin` so far.
fn announced(origin: &moq_net::origin::Producer) -> Vec<String> {
    let mut announced = origin.consume().announced();
    let mut paths = Vec::new();
    while let Some(update) = announced.try_next() {
        paths.push(format!("{:?}", update.prefix));
    }
    paths
}

/// The first media object of `broadcast`'s rendition track: a part the node was given.
async fn reads_media(broadcast: &moq_net::broadcast::Consumer) {
    let mut media = subscribe(broadcast, RENDITION).await;
    let mut group = next_group(&mut media).await;
    let sequence = group.sequence;
    let first = next_frame(&mut group).await.expect("an object");
    assert_eq!(
        first,
        part_bytes(sequence, 0),
        "group {sequence} starts with its first part"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_stream_goes_over_moq_to_its_token_holders_only() {
    let setup = Setup::start().await;
    let private_path = format!("{}{PRIVATE}", broadcast::PRIVATE_PREFIX);

    // A token for the private stream reads it (and the public one).
    let secret = token(PRIVATE, |_| {});
    let (holder, _held) = setup
        .subscriber(Some(&format!("token={secret}")))
        .await
        .expect("a valid token is admitted");
    reads_media(&broadcast(&setup, &holder, &private_path).await).await;
    broadcast(&setup, &holder, STREAM).await;

    // Anonymous: the public stream, and no trace of the private one.
    let (anonymous, _anon) = setup.subscriber(None).await.expect("anonymous is admitted");
    reads_media(&broadcast(&setup, &anonymous, STREAM).await).await;
    assert!(
        !shows_up(&anonymous, &private_path).await,
        "anonymous read it"
    );
    assert!(!shows_up(&anonymous, PRIVATE).await);
    let seen = announced(&anonymous);
    assert!(
        seen.iter().all(|a| !a.contains(PRIVATE)),
        "announced to an anonymous session: {seen:?}"
    );

    // Bound to the address the relay reports: plays from there only.
    let here = token(PRIVATE, |c| {
        c.cidr = Some("127.0.0.0/8".parse().expect("cidr"))
    });
    let (bound, _bound) = setup
        .subscriber(Some(&format!("token={here}")))
        .await
        .expect("a token bound to the viewer's network is admitted");
    broadcast(&setup, &bound, &private_path).await;

    // Another stream's token: admitted, and nothing of this one.
    let other = token("other", |_| {});
    let (stranger, _stranger) = setup
        .subscriber(Some(&format!("token={other}")))
        .await
        .expect("a valid token of another stream is admitted");
    broadcast(&setup, &stranger, STREAM).await;
    assert!(
        !shows_up(&stranger, &private_path).await,
        "another stream's token read it"
    );

    // Refused at connect.
    let expired = token(PRIVATE, |c| {
        c.iat = Some(c.iat.unwrap_or(0) - 7200);
        c.exp -= 3600;
    });
    let forged = PlaybackKey::new(&[7; 32]).expect("key").mint(&Claims::new(
        private_stream(),
        0,
        u64::MAX / 2,
    ));
    let elsewhere = token(PRIVATE, |c| {
        c.cidr = Some("10.0.0.0/8".parse().expect("cidr"))
    });
    for (what, query) in [
        ("an expired token", format!("token={expired}")),
        ("a forged token", format!("token={forged}")),
        ("a token bound elsewhere", format!("token={elsewhere}")),
        ("two tokens", format!("token={secret}&token={secret}")),
    ] {
        assert!(
            setup.refuses(&query).await,
            "{what} was admitted; the relay said:\n{}",
            setup.relay.log()
        );
    }

    // Turning public: the stream leaves its private name for its public one.
    setup
        .node
        .apply(LiveEvent::SessionStarted {
            stream: private_stream(),
            session: PRIVATE_SESSION,
            private: false,
            record: true,
        })
        .expect("made public");
    let (later, _later) = setup.subscriber(None).await.expect("admitted");
    broadcast(&setup, &later, PRIVATE).await;
    // And private again: gone from the public name, back under the private one.
    setup
        .node
        .apply(LiveEvent::SessionStarted {
            stream: private_stream(),
            session: PRIVATE_SESSION,
            private: true,
            record: true,
        })
        .expect("made private");
    let (again, _again) = setup
        .subscriber(Some(&format!("token={secret}")))
        .await
        .expect("admitted");
    broadcast(&setup, &again, &private_path).await;
    let (anonymous, _anon) = setup.subscriber(None).await.expect("admitted");
    broadcast(&setup, &anonymous, STREAM).await;
    assert!(
        !shows_up(&anonymous, PRIVATE).await,
        "still public after turning private"
    );

    let log = setup.finish().await;
    for secret in [&secret, &here, &other, &expired, &forged, &elsewhere] {
        assert!(
            !log.contains(secret.as_str()),
            "the relay logged a token:\n{log}"
        );
    }
    assert!(
        !log.contains("publish="),
        "the relay logged a credential:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_node_publishes_to_a_relay_that_asks_it() {
    let setup = Setup::start().await;

    let intruder_origin = moq_tokio::origin::spawn();
    let intruder = intruder_origin
        .create_broadcast("intruder")
        .expect("a broadcast");
    let hijack = intruder_origin
        .create_broadcast(format!("{}{PRIVATE}x", broadcast::PRIVATE_PREFIX))
        .expect("a broadcast");
    // Without the node's credential, a session that says it publishes and one that says
    // nothing (both ways) get a viewer's grant at most, and what they announce goes
    // nowhere.
    let mut intruders = Vec::new();
    for both_ways in [false, true] {
        let mut dial = client(&setup.relay).with_publisher(&intruder_origin);
        if both_ways {
            dial = dial.with_subscriber(moq_tokio::origin::spawn());
        }
        intruders.push(dial.with_reconnect(false).connect(setup.url(None)));
    }
    let (viewer, _viewer) = setup
        .subscriber(Some(&format!(
            "token={}",
            token(&format!("{PRIVATE}x"), |_| {})
        )))
        .await
        .expect("admitted");
    broadcast(&setup, &viewer, STREAM).await;
    assert!(
        !shows_up(&viewer, "intruder").await,
        "an anonymous publisher published"
    );
    assert!(
        !shows_up(&viewer, &format!("{}{PRIVATE}x", broadcast::PRIVATE_PREFIX)).await,
        "an anonymous publisher published a private name"
    );

    // A forged or stale credential: refused.
    let stale = MoqKey::random().mint(WallClock.unix_secs());
    for query in [format!("publish={stale}"), "publish=1.00".to_owned()] {
        assert!(setup.refuses(&query).await, "{query} was admitted");
    }
    drop((intruder, hijack, intruders));
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reads_a_private_stream_with_its_token_in_the_webtransport_url() {
    let setup = Setup::start().await;
    let secret = token(PRIVATE, |_| {});
    let (holder, _held) = setup
        .subscriber(Some(&format!("token={secret}")))
        .await
        .expect("admitted");
    broadcast(
        &setup,
        &holder,
        &format!("{}{PRIVATE}", broadcast::PRIVATE_PREFIX),
    )
    .await;

    let origin = crate::moq_player::serve(&crate::moq_player::browser_url(&setup.relay)).await;
    let mut browser = testkit::browser::Browser::start(800, 600)
        .await
        .expect("browser");
    let page = format!("{origin}/moq-test.html");
    let result = crate::moq_player::run_case_with(
        &mut browser,
        &page,
        "secret",
        &setup.relay,
        &setup.relay.fingerprint,
        &[("token", secret.as_str())],
    )
    .await;
    browser.quit().await.expect("quits");

    // Not a group of it: an error (not found, or no answer within the page's bound).
    assert!(
        result["refused"]["group"].is_null() && result["refused"]["error"].is_string(),
        "without the token: {result}"
    );
    let catalog: serde_json::Value =
        serde_json::from_str(result["catalog"].as_str().expect("catalog text")).expect("JSON");
    assert_eq!(
        catalog["video"]["renditions"][RENDITION]["container"]["kind"], "cmaf",
        "{catalog}"
    );
    let forged = result["forged"]["error"].as_str().unwrap_or_default();
    assert!(forged.contains("unauthorized"), "a forged token: {result}");
    assert!(!forged.contains('?'), "the error shows the query: {result}");
    let log = setup.finish().await;
    assert!(!log.contains(&secret), "the relay logged the token:\n{log}");
}

//! A MoQ relay tier (issue 48) with its gates, through two real moq-relays clustered the
//! way compose runs them: a root and a leaf, each asking a gate (`MoqAuthority::Gate`,
//! holding the tier's key and nothing else) on its Unix socket, the leaf dialing the root
//! with the tier's cluster credential (`--cluster-token`). The node publishes to the root;
//! viewers dial the leaf:
//!
//! - an anonymous viewer reads the public stream and is never announced the private one;
//! - a viewer with the grant the node minted for its playback token
//!   (`/live/secret/moq-grant?token=…`) reads the private stream across the cluster link;
//! - the grant endpoint answers no one without a token for that stream;
//! - a playback token at a gate, a grant of another key, a tampered grant are refused;
//! - an anonymous session cannot publish a broadcast into the tier;
//! - neither relay's log holds the grant or the cluster credential.

use std::sync::Arc;
use std::time::Duration;

use broadcast::{MoqAuthConfig, MoqAuthority, MoqConfig, MoqKey, Node};
use certs::tokens::{Claims, PlaybackKey, TokenVerifier};
use domain::time::WallClock;
use domain::{LiveEvent, NodeId, StreamName};
use moq_tokio::moq_net;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::moq::{
    cmaf_announce, cmaf_announce_of, next_frame, next_group, part_bytes, publish_whole,
    publish_whole_of, subscribe, RENDITION,
};
use crate::support::*;

const PRIVATE: &str = "secret";
/// How long a session may take to be admitted or refused, or a broadcast to show up.
const LIMIT: Duration = Duration::from_secs(20);
/// How long something that must not show up is given to show up anyway.
const NEVER: Duration = Duration::from_secs(3);

fn playback_key() -> PlaybackKey {
    PlaybackKey::new(&[9; 32]).expect("key")
}

fn token(stream: &str) -> String {
    bound_token(stream, None)
}

/// A token for `stream`, bound to the client network `cidr` when given.
fn bound_token(stream: &str, cidr: Option<&str>) -> String {
    let now = WallClock.unix_secs();
    let mut claims = Claims::new(StreamName::new(stream).expect("valid"), now, now + 600);
    claims.cidr = cidr.map(|c| c.parse().expect("cidr"));
    playback_key().mint(&claims)
}

/// The viewer at 203.0.113.7 asks `uri` through a load balancer on the cluster's network
/// (which names the viewer in `x-forwarded-for`), as behind the QUIC door.
fn viewer_get(uri: &str) -> http::Request<axum::body::Body> {
    let lb: std::net::SocketAddr = "10.0.0.2:40000".parse().expect("addr");
    http::Request::get(uri)
        .header("x-forwarded-for", "203.0.113.7")
        .extension(axum::extract::ConnectInfo(broadcast::Peer(lb)))
        .body(axum::body::Body::empty())
        .expect("request")
}

/// A gate on a socket in `dir`, answering for the tier's `key`.
fn gate(
    dir: &std::path::Path,
    name: &str,
    key: &MoqKey,
    stop: &CancellationToken,
) -> (String, JoinHandle<()>) {
    let socket = dir.join(format!("{name}.sock"));
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind the socket");
    let serving = broadcast::run_moq_auth(
        MoqAuthority::Gate,
        MoqAuthConfig {
            key: key.clone(),
            root: "/".to_owned(),
        },
        listener,
        stop.clone(),
    );
    let task = tokio::spawn(async move { serving.await.expect("the gate serves") });
    (format!("unix://{}", socket.display()), task)
}

async fn relay(auth_url: String, extra: Vec<String>) -> testkit::moq::Relay {
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        testkit::moq::Relay::start_with_auth(&auth_url, &extra)
    })
    .await
    .expect("joined")
    .expect("moq-relay starts")
}

/// A session with `relay` dialed with `query`, reading into its origin (and publishing
/// `publish`'s broadcasts when given): admitted, or refused at connect.
async fn session(
    relay: &testkit::moq::Relay,
    query: Option<&str>,
    publish: Option<&moq_net::origin::Producer>,
) -> Result<(moq_net::origin::Producer, moq_tokio::Connection), String> {
    let origin = moq_tokio::origin::spawn();
    let mut url: url::Url = relay.url().parse().expect("url");
    url.set_query(query);
    let mut client = relay
        .client()
        .expect("a client")
        .with_subscriber(origin.clone())
        .with_reconnect(false);
    if let Some(publish) = publish {
        client = client.with_publisher(publish);
    }
    match tokio::time::timeout(LIMIT, client.connect(url).established()).await {
        Ok(Ok(connection)) => Ok((origin, connection)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => panic!(
            "no answer within {LIMIT:?}; the relay said:\n{}",
            relay.log()
        ),
    }
}

/// Whether a session dialed with `query` is refused, at connect or closed soon after.
async fn refuses(relay: &testkit::moq::Relay, query: &str) -> bool {
    match session(relay, Some(query), None).await {
        Err(_) => true,
        Ok((_, connection)) => tokio::time::timeout(LIMIT, connection.closed())
            .await
            .is_ok(),
    }
}

async fn shows_up(origin: &moq_net::origin::Producer, path: &str, within: Duration) -> bool {
    tokio::time::timeout(within, origin.consume().routed_broadcast(path))
        .await
        .is_ok_and(|b| b.is_ok())
}

async fn reads_media(origin: &moq_net::origin::Producer, path: &str) {
    let broadcast = tokio::time::timeout(LIMIT, origin.consume().routed_broadcast(path))
        .await
        .unwrap_or_else(|_| panic!("no {path} within {LIMIT:?}"))
        .expect("the broadcast");
    let mut media = subscribe(&broadcast, RENDITION).await;
    let mut group = next_group(&mut media).await;
    let sequence = group.sequence;
    let first = next_frame(&mut group).await.expect("an object");
    assert_eq!(first, part_bytes(sequence, 0), "{path}: group {sequence}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_tier_behind_gates_carries_public_streams_to_anyone_and_private_ones_to_grants() {
    let node = Arc::new(
        Node::new(NodeId::new(NODE).expect("valid"), node_config()).with_access(
            broadcast::AccessConfig {
                verifier: Some(Arc::new(TokenVerifier::new(playback_key()))),
                ..broadcast::AccessConfig::default()
            },
        ),
    );
    let key = MoqKey::random();
    let node = Arc::new(
        Arc::try_unwrap(node)
            .expect("one owner")
            .with_moq_grants(Some(key.clone())),
    );
    start(&node);
    cmaf_announce(&node);
    node.apply(LiveEvent::SessionStarted {
        stream: StreamName::new(PRIVATE).expect("valid"),
        session: SESSION,
        private: true,
        record: true,
    })
    .expect("start");
    let private = StreamName::new(PRIVATE).expect("valid");
    cmaf_announce_of(&node, &private);
    for sequence in 0..2 {
        publish_whole(&node, sequence);
        publish_whole_of(&node, &private, sequence);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let (root_auth, root_gate) = gate(dir.path(), "root", &key, &stop);
    let root = relay(root_auth, Vec::new()).await;
    let token_file = dir.path().join("cluster-token");
    std::fs::write(&token_file, key.cluster()).expect("written");
    let (leaf_auth, leaf_gate) = gate(dir.path(), "leaf", &key, &stop);
    let leaf = relay(
        leaf_auth,
        vec![
            "--cluster-connect".to_owned(),
            root.url(),
            "--connect-tls-fingerprint".to_owned(),
            root.fingerprint.clone(),
            "--cluster-token".to_owned(),
            token_file.display().to_string(),
        ],
    )
    .await;
    let egress = tokio::spawn(broadcast::run_moq(
        Arc::clone(&node),
        MoqConfig {
            relays: vec![root.url().parse().expect("url")],
            roots: Vec::new(),
            fingerprints: vec![root.fingerprint.clone()],
            key: Some(key.clone()),
        },
        stop.clone(),
    ));

    // Anonymous, on the leaf: the public stream, across the cluster link; never the
    // private one.
    let (anonymous, _kept) = session(&leaf, None, None)
        .await
        .expect("an anonymous viewer is admitted");
    reads_media(&anonymous, STREAM).await;
    assert!(
        !shows_up(&anonymous, &format!("_private/{PRIVATE}"), NEVER).await,
        "an anonymous viewer was announced the private stream"
    );

    // The grant, from the node's endpoint for the viewer's token (bound to the viewer's
    // network, which the node knows and a relay behind the door would not); nothing
    // without one, for another network or for another stream.
    let response = send(
        &node,
        viewer_get(&format!(
            "/live/{PRIVATE}/moq-grant?token={}",
            bound_token(PRIVATE, Some("203.0.113.0/24"))
        )),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"].to_str().expect("ascii"),
        "no-store"
    );
    let answer: serde_json::Value = serde_json::from_slice(&body(response).await).expect("json");
    let grant = answer["grant"].as_str().expect("a grant").to_owned();
    for (refused, status) in [
        (format!("/live/{PRIVATE}/moq-grant"), 404),
        (
            format!("/live/{PRIVATE}/moq-grant?token={}", token("other")),
            404,
        ),
        (
            format!(
                "/live/{PRIVATE}/moq-grant?token={}",
                bound_token(PRIVATE, Some("198.51.100.0/24"))
            ),
            403,
        ),
        // A public stream needs none.
        (
            format!("/live/{STREAM}/moq-grant?token={}", token(STREAM)),
            404,
        ),
    ] {
        let got = send(&node, viewer_get(&refused)).await.status();
        assert_eq!(got, status, "{refused}");
    }
    let (granted, _kept) = session(&leaf, Some(&format!("grant={grant}")), None)
        .await
        .expect("a viewer with a grant is admitted");
    reads_media(&granted, &format!("_private/{PRIVATE}")).await;
    reads_media(&granted, STREAM).await;

    // What a gate does not take.
    let cam = StreamName::new(PRIVATE).expect("valid");
    let flipped = {
        let (head, tail) = grant.split_at(grant.len() - 1);
        format!("{head}{}", if tail == "0" { "1" } else { "0" })
    };
    for (what, query) in [
        ("a playback token", format!("token={}", token(PRIVATE))),
        (
            "another key's grant",
            format!("grant={}", MoqKey::random().grant(&cam, u64::MAX / 2)),
        ),
        ("a tampered grant", format!("grant={flipped}")),
        (
            "another key's cluster credential",
            format!("jwt={}", MoqKey::random().cluster()),
        ),
    ] {
        assert!(refuses(&leaf, &query).await, "{what} was admitted");
    }

    // An anonymous session publishes nothing into the tier.
    let forged = moq_tokio::origin::spawn();
    let fake = forged.create_broadcast("intruder").expect("a broadcast");
    let _track = fake.create_track("catalog.json", None).expect("a track");
    let _intruder = session(&leaf, None, Some(&forged)).await;
    let (watcher, _kept) = session(&root, None, None).await.expect("admitted");
    assert!(
        !shows_up(&watcher, "intruder", NEVER).await,
        "an anonymous session published into the tier"
    );

    stop.cancel();
    egress.await.expect("joined").expect("egress stops cleanly");
    root_gate.await.expect("joined");
    leaf_gate.await.expect("joined");
    for (name, log) in [("root", root.log()), ("leaf", leaf.log())] {
        assert!(!log.contains(&grant), "the {name} relay logged the grant");
        assert!(
            !log.contains(&key.cluster()),
            "the {name} relay logged the cluster credential"
        );
    }
}

/// A node given both roots of a tier (`--moq-relay` twice, as compose gives them)
/// publishes to each over a session of its own, so a root that goes away does not take
/// the stream's route with it: a viewer on a leaf clustered with both keeps receiving new
/// groups on the subscription it had, served on through the other root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_publishing_to_both_roots_keeps_its_stream_routed_when_one_goes() {
    let node = Arc::new(Node::new(NodeId::new(NODE).expect("valid"), node_config()));
    start(&node);
    cmaf_announce(&node);
    publish_whole(&node, 0);
    let key = MoqKey::random();
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let token_file = dir.path().join("cluster-token");
    std::fs::write(&token_file, key.cluster()).expect("written");
    let (auth1, gate1) = gate(dir.path(), "root1", &key, &stop);
    let root1 = relay(auth1, Vec::new()).await;
    let clustered = |peers: &[&testkit::moq::Relay]| {
        let mut args = vec![
            "--cluster-connect".to_owned(),
            peers.iter().map(|p| p.url()).collect::<Vec<_>>().join(","),
            "--cluster-token".to_owned(),
            token_file.display().to_string(),
        ];
        for peer in peers {
            args.extend([
                "--connect-tls-fingerprint".to_owned(),
                peer.fingerprint.clone(),
            ]);
        }
        args
    };
    let (auth2, gate2) = gate(dir.path(), "root2", &key, &stop);
    let root2 = relay(auth2, clustered(&[&root1])).await;
    let (leaf_auth, leaf_gate) = gate(dir.path(), "leaf", &key, &stop);
    let leaf = relay(leaf_auth, clustered(&[&root1, &root2])).await;
    let egress = tokio::spawn(broadcast::run_moq(
        Arc::clone(&node),
        MoqConfig {
            relays: vec![
                root1.url().parse().expect("url"),
                root2.url().parse().expect("url"),
            ],
            roots: Vec::new(),
            fingerprints: vec![root1.fingerprint.clone(), root2.fingerprint.clone()],
            key: Some(key.clone()),
        },
        stop.clone(),
    ));
    // The stream goes on: a segment every 200 ms.
    let feeding = {
        let node = Arc::clone(&node);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            for sequence in 1.. {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => publish_whole(&node, sequence),
                }
            }
        })
    };

    let (viewer, _kept) = session(&leaf, None, None).await.expect("admitted");
    let broadcast = tokio::time::timeout(LIMIT, viewer.consume().routed_broadcast(STREAM))
        .await
        .expect("announced on the leaf")
        .expect("the broadcast");
    let mut media = subscribe(&broadcast, RENDITION).await;
    let before = next_group(&mut media).await.sequence;
    drop(root1);
    let gone = tokio::time::Instant::now();
    // New groups on the same subscription, beyond any the leaf could have held.
    let mut last = before;
    while last < before + 10 {
        let group = tokio::time::timeout(LIMIT, media.recv_group())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no group {LIMIT:?} after a root went (last {last}); the leaf said:\n{}",
                    leaf.log()
                )
            })
            .expect("a readable track")
            .expect("the track goes on");
        last = last.max(group.sequence);
    }
    eprintln!(
        "groups {before}..={last} read through the leaf, {:?} after root1 went",
        gone.elapsed()
    );

    stop.cancel();
    feeding.await.expect("joined");
    egress.await.expect("joined").expect("egress stops cleanly");
    for gate in [gate1, gate2, leaf_gate] {
        gate.await.expect("joined");
    }
}

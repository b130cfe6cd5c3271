use std::net::IpAddr;

use certs::tokens::{Claims, ClientNetwork, PlaybackKey, TokenVerifier};
use domain::{NodeId, StreamName};

use super::*;
use crate::{AccessConfig, NodeConfig};

const NOW: u64 = 1_800_000_000;

fn key() -> PlaybackKey {
    PlaybackKey::new(&[3; 32]).expect("key")
}

fn node() -> MoqAuthority {
    MoqAuthority::Node(Arc::new(
        Node::new(NodeId::new("n1").expect("valid"), NodeConfig::default()).with_access(
            AccessConfig {
                verifier: Some(Arc::new(TokenVerifier::new(key()))),
                ..AccessConfig::default()
            },
        ),
    ))
}

fn config() -> MoqAuthConfig {
    MoqAuthConfig {
        key: MoqKey::from_bytes([4; 32]),
        root: "/".to_owned(),
    }
}

fn request(event: &str, query: Option<String>) -> AuthRequest {
    AuthRequest {
        event: event.to_owned(),
        path: "/".to_owned(),
        query,
        remote: Some("203.0.113.7:4433".parse().expect("addr")),
    }
}

fn token(claims: Claims) -> String {
    key().mint(&claims)
}

fn claims(stream: &str) -> Claims {
    Claims::new(StreamName::new(stream).expect("valid"), NOW, NOW + 600)
}

async fn verdict(query: Option<String>) -> Verdict {
    decide(&node(), &config(), &request("connect", query), NOW).await
}

#[tokio::test]
async fn anonymous_sessions_get_public_streams_only() {
    let Verdict::Grant(grant) = verdict(None).await else {
        panic!("refused");
    };
    assert_eq!(grant.subscribe, ["*"]);
    assert!(grant.publish.is_empty());
    assert_eq!(grant.expires, None);
    // `*` is one path segment: no private broadcast ever matches it.
    assert!(broadcast_name(&StreamName::new("x").expect("valid"), true).contains('/'));
}

#[tokio::test]
async fn a_token_opens_its_own_private_stream_until_it_expires() {
    let Verdict::Grant(grant) = verdict(Some(format!("token={}", token(claims("demo"))))).await
    else {
        panic!("refused");
    };
    assert_eq!(grant.subscribe, ["*", "_private/demo"]);
    assert!(grant.publish.is_empty());
    assert_eq!(grant.expires, Some(NOW + 600 + CLOCK_SKEW_SECS));
    assert_eq!(grant.revalidate, Some(crate::VERDICT_FOR.as_secs()));
    let revalidated = decide(
        &node(),
        &config(),
        &request(
            "revalidate",
            Some(format!("a=1&token={}", token(claims("demo")))),
        ),
        NOW + 10,
    )
    .await;
    assert!(matches!(revalidated, Verdict::Grant(_)));
}

#[tokio::test]
async fn bad_tokens_and_credentials_are_refused_not_made_anonymous() {
    let mut expired = claims("demo");
    expired.exp = NOW - 3600;
    let mut bound = claims("demo");
    bound.cidr = Some("10.0.0.0/8".parse::<ClientNetwork>().expect("cidr"));
    let forged = {
        let t = token(claims("demo"));
        let at = t.rfind('.').expect("three parts") + 1;
        let flipped = if &t[at..=at] == "A" { "B" } else { "A" };
        format!("{}{flipped}{}", &t[..at], &t[at + 1..])
    };
    let other_key = PlaybackKey::new(&[9; 32])
        .expect("key")
        .mint(&claims("demo"));
    let fresh = config().key.mint(NOW);
    for (query, reason) in [
        (format!("token={}", token(expired)), "expired"),
        (format!("token={forged}"), "bad_signature"),
        (format!("token={other_key}"), "bad_signature"),
        (format!("token={}", token(bound)), "wrong_address"),
        ("token=".to_owned(), "missing"),
        (
            format!("token=a&token={}", token(claims("demo"))),
            "malformed",
        ),
        ("publish=1.00".to_owned(), "publish"),
        (
            format!("publish={}", MoqKey::from_bytes([5; 32]).mint(NOW)),
            "publish",
        ),
        (format!("publish={fresh}&publish={fresh}"), "publish"),
    ] {
        assert_eq!(
            verdict(Some(query.clone())).await,
            Verdict::Refused(reason),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_bound_token_plays_from_its_network_only() {
    let mut bound = claims("demo");
    bound.cidr = Some("203.0.113.0/24".parse::<ClientNetwork>().expect("cidr"));
    let query = Some(format!("token={}", token(bound)));
    assert!(matches!(verdict(query.clone()).await, Verdict::Grant(_)));
    let mut elsewhere = request("connect", query.clone());
    elsewhere.remote = Some(SocketAddr::new(IpAddr::from([198, 51, 100, 1]), 1));
    assert_eq!(
        decide(&node(), &config(), &elsewhere, NOW).await,
        Verdict::Refused("wrong_address")
    );
    let mut nowhere = request("connect", query);
    nowhere.remote = None;
    assert_eq!(
        decide(&node(), &config(), &nowhere, NOW).await,
        Verdict::Refused("wrong_address")
    );
}

#[tokio::test]
async fn only_a_fresh_publish_credential_publishes() {
    let credential = config().key.mint(NOW);
    let Verdict::Grant(grant) = verdict(Some(format!("publish={credential}"))).await else {
        panic!("refused");
    };
    assert_eq!(grant.publish, ["*", "_private/*"]);
    assert!(grant.subscribe.is_empty());
    let late = decide(
        &node(),
        &config(),
        &request("connect", Some(format!("publish={credential}"))),
        NOW + credential::LIFETIME_SECS,
    )
    .await;
    assert_eq!(late, Verdict::Refused("publish"));
}

#[tokio::test]
async fn other_paths_and_events_are_refused_and_an_end_is_noted() {
    let mut elsewhere = request("connect", None);
    elsewhere.path = "/other".to_owned();
    assert_eq!(
        decide(&node(), &config(), &elsewhere, NOW).await,
        Verdict::Refused("request")
    );
    assert_eq!(
        decide(&node(), &config(), &request("whatever", None), NOW).await,
        Verdict::Refused("request")
    );
    assert_eq!(
        decide(&node(), &config(), &request("end", None), NOW).await,
        Verdict::Noted
    );
    // A node without the playback key opens no private stream.
    let keyless = MoqAuthority::Node(Arc::new(Node::new(
        NodeId::new("n2").expect("valid"),
        NodeConfig::default(),
    )));
    let query = Some(format!("token={}", token(claims("demo"))));
    assert_eq!(
        decide(&keyless, &config(), &request("connect", query), NOW).await,
        Verdict::Refused("missing")
    );
}

#[tokio::test]
async fn a_relay_on_both_families_reports_ipv4_viewers_that_their_cidr_names() {
    let mut bound = claims("demo");
    bound.cidr = Some("203.0.113.0/24".parse::<ClientNetwork>().expect("cidr"));
    let mut mapped = request("connect", Some(format!("token={}", token(bound))));
    mapped.remote = Some("[::ffff:203.0.113.7]:4433".parse().expect("addr"));
    assert!(matches!(
        decide(&node(), &config(), &mapped, NOW).await,
        Verdict::Grant(_)
    ));
}

#[tokio::test]
async fn the_on_play_hook_decides_too_and_is_told_the_relays_remote() {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = |allow: bool, asked: Arc<std::sync::Mutex<Vec<IpAddr>>>| -> crate::PlayHook {
        Arc::new(move |request: crate::PlayRequest| {
            if let Ok(mut asked) = asked.lock() {
                asked.push(request.client);
            }
            Box::pin(async move {
                if allow {
                    crate::PlayVerdict::Allowed
                } else {
                    crate::PlayVerdict::Refused
                }
            })
        })
    };
    let with_hook = |allow| {
        MoqAuthority::Node(Arc::new(
            Node::new(NodeId::new("n1").expect("valid"), NodeConfig::default()).with_access(
                AccessConfig {
                    verifier: Some(Arc::new(TokenVerifier::new(key()))),
                    on_play: Some(hook(allow, Arc::clone(&asked))),
                    ..AccessConfig::default()
                },
            ),
        ))
    };
    let query = Some(format!("token={}", token(claims("demo"))));
    assert_eq!(
        decide(
            &with_hook(false),
            &config(),
            &request("connect", query.clone()),
            NOW
        )
        .await,
        Verdict::Refused("refused_by_hook")
    );
    assert!(matches!(
        decide(&with_hook(true), &config(), &request("connect", query), NOW).await,
        Verdict::Grant(_)
    ));
    let asked = asked.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(asked, [IpAddr::from([203, 0, 113, 7]); 2]);
    // Anonymous sessions are not the hook's business.
    let Verdict::Grant(grant) =
        decide(&with_hook(false), &config(), &request("connect", None), NOW).await
    else {
        panic!("refused");
    };
    assert_eq!(grant.subscribe, ["*"]);
}

proptest::proptest! {
    /// Whatever a dial's query holds, without the node's credential or a token minted with
    /// the playback key nothing but the public streams is granted: never publishing, never
    /// a private stream, never an anonymous grant for a session that presented a token.
    #[test]
    fn no_query_opens_more_than_public_streams(
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(vec!["token", "publish", "jwt", "tokens", "", "a"]),
                "[A-Za-z0-9._~=%-]{0,120}",
            ),
            0..5,
        ),
        bare in proptest::bool::ANY,
    ) {
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| if bare && v.is_empty() { (*k).to_owned() } else { format!("{k}={v}") })
            .collect();
        let query = query.join("&");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let verdict = runtime.block_on(verdict(Some(query.clone())));
        match verdict {
            Verdict::Grant(grant) => {
                proptest::prop_assert!(grant.publish.is_empty(), "{query}");
                proptest::prop_assert_eq!(grant.subscribe, vec!["*".to_owned()], "{}", query);
                let presented = query
                    .split('&')
                    .any(|p| p.starts_with("token=") || p.starts_with("publish=") || p == "token" || p == "publish");
                proptest::prop_assert!(!presented, "{}", query);
            }
            Verdict::Refused(_) => {}
            Verdict::Noted => proptest::prop_assert!(false, "a connect was noted"),
        }
    }
}

/// `body` POSTed to the endpoint's routes: the status and the body answered.
async fn post(body: Vec<u8>) -> (http::StatusCode, serde_json::Value) {
    use tower::ServiceExt as _;
    let request = http::Request::post("/")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body))
        .expect("a request");
    let response = router(node(), config())
        .oneshot(request)
        .await
        .expect("answered");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .expect("the body");
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_endpoint_answers_moq_auths_shape_and_bounds_what_it_reads() {
    // A connect as moq-relay 0.17 sends it (moq-auth's `Request`, the fields we ignore
    // included): the grant in moq-auth's `Grant` shape.
    let now = domain::time::WallClock.unix_secs();
    let connect = |query: &str| {
        serde_json::json!({
            "id": "00ff", "event": "connect", "node": "relay-1", "transport": "quic",
            "remote": "203.0.113.9:4433", "local": "[::1]:443", "alpn": "moq-lite-06",
            "path": "/", "query": query,
        })
    };
    let claims = Claims::new(StreamName::new("demo").expect("valid"), now, now + 600);
    let query = format!("token={}", token(claims));
    let (status, grant) = post(connect(&query).to_string().into_bytes()).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(
        grant["subscribe"],
        serde_json::json!(["*", "_private/demo"])
    );
    assert!(grant.get("publish").is_none(), "{grant}");
    assert_eq!(grant["expires"], now + 600 + CLOCK_SKEW_SECS);
    assert_eq!(grant["revalidate"], crate::VERDICT_FOR.as_secs());
    // An end: 200, nothing to grant.
    let mut end = connect("");
    end["event"] = "end".into();
    end["reason"] = "disconnected".into();
    assert_eq!(
        post(end.to_string().into_bytes()).await.0,
        http::StatusCode::OK
    );
    // Refused, not admitted anonymously; the refusal says nothing.
    let (status, said) = post(connect("token=nope").to_string().into_bytes()).await;
    assert_eq!(status, http::StatusCode::UNAUTHORIZED);
    assert_eq!(said, serde_json::Value::Null);
    // What does not parse, and what is too long to read: not a grant.
    for body in [
        b"{".to_vec(),
        b"[]".to_vec(),
        serde_json::json!({"event": "connect"})
            .to_string()
            .into_bytes(),
        serde_json::json!({"event": "connect", "path": "/", "remote": "nowhere"})
            .to_string()
            .into_bytes(),
    ] {
        assert_eq!(post(body).await.0, http::StatusCode::BAD_REQUEST);
    }
    let mut long = connect("");
    long["padding"] = "x".repeat(MAX_BODY).into();
    assert_eq!(
        post(long.to_string().into_bytes()).await.0,
        http::StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn a_gate_admits_by_the_tiers_key_alone() {
    let gate = |query: Option<String>| async move {
        decide(
            &MoqAuthority::Gate,
            &config(),
            &request("connect", query),
            NOW,
        )
        .await
    };
    let key = config().key;
    let cam = StreamName::new("cam").expect("valid");
    // A viewer's grant: public streams and its own private one, until the grant ends.
    let Verdict::Grant(viewer) = gate(Some(format!("grant={}", key.grant(&cam, NOW + 90)))).await
    else {
        panic!("a grant was refused");
    };
    assert_eq!(viewer.subscribe, ["*", "_private/cam"]);
    assert!(viewer.publish.is_empty() && !viewer.peer);
    assert_eq!(viewer.expires, Some(NOW + 90));
    // Another relay of the tier: both ways, as a peer, with no end.
    let Verdict::Grant(relay) = gate(Some(format!("jwt={}", key.cluster()))).await else {
        panic!("the cluster credential was refused");
    };
    assert_eq!(relay.publish, ["*", "_private/*"]);
    assert_eq!(relay.subscribe, ["*", "_private/*"]);
    assert!(relay.peer && relay.expires.is_none());
    // The node's publisher.
    let Verdict::Grant(node) = gate(Some(format!("publish={}", key.mint(NOW)))).await else {
        panic!("the publish credential was refused");
    };
    assert_eq!(node.publish, ["*", "_private/*"]);
    assert!(node.subscribe.is_empty());
    // Anonymous: public streams only.
    let Verdict::Grant(anonymous) = gate(None).await else {
        panic!("refused");
    };
    assert_eq!(anonymous.subscribe, ["*"]);
    // The gate checks no playback token, and takes nothing another key made, nothing
    // expired, and never two credentials at once.
    let other = MoqKey::from_bytes([5; 32]);
    for query in [
        format!("token={}", token(claims("cam"))),
        format!("grant={}", other.grant(&cam, NOW + 90)),
        format!("grant={}", key.grant(&cam, NOW)),
        format!("jwt={}", other.cluster()),
        format!("jwt={}", key.mint(NOW)),
        format!("publish={}", key.cluster()),
        format!(
            "grant={}&grant={}",
            key.grant(&cam, NOW + 90),
            key.grant(&cam, NOW + 90)
        ),
        format!("grant={}&jwt={}", key.grant(&cam, NOW + 90), key.cluster()),
        format!("publish={}&token=x", key.mint(NOW)),
    ] {
        assert!(
            matches!(gate(Some(query.clone())).await, Verdict::Refused(_)),
            "{query}"
        );
    }
    // The grant serializes as moq-auth reads it; `peer` only when set.
    let json = serde_json::to_value(&relay).expect("json");
    assert_eq!(json["peer"], true);
    assert!(serde_json::to_value(&viewer)
        .expect("json")
        .get("peer")
        .is_none());
}

#[tokio::test]
async fn a_node_takes_grants_too() {
    let cam = StreamName::new("cam").expect("valid");
    let query = Some(format!("grant={}", config().key.grant(&cam, NOW + 90)));
    let Verdict::Grant(grant) = verdict(query).await else {
        panic!("refused");
    };
    assert_eq!(grant.subscribe, ["*", "_private/cam"]);
}

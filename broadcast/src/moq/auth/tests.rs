use std::net::IpAddr;

use certs::tokens::{Claims, ClientNetwork, PlaybackKey, TokenVerifier};
use domain::{NodeId, StreamName};

use super::*;
use crate::{AccessConfig, NodeConfig};

const NOW: u64 = 1_800_000_000;

fn key() -> PlaybackKey {
    PlaybackKey::new(&[3; 32]).expect("key")
}

fn node() -> Node {
    Node::new(NodeId::new("n1").expect("valid"), NodeConfig::default()).with_access(AccessConfig {
        verifier: Some(Arc::new(TokenVerifier::new(key()))),
        ..AccessConfig::default()
    })
}

fn config() -> MoqAuthConfig {
    MoqAuthConfig {
        publish_key: MoqPublishKey::from_bytes([4; 32]),
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
    let fresh = config().publish_key.mint(NOW);
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
            format!("publish={}", MoqPublishKey::from_bytes([5; 32]).mint(NOW)),
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
    let credential = config().publish_key.mint(NOW);
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
    let keyless = Node::new(NodeId::new("n2").expect("valid"), NodeConfig::default());
    let query = Some(format!("token={}", token(claims("demo"))));
    assert_eq!(
        decide(&keyless, &config(), &request("connect", query), NOW).await,
        Verdict::Refused("missing")
    );
}

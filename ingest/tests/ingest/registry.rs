//! The registry's rules with the catalog faked in memory (`support::Authority`): the one
//! admission of every protocol (stream keys, the stream a key publishes, strikes per
//! client, the operator's hook, the stream cap), takeover of a live key, an operator's end,
//! a catalog that cannot answer, and the observer told of every session.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{SessionId, StreamName};
use ingest::registry::Publish;
use ingest::{
    Admission, Admit, IngestError, IngestMetrics, NotAdmitted, Protocol, PublishObserver, Registry,
    StreamKey,
};

/// The client of the tests that do not care which it is.
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Sessions as the observer heard of them: (started?, stream, session).
#[derive(Debug, Default)]
struct Heard(Mutex<Vec<(bool, StreamName, SessionId)>>);

impl PublishObserver for Heard {
    fn started(&self, stream: &StreamName, session: SessionId, _renditions: &[String]) {
        self.0
            .lock()
            .expect("lock")
            .push((true, stream.clone(), session));
    }

    fn ended(&self, stream: &StreamName, session: SessionId) {
        self.0
            .lock()
            .expect("lock")
            .push((false, stream.clone(), session));
    }
}

/// What `protocol` asks of the registry for a publisher at `client` with `key` (naming
/// `stream`, as WHIP does).
async fn admit(
    registry: &Registry,
    protocol: Protocol,
    key: &str,
    client: IpAddr,
    stream: Option<&StreamName>,
) -> Result<Admission, NotAdmitted> {
    registry
        .admit(Admit {
            protocol,
            key: &StreamKey::new(key),
            client,
            stream,
        })
        .await
}

/// An RTMP publish with `key` from [`CLIENT`]: admitted and started, `None` for a wrong key.
async fn begin_publish(registry: &Registry, key: &str) -> Result<Option<Publish>, IngestError> {
    match admit(registry, Protocol::Rtmp, key, CLIENT, None).await {
        Ok(admission) => registry.start_publish(admission).await.map(Some),
        Err(NotAdmitted::WrongKey) => Ok(None),
        Err(NotAdmitted::Catalog(e)) => Err(IngestError::Catalog(e)),
        Err(other) => panic!("not admitted: {other}"),
    }
}

fn registry(
    authority: &Arc<crate::support::Authority>,
    observer: Option<Arc<Heard>>,
) -> (
    Arc<Registry>,
    tokio::sync::mpsc::Receiver<domain::LiveEvent>,
) {
    registry_capped(authority, observer, None)
}

fn registry_capped(
    authority: &Arc<crate::support::Authority>,
    observer: Option<Arc<Heard>>,
    max_streams: Option<usize>,
) -> (
    Arc<Registry>,
    tokio::sync::mpsc::Receiver<domain::LiveEvent>,
) {
    let (events, rx) = tokio::sync::mpsc::channel(64);
    let registry = Registry::with_observer(
        crate::support::settings(Duration::ZERO, 4, max_streams),
        Arc::clone(authority) as Arc<dyn ingest::StreamAuthority>,
        events,
        IngestMetrics::default(),
        observer.map(|o| o as Arc<dyn PublishObserver>),
    );
    (registry, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_key_publishes_its_stream_and_an_unknown_one_nothing() {
    let authority = Arc::new(crate::support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);

    assert!(begin_publish(&registry, "sk_wrong")
        .await
        .expect("asks")
        .is_none());
    assert_eq!(
        authority.sessions(&demo),
        0,
        "no session counted for a refused key"
    );

    let publish = begin_publish(&registry, "sk_good")
        .await
        .expect("asks")
        .expect("publishes");
    assert_eq!(publish.stream(), &demo);
    assert_eq!(authority.sessions(&demo), 1);
    assert_eq!(authority.marked_live(), vec![demo.clone()]);
    let live = registry.live_sessions();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].session, publish.session());
    registry.end_publish(publish, true).await;
    assert!(registry.live_sessions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_with_the_key_takes_the_stream_over() {
    let authority = Arc::new(crate::support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let heard = Arc::new(Heard::default());
    let (registry, _events) = registry(&authority, Some(Arc::clone(&heard)));

    let first = begin_publish(&registry, "sk_good")
        .await
        .expect("asks")
        .expect("publishes");
    let first_session = first.session();
    // The first connection ends its publish when told it was taken over, as the RTMP
    // driver does.
    let ending = {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            first.taken_over().await;
            registry.end_publish(first, false).await;
        })
    };
    let second = begin_publish(&registry, "sk_good")
        .await
        .expect("asks")
        .expect("takes over");
    tokio::time::timeout(Duration::from_secs(10), ending)
        .await
        .expect("the first publish ended")
        .expect("joins");
    assert_ne!(second.session(), first_session);
    let live = registry.live_sessions();
    assert_eq!(live.len(), 1);
    assert_eq!(
        live[0].session,
        second.session(),
        "the new session holds the stream"
    );
    assert_eq!(authority.sessions(&demo), 2);
    let heard_now = heard.0.lock().expect("lock").clone();
    assert_eq!(
        heard_now,
        vec![
            (true, demo.clone(), first_session),
            (false, demo.clone(), first_session),
            (true, demo.clone(), second.session()),
        ]
    );
    registry.end_publish(second, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_cap_refuses_one_stream_more_but_never_a_takeover() {
    let authority = Arc::new(crate::support::Authority::default());
    let one = authority.add("sk_one", "one", 0);
    authority.add("sk_two", "two", 0);
    authority.add("sk_three", "three", 0);
    let (registry, _events) = registry_capped(&authority, None, Some(2));
    let full = |r: Result<Admission, NotAdmitted>| match r {
        Err(NotAdmitted::Full { max }) => max,
        other => panic!("expected a refusal at the cap, got {other:?}"),
    };

    let first = begin_publish(&registry, "sk_one")
        .await
        .expect("asks")
        .expect("publishes");
    // Admitted but not started yet: it holds its place, so two admissions at once cannot
    // together pass the cap.
    let second = admit(&registry, Protocol::Srt, "sk_two", CLIENT, None)
        .await
        .expect("admitted under the cap");
    let refused = admit(&registry, Protocol::Whip, "sk_three", CLIENT, None).await;
    assert_eq!(full(refused), 2);
    assert_eq!(
        crate::support::publishes(registry.metrics(), "full"),
        1.0,
        "counted"
    );
    // A refused admission gives its place back: dropping one not started frees it.
    drop(second);
    let third = admit(&registry, Protocol::Rtmp, "sk_three", CLIENT, None)
        .await
        .expect("the place came back");
    let third = registry.start_publish(third).await.expect("starts");

    // Full, but a publisher of a stream live here takes it over.
    let taken = admit(&registry, Protocol::Rtmp, "sk_one", CLIENT, None)
        .await
        .expect("a takeover passes the cap");
    let ending = {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            first.taken_over().await;
            registry.end_publish(first, false).await;
        })
    };
    let again = registry.start_publish(taken).await.expect("takes over");
    tokio::time::timeout(Duration::from_secs(10), ending)
        .await
        .expect("the first publish ended")
        .expect("joins");
    assert_eq!(again.stream(), &one);
    assert_eq!(registry.live_sessions().len(), 2);
    assert_eq!(
        full(admit(&registry, Protocol::Srt, "sk_two", CLIENT, None).await),
        2,
        "still full after the takeover"
    );
    // A stream that ends makes room.
    registry.end_publish(third, true).await;
    let two = admit(&registry, Protocol::Srt, "sk_two", CLIENT, None)
        .await
        .expect("room once a stream ended");
    drop(two);
    registry.end_publish(again, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_ends_only_the_session_it_names() {
    let authority = Arc::new(crate::support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);
    let publish = begin_publish(&registry, "sk_good")
        .await
        .expect("asks")
        .expect("publishes");
    assert!(!registry.end_stream(&demo, SessionId(publish.session().0 ^ 1)));
    assert!(registry.end_stream(&demo, publish.session()));
    tokio::time::timeout(Duration::from_secs(5), publish.ended_by_operator())
        .await
        .expect("told to end");
    registry.end_publish(publish, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_that_cannot_answer_refuses_new_publishes_with_an_error() {
    let authority = Arc::new(crate::support::Authority::default());
    authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);
    authority.set_down(true);
    let refused = begin_publish(&registry, "sk_good").await;
    assert!(
        matches!(refused, Err(ingest::IngestError::Catalog(_))),
        "{refused:?}"
    );
    assert!(registry.live_sessions().is_empty());
    authority.set_down(false);
    let publish = begin_publish(&registry, "sk_good")
        .await
        .expect("asks")
        .expect("publishes once it answers");
    registry.end_publish(publish, true).await;
}

/// One publish of `inputs` with `key`: the segments' (sequence, discontinuity,
/// discontinuity sequence) in order, read from the events until the session's end.
async fn publish_once(
    registry: &Arc<Registry>,
    events: &mut tokio::sync::mpsc::Receiver<domain::LiveEvent>,
    key: &str,
    inputs: &[intake::media::MediaInput],
) -> Vec<(u64, bool, u64)> {
    let publish = begin_publish(registry, key)
        .await
        .expect("asks")
        .expect("publishes");
    let session = publish.session();
    let collect = async {
        let mut segments = Vec::new();
        while let Some(event) = events.recv().await {
            match event {
                domain::LiveEvent::Segment(s) if s.meta.rendition.as_str() == "src" => segments
                    .push((
                        s.meta.sequence,
                        s.meta.discontinuity,
                        s.meta.discontinuity_sequence,
                    )),
                domain::LiveEvent::Ended { session: ended, .. } if ended == session => break,
                _ => {}
            }
        }
        segments
    };
    let feed = async {
        let tx = publish.sender();
        for input in inputs {
            tx.send(input.clone())
                .await
                .expect("the pipeline takes media");
        }
        drop(tx);
        registry.end_publish(publish, true).await;
    };
    let (segments, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(collect, feed)
    })
    .await
    .expect("the session ended within 60 s");
    segments
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_continues_where_the_catalog_says_whichever_ingest_published_last() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join("in.flv");
    testkit::ffmpeg::TestPattern::new(320, 240, 30, 5)
        .fast()
        .write_flv(&flv)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let inputs = ingest::file::media_inputs(&flv).expect("reads the FLV");
    let authority = Arc::new(crate::support::Authority::default());
    let demo = authority.add("sk_good", "demo", 40);
    let (registry, mut events) = registry(&authority, None);

    let first = publish_once(&registry, &mut events, "sk_good", &inputs).await;
    assert!(first.len() >= 2, "{first:?}");
    let numbers: Vec<u64> = first.iter().map(|s| s.0).collect();
    assert_eq!(numbers, (40..40 + first.len() as u64).collect::<Vec<_>>());
    assert!(first.iter().all(|s| !s.1 && s.2 == 0), "{first:?}");
    // Recorded before each segment left: the catalog knows where the stream stands.
    assert_eq!(authority.next(&demo), 40 + first.len() as u64);

    // Another ingest published it meanwhile, up to 99: this one continues from there, as
    // a new session (a discontinuity), not from its own memory.
    authority.set_next(&demo, 100);
    let second = publish_once(&registry, &mut events, "sk_good", &inputs).await;
    assert_eq!(second.first().map(|s| s.0), Some(100), "{second:?}");
    assert!(second[0].1, "the new session starts with a discontinuity");
    assert!(second.iter().all(|s| s.2 == 1), "{second:?}");

    // The catalog says less than this ingest has seen (its last writes were lost): the
    // numbering still never goes back.
    let last = second.last().map_or(0, |s| s.0);
    authority.set_next(&demo, 0);
    let third = publish_once(&registry, &mut events, "sk_good", &inputs).await;
    assert_eq!(
        third.first().map(|s| s.0),
        Some(last + 1),
        "the catalog said 0, memory says {}: numbering never goes back",
        last + 1
    );
}

#[tokio::test(start_paused = true)]
async fn a_catalog_that_hangs_refuses_the_publish_after_its_timeout() {
    let authority = Arc::new(crate::support::Authority::default());
    authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);
    authority.set_hung(true);
    let started = tokio::time::Instant::now();
    let refused = begin_publish(&registry, "sk_good").await;
    assert!(
        matches!(refused, Err(ingest::IngestError::Catalog(_))),
        "{refused:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= ingest::registry::CATALOG_ANSWER_TIMEOUT
            && waited < ingest::registry::CATALOG_ANSWER_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_is_admitted_by_the_same_checks_and_wrong_keys_count_per_client() {
    use Protocol::{Rtmp, Srt, Whip};
    let authority = Arc::new(crate::support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let other = authority.add("sk_other", "other", 0);
    let (registry, _events) = registry(&authority, None);
    let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, last]);
    let v4: IpAddr = IpAddr::from([192, 0, 2, 7]);

    // A right key is admitted for its stream on every protocol; WHIP's URL names it.
    for (protocol, named) in [(Rtmp, None), (Srt, None), (Whip, Some(&demo))] {
        let admission = admit(&registry, protocol, "sk_good", v4, named)
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}"));
        assert_eq!(admission.stream(), &demo, "{protocol}");
    }
    // A key of another stream than the one named is a wrong key.
    assert!(matches!(
        admit(&registry, Whip, "sk_other", v6(1), Some(&demo)).await,
        Err(NotAdmitted::WrongKey)
    ));

    // Wrong keys from one /64 add up over every protocol and every address in it: five
    // are free, the sixth holds the client back, whatever it presents next.
    for (i, protocol) in [Rtmp, Srt, Whip, Rtmp, Srt].into_iter().enumerate() {
        let named = (protocol == Whip).then_some(&demo);
        let refused = admit(&registry, protocol, "sk_wrong", v6(2 + i as u16), named).await;
        assert!(
            matches!(refused, Err(NotAdmitted::WrongKey)),
            "{i}: {refused:?}"
        );
    }
    for (protocol, named) in [(Rtmp, None), (Srt, None), (Whip, Some(&demo))] {
        let refused = admit(&registry, protocol, "sk_good", v6(99), named).await;
        assert!(
            matches!(refused, Err(NotAdmitted::HeldBack { .. })),
            "{protocol}: {refused:?}"
        );
    }
    // Another client is not.
    assert!(admit(&registry, Srt, "sk_good", v4, None).await.is_ok());

    // A right key forgets the client's wrong ones: five, a right one, five more, and it
    // is still not held back.
    let fresh: IpAddr = IpAddr::from([198, 51, 100, 9]);
    for round in 0..2 {
        for _ in 0..5 {
            let refused = admit(&registry, Rtmp, "sk_wrong", fresh, None).await;
            assert!(
                matches!(refused, Err(NotAdmitted::WrongKey)),
                "{round}: {refused:?}"
            );
        }
        assert!(admit(&registry, Whip, "sk_good", fresh, Some(&demo))
            .await
            .is_ok());
    }

    // The operator's hook refuses a right key, which is no strike: more refusals than the
    // free wrong keys, and the client is still admitted for another stream.
    authority.hook_refuses(&other);
    let hooked: IpAddr = IpAddr::from([203, 0, 113, 5]);
    for protocol in [Rtmp, Srt, Rtmp, Srt, Rtmp, Srt, Whip] {
        let named = (protocol == Whip).then_some(&other);
        let refused = admit(&registry, protocol, "sk_other", hooked, named).await;
        assert!(
            matches!(&refused, Err(NotAdmitted::HookRefused(s)) if s == &other),
            "{protocol}: {refused:?}"
        );
    }
    assert!(admit(&registry, Rtmp, "sk_good", hooked, None)
        .await
        .is_ok());

    // A catalog that cannot answer is no strike either.
    authority.set_down(true);
    for _ in 0..7 {
        let refused = admit(&registry, Srt, "sk_good", hooked, None).await;
        assert!(
            matches!(refused, Err(NotAdmitted::Catalog(_))),
            "{refused:?}"
        );
    }
    authority.set_down(false);
    assert!(admit(&registry, Srt, "sk_wrong", hooked, None)
        .await
        .is_err());
    assert!(admit(&registry, Srt, "sk_good", hooked, None).await.is_ok());

    // Admitting starts nothing.
    assert!(registry.live_sessions().is_empty());
    assert_eq!(authority.sessions(&demo), 0);
    assert!(authority.marked_live().is_empty());
}

#[test]
fn a_stream_key_is_never_shown() {
    let key = StreamKey::new("sk_secret_value");
    assert!(!format!("{key:?}").contains("secret"));
    let request = Admit {
        protocol: Protocol::Srt,
        key: &key,
        client: CLIENT,
        stream: None,
    };
    assert!(!format!("{request:?}").contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_starts_the_stream_it_was_given_for_and_takes_it_over() {
    let authority = Arc::new(crate::support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);
    let first = admit(&registry, Protocol::Srt, "sk_good", CLIENT, None)
        .await
        .expect("admitted");
    let second = admit(&registry, Protocol::Whip, "sk_good", CLIENT, Some(&demo))
        .await
        .expect("admitted");
    let first = registry.start_publish(first).await.expect("starts");
    assert_eq!(first.stream(), &demo);
    let ending = {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            first.taken_over().await;
            registry.end_publish(first, false).await;
        })
    };
    // At most one publisher per stream: the second admission takes the stream over.
    let second = registry.start_publish(second).await.expect("starts");
    tokio::time::timeout(Duration::from_secs(10), ending)
        .await
        .expect("the first publish ended")
        .expect("joins");
    let live = registry.live_sessions();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].session, second.session());
    registry.end_publish(second, true).await;
}

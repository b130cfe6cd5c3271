//! The registry's rules with the catalog faked in memory (`support::Authority`): stream
//! keys, takeover of a live key, an operator's end, a catalog that cannot answer, and the
//! observer told of every session.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{SessionId, StreamName};
use ingest::{IngestMetrics, IngestSettings, PublishObserver, Registry};

mod support;

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

fn registry(
    authority: &Arc<support::Authority>,
    observer: Option<Arc<Heard>>,
) -> (
    Arc<Registry>,
    tokio::sync::mpsc::Receiver<domain::LiveEvent>,
) {
    let (events, rx) = tokio::sync::mpsc::channel(64);
    let registry = Registry::with_observer(
        IngestSettings {
            app: "live".into(),
            ladder: Arc::new(domain::Ladder::default()),
            encoder_threads: 1,
            end_grace: Duration::ZERO,
            max_connections: 4,
        },
        Arc::clone(authority) as Arc<dyn ingest::StreamAuthority>,
        events,
        IngestMetrics::default(),
        observer.map(|o| o as Arc<dyn PublishObserver>),
    );
    (registry, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_key_publishes_its_stream_and_an_unknown_one_nothing() {
    let authority = Arc::new(support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);

    assert!(registry
        .begin_publish("sk_wrong")
        .await
        .expect("asks")
        .is_none());
    assert_eq!(
        authority.sessions(&demo),
        0,
        "no session counted for a refused key"
    );

    let publish = registry
        .begin_publish("sk_good")
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
    let authority = Arc::new(support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let heard = Arc::new(Heard::default());
    let (registry, _events) = registry(&authority, Some(Arc::clone(&heard)));

    let first = registry
        .begin_publish("sk_good")
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
    let second = registry
        .begin_publish("sk_good")
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
async fn an_operator_ends_only_the_session_it_names() {
    let authority = Arc::new(support::Authority::default());
    let demo = authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);
    let publish = registry
        .begin_publish("sk_good")
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
    let authority = Arc::new(support::Authority::default());
    authority.add("sk_good", "demo", 0);
    let (registry, _events) = registry(&authority, None);
    authority.set_down(true);
    let refused = registry.begin_publish("sk_good").await;
    assert!(
        matches!(refused, Err(ingest::IngestError::Catalog(_))),
        "{refused:?}"
    );
    assert!(registry.live_sessions().is_empty());
    authority.set_down(false);
    let publish = registry
        .begin_publish("sk_good")
        .await
        .expect("asks")
        .expect("publishes once it answers");
    registry.end_publish(publish, true).await;
}

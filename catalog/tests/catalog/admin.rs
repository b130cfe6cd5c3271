//! What the admin API needs from the catalog (sessions, recordings, nodes, API keys,
//! webhooks), each case run on SQLite and on PostgreSQL.

use crate::support::{name, now_unix, open, raw, Db};
use catalog::{
    CatalogError, ErrorKind, RecordingRecord, Scope, SessionRecord, WebhookEvent,
    MAX_WEBHOOK_URL_LEN,
};
use sha2::{Digest, Sha256};
use sqlx::Connection;

on_both_backends!(
    session_start_is_recorded_once,
    concurrent_session_starts_have_one_winner,
    session_end_is_recorded_once,
    sessions_list_newest_first_with_filter_and_limit,
    session_renditions_and_bad_values,
    sessions_and_recordings_outlive_their_stream,
    end_requests_reach_the_ingest_holding_the_session,
    a_new_session_asks_the_older_ones_to_end,
    recording_add_is_recorded_once,
    recordings_list_get_remove,
    recordings_ended_before_a_cutoff,
    bad_recordings_are_refused,
    node_sightings_keep_first_seen,
    api_key_round_trip,
    wrong_api_keys_are_rejected,
    stream_keys_and_api_keys_do_not_mix,
    api_key_names,
    removing_an_api_key_makes_it_fail,
    api_keys_never_show_in_debug_or_errors,
    only_the_api_key_hash_is_stored,
    api_key_last_use_is_written_at_most_once_a_minute,
    webhook_urls_are_validated,
    webhook_events_filter,
    webhook_ids_and_removal,
    concurrent_webhook_adds_get_distinct_ids,
);

/// A session id as `SessionId` displays `n`.
fn sid(n: u64) -> String {
    format!("{n:016x}")
}

fn session(stream: &str, n: u64, started_at: i64) -> SessionRecord {
    SessionRecord {
        stream: name(stream),
        session: sid(n),
        ingest_node: "ingest1".into(),
        started_at,
        ended_at: None,
        renditions: vec!["src".into(), "720p".into()],
    }
}

fn recording(stream: &str, n: u64, ended_at: i64) -> RecordingRecord {
    RecordingRecord {
        stream: name(stream),
        id: sid(n),
        started_at: ended_at - 120,
        ended_at,
        duration_secs: 118.25,
        renditions: vec!["src".into(), "720p".into(), "480p".into()],
    }
}

// ---- sessions ----

async fn session_start_is_recorded_once(db: Db) {
    let catalog = open(&db).await;
    let first = session("demo", 1, 1_700_000_000);
    assert!(catalog.start_session(&first).await.expect("start"));
    // A second node recording the same event, with its own idea of the details.
    let mut again = first.clone();
    again.ingest_node = "ingest2".into();
    again.started_at += 1;
    assert!(!catalog.start_session(&again).await.expect("start again"));
    assert_eq!(
        catalog.list_sessions(None, 100).await.expect("list"),
        [first],
        "the first record stays"
    );
    // The same id under another stream is another session.
    let other = session("other", 1, 1_700_000_000);
    assert!(catalog.start_session(&other).await.expect("start other"));
    catalog.close().await;
}

async fn concurrent_session_starts_have_one_winner(db: Db) {
    const WRITERS: usize = 8;
    let a = open(&db).await;
    let b = open(&db).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let catalog = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            let s = session("demo", 7, 1_700_000_000);
            let started = catalog.start_session(&s).await.expect("start");
            let ended = catalog
                .end_session(&s.stream, &s.session, 1_700_000_100)
                .await
                .expect("end");
            (started, ended)
        });
    }
    let (mut starts, mut ends) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (started, ended) = done.expect("task did not panic");
        starts += usize::from(started);
        ends += usize::from(ended);
    }
    assert_eq!((starts, ends), (1, 1));
    a.close().await;
    b.close().await;
}

async fn session_end_is_recorded_once(db: Db) {
    let catalog = open(&db).await;
    let s = session("demo", 1, 1_700_000_000);
    catalog.start_session(&s).await.expect("start");
    assert!(catalog
        .end_session(&s.stream, &s.session, 1_700_000_100)
        .await
        .expect("end"));
    assert!(!catalog
        .end_session(&s.stream, &s.session, 1_700_000_200)
        .await
        .expect("end again"));
    let listed = catalog.list_sessions(None, 10).await.expect("list");
    assert_eq!(
        listed[0].ended_at,
        Some(1_700_000_100),
        "the first end stays"
    );
    // Ending a session nobody started changes nothing and is not an error.
    assert!(!catalog
        .end_session(&s.stream, &sid(2), 1_700_000_100)
        .await
        .expect("end unknown"));
    assert!(!catalog
        .end_session(&name("other"), &s.session, 1_700_000_100)
        .await
        .expect("end under another stream"));
    catalog.close().await;
}

async fn sessions_list_newest_first_with_filter_and_limit(db: Db) {
    let catalog = open(&db).await;
    assert!(catalog
        .list_sessions(None, 100)
        .await
        .expect("list")
        .is_empty());
    let t = 1_700_000_000;
    // Ties on the start time, across streams whose names a locale-aware collation would
    // order differently from bytes.
    let sessions = [
        session("demo", 1, t),
        session("demo", 2, t + 10),
        session("Demo", 3, t + 10),
        session("b", 4, t + 20),
        session("demo", 5, t + 30),
        session("a_b", 6, t + 10),
    ];
    for s in &sessions {
        assert!(catalog.start_session(s).await.expect("start"));
    }
    let ids =
        |list: Vec<SessionRecord>| -> Vec<String> { list.into_iter().map(|s| s.session).collect() };
    assert_eq!(
        ids(catalog.list_sessions(None, 100).await.expect("list")),
        [sid(5), sid(4), sid(3), sid(6), sid(2), sid(1)]
    );
    // The cut falls inside the tie at t + 10 and keeps the first of it in byte order.
    assert_eq!(
        ids(catalog.list_sessions(None, 3).await.expect("list")),
        [sid(5), sid(4), sid(3)]
    );
    assert_eq!(
        ids(catalog.list_sessions(None, 4).await.expect("list")),
        [sid(5), sid(4), sid(3), sid(6)]
    );
    assert!(catalog
        .list_sessions(None, 0)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        ids(catalog
            .list_sessions(Some(&name("demo")), 100)
            .await
            .expect("list")),
        [sid(5), sid(2), sid(1)]
    );
    assert_eq!(
        ids(catalog
            .list_sessions(Some(&name("demo")), 2)
            .await
            .expect("list")),
        [sid(5), sid(2)]
    );
    assert!(catalog
        .list_sessions(Some(&name("nobody")), 100)
        .await
        .expect("list")
        .is_empty());
    catalog.close().await;
}

async fn session_renditions_and_bad_values(db: Db) {
    let catalog = open(&db).await;
    let mut s = session("demo", 1, 1_700_000_000);
    s.renditions.clear();
    catalog.start_session(&s).await.expect("start");
    assert!(catalog.list_sessions(None, 1).await.expect("list")[0]
        .renditions
        .is_empty());

    let ladder: Vec<String> = ["src", "720p", "480p", "360p"].map(String::from).into();
    catalog
        .set_session_renditions(&s.stream, &s.session, &ladder)
        .await
        .expect("set renditions");
    assert_eq!(
        catalog.list_sessions(None, 1).await.expect("list")[0].renditions,
        ladder
    );

    let e = catalog
        .set_session_renditions(&s.stream, &sid(9), &ladder)
        .await
        .expect_err("unknown session");
    assert!(matches!(e, CatalogError::SessionNotFound { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = catalog
        .set_session_renditions(&s.stream, &s.session, &["a,b".to_owned()])
        .await
        .expect_err("comma in a rendition");
    assert!(
        matches!(
            e,
            CatalogError::InvalidInput {
                what: "rendition",
                ..
            }
        ),
        "{e:?}"
    );

    for bad_id in ["", "17A3F0C2B1E4D5A6", "123", "../../../etc"] {
        let mut bad = session("demo", 0, 1);
        bad.session = bad_id.into();
        let e = catalog.start_session(&bad).await.expect_err(bad_id);
        assert!(
            matches!(
                e,
                CatalogError::InvalidInput {
                    what: "session id",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
    let mut bad = session("demo", 2, 1);
    bad.renditions = vec!["720p".into(), String::new()];
    assert!(catalog.start_session(&bad).await.is_err());
    assert_eq!(
        catalog.list_sessions(None, 100).await.expect("list").len(),
        1
    );
    catalog.close().await;
}

async fn sessions_and_recordings_outlive_their_stream(db: Db) {
    let catalog = open(&db).await;
    catalog.add_stream(&name("demo")).await.expect("add");
    let s = session("demo", 1, 1_700_000_000);
    catalog.start_session(&s).await.expect("start");
    let r = recording("demo", 1, 1_700_000_120);
    catalog.add_recording(&r).await.expect("add recording");
    catalog.remove_stream(&name("demo")).await.expect("remove");
    assert_eq!(catalog.list_sessions(None, 10).await.expect("list"), [s]);
    assert_eq!(catalog.list_recordings().await.expect("list"), [r]);
    catalog.close().await;
}

async fn end_requests_reach_the_ingest_holding_the_session(db: Db) {
    let catalog = open(&db).await;
    let on_ingest1 = session("demo", 1, 1_700_000_000);
    let mut on_ingest2 = session("other", 2, 1_700_000_000);
    on_ingest2.ingest_node = "ingest2".into();
    let mut ended = session("demo", 3, 1_690_000_000);
    ended.ended_at = Some(1_690_000_100);
    for s in [&on_ingest1, &on_ingest2, &ended] {
        catalog.start_session(s).await.expect("start");
    }
    assert!(catalog
        .end_requests("ingest1")
        .await
        .expect("requests")
        .is_empty());

    assert!(catalog.request_end(&name("demo")).await.expect("request"));
    assert!(
        catalog.request_end(&name("demo")).await.expect("again"),
        "still live, so still true"
    );
    assert!(!catalog.request_end(&name("idle")).await.expect("not live"));
    assert_eq!(
        catalog.end_requests("ingest1").await.expect("requests"),
        [(name("demo"), sid(1))],
        "only the live session, only on its own node"
    );
    assert!(catalog
        .end_requests("ingest2")
        .await
        .expect("requests")
        .is_empty());

    // Once the end is recorded the request is done.
    catalog
        .end_session(&name("demo"), &sid(1), 1_700_000_050)
        .await
        .expect("end");
    assert!(catalog
        .end_requests("ingest1")
        .await
        .expect("requests")
        .is_empty());
    assert!(!catalog.request_end(&name("demo")).await.expect("not live"));
    catalog.close().await;
}

async fn a_new_session_asks_the_older_ones_to_end(db: Db) {
    let catalog = open(&db).await;
    let mut old = session("demo", 1, 1_700_000_000);
    old.ingest_node = "ingest2".into();
    let new = session("demo", 2, 1_700_000_060);
    let other_stream = session("other", 3, 1_700_000_000);
    for s in [&old, &new, &other_stream] {
        catalog.start_session(s).await.expect("start");
    }
    assert_eq!(
        catalog
            .request_end_others(&name("demo"), &sid(2))
            .await
            .expect("request"),
        1
    );
    assert_eq!(
        catalog.end_requests("ingest2").await.expect("requests"),
        [(name("demo"), sid(1))],
        "the older session, on the ingest that holds it"
    );
    assert!(
        catalog
            .end_requests("ingest1")
            .await
            .expect("requests")
            .is_empty(),
        "neither the new session nor another stream's"
    );
    // Asked once: asking again marks nothing; an ended session is never asked.
    assert_eq!(
        catalog
            .request_end_others(&name("demo"), &sid(2))
            .await
            .expect("again"),
        0
    );
    assert!(catalog
        .request_end_others(&name("demo"), "not-a-session-id")
        .await
        .is_err());
    catalog.close().await;
}

// ---- recordings ----

async fn recording_add_is_recorded_once(db: Db) {
    const NODES: usize = 6;
    let a = open(&db).await;
    let b = open(&db).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..NODES {
        let catalog = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            catalog
                .add_recording(&recording("demo", 1, 1_700_000_120))
                .await
                .expect("add recording")
        });
    }
    let mut added = 0;
    while let Some(done) = tasks.join_next().await {
        added += usize::from(done.expect("task did not panic"));
    }
    assert_eq!(added, 1);
    assert!(!a
        .add_recording(&recording("demo", 1, 1_700_000_999))
        .await
        .expect("add again"));
    assert_eq!(
        a.list_recordings().await.expect("list"),
        [recording("demo", 1, 1_700_000_120)]
    );
    a.close().await;
    b.close().await;
}

async fn recordings_list_get_remove(db: Db) {
    let catalog = open(&db).await;
    assert!(catalog.list_recordings().await.expect("list").is_empty());
    let t = 1_700_000_000;
    let mut whole = recording("demo", 4, t + 30);
    whole.duration_secs = 118.0;
    let added = [
        recording("demo", 1, t),
        recording("demo", 2, t + 10),
        recording("Demo", 3, t + 10),
        whole,
        recording("a-b", 5, t + 10),
    ];
    for r in &added {
        assert!(catalog.add_recording(r).await.expect("add"));
    }
    let listed = catalog.list_recordings().await.expect("list");
    let order: Vec<_> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(order, [sid(4), sid(3), sid(5), sid(2), sid(1)]);
    assert_eq!(listed[0], added[3], "values round-trip, 118.0 included");
    assert_eq!(listed[4], added[0]);

    assert_eq!(
        catalog
            .get_recording(&name("demo"), &sid(2))
            .await
            .expect("get"),
        Some(added[1].clone())
    );
    for (stream, id) in [("demo", sid(3)), ("demo", "nope".to_owned()), ("x", sid(1))] {
        assert_eq!(
            catalog
                .get_recording(&name(stream), &id)
                .await
                .expect("get"),
            None
        );
    }

    catalog
        .remove_recording(&name("demo"), &sid(2))
        .await
        .expect("remove");
    assert_eq!(
        catalog
            .get_recording(&name("demo"), &sid(2))
            .await
            .expect("get"),
        None
    );
    assert_eq!(catalog.list_recordings().await.expect("list").len(), 4);
    let e = catalog
        .remove_recording(&name("demo"), &sid(2))
        .await
        .expect_err("removed already");
    assert!(
        matches!(&e, CatalogError::RecordingNotFound { stream, id }
            if *stream == name("demo") && *id == sid(2)),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // Removed for good: adding it again is a new recording.
    assert!(catalog.add_recording(&added[1]).await.expect("add again"));
    catalog.close().await;
}

async fn recordings_ended_before_a_cutoff(db: Db) {
    let catalog = open(&db).await;
    let t = 1_700_000_000;
    for r in [
        recording("b", 1, t + 5),
        recording("demo", 2, t + 100),
        recording("a", 3, t + 5),
        recording("demo", 4, t - 50),
        recording("demo", 5, t),
    ] {
        catalog.add_recording(&r).await.expect("add");
    }
    let ids =
        |list: Vec<RecordingRecord>| -> Vec<String> { list.into_iter().map(|r| r.id).collect() };
    assert!(catalog
        .recordings_ended_before(t - 50)
        .await
        .expect("sweep")
        .is_empty());
    assert_eq!(
        ids(catalog.recordings_ended_before(t).await.expect("sweep")),
        [sid(4)],
        "the cutoff itself is kept"
    );
    assert_eq!(
        ids(catalog.recordings_ended_before(t + 6).await.expect("sweep")),
        [sid(4), sid(5), sid(3), sid(1)]
    );
    assert_eq!(
        catalog
            .recordings_ended_before(i64::MAX)
            .await
            .expect("sweep")
            .len(),
        5
    );
    catalog.close().await;
}

async fn bad_recordings_are_refused(db: Db) {
    let catalog = open(&db).await;
    for duration in [f64::NAN, f64::INFINITY, -1.0] {
        let mut r = recording("demo", 1, 1_700_000_000);
        r.duration_secs = duration;
        let e = catalog.add_recording(&r).await.expect_err("bad duration");
        assert!(
            matches!(
                e,
                CatalogError::InvalidInput {
                    what: "recording duration",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let mut r = recording("demo", 1, 1_700_000_000);
    r.id = "../x".into();
    assert!(catalog.add_recording(&r).await.is_err());
    let mut r = recording("demo", 1, 1_700_000_000);
    r.renditions = vec!["src,720p".into()];
    assert!(catalog.add_recording(&r).await.is_err());
    assert!(catalog.list_recordings().await.expect("list").is_empty());
    catalog.close().await;
}

// ---- nodes ----

async fn node_sightings_keep_first_seen(db: Db) {
    let catalog = open(&db).await;
    assert!(catalog.list_nodes().await.expect("list").is_empty());
    let url = Some("http://10.0.0.5:8080");
    catalog
        .node_seen("broadcast1", "broadcast", url, "joining", 100)
        .await
        .expect("seen");
    catalog
        .node_seen("broadcast1", "broadcast", url, "ready", 160)
        .await
        .expect("seen");
    // Out of order: a sighting older than the last one changes nothing.
    catalog
        .node_seen("broadcast1", "broadcast", None, "joining", 150)
        .await
        .expect("seen");
    catalog
        .node_seen("ingest1", "ingest", None, "ready", 120)
        .await
        .expect("seen");
    catalog
        .node_seen("Broadcast2", "broadcast", None, "offline", 90)
        .await
        .expect("seen");

    let nodes = catalog.list_nodes().await.expect("list");
    let ids: Vec<_> = nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["Broadcast2", "broadcast1", "ingest1"]);
    let b1 = &nodes[1];
    assert_eq!(
        (
            b1.first_seen,
            b1.last_seen,
            b1.state.as_str(),
            b1.url.as_deref()
        ),
        (100, 160, "ready", url)
    );
    assert_eq!(
        (nodes[2].role.as_str(), nodes[2].url.as_deref()),
        ("ingest", None)
    );

    // A later sighting replaces the rest, URL included.
    catalog
        .node_seen("broadcast1", "broadcast", None, "offline", 200)
        .await
        .expect("seen");
    let b1 = catalog.list_nodes().await.expect("list").remove(1);
    assert_eq!(
        (b1.first_seen, b1.last_seen, b1.state.as_str(), b1.url),
        (100, 200, "offline", None)
    );
    catalog.close().await;
}

// ---- API keys ----

async fn api_key_round_trip(db: Db) {
    let catalog = open(&db).await;
    assert!(!catalog.has_api_keys().await.expect("has keys"));
    let before = now_unix();
    let (record, key) = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("add");
    let printed = key.expose_secret().to_owned();
    assert!(printed.starts_with("ak_"));
    assert_eq!(printed.len(), 3 + 64);
    assert_eq!(record.name, "admin");
    assert_eq!(record.scope, Scope::Admin);
    assert!((before..=now_unix()).contains(&record.created_at));
    assert_eq!(record.last_used_at, None);
    assert!(catalog.has_api_keys().await.expect("has keys"));

    let (_, reader) = catalog
        .add_api_key("dashboard", Scope::Read)
        .await
        .expect("add");
    let accepted = catalog
        .authenticate_api_key(&printed)
        .await
        .expect("authenticate")
        .expect("accepted");
    assert_eq!(
        (accepted.name.as_str(), accepted.scope),
        ("admin", Scope::Admin)
    );
    assert!(accepted.last_used_at.is_some_and(|t| t >= before));
    let read = catalog
        .authenticate_api_key(reader.expose_secret())
        .await
        .expect("authenticate")
        .expect("accepted");
    assert_eq!((read.name.as_str(), read.scope), ("dashboard", Scope::Read));
    assert!(read.scope.allows(Scope::Read) && !read.scope.allows(Scope::Admin));

    let listed = catalog.list_api_keys().await.expect("list");
    let names: Vec<_> = listed.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["admin", "dashboard"]);
    assert_eq!(listed[0], accepted, "the list shows the last use");
    catalog.close().await;
}

async fn wrong_api_keys_are_rejected(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("add");
    let good = key.expose_secret();
    let unissued = format!("ak_{}", hex::encode(rand::random::<[u8; 32]>()));
    let upper = good.to_uppercase();
    let with_newline = format!("{good}\n");
    let truncated = &good[..good.len() - 1];
    let hash = hex::encode(Sha256::digest(good.as_bytes()));
    let huge = "ak_".to_owned() + &"a".repeat(1 << 20);
    for wrong in [
        unissued.as_str(),
        "",
        "ak_",
        "admin",
        upper.as_str(),
        with_newline.as_str(),
        truncated,
        &good[3..],
        hash.as_str(),
        huge.as_str(),
        "' OR 1=1 --",
    ] {
        assert_eq!(
            catalog
                .authenticate_api_key(wrong)
                .await
                .expect("authenticate"),
            None,
            "a wrong key was accepted"
        );
    }
    catalog.close().await;
}

async fn stream_keys_and_api_keys_do_not_mix(db: Db) {
    let catalog = open(&db).await;
    let (_, stream_key) = catalog.add_stream(&name("demo")).await.expect("add");
    let (_, api_key) = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("add");
    assert_eq!(
        catalog
            .authenticate_api_key(stream_key.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    assert_eq!(
        catalog
            .authenticate(api_key.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    // Same random part, other prefix: still not a key of the other kind.
    let swapped = format!("ak_{}", &stream_key.expose_secret()[3..]);
    assert_eq!(
        catalog
            .authenticate_api_key(&swapped)
            .await
            .expect("authenticate"),
        None
    );
    assert_eq!(
        catalog
            .authenticate(stream_key.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    catalog.close().await;
}

async fn api_key_names(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog
        .add_api_key("ops-1_a", Scope::Read)
        .await
        .expect("add");
    let e = catalog
        .add_api_key("ops-1_a", Scope::Admin)
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&e, CatalogError::ApiKeyExists { name } if name == "ops-1_a"),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // The failed add changed nothing: the key keeps its scope and still works.
    let record = catalog
        .authenticate_api_key(key.expose_secret())
        .await
        .expect("authenticate")
        .expect("accepted");
    assert_eq!(record.scope, Scope::Read);

    let long = "k".repeat(65);
    for bad in ["", "has space", "dot.ted", "naïve", "a/b", long.as_str()] {
        let e = catalog.add_api_key(bad, Scope::Read).await.expect_err(bad);
        assert!(matches!(e, CatalogError::InvalidApiKeyName { .. }), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
    assert!(catalog
        .add_api_key(&"k".repeat(64), Scope::Read)
        .await
        .is_ok());
    assert_eq!(catalog.list_api_keys().await.expect("list").len(), 2);
    catalog.close().await;
}

async fn removing_an_api_key_makes_it_fail(db: Db) {
    let catalog = open(&db).await;
    let (_, gone) = catalog
        .add_api_key("gone", Scope::Admin)
        .await
        .expect("add");
    let (_, kept) = catalog.add_api_key("kept", Scope::Read).await.expect("add");
    catalog.remove_api_key("gone").await.expect("remove");
    assert_eq!(
        catalog
            .authenticate_api_key(gone.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    assert!(catalog
        .authenticate_api_key(kept.expose_secret())
        .await
        .expect("authenticate")
        .is_some());
    let e = catalog.remove_api_key("gone").await.expect_err("gone");
    assert!(
        matches!(&e, CatalogError::ApiKeyNotFound { name } if name == "gone"),
        "{e:?}"
    );
    // A key pasted where the name belongs is refused without being repeated.
    let e = catalog
        .remove_api_key(kept.expose_secret())
        .await
        .expect_err("not a name");
    assert!(matches!(e, CatalogError::InvalidApiKeyName { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains(&kept.expose_secret()[3..]));

    catalog.remove_api_key("kept").await.expect("remove");
    assert!(!catalog.has_api_keys().await.expect("has keys"));
    catalog.close().await;
}

async fn api_keys_never_show_in_debug_or_errors(db: Db) {
    let catalog = open(&db).await;
    let (record, key) = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("add");
    let accepted = catalog
        .authenticate_api_key(key.expose_secret())
        .await
        .expect("authenticate");
    let duplicate = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect_err("duplicate");
    let outputs = [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{:?}", (&record, &key)),
        format!("{accepted:?}"),
        serde_json::to_string(&record).expect("serializes"),
        format!("{duplicate} {duplicate:?}"),
        format!("{catalog:?}"),
    ];
    let secret = key.expose_secret();
    for out in &outputs {
        assert!(!out.contains(secret), "key in {out}");
        assert!(!out.contains(&secret[3..19]), "part of the key in {out}");
    }
    assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
    catalog.close().await;
}

async fn only_the_api_key_hash_is_stored(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("add");
    catalog.close().await;

    let mut conn = raw(&db).await;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, key_hash, scope FROM api_keys")
            .fetch_all(&mut conn)
            .await
            .expect("select");
    conn.close().await.expect("close");
    let expected = hex::encode(Sha256::digest(key.expose_secret().as_bytes()));
    assert_eq!(rows, [("admin".to_owned(), expected, "admin".to_owned())]);
}

async fn api_key_last_use_is_written_at_most_once_a_minute(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog
        .add_api_key("dashboard", Scope::Read)
        .await
        .expect("add");
    let set_last_used = |at: i64| {
        let db = db.clone();
        async move {
            let mut conn = raw(&db).await;
            sqlx::query("UPDATE api_keys SET last_used_at = $1")
                .bind(at)
                .execute(&mut conn)
                .await
                .expect("update");
            conn.close().await.expect("close");
        }
    };
    let last_used = || async {
        catalog
            .authenticate_api_key(key.expose_secret())
            .await
            .expect("authenticate")
            .expect("accepted")
            .last_used_at
            .expect("set")
    };

    // Used 30 seconds ago: recent enough, not written again.
    let recent = now_unix() - 30;
    set_last_used(recent).await;
    assert_eq!(last_used().await, recent);
    assert_eq!(
        catalog.list_api_keys().await.expect("list")[0].last_used_at,
        Some(recent)
    );

    // Used two minutes ago: brought up to date.
    set_last_used(now_unix() - 120).await;
    let before = now_unix();
    assert!(last_used().await >= before);
    assert!(catalog.list_api_keys().await.expect("list")[0]
        .last_used_at
        .is_some_and(|t| t >= before));
    catalog.close().await;
}

// ---- webhooks ----

async fn webhook_urls_are_validated(db: Db) {
    let catalog = open(&db).await;
    let too_long = format!("https://hooks.example/{}", "x".repeat(MAX_WEBHOOK_URL_LEN));
    for bad in [
        "ftp://hooks.example/x",
        "/relative/path",
        "hooks.example/x",
        "https://user:hunter2@hooks.example/x",
        "https://user@hooks.example/x",
        "javascript:alert(1)",
        "",
        too_long.as_str(),
    ] {
        let e = catalog
            .add_webhook(bad, &[])
            .await
            .expect_err("invalid webhook");
        assert!(matches!(e, CatalogError::InvalidWebhook { .. }), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    assert!(catalog.list_webhooks().await.expect("list").is_empty());

    let hook = catalog
        .add_webhook("HTTPS://Hooks.Example:443/in?token=abc", &[])
        .await
        .expect("add");
    assert_eq!(
        hook.url, "https://hooks.example/in?token=abc",
        "normal form"
    );
    assert_eq!(hook.events, WebhookEvent::ALL, "no events means all");
    assert_eq!(catalog.list_webhooks().await.expect("list"), [hook]);
    catalog.close().await;
}

async fn webhook_events_filter(db: Db) {
    use WebhookEvent::{Publish, RecordingReady, Unpublish};
    let catalog = open(&db).await;
    let all = catalog
        .add_webhook("http://127.0.0.1:9000/all", &[])
        .await
        .expect("add");
    let publish = catalog
        .add_webhook("http://127.0.0.1:9000/publish", &[Publish, Publish])
        .await
        .expect("add");
    let vod = catalog
        .add_webhook("http://127.0.0.1:9000/vod", &[RecordingReady, Unpublish])
        .await
        .expect("add");
    assert_eq!(publish.events, [Publish]);
    assert_eq!(vod.events, [Unpublish, RecordingReady]);

    let ids = |hooks: Vec<catalog::WebhookRecord>| -> Vec<i64> {
        hooks.into_iter().map(|h| h.id).collect()
    };
    assert_eq!(
        ids(catalog.webhooks_for(Publish).await.expect("for")),
        [all.id, publish.id]
    );
    assert_eq!(
        ids(catalog.webhooks_for(Unpublish).await.expect("for")),
        [all.id, vod.id]
    );
    assert_eq!(
        ids(catalog.webhooks_for(RecordingReady).await.expect("for")),
        [all.id, vod.id]
    );
    let listed = catalog.list_webhooks().await.expect("list");
    assert_eq!(listed, [all, publish, vod]);
    let json = serde_json::to_value(&listed[2]).expect("serializes");
    assert_eq!(
        json["events"],
        serde_json::json!(["unpublish", "recording_ready"])
    );
    catalog.close().await;
}

async fn webhook_ids_and_removal(db: Db) {
    let catalog = open(&db).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let hook = catalog
            .add_webhook(&format!("https://hooks.example/{i}"), &[])
            .await
            .expect("add");
        ids.push(hook.id);
    }
    assert_eq!(ids, [1, 2, 3]);
    catalog.remove_webhook(2).await.expect("remove");
    let e = catalog
        .remove_webhook(2)
        .await
        .expect_err("removed already");
    assert!(
        matches!(e, CatalogError::WebhookNotFound { id: 2 }),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = catalog.remove_webhook(99).await.expect_err("never existed");
    assert!(
        matches!(e, CatalogError::WebhookNotFound { id: 99 }),
        "{e:?}"
    );
    let listed: Vec<_> = catalog
        .list_webhooks()
        .await
        .expect("list")
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(listed, [1, 3]);
    let next = catalog
        .add_webhook("https://hooks.example/next", &[])
        .await
        .expect("add");
    assert_eq!(next.id, 4, "ids keep growing past a gap");
    assert!(catalog
        .webhooks_for(WebhookEvent::Publish)
        .await
        .expect("for")
        .iter()
        .all(|h| h.id != 2));
    catalog.close().await;
}

async fn concurrent_webhook_adds_get_distinct_ids(db: Db) {
    const ADDS: usize = 8;
    let a = open(&db).await;
    let b = open(&db).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ADDS {
        let catalog = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            catalog
                .add_webhook(&format!("https://hooks.example/{i}"), &[])
                .await
                .expect("concurrent add")
                .id
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        ids.push(done.expect("task did not panic"));
    }
    ids.sort_unstable();
    let expected: Vec<i64> = (1..=i64::try_from(ADDS).expect("small")).collect();
    assert_eq!(ids, expected);
    assert_eq!(a.list_webhooks().await.expect("list").len(), ADDS);
    a.close().await;
    b.close().await;
}

//! The broadcast nodes' PostgreSQL role, `sealcast_edge` (docs/deployment.md, "The
//! catalog's roles"): it opens a catalog that the owner migrated without migrating it (it
//! may not), or waits for the owner to; it does every write a broadcast node and the admin
//! API it serves make; and it is refused the rest: DDL, the migrations table, the
//! streams' numbering, publish sessions but for end requests, API keys but for their last
//! use.
//!
//! PostgreSQL only: SQLite has no roles. Roles belong to the whole server, so the role is
//! made if missing and never dropped (other scratch databases may hold grants to it); its
//! password is new at every run, for a server that asks for one.

// One operation a line: a failing one's line says which it was.
#![allow(clippy::unwrap_used)]

use catalog::{Catalog, CatalogError, RecordingRecord, Scope, SessionRecord, WebhookEvent};
use sqlx::{Connection, Executor, PgConnection};
use testkit::postgres::ScratchDatabase;

use crate::support::{name, now_unix};

const EDGE: &str = "sealcast_edge";

/// Makes the role if missing, with a new password, and answers the URL of `db` as it.
async fn edge_url(db: &ScratchDatabase) -> String {
    let mut admin = PgConnection::connect(db.url())
        .await
        .expect("admin connection");
    let password = format!("{:032x}", rand::random::<u128>());
    admin
        .execute(
            format!(
                "DO $$ BEGIN CREATE ROLE {EDGE} LOGIN; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            .as_str(),
        )
        .await
        .expect("the edge role");
    admin
        .execute(format!("ALTER ROLE {EDGE} PASSWORD '{password}'").as_str())
        .await
        .expect("the edge role's password");
    admin.close().await.expect("closed");
    let mut url = url::Url::parse(db.url()).expect("a URL");
    url.set_username(EDGE).expect("a user");
    url.set_password(Some(&password)).expect("a password");
    url.to_string()
}

/// Whether `result` failed for want of a privilege (42501), the database's own refusal.
fn refused<T: std::fmt::Debug>(result: Result<T, CatalogError>) -> bool {
    match result {
        Err(CatalogError::Database(sqlx::Error::Database(e))) => {
            e.code().as_deref() == Some("42501")
        }
        other => panic!("expected a refusal for want of privilege, got {other:?}"),
    }
}

/// Whether a raw statement run as the edge is refused for want of a privilege.
async fn raw_refused(conn: &mut PgConnection, statement: &str) -> bool {
    match conn.execute(statement).await {
        Err(sqlx::Error::Database(e)) => e.code().as_deref() == Some("42501"),
        other => panic!("{statement}: expected a refusal, got {other:?}"),
    }
}

async fn scratch() -> ScratchDatabase {
    ScratchDatabase::create(None)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// One test, not several: they would share the role and race on its password.
#[tokio::test]
async fn the_edge_role_opens_does_the_edge_writes_and_no_others() {
    let db = scratch().await;
    let outcome = tokio::spawn(async move {
        let edge_url = edge_url(&db).await;
        // The owner migrated first (an ingest); the edge opens without migrating.
        let owner = Catalog::open(db.url()).await.expect("the owner opens");
        let edge = Catalog::open(&edge_url)
            .await
            .expect("the edge opens a migrated catalog");
        the_edge_writes_what_it_needs(&owner, &edge).await;
        the_edge_is_refused_the_rest(&owner, &edge, &edge_url).await;
        edge.close().await;
        owner.close().await;
        db
    })
    .await;
    let db = match outcome {
        Ok(db) => db,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("{e}"),
    };
    db.drop().await.expect("dropped");

    // On a fresh database, started together in no set order (compose, Kubernetes): the
    // edge waits for the owner to migrate and grant.
    let db = scratch().await;
    let edge_url = edge_url(&db).await;
    let edge = tokio::spawn(async move { Catalog::open(&edge_url).await });
    let owner = Catalog::open(db.url()).await.expect("the owner opens");
    let edge = tokio::time::timeout(std::time::Duration::from_secs(50), edge)
        .await
        .expect("the edge opened once the owner had migrated")
        .expect("joined")
        .expect("the edge opens");
    assert!(edge.list_streams().await.expect("reads").is_empty());
    edge.close().await;
    owner.close().await;
    db.drop().await.expect("dropped");
}

async fn the_edge_writes_what_it_needs(owner: &Catalog, edge: &Catalog) {
    let now = now_unix();
    // Reads.
    let (_, key) = owner.add_api_key("dashboard", Scope::Admin).await.unwrap();
    assert!(edge.list_streams().await.unwrap().is_empty());
    // The API checks keys, and records their last use.
    let accepted = edge
        .authenticate_api_key(key.expose_secret())
        .await
        .unwrap()
        .expect("the key is accepted");
    assert!(accepted.last_used_at.is_some());
    let listed = owner.list_api_keys().await.unwrap();
    assert!(
        listed[0].last_used_at.is_some(),
        "the edge could not record the key's last use"
    );

    // The presence follower records nodes, new and known.
    edge.node_seen(
        "broadcast-a",
        "broadcast",
        Some("http://a:8080"),
        "joining",
        now,
    )
    .await
    .unwrap();
    edge.node_seen(
        "broadcast-a",
        "broadcast",
        Some("http://a:8080"),
        "ready",
        now + 1,
    )
    .await
    .unwrap();
    assert_eq!(edge.list_nodes().await.unwrap()[0].state, "ready");

    // The recorder enters recordings; the API deletes them.
    let recording = RecordingRecord {
        stream: name("cam1"),
        id: format!("{:016x}", 7),
        started_at: now - 60,
        ended_at: now,
        duration_secs: 60.0,
        renditions: vec!["src".into()],
    };
    assert!(edge.add_recording(&recording).await.unwrap());
    assert_eq!(edge.list_recordings().await.unwrap().len(), 1);
    edge.remove_recording(&recording.stream, &recording.id)
        .await
        .unwrap();

    // The API's stream routes.
    let cam = name("cam1");
    edge.add_stream_with_privacy(&cam, true).await.unwrap();
    edge.set_private(&cam, false).await.unwrap();
    edge.add_stream_with(&name("cam3"), false, false)
        .await
        .unwrap();
    edge.remove_stream(&name("cam3")).await.unwrap();
    edge.set_record(&cam, false).await.unwrap();
    assert!(!owner.is_recorded(&cam).await.unwrap());
    let rotated = edge.rotate_key(&cam).await.unwrap();
    assert_eq!(
        owner.authenticate(rotated.expose_secret()).await.unwrap(),
        Some(cam.clone())
    );
    assert!(edge.get_stream(&cam).await.unwrap().is_some());

    // Ending a live stream: the ingest records the session, the API asks for its end.
    let session = SessionRecord {
        stream: cam.clone(),
        session: format!("{:016x}", 9),
        ingest_node: "ingest1".into(),
        started_at: now,
        ended_at: None,
        renditions: vec!["src".into()],
    };
    assert!(owner.start_session(&session).await.unwrap());
    assert!(edge.request_end(&cam).await.unwrap());
    assert_eq!(edge.list_sessions(Some(&cam), 10).await.unwrap().len(), 1);
    edge.remove_stream(&cam).await.unwrap();

    // Webhooks: the API's routes, and the deliveries' look-up.
    let hook = edge
        .add_webhook(
            "https://hooks.example.com/sealcast",
            &[WebhookEvent::Publish],
        )
        .await
        .unwrap();
    assert_eq!(
        edge.webhooks_for(WebhookEvent::Publish)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(edge.list_webhooks().await.unwrap().len(), 1);
    edge.remove_webhook(hook.id).await.unwrap();
}

async fn the_edge_is_refused_the_rest(owner: &Catalog, edge: &Catalog, edge_url: &str) {
    let cam = name("cam2");
    owner.add_stream(&cam).await.unwrap();
    let session = SessionRecord {
        stream: cam.clone(),
        session: format!("{:016x}", 11),
        ingest_node: "ingest1".into(),
        started_at: now_unix(),
        ended_at: None,
        renditions: vec!["src".into()],
    };
    // The ingests' work: sessions and the streams' numbering.
    assert!(refused(edge.start_session(&session).await));
    assert!(refused(edge.begin_numbering(&cam).await));
    assert!(refused(edge.advance_sequence(&cam, 1000).await));
    assert!(refused(edge.mark_live(&cam, now_unix()).await));
    owner.start_session(&session).await.unwrap();
    assert!(refused(
        edge.end_session(&cam, &session.session, now_unix()).await
    ));
    // The operator's CLI: API keys.
    assert!(refused(edge.add_api_key("intruder", Scope::Admin).await));
    assert!(refused(edge.remove_api_key("dashboard").await));

    // Nothing of the schema, the migrations table, or the numbering columns.
    let mut conn = PgConnection::connect(edge_url)
        .await
        .expect("edge connection");
    for statement in [
        "CREATE TABLE intruder (x BIGINT)",
        "ALTER TABLE streams ADD COLUMN intruder BIGINT",
        "DROP TABLE webhooks",
        "TRUNCATE recordings",
        "DELETE FROM _sqlx_migrations",
        "INSERT INTO streams (name, key_hash, created_at, next_sequence) \
         VALUES ('cam3', 'aa', 0, 0)",
        "UPDATE streams SET next_sequence = 0",
        "DELETE FROM sessions",
        "UPDATE api_keys SET scope = 'admin'",
        "UPDATE recordings SET ended_at = 0",
        "DELETE FROM nodes",
    ] {
        assert!(raw_refused(&mut conn, statement).await, "{statement}");
    }
    conn.close().await.expect("closed");
}

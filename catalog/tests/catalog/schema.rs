//! The schema and the SQL, checked against each other on SQLite and on PostgreSQL: every
//! statement prepares on a freshly migrated database, a drifted schema is caught, and a
//! database made by an older sealcast (only `0001`) is brought up to date with its data.

use std::path::Path;

use crate::support::{name, raw, Db};
use catalog::{Catalog, CatalogError, ErrorKind, Scope, WebhookEvent};
use sha2::{Digest, Sha256};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor};

on_both_backends!(
    every_statement_prepares_on_a_migrated_database,
    a_drifted_schema_fails_the_statement_check,
    an_old_database_is_migrated_with_its_streams,
);

async fn every_statement_prepares_on_a_migrated_database(db: Db) {
    let catalog = Catalog::open(&db.location).await.expect("open");
    catalog
        .check_statements()
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)));
    catalog.close().await;
}

async fn a_drifted_schema_fails_the_statement_check(db: Db) {
    Catalog::open(&db.location)
        .await
        .expect("open")
        .close()
        .await;
    let mut conn = raw(&db).await;
    conn.execute("ALTER TABLE webhooks RENAME COLUMN events TO topics")
        .await
        .expect("rename a column behind the catalog's back");
    conn.close().await.expect("close");

    // A new handle, so no connection holds statements prepared before the change.
    let catalog = Catalog::open(&db.location).await.expect("open");
    let e = catalog
        .check_statements()
        .await
        .expect_err("a statement names the old column");
    assert!(
        matches!(&e, CatalogError::Statement { name, .. } if name.starts_with("WEBHOOK_")),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.to_string().contains("WEBHOOK_"), "{e}");
    catalog.close().await;
}

/// Applies only `0001_streams.sql`, as sealcast did before `0002` existed, through sqlx's
/// migrator (so its bookkeeping table is exactly what an old version left).
async fn make_old_database(db: &Db) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/0001_streams.sql");
    std::fs::copy(&source, dir.path().join("0001_streams.sql")).expect("copy 0001");
    let old = Migrator::new(dir.path()).await.expect("read 0001");
    assert_eq!(old.iter().count(), 1);
    // Through a pool, not a bare connection: the migrator's future is only `Send` (as
    // `on_postgres` needs) when it runs on a pool.
    let url = if db.url.starts_with("sqlite:") {
        if let Some(parent) = Path::new(&db.location).parent() {
            std::fs::create_dir_all(parent).expect("create the data directory");
        }
        format!("{}?mode=rwc", db.url)
    } else {
        db.url.clone()
    };
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    old.run(&pool).await.expect("apply 0001");
    pool.close().await;
}

async fn an_old_database_is_migrated_with_its_streams(db: Db) {
    make_old_database(&db).await;
    // A stream the old version added, with a key only its hash is known of.
    let key = format!("sk_{}", "ab".repeat(32));
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    let mut conn = raw(&db).await;
    sqlx::query(
        "INSERT INTO streams (name, key_hash, created_at, last_live_at) \
         VALUES ('demo', $1, 1700000000, 1700000100)",
    )
    .bind(&hash)
    .execute(&mut conn)
    .await
    .expect("insert an old stream");
    let exists: Result<Vec<(String,)>, _> = sqlx::query_as("SELECT name FROM api_keys")
        .fetch_all(&mut conn)
        .await;
    assert!(exists.is_err(), "0002's tables are not there yet");
    conn.close().await.expect("close");

    let catalog = Catalog::open(&db.location).await.expect("open migrates");
    assert_eq!(
        catalog.authenticate(&key).await.expect("authenticate"),
        Some(name("demo"))
    );
    let streams = catalog.list_streams().await.expect("list");
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].last_live_at, Some(1_700_000_100));
    catalog
        .check_statements()
        .await
        .expect("every statement prepares");
    // The new tables work.
    assert!(!catalog.has_api_keys().await.expect("has keys"));
    catalog
        .add_api_key("admin", Scope::Admin)
        .await
        .expect("add key");
    catalog
        .add_webhook("https://hooks.example/x", &[WebhookEvent::Publish])
        .await
        .expect("add webhook");
    // 0003: an old stream's numbering starts at zero, without a discontinuity.
    let numbering = catalog
        .begin_numbering(&name("demo"))
        .await
        .expect("numbering");
    assert_eq!(
        (numbering.first_sequence, numbering.discontinuity),
        (0, false)
    );
    // 0004: an old stream stays public.
    assert!(!streams[0].private);
    assert!(!catalog.is_private(&name("demo")).await.expect("private?"));
    // 0005: an old stream stays recorded.
    assert!(streams[0].record);
    assert!(catalog.is_recorded(&name("demo")).await.expect("recorded?"));
    catalog.close().await;

    let mut conn = raw(&db).await;
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .expect("migrations");
    conn.close().await.expect("close");
    assert_eq!(versions, [(1,), (2,), (3,), (4,), (5,)]);

    // And opening again has nothing left to do.
    let catalog = Catalog::open(&db.location).await.expect("reopen");
    assert!(catalog.has_api_keys().await.expect("has keys"));
    catalog.close().await;
}

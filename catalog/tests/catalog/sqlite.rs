//! What only SQLite needs: the file, WAL mode, the busy timeout, the URL forms.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use catalog::{Catalog, CatalogError};
use domain::StreamName;
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, SqliteConnection};

fn name(s: &str) -> StreamName {
    StreamName::new(s).expect("valid stream name")
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("temporary path is UTF-8")
}

async fn raw_connection(file: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(file)
        .connect()
        .await
        .expect("raw SQLite connection")
}

#[tokio::test]
async fn creates_the_file_and_its_directory_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("not").join("yet").join("catalog.db");
    assert!(!file.exists());

    let catalog = Catalog::open(utf8(&file)).await.expect("open");
    assert_eq!(catalog.backend(), "sqlite");
    assert!(file.is_file());

    let mut conn = raw_connection(&file).await;
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    conn.close().await.expect("close");
    catalog.close().await;
}

#[tokio::test]
async fn url_and_path_forms_name_the_same_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("catalog.db");

    let by_url = Catalog::open(&format!("sqlite://{}", utf8(&file)))
        .await
        .expect("open by URL");
    let (_, key) = by_url.add_stream(&name("demo")).await.expect("add");

    let by_path = Catalog::open(utf8(&file)).await.expect("open by path");
    assert_eq!(
        by_path
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    by_url.close().await;
    by_path.close().await;
}

#[tokio::test]
async fn paths_are_taken_literally() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("my data").join("cat%20alog #1?.db");
    let catalog = Catalog::open(utf8(&file)).await.expect("open");
    catalog.add_stream(&name("demo")).await.expect("add");
    catalog.close().await;
    assert!(file.is_file(), "{} was not created", file.display());
}

#[tokio::test]
async fn in_memory_catalogs_work_and_are_private() {
    let a = Catalog::open("sqlite::memory:").await.expect("open");
    let b = Catalog::open("sqlite::memory:").await.expect("open");
    let (_, key) = a.add_stream(&name("demo")).await.expect("add");
    // Through a clone, which shares the one connection.
    let a2 = a.clone();
    assert_eq!(
        a2.authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    assert_eq!(a2.list_streams().await.expect("list").len(), 1);
    assert!(b.list_streams().await.expect("list").is_empty());
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn the_key_is_not_in_any_database_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("catalog.db");
    let catalog = Catalog::open(utf8(&file)).await.expect("open");
    let (_, key) = catalog.add_stream(&name("demo")).await.expect("add");
    let hash = hex::encode(Sha256::digest(key.expose_secret().as_bytes()));

    // Read while the catalog is open (the row may be only in the WAL) and after it closed
    // (checkpointed into the main file).
    for moment in ["open", "closed"] {
        if moment == "closed" {
            catalog.close().await;
        }
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir.path()).expect("list directory") {
            let path = entry.expect("directory entry").path();
            all.extend(std::fs::read(&path).expect("read database file"));
        }
        let text = String::from_utf8_lossy(&all);
        assert!(
            !text.contains(&key.expose_secret()[3..]),
            "key on disk ({moment})"
        );
        assert!(text.contains(&hash), "hash not on disk ({moment})");
    }
}

#[tokio::test]
async fn a_directory_is_not_a_catalog_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let err = Catalog::open(utf8(dir.path()))
        .await
        .expect_err("a directory is refused");
    assert!(matches!(err, CatalogError::BadLocation { .. }), "{err:?}");
    assert!(err.to_string().contains("directory"), "{err}");
}

#[tokio::test]
async fn a_write_waits_for_another_processs_write_and_reads_do_not() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("catalog.db");
    let catalog = Catalog::open(utf8(&file)).await.expect("open");
    let (_, key) = catalog.add_stream(&name("demo")).await.expect("add");

    // Another process (here: another connection) holds the write lock.
    let mut other = raw_connection(&file).await;
    other
        .execute("BEGIN IMMEDIATE")
        .await
        .expect("take the write lock");
    other
        .execute("INSERT INTO streams (name, key_hash, created_at) VALUES ('other', 'x', 0)")
        .await
        .expect("write under the lock");

    // Reading is not blocked by it (WAL) ...
    assert_eq!(
        catalog
            .authenticate(key.expose_secret())
            .await
            .expect("read while another connection writes"),
        Some(name("demo"))
    );
    // ... and a write waits for it instead of failing with "database is locked".
    let writer = catalog.clone();
    let mut add = tokio::spawn(async move { writer.add_stream(&name("late")).await });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut add)
            .await
            .is_err(),
        "the write did not wait for the lock"
    );
    other.execute("COMMIT").await.expect("release the lock");
    add.await
        .expect("task")
        .expect("the write went through once the lock was free");

    let names: Vec<String> = catalog
        .list_streams()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(names, ["demo", "late", "other"]);
    other.close().await.expect("close");
    catalog.close().await;
}

#[tokio::test]
async fn a_hand_edited_bad_name_is_reported_not_trusted() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("catalog.db");
    let catalog = Catalog::open(utf8(&file)).await.expect("open");

    let mut other = raw_connection(&file).await;
    other
        .execute("INSERT INTO streams (name, key_hash, created_at) VALUES ('../etc', 'x', 0)")
        .await
        .expect("insert by hand");
    other.close().await.expect("close");

    let err = catalog.list_streams().await.expect_err("invalid row");
    assert!(
        matches!(err, CatalogError::InvalidRow { column: "name", .. }),
        "{err:?}"
    );
    catalog.close().await;
}

#[tokio::test]
async fn sqlx_url_parameters_are_checked() {
    let err = Catalog::open("sqlite://catalog.db?bogus=1")
        .await
        .expect_err("unknown parameter");
    assert!(matches!(err, CatalogError::BadLocation { .. }), "{err:?}");
    // The parser accepts what sqlx documents.
    SqliteConnectOptions::from_str("sqlite://catalog.db?mode=rwc").expect("sqlx accepts");
}

//! Fixtures that run one test body against each backend, and the helpers the bodies share.
//!
//! Each run gets a fresh, empty database: a file in a temporary directory for SQLite, a
//! scratch database with a random name for PostgreSQL, dropped afterwards whether the body
//! passed or panicked.
//!
//! Every test file that uses the backends includes this module, and each uses only some of
//! the helpers; hence the `dead_code` allowances on them.

use std::future::Future;
use std::panic;

use catalog::Catalog;
use domain::StreamName;
use sqlx::{AnyConnection, Connection};
use testkit::postgres::ScratchDatabase;

/// A fresh database for one test.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    /// What to give `Catalog::open`: a file path for SQLite (the way the CLI opens the data
    /// directory's catalog), a URL for PostgreSQL.
    pub(crate) location: String,
    /// The same database as a URL, for looking at it directly with sqlx.
    pub(crate) url: String,
}

/// A stream name that is known to be valid.
#[allow(dead_code)]
pub(crate) fn name(s: &str) -> StreamName {
    StreamName::new(s).expect("valid stream name")
}

/// Opens the catalog at the test's database (migrating it).
#[allow(dead_code)]
pub(crate) async fn open(db: &Db) -> Catalog {
    Catalog::open(&db.location).await.expect("catalog opens")
}

/// A raw connection to the test's database, to look at or change what the catalog stored
/// behind its back.
#[allow(dead_code)]
pub(crate) async fn raw(db: &Db) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&db.url)
        .await
        .expect("raw connection")
}

/// The wall clock in unix seconds.
#[allow(dead_code)]
pub(crate) fn now_unix() -> i64 {
    i64::try_from(domain::time::WallClock.unix_secs()).expect("fits")
}

/// Runs `body` against a SQLite file in a temporary directory.
pub(crate) async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("data").join("catalog.sqlite3");
    let path = path.to_str().expect("temporary path is UTF-8").to_owned();
    body(Db {
        url: format!("sqlite://{path}"),
        location: path,
    })
    .await;
}

/// Runs `body` against a scratch database on the tests' PostgreSQL server (a throwaway
/// one this test binary starts, or `SEALCAST_TEST_POSTGRES_URL`'s; see `testkit::postgres`).
///
/// Panics with the reason if there is no server: these tests are never skipped.
pub(crate) async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = ScratchDatabase::create(None)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let url = db.url().to_owned();

    // Run the body as its own task so that a panic in it comes back here as a value and the
    // scratch database is dropped before the panic continues.
    let outcome = tokio::spawn(body(Db {
        location: url.clone(),
        url,
    }))
    .await;

    // Dropped with FORCE: a catalog the body forgot to close must not keep it alive.
    let dropped = db.drop().await;
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test body did not finish: {e}"),
    }
    if let Err(e) = dropped {
        panic!("{e:#}");
    }
}

/// Declares, for each listed `async fn case(db: Db)`, one test on SQLite and one on
/// PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    $crate::support::on_sqlite(super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    $crate::support::on_postgres(super::$case).await;
                }
            )*
        }
    };
}

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
use sqlx::{AnyConnection, Connection, Executor, PgConnection};

/// Where the PostgreSQL tests connect to create their scratch databases. The database in
/// the URL must exist; the user must be allowed to create databases.
const POSTGRES_URL_VAR: &str = "SEALCAST_TEST_POSTGRES_URL";
/// The server CI provides (trust auth).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits")
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

/// Runs `body` against a scratch database on the test PostgreSQL server.
///
/// Panics with instructions if the server cannot be reached: these tests are never skipped.
pub(crate) async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url =
        std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {admin_url}: {e}\n\
             The catalog tests need a PostgreSQL server (CI provides one). Start one there \
             (trust auth, user `postgres`) or set {POSTGRES_URL_VAR} to the URL of a database \
             on a server where that user may CREATE DATABASE."
        )
    });
    let name = format!("sealcast_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create scratch database {name}: {e}"));
    let url = with_database(&admin_url, &name);

    // Run the body as its own task so that a panic in it comes back here as a value and the
    // scratch database is dropped before the panic continues.
    let outcome = tokio::spawn(body(Db {
        location: url.clone(),
        url,
    }))
    .await;

    // FORCE: a catalog the body forgot to close must not keep the database alive.
    let dropped = admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await;
    let _ = admin.close().await;
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test body did not finish: {e}"),
    }
    if let Err(e) = dropped {
        panic!("cannot drop scratch database {name}: {e}");
    }
}

/// `url` with its database (the path) replaced by `database`, query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("database URL has a scheme");
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
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

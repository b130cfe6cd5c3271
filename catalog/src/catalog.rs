//! [`Catalog`]: the handle the ingest, the CLI and the admin API share.
//!
//! # Why an enum of concrete pools and not `AnyPool`
//!
//! The handle holds either a `SqlitePool` or a `PgPool`, and each query is written once and
//! dispatched to both by [`with_pool!`]. `AnyPool` would be less code today, but:
//!
//! - SQLite gets its settings (create if missing, WAL, busy timeout) and a plain file path
//!   through typed [`SqliteConnectOptions`](sqlx::sqlite::SqliteConnectOptions); `Any`
//!   reconnects from a URL string, which cannot carry a busy timeout or the journal mode and
//!   forces every path through percent-encoding.
//! - Concrete drivers decode column types natively instead of through `Any`'s reduced type
//!   set, and there is no global driver registry to install first.
//!
//! The SQL text is the same for both backends: `$1`-style parameters (SQLite accepts them
//! too), `ON CONFLICT`, nothing dialect-specific.
//!
//! # Why the statements are checked by preparing them, not by `query!`
//!
//! sqlx's compile-time checked macros check a query against *one* kind of database per
//! crate (the one named by `DATABASE_URL`, or its offline `.sqlx` data), and every
//! statement here runs on two. Checking against one would let the other drift unseen, and
//! would tie the build to a database or to generated files kept in step by hand. Instead,
//! every statement is a constant of the `sql` module, declared through a macro that also
//! lists it in `sql::ALL`, and [`Catalog::check_statements`] asks the database to prepare
//! each of them. The test suite calls it on a freshly migrated SQLite file and PostgreSQL
//! database, so a typo, a renamed column or a migration that drifted from the queries
//! fails CI on both backends, and the build itself needs no database at all.
//!
//! # Where the queries are
//!
//! This file holds the handle, opening and migrating, and the stream queries. The other
//! tables' methods are `impl Catalog` blocks beside their record types (`session`,
//! `recording`, `node`, `api_key`, `webhook`), all built from the constants of `sql`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use domain::time::WallClock;
use domain::StreamName;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::key::{KeyHash, StreamKey, StreamKeyKind};
use crate::location::{self, Location};
use crate::sql;
use crate::{CatalogError, StreamRecord};

/// The schema, embedded from `catalog/migrations/` at compile time; the same files run on
/// both backends.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// SQLite allows one writer at a time anyway; a few connections let reads (publish
/// authorisation) proceed while a write is under way.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Enough for a few ingest nodes' publish checks and the admin API at once.
const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long an operation waits for a free pooled connection (or for the server to answer a
/// new connection) before failing with [`CatalogError::Database`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a role that may not migrate (the broadcast nodes' on PostgreSQL) waits at
/// start for one that may to bring the schema up to date; then it fails, and its
/// supervisor (compose's restart policy, Kubernetes) starts it again.
const SCHEMA_WAIT: Duration = Duration::from_secs(60);
/// How often it looks meanwhile.
const SCHEMA_POLL: Duration = Duration::from_millis(250);
/// PostgreSQL's `insufficient_privilege`.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// Runs `$body` with `$p` bound to whichever concrete pool the catalog holds. The body is
/// expanded once per backend, so it may use backend-specific result types as long as both
/// arms produce the same type.
macro_rules! with_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::catalog::Pool::Sqlite($p) => $body,
            $crate::catalog::Pool::Postgres($p) => $body,
        }
    };
}
/// For the `impl Catalog` blocks in the other modules.
pub(crate) use with_pool;

/// The pool behind a [`Catalog`]; see the module docs for why this is not `AnyPool`.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The catalog of streams and their keys. Cheap to clone: clones share one connection pool.
///
/// Several handles, in one process or several, may use the same database at once: the
/// server holds one while `sealcast streams` opens another, and each sees the other's
/// writes as soon as they commit.
#[derive(Clone)]
pub struct Catalog {
    /// Every operation is a single statement on a pooled connection; no state is cached
    /// here, so nothing can go stale when another process writes.
    pub(crate) pool: Pool,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Checks that `location` names a database [`open`](Self::open) could connect to
    /// (a `postgres://` or `sqlite:` URL, or a file path), without connecting.
    pub fn check_location(location: &str) -> Result<(), CatalogError> {
        Location::parse(location).map(|_| ())
    }

    /// Opens (creating if needed) the catalog at `location` and brings its schema up to date.
    ///
    /// `location` is a database URL (`sqlite://...`, `sqlite::memory:`, `postgres://...`,
    /// `postgresql://...`) or a filesystem path of a SQLite file. A SQLite file and its
    /// directory are created if missing.
    pub async fn open(location: &str) -> Result<Self, CatalogError> {
        let shown = location::redact(location);
        let connect_error = |source| CatalogError::Connect {
            location: shown.clone(),
            source,
        };
        // Each arm first makes one plain connection: it reports a down server or an
        // unwritable file at once, where a pool would retry a refused connection until its
        // acquire timeout and then say only "timed out".
        let pool = match Location::parse(location)? {
            Location::Sqlite { options, file } => {
                if let Some(file) = &file {
                    prepare_sqlite_file(&shown, file).await?;
                }
                let probe = options.connect().await.map_err(connect_error)?;
                let pool_options = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
                let pool_options = match file {
                    Some(_) => pool_options.max_connections(SQLITE_MAX_CONNECTIONS),
                    // An in-memory database lives as long as a connection to it: keep exactly
                    // one, forever (the pool connects before the probe closes). One, because
                    // connections sharing an in-memory database use table locks that the busy
                    // timeout does not cover.
                    None => pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None),
                };
                let pool = pool_options
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                close_quietly(probe).await;
                Pool::Sqlite(pool)
            }
            Location::Postgres(options) => {
                close_quietly(options.connect().await.map_err(connect_error)?).await;
                let pool = PgPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Pool::Postgres(pool)
            }
        };
        let catalog = Self { pool };
        if let Err(e) = catalog.migrate().await {
            catalog.close().await;
            return Err(e);
        }
        tracing::info!(location = %shown, backend = catalog.backend(), "catalog open");
        Ok(catalog)
    }

    /// Brings the schema up to date, or waits for another role to.
    ///
    /// A schema that already lists every migration of this version (with the same
    /// checksums) is left alone: the migrator is not run, since its first statement
    /// (`CREATE TABLE IF NOT EXISTS _sqlx_migrations`) needs CREATE on the schema, table or
    /// no table, which the broadcast nodes' PostgreSQL role (`sealcast_edge`) lacks. A role
    /// that may not migrate a schema that is behind waits, up to [`SCHEMA_WAIT`], for one
    /// that may (an ingest, `sealcast streams`) to bring it up to date and grant it its
    /// privileges: compose and Kubernetes start them side by side, in no set order.
    ///
    /// On PostgreSQL, a role that owns the tables then gives `sealcast_edge`, if it exists,
    /// exactly the privileges the broadcast nodes need (`sql::EDGE_GRANTS`).
    async fn migrate(&self) -> Result<(), CatalogError> {
        if !self.schema_is_current().await {
            match self.run_migrator().await {
                Ok(()) => {}
                Err(e) if permission_denied(&e) => self.wait_for_schema(e).await?,
                Err(e) => return Err(CatalogError::Migrate(e)),
            }
        }
        if let Pool::Postgres(pool) = &self.pool {
            grant_edge_privileges(pool)
                .await
                .map_err(CatalogError::Privileges)?;
        }
        Ok(())
    }

    /// Applies the migrations that are not applied yet.
    async fn run_migrator(&self) -> Result<(), sqlx::migrate::MigrateError> {
        // On a connection of its own, closed if the migrator fails: it takes a session
        // advisory lock first and does not release it when a later step fails (a role
        // refused CREATE on the schema), and a pooled connection would keep holding it,
        // so that the role that may migrate would wait on it for ever.
        let run = || async {
            with_pool!(&self.pool, |p| {
                let mut conn = p.acquire().await?;
                let result = MIGRATOR.run_direct(&mut *conn).await;
                if result.is_err() {
                    conn.close_on_drop();
                }
                result
            })
        };
        match run().await {
            Ok(()) => Ok(()),
            // PostgreSQL migrations hold an advisory lock, SQLite ones cannot: if two
            // processes open a fresh file at the same moment, both try to apply the same
            // migration and the loser's transaction fails ("table already exists") and rolls
            // back. Running again sees the winner's work and has nothing left to do; a real
            // error simply fails again.
            Err(first) if matches!(self.pool, Pool::Sqlite(_)) => {
                tracing::debug!(error = %first, "catalog migration failed; retrying once");
                run().await
            }
            Err(e) => Err(e),
        }
    }

    /// Whether every migration of this version is applied, with the checksum it has here,
    /// and nothing else is (a failed one, or one of a newer version: the migrator's to
    /// report). A table that is missing or that this role may not read is not current.
    async fn schema_is_current(&self) -> bool {
        let applied: Result<Vec<(i64, Vec<u8>, bool)>, _> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::MIGRATIONS_APPLIED)
                .fetch_all(p)
                .await);
        let Ok(applied) = applied else {
            return false;
        };
        let known: Vec<(i64, &[u8])> = MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.as_ref()))
            .collect();
        applied.len() == known.len()
            && applied.iter().all(|(version, checksum, success)| {
                *success && known.contains(&(*version, checksum.as_slice()))
            })
    }

    /// Polls until another role has brought the schema up to date and let this one read
    /// it; fails with [`CatalogError::SchemaNotCurrent`] after [`SCHEMA_WAIT`].
    async fn wait_for_schema(
        &self,
        refused: sqlx::migrate::MigrateError,
    ) -> Result<(), CatalogError> {
        tracing::info!(
            "this database role may not migrate the catalog; waiting for one that may \
             (an ingest node, `sealcast streams`)"
        );
        let deadline = tokio::time::Instant::now() + SCHEMA_WAIT;
        loop {
            if self.schema_is_current().await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CatalogError::SchemaNotCurrent {
                    waited: SCHEMA_WAIT,
                    source: refused,
                });
            }
            tokio::time::sleep(SCHEMA_POLL).await;
        }
    }

    /// Which backend this catalog uses: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Adds a public stream and returns it with its new key, which is shown this once and
    /// stored only as a hash. Fails with [`CatalogError::AlreadyExists`] if the name is
    /// taken (the existing key stays valid).
    pub async fn add_stream(
        &self,
        name: &StreamName,
    ) -> Result<(StreamRecord, StreamKey), CatalogError> {
        self.add_stream_with_privacy(name, false).await
    }

    /// [`add_stream`](Self::add_stream), private (served only with a playback token) when
    /// `private` is true.
    pub async fn add_stream_with_privacy(
        &self,
        name: &StreamName,
        private: bool,
    ) -> Result<(StreamRecord, StreamKey), CatalogError> {
        self.add_stream_with(name, private, true).await
    }

    /// [`add_stream_with_privacy`](Self::add_stream_with_privacy), recorded by the nodes
    /// that record only when `record` is true.
    pub async fn add_stream_with(
        &self,
        name: &StreamName,
        private: bool,
        record: bool,
    ) -> Result<(StreamRecord, StreamKey), CatalogError> {
        let key = StreamKey::generate().map_err(CatalogError::Random)?;
        let created_at = now_unix();
        let inserted = with_pool!(&self.pool, |p| sqlx::query(sql::STREAM_INSERT)
            .bind(name.as_str())
            .bind(key.hash().as_str())
            .bind(created_at)
            .bind(i64::from(private))
            .bind(i64::from(record))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Err(CatalogError::AlreadyExists { name: name.clone() });
        }
        tracing::info!(stream = %name, private, record, "stream added to the catalog");
        let record = StreamRecord {
            name: name.clone(),
            created_at,
            last_live_at: None,
            private,
            record,
        };
        Ok((record, key))
    }

    /// Every stream, ordered by name (byte order, the same on both backends).
    pub async fn list_streams(&self) -> Result<Vec<StreamRecord>, CatalogError> {
        // No ORDER BY: PostgreSQL would sort by the database's collation (often
        // locale-aware, ignoring case and punctuation), SQLite by bytes. Sorting here by
        // `StreamName`'s `Ord` gives one order everywhere; the list is small.
        let rows: Vec<StreamRow> = with_pool!(&self.pool, |p| sqlx::query_as(sql::STREAM_LIST)
            .fetch_all(p)
            .await)?;
        let mut records = rows
            .into_iter()
            .map(StreamRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// The stream with this name, if there is one.
    pub async fn get_stream(
        &self,
        name: &StreamName,
    ) -> Result<Option<StreamRecord>, CatalogError> {
        let row: Option<StreamRow> = with_pool!(&self.pool, |p| sqlx::query_as(sql::STREAM_GET)
            .bind(name.as_str())
            .fetch_optional(p)
            .await)?;
        row.map(StreamRow::into_record).transpose()
    }

    /// Gives the stream a new key and returns it. The old key stops working as soon as this
    /// returns (a publish already running is not cut off; that is the ingest's call). Fails
    /// with [`CatalogError::NotFound`] if there is no such stream.
    pub async fn rotate_key(&self, name: &StreamName) -> Result<StreamKey, CatalogError> {
        let key = StreamKey::generate().map_err(CatalogError::Random)?;
        let updated = with_pool!(&self.pool, |p| sqlx::query(sql::STREAM_SET_KEY)
            .bind(key.hash().as_str())
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(CatalogError::NotFound { name: name.clone() });
        }
        tracing::info!(stream = %name, "stream key rotated");
        Ok(key)
    }

    /// Removes the stream; its key stops working at once. Fails with
    /// [`CatalogError::NotFound`] if there is no such stream.
    ///
    /// Its publish sessions and recordings stay: they are history of what was served, and a
    /// recording is still watchable until it is removed by hand or by retention. A stream
    /// added again under the same name lists the old sessions with its new ones.
    pub async fn remove_stream(&self, name: &StreamName) -> Result<(), CatalogError> {
        let deleted = with_pool!(&self.pool, |p| sqlx::query(sql::STREAM_DELETE)
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(CatalogError::NotFound { name: name.clone() });
        }
        tracing::info!(stream = %name, "stream removed from the catalog");
        Ok(())
    }

    /// The stream whose key is `presented_key`, or `None` if no stream has that key.
    ///
    /// The key is hashed and looked up by hash, so the database never sees it; the stored
    /// hash is then compared again in constant time. A lookup's timing can reveal at most
    /// something about a hash, which is of no use without its 256-bit preimage. Neither
    /// the key nor its hash is logged.
    pub async fn authenticate(
        &self,
        presented_key: &str,
    ) -> Result<Option<StreamName>, CatalogError> {
        let Some(hash) = KeyHash::of_presented::<StreamKeyKind>(presented_key) else {
            tracing::debug!("presented stream key is malformed");
            return Ok(None);
        };
        let row: Option<(String, String)> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::STREAM_BY_KEY_HASH)
                .bind(hash.as_str())
                .fetch_optional(p)
                .await)?;
        match row {
            Some((name, stored)) if hash.matches_stored(&stored) => {
                let name = parse_name(name)?;
                tracing::debug!(stream = %name, "stream key accepted");
                Ok(Some(name))
            }
            _ => {
                tracing::debug!("presented stream key matches no stream");
                Ok(None)
            }
        }
    }

    /// Records that the stream went live at `at_unix` (unix seconds). `last_live_at` only
    /// moves forward, so a node with a lagging clock cannot make it older. Fails with
    /// [`CatalogError::NotFound`] if there is no such stream (say, it was removed while
    /// live).
    pub async fn mark_live(&self, name: &StreamName, at_unix: i64) -> Result<(), CatalogError> {
        let updated = with_pool!(&self.pool, |p| sqlx::query(sql::STREAM_MARK_LIVE)
            .bind(at_unix)
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(CatalogError::NotFound { name: name.clone() });
        }
        Ok(())
    }

    /// Asks the database to prepare every SQL statement of the catalog, without running
    /// any, and fails with [`CatalogError::Statement`] naming the first one that does not
    /// prepare.
    ///
    /// The test suite runs this on both backends after migrating (see the module docs for
    /// why this replaces compile-time checked queries). It is cheap, one round trip per
    /// statement, so a server may also run it at start-up to find a schema that drifted
    /// from this version's queries (say, a table edited by hand) before the first request
    /// does.
    pub async fn check_statements(&self) -> Result<(), CatalogError> {
        for &(name, statement) in sql::ALL {
            with_pool!(&self.pool, |p| p.prepare(statement).await.map(drop))
                .map_err(|source| CatalogError::Statement { name, source })?;
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned. Every clone of this
    /// handle is closed with it; operations after this fail with [`CatalogError::Database`].
    pub async fn close(&self) {
        with_pool!(&self.pool, |p| p.close().await);
    }
}

/// A `streams` row as read, before its name is validated.
#[derive(sqlx::FromRow)]
struct StreamRow {
    name: String,
    created_at: i64,
    last_live_at: Option<i64>,
    /// 0 or 1 (migration 0004).
    private: i64,
    /// 1 or 0 (migration 0005).
    record: i64,
}

impl StreamRow {
    fn into_record(self) -> Result<StreamRecord, CatalogError> {
        Ok(StreamRecord {
            name: parse_name(self.name)?,
            created_at: self.created_at,
            last_live_at: self.last_live_at,
            private: self.private != 0,
            record: self.record != 0,
        })
    }
}

/// Validates a name read from the database (which someone may have edited by hand).
pub(crate) fn parse_name(name: String) -> Result<StreamName, CatalogError> {
    StreamName::new(name).map_err(|e| CatalogError::InvalidRow {
        column: "name",
        reason: e.to_string(),
    })
}

/// Whether the migrator was refused for want of a privilege (PostgreSQL's 42501: a role
/// without CREATE on the schema), rather than failing on the schema.
fn permission_denied(error: &sqlx::migrate::MigrateError) -> bool {
    use sqlx::migrate::MigrateError;
    let (MigrateError::Execute(sqlx::Error::Database(db))
    | MigrateError::ExecuteMigration(sqlx::Error::Database(db), _)) = error
    else {
        return false;
    };
    db.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE)
}

/// Gives the broadcast nodes' role its privileges (`sql::EDGE_GRANTS`) when it exists and
/// this connection's role owns the tables; otherwise does nothing.
async fn grant_edge_privileges(pool: &PgPool) -> Result<(), sqlx::Error> {
    let (applies,): (bool,) = sqlx::query_as(sql::EDGE_GRANTS_APPLY)
        .fetch_one(pool)
        .await?;
    if applies {
        // Several statements: the simple query protocol, one implicit transaction.
        sqlx::raw_sql(sql::EDGE_GRANTS).execute(pool).await?;
        tracing::debug!("granted the broadcast nodes' role its catalog privileges");
    }
    Ok(())
}

/// Closes the probe connection of [`Catalog::open`]; failing to say goodbye politely changes
/// nothing for the caller.
async fn close_quietly(conn: impl Connection) {
    if let Err(error) = conn.close().await {
        tracing::debug!(%error, "closing the catalog's setup connection failed");
    }
}

/// Checks that `file` can be a SQLite file and creates its directory.
async fn prepare_sqlite_file(shown: &str, file: &Path) -> Result<(), CatalogError> {
    if tokio::fs::metadata(file)
        .await
        .is_ok_and(|meta| meta.is_dir())
    {
        return Err(CatalogError::BadLocation {
            location: shown.to_owned(),
            reason: "is a directory; give the path of a SQLite file (e.g. DIR/catalog.db)".into(),
        });
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| CatalogError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

/// The wall clock in unix seconds, as the catalog's columns hold them (`BIGINT`). The
/// catalog is at the edge of the system, so it may read the clock.
pub(crate) fn now_unix() -> i64 {
    i64::try_from(WallClock.unix_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// Callers spawn tasks that use the catalog; every future it returns must be `Send`.
    /// (sqlx's migrator is a known source of "not general enough" errors here.)
    #[test]
    fn futures_are_send() {
        let name = StreamName::new("demo").expect("valid");
        assert_send(Catalog::open("sqlite::memory:"));
        let catalog: Option<Catalog> = None;
        if let Some(c) = catalog {
            assert_send(c.add_stream(&name));
            assert_send(c.list_streams());
            assert_send(c.get_stream(&name));
            assert_send(c.rotate_key(&name));
            assert_send(c.remove_stream(&name));
            assert_send(c.authenticate("sk_"));
            assert_send(c.mark_live(&name, 0));
            assert_send(c.add_stream_with_privacy(&name, true));
            assert_send(c.set_private(&name, true));
            assert_send(c.is_private(&name));
            assert_send(c.add_stream_with(&name, true, false));
            assert_send(c.set_record(&name, false));
            assert_send(c.is_recorded(&name));
            assert_send(c.check_statements());
            let session = crate::SessionRecord {
                stream: name.clone(),
                session: String::new(),
                ingest_node: String::new(),
                started_at: 0,
                ended_at: None,
                renditions: Vec::new(),
            };
            assert_send(c.start_session(&session));
            assert_send(c.end_session(&name, "", 0));
            assert_send(c.set_session_renditions(&name, "", &[]));
            assert_send(c.list_sessions(Some(&name), 1));
            assert_send(c.request_end(&name));
            assert_send(c.end_requests(""));
            let recording = crate::RecordingRecord {
                stream: name.clone(),
                id: String::new(),
                started_at: 0,
                ended_at: 0,
                duration_secs: 0.0,
                renditions: Vec::new(),
            };
            assert_send(c.add_recording(&recording));
            assert_send(c.list_recordings());
            assert_send(c.get_recording(&name, ""));
            assert_send(c.remove_recording(&name, ""));
            assert_send(c.recordings_ended_before(0));
            assert_send(c.node_seen("", "", None, "", 0));
            assert_send(c.list_nodes());
            assert_send(c.add_api_key("", crate::Scope::Read));
            assert_send(c.authenticate_api_key(""));
            assert_send(c.list_api_keys());
            assert_send(c.remove_api_key(""));
            assert_send(c.has_api_keys());
            assert_send(c.add_webhook("", &[]));
            assert_send(c.list_webhooks());
            assert_send(c.webhooks_for(crate::WebhookEvent::Publish));
            assert_send(c.remove_webhook(0));
            assert_send(c.close());
        }
    }
}

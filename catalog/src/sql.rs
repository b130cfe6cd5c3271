//! Every SQL statement of the catalog, in one place and in one list.
//!
//! Each statement is declared through [`statements!`], which makes it a constant *and* puts
//! it in [`ALL`]; there is no other way to declare one, so none can be missing from the
//! list. [`Catalog::check_statements`](crate::Catalog::check_statements) prepares every
//! entry of [`ALL`] against a migrated database, and the test suite runs it on SQLite and
//! on PostgreSQL, so a typo or a schema drift fails on both backends (see the `catalog`
//! module docs for why this and not sqlx's `query!` macros). A unit test below checks that
//! no SQL is written anywhere else in the crate.
//!
//! The text runs unchanged on both backends: `$1`-style parameters (SQLite reads `$N` as
//! the N-th parameter, wherever it stands and however often), `ON CONFLICT`, `RETURNING`
//! and `excluded.` (SQLite 3.35 and later; sqlx bundles a newer one), plain types only.
//!
//! Few statements sort: `ORDER BY` on a TEXT column follows PostgreSQL's collation (often
//! locale-aware) but SQLite's byte order, so lists are sorted in Rust instead. Sorting by
//! an integer column is the same everywhere and is used where a `LIMIT` needs it.

/// Declares each `NAME = "SQL";` as a `pub(crate) const` and lists them all in the list
/// named first ([`ALL`], [`POSTGRES_ONLY`]).
macro_rules! statements {
    ($(#[$list_doc:meta])* $list:ident; $( $(#[$doc:meta])* $name:ident = $sql:expr; )*) => {
        $( $(#[$doc])* pub(crate) const $name: &str = $sql; )*

        $(#[$list_doc])*
        pub(crate) const $list: &[(&str, &str)] = &[$( (stringify!($name), $name) ),*];
    };
}

statements! {
    /// Every statement of both backends, with its name, for
    /// [`Catalog::check_statements`](crate::Catalog::check_statements).
    ALL;

    // ---- the migrator's own table ----

    /// The migrations applied so far, to find a schema that is current without running the
    /// migrator (whose first statement, `CREATE TABLE IF NOT EXISTS _sqlx_migrations`, a
    /// PostgreSQL role without CREATE on the schema may not run, table or no table).
    MIGRATIONS_APPLIED = "SELECT version, checksum, success FROM _sqlx_migrations";

    // ---- streams (migration 0001) ----

    /// Adds a stream; a taken name inserts nothing (the caller reports `AlreadyExists`).
    STREAM_INSERT = "INSERT INTO streams \
                         (name, key_hash, created_at, last_live_at, private, record) \
                     VALUES ($1, $2, $3, NULL, $4, $5) ON CONFLICT (name) DO NOTHING";
    /// Every stream, unsorted (sorted in Rust).
    STREAM_LIST = "SELECT name, created_at, last_live_at, private, record FROM streams";
    /// One stream by name.
    STREAM_GET = "SELECT name, created_at, last_live_at, private, record FROM streams \
                  WHERE name = $1";
    /// Replaces a stream's key hash (rotation).
    STREAM_SET_KEY = "UPDATE streams SET key_hash = $1 WHERE name = $2";
    /// Removes a stream.
    STREAM_DELETE = "DELETE FROM streams WHERE name = $1";
    /// The stream whose key has this hash.
    STREAM_BY_KEY_HASH = "SELECT name, key_hash FROM streams WHERE key_hash = $1";
    /// Moves `last_live_at` forward, never back.
    STREAM_MARK_LIVE = "UPDATE streams SET last_live_at = \
                            CASE WHEN last_live_at IS NULL OR last_live_at < $1 \
                                 THEN $1 ELSE last_live_at END \
                        WHERE name = $2";

    // ---- privacy (migration 0004) ----

    /// Makes a stream private (`$1` = 1) or public (0).
    STREAM_SET_PRIVATE = "UPDATE streams SET private = $1 WHERE name = $2";
    /// Whether one stream is private.
    STREAM_PRIVATE = "SELECT private FROM streams WHERE name = $1";

    // ---- recording (migration 0005) ----

    /// Switches a stream's recording on (`$1` = 1) or off (0).
    STREAM_SET_RECORD = "UPDATE streams SET record = $1 WHERE name = $2";
    /// Whether one stream is recorded.
    STREAM_RECORD = "SELECT record FROM streams WHERE name = $1";

    // ---- numbering (migration 0003) ----

    /// A new publish session of a stream: counts it, raises the discontinuity sequence when
    /// it follows another, and returns where numbering stands (SET reads the old row).
    STREAM_BEGIN_NUMBERING = "UPDATE streams SET \
                                  discontinuity_sequence = discontinuity_sequence + \
                                      CASE WHEN sessions > 0 THEN 1 ELSE 0 END, \
                                  sessions = sessions + 1 \
                              WHERE name = $1 \
                              RETURNING next_sequence, discontinuity_sequence, sessions";
    /// Raises the next sequence number, never lowers it.
    STREAM_ADVANCE_SEQUENCE = "UPDATE streams SET next_sequence = $1 \
                               WHERE name = $2 AND next_sequence < $1";

    // ---- sessions (migration 0002) ----

    /// Records a session's start; the same session recorded again inserts nothing, so of
    /// several nodes recording one event exactly one sees a row inserted.
    SESSION_INSERT = "INSERT INTO sessions \
                          (stream, session, ingest_node, started_at, ended_at, renditions) \
                      VALUES ($1, $2, $3, $4, $5, $6) \
                      ON CONFLICT (stream, session) DO NOTHING";
    /// Records a session's end, only if it has none yet: exactly one caller changes a row.
    SESSION_END = "UPDATE sessions SET ended_at = $1 \
                   WHERE stream = $2 AND session = $3 AND ended_at IS NULL";
    /// Replaces a session's rendition list.
    SESSION_SET_RENDITIONS = "UPDATE sessions SET renditions = $1 \
                              WHERE stream = $2 AND session = $3";
    /// The `$2` newest sessions (of stream `$1`, or of all when `$1` is NULL), plus any that
    /// started in the same second as the oldest of them, so that the caller's sort and cut
    /// decide ties the same way on both backends. The `CAST` gives PostgreSQL a type for
    /// `$1` where it first meets it (`$1 IS NULL` alone says nothing about its type).
    SESSION_LIST_NEWEST = "SELECT stream, session, ingest_node, started_at, ended_at, renditions \
                           FROM sessions \
                           WHERE (CAST($1 AS TEXT) IS NULL OR stream = $1) \
                             AND started_at >= (SELECT MIN(started_at) FROM \
                                   (SELECT started_at FROM sessions \
                                    WHERE CAST($1 AS TEXT) IS NULL OR stream = $1 \
                                    ORDER BY started_at DESC LIMIT $2) AS newest)";

    /// Asks for every live session of a stream to be ended (normally one).
    SESSION_REQUEST_END = "UPDATE sessions SET end_requested_at = $1 \
                           WHERE stream = $2 AND ended_at IS NULL";
    /// Asks for every other live session of a stream to be ended (a publisher that moved
    /// to another ingest while its old connection still publishes).
    SESSION_REQUEST_END_OTHERS = "UPDATE sessions SET end_requested_at = $1 \
                                  WHERE stream = $2 AND session <> $3 AND ended_at IS NULL \
                                    AND end_requested_at IS NULL";
    /// The live sessions on one ingest node that an operator asked to end.
    SESSION_END_REQUESTS = "SELECT stream, session FROM sessions \
                            WHERE ingest_node = $1 AND ended_at IS NULL \
                              AND end_requested_at IS NOT NULL";

    // ---- recordings (migration 0002) ----

    /// Records a finished recording; one already recorded inserts nothing.
    RECORDING_INSERT = "INSERT INTO recordings \
                            (stream, id, started_at, ended_at, duration_secs, renditions) \
                        VALUES ($1, $2, $3, $4, $5, $6) \
                        ON CONFLICT (stream, id) DO NOTHING";
    /// Every recording, unsorted (sorted in Rust).
    RECORDING_LIST = "SELECT stream, id, started_at, ended_at, duration_secs, renditions \
                      FROM recordings";
    /// One recording.
    RECORDING_GET = "SELECT stream, id, started_at, ended_at, duration_secs, renditions \
                     FROM recordings WHERE stream = $1 AND id = $2";
    /// Removes one recording's row (its files go at the next retention sweep).
    RECORDING_DELETE = "DELETE FROM recordings WHERE stream = $1 AND id = $2";
    /// Recordings that ended before a cutoff, for retention sweeps.
    RECORDING_ENDED_BEFORE = "SELECT stream, id, started_at, ended_at, duration_secs, renditions \
                              FROM recordings WHERE ended_at < $1";

    // ---- nodes (migration 0002) ----

    /// Records a sighting of a node. A new node gets `first_seen = last_seen = $4`; a known
    /// one keeps its `first_seen` and takes the rest from the sighting, unless the sighting
    /// is older than the last one recorded (reports handled out of order by different
    /// nodes), which changes nothing.
    NODE_UPSERT = "INSERT INTO nodes (id, role, url, first_seen, last_seen, state) \
                   VALUES ($1, $2, $3, $4, $4, $5) \
                   ON CONFLICT (id) DO UPDATE SET \
                       role = excluded.role, url = excluded.url, \
                       last_seen = excluded.last_seen, state = excluded.state \
                   WHERE nodes.last_seen <= excluded.last_seen";
    /// Every node, unsorted (sorted in Rust).
    NODE_LIST = "SELECT id, role, url, first_seen, last_seen, state FROM nodes";

    // ---- API keys (migration 0002) ----

    /// Adds an API key; a taken name inserts nothing (the caller reports `ApiKeyExists`).
    API_KEY_INSERT = "INSERT INTO api_keys (name, key_hash, scope, created_at, last_used_at) \
                      VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (name) DO NOTHING";
    /// The API key with this hash.
    API_KEY_BY_HASH = "SELECT key_hash, name, scope, created_at, last_used_at \
                       FROM api_keys WHERE key_hash = $1";
    /// Sets `last_used_at` to `$1` if it is unset or older than `$3`, so that a burst of
    /// requests writes at most once.
    API_KEY_TOUCH = "UPDATE api_keys SET last_used_at = $1 \
                     WHERE name = $2 AND (last_used_at IS NULL OR last_used_at < $3)";
    /// Every API key, without hashes, unsorted (sorted in Rust).
    API_KEY_LIST = "SELECT name, scope, created_at, last_used_at FROM api_keys";
    /// Removes an API key.
    API_KEY_DELETE = "DELETE FROM api_keys WHERE name = $1";
    /// Any one API key's name: whether there is at least one key, without counting them.
    API_KEY_ANY = "SELECT name FROM api_keys LIMIT 1";

    // ---- webhooks (migration 0002) ----

    /// Adds a webhook with the next id (one more than the highest), returning the id. See
    /// `Catalog::add_webhook` for why the id is assigned this way and what happens when two
    /// adds race.
    WEBHOOK_INSERT = "INSERT INTO webhooks (id, url, events, created_at) \
                      VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM webhooks), $1, $2, $3) \
                      RETURNING id";
    /// Every webhook, unsorted (sorted in Rust).
    WEBHOOK_LIST = "SELECT id, url, events, created_at FROM webhooks";
    /// Removes a webhook.
    WEBHOOK_DELETE = "DELETE FROM webhooks WHERE id = $1";
}

/// A stream's yes/no settings, each read and written by its own statement above.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StreamFlag {
    /// Served only with a playback token.
    Private,
    /// Recorded by the edges.
    Record,
}

impl StreamFlag {
    /// The statement that reads the flag (`$1` the name, one integer column).
    pub(crate) fn read(self) -> &'static str {
        match self {
            Self::Private => STREAM_PRIVATE,
            Self::Record => STREAM_RECORD,
        }
    }

    /// The statement that sets the flag (`$1` the value as 0 or 1, `$2` the name).
    pub(crate) fn write(self) -> &'static str {
        match self {
            Self::Private => STREAM_SET_PRIVATE,
            Self::Record => STREAM_SET_RECORD,
        }
    }
}

statements! {
    /// PostgreSQL's roles and privileges, which SQLite has not: never prepared by
    /// [`Catalog::check_statements`](crate::Catalog::check_statements) (`EDGE_GRANTS` is
    /// several statements), run instead by every open as the owner on PostgreSQL, and so
    /// by the PostgreSQL tests (`catalog/tests/catalog/edge_role.rs`). Listed for the
    /// declaration check below only.
    #[cfg_attr(not(test), allow(dead_code))]
    POSTGRES_ONLY;

    // ---- the broadcast nodes' role (docs/deployment.md, "The catalog's roles") ----

    /// Whether this connection should give `sealcast_edge` its privileges: the role exists
    /// and this one owns the tables (or is a superuser), so may grant on them.
    EDGE_GRANTS_APPLY = "SELECT COALESCE( \
                             EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sealcast_edge') \
                             AND pg_has_role((SELECT tableowner FROM pg_tables \
                                              WHERE schemaname = current_schema() \
                                                AND tablename = 'streams'), 'USAGE'), \
                             FALSE)";
    /// What a broadcast node's catalog work needs, and nothing else: every statement the
    /// broadcast role and the admin API it serves run (`sealcast/src/roles/broadcast.rs`,
    /// `admin.rs`, `api/`), table by table and column by column. Everything is revoked
    /// first, so a privilege a later version drops goes; in one transaction (a
    /// multi-statement simple query), so an edge never sees half of it, serialised by an
    /// advisory lock, since concurrent GRANTs on one table fail ("tuple concurrently
    /// updated") when several owners open at once.
    ///
    /// Refused to the role: any DDL (it owns nothing and has no CREATE on the schema),
    /// the migrations table but reading it, the streams' numbering (`next_sequence`,
    /// `discontinuity_sequence`, `sessions`) and `last_live_at`, starting, ending or
    /// renaming a publish session, adding or removing API keys, changing a recording or a
    /// webhook, forgetting a node, TRUNCATE, REFERENCES and TRIGGER everywhere.
    EDGE_GRANTS = "SELECT pg_advisory_xact_lock(8315159405161182068); \
                   REVOKE ALL ON TABLE _sqlx_migrations, streams, sessions, recordings, \
                                       nodes, api_keys, webhooks FROM sealcast_edge; \
                   GRANT SELECT ON TABLE _sqlx_migrations, streams, sessions, recordings, \
                                         nodes, api_keys, webhooks TO sealcast_edge; \
                   GRANT INSERT (name, key_hash, created_at, last_live_at, private, record), \
                         UPDATE (key_hash, private, record), DELETE \
                       ON TABLE streams TO sealcast_edge; \
                   GRANT UPDATE (end_requested_at) ON TABLE sessions TO sealcast_edge; \
                   GRANT INSERT, DELETE ON TABLE recordings TO sealcast_edge; \
                   GRANT INSERT, UPDATE (role, url, last_seen, state) \
                       ON TABLE nodes TO sealcast_edge; \
                   GRANT UPDATE (last_used_at) ON TABLE api_keys TO sealcast_edge; \
                   GRANT INSERT, DELETE ON TABLE webhooks TO sealcast_edge";
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::ALL;

    #[test]
    fn names_are_unique_and_statements_distinct() {
        let names: HashSet<_> = ALL.iter().map(|(name, _)| name).collect();
        assert_eq!(names.len(), ALL.len());
        let texts: HashSet<_> = ALL.iter().map(|(_, sql)| sql).collect();
        assert_eq!(texts.len(), ALL.len());
    }

    /// The words a statement of this crate starts with. A string literal in another module
    /// that starts with one of them is SQL written outside this module, where
    /// `check_statements` would not see it.
    const SQL_STARTS: [&str; 5] = [
        "\"SELECT ",
        "\"INSERT ",
        "\"UPDATE ",
        "\"DELETE ",
        "\"WITH ",
    ];

    #[test]
    fn no_sql_outside_this_module() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for entry in std::fs::read_dir(&src).expect("src/ is readable") {
            let path = entry.expect("directory entry").path();
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("sql.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source is readable");
            for start in SQL_STARTS {
                assert!(
                    !text.contains(start),
                    "{} holds SQL ({start}...); declare it in sql.rs",
                    path.display()
                );
            }
            // Every query is built from a constant of this module, never from a literal or
            // a `format!`.
            for (at, _) in text.match_indices("sqlx::query") {
                let call = &text[at..];
                let args = &call[call.find('(').expect("a call")..];
                assert!(
                    args.starts_with("(sql::"),
                    "{}: a query not built from a `sql::` constant: {}",
                    path.display(),
                    &call[..call.find('\n').unwrap_or(call.len())]
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 5,
            "only {checked} source files found in {}",
            src.display()
        );
    }

    #[test]
    fn this_module_declares_statements_only_through_the_macro() {
        // A `const` written here by hand would be a statement missing from `ALL`.
        let text = include_str!("sql.rs");
        let end = text.find("#[cfg(test)]").expect("tests module");
        let start = text.find("statements! {").expect("the statements");
        let (before, declarations) = (&text[..start], &text[start..end]);
        assert!(
            !declarations.contains("const ") && before.matches("const ").count() == 2,
            "a hand-written const in sql.rs: only the macro may declare statements"
        );
        let declared = declarations
            .lines()
            .filter(|line| {
                let line = line.trim_start();
                line.split_once(" = \"").is_some_and(|(name, _)| {
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                })
            })
            .count();
        assert_eq!(declared, ALL.len() + super::POSTGRES_ONLY.len());
    }
}

//! Where the catalog lives: turning the `location` string given to
//! [`Catalog::open`](crate::Catalog::open) into typed connect options.
//!
//! Accepted forms:
//!
//! - `postgres://user:pass@host:port/db?params` (also `postgresql://`): PostgreSQL;
//! - `sqlite://path/to/file.db`, `sqlite:///abs/file.db`, `sqlite:file.db` (with sqlx's
//!   `?mode=`/`?cache=`/... parameters): a SQLite file;
//! - `sqlite::memory:`: a private in-memory SQLite database (for tests and demos);
//! - anything without `://`: a filesystem path of a SQLite file, taken literally (spaces,
//!   `?` and `#` need no escaping).
//!
//! Every SQLite location gets the same settings: the file is created if missing, WAL
//! journal (readers never block the writer, so `sealcast streams` works while the server
//! runs), a busy timeout (a writer waits for the other process's write instead of failing).
//!
//! Pure: parsing only, no I/O.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::CatalogError;

/// How long a SQLite write waits for another connection's (or process's) write lock before
/// giving up with "database is locked". Catalog writes are single short statements, so
/// reaching this means something is badly wrong, not merely busy.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed location.
#[derive(Debug)]
pub(crate) enum Location {
    /// A SQLite database.
    Sqlite {
        options: SqliteConnectOptions,
        /// The file, for creating its directory; `None` for an in-memory database.
        file: Option<PathBuf>,
    },
    /// A PostgreSQL database.
    Postgres(PgConnectOptions),
}

impl Location {
    /// Parses `location`; see the module docs for the accepted forms.
    pub(crate) fn parse(location: &str) -> Result<Self, CatalogError> {
        let bad = |reason: String| CatalogError::BadLocation {
            location: redact(location),
            reason,
        };
        if location.is_empty() {
            return Err(bad(
                "empty; give a database URL or a SQLite file path".into()
            ));
        }
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(location).map_err(|e| bad(e.to_string()))?;
            return Ok(Self::Postgres(options));
        }
        let (options, file) = if location.starts_with("sqlite:") {
            let options =
                SqliteConnectOptions::from_str(location).map_err(|e| bad(e.to_string()))?;
            let file = (!is_in_memory(location)).then(|| options.get_filename().to_path_buf());
            (options, file)
        } else if let Some((scheme, _)) = location.split_once("://") {
            return Err(bad(format!(
                "unsupported scheme `{scheme}`; use postgres://, sqlite:// or a file path"
            )));
        } else {
            let file = PathBuf::from(location);
            (SqliteConnectOptions::new().filename(&file), Some(file))
        };
        if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            return Err(bad("no SQLite file name".into()));
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable against application crashes in WAL mode and only risks the
            // last transactions on power loss; the usual pairing with WAL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        Ok(Self::Sqlite { options, file })
    }
}

/// Whether a `sqlite:` URL names an in-memory database (which has no file whose directory
/// should be created).
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (db, params) = rest.split_once('?').unwrap_or((rest, ""));
    db == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

/// `location` made fit for a log line or an error message: a URL's password and query (which
/// may carry `password=`) are replaced by `***`. Paths are returned as they are.
pub(crate) fn redact(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?***"),
        None => (rest, ""),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_file(location: &str) -> Option<PathBuf> {
        match Location::parse(location).expect(location) {
            Location::Sqlite { file, .. } => file,
            Location::Postgres(_) => panic!("{location} parsed as PostgreSQL"),
        }
    }

    #[test]
    fn postgres_urls() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgresql://u:p@db.example/sealcast?sslmode=disable",
        ] {
            assert!(
                matches!(Location::parse(url), Ok(Location::Postgres(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn sqlite_urls_and_paths() {
        assert_eq!(
            sqlite_file("sqlite://data/catalog.db"),
            Some(PathBuf::from("data/catalog.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/sealcast/catalog.db"),
            Some(PathBuf::from("/var/lib/sealcast/catalog.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:catalog.db?mode=rwc"),
            Some(PathBuf::from("catalog.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://?mode=memory"), None);
        // Plain paths are literal: no URL decoding, `?` and `#` are part of the name.
        assert_eq!(
            sqlite_file("my data/cat%20alog?#.db"),
            Some(PathBuf::from("my data/cat%20alog?#.db"))
        );
        assert_eq!(
            sqlite_file("/abs/catalog.sqlite3"),
            Some(PathBuf::from("/abs/catalog.sqlite3"))
        );
    }

    #[test]
    fn rejected_locations() {
        for bad in [
            "",
            "mysql://root@localhost/db",
            "http://example.com/x.db",
            "sqlite://",
            "sqlite://x.db?bogus=1",
            "postgres://host:notaport/db",
        ] {
            assert!(
                matches!(Location::parse(bad), Err(CatalogError::BadLocation { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_do_not_carry_passwords() {
        let err = Location::parse("mysql://admin:hunter2@db/x?password=hunter3")
            .expect_err("unsupported scheme");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter"), "{text}");
        assert!(text.contains("admin:***@db/x"), "{text}");
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?password=x"),
            "postgres://u:***@h:5432/db?***"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h"), "postgres://h");
        assert_eq!(redact("postgres://u:p:q@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u:p@x@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://data/c.db"), "sqlite://data/c.db");
        assert_eq!(redact("data/c.db"), "data/c.db");
    }
}

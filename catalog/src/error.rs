//! The one error type of the catalog crate.
//!
//! No variant ever holds a stream key, and locations are stored with their password
//! redacted, so any of these can be logged or shown to an operator as they are. Variants
//! that wrap a lower-level error expose it through `source()` instead of repeating its text
//! in `Display`; print the chain (`{:#}` with anyhow) to see it.

use std::io;
use std::path::PathBuf;

use domain::StreamName;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// There is no stream with this name (rotate, remove, mark live).
    #[error("no stream named `{name}` in the catalog")]
    NotFound {
        /// The name asked for.
        name: StreamName,
    },
    /// A stream with this name already exists; names are unique and never silently reused.
    #[error("a stream named `{name}` already exists in the catalog")]
    AlreadyExists {
        /// The name asked for.
        name: StreamName,
    },
    /// The location given to [`Catalog::open`](crate::Catalog::open) is neither a supported
    /// database URL nor a usable SQLite file path.
    #[error("cannot use `{location}` as the catalog: {reason}")]
    BadLocation {
        /// The location, with any password replaced by `***`.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory that should hold the SQLite file could not be created.
    #[error("cannot create directory `{}` for the catalog", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The database could not be opened or reached (file not writable, server down, wrong
    /// credentials).
    #[error("cannot open the catalog database at `{location}`")]
    Connect {
        /// The location, with any password replaced by `***`.
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Bringing the schema up to date failed (for example, the database was migrated by a
    /// newer sealcast, or an applied migration was edited).
    #[error("cannot migrate the catalog schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed: connection lost, pool timed out, database locked for longer than the
    /// busy timeout, and so on.
    #[error("catalog database error")]
    Database(#[source] sqlx::Error),
    /// A row holds a value this version cannot accept (say, a stream name edited by hand into
    /// something that is not a valid [`StreamName`]).
    #[error("invalid `{column}` value in the catalog: {reason}")]
    InvalidRow {
        /// The column holding the bad value.
        column: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system's random source failed, so no stream key could be made.
    #[error("cannot generate a stream key")]
    Random(#[source] rand::Error),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

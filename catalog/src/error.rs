//! The one error type of the catalog crate.
//!
//! No variant ever holds a stream or API key (nor a webhook URL, which often carries a
//! receiver's token), and locations are stored with their password
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
    /// There is no publish session with this id for this stream.
    #[error("no publish session `{session}` of stream `{stream}` in the catalog")]
    SessionNotFound {
        /// The stream asked for.
        stream: StreamName,
        /// The session id asked for.
        session: String,
    },
    /// There is no recording with this id for this stream (it was never finished, or it was
    /// removed).
    #[error("no recording `{id}` of stream `{stream}` in the catalog")]
    RecordingNotFound {
        /// The stream asked for.
        stream: StreamName,
        /// The recording (session) id asked for.
        id: String,
    },
    /// An API key name that is not 1 to 64 ASCII letters, digits, `_` or `-`. The name is
    /// not repeated: a key pasted where a name belongs must not end up in a log.
    #[error("invalid API key name: {reason}")]
    InvalidApiKeyName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An API key with this name already exists; names are unique so that `remove NAME`
    /// says which key goes.
    #[error("an API key named `{name}` already exists")]
    ApiKeyExists {
        /// The name asked for.
        name: String,
    },
    /// There is no API key with this name.
    #[error("no API key named `{name}`")]
    ApiKeyNotFound {
        /// The name asked for.
        name: String,
    },
    /// A webhook URL the catalog will not store: not an absolute `http`/`https` URL with a
    /// host, longer than 2048 bytes, or carrying credentials. The URL is not repeated, since
    /// it may hold the receiver's secret token.
    #[error("invalid webhook: {reason}")]
    InvalidWebhook {
        /// What is wrong with it.
        reason: String,
    },
    /// There is no webhook with this id.
    #[error("no webhook with id {id}")]
    WebhookNotFound {
        /// The id asked for.
        id: i64,
    },
    /// A value given to the catalog that it does not store: a session id that is not 16
    /// lowercase hex digits, a rendition that is not a valid rendition name, a duration that
    /// is not a finite number of seconds, an unknown scope or webhook event name.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which value (`session id`, `rendition`, `API key scope`, ...).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
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
    /// The schema is behind this version and this database role may not migrate it (the
    /// broadcast nodes' PostgreSQL role), and no role that may did so in time.
    #[error(
        "the catalog schema is not up to date and this database role may not migrate it; \
         waited {} s for one that may (an ingest node, `sealcast streams`)",
        waited.as_secs()
    )]
    SchemaNotCurrent {
        /// How long it waited.
        waited: std::time::Duration,
        /// The migrator's refusal.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// Giving the broadcast nodes' PostgreSQL role (`sealcast_edge`) its privileges after
    /// migrating failed.
    #[error("cannot grant the broadcast nodes' catalog role its privileges")]
    Privileges(#[source] sqlx::Error),
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
    /// One of the catalog's SQL statements does not prepare against the database's schema
    /// (found by [`Catalog::check_statements`](crate::Catalog::check_statements)): the
    /// schema drifted from what this version expects, or the statement has a typo.
    #[error("catalog statement `{name}` does not prepare against this database")]
    Statement {
        /// The statement's name in the crate's `sql` module.
        name: &'static str,
        /// The database's complaint.
        #[source]
        source: sqlx::Error,
    },
    /// The operating system's random source failed, so no key could be made.
    #[error("cannot generate a key")]
    Random(#[source] rand::Error),
}

/// Whose problem a [`CatalogError`] is, so that a caller (the admin API, the CLI) can
/// answer without matching every variant, and new variants default to the safe side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller gave a value the catalog does not accept; the message says which and why,
    /// and is safe to show to the client who sent it (HTTP 400).
    InvalidInput,
    /// The stream, session, recording, API key or webhook asked for does not exist (404).
    NotFound,
    /// The name is taken (409).
    Conflict,
    /// The database, the file system or the random source failed, or the stored data is
    /// not what this version expects: not the caller's fault; a retry may help (503).
    Storage,
}

impl CatalogError {
    /// Whose problem this error is; see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidApiKeyName { .. }
            | Self::InvalidWebhook { .. }
            | Self::InvalidInput { .. }
            | Self::BadLocation { .. } => ErrorKind::InvalidInput,
            Self::NotFound { .. }
            | Self::SessionNotFound { .. }
            | Self::RecordingNotFound { .. }
            | Self::ApiKeyNotFound { .. }
            | Self::WebhookNotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } | Self::ApiKeyExists { .. } => ErrorKind::Conflict,
            Self::CreateDir { .. }
            | Self::Connect { .. }
            | Self::Migrate(_)
            | Self::SchemaNotCurrent { .. }
            | Self::Privileges(_)
            | Self::Database(_)
            | Self::InvalidRow { .. }
            | Self::Statement { .. }
            | Self::Random(_) => ErrorKind::Storage,
        }
    }
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

//! The sealcast catalog: which streams exist and which key may publish each of them, and
//! what the admin API serves besides: publish sessions, recordings, the nodes seen, API
//! keys and webhooks.
//!
//! The ingest asks it to authorise an RTMP publish ([`Catalog::authenticate`]), the
//! `sealcast streams` and `sealcast api-keys` CLIs edit it, and the admin API serves it and
//! checks its callers' keys ([`Catalog::authenticate_api_key`]). It lives in a SQLite file in
//! the data directory by default (WAL mode and a busy timeout, so the CLI works while the
//! server runs) or in PostgreSQL for a cluster; both run the same migrations from
//! `catalog/migrations/` and the same SQL, every statement of which is checked against both
//! in the tests.
//!
//! Stream keys and API keys are 32 random bytes shown once as `sk_`/`ak_` + hex and stored
//! only as their SHA-256. A [`StreamKey`] or [`ApiKey`] has a redacted `Debug` and no
//! `Display` or `Serialize`; no error, log line or `Debug` output of this crate contains a
//! key, nor a webhook URL (which often carries the receiver's token).
//!
//! Writes that several nodes make for the same event (a session starting or ending, a
//! recording finished) report whether *this* call changed the catalog, so exactly one node
//! in the cluster acts on it (sends the webhook).
//!
//! Modules:
//!
//! - `catalog`: the [`Catalog`] handle, its connection pool, opening and migrating, the
//!   statement check, and the stream queries.
//! - `settings`: what an operator sets per stream besides its key: privacy and recording.
//! - `sql`: every SQL statement, each a constant, all listed for the statement check.
//! - `location`: parses the location given to [`Catalog::open`] (URL or file path) into
//!   connect options, and redacts passwords for logs and errors.
//! - `key`: making, hashing and checking secret keys of either kind ([`Key`],
//!   [`StreamKey`], [`ApiKey`]).
//! - `record`: [`StreamRecord`], what the catalog knows about one stream.
//! - `session`: [`SessionRecord`], publish sessions, and their queries.
//! - `recording`: [`RecordingRecord`], finished recordings (VOD), and their queries.
//! - `node`: [`NodeRecord`], the nodes seen, and their queries.
//! - `api_key`: [`ApiKeyRecord`] and [`Scope`], API keys, and their queries.
//! - `webhook`: [`WebhookRecord`] and [`WebhookEvent`], webhook subscriptions, URL checks,
//!   and their queries.
//! - `columns`: how lists and session ids are stored in TEXT columns, checked both ways.
//! - `error`: [`CatalogError`], the crate's one error enum, and its [`ErrorKind`].

mod api_key;
mod catalog;
mod columns;
mod error;
mod key;
mod location;
mod node;
mod numbering;
mod record;
mod recording;
mod session;
mod settings;
mod sql;
mod webhook;

pub use api_key::{ApiKeyRecord, Scope};
pub use catalog::Catalog;
pub use error::{CatalogError, ErrorKind};
pub use key::{ApiKey, ApiKeyKind, Key, KeyKind, StreamKey, StreamKeyKind};
pub use node::NodeRecord;
pub use numbering::Numbering;
pub use record::StreamRecord;
pub use recording::RecordingRecord;
pub use session::SessionRecord;
pub use webhook::{WebhookEvent, WebhookRecord, MAX_WEBHOOK_URL_LEN};

//! The sealcast catalog: which streams exist and which key may publish each of them.
//!
//! The ingest asks it to authorise an RTMP publish ([`Catalog::authenticate`]), the
//! `sealcast streams add|list|rotate-key|remove` CLI edits it, and the admin API will serve
//! it. It lives in a SQLite file in the data directory by default (WAL mode and a busy
//! timeout, so the CLI works while the server runs) or in PostgreSQL for a cluster; both
//! run the same migrations from `catalog/migrations/`.
//!
//! Stream keys are 32 random bytes shown once as `sk_` + hex and stored only as their
//! SHA-256. A [`StreamKey`] has a redacted `Debug` and no `Display`; no error, log line or
//! `Debug` output of this crate contains a key.
//!
//! Modules:
//!
//! - `catalog`: the [`Catalog`] handle, its connection pool, opening and migrating, and
//!   every query.
//! - `location`: parses the location given to [`Catalog::open`] (URL or file path) into
//!   connect options, and redacts passwords for logs and errors.
//! - `key`: making, hashing and checking stream keys ([`StreamKey`]).
//! - `record`: [`StreamRecord`], what the catalog knows about one stream.
//! - `error`: [`CatalogError`], the crate's one error enum.

mod catalog;
mod error;
mod key;
mod location;
mod record;

pub use catalog::Catalog;
pub use error::CatalogError;
pub use key::StreamKey;
pub use record::StreamRecord;

//! catalog's integration tests, one binary (linking a test binary is the slow part of a
//! build; one per crate links the crate and its dependencies once), most cases run on
//! SQLite and on PostgreSQL:
//!
//! - `catalog`: the catalog's behaviour;
//! - `admin`: what the admin API needs from it (sessions, recordings, nodes, keys, hooks);
//! - `schema`: the schema and the SQL checked against each other;
//! - `edge_role`: the broadcast nodes' restricted PostgreSQL role;
//! - `open`: opening failures, each a clear error that never carries a password;
//! - `sqlite`: what only SQLite needs (the file, WAL, busy timeout, URL forms);
//! - `support`: the fixtures that run one body against each backend.

// First: its `on_both_backends!` is used by the modules below.
#[macro_use]
mod support;

mod admin;
mod catalog;
mod edge_role;
mod open;
mod schema;
mod sqlite;

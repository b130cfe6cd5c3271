//! Wiring of the roles: which parts run, on which listeners, connected how. Each role
//! starts from its plan (`crate::plan`), the same derivation `--check-config` reports on,
//! and does what the plan does not: binds, connects, opens the catalog, makes missing keys
//! and certificates, starts the parts and stops them in order.
//!
//! - `ingest`: `sealcast ingest`, and how `up` starts its ingest over the catalog.
//! - `broadcast`: `sealcast broadcast`, and how `up` makes its nodes edges.
//! - `lb`: the load balancer, alone (`sealcast lb`) or inside `up`.
//! - `up`: everything in one process (embedded broker, ingest, N broadcast nodes, load
//!   balancer), from the pieces above.
//! - `admin`: the admin API beside the nodes, load reports, sessions and recordings in
//!   the catalog, webhooks, operators' end requests.
//! - `moq`: a node's MoQ egress and the relay's auth endpoint, for `broadcast` and `up`;
//!   `sealcast moq-gate`, a relay tier's relay with its auth endpoint.
//! - `whip`: the WHIP ports of an ingest (issue 32), for `ingest` and `up`.
//! - `common`: what they all do alike (catalog, listeners, metrics server, printed URLs).

mod admin;
mod broadcast;
mod common;
mod ingest;
mod lb;
mod moq;
mod up;
mod whip;

pub(crate) use broadcast::broadcast;
pub(crate) use common::{open_catalog, print_ready};
pub(crate) use ingest::ingest;
pub(crate) use lb::{lb, make_certificates};
pub(crate) use moq::moq_gate;
pub(crate) use up::up;

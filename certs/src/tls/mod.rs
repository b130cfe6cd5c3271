//! TLS certificates for the load balancer: a local CA and a server certificate for the
//! cluster's host names, made by `sealcast certs` and on the first start of `sealcast up`.
//!
//! - `names`: [`ServerNames`], what a server certificate covers (`streaming-cluster.test`,
//!   `*.streaming-cluster.test`, `broadcast1..N.streaming-cluster.test`, `localhost`,
//!   `127.0.0.1`, `::1` and the operator's own names), each a validated [`HostName`].
//! - `dir`: [`TlsDir`], the files (`ca.pem`, `ca.key`, `server.pem`, `server.key`), how
//!   [`TlsDir::init`] makes and renews them, and readers for the TLS server.
//!
//! Certificates are X.509 made with rcgen (ECDSA P-256 on ring) and read back with
//! x509-parser; times are unix seconds passed in, as in the rest of the crate.

mod dir;
pub(crate) use dir::{random_serial, set_validity};
mod names;

pub use dir::{
    InitReport, IssueReason, TlsDir, CA_COMMON_NAME, CA_LIFETIME, RENEW_BEFORE, SERVER_LIFETIME,
};
pub use names::{
    broadcast_host_name, HostName, ServerNames, CLUSTER_DOMAIN, DEFAULT_BROADCAST_NODES,
};

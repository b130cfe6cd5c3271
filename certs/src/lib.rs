//! sealcast certs: the cluster's trust material.
//!
//! - [`signing`]: segment-signing keys (ML-DSA-65 by default, Ed25519 selectable), ingest
//!   certificates signed by the cluster root key, root-signed revocations, and the
//!   [`signing::TrustStore`] an edge consults before publishing a segment. Tested, not wired
//!   into the roles yet (issue 3).
//! - [`error`]: the crate's one error enum.
//!
//! TLS certificates (a local CA and server certificates for `streaming-cluster.test`,
//! `*.streaming-cluster.test`, `broadcast1..N.streaming-cluster.test`, `localhost`,
//! `127.0.0.1`) arrive with the load-balancer issue.

pub mod error;
pub mod signing;

pub use error::CertsError;

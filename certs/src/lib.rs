//! sealcast certs: the cluster's trust material.
//!
//! - [`signing`]: the segment-signing trust chain. A cluster root key ([`signing::RootKey`])
//!   certifies each ingest node's signing key ([`signing::SigningKey`]) with an
//!   [`signing::IngestCertificate`] and can revoke it ([`signing::Revocation`]); edges pin
//!   the root's public key and check every statement signature in a
//!   [`signing::TrustStore`]. ML-DSA-65 (FIPS 204) by default, Ed25519 selectable per
//!   cluster. Key and certificate files included (private keys mode 0600).
//! - [`keydir`]: [`KeyDir`], the directory layout of the cluster's keys, certificates and
//!   push token, created by `sealcast keys init` and `sealcast up`.
//! - [`tokens`]: playback tokens, what opens a private stream to a viewer: JWTs (HS256)
//!   under the cluster's playback key, checked strictly and cheaply
//!   ([`tokens::TokenVerifier`]) by the load balancer and the nodes.
//! - [`tls`]: [`TlsDir`], the TLS material of `sealcast certs`: a local CA and a server
//!   certificate for `streaming-cluster.test`, `*.streaming-cluster.test`,
//!   `broadcast1..N.streaming-cluster.test`, `localhost`, `127.0.0.1` and `::1`
//!   ([`tls::ServerNames`]), renewed before it expires or when the names change, with a hint
//!   on trusting the CA.
//! - [`c2pa`]: C2PA provenance: the cluster's X.509 provenance CA, ingests' claim
//!   signers, and [`c2pa::LiveSigner`], which signs init segments (a C2PA manifest) and
//!   fragments (a VSI `emsg`) of one live session.
//! - [`error`]: [`CertsError`], the crate's one error enum, with the rejection reason labels
//!   of the brief.

pub mod c2pa;
pub mod error;
pub mod keydir;
pub mod signing;
pub mod tls;
pub mod tokens;

pub use keydir::KeyDir;
pub use tls::TlsDir;

pub use error::CertsError;

//! C2PA 2.3 Live Video (§19) as sealcast writes it: Verifiable Segment Info (§19.4).
//!
//! Every CMAF init segment carries a C2PA manifest ([`manifest`]) whose claim an X.509
//! claim signer signs, introducing an Ed25519 session key; every media segment and every
//! LL-HLS part carries a VSI `emsg` ([`vsi`]) by that session key over its BMFF hash
//! ([`bmff`]). Any C2PA live-video validator (c2pa-rs's `LiveVideoValidator`, the SVTA's
//! `@svta/cml-c2pa`) checks them without knowing sealcast; docs/provenance.md gives the
//! mapping of parts and segments and what stays sealcast's own.
//!
//! Formats only, sans-IO: the keys and certificates are the `certs` crate's, which passes
//! its signing functions in. Everything is built in one fixed order from its inputs, so the
//! same inputs give the same bytes ([`cbor`]).

pub mod bmff;
pub mod cbor;
pub mod cose;
pub mod decode;
pub mod jumbf;
pub mod manifest;
pub mod read;
pub mod vsi;

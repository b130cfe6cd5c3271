//! api's integration tests, one binary (linking a test binary is the slow part of a build;
//! one per crate links the crate and its dependencies once):
//!
//! - `router`: the API's answers through `tower::ServiceExt::oneshot` on an in-memory
//!   catalog;
//! - `webhooks`: deliveries against a real HTTP receiver on a free port;
//! - `cache_purge`: `BAN`s to Debian's real Varnish with deploy/varnish/ (issue 45).

mod cache_purge;
mod router;
mod webhooks;

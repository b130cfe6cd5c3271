//! broadcast's integration tests, one binary (linking a test binary is the slow part of a
//! build; one per crate links the crate and its dependencies once):
//!
//! - `archive_cluster`: recordings kept once per cluster in the archive (a local directory, a
//!   real Garage), served by any node;
//! - `intake`: the edge's internal push API and signature gate, through
//!   `tower::ServiceExt::oneshot` with real keys and certificates;
//! - `cache_headers`: what every answer tells a shared cache in front, per kind of
//!   resource (docs/architecture.md, Caching);
//! - `direct`: the live tree's direct path answers as the router does;
//! - `private`: a private stream's refusals answer as if it did not exist;
//! - `recording_switch`: a stream whose recording is switched off by a signed session
//!   start plays live and records nothing, and records again when switched back on;
//! - `edge_mqtt`: `run_edge` against the embedded MQTT broker and real sockets;
//! - `llhls`: LL-HLS on CMAF through an edge: parts pushed and signed like segments;
//! - `moq`: MoQ egress through the real moq-relay, read back by moq-tokio's subscriber;
//! - `moq_player`: web/src/moq.js in Chromium reads a node's tracks through the real moq-relay;
//! - `moq_hostile`: web/src/moq.js fed mutated relay bytes in Chromium;
//! - `moq_tier`: a relay tier of two clustered moq-relays behind gates, with the grants a
//!   node mints for private streams' viewers;
//! - `router`: the public routes through `oneshot`;
//! - `thumbnails`: a stream's thumbnail through an edge: served only once verified;
//! - `thumbnail_verify`: the page's own check of thumbnails (`verify.js`) in Chromium, on
//!   the cases the Rust twin runs too;
//! - `serve`: a node served as production serves it, over a real socket;
//! - `vod`: recordings through the public routes;
//! - `player_verify`: the player's own verification (`web/src/verify.js`) in Chromium;
//! - `player_latency`: how the player keeps a live stream at its target latency, in
//!   Chromium;
//! - `svta_c2pa`: the SVTA's C2PA validator (`@svta/cml-c2pa`) over our signed live video,
//!   in Chromium (ignored unless its module is named);
//! - `support`: a node with one live stream, requests, and (`support::edge`) a cluster's
//!   keys, signed statements and pushes.

mod archive_cluster;
mod cache_headers;
mod direct;
mod edge_mqtt;
mod intake;
mod llhls;
mod moq;
mod moq_auth;
mod moq_hostile;
mod moq_player;
mod moq_tier;
mod player_latency;
mod player_verify;
mod private;
mod recording_switch;
mod router;
mod serve;
mod support;
mod svta_c2pa;
mod thumbnail_verify;
mod thumbnails;
mod time_shift;
mod vod;

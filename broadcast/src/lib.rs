//! sealcast broadcast: the edge node. It keeps the live window of every stream in memory
//! and serves the public URL layout (`domain::paths`) from it.
//!
//! Events about a stream (`domain::LiveEvent`: session start, rendition, segment, drop,
//! end) reach [`Node::apply`]; each accepted event re-renders the affected playlists in
//! memory and swaps a new snapshot of the stream in whole. HTTP handlers only ever read
//! snapshots, so a viewer never sees a half-updated stream, and segment bytes are shared
//! (`bytes::Bytes`), never copied per viewer.
//!
//! Modules, in the order data flows through them:
//!
//! - `config`: [`NodeConfig`], the window shape every stream on a node shares.
//! - `stream`: one stream's state, sans-IO: events in, a snapshot out (window bookkeeping,
//!   grace period for segments that slid out, reconnects, dropped renditions, bitrates).
//! - `view`: the immutable snapshots readers serve from, with their `ETag` and
//!   `Cache-Control` computed once per change; [`StreamSummary`] for the stream list.
//! - `node`: [`Node`], every stream behind one `Arc`: per-stream writer lock, lock-free
//!   snapshot reads.
//! - [`gate`]: the signature gate, sans-IO (bytes and verified manifest meet, in order,
//!   gaps on timeout, bounded memory); tested, not wired in yet.
//! - `metrics`: the Prometheus registry behind `/metrics`.
//! - `respond`: one document to one response: content type, `If-None-Match` → 304, byte
//!   ranges → 206/416.
//! - `index`: the placeholder HTML front page.
//! - `router`: [`router`], the public routes and the layers every response passes
//!   (`x-sealcast-node`, CORS, request metrics, tracing).
//! - `serve`: [`serve`], the router on a bound listener until a shutdown token fires.
//! - `error`: [`BroadcastError`], the crate's one error type, and its mapping to HTTP
//!   responses.
//!
//! Not here yet, and meant to slot in beside `node`: HTTP push from ingest and MQTT
//! delivery (both end in [`Node::apply`]), the signature gate in front of it, and the web
//! player in place of `index`.
#![forbid(unsafe_code)]

mod config;
mod error;
pub mod gate;
mod index;
mod metrics;
mod node;
mod respond;
mod router;
mod serve;
mod stream;
mod view;

pub use config::NodeConfig;
pub use error::BroadcastError;
pub use node::Node;
pub use router::{router, NODE_HEADER};
pub use serve::serve;
pub use view::{RenditionSummary, StreamSummary};

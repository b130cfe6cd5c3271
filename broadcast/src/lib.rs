//! sealcast broadcast: the edge node. It keeps the live window of every stream in memory
//! and serves the public URL layout (`domain::paths`) from it.
//!
//! As an edge ([`run_edge`]) it takes segment bytes by HTTP push from ingest and their
//! signed statements over MQTT, and publishes a segment only once both arrived and the
//! statement verifies against an ingest key the pinned cluster root certified.
//! Control events (session start, rendition, drop, end) arrive by push too and reach
//! [`Node::apply`] directly; each accepted change re-renders the affected playlists in
//! memory and swaps a new snapshot of the stream in whole. HTTP handlers only ever read
//! snapshots, so a viewer never sees a half-updated stream, and segment bytes are shared
//! (`bytes::Bytes`), never copied per viewer.
//!
//! Modules, in the order data flows through them:
//!
//! - `config`: [`NodeConfig`], the window shape every stream on a node shares;
//!   [`EdgeConfig`], trust root, push token, caps and broker of an edge.
//! - `stream`: one stream's state, sans-IO: events in, a snapshot out (window bookkeeping,
//!   grace period for segments that slid out, reconnects, dropped renditions, bitrates).
//! - `thumbnails`: each stream's latest verified thumbnail (`/live/{stream}/thumbnail.jpg`).
//! - `view`: the immutable snapshots readers serve from, with their `ETag` and
//!   `Cache-Control` computed once per change; [`StreamSummary`] for the stream list.
//! - `node`: [`Node`], every stream behind one `Arc`: per-stream writer lock, lock-free
//!   snapshot reads.
//! - `edge`: [`Edge`], the state the push side, the MQTT side and the gate's timer share,
//!   and [`run_edge`], which runs them all. Everything only an edge uses lives under it:
//!   its state machines, sans-IO (`edge::candidates`, where pushed bytes and verified
//!   statements meet for segments and parts alike; `edge::gate`, segments in order with
//!   gaps; `edge::parts`, parts; `edge::barriers`, control events queued behind the gate;
//!   `edge::admission`, which signed control events are taken; `edge::ready`, readiness
//!   and lag) and its I/O (`edge::intake`, the internal push API, routes that
//!   [`Edge::router`] adds to the node's public ones, so the public router knows nothing
//!   of edges; `edge::mqtt`, the broker side).
//! - `recorder`: the recorder thread, writing what the node publishes to disk and turning
//!   each ended stream into a VOD recording (playlists, then `recording.json`); it tells
//!   the [`RecordingObserver`] and deletes recordings past their retention.
//! - `archiving`: recordings kept once per cluster in the archive (the `archive` crate):
//!   the recorder's spool and its uploader, and the read side every node serves
//!   `/vod/...` and `/api/v1/recordings` from ([`ArchiveSettings`], [`Node::with_archive`]).
//! - `recording`: finished recordings, the read side: [`RecordingInfo`], the listing of
//!   `/api/v1/recordings`, the files `/vod/...` serves, deleting one.
//! - `moq`: egress over Media over QUIC ([`run_moq`]): every public live stream published
//!   to a MoQ relay as a broadcast, a group per segment and an object per part, each with
//!   its signed statement on a track beside it (`moq::cursor` decides, sans-IO, what goes
//!   out and where a group begins; `moq::catalog` writes the catalog), private streams
//!   too when the relay asks this node who may read them: [`run_moq_auth`] serves
//!   moq-relay's `--auth-url` on a Unix socket (`moq::auth` decides, `moq::credential`
//!   mints and checks the node's publish credential).
//! - `metrics`: the Prometheus registry behind `/metrics`.
//! - `audience`: viewers per stream, open connections and bytes sent, for [`Node::load`]
//!   (the node's load report).
//! - `respond`: one document to one response: content type, `If-None-Match` → 304, byte
//!   ranges → 206/416.
//! - `assets`: the web player (`/`), the dashboard (`/dashboard`) and `/assets/...`,
//!   hls.js included, embedded at build time (`build.rs` checks they are there), with
//!   strong `ETag`s and the pages' security headers.
//! - `live_tree`: the `/live/...` tree: playlists, segments, `init.mp4`, parts; blocking
//!   playlist reload and preload-hinted parts, held on their rendition's change signal.
//! - `access`: who may read a private stream: every request under `/live/{stream}/` and
//!   `/vod/{stream}/` of a private stream needs its playback token (`certs::tokens`), and
//!   a playlist's URIs carry it on ([`AccessConfig`]: the key, the `on_play` hook).
//! - `router`: the public routes (live, VOD, API, pages) and the layers every response
//!   passes (`x-sealcast-node`, CORS, request metrics), which [`Edge::router`] serves with
//!   the push API beside them; every segment carries [`VERIFIED_HEADER`]. [`NodeRoutes`]
//!   ([`Edge::service`]) is what a node serves: a `GET` of the live tree straight to its
//!   handler through the same layers, without the router's per-request machinery. A
//!   node is served only as an edge ([`run_edge`], or [`Edge::service`] without a
//!   socket), tests included, so what tests drive is what production runs.
//! - `error`: [`BroadcastError`], the crate's one error type, and its mapping to HTTP
//!   responses.
#![forbid(unsafe_code)]

mod access;
mod access_guard;
mod archiving;
mod assets;
mod audience;
mod config;
mod dvr;
mod edge;
mod error;
mod http;
mod live_tree;
pub mod metrics;
mod moq;
mod node;
mod recorder;
mod recording;
mod respond;
mod router;
mod stream;
mod thumbnails;
mod view;

pub use access::{AccessConfig, PlayHook, PlayRequest, PlayVerdict, VERDICT_FOR};
pub use archiving::{
    ArchiveSettings, FAMILIES as ARCHIVE_FAMILIES, SKIPPED_BYTES, SPOOL_BYTES, SPOOL_DROPPED_BYTES,
    UPLOADED_BYTES,
};
pub use audience::Peer;
pub use config::{EdgeConfig, HttpLimits, LoadSampler, MoqEndpoint, NodeConfig};
pub use dvr::{DvrSummary, DEFAULT_DVR_WINDOW};
pub use edge::{run_edge, Edge};
pub use error::BroadcastError;
pub use moq::{
    run_moq, run_moq_auth, MoqAuthConfig, MoqAuthority, MoqConfig, MoqKey, PRIVATE_PREFIX,
};
pub use node::{Node, NodeLoad};
pub use recording::{RecordingInfo, RecordingObserver};
pub use respond::VERIFIED_HEADER;
pub use router::{NodeRoutes, NODE_HEADER};
pub use view::{RenditionSummary, StreamSummary};

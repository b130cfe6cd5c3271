//! sealcast ingest: RTMP in, a keyframe-aligned HLS ladder out.
//!
//! - [`run()`]: the node in one call: RTMP server, registry and distribution, with the
//!   catalog behind a [`StreamAuthority`]; [`Running`] to stop it in order.
//! - [`rtmp`]: the tokio driver around `rml_rtmp`'s sans-IO server session.
//! - [`registry`]: who publishes what; stream-key checks, takeover, numbering across sessions.
//! - [`authority`]: [`StreamAuthority`], what the registry asks of the catalog (stream
//!   keys, numbering), as a trait the binary implements.
//! - `boundary`: sans-IO planning of which source keyframe starts each segment (every rung
//!   is cut there), and the cuts handed to the encoded rungs.
//! - [`pipeline`]: one stream's threads: decode once, encode per rung, at the planned boundaries.
//! - [`transcode`]: the FFmpeg boundary (decode, scale, x264), the only place that touches FFmpeg.
//! - [`segmenter`]: sans-IO cutting of one rung's packets at the planned boundaries, and of
//!   each segment into LL-HLS parts.
//! - [`align`]: sans-IO release of all rungs' segments in sequence order (parts pass
//!   through once every rendition is announced).
//! - [`lag`]: sans-IO detection of falling behind real time (when to shed a rung).
//! - [`container`]: FLV tags, H.264 and AAC framing, the MPEG-TS and CMAF muxers — pure Rust.
//! - [`file`](mod@file): the same pipeline over an FLV file, for benchmarks and debugging.
//! - [`distribute`](mod@distribute): pushes segments, parts and control events to every
//!   broadcast node (HTTP), signs every segment and part and publishes its envelope,
//!   presence and certificate (MQTT), sends late joiners the live window (without parts).
//! - [`metrics`]: encode speed per rung, lag, shed rungs, push latency per node, signing.
//! - [`error`]: the crate's one error enum.
pub mod align;
pub mod authority;
mod boundary;
pub mod config;
pub mod container;
pub mod distribute;
pub mod error;
pub mod file;
pub mod lag;
pub mod metrics;
pub mod pipeline;
pub mod registry;
pub mod rtmp;
mod rtmp_inputs;
mod run;
pub mod segmenter;
pub mod transcode;

pub use authority::{AuthorityError, Numbering, StreamAuthority};
pub use distribute::{distribute, DistributeConfig};
pub use error::IngestError;
pub use metrics::IngestMetrics;
pub use registry::{IngestSettings, LiveSession, PublishObserver, Registry};
pub use rtmp::DEFAULT_MAX_CONNECTIONS;
pub use run::{run, IngestDeps, Running, DRAIN_WAIT};

//! sealcast ingest: RTMP (legacy and Enhanced) and SRT in, a keyframe-aligned HLS ladder
//! out.
//!
//! - [`run()`]: the node in one call: RTMP server, registry and distribution, with the
//!   catalog behind a [`StreamAuthority`]; [`Running`] to stop it in order.
//! - [`rtmp`]: the tokio driver around `rml_rtmp`'s sans-IO server session; FLV tag
//!   bodies (from RTMP or a file) into the pipeline.
//! - [`srt`]: the SRT listener (srt-tokio): access control by stream key in the
//!   `streamid`, caps per address and in all; MPEG-TS into the pipeline.
//! - [`webrtc`]: WHIP (RFC 9725): the HTTP resource publishers post their SDP offer to,
//!   and one UDP port whose sessions (str0m, ICE-lite, DTLS-SRTP) one task drives; H.264
//!   and Opus into the pipeline.
//! - Each protocol's pure half is the [`intake`] crate's, in a module of the same name:
//!   its adapter into [`intake::media::MediaInput`] (what every pipeline takes; FLV tag
//!   bodies, MPEG-TS, RTP frames), and for WHIP what a datagram is and what an offer asks
//!   for; [`intake::config`] is the configuration file. The servers here drive it; the
//!   fuzzers reach it without FFmpeg and OpenSSL, which this crate links.
//! - [`registry`]: who publishes what; stream-key checks, takeover, numbering across sessions.
//! - [`authority`]: [`StreamAuthority`], what the registry asks of the catalog (stream
//!   keys, numbering), as a trait the binary implements.
//! - [`pipeline`]: one stream's threads: decode once, encode per rung, at the planned
//!   boundaries. The folder holds everything the pipeline is made of: its sans-IO state
//!   machines (`boundary`: which source keyframe starts each segment; `segmenter`: one
//!   rung's packets into segments and LL-HLS parts; `align`: all rungs' segments in
//!   sequence order; `lag`: when to shed a rung) and `transcode`, the FFmpeg boundary,
//!   the only module that touches FFmpeg.
//! - The containers and codecs (FLV tags, legacy and Enhanced RTMP; H.264, HEVC, AV1, VP9
//!   and AAC framing; the MPEG-TS demuxer; the MPEG-TS and CMAF muxers) are the
//!   [`container`] crate's, pure Rust without FFmpeg, so the fuzzers link only them.
//! - [`file`](mod@file): the same pipeline over an FLV file, for benchmarks and debugging.
//! - [`distribute`](mod@distribute): pushes segments, parts and control events to every
//!   broadcast node (HTTP), signs every segment and part and publishes its envelope,
//!   presence and certificate (MQTT), sends late joiners the live window (without parts).
//! - [`metrics`]: encode speed per rung, lag, shed rungs, push latency per node, signing.
//! - [`error`]: the crate's one error enum.
pub mod authority;
pub mod distribute;
pub mod error;
pub mod file;
pub mod metrics;
pub mod pipeline;
pub mod registry;
pub mod rtmp;
mod run;
pub mod srt;
pub mod webrtc;

pub use authority::{AuthorityError, Numbering, StreamAuthority};
pub use distribute::{distribute, DistributeConfig};
pub use error::IngestError;
pub use metrics::IngestMetrics;
pub use registry::{
    Admission, Admit, IngestSettings, LiveSession, NotAdmitted, Protocol, PublishObserver,
    Registry, StreamKey,
};
pub use run::{run, IngestDeps, Running, DRAIN_WAIT};

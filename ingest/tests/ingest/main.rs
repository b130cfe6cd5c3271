//! ingest's integration tests, one binary (linking a test binary, FFmpeg's libraries
//! included, is the slow part of a build; one per crate links them once):
//!
//! - `ll_pipeline`: the live pipeline in CMAF with LL-HLS parts over an ffmpeg-made FLV;
//! - `file`: the pipeline over an FLV file, as `sealcast ladder` runs it;
//! - `distribute`: distribution against the embedded MQTT broker and fake broadcast nodes;
//! - `registry`: the registry's rules with the catalog faked in memory;
//! - `rtmp_limits`: the RTMP server's limits before authentication, on a free port;
//! - `srt_slots`: the SRT listener's session slots, with handshakes made by hand;
//! - `stream_cap`: the stream cap as the `ffmpeg` CLI meets it over RTMP and SRT;
//! - `support`: the in-memory `StreamAuthority` they share.

mod distribute;
mod file;
mod ll_pipeline;
mod registry;
mod rtmp_limits;
mod srt_slots;
mod stream_cap;
mod support;

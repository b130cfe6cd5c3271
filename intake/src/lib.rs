//! The ingest's protocol level, pure: what publishers send, read into the media a
//! pipeline takes, and the ingest's configuration file. No I/O, no FFmpeg, no OpenSSL:
//! `ingest` drives this crate from its servers and pipelines, and the fuzz harnesses
//! (`fuzzing`) reach the same code without linking the ingest's transcoder (FFmpeg) and
//! WebRTC sessions (str0m on OpenSSL).
//!
//! - [`media`]: [`media::MediaInput`], what every ingest protocol hands a pipeline, with
//!   its codecs named.
//! - One module per publish protocol, named after the `ingest` module whose server uses
//!   it, each with its adapter into [`media::MediaInput`]: [`rtmp`] (FLV tag bodies, from
//!   RTMP or a file), [`srt`] (MPEG-TS; and the SRT listener's settings), [`webrtc`] (H.264
//!   access units and Opus packets with their RTP times; and what a datagram on the WebRTC
//!   port is, what a WHIP offer asks for, the WHIP side's limits).
//! - [`config`]: the configuration file (TOML), parsed and validated into the settings
//!   the servers take.
//! - [`error`]: the crate's one error enum, [`IntakeError`].
//!
//! The containers and codecs themselves (FLV tags, MPEG-TS, H.264 and the others) are the
//! `container` crate's, one layer down.

pub mod config;
pub mod error;
pub mod media;
pub mod rtmp;
pub mod srt;
pub mod webrtc;

pub use error::IntakeError;

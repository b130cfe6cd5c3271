//! sealcast `source`: a test-pattern publisher, the stand-in for OBS.
//!
//! It produces FFmpeg's `testsrc2` pattern with the UTC wall-clock time and the frame
//! number burnt in, plus a continuous sine tone, encodes them the way OBS does
//! (libx264 `veryfast` with B-frames, fixed keyframe interval, VBV-capped bitrate;
//! native AAC at 48 kHz) and publishes FLV over RTMP, or writes an FLV file for
//! benchmark fixtures. `sealcast source` and `sealcast up --demo` call [`run`] on a
//! dedicated thread.
//!
//! # Layout
//!
//! - [`config`]: [`SourceConfig`], its defaults and [`SourceConfig::validate`].
//! - [`error`]: [`SourceError`], and [`redact_output`], which keeps stream keys out of
//!   every message.
//! - [`clock`]: the burnt-in clock: a seven-segment font, its layout, drawing onto
//!   (and reading back from) yuv420p planes. Pure; no FFmpeg.
//! - [`stamp`]: the machine-readable clock: Unix milliseconds as a band of cells across
//!   the top of the picture, which the player reads back for glass-to-glass latency.
//! - `tone`: the continuous-phase sine generator. Pure.
//! - `pace`: the media timeline that says which frame is due next and when. Pure.
//! - `pattern`: the `testsrc2` source-only filter graph.
//! - `publish`: the FLV muxer (RTMP or file) and the x264 / AAC encoders.
//! - `run`: the blocking publish loop tying them together, with real-time pacing and
//!   the stop flag.
//!
//! Everything uses ffmpeg-next's safe API only; the crate forbids `unsafe`.

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod error;
mod pace;
mod pattern;
mod publish;
mod run;
pub mod stamp;
mod tone;

use std::sync::OnceLock;

use ffmpeg_next as ffmpeg;

pub use config::SourceConfig;
pub use error::{redact_output, SourceError};
pub use run::{run, SourceStats};

/// Initialises FFmpeg once per process (error strings, networking for RTMP), and
/// remembers the outcome for later callers.
fn init() -> Result<(), SourceError> {
    static INIT: OnceLock<Result<(), ffmpeg::Error>> = OnceLock::new();
    let result = INIT.get_or_init(|| {
        ffmpeg::init()?;
        ffmpeg::format::network::init();
        // FFmpeg and x264 print statistics at INFO on stderr; keep only errors.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
        Ok(())
    });
    (*result).map_err(SourceError::Init)
}

//! Every HLS playlist the cluster writes, rendered here and nowhere else, and read back
//! here too (`read`); pure, so callers render into memory and swap the whole text at once
//! and a player never reads a half-written playlist.
//!
//! - `master`: [`render_master`], one [`Variant`] per rendition.
//! - `media`: [`MediaWindow`], the sliding window of a live media playlist ([`Entry`] per
//!   segment), rendered for MPEG-TS (`{seq}.ts`) or CMAF (`EXT-X-MAP`, `{seq}.m4s`).
//! - `ll`: [`LlWindow`], the low-latency window of a CMAF rendition with its partial
//!   segments ([`PartEntry`]), its playlist with the LL tags and delta updates, and the
//!   [`Answer`] to a blocking reload.
//! - `query`: [`PlaylistQuery`], a playlist request's `_HLS_msn`, `_HLS_part` and
//!   `_HLS_skip`, parsed strictly.
//! - `vod`: a recording's playlist: a [`MediaWindow`] that never slides, rendered finished.
//! - `read`: [`read_media`] and [`read_master`], the one reader of what this module
//!   writes (for `sealcast verify` and the benchmark viewers), bounded and strict.
//! - `uris`: [`UriMarks`], where a rendered playlist's URIs end, so that a private
//!   stream's token is carried into every one of them per viewer without rendering again.
//!
//! URIs are relative to the playlist and follow the public layout (`domain::paths`):
//! `{rendition}/index.m3u8` from the master, `init.mp4`, `{seq}.ts`, `{seq}.m4s` and
//! `{seq}.{part}.m4s` from a media playlist.

mod ll;
mod master;
mod media;
mod query;
mod read;
mod uris;
mod vod;

pub use ll::{Answer, LlSegment, LlWindow, PartEntry, RenditionReport, PART_SEGMENTS};
pub use master::{render_master, Variant};
pub use media::{Entry, MediaWindow, PushError};
pub use query::{PlaylistQuery, MAX_QUERY};
pub use read::{
    read_master, read_media, ReadMedia, ReadPart, ReadSegment, ReadVariant, MAX_ATTRIBUTES,
    MAX_LINE, MAX_PARTS, MAX_PLAYLIST, MAX_REPORTS, MAX_SEGMENTS, MAX_URI, MAX_VARIANTS,
};
pub use uris::UriMarks;

use std::time::Duration;

/// Whole seconds, rounded up: `EXT-X-TARGETDURATION` must not be below any `EXTINF`.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// What m3u8-rs writes, as a string.
fn write_to_string(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::with_capacity(1024);
    // Writing into a Vec cannot fail, and m3u8-rs only writes UTF-8.
    let _ = write(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The most `EXT-X-DISCONTINUITY` tags written before one segment. Players count every
/// tag (hls.js's `frag.cc`), so a discontinuity sequence that moved on by more than one
/// between two listed segments (a publish session that ended before its first segment)
/// is that many tags; a jump past this bound is written as the bound, and the players
/// that check the signed sequence refuse what follows rather than the playlist growing
/// with it.
const MAX_DISCONTINUITY_TAGS: u64 = 16;

/// How many `EXT-X-DISCONTINUITY` tags go before a segment in discontinuity sequence
/// `current`: as many as it is past `before`, the one of the segment listed before it
/// (none when it is not past it, whatever else changed: a tag the signed sequence does not
/// count would make a player refuse every segment after it); for the first listed segment
/// (`before` is `None`), one if it is `flagged`.
fn discontinuity_tags(before: Option<u64>, current: u64, flagged: bool) -> u64 {
    match before {
        Some(b) => current.saturating_sub(b).min(MAX_DISCONTINUITY_TAGS),
        None => u64::from(flagged),
    }
}

/// Writes the [`discontinuity_tags`] before a segment; returns how many.
fn write_discontinuities(
    out: &mut String,
    before: Option<u64>,
    current: u64,
    flagged: bool,
) -> u64 {
    use std::fmt::Write as _;
    let tags = discontinuity_tags(before, current, flagged);
    for _ in 0..tags {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
    }
    tags
}

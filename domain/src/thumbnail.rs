//! A thumbnail: one still picture of a live stream, a small JPEG taken every few seconds
//! from the lowest rung by the ingest, signed like the media (`wire::ThumbnailStatement`)
//! and shown in the player's lists and on the dashboard.

use bytes::Bytes;

use crate::{SessionId, StreamName};

/// The largest thumbnail anyone takes or keeps, in bytes: a 320-pixel JPEG is a few tens
/// of kilobytes; anything over this is refused (by an edge before it buffers more).
pub const MAX_THUMBNAIL_BYTES: usize = 256 * 1024;

/// Everything about a thumbnail except its bytes: what its statement binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailMeta {
    /// The stream it shows.
    pub stream: StreamName,
    /// The publish session it was taken in: a thumbnail of an earlier session is not
    /// shown for a later one, and a recording's thumbnail is of its own session.
    pub session: SessionId,
    /// Media sequence of the segment the picture belongs to: thumbnails of a session
    /// order by it (and by `captured_ms` within one segment).
    pub sequence: u64,
    /// When the picture was captured, Unix milliseconds (the ingest's clock, as for
    /// `EXT-X-PROGRAM-DATE-TIME`).
    pub captured_ms: u64,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

/// A thumbnail: its metadata and the JPEG's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// What it is.
    pub meta: ThumbnailMeta,
    /// The JPEG (baseline, 4:2:0), at most [`MAX_THUMBNAIL_BYTES`].
    pub bytes: Bytes,
}

/// Whether `bytes` look like a JPEG: the start-of-image marker. Not a parser: nobody here
/// decodes a thumbnail (the browser does, after its signature verified).
pub fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xff, 0xd8, 0xff])
}

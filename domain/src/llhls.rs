//! The low-latency window's old home: it lives in [`crate::hls`] now, with every other
//! playlist. This module keeps the old paths compiling.

// moved to crate::hls; old path kept until the rename step (`Part` is
// `crate::hls::PartEntry` now, apart from `crate::segment::Part`, the part itself)
pub use crate::hls::{
    Answer, LlSegment, LlWindow, PartEntry as Part, PlaylistQuery, RenditionReport, MAX_QUERY,
    PART_SEGMENTS,
};

//! Live and master playlists' old home: they are rendered in [`crate::hls`] now, with every
//! other playlist. This module keeps the old paths compiling.

// moved to crate::hls; old path kept until the rename step
pub use crate::hls::{render_master, Entry, MediaWindow, PushError, Variant};

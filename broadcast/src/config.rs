//! How a broadcast node shapes its live windows.

use std::time::Duration;

/// Settings every stream on a node shares. They must match what ingest produces
/// (`domain::Ladder::window` and `domain::Ladder::segment_target`), so that every node lists
/// the same window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// How many segments a live media playlist lists. Two more are kept after they slide
    /// out, for players that read the playlist just before it moved on.
    pub window: usize,
    /// The segment duration ingest aims for; the starting EXT-X-TARGETDURATION, which only
    /// grows if a longer segment arrives.
    pub segment_target: Duration,
}

impl Default for NodeConfig {
    /// The brief's defaults: 2 s segments, six of them in a playlist.
    fn default() -> Self {
        NodeConfig {
            window: 6,
            segment_target: Duration::from_secs(2),
        }
    }
}

//! What the registry keeps of each stream it has seen ([`Slot`]): its numbering, and the
//! session live on it now ([`Live`]), if any.

use domain::SessionId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::pipeline::SessionFlags;

/// A stream's numbering across its sessions, and its live session.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) next_sequence: u64,
    pub(super) discontinuity_sequence: u64,
    pub(super) sessions: u64,
    pub(super) live: Option<Live>,
}

/// The session live on a stream here.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) session: SessionId,
    pub(super) takeover: CancellationToken,
    /// Cancelled when an operator ends the session (admin API).
    pub(super) ended: CancellationToken,
    pub(super) started_at: i64,
    pub(super) done: watch::Receiver<bool>,
    /// Whether the stream is private and recorded, shared with its pipeline.
    pub(super) flags: SessionFlags,
}

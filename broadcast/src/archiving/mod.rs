//! The archive side of recordings (issue 49): what a recording node recorded goes to the
//! cluster's archive once, and every node serves recordings from there.
//!
//! ```text
//! recorder thread ── writes a file (as before) ──► Spool::offer (key, path, size)
//!                                                     │ bounded in bytes; past it the
//!                                                     │ oldest are dropped, counted
//!                      uploader task (upload) ◄───────┘ oldest due first
//!                        HEAD: there already? skip (another node was first)
//!                        else put_if_absent (media, statements) or put (playlists,
//!                        recording.json, and its listing entry); a segment's local file
//!                        goes once archived; a store that is down: back to the front,
//!                        retried with backoff; once a minute, retention
//! /vod/..., /api/v1/recordings ──► Shelf (shelf): the archive, through a bounded cache
//! ```
//!
//! Which node writes: every recording node offers everything it records, each after its
//! own delay for that stream ([`spool::writer_delay`], a rendezvous hash of node and
//! stream spread over [`ArchiveSettings::writer_window`]). The node with the shortest delay
//! uploads; the others, a little later, find each file there with a `HEAD` and send no
//! bytes, and fill in what the first did not archive (it stopped, it dropped from a full
//! spool). No node needs to know which others record.
//!
//! Files: `queue` the spool's queue (pure), `spool` the shared spool, its metrics and the
//! writer delay, `upload` the uploader task and the archive's retention sweep, `shelf` the
//! read side. `rescan` offers what a previous run left on disk.

mod queue;
mod rescan;
mod shelf;
mod spool;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use archive::Archive;
use domain::NodeId;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

pub(crate) use queue::Write;
pub(crate) use rescan::rescan;
pub(crate) use shelf::Shelf;
pub(crate) use spool::Spool;
pub use spool::{FAMILIES, SKIPPED_BYTES, SPOOL_BYTES, SPOOL_DROPPED_BYTES, UPLOADED_BYTES};
pub(crate) use upload::RetentionFn;

use upload::Mode;

/// How a node uses the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// The most bytes a recording node holds on its disk for the archive (waiting while the
    /// store is down or slow); past it the oldest are dropped, counted.
    pub spool_bytes: u64,
    /// The most bytes of fetched recordings a node keeps in memory to serve them again.
    pub cache_bytes: u64,
    /// How far apart the nodes recording one stream start archiving it: the first writes,
    /// the others find its copy. Longer saves more duplicate uploads when the store is
    /// slow; a recording is listed this much later at worst.
    pub writer_window: Duration,
    /// How long a stopping node goes on archiving what it holds before it gives up (the
    /// rest stays on its disk and is offered again when it starts).
    pub drain_for: Duration,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            spool_bytes: 4 * 1024 * 1024 * 1024,
            cache_bytes: 256 * 1024 * 1024,
            writer_window: Duration::from_secs(4),
            drain_for: Duration::from_secs(10),
        }
    }
}

impl ArchiveSettings {
    /// How long `node` waits before archiving what it records of `stream` (the nodes
    /// recording a stream archive it in the order of these delays).
    pub fn writer_delay(&self, node: &NodeId, stream: &domain::StreamName) -> Duration {
        spool::writer_delay(node, stream, self.writer_window)
    }
}

/// A recording node's uploader: the spool and the task that empties it. Stopped (after
/// draining for [`ArchiveSettings::drain_for`]) by [`Archiver::close`], or at once when
/// dropped.
#[derive(Debug)]
pub(crate) struct Archiver {
    pub(crate) spool: Arc<Spool>,
    mode: watch::Sender<Mode>,
    /// Told when the task ended.
    finished: Option<std::sync::mpsc::Receiver<()>>,
    drain_for: Duration,
}

impl Archiver {
    /// Starts the uploader on the current tokio runtime; the spool's metrics to export.
    pub(crate) fn start(
        node: NodeId,
        archive: Archive,
        settings: &ArchiveSettings,
        retention: RetentionFn,
        generation: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<(Self, Registry), crate::BroadcastError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| crate::BroadcastError::NoRuntime)?;
        let (spool, registry) = Spool::new(node, settings.spool_bytes, settings.writer_window);
        let (mode, watching) = watch::channel(Mode::Run);
        let (done, finished) = std::sync::mpsc::sync_channel(1);
        let task_spool = Arc::clone(&spool);
        // Owned through `finished` and `mode`: `close` waits for it, dropping stops it.
        runtime.spawn(async move {
            upload::run(archive, task_spool, retention, generation, watching).await;
            let _ = done.send(());
        });
        Ok((
            Self {
                spool,
                mode,
                finished: Some(finished),
                drain_for: settings.drain_for,
            },
            registry,
        ))
    }

    /// Archives what is waiting, for at most the drain time, then stops the task. Blocks:
    /// call it off the executor (the node's `close_recordings` is).
    pub(crate) fn close(&mut self) {
        let _ = self.mode.send(Mode::Drain);
        self.spool.wake.notify_one();
        if let Some(finished) = self.finished.take() {
            if finished.recv_timeout(self.drain_for).is_err() {
                tracing::warn!("the archive did not take everything before the node stopped; the rest stays spooled on disk");
            }
        }
        let _ = self.mode.send(Mode::Stop);
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        let _ = self.mode.send(Mode::Stop);
    }
}

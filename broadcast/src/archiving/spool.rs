//! The spool: what this node recorded and the archive does not have yet, shared between
//! the recorder's thread (which offers every file it writes) and the uploader task (which
//! takes them out). The files stay on the node's disk until archived; the queue in memory
//! (`queue`) names them, bounded in bytes, and its size and what it dropped are metrics.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use archive::ArchiveKey;
use domain::{NodeId, StreamName};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use super::queue::{Item, Queue, Write};

/// `sealcast_archive_spool_bytes`, a gauge: bytes recorded here and not archived yet.
pub const SPOOL_BYTES: &str = "sealcast_archive_spool_bytes";
/// `sealcast_archive_spool_dropped_bytes`, a counter: recorded bytes dropped from the
/// spool past its bound (lost to the archive unless another node archived them).
pub const SPOOL_DROPPED_BYTES: &str = "sealcast_archive_spool_dropped_bytes";
/// `sealcast_archive_uploaded_bytes`, a counter: bytes this node wrote to the archive.
pub const UPLOADED_BYTES: &str = "sealcast_archive_uploaded_bytes";
/// `sealcast_archive_skipped_bytes`, a counter: recorded bytes this node did not upload
/// because the archive had them already (another node was first).
pub const SKIPPED_BYTES: &str = "sealcast_archive_skipped_bytes";

/// The archive's metric families on a recording node, as `/metrics` declares them.
pub const FAMILIES: [(&str, &str); 4] = [
    (SPOOL_BYTES, "gauge"),
    (SPOOL_DROPPED_BYTES, "counter"),
    (UPLOADED_BYTES, "counter"),
    (SKIPPED_BYTES, "counter"),
];

/// The spool's metrics.
#[derive(Debug, Default)]
pub(crate) struct SpoolMetrics {
    pub(crate) bytes: Gauge,
    pub(crate) dropped: Counter,
    pub(crate) uploaded: Counter,
    pub(crate) skipped: Counter,
}

impl SpoolMetrics {
    fn register(&self) -> Registry {
        // Counters get their `_total` suffix from the encoder.
        let mut registry = Registry::default();
        registry.register(
            SPOOL_BYTES,
            "Bytes recorded on this node and not archived yet",
            self.bytes.clone(),
        );
        registry.register(
            SPOOL_DROPPED_BYTES,
            "Recorded bytes dropped from the archive spool past its bound",
            self.dropped.clone(),
        );
        registry.register(
            UPLOADED_BYTES,
            "Bytes this node wrote to the archive",
            self.uploaded.clone(),
        );
        registry.register(
            SKIPPED_BYTES,
            "Recorded bytes not uploaded because the archive had them already",
            self.skipped.clone(),
        );
        registry
    }
}

/// The spool of one node.
#[derive(Debug)]
pub(crate) struct Spool {
    node: NodeId,
    /// How far apart nodes' writer delays spread (see [`writer_delay`]).
    window: Duration,
    queue: Mutex<Queue>,
    /// Woken when an item is offered, or the node stops.
    pub(crate) wake: Notify,
    /// Whether the spool is empty, for whoever waits for it to drain (sent under the
    /// queue's lock, so in order; read without it).
    empty: watch::Sender<bool>,
    pub(crate) metrics: SpoolMetrics,
}

impl Spool {
    /// An empty spool of at most `limit` bytes, and its metrics to export.
    pub(crate) fn new(node: NodeId, limit: u64, window: Duration) -> (Arc<Self>, Registry) {
        let spool = Self {
            node,
            window,
            queue: Mutex::new(Queue::new(limit)),
            wake: Notify::new(),
            empty: watch::channel(true).0,
            metrics: SpoolMetrics::default(),
        };
        let registry = spool.metrics.register();
        (Arc::new(spool), registry)
    }

    /// Offers the file at `path` (just written, `size` bytes) for `key`. Never waits for
    /// the archive. Past the bound the oldest waiting files are dropped: their segments
    /// leave this node's disk, counted.
    pub(crate) fn offer(
        &self,
        stream: &StreamName,
        key: ArchiveKey,
        path: &Path,
        write: Write,
        remove_after: bool,
    ) {
        let size = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "a recorded file vanished before it could be archived");
                return;
            }
        };
        let item = Item {
            key,
            path: path.to_path_buf(),
            size,
            due: Instant::now() + writer_delay(&self.node, stream, self.window),
            write,
            remove_after,
        };
        let dropped = {
            let mut queue = self.queue.lock();
            let dropped = queue.offer(item);
            self.publish(&queue);
            dropped
        };
        for item in dropped {
            self.metrics.dropped.inc_by(item.size);
            tracing::warn!(key = %item.key, "the archive spool is full; a recorded file is dropped");
            if item.remove_after {
                let _ = std::fs::remove_file(&item.path);
            }
        }
        self.wake.notify_one();
    }

    /// The oldest item due now while fewer than `most` are in flight, or when to look
    /// again (`None`: when one in flight is back).
    pub(crate) fn take_due(&self, most: usize) -> Result<Item, Option<Instant>> {
        let mut queue = self.queue.lock();
        let taken = queue.take_due(Instant::now(), most);
        self.publish(&queue);
        taken
    }

    /// `item`, taken, is archived or given up on.
    pub(crate) fn done(&self, item: &Item) {
        let mut queue = self.queue.lock();
        queue.done(item);
        self.publish(&queue);
    }

    /// `item`, taken, goes back to the front, to try again later.
    pub(crate) fn retry(&self, item: Item) {
        let mut queue = self.queue.lock();
        queue.retry(item);
        self.publish(&queue);
    }

    /// Everything waiting is due now.
    pub(crate) fn hurry(&self) {
        self.queue.lock().hurry(Instant::now());
    }

    /// Whether nothing is waiting or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// Waits until nothing is waiting or in flight.
    pub(crate) async fn drained(&self) {
        let mut empty = self.empty.subscribe();
        let _ = empty.wait_for(|empty| *empty).await;
    }

    fn publish(&self, queue: &Queue) {
        let bytes = queue.bytes();
        self.metrics
            .bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.empty.send_replace(queue.is_empty());
    }
}

/// How long this node waits before archiving what it recorded of `stream`: a rendezvous
/// hash of the node and the stream, spread over `window`. Every node that records the
/// stream computes its own; the one with the shortest wait archives first and the others,
/// later, find its copy with a `HEAD` and upload nothing. One node per stream writes,
/// without any node knowing which others record: if it stops or falls behind, the next
/// one's copy fills the gap.
pub(crate) fn writer_delay(node: &NodeId, stream: &StreamName, window: Duration) -> Duration {
    let digest = Sha256::new()
        .chain_update(node.as_str().as_bytes())
        .chain_update([0])
        .chain_update(stream.as_str().as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let fraction = u64::from_be_bytes(first) as f64 / u64::MAX as f64;
    window.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_delays_are_stable_spread_and_within_the_window() {
        let window = Duration::from_secs(4);
        let stream = StreamName::new("demo").expect("valid");
        let delays: Vec<Duration> = (0..50)
            .map(|i| {
                writer_delay(
                    &NodeId::new(format!("edge-{i}")).expect("valid"),
                    &stream,
                    window,
                )
            })
            .collect();
        assert!(delays.iter().all(|d| *d <= window));
        let a = NodeId::new("edge-0").expect("valid");
        assert_eq!(writer_delay(&a, &stream, window), delays[0]);
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 45, "spread: {delays:?}");
    }
}

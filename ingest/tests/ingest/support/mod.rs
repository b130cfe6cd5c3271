//! An in-memory [`StreamAuthority`] for the ingest's tests: stream keys, numbering as the
//! catalog keeps it, and a switch that makes every call fail, as a catalog that is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use domain::StreamName;
use ingest::{AuthorityError, Numbering, StreamAuthority};

/// Streams, their keys and numbering.
#[derive(Debug, Default)]
pub(crate) struct Authority {
    keys: Mutex<HashMap<String, StreamName>>,
    /// Stream → (next sequence, discontinuity sequence, sessions).
    numbering: Mutex<HashMap<StreamName, (u64, u64, u64)>>,
    live: Mutex<Vec<StreamName>>,
    down: AtomicBool,
    hung: AtomicBool,
    /// Streams the operator's `on_publish` hook refuses.
    hook_refuses: Mutex<Vec<StreamName>>,
}

#[allow(dead_code)] // each test binary uses its own part
impl Authority {
    /// `stream` publishes with `key`, its next segment numbered `next`.
    pub(crate) fn add(&self, key: &str, stream: &str, next: u64) -> StreamName {
        let stream = StreamName::new(stream).expect("valid name");
        self.keys
            .lock()
            .expect("lock")
            .insert(key.to_owned(), stream.clone());
        self.numbering
            .lock()
            .expect("lock")
            .insert(stream.clone(), (next, 0, 0));
        stream
    }

    /// Another ingest published `stream` meanwhile: its next segment is `next`.
    pub(crate) fn set_next(&self, stream: &StreamName, next: u64) {
        if let Some(entry) = self.numbering.lock().expect("lock").get_mut(stream) {
            entry.0 = next;
        }
    }

    /// The next sequence number recorded for `stream`.
    pub(crate) fn next(&self, stream: &StreamName) -> u64 {
        self.numbering
            .lock()
            .expect("lock")
            .get(stream)
            .map_or(0, |n| n.0)
    }

    /// Every call hangs from now on (never answers), or answers again.
    pub(crate) fn set_hung(&self, hung: bool) {
        self.hung.store(hung, Ordering::SeqCst);
    }

    /// Every call fails from now on (or works again).
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The operator's `on_publish` hook refuses `stream` from now on.
    pub(crate) fn hook_refuses(&self, stream: &StreamName) {
        self.hook_refuses.lock().expect("lock").push(stream.clone());
    }

    /// The streams marked live, in order.
    pub(crate) fn marked_live(&self) -> Vec<StreamName> {
        self.live.lock().expect("lock").clone()
    }

    /// Sessions counted for `stream`.
    pub(crate) fn sessions(&self, stream: &StreamName) -> u64 {
        self.numbering
            .lock()
            .expect("lock")
            .get(stream)
            .map_or(0, |n| n.2)
    }

    async fn check(&self) -> Result<(), AuthorityError> {
        if self.hung.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.down.load(Ordering::SeqCst) {
            Err("the catalog is down".into())
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl StreamAuthority for Authority {
    async fn authenticate(&self, key: &str) -> Result<Option<StreamName>, AuthorityError> {
        self.check().await?;
        Ok(self.keys.lock().expect("lock").get(key).cloned())
    }

    async fn may_publish(&self, stream: &StreamName) -> Result<bool, AuthorityError> {
        self.check().await?;
        Ok(!self.hook_refuses.lock().expect("lock").contains(stream))
    }

    async fn begin_numbering(&self, stream: &StreamName) -> Result<Numbering, AuthorityError> {
        self.check().await?;
        let mut numbering = self.numbering.lock().expect("lock");
        let entry = numbering
            .get_mut(stream)
            .ok_or_else(|| format!("no stream {stream}"))?;
        entry.2 += 1;
        if entry.2 > 1 {
            entry.1 += 1;
        }
        Ok(Numbering {
            first_sequence: entry.0,
            discontinuity_sequence: entry.1,
            discontinuity: entry.2 > 1,
        })
    }

    async fn mark_live(&self, stream: &StreamName, _at: i64) -> Result<(), AuthorityError> {
        self.check().await?;
        self.live.lock().expect("lock").push(stream.clone());
        Ok(())
    }

    async fn advance_sequence(&self, stream: &StreamName, next: u64) -> Result<(), AuthorityError> {
        self.check().await?;
        if let Some(entry) = self.numbering.lock().expect("lock").get_mut(stream) {
            entry.0 = entry.0.max(next);
        }
        Ok(())
    }
}

/// How many publishes `metrics` counted under `result` (`sealcast_ingest_publishes_total`).
pub(crate) fn publishes(metrics: &ingest::IngestMetrics, result: &str) -> f64 {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    let prefix = format!("sealcast_ingest_publishes_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The settings of a registry for "live" with the default ladder, one encoder thread, the
/// given grace, connection cap and stream cap, and no C2PA signing.
pub(crate) fn settings(
    end_grace: std::time::Duration,
    max_connections: usize,
    max_streams: Option<usize>,
) -> ingest::IngestSettings {
    ingest::IngestSettings {
        app: "live".into(),
        ladder: std::sync::Arc::new(domain::Ladder::default()),
        encoder_threads: 1,
        end_grace,
        max_connections,
        max_streams,
        provenance: None,
    }
}

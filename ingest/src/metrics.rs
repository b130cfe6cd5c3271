//! Ingest metrics: encode speed per rung, lag behind real time, shed rungs, publishes, and
//! distribution (push latency, failures and resyncs per broadcast node, signing time,
//! members).
//!
//! Labels carry stream, rendition and node names only — never a stream key, the push token
//! or key material.
//!
//! A standalone ingest exports them on the metrics listener of `control`
//! ([`plumbing::metrics_server`]).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use domain::{NodeId, RenditionName, StreamName};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The metric families this role registers: each name as registered (the exposition adds
/// `_total` to a counter's) with the kind `/metrics` declares it as. prometheus-client
/// leaves a `Family` out of `/metrics` until it has a label set, so a freshly started
/// process does not show them all; this list does (the dashboards' test reads it, and a
/// test below checks it against a scrape with every family in use).
pub const FAMILIES: [(&str, &str); 17] = [
    (ENCODE_FPS, "gauge"),
    (REALTIME_FACTOR, "gauge"),
    (LAG_SECONDS, "gauge"),
    (RUNGS_SHED, "counter"),
    (PUBLISHES, "counter"),
    (SEGMENTS, "counter"),
    (PUSH_SECONDS, "histogram"),
    (PUSH_FAILURES, "counter"),
    (PUSH_RESYNCS, "counter"),
    (SIGN_SECONDS, "histogram"),
    (MEMBERS, "gauge"),
    (PARTS_SIGNED, "counter"),
    (PART_SIGN_SECONDS, "histogram"),
    (PART_PUSH_FAILURES, "counter"),
    (PARTS_DROPPED, "counter"),
    (PUSH_BYTES, "counter"),
    (SEGMENT_PUSHES, "counter"),
];

/// `sealcast_ingest_push_bytes`, a counter: body bytes sent to each broadcast node, per
/// `kind` (one of [`PUSH_KINDS`]), every attempt counted (what crossed the network).
pub const PUSH_BYTES: &str = "sealcast_ingest_push_bytes";
/// `sealcast_ingest_segment_pushes`, a counter: segment pushes each broadcast node
/// acknowledged, per `form` (one of [`SEGMENT_FORMS`]).
pub const SEGMENT_PUSHES: &str = "sealcast_ingest_segment_pushes";

/// What a push carried, the `kind` of [`PUSH_BYTES`]: a whole segment's bytes, an LL-HLS
/// part's, a signed control event.
pub const PUSH_KINDS: [&str; 3] = ["segment", "part", "event"];
/// How a segment reached a node, the `form` of [`SEGMENT_PUSHES`]: its bytes (`whole`),
/// no bytes and made of the parts the node took (`assembled`), or its bytes after the node
/// answered that it missed a part (`fallback`).
pub const SEGMENT_FORMS: [&str; 3] = ["whole", "assembled", "fallback"];

/// `sealcast_ingest_encode_fps`, a gauge.
pub const ENCODE_FPS: &str = "sealcast_ingest_encode_fps";
/// `sealcast_ingest_realtime_factor`, a gauge.
pub const REALTIME_FACTOR: &str = "sealcast_ingest_realtime_factor";
/// `sealcast_ingest_lag_seconds`, a gauge.
pub const LAG_SECONDS: &str = "sealcast_ingest_lag_seconds";
/// `sealcast_ingest_rungs_shed`, a counter.
pub const RUNGS_SHED: &str = "sealcast_ingest_rungs_shed";
/// `sealcast_ingest_publishes`, a counter.
pub const PUBLISHES: &str = "sealcast_ingest_publishes";
/// `sealcast_ingest_segments`, a counter.
pub const SEGMENTS: &str = "sealcast_ingest_segments";
/// `sealcast_ingest_push_seconds`, a histogram.
pub const PUSH_SECONDS: &str = "sealcast_ingest_push_seconds";
/// `sealcast_ingest_push_failures`, a counter.
pub const PUSH_FAILURES: &str = "sealcast_ingest_push_failures";
/// `sealcast_ingest_push_resyncs`, a counter.
pub const PUSH_RESYNCS: &str = "sealcast_ingest_push_resyncs";
/// `sealcast_ingest_sign_seconds`, a histogram.
pub const SIGN_SECONDS: &str = "sealcast_ingest_sign_seconds";
/// `sealcast_ingest_members`, a gauge.
pub const MEMBERS: &str = "sealcast_ingest_members";
/// `sealcast_ingest_parts_signed`, a counter.
pub const PARTS_SIGNED: &str = "sealcast_ingest_parts_signed";
/// `sealcast_ingest_part_sign_seconds`, a histogram.
pub const PART_SIGN_SECONDS: &str = "sealcast_ingest_part_sign_seconds";
/// `sealcast_ingest_part_push_failures`, a counter.
pub const PART_PUSH_FAILURES: &str = "sealcast_ingest_part_push_failures";
/// `sealcast_ingest_parts_dropped`, a counter.
pub const PARTS_DROPPED: &str = "sealcast_ingest_parts_dropped";

type Labels = Vec<(&'static str, String)>;

/// Cheap to clone; every clone updates the same series.
#[derive(Debug, Clone, Default)]
pub struct IngestMetrics {
    inner: Arc<Inner>,
}

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

#[derive(Debug)]
struct Inner {
    encode_fps: Family<Labels, Gauge<f64, AtomicU64>>,
    realtime_factor: Family<Labels, Gauge<f64, AtomicU64>>,
    lag_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    rungs_shed: Family<Labels, Counter>,
    publishes: Family<Labels, Counter>,
    segments: Family<Labels, Counter>,
    push_seconds: HistogramFamily,
    push_failures: Family<Labels, Counter>,
    push_resyncs: Family<Labels, Counter>,
    sign_seconds: Histogram,
    members: Gauge,
    parts_signed: Counter,
    part_sign_seconds: Histogram,
    /// Per node, apart from segments': a lost part costs a moment, a lost segment a gap.
    part_push_failures: Family<Labels, Counter>,
    /// Per node: parts not queued because the node's queue was half full.
    parts_dropped: Family<Labels, Counter>,
    /// Per node and kind: body bytes sent, the measure of issue 46's "once".
    push_bytes: Family<Labels, Counter>,
    /// Per node and form: segments acknowledged.
    segment_pushes: Family<Labels, Counter>,
    /// The latest encode speed per rung, readable (a `Family` cannot be read back): what
    /// the ingest's load report lists. Entries go when their stream's session ends.
    speeds: parking_lot::Mutex<std::collections::HashMap<(StreamName, RenditionName), (f64, f64)>>,
}

/// Push latency buckets: 1 ms to about 8 s (past the default timeout with retries).
fn push_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            encode_fps: Family::default(),
            realtime_factor: Family::default(),
            lag_seconds: Family::default(),
            rungs_shed: Family::default(),
            publishes: Family::default(),
            segments: Family::default(),
            push_seconds: Family::new_with_constructor(push_histogram),
            push_failures: Family::default(),
            push_resyncs: Family::default(),
            // 100 µs to about 0.8 s: ML-DSA-65 signs in about 1 ms, hashing adds a little.
            sign_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 14)),
            members: Gauge::default(),
            parts_signed: Counter::default(),
            part_sign_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 14)),
            part_push_failures: Family::default(),
            parts_dropped: Family::default(),
            push_bytes: Family::default(),
            segment_pushes: Family::default(),
            speeds: parking_lot::Mutex::default(),
        }
    }
}

impl IngestMetrics {
    /// Registers every series in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let i = &self.inner;
        registry.register(
            ENCODE_FPS,
            "Frames per second a rung produces, measured between segments (the stream's frame rate when keeping up)",
            i.encode_fps.clone(),
        );
        registry.register(
            REALTIME_FACTOR,
            "Media seconds produced per wall-clock second, per rung (1.0 keeps up with a live publisher; below 1 falls behind)",
            i.realtime_factor.clone(),
        );
        registry.register(
            LAG_SECONDS,
            "How far the pipeline is behind the publisher's clock",
            i.lag_seconds.clone(),
        );
        registry.register(
            RUNGS_SHED,
            "Rungs dropped because encoding fell behind real time",
            i.rungs_shed.clone(),
        );
        registry.register(
            PUBLISHES,
            "RTMP publish attempts by result",
            i.publishes.clone(),
        );
        registry.register(SEGMENTS, "Segments produced per rung", i.segments.clone());
        registry.register(
            PUSH_SECONDS,
            "Time from the first attempt to the acknowledgement of a segment push, per broadcast node",
            i.push_seconds.clone(),
        );
        registry.register(
            PUSH_FAILURES,
            "Pushes given up (after retries, or refused by the node), per broadcast node",
            i.push_failures.clone(),
        );
        registry.register(
            PUSH_RESYNCS,
            "Times a broadcast node's queue overflowed and was replaced by the live window",
            i.push_resyncs.clone(),
        );
        registry.register(
            SIGN_SECONDS,
            "Time to hash and sign one segment",
            i.sign_seconds.clone(),
        );
        registry.register(
            MEMBERS,
            "Broadcast nodes this ingest pushes to",
            i.members.clone(),
        );
        registry.register(PARTS_SIGNED, "LL-HLS parts signed", i.parts_signed.clone());
        registry.register(
            PART_SIGN_SECONDS,
            "Time to hash and sign one LL-HLS part",
            i.part_sign_seconds.clone(),
        );
        registry.register(
            PART_PUSH_FAILURES,
            "LL-HLS part pushes given up per broadcast node",
            i.part_push_failures.clone(),
        );
        registry.register(
            PARTS_DROPPED,
            "LL-HLS parts not queued for a broadcast node whose queue was half full",
            i.parts_dropped.clone(),
        );
        registry.register(
            PUSH_BYTES,
            "Body bytes pushed to each broadcast node, by kind (segment, part, event), retries included",
            i.push_bytes.clone(),
        );
        registry.register(
            SEGMENT_PUSHES,
            "Segment pushes acknowledged per broadcast node, by form: whole, assembled from the parts it took, or whole after it missed a part",
            i.segment_pushes.clone(),
        );
    }

    /// `bytes` of `kind` (one of [`PUSH_KINDS`]) sent to `node`.
    pub(crate) fn pushed(&self, node: &NodeId, kind: &'static str, bytes: usize) {
        let mut labels = node_labels(node);
        labels.push(("kind", kind.to_owned()));
        self.inner
            .push_bytes
            .get_or_create(&labels)
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// A segment push `node` acknowledged, in `form` (one of [`SEGMENT_FORMS`]).
    pub(crate) fn segment_pushed(&self, node: &NodeId, form: &'static str) {
        let mut labels = node_labels(node);
        labels.push(("form", form.to_owned()));
        self.inner.segment_pushes.get_or_create(&labels).inc();
    }

    pub(crate) fn push_acknowledged(&self, node: &NodeId, took: Duration) {
        self.inner
            .push_seconds
            .get_or_create(&node_labels(node))
            .observe(took.as_secs_f64());
    }

    pub(crate) fn push_failed(&self, node: &NodeId) {
        self.inner
            .push_failures
            .get_or_create(&node_labels(node))
            .inc();
    }

    pub(crate) fn push_resync(&self, node: &NodeId) {
        self.inner
            .push_resyncs
            .get_or_create(&node_labels(node))
            .inc();
    }

    pub(crate) fn signed(&self, took: Duration) {
        self.inner.sign_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn part_signed(&self, took: Duration) {
        self.inner.parts_signed.inc();
        self.inner.part_sign_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn part_push_failed(&self, node: &NodeId) {
        self.inner
            .part_push_failures
            .get_or_create(&node_labels(node))
            .inc();
    }

    pub(crate) fn part_dropped(&self, node: &NodeId) {
        self.inner
            .parts_dropped
            .get_or_create(&node_labels(node))
            .inc();
    }

    pub(crate) fn set_members(&self, members: usize) {
        self.inner
            .members
            .set(i64::try_from(members).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_encode_speed(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
        fps: f64,
        factor: f64,
    ) {
        self.inner
            .speeds
            .lock()
            .insert((stream.clone(), rendition.clone()), (fps, factor));
        let labels = rung_labels(stream, rendition);
        self.inner.encode_fps.get_or_create(&labels).set(fps);
        self.inner
            .realtime_factor
            .get_or_create(&labels)
            .set(factor);
    }

    /// The latest encode speed (frames per second, real-time factor) of each rung of
    /// `stream` that is re-encoded, by rendition.
    pub fn encode_speeds(&self, stream: &StreamName) -> Vec<(RenditionName, f64, f64)> {
        let mut out: Vec<_> = self
            .inner
            .speeds
            .lock()
            .iter()
            .filter(|((s, _), _)| s == stream)
            .map(|((_, r), (fps, factor))| (r.clone(), *fps, *factor))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Forgets the encode speeds of `stream` (its publish ended).
    pub(crate) fn forget_speeds(&self, stream: &StreamName) {
        self.inner.speeds.lock().retain(|(s, _), _| s != stream);
    }

    pub(crate) fn set_lag(&self, stream: &StreamName, seconds: f64) {
        self.inner
            .lag_seconds
            .get_or_create(&vec![("stream", stream.to_string())])
            .set(seconds);
    }

    pub(crate) fn rung_shed(&self, stream: &StreamName, rendition: &RenditionName) {
        self.inner
            .rungs_shed
            .get_or_create(&rung_labels(stream, rendition))
            .inc();
    }

    /// Counts a publish attempt: `accepted`, `bad_key`, `bad_app`, `takeover`, `full` (at
    /// the stream cap), or a
    /// connection closed before it could publish: `protocol_error` (bytes the RTMP session
    /// refused), `oversized_setup` (too many bytes before the publish was accepted),
    /// `over_connection_cap` (closed on arrival: too many connections open).
    pub fn publish(&self, result: &'static str) {
        self.inner
            .publishes
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    pub(crate) fn segment(&self, stream: &StreamName, rendition: &RenditionName) {
        self.inner
            .segments
            .get_or_create(&rung_labels(stream, rendition))
            .inc();
    }
}

fn node_labels(node: &NodeId) -> Labels {
    vec![("node", node.to_string())]
}

fn rung_labels(stream: &StreamName, rendition: &RenditionName) -> Labels {
    vec![
        ("stream", stream.to_string()),
        ("rendition", rendition.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every family in use, `/metrics` declares exactly [`FAMILIES`].
    #[test]
    fn families_are_what_the_registry_declares() {
        let metrics = IngestMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let stream = StreamName::new("s").expect("valid");
        let rung = RenditionName::new("720p").expect("valid");
        let node = NodeId::new("edge1").expect("valid");
        metrics.set_encode_speed(&stream, &rung, 30.0, 1.0);
        metrics.set_lag(&stream, 0.5);
        metrics.rung_shed(&stream, &rung);
        metrics.publish("accepted");
        metrics.segment(&stream, &rung);
        metrics.push_acknowledged(&node, Duration::from_millis(3));
        metrics.push_failed(&node);
        metrics.push_resync(&node);
        metrics.part_push_failed(&node);
        metrics.part_dropped(&node);
        metrics.pushed(&node, "part", 10);
        metrics.segment_pushed(&node, "assembled");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        testkit::prometheus::assert_declares_exactly(&text, &FAMILIES);
    }
}

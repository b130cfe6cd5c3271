//! The node's Prometheus metrics, registered once and encoded for `/metrics`.
//!
//! Label values are public stream and rendition names and a fixed set of route names,
//! never anything taken verbatim from a request, so cardinality stays bounded by the
//! catalog.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::gate::RejectReason;
use crate::BroadcastError;

/// Every rejection reason, registered at zero so dashboards see them before the first one.
const REASONS: [RejectReason; 8] = [
    RejectReason::BadSignature,
    RejectReason::UnknownKey,
    RejectReason::ExpiredKey,
    RejectReason::RevokedKey,
    RejectReason::Replay,
    RejectReason::DigestMismatch,
    RejectReason::Timeout,
    RejectReason::Overflow,
];

/// The kinds of control message a node decodes, the label of
/// `sealcast_control_messages_ignored_total{kind}`.
pub(crate) const MESSAGE_KINDS: [&str; 4] = ["presence", "certificate", "revocation", "manifest"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SegmentLabels {
    stream: String,
    rendition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

/// Handles to every metric the node exports, next to the registry that exports them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Registries of roles running in the same process (an ingest next to this node),
    /// exported on the same `/metrics`.
    extra: Vec<std::sync::Arc<Registry>>,
    segments_published: Family<SegmentLabels, Counter>,
    live_streams: Gauge,
    /// Distinct viewers per live stream, set at every scrape from the node's audience.
    viewers: Family<StreamLabels, Gauge>,
    http_requests: Family<RequestLabels, Counter>,
    segments_rejected: Family<ReasonLabels, Counter>,
    /// Time of one signature verification (CPU only).
    verify_seconds: Histogram,
    /// From a segment's bytes arriving to its publication.
    wait_seconds: Histogram,
    pending_segments: Gauge,
    manifests_verified: Counter,
    push_bytes: Counter,
    control_ignored: Family<KindLabels, Counter>,
    gaps: Counter,
    response_bytes: Counter,
    /// Totals of the gate's outcomes, readable for the load report (a `Family` cannot be
    /// summed back).
    verified_total: std::sync::atomic::AtomicU64,
    rejected_total: std::sync::atomic::AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let segments_published = Family::<SegmentLabels, Counter>::default();
        let live_streams = Gauge::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "sealcast_segments_published",
            "Segments made visible in a live media playlist",
            segments_published.clone(),
        );
        registry.register(
            "sealcast_live_streams",
            "Streams with a live publish session",
            live_streams.clone(),
        );
        let viewers = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "sealcast_viewers",
            "Distinct viewers (client addresses) of each live stream in the last few seconds",
            viewers.clone(),
        );
        registry.register(
            "sealcast_http_requests",
            "HTTP requests served, by route and status",
            http_requests.clone(),
        );
        let segments_rejected = Family::<ReasonLabels, Counter>::default();
        for reason in REASONS {
            let _ = segments_rejected.get_or_create(&ReasonLabels {
                reason: reason.label(),
            });
        }
        registry.register(
            "sealcast_segments_rejected",
            "Segments or manifests refused by the signature gate, by reason",
            segments_rejected.clone(),
        );
        // 50 µs (an Ed25519 verify) to about 0.8 s.
        let verify_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 15));
        registry.register(
            "sealcast_signature_verify_seconds",
            "Time to verify one manifest signature",
            verify_seconds.clone(),
        );
        // 1 ms to about 16 s: a manifest normally arrives within a target duration.
        let wait_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "sealcast_signature_wait_seconds",
            "Time from a segment's bytes arriving to its publication",
            wait_seconds.clone(),
        );
        let pending_segments = Gauge::default();
        registry.register(
            "sealcast_pending_segments",
            "Segments held by the signature gate (unverified or waiting for order)",
            pending_segments.clone(),
        );
        let manifests_verified = Counter::default();
        registry.register(
            "sealcast_manifests_verified",
            "Segment manifests whose signature verified",
            manifests_verified.clone(),
        );
        let push_bytes = Counter::default();
        registry.register(
            "sealcast_push_bytes",
            "Segment bytes received by HTTP push",
            push_bytes.clone(),
        );
        let control_ignored = Family::<KindLabels, Counter>::default();
        for kind in MESSAGE_KINDS {
            let _ = control_ignored.get_or_create(&KindLabels { kind });
        }
        registry.register(
            "sealcast_control_messages_ignored",
            "MQTT control messages that could not be decoded or did not fit their topic",
            control_ignored.clone(),
        );
        let gaps = Counter::default();
        registry.register(
            "sealcast_segment_gaps",
            "Sequence numbers listed as EXT-X-GAP because their manifest never came",
            gaps.clone(),
        );
        let response_bytes = Counter::default();
        registry.register(
            "sealcast_http_response_bytes",
            "Bytes of response bodies sent",
            response_bytes.clone(),
        );
        Metrics {
            registry,
            extra: Vec::new(),
            segments_published,
            live_streams,
            viewers,
            http_requests,
            segments_rejected,
            verify_seconds,
            wait_seconds,
            pending_segments,
            manifests_verified,
            push_bytes,
            control_ignored,
            gaps,
            response_bytes,
            verified_total: std::sync::atomic::AtomicU64::new(0),
            rejected_total: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn segment_published(&self, stream: &str, rendition: &str) {
        self.verified_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.segments_published
            .get_or_create(&SegmentLabels {
                stream: stream.to_owned(),
                rendition: rendition.to_owned(),
            })
            .inc();
    }

    /// Follows a stream going live (`+1`) or ending (`-1`).
    pub(crate) fn live_streams_add(&self, delta: i64) {
        self.live_streams.inc_by(delta);
    }

    /// Replaces the viewer counts with `viewers` (streams not in it are dropped).
    pub(crate) fn set_viewers(
        &self,
        viewers: &std::collections::BTreeMap<domain::StreamName, u64>,
    ) {
        self.viewers.clear();
        for (stream, count) in viewers {
            self.viewers
                .get_or_create(&StreamLabels {
                    stream: stream.to_string(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn http_request(&self, route: &'static str, status: u16) {
        self.http_requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    pub(crate) fn rejected(&self, reason: RejectReason) {
        self.rejected_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.segments_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .inc();
    }

    pub(crate) fn gap(&self) {
        self.gaps.inc();
    }

    pub(crate) fn response_bytes(&self, n: u64) {
        self.response_bytes.inc_by(n);
    }

    /// What the gate did since the node started: published (verified), refused, gaps.
    pub(crate) fn segment_counts(&self) -> domain::load::SegmentCounts {
        use std::sync::atomic::Ordering::Relaxed;
        domain::load::SegmentCounts {
            verified: self.verified_total.load(Relaxed),
            rejected: self.rejected_total.load(Relaxed),
            gaps: self.gaps.get(),
        }
    }

    pub(crate) fn verify_took(&self, seconds: f64) {
        self.verify_seconds.observe(seconds);
    }

    pub(crate) fn waited(&self, seconds: f64) {
        self.wait_seconds.observe(seconds);
    }

    pub(crate) fn set_pending(&self, pending: usize) {
        self.pending_segments
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    pub(crate) fn manifest_verified(&self) {
        self.manifests_verified.inc();
    }

    pub(crate) fn pushed_bytes(&self, n: usize) {
        self.push_bytes.inc_by(n as u64);
    }

    /// `kind` is one of [`MESSAGE_KINDS`].
    pub(crate) fn control_ignored(&self, kind: &'static str) {
        self.control_ignored
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> Result<String, BroadcastError> {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        encode_registry(&mut out, &self.registry).map_err(BroadcastError::Metrics)?;
        for extra in &self.extra {
            encode_registry(&mut out, extra).map_err(BroadcastError::Metrics)?;
        }
        encode_eof(&mut out).map_err(BroadcastError::Metrics)?;
        Ok(out)
    }

    pub(crate) fn add_registry(&mut self, registry: std::sync::Arc<Registry>) {
        self.extra.push(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_the_names_the_brief_promises() {
        let m = Metrics::new();
        m.segment_published("demo", "720p");
        m.live_streams_add(1);
        m.http_request("master", 200);
        let text = m.encode().expect("encodes");
        for needle in [
            "sealcast_segments_published_total{stream=\"demo\",rendition=\"720p\"} 1",
            "sealcast_live_streams 1",
            "sealcast_http_requests_total{route=\"master\",status=\"200\"} 1",
            "sealcast_signature_verify_seconds_count 0",
            "sealcast_signature_wait_seconds_count 0",
            "sealcast_pending_segments 0",
            "sealcast_manifests_verified_total 0",
            "sealcast_push_bytes_total 0",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        for reason in REASONS {
            let needle = format!(
                "sealcast_segments_rejected_total{{reason=\"{}\"}} 0",
                reason.label()
            );
            assert!(text.contains(&needle), "{needle} missing in {text}");
        }
        for kind in MESSAGE_KINDS {
            let needle = format!("sealcast_control_messages_ignored_total{{kind=\"{kind}\"}} 0");
            assert!(text.contains(&needle), "{needle} missing in {text}");
        }
    }
}

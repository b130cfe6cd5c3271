//! The node's Prometheus metrics, registered once and encoded for `/metrics`.
//!
//! Label values are public stream and rendition names and a fixed set of route names,
//! never anything taken verbatim from a request, so cardinality stays bounded by the
//! catalog.
//!
//! Long because every family the node exports is named, registered with its help text and
//! its fixed label values, and updated here: one file says what `/metrics` promises.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::edge::RejectReason;
use crate::BroadcastError;

/// The metric families this role registers: each name as registered (the exposition adds
/// `_total` to a counter's) with the kind `/metrics` declares it as. prometheus-client
/// leaves a `Family` out of `/metrics` until it has a label set, so a freshly started
/// process does not show them all; this list does (the dashboards' test reads it, and a
/// test below checks it against a scrape with every family in use).
pub const FAMILIES: [(&str, &str); 24] = [
    (SEGMENTS_PUBLISHED, "counter"),
    (LIVE_STREAMS, "gauge"),
    (VIEWERS, "gauge"),
    (NODE_VIEWERS, "gauge"),
    (HTTP_REQUESTS, "counter"),
    (SEGMENTS_REJECTED, "counter"),
    (SIGNATURE_VERIFY_SECONDS, "histogram"),
    (SIGNATURE_WAIT_SECONDS, "histogram"),
    (PENDING_SEGMENTS, "gauge"),
    (SEGMENTS_BEHIND_LIVE, "gauge"),
    (STATEMENTS_VERIFIED, "counter"),
    (PUSH_BYTES, "counter"),
    (CONTROL_MESSAGES_IGNORED, "counter"),
    (SEGMENT_GAPS, "counter"),
    (HTTP_RESPONSE_BYTES, "counter"),
    (HTTP_CONNECTIONS_CLOSED, "counter"),
    (HTTP_CONNECTIONS_PARKED, "gauge"),
    (CONTROL_EVENTS_REFUSED, "counter"),
    (PARTS_PUBLISHED, "counter"),
    (PARTS_REJECTED, "counter"),
    (PART_WAIT_SECONDS, "histogram"),
    (ACCESS_REFUSED, "counter"),
    (SEGMENTS_ASSEMBLED, "counter"),
    (THUMBNAILS, "counter"),
];

/// `sealcast_segments_published`, a counter.
pub const SEGMENTS_PUBLISHED: &str = "sealcast_segments_published";
/// `sealcast_live_streams`, a gauge.
pub const LIVE_STREAMS: &str = "sealcast_live_streams";
/// `sealcast_viewers`, a gauge: distinct viewers per live stream (a series per live
/// stream, so none on a node without one).
pub const VIEWERS: &str = "sealcast_viewers";
/// `sealcast_node_viewers`, a gauge: the node's viewers, every live stream's together (the
/// sum of [`VIEWERS`]), always exported, 0 when nobody watches. What the Kubernetes
/// autoscaler scales on: an autoscaler that finds no series for a pod never scales down,
/// and [`VIEWERS`] has none on a node without a live stream.
pub const NODE_VIEWERS: &str = "sealcast_node_viewers";
/// `sealcast_http_requests`, a counter.
pub const HTTP_REQUESTS: &str = "sealcast_http_requests";
/// `sealcast_segments_rejected`, a counter.
pub const SEGMENTS_REJECTED: &str = "sealcast_segments_rejected";
/// `sealcast_signature_verify_seconds`, a histogram.
pub const SIGNATURE_VERIFY_SECONDS: &str = "sealcast_signature_verify_seconds";
/// `sealcast_signature_wait_seconds`, a histogram.
pub const SIGNATURE_WAIT_SECONDS: &str = "sealcast_signature_wait_seconds";
/// `sealcast_pending_segments`, a gauge.
pub const PENDING_SEGMENTS: &str = "sealcast_pending_segments";
/// `sealcast_segments_behind_live`, a gauge.
pub const SEGMENTS_BEHIND_LIVE: &str = "sealcast_segments_behind_live";
/// `sealcast_manifests_verified`, a counter of verified segment statements. The metric
/// keeps the old word; it is wire (dashboards and alerts read it).
pub const STATEMENTS_VERIFIED: &str = "sealcast_manifests_verified";
/// `sealcast_push_bytes`, a counter.
pub const PUSH_BYTES: &str = "sealcast_push_bytes";
/// `sealcast_control_messages_ignored`, a counter.
pub const CONTROL_MESSAGES_IGNORED: &str = "sealcast_control_messages_ignored";
/// `sealcast_segment_gaps`, a counter.
pub const SEGMENT_GAPS: &str = "sealcast_segment_gaps";
/// `sealcast_http_response_bytes`, a counter.
pub const HTTP_RESPONSE_BYTES: &str = "sealcast_http_response_bytes";
/// `sealcast_http_connections_closed`, a counter.
pub const HTTP_CONNECTIONS_CLOSED: &str = "sealcast_http_connections_closed";
/// `sealcast_http_connections_parked`, a gauge: idle HTTP/1.1 connections waiting for
/// their next request without any HTTP state.
pub const HTTP_CONNECTIONS_PARKED: &str = "sealcast_http_connections_parked";

/// `sealcast_control_events_refused`, a counter.
pub const CONTROL_EVENTS_REFUSED: &str = "sealcast_control_events_refused";
/// `sealcast_part_wait_seconds`, a histogram: a part's bytes arriving to its publication
/// (what the part gate adds to an LL-HLS part's latency).
pub const PART_WAIT_SECONDS: &str = "sealcast_part_wait_seconds";
/// `sealcast_parts_published`, a counter: LL-HLS parts the part gate published.
pub const PARTS_PUBLISHED: &str = "sealcast_parts_published";
/// `sealcast_parts_rejected`, a counter: parts or part statements refused, by reason.
pub const PARTS_REJECTED: &str = "sealcast_parts_rejected";
/// `sealcast_access_refused`, a counter: requests for a private stream refused, by reason
/// (one of [`ACCESS_REFUSALS`]).
pub const ACCESS_REFUSED: &str = "sealcast_access_refused";

/// `sealcast_segments_assembled`, a counter: segments pushed without a body (made of
/// their parts on the node), by outcome (one of [`ASSEMBLY_OUTCOMES`]).
pub const SEGMENTS_ASSEMBLED: &str = "sealcast_segments_assembled";

/// What became of a bodiless segment push, the label of
/// `sealcast_segments_assembled_total{outcome}`: made of the parts held (`assembled`,
/// still gated by the segment's statement), or answered `409` because a part was missing
/// or ambiguous (`parts_missing`: the ingest then pushes the whole segment).
pub const ASSEMBLY_OUTCOMES: [&str; 2] = ["assembled", "parts_missing"];

/// `sealcast_thumbnails`, a counter: pushed thumbnails by outcome (one of
/// [`THUMBNAIL_OUTCOMES`]).
pub const THUMBNAILS: &str = "sealcast_thumbnails";

/// What became of a pushed thumbnail, the label of `sealcast_thumbnails_total{outcome}`:
/// kept (verified, the stream's newest), `stale` (verified, not newer than the one held),
/// `other_session` (not of the stream's live session), or refused: `malformed` (no or a
/// bad statement), `digest_mismatch` (bytes that are not what was signed) and the trust
/// store's reasons (`bad_signature`, `unknown_key`, `expired_key`, `revoked_key`).
pub const THUMBNAIL_OUTCOMES: [&str; 9] = [
    "kept",
    "stale",
    "other_session",
    "malformed",
    "digest_mismatch",
    "bad_signature",
    "unknown_key",
    "expired_key",
    "revoked_key",
];

/// Why a request for a private stream was refused, the label of
/// `sealcast_access_refused_total{reason}`: no token (`missing`, 401), a token that is not
/// valid (401: `certs::tokens::TokenRefusal`'s labels), or one that does not open the
/// request (403: `certs::tokens::AccessRefusal`'s labels, and `refused_by_hook`).
pub const ACCESS_REFUSALS: [&str; 11] = [
    "missing",
    "too_long",
    "malformed",
    "bad_signature",
    "algorithm",
    "expired",
    "not_yet_valid",
    "wrong_stream",
    "wrong_address",
    "no_recordings",
    "refused_by_hook",
];

/// Why a pushed control event was refused, the label of
/// `sealcast_control_events_refused_total{reason}`: the trust store's reasons, `stale`
/// (signed too long ago or too far ahead, or before the session it would change) and
/// `malformed` (no valid signed statement, or a signed body that is not a valid event).
pub(crate) const EVENT_REFUSALS: [&str; 6] = [
    "bad_signature",
    "unknown_key",
    "expired_key",
    "revoked_key",
    "stale",
    "malformed",
];

/// Why the HTTP server closed a connection, the label of
/// `sealcast_http_connections_closed_total{reason}`.
pub(crate) const CLOSE_REASONS: [&str; 5] = [
    "over_connection_cap",
    "header_timeout",
    "idle_timeout",
    "shutdown_grace",
    "error",
];

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

/// Every rejection reason of a part: a segment's, and the two of delegated part keys.
const PART_REASONS: [RejectReason; 10] = [
    RejectReason::BadSignature,
    RejectReason::UnknownKey,
    RejectReason::ExpiredKey,
    RejectReason::RevokedKey,
    RejectReason::Replay,
    RejectReason::DigestMismatch,
    RejectReason::Timeout,
    RejectReason::Overflow,
    RejectReason::UnknownDelegation,
    RejectReason::ExpiredDelegation,
];

/// The kinds of control message a node decodes, the label of
/// `sealcast_control_messages_ignored_total{kind}`. A media statement's label keeps the
/// old word, `manifest`; it is wire.
pub(crate) const MESSAGE_KINDS: [&str; 4] = ["presence", "certificate", "revocation", "manifest"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
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
    /// Their sum, set with them; a plain gauge, so it is exported at 0 too.
    node_viewers: Gauge,
    http_requests: Family<RequestLabels, Counter>,
    segments_rejected: Family<ReasonLabels, Counter>,
    /// Time of one signature verification (CPU only).
    verify_seconds: Histogram,
    /// From a segment's bytes arriving to its publication.
    wait_seconds: Histogram,
    pending_segments: Gauge,
    segments_behind_live: Gauge,
    statements_verified: Counter,
    push_bytes: Counter,
    control_ignored: Family<KindLabels, Counter>,
    gaps: Counter,
    response_bytes: Counter,
    connections_closed: Family<ReasonLabels, Counter>,
    connections_parked: Gauge,
    events_refused: Family<ReasonLabels, Counter>,
    parts_published: Counter,
    part_wait_seconds: Histogram,
    parts_rejected: Family<ReasonLabels, Counter>,
    access_refused: Family<ReasonLabels, Counter>,
    segments_assembled: Family<OutcomeLabels, Counter>,
    thumbnails: Family<OutcomeLabels, Counter>,
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
            SEGMENTS_PUBLISHED,
            "Segments made visible in a live media playlist",
            segments_published.clone(),
        );
        registry.register(
            LIVE_STREAMS,
            "Streams with a live publish session",
            live_streams.clone(),
        );
        let viewers = Family::<StreamLabels, Gauge>::default();
        registry.register(
            VIEWERS,
            "Distinct viewers (client addresses) of each live stream in the last few seconds",
            viewers.clone(),
        );
        let node_viewers = Gauge::default();
        registry.register(
            NODE_VIEWERS,
            "Viewers of every live stream on this node together (0 when nobody watches)",
            node_viewers.clone(),
        );
        registry.register(
            HTTP_REQUESTS,
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
            SEGMENTS_REJECTED,
            "Segments or manifests refused by the signature gate, by reason",
            segments_rejected.clone(),
        );
        // 50 µs (an Ed25519 verify) to about 0.8 s.
        let verify_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 15));
        registry.register(
            SIGNATURE_VERIFY_SECONDS,
            "Time to verify one manifest signature",
            verify_seconds.clone(),
        );
        // 1 ms to about 16 s: a statement normally arrives within a target duration.
        let wait_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            SIGNATURE_WAIT_SECONDS,
            "Time from a segment's bytes arriving to its publication",
            wait_seconds.clone(),
        );
        let pending_segments = Gauge::default();
        registry.register(
            PENDING_SEGMENTS,
            "Segments held by the signature gate (unverified or waiting for order)",
            pending_segments.clone(),
        );
        let segments_behind_live = Gauge::default();
        registry.register(
            SEGMENTS_BEHIND_LIVE,
            "Verified segments of the furthest-behind live rendition not yet published (1 is normal)",
            segments_behind_live.clone(),
        );
        let statements_verified = Counter::default();
        registry.register(
            STATEMENTS_VERIFIED,
            "Segment manifests whose signature verified",
            statements_verified.clone(),
        );
        let push_bytes = Counter::default();
        registry.register(
            PUSH_BYTES,
            "Segment bytes received by HTTP push",
            push_bytes.clone(),
        );
        let control_ignored = Family::<KindLabels, Counter>::default();
        for kind in MESSAGE_KINDS {
            let _ = control_ignored.get_or_create(&KindLabels { kind });
        }
        registry.register(
            CONTROL_MESSAGES_IGNORED,
            "MQTT control messages that could not be decoded or did not fit their topic",
            control_ignored.clone(),
        );
        let gaps = Counter::default();
        registry.register(
            SEGMENT_GAPS,
            "Sequence numbers listed as EXT-X-GAP because their manifest never came",
            gaps.clone(),
        );
        let response_bytes = Counter::default();
        registry.register(
            HTTP_RESPONSE_BYTES,
            "Bytes of response bodies sent",
            response_bytes.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        for reason in CLOSE_REASONS {
            let _ = connections_closed.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            HTTP_CONNECTIONS_CLOSED,
            "HTTP connections the server closed: over the connection cap, a request header too slow, idle, or a connection error",
            connections_closed.clone(),
        );
        let connections_parked = Gauge::default();
        registry.register(
            HTTP_CONNECTIONS_PARKED,
            "Idle HTTP/1.1 connections waiting for their next request without HTTP state",
            connections_parked.clone(),
        );
        let events_refused = Family::<ReasonLabels, Counter>::default();
        for reason in EVENT_REFUSALS {
            let _ = events_refused.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            CONTROL_EVENTS_REFUSED,
            "Pushed control events refused: signature, key, age or shape",
            events_refused.clone(),
        );
        let parts_published = Counter::default();
        registry.register(
            PARTS_PUBLISHED,
            "LL-HLS parts made visible: bytes and a verified part manifest met and agree",
            parts_published.clone(),
        );
        // 0.5 ms to about 4 s: a part's statement normally comes within milliseconds.
        let part_wait_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            PART_WAIT_SECONDS,
            "Time from an LL-HLS part's bytes arriving to its publication",
            part_wait_seconds.clone(),
        );
        let parts_rejected = Family::<ReasonLabels, Counter>::default();
        for reason in PART_REASONS {
            let _ = parts_rejected.get_or_create(&ReasonLabels {
                reason: reason.label(),
            });
        }
        registry.register(
            PARTS_REJECTED,
            "LL-HLS parts or part manifests refused by the part gate, by reason",
            parts_rejected.clone(),
        );
        let access_refused = Family::<ReasonLabels, Counter>::default();
        for reason in ACCESS_REFUSALS {
            let _ = access_refused.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            ACCESS_REFUSED,
            "Requests for a private stream refused: no playback token, a token that is not valid, or one that does not open the request",
            access_refused.clone(),
        );
        let segments_assembled = Family::<OutcomeLabels, Counter>::default();
        for outcome in ASSEMBLY_OUTCOMES {
            let _ = segments_assembled.get_or_create(&OutcomeLabels { outcome });
        }
        registry.register(
            SEGMENTS_ASSEMBLED,
            "Segments pushed without a body, by outcome: made of the LL-HLS parts held, or the parts missing (the whole segment is pushed then)",
            segments_assembled.clone(),
        );
        let thumbnails = Family::<OutcomeLabels, Counter>::default();
        for outcome in THUMBNAIL_OUTCOMES {
            let _ = thumbnails.get_or_create(&OutcomeLabels { outcome });
        }
        registry.register(
            THUMBNAILS,
            "Pushed thumbnails, by outcome: kept, not newer or not of the live session, or refused (malformed, digest mismatch, or why its signature was not trusted)",
            thumbnails.clone(),
        );
        Metrics {
            thumbnails,
            segments_assembled,
            access_refused,
            parts_published,
            part_wait_seconds,
            parts_rejected,
            registry,
            extra: Vec::new(),
            segments_published,
            live_streams,
            viewers,
            node_viewers,
            http_requests,
            segments_rejected,
            verify_seconds,
            wait_seconds,
            pending_segments,
            segments_behind_live,
            statements_verified,
            push_bytes,
            control_ignored,
            gaps,
            response_bytes,
            connections_closed,
            connections_parked,
            events_refused,
            verified_total: std::sync::atomic::AtomicU64::new(0),
            rejected_total: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A request for a private stream refused; `reason` is one of [`ACCESS_REFUSALS`].
    pub(crate) fn access_refused(&self, reason: &'static str) {
        self.access_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// `reason` is one of [`EVENT_REFUSALS`].
    pub(crate) fn event_refused(&self, reason: &'static str) {
        self.events_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The HTTP server closed a connection, for one of [`CLOSE_REASONS`].
    pub(crate) fn http_connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// An idle HTTP/1.1 connection parked (`+1`) or woke (`-1`).
    pub(crate) fn http_connections_parked(&self, change: i64) {
        self.connections_parked.inc_by(change);
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

    /// Replaces the viewer counts with `viewers` (streams not in it are dropped), and the
    /// node's total with their sum.
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
        let total = viewers
            .values()
            .fold(0_u64, |sum, n| sum.saturating_add(*n));
        self.node_viewers
            .set(i64::try_from(total).unwrap_or(i64::MAX));
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

    /// A part was published `waited` seconds after its bytes arrived.
    pub(crate) fn part_published(&self, waited: f64) {
        self.parts_published.inc();
        self.part_wait_seconds.observe(waited);
    }

    pub(crate) fn part_rejected(&self, reason: RejectReason) {
        self.parts_rejected
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

    pub(crate) fn set_behind_live(&self, segments: u64) {
        self.segments_behind_live
            .set(i64::try_from(segments).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_pending(&self, pending: usize) {
        self.pending_segments
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    pub(crate) fn statement_verified(&self) {
        self.statements_verified.inc();
    }

    /// A bodiless segment push: `outcome` is one of [`ASSEMBLY_OUTCOMES`].
    pub(crate) fn assembly(&self, outcome: &'static str) {
        self.segments_assembled
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// A pushed thumbnail: `outcome` is one of [`THUMBNAIL_OUTCOMES`].
    pub(crate) fn thumbnail(&self, outcome: &'static str) {
        self.thumbnails
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
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

    /// With every family in use, `/metrics` declares exactly [`FAMILIES`].
    #[test]
    fn families_are_what_the_registry_declares() {
        let m = Metrics::new();
        m.segment_published("demo", "720p");
        m.set_viewers(&[(domain::StreamName::new("demo").expect("valid"), 2)].into());
        m.http_request("master", 200);
        let text = m.encode().expect("encodes");
        testkit::prometheus::assert_declares_exactly(&text, &FAMILIES);
    }

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
            "sealcast_node_viewers 0",
            "sealcast_http_requests_total{route=\"master\",status=\"200\"} 1",
            "sealcast_signature_verify_seconds_count 0",
            "sealcast_signature_wait_seconds_count 0",
            "sealcast_pending_segments 0",
            "sealcast_segments_behind_live 0",
            "sealcast_manifests_verified_total 0",
            "sealcast_push_bytes_total 0",
            "sealcast_parts_published_total 0",
            "sealcast_parts_rejected_total{reason=\"digest_mismatch\"} 0",
            "sealcast_parts_rejected_total{reason=\"expired_delegation\"} 0",
            "sealcast_segments_assembled_total{outcome=\"assembled\"} 0",
            "sealcast_segments_assembled_total{outcome=\"parts_missing\"} 0",
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

//! The node's Prometheus metrics, registered once and encoded for `/metrics`.
//!
//! Label values are public stream and rendition names and a fixed set of route names,
//! never anything taken verbatim from a request, so cardinality stays bounded by the
//! catalog.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::BroadcastError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SegmentLabels {
    stream: String,
    rendition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

/// Handles to every metric the node exports. Later gates (signatures, push) add theirs
/// here, next to the registry that exports them.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Registries of roles running in the same process (an ingest next to this node),
    /// exported on the same `/metrics`.
    extra: Vec<std::sync::Arc<Registry>>,
    segments_published: Family<SegmentLabels, Counter>,
    live_streams: Gauge,
    http_requests: Family<RequestLabels, Counter>,
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
        registry.register(
            "sealcast_http_requests",
            "HTTP requests served, by route and status",
            http_requests.clone(),
        );
        Metrics {
            registry,
            extra: Vec::new(),
            segments_published,
            live_streams,
            http_requests,
        }
    }

    pub(crate) fn segment_published(&self, stream: &str, rendition: &str) {
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

    pub(crate) fn http_request(&self, route: &'static str, status: u16) {
        self.http_requests
            .get_or_create(&RequestLabels { route, status })
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
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }
}

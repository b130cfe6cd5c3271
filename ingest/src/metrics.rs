//! Ingest metrics: encode speed per rung, lag behind real time, shed rungs, publishes.
//!
//! Labels carry stream and rendition names only — never a stream key.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use domain::{RenditionName, StreamName};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Cheap to clone; every clone updates the same series.
#[derive(Debug, Clone, Default)]
pub struct IngestMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    encode_fps: Family<Labels, Gauge<f64, AtomicU64>>,
    realtime_factor: Family<Labels, Gauge<f64, AtomicU64>>,
    lag_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    rungs_shed: Family<Labels, Counter>,
    publishes: Family<Labels, Counter>,
    segments: Family<Labels, Counter>,
}

impl IngestMetrics {
    /// Registers every series in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let i = &self.inner;
        registry.register(
            "sealcast_ingest_encode_fps",
            "Frames per second a rung produces, measured between segments (the stream's frame rate when keeping up)",
            i.encode_fps.clone(),
        );
        registry.register(
            "sealcast_ingest_realtime_factor",
            "Media seconds produced per wall-clock second, per rung (1.0 keeps up with a live publisher; below 1 falls behind)",
            i.realtime_factor.clone(),
        );
        registry.register(
            "sealcast_ingest_lag_seconds",
            "How far the pipeline is behind the publisher's clock",
            i.lag_seconds.clone(),
        );
        registry.register(
            "sealcast_ingest_rungs_shed",
            "Rungs dropped because encoding fell behind real time",
            i.rungs_shed.clone(),
        );
        registry.register(
            "sealcast_ingest_publishes",
            "RTMP publish attempts by result",
            i.publishes.clone(),
        );
        registry.register(
            "sealcast_ingest_segments",
            "Segments produced per rung",
            i.segments.clone(),
        );
    }

    pub(crate) fn set_encode_speed(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
        fps: f64,
        factor: f64,
    ) {
        let labels = rung_labels(stream, rendition);
        self.inner.encode_fps.get_or_create(&labels).set(fps);
        self.inner
            .realtime_factor
            .get_or_create(&labels)
            .set(factor);
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

    /// Counts a publish attempt: `accepted`, `bad_key`, `bad_app`, `takeover`.
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

fn rung_labels(stream: &StreamName, rendition: &RenditionName) -> Labels {
    vec![
        ("stream", stream.to_string()),
        ("rendition", rendition.to_string()),
    ]
}

//! What a node reports about its load every few seconds on its load topic
//! ([`Topic::NodeLoad`](crate::topics::Topic::NodeLoad) for broadcast nodes,
//! [`Topic::IngestLoad`](crate::topics::Topic::IngestLoad) for ingest nodes), for the
//! dashboard and the admin API's cluster view.
//!
//! Reports are advisory: they are not signed, nothing routes on them, and a missing or
//! garbled one only leaves a gap on the dashboard. They are still decoded strictly and
//! bounded in size, like every payload from the broker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::presence::Role;
use crate::{DomainError, RenditionName, StreamName};

/// How often a node publishes its load report.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// A viewer counts in [`LoadReport::viewers`] while it fetched a live playlist (master or
/// media) of the stream this recently: players reload live playlists every target
/// duration, LL-HLS players every part. The load balancer relies on it when it answers a
/// viewer's playlist request with another's answer (it lets each viewer reach its node
/// at least every half of it).
pub const VIEWER_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// The largest load report accepted (a report lists every live stream of a node).
pub const MAX_LOAD_REPORT_LEN: usize = 256 * 1024;

/// One node's load at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadReport {
    /// Which kind of node sent it.
    pub role: Role,
    /// When it was measured (unix seconds, the sender's clock).
    pub at: i64,
    /// CPU used by the node's process since the previous report, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory of the node's process.
    pub memory_bytes: u64,
    /// Open client connections (viewers and the load balancer's pooled connections on a
    /// broadcast node; publishers on an ingest node).
    pub connections: u64,
    /// Response bytes sent since the node started.
    pub bytes_out: u64,
    /// Distinct viewers per stream within [`VIEWER_WINDOW`] (broadcast nodes).
    #[serde(default)]
    pub viewers: BTreeMap<StreamName, u64>,
    /// Segment integrity counts since the node started (broadcast nodes).
    #[serde(default)]
    pub segments: SegmentCounts,
    /// The streams being published here, with the encode speed of each rung (ingest
    /// nodes).
    #[serde(default)]
    pub streams: Vec<IngestStream>,
}

/// What a broadcast node's signature gate did with the segments it was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCounts {
    /// Published after their signature verified.
    pub verified: u64,
    /// Refused, whatever the reason (bad signature, unknown key, replay...).
    pub rejected: u64,
    /// Listed as `EXT-X-GAP` because their statement never came.
    pub gaps: u64,
}

/// A stream an ingest node is publishing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestStream {
    /// The stream.
    pub stream: StreamName,
    /// Its publish session, as [`SessionId`](crate::SessionId) displays it.
    pub session: String,
    /// When the session started (unix seconds).
    pub started_at: i64,
    /// Encode speed per rung.
    pub renditions: Vec<RungSpeed>,
}

/// How fast one rung is being encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungSpeed {
    /// The rung.
    pub rendition: RenditionName,
    /// Frames encoded per second; `None` for a rung that is not re-encoded (`src`).
    pub encode_fps: Option<f64>,
    /// Media seconds encoded per wall-clock second; below 1 the rung falls behind.
    pub realtime_factor: Option<f64>,
}

impl LoadReport {
    /// The report as JSON.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data to a Vec cannot fail; an empty payload would be refused
        // by every reader.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a report from the broker, refusing oversized, malformed or non-finite ones.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let report: LoadReport =
            crate::error::decode_json("load report", bytes, MAX_LOAD_REPORT_LEN)?;
        let speeds = report
            .streams
            .iter()
            .flat_map(|s| &s.renditions)
            .flat_map(|r| [r.encode_fps, r.realtime_factor])
            .flatten();
        let finite = report.cpu_percent.is_finite()
            && report.cpu_percent >= 0.0
            && speeds.into_iter().all(|v| v.is_finite() && v >= 0.0);
        if !finite {
            return Err(DomainError::InvalidJson {
                what: "load report",
                reason: "numbers must be finite and not negative".into(),
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report() -> LoadReport {
        LoadReport {
            role: Role::Ingest,
            at: 1_763_800_000,
            cpu_percent: 12.5,
            memory_bytes: 1 << 26,
            connections: 2,
            bytes_out: 0,
            viewers: BTreeMap::new(),
            segments: SegmentCounts::default(),
            streams: vec![IngestStream {
                stream: StreamName::new("demo").expect("valid"),
                session: "00000000000000ff".into(),
                started_at: 1_763_799_000,
                renditions: vec![RungSpeed {
                    rendition: RenditionName::new("720p").expect("valid"),
                    encode_fps: Some(30.0),
                    realtime_factor: Some(1.0),
                }],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let r = report();
        assert_eq!(LoadReport::decode(&r.encode()).expect("decodes"), r);
    }

    #[test]
    fn refuses_junk() {
        assert!(LoadReport::decode(b"").is_err());
        assert!(LoadReport::decode(b"{\"role\":\"ingest\"}").is_err());
        assert!(LoadReport::decode(&vec![b' '; MAX_LOAD_REPORT_LEN + 1]).is_err());
        let mut unknown = serde_json::to_value(report()).expect("json");
        unknown["extra"] = serde_json::json!(1);
        assert!(LoadReport::decode(unknown.to_string().as_bytes()).is_err());
        let mut bad_name = serde_json::to_value(report()).expect("json");
        bad_name["streams"][0]["stream"] = serde_json::json!("../x");
        assert!(LoadReport::decode(bad_name.to_string().as_bytes()).is_err());
        let mut negative = report();
        negative.cpu_percent = -1.0;
        assert!(LoadReport::decode(&negative.encode()).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = LoadReport::decode(&bytes);
        }
    }
}

//! The report of `bench/archive-disk.sh` (issue 49): disk per recorded hour, and where it
//! is. Its steps were Python (`bench/lib/reports/archive_disk.py`, in git history before
//! this module), whose results and text they write: [`measure`]
//! (`sealcast-bench sample archive-disk`) makes the result from the recording the node
//! listed and what `du` counts in the data directory; [`report`] the section. Its `settle`
//! step, which polled the node until the recording was archived, is `sealcast-bench sample
//! archive-recording` ([`recording_of`], [`spool_bytes`]).

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::python::python_number;
use super::{push_notes, Report};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Disk per recorded hour (bench/archive-disk.sh)";

/// The bytes `du -sb` counts under the data directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disk {
    /// `archive`, the local archive.
    pub archive: u64,
    /// `recordings`, the spool.
    pub spool: u64,
    /// Every other entry, by name.
    pub other: BTreeMap<String, u64>,
}

/// The first recording of `stream` the node listed (`/api/v1/recordings`), if any.
pub fn recording_of(listed: &str, stream: &str) -> anyhow::Result<Option<Value>> {
    let listed: Value = serde_json::from_str(listed).context("the recordings listed")?;
    let listed = listed
        .as_array()
        .context("the recordings listed are not a list")?;
    Ok(listed
        .iter()
        .find(|r| r.get("stream").and_then(Value::as_str) == Some(stream))
        .cloned())
}

/// The bytes in the node's archive spool, as its metrics say (the last field of each
/// `sealcast_archive_spool_bytes` line, summed).
pub fn spool_bytes(metrics: &str) -> anyhow::Result<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("sealcast_archive_spool_bytes"))
        .map(|l| {
            let value = l.split_whitespace().last().unwrap_or_default();
            value
                .parse::<f64>()
                .with_context(|| format!("a spool value that is not a number: {l:?}"))
        })
        .sum()
}

/// The run's result, as the report reads it (its fields in this order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The broadcast nodes.
    pub nodes: u64,
    /// The seconds published.
    pub seconds: u64,
    /// The recording's length.
    pub recorded_secs: f64,
    /// Its renditions, as the node listed them.
    pub renditions: Value,
    /// The archive's bytes.
    pub archive_bytes: u64,
    /// The spool's bytes.
    pub spool_bytes: u64,
    /// The other entries' bytes, by name.
    pub other_bytes: BTreeMap<String, u64>,
    /// The archive's bytes per recorded hour, in GB.
    pub archive_gb_per_hour: f64,
    /// What one copy per node took (before issue 49), in GB per recorded hour.
    pub per_node_copies_gb_per_hour: f64,
}

/// The result of a run: `recording` is the node's listing of the recording
/// (`recording.json`), `disk` what `du` counted, `nodes` and `seconds` what the script ran.
pub fn measure(recording: &str, disk: Disk, nodes: u64, seconds: u64) -> anyhow::Result<Measured> {
    let recording: Value = serde_json::from_str(recording).context("the recording")?;
    let duration = recording
        .get("duration_secs")
        .and_then(|d| d.as_f64().or_else(|| d.as_str()?.trim().parse().ok()))
        .context("the recording has no duration_secs")?;
    anyhow::ensure!(duration != 0.0, "the recording lasted 0 s");
    let per_hour = |bytes: u64| bytes as f64 * 3600.0 / duration / 1e9;
    Ok(Measured {
        nodes,
        seconds,
        recorded_secs: duration,
        renditions: recording
            .get("renditions")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
        archive_bytes: disk.archive,
        spool_bytes: disk.spool,
        archive_gb_per_hour: per_hour(disk.archive),
        per_node_copies_gb_per_hour: per_hour(nodes * disk.archive),
        other_bytes: disk.other,
    })
}

/// The report of a run from its result ([`measure`]'s, as JSON); `date` is the day of the
/// run (`date +%F`), `notes` what `bench/archive-disk-notes.md` says.
pub fn report(result: &str, date: &str, notes: Option<&str>) -> anyhow::Result<Report> {
    let r: Value = serde_json::from_str(result).context("the result")?;
    let get = |key: &str| {
        r.get(key)
            .with_context(|| format!("no {key} in the result"))
    };
    let n = |key: &str| -> anyhow::Result<f64> {
        get(key)?
            .as_f64()
            .with_context(|| format!("{key} is not a number"))
    };
    let other: f64 = get("other_bytes")?
        .as_object()
        .context("other_bytes is not an object")?
        .values()
        .filter_map(Value::as_f64)
        .sum();
    let renditions: Vec<String> = get("renditions")?
        .as_array()
        .context("renditions is not a list")?
        .iter()
        .map(|r| r.as_str().map_or_else(|| r.to_string(), str::to_owned))
        .collect();
    let (seconds, nodes) = (python_number(get("seconds")?), python_number(get("nodes")?));
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/archive-disk.sh {seconds} {nodes}`, {date}: `sealcast up` with {nodes} \
             broadcast nodes records a 720p30 `sealcast source` (3000 kb/s) through the ladder \
             ({}; CMAF, 2 s segments, 0.333 s parts) into its local archive; measured with \
             `du` once the recording is listed and the spool has drained. Before issue 49 \
             every node recorded its own copy on its own disk: that column is the node count \
             times the archive's figure.",
            renditions.join(", ")
        ),
        String::new(),
        "| nodes | recorded | archive | per recorded hour | spool after upload | catalog, keys \
         and the rest | one copy per node (before) |"
            .to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
        format!(
            "| {nodes} | {:.0} s | {:.1} MB | {:.2} GB | {:.2} MB | {:.1} MB | {:.2} GB |",
            n("recorded_secs")?,
            n("archive_bytes")? / 1e6,
            n("archive_gb_per_hour")?,
            n("spool_bytes")? / 1e6,
            other / 1e6,
            n("per_node_copies_gb_per_hour")?,
        ),
    ];
    push_notes(&mut lines, notes);
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: "## Disk per recorded hour",
        after: None,
        raw: r,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `archive_disk.py measure` printed for this recording and these sizes.
    const RESULT: &str = include_str!("testdata/archive-disk-result.json");

    #[test]
    fn measures_as_the_python_did() {
        let recording = r#"{"stream": "disk", "duration_secs": 119.967, "renditions": ["src", "720p", "480p", "360p"]}"#;
        let disk = Disk {
            archive: 210_345_678,
            spool: 0,
            other: [("keys", 8192), ("catalog", 123_456), ("certs", 20480)]
                .into_iter()
                .map(|(name, bytes)| (name.to_owned(), bytes))
                .collect(),
        };
        let measured = measure(recording, disk.clone(), 3, 120).expect("a result");
        let python: Value = serde_json::from_str(RESULT).expect("JSON");
        assert_eq!(serde_json::to_value(&measured).expect("JSON"), python);
        // The fields in Python's order, the other entries sorted by name.
        let line = serde_json::to_string(&measured).expect("JSON");
        assert!(line.starts_with(r#"{"nodes":3,"seconds":120,"recorded_secs":119.967,"#));
        assert!(line.contains(r#""other_bytes":{"catalog":123456,"certs":20480,"keys":8192}"#));
        // A duration given as a string, as float() took it; none, or 0 s, is an error.
        let text = r#"{"duration_secs": "119.967", "renditions": ["src", "720p", "480p", "360p"]}"#;
        assert_eq!(
            measure(text, disk.clone(), 3, 120).expect("a result"),
            measured
        );
        assert!(measure("{}", disk.clone(), 3, 120).is_err());
        assert!(measure(r#"{"duration_secs": 0}"#, disk, 3, 120).is_err());
    }

    #[test]
    fn the_recording_is_the_first_of_the_stream_listed() {
        let listed = r#"[{"stream": "other", "id": 1}, {"stream": "disk", "id": 2}, {"stream": "disk", "id": 3}]"#;
        let found = recording_of(listed, "disk").expect("a listing");
        assert_eq!(
            found.and_then(|r| r.get("id").cloned()),
            Some(serde_json::json!(2))
        );
        assert_eq!(recording_of("[]", "disk").expect("a listing"), None);
        assert!(recording_of("{}", "disk").is_err());
        let metrics = "# HELP sealcast_archive_spool_bytes x\nsealcast_archive_spool_bytes{node=\"1\"} 12\nsealcast_archive_spool_bytes_other 3 1700000000\nother 5\n";
        assert_eq!(spool_bytes(metrics).expect("metrics"), 1_700_000_012.0);
        assert_eq!(spool_bytes("").expect("metrics"), 0.0);
        assert!(spool_bytes("sealcast_archive_spool_bytes x\n").is_err());
    }

    #[test]
    fn gives_the_section_the_python_report_wrote() {
        let report = report(RESULT, "2026-11-30", Some("Notes.\n")).expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/archive-disk-python.md")
        );
        assert_eq!(report.raw["archive_bytes"], 210_345_678);
    }
}

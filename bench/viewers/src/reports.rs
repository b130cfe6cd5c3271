//! The benchmarks' reports that moved into `sealcast-bench` (issue 46 item 4), one module
//! each: a run's raw measurements in, its section of `docs/benchmarks.md` and the raw
//! results' JSON out. The rest are still `bench/lib/reports/*.py`.

pub mod archive_disk;
pub mod c2pa_overhead;
pub mod compose;
pub mod dvr_seek;
pub mod edge;
pub mod ingest_latency;
pub mod ladder;
pub mod ladder_codecs;
pub mod latency;
pub mod lb;
pub mod lb_profile;
pub mod ll_quality;
pub mod memory;
pub mod moq_cost;
pub mod push_bytes;
mod python;
pub mod stream_memory;
pub mod viewer_verify;

/// What a report makes of a run.
#[derive(Debug)]
pub struct Report {
    /// The section, its `## ` heading line first, ending in a newline.
    pub section: String,
    /// The `## ` heading the section replaces in the doc (or the start of it).
    pub heading: &'static str,
    /// Where a section the doc lacks goes: after this one (its heading or the start of
    /// it); none, at the end.
    pub after: Option<&'static str>,
    /// The raw results: the measurements and the figures drawn from them.
    pub raw: serde_json::Value,
    /// Why the run does not count (its figures compare different work), said once the
    /// section is written: the command then fails.
    pub refusal: Option<String>,
}

/// How long and how often a script measured (`--seconds N --rounds N`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Rounds {
    /// Seconds each measurement lasted.
    #[arg(long)]
    pub seconds: u64,
    /// Rounds of measurements.
    #[arg(long)]
    pub rounds: u64,
}

/// A section's notes (a notes file's text), after a blank line, when there are any.
pub(crate) fn push_notes(lines: &mut Vec<String>, notes: Option<&str>) {
    if let Some(notes) = notes {
        lines.push(String::new());
        lines.push(notes.trim().to_owned());
    }
}

/// The JSON objects of `text`, one a line (blank lines passed over); an error names the
/// object that does not parse (`what` and its number, counting objects).
pub(crate) fn json_lines(what: &str, text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    use anyhow::Context;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{what} {}", i + 1)))
        .collect()
}

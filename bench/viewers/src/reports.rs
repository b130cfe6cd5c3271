//! The benchmarks' reports that moved into `sealcast-bench` (issue 46 item 4), one module
//! each: a run's raw measurements in, its section of `docs/benchmarks.md` and the raw
//! results' JSON out. The rest are still `bench/lib/reports/*.py`.

pub mod compose;
pub mod ll_quality;
pub mod moq_cost;
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
}

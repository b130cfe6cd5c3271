//! The benchmarks' reports that moved into `sealcast-bench` (issue 46 item 4), one module
//! each: a run's raw measurements in, its section of `docs/benchmarks.md` and the raw
//! results' JSON out. The rest are still `bench/lib/reports/*.py`.

pub mod moq_cost;

/// What a report makes of a run.
#[derive(Debug)]
pub struct Report {
    /// The section, its `## ` heading line first, ending in a newline.
    pub section: String,
    /// The `## ` heading the section replaces in the doc (or the start of it).
    pub heading: &'static str,
    /// The raw results: the measurements and the figures drawn from them.
    pub raw: serde_json::Value,
}

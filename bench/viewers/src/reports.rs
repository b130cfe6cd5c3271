//! The benchmarks' reports that moved into `sealcast-bench` (issue 46 item 4), one module
//! each: a run's raw measurements in, its section of `docs/benchmarks.md` and the raw
//! results' JSON out; with them, what the scripts measure with (samples of a tool's output
//! or a node, [`calc`]'s sums between two readings).

pub mod archive_disk;
pub mod c2pa_overhead;
pub mod calc;
pub mod capacity;
pub mod compose;
pub mod dvr_seek;
pub mod edge;
pub mod h2load;
pub mod ingest_latency;
pub mod ladder;
pub mod ladder_codecs;
pub mod latency;
pub mod lb;
pub mod lb_profile;
pub mod ll_quality;
pub mod llhls_cdn;
pub mod llhls_common;
pub mod memory;
pub mod moq_cost;
pub mod publish_latency;
pub mod push_bytes;
pub(crate) mod python;
pub mod ramps;
pub mod stream_memory;
pub mod viewer_verify;

use anyhow::Context;

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
/// object that does not parse (`what` and its number, counting objects). Numbers are read
/// as Python's `json` reads them ([`python::parse_json`]): a float copied into the raw
/// results is the one the tool wrote.
pub(crate) fn json_lines(what: &str, text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| python::parse_json(l).with_context(|| format!("{what} {}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::python::*;

    #[test]
    fn json_lines_read_floats_exactly() {
        // 17 significant digits, as Python's repr writes some doubles: the nearest double.
        let text = "{\"a\": 0.30000000000000004, \"b\": 4.35, \"n\": 7}\n\n{\"a\": 1e-7}\n";
        let lines = super::json_lines("line", text).expect("two lines");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["a"].as_f64(), Some(0.300_000_000_000_000_04));
        assert_eq!(lines[0]["b"].as_f64(), Some(4.35));
        assert!(lines[0]["n"].is_u64());
        assert_eq!(lines[1]["a"].as_f64(), Some(1e-7));
        let err = super::json_lines("line", "{}\n{\"a\": }\n").expect_err("a bad line");
        assert!(format!("{err:#}").starts_with("line 2"), "{err:#}");
    }

    #[test]
    fn numbers_print_as_python_prints_them() {
        let cases = [
            (0.333, "0.333"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (3.4783, "3.4783"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (123_456.789, "123456.789"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float(x), want, "{x:e}");
        }
        assert_eq!(python_number(&json!(3)), "3");
        assert_eq!(python_number(&json!(2.5)), "2.5");
        assert_eq!(python_number(&json!(2.0)), "2.0");
        assert!(truthy(&json!(0.5)) && !truthy(&json!(0.0)) && !truthy(&json!(null)));
        assert!(!truthy(&json!({})) && truthy(&json!([0])) && !truthy(&json!("")));
    }

    #[test]
    fn json_numbers_are_read_exactly() {
        // serde_json's default parser reads this one a unit in the last place off.
        let text = r#" {"a": [2.3053602689946002, 1, -2, 1e-05, 18446744073709551615],
                        "b\"\u00e9": {"c": true, "d": null, "e": false}, "f": [], "g": {}} "#;
        let v = parse_json(text).expect("JSON");
        assert_eq!(
            v["a"][0].as_f64(),
            Some("2.3053602689946002".parse().expect("f64"))
        );
        assert!(v["a"][1].is_i64() && v["a"][2] == json!(-2) && v["a"][3] == json!(1e-5));
        assert!(v["a"][4].is_u64());
        assert_eq!(v["b\"\u{e9}"], json!({"c": true, "d": null, "e": false}));
        assert_eq!((v["f"].clone(), v["g"].clone()), (json!([]), json!({})));
        for bad in ["", "[1,", "{\"a\" 1}", "[1] 2", "\"open", "[tru]", "{1: 2}"] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
    }
}

//! The lines the browser benchmarks append to their `runs.jsonl`, one run each
//! (`bench/latency.sh`, `bench/ingest-latency.sh`, `bench/viewer-verify.sh`): a run's
//! record with what the script ran it as (its round, system, protocol, transport:
//! `sealcast-bench sample tagged`), or in place of `sealcast-glass`'s record the one of a
//! run that failed (`sample glass-failed`). They were `python3 -c` one-liners.
//!
//! The record is read with the reports' exact JSON parser, so its numbers are the ones the
//! tool printed; its members come out in serde_json's order (sorted) rather than the
//! Python's (the tool's, then the tags): the reports read them by name.

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;

use crate::reports::python::parse_json;

/// `sample glass-failed WHY`: the record of a `sealcast-glass` run that failed, as the
/// reports count one (no samples, no figures; `failed` says why).
pub fn glass_failed(why: &str) -> String {
    #[derive(Serialize)]
    struct Failed<'a> {
        failed: &'a str,
        samples: u64,
        stamped_samples: u64,
        glass_to_glass_s: Option<f64>,
        hlsjs_latency_s: Option<f64>,
        longest_stall_s: Option<f64>,
    }
    let failed = Failed {
        failed: why,
        samples: 0,
        stamped_samples: 0,
        glass_to_glass_s: None,
        hlsjs_latency_s: None,
        longest_stall_s: None,
    };
    serde_json::to_string(&failed).unwrap_or_default()
}

/// A `KEY=VALUE` tag as given.
fn split(tag: &str) -> anyhow::Result<(&str, &str)> {
    tag.split_once('=')
        .with_context(|| format!("a tag that is not KEY=VALUE: {tag:?}"))
}

/// `sample tagged RECORD --int KEY=N --str KEY=TEXT`: the record (a JSON object) with each
/// tag set, ints as JSON ints (a key it has already takes the new value).
pub fn tagged(record: &str, ints: &[String], strings: &[String]) -> anyhow::Result<String> {
    let mut value = parse_json(record).context("the run's record")?;
    let Value::Object(members) = &mut value else {
        bail!("the run's record is not a JSON object");
    };
    for tag in ints {
        let (key, n) = split(tag)?;
        let n: i64 = n
            .trim()
            .parse()
            .with_context(|| format!("{key}={n} is not an int"))?;
        members.insert(key.to_owned(), n.into());
    }
    for tag in strings {
        let (key, text) = split(tag)?;
        members.insert(key.to_owned(), text.into());
    }
    Ok(serde_json::to_string(&value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_what_the_python_printed() {
        // json.loads of what the Python printed for this reason.
        let python: Value = serde_json::from_str(
            r#"{"failed": "Error: timed out \"x\"", "samples": 0, "stamped_samples": 0, "glass_to_glass_s": null, "hlsjs_latency_s": null, "longest_stall_s": null}"#,
        )
        .expect("JSON");
        let ours: Value =
            serde_json::from_str(&glass_failed("Error: timed out \"x\"")).expect("JSON");
        assert_eq!(ours, python);
        assert!(glass_failed("x").starts_with(r#"{"failed":"x","samples":0,"#));
    }

    #[test]
    fn tags_are_set_on_the_record() {
        let record = r#"{"stream": "main", "transport": null, "samples": 240, "glass_to_glass_s": {"p50": 2.3053602689946002, "max": 3.0}}"#;
        let ints = ["round=3".to_owned()];
        let strings = ["protocol=srt".to_owned(), "transport=hls".to_owned()];
        let line = tagged(record, &ints, &strings).expect("a record");
        assert_eq!(
            line,
            r#"{"glass_to_glass_s":{"max":3.0,"p50":2.3053602689946002},"protocol":"srt","round":3,"samples":240,"stream":"main","transport":"hls"}"#
        );
        assert!(tagged("[1]", &ints, &[]).is_err());
        assert!(tagged(record, &["round=x".to_owned()], &[]).is_err());
        assert!(tagged(record, &["round".to_owned()], &[]).is_err());
    }
}

//! bench/stream-memory.sh's points, which were Python (its heredoc `sm.py` and the inline
//! `python3 -c` around it, in git history before this module), with their output kept:
//!
//! - [`sample`] (`sealcast-bench sample stream-memory`): the node's memory
//!   (`/proc/PID/status`, `smaps_rollup`) and the floor ([`crate::floor`]) every 0.5 s
//!   for a while, the medians as one JSON line written as Python's `json.dumps` wrote it
//!   (its separators, its floats, `kbps` in the order the rungs were met);
//! - [`point_text`] (`sealcast-bench sample stream-memory-point`): what the script says of
//!   a point: its RSS, its rungs, or the summary line after each stream.
//!
//! Medians are `statistics.median`'s (`bench/lib/stats.py`'s, which only this used last;
//! `reports::python::median_json`): an odd count's middle value keeps its type, an even
//! count's mean is a float.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::floor::{floor, runtime, Floor, Node};
use crate::reports::python::{median_json, parse_json, python_float, python_number, Ordered};

/// What `/proc/PID/status` and `/proc/PID/smaps_rollup` say of the node's memory, in kB
/// (and its threads): the fields the report reads.
pub fn proc_memory(pid: u32) -> anyhow::Result<HashMap<String, i64>> {
    let mut m = HashMap::new();
    let mut read = |file: &str, keys: &[&str], text: &str| -> anyhow::Result<()> {
        for line in text.lines() {
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            if keys.contains(&k) {
                let n = v.split_whitespace().next().unwrap_or_default();
                let n = n.parse().with_context(|| format!("{file}: {line:?}"))?;
                m.insert(k.to_owned(), n);
            }
        }
        Ok(())
    };
    let status = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&status).with_context(|| status.clone())?;
    let keys = ["VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"];
    read(&status, &keys, &text)?;
    let rollup = format!("/proc/{pid}/smaps_rollup");
    if let Ok(text) = std::fs::read_to_string(&rollup) {
        read(
            &rollup,
            &["Pss", "Pss_Anon", "Pss_File", "AnonHugePages"],
            &text,
        )?;
    }
    Ok(m)
}

/// Members (their values as JSON text), in order, as `json.dumps` writes an object:
/// `{"a": 1, "b": 2.0}`.
fn dumps(members: &[(String, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}: {v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", members.join(", "))
}

/// A number (or null) as `json.dumps` writes it.
fn number(v: &Value) -> String {
    if v.is_null() {
        "null".to_owned()
    } else {
        python_number(v)
    }
}

/// Python's `round(x, 1)`: the nearest float to `x`'s correctly rounded decimal.
fn round1(x: f64) -> f64 {
    format!("{x:.1}").parse().unwrap_or(x)
}

/// The floor's fields a point gives, in its order.
const FLOOR_KEYS: [&str; 9] = [
    "listed",
    "unique",
    "served",
    "segments",
    "parts",
    "init",
    "playlists",
    "seconds",
    "rungs",
];

/// One sample: the memory, and the floor when there are streams.
type Sample = (HashMap<String, i64>, Option<Floor>);

/// The point of `samples`, as `sm.py sample` printed it.
pub fn point(samples: &[Sample]) -> anyhow::Result<String> {
    let mut out = vec![("samples".to_owned(), samples.len().to_string())];
    let of = |k: &str| -> Vec<Value> {
        samples
            .iter()
            .filter_map(|(m, _)| m.get(k).map(|v| Value::from(*v)))
            .collect()
    };
    for k in [
        "VmRSS",
        "RssAnon",
        "RssFile",
        "Pss",
        "Pss_Anon",
        "AnonHugePages",
        "Threads",
    ] {
        out.push((k.into(), number(&median_json(&of(k)))));
    }
    let rss: Vec<i64> = samples
        .iter()
        .map(|(m, _)| m.get("VmRSS").copied().context("a sample without VmRSS"))
        .collect::<anyhow::Result<_>>()?;
    let (min, max) = (rss.iter().min(), rss.iter().max());
    let (min, max) = min.zip(max).context("no sample")?;
    out.push(("VmRSS_min".into(), min.to_string()));
    out.push(("VmRSS_max".into(), max.to_string()));
    let floors: Vec<&Floor> = samples.iter().filter_map(|(_, f)| f.as_ref()).collect();
    if floors.is_empty() {
        for k in FLOOR_KEYS {
            out.push((format!("floor_{k}"), "0".to_owned()));
        }
        return Ok(dumps(&out));
    }
    for k in FLOOR_KEYS {
        let xs: Vec<Value> = floors
            .iter()
            .map(|f| match k {
                "listed" => Value::from(f.listed),
                "unique" => Value::from(f.unique),
                "served" => Value::from(f.served),
                "segments" => Value::from(f.segments),
                "parts" => Value::from(f.parts),
                "init" => Value::from(f.init),
                "playlists" => Value::from(f.playlists),
                "seconds" => Value::from(f.seconds),
                _ => Value::from(f.rungs),
            })
            .collect();
        out.push((format!("floor_{k}"), number(&median_json(&xs))));
    }
    // Each rung's segment bit rate in every sample, the rungs in the order met.
    let mut rates: Vec<(String, Vec<Value>)> = Vec::new();
    for f in &floors {
        for (rung, bytes, secs) in &f.per_rung {
            if *secs == 0.0 {
                continue;
            }
            let rate = Value::from((8 * bytes) as f64 / secs / 1000.0);
            match rates.iter_mut().find(|(r, _)| r == rung) {
                Some((_, xs)) => xs.push(rate),
                None => rates.push((rung.clone(), vec![rate])),
            }
        }
    }
    let kbps: Vec<(String, String)> = rates
        .iter()
        .map(|(rung, xs)| {
            let median = median_json(xs).as_f64().unwrap_or(f64::NAN);
            (rung.clone(), python_float(round1(median)))
        })
        .collect();
    out.push(("kbps".to_owned(), dumps(&kbps)));
    Ok(dumps(&out))
}

/// Samples the node (pid `pid`, at `node`) every 0.5 s for `seconds` (the last sample
/// taken at or after the end), with the floor of `streams` when there are any; the point
/// as one line of JSON.
pub fn sample(node: &str, pid: u32, seconds: f64, streams: &[String]) -> anyhow::Result<String> {
    let mut node = Node::new(node)?;
    let runtime = runtime()?;
    let end = Instant::now() + Duration::try_from_secs_f64(seconds).context("seconds")?;
    let mut samples = Vec::new();
    loop {
        let t = Instant::now();
        let memory = proc_memory(pid)?;
        let floor = if streams.is_empty() {
            None
        } else {
            Some(runtime.block_on(floor(&mut node, streams))?)
        };
        samples.push((memory, floor));
        if t >= end {
            break;
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(t.elapsed()));
    }
    point(&samples)
}

/// What the script says of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Show {
    /// Its `VmRSS` (Python's `str`).
    Rss,
    /// Its `floor_rungs`, as a whole number.
    Rungs,
    /// The line after each stream: RSS (median, min–max), Pss, the floor in KiB, kb/s.
    Summary,
}

/// Python's `%d` of a JSON number: a float truncated.
fn whole(v: &Value) -> anyhow::Result<String> {
    match v.as_i64() {
        Some(i) => Ok(i.to_string()),
        None => Ok(format!("{}", v.as_f64().context("not a number")?.trunc())),
    }
}

/// `str` of a value in a point: a number as Python prints it, null as `None`.
fn py_str(v: &Value) -> String {
    if v.is_null() {
        "None".to_owned()
    } else {
        python_number(v)
    }
}

/// What the script says of `point` (a line [`sample`] printed).
pub fn point_text(point: &str, show: Show) -> anyhow::Result<String> {
    let p = parse_json(point).context("the point")?;
    let get = |k: &str| p.get(k).with_context(|| format!("a point without {k}"));
    match show {
        Show::Rss => Ok(py_str(get("VmRSS")?)),
        Show::Rungs => whole(get("floor_rungs")?),
        Show::Summary => {
            #[derive(serde::Deserialize)]
            struct Kbps {
                kbps: Option<Ordered>,
            }
            let kbps: Kbps = serde_json::from_str(point).context("the point's kbps")?;
            // A dict as Python's `%s` prints it (`None` for null).
            let kbps = match kbps.kbps {
                Some(rates) => {
                    let rates: Vec<String> = rates
                        .0
                        .iter()
                        .map(|(rung, v)| format!("'{rung}': {}", py_str(v)))
                        .collect();
                    format!("{{{}}}", rates.join(", "))
                }
                None => "None".to_owned(),
            };
            let kib = |k: &str| -> anyhow::Result<String> {
                let bytes = get(k)?
                    .as_f64()
                    .with_context(|| format!("{k}: not a number"))?;
                Ok(format!("{:.0}", bytes / 1024.0))
            };
            Ok(format!(
                "RSS {} KiB ({}-{}), Pss {} KiB, floor {} KiB listed / {} unique / {} served, \
                 kb/s {}",
                whole(get("VmRSS")?)?,
                whole(get("VmRSS_min")?)?,
                whole(get("VmRSS_max")?)?,
                p.get("Pss").map_or_else(|| "None".to_owned(), py_str),
                kib("floor_listed")?,
                kib("floor_unique")?,
                kib("floor_served")?,
                kbps
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floor::tests::tiny_floor;

    fn memory(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn points_print_as_sm_py_printed_them() {
        let mems = [
            memory(&[
                ("VmRSS", 100),
                ("RssAnon", 10),
                ("RssFile", 90),
                ("Threads", 7),
                ("Pss", 50),
            ]),
            memory(&[
                ("VmRSS", 103),
                ("RssAnon", 11),
                ("RssFile", 92),
                ("Threads", 7),
                ("Pss", 55),
            ]),
            memory(&[
                ("VmRSS", 101),
                ("RssAnon", 13),
                ("RssFile", 88),
                ("Threads", 8),
            ]),
        ];
        // sm.py's `sample` with these memories, over the floor of `floor::tests`' stream.
        let samples: Vec<Sample> = mems
            .iter()
            .map(|m| (m.clone(), Some(tiny_floor())))
            .collect();
        assert_eq!(
            point(&samples).expect("a point"),
            "{\"samples\": 3, \"VmRSS\": 101, \"RssAnon\": 11, \"RssFile\": 90, \"Pss\": 52.5, \
             \"Pss_Anon\": null, \"AnonHugePages\": null, \"Threads\": 7, \"VmRSS_min\": 100, \
             \"VmRSS_max\": 103, \"floor_listed\": 5800, \"floor_unique\": 3800, \
             \"floor_served\": 12800, \"floor_segments\": 3000, \"floor_parts\": 2700, \
             \"floor_init\": 100, \"floor_playlists\": 307, \"floor_seconds\": 3.5, \
             \"floor_rungs\": 1, \"kbps\": {\"360p\": 6.9}}"
        );
        let alone: Vec<Sample> = mems[..2].iter().map(|m| (m.clone(), None)).collect();
        assert_eq!(
            point(&alone).expect("a point"),
            "{\"samples\": 2, \"VmRSS\": 101.5, \"RssAnon\": 10.5, \"RssFile\": 91.0, \
             \"Pss\": 52.5, \"Pss_Anon\": null, \"AnonHugePages\": null, \"Threads\": 7.0, \
             \"VmRSS_min\": 100, \"VmRSS_max\": 103, \"floor_listed\": 0, \"floor_unique\": 0, \
             \"floor_served\": 0, \"floor_segments\": 0, \"floor_parts\": 0, \"floor_init\": 0, \
             \"floor_playlists\": 0, \"floor_seconds\": 0, \"floor_rungs\": 0}"
        );
    }

    #[test]
    fn what_the_script_says_of_a_point() {
        // A point of a run (reports/testdata/stream-memory-raw.jsonl, one stream) and what
        // the script's inline Python printed of it.
        let point = "{\"samples\": 9, \"VmRSS\": 73856, \"RssAnon\": 32256, \"RssFile\": 41600, \
            \"Pss\": 46502, \"Pss_Anon\": 32256, \"AnonHugePages\": 0, \"Threads\": 7, \
            \"VmRSS_min\": 72628, \"VmRSS_max\": 77004, \"floor_listed\": 16495302, \
            \"floor_unique\": 11210083, \"floor_served\": 21712673, \"floor_segments\": 10617339, \
            \"floor_parts\": 5874450, \"floor_init\": 4484, \"floor_playlists\": 7012, \
            \"floor_seconds\": 48.0, \"floor_rungs\": 4, \"kbps\": {\"src\": 1846.4, \
            \"360p\": 3022.2, \"270p\": 1337.8, \"180p\": 871.4}}";
        assert_eq!(point_text(point, Show::Rss).expect("rss"), "73856");
        assert_eq!(point_text(point, Show::Rungs).expect("rungs"), "4");
        assert_eq!(
            point_text(point, Show::Summary).expect("summary"),
            "RSS 73856 KiB (72628-77004), Pss 46502 KiB, floor 16109 KiB listed / 10947 unique \
             / 21204 served, kb/s {'src': 1846.4, '360p': 3022.2, '270p': 1337.8, '180p': 871.4}"
        );
        // Halves round to even, floats print as Python's, and null is None (crafted).
        let crafted = "{\"VmRSS\": 95224.5, \"VmRSS_min\": 92256, \"VmRSS_max\": 97148, \
            \"Pss\": null, \"floor_listed\": 1264128, \"floor_unique\": 1265152, \
            \"floor_served\": 7679.9, \"floor_rungs\": 7.5, \"kbps\": null}";
        assert_eq!(point_text(crafted, Show::Rss).expect("rss"), "95224.5");
        assert_eq!(point_text(crafted, Show::Rungs).expect("rungs"), "7");
        assert_eq!(
            point_text(crafted, Show::Summary).expect("summary"),
            "RSS 95224 KiB (92256-97148), Pss None KiB, floor 1234 KiB listed / 1236 unique / \
             7 served, kb/s None"
        );
    }
}

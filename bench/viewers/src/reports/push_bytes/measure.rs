//! What `bench/push-bytes.sh` measures each round: the segments' publication latency on
//! node 1 while the round runs ([`follow`], `sealcast-bench sample push-latency`), then the
//! round's line of `results.jsonl` from the two nodes' metrics before and after and that
//! latency ([`measure`], `sealcast-bench sample push-bytes`). They were
//! `bench/lib/reports/push_bytes.py`'s `latency` and `measure`, in git history before this
//! module; their JSON is theirs (compact, the members in the same order).
//!
//! The follower asks with reqwest, as the other samples that follow a node do (the Python's
//! urllib opened a connection per request; reqwest keeps one alive, which on loopback
//! changes nothing that is measured: the time is taken once the whole playlist is in).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;

use crate::reports::python::{parse_json, python_round, Ordered};

/// How long one playlist request may take (the Python's urlopen timeout).
const REQUEST_WITHIN: Duration = Duration::from_secs(10);
/// The pause after a request that failed.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// The segments' publication latency as the follower saw it, `latency.json` (in this
/// order): seconds from each segment's end (its `EXT-X-PROGRAM-DATE-TIME` plus `EXTINF`)
/// to the playlist that first listed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushLatency {
    /// The segments timed.
    pub segments: usize,
    /// Their median (`int(0.5 n)`th of them sorted), to the millisecond; none without any.
    pub p50_s: Option<f64>,
    /// Their 90th percentile.
    pub p90_s: Option<f64>,
    /// The longest.
    pub max_s: Option<f64>,
    /// The segments first listed as `#EXT-X-GAP`.
    pub gaps_listed: usize,
}

/// What following a media playlist has seen so far (sans IO: [`Follower::next_url`] says
/// what to ask, [`Follower::read`] takes the answer).
#[derive(Debug, Default)]
pub struct Follower {
    /// Every segment number listed so far.
    seen: HashSet<u64>,
    /// The latency of each segment first listed after the first look, not a gap.
    latencies: Vec<f64>,
    /// The segments first listed after the first look as gaps.
    gaps: BTreeSet<u64>,
    /// The segment the next blocking reload waits for; none before the first look.
    msn: Option<u64>,
}

impl Follower {
    /// The next request: the playlist, then blocking reloads for the segment after the
    /// last one listed (`_HLS_msn`).
    pub fn next_url(&self, url: &str) -> String {
        match self.msn {
            None => url.to_owned(),
            Some(msn) => format!("{url}?_HLS_msn={msn}"),
        }
    }

    /// Takes a playlist that came whole at `now` (seconds since the epoch). Fails on a
    /// date-time or a duration that does not read, as the Python did.
    pub fn read(&mut self, playlist: &str, now: f64) -> anyhow::Result<()> {
        let (mut start, mut duration, mut gap, mut last) = (None::<f64>, None::<f64>, false, None);
        for line in playlist.lines() {
            if let Some(stamp) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                start = Some(epoch_seconds(&stamp.replace('Z', "+00:00"))?);
            } else if let Some(info) = line.strip_prefix("#EXTINF:") {
                let seconds = info.split(',').next().unwrap_or_default().trim();
                let seconds = seconds
                    .parse()
                    .with_context(|| format!("an EXTINF that is not a number: {line}"))?;
                duration = Some(seconds);
            } else if line == "#EXT-X-GAP" {
                gap = true;
            } else if !line.is_empty() && !line.starts_with('#') {
                if let (Some(seq), Some(d)) = (segment_number(line), duration) {
                    last = Some(seq);
                    if !self.seen.contains(&seq) && self.msn.is_some() {
                        if gap {
                            self.gaps.insert(seq);
                        } else if let Some(start) = start {
                            self.latencies.push(now - (start + d));
                        }
                    }
                    self.seen.insert(seq);
                    start = start.map(|s| s + d);
                }
                (duration, gap) = (None, false);
            }
        }
        if let Some(last) = last {
            self.msn = Some(last.saturating_add(1));
        }
        Ok(())
    }

    /// The latencies seen, summed up.
    pub fn summary(mut self) -> PushLatency {
        self.latencies.sort_by(f64::total_cmp);
        let n = self.latencies.len();
        let at = |p: f64| {
            let i = ((p * n as f64) as usize).min(n.saturating_sub(1));
            self.latencies.get(i).map(|x| python_round(*x, 3))
        };
        PushLatency {
            segments: n,
            p50_s: at(0.5),
            p90_s: at(0.9),
            max_s: self.latencies.last().map(|x| python_round(*x, 3)),
            gaps_listed: self.gaps.len(),
        }
    }
}

/// `N.m4s`, a segment's URI: N (`(\d+)\.m4s$`).
fn segment_number(uri: &str) -> Option<u64> {
    let n = uri.strip_suffix(".m4s")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// An ISO 8601 date-time as Python's `datetime.fromisoformat(...).timestamp()` reads the
/// ones a node writes (`YYYY-MM-DDThh:mm:ss[.f…][±hh:mm]`, any one character between date
/// and time, the fraction's first six digits): seconds since the epoch, the microseconds
/// divided as Python divides them. One without an offset is taken as UTC (Python would
/// take the machine's zone; a node always writes `Z`).
fn epoch_seconds(stamp: &str) -> anyhow::Result<f64> {
    let bad = || format!("not an ISO 8601 date-time: {stamp}");
    let b = stamp.as_bytes();
    let number = |from: usize, to: usize| -> anyhow::Result<i64> {
        let part = stamp.get(from..to).with_context(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            bail!(bad());
        }
        part.parse().with_context(bad)
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        bail!(bad());
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        bail!(bad());
    }
    if hour > 23 || minute > 59 || second > 59 {
        bail!(bad());
    }
    let mut rest = &stamp[19..];
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            bail!(bad());
        }
        let six = format!("{:0<6}", &fraction[..digits.min(6)]);
        micros = six.parse::<i64>().with_context(bad)?;
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes().first() {
        None => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hm = rest[1..].replace(':', "");
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                bail!(bad());
            }
            let minutes = hm[..2].parse::<i64>().with_context(bad)? * 60
                + hm[2..].parse::<i64>().with_context(bad)?;
            if *sign == b'-' {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        Some(_) => bail!(bad()),
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // timedelta.total_seconds(): the microseconds over 10**6, one rounding.
    Ok((seconds * 1_000_000 + micros) as f64 / 1e6)
}

/// The days of a month of the proleptic Gregorian calendar.
fn days_in(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The wall clock, in seconds since the epoch (Python's `time.time()`).
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Follows the media playlist at `url` for `seconds` (a request under way then is let
/// finish): the first look, then blocking reloads; a request that fails is asked again
/// after a tenth of a second.
pub async fn follow(url: &str, seconds: f64) -> anyhow::Result<PushLatency> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_WITHIN)
        .build()
        .context("an HTTP client")?;
    let fetch = |target: String| {
        let request = client.get(target);
        async move {
            let body = request.send().await?.error_for_status()?.bytes().await?;
            anyhow::Ok(String::from_utf8(body.to_vec())?)
        }
    };
    let end = now() + seconds;
    let mut follower = Follower::default();
    while now() < end {
        match fetch(follower.next_url(url)).await {
            Ok(playlist) => follower.read(&playlist, now())?,
            Err(_) => tokio::time::sleep(RETRY_AFTER).await,
        }
    }
    Ok(follower.summary())
}

/// A node's metrics as the Python read them: every line `name{labels} value`
/// (`^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`, the line trimmed), by `name{labels}` in the
/// order first seen (a later line of the same series has the last word).
fn series(metrics: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for line in metrics.lines().map(str::trim) {
        let name_end = line
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(line.len());
        let labels_end = match line[name_end..].strip_prefix('{') {
            Some(labels) => match labels.find('}') {
                Some(i) => name_end + 1 + i + 1,
                None => continue,
            },
            None => name_end,
        };
        let Some(value) = line[labels_end..].strip_prefix(' ') else {
            continue;
        };
        let number = |c: char| c.is_ascii_digit() || ".e+-".contains(c);
        if name_end == 0 || value.is_empty() || !value.chars().all(number) {
            continue;
        }
        let value: f64 = value
            .parse()
            .with_context(|| format!("a metric's value that is not a number: {line}"))?;
        let key = &line[..labels_end];
        match at.get(key) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(key.to_owned(), out.len());
                out.push((key.to_owned(), value));
            }
        }
    }
    Ok(out)
}

/// A sum as Python's `sum` left it: an int 0 when nothing was summed (`None` here), else a
/// float.
type Sum = Option<f64>;

/// Python's `a + b` of two [`Sum`]s.
fn plus(a: Sum, b: Sum) -> Sum {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

/// A [`Sum`] as JSON.
fn sum_json(s: Sum) -> String {
    s.map_or(Value::from(0), Value::from).to_string()
}

/// A node's metrics before and after the round, read.
#[derive(Debug)]
pub struct Node {
    before: HashMap<String, f64>,
    after: Vec<(String, f64)>,
}

impl Node {
    /// The node from its `/metrics` before and after the round.
    pub fn new(before: &str, after: &str) -> anyhow::Result<Node> {
        Ok(Node {
            before: series(before)
                .context("the metrics before")?
                .into_iter()
                .collect(),
            after: series(after).context("the metrics after")?,
        })
    }

    /// The growth of every series whose `name{labels}` starts with `prefix`, summed.
    fn delta(&self, prefix: &str) -> Sum {
        let mut sum = None;
        for (key, value) in self.after.iter().filter(|(k, _)| k.starts_with(prefix)) {
            let was = self.before.get(key).copied().unwrap_or(0.0);
            sum = Some(sum.unwrap_or(0.0) + (value - was));
        }
        sum
    }
}

/// A JSON object of members given as JSON text, in this order (serde_json's map would
/// sort them).
fn object(members: &[(String, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// The round's line of `results.jsonl`: the ingest's push bytes to both nodes by kind
/// (its series on node 1's metrics) and the bytes the nodes took, in kb/s per node; the
/// segment pushes by form; the gaps both nodes counted; and `latency`'s members
/// (`latency.json`, [`PushLatency`]).
pub fn measure(
    nodes: [&Node; 2],
    mode: &str,
    round: i64,
    seconds: f64,
    latency: &str,
) -> anyhow::Result<String> {
    anyhow::ensure!(seconds != 0.0, "a round of 0 seconds");
    let [one, two] = nodes;
    let both = |what: &str, of: &str, kind: &str| {
        plus(
            one.delta(&format!("{what}{{node=\"broadcast1\",{of}=\"{kind}\"}}")),
            one.delta(&format!("{what}{{node=\"broadcast2\",{of}=\"{kind}\"}}")),
        )
    };
    let kinds: Vec<Sum> = ["segment", "part", "event"]
        .iter()
        .map(|kind| both("sealcast_ingest_push_bytes_total", "kind", kind))
        .collect();
    let forms: Vec<(String, String)> = ["whole", "assembled", "fallback"]
        .iter()
        .map(|form| {
            let pushes = both("sealcast_ingest_segment_pushes_total", "form", form);
            ((*form).to_owned(), sum_json(pushes))
        })
        .collect();
    let on_both = |name: &str| plus(one.delta(name), two.delta(name));
    let kbps = |bytes: Sum| {
        let rate = bytes.unwrap_or(0.0) * 8.0 / seconds / 2.0 / 1000.0;
        Value::from(python_round(rate, 1)).to_string()
    };
    let all = kinds.iter().fold(None, |sum, kind| plus(sum, *kind));
    let mut members: Vec<(String, String)> = vec![
        ("mode".into(), Value::from(mode).to_string()),
        ("round".into(), round.to_string()),
        ("seconds".into(), Value::from(seconds).to_string()),
        ("ingest_to_edge_kbps_per_node".into(), kbps(all)),
        ("segment_kbps_per_node".into(), kbps(kinds[0])),
        ("part_kbps_per_node".into(), kbps(kinds[1])),
        (
            "edges_received_kbps_per_node".into(),
            kbps(on_both("sealcast_push_bytes_total")),
        ),
        ("segment_pushes".into(), object(&forms)),
        (
            "gaps_counted".into(),
            sum_json(on_both("sealcast_segment_gaps_total")),
        ),
    ];
    // `**latency`: its members after, a name already there keeping its place.
    let order: Ordered = serde_json::from_str(latency).context("latency.json")?;
    let values = parse_json(latency).context("latency.json")?;
    for (key, _) in order.0 {
        let value = values.get(&key).cloned().unwrap_or(Value::Null).to_string();
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some(member) => member.1 = value,
            None => members.push((key, value)),
        }
    }
    Ok(object(&members))
}

/// [`measure`] on a round's directory: `before-1.txt`, `after-1.txt` (node 1's metrics),
/// `before-2.txt`, `after-2.txt` and `latency.json`.
pub fn measure_dir(dir: &Path, mode: &str, round: i64, seconds: f64) -> anyhow::Result<String> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| path.display().to_string())
    };
    let node = |i: u8| -> anyhow::Result<Node> {
        Node::new(
            &read(&format!("before-{i}.txt"))?,
            &read(&format!("after-{i}.txt"))?,
        )
    };
    let (one, two) = (node(1)?, node(2)?);
    measure([&one, &two], mode, round, seconds, &read("latency.json")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a recording of a follow (`{"now": t, "text": playlist}` or `{"now": t,
    /// "error": 1}` a line) makes of the playlists, fed as the follower took them.
    fn replay(recording: &str) -> PushLatency {
        let mut follower = Follower::default();
        for line in recording.lines().filter(|l| !l.trim().is_empty()) {
            let record: Value = serde_json::from_str(line).expect("a record");
            if let Some(text) = record["text"].as_str() {
                let now = record["now"].as_f64().expect("a time");
                follower.read(text, now).expect("a playlist");
            }
        }
        follower.summary()
    }

    /// A real follow of node 1 of a `sealcast up` (assembled segments, parts of 0.333 s,
    /// 640x360), recorded as the Python's `latency` ran: what it printed, replayed.
    #[test]
    fn times_segments_as_the_python_did() {
        let latency = replay(include_str!("../testdata/push-latency-recording.jsonl"));
        assert_eq!(
            serde_json::to_string(&latency).expect("JSON"),
            r#"{"segments":11,"p50_s":0.112,"p90_s":0.152,"max_s":0.165,"gaps_listed":0}"#
        );
        let mut follower = Follower::default();
        assert_eq!(follower.next_url("http://n/i.m3u8"), "http://n/i.m3u8");
        let first = "#EXTINF:2.0,\n7.m4s\n#EXT-X-GAP\n#EXTINF:2.0,\n8.m4s\n";
        follower.read(first, 0.0).expect("read");
        assert_eq!(
            follower.next_url("http://n/i.m3u8"),
            "http://n/i.m3u8?_HLS_msn=9"
        );
        let next = "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10.5+00:00\n#EXTINF:2.0,\n8.m4s\n\
                    #EXT-X-GAP\n#EXTINF:2.0,\n9.m4s\n#EXTINF: 1.5 ,x\n10.m4s\n";
        follower.read(next, 20.0).expect("read");
        let summary = follower.summary();
        // 10.m4s started at 10.5 + 2 + 2 and ended 1.5 s later: listed 4 s after its end.
        assert_eq!((summary.segments, summary.max_s), (1, Some(4.0)));
        assert_eq!(summary.gaps_listed, 1);
        assert!(Follower::default()
            .read("#EXTINF:x,\n1.m4s\n", 0.0)
            .is_err());
    }

    #[test]
    fn date_times_read_as_python_reads_them() {
        let at = |s: &str| epoch_seconds(s).ok();
        assert_eq!(at("2026-11-30T17:07:34.554+00:00"), Some(1_796_058_454.554));
        assert_eq!(at("2023-11-14T22:13:20+01:00"), Some(1_699_996_400.0));
        assert_eq!(
            at("2023-11-14 22:13:20.1234567+00:00"),
            Some(1_700_000_000.123_456)
        );
        assert_eq!(at("2023-11-14T22:13:20.12-0130"), Some(1_700_005_400.12));
        assert_eq!(at("2024-02-29T00:00:00"), Some(1_709_164_800.0));
        assert_eq!(at("2023-02-29T00:00:00"), None);
        assert_eq!(at("2023-11-14T22:13:20Q"), None);
    }

    /// Node 1's and node 2's metrics around a 20 s round of whole segments (their
    /// `sealcast_` series), and the latency the follower printed: the line the Python's
    /// `measure` printed.
    #[test]
    fn measures_a_round_as_the_python_did() {
        let node = |before, after| Node::new(before, after).expect("metrics");
        let one = node(
            include_str!("../testdata/push-bytes-before-1.txt"),
            include_str!("../testdata/push-bytes-after-1.txt"),
        );
        let two = node(
            include_str!("../testdata/push-bytes-before-2.txt"),
            include_str!("../testdata/push-bytes-after-2.txt"),
        );
        let latency =
            r#"{"segments": 11, "p50_s": 0.105, "p90_s": 0.111, "max_s": 0.17, "gaps_listed": 0}"#;
        let line = measure([&one, &two], "whole", 1, 20.0, latency).expect("a line");
        assert_eq!(
            line,
            r#"{"mode":"whole","round":1,"seconds":20.0,"ingest_to_edge_kbps_per_node":2532.7,"segment_kbps_per_node":1267.2,"part_kbps_per_node":1265.5,"edges_received_kbps_per_node":2532.7,"segment_pushes":{"whole":22.0,"assembled":0,"fallback":0},"gaps_counted":0.0,"segments":11,"p50_s":0.105,"p90_s":0.111,"max_s":0.17,"gaps_listed":0}"#
        );
        // No series at all: Python's int 0 where nothing was summed.
        let none = node("", "");
        let line = measure([&none, &none], "assembled", 2, 60.0, "{}").expect("a line");
        assert!(line.contains(
            r#""segment_pushes":{"whole":0,"assembled":0,"fallback":0},"gaps_counted":0}"#
        ));
        assert!(measure([&none, &none], "assembled", 2, 0.0, "{}").is_err());
    }
}

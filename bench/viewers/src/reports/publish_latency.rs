//! The report of `bench/publish-latency.sh`: how long after a segment closes it is listed
//! on every broadcast node, how far apart the nodes list it, and what the signature gate
//! costs, from the raw JSON of `sealcast-bench sample publish-latency`
//! ([`crate::publish_latency`]). It was Python (`bench/publish_latency.py report`, in git
//! history before this module), whose section and raw results it writes.
//!
//! The ingest exports no per-segment close time, so the figures are the skew across nodes
//! (last − first listing of a sequence number), the first listing's jitter against the
//! publisher's real-time clock (segment end = start + the sum of the `EXTINF`s, relative
//! to the fastest segment of the run), how much later an encoded rung lists a number than
//! the passthrough `src` rung, and from the nodes' `/metrics` the signature verify and gate
//! wait histograms, the ingest's sign and push times, and verify time as a share of the
//! process's CPU.
//!
//! The raw JSON is read twice: with the reports' exact parser for its numbers (as Python
//! reads them), and with serde for the order of its objects' members (the renditions'
//! order, and the metrics' page order that the Python's sums followed). The listings'
//! statistics are `listing`'s, the metrics' `metrics`'.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::python::{parse_json, round, truthy, Ordered};
use super::Report;
use listing::{rendition, summary, Listing, Rendition};
use metrics::{counters, dumps, hist, hsum, json_str, label_of, merge, num, sum_of, Hist, Metrics};

mod listing;
mod metrics;

/// The section's heading in `docs/benchmarks.md`, as the report replaces it.
pub const HEADING: &str = "## Publish latency";

/// The en dash the section prints for a figure there is none of.
const NONE: &str = "–";

/// A figure with one decimal; the en dash for none.
fn f1(x: Option<f64>) -> String {
    x.map_or_else(|| NONE.to_owned(), |x| format!("{x:.1}"))
}

/// A share in percent with three decimals; the en dash for none.
fn pc(x: Option<f64>) -> String {
    x.map_or_else(|| NONE.to_owned(), |x| format!("{:.3} %", x * 100.0))
}

/// What the raw JSON's member order is needed of.
#[derive(Deserialize)]
struct Order {
    seen: Ordered,
    metrics_start: BTreeMap<String, Ordered>,
    metrics_end: BTreeMap<String, Ordered>,
}

/// The report of a run from its raw JSON (`sample publish-latency`'s); `date` is the day
/// of the report (`date +%F`; the Python read its clock).
pub fn report(raw_text: &str, date: &str) -> anyhow::Result<Report> {
    let raw = parse_json(raw_text).context("the raw results")?;
    let order: Order = serde_json::from_str(raw_text).context("the raw results")?;
    let get = |k: &str| {
        raw.get(k)
            .with_context(|| format!("no {k} in the raw results"))
    };
    let nodes: Vec<String> = get("nodes")?
        .as_array()
        .context("nodes is not a list")?
        .iter()
        .map(|n| {
            n.as_str()
                .map(str::to_owned)
                .context("a node that is not a string")
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!nodes.is_empty(), "the run names no node");
    // By rendition, in the order first seen: each node's listings.
    type ByNode = HashMap<String, BTreeMap<i64, Listing>>;
    let mut seen: Vec<(String, ByNode)> = Vec::new();
    for (key, _) in &order.seen.0 {
        let (node, rendition) = match key.split('|').collect::<Vec<_>>()[..] {
            [node, rendition] => (node.to_owned(), rendition),
            _ => bail!("a seen key that is not NODE|RENDITION: {key}"),
        };
        let listed = raw["seen"][key]
            .as_object()
            .context("a seen entry is not an object")?;
        let mut d = BTreeMap::new();
        for (seq, v) in listed {
            let s: i64 = seq
                .trim()
                .parse()
                .with_context(|| format!("sequence number {seq}"))?;
            let wall = v[0]
                .as_f64()
                .with_context(|| format!("{key} {seq}: no time"))?;
            let (duration, gap) = (v[1].clone(), truthy(&v[2]));
            d.insert(
                s,
                Listing {
                    wall,
                    duration,
                    gap,
                },
            );
        }
        match seen.iter_mut().find(|(r, _)| r == rendition) {
            Some((_, by_node)) => drop(by_node.insert(node, d)),
            None => seen.push((rendition.to_owned(), HashMap::from([(node, d)]))),
        }
    }
    let renditions: Vec<(String, Rendition)> = seen
        .iter()
        .map(|(r, by_node)| Ok((r.clone(), rendition(&nodes, by_node)?)))
        .collect::<anyhow::Result<_>>()?;
    // Passthrough vs encoded: how much later an encoded rung lists the same sequence
    // number than the `src` rung (the transcode's pipeline delay), on the first node to
    // list each.
    let mut encoded: Vec<(String, Value)> = Vec::new();
    if let Some((_, src)) = renditions.iter().find(|(r, _)| r == "src") {
        for (r, e) in renditions.iter().filter(|(r, _)| r != "src") {
            let common: Vec<i64> = e
                .first_any
                .keys()
                .filter(|s| src.first_any.contains_key(s))
                .copied()
                .collect();
            let common = &common[..common.len().saturating_sub(1)];
            let late: Vec<f64> = common
                .iter()
                .map(|s| e.first_any[s] - src.first_any[s])
                .collect();
            encoded.push((r.clone(), summary(&late)));
        }
    }
    let snapshots = |orders: &BTreeMap<String, Ordered>, key: &str| {
        nodes
            .iter()
            .map(|n| {
                let order = orders.get(n).with_context(|| format!("no {key} of {n}"))?;
                Ok(Metrics::read(order, &raw[key][n]))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let m0 = snapshots(&order.metrics_start, "metrics_start")?;
    let m1 = snapshots(&order.metrics_end, "metrics_end")?;
    let each = |name: &str| -> anyhow::Result<Vec<Hist>> {
        m0.iter()
            .zip(&m1)
            .map(|(a, b)| hist(a, b, name, ""))
            .collect()
    };
    let verify = merge(&each("sealcast_signature_verify_seconds")?);
    let wait = each("sealcast_signature_wait_seconds")?;
    let sign = hist(&m0[0], &m1[0], "sealcast_ingest_sign_seconds", "")?;
    let mut ingest_nodes = BTreeSet::new();
    for (k, _) in &m1[0].samples {
        if k.starts_with("sealcast_ingest_push_seconds_count{") {
            ingest_nodes.insert(label_of(k, "node")?.to_owned());
        }
    }
    let push: Vec<(String, Value)> = ingest_nodes
        .iter()
        .map(|n| {
            let labels = format!("node=\"{n}\"");
            let h = hist(&m0[0], &m1[0], "sealcast_ingest_push_seconds", &labels)?;
            Ok((n.clone(), hsum(&h)))
        })
        .collect::<anyhow::Result<_>>()?;
    let c = counters(&nodes, &m0, &m1)?;
    let (v, w, s) = (hsum(&verify), hsum(&merge(&wait)), hsum(&sign));
    let wait_per_node: Map<String, Value> = nodes
        .iter()
        .zip(&wait)
        .map(|(n, h)| (n.clone(), hsum(h)))
        .collect();
    let push_by_node: Map<String, Value> = push.iter().cloned().collect();
    let published: Map<String, Value> = c
        .published
        .iter()
        .map(|(n, x)| (n.clone(), num(*x)))
        .collect();
    let failures: Map<String, Value> = c
        .failures
        .iter()
        .map(|(k, x)| (k.clone(), json!(x)))
        .collect();
    let rejected: Map<String, Value> = c
        .rejected
        .iter()
        .map(|(n, reasons)| {
            let reasons: Map<String, Value> =
                reasons.iter().map(|(r, x)| (r.clone(), json!(x))).collect();
            (n.clone(), Value::Object(reasons))
        })
        .collect();
    let metrics = json!({
        "signature_verify_seconds": v,
        "signature_wait_seconds": w,
        "signature_wait_seconds_per_node": wait_per_node,
        "ingest_sign_seconds": s,
        "ingest_push_seconds": push_by_node,
        "segments_published": published,
        "ingest_push_failures": failures,
        "ingest_rungs_shed": num(c.shed),
        "segments_rejected": rejected,
    });
    let mut threads: Vec<(String, f64)> = Vec::new();
    for t in get("threads_cpu_s")?
        .as_array()
        .context("threads_cpu_s is not a list")?
    {
        let name = t[0].as_str().context("a thread without a name")?;
        let cpu = t[1].as_f64().context("a thread without its CPU")?;
        // tokio-runtime-w / tokio-rt-worker → tokio
        let group = &name[..name.find(['-', '_', ':']).unwrap_or(name.len())];
        match threads.iter_mut().find(|(g, _)| g == group) {
            Some(slot) => slot.1 += cpu,
            None => threads.push((group.to_owned(), 0.0 + cpu)),
        }
    }
    let proc = get("process_cpu_s")?.as_f64().context("process_cpu_s")?;
    // Threads of the ingest's transcode: the pipeline coordinator, the emitter, one per
    // x264 rung, and the threads libavcodec/libx264 start from them (they inherit the name).
    let transcode = sum_of(
        threads
            .iter()
            .filter(|(g, _)| ["x264", "ingest", "emit"].contains(&g.as_str()))
            .map(|(_, v)| *v),
    );
    let vsum = verify.sum.unwrap_or(0.0);
    let tokio = threads
        .iter()
        .find(|(g, _)| g == "tokio")
        .map_or(0.0, |t| t.1);
    let outside = proc - transcode.unwrap_or(0.0);
    let shares = [
        (proc != 0.0).then(|| vsum / proc),
        (outside > 0.0).then(|| vsum / outside),
        (tokio != 0.0).then(|| vsum / tokio),
    ];
    let by_name: Map<String, Value> = threads
        .iter()
        .map(|(g, v)| (g.clone(), json!(round(*v, 3))))
        .collect();
    let cpu = json!({
        "process_cpu_s": get("process_cpu_s")?,
        "threads_cpu_s_by_name": by_name,
        "transcode_threads_cpu_s": num(transcode),
        "tokio_threads_cpu_s": tokio,
        "verify_sum_s": num(verify.sum),
        "verify_share_of_process_cpu": shares[0],
        "verify_share_of_non_transcode_cpu": shares[1],
        "verify_share_of_tokio_threads_cpu": shares[2],
    });
    let interval = get("interval_s")?.as_f64().context("interval_s")?;
    let wall = get("wall_s")?.as_f64().context("wall_s")?;
    let publisher = match get("publisher")? {
        Value::String(p) => p.clone(),
        other => other.to_string(),
    };
    let by_rendition: Map<String, Value> = renditions
        .iter()
        .map(|(r, e)| (r.clone(), e.entry.clone()))
        .collect();
    let encoded_by_rendition: Map<String, Value> = encoded.iter().cloned().collect();
    let out = json!({
        "benchmark": "publish latency: a segment closing at the ingest → listed on every broadcast node",
        "date": date,
        "publisher": get("publisher")?,
        "poll_interval_ms": interval * 1000.0,
        "nodes": nodes.len(),
        "wall_s": get("wall_s")?,
        "polls": get("polls")?,
        "poll_errors": get("poll_errors")?,
        "renditions": by_rendition,
        "encoded_vs_src_ms": encoded_by_rendition,
        "metrics": metrics,
        "cpu": cpu,
    });

    let names: Vec<&str> = renditions.iter().map(|(r, _)| r.as_str()).collect();
    let mut lines = vec![
        "## Publish latency and skew across edges (bench/publish-latency.sh)".to_owned(),
        String::new(),
        format!(
            "`sealcast up --broadcast 3` (ML-DSA-65), {publisher}; each node's {} media playlists \
             polled every {:.0} ms over keep-alive HTTP/1.1 for {wall:.0} s, {date}. The ingest \
             exports no per-segment close time, so *skew* is the time from a sequence number's \
             first listing on any node to its listing on the last node (max − min over the 3 \
             nodes), and *jitter* is the first listing measured against the publisher's \
             real-time clock (segment end = start + sum of EXTINF), relative to the fastest \
             segment of the run — the spread of close→listed latency, not its absolute value. \
             Poll resolution is {:.0} ms; with ~30 segments per node a p99 is close to the \
             maximum.",
            names.join(" and "),
            interval * 1000.0,
            interval * 1000.0,
        ),
        String::new(),
        "| rendition | segments | skew p50 ms | skew p99 ms | skew max ms | jitter p50 ms | \
         jitter p99 ms | missing on a node | gaps |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    let fig = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    for (r, e) in &renditions {
        let (sk, ji) = (
            &e.entry["skew_ms"],
            &e.entry["listing_jitter_vs_realtime_clock_ms"],
        );
        lines.push(format!(
            "| {r} | {} | {} | {} | {} | {} | {} | {} | {} |",
            e.entry["segments"],
            f1(fig(sk, "p50")),
            f1(fig(sk, "p99")),
            f1(fig(sk, "max")),
            f1(fig(ji, "p50")),
            f1(fig(ji, "p99")),
            count(&e.entry["not_on_every_node"]),
            count(&e.entry["gaps"]),
        ));
    }
    for (r, e) in encoded.iter().filter(|(_, e)| truthy(e)) {
        lines.push(String::new());
        lines.push(format!(
            "The {r} rung lists a sequence number {:.0} ms (p50; p99 {:.0} ms) after the `src` \
             rung lists the same one: the ingest emits a sequence number on all rungs together, \
             so the passthrough rung waits for the encoded ones.",
            fig(e, "p50").unwrap_or(f64::NAN),
            fig(e, "p99").unwrap_or(f64::NAN),
        ));
    }
    let lasts: Vec<String> = renditions
        .iter()
        .filter_map(|(r, e)| {
            let ms = e.entry["last_segment_vs_fastest_other_ms"].as_f64()?;
            Some(format!("{r} {ms:.0} ms"))
        })
        .collect();
    if !lasts.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "The last segment, cut by the unpublish, is listed relative to the real-time clock \
             at {} against the fastest other segment, so it is left out of the jitter. Negative \
             means every other segment spends that much longer between its end on the \
             publisher's clock and its listing: the encoders' pipeline delay (x264 veryfast \
             lookahead, B-frames and frame threads, in the publisher and in the ingest), which \
             the unpublish flushes at once. Without ingest timestamps the two cannot be told \
             apart here.",
            lasts.join(", ")
        ));
    }
    let (v, w, s) = (
        &out["metrics"]["signature_verify_seconds"],
        &out["metrics"]["signature_wait_seconds"],
        &out["metrics"]["ingest_sign_seconds"],
    );
    // `x or 0` with three decimals.
    let f3 = |h: &Value, k: &str| format!("{:.3}", fig(h, k).unwrap_or(0.0));
    let n0 = |h: &Value| format!("{:.0}", fig(h, "count").unwrap_or(0.0));
    lines.extend([
        String::new(),
        "From the nodes' `/metrics` over the run (all rungs, all 3 nodes; p50/p99 estimated \
         from the histogram buckets):"
            .to_owned(),
        String::new(),
        "| metric | count | mean ms | p50 ms (est.) | p99 ms (est.) |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
        format!(
            "| `sealcast_signature_verify_seconds` (ML-DSA-65 verify) | {} | {} | {} | {} |",
            n0(v),
            f3(v, "mean_ms"),
            f3(v, "p50_ms_est"),
            f3(v, "p99_ms_est")
        ),
        format!(
            "| `sealcast_signature_wait_seconds` (bytes arrived → published: the gate's added \
             latency) | {} | {} | {} | {} |",
            n0(w),
            f1(fig(w, "mean_ms")),
            f1(fig(w, "p50_ms_est")),
            f1(fig(w, "p99_ms_est"))
        ),
        format!(
            "| `sealcast_ingest_sign_seconds` | {} | {} | {} | {} |",
            n0(s),
            f3(s, "mean_ms"),
            f3(s, "p50_ms_est"),
            f3(s, "p99_ms_est")
        ),
    ]);
    for (n, p) in &push {
        lines.push(format!(
            "| `sealcast_ingest_push_seconds{{node=\"{n}\"}}` | {} | {} | {} | {} |",
            n0(p),
            f1(fig(p, "mean_ms")),
            f1(fig(p, "p50_ms_est")),
            f1(fig(p, "p99_ms_est"))
        ));
    }
    let published: Vec<String> = c
        .published
        .iter()
        .map(|(n, x)| format!("{n} {}", x.unwrap_or(0.0) as i64))
        .collect();
    let rejected: Vec<String> = c
        .rejected
        .iter()
        .map(|(n, reasons)| format!("{}: {}", json_str(n), dumps(reasons)))
        .collect();
    let transcode = transcode.unwrap_or(0.0);
    lines.extend([
        String::new(),
        format!(
            "Verification CPU: {vsum:.3} s of ML-DSA-65 verify over {} manifests, against \
             {proc:.1} CPU-s for the whole `up` process ({}; it includes the ingest's \
             transcode, {transcode:.1} CPU-s) and {:.1} CPU-s outside the transcode threads \
             ({}: edges, ingest push/sign, MQTT; the tokio threads alone used {tokio:.1} \
             CPU-s, {}). The verify histogram times the signature check only; hashing the \
             pushed bytes is not in it. Segments published per node: {}; rejected by the gate: \
             {{{}}}; ingest pushes that failed: {}; rungs shed: {:.0}.",
            n0(v),
            pc(shares[0]),
            proc - transcode,
            pc(shares[1]),
            pc(shares[2]),
            published.join(", "),
            rejected.join(", "),
            dumps(&c.failures),
            c.shed.unwrap_or(0.0),
        ),
        String::new(),
        "Aim (brief): skew across 3 edges p99 < 50 ms, gate wait / close-to-available p99 < \
         100 ms on loopback, verification < 2 % of edge CPU. There is no verification-off \
         switch, so the on/off comparison is the verify histogram and the gate wait. Run it \
         with `bench/publish-latency.sh [SECONDS]` (default 60); raw numbers in \
         `bench/out/publish-latency.json`."
            .to_owned(),
        String::new(),
    ]);
    Ok(Report {
        section: lines.join("\n"),
        heading: HEADING,
        after: None,
        raw: out,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::listing::pct;
    use super::metrics::label;
    use super::*;
    use crate::reports::latency::quantile;

    /// A live run (`sealcast up --broadcast 3`, 25 s of `sealcast source`, the 720p and
    /// src playlists polled by `sample publish-latency`; the metrics cut to the families the
    /// report reads) gives the section and the raw results `publish_latency.py report`
    /// wrote for it.
    #[test]
    fn a_live_run_gives_what_the_python_report_wrote() {
        let raw = include_str!("testdata/publish-latency-raw.json");
        let report = report(raw, "2026-11-30").expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/publish-latency-python.md")
        );
        let python =
            parse_json(include_str!("testdata/publish-latency-python.json")).expect("JSON");
        assert_eq!(report.raw, python);
        assert_eq!(report.heading, "## Publish latency");
        // The statistics alone.
        assert_eq!(pct(&[1.0, 2.0, 4.0], 50.0), 2.0);
        assert_eq!(pct(&[1.0, 2.0, 4.0], 99.0), 3.96);
        assert_eq!(label(r#"a{handle="x",le="0.5"}"#, "le"), Some("x"));
        assert_eq!(label(r#"a{le="",le="2"}"#, "le"), Some("2"));
        assert_eq!(
            quantile(&[(0.1, 2.0), (0.2, 4.0), (f64::INFINITY, 4.0)], 0.5),
            Some(0.1)
        );
        assert_eq!(quantile(&[(0.1, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(
            dumps(&[("a\u{e9}\"".to_owned(), 1.0), ("b".to_owned(), 1e-5)]),
            r#"{"a\u00e9\"": 1.0, "b": 1e-05}"#
        );
    }

    #[test]
    fn a_run_the_python_failed_on_fails() {
        let raw = include_str!("testdata/publish-latency-raw.json");
        let mut bad: Value = parse_json(raw).expect("JSON");
        for node in bad["seen"].as_object_mut().expect("seen").values_mut() {
            for listing in node.as_object_mut().expect("listings").values_mut() {
                listing[1] = Value::Null;
            }
        }
        assert!(report(&bad.to_string(), "2026-11-30").is_err());
        let renamed = raw.replacen("node1|720p", "node1-720p", 1);
        assert!(report(&renamed, "2026-11-30").is_err());
    }
}

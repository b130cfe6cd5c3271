//! What the live benchmarks' scripts ask while their stream runs, which they asked Python
//! before (inline `python3 -c` and heredocs, in git history before this module):
//!
//! - whether a node's LL-HLS media playlist lists a window to join: at least three
//!   `#EXTINF` and a part ([`window_listed`]; `sealcast-bench check ll-window`, for
//!   bench/llhls-common.sh, bench/llhls-cdn.sh and bench/moq-cost.sh);
//! - each ramp step `sealcast-viewers` prints on standard error as it is judged, as a
//!   progress line ([`capacity_progress`] for bench/capacity.sh, [`llhls_progress`] for
//!   bench/llhls-common.sh; `sealcast-bench progress capacity|llhls`, a filter from
//!   standard input to standard error);
//! - a TCP port free on 127.0.0.1 ([`free_port`]; `sealcast-bench free-port`, bench/lib.sh's
//!   `free_port`);
//! - bench/llhls-cdn.sh's origin samples while an audience watches ([`origin_samples`],
//!   `sealcast-bench sample llhls-cdn-origin`, its heredoc `sample.py` before): every
//!   second a line `UNIX-TIME NODE-REQUESTS BACKEND-REQUESTS HITS MISSES`, the node's
//!   requests summed over the routes viewers reach ([`node_requests`]), Varnish's from
//!   `varnishstat` ([`varnish_counts`]), for `reports::llhls_cdn` to read. Its HTTP:
//!   reqwest, as the rest of the crate (the Python's `urllib` opened a connection a
//!   sample; the node's `/metrics` counts on no route viewers reach either way).
//!
//! The progress lines are the Python's, character for character (its format specs
//! `>6`, `7.1f`, `.2f`, its `str` of numbers); a line that is not JSON is passed on
//! indented. One difference: a JSON line without a step's fields stopped the Python (a
//! traceback, no progress after it); it is passed on indented like the others.

use std::io::{BufRead, Write};

use serde_json::Value;

use anyhow::Context;

use crate::reports::python::{python_float, python_number, truthy};

/// Whether a media playlist lists a window to join: three `#EXTINF` (counted anywhere in
/// the text, as `str.count` did) and an `#EXT-X-PART:`.
pub fn window_listed(text: &str) -> bool {
    text.matches("#EXTINF").count() >= 3 && text.contains("#EXT-X-PART:")
}

/// A TCP port free on 127.0.0.1 right now (bound, read, let go).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr().context("the bound address")?.port())
}

/// The ramps whose steps [`progress`] prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ramp {
    /// bench/capacity.sh's (plain HLS: segment TTFB, cores busy).
    Capacity,
    /// bench/llhls-common.sh's (LL-HLS: part TTFB, latency, reload wait, stalls).
    Llhls,
}

/// A number of a step as Python's `format(x, ".Nf")` with `width`: an int or a float.
fn fixed(v: &Value, width: usize, decimals: usize) -> Option<String> {
    Some(format!("{:width$.decimals$}", v.as_f64()?))
}

/// Python's `x or 0` of a number: null (or false, or zero) is 0.
fn or_zero(v: &Value) -> Value {
    if truthy(v) {
        v.clone()
    } else {
        Value::from(0)
    }
}

/// The start and end shared by both ramps' lines: viewers, then the verdict padded.
fn head(s: &Value, verdict_width: usize) -> Option<String> {
    let viewers = s.get("viewers")?;
    if !viewers.is_number() {
        return None;
    }
    let verdict = s.get("verdict")?.as_str()?;
    Some(format!(
        "  {:>6} viewers: {verdict:<verdict_width$}",
        python_number(viewers)
    ))
}

/// bench/capacity.sh's progress line for a step (`sealcast-viewers`' JSON), its newline
/// included; none when `s` is not a step.
pub fn capacity_progress(s: &Value) -> Option<String> {
    let cpu = s.get("cpu")?;
    let kinds = s.get("kinds")?.as_object()?;
    let p99 = match kinds.get("segment") {
        Some(segment) => segment
            .get("ttfb_p99_ms")
            .unwrap_or(&Value::from(0))
            .clone(),
        None => Value::from(0),
    };
    let cores: Vec<String> = cpu
        .get("cores")?
        .as_array()?
        .iter()
        .map(|c| fixed(c, 0, 2))
        .collect::<Option<_>>()?;
    Some(format!(
        "{} segment TTFB p99 {} ms, errors {}, issue lag p99 {} ms, server CPU {}, \
         generator CPU {}, cores busy {}\n",
        head(s, 13)?,
        fixed(&p99, 7, 1)?,
        python_number(s.get("errors")?),
        fixed(s.get("issue_lag_p99_ms")?, 0, 1)?,
        fixed(&or_zero(cpu.get("watched")?), 0, 2)?,
        fixed(&or_zero(cpu.get("own")?), 0, 2)?,
        cores.join(" ")
    ))
}

/// bench/llhls-common.sh's progress line for a step, its newline included; none when `s`
/// is not a step.
pub fn llhls_progress(s: &Value) -> Option<String> {
    let cpu = s.get("cpu")?;
    let ll = s.get("ll").filter(|ll| truthy(ll));
    let zero = Value::from(0);
    // `(ll.get(k) or {}).get(f, 0)`.
    let pick = |k: &str, f: &str| -> Value {
        ll.and_then(|ll| ll.get(k))
            .filter(|v| truthy(v))
            .and_then(|v| v.get(f))
            .unwrap_or(&zero)
            .clone()
    };
    let stalls = ll.and_then(|ll| ll.get("stalls")).unwrap_or(&zero);
    let stalls = if stalls.is_null() {
        "None".to_owned()
    } else {
        python_number(stalls)
    };
    Some(format!(
        "{} part TTFB p99 {} ms, latency p50 {} ms, reload wait p50 {} ms, stalls {stalls}, \
         errors {}, issue lag p99 {} ms, server CPU {}, generator CPU {}\n",
        head(s, 10)?,
        fixed(&pick("part_ttfb", "p99_ms"), 6, 1)?,
        fixed(&pick("latency", "p50_ms"), 6, 1)?,
        fixed(&pick("reload_wait", "p50_ms"), 5, 1)?,
        python_number(s.get("errors")?),
        fixed(s.get("issue_lag_p99_ms")?, 0, 1)?,
        fixed(&or_zero(cpu.get("watched")?), 0, 2)?,
        fixed(&or_zero(cpu.get("own")?), 0, 2)?,
    ))
}

/// What the progress filter writes for one line read (its newline, if it had one, kept):
/// the step's progress line, or the line indented.
pub fn progress_line(ramp: Ramp, line: &str) -> String {
    let step = serde_json::from_str::<Value>(line).ok();
    let progress = step.as_ref().and_then(|s| match ramp {
        Ramp::Capacity => capacity_progress(s),
        Ramp::Llhls => llhls_progress(s),
    });
    progress.unwrap_or_else(|| format!("  {line}"))
}

/// Reads the ramp's standard error from standard input until it ends, writing each line's
/// [`progress_line`] to standard error as it comes.
pub fn progress(ramp: Ramp) -> anyhow::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut err = std::io::stderr().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        err.write_all(progress_line(ramp, &text).as_bytes())?;
        err.flush()?;
    }
}

/// The routes whose requests a viewer's requests reach at the node.
const ROUTES: [&str; 5] = ["master", "media", "part", "segment", "init"];

/// The requests the node counted on the routes viewers reach (master, media, part,
/// segment, init; `sealcast_http_requests_total`, each series' value as the Python's
/// pattern read it: digits and an optional fraction), summed: a float, or the int 0 when
/// no series is on those routes.
pub fn node_requests(metrics: &str) -> anyhow::Result<Value> {
    let mut total: Option<f64> = None;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("sealcast_http_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let Some(value) = value.strip_prefix(' ') else {
            continue;
        };
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let mut end = digits(value);
        if end == 0 {
            continue;
        }
        if let Some(fraction) = value[end..].strip_prefix('.') {
            if digits(fraction) > 0 {
                end += 1 + digits(fraction);
            }
        }
        let mut route = None;
        for kv in labels.split(',') {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("a label without '=' in {line:?}"))?;
            if k == "route" {
                route = Some(v.trim_matches('"'));
            }
        }
        if route.is_some_and(|r| ROUTES.contains(&r)) {
            let x: f64 = value[..end].parse().context("a requests value")?;
            total = Some(total.unwrap_or(0.0) + x);
        }
    }
    Ok(total.map_or(Value::from(0), Value::from))
}

/// `MAIN.backend_req`, `MAIN.cache_hit` and `MAIN.cache_miss` from `varnishstat -1 -f …`'s
/// output (0 for one it does not print).
pub fn varnish_counts(out: &str) -> anyhow::Result<[i64; 3]> {
    let mut got = std::collections::HashMap::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(n)) = (words.next(), words.next()) else {
            anyhow::bail!("varnishstat: {line:?}");
        };
        let n: i64 = n
            .parse()
            .with_context(|| format!("varnishstat: {line:?}"))?;
        got.insert(name, n);
    }
    let n = |k: &str| got.get(k).copied().unwrap_or(0);
    Ok([
        n("MAIN.backend_req"),
        n("MAIN.cache_hit"),
        n("MAIN.cache_miss"),
    ])
}

/// One origin sample: the node's requests and Varnish's counters now.
async fn origin_sample(
    client: &reqwest::Client,
    node: &str,
    varnish_dir: &std::path::Path,
) -> anyhow::Result<String> {
    let metrics = client
        .get(format!("{node}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let metrics = std::str::from_utf8(&metrics).context("the node's metrics are not UTF-8")?;
    let requests = python_number(&node_requests(metrics)?);
    let stat = tokio::process::Command::new("varnishstat")
        .arg("-n")
        .arg(varnish_dir)
        .args(["-1", "-f", "MAIN.backend_req", "-f", "MAIN.cache_hit"])
        .args(["-f", "MAIN.cache_miss"])
        .kill_on_drop(true)
        .output();
    let stat = tokio::time::timeout(std::time::Duration::from_secs(5), stat)
        .await
        .context("varnishstat timed out")?
        .context("running varnishstat")?;
    let [backend, hits, misses] = varnish_counts(&String::from_utf8_lossy(&stat.stdout))?;
    Ok(format!("{requests} {backend} {hits} {misses}"))
}

/// Writes an origin sample a second to `out` (made anew) until stopped: a line
/// `UNIX-TIME NODE-REQUESTS BACKEND-REQUESTS HITS MISSES`; a sample that fails is a line
/// `sample: …` on standard error instead.
pub fn origin_samples(
    node: &str,
    varnish_dir: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(out).with_context(|| out.display().to_string())?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .context("an HTTP client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let node = node.trim_end_matches('/');
    loop {
        let t0 = std::time::Instant::now();
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock")?
            .as_secs_f64();
        match runtime.block_on(origin_sample(&client, node, varnish_dir)) {
            Ok(sample) => {
                let line = format!("{} {sample}\n", python_float(t));
                if let Err(e) = file.write_all(line.as_bytes()) {
                    eprintln!("sample: {}: {e}", out.display());
                }
            }
            Err(e) => eprintln!("sample: {e:#}"),
        }
        let second = std::time::Duration::from_secs(1);
        std::thread::sleep(second.saturating_sub(t0.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_three_segments_and_a_part() {
        let two =
            "#EXTM3U\n#EXTINF:2.0,\n1.m4s\n#EXTINF:2.0,\n2.m4s\n#EXT-X-PART:URI=\"3.0.m4s\"\n";
        assert!(!window_listed(two));
        let three = format!("{two}#EXTINF:2.0,\n3.m4s\n");
        assert!(window_listed(&three));
        assert!(!window_listed(
            &three.replace("#EXT-X-PART:", "#EXT-X-PART-INF:")
        ));
        assert!(free_port().expect("a port") > 0);
    }

    #[test]
    fn origin_samples_read_as_the_python_read_them() {
        // A live node's request series (its /metrics in a check), which sample.py summed
        // to 6718.0, and crafted ones.
        let node = "# TYPE sealcast_http_requests_total counter\n\
            sealcast_http_requests_total{route=\"media\",status=\"200\"} 6175\n\
            sealcast_http_requests_total{route=\"init\",status=\"200\"} 4\n\
            sealcast_http_requests_total{route=\"push_part\",status=\"202\"} 216\n\
            sealcast_http_requests_total{route=\"push_segment\",status=\"409\"} 1\n\
            sealcast_http_requests_total{route=\"media\",status=\"404\"} 11\n\
            sealcast_http_requests_total{route=\"push_segment\",status=\"202\"} 38\n\
            sealcast_http_requests_total{route=\"master\",status=\"200\"} 4\n\
            sealcast_http_requests_total{route=\"segment\",status=\"200\"} 140\n\
            sealcast_http_requests_total{route=\"push_event\",status=\"204\"} 7\n\
            sealcast_http_requests_total{route=\"part\",status=\"200\"} 384\n";
        let sum = |text: &str| python_number(&node_requests(text).expect("metrics"));
        assert_eq!(sum(node), "6718.0");
        // The pattern's reading of odd values and labels: 1e+06 is 1, a label before the
        // route, one with a space, two spaces before the value (not read).
        let odd = "sealcast_http_requests_total{route=\"part\"} 1e+06\n\
            sealcast_http_requests_total{route=\"segment\",status=\"404\"} 7.5\n\
            sealcast_http_requests_total{status=\"200\",route=\"init\"} 2\n\
            sealcast_http_requests_total{ route=\"init\"} 1000\n\
            sealcast_http_requests_total{route=\"init\"}  5\n";
        assert_eq!(sum(odd), "10.5");
        assert_eq!(
            sum("sealcast_http_requests_total{route=\"metrics\"} 5\n"),
            "0"
        );
        assert_eq!(
            sum("sealcast_http_requests_total{route=\"part\"} 0\n"),
            "0.0"
        );
        assert!(node_requests("sealcast_http_requests_total{route=\"part\",} 3\n").is_err());
        let stat = "MAIN.backend_req            1234        12.34 Backend requests made\n\
                    MAIN.cache_hit              5678        56.78 Cache hits\n";
        assert_eq!(varnish_counts(stat).expect("counts"), [1234, 5678, 0]);
        assert!(varnish_counts("MAIN.cache_hit\n").is_err());
    }

    #[test]
    fn steps_print_as_the_python_printed_them() {
        // A step of capacity-ramps.json (haproxy-1), and what progress.py printed for it.
        let step = r#"{"cpu":{"cores":[0.536,0.441],"own":0.371,"watched":0.513},"errors":0,"issue_lag_p99_ms":3.212,"kinds":{"segment":{"ttfb_p99_ms":5.478}},"passed":true,"verdict":"passed","viewers":3734}"#;
        assert_eq!(
            progress_line(Ramp::Capacity, &format!("{step}\n")),
            "    3734 viewers: passed        segment TTFB p99     5.5 ms, errors 0, issue lag \
             p99 3.2 ms, server CPU 0.51, generator CPU 0.37, cores busy 0.54 0.44\n"
        );
        // The last step of llhls-lb-ramps.json's haproxy-1.
        let step = r#"{"cpu":{"cores":[0.95,0.5],"own":0.724,"watched":null},"errors":0,"issue_lag_p99_ms":12.5,"ll":{"latency":{"p50_ms":630.0,"p99_ms":1129.0},"part_ttfb":{"p50_ms":142.721,"p99_ms":614.916},"reload_wait":{"p50_ms":291.464,"p99_ms":617.167},"stalls":1},"passed":false,"verdict":"stalled","viewers":978}"#;
        assert_eq!(
            progress_line(Ramp::Llhls, step),
            "     978 viewers: stalled    part TTFB p99  614.9 ms, latency p50  630.0 ms, \
             reload wait p50 291.5 ms, stalls 1, errors 0, issue lag p99 12.5 ms, server CPU \
             0.00, generator CPU 0.72\n"
        );
        assert_eq!(
            progress_line(Ramp::Llhls, "thread panicked\n"),
            "  thread panicked\n"
        );
    }
}

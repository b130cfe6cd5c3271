//! What `bench/lb.sh` measures each load with, besides the load balancer's CPU: its two
//! h2load processes (one per backend cookie, half the clients each) summed into one
//! object, the `h2load` of a line of `results.jsonl` ([`h2load_pair`], `sealcast-bench
//! sample h2load-pair`; it was the script's `h2parse.py` heredoc, in git history before
//! this module). And the segment the backends serve ([`random_segment`], `sealcast-bench
//! random-ts`; a `python3 -c` of lb.sh and lb-profile.sh before).

use std::io::{Read, Write};

use anyhow::Context;
use serde::Serialize;

use crate::reports::h2load;

/// The two h2load runs of one load, as a results line's `h2load` gives them (in this
/// order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct H2loadPair {
    /// Requests that succeeded, both runs.
    pub requests: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Requests that errored.
    pub errored: u64,
    /// Requests that timed out.
    pub timeout: u64,
    /// Bytes received.
    pub bytes: u64,
    /// The longer run's seconds.
    pub duration_s: f64,
    /// The 200 answers both logs list.
    pub logged: usize,
    /// Their median time, in microseconds (the nearest-rank percentile); none without any.
    pub p50_us: Option<i64>,
    /// Their 99th percentile.
    pub p99_us: Option<i64>,
    /// Their 99.9th percentile.
    pub p999_us: Option<i64>,
    /// Their mean.
    pub mean_us: Option<f64>,
    /// What the second run says it negotiated (`TLSv1.3 TLS_AES_128_GCM_SHA256 h2`, or
    /// `http/1.1` on the backends themselves); "" when it does not say.
    pub protocol: String,
}

/// The two runs' figures from what each printed (`outs`) and their per-request logs (none
/// where h2load wrote none): counts and bytes summed, the longer run's seconds, the
/// percentiles of both logs' 200 answers together.
pub fn h2load_pair(outs: [&str; 2], logs: [Option<&str>; 2]) -> H2loadPair {
    let mut pair = H2loadPair {
        requests: 0,
        failed: 0,
        errored: 0,
        timeout: 0,
        bytes: 0,
        duration_s: 0.0,
        logged: 0,
        p50_us: None,
        p99_us: None,
        p999_us: None,
        mean_us: None,
        protocol: String::new(),
    };
    for out in outs {
        if let Some(seconds) = h2load::finished(out) {
            if seconds > pair.duration_s {
                pair.duration_s = seconds;
            }
        }
        let counts = h2load::requests(out).find_map(|r| Some((r, r.timeout?)));
        if let Some((r, timeout)) = counts {
            pair.requests += r.succeeded;
            pair.failed += r.failed;
            pair.errored += r.errored;
            pair.timeout += timeout;
        }
        if let Some((_, bytes)) = h2load::traffic(out).next() {
            pair.bytes += bytes;
        }
        // The last run's, as the Python's loop left it.
        pair.protocol = h2load::negotiated(out);
    }
    let mut us: Vec<i64> = logs
        .into_iter()
        .flat_map(|log| h2load::latencies_us(log.unwrap_or_default()))
        .collect();
    us.sort_unstable();
    // The nearest rank: lat[max(0, ceil(p / 100 * n) - 1)].
    let pct = |p: f64| {
        let rank = (p / 100.0 * us.len() as f64).ceil() as usize;
        us.get(rank.saturating_sub(1)).copied()
    };
    pair.logged = us.len();
    pair.p50_us = pct(50.0);
    pair.p99_us = pct(99.0);
    pair.p999_us = pct(99.9);
    pair.mean_us = (!us.is_empty()).then(|| us.iter().sum::<i64>() as f64 / us.len() as f64);
    pair
}

/// The size of an MPEG-TS packet.
const TS_PACKET: usize = 188;

/// `packets` TS packets of random bytes behind their 0x47 sync byte (incompressible, so
/// no layer can shrink them), from `/dev/urandom` as Python's `os.urandom` read them.
pub fn random_segment(packets: usize, to: &mut impl Write) -> anyhow::Result<()> {
    let mut payload = vec![0u8; packets * (TS_PACKET - 1)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut payload))
        .context("reading /dev/urandom")?;
    let mut segment = Vec::with_capacity(packets * TS_PACKET);
    for chunk in payload.chunks(TS_PACKET - 1) {
        segment.push(0x47);
        segment.extend_from_slice(chunk);
    }
    to.write_all(&segment).context("writing the segment")?;
    to.flush().context("writing the segment")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two real h2load 1.52 runs against nginx 1.22 through HAProxy 2.6 (TLS, h2), what
    /// the script's `h2parse.py` printed for them.
    #[test]
    fn sums_two_runs_as_the_python_did() {
        let pair = h2load_pair(
            [
                include_str!("../testdata/lb-h2load.0.out"),
                include_str!("../testdata/lb-h2load.1.out"),
            ],
            [
                Some(include_str!("../testdata/lb-h2load.0.log")),
                Some(include_str!("../testdata/lb-h2load.1.log")),
            ],
        );
        let line = serde_json::to_string(&pair).expect("JSON");
        let python: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/lb-h2load-python.json")).expect("JSON");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line).ok(),
            Some(python)
        );
        assert!(line.starts_with(r#"{"requests":"#));
        // No log, no count: nothing known but the protocol of the second run.
        let none = h2load_pair(["", "Application protocol: http/1.1\n"], [None, None]);
        let line = serde_json::to_string(&none).expect("JSON");
        assert_eq!(
            line,
            r#"{"requests":0,"failed":0,"errored":0,"timeout":0,"bytes":0,"duration_s":0.0,"logged":0,"p50_us":null,"p99_us":null,"p999_us":null,"mean_us":null,"protocol":"http/1.1"}"#
        );
    }

    #[test]
    fn a_segment_is_sync_bytes_and_noise() {
        let mut segment = Vec::new();
        random_segment(1088, &mut segment).expect("a segment");
        assert_eq!(segment.len(), 204_544);
        assert!(segment.chunks(TS_PACKET).all(|p| p[0] == 0x47));
        let mut again = Vec::new();
        random_segment(1088, &mut again).expect("a segment");
        assert_ne!(segment, again);
    }
}

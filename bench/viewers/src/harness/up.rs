//! `sealcast up`: the whole cluster in one process (ingest, broadcast nodes, load
//! balancer, broker), as the latency benchmarks start it (their configuration is
//! [`super::cluster::latency_config`], bench/lib.sh's `bench_latency_config`).
//!
//! `up` prints a line per endpoint once it is ready (`broadcastN URL`, `player URL`,
//! `obs-server URL`, `srt-server URL`, `stream-key STREAM KEY`); [`up`] waits for the last
//! node's line and keeps what it printed. The stream key is read from that output (the
//! run's own file), never put in a log of ours.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::{wait_for, Work};

/// A `sealcast up` started into a [`Work`].
#[derive(Debug)]
pub struct Up {
    /// Its pid.
    pub pid: u32,
    /// What it printed on standard output once ready.
    out: String,
}

impl Up {
    /// The second word of the first line whose first word is `key` (`player`,
    /// `obs-server`, `broadcast1`…), as the scripts' `awk '$1 == KEY {print $2}' | head -1`
    /// read it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.out.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(key)).then(|| words.next()).flatten()
        })
    }

    /// The broadcast nodes' URLs (the `broadcastN URL` lines), in the order printed.
    pub fn nodes(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter_map(|line| {
                let (first, rest) = line.split_once(' ')?;
                let n = first.strip_prefix("broadcast")?;
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| rest.split_whitespace().next())
                    .flatten()
            })
            .collect()
    }

    /// The key `up` made for `stream` (its `stream-key STREAM KEY` line).
    pub fn stream_key(&self, stream: &str) -> Option<&str> {
        self.out.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("stream-key") && words.next() == Some(stream))
                .then(|| words.next())
                .flatten()
        })
    }
}

/// Starts `bin up ARGS` into `work` as `name` (its output in `NAME.out` and `NAME.err`;
/// `name` may be `DIR/up` for a directory of the work made beforehand), on every core, and
/// waits up to `within` for the line of its `broadcast`-th node. Fails, with the last lines
/// of its standard error, when the line does not come.
pub fn up<S: AsRef<OsStr>>(
    work: &mut Work,
    name: &str,
    bin: &Path,
    args: &[S],
    broadcast: u32,
    within: Duration,
) -> anyhow::Result<Up> {
    let mut all: Vec<&OsStr> = vec!["up".as_ref()];
    all.extend(args.iter().map(AsRef::as_ref));
    let pid = work.start_unpinned(name, bin, all, &[])?;
    let ready = format!("broadcast{broadcast} ");
    if !wait_for(within, || work.out_has_line(name, &ready)) {
        let err = std::fs::read_to_string(work.path(format!("{name}.err"))).unwrap_or_default();
        let lines: Vec<&str> = err.lines().collect();
        bail!(
            "sealcast up did not start\n{}",
            lines[lines.len().saturating_sub(10)..].join("\n")
        );
    }
    let out = std::fs::read_to_string(work.path(format!("{name}.out")))?;
    Ok(Up { pid, out })
}

/// Every listener `sealcast up` opens, each on a port of 127.0.0.1 the system picks:
/// `--rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 …`, as every benchmark runs `up`
/// (the WHIP listener takes a free port of 127.0.0.1 unless told otherwise).
pub fn loopback_listeners() -> Vec<&'static OsStr> {
    [
        "--rtmp-listen",
        "--srt-listen",
        "--webrtc-listen",
        "--broadcast-listen",
        "--mqtt-listen",
        "--https-listen",
        "--http-listen",
    ]
    .into_iter()
    .flat_map(|flag| [OsStr::new(flag), OsStr::new("127.0.0.1:0")])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_fields_are_read_as_the_scripts_read_them() {
        let up = Up {
            pid: 1,
            out: "player https://localhost:1/\nobs-server rtmp://127.0.0.1:2/live\n\
                  stream-key main abc\nbroadcast1 http://127.0.0.1:3/\n\
                  broadcast2 http://127.0.0.1:4/\nbroadcaster x\n"
                .to_owned(),
        };
        assert_eq!(up.field("player"), Some("https://localhost:1/"));
        assert_eq!(up.field("srt-server"), None);
        assert_eq!(up.stream_key("main"), Some("abc"));
        assert_eq!(up.stream_key("other"), None);
        assert_eq!(up.nodes(), ["http://127.0.0.1:3/", "http://127.0.0.1:4/"]);
    }
}

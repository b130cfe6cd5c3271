//! `sealcast up`: the whole cluster in one process (ingest, broadcast nodes, load
//! balancer, broker), as every benchmark that runs it starts it: [`up`], with arguments
//! built by [`UpArgs`] (a directory of the run's for its configuration, data and
//! certificates; every listener on a free port of 127.0.0.1). The latency benchmarks'
//! configuration is [`super::cluster::latency_config`] (bench/lib.sh's
//! `bench_latency_config`).
//!
//! `up` prints a line per endpoint once it is ready (`broadcastN URL`, `player URL`,
//! `obs-server URL`, `srt-server URL`, `stream-key STREAM KEY`); [`up`] waits for the last
//! node's line and keeps what it printed, which [`Up`] reads. The stream key is read from
//! that output (the run's own file) and goes to a source through its environment
//! (`SEALCAST_SOURCE_URL`), never onto a command line or into a log of ours.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use super::{wait_for, Work};

/// A `sealcast up` started by [`up`]: its pid and what it printed once ready (its
/// `Debug` shows the pid only: what it printed holds the stream key).
#[derive(Clone)]
pub struct Up {
    /// Its pid (every role is in this one process).
    pub pid: u32,
    /// What it printed on standard output once ready (`obs-server URL`, `broadcast1 URL`…).
    out: String,
}

impl std::fmt::Debug for Up {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Up")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Up {
    /// The words after the first of the first line whose first word is `first`
    /// (`awk '$1 == FIRST'`).
    pub fn fields(&self, first: &str) -> Option<Vec<&str>> {
        self.out.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(first)).then(|| words.collect())
        })
    }

    /// The second word of the first line whose first word is `key` (`player`,
    /// `obs-server`, `broadcast1`…), as the scripts' `awk '$1 == KEY {print $2}' | head -1`
    /// read it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields(key)?.first().copied()
    }

    /// The URL a ready line gives (`broadcast1`, `player`, `obs-server`), without a
    /// trailing `/`.
    pub fn url(&self, role: &str) -> anyhow::Result<String> {
        let url = self
            .field(role)
            .with_context(|| format!("sealcast up printed no {role} line"))?;
        Ok(url.trim_end_matches('/').to_owned())
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

    /// The key `up` made for `stream` (its `stream-key STREAM KEY` line): a secret, for a
    /// source's environment only.
    pub fn stream_key(&self, stream: &str) -> Option<&str> {
        self.out.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("stream-key") && words.next() == Some(stream))
                .then(|| words.next())
                .flatten()
        })
    }
}

/// `sealcast up`'s arguments (those after `up`), in the order given.
#[derive(Debug, Clone, Default)]
pub struct UpArgs(Vec<OsString>);

impl UpArgs {
    /// `--config DIR/sealcast.toml --data-dir DIR/data --certs-dir DIR/certs --broadcast N`:
    /// a directory of the run's, the configuration written into it beforehand.
    pub fn configured(dir: &Path, broadcast: u64) -> UpArgs {
        UpArgs::default()
            .arg("--config")
            .arg(dir.join("sealcast.toml"))
            .dirs(dir, broadcast)
    }

    /// `--data-dir DIR/data --certs-dir DIR/certs --broadcast N`: a directory of the run's,
    /// the binary's default configuration.
    pub fn defaults(dir: &Path, broadcast: u64) -> UpArgs {
        UpArgs::default().dirs(dir, broadcast)
    }

    /// `--data-dir DIR/data --certs-dir DIR/certs --broadcast N` after the others.
    fn dirs(self, dir: &Path, broadcast: u64) -> UpArgs {
        self.arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--certs-dir")
            .arg(dir.join("certs"))
            .arg("--broadcast")
            .arg(broadcast.to_string())
    }

    /// `arg` after the others.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> UpArgs {
        self.0.push(arg.as_ref().to_owned());
        self
    }

    /// `args` after the others.
    pub fn args<S: AsRef<OsStr>>(self, args: impl IntoIterator<Item = S>) -> UpArgs {
        args.into_iter().fold(self, UpArgs::arg)
    }

    /// `--no-limits`: every connection of a benchmark comes from one address, which the
    /// per-client limits would refuse after a few hundred.
    pub fn no_limits(self) -> UpArgs {
        self.arg("--no-limits")
    }

    /// Every listener `sealcast up` opens, each on a port of 127.0.0.1 the system picks:
    /// `--rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 …`, as the benchmarks run `up`
    /// (the WHIP listener takes a free port of 127.0.0.1 unless told otherwise).
    pub fn loopback(self) -> UpArgs {
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
        .fold(self, |args, flag| args.arg(flag).arg("127.0.0.1:0"))
    }

    /// The command line after the binary: `up` and these.
    pub fn command(&self) -> Vec<&OsStr> {
        std::iter::once(OsStr::new("up"))
            .chain(self.0.iter().map(OsString::as_os_str))
            .collect()
    }
}

/// Starts `bin up ARGS` into `work` as `name` (its output in `NAME.out` and `NAME.err`;
/// `name` may be `DIR/up` for a directory of the work made beforehand), not pinned (on
/// every core, as the scripts ran it), with `envs` added to its environment, and waits up
/// to `within` for the line of its `broadcast`-th node (`broadcastN `, its last). Fails,
/// with the logs' last lines, when it exited or the line did not come.
pub fn up(
    work: &mut Work,
    name: &str,
    bin: &Path,
    args: &UpArgs,
    broadcast: u64,
    within: Duration,
    envs: &[(&str, &str)],
) -> anyhow::Result<Up> {
    let pid = work.start_unpinned(name, bin, args.command(), envs)?;
    let last = format!("broadcast{broadcast} ");
    if !wait_for(within, || work.out_has_line(name, &last)) {
        work.alive(pid, "sealcast up")?;
        bail!(
            "sealcast up did not start in {} s{}",
            within.as_secs(),
            work.logs()
        );
    }
    Ok(Up {
        pid,
        out: work.out(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_s_ready_lines_are_read_as_the_scripts_read_them() {
        let up = Up {
            pid: 1,
            out: "player https://localhost:1/\nobs-server rtmp://127.0.0.1:2/live\n\
                  stream-key main abc\nbroadcast1 http://127.0.0.1:3/\n\
                  broadcast2 http://127.0.0.1:4/\nbroadcaster x\n"
                .to_owned(),
        };
        assert_eq!(up.field("player"), Some("https://localhost:1/"));
        assert_eq!(up.field("srt-server"), None);
        assert_eq!(up.url("broadcast1").expect("node"), "http://127.0.0.1:3");
        assert_eq!(
            up.url("obs-server").expect("rtmp"),
            "rtmp://127.0.0.1:2/live"
        );
        assert!(up.url("broadcast3").is_err());
        assert_eq!(up.fields("stream-key"), Some(vec!["main", "abc"]));
        assert_eq!(up.fields("srt-server"), None);
        assert_eq!(up.stream_key("main"), Some("abc"));
        assert_eq!(up.stream_key("other"), None);
        assert_eq!(up.nodes(), ["http://127.0.0.1:3/", "http://127.0.0.1:4/"]);
    }

    #[test]
    fn up_s_arguments_are_the_scripts() {
        let dir = Path::new("/w/up");
        let words = |args: &UpArgs| -> Vec<String> {
            args.command()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let listeners: Vec<String> = "--rtmp-listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 \
            --webrtc-listen 127.0.0.1:0 --broadcast-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
            --https-listen 127.0.0.1:0 --http-listen 127.0.0.1:0"
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let configured = UpArgs::configured(dir, 2)
            .args(["--dvr-window", "30m"])
            .loopback();
        let mut expected: Vec<String> = [
            "up",
            "--config",
            "/w/up/sealcast.toml",
            "--data-dir",
            "/w/up/data",
            "--certs-dir",
            "/w/up/certs",
            "--broadcast",
            "2",
            "--dvr-window",
            "30m",
        ]
        .map(str::to_owned)
        .to_vec();
        expected.extend(listeners.iter().cloned());
        assert_eq!(words(&configured), expected);
        let defaults = UpArgs::defaults(dir, 1).no_limits().loopback();
        let mut expected: Vec<String> = [
            "up",
            "--data-dir",
            "/w/up/data",
            "--certs-dir",
            "/w/up/certs",
            "--broadcast",
            "1",
            "--no-limits",
        ]
        .map(str::to_owned)
        .to_vec();
        expected.extend(listeners);
        assert_eq!(words(&defaults), expected);
    }
}

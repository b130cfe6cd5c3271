//! `sealcast up` as bench/memory.sh runs it: one process with one broadcast node and no
//! per-client limits, its URLs and stream key read from what it printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use super::{wait_for, Work};

/// `sealcast up` with one broadcast node, started by [`up_one`].
#[derive(Debug, Clone)]
pub struct UpOne {
    /// Its pid (every role is in this one process).
    pub pid: u32,
    /// The node's base URL (`broadcast1`, plain HTTP), without a trailing `/`.
    pub node: String,
    /// The load balancer's base URL (`player`, HTTPS), without a trailing `/`.
    pub player: String,
    /// `--certs-dir`: the load balancer's `server.pem` and `server.key`.
    pub certs: PathBuf,
    /// The CA's certificate, which the load balancer's chains to.
    pub ca: PathBuf,
    /// The stream `main`'s RTMP URL with its key: a secret, for a source's environment
    /// (`SEALCAST_SOURCE_URL`) only.
    pub source_url: String,
}

/// A fresh `sealcast up --broadcast 1 --no-limits` (every connection of a benchmark comes
/// from one address, which the per-client limits would refuse after a few hundred), its
/// data and certificates in `dir` (emptied first), every listener on a free port of
/// 127.0.0.1, not pinned, with `TOKIO_WORKER_THREADS=workers` when given (else the
/// binary's default, a worker per core); started as `name`, once it printed its URLs (at
/// most 30 s).
pub fn up_one(
    work: &mut Work,
    bin: &Path,
    name: &str,
    dir: &Path,
    workers: Option<&str>,
) -> anyhow::Result<UpOne> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let (data, certs) = (dir.join("data"), dir.join("certs"));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "up".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--certs-dir".as_ref(),
        certs.as_os_str(),
        "--broadcast".as_ref(),
        "1".as_ref(),
        "--no-limits".as_ref(),
    ];
    args.extend(super::up::loopback_listeners());
    let envs: Vec<(&str, &str)> = workers
        .map(|w| ("TOKIO_WORKER_THREADS", w))
        .into_iter()
        .collect();
    let pid = work.start(name, super::UNPINNED, bin, args, &envs)?;
    if !wait_for(Duration::from_secs(30), || {
        work.out_has_line(name, "broadcast1 ")
    }) {
        work.alive(pid, name)?;
        bail!("sealcast up did not start in 30 s{}", work.logs());
    }
    let field = |prefix: &str| {
        work.out_field(name, prefix)
            .with_context(|| format!("sealcast up printed no {prefix}line"))
    };
    let node = field("broadcast1 ")?.trim_end_matches('/').to_owned();
    let player = field("player ")?.trim_end_matches('/').to_owned();
    let rtmp = field("obs-server ")?;
    // The key is the line's third field: `stream-key main KEY`.
    let out = std::fs::read_to_string(work.path(format!("{name}.out")))?;
    let key = out
        .lines()
        .find(|l| l.starts_with("stream-key main "))
        .and_then(|l| l.split_whitespace().nth(2))
        .context("sealcast up printed no key for main")?;
    Ok(UpOne {
        pid,
        node,
        player,
        ca: certs.join("ca.pem"),
        certs,
        source_url: format!("{rtmp}/{key}"),
    })
}

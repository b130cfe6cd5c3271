//! Health that tells the truth (issue 45): a `sealcast up` whose listener task dies stops
//! and exits non-zero, naming the listener, so that Docker's `restart:` policy and
//! Kubernetes start it again (plain Docker restarts an exited container, never an unhealthy
//! one; `/healthz` turning 503 is held by `plumbing`'s tests). The death is a panic in the
//! listener's task, injected with `SEALCAST_FAILPOINT=listener:NAME`
//! (`plumbing::liveness`): a guard dropped on unwind counts as a death.
//!
//! What this does not do: start a container and watch Docker restart it (the restart
//! policies are checked statically, `tests/deploy/topology.rs`).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{ensure, Context};
use tokio::process::Command;

use crate::cluster::BIN;

/// How long a dying `up` may take to stop (it makes its keys and certificates first).
const EXIT_WAIT: Duration = Duration::from_secs(90);

/// `sealcast up` with `listener`'s task dying at start: it exits non-zero, saying which.
async fn up_exits_when(listener: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut command = Command::new(BIN);
    command
        .args(["up", "--broadcast", "1"])
        .args([
            "--mqtt-listen",
            "127.0.0.1:0",
            "--rtmp-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--srt-listen",
            "127.0.0.1:0",
            "--webrtc-listen",
            "127.0.0.1:0",
        ])
        .args(["--broadcast-listen", "127.0.0.1:0", "--https-listen"])
        .args(["127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .arg("--certs-dir")
        .arg(dir.path().join("certs"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("SEALCAST_LOG", "info")
        .env("SEALCAST_FAILPOINT", format!("listener:{listener}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().context("starting sealcast up")?;
    let output = tokio::time::timeout(EXIT_WAIT, child.wait_with_output())
        .await
        .with_context(|| {
            format!("sealcast up went on running {EXIT_WAIT:?} after its {listener} listener died")
        })??;
    let log = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success(),
        "sealcast up exited 0 after its {listener} listener died; its log:\n{log}"
    );
    ensure!(
        output.status.code() == Some(1),
        "sealcast up did not stop cleanly ({}) after its {listener} listener died; its log:\n{log}",
        output.status
    );
    let said = format!("the {listener} listener stopped unasked");
    ensure!(
        log.contains(&said),
        "sealcast up's log does not say {said:?}:\n{log}"
    );
    Ok(())
}

/// Each listener of `up` in turn: the ingest's RTMP, SRT, WHIP (HTTP) and WebRTC (UDP)
/// tasks, a broadcast node's HTTP server, and the load balancer's HTTPS service.
pub(crate) async fn dead_listeners_stop_up_non_zero() -> anyhow::Result<()> {
    for listener in ["rtmp", "srt", "whip", "webrtc", "broadcast", "https"] {
        up_exits_when(listener)
            .await
            .with_context(|| format!("the {listener} listener"))?;
    }
    Ok(())
}

//! Media over QUIC wiring (issue 48), for `broadcast` and for each node of `up`: the
//! node's egress to its relay and, with `--moq-auth-socket`, the auth endpoint the relay
//! asks (`broadcast::run_moq_auth`) on a Unix socket that only this user can open; and
//! `sealcast moq-gate`, one relay of a relay tier run beside its auth endpoint.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use broadcast::Node;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::plan::MoqPlan;

/// Starts `node`'s MoQ egress on `tasks` until `stop`, and the relay's auth endpoint too
/// when the plan has one and `serve_auth` (under `up`, one node serves it for all: they
/// check tokens alike and publish with the same key). Binding the socket is the only
/// thing that fails here, before anything is started.
pub(super) fn start(
    tasks: &TaskTracker,
    node: &Arc<Node>,
    moq: &MoqPlan,
    serve_auth: bool,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    if let (Some(auth), true) = (&moq.auth, serve_auth) {
        let listener = bind_auth_socket(&auth.socket)?;
        let (node, config, socket) = (Arc::clone(node), auth.config.clone(), auth.socket.clone());
        let ours = identity(&socket);
        let stop = stop.clone();
        tasks.spawn(async move {
            // The relay admits nobody while no one answers here: it fails closed.
            if let Err(e) =
                broadcast::run_moq_auth(broadcast::MoqAuthority::Node(node), config, listener, stop)
                    .await
            {
                tracing::error!(error = %e, "the MoQ auth endpoint stopped");
            }
            // Gone with us, unless another process bound that path since.
            if ours.is_some() && identity(&socket) == ours {
                let _ = std::fs::remove_file(&socket);
            }
        });
    }
    let (node, egress, stop) = (Arc::clone(node), moq.egress.clone(), stop.clone());
    tasks.spawn(async move {
        // A relay that cannot be set up is logged, and the node serves HLS as before.
        if let Err(e) = broadcast::run_moq(node, egress, stop).await {
            tracing::error!(error = %e, "MoQ egress stopped");
        }
    });
    Ok(())
}

/// Starts the relay `up` runs itself (`--moq-run-relay`) and waits until its HTTP side
/// serves its certificate's fingerprint (`/certificate.sha256`): the MoQ plan of the nodes
/// is made with it. The relay asks the auth socket the first node serves (admitting nobody
/// until then); it is killed when the child is dropped, with `up`.
pub(crate) async fn run_relay(
    run: &crate::plan::RunRelayPlan,
) -> anyhow::Result<(tokio::process::Child, crate::plan::MoqPlan)> {
    let listen = run.listen.to_string();
    if let Some(dir) = run.log.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("making the data directory {}", dir.display()))?;
    }
    let log = std::fs::File::create(&run.log)
        .with_context(|| format!("the relay's log {}", run.log.display()))?;
    let mut child = tokio::process::Command::new(&run.bin)
        .args(["--listen", &listen, "--listen-tls-generate", "localhost"])
        // Datagrams up to 1,452 bytes where the path carries them (moq-relay's default is
        // 1,200): 1.24x the viewers per CPU-second in bench/moq-cost.sh.
        .arg("--quic-mtu-discovery")
        .args(["--web-http-listen", &listen, "--auth-url"])
        .arg(format!("unix://{}", run.socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", run.bin.display()))?;
    let local = match run.listen.ip() {
        ip if ip.is_unspecified() => {
            std::net::SocketAddr::from(([127, 0, 0, 1], run.listen.port()))
        }
        _ => run.listen,
    };
    let url = format!("http://{local}/certificate.sha256");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let fingerprint = loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the MoQ relay exited ({status}); see {}", run.log.display());
        }
        if let Ok(answer) = client.get(&url).send().await {
            let text = answer.text().await.unwrap_or_default();
            let text = text.trim();
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                break text.to_owned();
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the MoQ relay did not answer on {local} within 20 s; see {}",
            run.log.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let plan = crate::plan::for_run_relay(run, &fingerprint)?;
    tracing::info!(listen = %run.listen, "the MoQ relay runs");
    Ok((child, plan))
}

/// `sealcast moq-gate`: binds the auth socket, answers on it with the tier's key
/// (`broadcast::MoqAuthority::Gate`), and runs the relay with `--auth-url` naming it (and
/// its cluster credential in a file of mode 0600 beside the socket when it dials other
/// relays) until the relay exits or the gate is asked to stop; then the relay is killed
/// (it holds nothing a viewer's resubscribe does not bring back).
pub(crate) async fn moq_gate(
    args: crate::cli::MoqGateArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let plan = crate::plan::MoqGatePlan::derive(&args)?;
    let socket = plan.auth.socket.clone();
    let listener = bind_auth_socket(&socket)?;
    let ours = identity(&socket);
    let mut extra: Vec<std::ffi::OsString> = vec![
        "--auth-url".into(),
        format!("unix://{}", socket.display()).into(),
    ];
    let token_file = socket.with_extension("cluster-token");
    if plan.dials {
        write_private(&token_file, plan.auth.config.key.cluster().as_bytes())
            .with_context(|| format!("the cluster credential's file {}", token_file.display()))?;
        extra.extend([
            "--cluster-token".into(),
            token_file.clone().into_os_string(),
        ]);
    }
    let stop = shutdown.child_token();
    let answering = tokio::spawn(broadcast::run_moq_auth(
        broadcast::MoqAuthority::Gate,
        plan.auth.config.clone(),
        listener,
        stop.clone(),
    ));
    let (program, relay_args) = plan
        .relay
        .split_first()
        .context("no relay program after --")?;
    let mut relay = tokio::process::Command::new(program)
        .args(relay_args)
        .args(&extra)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.to_string_lossy()))?;
    tracing::info!(socket = %socket.display(), "the MoQ gate answers its relay");
    super::print_ready(&format!("moq-gate unix://{}\n", socket.display()));
    let ended = tokio::select! {
        status = relay.wait() => Some(status),
        () = shutdown.cancelled() => None,
    };
    if ended.is_none() {
        let _ = relay.start_kill();
        let _ = relay.wait().await;
    }
    stop.cancel();
    let _ = answering.await;
    if ours.is_some() && identity(&socket) == ours {
        let _ = std::fs::remove_file(&socket);
    }
    let _ = std::fs::remove_file(&token_file);
    match ended {
        Some(Ok(status)) if !status.success() => anyhow::bail!("the relay exited: {status}"),
        Some(Err(e)) => Err(e).context("waiting for the relay"),
        Some(Ok(_)) => anyhow::bail!("the relay exited"),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` as a new file of mode 0600 (a file left there is replaced).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Which file `path` is (device and inode), if any.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// The Unix socket moq-relay's `--auth-url unix://PATH` names, mode 0600 from the moment
/// it appears at `path`: it is bound in a new directory of mode 0700 beside `path`, made
/// 0600 there and renamed into place, so no other user can open it in between (the mode
/// a socket is bound with comes from the umask). A socket left by an earlier run is
/// replaced; one that a live process answers on, or anything that is not a socket, is
/// an error and left alone.
pub(super) fn bind_auth_socket(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            anyhow::bail!("{} exists and is not a socket", path.display())
        }
        Ok(_) if std::os::unix::net::UnixStream::connect(path).is_ok() => {
            anyhow::bail!("{} is in use by another process", path.display())
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("looking at {}", path.display())),
    }
    if path.file_name().is_none() {
        anyhow::bail!("{} names no file", path.display());
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    // Short: a socket's path is at most 107 bytes (the plan keeps `path` within 72).
    let private = parent.join(format!(".moq-auth-{:x}{nanos:08x}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("making a private directory beside {}", path.display()))?;
    let staged = private.join("s");
    let bound = (|| {
        let listener = tokio::net::UnixListener::bind(&staged).context("binding it")?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .context("making it mode 0600")?;
        std::fs::rename(&staged, path).context("moving it into place")?;
        anyhow::Ok(listener)
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    bound.with_context(|| format!("the MoQ auth socket {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn the_moq_auth_socket_is_the_users_alone_and_replaces_only_a_stale_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("moq-auth.sock");
        let first = bind_auth_socket(&path).expect("bound");
        let mode = std::fs::metadata(&path)
            .expect("there")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Served: a second node does not take it over.
        assert!(
            bind_auth_socket(&path).is_err(),
            "a live socket was replaced"
        );
        tokio::net::UnixStream::connect(&path)
            .await
            .expect("the first still answers");
        drop(first);
        let second = bind_auth_socket(&path).expect("a stale socket is replaced");
        tokio::net::UnixStream::connect(&path)
            .await
            .expect("the new one answers");
        drop(second);
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"keep me").expect("written");
        assert!(bind_auth_socket(&file).is_err());
        assert_eq!(std::fs::read(&file).expect("kept"), b"keep me");
        // Nothing left behind but the socket and the file.
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["moq-auth.sock", "not-a-socket"]);
    }
}

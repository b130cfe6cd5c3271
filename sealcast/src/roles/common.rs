//! What the roles do alike: open the catalog, bind listeners, serve a metrics registry,
//! and say where things are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use catalog::Catalog;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::plan::CatalogLocation;

/// Opens the catalog at `location` (creating the data directory if needed).
pub(crate) async fn open_catalog(location: &CatalogLocation) -> anyhow::Result<Catalog> {
    let location = match location {
        CatalogLocation::Url(url) => url.clone(),
        CatalogLocation::DataDir(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the data directory {}", dir.display()))?;
            dir.join("catalog.db").display().to_string()
        }
    };
    Catalog::open(&location)
        .await
        .context("opening the catalog")
}

pub(super) async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

/// The metrics server of a role on its own (a standalone ingest, the load balancer):
/// `registry` on `/metrics` and `liveness` on `/healthz` at `listen` until `stop`, within
/// `plumbing::metrics_server`'s limits. Returns the bound address and the server's task.
pub(super) async fn serve_metrics(
    listen: SocketAddr,
    registry: Registry,
    liveness: plumbing::Liveness,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let listener = bind(listen, "metrics").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(plumbing::metrics_server::serve(
        listener,
        Arc::new(registry),
        liveness,
        stop,
    ));
    Ok((addr, task))
}

/// The error a role exits with when listener `name` stopped unasked: the process ends
/// non-zero so that Docker's `restart:` policy or Kubernetes starts it again.
pub(super) fn listener_died(name: &str) -> anyhow::Error {
    anyhow::anyhow!("the {name} listener stopped unasked; exiting so that the process is restarted")
}

/// Where a data directory path is shown to the operator.
pub(super) fn shown(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// `host:port` of a listen address, with loopback in place of an unspecified address.
pub(super) fn url_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => format!("127.0.0.1:{}", addr.port()),
            SocketAddr::V6(_) => format!("[::1]:{}", addr.port()),
        }
    } else {
        addr.to_string()
    }
}

/// `http://` + the listen address, with the host's name in place of an unspecified address
/// (a compose replica's host name resolves on its networks; a node's URL others reach it by).
pub(super) fn default_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        if let Ok(host) = std::env::var("HOSTNAME") {
            let host = host.trim();
            if !host.is_empty() {
                return format!("http://{host}:{}", addr.port());
            }
        }
    }
    format!("http://{}", url_host(addr))
}

/// Prints what scripts read from stdout, flushed at once.
#[allow(clippy::print_stdout)] // stdout is this command's interface
pub(crate) fn print_ready(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Starts `ingest`'s SRT listener as `plan` says: a given address that cannot be bound is
/// an error; the default one (0.0.0.0:9000), when taken, only warns, so that two clusters
/// on one machine still start. Returns where it listens.
pub(super) async fn start_srt(
    ingest: &mut ingest::Running,
    plan: crate::plan::SrtPlan,
    stop: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let socket = match tokio::net::UdpSocket::bind(plan.listen).await {
        Ok(socket) => socket,
        Err(e) if !plan.given => {
            tracing::warn!(listen = %plan.listen, error = %e, "SRT not started: its default port is taken (give --srt-listen)");
            return Ok(None);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("binding the SRT listener on {}", plan.listen)))
        }
    };
    ingest.serve_srt(socket, plan.settings, stop)?;
    Ok(ingest.srt_addr())
}

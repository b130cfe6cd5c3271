//! Wiring of the roles: which parts run, on which listeners, connected how.
//!
//! - `up`: everything in one process (embedded broker, ingest, N broadcast nodes, load
//!   balancer).
//! - `cluster`: the roles one per process, as in a real cluster (`ingest`, `broadcast`).
//! - `lb`: the load balancer, alone (`sealcast lb`) or inside `up`.
//! - `admin`: the admin API beside the nodes, load reports, sessions and recordings in
//!   the catalog, webhooks, operators' end requests.
//! - here: what they share (catalog, keys, listeners, URLs) and `ladder`.

mod admin;
mod cluster;
mod lb;
mod up;

pub(crate) use cluster::{broadcast, ingest};
pub(crate) use lb::{lb, make_certificates};
pub(crate) use up::up;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use broadcast::NodeConfig;
use catalog::Catalog;
use certs::KeyDir;
use domain::push::PushToken;
use domain::StreamName;
use ingest::distribute::DistributeConfig;
use ingest::{IngestMetrics, IngestSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{CatalogArgs, TrustArgs};
use crate::config::Config;

/// Opens the catalog named by the arguments (creating the data directory if needed).
pub(crate) async fn open_catalog(args: &CatalogArgs) -> anyhow::Result<Catalog> {
    let location = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir).with_context(|| {
                format!("creating the data directory {}", args.data_dir.display())
            })?;
            args.data_dir.join("catalog.db").display().to_string()
        }
    };
    Catalog::open(&location)
        .await
        .context("opening the catalog")
}

fn node_config(config: &Config) -> NodeConfig {
    NodeConfig {
        window: config.ladder.window,
        segment_target: config.ladder.segment_target,
    }
}

fn ingest_settings(config: &Config) -> anyhow::Result<IngestSettings> {
    Ok(IngestSettings {
        app: config.ingest.app.clone(),
        ladder: Arc::new(config.ladder.clone()),
        encoder_threads: config.ingest.encoder_threads,
        end_grace: config.ingest.end_grace()?,
        max_connections: config.ingest.max_connections.max(1),
    })
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

/// The ingest's and the load balancer's metrics of `up`, and the registry that exports
/// them (on the nodes' `/metrics`).
fn up_metrics() -> (
    IngestMetrics,
    loadbalancer::LbMetrics,
    Arc<prometheus_client::registry::Registry>,
) {
    let metrics = IngestMetrics::default();
    let lb = loadbalancer::LbMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    lb.register(&mut registry);
    (metrics, lb, Arc::new(registry))
}

/// The catalog as the ingest sees it ([`ingest::StreamAuthority`]): stream keys and
/// numbering.
#[derive(Debug, Clone)]
struct CatalogAuthority(Catalog);

#[async_trait::async_trait]
impl ingest::StreamAuthority for CatalogAuthority {
    async fn authenticate(
        &self,
        presented_key: &str,
    ) -> Result<Option<StreamName>, ingest::AuthorityError> {
        Ok(self.0.authenticate(presented_key).await?)
    }

    async fn begin_numbering(
        &self,
        stream: &StreamName,
    ) -> Result<ingest::Numbering, ingest::AuthorityError> {
        let n = self.0.begin_numbering(stream).await?;
        Ok(ingest::Numbering {
            first_sequence: n.first_sequence,
            discontinuity_sequence: n.discontinuity_sequence,
            discontinuity: n.discontinuity,
        })
    }

    async fn mark_live(
        &self,
        stream: &StreamName,
        at_unix: i64,
    ) -> Result<(), ingest::AuthorityError> {
        Ok(self.0.mark_live(stream, at_unix).await?)
    }

    async fn advance_sequence(
        &self,
        stream: &StreamName,
        next: u64,
    ) -> Result<(), ingest::AuthorityError> {
        Ok(self.0.advance_sequence(stream, next).await?)
    }
}

/// Starts the ingest node ([`ingest::run`]) over `catalog`, its RTMP server until `stop`.
fn start_ingest(
    config: &Config,
    catalog: &Catalog,
    rtmp: TcpListener,
    distribution: DistributeConfig,
    metrics: IngestMetrics,
    observer: Option<Arc<dyn ingest::PublishObserver>>,
    stop: CancellationToken,
) -> anyhow::Result<ingest::Running> {
    let deps = ingest::IngestDeps {
        authority: Arc::new(CatalogAuthority(catalog.clone())),
        observer,
        metrics,
    };
    Ok(ingest::run(
        rtmp,
        ingest_settings(config)?,
        distribution,
        deps,
        stop,
    )?)
}

/// The key directory: `--keys-dir`, else `keys` in the data directory.
pub(crate) fn key_dir(keys_dir: Option<&Path>, catalog: &CatalogArgs) -> KeyDir {
    KeyDir::new(
        keys_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| catalog.data_dir.join("keys")),
    )
}

/// The broadcast nodes' presence signer: the edge key and its certificate from the key
/// directory.
fn presence_signer(keys: &KeyDir) -> anyhow::Result<Arc<certs::signing::PresenceSigner>> {
    let (key, certificate) = keys.edge().with_context(|| {
        format!(
            "reading the edge key that signs broadcast presences (run `sealcast keys init`); key directory {}",
            keys.path().display()
        )
    })?;
    Ok(Arc::new(
        certs::signing::PresenceSigner::new(key, &certificate).context("the edge key")?,
    ))
}

/// The push token: given directly, else read from the key directory.
fn push_token(trust: &TrustArgs, keys: &KeyDir) -> anyhow::Result<PushToken> {
    match &trust.push_token {
        Some(token) => PushToken::new(token.clone()).context("SEALCAST_PUSH_TOKEN"),
        None => keys.push_token().with_context(|| {
            format!(
                "reading the push token (run `sealcast keys init` or set SEALCAST_PUSH_TOKEN); key directory {}",
                keys.path().display()
            )
        }),
    }
}

/// Seconds since the Unix epoch (certificate validity is checked against it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where a data directory path is shown to the operator.
fn shown(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn url_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => format!("127.0.0.1:{}", addr.port()),
            SocketAddr::V6(_) => format!("[::1]:{}", addr.port()),
        }
    } else {
        addr.to_string()
    }
}

/// `sealcast ladder`: a file through the same pipeline.
pub(crate) fn ladder(input: &Path, output: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    let config = crate::config::load(config)?;
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let started = std::time::Instant::now();
    let report = ingest::file::transcode_file(
        input,
        output,
        Arc::new(config.ladder),
        config.ingest.encoder_threads,
    )?;
    let mut names: Vec<_> = report.segments.keys().cloned().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let segs = report.segments[&name];
        let bytes = report.bytes.get(&name).copied().unwrap_or(0);
        let secs = report.seconds.get(&name).copied().unwrap_or(0.0);
        let kbps = if secs > 0.0 {
            bytes as f64 * 8.0 / secs / 1000.0
        } else {
            0.0
        };
        out.push_str(&format!(
            "{name} segments={segs} seconds={secs:.3} kbps={kbps:.0}\n"
        ));
    }
    out.push_str(&format!(
        "wall_seconds={:.3}\n",
        started.elapsed().as_secs_f64()
    ));
    print_ready(&out);
    Ok(())
}

/// Prints what scripts read from stdout, flushed at once.
#[allow(clippy::print_stdout)] // stdout is this command's interface
pub(crate) fn print_ready(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

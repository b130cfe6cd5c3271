//! `sealcast lb` and the load balancer of `sealcast up`: the certificate files (generated
//! on first start unless the operator brings their own), listeners, and
//! [`loadbalancer::start`].

use domain::time::WallClock;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use certs::tls::ServerNames;
use certs::TlsDir;
use domain::broker::BrokerAddress;
use loadbalancer::members::HealthChecks;
use loadbalancer::proxy::ProxySettings;
use loadbalancer::tls::CertificateFiles;
use loadbalancer::{LbConfig, LbListeners, LbMetrics, Running};
use tokio_util::sync::CancellationToken;

use super::common::{listener_died, print_ready, serve_metrics, shown, url_host};
use crate::cli::LbArgs;
use crate::plan::{Balancer, BalancerKeys, LbPlan, TlsPlan};

/// How often the certificate files are looked at for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// `sealcast lb`: the load balancer on its own.
pub(crate) async fn lb(args: LbArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let plan = LbPlan::derive(&args)?;
    let metrics = LbMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let (running, bound) = start(
        plan.balancer,
        plan.keys,
        plan.broker,
        plan.client_id,
        metrics,
    )
    .await?;
    let liveness = running.liveness().clone();
    let (metrics_addr, metrics_task) = serve_metrics(
        plan.metrics_listen,
        registry,
        liveness.clone(),
        shutdown.child_token(),
    )
    .await?;
    tracing::info!(https = %bound.https, http = %bound.http, "load balancer listening");
    print_ready(&format!(
        "{}metrics http://{}/metrics\n",
        bound.lines(),
        url_host(metrics_addr)
    ));
    // Until asked to stop, or until a listener stopped unasked: then the process exits
    // non-zero (docs/deployment.md, liveness).
    let dead = tokio::select! {
        () = shutdown.cancelled() => None,
        name = liveness.died() => Some(name),
    };
    shutdown.cancel();
    running.stop().await;
    metrics_task.await??;
    match dead {
        Some(name) => Err(listener_died(name)),
        None => Ok(()),
    }
}

/// The certificate files to serve, made first when the plan says so. Renewal and new
/// names are `sealcast certs`; the load balancer picks the new files up by itself.
async fn certificate_files(tls: TlsPlan) -> anyhow::Result<CertificateFiles> {
    match tls {
        TlsPlan::Files(files) => Ok(files),
        TlsPlan::Make { dir, names, files } => {
            let made = make_certificates(&dir, names).await?;
            for path in &made.written {
                tracing::info!(path = %shown(path).display(), "wrote TLS material");
            }
            if made.ca_created {
                tracing::info!("{}", dir.trust_hint());
            }
            Ok(files)
        }
    }
}

/// Makes or renews the CA and server certificate in `dir` (on the blocking pool: key
/// generation and file writes).
pub(crate) async fn make_certificates(
    dir: &TlsDir,
    names: ServerNames,
) -> anyhow::Result<certs::tls::InitReport> {
    let making = dir.clone();
    tokio::task::spawn_blocking(move || making.init(&names, WallClock.unix_secs()))
        .await?
        .with_context(|| format!("making TLS certificates in {}", dir.path().display()))
}

/// The load balancer's addresses.
pub(super) struct Bound {
    pub(super) https: SocketAddr,
    pub(super) http: SocketAddr,
    /// The plain-HTTP proxy for a cache in front, where asked for.
    pub(super) origin: Option<SocketAddr>,
    /// The QUIC front door (UDP), where it runs.
    pub(super) quic: Option<SocketAddr>,
}

impl Bound {
    /// The `player` and `redirect` lines printed once it is ready, and `origin` (for a
    /// cache in front) where there is one.
    pub(super) fn lines(&self) -> String {
        let http = if self.http.ip().is_unspecified() || self.http.ip().is_loopback() {
            format!("http://localhost:{}/", self.http.port())
        } else {
            format!("http://{}/", self.http)
        };
        let player = player_url(self.https);
        let origin = self
            .origin
            .map(|a| format!("origin http://{}/\n", url_host(a)))
            .unwrap_or_default();
        let quic = self
            .quic
            .map(|a| format!("quic {}/udp\n", url_host(a)))
            .unwrap_or_default();
        format!("player {player}\ndashboard {player}dashboard\nredirect {http}\n{origin}{quic}")
    }
}

/// Makes the certificate if the plan says so, binds the listeners and starts the load
/// balancer (MQTT client id `client_id`); returns it with its addresses.
pub(super) async fn start(
    balancer: Balancer,
    keys: BalancerKeys,
    broker: BrokerAddress,
    client_id: String,
    metrics: LbMetrics,
) -> anyhow::Result<(Running, Bound)> {
    let certificate = certificate_files(balancer.tls).await?;
    let bind = |addr: SocketAddr, what: &str| {
        std::net::TcpListener::bind(addr)
            .with_context(|| format!("binding the load balancer's {what} listener on {addr}"))
    };
    let https = bind(balancer.https, "HTTPS")?;
    let https_addr = https.local_addr()?;
    let http = bind(balancer.http, "HTTP")?;
    let http_addr = http.local_addr()?;
    let origin = balancer
        .balance
        .origin_listen
        .map(|addr| bind(addr, "origin"))
        .transpose()?;
    let origin_addr = origin.as_ref().map(|l| l.local_addr()).transpose()?;
    let (quic, quic_config) = match balancer.quic {
        Some((addr, door)) => {
            let socket = std::net::UdpSocket::bind(addr).with_context(|| {
                format!("binding the load balancer's QUIC front door on {addr}/udp")
            })?;
            (Some(socket), Some(door))
        }
        None => (None, None),
    };
    let quic_addr = quic.as_ref().map(|s| s.local_addr()).transpose()?;
    let config = LbConfig {
        broker,
        client_id,
        presences: keys.presences,
        certificate,
        reload_interval: RELOAD_INTERVAL,
        cookies: keys.cookies,
        mode: balancer.balance.lb_mode.into(),
        proxy: ProxySettings {
            direct: balancer.balance.direct,
            access_log: balancer.access_log,
            collapse: !balancer.balance.no_collapse,
        },
        health: HealthChecks::default(),
        acme_dir: balancer.balance.acme_dir,
        fallback_host: "localhost".to_owned(),
        limits: balancer.limits,
        trusted_caches: balancer.trusted_caches,
        tokens: keys.tokens,
        quic: quic_config,
    };
    let running = loadbalancer::start(
        config,
        LbListeners {
            https,
            http: Some(http),
            origin,
            quic,
        },
        metrics,
    )
    .context("starting the load balancer")?;
    Ok((
        running,
        Bound {
            https: https_addr,
            http: http_addr,
            origin: origin_addr,
            quic: quic_addr,
        },
    ))
}

/// The player URL for an HTTPS listen address: `localhost` for loopback and unspecified
/// addresses (the certificate names it), the port unless it is 443.
fn player_url(https: SocketAddr) -> String {
    let local = https.ip().is_unspecified() || https.ip().is_loopback();
    match (local, https.port()) {
        (true, 443) => "https://localhost/".to_owned(),
        (true, port) => format!("https://localhost:{port}/"),
        (false, 443) => format!("https://{}/", https.ip()),
        (false, _) => format!("https://{https}/"),
    }
}

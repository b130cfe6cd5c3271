//! `sealcast lb` and the load balancer of `sealcast up`: certificate files (generated on
//! first start unless the operator brings their own), the sticky-cookie key from the key
//! directory, listeners, and [`loadbalancer::start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use certs::signing::PresenceVerifier;
use certs::tls::{ServerNames, DEFAULT_BROADCAST_NODES};
use certs::{KeyDir, TlsDir};
use domain::broker::BrokerAddress;
use loadbalancer::cookie::{CookieKey, StickyCookies};
use loadbalancer::members::HealthChecks;
use loadbalancer::proxy::ProxySettings;
use loadbalancer::tls::CertificateFiles;
use loadbalancer::{LbConfig, LbListeners, LbMetrics, Running};
use tokio_util::sync::CancellationToken;

use super::{print_ready, shown, unix_now};
use crate::cli::{BalanceArgs, LbArgs, TlsArgs};

/// How often the certificate files are looked at for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The certificate files to serve: the operator's, or the generated ones (made when
/// missing, for `broadcast_names` node names at least). Renewal and new names are
/// `sealcast certs`; the load balancer picks the new files up by itself.
pub(super) async fn certificate_files(
    tls: &TlsArgs,
    broadcast_names: u16,
) -> anyhow::Result<CertificateFiles> {
    if let (Some(chain), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
        return Ok(CertificateFiles {
            chain: chain.clone(),
            key: key.clone(),
        });
    }
    let dir = TlsDir::new(&tls.certs_dir);
    let files = CertificateFiles {
        chain: dir.server_chain_path(),
        key: dir.server_key_path(),
    };
    if !files.chain.exists() || !files.key.exists() {
        let names = ServerNames::new(broadcast_names.max(DEFAULT_BROADCAST_NODES));
        let made = make_certificates(&dir, names).await?;
        for path in &made.written {
            tracing::info!(path = %shown(path).display(), "wrote TLS material");
        }
        if made.ca_created {
            tracing::info!("{}", dir.trust_hint());
        }
    }
    Ok(files)
}

/// Makes or renews the CA and server certificate in `dir` (on the blocking pool: key
/// generation and file writes).
pub(crate) async fn make_certificates(
    dir: &TlsDir,
    names: ServerNames,
) -> anyhow::Result<certs::tls::InitReport> {
    let making = dir.clone();
    tokio::task::spawn_blocking(move || making.init(&names, unix_now()))
        .await?
        .with_context(|| format!("making TLS certificates in {}", dir.path().display()))
}

/// The sticky-cookie key from the key directory.
pub(super) fn cookies(keys: &KeyDir) -> anyhow::Result<StickyCookies> {
    let key = keys.cookie_key().with_context(|| {
        format!(
            "reading the sticky-cookie key (run `sealcast keys init`); key directory {}",
            keys.path().display()
        )
    })?;
    Ok(StickyCookies::new(
        CookieKey::new(&key).context("the sticky-cookie key")?,
    ))
}

/// What checks broadcast presences: the pinned root public key from the key directory.
pub(super) fn presence_verifier(keys: &KeyDir) -> anyhow::Result<PresenceVerifier> {
    let root = keys.root_public().with_context(|| {
        format!(
            "reading the cluster root public key {} (run `sealcast keys init`), which broadcast presences are checked against",
            keys.root_public_path().display()
        )
    })?;
    Ok(PresenceVerifier::new(root))
}

/// Everything the load balancer needs to start.
pub(super) struct Start {
    pub(super) broker: BrokerAddress,
    pub(super) client_id: String,
    pub(super) presences: PresenceVerifier,
    pub(super) certificate: CertificateFiles,
    pub(super) cookies: StickyCookies,
    pub(super) balance: BalanceArgs,
    pub(super) access_log: bool,
    pub(super) https: SocketAddr,
    pub(super) http: SocketAddr,
    pub(super) metrics: LbMetrics,
}

/// The load balancer's addresses.
pub(super) struct Bound {
    pub(super) https: SocketAddr,
    pub(super) http: SocketAddr,
}

impl Bound {
    /// The `player` and `redirect` lines printed once it is ready.
    pub(super) fn lines(&self) -> String {
        let http = if self.http.ip().is_unspecified() || self.http.ip().is_loopback() {
            format!("http://localhost:{}/", self.http.port())
        } else {
            format!("http://{}/", self.http)
        };
        let player = player_url(self.https);
        format!("player {player}\ndashboard {player}dashboard\nredirect {http}\n")
    }
}

/// Binds the listeners and starts the load balancer; returns it with its addresses.
pub(super) fn start(start: Start) -> anyhow::Result<(Running, Bound)> {
    let bind = |addr: SocketAddr, what: &str| {
        std::net::TcpListener::bind(addr)
            .with_context(|| format!("binding the load balancer's {what} listener on {addr}"))
    };
    let https = bind(start.https, "HTTPS")?;
    let https_addr = https.local_addr()?;
    let http = bind(start.http, "HTTP")?;
    let http_addr = http.local_addr()?;
    let config = LbConfig {
        broker: start.broker,
        client_id: start.client_id,
        presences: start.presences,
        certificate: start.certificate,
        reload_interval: RELOAD_INTERVAL,
        cookies: start.cookies,
        mode: start.balance.lb_mode.into(),
        proxy: ProxySettings {
            direct: start.balance.direct,
            access_log: start.access_log,
        },
        health: HealthChecks::default(),
        acme_dir: start.balance.acme_dir,
        fallback_host: "localhost".to_owned(),
    };
    let running = loadbalancer::start(
        config,
        LbListeners {
            https,
            http: Some(http),
        },
        start.metrics,
    )
    .context("starting the load balancer")?;
    Ok((
        running,
        Bound {
            https: https_addr,
            http: http_addr,
        },
    ))
}

/// The player URL for an HTTPS listen address: `localhost` for loopback and unspecified
/// addresses (the certificate names it), the port unless it is 443.
pub(super) fn player_url(https: SocketAddr) -> String {
    let local = https.ip().is_unspecified() || https.ip().is_loopback();
    match (local, https.port()) {
        (true, 443) => "https://localhost/".to_owned(),
        (true, port) => format!("https://localhost:{port}/"),
        (false, 443) => format!("https://{}/", https.ip()),
        (false, _) => format!("https://{https}/"),
    }
}

/// `sealcast lb`: the load balancer on its own.
pub(crate) async fn lb(args: LbArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let keys = super::key_dir(args.keys_dir.as_deref(), &args.catalog);
    let client_id = match &args.node_id {
        Some(id) => domain::NodeId::new(id.clone()).context("SEALCAST_NODE_ID")?,
        None => super::cluster::node_id_from_host("lb")?,
    };
    let certificate = certificate_files(&args.tls, DEFAULT_BROADCAST_NODES).await?;
    let metrics = LbMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let metrics_listener = super::bind(args.metrics_listen, "metrics").await?;
    let metrics_addr = metrics_listener.local_addr()?;
    let metrics_task = tokio::spawn(ingest::metrics::serve(
        metrics_listener,
        Arc::new(registry),
        shutdown.child_token(),
    ));
    let (running, bound) = start(Start {
        broker: args.broker.mqtt_url.clone(),
        client_id: format!("lb-{client_id}"),
        presences: presence_verifier(&keys)?,
        certificate,
        cookies: cookies(&keys)?,
        balance: args.balance.clone(),
        access_log: !args.no_access_log,
        https: args.https_listen,
        http: args.http_listen,
        metrics,
    })?;
    tracing::info!(https = %bound.https, http = %bound.http, "load balancer listening");
    print_ready(&format!(
        "{}metrics http://{}/metrics\n",
        bound.lines(),
        super::url_host(metrics_addr)
    ));
    shutdown.cancelled().await;
    running.stop().await;
    metrics_task.await??;
    Ok(())
}

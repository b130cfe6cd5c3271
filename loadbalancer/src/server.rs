//! Starting and stopping the load balancer: the certificate watcher, the membership and
//! health tasks, and the Pingora services (HTTPS proxy, plain-HTTP redirect, and where
//! asked a plain-HTTP proxy for a cache in front) on listeners the caller has bound, all
//! on the caller's Tokio runtime.
//!
//! The listeners are handed to Pingora as already-bound sockets, so a port of 0 works
//! (tests) and the caller knows the addresses before anything is served.

use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use domain::broker::BrokerAddress;
use pingora::apps::http_app::HttpServer;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{Fds, ListenFds};
use pingora::services::Service as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::access::Gate;
use crate::caches::TrustedCaches;
use crate::cookie::StickyCookies;
use crate::limits::{Budget, ClientLimits, ConnectionBudget};
use crate::members::{self, HealthChecks, Pool};
use crate::metrics::LbMetrics;
use crate::proxy::{Proxy, ProxySettings};
use crate::quic_door::{QuicDoor, QuicDoorConfig};
use crate::redirect::Redirect;
use crate::selection::{Backends, Mode};
use crate::tls::{CertificateFiles, ReloadingCertificate};
use crate::LoadBalancerError;

/// Idle connections to the nodes the load balancer keeps for reuse (Pingora's default is
/// 128). A held LL-HLS request (a blocking playlist reload, a preload-hinted part) keeps an
/// HTTP/1.1 connection to its node until the part exists, and every viewer holds two, so
/// at each new part a few hundred viewers hand back more connections than 128 and the
/// rest were closed, to be opened again a part later (bench/llhls-lb.sh).
const UPSTREAM_KEEPALIVE_POOL: usize = 16_384;

/// How long stopping waits for open requests.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Everything the load balancer needs besides its listeners.
#[derive(Debug, Clone)]
pub struct LbConfig {
    /// The MQTT broker where broadcast nodes announce themselves.
    pub broker: BrokerAddress,
    /// MQTT client id (unique per load balancer).
    pub client_id: String,
    /// Checks every broadcast presence against the cluster root before it counts.
    pub presences: certs::signing::PresenceVerifier,
    /// The server certificate chain and key (PEM), reloaded on change.
    pub certificate: CertificateFiles,
    /// How often the certificate files are looked at.
    pub reload_interval: Duration,
    /// The sticky cookie's key and lifetime.
    pub cookies: StickyCookies,
    /// Cookie stickiness or client-address hashing.
    pub mode: Mode,
    /// Direct mode and the access log.
    pub proxy: ProxySettings,
    /// Health-check interval and timeout.
    pub health: HealthChecks,
    /// Where ACME HTTP-01 challenge files are served from on the plain-HTTP port.
    pub acme_dir: Option<PathBuf>,
    /// The host redirected to when a plain-HTTP request names none.
    pub fallback_host: String,
    /// Per-client budgets of requests and new connections on the HTTPS listener, and of
    /// requests on the origin listener (by the client a trusted cache forwarded for);
    /// `None`: unlimited.
    pub limits: Option<ClientLimits>,
    /// The caches in front whose `X-Forwarded-For` names the client on the origin listener
    /// ([`crate::caches`]); empty: nobody's, every peer there is a client of its own.
    pub trusted_caches: TrustedCaches,
    /// The playback key, to check tokens where requests arrive; `None`: tokens are left to
    /// the nodes.
    pub tokens: Option<Arc<certs::tokens::TokenVerifier>>,
    /// Where the QUIC front door sends viewers ([`crate::quic_door`]); used when
    /// [`LbListeners::quic`] is given.
    pub quic: Option<QuicDoorConfig>,
}

/// The sockets the load balancer serves on, already bound.
#[derive(Debug)]
pub struct LbListeners {
    /// HTTPS (TLS 1.2/1.3, HTTP/2 and HTTP/1.1).
    pub https: std::net::TcpListener,
    /// Plain HTTP, redirected to HTTPS.
    pub http: Option<std::net::TcpListener>,
    /// Plain HTTP proxied exactly as HTTPS is, for a cache tier in front on a private
    /// network (deploy/varnish/): Varnish cannot fetch over TLS, and the plain-HTTP port
    /// above only redirects.
    pub origin: Option<std::net::TcpListener>,
    /// The QUIC front door's UDP socket, forwarding to the MoQ relays of
    /// [`LbConfig::quic`].
    pub quic: Option<std::net::UdpSocket>,
}

/// A started load balancer.
#[derive(Debug)]
pub struct Running {
    pool: Arc<Pool>,
    stop: CancellationToken,
    pingora_stop: watch::Sender<bool>,
    /// Fired before Pingora is told to stop: a listener service ending after it is no death.
    services_stop: CancellationToken,
    /// Each listener service (`https`, `http`, `origin`) holds a guard while it serves.
    liveness: plumbing::Liveness,
    services: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    quic: Option<QuicDoor>,
}

/// Starts the load balancer on the current Tokio runtime.
pub fn start(
    config: LbConfig,
    listeners: LbListeners,
    metrics: LbMetrics,
) -> Result<Running, LoadBalancerError> {
    let certificate = ReloadingCertificate::load(config.certificate.clone())?;
    if listeners.quic.is_some() && config.quic.is_none() {
        return Err(LoadBalancerError::QuicDoorWithoutRelays);
    }
    let pool = Pool::new(
        Backends::new(config.cookies.clone(), config.mode),
        metrics.clone(),
    );
    let stop = CancellationToken::new();

    let https_port = listeners
        .https
        .local_addr()
        .map_err(LoadBalancerError::io("https listener"))?
        .port();
    let fds: ListenFds = Arc::new(parking_lot::Mutex::new(Fds::new()));
    let conf = Arc::new(ServerConf {
        upstream_keepalive_pool_size: UPSTREAM_KEEPALIVE_POOL,
        ..ServerConf::default()
    });

    let public_gate = Gate {
        requests: config
            .limits
            .map(|l| Budget::new(l.requests, l.max_clients)),
        tokens: config.tokens.clone(),
    };
    let mut https = pingora::proxy::http_proxy_service_with_name(
        &conf,
        Proxy::new(Arc::clone(&pool), metrics.clone(), config.proxy.clone()).with_gate(public_gate),
        "sealcast-lb",
    );
    if let Some(limits) = config.limits {
        https.set_connection_filter(ConnectionBudget::new(
            Budget::new(limits.connections, limits.max_clients),
            metrics.clone(),
        ));
    }
    let mut tls =
        TlsSettings::intermediate("", "").map_err(LoadBalancerError::pingora("TLS settings"))?;
    tls.set_cert_resolver(Arc::clone(&certificate) as _);
    tls.enable_h2();
    let addr = adopt(&fds, listeners.https, "https listener")?;
    // No L4 read buffer under TLS: Pingora's default is 64 KiB per connection, kept for as
    // long as the viewer stays connected (an idle viewer cost the load balancer ~65 KB of
    // RSS, bench/memory.sh), while rustls reads whole records into its own buffer anyway.
    https.add_listener(
        ListenerConfig::tcp(addr)
            .tls(tls)
            .l4_buffer(L4BufferSettings::default().read(0)),
    );

    // The origin listener: the same proxy, without TLS, and with no connection budget (a
    // cache keeps few connections alive for many viewers). Requests are budgeted by client:
    // the viewer a trusted cache forwarded for, or the peer.
    let origin = match listeners.origin {
        Some(listener) => {
            if config.trusted_caches.is_empty() {
                tracing::warn!(
                    "the origin listener trusts no cache (SEALCAST_LB_TRUSTED_CACHE): every \
                     request through a cache counts as the cache's own"
                );
            }
            let origin_gate = Gate {
                requests: config
                    .limits
                    .map(|l| Budget::new(l.requests, l.max_clients)),
                tokens: config.tokens.clone(),
            };
            let mut origin = pingora::proxy::http_proxy_service_with_name(
                &conf,
                Proxy::new(Arc::clone(&pool), metrics.clone(), config.proxy.clone())
                    .with_gate(origin_gate)
                    .with_trusted_caches(config.trusted_caches.clone()),
                "sealcast-lb-origin",
            );
            origin.add_tcp(&adopt(&fds, listener, "origin listener")?);
            Some(origin)
        }
        None => None,
    };

    let mut services = Vec::new();
    let (pingora_stop, pingora_watch) = watch::channel(false);
    let services_stop = CancellationToken::new();
    let liveness = plumbing::Liveness::new();
    {
        let (fds, watch) = (Arc::clone(&fds), pingora_watch.clone());
        let alive = liveness.guard("https", &services_stop);
        services.push(tokio::spawn(async move {
            alive.failpoint();
            https.start_service(Some(fds), watch, 1).await;
            drop(alive);
        }));
    }
    if let Some(mut origin) = origin {
        let (fds, watch) = (Arc::clone(&fds), pingora_watch.clone());
        let alive = liveness.guard("origin", &services_stop);
        services.push(tokio::spawn(async move {
            origin.start_service(Some(fds), watch, 1).await;
            drop(alive);
        }));
    }
    if let Some(http) = listeners.http {
        let mut plain = pingora::services::listening::Service::new(
            "sealcast-lb-http".to_owned(),
            HttpServer::new_app(Redirect {
                https_port,
                fallback_host: config.fallback_host.clone(),
                acme_dir: config.acme_dir.clone(),
                metrics: metrics.clone(),
            }),
        );
        let addr = adopt(&fds, http, "http listener")?;
        plain.add_tcp(&addr);
        let (fds, watch) = (Arc::clone(&fds), pingora_watch.clone());
        let alive = liveness.guard("http", &services_stop);
        services.push(tokio::spawn(async move {
            plain.start_service(Some(fds), watch, 1).await;
            drop(alive);
        }));
    }

    let quic = match (listeners.quic, config.quic) {
        (Some(socket), Some(door)) => Some(QuicDoor::start(
            socket,
            door,
            metrics.clone(),
            liveness.guard("quic", &services_stop),
        )?),
        _ => None,
    };
    let tasks = vec![
        tokio::spawn(Arc::clone(&certificate).watch(config.reload_interval, stop.child_token())),
        tokio::spawn(members::follow_presence(
            Arc::clone(&pool),
            config.presences.clone(),
            config.broker.clone(),
            config.client_id.clone(),
            stop.child_token(),
        )),
        tokio::spawn(members::check_health(
            Arc::clone(&pool),
            config.health,
            stop.child_token(),
        )),
    ];
    Ok(Running {
        pool,
        stop,
        pingora_stop,
        services_stop,
        liveness,
        services,
        tasks,
        quic,
    })
}

impl Running {
    /// The backend set, for readiness checks and inspection.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Which listener services run: what `/healthz` answers, and what the role watches to
    /// exit when one stopped unasked.
    pub fn liveness(&self) -> &plumbing::Liveness {
        &self.liveness
    }

    /// The QUIC front door, where it runs.
    pub fn quic_door(&self) -> Option<&QuicDoor> {
        self.quic.as_ref()
    }

    /// Stops accepting, lets open requests finish (bounded), stops the tasks.
    pub async fn stop(self) {
        self.services_stop.cancel();
        if let Some(quic) = self.quic {
            quic.stop().await;
        }
        let _ = self.pingora_stop.send(true);
        for service in self.services {
            if tokio::time::timeout(STOP_WAIT, service).await.is_err() {
                tracing::warn!("the load balancer did not stop in time");
            }
        }
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Hands a bound listener to Pingora under its address; returns the address.
fn adopt(
    fds: &ListenFds,
    listener: std::net::TcpListener,
    what: &'static str,
) -> Result<String, LoadBalancerError> {
    let addr = listener
        .local_addr()
        .map_err(LoadBalancerError::io(what))?
        .to_string();
    listener
        .set_nonblocking(true)
        .map_err(LoadBalancerError::io(what))?;
    fds.lock().add(addr.clone(), listener.into_raw_fd());
    Ok(addr)
}

//! The small HTTP server a process without a node's router exports its metrics on: a
//! standalone ingest and the load balancer. `GET /metrics` is the Prometheus registry as
//! OpenMetrics text, `GET /healthz` liveness ([`Liveness::healthz`]: `503` once a listener
//! task of the role stopped unasked).
//!
//! It lives here, beside the accept loop it runs on, because two roles that must not
//! import each other need it; a broadcast node serves `/metrics` from its own router.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::accept::{serve_http, AcceptLoop, Handler};
use crate::liveness::Liveness;

/// How long a request in flight at shutdown may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// The limits of a metrics listener: a scrape endpoint for Prometheus on the operator's
/// network, not a public service, but it must not be a way to exhaust the process either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsLimits {
    /// Connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// How long a request header may take to arrive.
    pub header_read_timeout: Duration,
    /// How long one connection may stay open, busy or not (a scraper reconnects).
    pub connection_lifetime: Duration,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        MetricsLimits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

/// Serves `registry` as Prometheus text on `GET /metrics` (and `liveness` on
/// `GET /healthz`) on `listener` until `shutdown`, within the default [`MetricsLimits`].
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    liveness: Liveness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(
        listener,
        registry,
        liveness,
        MetricsLimits::default(),
        shutdown,
    )
    .await
}

/// [`serve`] within `limits`: HTTP/1.1, at most `max_connections` at once (more are
/// closed on arrival), each request header within `header_read_timeout`, each connection
/// closed after `connection_lifetime`. On shutdown, requests in flight get 5 s to finish;
/// it returns once every connection has ended.
pub async fn serve_with(
    listener: TcpListener,
    registry: Arc<Registry>,
    liveness: Liveness,
    limits: MetricsLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let scrapes = Scrapes {
        app: router(registry, liveness),
        http,
        lifetime: limits.connection_lifetime,
        shutdown: shutdown.clone(),
    };
    AcceptLoop::new("metrics", limits.max_connections)
        .run(listener, scrapes, &shutdown)
        .await;
    Ok(())
}

fn router(registry: Arc<Registry>, liveness: Liveness) -> Router {
    let metrics = move || {
        let registry = Arc::clone(&registry);
        async move {
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, &registry) {
                Ok(()) => (
                    StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                ),
                Err(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "encoding metrics failed\n".to_owned(),
                ),
            }
        }
    };
    Router::new().route("/metrics", get(metrics)).route(
        "/healthz",
        get(move || std::future::ready(liveness.healthz())),
    )
}

/// What every connection of one metrics listener shares.
struct Scrapes {
    app: Router,
    http: http1::Builder,
    /// How long a connection may stay open at all.
    lifetime: Duration,
    /// The listener's shutdown, which each connection watches to finish its request.
    shutdown: CancellationToken,
}

impl Handler<TcpStream> for Scrapes {
    fn serve(
        &mut self,
        io: TcpStream,
        _peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let connection = self
            .http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(self.app.clone()));
        serve_http(connection, self.shutdown.clone(), DRAIN, self.lifetime)
    }
}

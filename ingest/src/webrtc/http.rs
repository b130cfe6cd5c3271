//! The WHIP HTTP listener: [`super::whip::router`] on hyper's HTTP/1.1, accepted by
//! `plumbing`'s [`AcceptLoop`] (a connection cap, each request header within a timeout,
//! each connection closed after a lifetime), like the metrics listener. The port is the
//! cluster's (the load balancer's upstream), not the public's: the load balancer
//! terminates TLS and forwards `/whip/…` here.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use plumbing::accept::{serve_http, AcceptLoop, Handler};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::whip::Peer;

/// Connections open at once: POSTs and DELETEs are short, and only the load balancers
/// connect.
const MAX_CONNECTIONS: usize = 256;
/// How long a request header may take.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may stay open, busy or not (a POST waits at most for a catalog
/// lookup and a takeover's flush).
const LIFETIME: Duration = Duration::from_secs(60);
/// How long a request in flight at shutdown may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown`; returns once every connection ended.
pub(crate) async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let connections = Connections {
        app,
        http,
        shutdown: shutdown.clone(),
    };
    AcceptLoop::new("WHIP", MAX_CONNECTIONS)
        .run(listener, connections, &shutdown)
        .await;
}

/// What every connection shares.
struct Connections {
    app: Router,
    http: http1::Builder,
    /// The listener's shutdown, which each connection watches to finish its request.
    shutdown: CancellationToken,
}

impl Handler<TcpStream> for Connections {
    fn serve(
        &mut self,
        io: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let app = self.app.clone().layer(Extension(Peer(peer)));
        let connection = self
            .http
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
        serve_http(connection, self.shutdown.clone(), DRAIN, LIFETIME)
    }

    fn refused(&mut self, peer: SocketAddr) {
        tracing::debug!(%peer, "WHIP connection refused: at the connection cap");
    }
}

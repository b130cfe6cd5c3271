//! The HTTP server loop of a node, with the limits a server on the open internet needs:
//! a connection cap, a deadline for each request's header, and an idle timeout. HTTP/1.1
//! and HTTP/2 (prior knowledge) on one port, connections drained on shutdown.
//!
//! Without these, 4,000 connections that send part of a request header and then a byte now
//! and then stayed open forever (issue 13). Now:
//!
//! - a connection beyond [`HttpLimits::max_connections`] is closed on arrival;
//! - an HTTP/1.1 request header must arrive whole within
//!   [`HttpLimits::header_read_timeout`] (hyper's timer, started when the connection waits
//!   for a request);
//! - a connection on which nothing is read or written for [`HttpLimits::idle_timeout`] is
//!   closed (HTTP/1.1 keep-alive and HTTP/2 alike);
//! - a failed accept (out of file descriptors) pauses the loop, 10 ms doubling to 1 s.
//!
//! Each is counted in `sealcast_http_connections_closed_total{reason}`. The cap, the
//! backoff and the tracking of connection tasks are `plumbing`'s one accept loop
//! ([`AcceptLoop`], shared with the RTMP server and the metrics listeners); this module is
//! what a node does with a connection once it is admitted.
//!
//! **Idle HTTP/1.1 connections are parked** (issue 18). hyper keeps two 8 KiB buffers
//! for as long as a connection lives, so 10,000 idle keep-alive viewers cost a node
//! 20 KB each. Between requests a connection therefore holds no hyper state: when hyper
//! asks for the next request, none has started ([`Rest`](conn::Rest): the bytes read so far end with
//! a complete request head and every response was sent) and the socket has had nothing to
//! read for [`PARK_AFTER`](conn::PARK_AFTER), the connection reads as ended to hyper, which finishes cleanly and hands the
//! socket back ([`http1::Connection::into_parts`]). The socket waits for its next byte
//! with only the task and its timer; then a fresh hyper connection serves it. Until the
//! first byte, a connection is parked from the start; HTTP/2 prior knowledge is told
//! apart by peeking at its preface.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use plumbing::accept::{Accept, AcceptLoop, Handler};
use tokio_util::sync::CancellationToken;

mod conn;

use crate::audience::{Counted, CountingListener, Peer};
use crate::router::NodeRoutes;
use crate::{HttpLimits, Node};
use conn::Conn;

/// What every connection of one server shares.
struct Server {
    routes: NodeRoutes,
    node: Arc<Node>,
    limits: HttpLimits,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    shutdown: CancellationToken,
}

/// Serves `routes` on `listener` with `limits` until `shutdown`; then stops accepting and
/// waits for the connections in flight to finish their requests.
pub(crate) async fn serve(
    listener: CountingListener,
    routes: NodeRoutes,
    limits: HttpLimits,
    node: Arc<Node>,
    shutdown: CancellationToken,
) {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    let server = Arc::new(Server {
        routes,
        node,
        limits,
        h1,
        h2,
        shutdown: shutdown.clone(),
    });
    AcceptLoop::new("HTTP", limits.max_connections)
        .run(listener, server, &shutdown)
        .await;
}

impl Accept for CountingListener {
    type Io = Counted;

    fn accept(&mut self) -> impl Future<Output = io::Result<(Counted, SocketAddr)>> + Send {
        self.accept_io()
    }
}

impl Handler<Counted> for Arc<Server> {
    fn serve(
        &mut self,
        io: Counted,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        let io = Conn::new(io, self.limits.idle_timeout);
        connection(Arc::clone(self), io, Peer(peer))
    }

    fn refused(&mut self, _peer: SocketAddr) {
        self.node
            .metrics
            .http_connection_closed("over_connection_cap");
    }
}

/// How long a connection may go on finishing its requests once the server shuts down; then
/// it is dropped (its socket closed), so that no client (one that never reads its answer, a
/// request held for a part) holds a node's shutdown up. A held request waits at most three
/// target durations anyway (6 s at 2 s segments).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves one connection until it closes, fails, idles out or the server shuts down.
///
/// This future is the connection's task for as long as it lives, parked or not, so it
/// holds only what a parked connection needs: hyper's state lives in the boxed futures of
/// [`serve_h1`] and [`serve_h2`], freed when they return. For the same reason it is an
/// `async` block and not an `async fn`: an `async fn` keeps its arguments twice (as
/// given, and as the locals its body works on), 144 B more in every parked task; and it
/// takes the `Conn` made, not the socket, which it would keep beside the `Conn`.
/// `parked_connection_tasks_stay_small` bounds its size.
#[allow(clippy::manual_async_fn)] // an `async fn` would keep its arguments twice (above)
fn connection(server: Arc<Server>, mut io: Conn, peer: Peer) -> impl Future<Output = ()> {
    async move {
        let h2 = match io.wait_for_bytes(&server.shutdown).await {
            Ok(h2) => h2,
            Err(reason) => return closing(&server, reason),
        };
        if h2 {
            Box::pin(serve_h2(&server, io, peer)).await;
            return;
        }
        io.parking = true;
        loop {
            let Some(parked) = Box::pin(serve_h1(&server, io, peer)).await else {
                return;
            };
            io = parked;
            server.node.metrics.http_connections_parked(1);
            let woke = io.wait_for_bytes(&server.shutdown).await;
            server.node.metrics.http_connections_parked(-1);
            if let Err(reason) = woke {
                return closing(&server, reason);
            }
        }
    }
}

/// Serves an HTTP/2 connection to its end.
async fn serve_h2(server: &Server, io: Conn, peer: Peer) {
    let service = NodeService::new(server, peer, None);
    let conn = server.h2.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = server.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await {
                Ok(result) => result,
                Err(_) => return forced(server, peer),
            }
        }
    };
    if let Err(e) = result {
        closed(server, peer, &e);
    }
}

/// Serves HTTP/1.1 requests on `io` until it parks (then hands the socket back) or ends.
async fn serve_h1(server: &Server, io: Conn, peer: Peer) -> Option<Conn> {
    let service = NodeService::new(server, peer, Some(Arc::clone(&io.in_flight)));
    let mut conn = server.h1.serve_connection(TokioIo::new(io), service);
    let result = tokio::select! {
        result = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => result,
        () = server.shutdown.cancelled() => {
            Pin::new(&mut conn).graceful_shutdown();
            let drained = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx));
            match tokio::time::timeout(SHUTDOWN_GRACE, drained).await {
                Ok(result) => result,
                Err(_) => {
                    forced(server, peer);
                    return None;
                }
            }
        }
    };
    if let Err(e) = result {
        closed(server, peer, &e);
        return None;
    }
    // Everything hyper held is freed with this future, its read buffer included (the
    // leftover bytes are a view of it): a parked connection keeps only the socket.
    let http1::Parts {
        io: parked,
        read_buf,
        ..
    } = conn.into_parts();
    let mut io = parked.into_inner();
    // Ended by the client (or shutdown), or bytes hyper read and did not use: done.
    (std::mem::take(&mut io.parked) && read_buf.is_empty()).then_some(io)
}

/// A connection that closes while it waits for bytes: counted with its reason, if it has
/// one (a shutdown has none).
fn closing(server: &Server, reason: Option<&'static str>) {
    if let Some(reason) = reason {
        server.node.metrics.http_connection_closed(reason);
    }
}

/// A connection still busy when the shutdown grace ran out: dropped, counted, and said
/// so (the peer tells which client held it).
fn forced(server: &Server, peer: Peer) {
    server.node.metrics.http_connection_closed("shutdown_grace");
    tracing::warn!(peer = %peer.0, grace = ?SHUTDOWN_GRACE, "HTTP connection still busy after the shutdown grace; dropped");
}

/// Counts a connection that ended in an error and logs it (debug: clients do this).
fn closed(server: &Server, peer: Peer, e: &hyper::Error) {
    let reason = closed_reason(e);
    server.node.metrics.http_connection_closed(reason);
    tracing::debug!(peer = %peer.0, error = %e, reason, "HTTP connection closed");
}

/// The node's routes as a hyper service for one connection: each request carries the
/// peer's address, and (HTTP/1.1) counts as in flight until its response body is dropped.
struct NodeService {
    routes: NodeRoutes,
    peer: Peer,
    in_flight: Option<Arc<AtomicUsize>>,
}

impl NodeService {
    fn new(server: &Server, peer: Peer, in_flight: Option<Arc<AtomicUsize>>) -> Self {
        NodeService {
            routes: server.routes.clone(),
            peer,
            in_flight,
        }
    }
}

impl hyper::service::Service<http::Request<Incoming>> for NodeService {
    type Response = http::Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // The plain address too, for routes that are not this crate's (the admin API
        // backs off wrong keys per client address).
        request.extensions_mut().insert(ConnectInfo(self.peer.0));
        let guard = self
            .in_flight
            .as_ref()
            .map(|n| InFlight::start(Arc::clone(n)));
        let routes = self.routes.clone();
        Box::pin(async move {
            let response = routes.answer(request).await;
            Ok(match guard {
                Some(guard) => response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _guard: guard,
                    })
                }),
                None => response,
            })
        })
    }
}

/// One request in flight on a connection, until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until hyper has sent it (or gave up).
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Why a connection ended in an error, as a metric label.
fn closed_reason(e: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut source = Some(e);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return "idle_timeout";
            }
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return "header_timeout";
            }
        }
        source = error.source();
    }
    "error"
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::conn::Rest;
    use super::connection;

    /// The size of the future that `f` returns.
    fn future_size<A, B, C, F>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every open connection, parked ones included, is a task around this future: tokio's
    /// task cell holds the future (and the accept loop's tracker token, 8 B) with about
    /// 100 B of its own, in steps of 128 B. At 272 B the cell is 384 B (a heap profile of
    /// 3,000 parked connections, issue 33); it was 1,280 B when the future was 536 B and
    /// wrapped in another that held it twice. A field added to `Conn`, or an `.await` on
    /// a larger future anywhere in `connection`, grows every idle viewer: keep it boxed.
    #[test]
    fn parked_connection_tasks_stay_small() {
        let size = future_size(connection);
        assert!(
            size <= 272,
            "the connection future is {size} B: over 272 B, every idle connection's task \
             takes 128 B more"
        );
    }

    fn head(path: &str, extra: usize) -> Vec<u8> {
        format!(
            "GET /{path} HTTP/1.1\r\nHost: node\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(extra)
        )
        .into_bytes()
    }

    #[test]
    fn a_whole_head_is_at_rest_and_a_partial_one_is_not() {
        let mut rest = Rest::default();
        assert!(!rest.at_rest(), "nothing read yet");
        rest.read(b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(!rest.at_rest());
        rest.read(b"\r");
        assert!(!rest.at_rest());
        rest.read(b"\n");
        assert!(rest.at_rest(), "the empty line arrived byte by byte");
        rest.read(b"GET");
        assert!(!rest.at_rest(), "the next head started");
    }

    proptest! {
        /// However heads without bodies are cut into reads, the bytes read so far are at
        /// rest exactly when they end at the end of a head.
        #[test]
        fn at_rest_exactly_at_head_ends(
            heads in prop::collection::vec(("[a-z0-9/._-]{0,20}", 0usize..40), 1..6),
            cuts in prop::collection::vec(1usize..64, 1..40),
        ) {
            let mut stream = Vec::new();
            let mut ends = std::collections::HashSet::new();
            for (path, extra) in &heads {
                stream.extend(head(path, *extra));
                ends.insert(stream.len());
            }
            let mut rest = Rest::default();
            let mut at = 0;
            let mut cuts = cuts.into_iter().cycle();
            while at < stream.len() {
                let n = cuts.next().unwrap_or(1).min(stream.len() - at);
                rest.read(&stream[at..at + n]);
                at += n;
                prop_assert_eq!(rest.at_rest(), ends.contains(&at), "after {} bytes", at);
            }
        }
    }
}

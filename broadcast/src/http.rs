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
//! Each is counted in `sealcast_http_connections_closed_total{reason}`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::audience::{Counted, CountingListener, Peer};
use crate::Node;

/// The limits of a node's HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// How long a request header may take to arrive.
    pub header_read_timeout: Duration,
    /// How long a connection may go without reading or writing a byte.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` with `limits` until `shutdown`; then stops accepting and
/// waits for the connections in flight to finish their requests.
pub(crate) async fn serve(
    mut listener: CountingListener,
    app: Router,
    limits: HttpLimits,
    node: Arc<Node>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let (io, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept_io() => match accepted {
                Ok(x) => {
                    backoff = ACCEPT_BACKOFF;
                    x
                }
                Err(e) => {
                    tracing::warn!(error = %e, pause = ?backoff, "HTTP accept failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            node.metrics.http_connection_closed("over_connection_cap");
            drop(io);
            continue;
        };
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(Peer(peer)));
                request
            },
        );
        let io = IdleTimeout::new(io, limits.idle_timeout);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        let watched = graceful.watch(connection);
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = watched.await {
                let reason = closed_reason(&*e);
                node.metrics.http_connection_closed(reason);
                tracing::debug!(%peer, error = %e, reason, "HTTP connection closed");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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

/// A connection that fails with `TimedOut` once nothing was read or written on it for
/// `limit`.
struct IdleTimeout {
    inner: Counted,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: Counted, limit: Duration) -> Self {
        IdleTimeout {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn active(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.limit);
    }

    /// `Pending` from the inner connection is an error once the deadline has passed.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection",
                ))),
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.active();
        }
        self.check(cx, poll)
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        self.check(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

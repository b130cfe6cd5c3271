//! A node's connection socket: the idle timer and the parking of idle HTTP/1.1
//! connections (the parent module's documentation says why), and the wait for a new
//! connection's first bytes that tells HTTP/2 apart.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::audience::Counted;

/// The client preface of HTTP/2 (RFC 9113 section 3.4): `PRI ` is no HTTP/1.1 method.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the bytes read from an HTTP/1.1 connection end at a message boundary: the last
/// four are the empty line that ends a request head. (A body that happens to end the same
/// way is also at rest once its response was sent; a partial head never is.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Rest {
    tail: [u8; 4],
    seen: u8,
}

impl Rest {
    /// Records bytes read.
    pub(super) fn read(&mut self, bytes: &[u8]) {
        for &b in &bytes[bytes.len().saturating_sub(4)..] {
            self.tail = [self.tail[1], self.tail[2], self.tail[3], b];
            self.seen = self.seen.saturating_add(1).min(4);
        }
    }

    /// Whether what was read so far ends with a complete request head.
    pub(super) fn at_rest(&self) -> bool {
        self.seen == 4 && &self.tail == b"\r\n\r\n"
    }
}

/// How long an HTTP/1.1 connection has to be idle before it parks: back-to-back requests
/// (a load test, a player catching up) keep their hyper connection.
pub(super) const PARK_AFTER: Duration = Duration::from_millis(500);

/// A node's connection: fails with `TimedOut` once nothing was read or written on it for
/// `limit`; when parking, reads as ended once hyper has waited [`PARK_AFTER`] for a
/// request that has not started (see the module documentation).
///
/// One timer serves both, armed lazily: reads and writes only note the time, and the timer
/// is moved when it fires early or a sooner deadline comes up (about twice a second on a
/// busy connection, instead of once per read or write).
pub(super) struct Conn {
    inner: Counted,
    limit: Duration,
    /// The last time a byte was read or written.
    last_io: Instant,
    /// Fires at its deadline (`Sleep::deadline`, not a copy here: a parked connection
    /// keeps this struct, so every field is paid per idle viewer).
    timer: Pin<Box<Sleep>>,
    pub(super) in_flight: Arc<AtomicUsize>,
    rest: Rest,
    /// HTTP/1.1: park when idle.
    pub(super) parking: bool,
    /// The last read was answered with a pretended end, to park.
    pub(super) parked: bool,
    /// Everything written was flushed: hyper flushes the socket only once its own write
    /// buffer is empty, so this means it holds no unsent bytes.
    flushed: bool,
}

/// What an idle connection does next.
enum Idle {
    /// Waits (the timer is armed for what comes next).
    Wait,
    /// Parks: hyper is told the connection ended.
    Park,
    /// Closes: nothing was read or written for the idle timeout.
    TimedOut,
}

impl Conn {
    pub(super) fn new(inner: Counted, limit: Duration) -> Self {
        let now = Instant::now();
        Conn {
            inner,
            limit,
            last_io: now,
            timer: Box::pin(tokio::time::sleep_until(now + limit)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            rest: Rest::default(),
            parking: false,
            parked: false,
            flushed: true,
        }
    }

    /// The inner connection would block: whether to wait, park (`reading` only) or time out.
    fn idle(&mut self, cx: &mut Context<'_>, reading: bool) -> Idle {
        let parkable = reading
            && self.parking
            && self.flushed
            && self.rest.at_rest()
            && self.in_flight.load(Ordering::Acquire) == 0;
        loop {
            let now = Instant::now();
            let timeout_at = self.last_io + self.limit;
            if now >= timeout_at {
                return Idle::TimedOut;
            }
            let park_at = self.last_io + PARK_AFTER;
            if parkable && now >= park_at {
                return Idle::Park;
            }
            let next = if parkable { park_at } else { timeout_at };
            let armed = self.timer.deadline();
            if armed > next || armed <= now {
                self.timer.as_mut().reset(next);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Idle::Wait,
                Poll::Ready(()) => {}
            }
        }
    }

    /// Waits until the connection has something to read (or has ended) and says whether
    /// what waits starts with HTTP/2's preface (without reading it): a new connection's
    /// first bytes, a parked one's next request. `Err` when it should close instead: with
    /// the metric's reason when it idled out, without one when the server shuts down (a
    /// failed or ended connection is left to hyper, which reads the same end).
    ///
    /// The peek itself is what waits, under the shutdown token and the idle timer, not the
    /// socket's readiness: a socket can be readable with nothing in the stream to peek (one
    /// urgent byte, TCP's out-of-band data, is enough). A new connection's peek once waited
    /// after readiness, outside both, and such a connection stayed open past its idle
    /// timeout and held the node's shutdown up for ever (`an_urgent_byte_first_*` in the
    /// serve tests); a parked one woke for nothing.
    ///
    /// Polls the peek rather than awaiting tokio's `peek()`: that future (280 B) would be
    /// part of every connection's task for as long as the connection lives, parked ones
    /// included; this one holds references.
    pub(super) async fn wait_for_bytes(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<bool, Option<&'static str>> {
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        std::future::poll_fn(|cx| {
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(None));
            }
            let mut head = [0u8; 4];
            match self.inner.poll_peek(cx, &mut ReadBuf::new(&mut head)) {
                Poll::Ready(Ok(n)) => {
                    Poll::Ready(Ok(n == head.len() && head[..] == H2_PREFACE[..4]))
                }
                // Ended or failed: hyper reads the same end and closes (counted there).
                Poll::Ready(Err(_)) => Poll::Ready(Ok(false)),
                Poll::Pending => match self.idle(cx, false) {
                    Idle::TimedOut => Poll::Ready(Err(Some("idle_timeout"))),
                    Idle::Wait | Idle::Park => Poll::Pending,
                },
            }
        })
        .await
    }

    /// `Pending` from the inner connection is an error once the idle timeout has passed.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => match self.idle(cx, false) {
                Idle::TimedOut => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection",
                ))),
                Idle::Wait | Idle::Park => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn wrote(&mut self, poll: &Poll<io::Result<usize>>) {
        if matches!(poll, Poll::Ready(Ok(n)) if *n > 0) {
            self.last_io = Instant::now();
            self.flushed = false;
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.last_io = Instant::now();
                let read = &buf.filled()[before..];
                self.rest.read(read);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.idle(cx, true) {
                Idle::Wait => Poll::Pending,
                // Nothing started and nothing to read: hyper ends this connection cleanly
                // and hands the socket back.
                Idle::Park => {
                    self.parked = true;
                    Poll::Ready(Ok(()))
                }
                Idle::TimedOut => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection",
                ))),
            },
            ready => ready,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&poll);
        self.check(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(poll, Poll::Ready(Ok(()))) {
            self.flushed = true;
        }
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
        self.wrote(&poll);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

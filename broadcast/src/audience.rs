//! Who is watching: distinct viewers per stream over the last [`VIEWER_WINDOW`], open
//! connections, and bytes sent. What the node's load report tells the dashboard.
//!
//! A viewer is a client address (the first `x-forwarded-for` hop when a load balancer is in
//! front, else the peer): players behind one NAT count as one, and a client that forges
//! the header only skews a dashboard number, which is all these counts feed.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use domain::StreamName;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub(crate) use domain::load::VIEWER_WINDOW;

/// Viewers, connections and bytes of one node.
#[derive(Debug, Default)]
pub(crate) struct Audience {
    /// Stream → viewer key → when last seen. Pruned on every count.
    viewers: Mutex<HashMap<StreamName, HashMap<String, Instant>>>,
    connections: Arc<AtomicU64>,
    bytes_out: AtomicU64,
}

impl Audience {
    /// `client` fetched a playlist of `stream` at `now`.
    pub(crate) fn seen(&self, stream: &StreamName, client: &str, now: Instant) {
        let mut viewers = self.viewers.lock();
        let clients = viewers.entry(stream.clone()).or_default();
        match clients.get_mut(client) {
            Some(t) => *t = now,
            None => {
                clients.insert(client.to_owned(), now);
            }
        }
    }

    /// Distinct viewers per stream in the window before `now`; streams nobody watches
    /// are left out.
    pub(crate) fn viewers(&self, now: Instant) -> BTreeMap<StreamName, u64> {
        let mut viewers = self.viewers.lock();
        viewers.retain(|_, clients| {
            clients.retain(|_, seen| now.saturating_duration_since(*seen) < VIEWER_WINDOW);
            !clients.is_empty()
        });
        viewers
            .iter()
            .map(|(s, c)| (s.clone(), c.len() as u64))
            .collect()
    }

    /// Adds `n` response bytes.
    pub(crate) fn sent(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Response bytes sent since the node started.
    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// Client connections open now.
    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// `listener`, counting the connections it accepts while they are open.
    pub(crate) fn counting(&self, listener: TcpListener) -> CountingListener {
        CountingListener {
            inner: listener,
            open: Arc::clone(&self.connections),
        }
    }
}

/// The viewer key of a request: the first `x-forwarded-for` hop, else the peer's IP.
pub(crate) fn client_key(forwarded_for: Option<&str>, peer: Option<SocketAddr>) -> Option<String> {
    let forwarded = forwarded_for
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64);
    match forwarded {
        Some(f) => Some(f.to_owned()),
        None => peer.map(|p| p.ip().to_string()),
    }
}

/// The peer address of a connection accepted by a [`CountingListener`], as the router sees
/// it (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CountingListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CountingListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A listener whose connections count themselves open until dropped.
#[derive(Debug)]
pub(crate) struct CountingListener {
    inner: TcpListener,
    open: Arc<AtomicU64>,
}

impl CountingListener {
    /// Accepts a connection, counted open until dropped; an accept error is returned (the
    /// caller decides how long to pause).
    pub(crate) async fn accept_io(&mut self) -> io::Result<(Counted, SocketAddr)> {
        let (io, addr) = self.inner.accept().await?;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok((
            Counted {
                inner: io,
                open: Arc::clone(&self.open),
            },
            addr,
        ))
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        self.open.fetch_add(1, Ordering::Relaxed);
        let io = Counted {
            inner: io,
            open: Arc::clone(&self.open),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that counts itself closed when dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    inner: TcpStream,
    open: Arc<AtomicU64>,
}

impl Counted {
    /// Ready once the socket has bytes to read (or has ended).
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }

    /// Reads the bytes waiting without taking them (`Pending` when there are none yet).
    pub(crate) fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_peek(cx, buf)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stream(s: &str) -> StreamName {
        StreamName::new(s).expect("valid")
    }

    #[test]
    fn counts_distinct_recent_viewers() {
        let a = Audience::default();
        let t0 = Instant::now();
        a.seen(&stream("x"), "10.0.0.1", t0);
        a.seen(&stream("x"), "10.0.0.1", t0 + Duration::from_secs(1));
        a.seen(&stream("x"), "10.0.0.2", t0);
        a.seen(&stream("y"), "10.0.0.1", t0);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(a.viewers(now).get(&stream("x")), Some(&2));
        assert_eq!(a.viewers(now).get(&stream("y")), Some(&1));
        let later = t0 + Duration::from_secs(1) + VIEWER_WINDOW;
        assert!(a.viewers(later).is_empty(), "everyone left");
    }

    #[test]
    fn the_first_forwarded_hop_is_the_viewer() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        assert_eq!(
            client_key(Some("203.0.113.7, 10.0.0.1"), Some(peer)).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(client_key(None, Some(peer)).as_deref(), Some("127.0.0.1"));
        assert_eq!(client_key(Some(" "), None), None);
        assert_eq!(
            client_key(Some(&"x".repeat(65)), Some(peer)).as_deref(),
            Some("127.0.0.1")
        );
    }

    #[tokio::test]
    async fn connections_count_while_open() {
        let a = Audience::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut counting = a.counting(listener);
        let client = TcpStream::connect(addr).await.expect("connect");
        let (io, _) = axum::serve::Listener::accept(&mut counting).await;
        assert_eq!(a.connections(), 1);
        drop(io);
        drop(client);
        assert_eq!(a.connections(), 0);
    }
}

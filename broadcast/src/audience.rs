//! Who is watching: distinct viewers per stream over the last [`VIEWER_WINDOW`], open
//! connections, and bytes sent. What the node's load report tells the dashboard.
//!
//! A viewer is a client as every per-client cap counts it ([`ClientGroup`]: an IPv4
//! address or an IPv6 /64), of a live playlist request that was answered (2xx or 304):
//! the same client the private streams' guard judges (the peer, or the `x-forwarded-for`
//! the load balancer set when the peer is a trusted proxy; `Access::client`). So a request
//! refused for its token, or for a stream that does not exist, counts no one, and one
//! subscriber cannot become 2^64 viewers by walking its /64, nor any number by forging
//! the header: the counts feed the autoscaler (an HPA scales the nodes on them), not only
//! a dashboard. Players behind one NAT count as one.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use domain::{ClientGroup, StreamName};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub(crate) use domain::load::VIEWER_WINDOW;

/// Viewers, connections and bytes of one node.
#[derive(Debug, Default)]
pub(crate) struct Audience {
    /// Stream → viewer → when last seen. Pruned on every count.
    viewers: Mutex<HashMap<StreamName, HashMap<ClientGroup, Instant>>>,
    connections: Arc<AtomicU64>,
    bytes_out: AtomicU64,
}

impl Audience {
    /// `client` was answered a playlist of `stream` at `now`.
    pub(crate) fn seen(&self, stream: &StreamName, client: ClientGroup, now: Instant) {
        let mut viewers = self.viewers.lock();
        match viewers.get_mut(stream) {
            Some(clients) => {
                clients.insert(client, now);
            }
            None => {
                viewers.insert(stream.clone(), HashMap::from([(client, now)]));
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

/// The peer address of a connection accepted by a node's listener, as its routes see it
/// (`axum::extract::ConnectInfo<Peer>`): whom the private streams' guard and the viewer
/// counts judge a request by. Public so that tests driving the routes without a socket
/// can say where a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

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

    fn client(ip: &str) -> ClientGroup {
        ClientGroup::of(ip.parse().expect(ip))
    }

    #[test]
    fn counts_distinct_recent_viewers() {
        let a = Audience::default();
        let t0 = Instant::now();
        a.seen(&stream("x"), client("10.0.0.1"), t0);
        a.seen(
            &stream("x"),
            client("10.0.0.1"),
            t0 + Duration::from_secs(1),
        );
        a.seen(&stream("x"), client("10.0.0.2"), t0);
        a.seen(&stream("y"), client("10.0.0.1"), t0);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(a.viewers(now).get(&stream("x")), Some(&2));
        assert_eq!(a.viewers(now).get(&stream("y")), Some(&1));
        let later = t0 + Duration::from_secs(1) + VIEWER_WINDOW;
        assert!(a.viewers(later).is_empty(), "everyone left");
    }

    /// Issue 45 item 11: the addresses of one IPv6 /64 are one viewer (each address once
    /// counted as one, so a single subscriber could make any number).
    #[test]
    fn an_ipv6_64_is_one_viewer() {
        let a = Audience::default();
        let t0 = Instant::now();
        for n in 1..=1000u16 {
            let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, n, 1);
            a.seen(&stream("x"), ClientGroup::of(ip.into()), t0);
        }
        a.seen(&stream("x"), client("2001:db8:1:3::1"), t0);
        a.seen(&stream("x"), client("::ffff:192.0.2.1"), t0);
        a.seen(&stream("x"), client("192.0.2.1"), t0);
        assert_eq!(a.viewers(t0).get(&stream("x")), Some(&3));
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

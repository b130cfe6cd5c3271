//! ICE over TCP (RFC 6544), for publishers whose networks let no UDP out: every answer
//! lists a second candidate, `tcptype passive`, at the media port's address on TCP, and a
//! publisher that cannot reach the UDP one connects here and sends the same STUN, DTLS and
//! SRTP, each datagram as one RFC 4571 frame ([`intake::webrtc::framing`]).
//!
//! A connection's task only moves frames: it reads and deframes, hands each frame to the
//! driver ([`TcpEvent`]), and writes what the driver queued for it. Which session a
//! connection belongs to, and when it is closed, is the driver's: its first frame must be
//! a STUN message naming a session's ICE ufrag (as a datagram's would), or it is closed at
//! once; one that names none within the setup timeout is closed too; a session's end
//! closes its connections. Accepted by `plumbing`'s [`AcceptLoop`] under a cap of its own.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use domain::paths::WhipSessionId;
use domain::ClientGroup;
use intake::webrtc::framing::{self, Deframer};
use intake::webrtc::MAX_DATAGRAM;
use plumbing::accept::{AcceptLoop, Handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames queued for one connection's writer: past it, a frame is dropped, as a full
/// socket buffer drops a datagram.
pub(crate) const OUTBOX: usize = 256;
/// Bytes read from a connection at once.
const READ_CHUNK: usize = 4096;
/// Longest a frame may take to be written: a peer that reads nothing is closed after it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connection's task tells the driver, in order.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// A connection from `peer`: frames for it go into `outbox`; cancelling `close`
    /// closes it.
    Opened {
        peer: SocketAddr,
        outbox: mpsc::Sender<Vec<u8>>,
        close: CancellationToken,
    },
    /// One frame from `peer`: a datagram's bytes.
    Frame { peer: SocketAddr, data: Vec<u8> },
    /// `peer`'s connection ended.
    Closed { peer: SocketAddr },
}

/// ICE-TCP connections at once: a publisher opens one, or one per network interface.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpLimits {
    /// At all (also the accept loop's cap).
    pub(crate) max_connections: usize,
    /// From one client (an IPv4 address or an IPv6 /64).
    pub(crate) max_per_client: usize,
    /// For a connection's first frame to name a session.
    pub(crate) setup_timeout: Duration,
}

/// A connection, as the driver keeps it.
struct TcpConn {
    /// Its writer's queue.
    outbox: mpsc::Sender<Vec<u8>>,
    /// Closes it.
    close: CancellationToken,
    /// The session its first frame named; `None` before.
    session: Option<WhipSessionId>,
    /// When it is closed if no frame named a session by then.
    deadline: Instant,
}

/// The driver's side of the connections: which are open, which session each belongs to,
/// and their caps and setup deadlines (sans-IO: the driver calls in, nothing waits).
pub(crate) struct TcpConns {
    conns: HashMap<SocketAddr, TcpConn>,
    limits: TcpLimits,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// No such connection (closed, or refused at its opening).
    Unknown,
    /// Open; its first frame has not named a session yet.
    Unbound,
    /// A session's.
    Bound(WhipSessionId),
}

impl TcpConns {
    pub(crate) fn new(limits: TcpLimits) -> Self {
        TcpConns {
            conns: HashMap::new(),
            limits,
        }
    }

    /// What a connection's task reported, bookkept; a frame is the caller's
    /// (`Some((peer, frame))`).
    pub(crate) fn event(&mut self, event: TcpEvent, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        match event {
            TcpEvent::Opened {
                peer,
                outbox,
                close,
            } => {
                let client = ClientGroup::of(peer.ip());
                let from_client = self
                    .conns
                    .keys()
                    .filter(|other| ClientGroup::of(other.ip()) == client)
                    .count();
                if self.conns.len() >= self.limits.max_connections
                    || from_client >= self.limits.max_per_client
                {
                    tracing::debug!(%peer, "ICE-TCP connection closed: over the connection cap");
                    close.cancel();
                    return None;
                }
                let conn = TcpConn {
                    outbox,
                    close,
                    session: None,
                    deadline: now + self.limits.setup_timeout,
                };
                self.conns.insert(peer, conn);
                None
            }
            TcpEvent::Frame { peer, data } => Some((peer, data)),
            TcpEvent::Closed { peer } => {
                self.conns.remove(&peer);
                None
            }
        }
    }

    /// Where `peer`'s connection stands.
    pub(crate) fn binding(&self, peer: SocketAddr) -> Binding {
        match self.conns.get(&peer) {
            None => Binding::Unknown,
            Some(TcpConn { session: None, .. }) => Binding::Unbound,
            Some(TcpConn {
                session: Some(id), ..
            }) => Binding::Bound(*id),
        }
    }

    /// `peer`'s connection is session `id`'s from now on.
    pub(crate) fn bind(&mut self, peer: SocketAddr, id: WhipSessionId) {
        if let Some(conn) = self.conns.get_mut(&peer) {
            conn.session = Some(id);
        }
    }

    /// Closes `peer`'s connection.
    pub(crate) fn close(&mut self, peer: SocketAddr) {
        if let Some(conn) = self.conns.remove(&peer) {
            conn.close.cancel();
        }
    }

    /// Queues `packet` of session `id` for `peer`'s connection, framed, if that connection
    /// is the session's; a full queue drops it.
    pub(crate) fn send(&self, id: WhipSessionId, peer: SocketAddr, packet: &[u8]) {
        let conn = self.conns.get(&peer).filter(|c| c.session == Some(id));
        if let (Some(conn), Some(framed)) = (conn, framing::frame(packet)) {
            if conn.outbox.try_send(framed).is_err() {
                tracing::debug!("an ICE-TCP frame was not sent: the connection is behind");
            }
        }
    }

    /// Closes session `id`'s connections (what was queued for them may not be written).
    pub(crate) fn close_session(&mut self, id: WhipSessionId) {
        self.conns.retain(|_, conn| {
            let keep = conn.session != Some(id);
            if !keep {
                conn.close.cancel();
            }
            keep
        });
    }

    /// The earliest setup deadline of a connection that named no session yet.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter(|c| c.session.is_none())
            .map(|c| c.deadline)
            .min()
    }

    /// Closes the connections that named no session by their deadline.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.conns.retain(|peer, conn| {
            let keep = conn.session.is_some() || conn.deadline > now;
            if !keep {
                tracing::debug!(%peer, "ICE-TCP connection closed: it named no session in time");
                conn.close.cancel();
            }
            keep
        });
    }

    /// Closes every connection.
    pub(crate) fn close_all(&mut self) {
        for (_, conn) in self.conns.drain() {
            conn.close.cancel();
        }
    }
}

/// Accepts ICE-TCP connections on `listener` (at most `max_connections` at once) until
/// `shutdown`, reporting each to the driver through `events`; returns once every
/// connection ended.
pub(crate) async fn serve(
    listener: TcpListener,
    max_connections: usize,
    events: mpsc::Sender<TcpEvent>,
    shutdown: CancellationToken,
) {
    let connections = Connections {
        events,
        shutdown: shutdown.clone(),
    };
    AcceptLoop::new("ICE-TCP", max_connections)
        .run(listener, connections, &shutdown)
        .await;
}

struct Connections {
    events: mpsc::Sender<TcpEvent>,
    shutdown: CancellationToken,
}

impl Handler<TcpStream> for Connections {
    fn serve(
        &mut self,
        io: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send + 'static {
        connection(io, peer, self.events.clone(), self.shutdown.clone())
    }

    fn refused(&mut self, peer: SocketAddr) {
        tracing::debug!(%peer, "ICE-TCP connection refused: at the connection cap");
    }
}

/// One connection: frames in to the driver, queued frames out, until either side ends it.
async fn connection(
    io: TcpStream,
    peer: SocketAddr,
    events: mpsc::Sender<TcpEvent>,
    shutdown: CancellationToken,
) {
    let _ = io.set_nodelay(true);
    let (outbox, mut queued) = mpsc::channel::<Vec<u8>>(OUTBOX);
    let close = CancellationToken::new();
    let opened = TcpEvent::Opened {
        peer,
        outbox,
        close: close.clone(),
    };
    if events.send(opened).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = io.into_split();
    let mut deframer = Deframer::new(MAX_DATAGRAM);
    let mut buf = vec![0u8; READ_CHUNK];
    'connection: loop {
        tokio::select! {
            () = close.cancelled() => break,
            () = shutdown.cancelled() => break,
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let frames = match deframer.push(buf.get(..n).unwrap_or_default()) {
                    Ok(frames) => frames,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "ICE-TCP connection closed");
                        break;
                    }
                };
                for data in frames {
                    if events.send(TcpEvent::Frame { peer, data }).await.is_err() {
                        break 'connection;
                    }
                }
            }
            frame = queued.recv() => match frame {
                Some(frame) => {
                    // A peer that stops reading holds this task at most this long.
                    let written = tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&frame)).await;
                    if !matches!(written, Ok(Ok(()))) {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    let _ = writer.shutdown().await;
    let _ = events.send(TcpEvent::Closed { peer }).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use intake::webrtc::framing::frame;
    use tokio::net::UdpSocket;

    use super::super::driver::Driver;
    use super::super::table::{Limits, SessionTable};
    use super::*;
    use crate::metrics::IngestMetrics;

    /// A driver with no sessions and ICE-TCP on a free port.
    struct Serving {
        at: SocketAddr,
        stop: CancellationToken,
        /// The driver runs while a command sender lives.
        _commands: mpsc::Sender<super::super::driver::Command>,
    }

    impl Drop for Serving {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    async fn serving(limits: TcpLimits) -> Serving {
        let table = Arc::new(parking_lot::Mutex::new(SessionTable::new(Limits {
            max_sessions: 4,
            max_per_ip: 4,
            setup_timeout: limits.setup_timeout,
            idle_timeout: limits.setup_timeout,
            max_addresses: 4,
        })));
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("a UDP port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a TCP port");
        let at = listener.local_addr().expect("bound");
        let driver = Driver::new(udp, at, table, limits, IngestMetrics::default());
        let stop = CancellationToken::new();
        let (commands, received) = mpsc::channel(1);
        let (events, tcp_received) = mpsc::channel(64);
        tokio::spawn(driver.run(received, Some(tcp_received), stop.clone()));
        tokio::spawn(serve(
            listener,
            limits.max_connections,
            events,
            stop.clone(),
        ));
        Serving {
            at,
            stop,
            _commands: commands,
        }
    }

    /// Waits (at most 5 s) until the server closes `stream`; how long that took.
    async fn closed(stream: &mut TcpStream) -> Duration {
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection was not closed: {read:?}"
        );
        started.elapsed()
    }

    fn limits() -> TcpLimits {
        TcpLimits {
            max_connections: 8,
            max_per_client: 3,
            setup_timeout: Duration::from_millis(400),
        }
    }

    proptest::proptest! {
        /// Whatever connections open, bind, close and wait: no more are kept than the caps
        /// allow (at all, and per client), one refused at its opening is told to close and
        /// one kept never was, and none kept after `expire` is unbound past its deadline.
        #[test]
        fn the_bookkeeping_keeps_its_caps_and_deadlines(
            steps in proptest::collection::vec((0u8..4, 0u8..6, 0u64..2000), 1..80),
        ) {
            let limits = TcpLimits {
                max_connections: 5,
                max_per_client: 3,
                setup_timeout: Duration::from_millis(500),
            };
            let mut conns = TcpConns::new(limits);
            let start = Instant::now();
            let mut tokens: HashMap<SocketAddr, CancellationToken> = HashMap::new();
            for (what, who, at) in steps {
                let now = start + Duration::from_millis(at);
                // Three clients, two ports each.
                let peer = SocketAddr::from(([10, 0, 0, who / 2], 5000 + u16::from(who % 2)));
                match what {
                    0 if conns.binding(peer) == Binding::Unknown => {
                        let (outbox, _queued) = mpsc::channel(1);
                        let close = CancellationToken::new();
                        tokens.insert(peer, close.clone());
                        conns.event(TcpEvent::Opened { peer, outbox, close }, now);
                        if conns.binding(peer) == Binding::Unknown {
                            proptest::prop_assert!(tokens[&peer].is_cancelled());
                        }
                    }
                    1 => {
                        conns.event(TcpEvent::Closed { peer }, now);
                    }
                    2 => conns.bind(peer, WhipSessionId(u128::from(who))),
                    _ => conns.expire(now),
                }
                proptest::prop_assert!(conns.conns.len() <= limits.max_connections);
                for client in 0..3u8 {
                    let from = conns.conns.keys().filter(|p| p.ip() == std::net::IpAddr::from([10, 0, 0, client])).count();
                    proptest::prop_assert!(from <= limits.max_per_client);
                }
                for (peer, token) in &tokens {
                    if conns.binding(*peer) != Binding::Unknown {
                        proptest::prop_assert!(!token.is_cancelled());
                    }
                }
                if what == 3 {
                    proptest::prop_assert!(conns.conns.values().all(|c| c.session.is_some() || c.deadline > now));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_first_frame_that_names_no_session_closes_the_connection() {
        let at = serving(limits()).await;
        // Not STUN; STUN naming an ufrag nobody has; a frame too long; a frame of nothing.
        let mut unknown = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        unknown.extend_from_slice(&[7; 12]);
        unknown.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
        unknown.extend_from_slice(b"nobody:x");
        for first in [
            frame(b"hello").expect("small"),
            frame(&unknown).expect("small"),
            vec![0xff, 0xff, 1, 2, 3],
            vec![0, 0],
        ] {
            let mut client = TcpStream::connect(at.at).await.expect("connects");
            client.write_all(&first).await.expect("written");
            let took = closed(&mut client).await;
            assert!(took < Duration::from_millis(300), "closed after {took:?}");
        }
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_at_the_setup_timeout() {
        let at = serving(limits()).await;
        let mut silent = TcpStream::connect(at.at).await.expect("connects");
        // Half a frame is silence too.
        let mut half = TcpStream::connect(at.at).await.expect("connects");
        half.write_all(&[0x00, 0x40, 1, 2]).await.expect("written");
        let took = closed(&mut silent).await;
        assert!(
            took >= Duration::from_millis(300),
            "closed too early: {took:?}"
        );
        closed(&mut half).await;
    }

    #[tokio::test]
    async fn connections_past_the_per_client_cap_are_closed() {
        let at = serving(limits()).await;
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(TcpStream::connect(at.at).await.expect("connects"));
        }
        // Whichever the driver heard of last is closed at once; the other three when
        // their setup timeout passes.
        let took = futures::future::join_all(clients.iter_mut().map(closed)).await;
        let at_once = took
            .iter()
            .filter(|t| **t < Duration::from_millis(300))
            .count();
        assert_eq!(at_once, 1, "{took:?}");
    }
}

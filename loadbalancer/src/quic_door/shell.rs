//! The QUIC front door's I/O: one UDP socket facing viewers and, per flow, a connected
//! upstream socket to its relay (the simple NAT way: the relay answers on that socket, so
//! no header is added to a datagram and the relay needs nothing of ours). The number of
//! upstream sockets is the number of flows, bounded by the table's cap.
//!
//! A datagram over [`MAX_DATAGRAM`] bytes is dropped either way: QUIC's packets fit a
//! 1500-byte path, and the receive buffer (65535 bytes, the largest UDP payload) only
//! makes sure a larger one is seen whole to be dropped, not cut.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::table::{FlowTable, Verdict};
use crate::metrics::LbMetrics;

/// The largest datagram forwarded, either way.
pub const MAX_DATAGRAM: usize = 1500;

/// What a receive buffer holds: any UDP payload whole.
const RECEIVE_BUFFER: usize = 65_535;

/// How often idle flows are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One flow's upstream side.
struct Upstream {
    socket: Arc<UdpSocket>,
    relay: SocketAddr,
    /// Its task copying the relay's datagrams back to the viewer.
    replies: AbortHandle,
}

/// What woke the forwarding loop.
enum Event {
    Stop,
    Sweep,
    Reaped,
    Received(std::io::Result<(usize, SocketAddr)>),
}

/// Forwards datagrams between viewers on `front` and their relays until `stop`.
pub(crate) async fn serve(
    front: Arc<UdpSocket>,
    table: Arc<Mutex<FlowTable>>,
    metrics: LbMetrics,
    stop: CancellationToken,
) {
    let mut upstreams: HashMap<SocketAddr, Upstream> = HashMap::new();
    let mut replies = JoinSet::new();
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => Event::Stop,
            Some(_) = replies.join_next(), if !replies.is_empty() => Event::Reaped,
            _ = sweep.tick() => Event::Sweep,
            received = front.recv_from(&mut buf) => Event::Received(received),
        };
        let (len, viewer) = match event {
            Event::Stop => break,
            Event::Reaped => continue,
            Event::Sweep => {
                let now = Instant::now();
                let mut table = table.lock();
                for viewer in table.expire(now) {
                    close(&mut upstreams, viewer);
                    metrics.quic_flow("expired");
                }
                metrics.set_quic_flows(table.flows());
                metrics.set_quic_relays(table.eligible(now));
                continue;
            }
            Event::Received(Ok(got)) => got,
            Event::Received(Err(e)) => {
                // UDP receive errors are per datagram (an ICMP error of an earlier send on
                // some systems); the socket goes on.
                tracing::debug!(error = %e, "QUIC door receive error");
                continue;
            }
        };
        let Some(datagram) = buf.get(..len).filter(|d| d.len() <= MAX_DATAGRAM) else {
            metrics.quic_dropped("oversize");
            continue;
        };
        let verdict = table.lock().viewer_sent(viewer, Instant::now());
        let flow = Flow {
            viewer,
            front: &front,
            table: &table,
            metrics: &metrics,
            stop: &stop,
        };
        match verdict {
            Verdict::Drop(reason) => metrics.quic_dropped(reason.as_str()),
            Verdict::Forward { relay } => match upstreams.get(&viewer) {
                Some(up) if up.relay == relay => {
                    send_up(&up.socket, relay, datagram, &table, &metrics);
                }
                // The table and the sockets disagree (a socket that failed to open): open
                // one now.
                _ => {
                    flow.open(&mut upstreams, &mut replies, relay, datagram)
                        .await
                }
            },
            Verdict::Open {
                relay,
                moved_from,
                evicted,
            } => {
                if let Some(evicted) = evicted {
                    close(&mut upstreams, evicted);
                    metrics.quic_flow("evicted");
                }
                metrics.quic_flow(if moved_from.is_some() {
                    "moved"
                } else {
                    "opened"
                });
                flow.open(&mut upstreams, &mut replies, relay, datagram)
                    .await;
            }
        }
    }
    replies.shutdown().await;
}

/// One viewer's datagram being placed, and what placing it needs of the loop.
struct Flow<'a> {
    viewer: SocketAddr,
    front: &'a Arc<UdpSocket>,
    table: &'a Arc<Mutex<FlowTable>>,
    metrics: &'a LbMetrics,
    stop: &'a CancellationToken,
}

impl Flow<'_> {
    /// Opens the viewer's upstream socket to `relay` (replacing the one it had) and sends
    /// `datagram` on it.
    async fn open(
        &self,
        upstreams: &mut HashMap<SocketAddr, Upstream>,
        replies: &mut JoinSet<()>,
        relay: SocketAddr,
        datagram: &[u8],
    ) {
        close(upstreams, self.viewer);
        let local: SocketAddr = if relay.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = match UdpSocket::bind(local).await {
            Ok(socket) => socket,
            Err(e) => {
                // Out of sockets or ports: this datagram is lost, the next one tries again.
                tracing::warn!(error = %e, "the QUIC door could not open an upstream socket");
                self.metrics.quic_dropped("socket");
                return;
            }
        };
        if let Err(e) = socket.connect(relay).await {
            tracing::warn!(%relay, error = %e, "the QUIC door could not address a relay");
            self.metrics.quic_dropped("socket");
            return;
        }
        // The first datagram waits for the socket: a socket just made has no readiness
        // yet, and `try_send` would drop it (a viewer's first Initial, resent only after
        // QUIC's probe timeout).
        match socket.send(datagram).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                self.table.lock().relay_refused(relay);
                self.metrics.quic_dropped("relay_refused");
            }
            Err(_) => self.metrics.quic_dropped("upstream_busy"),
        }
        let socket = Arc::new(socket);
        let replies = replies.spawn(copy_replies(
            Arc::clone(&socket),
            self.viewer,
            relay,
            Arc::clone(self.front),
            Arc::clone(self.table),
            self.metrics.clone(),
            self.stop.child_token(),
        ));
        upstreams.insert(
            self.viewer,
            Upstream {
                socket,
                relay,
                replies,
            },
        );
    }
}

fn close(upstreams: &mut HashMap<SocketAddr, Upstream>, viewer: SocketAddr) {
    if let Some(up) = upstreams.remove(&viewer) {
        up.replies.abort();
    }
}

/// Sends without waiting: a full socket buffer drops the datagram (QUIC resends).
fn send_up(
    socket: &UdpSocket,
    relay: SocketAddr,
    datagram: &[u8],
    table: &Mutex<FlowTable>,
    metrics: &LbMetrics,
) {
    match socket.try_send(datagram) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            table.lock().relay_refused(relay);
            metrics.quic_dropped("relay_refused");
        }
        Err(_) => metrics.quic_dropped("upstream_busy"),
    }
}

/// Copies the relay's datagrams on `socket` to `viewer` until the flow is gone or moved.
async fn copy_replies(
    socket: Arc<UdpSocket>,
    viewer: SocketAddr,
    relay: SocketAddr,
    front: Arc<UdpSocket>,
    table: Arc<Mutex<FlowTable>>,
    metrics: LbMetrics,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = socket.recv(&mut buf) => received,
        };
        let len = match received {
            Ok(len) => len,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                // ICMP port unreachable: nothing listens there any more.
                table.lock().relay_refused(relay);
                metrics.quic_dropped("relay_refused");
                continue;
            }
            Err(e) => {
                tracing::debug!(%relay, error = %e, "QUIC door upstream receive error");
                return;
            }
        };
        let Some(datagram) = buf.get(..len).filter(|d| d.len() <= MAX_DATAGRAM) else {
            metrics.quic_dropped("oversize");
            continue;
        };
        if !table.lock().relay_sent(viewer, relay, Instant::now()) {
            return;
        }
        if front.try_send_to(datagram, viewer).is_err() {
            metrics.quic_dropped("viewer_busy");
        }
    }
}

//! The QUIC front door (issue 48): viewers reach the MoQ relay tier on one published UDP
//! port of the load balancer, which forwards their datagrams to a relay chosen per viewer
//! address. Pingora proxies TCP only; this is a plain L4 forwarder beside it, not a QUIC
//! endpoint: it terminates nothing and reads no packet.
//!
//! - [`table`]: the sans-IO flow table (stickiness by rendezvous hashing, the flow cap,
//!   idle expiry, relays taken out and flows moved), property-tested.
//! - `shell`: the sockets, one facing viewers and one per flow towards its relay.
//! - `relays`: the relay list, resolved from DNS on a period and checked by TCP connect.

mod relays;
mod shell;
pub mod table;

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use relays::RelayChecks;
pub use shell::MAX_DATAGRAM;
pub use table::{DoorLimits, FlowTable, Verdict};

use crate::metrics::LbMetrics;
use crate::LoadBalancerError;

/// Where the door sends viewers, and its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicDoorConfig {
    /// The relays' QUIC addresses as `host:port`, each looked up again every
    /// [`RelayChecks::resolve_every`] (a name may stand for many relays).
    pub relays: Vec<String>,
    /// The flow table's cap and timeouts.
    pub limits: DoorLimits,
    /// How often relays are resolved and checked.
    pub checks: RelayChecks,
}

/// A running door.
#[derive(Debug)]
pub struct QuicDoor {
    table: Arc<Mutex<FlowTable>>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl QuicDoor {
    /// Starts forwarding datagrams arriving on `socket` (already bound) on the current
    /// runtime; the serving task holds `alive` while it serves.
    pub fn start(
        socket: std::net::UdpSocket,
        config: QuicDoorConfig,
        metrics: LbMetrics,
        alive: plumbing::ListenerGuard,
    ) -> Result<Self, LoadBalancerError> {
        socket
            .set_nonblocking(true)
            .map_err(LoadBalancerError::io("QUIC door socket"))?;
        let socket = tokio::net::UdpSocket::from_std(socket)
            .map_err(LoadBalancerError::io("QUIC door socket"))?;
        let table = Arc::new(Mutex::new(FlowTable::new(config.limits)));
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(relays::follow(
                config.relays,
                config.checks,
                Arc::clone(&table),
                metrics.clone(),
                stop.child_token(),
            )),
            tokio::spawn({
                let serve = shell::serve(
                    Arc::new(socket),
                    Arc::clone(&table),
                    metrics,
                    stop.child_token(),
                );
                async move {
                    serve.await;
                    drop(alive);
                }
            }),
        ];
        Ok(QuicDoor { table, stop, tasks })
    }

    /// Flows held now.
    pub fn flows(&self) -> usize {
        self.table.lock().flows()
    }

    /// Relays that may take new flows now.
    pub fn eligible_relays(&self) -> usize {
        self.table.lock().eligible(Instant::now())
    }

    /// Stops forwarding and closes every socket.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

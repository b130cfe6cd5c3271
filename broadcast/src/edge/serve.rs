//! How an edge is served: its router (the node's public routes with the push API beside
//! them), the entry for broker messages, and [`run_edge`], which runs the HTTP server, the
//! MQTT side and the gate's timer.
//!
//! Apart from `mod.rs` because it is what ties [`Edge`] to the I/O around it: `intake`
//! and `mqtt` drive an `Edge`, and only this file names both them and it, so no file of
//! the folder imports one that imports it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use plumbing::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{intake, mqtt, trust_material, Edge};
use crate::router::NodeRoutes;
use crate::{BroadcastError, EdgeConfig, Node};

/// How often the gate's timer runs: held segments become gaps at most this late.
const TICK: Duration = Duration::from_millis(100);

impl Edge {
    /// The node's public routes plus the internal push API (`domain::push_protocol`) and the
    /// configuration's extra routes, on one router: what [`run_edge`] serves.
    pub fn router(self: &Arc<Self>) -> Router {
        let mut extra = intake::routes(Arc::clone(self))
            .merge(trust_material::routes(Arc::clone(&self.trust_material)));
        if let Some(more) = &self.config.extra_routes {
            extra = extra.merge(more.clone());
        }
        crate::router::router(Arc::clone(&self.node), extra)
    }

    /// What [`run_edge`] serves: [`Edge::router`], with a `GET` of the live tree answered
    /// without it (the same layers and handler, less per request). Drive this, not the
    /// router, to test what a node serves.
    pub fn service(self: &Arc<Self>) -> NodeRoutes {
        NodeRoutes::new(self.router(), Arc::clone(&self.node))
    }

    /// Handles one message from the broker (what [`run_edge`]'s MQTT side does for every
    /// message on a subscribed topic).
    pub async fn handle_message(&self, message: &Message) {
        mqtt::handle(self, message).await;
    }
}

/// Runs `node` as an edge until `shutdown`: HTTP on `listener` (the public routes and the
/// internal push API), the MQTT side (trust, statements, presence, readiness) and the gate's
/// timer. On shutdown a ready node first drains for [`EdgeConfig::drain`] (says `draining`,
/// goes on serving and being fed); then it stops taking connections, lets HTTP requests in
/// flight finish, announces itself offline, disconnects from the broker, and joins every
/// task before returning.
pub async fn run_edge(
    node: Arc<Node>,
    config: EdgeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), BroadcastError> {
    let edge = Edge::new(Arc::clone(&node), config)?;
    match listener.local_addr() {
        Ok(addr) => tracing::info!(node = %node.id(), %addr, "broadcast edge serving"),
        Err(e) => {
            tracing::warn!(node = %node.id(), error = %e, "broadcast edge serving on an unknown address")
        }
    }
    // The HTTP server stops once the drain is over; the background tasks once it has
    // stopped, whatever the reason: a draining node is still fed.
    let (http_stop, stop) = (CancellationToken::new(), CancellationToken::new());
    let tasks = TaskTracker::new();
    tasks.spawn(timer(Arc::clone(&edge), stop.clone()));
    tasks.spawn(mqtt::run(Arc::clone(&edge), stop.clone()));
    tasks.spawn(drain(
        Arc::clone(&node),
        edge.config.drain,
        shutdown,
        http_stop.clone(),
    ));
    tasks.close();

    let listener = node.audience.counting(listener);
    let routes = edge.service();
    crate::http::serve(
        listener,
        routes,
        edge.config.http_limits,
        Arc::clone(&node),
        http_stop.clone(),
    )
    .await;
    tracing::info!(node = %node.id(), "broadcast edge: HTTP stopped");
    http_stop.cancel();
    stop.cancel();
    tasks.wait().await;
    tracing::info!(node = %node.id(), "broadcast edge: MQTT and timer stopped");
    // Finish writing recordings (file writes: off the executor).
    let recording = Arc::clone(&node);
    let _ = tokio::task::spawn_blocking(move || recording.close_recordings()).await;
    tracing::info!(node = %node.id(), "broadcast edge stopped");
    Ok(())
}

/// Once `shutdown` comes, drains a ready node for `period` (it says `draining`: the
/// load balancer gives it no new viewers and moves each of its viewers on their next
/// request, Kubernetes takes it out of its Service), then stops the HTTP server
/// (`http_stop`). Returns at once when the server stopped on its own.
async fn drain(
    node: Arc<Node>,
    period: Duration,
    shutdown: CancellationToken,
    http_stop: CancellationToken,
) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = http_stop.cancelled() => return,
    }
    if node.is_ready() {
        // Said even without a drain period: the presence turns `draining` while the
        // requests in flight finish, before the `offline` that follows them.
        node.start_draining();
        if !period.is_zero() {
            tracing::info!(node = %node.id(), ?period, "broadcast edge draining: no new viewers, serving those it has");
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = http_stop.cancelled() => return,
            }
        }
    }
    http_stop.cancel();
}

/// The gate's clock.
async fn timer(edge: Arc<Edge>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => edge.tick(),
        }
    }
}

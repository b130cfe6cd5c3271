//! [`run`]: an ingest node in one call. It owns the RTMP server, the [`Registry`] of who
//! publishes what, and the distribution of every stream's segments and events to the
//! broadcast nodes; the catalog stands behind a [`StreamAuthority`]. The binary's `ingest`
//! and `up` roles only wire configuration into it.
//!
//! Shutdown, in order: the RTMP server stops when the token given to [`run`] fires
//! ([`Running::served`] waits for that); whoever else holds the registry lets go of it;
//! [`Running::finish`] ends every stream and waits, bounded, until the last events reached
//! the nodes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::authority::StreamAuthority;
use crate::distribute::{distribute, DistributeConfig};
use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::registry::{IngestSettings, PublishObserver, Registry};

/// How long [`Running::finish`] waits for the last events to reach the nodes.
pub const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Events between the streams' pipelines and the distribution.
const EVENTS_QUEUE: usize = 1024;

/// What an ingest node is given besides its settings.
#[derive(Debug, Clone)]
pub struct IngestDeps {
    /// Stream keys and numbering (the catalog).
    pub authority: Arc<dyn StreamAuthority>,
    /// Told of every publish session's start and end, if anyone is.
    pub observer: Option<Arc<dyn PublishObserver>>,
    /// The metrics every part updates.
    pub metrics: IngestMetrics,
}

/// A running ingest node.
#[derive(Debug)]
pub struct Running {
    registry: Arc<Registry>,
    rtmp_addr: SocketAddr,
    rtmp: Option<JoinHandle<Result<(), IngestError>>>,
    distribution: JoinHandle<Result<(), IngestError>>,
    distribution_stop: CancellationToken,
}

/// Starts an ingest node: RTMP on `listener` until `stop` fires, its streams distributed as
/// `distribution` says.
pub fn run(
    listener: TcpListener,
    settings: IngestSettings,
    distribution: DistributeConfig,
    deps: IngestDeps,
    stop: CancellationToken,
) -> Result<Running, IngestError> {
    let rtmp_addr = listener.local_addr()?;
    let (events_tx, events_rx) = mpsc::channel(EVENTS_QUEUE);
    let distribution_stop = CancellationToken::new();
    let distribution = tokio::spawn(distribute(
        distribution,
        events_rx,
        deps.metrics.clone(),
        distribution_stop.clone(),
    ));
    let registry = Registry::with_observer(
        settings,
        deps.authority,
        events_tx,
        deps.metrics,
        deps.observer,
    );
    let rtmp = tokio::spawn(crate::rtmp::serve(listener, Arc::clone(&registry), stop));
    Ok(Running {
        registry,
        rtmp_addr,
        rtmp: Some(rtmp),
        distribution,
        distribution_stop,
    })
}

impl Running {
    /// Who publishes what here (for the load report and operators' end requests).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Where publishers connect.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// Waits until the RTMP server has stopped (after the token given to [`run`] fired, or
    /// on its own error, which this returns).
    pub async fn served(&mut self) -> Result<(), IngestError> {
        match self.rtmp.take() {
            Some(task) => task
                .await
                .map_err(|_| IngestError::PipelineStopped("the RTMP server task panicked"))?,
            None => Ok(()),
        }
    }

    /// Ends every stream and waits (up to [`DRAIN_WAIT`]) until their last events reached
    /// the nodes: closing the registry ends the streams, dropping it closes the events
    /// channel, and the distribution returns once it has handed everything over. Anyone
    /// else holding the registry must have let go of it by now, or the wait runs out.
    pub async fn finish(mut self) -> Result<(), IngestError> {
        self.served().await?;
        self.registry.close().await;
        drop(self.registry);
        match tokio::time::timeout(DRAIN_WAIT, self.distribution).await {
            Ok(result) => result
                .map_err(|_| IngestError::PipelineStopped("the distribution task panicked"))?,
            Err(_) => {
                tracing::warn!("the ingest did not finish pushing in time");
                self.distribution_stop.cancel();
                Ok(())
            }
        }
    }
}

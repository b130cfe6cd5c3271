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

use tokio::net::{TcpListener, UdpSocket};
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
    /// The role's liveness: each listener task (`rtmp`, `srt`, `whip`, `webrtc`) holds a
    /// guard, so that one stopping unasked fails `/healthz` and stops the process.
    pub liveness: plumbing::Liveness,
}

/// A running ingest node.
#[derive(Debug)]
pub struct Running {
    registry: Arc<Registry>,
    rtmp_addr: SocketAddr,
    rtmp: Option<JoinHandle<Result<(), IngestError>>>,
    /// The SRT listener, once [`Running::serve_srt`] started one, and its address.
    srt: Option<(SocketAddr, JoinHandle<Result<(), IngestError>>)>,
    /// The WHIP side, once [`Running::serve_webrtc`] started it.
    webrtc: Option<crate::webrtc::WebRtcServer>,
    distribution: JoinHandle<Result<(), IngestError>>,
    distribution_stop: CancellationToken,
    /// Every listener task holds a guard of it.
    liveness: plumbing::Liveness,
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
    let alive = deps.liveness.guard("rtmp", &stop);
    let serving = crate::rtmp::serve(listener, Arc::clone(&registry), stop);
    let rtmp = tokio::spawn(async move {
        alive.failpoint();
        let result = serving.await;
        drop(alive);
        result
    });
    Ok(Running {
        registry,
        rtmp_addr,
        rtmp: Some(rtmp),
        srt: None,
        webrtc: None,
        distribution,
        distribution_stop,
        liveness: deps.liveness,
    })
}

impl Running {
    /// Who publishes what here (for the load report and operators' end requests).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Which listener tasks run: what `/healthz` answers, and what the role watches to
    /// stop when one died.
    pub fn liveness(&self) -> &plumbing::Liveness {
        &self.liveness
    }

    /// Where publishers connect.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// Also takes SRT publishers on `socket` (the same registry: stream keys, numbering,
    /// takeover across protocols) until `stop` fires.
    pub fn serve_srt(
        &mut self,
        socket: UdpSocket,
        settings: intake::srt::SrtSettings,
        stop: CancellationToken,
    ) -> Result<(), IngestError> {
        settings.validate()?;
        let addr = socket.local_addr()?;
        let alive = self.liveness.guard("srt", &stop);
        let serving = crate::srt::serve(socket, Arc::clone(&self.registry), settings, stop);
        let task = tokio::spawn(async move {
            alive.failpoint();
            let result = serving.await;
            drop(alive);
            result
        });
        self.srt = Some((addr, task));
        Ok(())
    }

    /// Also takes WHIP publishers (WebRTC: the HTTP resource and the media port of
    /// `listeners`; the same registry, so the same keys, numbering and takeover) until
    /// `stop` fires. `node` names this ingest in every session's URL.
    pub fn serve_webrtc(
        &mut self,
        listeners: crate::webrtc::WebRtcListeners,
        node: domain::NodeId,
        limits: intake::webrtc::WebRtcLimits,
        stop: CancellationToken,
    ) -> Result<(), IngestError> {
        let server = crate::webrtc::serve(
            listeners,
            node,
            limits,
            Arc::clone(&self.registry),
            &self.liveness,
            stop,
        )?;
        self.webrtc = Some(server);
        Ok(())
    }

    /// Where the WHIP HTTP resource, the WebRTC media port and ICE-TCP (if on) listen,
    /// when [`Running::serve_webrtc`] started them.
    pub fn webrtc_addrs(&self) -> Option<(SocketAddr, SocketAddr, Option<SocketAddr>)> {
        self.webrtc
            .as_ref()
            .map(|w| (w.http_addr(), w.udp_addr(), w.tcp_addr()))
    }

    /// Where SRT callers connect, when [`Running::serve_srt`] started a listener.
    pub fn srt_addr(&self) -> Option<SocketAddr> {
        self.srt.as_ref().map(|(addr, _)| *addr)
    }

    /// Waits until the RTMP server (and the SRT listener, if any) has stopped (after the
    /// tokens given fired, or on an error of their own, which this returns).
    pub async fn served(&mut self) -> Result<(), IngestError> {
        let rtmp = match self.rtmp.take() {
            Some(task) => task
                .await
                .map_err(|_| IngestError::PipelineStopped("the RTMP server task panicked"))?,
            None => Ok(()),
        };
        let srt = match self.srt.take() {
            Some((_, task)) => task
                .await
                .map_err(|_| IngestError::PipelineStopped("the SRT listener task panicked"))?,
            None => Ok(()),
        };
        if let Some(webrtc) = self.webrtc.as_mut() {
            webrtc.served().await;
        }
        rtmp.and(srt)
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

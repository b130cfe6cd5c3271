//! `sealcast ingest`: RTMP in; every segment signed, pushed to every broadcast node
//! present, its signature published over MQTT. Also how `up` starts its own ingest over
//! the catalog ([`start`]).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use api::{Hook, Webhooks};
use catalog::Catalog;
use domain::StreamName;
use ingest::distribute::DistributeConfig;
use ingest::{IngestMetrics, IngestSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admin::{self, SessionLog};
use super::common::{
    bind, listener_died, open_catalog, print_ready, serve_metrics, start_srt, url_host,
};
use crate::cli::IngestArgs;
use crate::plan::IngestPlan;

/// `sealcast ingest`.
pub(crate) async fn ingest(args: IngestArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let plan = IngestPlan::derive(&args)?;
    let catalog = open_catalog(&plan.catalog.location).await?;

    let metrics = IngestMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let liveness = plumbing::Liveness::new();
    let (metrics_addr, metrics_task) = serve_metrics(
        plan.metrics_listen,
        registry,
        liveness.clone(),
        shutdown.child_token(),
    )
    .await?;
    let webhooks = Webhooks::new(catalog.clone(), plan.catalog.webhooks)
        .context("making the webhook client")?;
    let background = TaskTracker::new();
    let background_stop = CancellationToken::new();
    let sessions = Arc::new(SessionLog {
        catalog: catalog.clone(),
        webhooks: webhooks.clone(),
        node: plan.node_id.clone(),
        tasks: background.clone(),
    });
    let rtmp = bind(plan.rtmp_listen, "RTMP").await?;
    let app = plan.settings.app.clone();
    let broker = plan.distribution.broker.clone();
    let whip =
        super::whip::bind_ports(&args.webrtc, SocketAddr::from(([0, 0, 0, 0], 8088))).await?;
    let distribution = plan.distribution.with_whip_url(whip.url.clone());
    let deps = ingest::IngestDeps {
        authority: authority(&catalog, plan.on_publish),
        observer: Some(sessions),
        metrics: metrics.clone(),
        liveness: liveness.clone(),
    };
    let mut ingest = start(
        plan.settings,
        rtmp,
        distribution,
        deps,
        shutdown.child_token(),
    )?;
    super::whip::start(
        &mut ingest,
        whip,
        plan.node_id.clone(),
        plan.webrtc,
        shutdown.child_token(),
    )?;
    let srt = start_srt(&mut ingest, plan.srt, shutdown.child_token()).await?;
    admin::spawn_ingest_companions(
        &background,
        &catalog,
        &plan.node_id,
        &ingest,
        broker,
        metrics,
        &background_stop,
    );
    let srt_line = srt
        .map(|addr| format!("srt-server srt://{}\n", url_host(addr)))
        .unwrap_or_default();
    print_ready(&format!(
        "obs-server rtmp://{}/{app}\n{srt_line}{}metrics http://{}/metrics\n",
        url_host(ingest.rtmp_addr()),
        super::whip::ready_lines(&ingest),
        url_host(metrics_addr),
    ));
    // Until asked to stop, or until a listener task stopped unasked: then everything
    // stops, and the process exits non-zero (docs/deployment.md, liveness).
    let dead = tokio::select! {
        served = ingest.served() => {
            served?;
            None
        }
        name = liveness.died() => Some(name),
    };
    if let Some(name) = dead {
        tracing::error!(
            listener = name,
            "a listener stopped unasked; the ingest stops"
        );
        shutdown.cancel();
        if let Err(e) = ingest.served().await {
            tracing::warn!(error = %e, "stopping the ingest's listeners");
        }
    }
    // The reporter and the end-request follower hold the registry: stopped first, so that
    // finishing it closes the events channel and the distribution ends at once.
    background_stop.cancel();
    ingest.finish().await?;
    background.close();
    background.wait().await;
    webhooks.close().await;
    catalog.close().await;
    if let Err(e) = metrics_task.await? {
        tracing::warn!(error = %e, "the metrics server failed");
    }
    match dead {
        Some(name) => Err(listener_died(name)),
        None => Ok(()),
    }
}

/// The catalog as the ingest sees it ([`ingest::StreamAuthority`]): stream keys,
/// numbering and privacy; and the operator's `on_publish` hook, if any.
#[derive(Debug, Clone)]
struct CatalogAuthority(Catalog, Option<Hook>);

/// What the `on_publish` hook is told.
#[derive(serde::Serialize)]
struct PublishRequest<'a> {
    action: &'static str,
    stream: &'a StreamName,
}

#[async_trait::async_trait]
impl ingest::StreamAuthority for CatalogAuthority {
    async fn authenticate(
        &self,
        presented_key: &str,
    ) -> Result<Option<StreamName>, ingest::AuthorityError> {
        Ok(self.0.authenticate(presented_key).await?)
    }

    async fn begin_numbering(
        &self,
        stream: &StreamName,
    ) -> Result<ingest::Numbering, ingest::AuthorityError> {
        let n = self.0.begin_numbering(stream).await?;
        Ok(ingest::Numbering {
            first_sequence: n.first_sequence,
            discontinuity_sequence: n.discontinuity_sequence,
            discontinuity: n.discontinuity,
        })
    }

    async fn mark_live(
        &self,
        stream: &StreamName,
        at_unix: i64,
    ) -> Result<(), ingest::AuthorityError> {
        Ok(self.0.mark_live(stream, at_unix).await?)
    }

    async fn advance_sequence(
        &self,
        stream: &StreamName,
        next: u64,
    ) -> Result<(), ingest::AuthorityError> {
        Ok(self.0.advance_sequence(stream, next).await?)
    }

    async fn is_private(&self, stream: &StreamName) -> Result<bool, ingest::AuthorityError> {
        Ok(self.0.is_private(stream).await?)
    }

    async fn records(&self, stream: &StreamName) -> Result<bool, ingest::AuthorityError> {
        Ok(self.0.is_recorded(stream).await?)
    }

    async fn may_publish(&self, stream: &StreamName) -> Result<bool, ingest::AuthorityError> {
        let Some(hook) = &self.1 else {
            return Ok(true);
        };
        let verdict = hook
            .ask(&PublishRequest {
                action: "publish",
                stream,
            })
            .await;
        if let api::Verdict::Refused(why) = &verdict {
            tracing::info!(%stream, reason = %why, "the on_publish hook refused a publish");
        }
        Ok(verdict.allows())
    }
}

/// The catalog (and the operator's `on_publish` hook) as an ingest's authority.
pub(super) fn authority(
    catalog: &Catalog,
    on_publish: Option<Hook>,
) -> Arc<dyn ingest::StreamAuthority> {
    Arc::new(CatalogAuthority(catalog.clone(), on_publish))
}

/// Starts an ingest node ([`ingest::run`]) with what `deps` gives it (the stream
/// authority, the publish observer, metrics, and the liveness its listener tasks hold
/// guards of), its RTMP server until `stop`.
pub(super) fn start(
    settings: IngestSettings,
    rtmp: TcpListener,
    distribution: DistributeConfig,
    deps: ingest::IngestDeps,
    stop: CancellationToken,
) -> anyhow::Result<ingest::Running> {
    Ok(ingest::run(rtmp, settings, distribution, deps, stop)?)
}

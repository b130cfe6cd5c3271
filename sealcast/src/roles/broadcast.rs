//! `sealcast broadcast`: one edge node. Also how `up` makes its recording node and wires
//! each of its nodes as an edge ([`recording_node`], [`edge_config`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api::Webhooks;
use broadcast::{EdgeConfig, Node, NodeConfig};
use catalog::Catalog;
use domain::broker::BrokerAddress;
use domain::NodeId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admin::{self, AdminSide};
use super::common::{bind, default_url, listener_died, open_catalog, print_ready};
use crate::cli::BroadcastArgs;
use crate::plan::{ArchivePlan, BroadcastPlan, EdgeTrust};

/// `sealcast broadcast`.
pub(crate) async fn broadcast(
    args: BroadcastArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let plan = BroadcastPlan::derive(&args)?;
    let listener = bind(plan.listen, "HTTP").await?;
    let url = match &plan.public_url {
        Some(url) => url.clone(),
        None => default_url(listener.local_addr()?),
    };
    let (catalog, webhooks) = match &plan.catalog {
        Some(location) => {
            let catalog = open_catalog(&location.location).await?;
            let webhooks = Webhooks::new(catalog.clone(), location.webhooks)
                .context("making the webhook client")?;
            (Some(catalog), Some(webhooks))
        }
        None => (None, None),
    };
    let cataloged = catalog.clone().zip(webhooks.clone());
    let node = Arc::new(
        recording_node(
            plan.node_id.clone(),
            plan.node,
            plan.recordings.clone(),
            &plan.archive,
            (plan.retention, plan.dvr_window),
            cataloged,
        )?
        .with_access(plan.access)
        .with_moq_endpoint(plan.moq.as_ref().map(|m| &m.viewers))
        .with_moq_grants(plan.moq.as_ref().and_then(|m| m.grants.clone())),
    );
    let admin = AdminSide::start(
        catalog.clone(),
        webhooks.clone(),
        plan.broker.clone(),
        format!("api-{}", plan.node_id),
        Some(admin::forget_with(Arc::clone(&node))),
        plan.playback,
    )
    .with_cache_purge(plan.cache_purge, std::slice::from_ref(&node));
    let mut edge = edge_config(
        &plan.edge,
        plan.node,
        plan.broker.clone(),
        url.clone(),
        plan.direct_url.clone(),
        &admin,
        &node,
    );
    edge.ready_timeout = plan.ready_timeout;
    edge.drain = plan.drain;
    let tasks = TaskTracker::new();
    {
        // Say so once the node serves the full live window.
        let node = Arc::clone(&node);
        let stop = shutdown.clone();
        let id = plan.node_id.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = node.wait_ready() => print_ready(&format!("{id} {url}/\n")),
                () = stop.cancelled() => {}
            }
        });
    }
    if let Some(moq) = &plan.moq {
        super::moq::start(&tasks, &node, moq, true, &shutdown)?;
    }
    let result = broadcast::run_edge(node, edge, listener, shutdown.clone()).await;
    // The HTTP server ends only when asked to; ending otherwise, the node can no longer be
    // reached, and exiting non-zero gets it restarted (docs/deployment.md, liveness).
    let result = match result {
        Ok(()) if !shutdown.is_cancelled() => Err(listener_died("http")),
        other => other.map_err(anyhow::Error::from),
    };
    tasks.close();
    tasks.wait().await;
    admin.finish().await;
    if let Some(w) = &webhooks {
        w.close().await;
    }
    if let Some(c) = &catalog {
        c.close().await;
    }
    result.context("broadcast node")
}

/// A node that records what it publishes into `recordings`, deleting recordings older
/// than `retention` and keeping live streams seekable for `dvr_window`; with a catalog, finished recordings are entered there and announced
/// by webhook. What it records goes to `archive` (spooled in `recordings` meanwhile), which
/// it serves recordings from.
pub(super) fn recording_node(
    id: NodeId,
    config: NodeConfig,
    recordings: PathBuf,
    archive: &ArchivePlan,
    (retention, dvr_window): (Option<Duration>, Duration),
    cataloged: Option<(Catalog, Webhooks)>,
) -> anyhow::Result<Node> {
    let mut node = archived_node(id.clone(), config, archive)?
        .with_time_shift_window(dvr_window)
        .with_recordings(recordings)
        .context("preparing the recordings directory")?;
    if let Some(keep) = retention {
        node = node.with_recording_retention(keep);
    }
    if let Some((catalog, webhooks)) = cataloged {
        node = node.with_recording_observer(admin::recording_observer(
            catalog,
            webhooks,
            id,
            tokio::runtime::Handle::current(),
        ));
    }
    Ok(node)
}

/// A node that serves the recordings in `archive` (and, if it records, archives there).
pub(super) fn archived_node(
    id: NodeId,
    config: NodeConfig,
    archive: &ArchivePlan,
) -> anyhow::Result<Node> {
    let opened = archive.open().context("opening the recordings archive")?;
    Node::new(id, config)
        .with_archive(opened, archive.settings)
        .context("starting the recordings archive")
}

/// How `node` runs as an edge serving at `url`: the cluster's trust, the admin API beside
/// its routes, its load reports.
pub(super) fn edge_config(
    trust: &EdgeTrust,
    config: NodeConfig,
    broker: BrokerAddress,
    url: String,
    direct_url: Option<String>,
    admin: &AdminSide,
    node: &Arc<Node>,
) -> EdgeConfig {
    let mut edge = trust.edge_config(config, broker, url, direct_url);
    edge.extra_routes = Some(admin.router());
    edge.load_reports = Some(admin::broadcast_reports(Arc::clone(node)));
    edge
}

//! The roles one per process, as a real cluster runs them: `sealcast ingest` and
//! `sealcast broadcast`, meeting through an MQTT broker (Mosquitto in a cluster) and the
//! internal push API.

use std::sync::Arc;

use anyhow::Context;
use api::Webhooks;
use broadcast::{EdgeConfig, Node};
use domain::NodeId;
use ingest::distribute::DistributeConfig;
use ingest::IngestMetrics;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admin::{self, AdminSide, SessionLog};
use super::{
    bind, key_dir, node_config, open_catalog, print_ready, push_token, start_ingest, url_host,
};
use crate::cli::{BroadcastArgs, IngestArgs};

/// `sealcast ingest`: RTMP in; every segment signed, pushed to every broadcast node
/// present, its signature published over MQTT.
pub(crate) async fn ingest(args: IngestArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = crate::config::load(args.config.as_deref())?;
    let node_id = NodeId::new(args.node_id.clone()).context("SEALCAST_NODE_ID")?;
    let keys = key_dir(args.trust.keys_dir.as_deref(), &args.catalog);
    let token = push_token(&args.trust, &keys)?;
    let (signing_key, certificate) = keys.ingest(&node_id).with_context(|| {
        format!(
            "reading the signing key of {node_id} (run `sealcast keys init --ingest {node_id}`)"
        )
    })?;
    let catalog = open_catalog(&args.catalog).await?;

    let metrics = IngestMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let metrics_listener = bind(args.metrics_listen, "metrics").await?;
    let metrics_addr = metrics_listener.local_addr()?;
    let metrics_task = tokio::spawn(ingest::metrics::serve(
        metrics_listener,
        Arc::new(registry),
        shutdown.child_token(),
    ));
    let webhooks = Webhooks::new(catalog.clone(), args.catalog.webhook_destinations())
        .context("making the webhook client")?;
    let background = TaskTracker::new();
    let background_stop = CancellationToken::new();
    let sessions = Arc::new(SessionLog {
        catalog: catalog.clone(),
        webhooks: webhooks.clone(),
        node: node_id.clone(),
        tasks: background.clone(),
    });
    let rtmp = bind(args.rtmp_listen, "RTMP").await?;
    let mut ingest = start_ingest(
        &config,
        &catalog,
        rtmp,
        DistributeConfig::new(
            node_id.clone(),
            Arc::new(signing_key),
            certificate,
            args.broker.mqtt_url.clone(),
            token,
            super::lb::presence_verifier(&keys)?,
            config.ladder.window + 2,
        ),
        metrics.clone(),
        Some(sessions),
        shutdown.child_token(),
    )?;
    admin::spawn_ingest_companions(
        &background,
        &catalog,
        &node_id,
        &ingest,
        args.broker.mqtt_url.clone(),
        metrics,
        &background_stop,
    );
    print_ready(&format!(
        "obs-server rtmp://{}/{}\nmetrics http://{}/metrics\n",
        url_host(ingest.rtmp_addr()),
        config.ingest.app,
        url_host(metrics_addr),
    ));
    ingest.served().await?;
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
    Ok(())
}

/// `sealcast broadcast`: one edge node.
pub(crate) async fn broadcast(
    args: BroadcastArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = crate::config::load(args.config.as_deref())?;
    let node_id = match &args.node_id {
        Some(id) => NodeId::new(id.clone()).context("SEALCAST_NODE_ID")?,
        None => node_id_from_host("broadcast")?,
    };
    let keys = key_dir(args.trust.keys_dir.as_deref(), &args.catalog);
    let token = push_token(&args.trust, &keys)?;
    let root = keys.root_public().with_context(|| {
        format!(
            "reading the root public key {} (copy root.pub from the cluster's key directory)",
            keys.root_public_path().display()
        )
    })?;
    let listener = bind(args.listen, "HTTP").await?;
    let url = match &args.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => default_public_url(listener.local_addr()?),
    };
    let recordings = args
        .recordings
        .clone()
        .unwrap_or_else(|| args.catalog.data_dir.join("recordings"));
    // The catalog is the cluster's (PostgreSQL): only with --database-url. Without one the
    // node serves viewers and its API answers 503 on the catalog routes.
    let catalog = match &args.catalog.database_url {
        Some(_) => Some(open_catalog(&args.catalog).await?),
        None => None,
    };
    let webhooks = catalog
        .clone()
        .map(|c| Webhooks::new(c, args.catalog.webhook_destinations()))
        .transpose()
        .context("making the webhook client")?;
    let mut node = Node::new(node_id.clone(), node_config(&config))
        .with_recordings(recordings)
        .context("preparing the recordings directory")?;
    if let Some(keep) = args.recording_retention.0 {
        node = node.with_recording_retention(keep);
    }
    if let (Some(catalog), Some(webhooks)) = (&catalog, &webhooks) {
        node = node.with_recording_observer(admin::recording_observer(
            catalog.clone(),
            webhooks.clone(),
            node_id.clone(),
            tokio::runtime::Handle::current(),
        ));
    }
    let node = Arc::new(node);
    let forget: api::ForgetRecording = {
        let keeper = Arc::clone(&node);
        admin::forget_with(keeper)
    };
    let admin = AdminSide::start(
        catalog.clone(),
        webhooks.clone(),
        args.broker.mqtt_url.clone(),
        format!("api-{node_id}"),
        Some(forget),
    );
    let mut edge = EdgeConfig::new(
        node_config(&config),
        root,
        token,
        super::presence_signer(&keys)?,
        args.broker.mqtt_url.clone(),
        url.clone(),
    );
    edge.direct_url = args.direct_url.clone();
    edge.ready_timeout = std::time::Duration::from_secs(args.ready_timeout);
    edge.revocations = keys
        .revocations()
        .context("reading the key directory's revocations")?;
    edge.extra_routes = Some(admin.router());
    edge.load_reports = Some(admin::broadcast_reports(Arc::clone(&node)));
    let tasks = TaskTracker::new();
    {
        // Say so once the node serves the full live window.
        let node = Arc::clone(&node);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = node.wait_ready() => print_ready(&format!("{node_id} {url}/\n")),
                () = stop.cancelled() => {}
            }
        });
    }
    let result = broadcast::run_edge(node, edge, listener, shutdown).await;
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

/// A node id from the host name (unique per container under `--scale`), after `prefix`.
pub(super) fn node_id_from_host(prefix: &str) -> anyhow::Result<NodeId> {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let cleaned: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    NodeId::new(format!("{prefix}-{}", cleaned.trim_matches('-')))
        .or_else(|_| NodeId::new(prefix))
        .context("making a node id from the host name; set SEALCAST_NODE_ID")
}

/// `http://` + the listen address, with the host's name in place of an unspecified address.
fn default_public_url(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        if let Ok(host) = std::env::var("HOSTNAME") {
            let host = host.trim();
            if !host.is_empty() {
                return format!("http://{host}:{}", addr.port());
            }
        }
    }
    format!("http://{}", url_host(addr))
}

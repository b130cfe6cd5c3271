//! `sealcast up`: the whole cluster in one process. The parts talk to each other exactly as
//! they do between machines — segments pushed over HTTP, signatures and presence over MQTT
//! (an embedded broker unless `--mqtt-url` names one) — so what runs here is what runs in a
//! cluster.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api::Webhooks;
use domain::broker::BrokerAddress;
use domain::StreamName;
use ingest::IngestMetrics;
use plumbing::EmbeddedBroker;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use domain::time::WallClock;

use super::admin::{self, AdminSide, SessionLog};
use super::broadcast::{archived_node, edge_config, recording_node};
use super::common::{bind, listener_died, open_catalog, print_ready, shown, start_srt, url_host};
use crate::cli::UpArgs;
use crate::plan::{
    access_config, distribution, provenance, signing_key, BalancerKeys, Broker, EdgeTrust,
    Problems, UpPlan,
};

/// How long `up` waits for its nodes to report ready before it prints the URLs anyway.
const READY_WAIT: Duration = Duration::from_secs(30);

/// `sealcast up`.
pub(crate) async fn up(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut plan = UpPlan::derive(&args)?;
    // A relay of its own (`--moq-run-relay`): its certificate's fingerprint is part of
    // what the nodes publish with and tell viewers, so it starts first.
    let relay = match plan.run_relay.clone() {
        Some(run) => {
            let (child, moq) = super::moq::run_relay(&run).await?;
            plan.moq = Some(moq);
            Some(child)
        }
        None => None,
    };
    let catalog = open_catalog(&plan.catalog.location).await?;
    let tasks = TaskTracker::new();
    // The listener tasks of every part hold guards of it: one stopping unasked stops the
    // whole process, non-zero (the load balancer keeps its own, below).
    let liveness = plumbing::Liveness::new();
    let (metrics, lb_metrics, registry_for_nodes) = metrics();

    // Keys: made on the first start; what the roles read from them derived as theirs is.
    let keys = plan.keys.clone();
    let made = {
        let (keys, id, algorithm) = (keys.clone(), plan.ingest_id.clone(), plan.algorithm);
        tokio::task::spawn_blocking(move || keys.init(algorithm, &[id], WallClock.unix_secs()))
            .await?
            .context("making the cluster's keys")?
    };
    for path in &made.written {
        tracing::info!(path = %shown(path).display(), "wrote key material");
    }
    let mut problems = Problems::default();
    let edge_trust = EdgeTrust::derive(&keys, None, &mut problems);
    let signing = signing_key(&keys, &plan.ingest_id, &mut problems);
    let provenance = provenance(&keys, &plan.ingest_id, &mut problems);
    let lb_keys = BalancerKeys::derive(&keys, &mut problems);
    let (edge_trust, signing, provenance, lb_keys) =
        problems.or((|| Some((edge_trust?, signing?, provenance?, lb_keys?)))())?;
    // Private streams: the nodes and the load balancer check tokens with the same key.
    let tokens = lb_keys.tokens.clone();
    let playback = tokens.as_ref().map(|v| v.key().clone());

    // The broker.
    let (broker, _embedded) = match &plan.broker {
        Broker::External(url) => (url.clone(), None),
        Broker::Embedded(listen) => {
            let listen = *listen;
            // Everything in this process logs in with the password made on the first
            // start; other processes need the password file.
            let password = keys
                .broker_password()
                .context("reading the embedded broker's password")?;
            let embedded = tokio::task::spawn_blocking(move || {
                EmbeddedBroker::start_with_login(listen, plumbing::EMBEDDED_BROKER_USER, &password)
            })
            .await?
            .context("starting the embedded MQTT broker")?;
            (embedded.address(), Some(embedded))
        }
    };

    // Broadcast nodes. They stop after the ingest has handed them its last events. The
    // first one records (into the archive, through its spool); every node serves the
    // recordings from the archive, and the first one's time-shift windows.
    let webhooks = Webhooks::new(catalog.clone(), plan.catalog.webhooks)
        .context("making the webhook client")?;
    let reports = TaskTracker::new();
    let reports_stop = CancellationToken::new();
    let mut nodes: Vec<Arc<broadcast::Node>> = Vec::new();
    for (i, (id, _)) in plan.nodes.iter().enumerate() {
        let node = if i == 0 {
            recording_node(
                id.clone(),
                plan.node,
                plan.recordings.clone(),
                &plan.archive,
                (plan.retention, plan.dvr_window),
                Some((catalog.clone(), webhooks.clone())),
            )?
        } else {
            // The first node's time-shift windows: its recordings are on this disk and in
            // the same archive.
            let node = archived_node(id.clone(), plan.node, &plan.archive)?;
            match nodes.first() {
                Some(recorder) => node.with_time_shift_of(recorder),
                None => node,
            }
        };
        let access = access_config(tokens.clone(), plan.on_play.clone());
        nodes.push(Arc::new(
            node.with_metrics(Arc::clone(&registry_for_nodes))
                .with_access(access)
                .with_moq_endpoint(plan.moq.as_ref().map(|m| &m.viewers))
                .with_moq_grants(plan.moq.as_ref().and_then(|m| m.grants.clone())),
        ));
    }
    let admin = AdminSide::start(
        Some(catalog.clone()),
        Some(webhooks.clone()),
        broker.clone(),
        "api-up".to_owned(),
        nodes
            .first()
            .map(|keeper| admin::forget_with(Arc::clone(keeper))),
        playback,
    )
    .with_cache_purge(plan.cache_purge.clone(), &nodes);
    let edges_stop = CancellationToken::new();
    let mut node_urls = Vec::new();
    for (node, (_, addr)) in nodes.iter().zip(&plan.nodes) {
        let listener = bind(*addr, "broadcast").await?;
        let url = format!("http://{}", url_host(listener.local_addr()?));
        let id = node.id().clone();
        // Direct mode sends viewers to the node's own address.
        let edge = edge_config(
            &edge_trust,
            plan.node,
            broker.clone(),
            url.clone(),
            Some(url.clone()),
            &admin,
            node,
        );
        node_urls.push((id.clone(), format!("{url}/")));
        let stop = edges_stop.child_token();
        if let Some(moq) = &plan.moq {
            super::moq::start(&tasks, node, moq, node_urls.len() == 1, &stop)?;
        }
        let serving = Arc::clone(node);
        let alive = liveness.guard("broadcast", &stop);
        tasks.spawn(async move {
            alive.failpoint();
            if let Err(e) = broadcast::run_edge(serving, edge, listener, stop).await {
                tracing::error!(error = %e, "broadcast node stopped");
            }
            drop(alive);
        });
    }

    // Ingest: RTMP in, distribution out; its sessions recorded in the catalog.
    let sessions = Arc::new(SessionLog {
        catalog: catalog.clone(),
        webhooks: webhooks.clone(),
        node: plan.ingest_id.clone(),
        tasks: reports.clone(),
    });
    let rtmp = bind(plan.rtmp_listen, "RTMP").await?;
    let app = plan.settings.app.clone();
    // The WHIP HTTP port stays on loopback: only the load balancer in this process uses it.
    let whip = super::whip::bind_ports(&args.webrtc, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let deps = ingest::IngestDeps {
        authority: super::ingest::authority(&catalog, plan.on_publish.clone()),
        observer: Some(sessions),
        metrics: metrics.clone(),
        liveness: liveness.clone(),
    };
    let mut ingest = super::ingest::start(
        ingest::IngestSettings {
            provenance,
            ..plan.settings
        },
        rtmp,
        distribution(
            &plan.config,
            plan.ingest_id.clone(),
            signing,
            broker.clone(),
            edge_trust.token().clone(),
            lb_keys.presences.clone(),
        )
        .with_whip_url(whip.url.clone()),
        deps,
        shutdown.child_token(),
    )?;
    super::whip::start(
        &mut ingest,
        whip,
        plan.ingest_id.clone(),
        plan.config.ingest.webrtc().unwrap_or_default(),
        shutdown.child_token(),
    )?;
    let rtmp_addr = ingest.rtmp_addr();
    let srt_addr = start_srt(&mut ingest, plan.srt, shutdown.child_token()).await?;
    admin::spawn_ingest_companions(
        &reports,
        &catalog,
        &plan.ingest_id,
        &ingest,
        broker.clone(),
        metrics.clone(),
        &reports_stop,
    );

    // A stream key and an admin API key to print on the first start.
    let first_key = if catalog.list_streams().await?.is_empty() {
        let name = StreamName::new("main")?;
        let (_, key) = catalog.add_stream(&name).await?;
        Some((name, key))
    } else {
        None
    };
    let admin_key = if catalog.list_api_keys().await?.is_empty() {
        let (_, key) = catalog.add_api_key("admin", catalog::Scope::Admin).await?;
        Some(key)
    } else {
        None
    };

    // The load balancer, with its certificate (made on the first start).
    let (lb, lb_addrs) = super::lb::start(
        plan.balancer,
        lb_keys,
        broker.clone(),
        "lb-up".to_owned(),
        lb_metrics,
    )
    .await?;

    // Ready when every node is, and the load balancer routes to all of them (or after a
    // while, with a warning).
    let all_ready = async {
        for node in &nodes {
            node.wait_ready().await;
        }
        lb.pool().wait_eligible(nodes.len()).await;
    };
    if tokio::time::timeout(READY_WAIT, all_ready).await.is_err() {
        tracing::warn!("not every broadcast node reported ready in time; printing the URLs anyway");
    }

    let obs_url = format!("rtmp://{}/{app}", url_host(rtmp_addr));
    let mut out = String::new();
    out.push_str(&format!("obs-server {obs_url}\n"));
    out.push_str(&super::whip::ready_lines(&ingest));
    if let Some(addr) = srt_addr {
        out.push_str(&format!("srt-server srt://{}\n", url_host(addr)));
    }
    if let Some((name, key)) = &first_key {
        out.push_str(&format!("stream-key {name} {}\n", key.expose_secret()));
    }
    if let Some(key) = &admin_key {
        out.push_str(&format!("admin-key {}\n", key.expose_secret()));
    }
    // Without the login: the embedded broker's password stays in its file.
    out.push_str(&format!(
        "mqtt {}\n",
        BrokerAddress::new(broker.host(), broker.port())
    ));
    out.push_str(&lb_addrs.lines());
    for (id, url) in &node_urls {
        out.push_str(&format!("{id} {url}\n"));
    }
    if let (Some(moq), Some(_)) = (&plan.moq, &relay) {
        out.push_str(&format!("moq-relay {}\n", moq.viewers.url));
    }
    print_ready(&out);

    // The demo publisher.
    let demo_stop = Arc::new(AtomicBool::new(false));
    let demo = if plan.demo {
        let name = StreamName::new("demo")?;
        let key = match catalog.get_stream(&name).await? {
            Some(_) => catalog.rotate_key(&name).await?,
            None => catalog.add_stream(&name).await?.1,
        };
        let config = source::SourceConfig {
            output: format!("{obs_url}/{}", key.expose_secret()),
            ..source::SourceConfig::default()
        };
        let stop = Arc::clone(&demo_stop);
        Some(std::thread::spawn(move || {
            if let Err(e) = source::run(&config, &stop) {
                tracing::error!(error = %e, "the demo source stopped");
            }
        }))
    } else {
        None
    };

    // Until asked to stop, or until a listener task stopped unasked: then everything stops
    // and the process exits non-zero (docs/deployment.md, liveness).
    let dead = tokio::select! {
        () = shutdown.cancelled() => None,
        name = liveness.died() => Some(name),
        name = lb.liveness().died() => Some(name),
    };
    if let Some(name) = dead {
        tracing::error!(
            listener = name,
            "a listener stopped unasked; everything stops"
        );
        shutdown.cancel();
    }
    tracing::info!("shutting down");
    demo_stop.store(true, Ordering::Relaxed);
    if let Some(demo) = demo {
        let _ = tokio::task::spawn_blocking(move || demo.join()).await;
    }
    lb.stop().await;
    let served = ingest.served().await;
    if dead.is_none() {
        served?;
    }
    // The reporter and the end-request follower hold the registry: stopped first, so that
    // finishing it closes the events channel and the distribution ends at once.
    reports_stop.cancel();
    ingest.finish().await?;
    edges_stop.cancel();
    tasks.close();
    tasks.wait().await;
    reports.close();
    reports.wait().await;
    admin.finish().await;
    webhooks.close().await;
    catalog.close().await;
    match dead {
        Some(name) => Err(listener_died(name)),
        None => Ok(()),
    }
}

/// The ingest's and the load balancer's metrics of `up`, and the registry that exports
/// them (on the nodes' `/metrics`).
fn metrics() -> (
    IngestMetrics,
    loadbalancer::LbMetrics,
    Arc<prometheus_client::registry::Registry>,
) {
    let metrics = IngestMetrics::default();
    let lb = loadbalancer::LbMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    lb.register(&mut registry);
    (metrics, lb, Arc::new(registry))
}

//! `sealcast up`: the whole cluster in one process. The parts talk to each other exactly as
//! they do between machines — segments pushed over HTTP, signatures and presence over MQTT
//! (an embedded broker unless `--mqtt-url` names one) — so what runs here is what runs in a
//! cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api::Webhooks;
use broadcast::{EdgeConfig, Node};
use control::EmbeddedBroker;
use domain::broker::BrokerAddress;
use domain::{NodeId, StreamName};
use ingest::distribute::DistributeConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admin::{self, AdminSide, SessionLog};
use super::{
    bind, node_config, open_catalog, print_ready, shown, start_ingest, unix_now, up_metrics,
    url_host,
};
use crate::cli::UpArgs;

/// How long `up` waits for its nodes to report ready before it prints the URLs anyway.
const READY_WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn up(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = crate::config::load(args.config.as_deref())?;
    let catalog = open_catalog(&args.catalog).await?;
    let tasks = TaskTracker::new();
    let (metrics, lb_metrics, registry_for_nodes) = up_metrics();

    // Keys: made on the first start.
    let ingest_id = NodeId::new("ingest1")?;
    let keys = super::key_dir(None, &args.catalog);
    let made = {
        let (keys, id, algorithm) = (keys.clone(), ingest_id.clone(), args.algorithm.into());
        tokio::task::spawn_blocking(move || keys.init(algorithm, &[id], unix_now()))
            .await?
            .context("making the cluster's keys")?
    };
    for path in &made.written {
        tracing::info!(path = %shown(path).display(), "wrote key material");
    }
    let token = keys.push_token().context("reading the push token")?;
    // Revocations `keys revoke` kept: the embedded broker starts empty every time.
    let revocations = keys
        .revocations()
        .context("reading the key directory's revocations")?;
    let root = keys.root_public().context("reading the root public key")?;
    let presence_signer = super::presence_signer(&keys)?;
    let (signing_key, certificate) = keys
        .ingest(&ingest_id)
        .context("reading the ingest signing key")?;

    // The broker.
    let (broker, _embedded) = match &args.mqtt_url {
        Some(url) => (url.clone(), None),
        None => {
            let listen = args.mqtt_listen;
            anyhow::ensure!(
                listen.ip().is_loopback() || args.mqtt_allow_remote,
                "the embedded MQTT broker listens on loopback only ({listen} is not); give --mqtt-allow-remote to let other machines log in to it"
            );
            // Everything in this process logs in with the password made on the first
            // start; other processes need the password file.
            let password = keys
                .broker_password()
                .context("reading the embedded broker's password")?;
            let embedded = tokio::task::spawn_blocking(move || {
                EmbeddedBroker::start_with_login(listen, control::EMBEDDED_BROKER_USER, &password)
            })
            .await?
            .context("starting the embedded MQTT broker")?;
            (embedded.address(), Some(embedded))
        }
    };

    // Broadcast nodes. They stop after the ingest has handed them its last events. The
    // nodes of `up` share one disk: the first one keeps the recordings.
    let webhooks = Webhooks::new(catalog.clone(), args.catalog.webhook_destinations())
        .context("making the webhook client")?;
    let reports = TaskTracker::new();
    let reports_stop = CancellationToken::new();
    let mut nodes = Vec::new();
    for i in 0..args.broadcast {
        let id = NodeId::new(format!("broadcast{}", i + 1))?;
        let mut node = Node::new(id.clone(), node_config(&config))
            .with_metrics(Arc::clone(&registry_for_nodes));
        if i == 0 {
            node = node
                .with_recordings(args.catalog.data_dir.join("recordings"))
                .context("preparing the recordings directory")?
                .with_recording_observer(admin::recording_observer(
                    catalog.clone(),
                    webhooks.clone(),
                    id.clone(),
                    tokio::runtime::Handle::current(),
                ));
            if let Some(keep) = args.recording_retention.0 {
                node = node.with_recording_retention(keep);
            }
        } else {
            // The others serve the same recordings from the shared disk.
            node = node.with_recording_library(args.catalog.data_dir.join("recordings"));
        }
        nodes.push(Arc::new(node));
    }
    let forget: api::ForgetRecording = {
        let keeper = Arc::clone(&nodes[0]);
        admin::forget_with(keeper)
    };
    let admin = AdminSide::start(
        Some(catalog.clone()),
        Some(webhooks.clone()),
        broker.clone(),
        "api-up".to_owned(),
        Some(forget),
    );
    let edges_stop = CancellationToken::new();
    let mut node_urls = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut addr = args.broadcast_listen;
        if addr.port() != 0 {
            let offset = u16::try_from(i).context("too many broadcast nodes")?;
            addr.set_port(
                addr.port()
                    .checked_add(offset)
                    .context("broadcast port out of range")?,
            );
        }
        let listener = bind(addr, "broadcast").await?;
        let url = format!("http://{}", url_host(listener.local_addr()?));
        let id = node.id().clone();
        let mut edge = EdgeConfig::new(
            node_config(&config),
            root.clone(),
            token.clone(),
            Arc::clone(&presence_signer),
            broker.clone(),
            url.clone(),
        );
        // Direct mode sends viewers to the node's own address.
        edge.direct_url = Some(url.clone());
        edge.revocations = revocations.clone();
        edge.extra_routes = Some(admin.router());
        edge.load_reports = Some(admin::broadcast_reports(Arc::clone(node)));
        node_urls.push((id.clone(), format!("{url}/")));
        let stop = edges_stop.child_token();
        let serving = Arc::clone(node);
        tasks.spawn(async move {
            if let Err(e) = broadcast::run_edge(serving, edge, listener, stop).await {
                tracing::error!(error = %e, "broadcast node stopped");
            }
        });
    }

    // Ingest: RTMP in, distribution out; its sessions recorded in the catalog.
    let sessions = Arc::new(SessionLog {
        catalog: catalog.clone(),
        webhooks: webhooks.clone(),
        node: ingest_id.clone(),
        tasks: reports.clone(),
    });
    let rtmp = bind(args.rtmp_listen, "RTMP").await?;
    let mut ingest = start_ingest(
        &config,
        &catalog,
        rtmp,
        DistributeConfig::new(
            ingest_id.clone(),
            Arc::new(signing_key),
            certificate,
            broker.clone(),
            token,
            certs::signing::PresenceVerifier::new(root.clone()),
            config.ladder.window + 2,
        ),
        metrics.clone(),
        Some(sessions),
        shutdown.child_token(),
    )?;
    let rtmp_addr = ingest.rtmp_addr();
    admin::spawn_ingest_companions(
        &reports,
        &catalog,
        &ingest_id,
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
    let certificate = super::lb::certificate_files(&args.tls, args.broadcast).await?;
    let (lb, lb_addrs) = super::lb::start(super::lb::Start {
        broker: broker.clone(),
        client_id: "lb-up".to_owned(),
        presences: certs::signing::PresenceVerifier::new(root.clone()),
        certificate,
        cookies: super::lb::cookies(&keys)?,
        balance: args.balance.clone(),
        access_log: args.access_log,
        https: args.https_listen,
        http: args.http_listen,
        metrics: lb_metrics,
    })?;

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

    let obs_url = format!("rtmp://{}/{}", url_host(rtmp_addr), config.ingest.app);
    let mut out = String::new();
    out.push_str(&format!("obs-server {obs_url}\n"));
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
    print_ready(&out);

    // The demo publisher.
    let demo_stop = Arc::new(AtomicBool::new(false));
    let demo = if args.demo {
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

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    demo_stop.store(true, Ordering::Relaxed);
    if let Some(demo) = demo {
        let _ = tokio::task::spawn_blocking(move || demo.join()).await;
    }
    lb.stop().await;
    ingest.served().await?;
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
    Ok(())
}

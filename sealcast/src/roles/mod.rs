//! Wiring of the roles: which parts run, on which listeners, connected how.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use broadcast::{Node, NodeConfig};
use catalog::Catalog;
use domain::{LiveEvent, NodeId, StreamName};
use ingest::{IngestMetrics, IngestSettings, Registry};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{CatalogArgs, IngestArgs, UpArgs};
use crate::config::Config;

/// Opens the catalog named by the arguments (creating the data directory if needed).
pub(crate) async fn open_catalog(args: &CatalogArgs) -> anyhow::Result<Catalog> {
    let location = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir).with_context(|| {
                format!("creating the data directory {}", args.data_dir.display())
            })?;
            args.data_dir.join("catalog.db").display().to_string()
        }
    };
    Catalog::open(&location)
        .await
        .context("opening the catalog")
}

fn node_config(config: &Config) -> NodeConfig {
    NodeConfig {
        window: config.ladder.window,
        segment_target: config.ladder.segment_target,
    }
}

fn ingest_settings(config: &Config) -> anyhow::Result<IngestSettings> {
    Ok(IngestSettings {
        app: config.ingest.app.clone(),
        ladder: Arc::new(config.ladder.clone()),
        encoder_threads: config.ingest.encoder_threads,
        end_grace: config.ingest.end_grace()?,
    })
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

/// The ingest's metrics and the registry that exports them (on the nodes' `/metrics`).
fn ingest_metrics() -> (IngestMetrics, Arc<prometheus_client::registry::Registry>) {
    let metrics = IngestMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    (metrics, Arc::new(registry))
}

/// Hands every live event to every node, in order.
fn fan_out(tasks: &TaskTracker, mut events: mpsc::Receiver<LiveEvent>, nodes: Vec<Arc<Node>>) {
    tasks.spawn(async move {
        while let Some(event) = events.recv().await {
            for node in &nodes {
                if let Err(e) = node.apply(event.clone()) {
                    tracing::warn!(error = %e, "a broadcast node refused an event");
                }
            }
        }
    });
}

fn url_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => format!("127.0.0.1:{}", addr.port()),
            SocketAddr::V6(_) => format!("[::1]:{}", addr.port()),
        }
    } else {
        addr.to_string()
    }
}

/// `sealcast up`: everything in one process.
pub(crate) async fn up(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let catalog = open_catalog(&args.catalog).await?;
    let tasks = TaskTracker::new();
    let (metrics, registry_for_nodes) = ingest_metrics();

    // Broadcast nodes.
    let mut nodes = Vec::new();
    let mut node_urls = Vec::new();
    for i in 0..args.broadcast {
        let mut addr = args.broadcast_listen;
        if addr.port() != 0 {
            addr.set_port(
                addr.port()
                    .checked_add(i)
                    .context("broadcast port out of range")?,
            );
        }
        let listener = bind(addr, "broadcast").await?;
        let local = listener.local_addr()?;
        let id = NodeId::new(format!("broadcast{}", i + 1))?;
        let node = Arc::new(
            Node::new(id.clone(), node_config(&config))
                .with_metrics(Arc::clone(&registry_for_nodes)),
        );
        nodes.push(Arc::clone(&node));
        node_urls.push((id, format!("http://{}/", url_host(local))));
        let token = shutdown.child_token();
        tasks.spawn(async move {
            if let Err(e) = broadcast::serve(listener, node, token).await {
                tracing::error!(error = %e, "broadcast node stopped");
            }
        });
    }

    // Ingest.
    let (events_tx, events_rx) = mpsc::channel(1024);
    fan_out(&tasks, events_rx, nodes);
    let registry = Registry::new(
        ingest_settings(&config)?,
        catalog.clone(),
        events_tx,
        metrics,
    );
    let rtmp = bind(args.rtmp_listen, "RTMP").await?;
    let rtmp_addr = rtmp.local_addr()?;
    let ingest_token = shutdown.child_token();
    let ingest_task = {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move { ingest::rtmp::serve(rtmp, registry, ingest_token).await })
    };

    // A stream key to print on the first start.
    let first_key = if catalog.list_streams().await?.is_empty() {
        let name = StreamName::new("main")?;
        let (_, key) = catalog.add_stream(&name).await?;
        Some((name, key))
    } else {
        None
    };

    let obs_url = format!("rtmp://{}/{}", url_host(rtmp_addr), config.ingest.app);
    let mut out = String::new();
    out.push_str(&format!("obs-server {obs_url}\n"));
    if let Some((name, key)) = &first_key {
        out.push_str(&format!("stream-key {name} {}\n", key.expose_secret()));
    }
    out.push_str(&format!("player {}\n", node_urls[0].1));
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
    ingest_task.await??;
    registry.close().await;
    drop(registry);
    tasks.close();
    tasks.wait().await;
    catalog.close().await;
    Ok(())
}

/// `sealcast ingest`: RTMP in, and (until edges take over) its own HLS output.
pub(crate) async fn ingest(args: IngestArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let catalog = open_catalog(&args.catalog).await?;
    let tasks = TaskTracker::new();
    let node = Arc::new(Node::new(
        NodeId::new(args.node_id.clone())?,
        node_config(&config),
    ));
    let http = bind(args.http_listen, "HTTP").await?;
    let http_addr = http.local_addr()?;
    {
        let node = Arc::clone(&node);
        let token = shutdown.child_token();
        tasks.spawn(async move {
            if let Err(e) = broadcast::serve(http, node, token).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
    }
    let (events_tx, events_rx) = mpsc::channel(1024);
    fan_out(&tasks, events_rx, vec![node]);
    let registry = Registry::new(
        ingest_settings(&config)?,
        catalog.clone(),
        events_tx,
        IngestMetrics::default(),
    );
    let rtmp = bind(args.rtmp_listen, "RTMP").await?;
    let rtmp_addr = rtmp.local_addr()?;
    print_ready(&format!(
        "obs-server rtmp://{}/{}\nplayer http://{}/\n",
        url_host(rtmp_addr),
        config.ingest.app,
        url_host(http_addr)
    ));
    ingest::rtmp::serve(rtmp, Arc::clone(&registry), shutdown.child_token()).await?;
    registry.close().await;
    drop(registry);
    tasks.close();
    tasks.wait().await;
    catalog.close().await;
    Ok(())
}

/// `sealcast ladder`: a file through the same pipeline.
pub(crate) fn ladder(input: &Path, output: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let started = std::time::Instant::now();
    let report = ingest::file::transcode_file(
        input,
        output,
        Arc::new(config.ladder),
        config.ingest.encoder_threads,
    )?;
    let mut names: Vec<_> = report.segments.keys().cloned().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let segs = report.segments[&name];
        let bytes = report.bytes.get(&name).copied().unwrap_or(0);
        let secs = report.seconds.get(&name).copied().unwrap_or(0.0);
        let kbps = if secs > 0.0 {
            bytes as f64 * 8.0 / secs / 1000.0
        } else {
            0.0
        };
        out.push_str(&format!(
            "{name} segments={segs} seconds={secs:.3} kbps={kbps:.0}\n"
        ));
    }
    out.push_str(&format!(
        "wall_seconds={:.3}\n",
        started.elapsed().as_secs_f64()
    ));
    print_ready(&out);
    Ok(())
}

/// Prints what scripts read from stdout, flushed at once.
#[allow(clippy::print_stdout)] // stdout is this command's interface
pub(crate) fn print_ready(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

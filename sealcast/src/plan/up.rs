//! The plan of `sealcast up`: the whole cluster in one process. Its keys are made on the
//! first start, so what depends on them ([`super::EdgeTrust`], [`super::BalancerKeys`],
//! the ingest's signing key) is derived by the same functions once they exist.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use broadcast::NodeConfig;
use certs::KeyDir;
use domain::broker::BrokerAddress;
use domain::wire::SignatureAlgorithm;
use domain::NodeId;
use ingest::IngestSettings;

use super::broadcast::node_config;
use super::inputs::{self, CatalogPlan};
use super::lb::Balancer;
use super::problem::Problems;
use crate::cli::UpArgs;
use crate::config::Config;

/// The ingest node of `up`.
const INGEST_ID: &str = "ingest1";

/// What `sealcast up` starts with.
pub(crate) struct UpPlan {
    pub(crate) config: Config,
    pub(crate) catalog: CatalogPlan,
    /// `keys` in the data directory, made on the first start.
    pub(crate) keys: KeyDir,
    /// Of the keys made on the first start.
    pub(crate) algorithm: SignatureAlgorithm,
    pub(crate) broker: Broker,
    pub(crate) ingest_id: NodeId,
    pub(crate) settings: IngestSettings,
    pub(crate) rtmp_listen: SocketAddr,
    pub(crate) srt: super::ingest::SrtPlan,
    pub(crate) node: NodeConfig,
    /// Every broadcast node and where it listens; the first one records.
    pub(crate) nodes: Vec<(NodeId, SocketAddr)>,
    /// Where the first node records and the others serve recordings from.
    pub(crate) recordings: PathBuf,
    pub(crate) retention: Option<Duration>,
    /// How far back live streams stay seekable (zero: not at all).
    pub(crate) dvr_window: Duration,
    /// Where the first node's recordings are kept, and every node serves them from.
    pub(crate) archive: super::ArchivePlan,
    pub(crate) balancer: Balancer,
    /// Asked before each publish starts.
    pub(crate) on_publish: Option<api::Hook>,
    /// Asked at each playback token's first use on a node.
    pub(crate) on_play: Option<api::Hook>,
    /// The caches the API tells to drop what turned private or was deleted.
    pub(crate) cache_purge: Option<api::CachePurge>,
    /// The MoQ relay every node publishes to, if any.
    pub(crate) moq: Option<super::moq::MoqPlan>,
    /// A relay `up` runs itself (`--moq-run-relay`); its MoQ plan is made once it runs.
    pub(crate) run_relay: Option<super::moq::RunRelayPlan>,
    /// Publish a test pattern once up.
    pub(crate) demo: bool,
}

/// The MQTT broker of `up`.
pub(crate) enum Broker {
    /// `--mqtt-url`: an external one.
    External(BrokerAddress),
    /// The embedded broker, on this address.
    Embedded(SocketAddr),
}

impl UpPlan {
    /// The plan `args` (and the files they name) make, or every problem with it.
    pub(crate) fn derive(args: &UpArgs) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let catalog = inputs::catalog(&args.catalog, &mut problems);
        let config = inputs::config(args.config.as_deref(), &mut problems);
        let tls = inputs::tls(&args.tls, args.broadcast, &mut problems);
        let acme = inputs::acme(args.balance.acme_dir.as_deref(), &mut problems);
        let nodes = node_listeners(args, &mut problems);
        let mut listeners = vec![
            ("SEALCAST_RTMP_LISTEN", args.rtmp_listen),
            ("SEALCAST_BROADCAST_LISTEN", args.broadcast_listen),
            ("SEALCAST_LB_HTTPS_LISTEN", args.https_listen),
            ("SEALCAST_LB_HTTP_LISTEN", args.http_listen),
            ("SEALCAST_MQTT_LISTEN", args.mqtt_listen),
        ];
        listeners.extend(
            args.balance
                .origin_listen
                .map(|a| ("SEALCAST_LB_ORIGIN_LISTEN", a)),
        );
        // The other nodes listen on the ports after the first one's.
        listeners.extend(
            nodes
                .iter()
                .flatten()
                .skip(1)
                .map(|(_, addr)| ("SEALCAST_BROADCAST_LISTEN", *addr)),
        );
        inputs::distinct_listeners(&listeners, &mut problems);
        let broker = broker(args, &mut problems);
        let settings = config
            .as_ref()
            .and_then(|c| super::ingest::settings(c, &mut problems));
        let srt = config
            .as_ref()
            .and_then(|c| super::ingest::srt(&args.srt, c, &mut problems));
        let ingest_id = problems.take("up", NodeId::new(INGEST_ID), |e| e.to_string());
        let limits = inputs::client_limits(&args.balance, &mut problems);
        let trusted_caches = inputs::trusted_caches(&args.balance, &mut problems);
        let on_publish = inputs::publish_hook(&args.on_publish, &args.catalog, &mut problems);
        let on_play = inputs::play_hook(&args.on_play, &args.catalog, &mut problems);
        let cache_purge = inputs::cache_purge(&args.cache_purge, &mut problems);
        // One node records in `up`: it need not wait for any other to archive first.
        let archive = super::archive::archive(&args.archive, &args.catalog.data_dir, &mut problems)
            .map(|mut plan| {
                plan.settings.writer_window = Duration::ZERO;
                plan
            });
        let run_relay = super::moq::run_relay(
            args.moq_run_relay.as_deref(),
            args.moq_relay_listen,
            &args.moq,
            &args.catalog.data_dir,
            &mut problems,
        );
        let moq = super::moq::moq(&args.moq, &mut problems);
        let plan = (|| {
            acme?;
            let config = config?;
            Some(UpPlan {
                catalog: catalog?,
                keys: inputs::key_dir(None, &args.catalog),
                algorithm: args.algorithm.into(),
                broker: broker?,
                ingest_id: ingest_id?,
                settings: settings?,
                rtmp_listen: args.rtmp_listen,
                srt: srt?,
                node: node_config(&config),
                nodes: nodes?,
                recordings: args.catalog.data_dir.join("recordings"),
                retention: args.recording_retention.0,
                dvr_window: args.dvr_window.0,
                archive: archive?,
                balancer: Balancer {
                    tls: tls?,
                    balance: args.balance.clone(),
                    access_log: args.access_log,
                    https: args.https_listen,
                    http: args.http_listen,
                    limits: limits?,
                    trusted_caches,
                    quic: None,
                },
                on_publish: on_publish?,
                on_play: on_play?,
                cache_purge: cache_purge?,
                moq: moq?,
                run_relay: run_relay?,
                demo: args.demo,
                config,
            })
        })();
        problems.or(plan)
    }
}

/// `broadcast1..N` and their addresses: the first on `--broadcast-listen`, each next one
/// on the next port (all on free ports with port 0).
fn node_listeners(args: &UpArgs, problems: &mut Problems) -> Option<Vec<(NodeId, SocketAddr)>> {
    let mut nodes = Vec::with_capacity(usize::from(args.broadcast));
    for i in 0..args.broadcast {
        let mut addr = args.broadcast_listen;
        if addr.port() != 0 {
            let Some(port) = addr.port().checked_add(i) else {
                problems.add(
                    "SEALCAST_BROADCAST_LISTEN",
                    format!(
                        "{} broadcast nodes from port {} run past port 65535",
                        args.broadcast,
                        addr.port()
                    ),
                );
                return None;
            };
            addr.set_port(port);
        }
        let id = problems.take(
            "--broadcast",
            NodeId::new(format!("broadcast{}", i + 1)),
            |e| e.to_string(),
        )?;
        nodes.push((id, addr));
    }
    Some(nodes)
}

/// The broker: `--mqtt-url`, else the embedded one, which listens on loopback unless
/// other machines are let in.
fn broker(args: &UpArgs, problems: &mut Problems) -> Option<Broker> {
    if let Some(url) = &args.mqtt_url {
        return Some(Broker::External(url.clone()));
    }
    let listen = args.mqtt_listen;
    if !listen.ip().is_loopback() && !args.mqtt_allow_remote {
        problems.add(
            "SEALCAST_MQTT_LISTEN",
            format!(
                "the embedded MQTT broker listens on loopback only ({listen} is not); give --mqtt-allow-remote to let other machines log in to it"
            ),
        );
        return None;
    }
    Some(Broker::Embedded(listen))
}

//! The plan of `sealcast broadcast`, and what `up` derives the same way for its nodes:
//! the window shape, and what every edge of a cluster trusts and presents.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use broadcast::{EdgeConfig, NodeConfig};
use certs::signing::{PresenceSigner, RootPublicKey};
use certs::KeyDir;
use domain::broker::BrokerAddress;
use domain::push_protocol::PushToken;
use domain::NodeId;

use super::inputs::{self, CatalogPlan};
use super::problem::Problems;
use crate::cli::BroadcastArgs;
use crate::config::Config;

/// What `sealcast broadcast` starts with.
pub(crate) struct BroadcastPlan {
    /// Only with `--database-url`: without one the node opens no catalog, and its API
    /// answers 503 on the catalog routes.
    pub(crate) catalog: Option<CatalogPlan>,
    pub(crate) node_id: NodeId,
    pub(crate) node: NodeConfig,
    pub(crate) edge: EdgeTrust,
    pub(crate) broker: BrokerAddress,
    pub(crate) listen: SocketAddr,
    /// The URL ingests push to and the load balancer routes to; `None`: made from the
    /// bound address.
    pub(crate) public_url: Option<String>,
    pub(crate) direct_url: Option<String>,
    pub(crate) recordings: PathBuf,
    pub(crate) retention: Option<Duration>,
    /// How far back live streams stay seekable (zero: not at all).
    pub(crate) dvr_window: Duration,
    /// Where recordings are kept once per cluster, and served from.
    pub(crate) archive: super::ArchivePlan,
    pub(crate) ready_timeout: Duration,
    /// How long a ready node drains before it stops.
    pub(crate) drain: Duration,
    /// Who may read private streams: the playback key and the `on_play` hook.
    pub(crate) access: broadcast::AccessConfig,
    /// The playback key, for the API's token route.
    pub(crate) playback: Option<certs::tokens::PlaybackKey>,
    /// The caches the API tells to drop what turned private or was deleted.
    pub(crate) cache_purge: Option<api::CachePurge>,
    /// The MoQ relay the node publishes to, if any.
    pub(crate) moq: Option<super::moq::MoqPlan>,
}

impl BroadcastPlan {
    /// The plan `args` (and the files they name) make, or every problem with it.
    pub(crate) fn derive(args: &BroadcastArgs) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let catalog = match &args.catalog.database_url {
            Some(_) => inputs::catalog(&args.catalog, &mut problems).map(Some),
            None => Some(None),
        };
        let config = inputs::config(args.config.as_deref(), &mut problems);
        let node_id = inputs::node_id_or_host(args.node_id.as_deref(), "broadcast", &mut problems);
        let keys = inputs::key_dir(args.trust.keys_dir.as_deref(), &args.catalog);
        let edge = EdgeTrust::derive(&keys, args.trust.push_token.as_deref(), &mut problems);
        let verifier = inputs::playback_verifier(&keys, &mut problems);
        let on_play = inputs::play_hook(&args.on_play, &args.catalog, &mut problems);
        let urls = [
            inputs::base_url(
                "SEALCAST_PUBLIC_URL",
                args.public_url.as_deref(),
                &mut problems,
            ),
            inputs::base_url(
                "SEALCAST_DIRECT_URL",
                args.direct_url.as_deref(),
                &mut problems,
            ),
        ];
        let recordings = match &args.recordings {
            Some(dir) => inputs::not_a_file(dir, "SEALCAST_RECORDINGS_DIR", &mut problems)
                .map(|()| dir.clone()),
            None => Some(args.catalog.data_dir.join("recordings")),
        };
        let cache_purge = inputs::cache_purge(&args.cache_purge, &mut problems);
        let archive = super::archive::archive(&args.archive, &args.catalog.data_dir, &mut problems);
        let moq = super::moq::moq(&args.moq, &mut problems);
        let plan = (|| {
            let [Some(()), Some(())] = urls else {
                return None;
            };
            Some(BroadcastPlan {
                catalog: catalog?,
                node_id: node_id?,
                node: node_config(&config?),
                edge: edge?,
                broker: args.broker.mqtt_url.clone(),
                listen: args.listen,
                public_url: args
                    .public_url
                    .as_deref()
                    .map(|url| url.trim_end_matches('/').to_owned()),
                direct_url: args.direct_url.clone(),
                recordings: recordings?,
                retention: args.recording_retention.0,
                dvr_window: args.dvr_window.0,
                archive: archive?,
                ready_timeout: Duration::from_secs(args.ready_timeout),
                drain: Duration::from_secs(args.drain),
                playback: verifier.as_ref()?.as_ref().map(|v| v.key().clone()),
                access: access_config(verifier?, on_play?),
                cache_purge: cache_purge?,
                moq: moq?,
            })
        })();
        problems.or(plan)
    }
}

/// How a node checks playback tokens: `verifier` (none: no token opens a private stream)
/// and the `on_play` hook.
pub(crate) fn access_config(
    verifier: Option<Arc<certs::tokens::TokenVerifier>>,
    on_play: Option<api::Hook>,
) -> broadcast::AccessConfig {
    let on_play = on_play.map(|hook| {
        let hook = Arc::new(hook);
        let ask: broadcast::PlayHook = Arc::new(move |request: broadcast::PlayRequest| {
            let hook = Arc::clone(&hook);
            Box::pin(async move {
                // A failure is told apart from an answer: the node never keeps it.
                match hook.try_ask(&request).await {
                    Ok(api::Verdict::Allowed) => broadcast::PlayVerdict::Allowed,
                    Ok(api::Verdict::Refused(_)) => broadcast::PlayVerdict::Refused,
                    Err(failure) => broadcast::PlayVerdict::Failed {
                        allowed: hook.failed(&failure).allows(),
                    },
                }
            })
        });
        ask
    });
    broadcast::AccessConfig {
        verifier,
        on_play,
        trusted_proxies: Vec::new(),
    }
}

/// The window shape every stream on a node shares, from the configuration's ladder.
pub(crate) fn node_config(config: &Config) -> NodeConfig {
    NodeConfig {
        window: config.ladder.window,
        segment_target: config.ladder.segment_target,
    }
}

/// What every broadcast node of a cluster trusts and presents: the root key, the push
/// token, the edge key that signs presences, and the revocations and provenance anchors
/// kept on disk.
pub(crate) struct EdgeTrust {
    root: RootPublicKey,
    token: PushToken,
    signer: Arc<PresenceSigner>,
    revocations: Vec<Vec<u8>>,
    provenance_anchors: Vec<certs::c2pa::ProvenanceAnchor>,
}

impl EdgeTrust {
    /// From the key directory; the push token `given`, else the directory's.
    pub(crate) fn derive(
        keys: &KeyDir,
        given_token: Option<&str>,
        problems: &mut Problems,
    ) -> Option<Self> {
        let token = inputs::push_token(given_token, keys, problems);
        let root =
            inputs::root_public(keys, "ingest certificates are checked against it", problems);
        let signer = inputs::presence_signer(keys, problems);
        let revocations = inputs::revocations(keys, problems);
        let provenance_anchors = inputs::provenance_anchors(keys, problems);
        Some(EdgeTrust {
            root: root?,
            token: token?,
            signer: signer?,
            revocations: revocations?,
            provenance_anchors: provenance_anchors?,
        })
    }

    /// The push token, which `up`'s ingest presents too.
    pub(crate) fn token(&self) -> &PushToken {
        &self.token
    }

    /// The configuration of an edge serving at `url` (and `direct_url`, for the load
    /// balancer's direct mode), meeting the cluster at `broker`.
    pub(crate) fn edge_config(
        &self,
        node: NodeConfig,
        broker: BrokerAddress,
        url: String,
        direct_url: Option<String>,
    ) -> EdgeConfig {
        let mut edge = EdgeConfig::new(
            node,
            self.root.clone(),
            self.token.clone(),
            Arc::clone(&self.signer),
            broker,
            url,
        );
        edge.direct_url = direct_url;
        edge.revocations = self.revocations.clone();
        edge.provenance_anchors = self.provenance_anchors.clone();
        edge
    }
}

//! How a broadcast node shapes its live windows ([`NodeConfig`]) and, as an edge, whom it
//! trusts and how much it holds ([`EdgeConfig`]).

use std::sync::Arc;
use std::time::Duration;

use domain::load::LoadReport;

/// Settings every stream on a node shares. They must match what ingest produces
/// (`domain::Ladder::window` and `domain::Ladder::segment_target`), so that every node lists
/// the same window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// How many segments a live media playlist lists. Two more are kept after they slide
    /// out, for players that read the playlist just before it moved on.
    pub window: usize,
    /// The segment duration ingest aims for; the starting EXT-X-TARGETDURATION, which only
    /// grows if a longer segment arrives.
    pub segment_target: Duration,
}

impl Default for NodeConfig {
    /// The brief's defaults: 2 s segments, six of them in a playlist.
    fn default() -> Self {
        NodeConfig {
            window: 6,
            segment_target: Duration::from_secs(2),
        }
    }
}

/// Everything [`run_edge`](crate::run_edge) needs beyond the node itself: whom to trust,
/// who may push, how much to hold, where the broker is and how to announce this node.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The window shape (also given to [`Node::new`](crate::Node::new)); its
    /// `segment_target` is the default hold time and the duration of a gap of unknown
    /// length.
    pub node: NodeConfig,
    /// The cluster root every edge pins: ingest keys are trusted only through certificates
    /// it signed.
    pub trust_root: certs::signing::RootPublicKey,
    /// What ingest presents on every push (`authorization: Bearer …`). Never logged.
    pub push_token: domain::push_protocol::PushToken,
    /// Signs this node's presence with the cluster's edge key, so that the load balancer
    /// and the ingests believe it.
    pub presence_signer: Arc<certs::signing::PresenceSigner>,
    /// Largest segment body accepted (413 beyond); bounds what one push can make us buffer.
    pub max_segment_bytes: usize,
    /// How long pushed bytes wait for their statement before they become a gap.
    pub hold: Duration,
    /// Cap on bytes held unverified or waiting for order, over all streams; beyond it the
    /// oldest held segment is dropped (`overflow`).
    pub max_held_bytes: usize,
    /// The MQTT broker.
    pub broker: domain::broker::BrokerAddress,
    /// Base URL of this node (`http://10.0.0.5:8080`) as announced in presence: where
    /// ingest pushes and the load balancer routes viewers. Must be a plain `http(s)://`
    /// base URL without a path.
    pub public_url: String,
    /// This node's own public base URL (`https://broadcast1.streaming-cluster.test`), if it
    /// has one: announced in presence for the load balancer's direct mode.
    pub direct_url: Option<String>,
    /// Longest wait for the ingests' window before the node reports ready anyway (with a
    /// warning).
    pub ready_timeout: Duration,
    /// More routes served beside the node's own (the admin API), under the same layers
    /// (node header, CORS, request metrics). Their paths must not overlap the node's.
    pub extra_routes: Option<axum::Router>,
    /// This node's load report, published every [`REPORT_EVERY`](domain::load::REPORT_EVERY)
    /// on the node's own MQTT connection (the one carrying its presence), so that the
    /// broker can let a node write only the topics of its own client id.
    pub load_reports: Option<LoadSampler>,
    /// The HTTP server's connection cap and timeouts.
    pub http_limits: HttpLimits,
    /// How long a ready node goes on serving once told to shut down, before it stops
    /// taking connections: it says `draining` (presence, `/readyz`) at once, so that load
    /// balancers send no new viewers and move its viewers off it on their next request,
    /// and it is still fed meanwhile. Zero: no drain (a node that is not ready never
    /// drains).
    pub drain: Duration,
    /// Revocations (encoded) the node applies before anything arrives over MQTT: those
    /// kept in the key directory, so a revoked key stays revoked when the broker forgot
    /// its retained messages. Each is checked against the root; others are skipped.
    pub revocations: Vec<Vec<u8>>,
    /// The root's anchors of other C2PA signers' CAs (`keys/provenance/anchors.pem`),
    /// served as `/trust/v1/provenance-anchors` for viewers, who check each against the
    /// root; none by default.
    pub provenance_anchors: Vec<certs::c2pa::ProvenanceAnchor>,
}

/// Makes this node's [`LoadReport`] when it is due (see [`EdgeConfig::load_reports`]).
#[derive(Clone)]
pub struct LoadSampler(Arc<dyn Fn() -> LoadReport + Send + Sync>);

impl LoadSampler {
    /// A sampler calling `sample` for every report.
    pub fn new(sample: impl Fn() -> LoadReport + Send + Sync + 'static) -> Self {
        LoadSampler(Arc::new(sample))
    }

    /// Makes a report now.
    pub fn sample(&self) -> LoadReport {
        (self.0)()
    }
}

impl std::fmt::Debug for LoadSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadSampler")
    }
}

impl EdgeConfig {
    /// Largest segment accepted by default: 16 MiB, far above 2 s of any rendition at
    /// any ladder bitrate.
    pub const DEFAULT_MAX_SEGMENT_BYTES: usize = 16 * 1024 * 1024;
    /// Default cap on held bytes: 256 MiB.
    pub const DEFAULT_MAX_HELD_BYTES: usize = 256 * 1024 * 1024;
    /// Default readiness timeout: 10 s.
    pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

    /// A configuration with the defaults for the rest: 16 MiB segments, a hold of one
    /// target duration, 256 MiB held at most, ready after at most 10 s, no drain.
    pub fn new(
        node: NodeConfig,
        trust_root: certs::signing::RootPublicKey,
        push_token: domain::push_protocol::PushToken,
        presence_signer: Arc<certs::signing::PresenceSigner>,
        broker: domain::broker::BrokerAddress,
        public_url: impl Into<String>,
    ) -> Self {
        EdgeConfig {
            node,
            trust_root,
            push_token,
            presence_signer,
            max_segment_bytes: Self::DEFAULT_MAX_SEGMENT_BYTES,
            hold: node.segment_target,
            max_held_bytes: Self::DEFAULT_MAX_HELD_BYTES,
            broker,
            public_url: public_url.into(),
            direct_url: None,
            ready_timeout: Self::DEFAULT_READY_TIMEOUT,
            http_limits: crate::HttpLimits::default(),
            drain: Duration::ZERO,
            extra_routes: None,
            load_reports: None,
            revocations: Vec::new(),
            provenance_anchors: Vec::new(),
        }
    }
}

/// The limits of a node's HTTP server (`http`). Configuration, so it lives here with the
/// rest of an edge's: the server reads it and no configuration type reads the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// How long a request header may take to arrive.
    pub header_read_timeout: Duration,
    /// How long a connection may go without reading or writing a byte.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Where viewers reach the streams over MoQ: served to the player at `/moq/v1/endpoint`
/// ([`Node::with_moq_endpoint`](crate::Node::with_moq_endpoint)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MoqEndpoint {
    /// The relay (or the front door before a relay tier) viewers dial:
    /// `https://HOST:PORT/PATH`.
    pub url: url::Url,
    /// SHA-256 (hex) of the relay's certificate, for WebTransport's
    /// `serverCertificateHashes` when it is self-signed; empty when it chains to a root
    /// browsers trust.
    pub certificate_hashes: Vec<String>,
    /// Set when the relay takes playback tokens (it asks a node's auth endpoint,
    /// [`run_moq_auth`](crate::run_moq_auth)): private streams are the broadcasts
    /// `{private_prefix}{stream}` ([`PRIVATE_PREFIX`](crate::PRIVATE_PREFIX)), read with
    /// the viewer's token in the dial URL's query (`?token=…`). Absent: the relay carries
    /// public streams only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_prefix: Option<String>,
}

impl MoqEndpoint {
    /// The origin viewers' pages may connect to (`https://HOST:PORT`), for the pages'
    /// `connect-src`.
    pub(crate) fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

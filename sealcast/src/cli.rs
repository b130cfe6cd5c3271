//! The command line: one subcommand per role, parsed with clap derive.
//!
//! Long because every flag and variable of every role is declared here once, with clap
//! derive; `check` reads the same definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use domain::broker::BrokerAddress;

/// sealcast: an HLS origin/edge streaming cluster.
#[derive(Debug, Parser)]
#[command(name = "sealcast", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run everything on one machine: MQTT broker, ingest, broadcast nodes, catalog.
    Up(Box<UpArgs>),
    /// Run an ingest node: RTMP in, signed segments out to every broadcast node.
    Ingest(Box<IngestArgs>),
    /// Run a broadcast (edge) node: takes pushed segments, publishes the verified ones.
    Broadcast(BroadcastArgs),
    /// Run the load balancer: HTTPS in front of the broadcast nodes, sticky sessions.
    Lb(LbArgs),
    /// Make the local CA and the HTTPS server certificate (renewing what is stale).
    Certs(CertsArgs),
    /// Make or manage the cluster's signing keys, certificates and push token.
    Keys(KeysArgs),
    /// Publish a test pattern (bars, 1 kHz tone, wall clock burnt in) like OBS would.
    Source(SourceArgs),
    /// Manage streams and their keys in the catalog.
    Streams(StreamsArgs),
    /// Manage the admin API's keys (`x-api-key`).
    ApiKeys(ApiKeysArgs),
    /// Mint playback tokens for private streams.
    Tokens(TokensArgs),
    /// Transcode an FLV file into the HLS ladder on disk, as fast as possible.
    Ladder(LadderArgs),
    /// Check what viewers get, as the player does: follow a master playlist and verify
    /// every rendition's init segments, segments and parts against the root key.
    Verify(crate::verify::VerifyArgs),
    /// Run one moq-relay of a relay tier with its auth endpoint: publishing with a node's
    /// credential, reading private streams with a node's grant, the tier's relays with
    /// its cluster credential, anyone reading public streams.
    MoqGate(MoqGateArgs),
}

/// `--check-config`, which every long-running role takes. `main` acts on it before the
/// command line is parsed (see `check`); the field is here for `--help`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CheckArgs {
    /// Check the configuration (command line, SEALCAST_* variables, configuration file, key
    /// and certificate files) and exit without starting: every problem is reported at once,
    /// with the variable's name; exit status 2 if there is one.
    #[arg(long)]
    pub(crate) check_config: bool,
}

/// Where the catalog lives.
#[derive(Debug, Clone, Args)]
pub(crate) struct CatalogArgs {
    /// Data directory (the SQLite catalog lives here).
    #[arg(long, global = true, env = "SEALCAST_DATA_DIR", default_value = "data")]
    pub(crate) data_dir: PathBuf,
    /// A database URL (`postgres://…` or `sqlite://…`) instead of the data directory's SQLite file.
    #[arg(
        long,
        global = true,
        env = "SEALCAST_DATABASE_URL",
        hide_env_values = true
    )]
    pub(crate) database_url: Option<String>,
    /// Deliver the webhooks registered through the admin API to loopback, private and
    /// link-local addresses too (a receiver on your own network). Off by default: they
    /// reach public addresses only. The on_publish and on_play hooks have their own
    /// switch, --allow-private-hooks.
    #[arg(long, global = true, env = "SEALCAST_ALLOW_PRIVATE_WEBHOOKS")]
    pub(crate) allow_private_webhooks: bool,
    /// Let the on_publish and on_play hooks (given here, on the command line) point to
    /// loopback, private and link-local addresses (your own auth service). Off by default.
    /// It opens only these hooks: webhooks registered through the admin API stay
    /// public-only unless --allow-private-webhooks.
    #[arg(long, global = true, env = "SEALCAST_ALLOW_PRIVATE_HOOKS")]
    pub(crate) allow_private_hooks: bool,
}

impl CatalogArgs {
    /// Where the webhooks registered through the admin API may be delivered.
    pub(crate) fn webhook_destinations(&self) -> api::Destinations {
        if self.allow_private_webhooks {
            api::Destinations::Any
        } else {
            api::Destinations::Public
        }
    }

    /// Where the operator's own hooks (on_publish, on_play) may point: a switch of their
    /// own, so that allowing one's auth service on the private network does not also let
    /// whoever holds an admin API key register webhooks into it.
    pub(crate) fn hook_destinations(&self) -> api::Destinations {
        if self.allow_private_hooks {
            api::Destinations::Any
        } else {
            api::Destinations::Public
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Configuration file (TOML); see `sealcast.example.toml`.
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// How many broadcast nodes to run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) broadcast: u16,
    /// Also publish a test pattern so something plays at once.
    #[arg(long)]
    pub(crate) demo: bool,
    /// RTMP listen address.
    #[arg(long, env = "SEALCAST_RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    pub(crate) rtmp_listen: SocketAddr,
    #[command(flatten)]
    pub(crate) srt: SrtArgs,
    #[command(flatten)]
    pub(crate) webrtc: WebRtcArgs,
    /// Listen address of the first broadcast node; node N listens on the next ports
    /// (port 0: every node gets a free port).
    #[arg(
        long,
        env = "SEALCAST_BROADCAST_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub(crate) broadcast_listen: SocketAddr,
    /// HTTPS listen address of the load balancer (the player URL).
    #[arg(long, env = "SEALCAST_LB_HTTPS_LISTEN", default_value = "0.0.0.0:8443")]
    pub(crate) https_listen: SocketAddr,
    /// Plain-HTTP listen address of the load balancer (redirects to HTTPS).
    #[arg(long, env = "SEALCAST_LB_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub(crate) http_listen: SocketAddr,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    #[command(flatten)]
    pub(crate) balance: BalanceArgs,
    /// Log a line per request through the load balancer.
    #[arg(long, env = "SEALCAST_LB_ACCESS_LOG")]
    pub(crate) access_log: bool,
    /// Listen address of the embedded MQTT broker (loopback; port 0: a free port). Clients
    /// log in as `sealcast` with the password in `KEYS/broker-password`.
    #[arg(long, env = "SEALCAST_MQTT_LISTEN", default_value = "127.0.0.1:1884")]
    pub(crate) mqtt_listen: SocketAddr,
    /// Let the embedded broker listen on an address other than loopback.
    #[arg(long, env = "SEALCAST_MQTT_ALLOW_REMOTE")]
    pub(crate) mqtt_allow_remote: bool,
    /// Use these MQTT brokers (`mqtt://[user:password@]host:port[,host:port...]`) instead of
    /// the embedded one. Its value (the password) is never shown in `--help`.
    #[arg(long, env = "SEALCAST_MQTT_URL", hide_env_values = true)]
    pub(crate) mqtt_url: Option<BrokerAddress>,
    /// Signature algorithm of the keys made on the first start.
    #[arg(long, value_enum, default_value_t = Algorithm::MlDsa65)]
    pub(crate) algorithm: Algorithm,
    /// How long finished recordings are kept (`7d`, `12h`; `0`: forever).
    #[arg(long, env = "SEALCAST_RECORDING_RETENTION", default_value = "7d")]
    pub(crate) recording_retention: Retention,
    /// How far back a viewer can seek in a live stream that is recorded (time-shift:
    /// `30m`, `2h`; at most `24h`; `0`: off).
    #[arg(long, env = "SEALCAST_DVR_WINDOW", default_value = "30m")]
    pub(crate) dvr_window: DvrWindow,
    #[command(flatten)]
    pub(crate) archive: ArchiveArgs,
    #[command(flatten)]
    pub(crate) on_publish: PublishHookArgs,
    #[command(flatten)]
    pub(crate) on_play: PlayHookArgs,
    #[command(flatten)]
    pub(crate) cache_purge: CachePurgeArgs,
    #[command(flatten)]
    pub(crate) moq: MoqArgs,
    /// Run a MoQ relay beside the nodes: this moq-relay binary (0.17; `cargo install
    /// moq-relay`), with a self-signed certificate browsers pin by its hash, asking the
    /// first node who may publish and read what (a private stream with the grant the node
    /// mints for its token). Instead of --moq-relay.
    #[arg(long = "moq-run-relay", env = "SEALCAST_MOQ_RUN_RELAY")]
    pub(crate) moq_run_relay: Option<PathBuf>,
    /// Where that relay listens: QUIC (UDP) and its HTTP side (TCP) on one port.
    #[arg(
        long = "moq-relay-listen",
        env = "SEALCAST_MOQ_RELAY_LISTEN",
        default_value = "0.0.0.0:4443"
    )]
    pub(crate) moq_relay_listen: SocketAddr,
}

/// Egress over Media over QUIC (issue 48): the relay a node publishes its streams to.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct MoqArgs {
    /// A MoQ relay (`https://relay:4443/`, moq-relay or any moq-lite relay) that every
    /// broadcast node publishes each public live stream to: a track per CMAF rendition, a
    /// group per segment, an object per part, with their signed statements beside them.
    /// Repeatable or comma-separated: the same broadcasts go to each (a relay tier's
    /// roots, so that no one relay's death takes a stream's route away), on one path.
    #[arg(
        long = "moq-relay",
        env = "SEALCAST_MOQ_RELAY_URL",
        value_delimiter = ','
    )]
    pub(crate) relays: Vec<String>,
    /// A PEM file of roots to trust for the relay's certificate instead of the system's
    /// (repeatable or comma-separated).
    #[arg(
        long = "moq-relay-ca",
        env = "SEALCAST_MOQ_RELAY_CA",
        value_delimiter = ','
    )]
    pub(crate) roots: Vec<PathBuf>,
    /// The SHA-256 fingerprint (hex) of the relay's certificate, trusted instead of a
    /// chain: a relay with a self-signed certificate (repeatable or comma-separated).
    #[arg(
        long = "moq-relay-fingerprint",
        env = "SEALCAST_MOQ_RELAY_FINGERPRINT",
        value_delimiter = ','
    )]
    pub(crate) fingerprints: Vec<String>,
    /// The MoQ URL viewers dial, when it is not the relay nodes publish to (a relay tier in
    /// front, a public name); the player learns it at `/moq/v1/endpoint`. With
    /// --moq-relay-fingerprint and no viewer URL, viewers are given the same fingerprints.
    #[arg(long = "moq-viewer-url", env = "SEALCAST_MOQ_VIEWER_URL")]
    pub(crate) viewer_url: Option<String>,
    /// The SHA-256 (hex) of the viewers' relay's self-signed certificate, for the browser's
    /// `serverCertificateHashes` (repeatable or comma-separated).
    #[arg(
        long = "moq-viewer-fingerprint",
        env = "SEALCAST_MOQ_VIEWER_FINGERPRINT",
        value_delimiter = ','
    )]
    pub(crate) viewer_fingerprints: Vec<String>,
    /// Serve moq-relay's auth server on this Unix socket (created mode 0600; run the
    /// relay with `--auth-url unix://PATH` as the same user): the relay then admits the
    /// node's publisher only with a fresh credential, anonymous viewers to public streams
    /// only, and a viewer whose playback token is in the dial URL (`?token=…`) to that
    /// private stream too. Without it, private streams are not published over MoQ.
    #[arg(long = "moq-auth-socket", env = "SEALCAST_MOQ_AUTH_SOCKET")]
    pub(crate) auth_socket: Option<PathBuf>,
    /// A relay tier's key (a file of 64 hex digits, mode 0600), shared with the relays'
    /// gates (`sealcast moq-gate`): the node publishes with credentials minted under it,
    /// private streams too, and hands a private stream's viewers a grant for their checked
    /// token (`/live/{stream}/moq-grant`) that the gates take.
    #[arg(long = "moq-key-file", env = "SEALCAST_MOQ_KEY_FILE")]
    pub(crate) key_file: Option<PathBuf>,
}

/// `sealcast moq-gate` (issue 48): a relay tier's auth endpoint, beside one moq-relay.
#[derive(Debug, Clone, Args)]
pub(crate) struct MoqGateArgs {
    /// The relay tier's key (the file the nodes' `--moq-key-file` names).
    #[arg(long = "moq-key-file", env = "SEALCAST_MOQ_KEY_FILE")]
    pub(crate) key_file: PathBuf,
    /// The Unix socket the relay asks (`--auth-url unix://PATH`), made mode 0600.
    #[arg(
        long,
        env = "SEALCAST_MOQ_GATE_SOCKET",
        default_value = "/tmp/moq-gate.sock"
    )]
    pub(crate) socket: PathBuf,
    /// The relay path broadcasts are under (the path of the nodes' `--moq-relay`).
    #[arg(long, env = "SEALCAST_MOQ_GATE_ROOT", default_value = "/")]
    pub(crate) root: String,
    /// The relay to run and answer for: its program and arguments, after `--`. The gate
    /// adds `--auth-url unix://SOCKET` and, when the relay dials others
    /// (`--cluster-connect`), `--cluster-token FILE` (a file beside the socket holding
    /// the tier's cluster credential), and exits when the relay does, with its status.
    #[arg(last = true, required = true, num_args = 1..)]
    pub(crate) relay: Vec<std::ffi::OsString>,
    #[command(flatten)]
    pub(crate) check: CheckArgs,
}

/// The shared caches in front that are told what may no longer be served from them
/// (issue 45): by the API (`broadcast`, `up`) and by `streams set --private` and `streams
/// remove`, which change the catalog themselves.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CachePurgeArgs {
    /// A shared cache in front (`http://varnish:6081`; repeatable or comma-separated) that
    /// is told to drop a stream's answers when it turns private or is removed, and a
    /// recording's when it is deleted (`BAN`, deploy/varnish/sealcast.vcl).
    #[arg(
        long = "cache-purge-url",
        env = "SEALCAST_CACHE_PURGE_URL",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) urls: Vec<String>,
}

/// The `on_publish` hook (issue 34): asked before each publish starts.
#[derive(Debug, Clone, Args)]
pub(crate) struct PublishHookArgs {
    /// A URL asked (JSON `POST` with the stream's name) before each publish starts: a 2xx
    /// allows it, anything else refuses it. It may carry your own secret; prefer the
    /// variable to the flag then. Only public addresses unless --allow-private-hooks.
    #[arg(
        long = "on-publish",
        visible_alias = "on-publish-url",
        env = "SEALCAST_ON_PUBLISH_URL",
        hide_env_values = true
    )]
    pub(crate) on_publish: Option<String>,
    /// How long the on_publish hook may take (`2s`, `500ms`).
    #[arg(long, env = "SEALCAST_ON_PUBLISH_TIMEOUT", default_value = "2s")]
    pub(crate) on_publish_timeout: HookTimeout,
    /// Allow the publish when the on_publish hook cannot be asked (default: refuse).
    #[arg(long, env = "SEALCAST_ON_PUBLISH_FAIL_OPEN")]
    pub(crate) on_publish_fail_open: bool,
}

/// The `on_play` hook (issue 34): asked at a playback token's first use on a node.
#[derive(Debug, Clone, Args)]
pub(crate) struct PlayHookArgs {
    /// A URL asked (JSON `POST`: stream, token id, client, expiry) at each playback
    /// token's first use on a node: a 2xx lets the token play, anything else refuses it.
    /// Only public addresses unless --allow-private-hooks.
    #[arg(
        long = "on-play",
        visible_alias = "on-play-url",
        env = "SEALCAST_ON_PLAY_URL",
        hide_env_values = true
    )]
    pub(crate) on_play: Option<String>,
    /// How long the on_play hook may take (`2s`, `500ms`).
    #[arg(long, env = "SEALCAST_ON_PLAY_TIMEOUT", default_value = "2s")]
    pub(crate) on_play_timeout: HookTimeout,
    /// Allow the token when the on_play hook cannot be asked (default: refuse).
    #[arg(long, env = "SEALCAST_ON_PLAY_FAIL_OPEN")]
    pub(crate) on_play_fail_open: bool,
}

/// A hook's timeout: `2s`, `500ms`; more than zero, at most a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HookTimeout(pub(crate) std::time::Duration);

impl std::str::FromStr for HookTimeout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (number, millis) = match s.strip_suffix("ms") {
            Some(n) => (n, true),
            None => (s.strip_suffix('s').unwrap_or(s), false),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{s:?}: give seconds or milliseconds, like 2s or 500ms"))?;
        let d = if millis {
            std::time::Duration::from_millis(n)
        } else {
            std::time::Duration::from_secs(n)
        };
        if d.is_zero() || d > std::time::Duration::from_secs(60) {
            return Err(format!("{s:?}: between 1ms and 60s"));
        }
        Ok(HookTimeout(d))
    }
}

/// Where the cluster's keys and push token are.
#[derive(Debug, Clone, Args)]
pub(crate) struct TrustArgs {
    /// Key directory (default: `keys` in the data directory).
    #[arg(long, env = "SEALCAST_KEYS_DIR")]
    pub(crate) keys_dir: Option<PathBuf>,
    /// The push token itself (default: the `push-token` file of the key directory).
    #[arg(long, env = "SEALCAST_PUSH_TOKEN", hide_env_values = true)]
    pub(crate) push_token: Option<String>,
}

/// The SRT listener of an ingest (issue 32): MPEG-TS publishers with the stream key in the
/// `streamid` (`#!::r=live/KEY,m=publish`, or the bare key).
#[derive(Debug, Clone, Args)]
pub(crate) struct SrtArgs {
    /// SRT listen address (UDP). Without it, 0.0.0.0:9000, and a port already taken there
    /// only warns; given, a port that cannot be bound is an error.
    #[arg(long, env = "SEALCAST_SRT_LISTEN")]
    pub(crate) srt_listen: Option<SocketAddr>,
    /// A file holding the SRT passphrase (10 to 79 characters): callers must then encrypt
    /// with it; without it, callers must not encrypt.
    #[arg(long, env = "SEALCAST_SRT_PASSPHRASE_FILE")]
    pub(crate) srt_passphrase_file: Option<PathBuf>,
}

/// The WHIP side of an ingest (issue 32): publishers post their SDP offer to the load
/// balancer's `/whip/NAME`, which forwards it to the ingest's WHIP HTTP port; media comes
/// in on one UDP port, or over TCP on the same port number (ICE-TCP).
#[derive(Debug, Clone, Args)]
pub(crate) struct WebRtcArgs {
    /// WebRTC media listen address (UDP: every WHIP session's ICE, DTLS and SRTP; ICE-TCP
    /// listens on TCP at the same address and port).
    #[arg(long, env = "SEALCAST_WEBRTC_LISTEN", default_value = "0.0.0.0:8189")]
    pub(crate) webrtc_listen: SocketAddr,
    /// The address publishers are told to send media to (IP, or IP:PORT), where they reach
    /// the media port through NAT or a container's port mapping (default: the listen
    /// address, or this host's outbound address for 0.0.0.0).
    #[arg(long, env = "SEALCAST_WEBRTC_ADVERTISE")]
    pub(crate) webrtc_advertise: Option<String>,
    /// Do not take ICE over TCP (RFC 6544) on the media port's number: answers then list
    /// only the UDP candidate, and publishers whose networks let no UDP out cannot use WHIP.
    #[arg(long, env = "SEALCAST_WEBRTC_NO_TCP")]
    pub(crate) no_webrtc_tcp: bool,
    /// The WHIP HTTP listen address (internal: the load balancer's upstream; `ingest`:
    /// 0.0.0.0:8088, `up`: a free port on 127.0.0.1).
    #[arg(long, env = "SEALCAST_WHIP_LISTEN")]
    pub(crate) whip_listen: Option<SocketAddr>,
    /// The WHIP base URL this ingest announces to the load balancers (default: `http://` +
    /// the WHIP listen address, with the host's name for an unspecified address, as a
    /// broadcast node's URL).
    #[arg(long, env = "SEALCAST_WHIP_URL")]
    pub(crate) whip_url: Option<String>,
}

/// The MQTT broker of a cluster role.
#[derive(Debug, Clone, Args)]
pub(crate) struct BrokerArgs {
    /// MQTT brokers: `mqtt://[user:password@]host:port[,host:port...]`; with several, the
    /// role is connected to each (independent brokers with the same users), so losing one
    /// costs nothing.
    #[arg(
        long,
        env = "SEALCAST_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883",
        hide_env_values = true
    )]
    pub(crate) mqtt_url: BrokerAddress,
}

#[derive(Debug, Args)]
pub(crate) struct BroadcastArgs {
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    /// Configuration file (TOML); the node uses its `[ladder]` window and segment target.
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// HTTP listen address (public paths and the internal push API).
    #[arg(long, env = "SEALCAST_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub(crate) listen: SocketAddr,
    /// This node's id (in `x-sealcast-node` and its presence); default: from the host name.
    #[arg(long, env = "SEALCAST_NODE_ID")]
    pub(crate) node_id: Option<String>,
    /// The base URL ingest nodes push to and the load balancer routes to
    /// (default: `http://` + the listen address, with the host's name for 0.0.0.0).
    #[arg(long, env = "SEALCAST_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Where ended streams are kept as VOD recordings (default: `recordings` in the data
    /// directory).
    #[arg(long, env = "SEALCAST_RECORDINGS_DIR")]
    pub(crate) recordings: Option<PathBuf>,
    /// This node's own public base URL (`https://broadcast1.streaming-cluster.test`), where
    /// the load balancer's direct mode sends viewers.
    #[arg(long, env = "SEALCAST_DIRECT_URL")]
    pub(crate) direct_url: Option<String>,
    /// How long finished recordings are kept (`7d`, `12h`; `0`: forever).
    #[arg(long, env = "SEALCAST_RECORDING_RETENTION", default_value = "7d")]
    pub(crate) recording_retention: Retention,
    /// How far back a viewer can seek in a live stream that is recorded (time-shift:
    /// `30m`, `2h`; at most `24h`; `0`: off).
    #[arg(long, env = "SEALCAST_DVR_WINDOW", default_value = "30m")]
    pub(crate) dvr_window: DvrWindow,
    #[command(flatten)]
    pub(crate) archive: ArchiveArgs,
    /// Seconds a joining node waits for every ingest's live window before it reports ready
    /// anyway (with a warning naming the ingests it waited for).
    #[arg(long, env = "SEALCAST_READY_TIMEOUT", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) ready_timeout: u64,
    /// Seconds a ready node goes on serving once told to stop (SIGTERM, Ctrl-C), saying
    /// `draining` so that load balancers move its viewers off it first (0: stop at once).
    #[arg(long, env = "SEALCAST_DRAIN", default_value_t = 3,
        value_parser = clap::value_parser!(u64).range(0..=300))]
    pub(crate) drain: u64,
    #[command(flatten)]
    pub(crate) cache_purge: CachePurgeArgs,
    #[command(flatten)]
    pub(crate) moq: MoqArgs,
    #[command(flatten)]
    pub(crate) on_play: PlayHookArgs,
}

/// Where the HTTPS certificate is.
#[derive(Debug, Clone, Args)]
pub(crate) struct TlsArgs {
    /// Directory of the local CA and server certificate (`sealcast certs` writes there;
    /// made on first start when missing).
    #[arg(long, env = "SEALCAST_CERTS_DIR", default_value = "certs/generated")]
    pub(crate) certs_dir: PathBuf,
    /// The operator's own certificate chain (PEM) instead of the generated one.
    #[arg(long, env = "SEALCAST_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The key of `--tls-cert` (PEM).
    #[arg(long, env = "SEALCAST_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
}

/// How the load balancer places viewers and answers.
#[derive(Debug, Clone, Args)]
pub(crate) struct BalanceArgs {
    /// `cookie`: a signed sticky cookie, least-loaded node for new viewers; `hash`: consistent
    /// hashing of the client address (for players that drop cookies).
    #[arg(long, value_enum, env = "SEALCAST_LB_MODE", default_value_t = LbMode::Cookie)]
    pub(crate) lb_mode: LbMode,
    /// Answer playlist requests with a redirect to the chosen node's own public URL, so
    /// segments bypass the load balancer.
    #[arg(long, env = "SEALCAST_LB_DIRECT")]
    pub(crate) direct: bool,
    /// Serve ACME HTTP-01 challenges from this directory on the plain-HTTP port.
    #[arg(long, env = "SEALCAST_ACME_DIR")]
    pub(crate) acme_dir: Option<PathBuf>,
    /// Also proxy plain HTTP on this address, as HTTPS is proxied, for a cache tier in front
    /// on a private network (Varnish cannot fetch over TLS; deploy/varnish/). Off unless
    /// given.
    #[arg(long, env = "SEALCAST_LB_ORIGIN_LISTEN")]
    pub(crate) origin_listen: Option<SocketAddr>,
    /// The caches in front (addresses or CIDR networks, repeatable or comma-separated) whose
    /// `X-Forwarded-For` names the viewer on the origin listener: the last hop, the one the
    /// cache appended. Every per-client budget, the wrong-key backoff and client-bound
    /// tokens then apply to the viewer, not to the cache. Nobody's by default.
    #[arg(
        long = "trusted-cache",
        env = "SEALCAST_LB_TRUSTED_CACHE",
        value_delimiter = ','
    )]
    pub(crate) trusted_caches: Vec<certs::tokens::ClientNetwork>,
    /// Requests per second one client address (an IPv6 /64) may make on average; over it,
    /// 429 with Retry-After. Far above what a viewer needs (an LL-HLS player makes about
    /// ten a second), for a whole office behind one address.
    #[arg(long, env = "SEALCAST_LB_REQUEST_RATE", default_value_t = 300)]
    pub(crate) request_rate: u32,
    /// Requests one client address may make at once, above the rate.
    #[arg(long, env = "SEALCAST_LB_REQUEST_BURST", default_value_t = 600)]
    pub(crate) request_burst: u32,
    /// New connections per second one client address may open on average; over it, new
    /// connections are closed before the TLS handshake.
    #[arg(long, env = "SEALCAST_LB_CONNECTION_RATE", default_value_t = 50)]
    pub(crate) connection_rate: u32,
    /// New connections one client address may open at once, above the rate.
    #[arg(long, env = "SEALCAST_LB_CONNECTION_BURST", default_value_t = 100)]
    pub(crate) connection_burst: u32,
    /// No per-client limits at all (a load balancer behind a proxy of your own that
    /// limits, where every client has the proxy's address).
    #[arg(long, env = "SEALCAST_LB_NO_LIMITS")]
    pub(crate) no_limits: bool,
    /// Send every request to its node, even identical media requests in flight at the same
    /// time (by default the load balancer sends those once and shares a public answer).
    #[arg(long, env = "SEALCAST_LB_NO_COLLAPSE")]
    pub(crate) no_collapse: bool,
}

/// Viewer placement, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LbMode {
    /// Sticky cookie.
    Cookie,
    /// Client-address hashing.
    Hash,
}

impl From<LbMode> for loadbalancer::Mode {
    fn from(mode: LbMode) -> Self {
        match mode {
            LbMode::Cookie => loadbalancer::Mode::Cookie,
            LbMode::Hash => loadbalancer::Mode::Hash,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct LbArgs {
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    #[command(flatten)]
    pub(crate) tls: TlsArgs,
    #[command(flatten)]
    pub(crate) balance: BalanceArgs,
    /// Key directory with the sticky-cookie key (default: `keys` in the data directory).
    #[arg(long, env = "SEALCAST_KEYS_DIR")]
    pub(crate) keys_dir: Option<PathBuf>,
    /// HTTPS listen address.
    #[arg(long, env = "SEALCAST_LB_HTTPS_LISTEN", default_value = "0.0.0.0:443")]
    pub(crate) https_listen: SocketAddr,
    /// Plain-HTTP listen address (redirects to HTTPS).
    #[arg(long, env = "SEALCAST_LB_HTTP_LISTEN", default_value = "0.0.0.0:80")]
    pub(crate) http_listen: SocketAddr,
    /// Where `/metrics` (Prometheus) and `/healthz` are served.
    #[arg(long, env = "SEALCAST_METRICS_LISTEN", default_value = "0.0.0.0:9102")]
    pub(crate) metrics_listen: SocketAddr,
    /// This load balancer's id (its MQTT client id); default: from the host name.
    #[arg(long, env = "SEALCAST_NODE_ID")]
    pub(crate) node_id: Option<String>,
    /// Do not log a line per request.
    #[arg(long, env = "SEALCAST_LB_NO_ACCESS_LOG")]
    pub(crate) no_access_log: bool,
    #[command(flatten)]
    pub(crate) quic: QuicDoorArgs,
}

/// The QUIC front door (issue 48): one UDP port for MoQ viewers, forwarded to a relay tier.
#[derive(Debug, Clone, Args)]
pub(crate) struct QuicDoorArgs {
    /// The MoQ relays viewers' QUIC datagrams go to, as `host:port` (repeatable or
    /// comma-separated). Each name is looked up again every few seconds, so a name that
    /// stands for many relays (compose `--scale relay=N`, a Kubernetes headless Service)
    /// is followed. The QUIC front door is off unless some are given.
    #[arg(long, env = "SEALCAST_LB_MOQ_RELAYS", value_delimiter = ',')]
    pub(crate) moq_relays: Vec<String>,
    /// The front door's UDP listen address (beside the HTTPS port's TCP).
    #[arg(long, env = "SEALCAST_LB_QUIC_LISTEN", default_value = "0.0.0.0:443")]
    pub(crate) quic_listen: SocketAddr,
    /// Viewer flows (each an upstream socket) the front door holds at most.
    #[arg(long, env = "SEALCAST_LB_QUIC_MAX_FLOWS", default_value_t = 16_384)]
    pub(crate) quic_max_flows: usize,
}

#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    /// Directory to write the CA and server certificate into.
    #[arg(long, env = "SEALCAST_CERTS_DIR", default_value = "certs/generated")]
    pub(crate) certs_dir: PathBuf,
    /// How many `broadcastN.streaming-cluster.test` names the certificate lists.
    #[arg(long, default_value_t = certs::tls::DEFAULT_BROADCAST_NODES)]
    pub(crate) broadcast: u16,
    /// More names (DNS names or IP addresses) for the certificate, e.g. this machine's.
    #[arg(long = "name")]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Key directory (default: `keys` in the data directory).
    #[arg(long, env = "SEALCAST_KEYS_DIR")]
    pub(crate) keys_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create what is missing: root key, push token, cookie key, broker password, the
    /// broadcast nodes' edge key and certificate, each ingest node's key and certificate.
    Init {
        /// Signature algorithm of a new root (an existing root keeps its own).
        #[arg(long, value_enum, default_value_t = Algorithm::MlDsa65)]
        algorithm: Algorithm,
        /// Ingest node ids to make keys and certificates for.
        #[arg(long = "ingest", default_value = "ingest1")]
        ingest: Vec<String>,
    },
    /// Revoke a signing key: publishes a root-signed revocation (retained) to the broker.
    Revoke {
        /// The key id (32 hex digits) or an ingest node id whose key to revoke; `NODE.c2pa`
        /// revokes that ingest's C2PA claim signer, `provenance-ca` the provenance CA.
        key: String,
        #[command(flatten)]
        broker: BrokerArgs,
    },
}

/// A signature algorithm, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Algorithm {
    /// ML-DSA-65 (FIPS 204).
    #[value(name = "ml-dsa-65")]
    MlDsa65,
    /// Ed25519.
    #[value(name = "ed25519")]
    Ed25519,
}

impl From<Algorithm> for domain::wire::SignatureAlgorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::MlDsa65 => Self::MlDsa65,
            Algorithm::Ed25519 => Self::Ed25519,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Configuration file (TOML).
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// RTMP listen address.
    #[arg(long, env = "SEALCAST_RTMP_LISTEN", default_value = "0.0.0.0:1935")]
    pub(crate) rtmp_listen: SocketAddr,
    #[command(flatten)]
    pub(crate) srt: SrtArgs,
    #[command(flatten)]
    pub(crate) webrtc: WebRtcArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    /// Where `/metrics` (Prometheus) and `/healthz` are served.
    #[arg(long, env = "SEALCAST_METRICS_LISTEN", default_value = "0.0.0.0:9100")]
    pub(crate) metrics_listen: SocketAddr,
    /// This node's id (its key is `ingest/{id}.key` in the key directory).
    #[arg(long, env = "SEALCAST_NODE_ID", default_value = "ingest1")]
    pub(crate) node_id: String,
    /// Streams published here at once over every protocol; one more is refused (RTMP
    /// `NetStream.Publish.Rejected`, SRT `SRT_REJX_OVERLOAD`, WHIP 503). Overrides the
    /// configuration's `[ingest] max_streams`; 0: no cap.
    #[arg(long, env = "SEALCAST_MAX_STREAMS")]
    pub(crate) max_streams: Option<usize>,
    #[command(flatten)]
    pub(crate) on_publish: PublishHookArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    /// Where to publish: `rtmp://HOST:PORT/live/KEY`, or
    /// `srt://HOST:PORT?streamid=#!::r=live/KEY,m=publish` (MPEG-TS over SRT).
    #[arg(
        long,
        env = "SEALCAST_SOURCE_URL",
        required_unless_present = "output",
        hide_env_values = true
    )]
    pub(crate) url: Option<String>,
    /// Write an FLV file instead of publishing.
    #[arg(long, conflicts_with = "url")]
    pub(crate) output: Option<PathBuf>,
    /// Picture size, WIDTHxHEIGHT.
    #[arg(long, env = "SEALCAST_SOURCE_SIZE", default_value = "1280x720")]
    pub(crate) size: String,
    /// Frames per second.
    #[arg(long, env = "SEALCAST_SOURCE_FPS", default_value_t = 30)]
    pub(crate) fps: u32,
    /// Video bitrate in kb/s.
    #[arg(long, default_value_t = 2500)]
    pub(crate) bitrate: u32,
    /// Keyframe interval in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) gop: f64,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Produce as fast as possible instead of at real-time pace (for files).
    #[arg(long)]
    pub(crate) fast: bool,
    /// Encode for low latency, as OBS's x264 `zerolatency` tune does (no B-frames, no
    /// lookahead): the encoder holds back no frames.
    #[arg(long)]
    pub(crate) low_latency: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StreamsArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    // Told to drop a stream that `set --private` or `remove` takes off public view.
    #[command(flatten)]
    pub(crate) cache_purge: CachePurgeArgs,
    #[command(subcommand)]
    pub(crate) command: StreamsCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StreamsCommand {
    /// Create a stream; prints its key alone on stdout.
    Add {
        /// Public name of the stream (letters, digits, `_`, `-`).
        name: String,
        /// Serve it only with a playback token (`sealcast tokens mint`).
        #[arg(long)]
        private: bool,
        /// Do not keep it in a recording (it is still served live).
        #[arg(long)]
        no_record: bool,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Make a stream private or public, or switch its recording on or off; a live stream
    /// changes within a second or two (a recording stops at the next segment, finished as
    /// it stands).
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
        .args(["private", "public", "record", "no_record"])))]
    Set {
        /// The stream.
        name: String,
        /// Serve it only with a playback token.
        #[arg(long, conflicts_with = "public")]
        private: bool,
        /// Serve it to anyone.
        #[arg(long)]
        public: bool,
        /// Keep it in a recording (the default for a new stream).
        #[arg(long, conflicts_with = "no_record")]
        record: bool,
        /// Serve it live only, recording nothing of it.
        #[arg(long)]
        no_record: bool,
    },
    /// List the catalog.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a stream a new key; the old one stops working at once.
    RotateKey {
        /// The stream.
        name: String,
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Delete a stream and its key.
    Remove {
        /// The stream.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ApiKeysArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(subcommand)]
    pub(crate) command: ApiKeysCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeysCommand {
    /// Makes a key and prints it alone on stdout (it is stored only as a hash).
    Add {
        /// A name for the key (who or what uses it).
        name: String,
        /// `read` (every GET) or `admin` (everything).
        #[arg(long, default_value = "read")]
        scope: catalog::Scope,
        /// Print an object with the name, scope and key instead.
        #[arg(long)]
        json: bool,
    },
    /// Lists the keys (names and scopes; never the keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Removes a key; it stops working at once.
    Remove { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct TokensArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Key directory with the playback key (default: `keys` in the data directory).
    #[arg(long, env = "SEALCAST_KEYS_DIR")]
    pub(crate) keys_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: TokensCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    /// Mints a playback token for a stream and prints it alone on stdout.
    Mint {
        /// The stream it opens.
        name: String,
        /// How long it is valid (`2h`, `30m`, `7d`; at most 366 days).
        #[arg(long)]
        ttl: Ttl,
        /// Bind it to a client network (`203.0.113.0/24`, `2001:db8::/48`, one address).
        #[arg(long)]
        ip: Option<certs::tokens::ClientNetwork>,
        /// Open the stream's recordings too.
        #[arg(long)]
        recordings: bool,
        /// Print a JSON object (token, expiry, player link) instead.
        #[arg(long)]
        json: bool,
    },
}

/// How long a playback token is valid: `2h`, `30m`, `7d`, `90s`; more than zero, at most
/// [`api::MAX_TOKEN_TTL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ttl(pub(crate) std::time::Duration);

impl std::str::FromStr for Ttl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<Retention>()? {
            Retention(Some(d)) if d <= api::MAX_TOKEN_TTL => Ok(Ttl(d)),
            Retention(Some(_)) => Err(format!("{s:?} is longer than 366 days")),
            Retention(None) => Err(format!("{s:?}: a token must expire; give 2h, 7d, …")),
        }
    }
}

/// Where recordings are kept once per cluster (issue 49; docs/deployment.md, Archive).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ArchiveArgs {
    /// The archive: a directory (default: `archive` in the data directory) or an S3 bucket,
    /// `s3://BUCKET?endpoint=https://host:port&region=REGION` (AWS S3 without `endpoint`;
    /// `&create=check-first` for a store that ignores `If-None-Match`, such as Garage).
    /// Credentials never go here: `SEALCAST_S3_ACCESS_KEY_ID` and
    /// `SEALCAST_S3_SECRET_ACCESS_KEY`, or `--archive-credentials-file`.
    #[arg(long = "archive", env = "SEALCAST_ARCHIVE", hide_env_values = true)]
    pub(crate) url: Option<String>,
    /// A file of `access_key_id=…` and `secret_access_key=…` lines (instead of the
    /// variables).
    #[arg(
        long = "archive-credentials-file",
        env = "SEALCAST_S3_CREDENTIALS_FILE"
    )]
    pub(crate) credentials_file: Option<PathBuf>,
    /// The most bytes a recording node holds on its disk for the archive while the store is
    /// down or slow (`4G`, `500M`); past it the oldest recorded segments are dropped.
    #[arg(
        long = "archive-spool",
        env = "SEALCAST_ARCHIVE_SPOOL",
        default_value = "4G"
    )]
    pub(crate) spool: ByteSize,
}

/// A size in bytes: a number with an optional unit, `K`, `M`, `G` or `T` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ByteSize(pub(crate) u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{s:?}: give a number and a unit, like 4G or 500M"))?;
        let shift = match unit.trim_end_matches(['B', 'b', 'i']) {
            "" => 0,
            "K" | "k" => 10,
            "M" | "m" => 20,
            "G" | "g" => 30,
            "T" | "t" => 40,
            _ => return Err(format!("{s:?}: the unit is one of K, M, G, T")),
        };
        n.checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// How long finished recordings are kept, e.g. `7d`, `12h`, `30m`; `0` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention(pub(crate) Option<std::time::Duration>);

impl std::str::FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Retention(None));
        }
        let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{s:?}: give a number and a unit, like 7d, 12h or 30m"))?;
        let secs = match unit {
            "d" => n.checked_mul(86_400),
            "h" => n.checked_mul(3_600),
            "m" => n.checked_mul(60),
            "s" => Some(n),
            _ => return Err(format!("{s:?}: the unit is one of d, h, m, s")),
        }
        .ok_or_else(|| format!("{s:?} is too long"))?;
        if secs == 0 {
            return Ok(Retention(None));
        }
        Ok(Retention(Some(std::time::Duration::from_secs(secs))))
    }
}

/// `--dvr-window`: a duration as [`Retention`] reads it, `0` for none, at most a day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DvrWindow(pub(crate) std::time::Duration);

impl std::str::FromStr for DvrWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
        let window = Retention::from_str(s)?.0.unwrap_or_default();
        if window > DAY {
            return Err(format!(
                "{:?}: the time-shift window is at most 24h",
                s.trim()
            ));
        }
        Ok(DvrWindow(window))
    }
}

#[derive(Debug, Args)]
pub(crate) struct LadderArgs {
    /// FLV file with H.264 (and AAC) to transcode.
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Directory to write `master.m3u8` and `{rendition}/` into.
    #[arg(long)]
    pub(crate) output: PathBuf,
    /// Configuration file (TOML) with the ladder.
    #[arg(long, env = "SEALCAST_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

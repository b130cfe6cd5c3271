//! The plan of `sealcast ingest`, and the parts of it `up` derives the same way for its
//! own ingest: settings from the configuration file, the signing key, and the
//! distribution (signing, pushing, presences).

use std::net::SocketAddr;
use std::sync::Arc;

use certs::signing::{PresenceVerifier, SigningKey};
use certs::KeyDir;
use domain::broker::BrokerAddress;
use domain::push_protocol::PushToken;
use domain::NodeId;
use ingest::distribute::DistributeConfig;
use ingest::IngestSettings;
use intake::srt::SrtSettings;

use super::inputs::{self, CatalogPlan};
use super::problem::Problems;
use crate::cli::IngestArgs;
use crate::config::Config;

/// Segments per rendition an ingest keeps beyond the ladder's window for nodes that join
/// late or fall behind, so that a node that joins can serve a full playlist at once.
const LATE_JOINER_SEGMENTS: usize = 2;

/// What `sealcast ingest` starts with.
#[derive(Debug)]
pub(crate) struct IngestPlan {
    pub(crate) catalog: CatalogPlan,
    pub(crate) node_id: NodeId,
    /// RTMP server and pipelines.
    pub(crate) settings: IngestSettings,
    pub(crate) distribution: DistributeConfig,
    pub(crate) rtmp_listen: SocketAddr,
    pub(crate) srt: SrtPlan,
    /// The WHIP side's limits (`[ingest] webrtc_*`).
    pub(crate) webrtc: intake::webrtc::WebRtcLimits,
    pub(crate) metrics_listen: SocketAddr,
    /// Asked before each publish starts.
    pub(crate) on_publish: Option<api::Hook>,
}

/// Where an ingest takes SRT callers, and how.
#[derive(Debug, Clone)]
pub(crate) struct SrtPlan {
    /// The UDP address.
    pub(crate) listen: SocketAddr,
    /// Whether it was given (then failing to bind it is an error; the default only warns).
    pub(crate) given: bool,
    pub(crate) settings: SrtSettings,
}

/// The default SRT listen address.
const DEFAULT_SRT_LISTEN: ([u8; 4], u16) = ([0, 0, 0, 0], 9000);

/// The SRT listener's plan from `--srt-listen`, `--srt-passphrase-file` and the
/// configuration's `[ingest] srt_*` keys.
pub(crate) fn srt(
    args: &crate::cli::SrtArgs,
    config: &Config,
    problems: &mut Problems,
) -> Option<SrtPlan> {
    let passphrase = match &args.srt_passphrase_file {
        None => None,
        Some(path) => {
            let text = problems.take(
                "SEALCAST_SRT_PASSPHRASE_FILE",
                std::fs::read_to_string(path),
                |e| format!("{} cannot be read: {e}", path.display()),
            )?;
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
    };
    let settings = problems.take("SEALCAST_CONFIG", config.ingest.srt(passphrase), |e| {
        e.to_string()
    })?;
    Some(SrtPlan {
        listen: args
            .srt_listen
            .unwrap_or_else(|| SocketAddr::from(DEFAULT_SRT_LISTEN)),
        given: args.srt_listen.is_some(),
        settings,
    })
}

impl IngestPlan {
    /// The plan `args` (and the files they name) make, or every problem with it.
    pub(crate) fn derive(args: &IngestArgs) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let catalog = inputs::catalog(&args.catalog, &mut problems);
        let config = inputs::config(args.config.as_deref(), &mut problems);
        let keys = inputs::key_dir(args.trust.keys_dir.as_deref(), &args.catalog);
        let token = inputs::push_token(args.trust.push_token.as_deref(), &keys, &mut problems);
        let node_id = inputs::node_id(&args.node_id, &mut problems);
        let signing = node_id
            .as_ref()
            .and_then(|node| signing_key(&keys, node, &mut problems));
        let presences = inputs::presences(&keys, &mut problems);
        inputs::distinct_listeners(
            &[
                ("SEALCAST_RTMP_LISTEN", args.rtmp_listen),
                ("SEALCAST_METRICS_LISTEN", args.metrics_listen),
            ],
            &mut problems,
        );
        let provenance = node_id
            .as_ref()
            .and_then(|node| provenance(&keys, node, &mut problems));
        let settings = config.as_ref().and_then(|c| settings(c, &mut problems));
        let srt_plan = config
            .as_ref()
            .and_then(|c| srt(&args.srt, c, &mut problems));
        let on_publish = inputs::publish_hook(&args.on_publish, &args.catalog, &mut problems);
        let plan = (|| {
            let config = config?;
            let node_id = node_id?;
            Some(IngestPlan {
                catalog: catalog?,
                distribution: distribution(
                    &config,
                    node_id.clone(),
                    signing?,
                    args.broker.mqtt_url.clone(),
                    token?,
                    presences?,
                ),
                node_id,
                settings: {
                    let settings = settings?;
                    IngestSettings {
                        provenance: provenance?,
                        max_streams: stream_cap(args.max_streams, settings.max_streams),
                        ..settings
                    }
                },
                rtmp_listen: args.rtmp_listen,
                srt: srt_plan?,
                webrtc: config.ingest.webrtc().unwrap_or_default(),
                metrics_listen: args.metrics_listen,
                on_publish: on_publish?,
            })
        })();
        problems.or(plan)
    }
}

/// The stream cap: `--max-streams` (`SEALCAST_MAX_STREAMS`) over the configuration's
/// `[ingest] max_streams`; 0 from either is no cap.
fn stream_cap(flag: Option<usize>, configured: Option<usize>) -> Option<usize> {
    match flag {
        Some(0) => None,
        Some(max) => Some(max),
        None => configured,
    }
}

/// The RTMP server's and the pipelines' settings from the configuration file.
pub(crate) fn settings(config: &Config, problems: &mut Problems) -> Option<IngestSettings> {
    let end_grace = problems.take("SEALCAST_CONFIG", config.ingest.end_grace(), |e| {
        e.to_string()
    })?;
    Some(IngestSettings {
        app: config.ingest.app.clone(),
        ladder: Arc::new(config.ladder.clone()),
        encoder_threads: config.ingest.encoder_threads,
        end_grace,
        max_connections: config.ingest.max_connections.max(1),
        max_streams: (config.ingest.max_streams > 0).then_some(config.ingest.max_streams),
        provenance: None,
    })
}

/// The C2PA claim signer of ingest `node` from the key directory (docs/provenance.md):
/// `Some(None)` when the directory has none (made before provenance: no C2PA data, and a
/// warning), `None` (a problem) when it is there but unreadable.
pub(crate) fn provenance(
    keys: &KeyDir,
    node: &NodeId,
    problems: &mut Problems,
) -> Option<Option<std::sync::Arc<certs::c2pa::ClaimSigner>>> {
    let signer = problems.take("SEALCAST_KEYS_DIR", keys.claim_signer(node), |e| {
        format!(
            "the C2PA claim signer of {node} ({}, {}) cannot be read: {e}",
            keys.claim_signer_path(node).display(),
            keys.claim_signer_key_path(node).display()
        )
    })?;
    // Its manifests are co-signed by the ingest's own key, in the cluster's algorithm
    // (docs/provenance.md): read once more, so the claim signer holds its own copy.
    let signer = match signer {
        Some(claim) => {
            let (key, _) = problems.take("SEALCAST_KEYS_DIR", keys.ingest(node), |e| {
                format!("the signing key of {node} cannot be read: {e}")
            })?;
            Some(claim.with_cosigner(key))
        }
        None => None,
    };
    if signer.is_none() {
        tracing::warn!(
            node = %node,
            "no C2PA claim signer in the key directory: streams carry no C2PA provenance; run `sealcast keys init` to make one"
        );
    }
    Some(signer.map(std::sync::Arc::new))
}

/// The signing key of ingest `node` and its certificate, from the key directory.
pub(crate) fn signing_key(
    keys: &KeyDir,
    node: &NodeId,
    problems: &mut Problems,
) -> Option<(SigningKey, Vec<u8>)> {
    problems.take("SEALCAST_KEYS_DIR", keys.ingest(node), |e| {
        format!(
            "the signing key and certificate of {node} ({}, {}) cannot be read: {e}",
            keys.signing_key_path(node).display(),
            keys.certificate_path(node).display()
        )
    })
}

/// How ingest `node_id` distributes: signed with `signing`, pushed with `token` to the
/// broadcast nodes whose presence `presences` believes, through `broker`.
pub(crate) fn distribution(
    config: &Config,
    node_id: NodeId,
    (key, certificate): (SigningKey, Vec<u8>),
    broker: BrokerAddress,
    token: PushToken,
    presences: PresenceVerifier,
) -> DistributeConfig {
    let mut distribution = DistributeConfig::new(
        node_id,
        Arc::new(key),
        certificate,
        broker,
        token,
        presences,
        config.ladder.window + LATE_JOINER_SEGMENTS,
    );
    distribution.whole_segments = whole_segments();
    distribution
}

/// `SEALCAST_PUSH_WHOLE_SEGMENTS=1`: push every segment with its bytes, never assembled
/// from the parts a node took. A diagnostic for benchmarks (docs/deployment.md), read
/// once when the role starts, outside the command line on purpose: no operator needs it.
fn whole_segments() -> bool {
    std::env::var_os(ingest::distribute::WHOLE_SEGMENTS_VARIABLE).is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_sets_the_stream_cap_over_the_file_and_zero_lifts_it() {
        assert_eq!(stream_cap(None, None), None);
        assert_eq!(stream_cap(None, Some(4)), Some(4));
        assert_eq!(stream_cap(Some(2), Some(4)), Some(2));
        assert_eq!(stream_cap(Some(0), Some(4)), None);
        let mut problems = Problems::default();
        let config = Config::parse("[ingest]\nmax_streams = 3\n").expect("parses");
        let capped = settings(&config, &mut problems).expect("settings");
        assert_eq!(capped.max_streams, Some(3));
        let config = Config::parse("[ingest]\nmax_streams = 0\n").expect("parses");
        let uncapped = settings(&config, &mut problems).expect("settings");
        assert_eq!(uncapped.max_streams, None);
    }
}

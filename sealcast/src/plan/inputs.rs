//! The derivations roles share: the configuration file, where the catalog is, the key
//! directory and what roles read from it, node ids, the HTTPS certificate, listeners.
//! Each records what is wrong under the variable the operator sets, in the words
//! `--check-config` prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use certs::signing::{PresenceSigner, PresenceVerifier, RootPublicKey};
use certs::tls::{ServerNames, DEFAULT_BROADCAST_NODES};
use certs::{KeyDir, TlsDir};
use domain::push_protocol::PushToken;
use domain::NodeId;
use loadbalancer::cookie::{CookieKey, StickyCookies};
use loadbalancer::tls::{CertificateFiles, ReloadingCertificate};

use super::problem::Problems;
use crate::cli::{CatalogArgs, TlsArgs};
use crate::config::Config;

/// The configuration file, parsed and validated (the defaults without one).
pub(crate) fn config(path: Option<&Path>, problems: &mut Problems) -> Option<Config> {
    problems.take("SEALCAST_CONFIG", crate::config::load(path), |e| {
        format!("{e:#}")
    })
}

/// Where the catalog is.
#[derive(Debug, Clone)]
pub(crate) enum CatalogLocation {
    /// `--database-url`: PostgreSQL or a SQLite URL.
    Url(String),
    /// `catalog.db` in this data directory (made when missing).
    DataDir(PathBuf),
}

impl CatalogLocation {
    /// Where `args` put it, unchecked: the one-shot commands open it and say what fails.
    pub(crate) fn of(args: &CatalogArgs) -> Self {
        match &args.database_url {
            Some(url) => CatalogLocation::Url(url.clone()),
            None => CatalogLocation::DataDir(args.data_dir.clone()),
        }
    }
}

/// The catalog of a role, and where its webhooks may go.
#[derive(Debug, Clone)]
pub(crate) struct CatalogPlan {
    pub(crate) location: CatalogLocation,
    pub(crate) webhooks: api::Destinations,
}

/// The catalog `args` name: a database URL that parses, or a data directory that is not
/// a file.
pub(crate) fn catalog(args: &CatalogArgs, problems: &mut Problems) -> Option<CatalogPlan> {
    let location = CatalogLocation::of(args);
    match &location {
        CatalogLocation::Url(url) => {
            problems.take(
                "SEALCAST_DATABASE_URL",
                catalog::Catalog::check_location(url),
                |e| e.to_string(),
            )?;
        }
        CatalogLocation::DataDir(dir) => not_a_file(dir, "SEALCAST_DATA_DIR", problems)?,
    }
    Some(CatalogPlan {
        location,
        webhooks: args.webhook_destinations(),
    })
}

/// The key directory: `--keys-dir`, else `keys` in the data directory.
pub(crate) fn key_dir(keys_dir: Option<&Path>, catalog: &CatalogArgs) -> KeyDir {
    KeyDir::new(
        keys_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| catalog.data_dir.join("keys")),
    )
}

/// The push token: `given` (`SEALCAST_PUSH_TOKEN`), else the key directory's.
pub(crate) fn push_token(
    given: Option<&str>,
    keys: &KeyDir,
    problems: &mut Problems,
) -> Option<PushToken> {
    match given {
        Some(token) => problems.take(
            "SEALCAST_PUSH_TOKEN",
            PushToken::new(token.to_owned()),
            |e| e.to_string(),
        ),
        None => problems.take("SEALCAST_PUSH_TOKEN", keys.push_token(), |e| {
            format!(
                "not set, and the key directory's {} cannot be read: {e}",
                keys.push_token_path().display()
            )
        }),
    }
}

/// The root public key, which every role but the source checks something against (`why`).
pub(crate) fn root_public(
    keys: &KeyDir,
    why: &str,
    problems: &mut Problems,
) -> Option<RootPublicKey> {
    problems.take("SEALCAST_KEYS_DIR", keys.root_public(), |e| {
        format!(
            "the cluster's root public key {} ({why}) cannot be read: {e}",
            keys.root_public_path().display()
        )
    })
}

/// What checks broadcast presences (for the load balancer and ingests): the root key.
pub(crate) fn presences(keys: &KeyDir, problems: &mut Problems) -> Option<PresenceVerifier> {
    root_public(keys, "broadcast presences are checked against it", problems)
        .map(PresenceVerifier::new)
}

/// The broadcast nodes' presence signer: the edge key and its certificate.
pub(crate) fn presence_signer(
    keys: &KeyDir,
    problems: &mut Problems,
) -> Option<Arc<PresenceSigner>> {
    let (key, certificate) = problems.take("SEALCAST_KEYS_DIR", keys.edge(), |e| {
        format!(
            "the edge key and certificate ({}, {}) that sign this node's presence cannot be read: {e}",
            keys.edge_key_path().display(),
            keys.edge_certificate_path().display()
        )
    })?;
    problems
        .take(
            "SEALCAST_KEYS_DIR",
            PresenceSigner::new(key, &certificate),
            |e| {
                format!(
                    "the edge key {} does not go with its certificate {}: {e}",
                    keys.edge_key_path().display(),
                    keys.edge_certificate_path().display()
                )
            },
        )
        .map(Arc::new)
}

/// Revocations kept in the key directory (`sealcast keys revoke`), which a broadcast node
/// applies before the broker says anything.
pub(crate) fn revocations(keys: &KeyDir, problems: &mut Problems) -> Option<Vec<Vec<u8>>> {
    problems.take("SEALCAST_KEYS_DIR", keys.revocations(), |e| {
        format!(
            "the revocations kept in {} cannot be read: {e}",
            keys.path().display()
        )
    })
}

/// The root's anchors of other C2PA signers' CAs kept in the key directory (`sealcast keys
/// init` makes them from `provenance/trusted.pem`), which broadcast nodes serve viewers.
pub(crate) fn provenance_anchors(
    keys: &KeyDir,
    problems: &mut Problems,
) -> Option<Vec<certs::c2pa::ProvenanceAnchor>> {
    problems.take("SEALCAST_KEYS_DIR", keys.delivered_anchors(), |e| {
        format!(
            "{} cannot be read: {e}",
            keys.delivered_anchors_path().display()
        )
    })
}

/// The sticky-cookie key, as the load balancer signs with it.
pub(crate) fn cookies(keys: &KeyDir, problems: &mut Problems) -> Option<StickyCookies> {
    let key = keys
        .cookie_key()
        .map_err(|e| e.to_string())
        .and_then(|key| CookieKey::new(&key).map_err(|e| e.to_string()));
    problems
        .take("SEALCAST_KEYS_DIR", key, |e| {
            format!(
                "the sticky-cookie key {} cannot be used: {e}",
                keys.cookie_key_path().display()
            )
        })
        .map(StickyCookies::new)
}

/// A node id given as `SEALCAST_NODE_ID`.
pub(crate) fn node_id(id: &str, problems: &mut Problems) -> Option<NodeId> {
    problems.take("SEALCAST_NODE_ID", NodeId::new(id.to_owned()), |e| {
        e.to_string()
    })
}

/// `SEALCAST_NODE_ID` when given, else a node id from the host name (unique per container
/// under `--scale`) after `prefix`.
pub(crate) fn node_id_or_host(
    id: Option<&str>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<NodeId> {
    match id {
        Some(id) => node_id(id, problems),
        None => problems.take("SEALCAST_NODE_ID", node_id_from_host(prefix), |e| {
            format!("none given, and none can be made from the host name: {e}")
        }),
    }
}

fn node_id_from_host(prefix: &str) -> Result<NodeId, domain::DomainError> {
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
    NodeId::new(format!("{prefix}-{}", cleaned.trim_matches('-'))).or_else(|_| NodeId::new(prefix))
}

/// The HTTPS certificate the load balancer serves.
#[derive(Debug, Clone)]
pub(crate) enum TlsPlan {
    /// The operator's files, or generated ones already there (both loaded once here).
    Files(CertificateFiles),
    /// Missing: made on start in `dir`, for `names`, where files can be made.
    Make {
        dir: TlsDir,
        names: ServerNames,
        files: CertificateFiles,
    },
}

/// The HTTPS certificate: the operator's files, or the generated ones, or a directory
/// where they can be generated (for `broadcast_names` node names at least).
pub(crate) fn tls(
    args: &TlsArgs,
    broadcast_names: u16,
    problems: &mut Problems,
) -> Option<TlsPlan> {
    if let (Some(chain), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let files = CertificateFiles {
            chain: chain.clone(),
            key: key.clone(),
        };
        problems.take(
            "SEALCAST_TLS_CERT",
            ReloadingCertificate::load(files.clone()),
            |e| e.to_string(),
        )?;
        return Some(TlsPlan::Files(files));
    }
    let dir = TlsDir::new(&args.certs_dir);
    let files = CertificateFiles {
        chain: dir.server_chain_path(),
        key: dir.server_key_path(),
    };
    if files.chain.exists() || files.key.exists() {
        problems.take(
            "SEALCAST_CERTS_DIR",
            ReloadingCertificate::load(files.clone()),
            |e| e.to_string(),
        )?;
        return Some(TlsPlan::Files(files));
    }
    problems.take("SEALCAST_CERTS_DIR", can_create_in(&args.certs_dir), |e| {
        format!(
            "{} has no server certificate, and one cannot be made there: {e}",
            args.certs_dir.display()
        )
    })?;
    Some(TlsPlan::Make {
        dir,
        names: ServerNames::new(broadcast_names.max(DEFAULT_BROADCAST_NODES)),
        files,
    })
}

/// `SEALCAST_ACME_DIR`, which must be a directory.
pub(crate) fn acme(dir: Option<&Path>, problems: &mut Problems) -> Option<()> {
    match dir {
        Some(dir) if !dir.is_dir() => {
            problems.add(
                "SEALCAST_ACME_DIR",
                format!("{} is not a directory", dir.display()),
            );
            None
        }
        _ => Some(()),
    }
}

/// A base URL a node announces: `http(s)://host[:port]`, no path.
pub(crate) fn base_url(name: &str, url: Option<&str>, problems: &mut Problems) -> Option<()> {
    match url {
        Some(url) if !domain::presence::is_base_url(url) => {
            problems.add(
                name,
                format!("{url:?} is not an http(s)://host[:port] base URL without a path"),
            );
            None
        }
        _ => Some(()),
    }
}

/// A path the role makes a directory of: fine if missing, wrong if it is something else.
pub(crate) fn not_a_file(path: &Path, name: &str, problems: &mut Problems) -> Option<()> {
    if path.exists() && !path.is_dir() {
        problems.add(
            name,
            format!("{} exists and is not a directory", path.display()),
        );
        return None;
    }
    Some(())
}

/// Whether files can be made in `dir` (created with its parents if missing): a probe file
/// in the nearest existing ancestor, removed at once.
fn can_create_in(dir: &Path) -> Result<(), String> {
    // A relative path's last ancestor is "", the working directory.
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    let probe = existing.join(format!(".sealcast-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("{}: {e}", existing.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Two listeners of one role on the same fixed address cannot both bind.
pub(crate) fn distinct_listeners(listeners: &[(&str, SocketAddr)], problems: &mut Problems) {
    for (i, (name, addr)) in listeners.iter().enumerate() {
        if addr.port() == 0 {
            continue;
        }
        if let Some((other, _)) = listeners[..i].iter().find(|(_, a)| a == addr) {
            problems.add(
                *name,
                format!("{addr} is also {other}; each listener needs its own port"),
            );
        }
    }
}

/// The `on_publish` hook `args` configure, if any; a URL it may not use is a problem named
/// after its variable (the URL itself never shown: it may carry the operator's secret).
pub(crate) fn publish_hook(
    args: &crate::cli::PublishHookArgs,
    catalog: &CatalogArgs,
    problems: &mut Problems,
) -> Option<Option<api::Hook>> {
    hook(
        "on_publish",
        "SEALCAST_ON_PUBLISH_URL",
        args.on_publish.as_deref(),
        args.on_publish_timeout.0,
        args.on_publish_fail_open,
        catalog,
        problems,
    )
}

/// The `on_play` hook `args` configure, if any.
pub(crate) fn play_hook(
    args: &crate::cli::PlayHookArgs,
    catalog: &CatalogArgs,
    problems: &mut Problems,
) -> Option<Option<api::Hook>> {
    hook(
        "on_play",
        "SEALCAST_ON_PLAY_URL",
        args.on_play.as_deref(),
        args.on_play_timeout.0,
        args.on_play_fail_open,
        catalog,
        problems,
    )
}

fn hook(
    name: &'static str,
    variable: &str,
    url: Option<&str>,
    timeout: std::time::Duration,
    fail_open: bool,
    catalog: &CatalogArgs,
    problems: &mut Problems,
) -> Option<Option<api::Hook>> {
    let Some(url) = url else {
        return Some(None);
    };
    problems
        .take(
            variable,
            api::Hook::new(name, url, timeout, fail_open, catalog.hook_destinations()),
            |e| e.to_string(),
        )
        .map(Some)
}

/// What checks playback tokens: the key directory's playback key. A key directory made
/// before private streams has none: then `None` (every private stream is refused, none is
/// served open) and a warning; a key file that is there but unreadable is a problem.
pub(crate) fn playback_verifier(
    keys: &KeyDir,
    problems: &mut Problems,
) -> Option<Option<Arc<certs::tokens::TokenVerifier>>> {
    if !keys.playback_key_path().exists() {
        tracing::warn!(
            "no playback key in the key directory (`sealcast keys init` makes it): private streams are refused to everyone"
        );
        return Some(None);
    }
    problems
        .take("SEALCAST_KEYS_DIR", keys.playback_key(), |e| {
            format!("the playback key: {e}")
        })
        .map(|key| Some(Arc::new(certs::tokens::TokenVerifier::new(key))))
}

/// The load balancer's per-client limits `balance` asks for (`None`: `--no-limits`).
pub(crate) fn client_limits(
    balance: &crate::cli::BalanceArgs,
    problems: &mut Problems,
) -> Option<Option<loadbalancer::limits::ClientLimits>> {
    use loadbalancer::limits::{ClientLimits, Rate};
    if balance.no_limits {
        return Some(None);
    }
    let requests = Rate::new(balance.request_rate, balance.request_burst);
    let connections = Rate::new(balance.connection_rate, balance.connection_burst);
    if requests.is_none() {
        problems.add(
            "SEALCAST_LB_REQUEST_RATE",
            "the request rate and burst must be above zero (or give --no-limits)",
        );
    }
    if connections.is_none() {
        problems.add(
            "SEALCAST_LB_CONNECTION_RATE",
            "the connection rate and burst must be above zero (or give --no-limits)",
        );
    }
    Some(Some(ClientLimits {
        requests: requests?,
        connections: connections?,
        ..ClientLimits::default()
    }))
}

/// The caches whose `X-Forwarded-For` the origin listener believes: only with an origin
/// listener to believe it on.
pub(crate) fn trusted_caches(
    balance: &crate::cli::BalanceArgs,
    problems: &mut Problems,
) -> loadbalancer::caches::TrustedCaches {
    if !balance.trusted_caches.is_empty() && balance.origin_listen.is_none() {
        problems.add(
            "SEALCAST_LB_TRUSTED_CACHE",
            "trusted caches are believed on the origin listener only; give SEALCAST_LB_ORIGIN_LISTEN too",
        );
    }
    loadbalancer::caches::TrustedCaches::new(balance.trusted_caches.clone())
}

/// The caches told to drop what turned private or was deleted (issue 45): `Some(None)`
/// for none, `None` when a URL is not one (a problem).
pub(crate) fn cache_purge(
    args: &crate::cli::CachePurgeArgs,
    problems: &mut Problems,
) -> Option<Option<api::CachePurge>> {
    // An empty value (compose's `${…:-}`) names no cache.
    let urls: Vec<String> = (args.urls.iter())
        .filter(|u| !u.trim().is_empty())
        .cloned()
        .collect();
    if urls.is_empty() {
        return Some(None);
    }
    problems
        .take(
            "SEALCAST_CACHE_PURGE_URL",
            api::CachePurge::new(&urls),
            |e| e.to_string(),
        )
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::problem::Problem;

    #[test]
    fn listeners_on_one_address_are_reported() {
        let mut problems = Problems::default();
        let a: SocketAddr = "0.0.0.0:80".parse().expect("addr");
        let zero: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        distinct_listeners(
            &[("A", a), ("B", zero), ("C", zero), ("D", a)],
            &mut problems,
        );
        assert_eq!(
            problems.into_vec(),
            [Problem::new(
                "D",
                "0.0.0.0:80 is also A; each listener needs its own port"
            )]
        );
    }

    /// Issue 45 item 13: each switch opens what it names only. The switch for the
    /// admin API's webhooks once opened the operator's hooks too, and the other way round.
    #[test]
    fn private_hooks_and_private_webhooks_are_separate_switches() {
        let catalog = |webhooks, hooks| CatalogArgs {
            data_dir: PathBuf::from("data"),
            database_url: None,
            allow_private_webhooks: webhooks,
            allow_private_hooks: hooks,
        };
        let hook = crate::cli::PublishHookArgs {
            on_publish: Some("http://10.0.0.5:8000/auth".to_owned()),
            on_publish_timeout: crate::cli::HookTimeout(api::DEFAULT_HOOK_TIMEOUT),
            on_publish_fail_open: false,
        };
        let configured = |catalog: &CatalogArgs| {
            let mut problems = Problems::default();
            let hook = publish_hook(&hook, catalog, &mut problems);
            (hook.is_some_and(|h| h.is_some()), problems.into_vec().len())
        };
        assert_eq!(configured(&catalog(false, false)), (false, 1));
        assert_eq!(
            configured(&catalog(true, false)),
            (false, 1),
            "the webhooks' switch"
        );
        assert_eq!(configured(&catalog(false, true)), (true, 0));
        assert_eq!(
            catalog(false, true).webhook_destinations(),
            api::Destinations::Public,
            "the hooks' switch leaves admin webhooks public-only"
        );
        assert_eq!(
            catalog(true, false).webhook_destinations(),
            api::Destinations::Any
        );
    }

    #[test]
    fn a_node_id_from_the_host_name_is_always_valid() {
        for prefix in ["broadcast", "lb"] {
            let id = node_id_from_host(prefix).expect("a valid id");
            assert!(id.as_str().starts_with(prefix), "{id}");
        }
    }
}

//! The plan of `sealcast lb`, and the load balancer's part of `up`'s: its certificate,
//! its keys, its listeners and how it places viewers.

use std::net::SocketAddr;
use std::sync::Arc;

use certs::signing::PresenceVerifier;
use certs::tls::DEFAULT_BROADCAST_NODES;
use certs::tokens::TokenVerifier;
use certs::KeyDir;
use domain::broker::BrokerAddress;
use loadbalancer::cookie::StickyCookies;

use super::inputs::{self, TlsPlan};
use super::problem::Problems;
use crate::cli::{BalanceArgs, LbArgs};

/// What `sealcast lb` starts with.
pub(crate) struct LbPlan {
    /// Its MQTT client id: `lb-` and its node id.
    pub(crate) client_id: String,
    pub(crate) balancer: Balancer,
    pub(crate) keys: BalancerKeys,
    pub(crate) broker: BrokerAddress,
    pub(crate) metrics_listen: SocketAddr,
}

impl LbPlan {
    /// The plan `args` (and the files they name) make, or every problem with it.
    pub(crate) fn derive(args: &LbArgs) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let node_id = inputs::node_id_or_host(args.node_id.as_deref(), "lb", &mut problems);
        let tls = inputs::tls(&args.tls, DEFAULT_BROADCAST_NODES, &mut problems);
        let acme = inputs::acme(args.balance.acme_dir.as_deref(), &mut problems);
        let keys = inputs::key_dir(args.keys_dir.as_deref(), &args.catalog);
        let keys = BalancerKeys::derive(&keys, &mut problems);
        let limits = inputs::client_limits(&args.balance, &mut problems);
        let trusted_caches = inputs::trusted_caches(&args.balance, &mut problems);
        let mut listeners = vec![
            ("SEALCAST_LB_HTTPS_LISTEN", args.https_listen),
            ("SEALCAST_LB_HTTP_LISTEN", args.http_listen),
            ("SEALCAST_METRICS_LISTEN", args.metrics_listen),
        ];
        listeners.extend(
            args.balance
                .origin_listen
                .map(|a| ("SEALCAST_LB_ORIGIN_LISTEN", a)),
        );
        inputs::distinct_listeners(&listeners, &mut problems);
        let plan = (|| {
            acme?;
            Some(LbPlan {
                client_id: format!("lb-{}", node_id?),
                balancer: Balancer {
                    tls: tls?,
                    balance: args.balance.clone(),
                    access_log: !args.no_access_log,
                    https: args.https_listen,
                    http: args.http_listen,
                    limits: limits?,
                    trusted_caches,
                },
                keys: keys?,
                broker: args.broker.mqtt_url.clone(),
                metrics_listen: args.metrics_listen,
            })
        })();
        problems.or(plan)
    }
}

/// How the load balancer serves, for `sealcast lb` and `up` alike.
pub(crate) struct Balancer {
    pub(crate) tls: TlsPlan,
    pub(crate) balance: BalanceArgs,
    /// A line per request.
    pub(crate) access_log: bool,
    pub(crate) https: SocketAddr,
    pub(crate) http: SocketAddr,
    /// Per-client budgets (both listeners); `None`: `--no-limits`.
    pub(crate) limits: Option<loadbalancer::limits::ClientLimits>,
    /// Whose `X-Forwarded-For` names the client on the origin listener.
    pub(crate) trusted_caches: loadbalancer::caches::TrustedCaches,
}

/// What the load balancer reads from the key directory (`up` makes them on its first
/// start, so it derives these after).
pub(crate) struct BalancerKeys {
    pub(crate) cookies: StickyCookies,
    pub(crate) presences: PresenceVerifier,
    /// Checks playback tokens where requests arrive; `None` without a playback key.
    pub(crate) tokens: Option<Arc<TokenVerifier>>,
}

impl BalancerKeys {
    /// The sticky-cookie key, the root key that broadcast presences are checked against,
    /// and the playback key.
    pub(crate) fn derive(keys: &KeyDir, problems: &mut Problems) -> Option<Self> {
        let cookies = inputs::cookies(keys, problems);
        let presences = inputs::presences(keys, problems);
        let tokens = inputs::playback_verifier(keys, problems);
        Some(BalancerKeys {
            cookies: cookies?,
            presences: presences?,
            tokens: tokens?,
        })
    }
}

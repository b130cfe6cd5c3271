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
use loadbalancer::quic_door::{DoorLimits, QuicDoorConfig, RelayChecks};

use super::inputs::{self, TlsPlan};
use super::problem::Problems;
use crate::cli::{BalanceArgs, LbArgs, QuicDoorArgs};

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
        let quic = quic_door(&args.quic, &mut problems);
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
                    quic: quic?,
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
    /// The QUIC front door's UDP address and relays; `None`: no door (`--moq-relays` not
    /// given, and always in `up`, whose viewers dial its relay directly).
    pub(crate) quic: Option<(SocketAddr, QuicDoorConfig)>,
}

/// The QUIC front door of `args`: off without relays; each relay a `host:port` with a
/// port, the flow cap at least 1.
fn quic_door(
    args: &QuicDoorArgs,
    problems: &mut Problems,
) -> Option<Option<(SocketAddr, QuicDoorConfig)>> {
    let relays: Vec<String> = args
        .moq_relays
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if relays.is_empty() {
        return Some(None);
    }
    let mut ok = true;
    for relay in &relays {
        let port = relay
            .rsplit_once(':')
            .and_then(|(host, port)| (!host.is_empty()).then_some(port))
            .and_then(|port| port.parse::<u16>().ok())
            .filter(|port| *port != 0);
        if port.is_none() {
            problems.add(
                "SEALCAST_LB_MOQ_RELAYS",
                format!("{relay:?} is not host:port (a relay's QUIC address, e.g. relay:443)"),
            );
            ok = false;
        }
    }
    if args.quic_max_flows == 0 {
        problems.add(
            "SEALCAST_LB_QUIC_MAX_FLOWS",
            "0 flows would refuse every viewer; give at least 1",
        );
        ok = false;
    }
    ok.then(|| {
        Some((
            args.quic_listen,
            QuicDoorConfig {
                relays,
                limits: DoorLimits {
                    max_flows: args.quic_max_flows,
                    ..DoorLimits::default()
                },
                checks: RelayChecks::default(),
            },
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quic_door_is_on_with_relays_that_name_a_port() {
        let args = |relays: &[&str], max_flows: usize| QuicDoorArgs {
            moq_relays: relays.iter().map(|r| (*r).to_owned()).collect(),
            quic_listen: "0.0.0.0:443".parse().expect("address"),
            quic_max_flows: max_flows,
        };
        let mut problems = Problems::default();
        assert!(matches!(
            quic_door(&args(&[], 8), &mut problems),
            Some(None)
        ));
        let Some(Some((listen, door))) =
            quic_door(&args(&["relay:4443", " 10.0.0.7:443 "], 8), &mut problems)
        else {
            panic!("no door: {:?}", problems.into_vec());
        };
        assert_eq!(listen.port(), 443);
        assert_eq!(door.relays, ["relay:4443", "10.0.0.7:443"]);
        assert_eq!(door.limits.max_flows, 8);
        assert!(problems.into_vec().is_empty());
        for bad in [
            &["relay"][..],
            &[":4443"][..],
            &["relay:0"][..],
            &["relay:http"][..],
        ] {
            let mut problems = Problems::default();
            assert!(quic_door(&args(bad, 8), &mut problems).is_none(), "{bad:?}");
            assert_eq!(problems.into_vec().len(), 1, "{bad:?}");
        }
        let mut problems = Problems::default();
        assert!(quic_door(&args(&["relay:4443"], 0), &mut problems).is_none());
    }
}

//! The MoQ relay tier and the QUIC front door in the rendered compose file (issue 48):
//! `relay` scales like `broadcast` (no name, address or host port of its own); viewers
//! reach the relays only through the load balancers' UDP port, which lb1 publishes beside
//! HTTPS and both balancers forward to the `relay` replicas on the port they listen on;
//! every broadcast node publishes to the tier over TLS checked against the cluster CA and
//! names the front door to its viewers; the relays' cluster survives any one relay's death
//! (every replica dials both roots, one root the other) and every name a relay or a node
//! dials is one the server certificate covers; every relay runs behind its gate
//! (`sealcast moq-gate -- moq-relay ...`, no public rule of its own) with the tier's key,
//! which the broadcast nodes hold too. Hardening (non-root, no capabilities, read-only
//! root) is `hardening`'s and `topology`'s, over every service, relays included.

use std::collections::{BTreeMap, BTreeSet};

use crate::project::{Config, Project, Service};
use crate::{config, init, port_of, Findings};

/// The relay services: the two roots and the scalable replicas viewers reach.
const RELAYS: [&str; 3] = ["relay-root1", "relay-root2", "relay"];

/// The service's moq-relay options, `--name=value` (or `--name value`) as a map of every
/// value given.
fn options(service: &Service<'_>) -> BTreeMap<String, Vec<String>> {
    let words = service.words("command").unwrap_or_default();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if let Some((name, value)) = word.split_once('=') {
            out.entry(name.to_owned())
                .or_default()
                .extend(value.split(',').map(str::to_owned));
        } else if word.starts_with("--") {
            let value = words.get(i + 1).filter(|v| !v.starts_with("--"));
            out.entry(word.clone()).or_default().extend(
                value
                    .into_iter()
                    .flat_map(|v| v.split(',').map(str::to_owned)),
            );
            if value.is_some() {
                i += 1;
            }
        }
        i += 1;
    }
    out
}

/// The host and port of an `https://host:port/` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// The frontend aliases of `service`, and its service name (compose's DNS answers both).
fn names(service: &Service<'_>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = service.body["networks"]["frontend"]["aliases"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(crate::project::scalar)
        .collect();
    out.insert(service.name.clone());
    out
}

#[test]
fn the_relay_tier_scales_and_is_reached_through_the_quic_door() {
    let project = init();
    check_relay_tier(&project).assert_none("the MoQ relay tier");
}

/// The findings of [`the_relay_tier_scales_and_is_reached_through_the_quic_door`].
pub(crate) fn check_relay_tier(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    for name in RELAYS {
        f.check(config.service(name).is_ok(), || {
            format!("no {name} service")
        });
    }
    if !f.0.is_empty() {
        return f;
    }
    check_relays(&config, &mut f);
    check_door(&config, &mut f);
    check_nodes(&config, &mut f);
    let four = project
        .config_with(&[], &[("RELAY_REPLICAS", "4")])
        .unwrap();
    let replicas = four.service("relay").unwrap().replicas();
    f.check(replicas == Some(4), || {
        format!("RELAY_REPLICAS=4 gives {replicas:?} relay replicas")
    });
    f
}

/// Each relay: on the frontend only, no host port, QUIC and HTTP on one port (the door's
/// liveness check is a TCP connect there), the cluster's TLS pair, peers it can verify.
fn check_relays(config: &Config, f: &mut Findings) {
    let relay = config.service("relay").unwrap();
    f.check(
        relay.address("frontend").is_none() && relay.replicas() == Some(2),
        || {
            format!(
                "relay: a fixed address, or {:?} replicas by default, not 2",
                relay.replicas()
            )
        },
    );
    let every_name: BTreeMap<String, &str> = RELAYS
        .iter()
        .flat_map(|r| {
            names(&config.service(r).unwrap())
                .into_iter()
                .map(move |n| (n, *r))
        })
        .collect();
    for name in RELAYS {
        let service = config.service(name).unwrap();
        f.check(service.ports().unwrap().is_empty(), || {
            format!("{name} publishes host ports: viewers reach relays through the QUIC door")
        });
        f.check(
            service.networks() == BTreeSet::from(["frontend".to_owned()]),
            || {
                format!(
                    "{name} is on {:?}, not the frontend alone",
                    service.networks()
                )
            },
        );
        let opts = options(&service);
        let one = |key: &str| opts.get(key).and_then(|v| v.first().cloned());
        let quic = one("--listen").and_then(|a| port_of(&a));
        let http = one("--web-http-listen").and_then(|a| port_of(&a));
        f.check(quic.is_some() && quic == http, || {
            format!("{name}: QUIC on {quic:?} and HTTP on {http:?}, not one port")
        });
        f.check(
            one("--listen-tls-cert").as_deref() == Some("/etc/sealcast/tls/server.pem")
                && one("--listen-tls-key").as_deref() == Some("/etc/sealcast/tls/server.key")
                && !opts.contains_key("--listen-tls-generate"),
            || format!("{name} does not serve the cluster's server certificate: {opts:?}"),
        );
        let mounts: BTreeMap<String, String> = service
            .binds()
            .unwrap()
            .into_iter()
            .filter_map(|(source, target, _)| {
                Some((target, config.relative(&source)?.display().to_string()))
            })
            .collect();
        f.check(
            mounts.get("/etc/sealcast/tls").map(String::as_str) == Some("deploy/state/lb-tls")
                && one("--connect-tls-root")
                    .and_then(|ca| mounts.get(&ca).cloned())
                    .as_deref()
                    == Some("certs/generated/ca.pem"),
            || format!("{name} mounts {mounts:?}: not the TLS pair and the CA it names"),
        );
        // Behind its gate: the gate runs the relay and is its only auth.
        let words = service.words("command").unwrap_or_default();
        f.check(
            words.first().map(String::as_str) == Some("moq-gate")
                && words
                    .iter()
                    .skip_while(|w| *w != "--")
                    .nth(1)
                    .map(String::as_str)
                    == Some("moq-relay")
                && !opts.keys().any(|k| k.starts_with("--auth")),
            || format!("{name} does not run moq-relay behind `sealcast moq-gate` alone: {words:?}"),
        );
        let key = service
            .environment()
            .get("SEALCAST_MOQ_KEY_FILE")
            .and_then(|file| mounts.get(file).cloned());
        f.check(key.as_deref() == Some("deploy/state/moq/key"), || {
            format!("{name}'s gate reads the tier's key from {key:?}, not deploy/state/moq/key")
        });
        // Every peer it dials is a relay service, by a name the certificate covers, on
        // the port that relay listens on.
        for peer in opts.get("--cluster-connect").into_iter().flatten() {
            let target = host_port(peer);
            let known = target.as_ref().and_then(|(host, port)| {
                let service = every_name.get(host)?;
                let listen = options(&config.service(service).unwrap())
                    .get("--listen")
                    .and_then(|v| v.first().cloned())
                    .and_then(|a| port_of(&a));
                (listen == Some(*port) && host.ends_with(".streaming-cluster.test"))
                    .then_some(*service)
            });
            f.check(known.is_some(), || {
                format!("{name} dials {peer}, which is no relay under a certified name")
            });
        }
    }
    // Survives any one relay's death: each replica dials both roots, one root the other.
    let dials = |name: &str| -> BTreeSet<String> {
        options(&config.service(name).unwrap())
            .get("--cluster-connect")
            .into_iter()
            .flatten()
            .filter_map(|u| every_name.get(&host_port(u)?.0).map(|s| (*s).to_owned()))
            .collect()
    };
    let roots = BTreeSet::from(["relay-root1".to_owned(), "relay-root2".to_owned()]);
    f.check(dials("relay") == roots, || {
        format!("relay dials {:?}, not both roots", dials("relay"))
    });
    let between = dials("relay-root1").len() + dials("relay-root2").len();
    f.check(
        dials("relay-root2") == BTreeSet::from(["relay-root1".to_owned()])
            || dials("relay-root1") == BTreeSet::from(["relay-root2".to_owned()]),
        || format!("the roots are not linked ({between} dials between them)"),
    );
}

/// Both balancers forward to the `relay` replicas; lb1 publishes the door's UDP port.
fn check_door(config: &Config, f: &mut Findings) {
    let relay = config.service("relay").unwrap();
    let relay_port = options(&relay)
        .get("--listen")
        .and_then(|v| v.first().cloned())
        .and_then(|a| port_of(&a));
    for lb in ["lb1", "lb2"] {
        let env = config.service(lb).unwrap().environment();
        let relays = env
            .get("SEALCAST_LB_MOQ_RELAYS")
            .cloned()
            .unwrap_or_default();
        f.check(
            relay_port.is_some_and(|p| relays == format!("relay:{p}")),
            || format!("{lb}: SEALCAST_LB_MOQ_RELAYS is {relays:?}, not relay:{relay_port:?}"),
        );
        let listen = env.get("SEALCAST_LB_QUIC_LISTEN").and_then(|a| port_of(a));
        f.check(listen == Some(443), || {
            format!("{lb}: the QUIC door listens on {listen:?}, not 443 beside HTTPS")
        });
    }
    // lb1's published ports, as written (the protocol is in the short form).
    let raw: Vec<String> = config.service("lb1").unwrap().body["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| match p {
            serde_yaml::Value::Mapping(_) => format!(
                "{}:{}/{}",
                crate::project::scalar(&p["published"]).unwrap_or_default(),
                crate::project::scalar(&p["target"]).unwrap_or_default(),
                crate::project::scalar(&p["protocol"]).unwrap_or_else(|| "tcp".into()),
            ),
            other => crate::project::scalar(other).unwrap_or_default(),
        })
        .collect();
    f.check(raw.iter().any(|p| p.ends_with("443/udp")), || {
        format!("lb1 publishes {raw:?}: no UDP port for the QUIC door")
    });
}

/// Every broadcast node publishes to both roots of the tier, each by a certified name (so
/// no one relay's death takes a stream's route away), and names the door.
fn check_nodes(config: &Config, f: &mut Findings) {
    let broadcast = config.service("broadcast").unwrap();
    let env = broadcast.environment();
    let roots: Vec<_> = ["relay-root1", "relay-root2"]
        .iter()
        .filter_map(|name| config.service(name).ok())
        .collect();
    let given = env
        .get("SEALCAST_MOQ_RELAY_URL")
        .cloned()
        .unwrap_or_default();
    let publish: Vec<_> = given.split(',').map(host_port).collect();
    let reaches = |root: &Service<'_>| {
        let port = options(root)
            .get("--listen")
            .and_then(|v| v.first().cloned())
            .and_then(|a| port_of(&a));
        publish.iter().flatten().any(|(host, p)| {
            names(root).contains(host)
                && host.ends_with(".streaming-cluster.test")
                && Some(*p) == port
        })
    };
    f.check(
        roots.len() == 2
            && roots.iter().all(reaches)
            && publish.iter().all(Option::is_some)
            && publish.len() == roots.len(),
        || {
            format!(
                "broadcast publishes to {given:?}, not to both roots of the tier by certified names"
            )
        },
    );
    let ca = env
        .get("SEALCAST_MOQ_RELAY_CA")
        .cloned()
        .unwrap_or_default();
    let mounted = broadcast
        .binds()
        .unwrap()
        .into_iter()
        .find(|(_, target, _)| *target == ca)
        .and_then(|(source, _, _)| Some(config.relative(&source)?.display().to_string()));
    f.check(mounted.as_deref() == Some("certs/generated/ca.pem"), || {
        format!("broadcast checks the relay against {ca:?}, mounted from {mounted:?}, not the cluster CA")
    });
    let key = env.get("SEALCAST_MOQ_KEY_FILE").and_then(|file| {
        broadcast
            .binds()
            .unwrap()
            .into_iter()
            .find(|(_, target, _)| target == file)
            .and_then(|(source, _, _)| Some(config.relative(&source)?.display().to_string()))
    });
    f.check(key.as_deref() == Some("deploy/state/moq/key"), || {
        format!("broadcast reads the relay tier's key from {key:?}, not deploy/state/moq/key")
    });
    let viewer = env
        .get("SEALCAST_MOQ_VIEWER_URL")
        .and_then(|u| host_port(u));
    f.check(
        viewer
            .as_ref()
            .is_some_and(|(host, port)| *port == 443 && !host.starts_with("relay")),
        || format!("broadcast names {viewer:?} to viewers, not the load balancers' QUIC door"),
    );
}

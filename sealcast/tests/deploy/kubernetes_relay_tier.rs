//! The MoQ relay tier in `deploy/kubernetes/` (issue 48), read from the rendered overlays
//! as [`crate::relay_tier`] reads compose's (the parity check of [`crate::kubernetes`]
//! compares each relay's environment, ports, healthcheck and mounts with its compose
//! service's; this is the rest):
//!
//! - Every relay (relay-root1, relay-root2, the scalable `relay`) runs moq-relay behind
//!   its gate (`sealcast moq-gate -- moq-relay ...`, no auth option of its own), QUIC and
//!   its HTTP side on one port, serving the Secret sealcast-relay-tls, checking its peers
//!   against the tier's CA (sealcast-trust's relay-ca.pem), with the tier's key
//!   (sealcast-moq-key) and its gate's socket in a writable directory of its own; the
//!   roots are one pod each, the replicas two or more, and no relay takes a node's port.
//! - Who dials which relay is compose's: the broadcast nodes (SEALCAST_MOQ_RELAY_URL), the
//!   relays (`--cluster-connect`) and the QUIC door (SEALCAST_LB_MOQ_RELAYS) reach, by
//!   their Services, the relays compose's reach by their names; every replica dials both
//!   roots and one root the other; the door's Service is headless (every replica's
//!   address, as compose's DNS answers).
//! - The door: the load balancers take UDP 443 beside HTTPS, and one Service of type
//!   LoadBalancer sends both protocols of 443 to them.
//! - The broadcast nodes check the relays against the tier's CA and hold its key.
//! - The NetworkPolicies let exactly those paths reach the relays (and the door's TCP
//!   check of each replica), and compose's networks allow them too.
//! - secrets.sh makes the tier's key (64 hex digits, kept from run to run, in no rendered
//!   manifest) and a relay certificate that chains to the CA the nodes and relays are
//!   given and names every relay they dial, and the viewers' name (`--name`).
//! - Each check fails on the rendered manifests with one thing broken.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use base64::Engine as _;
use serde_yaml::Value;

use crate::dockerfile::{self, Instruction};
use crate::kubernetes::{
    assert_catches, compose_allows, container_mut, doc_mut, documents, drop_mount, k8s_allows,
    kind_of, labels, name_of, render, run, secrets_sh, sources, tcp, udp, Endpoint, Mutation,
    Protocol, Source, Workload, OVERLAYS, ROLES,
};
use crate::project::{Config, Project};
use crate::{config, init, port_of, repo, Findings};

/// The relays, named as compose names its services: the two roots and the scalable
/// replicas the QUIC door forwards viewers to.
pub(crate) const RELAYS: [&str; 3] = ["relay-root1", "relay-root2", "relay"];

/// The roots: one pod each, dialed by every replica.
const ROOTS: [&str; 2] = ["relay-root1", "relay-root2"];

/// The relays' certificate and key: the Secret, and its keys.
const RELAY_TLS: (&str, [&str; 2]) = ("sealcast-relay-tls", ["tls.crt", "tls.key"]);

/// The tier's CA certificate: what the nodes and the relays check the relays against.
const RELAY_CA: (&str, &str) = ("sealcast-trust", "relay-ca.pem");

/// The tier's key: the gates' one secret, the nodes' too.
const MOQ_KEY: (&str, &str) = ("sealcast-moq-key", "key");

/// The suffix of compose's network aliases for the relays.
const COMPOSE_DOMAIN: &str = ".streaming-cluster.test";

/// `--name=value` words as a map of every value given (split at commas); a `--name`
/// without a value maps to nothing. Both compose's `command` and the manifests' `args`
/// write moq-relay's options so.
fn options(words: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for word in words.iter().filter(|w| w.starts_with("--") && *w != "--") {
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        out.entry(name.to_owned()).or_default().extend(
            value
                .split(',')
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        );
    }
    out
}

/// A container's `args`.
fn args(workload: &Workload<'_>) -> Vec<String> {
    crate::kubernetes::items(&workload.container["args"])
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// The one value of option `name`.
fn one(opts: &BTreeMap<String, Vec<String>>, name: &str) -> Option<String> {
    opts.get(name).and_then(|v| v.first().cloned())
}

/// The host and port of a URL (`https://host:port/`).
fn url_host_port(text: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(text).ok()?;
    Some((url.host_str()?.to_owned(), url.port_or_known_default()?))
}

/// The host and port of `host:port`.
fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, _) = text.rsplit_once(':')?;
    Some((host.to_owned(), port_of(text)?))
}

/// What a role dials, by the names and ports it is given: the relays' URLs for the
/// broadcast nodes and the relays, `host:port` for the door.
fn dialed(role_name: &str, env: &BTreeMap<String, String>, words: &[String]) -> Vec<String> {
    match role_name {
        "lb" => env
            .get("SEALCAST_LB_MOQ_RELAYS")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        "broadcast" => env
            .get("SEALCAST_MOQ_RELAY_URL")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        _ => options(words)
            .remove("--cluster-connect")
            .unwrap_or_default(),
    }
}

/// Where a dial goes inside the cluster: the relay whose pods the Service of that name
/// selects (it alone among the roles' workloads) and the container port the Service's
/// port of `protocol` leads to.
fn reached(
    docs: &[Value],
    host: &str,
    port: u16,
    protocol: Protocol,
) -> Option<(&'static str, Endpoint)> {
    let service = docs
        .iter()
        .find(|d| kind_of(d) == "Service" && name_of(d) == host)?;
    let selector = labels(&service["spec"]["selector"]);
    let mut picked = ROLES.into_iter().filter(|r| {
        Workload::find(docs, r).is_ok_and(|w| {
            let pod = w.pod_labels();
            !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
        })
    });
    let (relay, None) = (picked.next()?, picked.next()) else {
        return None;
    };
    let relay = RELAYS.into_iter().find(|r| *r == relay)?;
    let workload = Workload::find(docs, relay).ok()?;
    let entry = crate::kubernetes::items(&service["spec"]["ports"]).find(|p| {
        p["port"].as_u64() == Some(u64::from(port))
            && Protocol::of(&p["protocol"]).ok() == Some(protocol)
    })?;
    let target = match &entry["targetPort"] {
        Value::Null => &entry["port"],
        target => target,
    };
    Some((relay, workload.endpoint(target, &entry["protocol"]).ok()??))
}

/// Who dials which relay in the rendered manifests: (dialer, relay, the relay's port).
/// A name that reaches no relay is a finding.
fn k8s_dials(docs: &[Value], f: &mut Findings) -> BTreeSet<(&'static str, &'static str, Endpoint)> {
    let mut out = BTreeSet::new();
    for dialer in ["lb", "broadcast"].into_iter().chain(RELAYS) {
        let Ok(workload) = Workload::find(docs, dialer) else {
            f.fail(format!("no {dialer} workload"));
            continue;
        };
        for target in dialed(dialer, &workload.environment(), &args(&workload)) {
            let parsed = match dialer {
                "lb" => host_port(&target),
                _ => url_host_port(&target),
            };
            let relay = parsed.and_then(|(host, port)| reached(docs, &host, port, Protocol::Udp));
            match relay {
                Some((relay, at)) => {
                    out.insert((dialer, relay, at));
                }
                None => f.fail(format!(
                    "{dialer} dials {target}, which is no relay's Service on its QUIC port"
                )),
            }
        }
    }
    out
}

/// Who dials which relay in the compose file: (dialer's role, relay), by compose's names
/// (a network alias is its service's name under the cluster's domain).
fn compose_dials(config: &Config) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for service in config.services() {
        let dialer = match service.name.as_str() {
            "lb1" | "lb2" => "lb",
            name => name,
        };
        let words = service.words("command").unwrap_or_default();
        for target in dialed(dialer, &service.environment(), &words) {
            let host = match dialer {
                "lb" => host_port(&target).map(|(h, _)| h),
                _ => url_host_port(&target).map(|(h, _)| h),
            };
            let host = host.unwrap_or(target);
            let name = host.strip_suffix(COMPOSE_DOMAIN).unwrap_or(&host);
            out.insert((dialer.to_owned(), name.to_owned()));
        }
    }
    out
}

/// Each relay: its gate in front, its ports, its certificate, its peers' CA, the tier's
/// key, the gate's socket directory, its count.
fn check_relays(docs: &[Value], f: &mut Findings) {
    for name in RELAYS {
        let workload = match Workload::find(docs, name) {
            Ok(w) => w,
            Err(e) => {
                f.fail(format!("{e:#}"));
                continue;
            }
        };
        let words = args(&workload);
        let opts = options(&words);
        // Behind its gate: the image's entrypoint (sealcast) runs the gate, which runs the
        // relay and is its only auth.
        f.check(
            workload.container["command"].is_null()
                && words
                    .iter()
                    .take(3)
                    .map(String::as_str)
                    .eq(["moq-gate", "--", "moq-relay"])
                && !opts.keys().any(|k| k.starts_with("--auth")),
            || format!("{name} does not run moq-relay behind `sealcast moq-gate` alone: {words:?}"),
        );
        let quic = one(&opts, "--listen").and_then(|a| port_of(&a));
        let http = one(&opts, "--web-http-listen").and_then(|a| port_of(&a));
        let endpoints = workload.endpoints().unwrap_or_default();
        f.check(
            quic.is_some_and(|p| {
                http == Some(p) && endpoints.contains(&udp(p)) && endpoints.contains(&tcp(p))
            }),
            || {
                format!(
                    "{name}: QUIC on {quic:?} and HTTP on {http:?}, not one port its container has in both protocols ({endpoints:?})"
                )
            },
        );
        f.check(
            crate::kubernetes::items(&workload.container["ports"]).all(|p| p["hostPort"].is_null()),
            || {
                format!(
                    "{name} takes a port of its node: viewers reach relays through the QUIC door"
                )
            },
        );
        let from = |file: Option<String>| file.and_then(|file| workload.secret_file(&file));
        let secret = |pair: (&str, &str)| Some((pair.0.to_owned(), pair.1.to_owned()));
        let (cert, key) = (
            from(one(&opts, "--listen-tls-cert")),
            from(one(&opts, "--listen-tls-key")),
        );
        f.check(
            cert == secret((RELAY_TLS.0, RELAY_TLS.1[0]))
                && key == secret((RELAY_TLS.0, RELAY_TLS.1[1]))
                && !opts.contains_key("--listen-tls-generate"),
            || {
                format!(
                    "{name} serves {cert:?} and {key:?}, not the Secret {}",
                    RELAY_TLS.0
                )
            },
        );
        let ca = from(one(&opts, "--connect-tls-root"));
        f.check(ca == secret(RELAY_CA), || {
            format!("{name} checks its peers against {ca:?}, not {RELAY_CA:?}")
        });
        let env = workload.environment();
        let moq_key = from(env.get("SEALCAST_MOQ_KEY_FILE").cloned());
        f.check(moq_key == secret(MOQ_KEY), || {
            format!("{name}'s gate reads the tier's key from {moq_key:?}, not {MOQ_KEY:?}")
        });
        // The gate binds its socket (and writes the cluster credential's file) in a
        // directory of its own that it may write: the root file system is read-only.
        let socket = env
            .get("SEALCAST_MOQ_GATE_SOCKET")
            .cloned()
            .unwrap_or_else(|| "/tmp/moq-gate.sock".to_owned());
        let dir = socket.rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
        let writable = crate::kubernetes::items(&workload.container["volumeMounts"]).any(|m| {
            m["mountPath"].as_str() == Some(dir)
                && m["readOnly"].as_bool() != Some(true)
                && workload
                    .volume(m["name"].as_str().unwrap_or_default())
                    .is_some_and(|v| !v["emptyDir"].is_null())
        });
        f.check(writable, || {
            format!("{name}: the gate's socket {socket} is in no writable emptyDir of its own")
        });
        let replicas = workload.doc["spec"]["replicas"].as_u64();
        let (want, enough) = if ROOTS.contains(&name) {
            ("1", replicas == Some(1))
        } else {
            ("2 or more", replicas.is_some_and(|r| r >= 2))
        };
        f.check(enough, || {
            format!("{name}: {replicas:?} replicas, not {want}")
        });
    }
}

/// The links: compose's, by the Services' names; every replica dials both roots and one
/// root the other; the door's Service lists every replica.
fn check_links(docs: &[Value], compose: &BTreeSet<(String, String)>, f: &mut Findings) {
    let dials = k8s_dials(docs, f);
    let here: BTreeSet<(String, String)> = dials
        .iter()
        .map(|(from, to, _)| ((*from).to_owned(), (*to).to_owned()))
        .collect();
    f.check(&here == compose, || {
        format!("who dials which relay here: {here:?}; in compose: {compose:?}")
    });
    let of = |dialer: &str| -> BTreeSet<&str> {
        dials
            .iter()
            .filter(|(from, _, _)| *from == dialer)
            .map(|(_, to, _)| *to)
            .collect()
    };
    f.check(of("relay") == BTreeSet::from(ROOTS), || {
        format!("relay dials {:?}, not both roots", of("relay"))
    });
    let (one_way, other_way) = (of(ROOTS[1]), of(ROOTS[0]));
    f.check(
        (one_way == BTreeSet::from([ROOTS[0]]) && other_way.is_empty())
            || (other_way == BTreeSet::from([ROOTS[1]]) && one_way.is_empty()),
        || format!("the roots are not linked one way: {one_way:?}, {other_way:?}"),
    );
    // The door looks its relays up and checks each one: a headless Service answers with
    // every ready replica's address (a ClusterIP would be one address, kube-proxy's).
    let door = Workload::find(docs, "lb")
        .ok()
        .and_then(|lb| lb.environment().get("SEALCAST_LB_MOQ_RELAYS").cloned())
        .unwrap_or_default();
    for (host, _) in door.split(',').filter_map(host_port) {
        let headless = docs.iter().any(|d| {
            kind_of(d) == "Service"
                && name_of(d) == host
                && d["spec"]["clusterIP"].as_str() == Some("None")
        });
        f.check(headless, || {
            format!("the QUIC door forwards to {host}, which is no headless Service: it would see one address, not each replica")
        });
    }
}

/// The door: UDP 443 beside HTTPS, on the load balancers and their Service.
fn check_door(docs: &[Value], f: &mut Findings) {
    let Ok(lb) = Workload::find(docs, "lb") else {
        f.fail("no lb workload");
        return;
    };
    let listen = lb
        .environment()
        .get("SEALCAST_LB_QUIC_LISTEN")
        .and_then(|a| port_of(a));
    let endpoints = lb.endpoints().unwrap_or_default();
    f.check(
        listen == Some(443) && endpoints.contains(&udp(443)) && endpoints.contains(&tcp(443)),
        || {
            format!(
                "lb: the QUIC door listens on {listen:?}, not UDP 443 beside HTTPS ({endpoints:?})"
            )
        },
    );
    let pod = lb.pod_labels();
    let both = docs
        .iter()
        .filter(|d| kind_of(d) == "Service" && d["spec"]["type"].as_str() == Some("LoadBalancer"))
        .filter(|d| {
            labels(&d["spec"]["selector"])
                .iter()
                .all(|(k, v)| pod.get(k) == Some(v))
        })
        .any(|d| {
            let sent: BTreeSet<Endpoint> = crate::kubernetes::items(&d["spec"]["ports"])
                .filter(|p| p["port"].as_u64() == Some(443))
                .filter_map(|p| lb.endpoint(&p["targetPort"], &p["protocol"]).ok()?)
                .collect();
            sent == BTreeSet::from([tcp(443), udp(443)])
        });
    f.check(both, || {
        "no Service of type LoadBalancer sends both TCP and UDP 443 to the load balancers: viewers dial the QUIC door at the HTTPS address".to_owned()
    });
}

/// The broadcast nodes: the tier's CA and key, and a viewers' URL of the operator's.
fn check_nodes(docs: &[Value], f: &mut Findings) {
    let Ok(broadcast) = Workload::find(docs, "broadcast") else {
        f.fail("no broadcast workload");
        return;
    };
    let env = broadcast.environment();
    let from = |var: &str| env.get(var).and_then(|file| broadcast.secret_file(file));
    let pair = |p: (&str, &str)| Some((p.0.to_owned(), p.1.to_owned()));
    f.check(from("SEALCAST_MOQ_RELAY_CA") == pair(RELAY_CA), || {
        format!(
            "broadcast checks the relays against {:?}, not {RELAY_CA:?}",
            from("SEALCAST_MOQ_RELAY_CA")
        )
    });
    f.check(from("SEALCAST_MOQ_KEY_FILE") == pair(MOQ_KEY), || {
        format!(
            "broadcast reads the relay tier's key from {:?}, not {MOQ_KEY:?}",
            from("SEALCAST_MOQ_KEY_FILE")
        )
    });
    let viewer = crate::kubernetes::items(&broadcast.container["env"])
        .find(|v| v["name"].as_str() == Some("SEALCAST_MOQ_VIEWER_URL"));
    f.check(
        viewer.is_some_and(|v| !v["valueFrom"]["configMapKeyRef"].is_null()),
        || "broadcast does not take the viewers' MoQ URL from a ConfigMap of the operator's: only they know the name the door has".to_owned(),
    );
}

/// The NetworkPolicies let exactly the dials reach the relays (and the door's TCP check
/// of each replica), and compose's networks allow each of them.
fn check_policies(
    docs: &[Value],
    namespace: &str,
    compose: (&Config, &[Instruction]),
    f: &mut Findings,
) {
    let mut ignored = Findings::default();
    let mut used: BTreeSet<(Source, &'static str, Endpoint)> = BTreeSet::new();
    for (dialer, relay, at) in k8s_dials(docs, &mut ignored) {
        used.insert((Source::Role(dialer), relay, at));
        if dialer == "lb" {
            used.insert((Source::Role(dialer), relay, tcp(at.0)));
        }
    }
    for (source, relay, at) in &used {
        f.check(compose_allows(compose.0, compose.1, source, relay, at.0), || {
            format!("{source:?} to {relay}:{at:?} is refused by the compose networks, and the tier uses it")
        });
    }
    for relay in RELAYS {
        let Ok(to) = Workload::find(docs, relay) else {
            continue;
        };
        for at in to.endpoints().unwrap_or_default() {
            for source in sources() {
                let wanted = used.contains(&(source.clone(), relay, at));
                match k8s_allows(docs, namespace, &source, &to, at) {
                    Ok(allowed) => f.check(allowed == wanted, || {
                        if wanted {
                            format!("{source:?} to {relay}:{at:?} is refused here, and the tier uses it")
                        } else {
                            format!("{source:?} may reach {relay}:{at:?} here, which nothing of the tier uses")
                        }
                    }),
                    Err(e) => f.fail(format!("{e:#}")),
                }
            }
        }
    }
}

/// What the checks compare the manifests with: the compose file as the compose tool
/// renders it (in a project copy after the init script), the image's instructions, and
/// who dials which relay there.
struct Compose {
    /// Holds the copy `config` reads its bind sources in.
    _project: Project,
    config: Config,
    image: Vec<Instruction>,
    dials: BTreeSet<(String, String)>,
}

impl Compose {
    fn read() -> Self {
        let project = init();
        let config = config(&project);
        let dials = compose_dials(&config);
        Compose {
            _project: project,
            config,
            image: dockerfile::instructions(&repo()).unwrap(),
            dials,
        }
    }

    /// Every check of this module but the certificates', on one overlay's documents.
    fn check_tier(&self, docs: &[Value], namespace: &str) -> Findings {
        let mut f = Findings::default();
        check_relays(docs, &mut f);
        check_links(docs, &self.dials, &mut f);
        check_door(docs, &mut f);
        check_nodes(docs, &mut f);
        check_policies(docs, namespace, (&self.config, &self.image), &mut f);
        f
    }
}

#[test]
fn kubernetes_relay_tier_mirrors_compose_behind_the_quic_door() {
    let compose = Compose::read();
    let mut f = Findings::default();
    for (dir, namespace) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in compose.check_tier(&docs, namespace).0 {
            f.fail(format!("{dir}: {finding}"));
        }
    }
    f.assert_none("the MoQ relay tier in Kubernetes");
}

/// Sets option `name` of `role_name`'s relay (its arguments) to `value`, or drops it.
fn set_option(docs: &mut [Value], role_name: &str, name: &str, value: Option<&str>) {
    let args = container_mut(docs, role_name)["args"]
        .as_sequence_mut()
        .unwrap();
    args.retain(|a| {
        !a.as_str()
            .is_some_and(|a| a.starts_with(&format!("{name}=")))
    });
    if let Some(value) = value {
        args.push(Value::String(format!("{name}={value}")));
    }
}

fn set_env(docs: &mut [Value], role_name: &str, var: &str, value: &str) {
    for v in container_mut(docs, role_name)["env"]
        .as_sequence_mut()
        .unwrap()
    {
        if v["name"].as_str() == Some(var) {
            v["value"] = Value::String(value.to_owned());
        }
    }
}

const MUTATIONS: [Mutation; 10] = [
    (
        "a relay without its gate",
        |docs| {
            let args = container_mut(docs, "relay")["args"]
                .as_sequence_mut()
                .unwrap();
            args.drain(..2);
        },
        "relay does not run moq-relay behind `sealcast moq-gate` alone",
    ),
    (
        "a root that generates its own certificate",
        |docs| {
            set_option(
                docs,
                "relay-root2",
                "--listen-tls-generate",
                Some("localhost"),
            )
        },
        "relay-root2 serves",
    ),
    (
        "the replicas dialing one root",
        |docs| {
            set_option(
                docs,
                "relay",
                "--cluster-connect",
                Some("https://relay-root1:4443/"),
            )
        },
        "relay dials {\"relay-root1\"}, not both roots",
    ),
    (
        "the door forwarding to a root",
        |docs| set_env(docs, "lb", "SEALCAST_LB_MOQ_RELAYS", "relay-root1:4443"),
        "who dials which relay here",
    ),
    (
        "the door's relays behind a ClusterIP",
        |docs| {
            doc_mut(docs, "Service", "relay")["spec"]
                .as_mapping_mut()
                .unwrap()
                .remove("clusterIP");
        },
        "forwards to relay, which is no headless Service",
    ),
    (
        "the Service lb without UDP 443",
        |docs| {
            doc_mut(docs, "Service", "lb")["spec"]["ports"]
                .as_sequence_mut()
                .unwrap()
                .retain(|p| p["protocol"].as_str() != Some("UDP"));
        },
        "no Service of type LoadBalancer sends both TCP and UDP 443",
    ),
    (
        "broadcast without the tier's key",
        |docs| drop_mount(docs, "broadcast", "moq-key"),
        "broadcast reads the relay tier's key from None",
    ),
    (
        "the replicas open to the internet",
        |docs| {
            let rules = doc_mut(docs, "NetworkPolicy", "relay")["spec"]["ingress"]
                .as_sequence_mut()
                .unwrap();
            rules[0].as_mapping_mut().unwrap().remove("from");
        },
        "Internet may reach relay:4443/udp here",
    ),
    (
        "no link between the roots through the policies",
        |docs| {
            doc_mut(docs, "NetworkPolicy", "relay-root1")["kind"] = Value::String("Removed".into())
        },
        "Role(\"relay-root2\") to relay-root1:4443/udp is refused here",
    ),
    (
        "a root's gate socket on the read-only root",
        |docs| drop_mount(docs, "relay-root1", "tmp"),
        "relay-root1: the gate's socket /tmp/moq-gate.sock is in no writable emptyDir",
    ),
];

#[test]
fn kubernetes_relay_tier_checks_catch_drift() {
    let compose = Compose::read();
    let (dir, namespace) = OVERLAYS[1];
    let (_, docs) = render(dir).unwrap();
    assert_catches(&docs, &MUTATIONS, |docs| {
        compose.check_tier(docs, namespace).0
    });
    // The door's UDP rule written without its protocol opens TCP 443 again, not the door.
    let mut tcp_only = docs.clone();
    for port in doc_mut(&mut tcp_only, "NetworkPolicy", "lb")["spec"]["ingress"][0]["ports"]
        .as_sequence_mut()
        .unwrap()
    {
        port.as_mapping_mut().unwrap().remove("protocol");
    }
    let lb = Workload::find(&tcp_only, "lb").unwrap();
    assert!(
        !k8s_allows(&tcp_only, namespace, &Source::Internet, &lb, udp(443)).unwrap(),
        "a rule without a protocol (TCP) lets the door's datagrams in"
    );
}

// --- the Secrets ---------------------------------------------------------------------------

/// The `data` of Secret `name` in secrets.sh's output, decoded.
fn secret_data(text: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
    let docs = documents(text).unwrap();
    let secret = docs
        .iter()
        .find(|d| kind_of(d) == "Secret" && name_of(d) == name)
        .unwrap_or_else(|| panic!("secrets.sh makes no Secret {name}"));
    labels(&secret["data"])
        .into_iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
            (k, bytes)
        })
        .collect()
}

/// Whether `certificate` (PEM, the first certificate of the file) chains to `ca` and
/// names `host`, as a TLS client checks it (openssl's `verify`).
fn verifies(certificate: &[u8], ca: &[u8], host: &str) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir()?;
    let (cert_file, ca_file) = (dir.path().join("server.pem"), dir.path().join("ca.pem"));
    std::fs::write(&cert_file, certificate)?;
    std::fs::write(&ca_file, ca)?;
    let mut command = Command::new("openssl");
    command
        .args([
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            host,
            "-CAfile",
        ])
        .arg(&ca_file)
        .arg(&cert_file);
    let out = command.output().map_err(|e| {
        anyhow::anyhow!("openssl (which checks the relays' certificate) cannot be run: {e}")
    })?;
    Ok(out.status.success())
}

/// The names the relays are dialed by over TLS: the nodes' and the relays' (the door
/// forwards datagrams and reads no TLS).
fn tls_names(docs: &[Value]) -> BTreeSet<String> {
    ["broadcast"]
        .into_iter()
        .chain(RELAYS)
        .filter_map(|r| Workload::find(docs, r).ok())
        .flat_map(|w| {
            let role_name = w.container["name"].as_str().unwrap_or_default().to_owned();
            dialed(&role_name, &w.environment(), &args(&w))
        })
        .filter_map(|u| url_host_port(&u).map(|(h, _)| h))
        .collect()
}

/// The findings of the certificate check: `certificate` chains to `ca` and names each of
/// `names`.
fn check_certificate(certificate: &[u8], ca: &[u8], names: &BTreeSet<String>) -> Findings {
    let mut f = Findings::default();
    for name in names {
        match verifies(certificate, ca, name) {
            Ok(ok) => f.check(ok, || {
                format!(
                    "the relays' certificate ({}) does not verify for {name} against {RELAY_CA:?}",
                    RELAY_TLS.0
                )
            }),
            Err(e) => f.fail(format!("{e:#}")),
        }
    }
    f
}

#[test]
fn kubernetes_secrets_script_makes_the_relay_key_and_certificate() {
    const VIEWERS: &str = "stream.example.test";
    let state = tempfile::tempdir().unwrap();
    let mut f = Findings::default();
    let mut keys = BTreeSet::new();
    for (dir, namespace) in OVERLAYS {
        let (rendered, docs) = render(dir).unwrap();
        let mut command = secrets_sh(state.path());
        command.args(["--namespace", namespace, "--name", VIEWERS]);
        let text = run(command, "deploy/kubernetes/secrets.sh").unwrap();
        let key = secret_data(&text, MOQ_KEY.0)
            .remove(MOQ_KEY.1)
            .unwrap_or_default();
        let key = String::from_utf8(key).unwrap_or_default();
        f.check(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            || format!("{dir}: {}/{} is not 64 hex digits", MOQ_KEY.0, MOQ_KEY.1),
        );
        f.check(!rendered.contains(&key), || {
            format!("{dir}: the relay tier's key is in the rendered manifests")
        });
        keys.insert(key);
        let tls = secret_data(&text, RELAY_TLS.0);
        let ca = secret_data(&text, RELAY_CA.0)
            .remove(RELAY_CA.1)
            .unwrap_or_default();
        let mut names = tls_names(&docs);
        f.check(names.len() >= ROOTS.len(), || {
            format!("{dir}: the relays are dialed by {names:?} only")
        });
        names.insert(VIEWERS.to_owned());
        let certificate = tls.get(RELAY_TLS.1[0]).cloned().unwrap_or_default();
        for finding in check_certificate(&certificate, &ca, &names).0 {
            f.fail(format!("{dir}: {finding}"));
        }
        f.check(tls.contains_key(RELAY_TLS.1[1]), || {
            format!("{dir}: {} has no {}", RELAY_TLS.0, RELAY_TLS.1[1])
        });
        // The check sees a name the certificate does not have.
        let elsewhere = BTreeSet::from(["relay.elsewhere.test".to_owned()]);
        f.check(
            !check_certificate(&certificate, &ca, &elsewhere)
                .0
                .is_empty(),
            || format!("{dir}: the certificate check passes a name the certificate lacks"),
        );
    }
    f.check(keys.len() == 1, || {
        "a second run of secrets.sh made another relay tier key (every gate and node would need the new one)".to_owned()
    });
    f.assert_none("the relay tier's Secrets");
}

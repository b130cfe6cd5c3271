//! The network split of the rendered compose file: the load balancers, which face the
//! internet, share no network with PostgreSQL and reach the broker only on `control`;
//! PostgreSQL is on the backend alone; everyone reaches what it talks to. And the load
//! balancers' fixed and floating addresses fit the frontend network.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::project::{self, Config, Project};
use crate::{config, init, Findings};

/// The services on network `name`.
fn members(config: &Config, name: &str) -> BTreeSet<String> {
    config
        .services()
        .into_iter()
        .filter(|s| s.networks().contains(name))
        .map(|s| s.name)
        .collect()
}

/// Whether two services share a network.
fn connected(config: &Config, a: &str, b: &str) -> bool {
    let networks = |n: &str| config.service(n).map(|s| s.networks()).unwrap_or_default();
    !networks(a).is_disjoint(&networks(b))
}

/// `a.b.c.d/len` as (network, prefix length).
fn cidr(text: &str) -> Option<(Ipv4Addr, u32)> {
    let (address, len) = text.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((address.parse().ok()?, len))
}

/// Whether `address` is in `net`.
fn contains((net, len): (Ipv4Addr, u32), address: Ipv4Addr) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(net) & mask == u32::from(address) & mask
}

#[test]
fn the_load_balancers_face_the_network_away_from_the_data() {
    let project = init();
    check_networks(&project).assert_none("networks");
}

/// The findings of [`the_load_balancers_face_the_network_away_from_the_data`] for `project`.
pub(crate) fn check_networks(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    let declared = config.declared("networks");
    for name in ["frontend", "backend", "control"] {
        f.check(declared.contains(name), || format!("no network {name}"));
    }
    for s in config.services() {
        let networks = s.networks();
        f.check(!networks.is_empty(), || {
            format!("{} is on compose's default network", s.name)
        });
        f.check(networks.is_subset(&declared), || {
            format!("{} uses an undeclared network: {networks:?}", s.name)
        });
        // Whatever publishes a port on every address faces viewers or publishers.
        if s.ports().unwrap().iter().any(|p| p.host_ip.is_none()) {
            f.check(networks.contains("frontend"), || {
                format!("{} publishes a port but is not on the frontend", s.name)
            });
        }
    }
    let frontend = members(&config, "frontend");
    for name in ["lb1", "lb2", "ingest1", "ingest2", "broadcast"] {
        f.check(frontend.contains(name), || {
            format!("{name} is not on the frontend")
        });
    }
    let networks = |name: &str| config.service(name).unwrap().networks();
    f.check(
        networks("postgres") == BTreeSet::from(["backend".to_owned()]),
        || {
            format!(
                "postgres is on {:?}, not the backend alone",
                networks("postgres")
            )
        },
    );
    // The two brokers (docs/deployment.md, "Two brokers"): on the same networks.
    for broker in ["mosquitto", "mosquitto2"] {
        f.check(
            networks(broker).contains("backend") && !networks(broker).contains("frontend"),
            || format!("{broker} is on {:?}", networks(broker)),
        );
    }
    f.check(networks("mosquitto") == networks("mosquitto2"), || {
        "the two brokers are not on the same networks".into()
    });

    for lb in ["lb1", "lb2"] {
        f.check(!connected(&config, lb, "postgres"), || {
            format!("{lb} shares a network with PostgreSQL: {:?}", networks(lb))
        });
        f.check(!networks(lb).contains("backend"), || {
            format!("{lb} is on the backend")
        });
        for network in networks(lb).iter().filter(|n| *n != "frontend") {
            let others = members(&config, network);
            f.check(
                others
                    .iter()
                    .all(|m| ["lb1", "lb2", "mosquitto", "mosquitto2"].contains(&m.as_str())),
                || format!("{lb}'s network {network} also holds {others:?}"),
            );
        }
        f.check(
            connected(&config, lb, "mosquitto") && connected(&config, lb, "mosquitto2"),
            || format!("{lb} cannot reach both brokers (presences)"),
        );
        f.check(connected(&config, lb, "broadcast"), || {
            format!("{lb} cannot reach the broadcast nodes it proxies to")
        });
    }
    // The push path (ingests to edges over the backend) and everyone's catalog and broker.
    for name in ["ingest1", "ingest2"] {
        f.check(
            networks(name).contains("backend") && networks("broadcast").contains("backend"),
            || format!("{name} does not push to the broadcast nodes over the backend"),
        );
    }
    for name in ["ingest1", "ingest2", "broadcast", "tools"] {
        f.check(
            connected(&config, name, "postgres")
                && connected(&config, name, "mosquitto")
                && connected(&config, name, "mosquitto2"),
            || format!("{name} cannot reach PostgreSQL and both brokers"),
        );
    }
    for (source, ingest) in [("source1", "ingest1"), ("source2", "ingest2")] {
        f.check(
            connected(&config, source, ingest) && connected(&config, source, "postgres"),
            || format!("{source} cannot reach {ingest} and PostgreSQL"),
        );
    }
    for target in ["ingest1", "ingest2", "broadcast", "lb1", "lb2"] {
        f.check(connected(&config, "prometheus", target), || {
            format!("Prometheus cannot scrape {target}")
        });
    }
    f.check(connected(&config, "grafana", "prometheus"), || {
        "Grafana cannot reach Prometheus".into()
    });

    // Addresses: the balancers' own and the floating one in the frontend's subnet, outside
    // the range Docker hands out, all different; each names the other as its peer.
    let ipam = &config.doc["networks"]["frontend"]["ipam"]["config"][0];
    let subnet = project::scalar(&ipam["subnet"]).as_deref().and_then(cidr);
    let range = project::scalar(&ipam["ip_range"]).as_deref().and_then(cidr);
    let (Some(subnet), Some(range)) = (subnet, range) else {
        f.fail("the frontend network has no fixed subnet and ip_range");
        return f;
    };
    let mut own_addresses = BTreeSet::new();
    let mut floating = BTreeSet::new();
    let mut priorities = BTreeSet::new();
    for (lb, peer) in [("lb1", "lb2"), ("lb2", "lb1")] {
        let service = config.service(lb).unwrap();
        let env = service.environment();
        let own = service.address("frontend");
        let peer_address = config.service(peer).unwrap().address("frontend");
        f.check(
            own.is_some() && env.get("SEALCAST_VRRP_SELF") == own.as_ref(),
            || format!("{lb}: its address {own:?} is not its SEALCAST_VRRP_SELF"),
        );
        f.check(
            peer_address.is_some() && env.get("SEALCAST_VRRP_PEERS") == peer_address.as_ref(),
            || format!("{lb}: SEALCAST_VRRP_PEERS is not {peer}'s address"),
        );
        priorities.insert(env.get("SEALCAST_VRRP_PRIORITY").cloned());
        for (what, address) in [
            ("address", own),
            ("SEALCAST_VIP", env.get("SEALCAST_VIP").cloned()),
        ] {
            match address.as_deref().and_then(|a| a.parse::<Ipv4Addr>().ok()) {
                Some(a) => {
                    f.check(contains(subnet, a) && !contains(range, a), || {
                        format!(
                            "{lb}: {what} {a} is not in the frontend subnet outside its ip_range"
                        )
                    });
                    if what == "address" {
                        own_addresses.insert(a);
                    } else {
                        floating.insert(a);
                    }
                }
                None => f.fail(format!("{lb}: no IPv4 {what}")),
            }
        }
    }
    // lb1, lb2 and the floating address they share: three different addresses.
    f.check(floating.len() == 1, || {
        format!("lb1 and lb2 float different addresses: {floating:?}")
    });
    f.check(
        own_addresses.len() == 2 && own_addresses.is_disjoint(&floating),
        || format!("the balancers' addresses {own_addresses:?} and the floating one {floating:?} are not three"),
    );
    f.check(priorities.len() == 2, || {
        format!("the balancers' VRRP priorities are not different: {priorities:?}")
    });

    // Viewers who use these addresses verify the server certificate: the one the init
    // script made names exactly them (with `sealcast certs`' own names), so that asking
    // for them again over a copy keeps it.
    let copy = tempfile::tempdir().unwrap();
    for file in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        std::fs::copy(
            project.dir().join("certs/generated").join(file),
            copy.path().join(file),
        )
        .unwrap();
    }
    let mut certs = std::process::Command::new(crate::bin());
    certs.arg("certs").arg("--certs-dir").arg(copy.path());
    for address in own_addresses.iter().chain(&floating) {
        certs.arg("--name").arg(address.to_string());
    }
    let out =
        testkit::process::run_with_deadline(certs, std::time::Duration::from_secs(30)).unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    f.check(out.status.success() && said.contains("the server certificate is current"), || {
        format!(
            "the server certificate does not name the rendered addresses {own_addresses:?} and {floating:?} (do the compose file's and the init script's defaults differ?): {}",
            said.lines().find(|l| l.contains("server certificate")).unwrap_or_default()
        )
    });
    f
}

#[test]
fn cidr_arithmetic() {
    let net = cidr("10.237.240.0/24").unwrap();
    let range = cidr("10.237.240.128/25").unwrap();
    let a: Ipv4Addr = "10.237.240.11".parse().unwrap();
    assert!(contains(net, a) && !contains(range, a));
    assert!(contains(range, "10.237.240.200".parse().unwrap()));
    assert!(!contains(net, "172.29.241.1".parse().unwrap()));
}

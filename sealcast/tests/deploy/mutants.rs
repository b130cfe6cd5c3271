//! Each check finds what it is for: a copy of the project with one thing broken fails it.
//! The break is a `docker-compose.override.yml` in the copy, which both compose tools merge
//! into the file (the copy never has a developer's own: it is not among what is copied),
//! so these cases do not depend on the compose file's wording.

use crate::project::Project;
use crate::{
    catalog_roles, cdn, check_config, files, hardening, init, keys, monitoring, networks,
    relay_tier, topology, Findings,
};

/// (what is broken, the override, the check that must see it, a word of its finding)
type Case = (
    &'static str,
    &'static str,
    fn(&Project) -> Findings,
    &'static str,
);

const CASES: [Case; 19] = [
    (
        "PostgreSQL on the frontend",
        "postgres:\n    networks: [backend, frontend]",
        networks::check_networks,
        "postgres is on",
    ),
    (
        "lb1 on the backend",
        "lb1:\n    networks: [backend]",
        networks::check_networks,
        "lb1 shares a network with PostgreSQL",
    ),
    (
        "the root key in lb1",
        "lb1:\n    volumes: [\"./deploy/state/keys/root.key:/etc/sealcast/keys/root.key:ro\"]",
        keys::check_own_keys,
        "root.key",
    ),
    (
        "lb2 looking for its keys where the playback key is not",
        "lb2:\n    environment:\n      SEALCAST_KEYS_DIR: /etc/sealcast/elsewhere",
        keys::check_playback_key,
        "nothing at /etc/sealcast/elsewhere/playback-key",
    ),
    (
        "ingest1 with NET_ADMIN",
        "ingest1:\n    cap_add: [NET_ADMIN]",
        hardening::check_privileges,
        "ingest1 adds capabilities",
    ),
    (
        "a writable root file system for broadcast",
        "broadcast:\n    read_only: false",
        hardening::check_privileges,
        "broadcast has a writable root file system",
    ),
    (
        "lb2's peer list widened to the whole network",
        "lb2:\n    environment:\n      SEALCAST_VRRP_PEERS: 10.237.240.11 10.237.240.0",
        hardening::check_vrrp_peers,
        "lb2: its peers are",
    ),
    (
        "ingest2's healthcheck on another port",
        "ingest2:\n    healthcheck:\n      test: [\"CMD\", \"sealcast-healthcheck\", \"9101\"]",
        topology::check_healthchecks,
        "probes Some(9101)",
    ),
    (
        "ingest1 as root",
        "ingest1:\n    user: \"0:0\"",
        topology::check_users,
        "ingest1 runs as root",
    ),
    (
        "a fixed host port on broadcast",
        "broadcast:\n    ports: [\"8080:8080\"]",
        topology::check_broadcast_scales,
        "broadcast publishes host ports",
    ),
    (
        "an address ingest1 cannot listen on",
        "ingest1:\n    environment:\n      SEALCAST_RTMP_LISTEN: 0.0.0.0:19x35",
        check_config::check_every_service,
        "SEALCAST_RTMP_LISTEN",
    ),
    (
        "ingest2's metrics where Prometheus does not scrape",
        "ingest2:\n    environment:\n      SEALCAST_METRICS_LISTEN: 0.0.0.0:9109",
        monitoring::check_provisioning,
        "ingest2:9109",
    ),
    (
        "a mount whose source nothing makes",
        "prometheus:\n    volumes: [\"./deploy/missing.yml:/etc/prometheus/missing.yml:ro\"]",
        files::check_mounted_paths,
        "deploy/missing.yml",
    ),
    (
        "lb1's origin listener where the cache does not look",
        "lb1:\n    environment:\n      SEALCAST_LB_ORIGIN_LISTEN: 0.0.0.0:8082",
        cdn::check_cdn,
        "Some(8082)",
    ),
    (
        "the cache on the backend",
        "varnish:\n    networks: [frontend, backend]",
        cdn::check_cdn,
        "varnish is on",
    ),
    (
        "broadcast with the catalog owner's credentials",
        "broadcast:\n    environment:\n      SEALCAST_DATABASE_URL: postgres://sealcast:${POSTGRES_PASSWORD}@postgres:5432/sealcast",
        catalog_roles::check_catalog_roles,
        "broadcast connects to the catalog as Some(Some(\"sealcast\"))",
    ),
    (
        "an ingest as the edges' role",
        "ingest2:\n    environment:\n      SEALCAST_DATABASE_URL: postgres://sealcast_edge:${POSTGRES_EDGE_PASSWORD}@postgres:5432/sealcast",
        catalog_roles::check_catalog_roles,
        "ingest2 connects to the catalog as sealcast_edge",
    ),
    (
        "a relay that lets anyone publish",
        "relay:\n    command: [moq-gate, --, moq-relay, --listen=0.0.0.0:4443, --listen-tls-cert=/etc/sealcast/tls/server.pem, --listen-tls-key=/etc/sealcast/tls/server.key, --web-http-listen=0.0.0.0:4443, --connect-tls-root=/etc/sealcast/ca.pem, --auth-public=**]",
        relay_tier::check_relay_tier,
        "behind `sealcast moq-gate` alone",
    ),
    (
        "a relay with a host port of its own",
        "relay-root1:\n    ports: [\"4443:4443/udp\"]",
        relay_tier::check_relay_tier,
        "relay-root1 publishes host ports",
    ),
];

#[test]
fn each_check_finds_what_it_is_for() {
    let mut missed = Vec::new();
    for (what, service, check, word) in CASES {
        let project = init();
        std::fs::write(
            project.dir().join("docker-compose.override.yml"),
            format!("services:\n  {service}\n"),
        )
        .unwrap();
        let findings = check(&project).0;
        if !findings.iter().any(|f| f.contains(word)) {
            missed.push(format!("{what}: no finding says {word:?}: {findings:#?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

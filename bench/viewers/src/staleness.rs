//! "A benchmark's figures in docs/benchmarks.md are re-run after the code they measure
//! changes", checkable from the doc alone: each generated block ([`crate::docblock`])
//! names the script and the commit measured; this module says which paths each script
//! measures, so that the commits since that touched them (`git rev-list measured..HEAD --
//! paths`, run by `sealcast-bench stale`) make the block stale.
//!
//! What a script measures is the code of the crates its cluster runs (their `src/`,
//! `build.rs` and `Cargo.toml`), the lock file and the vendored forks, and the script
//! itself (the method). Tests, docs and other benchmarks are not measured code.

/// The workspace's product crates: what a benchmark not in [`MEASURED`] is taken to
/// measure.
pub const PRODUCT: &[&str] = &[
    "api",
    "archive",
    "broadcast",
    "catalog",
    "certs",
    "container",
    "domain",
    "ingest",
    "intake",
    "loadbalancer",
    "plumbing",
    "sealcast",
    "source",
];

/// The transcoding benchmarks' crates: the ingest and what it is built on.
const LADDER: &[&str] = &[
    "catalog",
    "certs",
    "container",
    "domain",
    "ingest",
    "intake",
    "plumbing",
    "sealcast",
];
/// A node serving viewers, and what it is built on.
const NODE: &[&str] = &[
    "api",
    "archive",
    "broadcast",
    "catalog",
    "certs",
    "domain",
    "plumbing",
    "sealcast",
];
/// The load balancer (with the node behind it).
const LB: &[&str] = &[
    "api",
    "archive",
    "broadcast",
    "catalog",
    "certs",
    "domain",
    "loadbalancer",
    "plumbing",
    "sealcast",
];
/// A whole cluster with a publisher and a player: every product crate.
const CLUSTER: &[&str] = PRODUCT;

/// Per script, the crates it measures, and other paths it measures besides (files or
/// directories).
pub const MEASURED: &[(&str, &[&str], &[&str])] = &[
    (
        "bench/ladder.sh",
        LADDER,
        &[
            "bench/viewers/src/reports/ladder.rs",
            "bench/viewers/src/benches/ladder.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/ladder-codecs.sh",
        LADDER,
        &[
            "bench/viewers/src/reports/ladder_codecs.rs",
            "bench/viewers/src/benches/ladder_codecs.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/ll-quality.sh",
        LADDER,
        &[
            "bench/viewers/src/reports/ll_quality.rs",
            "bench/viewers/src/benches/ll_quality.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/edge.sh",
        NODE,
        &[
            "bench/viewers/src/reports/edge.rs",
            "bench/viewers/src/reports/h2load.rs",
            "bench/viewers/src/reports/calc.rs",
            "bench/peers/nginx/edge.conf",
            "bench/viewers/src/benches/edge.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/stream-memory.sh",
        NODE,
        &[
            "bench/viewers/src/reports/stream_memory.rs",
            "bench/viewers/src/floor.rs",
            "bench/viewers/src/memory_point.rs",
            "bench/viewers/src/procstat.rs",
            "bench/peers/mosquitto/mosquitto.conf",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
            "bench/viewers/src/benches/stream_memory.rs",
        ],
    ),
    (
        "bench/llhls-node.sh",
        NODE,
        &[
            "bench/llhls-common.sh",
            "bench/viewers/src/reports/llhls_common.rs",
            "bench/peers/nginx/files.conf",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/moq-cost.sh",
        LB,
        &[
            "bench/viewers/src/reports",
            "bench/viewers/src/mirror.rs",
            "bench/peers/nginx/files.conf",
            "bench/viewers/src/moq_viewers.rs",
            "bench/viewers/src/ll.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
            "bench/viewers/src/benches/moq_cost.rs",
        ],
    ),
    (
        "bench/memory.sh",
        LB,
        &[
            "bench/viewers/src/reports/memory.rs",
            "bench/viewers/src/idle.rs",
            "bench/peers/nginx/memory.conf",
            "bench/peers/haproxy/memory.cfg",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
            "bench/viewers/src/benches/memory.rs",
        ],
    ),
    (
        "bench/capacity.sh",
        LB,
        &[
            "bench/viewers/src/reports/capacity.rs",
            "bench/peers/nginx/files.conf",
            "bench/peers/haproxy/tls-front.cfg",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/llhls-lb.sh",
        LB,
        &[
            "bench/llhls-common.sh",
            "bench/viewers/src/reports/llhls_common.rs",
            "bench/peers/haproxy/tls-front.cfg",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/llhls-cdn.sh",
        LB,
        &[
            "bench/viewers/src/reports/llhls_cdn.rs",
            "deploy/varnish",
            "bench/peers/varnish/origin.vcl",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/lb.sh",
        LB,
        &[
            "bench/viewers/src/reports/lb.rs",
            "bench/viewers/src/reports/lb",
            "bench/viewers/src/reports/h2load.rs",
            "bench/viewers/src/reports/calc.rs",
            "bench/peers/nginx/lb-backend.conf",
            "bench/peers/haproxy/lb.cfg",
            "bench/viewers/src/benches/lb.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/lb-profile.sh",
        LB,
        &[
            "bench/viewers/src/reports/lb_profile.rs",
            "bench/viewers/src/reports/lb/load.rs",
            "bench/peers/nginx/lb-profile-backend.conf",
            "bench/peers/haproxy/lb-profile.cfg",
            "bench/viewers/src/benches/lb_profile.rs",
            "bench/viewers/src/benches/lb.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/publish-latency.sh",
        CLUSTER,
        &[
            "bench/viewers/src/publish_latency.rs",
            "bench/viewers/src/reports/publish_latency.rs",
            "bench/viewers/src/benches/publish_latency.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/push-bytes.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/push_bytes.rs",
            "bench/viewers/src/reports/push_bytes",
            "bench/viewers/src/benches/push_bytes.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/archive-disk.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/archive_disk.rs",
            "bench/viewers/src/benches/archive_disk.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/c2pa-overhead.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/c2pa_overhead.rs",
            "bench/viewers/src/benches/c2pa_overhead.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/dvr-seek.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/dvr_seek.rs",
            "web",
            "bench/peers/dvr/index.html",
            "bench/viewers/src/dvr_seek.rs",
            "bench/peers/nginx/files.conf",
            "bench/viewers/src/benches/dvr_seek.rs",
            "bench/viewers/src/harness",
            "bench/viewers/src/harness.rs",
        ],
    ),
    (
        "bench/latency.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/latency.rs",
            "web",
            "bench/peers/nginx/rtmp.conf",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/ingest-latency.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/ingest_latency.rs",
            "bench/viewers/src/reports/latency.rs",
            "web",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/viewer-verify.sh",
        CLUSTER,
        &[
            "web",
            "bench/viewers/src/viewer_verify.rs",
            "bench/viewers/src/reports/viewer_verify.rs",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/compose.sh",
        CLUSTER,
        &[
            "bench/viewers/src/reports/compose.rs",
            "bench/viewers/src/reports/calc.rs",
            "web",
            "deploy",
            "Dockerfile",
            "docker-compose.yml",
            "sealcast.example.toml",
        ],
    ),
];

/// The paths (git pathspecs, relative to the repository's root) whose changes make the
/// figures of `script` stale.
pub fn measured_paths(script: &str) -> Vec<String> {
    let (crates, extra) = MEASURED
        .iter()
        .find(|(s, _, _)| *s == script)
        .map_or((PRODUCT, &[][..]), |(_, c, e)| (*c, *e));
    let mut paths = vec![
        "Cargo.lock".to_owned(),
        "vendor".to_owned(),
        script.to_owned(),
    ];
    for krate in crates {
        for part in ["src", "build.rs", "Cargo.toml"] {
            paths.push(format!("{krate}/{part}"));
        }
    }
    paths.extend(extra.iter().map(|p| (*p).to_owned()));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_script_exists_once_and_its_paths_are_measured() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut seen = std::collections::HashSet::new();
        for (script, crates, extra) in MEASURED {
            assert!(seen.insert(*script), "{script} listed twice");
            assert!(root.join(script).is_file(), "{script} is not a file");
            for krate in *crates {
                assert!(PRODUCT.contains(krate), "{krate} is not a product crate");
            }
            for path in *extra {
                assert!(
                    root.join(path).exists(),
                    "{path} (of {script}) is not there"
                );
            }
        }
        for krate in PRODUCT {
            assert!(root.join(krate).join("src").is_dir(), "{krate}/src");
        }
    }

    /// The product crates a crate's `[dependencies]` name (its own manifest, read as text:
    /// a line `name.workspace = true` or `name = { ... }` in that table).
    fn product_dependencies(root: &std::path::Path, krate: &str) -> Vec<&'static str> {
        let manifest = std::fs::read_to_string(root.join(krate).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{krate}/Cargo.toml: {e}"));
        let mut table = "";
        let mut found = Vec::new();
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                table = line;
                continue;
            }
            if table != "[dependencies]" {
                continue;
            }
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            if let Some(product) = PRODUCT.iter().find(|p| **p == name) {
                found.push(*product);
            }
        }
        found
    }

    #[test]
    fn the_product_is_every_workspace_crate_but_the_tools() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        let members = manifest
            .split("members = [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .expect("workspace members");
        let mut listed: Vec<&str> = members
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('"'))
            .map(|l| l.trim_matches(|c| c == '"' || c == ','))
            .filter(|m| !["testkit", "fuzzing", "bench/viewers"].contains(m))
            .collect();
        listed.sort_unstable();
        let mut product = PRODUCT.to_vec();
        product.sort_unstable();
        assert_eq!(
            listed, product,
            "PRODUCT is not the workspace's product crates"
        );
    }

    #[test]
    fn each_script_measures_what_its_crates_are_built_on() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (script, crates, _) in MEASURED {
            // The binary links every role; what a script runs of it is the roles listed.
            for krate in crates.iter().filter(|k| **k != "sealcast") {
                for dependency in product_dependencies(&root, krate) {
                    assert!(
                        crates.contains(&dependency),
                        "{script} measures {krate} but not {dependency}, which it is built on"
                    );
                }
            }
        }
    }

    #[test]
    fn paths_include_the_lock_the_forks_the_script_and_its_crates() {
        let edge = measured_paths("bench/edge.sh");
        for p in [
            "Cargo.lock",
            "vendor",
            "bench/edge.sh",
            "broadcast/src",
            "broadcast/Cargo.toml",
            "domain/build.rs",
            "bench/peers/nginx/edge.conf",
        ] {
            assert!(edge.iter().any(|e| e == p), "{p} missing");
        }
        assert!(!edge.iter().any(|e| e.starts_with("ingest/")));
        // An unknown script measures the whole product.
        let other = measured_paths("bench/new.sh");
        assert!(other.iter().any(|e| e == "ingest/src"));
        assert!(other.iter().any(|e| e == "api/src"));
    }
}

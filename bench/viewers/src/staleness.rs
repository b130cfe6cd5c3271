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
    "broadcast",
    "catalog",
    "certs",
    "container",
    "plumbing",
    "domain",
    "ingest",
    "loadbalancer",
    "sealcast",
    "source",
];

/// The transcoding benchmarks' crates.
const LADDER: &[&str] = &["container", "domain", "ingest", "sealcast"];
/// A node serving viewers.
const NODE: &[&str] = &["broadcast", "certs", "container", "domain", "sealcast"];
/// The load balancer (with the node behind it).
const LB: &[&str] = &[
    "broadcast",
    "certs",
    "container",
    "domain",
    "loadbalancer",
    "sealcast",
];
/// A whole cluster with a publisher and a player.
const CLUSTER: &[&str] = &[
    "broadcast",
    "catalog",
    "certs",
    "container",
    "plumbing",
    "domain",
    "ingest",
    "loadbalancer",
    "sealcast",
    "source",
];

/// Per script, the crates it measures, and other paths it measures besides (files or
/// directories).
pub const MEASURED: &[(&str, &[&str], &[&str])] = &[
    ("bench/ladder.sh", LADDER, &[]),
    ("bench/ladder-codecs.sh", LADDER, &[]),
    ("bench/ll-quality.sh", LADDER, &[]),
    ("bench/edge.sh", NODE, &["bench/peers/nginx/edge.conf"]),
    ("bench/stream-memory.sh", NODE, &[]),
    (
        "bench/llhls-node.sh",
        NODE,
        &[
            "bench/llhls-common.sh",
            "bench/peers/nginx/files.conf",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/memory.sh",
        LB,
        &[
            "bench/peers/nginx/memory.conf",
            "bench/peers/haproxy/memory.cfg",
        ],
    ),
    (
        "bench/capacity.sh",
        LB,
        &[
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
            "bench/peers/haproxy/tls-front.cfg",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/llhls-cdn.sh",
        LB,
        &[
            "deploy/varnish",
            "bench/peers/varnish/origin.vcl",
            "bench/viewers/src",
        ],
    ),
    (
        "bench/lb.sh",
        LB,
        &[
            "bench/peers/nginx/lb-backend.conf",
            "bench/peers/haproxy/lb.cfg",
        ],
    ),
    (
        "bench/lb-profile.sh",
        LB,
        &[
            "bench/peers/nginx/lb-profile-backend.conf",
            "bench/peers/haproxy/lb-profile.cfg",
        ],
    ),
    (
        "bench/publish-latency.sh",
        CLUSTER,
        &["bench/publish_latency.py"],
    ),
    ("bench/push-bytes.sh", CLUSTER, &[]),
    (
        "bench/latency.sh",
        CLUSTER,
        &["web", "bench/peers/nginx/rtmp.conf", "bench/viewers/src"],
    ),
    (
        "bench/ingest-latency.sh",
        CLUSTER,
        &["web", "bench/viewers/src"],
    ),
    (
        "bench/viewer-verify.sh",
        CLUSTER,
        &["web", "bench/viewer_verify.py", "bench/viewers/src"],
    ),
    (
        "bench/compose.sh",
        CLUSTER,
        &[
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

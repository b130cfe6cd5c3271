//! The cluster the benchmarks start (`viewers::harness`), started for real: a mosquitto
//! broker of its own on a free port, keys, certificates and the stream made by the
//! workspace's `sealcast` binary, a broadcast node, the ingest and the source publishing,
//! the load balancer over TLS; the node lists a window to join, the load balancer answers
//! through the cluster's CA, the harness reads the servers' CPU and memory, and dropping
//! the run's `Work` stops every process it started and removes its directory.

use std::path::PathBuf;
use std::time::Duration;

use viewers::harness::cluster::{mosquitto, LlCluster};
use viewers::harness::{cpu_seconds, get, rss_kib, Work};

/// The workspace's `sealcast` binary, beside this test binary's directory
/// (`target/debug/deps/..`): the workspace build makes it before the tests run.
fn sealcast_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let bin = debug.join("sealcast");
    assert!(
        bin.is_file(),
        "no sealcast binary at {} (cargo build --workspace first)",
        bin.display()
    );
    bin
}

#[test]
fn the_benchmarks_cluster_comes_up_and_goes_whole() {
    let bin = sealcast_bin();
    let mut work = Work::tmpfs("harness-test").expect("a work directory");
    let dir = work.dir().to_path_buf();
    let mqtt = mosquitto(&mut work, "0,1").expect("a broker");
    let cluster = LlCluster::setup(&work, &bin, "ht", 0.333, &mqtt).expect("keys and stream");
    let key = std::fs::read_to_string(work.path("stream-key")).expect("the key");
    let node = cluster
        .node(&mut work, "htnode", "0,1", &[], &[])
        .expect("a node");
    let publishing = cluster.publish(&mut work, "0,1").expect("publishing");
    assert!(
        cluster.wait_listed(&node.url, "360p", Duration::from_secs(90)),
        "the node listed no window in 90 s{}",
        work.logs()
    );
    let lb = cluster
        .lb(&mut work, "htlb", &cluster.playlist("360p"), &[])
        .expect("the load balancer");
    let master = get(
        &format!("{}{}", lb.url, cluster.master()),
        Some(&cluster.ca),
        5,
    )
    .expect("the master playlist through the load balancer");
    assert!(String::from_utf8_lossy(&master).contains("#EXTM3U"));
    // No one's command line holds the stream key.
    for pid in [publishing.ingest, publishing.source, node.pid, lb.pid] {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("a live process");
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(key.trim()),
            "process {pid}'s arguments hold the stream key"
        );
    }
    let servers = [node.pid, lb.pid];
    assert!(rss_kib(&servers).expect("their memory") > 1024);
    let before = cpu_seconds(&servers).expect("their CPU");
    assert!(
        viewers::harness::wait_for(Duration::from_secs(10), || {
            cpu_seconds(&servers).is_ok_and(|now| now > before)
        }),
        "the node and load balancer used no CPU while serving a live stream"
    );
    let pids = [publishing.ingest, publishing.source, node.pid, lb.pid];
    drop(work);
    assert!(!dir.exists(), "the work directory is still there");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived the run"
        );
    }
}

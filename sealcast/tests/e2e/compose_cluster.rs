//! The cluster of `docker-compose.yml` in real containers (issue 30): what a user does,
//! from a copy of the repository's deployment files. `scripts/init-cluster.sh` (secrets,
//! keys, certificates, and the images: made from Debian's packages when no registry
//! answers, cached by the Docker engine between runs); `compose up -d`; every service
//! healthy; then one stage after another on that one cluster, each measured, each asserted:
//!
//! 1. an ffmpeg publisher into the first ingest's published RTMP port; viewers through
//!    the first load balancer's published HTTPS port and through the floating address;
//!    SRT into the first ingest's published UDP port and WHIP through the load balancer
//!    (media to an ingest's published WebRTC port), each played through the balancer; a
//!    private stream played with a token `tools tokens mint` made, and refused without
//!    one (issue 45 item 16); the PostgreSQL image started as Kubernetes starts it (not
//!    root, read-only: issue 50 item 8); the private stream over MoQ with a node's grant,
//!    a public one through the load balancers' QUIC door and the relay tier, each relay
//!    replica killed under its reader and each edge crashed under Chromium's player
//!    (`moq`, issue 48); the archive's store (Garage,
//!    profile `s3`) killed for 20 s while a stream records, which loses nothing
//!    (`archive`, issue 49);
//! 2. `--scale broadcast=6` under an ffmpeg viewer: the new edges serve byte-identical
//!    segments and parts and get new viewers;
//! 3. crashes (SIGKILL to a container's init, which Docker's restart policy answers) of
//!    an edge under its pinned viewers, of the ingest under its publisher (which
//!    reconnects), of Mosquitto and of PostgreSQL; then each of the two brokers killed
//!    (`docker kill`: it stays dead until started again) under an ffmpeg viewer and pinned
//!    pollers, who see no error while every edge goes on listing new segments (issue 50
//!    item 3);
//! 4. the load balancer that holds the floating address crashes under Chromium on the
//!    player page: the address moves to the other within 3 s, the video plays on, a sticky
//!    viewer keeps its node;
//! 5. an edge cut off the backend network for 10 s (`docker network disconnect`);
//! 6. back from six edges to two, then a rolling restart of every edge, each replaced by a
//!    new container, under viewers that see no error;
//! 7. `compose down` and `up`: streams, keys, the broker's retained state and the
//!    recording are still there;
//! 8. the network split: the load balancers cannot reach PostgreSQL;
//! 9. Prometheus scrapes every target as up, and every panel of the Grafana dashboard has
//!    series from the live cluster.
//!
//! The figures go to `tests/artifacts/compose/report.json` and the test's output
//! (docs/reliability.md and docs/benchmarks.md quote them). The project has its own name,
//! ports and subnet, and is removed (`down -v`) when the test ends, however it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use testkit::docker::{self, ComposeProject};
use testkit::ffmpeg::{Publisher, TestPattern};
use tokio::time::Instant;

use crate::cluster::BIN;
use crate::lb;

mod archive;
mod moq;

/// How many new segments show that a stream goes on (one could be the last of those in
/// flight when the fault began).
const NEW_SEGMENTS: u64 = 3;

/// The longest the floating address may take to move (issue 30).
const FAILOVER_LIMIT: Duration = Duration::from_secs(3);

/// The test's project: its directory, settings and what it measured. Removed on drop.
struct Compose {
    project: ComposeProject,
    _dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`: the first load balancer's published port.
    https: String,
    /// `https://VIP`: the floating address.
    vip_https: String,
    vip: String,
    rtmp: [String; 2],
    /// `127.0.0.1:PORT`: the first ingest's published SRT port (UDP).
    srt: String,
    /// lb1's published port: HTTPS over TCP and the QUIC door over UDP.
    door: u16,
    prometheus: String,
    ca: PathBuf,
    artifacts: PathBuf,
    client: reqwest::Client,
    report: std::sync::Mutex<BTreeMap<String, Value>>,
}

impl Drop for Compose {
    fn drop(&mut self) {
        self.project.remove_blocking();
    }
}

/// The repository's files a user's clone has for compose.
const PROJECT_FILES: &[&str] = &[
    "docker-compose.yml",
    "Dockerfile",
    ".dockerignore",
    "scripts",
    "deploy",
    "hosts.example",
];

impl Compose {
    /// A copy of the deployment files with a `.env` of the test's own (project name, free
    /// host ports, a free subnet, a small test picture), and `scripts/init-cluster.sh` run
    /// in it.
    async fn prepare() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-compose-")
            .tempdir()?;
        let repo = testkit::repo_root();
        for file in PROJECT_FILES {
            docker::run(
                "cp",
                &[
                    "-a",
                    &repo.join(file).display().to_string(),
                    &dir.path().display().to_string(),
                ],
                None,
                Duration::from_secs(60),
            )
            .await?;
        }
        let _ = std::fs::remove_dir_all(dir.path().join("deploy/state"));
        let name = format!("sealcast-e2e-{}", std::process::id());
        let third = free_subnet().await?;
        let mut ports: Vec<u16> = (0..6)
            .map(|_| testkit::net::free_port())
            .collect::<Result<_, _>>()?;
        // HTTPS and the QUIC door on one port number, as 443 is both in production.
        ports[0] = testkit::net::free_udp_and_tcp_port()?;
        let mut udp: Vec<u16> = (0..2)
            .map(|_| testkit::net::free_udp_port())
            .collect::<Result<_, _>>()?;
        // The WebRTC ports take TCP too (ICE-TCP).
        for _ in 0..2 {
            udp.push(testkit::net::free_udp_and_tcp_port()?);
        }
        let vip = format!("10.237.{third}.100");
        let env = [
            ("COMPOSE_PROJECT_NAME", name.clone()),
            ("FRONTEND_SUBNET", format!("10.237.{third}.0/24")),
            ("FRONTEND_RANGE", format!("10.237.{third}.128/25")),
            ("LB1_ADDRESS", format!("10.237.{third}.11")),
            ("LB2_ADDRESS", format!("10.237.{third}.12")),
            ("LB_VIP", vip.clone()),
            ("LB_HTTPS_PORT", ports[0].to_string()),
            ("LB_HTTP_PORT", ports[1].to_string()),
            ("LB_QUIC_PORT", ports[0].to_string()),
            ("MOQ_VIEWER_URL", format!("https://127.0.0.1:{}/", ports[0])),
            ("INGEST1_RTMP_PORT", ports[2].to_string()),
            ("INGEST2_RTMP_PORT", ports[3].to_string()),
            ("PROMETHEUS_PORT", ports[4].to_string()),
            ("GRAFANA_PORT", ports[5].to_string()),
            ("INGEST1_SRT_PORT", udp[0].to_string()),
            ("INGEST2_SRT_PORT", udp[1].to_string()),
            ("INGEST1_WEBRTC_PORT", udp[2].to_string()),
            ("INGEST2_WEBRTC_PORT", udp[3].to_string()),
            // Two test sources through the whole ladder would fill the machine.
            ("SOURCE_SIZE", "426x240".to_owned()),
        ];
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write_private(&dir.path().join(".env"), &text)?;

        let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/compose");
        std::fs::create_dir_all(&artifacts)?;
        let started = Instant::now();
        let init = tokio::process::Command::new("scripts/init-cluster.sh")
            .args(["--archive", "s3"])
            .current_dir(dir.path())
            .env("SEALCAST_BIN", BIN)
            .stdin(std::process::Stdio::null())
            .output();
        // Cold: debootstrap and the images (minutes); warm: seconds.
        let output = tokio::time::timeout(Duration::from_secs(40 * 60), init)
            .await
            .context("init-cluster.sh took longer than 40 minutes")??;
        std::fs::write(artifacts.join("init-cluster.log"), &output.stderr)?;
        anyhow::ensure!(
            output.status.success(),
            "init-cluster.sh: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let init_time = started.elapsed();

        let ca = dir.path().join("certs/generated/ca.pem");
        let compose = Compose {
            project: ComposeProject::new(dir.path(), &name)?,
            https: format!("https://127.0.0.1:{}", ports[0]),
            vip_https: format!("https://{vip}"),
            vip,
            rtmp: [
                format!("rtmp://127.0.0.1:{}/live", ports[2]),
                format!("rtmp://127.0.0.1:{}/live", ports[3]),
            ],
            srt: format!("127.0.0.1:{}", udp[0]),
            door: ports[0],
            prometheus: format!("http://127.0.0.1:{}", ports[4]),
            client: lb::https_client(&ca)?,
            ca,
            artifacts,
            _dir: dir,
            report: std::sync::Mutex::new(BTreeMap::new()),
        };
        compose.note("init_cluster_s", json!(secs(init_time)));
        compose.note(
            "images",
            json!(String::from_utf8_lossy(&output.stderr)
                .lines()
                .filter(|l| l.starts_with("images:"))
                .collect::<Vec<_>>()),
        );
        Ok(compose)
    }

    /// Records a figure (and prints it).
    fn note(&self, key: &str, value: Value) {
        eprintln!("compose: {key} = {value}");
        if let Ok(mut report) = self.report.lock() {
            report.insert(key.to_owned(), value);
        }
    }

    /// Records `value` under `key` in the report's object `group` (made when missing).
    fn note_in(&self, group: &str, key: &str, value: Value) {
        if let Ok(mut report) = self.report.lock() {
            if let Some(group) = report
                .entry(group.to_owned())
                .or_insert_with(|| json!({}))
                .as_object_mut()
            {
                group.insert(key.to_owned(), value);
            }
        }
    }

    /// Writes what was measured.
    fn write_report(&self) {
        if let Ok(report) = self.report.lock() {
            let _ = std::fs::write(
                self.artifacts.join("report.json"),
                serde_json::to_vec_pretty(&*report).unwrap_or_default(),
            );
        }
    }

    /// A value of the project's `.env` (what `scripts/init-cluster.sh` chose).
    fn env_value(&self, name: &str) -> anyhow::Result<String> {
        let env = std::fs::read_to_string(self.project.dir.join(".env"))?;
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!(".env has no {name}"))
    }

    async fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        self.project.compose(args, Duration::from_secs(600)).await
    }

    /// `compose run --rm --no-deps tools ARGS`: the operator's sealcast, in the cluster
    /// that runs (without waiting for its dependencies' health, which a fault may have
    /// put in doubt).
    async fn tools(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["run", "--rm", "--no-deps", "-T", "tools"];
        all.extend_from_slice(args);
        self.compose(&all).await
    }

    /// The broadcast containers, oldest first, with their node ids.
    async fn edges(&self) -> anyhow::Result<Vec<Edge>> {
        let mut edges = Vec::new();
        for id in self.project.containers("broadcast").await? {
            let state = docker::docker(&["inspect", "--format", "{{.State.Status}}", &id]).await?;
            if state.trim() != "running" {
                continue;
            }
            let address = docker::address(&id, "_frontend").await?;
            edges.push(Edge {
                node: format!("broadcast-{id}"),
                base: format!("http://{address}:8080"),
                id,
            });
        }
        Ok(edges)
    }

    /// Saves every container's log (the stage that failed is in them).
    /// Every container's log into the artifacts, as `file`.
    /// An edge's `/metrics` text.
    async fn metrics(&self, edge: &Edge) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(format!("{}/metrics", edge.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    async fn save_logs(&self, file: &str) {
        if let Ok(logs) = self
            .project
            .compose(&["logs", "--no-color", "-t"], Duration::from_secs(120))
            .await
        {
            let _ = std::fs::write(self.artifacts.join(file), logs);
        }
    }

    /// The last lines of both ingests' logs that speak of a publish, the catalog, or
    /// something that went wrong.
    async fn ingest_tails(&self) -> String {
        let mut text = String::from("what the ingests said last:");
        for service in ["ingest1", "ingest2"] {
            let logs = self
                .project
                .compose(
                    &["logs", "--no-color", "-t", "--tail", "400", service],
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(|e| format!("(no log: {e:#})"));
            const WORDS: [&str; 6] = [
                "WARN",
                "ERROR",
                "publish",
                "catalog",
                "connection",
                "refused",
            ];
            let wanted: Vec<&str> = logs
                .lines()
                .filter(|l| WORDS.iter().any(|w| l.contains(w)))
                .collect();
            for line in &wanted[wanted.len().saturating_sub(25)..] {
                text.push_str("\n  ");
                text.push_str(line);
            }
        }
        text
    }
}

/// One broadcast replica: its container, node id and base URL on the frontend network.
#[derive(Debug, Clone)]
struct Edge {
    id: String,
    node: String,
    base: String,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// A third octet for 10.237.X.0/24 that no Docker network here uses.
async fn free_subnet() -> anyhow::Result<u8> {
    let ids = docker::docker(&["network", "ls", "-q"]).await?;
    let mut used = String::new();
    for id in ids.split_whitespace() {
        used.push_str(
            &docker::docker(&[
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
                id,
            ])
            .await?,
        );
    }
    let start = (std::process::id() % 100) as u8;
    (0..100u8)
        .map(|i| 150 + (start + i) % 100)
        .find(|x| !used.contains(&format!("10.237.{x}.")))
        .context("no free 10.237.X.0/24 subnet")
}

/// The whole trial: the cluster up, every stage, the cluster removed.
pub(crate) async fn check_compose_cluster() -> anyhow::Result<()> {
    let cluster = Compose::prepare().await?;
    let mut outcome = stages(&cluster).await;
    cluster.write_report();
    if let Err(e) = outcome {
        // CI shows the failure's text, not the artifacts: what the ingests said last goes
        // with it.
        outcome = Err(e.context(cluster.ingest_tails().await));
    }
    cluster.save_logs("containers.log").await;
    outcome
}

async fn stages(c: &Compose) -> anyhow::Result<()> {
    stage(c, "up", up(c)).await?;
    let key = c
        .tools(&["streams", "add", "cam1"])
        .await?
        .trim()
        .to_owned();
    anyhow::ensure!(
        key.starts_with("sk_") || key.len() >= 16,
        "no stream key from tools"
    );
    let mut publisher = Reconnecting::start(format!("{}/{key}", c.rtmp[0]));
    let published = Instant::now();
    lb::wait_live(&c.client, &c.https, "cam1").await?;
    c.note("publish_to_playable_s", json!(secs(published.elapsed())));
    stage(
        c,
        "through the floating address",
        lb::wait_live(&c.client, &c.vip_https, "cam1"),
    )
    .await?;
    let mut viewer = lb::Viewer::new(c.client.clone(), &c.https);
    lb::watch(&mut viewer, "cam1", "src", 2).await?;
    stage(c, "SRT and WHIP publishers", srt_and_whip(c)).await?;
    let postgres_image = c
        .env_value("POSTGRES_IMAGE")
        .unwrap_or_else(|_| "postgres:16-bookworm".to_owned());
    stage(
        c,
        "the PostgreSQL image as Kubernetes runs it",
        crate::kubernetes_postgres::runs_as_kubernetes_runs_it(&postgres_image),
    )
    .await?;
    stage(c, "a private stream", private_stream(c)).await?;
    stage(
        c,
        "MoQ through the QUIC door",
        moq::through_the_door(c, "cam1"),
    )
    .await?;
    let recorded = stage(
        c,
        "the archive's store down while a stream records",
        archive::store_outage(c),
    )
    .await?;

    stage(c, "--scale broadcast=6", scale(c)).await?;
    stage(c, "an edge crashed", crash_an_edge(c)).await?;
    stage(c, "the ingest crashed", crash_the_ingest(c, &publisher)).await?;
    stage(c, "Mosquitto crashed", crash_service(c, "mosquitto")).await?;
    stage(
        c,
        "the first broker killed",
        kill_a_broker(c, "mosquitto", "mosquitto-kill"),
    )
    .await?;
    stage(
        c,
        "the second broker killed",
        kill_a_broker(c, "mosquitto2", "mosquitto2-kill"),
    )
    .await?;
    stage(c, "PostgreSQL crashed", crash_service(c, "postgres")).await?;
    stage(c, "the catalog cut off", catalog_away(c, Away::Cut)).await?;
    stage(c, "the catalog frozen", catalog_away(c, Away::Hang)).await?;
    publisher = stage(c, "the publisher moved", move_publisher(c, publisher, &key)).await?;
    stage(c, "the load balancer failover", fail_over(c)).await?;
    stage(c, "an edge cut off the backend", partition(c)).await?;
    // Six to two (issue 49: no recording lost scaling down); the stopped replicas drain.
    c.compose(&["up", "-d", "--no-recreate", "--scale", "broadcast=2"])
        .await?;
    stage(c, "the rolling restart", rolling_restart(c)).await?;
    stage(c, "the network split", network_split(c)).await?;
    stage(c, "Prometheus and the dashboard", monitoring(c)).await?;
    stage(c, "docker stats", resources(c)).await?;
    publisher.stop().await;
    stage(c, "an ingest's key revoked", revoke(c)).await?;
    stage(c, "down and up", down_and_up(c, &key)).await?;
    stage(
        c,
        "the recording after down and up",
        archive::kept_across_down_up(c, &recorded),
    )
    .await?;
    Ok(())
}

/// Runs one stage of the trial: its time goes into the report (`stage_s`, by name) and on
/// stderr, so a run's log shows where the trial's minutes go; a failure says which stage.
async fn stage<T>(
    c: &Compose,
    name: &str,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    let outcome = work.await.context(name.to_owned());
    let took = secs(started.elapsed());
    eprintln!("compose: stage {name}: {took} s");
    c.note_in("stage_s", name, json!(took));
    outcome
}

/// `compose up -d`: every service healthy, the demo stream playable through the load
/// balancer.
async fn up(c: &Compose) -> anyhow::Result<()> {
    let started = Instant::now();
    c.compose(&["up", "-d"]).await?;
    c.note("up_command_s", json!(secs(started.elapsed())));
    let healthy = c.project.wait_healthy(Duration::from_secs(300)).await?;
    c.note("up_to_healthy_s", json!(secs(started.elapsed())));
    let _ = healthy;
    lb::wait_live(&c.client, &c.https, "demo1").await?;
    c.note(
        "up_to_first_playable_master_s",
        json!(secs(started.elapsed())),
    );
    let services: BTreeSet<String> = c
        .project
        .states()
        .await?
        .into_iter()
        .map(|s| s.service)
        .collect();
    for wanted in [
        "mosquitto",
        "mosquitto2",
        "postgres",
        "ingest1",
        "ingest2",
        "broadcast",
        "lb1",
        "lb2",
        "prometheus",
        "source1",
        "source2",
        "garage",
    ] {
        anyhow::ensure!(
            services.contains(wanted),
            "{wanted} is not running: {services:?}"
        );
    }
    Ok(())
}

/// Publishers on the other protocols, at the ports compose publishes: Debian's ffmpeg over
/// SRT into the first ingest's UDP port (the bare key as streamid), and FFmpeg 9 over WHIP
/// through the load balancer (an ingest's WHIP URL, announced under its container's host
/// name; media to the WebRTC port it publishes, which its SDP answer names). Each stream
/// plays through the load balancer.
async fn srt_and_whip(c: &Compose) -> anyhow::Result<()> {
    for (stream, via) in [("camsrt", "srt"), ("camwhip", "whip")] {
        let key = c
            .tools(&["streams", "add", stream])
            .await?
            .trim()
            .to_owned();
        let started = Instant::now();
        let publisher = if via == "srt" {
            TestPattern::new(426, 240, 30, 40)
                .format("mpegts")
                .publish(&format!("srt://{}?streamid={key}", c.srt))?
        } else {
            let url = format!("{}/whip/{stream}", c.https);
            crate::whip::publish_whip_to(
                &url,
                &c.ca,
                &key,
                (426, 240),
                40,
                crate::whip::DtlsRole::Default,
            )?
        };
        lb::wait_live(&c.client, &c.https, stream)
            .await
            .with_context(|| format!("{stream}, published over {via}"))?;
        c.note(
            &format!("{via}_publish_to_playable_s"),
            json!(secs(started.elapsed())),
        );
        // The balancer answered from one node; a new viewer may land on another, which
        // the ingest's pushes reach a moment later (a 404 until then, as a player retries
        // it): every node must have the stream within 30 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut viewer = lb::Viewer::new(c.client.clone(), &c.https);
            match lb::watch(&mut viewer, stream, "src", 1).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("compose: {stream} not yet on every node: {e:#}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.context(format!("{stream}, published over {via}"))),
            }
        }
        publisher.kill_hard();
    }
    Ok(())
}

/// Issue 45 item 16, the acceptance line: a private stream plays in the compose cluster
/// with a minted token and is refused without. `tools streams add --private` makes it,
/// ffmpeg publishes it into the first ingest, `tools tokens mint` (the key directory's
/// playback key) makes a token; through the first load balancer its master playlist,
/// media playlist and a segment answer 200 with the token and 401 without, and through
/// the floating address (whichever balancer holds it) the master with the token too. A
/// token with one character changed is refused by the load balancer itself, before any
/// node (no `x-sealcast-node`): the balancers hold the playback key as well.
async fn private_stream(c: &Compose) -> anyhow::Result<()> {
    const STREAM: &str = "camprivate";
    let key = c
        .tools(&["streams", "add", STREAM, "--private"])
        .await?
        .trim()
        .to_owned();
    let started = Instant::now();
    let publisher = TestPattern::new(426, 240, 30, 600).publish(&format!("{}/{key}", c.rtmp[0]))?;
    let token = c
        .tools(&["tokens", "mint", STREAM, "--ttl", "1h"])
        .await?
        .trim()
        .to_owned();
    anyhow::ensure!(
        token.split('.').count() == 3,
        "tools tokens mint printed no token"
    );
    let get = |base: &str, path: &str, token: Option<&str>| {
        let url = match token {
            Some(t) => format!("{base}{path}?token={t}"),
            None => format!("{base}{path}"),
        };
        let (client, path) = (c.client.clone(), path.to_owned());
        async move {
            let r = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = r.status().as_u16();
            let node = r.headers().get("x-sealcast-node").cloned();
            anyhow::Ok((status, node, r.bytes().await?))
        }
    };
    let master = format!("/live/{STREAM}/master.m3u8");
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut status, _, mut body) = get(&c.https, &master, Some(&token)).await?;
    while status != 200 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{master} with its token never played: {status} {}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        (status, _, body) = get(&c.https, &master, Some(&token)).await?;
    }
    c.note(
        "private_publish_to_playable_s",
        json!(secs(started.elapsed())),
    );
    let master_text = String::from_utf8(body.to_vec())?;
    let variant = master_text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .context("a master playlist with no variant")?;
    anyhow::ensure!(
        variant.ends_with(&format!("token={token}")),
        "the master playlist's variant does not carry the token: {variant}"
    );
    let rendition = variant.split('/').next().context("variant")?;
    let media = format!("/live/{STREAM}/{rendition}/index.m3u8");
    // The media playlist lists a segment once the node holds one.
    let segment = loop {
        let (status, _, body) = get(&c.https, &media, Some(&token)).await?;
        anyhow::ensure!(status == 200, "{media} with its token: {status}");
        let text = String::from_utf8(body.to_vec())?;
        if let Some(uri) = text
            .lines()
            .rev()
            .find(|l| !l.starts_with('#') && !l.is_empty())
        {
            break uri.split('?').next().unwrap_or(uri).to_owned();
        }
        anyhow::ensure!(Instant::now() < deadline, "{media} lists no segment");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let segment = format!("/live/{STREAM}/{rendition}/{segment}");
    let (status, node, body) = get(&c.https, &segment, Some(&token)).await?;
    anyhow::ensure!(status == 200, "{segment} with its token: {status}");
    anyhow::ensure!(node.is_some(), "{segment}: no x-sealcast-node");
    anyhow::ensure!(
        matches!(body.get(4..8), Some(b"moof" | b"styp" | b"emsg")),
        "{segment} is not a CMAF fragment"
    );
    // Without a token: what a stream that does not exist gets (issue 45 item 14).
    for path in [&master, &media, &segment] {
        let (status, _, _) = get(&c.https, path, None).await?;
        anyhow::ensure!(status == 404, "{path} without a token: {status}, not 404");
    }
    let (status, _, _) = get(&c.vip_https, &master, Some(&token))
        .await
        .context("through the floating address")?;
    anyhow::ensure!(
        status == 200,
        "{master} with its token through the floating address: {status}"
    );
    let (status, _, _) = get(&c.vip_https, &master, None).await?;
    anyhow::ensure!(
        status == 404,
        "{master} without a token through the floating address: {status}"
    );
    let mut bytes = token.clone().into_bytes();
    let at = token.find('.').unwrap_or(0) + 5;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(bytes)?;
    let (status, node, _) = get(&c.https, &master, Some(&altered)).await?;
    anyhow::ensure!(
        status == 401 && node.is_none(),
        "an altered token: {status}, from {node:?} (the load balancer should refuse it itself)"
    );
    moq::private_through_the_door(c, STREAM, &token)
        .await
        .context("the private stream over MoQ")?;
    publisher.kill_hard();
    Ok(())
}

/// A publisher that reconnects, as OBS does: ffmpeg again a second after it ended.
struct Reconnecting {
    stop: Arc<AtomicBool>,
    connects: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Reconnecting {
    fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let connects = Arc::new(AtomicU64::new(0));
        let task = {
            let (stop, connects) = (Arc::clone(&stop), Arc::clone(&connects));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    connects.fetch_add(1, Ordering::Relaxed);
                    // 640x480: the ladder re-encodes a 360p rung (its encode metrics are on
                    // the dashboard); the test sources' 240p go through as they are.
                    let Ok(publisher) = TestPattern::new(640, 480, 30, 3600).publish(&url) else {
                        return;
                    };
                    let ended = publisher_ended(publisher, Arc::clone(&stop)).await;
                    if !ended {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        Reconnecting {
            stop,
            connects,
            task,
        }
    }

    fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = (&mut self.task).await;
    }
}

/// Waits for the publisher to end (true) or for `stop` (false, the publisher killed).
async fn publisher_ended(publisher: Publisher, stop: Arc<AtomicBool>) -> bool {
    // Not `wait`, which gives up after two minutes: a publish of an hour then ended every
    // two, and a restart that fell within a stage's fault (the catalog away, which an
    // admission needs) failed the stage.
    let wait = publisher.exited();
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = &mut wait => return true,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if stop.load(Ordering::Relaxed) {
                    // Dropping the wait drops the child, which is killed on drop.
                    return false;
                }
            }
        }
    }
}

/// The media sequence of the newest segment a playlist lists.
fn newest(text: &str) -> Option<u64> {
    let sequence: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .trim()
        .parse()
        .ok()?;
    let count = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    count.checked_sub(1).map(|c| sequence + c)
}

/// An edge's newest listed segment of `stream`'s `src` rung.
async fn edge_newest(client: &reqwest::Client, edge: &Edge, stream: &str) -> anyhow::Result<u64> {
    let url = format!("{}/live/{stream}/src/index.m3u8", edge.base);
    let text = client
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    newest(&text).with_context(|| format!("{url} lists nothing"))
}

/// Waits until every edge lists [`NEW_SEGMENTS`] segments of `stream` past the newest it
/// listed when called; how long that took.
async fn every_edge_moves_on(
    c: &Compose,
    edges: &[Edge],
    stream: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut before = BTreeMap::new();
    for edge in edges {
        before.insert(
            edge.node.clone(),
            edge_newest(&c.client, edge, stream).await.unwrap_or(0),
        );
    }
    let mut waiting: BTreeSet<String> = edges.iter().map(|e| e.node.clone()).collect();
    while !waiting.is_empty() {
        for edge in edges {
            if waiting.contains(&edge.node) {
                if let Ok(n) = edge_newest(&c.client, edge, stream).await {
                    if n >= before[&edge.node] + NEW_SEGMENTS {
                        waiting.remove(&edge.node);
                    }
                }
            }
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{waiting:?} listed no new segment of {stream} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(started.elapsed())
}

/// Sticky viewers polling the newest segment of `cam1` through a load balancer until
/// stopped; every failed request is counted with what failed.
struct Pollers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(u64, Vec<String>)>>,
}

impl Pollers {
    /// `count` viewers; each pinned to the node its first answer came from (or to
    /// `cookie`'s).
    async fn start(
        c: &Compose,
        base: &str,
        count: usize,
        cookie: Option<String>,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut nodes = Vec::new();
        for _ in 0..count {
            let mut viewer = lb::Viewer::new(c.client.clone(), base);
            viewer.cookie = cookie.clone();
            let first = lb::watch(&mut viewer, "cam1", "src", 1).await?;
            nodes.push(first.last().cloned().unwrap_or_default());
            let stop = Arc::clone(&stop);
            tasks.push(tokio::spawn(async move {
                let (mut requests, mut failures) = (0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    requests += 3;
                    if let Err(e) = lb::watch(&mut viewer, "cam1", "src", 1).await {
                        failures.push(format!("{e:#}"));
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                (requests, failures)
            }));
        }
        Ok((Pollers { stop, tasks }, nodes))
    }

    /// Stops them; the requests made and the failures.
    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut requests, mut failures) = (0, Vec::new());
        for task in self.tasks {
            if let Ok((r, f)) = task.await {
                requests += r;
                failures.extend(f);
            }
        }
        (requests, failures)
    }
}

/// An ffmpeg viewer of `cam1` through `base`, reading for `seconds` while a fault
/// happens; [`Watching::finish`] checks that it played all of it without an error.
struct Watching {
    ffmpeg: tokio::process::Child,
    out: PathBuf,
    seconds: u32,
    name: &'static str,
}

impl Watching {
    async fn start(
        c: &Compose,
        cookie: Option<String>,
        seconds: u32,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        let cookie = match cookie {
            Some(cookie) => cookie,
            None => {
                let mut viewer = lb::Viewer::new(c.client.clone(), &c.https);
                viewer.get("/live/cam1/master.m3u8").await?;
                viewer.cookie.context("no sticky cookie")?
            }
        };
        let out = c.artifacts.join(format!("{name}-viewer.ts"));
        let ffmpeg = lb::ffmpeg_viewer(
            &format!("{}/live/cam1/src/index.m3u8", c.https),
            &cookie,
            &c.ca,
            seconds,
            &out,
        )?;
        lb::wait_for_bytes(&out).await?;
        Ok(Watching {
            ffmpeg,
            out,
            seconds,
            name,
        })
    }

    async fn finish(self) -> anyhow::Result<f64> {
        let name = self.name;
        let output = tokio::time::timeout(
            Duration::from_secs(u64::from(self.seconds) + 60),
            self.ffmpeg.wait_with_output(),
        )
        .await
        .with_context(|| format!("the {name} viewer did not finish"))??;
        let errors = String::from_utf8_lossy(&output.stderr);
        anyhow::ensure!(
            output.status.success() && errors.trim().is_empty(),
            "the {name} viewer: {} {errors}",
            output.status
        );
        let (seconds, complaints) = testkit::ffmpeg::duration_seconds(&self.out).await?;
        anyhow::ensure!(
            complaints.trim().is_empty() && seconds >= f64::from(self.seconds) - 2.0,
            "the {name} viewer played {seconds:.1} s of {}; ffprobe: {complaints}",
            self.seconds
        );
        Ok(seconds)
    }
}

/// `--scale broadcast=6` under an ffmpeg viewer: how long until a new viewer lands on a
/// new edge; every edge serves the same bytes for a segment and a part.
async fn scale(c: &Compose) -> anyhow::Result<()> {
    let watching = Watching::start(c, None, 40, "scale").await?;
    let before: BTreeSet<String> = c.edges().await?.into_iter().map(|e| e.node).collect();
    let started = Instant::now();
    c.compose(&["up", "-d", "--no-recreate", "--scale", "broadcast=6"])
        .await?;
    let edges = c.edges().await?;
    anyhow::ensure!(edges.len() == 6, "{} edges run, not 6", edges.len());
    let new: BTreeSet<String> = edges
        .iter()
        .map(|e| e.node.clone())
        .filter(|n| !before.contains(n))
        .collect();
    anyhow::ensure!(new.len() == 3, "new edges: {new:?}");
    let deadline = started + Duration::from_secs(120);
    let first_on_new = loop {
        let mut viewer = lb::Viewer::new(c.client.clone(), &c.https);
        let answer = viewer.get("/live/cam1/master.m3u8").await?;
        if answer.node.as_ref().is_some_and(|n| new.contains(n)) {
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no new viewer reached a new edge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    c.note(
        "scale_to_first_viewer_on_new_edge_s",
        json!(secs(first_on_new)),
    );
    identical(c, &edges).await?;
    let played = watching.finish().await?;
    c.note(
        "scale_viewer_played_s",
        json!(secs(Duration::from_secs_f64(played))),
    );
    Ok(())
}

/// The newest segment and part every edge lists are the same bytes on every edge.
async fn identical(c: &Compose, edges: &[Edge]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut common: Option<BTreeSet<String>> = None;
        let mut playlists = Vec::new();
        for edge in edges {
            let url = format!("{}/live/cam1/src/index.m3u8", edge.base);
            // A new edge may not listen yet, or not have the window: not yet, not wrong.
            let text = match c.client.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.text().await?,
                _ => String::new(),
            };
            let uris: BTreeSet<String> = text
                .lines()
                .filter_map(|l| {
                    if l.starts_with("#EXT-X-PART:") {
                        l.split("URI=\"")
                            .nth(1)?
                            .split('"')
                            .next()
                            .map(str::to_owned)
                    } else if !l.starts_with('#') && !l.is_empty() {
                        Some(l.to_owned())
                    } else {
                        None
                    }
                })
                .collect();
            common = Some(match common {
                None => uris,
                Some(c) => c.intersection(&uris).cloned().collect(),
            });
            playlists.push(text);
        }
        let common = common.unwrap_or_default();
        let segment = common
            .iter()
            .rfind(|u| !u.contains('.') || u.matches('.').count() == 1);
        let part = common.iter().rfind(|u| u.matches('.').count() == 2);
        if let (Some(segment), Some(part)) = (segment, part) {
            for uri in [segment, part, &"init.mp4".to_owned()] {
                let mut first: Option<bytes::Bytes> = None;
                for edge in edges {
                    let url = format!("{}/live/cam1/src/{uri}", edge.base);
                    let body = c
                        .client
                        .get(&url)
                        .send()
                        .await?
                        .error_for_status()?
                        .bytes()
                        .await?;
                    match &first {
                        None => first = Some(body),
                        Some(f) => anyhow::ensure!(*f == body, "{uri} differs on {}", edge.node),
                    }
                }
            }
            c.note("identical_checked", json!([segment, part, "init.mp4"]));
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the edges list no segment and part in common"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An edge crashes under a pinned ffmpeg viewer and pinned pollers: nobody sees an error;
/// Docker restarts the container.
async fn crash_an_edge(c: &Compose) -> anyhow::Result<()> {
    let mut viewer = lb::Viewer::new(c.client.clone(), &c.https);
    let nodes = lb::watch(&mut viewer, "cam1", "src", 1).await?;
    let node = nodes.last().context("no node")?.clone();
    let cookie = viewer.cookie.clone().context("no cookie")?;
    let edge = c
        .edges()
        .await?
        .into_iter()
        .find(|e| e.node == node)
        .with_context(|| format!("{node} is no running edge"))?;
    let watching = Watching::start(c, Some(cookie.clone()), 30, "edge-crash").await?;
    let (pollers, _) = Pollers::start(c, &c.https, 2, Some(cookie)).await?;
    let restarts = docker::restart_count(&edge.id).await?;
    let crashed = docker::crash(&edge.id).await?;
    let back = docker::wait_restarted(&edge.id, restarts, Duration::from_secs(120)).await?;
    c.note("edge_crash_restarted_healthy_s", json!(secs(back)));
    let played = watching.finish().await?;
    let (requests, failures) = pollers.finish().await;
    c.note(
        "edge_crash_viewer_errors",
        json!({"requests": requests, "failed": failures.len(), "ffmpeg_played_s": played, "since_crash_s": secs(crashed.elapsed())}),
    );
    anyhow::ensure!(failures.is_empty(), "sticky viewers failed: {failures:?}");
    Ok(())
}

/// The ingest crashes under its publisher, which reconnects once Docker restarted it; the
/// stream goes on on every edge.
async fn crash_the_ingest(c: &Compose, publisher: &Reconnecting) -> anyhow::Result<()> {
    let ingest = c.project.container("ingest1").await?;
    let edges = c.edges().await?;
    let restarts = docker::restart_count(&ingest).await?;
    let connects = publisher.connects();
    let crashed = docker::crash(&ingest).await?;
    let back = docker::wait_restarted(&ingest, restarts, Duration::from_secs(120)).await?;
    c.note("ingest_crash_restarted_healthy_s", json!(secs(back)));
    let resumed = every_edge_moves_on(c, &edges, "cam1", Duration::from_secs(90)).await?;
    anyhow::ensure!(
        publisher.connects() > connects,
        "the publisher never reconnected"
    );
    c.note(
        "ingest_crash_to_new_segments_on_every_edge_s",
        json!(secs(crashed.elapsed().max(resumed))),
    );
    Ok(())
}

/// Mosquitto or PostgreSQL crashes; Docker restarts it; every edge lists new segments
/// of `cam1` afterwards, and the catalog answers the operator again.
async fn crash_service(c: &Compose, service: &str) -> anyhow::Result<()> {
    let id = c.project.container(service).await?;
    let edges = c.edges().await?;
    let restarts = docker::restart_count(&id).await?;
    let crashed = docker::crash(&id).await?;
    let back = docker::wait_restarted(&id, restarts, Duration::from_secs(120)).await?;
    c.note(
        &format!("{service}_crash_restarted_healthy_s"),
        json!(secs(back)),
    );
    every_edge_moves_on(c, &edges, "cam1", Duration::from_secs(60)).await?;
    c.note(
        &format!("{service}_crash_to_new_segments_on_every_edge_s"),
        json!(secs(crashed.elapsed())),
    );
    let list = c.tools(&["streams", "list", "--json"]).await?;
    anyhow::ensure!(
        list.contains("cam1"),
        "streams list after the {service} crash: {list}"
    );
    Ok(())
}

/// Issue 50 item 3: one of the two brokers killed (`docker kill`: Docker's restart policy
/// leaves a container killed by hand dead) under an ffmpeg viewer and two pinned pollers.
/// While it is dead every edge lists new segments (the statements come through the other
/// broker) and nobody sees an error; then it is started again and the cluster is healthy.
async fn kill_a_broker(c: &Compose, service: &str, name: &'static str) -> anyhow::Result<()> {
    let id = c.project.container(service).await?;
    let edges = c.edges().await?;
    let watching = Watching::start(c, None, 30, name).await?;
    let (pollers, _) = Pollers::start(c, &c.https, 2, None).await?;
    let killed = Instant::now();
    docker::docker(&["kill", &id]).await?;
    let moved_on = every_edge_moves_on(c, &edges, "cam1", Duration::from_secs(30)).await?;
    let played = watching.finish().await;
    let (requests, failures) = pollers.finish().await;
    let state = docker::docker(&["inspect", "--format", "{{.State.Status}}", &id]).await?;
    c.note(
        &format!("{service}_kill_viewer_errors"),
        json!({
            "requests": requests,
            "failed": failures.len(),
            "ffmpeg_ok": played.is_ok(),
            "kill_to_new_segments_on_every_edge_s": secs(moved_on),
            "since_kill_s": secs(killed.elapsed()),
            "broker_state_after": state.trim(),
        }),
    );
    let played = played?;
    anyhow::ensure!(failures.is_empty(), "sticky viewers failed: {failures:?}");
    anyhow::ensure!(
        state.trim() != "running",
        "{service} was running again before the viewers finished: the kill tested nothing"
    );
    c.note(&format!("{service}_kill_ffmpeg_played_s"), json!(played));
    docker::docker(&["start", &id]).await?;
    let back = c.project.wait_healthy(Duration::from_secs(120)).await?;
    c.note(
        &format!("{service}_started_to_healthy_s"),
        json!(secs(back)),
    );
    Ok(())
}

/// Which load balancer holds the floating address.
async fn holder(c: &Compose) -> anyhow::Result<Option<&'static str>> {
    for service in ["lb1", "lb2"] {
        let Ok(id) = c.project.container(service).await else {
            continue;
        };
        if let Ok(out) = docker::docker(&["exec", &id, "ip", "-o", "-4", "addr", "show"]).await {
            if out.contains(&format!(" {}/", c.vip)) {
                return Ok(Some(service));
            }
        }
    }
    Ok(None)
}

/// The holder of the floating address crashes under Chromium playing through that
/// address: the other takes it within [`FAILOVER_LIMIT`], the video plays on, and a
/// sticky viewer keeps its node (the cookie is good on both balancers).
async fn fail_over(c: &Compose) -> anyhow::Result<()> {
    let held_by = holder(c)
        .await?
        .context("nobody holds the floating address")?;
    let other = if held_by == "lb1" { "lb2" } else { "lb1" };
    let id = c.project.container(held_by).await?;
    // A second's timeout: a request sent while the address is in between hangs until it
    // is given up, and the next one is what tells when the address answers again.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&c.ca)?)?;
    let quick = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(1))
        .build()?;
    let mut sticky = lb::Viewer::new(quick, &c.vip_https);
    let nodes = lb::watch(&mut sticky, "cam1", "src", 1).await?;
    let pinned = nodes.last().context("no node")?.clone();
    let other_pid = docker::main_pid(&c.project.container(other).await?).await?;
    let fault = async {
        let restarts = docker::restart_count(&id).await?;
        let crashed = docker::crash(&id).await?;
        let moved = loop {
            if docker::addresses_of(other_pid)
                .await?
                .contains(&format!(" {}/", c.vip))
            {
                break crashed.elapsed();
            }
            anyhow::ensure!(
                crashed.elapsed() < Duration::from_secs(30),
                "the address never moved"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let answered = loop {
            if let Ok(answer) = sticky.get("/live/cam1/src/index.m3u8").await {
                if answer.status.is_success() {
                    anyhow::ensure!(
                        answer.node.as_deref() == Some(pinned.as_str()),
                        "after the failover the sticky viewer went to {:?}, not {pinned}",
                        answer.node
                    );
                    break crashed.elapsed();
                }
            }
            anyhow::ensure!(
                crashed.elapsed() < Duration::from_secs(30),
                "no answer at the address"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let back = docker::wait_restarted(&id, restarts, Duration::from_secs(120)).await?;
        anyhow::Ok((moved, answered, back))
    };
    let ((moved, answered, back), stall, _) =
        crate::pages::plays_through(&c.vip_https, "cam1", fault).await?;
    c.note(
        "lb_failover",
        json!({"crashed": held_by, "address_moved_s": secs(moved), "first_answer_s": secs(answered),
               "restarted_healthy_s": secs(back), "chromium_longest_stall_s": stall}),
    );
    anyhow::ensure!(
        moved <= FAILOVER_LIMIT,
        "the address took {moved:?} to move"
    );
    Ok(())
}

/// An edge with a pinned viewer is cut off the backend network (broker, pushes, catalog)
/// for 10 s: the viewer plays on; once reconnected, the edge lists new segments again.
async fn partition(c: &Compose) -> anyhow::Result<()> {
    let edges = c.edges().await?;
    let edge = edges.last().context("no edge")?.clone();
    let (pollers, _) = Pollers::start(c, &c.https, 1, None).await?;
    let watching = Watching::start(c, None, 30, "partition").await?;
    let network = format!("{}_backend", c.project.name);
    let cut = Instant::now();
    docker::docker(&["network", "disconnect", &network, &edge.id]).await?;
    // The fault lasts 10 s: a deliberate hold, not a wait for something.
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Back with the service's name, as the cut never happened to the DNS.
    docker::docker(&[
        "network",
        "connect",
        "--alias",
        "broadcast",
        &network,
        &edge.id,
    ])
    .await?;
    let reconnected = Instant::now();
    every_edge_moves_on(
        c,
        std::slice::from_ref(&edge),
        "cam1",
        Duration::from_secs(60),
    )
    .await?;
    c.note(
        "partition_10s_edge_lists_again_after_reconnect_s",
        json!(secs(reconnected.elapsed())),
    );
    let played = watching.finish().await?;
    let (requests, failures) = pollers.finish().await;
    c.note(
        "partition_viewer_errors",
        json!({"requests": requests, "failed": failures.len(), "ffmpeg_played_s": played, "since_cut_s": secs(cut.elapsed())}),
    );
    anyhow::ensure!(failures.is_empty(), "viewers failed: {failures:?}");
    Ok(())
}

/// Every edge replaced by a new container, one at a time (a new one up and listing the
/// window, then the old one stopped and removed), under viewers that see no error.
async fn rolling_restart(c: &Compose) -> anyhow::Result<()> {
    let old = c.edges().await?;
    let (pollers, _) = Pollers::start(c, &c.https, 3, None).await?;
    let started = Instant::now();
    for edge in &old {
        let count = c.edges().await?.len();
        c.compose(&[
            "up",
            "-d",
            "--no-recreate",
            "--scale",
            &format!("broadcast={}", count + 1),
        ])
        .await?;
        let fresh: Vec<Edge> = c
            .edges()
            .await?
            .into_iter()
            .filter(|e| !old.iter().any(|o| o.id == e.id))
            .collect();
        let newest = fresh.last().context("no new edge")?.clone();
        every_edge_moves_on(
            c,
            std::slice::from_ref(&newest),
            "cam1",
            Duration::from_secs(90),
        )
        .await?;
        docker::docker(&["stop", "-t", "30", &edge.id]).await?;
        docker::docker(&["rm", &edge.id]).await?;
    }
    let (requests, failures) = pollers.finish().await;
    c.note(
        "rolling_restart",
        json!({"edges": old.len(), "took_s": secs(started.elapsed()), "requests": requests, "failed": failures.len()}),
    );
    anyhow::ensure!(failures.is_empty(), "viewers failed: {failures:?}");
    let now = c.edges().await?;
    anyhow::ensure!(
        now.len() == old.len() && now.iter().all(|e| !old.iter().any(|o| o.id == e.id)),
        "after the rolling restart: {now:?}"
    );
    Ok(())
}

/// From inside either load balancer, PostgreSQL is neither resolvable nor reachable.
async fn network_split(c: &Compose) -> anyhow::Result<()> {
    let postgres = c.project.container("postgres").await?;
    let address = docker::address(&postgres, "_backend").await?;
    for service in ["lb1", "lb2"] {
        let id = c.project.container(service).await?;
        let name = docker::docker(&["exec", &id, "getent", "hosts", "postgres"]).await;
        anyhow::ensure!(name.is_err(), "{service} resolves postgres: {name:?}");
        let reach = docker::docker(&[
            "exec",
            &id,
            "timeout",
            "3",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{address}/5432"),
        ])
        .await;
        anyhow::ensure!(reach.is_err(), "{service} reaches PostgreSQL at {address}");
    }
    c.note(
        "network_split",
        json!("the load balancers neither resolve nor reach postgres"),
    );
    Ok(())
}

/// Prometheus (the real one, in the cluster) has every target up, one per edge, and every
/// panel of the provisioned Grafana dashboard has series from the live cluster.
async fn monitoring(c: &Compose) -> anyhow::Result<()> {
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let edges = c.edges().await?.len();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let targets: Value = plain
            .get(format!("{}/api/v1/targets", c.prometheus))
            .send()
            .await?
            .json()
            .await?;
        let active = targets["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let down: Vec<String> = active
            .iter()
            .filter(|t| t["health"] != "up")
            .map(|t| format!("{} {}", t["labels"]["job"], t["scrapeUrl"]))
            .collect();
        let per_job = |job: &str| active.iter().filter(|t| t["labels"]["job"] == job).count();
        if down.is_empty()
            && per_job("broadcast") == edges
            && per_job("ingest") == 2
            && per_job("lb") == 2
        {
            c.note("prometheus_targets_up", json!(active.len()));
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "Prometheus targets: {} active, down {down:?}, broadcast {} of {edges}",
            active.len(),
            per_job("broadcast")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let dashboard: Value = serde_json::from_slice(&std::fs::read(
        testkit::repo_root().join("deploy/grafana/dashboards/sealcast.json"),
    )?)?;
    let mut empty = Vec::new();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let Some(targets) = panel["targets"].as_array() else {
            continue;
        };
        panels += 1;
        let mut series = 0;
        for target in targets {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "1m");
            let answer: Value = plain
                .get(format!("{}/api/v1/query", c.prometheus))
                .query(&[("query", expr.as_str())])
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(answer["status"] == "success", "{expr}: {answer}");
            series += answer["data"]["result"].as_array().map_or(0, Vec::len);
        }
        if series == 0 {
            empty.push(panel["title"].as_str().unwrap_or("?").to_owned());
        }
    }
    c.note(
        "dashboard_panels_with_series",
        json!(format!("{} of {panels}", panels - empty.len())),
    );
    anyhow::ensure!(
        empty.is_empty(),
        "dashboard panels without series: {empty:?}"
    );
    Ok(())
}

/// CPU and memory of every container, with the test's streams live.
async fn resources(c: &Compose) -> anyhow::Result<()> {
    let states = c.project.states().await?;
    let ids: Vec<String> = states
        .iter()
        .filter(|s| s.status == "running")
        .map(|s| s.id.clone())
        .collect();
    let stats = docker::stats(&ids).await?;
    let by_id: BTreeMap<&str, &str> = states
        .iter()
        .map(|s| (s.id.as_str(), s.service.as_str()))
        .collect();
    let rows: Vec<Value> = stats
        .iter()
        .map(|(id, cpu, mem)| {
            json!({"service": by_id.get(id.as_str()).copied().unwrap_or("?"), "cpu_percent": cpu, "rss_mib": (*mem as f64 / 1048576.0 * 10.0).round() / 10.0})
        })
        .collect();
    c.note("docker_stats_with_streams", json!(rows));
    Ok(())
}

/// `compose down` then `up -d`: the catalog (streams, their keys), the keys and the
/// broker's retained state (presences of nodes that ran before) are still there.
async fn down_and_up(c: &Compose, key: &str) -> anyhow::Result<()> {
    let admin = c
        .tools(&["api-keys", "add", "e2e", "--scope", "admin"])
        .await?
        .trim()
        .to_owned();
    let nodes_before = api_nodes(c, &admin).await?;
    // `down` removes the containers and their logs: what they logged until now is kept.
    c.save_logs("containers-before-down.log").await;
    let started = Instant::now();
    c.compose(&["down", "-t", "30"]).await?;
    c.compose(&["up", "-d"]).await?;
    c.project.wait_healthy(Duration::from_secs(300)).await?;
    lb::wait_live(&c.client, &c.https, "demo1").await?;
    c.note(
        "down_up_to_first_playable_master_s",
        json!(secs(started.elapsed())),
    );
    let list = c.tools(&["streams", "list", "--json"]).await?;
    anyhow::ensure!(
        list.contains("cam1"),
        "cam1 is gone after down and up: {list}"
    );
    // The old key still publishes (the catalog kept it) and the stream plays.
    let mut publisher = Reconnecting::start(format!("{}/{key}", c.rtmp[0]));
    lb::wait_live(&c.client, &c.https, "cam1").await?;
    publisher.stop().await;
    // Retained presences of nodes from before the restart come back from the broker's
    // persistence.
    let nodes_after = api_nodes(c, &admin).await?;
    let kept: Vec<&String> = nodes_before
        .iter()
        .filter(|n| nodes_after.contains(*n))
        .collect();
    anyhow::ensure!(
        !kept.is_empty(),
        "no node known before down/up is known after: {nodes_before:?} / {nodes_after:?}"
    );
    c.note(
        "down_up_kept",
        json!({"streams": "cam1, demo1, demo2", "nodes_remembered": kept.len()}),
    );
    Ok(())
}

/// The node ids the API lists.
async fn api_nodes(c: &Compose, admin: &str) -> anyhow::Result<BTreeSet<String>> {
    let answer: Value = c
        .client
        .get(format!("{}/api/v1/nodes", c.https))
        .header("x-api-key", admin)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let list = answer
        .as_array()
        .or_else(|| answer["nodes"].as_array())
        .cloned()
        .unwrap_or_default();
    Ok(list
        .iter()
        .filter_map(|n| {
            n["id"]
                .as_str()
                .or_else(|| n["node"].as_str())
                .map(str::to_owned)
        })
        .collect())
}

/// `docker pause`, tried again when the cgroup freezer gave up ("unable to freeze": a task
/// stayed in uninterruptible I/O past the kernel's wait, as PostgreSQL's fsync can on a
/// busy disk; runc thaws the container again).
async fn pause(id: &str) -> anyhow::Result<String> {
    let mut tries = 1;
    loop {
        match docker::docker(&["pause", id]).await {
            Err(e) if tries < 5 && format!("{e:#}").contains("unable to freeze") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// How the catalog goes away for 10 s.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// `docker network disconnect` of PostgreSQL from the backend: unreachable.
    Cut,
    /// `docker pause` (the cgroup freezer): connections stay open, nothing is answered.
    Hang,
}

/// The catalog away for 10 s under an ffmpeg viewer: `cam1` goes on on every edge
/// meanwhile; afterwards the operator's commands work again.
async fn catalog_away(c: &Compose, away: Away) -> anyhow::Result<()> {
    let id = c.project.container("postgres").await?;
    let edges = c.edges().await?;
    let name = match away {
        Away::Cut => "catalog-cut",
        Away::Hang => "catalog-hang",
    };
    let watching = Watching::start(c, None, 25, name).await?;
    let network = format!("{}_backend", c.project.name);
    let started = Instant::now();
    match away {
        Away::Cut => docker::docker(&["network", "disconnect", &network, &id]).await?,
        Away::Hang => pause(&id).await?,
    };
    let during = every_edge_moves_on(c, &edges, "cam1", Duration::from_secs(10)).await;
    // The fault lasts 10 s: a deliberate hold, not a wait for something.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    match away {
        Away::Cut => {
            docker::docker(&["network", "connect", "--alias", "postgres", &network, &id]).await?
        }
        Away::Hang => docker::docker(&["unpause", &id]).await?,
    };
    let back = Instant::now();
    let during = during?;
    // The operator's next command that reaches the catalog.
    let answers = loop {
        match c.tools(&["streams", "list", "--json"]).await {
            Ok(list) if list.contains("cam1") => break back.elapsed(),
            other => anyhow::ensure!(
                back.elapsed() < Duration::from_secs(60),
                "streams list after the catalog came back: {other:?}"
            ),
        }
    };
    let played = watching.finish().await?;
    c.note(
        name,
        json!({"new_segments_on_every_edge_during_s": secs(during), "operator_answered_after_s": secs(answers), "ffmpeg_played_s": played}),
    );
    Ok(())
}

/// The publisher leaves the first ingest and publishes the same key on the second: the
/// stream goes on on every edge.
async fn move_publisher(
    c: &Compose,
    mut publisher: Reconnecting,
    key: &str,
) -> anyhow::Result<Reconnecting> {
    let edges = c.edges().await?;
    publisher.stop().await;
    let moved = Instant::now();
    let publisher = Reconnecting::start(format!("{}/{key}", c.rtmp[1]));
    let resumed = every_edge_moves_on(c, &edges, "cam1", Duration::from_secs(60)).await?;
    c.note(
        "publisher_moved_to_ingest2_new_segments_on_every_edge_s",
        json!(secs(resumed.max(moved.elapsed()))),
    );
    Ok(publisher)
}

/// `tools keys revoke ingest2`: every edge refuses what ingest2 signs from then on
/// (`revoked_key`), and so does an edge that crashed and restarted after the revocation
/// (it reads the revocation kept in the key directory).
async fn revoke(c: &Compose) -> anyhow::Result<()> {
    let edges = c.edges().await?;
    let revoked = |text: &str| {
        testkit::prometheus::sample_sum(
            text,
            "sealcast_segments_rejected_total",
            &["reason=\"revoked_key\""],
        )
    };
    let started = Instant::now();
    c.tools(&["keys", "revoke", "ingest2"]).await?;
    let deadline = started + Duration::from_secs(60);
    for edge in &edges {
        while revoked(&c.metrics(edge).await?) < 1.0 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} never refused ingest2's segments",
                edge.node
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    c.note(
        "revocation_refused_on_every_edge_s",
        json!(secs(started.elapsed())),
    );
    let edge = edges.first().context("no edge")?.clone();
    let restarts = docker::restart_count(&edge.id).await?;
    docker::crash(&edge.id).await?;
    docker::wait_restarted(&edge.id, restarts, Duration::from_secs(120)).await?;
    let edge = c
        .edges()
        .await?
        .into_iter()
        .find(|e| e.id == edge.id)
        .context("the restarted edge")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while revoked(&c.metrics(&edge).await.unwrap_or_default()) < 1.0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the restarted {} served ingest2 again",
            edge.node
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    c.note("revocation_kept_by_a_restarted_edge", json!(true));
    Ok(())
}

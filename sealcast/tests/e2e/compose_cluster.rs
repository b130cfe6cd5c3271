//! The cluster of `docker-compose.yml` as separate processes on this machine, without a
//! container engine: `scripts/init-cluster.sh` makes the secrets, keys and broker files;
//! the Debian package's Mosquitto runs with the compose file's conf, password files and
//! ACLs (on free ports); a PostgreSQL server of this test's own (`testkit::postgres`)
//! stands in for the `postgres` service; two ingests, three broadcast replicas and the load balancer each
//! run with the environment and mounts the compose file gives that service (read from
//! the file, see `support/compose.rs`).
//!
//! Only what Docker's network and port publishing would do is changed: the service host
//! names `mosquitto` and `postgres` become loopback addresses, and `0.0.0.0:PORT` listeners
//! become `127.0.0.1:0`. Each replica gets its own container host name, so its node id and
//! MQTT client id are its own, as under `--scale`, and the broker's per-client-id ACL is
//! what lets its presence and load reports through.
//!
//! Then: an ffmpeg publisher on each ingest, both streams through the load balancer over
//! HTTPS, the nodes' load reports in the API, a fourth replica joining and getting viewers,
//! and faults (issue 16, `docs/reliability.md`): one replica killed under two ffmpeg
//! viewers that play on, Mosquitto killed and restarted (every edge lists new segments
//! again, at most one gap each), the load balancer killed and restarted on its address
//! under a viewer in Chromium (which plays on; a cookie signed before still reaches its
//! node), a replica in a network namespace whose broker link and then push link are cut
//! for 10 s under a pinned viewer, a replica whose pushes alone are held for 10 s (it says
//! it is behind and gets no new viewers until it catches up), the catalog unreachable for
//! 10 s, then hung for 10 s, then its PostgreSQL killed and restarted, a replica killed,
//! kept down longer than the live window and restarted in its own container (its
//! recording lists the hole as gaps), an ingest killed and restarted and its publisher
//! moved to the other ingest (numbering goes on), and an ingest's key revoked, which stays
//! revoked on every edge after the broker lost its persistence, a replica restarted and the
//! ingest restarted. Needs root for the namespace, as CI has.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use testkit::compose::{Container, Dockerfile, InitCluster, Project, Vars};
use testkit::ffmpeg::TestPattern;
use testkit::mosquitto::Mosquitto;
use testkit::net::Relay;
use testkit::netns::Netns;
use testkit::postgres::{OwnServer, ScratchDatabase};
use testkit::process::Spawned;

use crate::cluster::BIN;
use crate::lb;

/// What Docker's network does for the services: names to loopback addresses.
struct Network {
    mqtt_nodes: u16,
    mqtt_control: u16,
    database_server: String,
    database: String,
}

impl Network {
    /// A service's environment as a process here needs it.
    fn rewrite(&self, env: &Vars) -> Vars {
        env.iter()
            .map(|(name, value)| {
                let value = value
                    .replace(
                        "@mosquitto:1883",
                        &format!("@127.0.0.1:{}", self.mqtt_nodes),
                    )
                    .replace(
                        "@mosquitto:1884",
                        &format!("@127.0.0.1:{}", self.mqtt_control),
                    )
                    .replace(
                        "@postgres:5432/sealcast",
                        &format!("@{}/{}", self.database_server, self.database),
                    );
                let value = if name.ends_with("_LISTEN") && value.starts_with("0.0.0.0:") {
                    "127.0.0.1:0".to_owned()
                } else {
                    value
                };
                (name.clone(), value)
            })
            .collect()
    }
}

/// One service's process, in its materialized container.
struct Service {
    container: Container,
    process: Spawned,
    /// The rest of its ready line (a broadcast replica's base URL, the lb's player URL).
    ready: String,
}

impl Service {
    /// Starts `service` as compose would (its command, its environment, its mounts) and
    /// reads the line starting with `ready` from its stdout; returns it with the rest of
    /// that line. `extra` is set over the environment (the test's listener ports).
    async fn start(
        cluster: &Compose,
        service: &str,
        ready: impl Fn(&Container) -> String,
        extra: &[(&str, String)],
    ) -> anyhow::Result<(Self, String)> {
        Self::start_in(cluster, service, ready, extra, None).await
    }

    /// [`Service::start`], inside network namespace `netns` if given.
    async fn start_in(
        cluster: &Compose,
        service: &str,
        ready: impl Fn(&Container) -> String,
        extra: &[(&str, String)],
        netns: Option<&Netns>,
    ) -> anyhow::Result<(Self, String)> {
        let definition = cluster.project.service(service)?;
        let container =
            Container::materialize(definition, &cluster.project.dir, cluster.image.as_ref())?;
        Self::launch(cluster, service, container, ready, extra, netns, "").await
    }

    /// `kill -9` of the process, then the same service started again in the same
    /// container (host name, node id, volumes) once `down` is over: a crash and its
    /// restart.
    async fn restart(
        self,
        cluster: &Compose,
        service: &str,
        ready: impl Fn(&Container) -> String,
        down: impl std::future::Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<(Self, String)> {
        self.process.kill().await?;
        down.await?;
        Self::launch(
            cluster,
            service,
            self.container,
            ready,
            &[],
            None,
            "-restarted",
        )
        .await
    }

    /// Runs `service`'s command in `container`; its log is `{service}-{host}{suffix}.log`.
    async fn launch(
        cluster: &Compose,
        service: &str,
        container: Container,
        ready: impl Fn(&Container) -> String,
        extra: &[(&str, String)],
        netns: Option<&Netns>,
        log_suffix: &str,
    ) -> anyhow::Result<(Self, String)> {
        let definition = cluster.project.service(service)?;
        let mut env = cluster.network.rewrite(
            &cluster
                .project
                .container_env(definition, cluster.image.as_ref()),
        );
        for (name, value) in extra {
            env.insert((*name).to_owned(), value.clone());
        }
        let argv = definition.argv(cluster.image.as_ref());
        anyhow::ensure!(
            argv.first().map(String::as_str) == Some("sealcast"),
            "{service} does not run sealcast: {argv:?}"
        );
        let mut command = match netns {
            None => container.command(Path::new(BIN), &env),
            Some(netns) => {
                let [ip, rest @ ..] = netns.exec_prefix();
                let mut command = container.command(Path::new(ip), &env);
                command.args(rest).arg(BIN);
                command
            }
        };
        command.args(&argv[1..]);
        let log = cluster
            .logs
            .join(format!("{service}-{}{log_suffix}.log", container.hostname));
        let mut process = Spawned::start(service, tokio::process::Command::from(command), &log)?;
        let line = process
            .line(&ready(&container), Duration::from_secs(30))
            .await?;
        process.drain();
        let ready = line.clone();
        Ok((
            Service {
                container,
                process,
                ready,
            },
            line,
        ))
    }

    /// The node id a broadcast replica takes from its host name.
    fn broadcast_id(container: &Container) -> String {
        format!("broadcast-{}", container.hostname)
    }

    /// SIGTERM, then the exit status and the log; a panic or a failed exit is an error.
    async fn stop(self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(30)).await?;
        drop(self.container);
        Ok(())
    }
}

/// The emulated deployment: the project the init script prepared, its image, the broker.
struct Compose {
    project: Project,
    image: Option<Dockerfile>,
    network: Network,
    logs: PathBuf,
}

impl Compose {
    /// Runs a one-shot `sealcast` command with `service`'s environment (as
    /// `docker compose run --rm SERVICE ...` would); its stdout.
    async fn run(&self, service: &str, args: &[&str]) -> anyhow::Result<String> {
        let definition = self.project.service(service)?;
        let container = Container::materialize(definition, &self.project.dir, self.image.as_ref())?;
        let env = self
            .network
            .rewrite(&self.project.container_env(definition, self.image.as_ref()));
        let mut command = container.command(Path::new(BIN), &env);
        command.args(args);
        let output = tokio::process::Command::from(command).output().await?;
        anyhow::ensure!(
            output.status.success(),
            "sealcast {} ({service}'s environment): {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    }
}

pub(crate) async fn check_compose_cluster() -> anyhow::Result<()> {
    let init =
        tokio::task::spawn_blocking(|| InitCluster::run(&testkit::repo_root(), Path::new(BIN)))
            .await??;
    let project = init.project()?;
    let image = project.dockerfile(project.service("broadcast")?)?;
    let mut broker = tokio::task::block_in_place(|| Mosquitto::start_for(&project, "mosquitto"))?;
    // A server of its own: the test kills and restarts it.
    let mut postgres = tokio::task::spawn_blocking(OwnServer::start).await??;
    let database = ScratchDatabase::create_on(&postgres.admin_url(), Some("sealcast")).await?;
    // The cluster reaches the database through a relay the test can cut.
    let mut relay = Relay::start(database.server().parse()?).await?;
    let logs = tempfile::Builder::new().prefix("compose-logs-").tempdir()?;
    let cluster = Compose {
        network: Network {
            mqtt_nodes: broker.port(1883)?,
            mqtt_control: broker.port(1884)?,
            database_server: relay.addr().to_string(),
            database: database.name().to_owned(),
        },
        project,
        image,
        logs: logs.path().to_path_buf(),
    };
    let mut catalog = Catalog {
        relay: &mut relay,
        server: &mut postgres,
        url: database.url(),
    };
    let result = run(&cluster, &init, &mut broker, &mut catalog).await;
    // The whole server goes with `postgres`; the database needs no dropping.
    drop(database);
    if result.is_err() {
        // Keep what the processes said for the error message.
        let _ = logs.keep();
    }
    result.with_context(|| {
        format!(
            "logs in {}; broker log:\n{}",
            cluster.logs.display(),
            broker.log()
        )
    })
}

/// The catalog as the cluster reaches it: its server, the relay in front of it, and the
/// database's URL (for the test's own queries, not through the relay).
struct Catalog<'a> {
    relay: &'a mut Relay,
    server: &'a mut OwnServer,
    url: &'a str,
}

async fn run(
    cluster: &Compose,
    init: &InitCluster,
    broker: &mut Mosquitto,
    catalog: &mut Catalog<'_>,
) -> anyhow::Result<()> {
    // Stream keys, as the source services make them.
    let mut keys = Vec::new();
    for (source, stream) in [("source1", "demo1"), ("source2", "demo2")] {
        keys.push(cluster.run(source, &["streams", "add", stream]).await?);
    }
    let api_key = cluster
        .run("tools", &["api-keys", "add", "e2e", "--scope", "read"])
        .await?;

    let mut ingests = Vec::new();
    let mut rtmp = Vec::new();
    for name in ["ingest1", "ingest2"] {
        let (service, url) = Service::start(cluster, name, |_| "obs-server ".into(), &[]).await?;
        rtmp.push(url);
        ingests.push(service);
    }
    let mut edges = Vec::new();
    for _ in 0..3 {
        edges.push(start_edge(cluster).await?);
    }
    let (balancer, player) = Service::start(cluster, "lb", |_| "player ".into(), &[]).await?;
    let https = player.trim_end_matches('/').to_owned();
    let ca = init.project_dir().join("certs/generated/ca.pem");

    // One ffmpeg publisher on each ingest: 360p (passed through and encoded) and 240p.
    let publishers = [
        TestPattern::new(640, 360, 30, 360).publish(&format!("{}/{}", rtmp[0], keys[0]))?,
        TestPattern::new(426, 240, 30, 360).publish(&format!("{}/{}", rtmp[1], keys[1]))?,
    ];
    let mut outcome = play(cluster, &https, &ca, &api_key, &mut edges).await;
    if outcome.is_ok() {
        // A new viewer through the load balancer plays through the broker's restart.
        outcome = async {
            let viewer = Watching::start(cluster, &https, &ca, None, 25, "broker-restart").await?;
            restart_the_broker(broker, &edges).await?;
            viewer.finish().await
        }
        .await;
    }
    let (balancer, lb_metrics) = if outcome.is_ok() {
        match restart_the_balancer(cluster, &ca, balancer).await {
            Ok((restarted, metrics)) => (restarted, Some(metrics)),
            Err(e) => {
                // The old balancer is gone: stop the rest and report.
                for service in ingests.into_iter().chain(edges) {
                    let _ = service.stop().await;
                }
                for p in publishers {
                    p.kill_hard();
                }
                return Err(e);
            }
        }
    } else {
        (balancer, None)
    };
    let https = balancer.ready.clone();
    if outcome.is_ok() {
        outcome = cut_an_edge(cluster, &https, &ca).await;
    }
    if let (true, Some(lb_metrics)) = (outcome.is_ok(), &lb_metrics) {
        outcome = hold_an_edges_pushes(cluster, &https, &ca, lb_metrics).await;
    }
    if outcome.is_ok() {
        // A new viewer plays through the catalog's cut, its hang and its server's restart.
        outcome = async {
            let viewer = Watching::start(cluster, &https, &ca, None, 55, "catalog").await?;
            catalog_away(catalog, &edges, Away::Cut).await?;
            catalog_away(catalog, &edges, Away::Hang).await?;
            restart_the_catalog(catalog, &edges).await?;
            viewer.finish().await
        }
        .await;
    }
    let mut killed_after = None;
    if outcome.is_ok() {
        match restart_a_replica(cluster, &mut edges).await {
            Ok(seq) => killed_after = Some(seq),
            Err(e) => outcome = Err(e),
        }
    }
    let [first, second] = publishers;
    first.kill_hard();
    if outcome.is_ok() {
        outcome = restart_an_ingest(
            cluster,
            &https,
            &ca,
            &mut ingests,
            second,
            &keys[1],
            &rtmp[0],
        )
        .await;
    } else {
        second.kill_hard();
    }
    // demo1 ended when its publisher was killed (after the ingest's grace period).
    if let (true, Some(killed_after)) = (outcome.is_ok(), killed_after) {
        outcome = check_the_restarted_recording(&edges[0], killed_after).await;
    }
    if outcome.is_ok() {
        outcome = revoke_an_ingest(cluster, broker, &mut ingests, &mut edges, &keys[1]).await;
    }
    // Everything still running stops cleanly.
    let mut stopped = Vec::new();
    for service in ingests.into_iter().chain(edges).chain([balancer]) {
        stopped.push(service.stop().await);
    }
    outcome?;
    stopped.into_iter().collect()
}

/// Issue 16: `kill -9` of the ingest publishing `demo2` mid-stream, the ingest started
/// again, the publisher back with the same key: the edges take the new session's segments
/// (numbering continues from the catalog instead of starting at 0 again, which edges
/// refused as replays), list a discontinuity, and the playlist advances past where it
/// stood. Then the publisher moves to the other ingest (`ingest1`, which never published
/// `demo2`): the same again.
async fn restart_an_ingest(
    cluster: &Compose,
    https: &str,
    ca: &Path,
    ingests: &mut Vec<Service>,
    publisher: testkit::ffmpeg::Publisher,
    key: &str,
    other_ingest: &str,
) -> anyhow::Result<()> {
    let client = lb::https_client(ca)?;
    let last_before = demo2_last(&client, https).await?;
    let killed = ingests.remove(1);
    killed.process.kill().await?;
    drop(killed.container);
    publisher.kill_hard();
    let (restarted, rtmp) =
        Service::start(cluster, "ingest2", |_| "obs-server ".into(), &[]).await?;
    ingests.push(restarted);
    let again = TestPattern::new(426, 240, 30, 90).publish(&format!("{rtmp}/{key}"))?;
    let outcome = demo2_resumes(&client, https, last_before, 3, "ingest restart").await;
    if let Err(e) = outcome {
        again.kill_hard();
        return Err(e);
    }

    // The publisher moves to ingest1 while its connection to ingest2 still publishes:
    // ingest2 is asked (through the catalog) to end its session, and closes it.
    let last_before = demo2_last(&client, https).await?;
    let moved = TestPattern::new(426, 240, 30, 60).publish(&format!("{other_ingest}/{key}"))?;
    let moved_at = tokio::time::Instant::now();
    let old_connection = tokio::time::timeout(Duration::from_secs(20), again.wait()).await;
    if old_connection.is_err() {
        moved.kill_hard();
        anyhow::bail!("ingest2 still took the old connection's publish 20 s after the move");
    }
    eprintln!(
        "publisher moved while still publishing: ingest2 closed the old connection {:?} after the move",
        moved_at.elapsed()
    );
    // Seven segments: past the end of ingest2's session, which the edges must take as
    // stale, not as the end of the stream.
    let outcome = demo2_resumes(&client, https, last_before, 7, "publisher moved to ingest1").await;
    moved.kill_hard();
    outcome
}

/// Issue 16: an ingest's key revoked while it publishes stays revoked across every
/// restart. `ingest1` publishes `demo2`; the operator revokes its key with
/// `sealcast keys revoke ingest1` (the `tools` service: a root-signed revocation, retained on
/// the broker and kept in the key directory). Every edge refuses what the key signs
/// (`revoked_key`) and lists none of it; then again after Mosquitto restarted with its
/// persistence lost (the retained revocation gone), after a replica was killed and started
/// again (it reads the kept revocation), and after `ingest1` was killed and started again
/// (it announces its certificate anew) with its publisher back.
async fn revoke_an_ingest(
    cluster: &Compose,
    broker: &mut Mosquitto,
    ingests: &mut Vec<Service>,
    edges: &mut Vec<Service>,
    key: &str,
) -> anyhow::Result<()> {
    let mut publishers = Vec::new();
    let outcome =
        revoked_across_restarts(cluster, broker, ingests, edges, key, &mut publishers).await;
    for publisher in publishers {
        publisher.kill_hard();
    }
    outcome
}

async fn revoked_across_restarts(
    cluster: &Compose,
    broker: &mut Mosquitto,
    ingests: &mut Vec<Service>,
    edges: &mut Vec<Service>,
    key: &str,
    publishers: &mut Vec<testkit::ffmpeg::Publisher>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let rtmp = ingests[0].ready.trim().to_owned();
    let mut start = Vec::new();
    for edge in edges.iter() {
        start.push(newest_segment(&client, &edge.ready, "demo2").await?);
    }
    publishers.push(TestPattern::new(426, 240, 30, 150).publish(&format!("{rtmp}/{key}"))?);
    // demo2 plays from ingest1 on every edge.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (edge, start) in edges.iter().zip(&start) {
        while newest_segment(&client, &edge.ready, "demo2").await? < start + 2 {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "demo2 from ingest1 does not reach {}",
                Service::broadcast_id(&edge.container)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    let before = revoked_counts(&client, edges).await?;
    cluster.run("tools", &["keys", "revoke", "ingest1"]).await?;
    let revoked = tokio::time::Instant::now();
    refused_again(&client, edges, &before, "after the revocation").await?;
    // What was verified before the revocation may still be published (one segment in
    // flight at most); nothing after it.
    let mut allowed = 0;
    for edge in edges.iter() {
        allowed = allowed.max(newest_segment(&client, &edge.ready, "demo2").await? + 1);
    }
    eprintln!(
        "ingest1's key revoked: every edge refused what it signs within {:?}",
        revoked.elapsed()
    );

    // The broker forgets the retained revocation.
    let before = revoked_counts(&client, edges).await?;
    tokio::task::block_in_place(|| broker.restart_forgetting())?;
    refused_again(
        &client,
        edges,
        &before,
        "after the broker lost its persistence",
    )
    .await?;

    // A replica restarts: it reads the revocation kept in the key directory.
    let victim = edges.remove(0);
    let (restarted, _) = victim
        .restart(
            cluster,
            "broadcast",
            |c| format!("{} ", Service::broadcast_id(c)),
            async { Ok(()) },
        )
        .await?;
    edges.insert(0, restarted);
    refused_again(
        &client,
        &edges[..1],
        &[0.0],
        "on a replica restarted after the revocation",
    )
    .await?;

    // ingest1 restarts and announces its certificate again; its publisher comes back.
    let before = revoked_counts(&client, edges).await?;
    let ingest1 = ingests.remove(0);
    let (restarted, rtmp) = ingest1
        .restart(cluster, "ingest1", |_| "obs-server ".into(), async {
            Ok(())
        })
        .await?;
    ingests.insert(0, restarted);
    publishers.push(TestPattern::new(426, 240, 30, 60).publish(&format!("{}/{key}", rtmp.trim()))?);
    refused_again(&client, edges, &before, "after ingest1 restarted").await?;

    for edge in edges.iter() {
        // A 404 (the restarted replica took nothing of demo2) lists nothing.
        let listed = listed_at(&client, &edge.ready, "demo2")
            .await
            .unwrap_or_default();
        let served: Vec<u64> = listed
            .iter()
            .filter(|(s, gap)| !gap && *s > allowed)
            .map(|(s, _)| *s)
            .collect();
        anyhow::ensure!(
            served.is_empty(),
            "{} lists segments of demo2 signed after ingest1's key was revoked: {served:?}",
            Service::broadcast_id(&edge.container)
        );
    }
    eprintln!(
        "ingest1's key stayed revoked on every edge across the broker losing its persistence, \
         a replica's restart and ingest1's restart"
    );
    Ok(())
}

/// The newest segment of `stream` (source rendition) with bytes that the node at `base`
/// lists; 0 if none or no playlist.
async fn newest_segment(client: &reqwest::Client, base: &str, stream: &str) -> anyhow::Result<u64> {
    Ok(listed_at(client, base, stream)
        .await
        .unwrap_or_default()
        .iter()
        .filter(|(_, gap)| !gap)
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(0))
}

/// Each edge's count of manifests refused as signed by a revoked key.
async fn revoked_counts(client: &reqwest::Client, edges: &[Service]) -> anyhow::Result<Vec<f64>> {
    let mut counts = Vec::new();
    for edge in edges {
        let text = client
            .get(format!("{}/metrics", edge.ready.trim_end_matches('/')))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        counts.push(testkit::prometheus::sample_sum(
            &text,
            "sealcast_segments_rejected_total",
            &["reason=\"revoked_key\""],
        ));
    }
    Ok(counts)
}

/// Waits (30 s at most) until every edge has refused more manifests as `revoked_key` than
/// `before` says.
async fn refused_again(
    client: &reqwest::Client,
    edges: &[Service],
    before: &[f64],
    when: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = revoked_counts(client, edges).await?;
        if now.iter().zip(before).all(|(n, b)| n > b) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{when}: revoked_key refusals per edge {now:?}, before {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `demo2`'s source playlist through the load balancer.
async fn demo2_playlist(
    client: &reqwest::Client,
    https: &str,
) -> anyhow::Result<m3u8_rs::MediaPlaylist> {
    let body = client
        .get(format!("{https}/live/demo2/src/index.m3u8"))
        .send()
        .await?
        .bytes()
        .await?;
    match m3u8_rs::parse_media_playlist_res(&body) {
        Ok(p) => Ok(p),
        Err(e) => anyhow::bail!("demo2's playlist does not parse: {e:?}"),
    }
}

/// One past the last sequence number `demo2` lists.
async fn demo2_last(client: &reqwest::Client, https: &str) -> anyhow::Result<u64> {
    let p = demo2_playlist(client, https).await?;
    Ok(p.media_sequence + p.segments.len() as u64)
}

/// Waits (90 s at most) until `demo2` lists a discontinuity at or after `last_before` and
/// `segments` segments past it: a new session continued the numbering.
async fn demo2_resumes(
    client: &reqwest::Client,
    https: &str,
    last_before: u64,
    segments: u64,
    what: &str,
) -> anyhow::Result<()> {
    let republished = tokio::time::Instant::now();
    loop {
        let p = demo2_playlist(client, https).await?;
        let resumed = p.segments.iter().enumerate().any(|(i, s)| {
            s.discontinuity && p.media_sequence + i as u64 >= last_before.saturating_sub(1)
        });
        let last = p.media_sequence + p.segments.len() as u64;
        if resumed && last >= last_before + segments {
            eprintln!(
                "{what}: demo2 lists {segments} new segments after the discontinuity {:?} after the publisher reconnected",
                republished.elapsed()
            );
            return Ok(());
        }
        anyhow::ensure!(
            republished.elapsed() < Duration::from_secs(90),
            "{what}: demo2 lists up to {last} (before: {last_before}), discontinuity after: {resumed}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A media playlist as an edge lists it: each sequence number and whether it is a gap.
fn listed(text: &str) -> Vec<(u64, bool)> {
    let mut sequence = None;
    let mut gap = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(first) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = first.trim().parse::<u64>().ok();
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(seq) = sequence.as_mut() {
                out.push((*seq, gap));
                *seq += 1;
            }
            gap = false;
        }
    }
    out
}

/// What the edge at `base` lists of `demo1`'s source rendition.
async fn demo1_listed(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<(u64, bool)>> {
    listed_at(client, base, "demo1").await
}

/// The source rendition of `stream` on the node at `base`: each sequence number listed,
/// and whether it is a gap.
async fn listed_at(
    client: &reqwest::Client,
    base: &str,
    stream: &str,
) -> anyhow::Result<Vec<(u64, bool)>> {
    let url = format!("{base}/live/{stream}/src/index.m3u8");
    let text = client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(listed(&text))
}

/// Issue 16: Mosquitto killed (SIGKILL: it keeps only what it last autosaved) and
/// started again mid-stream. Every edge lists new segments of `demo1` again, and the gaps
/// each lists for the time the broker was away are counted, at most one per edge.
async fn restart_the_broker(broker: &mut Mosquitto, edges: &[Service]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut before = Vec::new();
    for edge in edges {
        let last = demo1_listed(&client, &edge.ready)
            .await?
            .last()
            .map_or(0, |(seq, _)| *seq);
        before.push(last);
    }
    tokio::task::block_in_place(|| broker.restart())?;
    let restarted = tokio::time::Instant::now();
    let mut gaps = vec![std::collections::BTreeSet::new(); edges.len()];
    let mut recovered = vec![None; edges.len()];
    while recovered.iter().any(Option::is_none) {
        anyhow::ensure!(
            restarted.elapsed() < Duration::from_secs(60),
            "60 s after the broker restart, edges list demo1 up to {:?} (before: {before:?}; gaps {gaps:?})",
            recovered
        );
        for (i, edge) in edges.iter().enumerate() {
            if recovered[i].is_some() {
                continue;
            }
            let listed = demo1_listed(&client, &edge.ready).await?;
            for (seq, gap) in &listed {
                if *gap && *seq > before[i] {
                    gaps[i].insert(*seq);
                }
            }
            // Three new segments with bytes: manifests and pushes flow again.
            let fresh = listed
                .iter()
                .filter(|(seq, gap)| *seq > before[i] && !gap)
                .count();
            if fresh >= 3 {
                recovered[i] = Some(restarted.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (i, edge) in edges.iter().enumerate() {
        eprintln!(
            "broker restart: {} lists new segments again after {:?}, gaps {:?}",
            Service::broadcast_id(&edge.container),
            recovered[i],
            gaps[i]
        );
        anyhow::ensure!(
            gaps[i].len() <= 1,
            "{}: {} gaps for one broker restart: {:?}",
            Service::broadcast_id(&edge.container),
            gaps[i].len(),
            gaps[i]
        );
    }
    Ok(())
}

/// Issue 16: the load balancer killed (SIGKILL) and started again on its address, while
/// a viewer in Chromium plays `demo1` through it: the player retries what failed while
/// the balancer was away and plays on. A viewer's cookie, signed by the balancer before,
/// still takes it to the same node, as a sticky hit (no new cookie). Returns the
/// restarted balancer and the address of its metrics.
async fn restart_the_balancer(
    cluster: &Compose,
    ca: &Path,
    balancer: Service,
) -> anyhow::Result<(Service, String)> {
    let client = lb::https_client(ca)?;
    let https = balancer.ready.trim_end_matches('/').to_owned();
    let port = https
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .with_context(|| format!("no port in the player URL {https}"))?;
    let mut viewer = lb::Viewer::new(client.clone(), &https);
    let nodes = lb::watch(&mut viewer, "demo1", "src", 1).await?;
    let pinned = nodes.first().context("no node answered")?.clone();
    let cookie = viewer.cookie.clone().context("no sticky cookie")?;

    let metrics = format!("127.0.0.1:{}", testkit::net::free_port()?);
    let restart = async {
        balancer.process.kill().await?;
        let killed = tokio::time::Instant::now();
        drop(balancer.container);
        let (restarted, player) = Service::start(
            cluster,
            "lb",
            |_| "player ".into(),
            &[
                ("SEALCAST_LB_HTTPS_LISTEN", format!("127.0.0.1:{port}")),
                ("SEALCAST_METRICS_LISTEN", metrics.clone()),
            ],
        )
        .await?;
        anyhow::ensure!(
            player.trim_end_matches('/') == https,
            "the restarted balancer is at {player}, not {https}"
        );
        let listening = killed.elapsed();
        // Its membership comes back from the broker's retained presences and health checks.
        lb::wait_routed_to(&client, &https, "demo1", &pinned, Duration::from_secs(20)).await?;
        Ok((restarted, listening, killed.elapsed()))
    };
    let ((restarted, listening, routing), stall, _) =
        crate::pages::plays_through(&https, "demo1", restart).await?;
    eprintln!(
        "lb killed and restarted: listening again after {listening:?}, routing to {pinned} \
         after {routing:?}; the browser viewer's longest stall {stall:.1} s"
    );
    anyhow::ensure!(
        stall < STALL_LIMIT_SECS,
        "the browser viewer stood still {stall:.1} s across the lb restart"
    );
    let mut viewer = lb::Viewer::new(client, &https);
    viewer.cookie = Some(cookie.clone());
    let answer = viewer.get("/live/demo1/src/index.m3u8").await?;
    anyhow::ensure!(
        answer.status.is_success(),
        "after the lb restart: {}",
        answer.status
    );
    anyhow::ensure!(
        answer.node.as_deref() == Some(pinned.as_str()) && answer.set_cookie.is_none(),
        "after the lb restart the cookie for {pinned} went to {:?} (set-cookie {:?})",
        answer.node,
        answer.set_cookie
    );
    Ok((restarted, format!("http://{metrics}/metrics")))
}

/// The longest a browser viewer's media time may stand still across a fault: less than
/// one segment (the player's buffer covers the rest).
const STALL_LIMIT_SECS: f64 = 2.0;

/// Issue 16: a broadcast replica in a network namespace of its own, reached through two
/// veth links: one to the broker (through a relay in this test, as the broker listens on
/// loopback), one for the ingests' pushes and the load balancer. Each link is cut for
/// 10 s (down: nothing passes either way, nobody is told) and restored, while a viewer
/// pinned to the replica plays through the load balancer with ffmpeg.
///
/// Broker link: pushes keep arriving, their manifests come late and together, and the
/// replica lists them without a gap. Push link: the load balancer's checks fail and it
/// moves the viewer; the replica lists new segments again once the link is back. The
/// viewer sees no error either way.
async fn cut_an_edge(cluster: &Compose, https: &str, ca: &Path) -> anyhow::Result<()> {
    let tag = std::process::id() % 10_000;
    let mut netns = Netns::create(&format!("sc-e2e-{tag}"))?;
    let broker_link = format!("scb{tag}");
    let push_link = format!("scp{tag}");
    netns.veth(&broker_link, "10.231.0.1/30", "10.231.0.2/30")?;
    netns.veth(&push_link, "10.231.1.1/30", "10.231.1.2/30")?;
    // The broker and the catalog listen on loopback: relays on the broker link reach them.
    let mut relays = Vec::new();
    let mut addresses = Vec::new();
    for server in [
        format!("127.0.0.1:{}", cluster.network.mqtt_nodes),
        cluster.network.database_server.clone(),
    ] {
        let relay = tokio::net::TcpListener::bind("10.231.0.1:0").await?;
        let port = relay.local_addr()?.port();
        let to: std::net::SocketAddr = server.parse()?;
        relays.push(tokio::spawn(testkit::netns::forward(relay, to)));
        addresses.push((format!("@{server}/"), format!("@10.231.0.1:{port}/")));
        addresses.push((format!("@{server}"), format!("@10.231.0.1:{port}")));
    }
    let definition = cluster.project.service("broadcast")?;
    let env = cluster.network.rewrite(
        &cluster
            .project
            .container_env(definition, cluster.image.as_ref()),
    );
    let mut extra: Vec<(&str, String)> = env
        .iter()
        .filter_map(|(name, value)| {
            let (from, to) = addresses
                .iter()
                .find(|(from, _)| value.contains(from.as_str()))?;
            Some((name.as_str(), value.replace(from.as_str(), to)))
        })
        .collect();
    extra.push(("SEALCAST_HTTP_LISTEN", "10.231.1.2:0".to_owned()));
    let (edge, base) = Service::start_in(
        cluster,
        "broadcast",
        |c| format!("{} ", Service::broadcast_id(c)),
        &extra,
        Some(&netns),
    )
    .await?;
    let outcome = cut_links(
        cluster,
        https,
        ca,
        &netns,
        &edge,
        &base,
        [&broker_link, &push_link],
    )
    .await;
    // Whatever happened, the links are up again before the replica stops.
    let _ = netns.set_link(&broker_link, true);
    let _ = netns.set_link(&push_link, true);
    let stopped = edge.stop().await;
    for relay in relays {
        relay.abort();
    }
    outcome?;
    stopped
}

async fn cut_links(
    cluster: &Compose,
    https: &str,
    ca: &Path,
    netns: &Netns,
    edge: &Service,
    base: &str,
    [broker_link, push_link]: [&str; 2],
) -> anyhow::Result<()> {
    let id = Service::broadcast_id(&edge.container);
    let client = lb::https_client(ca)?;
    // A viewer pinned to the replica.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let cookie = loop {
        let mut viewer = lb::Viewer::new(client.clone(), https);
        let answer = viewer.get("/live/demo1/master.m3u8").await?;
        if answer.node.as_deref() == Some(id.as_str()) {
            break viewer.cookie.context("no sticky cookie")?;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no new viewer reached {id} in the namespace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let viewer = Watching::start(cluster, https, ca, Some(cookie), 45, "cut").await?;

    let direct = reqwest::Client::new();
    let playlist = || demo1_listed(&direct, base);
    for (what, link, gaps_allowed) in [("broker", broker_link, 0), ("push", push_link, usize::MAX)]
    {
        let before = playlist().await?.last().map_or(0, |(seq, _)| *seq);
        netns.set_link(link, false)?;
        // The fault's duration, not a wait for anything.
        tokio::time::sleep(Duration::from_secs(10)).await;
        netns.set_link(link, true)?;
        let back = tokio::time::Instant::now();
        let mut gaps = std::collections::BTreeSet::new();
        loop {
            // The push link also carries these requests: retried while it comes back.
            if let Ok(listed) = playlist().await {
                gaps.extend(
                    listed
                        .iter()
                        .filter(|(s, g)| *g && *s > before)
                        .map(|(s, _)| *s),
                );
                let fresh = listed.iter().filter(|(s, g)| *s > before && !g).count();
                if fresh >= 3 {
                    break;
                }
            }
            anyhow::ensure!(
                back.elapsed() < Duration::from_secs(40),
                "{id}: 40 s after its {what} link came back it lists no new segments of demo1"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "{what} link of {id} cut for 10 s: three new segments listed {:?} after it came back, gaps {gaps:?}",
            back.elapsed()
        );
        anyhow::ensure!(
            gaps.len() <= gaps_allowed,
            "{id}: {} gaps after a {what} link cut: {gaps:?}",
            gaps.len()
        );
    }

    viewer
        .finish()
        .await
        .with_context(|| format!("the viewer pinned to {id} through both cuts"))
}

/// Issue 16: the ingests' pushes to one replica held for 10 s (their connections stay
/// open, nothing passes, nobody is told) while everything else of it works: its broker
/// link brings the verified manifests, and the load balancer's requests and health checks
/// reach it. A relay in this test stands between the replica and whoever connects to the
/// URL it announces, and holds only the connections that start with a push request.
///
/// The replica falls behind live and says so; the load balancer sends it no new viewer
/// while it is behind (a new viewer through the balancer plays on elsewhere, with no
/// error). Once the pushes flow again it catches up at once (the missing run resolved
/// together, not one hold time per segment) and gets new viewers again.
async fn hold_an_edges_pushes(
    cluster: &Compose,
    https: &str,
    ca: &Path,
    lb_metrics: &str,
) -> anyhow::Result<()> {
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], testkit::net::free_port()?));
    let mut relay = Relay::start_selective(listen, |first| {
        first.starts_with(b"PUT /internal/") || first.starts_with(b"POST /internal/")
    })
    .await?;
    let (edge, _) = Service::start(
        cluster,
        "broadcast",
        |c| format!("{} ", Service::broadcast_id(c)),
        &[
            ("SEALCAST_HTTP_LISTEN", listen.to_string()),
            ("SEALCAST_PUBLIC_URL", format!("http://{}", relay.addr())),
        ],
    )
    .await?;
    let outcome = hold_pushes(cluster, https, ca, lb_metrics, &mut relay, &edge, listen).await;
    let _ = relay.restore().await;
    let stopped = edge.stop().await;
    outcome?;
    stopped
}

async fn hold_pushes(
    cluster: &Compose,
    https: &str,
    ca: &Path,
    lb_metrics: &str,
    relay: &mut Relay,
    edge: &Service,
    listen: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let id = Service::broadcast_id(&edge.container);
    let client = lb::https_client(ca)?;
    let direct = reqwest::Client::new();
    let base = format!("http://{listen}");
    // Caught up: it gets new viewers.
    lb::wait_routed_to(&client, https, "demo1", &id, Duration::from_secs(30)).await?;
    anyhow::ensure!(
        lb_behind(&direct, lb_metrics).await? == 0,
        "a node is behind before the hold"
    );
    let before = demo1_listed(&direct, &base)
        .await?
        .last()
        .map_or(0, |(seq, _)| *seq);
    // A viewer elsewhere: its ffmpeg plays on through the hold.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let elsewhere = loop {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "every new viewer went to {id} for 30 s"
        );
        let mut viewer = lb::Viewer::new(client.clone(), https);
        let answer = viewer.get("/live/demo1/master.m3u8").await?;
        if answer.node.as_deref().is_some_and(|n| n != id) {
            break viewer.cookie.context("no sticky cookie")?;
        }
    };
    let viewer = Watching::start(cluster, https, ca, Some(elsewhere), 25, "pushes-held").await?;

    relay.stall();
    let held = tokio::time::Instant::now();
    // It says it is behind, and the load balancer hears it.
    loop {
        if lb_behind(&direct, lb_metrics).await? >= 1 {
            break;
        }
        anyhow::ensure!(
            held.elapsed() < Duration::from_secs(10),
            "{id}: its pushes held for {:?}, and the load balancer counts no node behind",
            held.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let behind_after = held.elapsed();
    let readyz = direct
        .get(format!("{base}/readyz"))
        .send()
        .await?
        .text()
        .await?;
    anyhow::ensure!(
        readyz.trim() == "behind",
        "{id}: behind at the lb, but its /readyz says {readyz:?}"
    );
    // New viewers meanwhile all go to replicas that are caught up.
    let mut placed = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..20 {
        let mut viewer = lb::Viewer::new(client.clone(), https);
        let answer = viewer.get("/live/demo1/master.m3u8").await?;
        anyhow::ensure!(
            answer.status.is_success(),
            "a new viewer while {id} is behind: {}",
            answer.status
        );
        *placed
            .entry(answer.node.context("no x-sealcast-node")?)
            .or_default() += 1;
    }
    anyhow::ensure!(
        !placed.contains_key(&id),
        "new viewers went to {id} while it was behind: {placed:?}"
    );
    if let Some(rest) = Duration::from_secs(10).checked_sub(held.elapsed()) {
        // The rest of the hold: its duration, not a wait for anything.
        tokio::time::sleep(rest).await;
    }
    relay.restore().await?;
    let back = tokio::time::Instant::now();
    loop {
        if lb_behind(&direct, lb_metrics).await? == 0 {
            break;
        }
        anyhow::ensure!(
            back.elapsed() < Duration::from_secs(30),
            "{id}: 30 s after its pushes flow again the load balancer still counts a node behind"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caught_up = back.elapsed();
    lb::wait_routed_to(&client, https, "demo1", &id, Duration::from_secs(20)).await?;
    let routed = back.elapsed();
    let listed = demo1_listed(&direct, &base).await?;
    let gaps: Vec<u64> = listed
        .iter()
        .filter(|(s, g)| *g && *s > before)
        .map(|(s, _)| *s)
        .collect();
    eprintln!(
        "pushes to {id} held 10 s: behind at the lb after {behind_after:?}; new viewers meanwhile \
         {placed:?}; caught up {caught_up:?} and new viewers again {routed:?} after the pushes \
         flowed again; gaps {gaps:?}"
    );
    viewer
        .finish()
        .await
        .context("a new viewer while a replica's pushes were held")
}

/// How many nodes the load balancer counts as behind live (`sealcast_lb_backends_behind`).
async fn lb_behind(client: &reqwest::Client, metrics: &str) -> anyhow::Result<u64> {
    let text = client
        .get(metrics)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let behind =
        testkit::prometheus::sample_sum(&text, loadbalancer::metrics::BACKENDS_BEHIND, &[]);
    // A gauge of whole nodes.
    Ok(behind.round() as u64)
}

/// An ffmpeg viewer of `demo1` through the load balancer, reading for a set time while a
/// fault happens; [`Watching::finish`] checks that it played all of it without an error.
struct Watching {
    ffmpeg: tokio::process::Child,
    out: PathBuf,
    seconds: u32,
    name: &'static str,
}

impl Watching {
    /// Starts a viewer with `cookie` (pinned to its node), or as a new viewer; returns
    /// once it has received media.
    async fn start(
        cluster: &Compose,
        https: &str,
        ca: &Path,
        cookie: Option<String>,
        seconds: u32,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        let cookie = match cookie {
            Some(cookie) => cookie,
            None => {
                let mut viewer = lb::Viewer::new(lb::https_client(ca)?, https);
                viewer.get("/live/demo1/master.m3u8").await?;
                viewer.cookie.context("no sticky cookie")?
            }
        };
        let out = cluster.logs.join(format!("{name}-viewer.ts"));
        let ffmpeg = lb::ffmpeg_viewer(
            &format!("{https}/live/demo1/src/index.m3u8"),
            &cookie,
            ca,
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

    /// Waits for the viewer: it exits cleanly with nothing on stderr, and ffprobe reads
    /// all but two seconds of what it was to play without complaint.
    async fn finish(self) -> anyhow::Result<()> {
        let name = self.name;
        let output = tokio::time::timeout(
            Duration::from_secs(u64::from(self.seconds) + 45),
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
        eprintln!("the {name} viewer played {seconds:.1} s without an error");
        Ok(())
    }
}

/// How the catalog goes away for 10 s.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// Unreachable: every connection to it closed and new ones refused.
    Cut,
    /// Hung: connections stay open and new ones are accepted, but nothing is answered.
    Hang,
}

/// Issue 16: the catalog's PostgreSQL away for 10 s mid-stream, as `away` says
/// (`testkit::net::Relay` stands between the cluster and the server). `demo1` goes on on
/// every edge meanwhile, without a gap; once the catalog is back, the ingest records the
/// stream's numbering there again.
async fn catalog_away(
    catalog: &mut Catalog<'_>,
    edges: &[Service],
    away: Away,
) -> anyhow::Result<()> {
    let before = demo1_last_listed(edges).await?;
    match away {
        Away::Cut => catalog.relay.cut().await,
        Away::Hang => catalog.relay.stall(),
    }
    let gone = tokio::time::Instant::now();
    let when = match away {
        Away::Cut => "while the catalog was unreachable",
        Away::Hang => "while the catalog hung",
    };
    let last = goes_on_without_gaps(edges, &before, gone, when).await?;
    let went_on = gone.elapsed();
    if let Some(rest) = Duration::from_secs(10).checked_sub(went_on) {
        // The rest of the outage: its duration, not a wait for anything.
        tokio::time::sleep(rest).await;
    }
    catalog.relay.restore().await?;
    let back = tokio::time::Instant::now();
    numbering_recorded_past(catalog.url, last, back).await?;
    eprintln!(
        "catalog away 10 s ({away:?}): every edge listed three new segments of demo1 within \
         {went_on:?}, without a gap; numbering recorded again {:?} after it came back",
        back.elapsed()
    );
    Ok(())
}

/// Issue 16: the catalog's PostgreSQL itself `kill -9`ed mid-stream and started again on
/// its data directory (it recovers from its log). `demo1` goes on on every edge without a
/// gap, and the ingest records the stream's numbering in the restarted server.
async fn restart_the_catalog(catalog: &mut Catalog<'_>, edges: &[Service]) -> anyhow::Result<()> {
    let before = demo1_last_listed(edges).await?;
    let killed = tokio::time::Instant::now();
    let server = &mut *catalog.server;
    tokio::task::block_in_place(|| server.kill_and_restart())?;
    let back = tokio::time::Instant::now();
    let last = goes_on_without_gaps(edges, &before, killed, "across the catalog's restart").await?;
    numbering_recorded_past(catalog.url, last, back).await?;
    eprintln!(
        "PostgreSQL killed and restarted ({:?} down): every edge listed three new segments \
         of demo1 without a gap; numbering recorded again {:?} after it was back",
        back.duration_since(killed),
        back.elapsed()
    );
    Ok(())
}

/// The last sequence number of `demo1` each edge lists.
async fn demo1_last_listed(edges: &[Service]) -> anyhow::Result<Vec<u64>> {
    let client = reqwest::Client::new();
    let mut last = Vec::new();
    for edge in edges {
        last.push(
            demo1_listed(&client, &edge.ready)
                .await?
                .last()
                .map_or(0, |(seq, _)| *seq),
        );
    }
    Ok(last)
}

/// Waits (10 s from `since` at most) until every edge lists three segments of `demo1`
/// past `before` with no gap among them; the newest sequence number listed.
async fn goes_on_without_gaps(
    edges: &[Service],
    before: &[u64],
    since: tokio::time::Instant,
    when: &str,
) -> anyhow::Result<u64> {
    let client = reqwest::Client::new();
    let mut last = 0;
    for (edge, before) in edges.iter().zip(before) {
        loop {
            let listed = demo1_listed(&client, &edge.ready).await?;
            let gaps: Vec<u64> = listed
                .iter()
                .filter(|(s, g)| *g && s > before)
                .map(|(s, _)| *s)
                .collect();
            anyhow::ensure!(
                gaps.is_empty(),
                "{}: gaps {gaps:?} {when}",
                Service::broadcast_id(&edge.container)
            );
            let fresh = listed.iter().filter(|(s, _)| s > before).count();
            if fresh >= 3 {
                last = last.max(listed.last().map_or(0, |(s, _)| *s));
                break;
            }
            anyhow::ensure!(
                since.elapsed() < Duration::from_secs(10),
                "{}: demo1 stalled {when} ({fresh} new segments in {:?})",
                Service::broadcast_id(&edge.container),
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(last)
}

/// Waits (30 s from `back` at most) until the catalog records `demo1`'s next sequence
/// number past `last`.
async fn numbering_recorded_past(
    database_url: &str,
    last: u64,
    back: tokio::time::Instant,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(database_url).await?;
    loop {
        let next: i64 =
            sqlx::query_scalar("SELECT next_sequence FROM streams WHERE name = 'demo1'")
                .fetch_one(&mut db)
                .await?;
        if u64::try_from(next).unwrap_or(0) > last {
            return Ok(());
        }
        anyhow::ensure!(
            back.elapsed() < Duration::from_secs(30),
            "30 s after the catalog came back it records demo1's next sequence as {next}, \
             but edges listed {last} meanwhile"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many segments beyond the live window the ingests keep to push a node that
/// (re)joins (`sealcast ingest` distributes with a snapshot of `window + 2`).
const SNAPSHOT_BEYOND_WINDOW: u64 = 2;

/// Issue 16: `kill -9` of a broadcast replica that has recorded `demo1` since it started,
/// kept down until the live window, and the segments the ingests keep beyond it for a node
/// that rejoins, have moved past what it had (so they cannot push it all again), and
/// restarted in the same container (host
/// name, node id, recordings volume): it rejoins and lists new segments again. Returns the
/// last sequence number it listed before the kill.
async fn restart_a_replica(cluster: &Compose, edges: &mut Vec<Service>) -> anyhow::Result<u64> {
    let client = reqwest::Client::new();
    let victim = edges.remove(0);
    let before = demo1_listed(&client, &victim.ready)
        .await?
        .last()
        .map_or(0, |(seq, _)| *seq);
    let id = Service::broadcast_id(&victim.container);
    let witness = edges.first().context("no other replica")?.ready.clone();
    let killed = tokio::time::Instant::now();
    // Down until the other replicas' window starts past the next segment after the kill.
    let down = async {
        loop {
            let first = demo1_listed(&client, &witness)
                .await?
                .first()
                .map_or(0, |(seq, _)| *seq);
            // `before + 1` may have reached it just before the kill; `before + 2` was made
            // after it. The ingests keep SNAPSHOT_BEYOND_WINDOW segments more than the
            // window for a node that rejoins: those must be gone too.
            if first > before + 2 + SNAPSHOT_BEYOND_WINDOW {
                return Ok(());
            }
            anyhow::ensure!(
                killed.elapsed() < Duration::from_secs(60),
                "the live window did not move past {before} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let (restarted, base) = victim
        .restart(
            cluster,
            "broadcast",
            |c| format!("{} ", Service::broadcast_id(c)),
            down,
        )
        .await?;
    let was_down = killed.elapsed();
    edges.insert(0, restarted);
    let back = tokio::time::Instant::now();
    loop {
        let listed = demo1_listed(&client, &base).await?;
        let fresh = listed.iter().filter(|(s, g)| *s > before && !g).count();
        if fresh >= 3 {
            break;
        }
        anyhow::ensure!(
            back.elapsed() < Duration::from_secs(60),
            "{id}: restarted, but it lists no new segments of demo1 within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "replica {id} killed, down {was_down:?} (longer than the window), restarted: ready and \
         three new segments listed {:?} after it started again",
        back.elapsed()
    );
    Ok(before)
}

/// After `demo1` ended: the replica restarted mid-stream has one recording of it, which
/// lists every sequence number from the stream's first segment to its last, as a segment
/// or, where the replica was down, as a gap (there is one: it was down longer than the
/// window); with segments from before the kill and after the restart.
async fn check_the_restarted_recording(edge: &Service, killed_after: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let id = Service::broadcast_id(&edge.container);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let recordings = loop {
        let list: Vec<serde_json::Value> = client
            .get(format!("{}/api/v1/recordings", edge.ready))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let demo1: Vec<serde_json::Value> = list
            .into_iter()
            .filter(|r| r["stream"] == "demo1")
            .collect();
        if !demo1.is_empty() {
            break demo1;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{id}: no finished recording of demo1 60 s after the stream ended"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    anyhow::ensure!(
        recordings.len() == 1,
        "{id}: the restart split demo1 into {} recordings: {recordings:?}",
        recordings.len()
    );
    let master = recordings[0]["master_url"]
        .as_str()
        .context("a recording without master_url")?;
    let media = master.replace("master.m3u8", "src/index.m3u8");
    let text = client
        .get(format!("{}{media}", edge.ready))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    anyhow::ensure!(
        text.contains("#EXT-X-ENDLIST"),
        "{id}: {media} is not finished:\n{text}"
    );
    // Each entry's own number, from its URI ({seq}.m4s), and whether it is a gap.
    let mut entries = Vec::new();
    let mut gap = false;
    for line in text.lines() {
        if line == "#EXT-X-GAP" {
            gap = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            let seq: u64 = line
                .rsplit('/')
                .next()
                .and_then(|name| name.split('.').next())
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("{id}: {media} lists {line}"))?;
            entries.push((seq, gap));
            gap = false;
        }
    }
    let numbers: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
    let contiguous = numbers.windows(2).all(|w| w[1] == w[0] + 1);
    let before = entries.iter().any(|(s, g)| *s <= killed_after && !g);
    let after = entries.iter().any(|(s, g)| *s > killed_after + 1 && !g);
    let holes: Vec<u64> = entries
        .iter()
        .filter(|(_, g)| *g)
        .map(|(s, _)| *s)
        .collect();
    anyhow::ensure!(
        contiguous && before && after && numbers.first().is_some_and(|f| *f <= 2),
        "{id}: the recording of demo1 lists {numbers:?} (gaps {holes:?}); killed after {killed_after}"
    );
    // It was down longer than the window: what it never got is listed as a hole.
    anyhow::ensure!(
        holes.contains(&(killed_after + 2)),
        "{id}: the recording of demo1 lists no gap for {} (made while it was down, gone from \
         the window when it came back); gaps {holes:?}",
        killed_after + 2
    );
    eprintln!(
        "replica {id}'s recording of demo1: sequence {}..={} whole, the restart's hole listed as gaps {holes:?}",
        numbers.first().copied().unwrap_or(0),
        numbers.last().copied().unwrap_or(0)
    );
    Ok(())
}

async fn start_edge(cluster: &Compose) -> anyhow::Result<Service> {
    let (service, _) = Service::start(
        cluster,
        "broadcast",
        |c| format!("{} ", Service::broadcast_id(c)),
        &[],
    )
    .await?;
    Ok(service)
}

async fn play(
    cluster: &Compose,
    https: &str,
    ca: &Path,
    api_key: &str,
    edges: &mut Vec<Service>,
) -> anyhow::Result<()> {
    let client = lb::https_client(ca)?;
    for stream in ["demo1", "demo2"] {
        lb::wait_live(&client, https, stream).await?;
    }
    let ids: Vec<String> = edges
        .iter()
        .map(|e| Service::broadcast_id(&e.container))
        .collect();
    for id in &ids {
        lb::wait_routed_to(&client, https, "demo1", id, Duration::from_secs(20)).await?;
    }
    check_nodes_report(&client, https, api_key, &ids).await?;

    // Two pinned viewers, one per stream, each with ffmpeg reading through the balancer.
    let mut viewers = Vec::new();
    for stream in ["demo1", "demo2"] {
        let mut viewer = lb::Viewer::new(client.clone(), https);
        let nodes = lb::watch(&mut viewer, stream, "src", 2).await?;
        let pinned = nodes.first().context("no node answered")?.clone();
        let cookie = viewer.cookie.clone().context("no sticky cookie")?;
        let out = cluster.logs.join(format!("{stream}.ts"));
        let ffmpeg = lb::ffmpeg_viewer(
            &format!("{https}/live/{stream}/src/index.m3u8"),
            &cookie,
            ca,
            20,
            &out,
        )?;
        viewers.push((stream, viewer, pinned, ffmpeg, out));
    }
    for (_, _, _, _, out) in &viewers {
        lb::wait_for_bytes(out).await?;
    }

    // SIGKILL the replica the first viewer is on.
    let victim = viewers[0].2.clone();
    let index = ids
        .iter()
        .position(|id| *id == victim)
        .with_context(|| format!("{victim} is not one of the replicas"))?;
    edges.remove(index).process.kill().await?;

    for (stream, mut viewer, pinned, ffmpeg, out) in viewers {
        let after = lb::watch(&mut viewer, stream, "src", 2).await?;
        anyhow::ensure!(
            after.iter().all(|n| *n != victim),
            "{stream}: answered by the killed replica {victim}: {after:?}"
        );
        if pinned != victim {
            anyhow::ensure!(
                after.iter().all(|n| *n == pinned),
                "{stream}: the viewer left {pinned}, which is still up: {after:?}"
            );
        }
        let output = tokio::time::timeout(Duration::from_secs(60), ffmpeg.wait_with_output())
            .await
            .with_context(|| format!("{stream}: ffmpeg did not finish"))??;
        let errors = String::from_utf8_lossy(&output.stderr);
        anyhow::ensure!(
            output.status.success() && errors.trim().is_empty(),
            "{stream}: ffmpeg through the load balancer: {} {errors}",
            output.status
        );
        let (seconds, complaints) = testkit::ffmpeg::duration_seconds(&out).await?;
        anyhow::ensure!(
            complaints.trim().is_empty() && seconds >= 18.0,
            "{stream}: {seconds:.1} s played through the kill; ffprobe: {complaints}"
        );
    }

    // A fourth replica: viewers reach it within seconds, nothing else restarted.
    let fourth = start_edge(cluster).await?;
    let id = Service::broadcast_id(&fourth.container);
    edges.push(fourth);
    lb::wait_routed_to(&client, https, "demo2", &id, Duration::from_secs(10)).await
}

/// Every replica appears in `/api/v1/nodes` as a healthy broadcast node with a load
/// report: its presence and its reports went through the broker's ACL.
async fn check_nodes_report(
    client: &reqwest::Client,
    https: &str,
    api_key: &str,
    ids: &[String],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let nodes: serde_json::Value = client
            .get(format!("{https}/api/v1/nodes"))
            .header("x-api-key", api_key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let reporting = |id: &String| {
            nodes.as_array().into_iter().flatten().any(|n| {
                n["node"] == id.as_str()
                    && n["role"] == "broadcast"
                    && n["healthy"] == true
                    && n["last_report"].is_number()
            })
        };
        let ingests =
            ["ingest1", "ingest2"].iter().all(|id| {
                nodes.as_array().into_iter().flatten().any(|n| {
                    n["node"] == *id && n["role"] == "ingest" && n["last_report"].is_number()
                })
            });
        if ids.iter().all(reporting) && ingests {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not every node reports its load through the broker: {nodes}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

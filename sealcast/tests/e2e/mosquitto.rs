//! The roles as separate processes on the Mosquitto broker at 127.0.0.1:1883, the way a
//! real cluster runs them: `sealcast keys init`, one `sealcast ingest`, three
//! `sealcast broadcast`, `sealcast lb`. Node ids carry a per-run suffix, so runs sharing the
//! broker never see each other's nodes as their own.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::cluster::Publisher;
use crate::edges::{check_identical, ExtraNode};

const BIN: &str = env!("CARGO_BIN_EXE_sealcast");
const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

/// A small ladder, so this cluster costs little CPU beside the main one.
const CONFIG: &str = r#"
[ingest]
end_grace_seconds = 2.0

[ladder]
segment_target = 2.0
window = 6
preset = "veryfast"

[[ladder.rungs]]
name = "src"
kind = "source"

[[ladder.rungs]]
name = "180p"
kind = "encode"
height = 180
bitrate_kbps = 300
maxrate_kbps = 321
bufsize_kbits = 450
"#;

async fn sealcast(args: &[&str], data: &std::path::Path) -> anyhow::Result<String> {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "sealcast {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

pub(crate) async fn check_mosquitto_cluster() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("sealcast.toml");
    std::fs::write(&config, CONFIG)?;
    let suffix = format!(
        "{:x}{:x}",
        std::process::id(),
        crate::unix_now() & 0xffff_ffff
    );
    let ingest_id = format!("mq-ingest-{suffix}");
    sealcast(&["keys", "init", "--ingest", &ingest_id], &data).await?;
    let key = sealcast(&["streams", "add", "mq"], &data)
        .await?
        .trim()
        .to_owned();

    let mut ingest = Command::new(BIN)
        .args([
            "ingest",
            "--rtmp-listen",
            "127.0.0.1:0",
            "--node-id",
            &ingest_id,
            "--mqtt-url",
            MOSQUITTO,
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("SEALCAST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("ingest.log"))?)
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(ingest.stdout.take().context("stdout")?).lines();
    let (mut obs, mut metrics_url) = (None, None);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("obs-server ") {
                obs = Some(url.to_owned());
            }
            if let Some(url) = line.strip_prefix("metrics ") {
                metrics_url = Some(url.to_owned());
                break;
            }
        }
    })
    .await;
    let obs = obs.context("the ingest never printed its RTMP URL")?;
    let metrics_url = metrics_url.context("the ingest never printed its metrics URL")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(
            ExtraNode::start(
                &data,
                MOSQUITTO,
                &format!("mq-b{i}-{suffix}"),
                Some(&config),
            )
            .await?,
        );
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let publisher = Publisher::ffmpeg_testsrc(&format!("{obs}/{key}"), 426, 240, 30, 75)?;
    let client = reqwest::Client::new();
    let mut result = check_identical(&client, &urls, "mq", &["src", "180p"]).await;
    if result.is_ok() {
        // The ingest's own metrics: one acknowledged push latency series per node.
        let text = client.get(&metrics_url).send().await?.text().await?;
        for i in 1..=3 {
            let node = format!("node=\"mq-b{i}-{suffix}\"");
            if crate::edges::metric(&text, "sealcast_ingest_push_seconds_count", &[&node]) < 1.0 {
                result = Err(anyhow::anyhow!(
                    "no push latency for {node} in the ingest's metrics"
                ));
            }
        }
    }
    if result.is_ok() {
        result = check_failover(dir.path(), &data, &suffix, &config, &mut nodes)
            .await
            .context("load balancer failover");
    }
    publisher.wait_success().await?;
    // Clean shutdown of the ingest (SIGTERM): the stream ends on every node.
    if let Some(pid) = ingest.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let status = tokio::time::timeout(Duration::from_secs(30), ingest.wait()).await??;
    let log = std::fs::read_to_string(dir.path().join("ingest.log")).unwrap_or_default();
    for node in nodes {
        node.kill().await?;
    }
    result?;
    anyhow::ensure!(
        status.success(),
        "sealcast ingest exited with {status}:\n{log}"
    );
    anyhow::ensure!(!log.contains("panicked"), "the ingest panicked:\n{log}");
    Ok(())
}

/// Through `sealcast lb`: kill the node a viewer (and ffmpeg) is pinned to, and both carry
/// on from another node with a reissued cookie; a fourth node gets viewers within seconds.
async fn check_failover(
    dir: &std::path::Path,
    data: &std::path::Path,
    suffix: &str,
    config: &std::path::Path,
    nodes: &mut Vec<ExtraNode>,
) -> anyhow::Result<()> {
    use crate::lb;
    let balancer = lb::LbProcess::start(
        data,
        &dir.join("certs"),
        MOSQUITTO,
        &format!("mq-lb-{suffix}"),
        &dir.join("lb.log"),
    )
    .await?;
    let client = lb::https_client(&balancer.ca)?;
    let result = async {
        lb::wait_live(&client, &balancer.https, "mq").await?;
        // Every node is in rotation before the viewer is placed.
        for i in 1..=3 {
            let node = format!("mq-b{i}-{suffix}");
            lb::wait_routed_to(
                &client,
                &balancer.https,
                "mq",
                &node,
                Duration::from_secs(15),
            )
            .await?;
        }
        let mut viewer = lb::Viewer::new(client.clone(), &balancer.https);
        let pinned = lb::watch(&mut viewer, "mq", "src", 2).await?;
        let pinned = pinned.first().context("no node")?.clone();
        let cookie = viewer.cookie.clone().context("no cookie")?;

        let out = dir.join("viewer.ts");
        let ffmpeg = lb::ffmpeg_viewer(
            &format!("{}/live/mq/src/index.m3u8", balancer.https),
            &cookie,
            &balancer.ca,
            20,
            &out,
        )?;
        lb::wait_for_bytes(&out).await?;

        // SIGKILL the pinned node.
        let index = (1..=3)
            .position(|i| format!("mq-b{i}-{suffix}") == pinned)
            .with_context(|| format!("{pinned} is not one of ours"))?;
        nodes.remove(index).kill().await?;
        let after = lb::watch(&mut viewer, "mq", "src", 1).await?;
        anyhow::ensure!(
            after.iter().all(|n| *n != pinned),
            "answered by the killed node {pinned}: {after:?}"
        );
        anyhow::ensure!(
            viewer.cookie.as_deref() != Some(cookie.as_str()),
            "the cookie was not reissued after {pinned} died"
        );
        let after_again = lb::watch(&mut viewer, "mq", "src", 2).await?;
        anyhow::ensure!(
            after_again.iter().all(|n| *n == after[0]),
            "the viewer did not stay on its new node: {after:?} then {after_again:?}"
        );

        // ffmpeg played on through the failover, without an error.
        let output = tokio::time::timeout(Duration::from_secs(60), ffmpeg.wait_with_output())
            .await
            .context("ffmpeg did not finish")??;
        let errors = String::from_utf8_lossy(&output.stderr);
        anyhow::ensure!(
            output.status.success() && errors.trim().is_empty(),
            "ffmpeg through the load balancer: {} {errors}",
            output.status
        );
        let (seconds, complaints) = crate::probe::duration_seconds(&out).await?;
        anyhow::ensure!(
            complaints.trim().is_empty(),
            "ffprobe complained about what ffmpeg recorded through the failover: {complaints}"
        );
        anyhow::ensure!(
            seconds >= 18.0,
            "ffmpeg got only {seconds:.1} s through the failover"
        );

        // A fourth node: routed to within seconds, nothing restarted.
        let fourth = format!("mq-b4-{suffix}");
        nodes.push(ExtraNode::start(data, MOSQUITTO, &fourth, Some(config)).await?);
        lb::wait_routed_to(
            &client,
            &balancer.https,
            "mq",
            &fourth,
            Duration::from_secs(5),
        )
        .await
    }
    .await;
    let status = balancer.stop().await?;
    let log = std::fs::read_to_string(dir.join("lb.log")).unwrap_or_default();
    result?;
    anyhow::ensure!(status.success(), "sealcast lb exited with {status}:\n{log}");
    anyhow::ensure!(
        !log.contains("panicked"),
        "the load balancer panicked:\n{log}"
    );
    Ok(())
}

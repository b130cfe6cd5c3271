//! Media over QUIC out of `sealcast up` (issue 48), through two clustered moq-relays (the
//! `moq-relay` crate's binary, not ours): the node publishes to the first relay, a viewer
//! subscribes at the second with moq-tokio (that project's client library), and every
//! object it reads is, byte for byte, the part the node serves over LL-HLS, with the
//! part's signed statement on the statements track.

use std::time::Duration;

use anyhow::Context;
use moq_tokio::moq_net;
use testkit::ffmpeg::TestPattern;
use testkit::moq::Relay;

use crate::cluster::Cluster;

const STREAM: &str = "moq-out";
/// Whole groups to read back and compare.
const GROUPS: usize = 3;

pub(crate) async fn check_moq_through_clustered_relays() -> anyhow::Result<()> {
    let origin_relay = tokio::task::spawn_blocking(|| Relay::start(&[])).await??;
    let edge_relay = {
        let peer = origin_relay.url();
        let pin = origin_relay.fingerprint.clone();
        tokio::task::spawn_blocking(move || {
            Relay::start(&[
                "--cluster-connect",
                &peer,
                "--connect-tls-fingerprint",
                &pin,
            ])
        })
        .await??
    };
    let relay_url = origin_relay.url();
    let cluster = Cluster::start_with(&[
        "--broadcast",
        "1",
        "--moq-relay",
        &relay_url,
        "--moq-relay-fingerprint",
        &origin_relay.fingerprint,
    ])
    .await?;
    let checked = read_back(&cluster, &edge_relay).await.with_context(|| {
        format!(
            "the relays said:\n--- origin relay\n{}\n--- edge relay\n{}",
            tail(&origin_relay.log()),
            tail(&edge_relay.log())
        )
    });
    let stopped = cluster.stop_and_check_logs().await;
    checked.and(stopped)
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

async fn read_back(cluster: &Cluster, relay: &Relay) -> anyhow::Result<()> {
    let key = cluster.add_stream(STREAM).await?;
    let _publisher = TestPattern::new(426, 240, 30, 600).publish(&cluster.rtmp_url(&key))?;
    cluster
        .wait_media(STREAM, "src", 2, Duration::from_secs(60))
        .await?;

    let mut config = moq_tokio::connect::Config::default();
    config.tls.fingerprint = vec![relay.fingerprint.clone()];
    let client = config.init(moq_tokio::quic::Config::default())?;
    let origin = moq_tokio::origin::spawn();
    let _connection = client
        .with_subscriber(origin.clone())
        .connect(relay.url().parse::<url::Url>()?);
    let broadcast = tokio::time::timeout(
        Duration::from_secs(30),
        origin.consume().routed_broadcast(STREAM),
    )
    .await
    .context("the stream was not announced at the second relay within 30 s")??;

    let mut catalog = broadcast.track("catalog.json")?.subscribe(None).await?;
    let mut group = next_group(&mut catalog).await?;
    let catalog: serde_json::Value = serde_json::from_slice(
        &next_frame(&mut group)
            .await?
            .context("an empty catalog group")?,
    )?;
    let video = &catalog["video"]["renditions"]["src"];
    anyhow::ensure!(
        video["container"]["kind"] == "cmaf"
            && video["codec"]
                .as_str()
                .is_some_and(|c| c.starts_with("avc1")),
        "the catalog lists src as CMAF H.264: {catalog}"
    );
    let init = reqwest::get(format!("{}/live/{STREAM}/src/init.mp4", cluster.http))
        .await?
        .bytes()
        .await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    anyhow::ensure!(
        base64::Engine::decode(&b64, video["container"]["init"].as_str().unwrap_or(""))?
            == init.as_ref(),
        "the catalog's init segment is the one init.mp4 serves"
    );

    let mut media = broadcast.track("src")?.subscribe(None).await?;
    let mut statements = broadcast.track("src.sig")?.subscribe(None).await?;
    let http = reqwest::Client::new();
    let mut compared = 0;
    let mut groups = Vec::new();
    while groups.len() < GROUPS {
        let mut objects = next_group(&mut media).await?;
        let mut sigs = next_group(&mut statements).await?;
        let sequence = objects.sequence;
        anyhow::ensure!(
            sigs.sequence == sequence,
            "the statements track is at group {}, the media track at {sequence}",
            sigs.sequence
        );
        let _delegation = next_frame(&mut sigs).await?;
        let mut index = 0u32;
        while let Some(object) = next_frame(&mut objects).await? {
            let statement = next_frame(&mut sigs)
                .await?
                .context("an object without its statement")?;
            let base = format!("{}/live/{STREAM}/src/{sequence}.{index}.m4s", cluster.http);
            let part = http
                .get(&base)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let signed = http
                .get(format!("{base}.sig"))
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            anyhow::ensure!(
                object == part,
                "object {index} of group {sequence} is not {base}"
            );
            anyhow::ensure!(
                statement == signed,
                "statement {index} of group {sequence} is not {base}.sig"
            );
            compared += 1;
            index += 1;
        }
        anyhow::ensure!(index > 0, "group {sequence} ended empty");
        groups.push(sequence);
    }
    anyhow::ensure!(
        groups.windows(2).all(|w| w[0] < w[1]),
        "groups out of order: {groups:?}"
    );
    eprintln!(
        "moq: groups {groups:?}, {compared} objects equal to their LL-HLS parts and statements"
    );
    Ok(())
}

async fn next_group(
    track: &mut moq_net::track::Subscriber,
) -> anyhow::Result<moq_net::group::Consumer> {
    tokio::time::timeout(Duration::from_secs(15), track.recv_group())
        .await
        .context("no group within 15 s")??
        .context("the track ended")
}

async fn next_frame(group: &mut moq_net::group::Consumer) -> anyhow::Result<Option<bytes::Bytes>> {
    Ok(
        tokio::time::timeout(Duration::from_secs(15), group.read_frame())
            .await
            .context("no object within 15 s")??
            .map(|f| f.payload),
    )
}

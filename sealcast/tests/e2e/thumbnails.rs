//! Thumbnails end to end: ffmpeg publishes a 480p test pattern through the whole ladder;
//! the edge serves `/live/{stream}/thumbnail.jpg`, a JPEG (ffprobe reads it as one) whose
//! `thumbnail.jpg.sig` verifies here against the cluster's root and trust bundle and binds
//! its bytes, the stream list names it, and Chromium shows it in the live list and on the
//! dashboard once the page verified it itself. After the stream ends, its recording has a thumbnail of the
//! recording's own session, listed, verifying, and shown in the recordings list.

use std::time::Duration;

use anyhow::Context;
use certs::signing::{RootPublicKey, TrustBundle, TrustStore};
use domain::time::WallClock;
use domain::wire::SignedThumbnail;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::ffmpeg::TestPattern;

use crate::cluster::Cluster;
use crate::pages;

const STREAM: &str = "thumbs";
/// How long a condition may take to hold before the trial fails.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);

pub(crate) async fn live_and_recorded(cluster: &Cluster) -> anyhow::Result<()> {
    let key = cluster.add_stream(STREAM).await?;
    // Long enough for a few thumbnails (one per 5 s) and a recording that has one.
    let publisher = TestPattern::new(854, 480, 25, 60).publish(&cluster.rtmp_url(&key))?;

    // The live thumbnail, from a broadcast node: a JPEG, signed.
    let live = format!("/live/{STREAM}/thumbnail.jpg");
    let (jpeg, sig) = thumbnail_of(cluster, &live).await?;
    anyhow::ensure!(
        jpeg.starts_with(&[0xff, 0xd8, 0xff]),
        "not a JPEG: {:02x?}",
        &jpeg[..4.min(jpeg.len())]
    );
    let probe = probe_jpeg(&jpeg).await?;
    let statement = verify(cluster, &jpeg, &sig).await?;
    anyhow::ensure!(
        statement.stream.as_str() == STREAM
            && statement.width == 320
            && i64::from(statement.width) == probe["width"].as_i64().unwrap_or(0)
            && i64::from(statement.height) == probe["height"].as_i64().unwrap_or(0),
        "the statement does not describe the picture: {statement:?} {probe}"
    );
    let streams: Value = serde_json::from_slice(&cluster.get_bytes("/api/v1/streams").await?)?;
    let listed = streams
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == STREAM))
        .context("the stream is not listed")?;
    anyhow::ensure!(
        listed["thumbnail_url"] == live.as_str(),
        "not named in the list: {listed}"
    );

    // Chromium shows it in the live list, verified by the page.
    let shown = pages::thumbnail_listed(&cluster.https, &format!("live/{STREAM}")).await?;
    eprintln!("thumbnails (live): {shown}");
    let shown = pages::dashboard_thumbnail(&cluster.https, STREAM, &cluster.admin_key).await?;
    eprintln!("thumbnails (dashboard): {shown}");

    // The recording keeps one of its own session.
    publisher.wait_success().await.context("the publish")?;
    cluster.wait_ended(STREAM).await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let recording = loop {
        let list: Value = serde_json::from_slice(&cluster.get_bytes("/api/v1/recordings").await?)?;
        let found = list
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|r| r["stream"] == STREAM && r["thumbnail_url"].is_string())
            })
            .cloned();
        if let Some(r) = found {
            break r;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no recording with a thumbnail listed: {list}"
        );
        tokio::time::sleep(POLL).await;
    };
    let id = recording["id"].as_str().context("recording id")?.to_owned();
    let url = recording["thumbnail_url"]
        .as_str()
        .context("thumbnail url")?
        .to_owned();
    anyhow::ensure!(url == format!("/vod/{STREAM}/{id}/thumbnail.jpg"), "{url}");
    let (jpeg, sig) = thumbnail_of(cluster, &url).await?;
    let statement = verify(cluster, &jpeg, &sig).await?;
    anyhow::ensure!(
        statement.session.to_string() == id,
        "the recording's thumbnail is of session {}, not {id}",
        statement.session
    );
    let shown = pages::thumbnail_listed(&cluster.https, &format!("vod/{STREAM}/{id}")).await?;
    eprintln!("thumbnails (recording): {shown}");
    Ok(())
}

/// The thumbnail at `path` and its statement, once a node serves both (bounded wait).
async fn thumbnail_of(cluster: &Cluster, path: &str) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        // The statement first: the picture may be replaced in between, which `verify`
        // would catch; asking again then is the bounded retry below.
        let sig = cluster.get_bytes(&format!("{path}.sig")).await;
        let jpeg = cluster.get_bytes(path).await;
        if let (Ok(sig), Ok(jpeg)) = (sig, jpeg) {
            let statement = SignedThumbnail::decode(&sig)?.statement()?;
            if statement.digest == <[u8; 32]>::from(Sha256::digest(&jpeg)) {
                return Ok((jpeg.to_vec(), sig.to_vec()));
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{path} was never served with its statement"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The JPEG's first video stream as ffprobe reads it (codec mjpeg).
async fn probe_jpeg(jpeg: &[u8]) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("thumbnail.jpg");
    tokio::fs::write(&path, jpeg).await?;
    let probe = testkit::ffmpeg::ffprobe_async(&path, &["-show_streams"]).await?;
    let stream = probe["streams"][0].clone();
    anyhow::ensure!(stream["codec_name"] == "mjpeg", "ffprobe: {probe}");
    Ok(stream)
}

/// `sig` verified against the cluster's root and the trust bundle a node serves, over
/// exactly `jpeg`: the statement.
async fn verify(
    cluster: &Cluster,
    jpeg: &[u8],
    sig: &[u8],
) -> anyhow::Result<domain::wire::ThumbnailStatement> {
    let root = RootPublicKey::read_file(&cluster.data_dir().join("keys").join("root.pub"))?;
    let bundle = TrustBundle::decode(&cluster.get_bytes("/trust/v1/bundle").await?)?;
    let now = WallClock.unix_secs();
    let mut trust = TrustStore::new(root);
    let _ = trust.admit(&bundle, now);
    let signed = SignedThumbnail::decode(sig)?;
    let statement = signed.statement()?;
    trust
        .verify(
            statement.key_id,
            &signed.statement_bytes,
            &signed.signature,
            now,
        )
        .context("the thumbnail's signature")?;
    anyhow::ensure!(
        statement.byte_len == jpeg.len() as u64
            && statement.digest == <[u8; 32]>::from(Sha256::digest(jpeg)),
        "the statement is not over these bytes"
    );
    Ok(statement)
}

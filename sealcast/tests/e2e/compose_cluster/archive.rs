//! The compose cluster's archive of recordings (issue 49), run with profile `s3`
//! (`scripts/init-cluster.sh --archive s3`): Garage, from its image, is the store every
//! edge writes each recording into once and serves every recording from.
//!
//! - [`store_outage`]: Garage killed for 20 s while a stream records; the edges say in
//!   their spool metric that they hold what they recorded, and archive again once it is
//!   back:
//!   the recording is listed, every segment of every rendition and its statement is served
//!   through the load balancer, nothing was dropped, and ffmpeg plays it to the end.
//! - [`kept_across_down_up`]: after `compose down` and `up` (new edges, new spools), the
//!   same recording is still listed, whole, and plays.

use std::time::Duration;

use anyhow::Context;
use broadcast::{SKIPPED_BYTES, SPOOL_BYTES, SPOOL_DROPPED_BYTES, UPLOADED_BYTES};
use serde_json::{json, Value};
use testkit::ffmpeg::TestPattern;
use tokio::time::Instant;

use super::{secs, Compose};

/// How long the store is down while a stream records (issue 49).
const OUTAGE: Duration = Duration::from_secs(20);

/// How long the stream recorded across the outage publishes.
const PUBLISH_SECS: u32 = 40;

/// How much shorter than its publish a whole recording may be: the ladder's start and the
/// last segment's end.
const SLACK_SECS: f64 = 6.0;

/// The stream recorded across the outage.
const STREAM: &str = "rec1";

/// A recording the trial made and checked, to check again later.
pub(super) struct Recorded {
    master_url: String,
    /// Media segments of every rendition.
    segments: usize,
}

/// Garage killed for [`OUTAGE`] while [`STREAM`] records; the recording comes out whole.
pub(super) async fn store_outage(c: &Compose) -> anyhow::Result<Recorded> {
    let key = c
        .tools(&["streams", "add", STREAM])
        .await?
        .trim()
        .to_owned();
    let publisher =
        TestPattern::new(426, 240, 15, PUBLISH_SECS).publish(&format!("{}/{key}", c.rtmp[0]))?;
    crate::lb::wait_live(&c.client, &c.https, STREAM).await?;
    let edges = c.edges().await?;
    c.compose(&["kill", "garage"]).await?;
    let killed = Instant::now();
    // Meanwhile every edge keeps what it records in its spool, and says how much.
    let mut spooled = vec![0.0_f64; edges.len()];
    while killed.elapsed() < OUTAGE {
        for (edge, most) in edges.iter().zip(&mut spooled) {
            // An edge busy recording may answer late: the next round asks again.
            if let Ok(text) = c.metrics(edge).await {
                *most = most.max(sample(&text, SPOOL_BYTES)?);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.compose(&["start", "garage"]).await?;
    let back = Instant::now();
    c.note("archive_outage_s", json!(secs(killed.elapsed())));
    c.note("archive_most_spooled_bytes", json!(spooled));
    // Back, the store takes from every edge's spool again. How fast it drains depends on
    // the machine (three debug edges and a debug Garage here): the trial asks that each
    // edge uploads again, and below that the recording comes out whole.
    let deadline = back + Duration::from_secs(90);
    for (edge, most) in edges.iter().zip(&spooled) {
        anyhow::ensure!(
            *most > 0.0,
            "{}'s {SPOOL_BYTES} stayed 0 while the store was down",
            edge.node
        );
        let at_start = c.metrics(edge).await?;
        let before = archived(&at_start)?;
        loop {
            let text = c.metrics(edge).await?;
            if archived(&text)? > before {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} archived nothing after the store came back: {}",
                edge.node,
                progress(&at_start, &text)?
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    c.note("archive_uploading_again_s", json!(secs(back.elapsed())));
    publisher
        .wait_success()
        .await
        .context("the publisher across the outage")?;

    let ended = Instant::now();
    let recording = listed(c, Duration::from_secs(300)).await?;
    c.note(
        "archive_listed_after_stream_end_s",
        json!(secs(ended.elapsed())),
    );
    let master_url = recording["master_url"]
        .as_str()
        .context("no master_url")?
        .to_owned();
    let duration = recording["duration_secs"].as_f64().unwrap_or_default();
    anyhow::ensure!(
        duration >= f64::from(PUBLISH_SECS) - SLACK_SECS,
        "the recording lasts {duration:.1} s of the {PUBLISH_SECS} s published: {recording}"
    );
    let segments = whole(c, &master_url).await?;
    // Nothing was dropped from any spool.
    for edge in &edges {
        let dropped = sample(
            &c.metrics(edge).await?,
            &format!("{SPOOL_DROPPED_BYTES}_total"),
        )?;
        anyhow::ensure!(
            dropped == 0.0,
            "{} dropped {dropped} recorded bytes",
            edge.node
        );
    }
    let played = plays(c, &master_url).await?;
    c.note(
        "archive_recording",
        json!({"duration_s": duration, "segments": segments, "played_s": played}),
    );
    Ok(Recorded {
        master_url,
        segments,
    })
}

/// After `down` and `up`: the recording is listed again, whole, and plays.
pub(super) async fn kept_across_down_up(c: &Compose, recorded: &Recorded) -> anyhow::Result<()> {
    let recording = listed(c, Duration::from_secs(60)).await?;
    anyhow::ensure!(
        recording["master_url"] == recorded.master_url.as_str(),
        "another recording of {STREAM} is listed: {recording}"
    );
    let segments = whole(c, &recorded.master_url).await?;
    anyhow::ensure!(
        segments == recorded.segments,
        "{segments} segments after down and up, {} before",
        recorded.segments
    );
    let played = plays(c, &recorded.master_url).await?;
    c.note(
        "archive_after_down_up",
        json!({"segments": segments, "played_s": played}),
    );
    Ok(())
}

/// What the uploader did between two expositions of one edge (bytes uploaded, skipped as
/// there already, held in the spool).
fn progress(before: &str, after: &str) -> anyhow::Result<String> {
    let mut out = Vec::new();
    for name in [UPLOADED_BYTES, SKIPPED_BYTES] {
        let name = format!("{name}_total");
        out.push(format!(
            "{name} {} → {}",
            sample(before, &name)?,
            sample(after, &name)?
        ));
    }
    out.push(format!(
        "{SPOOL_BYTES} {} → {}",
        sample(before, SPOOL_BYTES)?,
        sample(after, SPOOL_BYTES)?
    ));
    Ok(out.join(", "))
}

/// The bytes an edge's uploader has dealt with: uploaded, or skipped as there already.
fn archived(text: &str) -> anyhow::Result<f64> {
    Ok(sample(text, &format!("{UPLOADED_BYTES}_total"))?
        + sample(text, &format!("{SKIPPED_BYTES}_total"))?)
}

/// The sum of `name`'s samples in an exposition; an error if it has none (a renamed
/// metric would otherwise read as 0).
fn sample(text: &str, name: &str) -> anyhow::Result<f64> {
    anyhow::ensure!(
        text.lines().any(|l| l.starts_with(name)),
        "the exposition has no {name}"
    );
    Ok(testkit::prometheus::sample_sum(text, name, &[]))
}

/// Waits until the public list of recordings, through the load balancer, has
/// [`STREAM`]'s; its entry.
async fn listed(c: &Compose, within: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let list: Value = match c
            .client
            .get(format!("{}/api/v1/recordings", c.https))
            .send()
            .await
        {
            Ok(answer) if answer.status().is_success() => answer.json().await?,
            _ => Value::Null,
        };
        if let Some(found) = list
            .as_array()
            .and_then(|a| a.iter().find(|r| r["stream"] == STREAM))
        {
            return Ok(found.clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{STREAM}'s recording is not listed after {within:?}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fetches `path` through the load balancer: its bytes, refused unless 200 and not empty.
async fn fetch(c: &Compose, path: &str) -> anyhow::Result<bytes::Bytes> {
    let answer = c.client.get(format!("{}{path}", c.https)).send().await?;
    let status = answer.status();
    let body = answer.bytes().await?;
    anyhow::ensure!(
        status == 200 && !body.is_empty(),
        "{path}: {status}, {} bytes",
        body.len()
    );
    Ok(body)
}

/// Every rendition of the recording at `master_url`: a playlist with no gap, and each
/// init segment, media segment and statement served; how many media segments.
async fn whole(c: &Compose, master_url: &str) -> anyhow::Result<usize> {
    let base = |path: &str| path.rsplit_once('/').map(|(dir, _)| dir.to_owned());
    let master = String::from_utf8(fetch(c, master_url).await?.to_vec())?;
    let dir = base(master_url).context("master_url")?;
    let mut segments = 0;
    let variants: Vec<String> = master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!("{dir}/{l}"))
        .collect();
    anyhow::ensure!(!variants.is_empty(), "{master_url} lists no rendition");
    for variant in variants {
        let playlist = String::from_utf8(fetch(c, &variant).await?.to_vec())?;
        anyhow::ensure!(
            !playlist.contains("#EXT-X-GAP") && playlist.contains("#EXT-X-ENDLIST"),
            "{variant} has a gap or no end:\n{playlist}"
        );
        let rung = base(&variant).context("variant")?;
        let mut files: Vec<String> = playlist
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        let media = files.len();
        anyhow::ensure!(media > 0, "{variant} lists no segment");
        if let Some(map) = playlist
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
            .and_then(|rest| rest.split('"').next())
        {
            files.push(map.to_owned());
        }
        for file in files {
            let path = format!("{rung}/{file}");
            fetch(c, &path).await?;
            fetch(c, &format!("{path}.sig"))
                .await
                .context("its statement")?;
        }
        segments += media;
    }
    Ok(segments)
}

/// ffmpeg reads the recording through the load balancer to its end; the seconds it got.
async fn plays(c: &Compose, master_url: &str) -> anyhow::Result<f64> {
    let out = tempfile::Builder::new()
        .prefix("sealcast-recording-")
        .suffix(".ts")
        .tempfile()?;
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .arg("-ca_file")
        .arg(&c.ca)
        .args(["-tls_verify", "1", "-i"])
        .arg(format!("{}{master_url}", c.https))
        .args(["-map", "0:v:0", "-c", "copy", "-f", "mpegts", "-y"])
        .arg(out.path())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(Duration::from_secs(120), status)
        .await
        .context("ffmpeg did not read the recording within 120 s")??;
    anyhow::ensure!(status.success(), "ffmpeg reading {master_url}: {status}");
    let (seconds, _) = testkit::ffmpeg::duration_seconds(out.path()).await?;
    anyhow::ensure!(
        seconds >= f64::from(PUBLISH_SECS) - SLACK_SECS,
        "ffmpeg played {seconds:.1} s of {master_url}"
    );
    Ok(seconds)
}

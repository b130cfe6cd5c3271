//! The edges of the cluster: segments identical on every node, the signature gate under
//! attack, the push API's refusals, garbage on the control plane, a node that joins late,
//! one that dies and one that never answers.
//!
//! The attacks play a rogue ingest: a test-made signing key certified by the cluster's
//! root (read from the data directory, as an operator adding an ingest would), real CMAF
//! bytes (init segment and segments) taken from a live stream, pushed with the cluster's push token, statements
//! published on the real broker.

use domain::time::WallClock;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use certs::signing::{PresenceSigner, RootKey, SigningKey, Validity};
use certs::KeyDir;
use domain::push_protocol::{ControlEvent, InternalPath, PushToken, SegmentHeaders};
use domain::topics::Topic;
use domain::wire::{SegmentStatement, SignedMedia};
use domain::{LiveEvent, NodeId, RenditionInfo, RenditionName, SegmentMeta, SessionId, StreamName};
use m3u8_rs::MediaPlaylist;
use plumbing::{Bus, BusEvent, BusOptions, Qos};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use testkit::process::Spawned;
use testkit::prometheus::sample_sum as metric;

use crate::cluster::{get_opt, Cluster, BIN};

const POLL: Duration = Duration::from_millis(200);

/// The rejection reasons of the brief.
pub(crate) const REASONS: [&str; 8] = [
    "bad_signature",
    "unknown_key",
    "expired_key",
    "revoked_key",
    "replay",
    "digest_mismatch",
    "timeout",
    "overflow",
];

pub(crate) async fn metrics(client: &reqwest::Client, node: &str) -> anyhow::Result<String> {
    let body = get_opt(client, node, "/metrics")
        .await?
        .context("no /metrics")?;
    Ok(String::from_utf8(body.to_vec())?)
}

async fn media(
    client: &reqwest::Client,
    node: &str,
    stream: &str,
    rendition: &str,
) -> anyhow::Result<Option<MediaPlaylist>> {
    let path = format!("/live/{stream}/{rendition}/index.m3u8");
    let Some(body) = get_opt(client, node, &path).await? else {
        return Ok(None);
    };
    let p = m3u8_rs::parse_media_playlist_res(&body)
        .map_err(|e| anyhow::anyhow!("{node}{path} does not parse: {e:?}"))?;
    Ok(Some(p))
}

/// Sequence numbers a playlist lists as real (non-gap) segments, with their durations.
fn listed(p: &MediaPlaylist) -> BTreeMap<u64, f32> {
    p.segments
        .iter()
        .enumerate()
        .filter(|(_, s)| !is_gap(s))
        .map(|(i, s)| (p.media_sequence + i as u64, s.duration))
        .collect()
}

fn is_gap(s: &m3u8_rs::MediaSegment) -> bool {
    s.unknown_tags
        .iter()
        .any(|t| t.tag == "X-GAP" || t.tag == "EXT-X-GAP")
}

fn gaps(p: &MediaPlaylist) -> Vec<u64> {
    p.segments
        .iter()
        .enumerate()
        .filter(|(_, s)| is_gap(s))
        .map(|(i, _)| p.media_sequence + i as u64)
        .collect()
}

/// Every node lists the same sequence numbers with the same durations and serves the same
/// bytes for them, on every rung of `renditions`.
pub(crate) async fn check_identical(
    client: &reqwest::Client,
    nodes: &[String],
    stream: &str,
    renditions: &[&str],
) -> anyhow::Result<()> {
    for rendition in renditions {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Wait until all nodes share at least three segments.
        let (common, lists) = loop {
            let mut lists = Vec::new();
            for node in nodes {
                let p = media(client, node, stream, rendition).await?;
                lists.push(p.map(|p| listed(&p)).unwrap_or_default());
            }
            let common: Vec<u64> = lists[0]
                .keys()
                .copied()
                .filter(|seq| lists.iter().all(|l| l.contains_key(seq)))
                .collect();
            let lasts: Vec<Option<u64>> = lists.iter().map(|l| l.keys().last().copied()).collect();
            // Compare whole lists at a moment when every node has the same last segment:
            // then they must list exactly the same sequence numbers (a segment lost on one
            // node shows up here, not only as a shorter common part).
            if common.len() >= 3 && lasts.windows(2).all(|w| w[0] == w[1]) {
                let keys: Vec<Vec<u64>> =
                    lists.iter().map(|l| l.keys().copied().collect()).collect();
                anyhow::ensure!(
                    keys.windows(2).all(|w| w[0] == w[1]),
                    "{stream}/{rendition}: the nodes list different segments: {keys:?}"
                );
                break (common, lists);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{stream}/{rendition}: the nodes never listed three common segments: {lists:?}"
            );
            tokio::time::sleep(POLL).await;
        };
        for seq in &common {
            let durations: Vec<f32> = lists.iter().map(|l| l[seq]).collect();
            anyhow::ensure!(
                durations.windows(2).all(|w| w[0] == w[1]),
                "{stream}/{rendition}/{seq}: durations differ across nodes: {durations:?}"
            );
            let mut first: Option<Bytes> = None;
            for node in nodes {
                let path = format!("/live/{stream}/{rendition}/{seq}.m4s");
                let Some(bytes) = get_opt(client, node, &path).await? else {
                    // Slid out of the window since the playlist was read: fine.
                    continue;
                };
                match &first {
                    None => first = Some(bytes),
                    Some(f) => anyhow::ensure!(
                        *f == bytes,
                        "{node}{path}: bytes differ from another node's"
                    ),
                }
            }
        }
    }
    // Every published segment passed the gate, on every node.
    for node in nodes {
        let text = metrics(client, node).await?;
        let published = metric(&text, "sealcast_segments_published_total", &[]);
        let verified = metric(&text, "sealcast_manifests_verified_total", &[]);
        let of_stream = metric(
            &text,
            "sealcast_segments_published_total",
            &[&format!("stream=\"{stream}\"")],
        );
        anyhow::ensure!(
            of_stream > 0.0 && published <= verified,
            "{node}: {of_stream} segments of {stream} published, {published} in all, {verified} statements verified"
        );
    }
    Ok(())
}

/// A rogue ingest: its own key certified by the cluster root, the cluster's push token.
struct Rogue {
    bus: Bus,
    key: SigningKey,
    stranger: SigningKey,
    token: PushToken,
    client: reqwest::Client,
    nodes: Vec<String>,
    stop: CancellationToken,
}

impl Rogue {
    async fn start(cluster: &Cluster) -> anyhow::Result<Self> {
        let keys = KeyDir::new(cluster.data_dir().join("keys"));
        let root: RootKey = keys.root_key()?;
        let key = SigningKey::generate(root.algorithm())?;
        let stranger = SigningKey::generate(root.algorithm())?;
        let id = NodeId::new("e2e-rogue")?;
        let now = WallClock.unix_secs();
        let cert = root.certify(
            key.public_key(),
            id.clone(),
            Validity::starting_at(now - 60, Duration::from_secs(3600)),
        )?;
        let stop = CancellationToken::new();
        let (bus, mut events, _task) = plumbing::connect(
            BusOptions::new(cluster.broker()?, "e2e-rogue"),
            stop.clone(),
        );
        tokio::time::timeout(Duration::from_secs(10), async {
            while events.recv().await != Some(BusEvent::Connected) {}
        })
        .await
        .context("the rogue ingest could not reach the broker")?;
        // Keep the receiver drained.
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        bus.publish(
            &Topic::IngestCertificate(id),
            Qos::AtLeastOnce,
            true,
            cert.encode(),
        )
        .await?;
        Ok(Rogue {
            bus,
            key,
            stranger,
            token: keys.push_token()?,
            client: reqwest::Client::new(),
            nodes: cluster.nodes.clone(),
            stop,
        })
    }

    /// Starts `stream` on every node with one CMAF `src` rendition whose init segment is
    /// `init`.
    async fn start_stream(
        &self,
        stream: &StreamName,
        session: SessionId,
        init: &Bytes,
    ) -> anyhow::Result<()> {
        self.event(&ControlEvent::Live(LiveEvent::SessionStarted {
            stream: stream.clone(),
            session,
            private: false,
            record: true,
        }))
        .await?;
        self.event(&ControlEvent::Live(LiveEvent::Rendition {
            stream: stream.clone(),
            info: RenditionInfo {
                name: RenditionName::new("src")?,
                width: 1280,
                height: 720,
                frame_rate: 30.0,
                codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
                init: Some(domain::InitSegment::new(init.clone())?),
                part_target_us: None,
            },
        }))
        .await
    }

    /// Sends `event` to every node, signed by the rogue's certified key as an ingest signs
    /// it. A node answers 503 until the rogue's certificate reached it over MQTT; the
    /// event is sent again then, as an ingest does.
    async fn event(&self, event: &ControlEvent) -> anyhow::Result<()> {
        let body = serde_json::to_vec(event)?;
        for node in &self.nodes {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let signed = self
                    .key
                    .sign_event(body.clone(), WallClock.unix_secs() * 1000);
                let status = self.post_event(node, signed.encode()).await?;
                if status.is_success() {
                    break;
                }
                anyhow::ensure!(
                    status == reqwest::StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline,
                    "{node}: event {event:?}: {status}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn post_event(&self, node: &str, body: Vec<u8>) -> anyhow::Result<reqwest::StatusCode> {
        Ok(self
            .client
            .post(format!("{node}{}", InternalPath::Events))
            .bearer_auth(self.token.expose_secret())
            .body(body)
            .send()
            .await?
            .status())
    }

    /// Issue 13's playlist rewrite, tried with the cluster's push token on the live stream
    /// `live`: a codecs injection as unsigned JSON and signed by an uncertified key, and an
    /// end of the stream signed by that key. Every node refuses each, and neither its
    /// master playlist nor the live stream changes.
    async fn forge_events(&self, live: &str, client: &reqwest::Client) -> anyhow::Result<()> {
        let stream = StreamName::new(live)?;
        let injected = serde_json::json!({
            "type": "rendition",
            "stream": live,
            "info": {
                "name": "src", "width": 1280, "height": 720, "frame_rate": 30.0,
                "codecs": "avc1.64001f\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://evil.example/x.m3u8",
            },
        });
        let injected = serde_json::to_vec(&injected)?;
        let end = serde_json::to_vec(&ControlEvent::Live(LiveEvent::Ended {
            stream,
            session: SessionId(1),
        }))?;
        let now_ms = WallClock.unix_secs() * 1000;
        for node in &self.nodes {
            let master = format!("/live/{live}/master.m3u8");
            let before = get_opt(client, node, &master)
                .await?
                .context("no master playlist")?;
            for (what, body, wanted) in [
                ("unsigned JSON", injected.clone(), 400),
                (
                    "injection by an uncertified key",
                    self.stranger.sign_event(injected.clone(), now_ms).encode(),
                    503,
                ),
                (
                    "end by an uncertified key",
                    self.stranger.sign_event(end.clone(), now_ms).encode(),
                    503,
                ),
                (
                    "injection signed by a certified key",
                    self.key.sign_event(injected.clone(), now_ms).encode(),
                    400,
                ),
            ] {
                let status = self.post_event(node, body).await?;
                anyhow::ensure!(
                    status.as_u16() == wanted,
                    "{node}: {what}: {status}, not {wanted}"
                );
            }
            // BANDWIDTH moves with every segment; the variants listed must not.
            let after = get_opt(client, node, &master)
                .await?
                .context("master playlist gone")?;
            let variants = |b: &Bytes| {
                String::from_utf8_lossy(b)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            anyhow::ensure!(
                variants(&after) == variants(&before)
                    && !String::from_utf8_lossy(&after).contains("evil"),
                "{node}: the master playlist changed its variants"
            );
            let text = metrics(client, node).await?;
            anyhow::ensure!(
                metric(
                    &text,
                    "sealcast_control_events_refused_total",
                    &["reason=\"unknown_key\""]
                ) >= 2.0
                    && metric(
                        &text,
                        "sealcast_control_events_refused_total",
                        &["reason=\"malformed\""]
                    ) >= 2.0,
                "{node}: forged events not counted"
            );
        }
        // The live stream goes on.
        let p = wait_media(client, &self.nodes[0], live, |p| !p.end_list).await?;
        let last = p.media_sequence + p.segments.len() as u64;
        wait_media(client, &self.nodes[0], live, |p| {
            p.media_sequence + p.segments.len() as u64 > last
        })
        .await
        .context("the live stream stopped after the forged events")?;
        Ok(())
    }

    async fn push(&self, meta: &SegmentMeta, bytes: &Bytes) -> anyhow::Result<()> {
        let path =
            InternalPath::Segment(meta.stream.clone(), meta.rendition.clone(), meta.sequence);
        for node in &self.nodes {
            let mut req = self
                .client
                .put(format!("{node}{path}"))
                .bearer_auth(self.token.expose_secret())
                .body(bytes.clone());
            for (name, value) in SegmentHeaders::of(meta).pairs() {
                req = req.header(name, value);
            }
            let resp = req.send().await?;
            anyhow::ensure!(
                resp.status().is_success(),
                "{node}{path}: {}",
                resp.status()
            );
        }
        Ok(())
    }

    fn envelope(&self, meta: &SegmentMeta, bytes: &[u8], signer: &SigningKey) -> SignedMedia {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let statement = SegmentStatement::from_meta(
            meta,
            signer.algorithm(),
            signer.key_id(),
            bytes.len() as u64,
            digest,
        )
        .encode();
        let signature = signer.sign(&statement);
        SignedMedia::new(statement, signature)
    }

    async fn publish(&self, meta: &SegmentMeta, envelope: &SignedMedia) -> anyhow::Result<()> {
        self.bus
            .publish(
                &Topic::MediaStatements(meta.stream.clone(), meta.rendition.clone()),
                Qos::AtLeastOnce,
                false,
                envelope.encode(),
            )
            .await?;
        Ok(())
    }
}

/// The init segment and real segments of a live stream, consecutive, with their
/// durations.
async fn borrow_segments(
    cluster: &Cluster,
    stream: &str,
    count: usize,
) -> anyhow::Result<(Bytes, Vec<(Bytes, Duration)>)> {
    let p = cluster
        .wait_media(stream, "src", count, Duration::from_secs(30))
        .await?;
    let init = cluster
        .get_bytes(&format!("/live/{stream}/src/init.mp4"))
        .await?;
    let mut out = Vec::new();
    for s in p.segments.iter().take(count) {
        let bytes = cluster
            .get_bytes(&format!("/live/{stream}/src/{}", s.uri))
            .await?;
        out.push((bytes, Duration::from_secs_f32(s.duration)));
    }
    Ok((init, out))
}

/// Tampered bytes, an uncertified key, a bad signature, a missing statement and a replayed
/// one: none is served, each is counted by reason, the missing ones become gaps, and
/// ffmpeg plays past them.
pub(crate) async fn check_gate(cluster: &Cluster, live: &str) -> anyhow::Result<()> {
    let (init, segments) = borrow_segments(cluster, live, 6).await?;
    let client = cluster.client();
    let mut before = Vec::new();
    for node in &cluster.nodes {
        before.push(metrics(client, node).await?);
    }
    let rogue = Rogue::start(cluster).await?;
    let stream = StreamName::new("rogue")?;
    let src = RenditionName::new("src")?;
    let session = SessionId(0x5eed);
    rogue.start_stream(&stream, session, &init).await?;
    rogue.forge_events(live, client).await?;
    let meta = |seq: u64| SegmentMeta {
        stream: stream.clone(),
        rendition: src.clone(),
        session,
        sequence: seq,
        discontinuity_sequence: 0,
        discontinuity: false,
        duration: segments[seq as usize].1,
        start_pts_90k: 0,
    };

    // 0: genuine. Wait until every node published it (the certificate has arrived).
    let m0 = meta(0);
    let e0 = rogue.envelope(&m0, &segments[0].0, &rogue.key);
    rogue.push(&m0, &segments[0].0).await?;
    rogue.publish(&m0, &e0).await?;
    for node in &cluster.nodes {
        wait_listed(client, node, "rogue", 0).await?;
    }
    // 1: bytes altered in transit, genuine statement.
    let m1 = meta(1);
    let mut tampered = segments[1].0.to_vec();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    rogue.push(&m1, &Bytes::from(tampered)).await?;
    rogue
        .publish(&m1, &rogue.envelope(&m1, &segments[1].0, &rogue.key))
        .await?;
    // 2: signed by a key the root never certified.
    let m2 = meta(2);
    rogue.push(&m2, &segments[2].0).await?;
    rogue
        .publish(&m2, &rogue.envelope(&m2, &segments[2].0, &rogue.stranger))
        .await?;
    // 3: a statement published by hand with a bad signature.
    let m3 = meta(3);
    rogue.push(&m3, &segments[3].0).await?;
    let mut bad = rogue.envelope(&m3, &segments[3].0, &rogue.key);
    bad.signature[7] ^= 1;
    rogue.publish(&m3, &bad).await?;
    // 4: no statement at all.
    let m4 = meta(4);
    rogue.push(&m4, &segments[4].0).await?;
    // 5: genuine again.
    let m5 = meta(5);
    rogue.push(&m5, &segments[5].0).await?;
    rogue
        .publish(&m5, &rogue.envelope(&m5, &segments[5].0, &rogue.key))
        .await?;
    for node in &cluster.nodes {
        wait_listed(client, node, "rogue", 5).await?;
    }
    // A replay of segment 0's statement.
    rogue.publish(&m0, &e0).await?;
    rogue
        .event(&ControlEvent::Live(LiveEvent::Ended {
            stream: stream.clone(),
            session,
        }))
        .await?;

    for (node, before) in cluster.nodes.iter().zip(&before) {
        let p = wait_media(client, node, "rogue", |p| p.end_list).await?;
        anyhow::ensure!(
            listed(&p).keys().copied().collect::<Vec<_>>() == [0, 5] && gaps(&p) == [1, 2, 3, 4],
            "{node}: rogue lists {:?} with gaps {:?}",
            listed(&p),
            gaps(&p)
        );
        for seq in 1..5 {
            let path = format!("/live/rogue/src/{seq}.m4s");
            anyhow::ensure!(
                get_opt(client, node, &path).await?.is_none(),
                "{node}{path} is served"
            );
        }
        for seq in [0usize, 5] {
            let path = format!("/live/rogue/src/{seq}.m4s");
            let got = get_opt(client, node, &path)
                .await?
                .context("listed but not served")?;
            anyhow::ensure!(got == segments[seq].0, "{node}{path}: not the pushed bytes");
        }
        let after = wait_metrics(client, node, |text| {
            [
                "digest_mismatch",
                "unknown_key",
                "bad_signature",
                "timeout",
                "replay",
            ]
            .iter()
            .all(|r| rejected(text, r) > rejected(before, r))
        })
        .await
        .with_context(|| format!("{node}: not every rejection was counted"))?;
        for reason in REASONS {
            anyhow::ensure!(
                after.contains(&format!("reason=\"{reason}\"")),
                "{node}: no sealcast_segments_rejected_total{{reason=\"{reason}\"}} series"
            );
        }
    }

    // ffmpeg plays the stream past its gaps.
    let url = format!("{}/live/rogue/src/index.m3u8", cluster.nodes[0]);
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            &url,
        ])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "ffprobe failed on the gapped stream: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .collect();
    let first_pts = times.iter().copied().fold(f64::MAX, f64::min);
    let last_pts = times.iter().copied().fold(f64::MIN, f64::max);
    let covered: f64 = segments.iter().take(5).map(|s| s.1.as_secs_f64()).sum();
    anyhow::ensure!(
        last_pts - first_pts >= covered - 0.5,
        "ffprobe stopped at the gap: packets span {:.2} s, segment 5 starts {covered:.2} s in",
        last_pts - first_pts
    );
    check_revocation(cluster, &rogue, &init, &segments[0].0).await?;
    rogue.stop.cancel();
    Ok(())
}

/// The operator revokes the rogue key with `sealcast keys revoke`: what it signs next is
/// refused as `revoked_key` on every node and never served.
async fn check_revocation(
    cluster: &Cluster,
    rogue: &Rogue,
    init: &Bytes,
    bytes: &Bytes,
) -> anyhow::Result<()> {
    let client = cluster.client();
    let stream = StreamName::new("revoked")?;
    let session = SessionId(0x7e0c);
    rogue.start_stream(&stream, session, init).await?;
    let mut before = Vec::new();
    for node in &cluster.nodes {
        before.push(rejected(&metrics(client, node).await?, "revoked_key"));
    }
    let out = tokio::process::Command::new(BIN)
        .args([
            "keys",
            "revoke",
            &rogue.key.key_id().to_string(),
            "--mqtt-url",
            &cluster.mqtt,
        ])
        .arg("--data-dir")
        .arg(cluster.data_dir())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "keys revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Kept in the key directory too, for nodes that start after the broker forgot it.
    let kept = cluster
        .data_dir()
        .join(format!("keys/revocations/{}.rev", rogue.key.key_id()));
    anyhow::ensure!(kept.is_file(), "{} was not written", kept.display());
    // The CLI's publish reached the broker before it exited, and each node handles its
    // MQTT messages in order: the revocation is in force before the next statement.
    let meta = SegmentMeta {
        stream: stream.clone(),
        rendition: RenditionName::new("src")?,
        session,
        sequence: 0,
        discontinuity_sequence: 0,
        discontinuity: false,
        duration: Duration::from_secs(2),
        start_pts_90k: 0,
    };
    rogue.push(&meta, bytes).await?;
    rogue
        .publish(&meta, &rogue.envelope(&meta, bytes, &rogue.key))
        .await?;
    for (node, before) in cluster.nodes.iter().zip(before) {
        wait_metrics(client, node, |text| rejected(text, "revoked_key") > before)
            .await
            .with_context(|| format!("{node}: the revoked key's statement was not refused"))?;
        anyhow::ensure!(
            get_opt(client, node, "/live/revoked/src/0.m4s")
                .await?
                .is_none(),
            "{node}: a segment signed by a revoked key is served"
        );
    }
    // What the revoked key says about its stream is refused too; the cluster's own ingest
    // key, still trusted, ends it.
    let end = serde_json::to_vec(&ControlEvent::Live(LiveEvent::Ended { stream, session }))?;
    let (ingest_key, _) =
        KeyDir::new(cluster.data_dir().join("keys")).ingest(&NodeId::new("ingest1")?)?;
    for node in &cluster.nodes {
        let status = rogue
            .post_event(
                node,
                rogue
                    .key
                    .sign_event(end.clone(), WallClock.unix_secs() * 1000)
                    .encode(),
            )
            .await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::FORBIDDEN,
            "{node}: the revoked key ended its stream: {status}"
        );
        let status = rogue
            .post_event(
                node,
                ingest_key
                    .sign_event(end.clone(), WallClock.unix_secs() * 1000)
                    .encode(),
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "{node}: the ingest's end was refused: {status}"
        );
    }
    Ok(())
}

fn rejected(text: &str, reason: &str) -> f64 {
    metric(
        text,
        "sealcast_segments_rejected_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

async fn wait_metrics(
    client: &reqwest::Client,
    node: &str,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(client, node).await?;
        if done(&text) {
            return Ok(text);
        }
        anyhow::ensure!(Instant::now() < deadline, "metrics never got there");
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_media(
    client: &reqwest::Client,
    node: &str,
    stream: &str,
    done: impl Fn(&MediaPlaylist) -> bool,
) -> anyhow::Result<MediaPlaylist> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = media(client, node, stream, "src").await? {
            if done(&p) {
                return Ok(p);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{node}: {stream} never got there"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_listed(
    client: &reqwest::Client,
    node: &str,
    stream: &str,
    seq: u64,
) -> anyhow::Result<()> {
    wait_media(client, node, stream, |p| listed(p).contains_key(&seq))
        .await
        .with_context(|| format!("{node}: {stream}/src/{seq} never published"))
        .map(drop)
}

/// The push API refuses what it must, with the status a client can act on.
pub(crate) async fn check_push_refusals(cluster: &Cluster) -> anyhow::Result<()> {
    let client = cluster.client();
    let node = &cluster.nodes[0];
    let token = KeyDir::new(cluster.data_dir().join("keys")).push_token()?;
    let meta = SegmentMeta {
        stream: StreamName::new("nosuchstream")?,
        rendition: RenditionName::new("src")?,
        session: SessionId(1),
        sequence: 0,
        discontinuity_sequence: 0,
        discontinuity: false,
        duration: Duration::from_secs(2),
        start_pts_90k: 0,
    };
    let path = InternalPath::Segment(meta.stream.clone(), meta.rendition.clone(), 0);
    let put = |auth: Option<&str>, body: Vec<u8>| {
        let mut req = client.put(format!("{node}{path}")).body(body);
        for (name, value) in SegmentHeaders::of(&meta).pairs() {
            req = req.header(name, value);
        }
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };
    let status = put(None, vec![0x47; 188]).await?.status();
    anyhow::ensure!(status == 401, "no token: {status}");
    let status = put(Some("Bearer not-the-cluster-token"), vec![0x47; 188])
        .await?
        .status();
    anyhow::ensure!(status == 401, "wrong token: {status}");
    let bearer = format!("Bearer {}", token.expose_secret());
    let status = put(Some(&bearer), vec![0x47; 188]).await?.status();
    anyhow::ensure!(status == 404, "unknown stream: {status}");
    // Raw requests: a body announced over the cap is refused on its headers (the client
    // need not send it), and `..` reaches the server exactly as written.
    let authority = node.trim_start_matches("http://");
    let meta_headers: String = SegmentHeaders::of(&meta)
        .pairs()
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let oversized = raw_status(
        authority,
        &format!(
            "PUT {path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: {bearer}\r\n{meta_headers}content-length: {}\r\n\r\n",
            17 * 1024 * 1024
        ),
    )
    .await?;
    anyhow::ensure!(oversized.contains(" 413 "), "oversized body: {oversized:?}");
    for raw_path in [
        "/internal/v1/segments/../src/0",
        "/internal/v1/segments/a/..%2f..%2fetc/0",
        "/live/../internal/v1/events",
    ] {
        let status_line = raw_status(
            authority,
            &format!(
                "PUT {raw_path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: {bearer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
        )
        .await?;
        anyhow::ensure!(
            status_line.contains(" 40"),
            "{raw_path}: answered {status_line:?}"
        );
    }
    Ok(())
}

/// Sends `head` (a request without a body) and returns the response's status line.
async fn raw_status(authority: &str, head: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut socket = tokio::net::TcpStream::connect(authority).await?;
    socket.write_all(head.as_bytes()).await?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(&mut socket).read_line(&mut line),
    )
    .await??;
    Ok(line.trim_end().to_owned())
}

/// Garbage on every topic of ours: logged, counted, ignored; the nodes keep serving.
pub(crate) async fn check_garbage_on_the_broker(
    cluster: &Cluster,
    live: &str,
) -> anyhow::Result<()> {
    let client = cluster.client();
    // Issue 13's forged presence needs a session on the broker: the embedded broker takes
    // no client without the cluster's login (the password file of the key directory).
    let addr: std::net::SocketAddr = cluster
        .mqtt
        .strip_prefix("mqtt://")
        .context("broker address")?
        .parse()?;
    let password = cluster.mqtt_login_url()?;
    let password = password
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.rsplit_once(':'))
        .map(|(_, p)| p.to_owned())
        .context("no password")?;
    for (what, login) in [
        ("anonymous", None),
        (
            "wrong password",
            Some(("sealcast".to_owned(), "0".repeat(64))),
        ),
        ("right password", Some(("sealcast".to_owned(), password))),
    ] {
        let got = tokio::task::spawn_blocking(move || {
            testkit::mosquitto::connack(addr, login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())))
        })
        .await?;
        let wanted = what == "right password";
        anyhow::ensure!(
            (got == Some(0)) == wanted,
            "{what}: the embedded broker answered {got:?}"
        );
    }
    let stop = CancellationToken::new();
    let (bus, _events) = connected(cluster, "e2e-garbage", &stop).await?;
    let mut before = Vec::new();
    for node in &cluster.nodes {
        before.push(metric(
            &metrics(client, node).await?,
            "sealcast_control_messages_ignored_total",
            &[],
        ));
    }
    let topics = [
        Topic::MediaStatements(StreamName::new(live)?, RenditionName::new("src")?),
        Topic::IngestCertificate(NodeId::new("e2e-garbage")?),
        Topic::Revocation("0123456789abcdef0123456789abcdef".parse()?),
        Topic::Presence(NodeId::new("e2e-garbage")?),
    ];
    for topic in &topics {
        for payload in [
            &b"\x00\xffgarbage"[..],
            b"{\"role\":\"broadcast\"}",
            &[0xA5; 5000],
        ] {
            bus.publish(topic, Qos::AtLeastOnce, false, payload.to_vec())
                .await?;
        }
    }
    for (node, before) in cluster.nodes.iter().zip(before) {
        wait_metrics(client, node, |text| {
            metric(text, "sealcast_control_messages_ignored_total", &[]) >= before + 9.0
        })
        .await
        .with_context(|| format!("{node}: garbage was not counted as ignored"))?;
    }
    // The live stream kept publishing through it on every node.
    keeps_publishing(cluster, live, 1, "the garbage").await?;
    bus.disconnect()?;
    stop.cancel();
    Ok(())
}

/// A `sealcast broadcast` process, started against the running cluster's broker and keys.
pub(crate) struct ExtraNode {
    process: Spawned,
    /// Where it serves.
    pub(crate) url: String,
    /// Holds its log.
    _dir: tempfile::TempDir,
}

impl ExtraNode {
    /// Starts a node and waits until it says it is ready (the line it prints then).
    pub(crate) async fn start(
        data_dir: &std::path::Path,
        mqtt: &str,
        id: &str,
        config: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(["broadcast", "--listen", "127.0.0.1:0", "--node-id", id])
            // The login is a secret: in the environment, not on the command line.
            .env("SEALCAST_MQTT_URL", mqtt)
            .arg("--data-dir")
            .arg(data_dir)
            // Ready means synced: on a loaded machine an ingest's window can take longer
            // than the default to arrive, and a node ready by timeout proves nothing here.
            .args(["--ready-timeout", "120"])
            .env("SEALCAST_LOG", "info");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut process = Spawned::start(id, command, &dir.path().join("broadcast.log"))?;
        let url = process
            .line(&format!("{id} "), Duration::from_secs(30))
            .await
            .with_context(|| format!("{id} never reported ready"))?;
        process.drain();
        Ok(ExtraNode {
            process,
            url,
            _dir: dir,
        })
    }

    /// What the node logged so far.
    pub(crate) fn log(&self) -> String {
        self.process.log()
    }

    /// SIGKILL: no clean shutdown, no offline presence but the broker's last will.
    pub(crate) async fn kill(self) -> anyhow::Result<()> {
        self.process.kill().await
    }
}

/// A node started mid-stream serves the whole current window as soon as it says it is
/// ready; killed, it slows nobody down; a node that accepts connections and never answers
/// does not either.
pub(crate) async fn check_late_join_and_failures(
    cluster: &Cluster,
    live: &str,
) -> anyhow::Result<()> {
    let client = cluster.client();
    let late = ExtraNode::start(
        &cluster.data_dir(),
        &cluster.mqtt_login_url()?,
        "late1",
        None,
    )
    .await?;
    // At once: its window is broadcast1's (give or take the segment published meanwhile).
    let log = late.log();
    anyhow::ensure!(
        log.contains("caught up with every ingest"),
        "the late node did not report ready on being synced; its log:\n{log}"
    );
    let mine = media(client, &late.url, live, "src")
        .await?
        .with_context(|| format!("late node lacks the stream; its log:\n{}", late.log()))?;
    let theirs = media(client, &cluster.nodes[0], live, "src")
        .await?
        .context("stream gone")?;
    let (mine, theirs) = (listed(&mine), listed(&theirs));
    let missing: Vec<u64> = theirs
        .keys()
        .filter(|s| !mine.contains_key(s))
        .copied()
        .collect();
    anyhow::ensure!(
        missing.len() <= 1 && mine.len() + 1 >= theirs.len(),
        "the late node is ready with {:?}, broadcast1 lists {:?}",
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    check_identical(
        client,
        &[cluster.nodes[0].clone(), late.url.clone()],
        live,
        &["src"],
    )
    .await?;

    late.kill().await?;
    check_cadence(cluster, live, "after a node was killed").await?;

    // A node whose presence says it is up but that never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hole_url = format!("http://{}", hole.local_addr()?);
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket); // accepted, never read, never answered
        }
    });
    let stop = CancellationToken::new();
    let (bus, _events) = connected(cluster, "e2e-blackhole", &stop).await?;
    let node = NodeId::new("blackhole")?;
    let topic = Topic::Presence(node.clone());
    let presence = domain::presence::Presence {
        role: domain::presence::Role::Broadcast,
        state: domain::presence::PresenceState::Ready,
        url: Some(hole_url),
        direct_url: None,
    };
    // Signed with the cluster's edge key, as a real (if broken) node would.
    let (edge_key, edge_cert) = KeyDir::new(cluster.data_dir().join("keys")).edge()?;
    let signed =
        PresenceSigner::new(edge_key, &edge_cert)?.sign(&node, &presence, WallClock.unix_ms());
    bus.publish(&topic, Qos::AtLeastOnce, true, signed).await?;
    let cadence = check_cadence(cluster, live, "while a node never answers").await;
    bus.clear_retained(&topic).await?;
    bus.disconnect()?;
    stop.cancel();
    holder.abort();
    cadence
}

/// Waits until every node lists `more` segments of `live` beyond what it lists now.
async fn keeps_publishing(
    cluster: &Cluster,
    live: &str,
    more: u64,
    after: &str,
) -> anyhow::Result<()> {
    let client = cluster.client();
    for node in &cluster.nodes {
        let first = media(client, node, live, "src")
            .await?
            .context("live stream gone")?;
        let last = first.media_sequence + first.segments.len() as u64;
        wait_media(client, node, live, |p| {
            p.media_sequence + p.segments.len() as u64 >= last + more
        })
        .await
        .with_context(|| format!("{node}: {live} stopped after {after}"))?;
    }
    Ok(())
}

/// A client of the cluster's broker (with its login), once connected. Keep the events
/// receiver: dropping it ends the connection.
async fn connected(
    cluster: &Cluster,
    client_id: &str,
    stop: &CancellationToken,
) -> anyhow::Result<(Bus, tokio::sync::mpsc::Receiver<BusEvent>)> {
    let (bus, mut events, _task) =
        plumbing::connect(BusOptions::new(cluster.broker()?, client_id), stop.clone());
    tokio::time::timeout(Duration::from_secs(10), async {
        while events.recv().await != Some(BusEvent::Connected) {}
    })
    .await
    .with_context(|| format!("{client_id} could not reach the broker"))?;
    Ok((bus, events))
}

/// A process with the broker's password but without the edge key announces broadcast
/// nodes at an address of its own: unsigned, and signed with an edge key certified by a
/// root of its own. The load balancer refuses both and counts them, sends that address no
/// viewer, and the ingest pushes nothing to it (so never shows it the push token) while
/// the live stream goes on.
pub(crate) async fn check_forged_presences(cluster: &Cluster, live: &str) -> anyhow::Result<()> {
    let client = cluster.client();
    let viewers = crate::lb::https_client(&cluster.ca())?;
    crate::lb::wait_live(&viewers, &cluster.https, live).await?;
    // The forger's server: counts every connection made to it, answers none.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let hits = std::sync::Arc::clone(&hits);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        })
    };
    let refused = |text: &str| metric(text, "sealcast_lb_presences_refused_total", &[]);
    let before = refused(&metrics(client, &cluster.nodes[0]).await?);

    let stop = CancellationToken::new();
    let (bus, _events) = connected(cluster, "e2e-forger", &stop).await?;
    let presence = domain::presence::Presence {
        role: domain::presence::Role::Broadcast,
        state: domain::presence::PresenceState::Ready,
        url: Some(url.clone()),
        direct_url: None,
    };
    let stranger_root = RootKey::generate(certs::signing::SignatureAlgorithm::Ed25519)?;
    let stranger_key = SigningKey::generate(certs::signing::SignatureAlgorithm::Ed25519)?;
    let stranger_cert = stranger_root.certify_edge(
        stranger_key.public_key(),
        NodeId::new("broadcast")?,
        Validity::starting_at(WallClock.unix_ms() / 1000 - 60, Duration::from_secs(3600)),
    )?;
    let stranger = PresenceSigner::new(stranger_key, &stranger_cert)?;
    let (unsigned, foreign) = (NodeId::new("forged1")?, NodeId::new("forged2")?);
    let forged = [
        (Topic::Presence(unsigned), presence.encode()),
        (
            Topic::Presence(foreign.clone()),
            stranger.sign(&foreign, &presence, WallClock.unix_ms()),
        ),
    ];
    for (topic, payload) in &forged {
        bus.publish(topic, Qos::AtLeastOnce, true, payload.clone())
            .await?;
    }
    let result = async {
        wait_metrics(client, &cluster.nodes[0], |text| {
            refused(text) >= before + 2.0
        })
        .await
        .context("the load balancer did not count the forged presences as refused")?;
        // New viewers (no cookie) all land on real nodes.
        for _ in 0..40 {
            let r = viewers
                .get(format!(
                    "{}/live/{live}/master.m3u8",
                    cluster.https.trim_end_matches('/')
                ))
                .send()
                .await?;
            let node = r
                .headers()
                .get("x-sealcast-node")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            anyhow::ensure!(
                r.status().is_success() && node.starts_with("broadcast"),
                "a new viewer got {} from {node:?}",
                r.status()
            );
        }
        // Two more segments published everywhere: the ingest had its chances to push.
        keeps_publishing(cluster, live, 2, "the forged presences").await?;
        let connections = hits.load(std::sync::atomic::Ordering::SeqCst);
        anyhow::ensure!(
            connections == 0,
            "the forged address got {connections} connections"
        );
        Ok(())
    }
    .await;
    for (topic, _) in &forged {
        bus.clear_retained(topic).await?;
    }
    bus.disconnect()?;
    stop.cancel();
    server.abort();
    result
}

/// Each of the next three segments of `live` appears on every node within a target
/// duration and a half of the previous one (plus slack for the machine's load).
async fn check_cadence(cluster: &Cluster, live: &str, when: &str) -> anyhow::Result<()> {
    let client = cluster.client();
    let start = media(client, &cluster.nodes[0], live, "src")
        .await?
        .context("stream gone")?;
    let first = start.media_sequence + start.segments.len() as u64;
    for last in first..first + 3 {
        let since = Instant::now();
        for node in &cluster.nodes {
            let deadline = since + Duration::from_secs(5);
            loop {
                let p = media(client, node, live, "src")
                    .await?
                    .context("stream gone")?;
                if p.media_sequence + p.segments.len() as u64 > last {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "{when}: {node} published nothing for 5 s after segment {last}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

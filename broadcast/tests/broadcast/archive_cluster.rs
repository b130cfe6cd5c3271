//! Recordings kept once per cluster in the archive (issue 49), against the real parts: a
//! local archive directory, and a real S3 store (Garage, `testkit::s3`).
//!
//! - `two_recording_nodes_leave_one_copy_and_any_node_serves_it`: two nodes record one
//!   stream into one local archive: one copy, uploaded about once (the second writer
//!   finds the first's files and sends no media bytes: measured from their metrics), and a
//!   third node that recorded nothing lists and plays it back.
//! - `a_node_that_recorded_less_leaves_the_longer_copy`: the node that writes last
//!   recorded less; its shorter playlists and `recording.json` do not replace the longer.
//! - `s3_outage_is_spooled_and_caught_up`: Garage killed while a node records; what it
//!   records waits in the spool (its gauge says how much); restarted, all of it reaches
//!   the archive and another node serves it.
//! - `s3_outage_past_the_spool_bound_drops_the_oldest_counted`: the spool's bound holds
//!   and the metric counts what it dropped.
//! - `what_a_stopped_node_had_not_archived_goes_at_its_next_start`: the spool is the
//!   node's disk; a node that stops with the store down archives it when it starts again.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use archive::{
    Archive, ArchiveKey, ArchivePrefix, CreateMode, RecordingFile, S3Config, S3Credentials,
    Timeouts,
};
use broadcast::{ArchiveSettings, Node, RecordingInfo};
use bytes::Bytes;
use domain::paths::MediaFile;
use domain::{LiveEvent, NodeId, RenditionName};
use http::StatusCode;
use testkit::s3::Garage;
use tokio::sync::mpsc;

/// Bytes of one recorded segment: large enough that playlists are a rounding error.
const SEGMENT: usize = 64 * 1024;

fn big_segment(sequence: u64) -> Bytes {
    (0..SEGMENT)
        .map(|i| (i as u64 * 7 + sequence) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn settings() -> ArchiveSettings {
    ArchiveSettings {
        writer_window: Duration::from_secs(3),
        ..ArchiveSettings::default()
    }
}

/// A node `name` recording into `dir` and archiving into `archive`, and what its observer
/// hears.
fn recording_node(
    name: &str,
    dir: &Path,
    archive: &Archive,
    settings: ArchiveSettings,
) -> (Arc<Node>, mpsc::UnboundedReceiver<RecordingInfo>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let node = Node::new(NodeId::new(name).expect("valid"), node_config())
        .with_archive(archive.clone(), settings)
        .expect("archive")
        .with_recording_observer(Arc::new(move |info| {
            let _ = tx.send(info);
        }))
        .with_recordings(dir.to_path_buf())
        .expect("recordings");
    (Arc::new(node), rx)
}

/// A node that records nothing and serves the archive.
fn reading_node(archive: &Archive) -> Arc<Node> {
    Arc::new(
        Node::new(NodeId::new("edge-reader").expect("valid"), node_config())
            .with_archive(archive.clone(), settings())
            .expect("archive"),
    )
}

fn start_stream(node: &Node) {
    start(node);
    announce(node, "720p", 720);
}

fn end(node: &Node) {
    node.apply(LiveEvent::Ended {
        stream: stream(),
        session: SESSION,
    })
    .expect("end");
}

async fn finished(rx: &mut mpsc::UnboundedReceiver<RecordingInfo>) -> RecordingInfo {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the recording finishes")
        .expect("observer alive")
}

async fn drained(node: &Node) {
    tokio::time::timeout(Duration::from_secs(120), node.archive_drained())
        .await
        .expect("the spool drains");
}

/// A gauge's value on `node`'s `/metrics`, or a counter's (given `_total`).
async fn metric(node: &Arc<Node>, name: &str) -> f64 {
    let text = body(send(node, get("/metrics")).await).await;
    testkit::prometheus::sample_sum(&String::from_utf8_lossy(&text), name, &[])
}

async fn counter(node: &Arc<Node>, name: &str) -> f64 {
    metric(node, &format!("{name}_total")).await
}

/// Every object of the recording, with its size.
async fn archived(archive: &Archive) -> Vec<(String, u64)> {
    let prefix = ArchivePrefix::Recording(stream(), SESSION);
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = archive
            .list(&prefix, cursor.as_ref(), 1000)
            .await
            .expect("lists");
        all.extend(
            page.objects
                .into_iter()
                .map(|o| (o.key.to_string(), o.size)),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

fn segment_key(sequence: u64) -> ArchiveKey {
    ArchiveKey::recording(
        &stream(),
        SESSION,
        RecordingFile::Media(
            RenditionName::new("720p").expect("valid"),
            MediaFile::Ts(sequence),
        ),
    )
    .expect("valid")
}

/// Plays the recording back from `node`: listed, master and media playlist served, and
/// every segment the playlist lists served with its recorded bytes.
async fn plays_back(node: &Arc<Node>, segments: impl IntoIterator<Item = u64>) {
    let listed = body(send(node, get("/api/v1/recordings")).await).await;
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("json");
    assert_eq!(listed[0]["id"], "000000000000feed", "{listed}");
    let master = send(node, get("/vod/demo/000000000000feed/master.m3u8")).await;
    assert_eq!(master.status(), StatusCode::OK);
    let media = send(node, get("/vod/demo/000000000000feed/720p/index.m3u8")).await;
    assert_eq!(media.status(), StatusCode::OK);
    let media = String::from_utf8(body(media).await.to_vec()).expect("text");
    assert!(media.contains("#EXT-X-ENDLIST"), "{media}");
    for seq in segments {
        assert!(
            media.contains(&format!("\n{seq}.ts")),
            "{seq} listed: {media}"
        );
        let got = send(
            node,
            get(&format!("/vod/demo/000000000000feed/720p/{seq}.ts")),
        )
        .await;
        assert_eq!(got.status(), StatusCode::OK, "segment {seq}");
        assert_eq!(body(got).await, big_segment(seq), "segment {seq}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_recording_nodes_leave_one_copy_and_any_node_serves_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = Archive::local(tmp.path().join("archive")).expect("archive");
    let settings = settings();
    // Two nodes whose writer delays for this stream are half a second apart or more (local
    // writes take milliseconds), so the second finds every file of the first there (the
    // spread is a hash: fixed per name).
    let (first, second) = ("edge-a", "edge-b");
    let delay = |n: &str| settings.writer_delay(&NodeId::new(n).expect("valid"), &stream());
    assert!(
        delay(first).abs_diff(delay(second)) >= Duration::from_millis(500),
        "{:?} {:?}",
        delay(first),
        delay(second)
    );
    let (a, mut a_rx) = recording_node(first, &tmp.path().join("a"), &archive, settings);
    let (b, mut b_rx) = recording_node(second, &tmp.path().join("b"), &archive, settings);
    for node in [&a, &b] {
        start_stream(node);
    }
    for seq in 0..8 {
        for node in [&a, &b] {
            publish_bytes(node, "720p", seq, big_segment(seq));
        }
    }
    for node in [&a, &b] {
        end(node);
    }
    finished(&mut a_rx).await;
    finished(&mut b_rx).await;
    drained(&a).await;
    drained(&b).await;

    let objects = archived(&archive).await;
    let media: u64 = objects
        .iter()
        .filter(|(k, _)| k.ends_with(".ts"))
        .map(|(_, s)| *s)
        .sum();
    let total: u64 = objects.iter().map(|(_, s)| *s).sum();
    assert_eq!(
        media,
        8 * SEGMENT as u64,
        "one copy of each segment: {objects:?}"
    );
    let uploaded =
        counter(&a, broadcast::UPLOADED_BYTES).await + counter(&b, broadcast::UPLOADED_BYTES).await;
    let skipped =
        counter(&a, broadcast::SKIPPED_BYTES).await + counter(&b, broadcast::SKIPPED_BYTES).await;
    eprintln!(
        "two recording nodes: archive holds {total} bytes ({media} of media); uploaded {uploaded} bytes, skipped {skipped} (every node uploading everything: {})",
        2 * total
    );
    // The second writer sent no media, only its own playlists (and the listing entry).
    assert!(
        skipped >= media as f64,
        "the second node skipped its media: {skipped}"
    );
    assert!(
        uploaded < 1.1 * total as f64,
        "about one upload of each byte: {uploaded} for {total}"
    );

    // Local copies of segments are gone from the recording nodes (spool emptied).
    let local = tmp.path().join("a/demo/000000000000feed/720p/0.ts");
    assert!(
        !local.exists(),
        "the spooled segment is removed once archived"
    );

    let reader = reading_node(&archive);
    plays_back(&reader, 0..8).await;
    // The first node serves it from the archive too, though its disk no longer has it.
    plays_back(&a, 0..8).await;

    // Deleting it through a node deletes the cluster's copy.
    a.forget_recording(&stream(), SESSION)
        .await
        .expect("forgets");
    assert!(archived(&archive).await.is_empty());
    // The node that deleted it answers 404 at once (another node within the seconds it
    // reuses what it read of a recording).
    let gone = send(&a, get("/vod/demo/000000000000feed/master.m3u8")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let listed = body(send(&a, get("/api/v1/recordings")).await).await;
    assert_eq!(&listed[..], b"[]");
}

/// Two nodes record one stream, and the one that writes to the archive last recorded less
/// of it (it missed the end: a node that joined late, restarted or dropped from a full
/// spool writes its own, shorter playlists): the archive keeps the longer copy, and every
/// node serves all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_recorded_less_leaves_the_longer_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = Archive::local(tmp.path().join("archive")).expect("archive");
    let settings = settings();
    let delay = |n: &str| settings.writer_delay(&NodeId::new(n).expect("valid"), &stream());
    let (mut whole, mut partial) = ("edge-a", "edge-b");
    if delay(whole) > delay(partial) {
        std::mem::swap(&mut whole, &mut partial);
    }
    let (a, mut a_rx) = recording_node(whole, &tmp.path().join("a"), &archive, settings);
    let (b, mut b_rx) = recording_node(partial, &tmp.path().join("b"), &archive, settings);
    for node in [&a, &b] {
        start_stream(node);
    }
    for seq in 0..8 {
        publish_bytes(&a, "720p", seq, big_segment(seq));
        if seq < 3 {
            publish_bytes(&b, "720p", seq, big_segment(seq));
        }
    }
    for node in [&a, &b] {
        end(node);
    }
    let longer = finished(&mut a_rx).await;
    let shorter = finished(&mut b_rx).await;
    assert!(longer.duration_secs > shorter.duration_secs);
    drained(&a).await;
    drained(&b).await;
    let reader = reading_node(&archive);
    plays_back(&reader, 0..8).await;
    let listed = body(send(&reader, get("/api/v1/recordings")).await).await;
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("json");
    assert_eq!(listed[0]["duration_secs"], longer.duration_secs, "{listed}");
}

/// A Garage and an archive on its bucket, with short time bounds (an outage fails a call
/// within seconds).
async fn garage() -> (Garage, Archive) {
    let garage = tokio::task::spawn_blocking(Garage::start)
        .await
        .expect("joins")
        .expect("garage starts");
    let archive = Archive::s3(S3Config {
        endpoint: Some(garage.endpoint()),
        region: testkit::s3::REGION.to_owned(),
        bucket: testkit::s3::BUCKET.to_owned(),
        credentials: S3Credentials::new(&garage.access_key_id, garage.secret_access_key())
            .expect("valid"),
        create: CreateMode::CheckFirst,
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(5),
            retry_for: Duration::from_secs(2),
            max_retries: 2,
        },
    })
    .expect("configures");
    (garage, archive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_is_spooled_and_caught_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut garage, archive) = garage().await;
    let settings = ArchiveSettings {
        writer_window: Duration::ZERO,
        ..settings()
    };
    let (node, mut rx) = recording_node("edge-a", tmp.path(), &archive, settings);
    start_stream(&node);
    publish_bytes(&node, "720p", 0, big_segment(0));
    node.flush_recordings();
    drained(&node).await;
    assert!(
        archive.head(&segment_key(0)).await.is_ok(),
        "archived while the store is up"
    );

    garage = tokio::task::spawn_blocking(move || {
        garage.kill();
        garage
    })
    .await
    .expect("killed");
    for seq in 1..6 {
        publish_bytes(&node, "720p", seq, big_segment(seq));
    }
    node.flush_recordings();
    let spooled = metric(&node, broadcast::SPOOL_BYTES).await;
    assert!(
        spooled >= 4.0 * SEGMENT as f64,
        "what the store could not take waits in the spool: {spooled}"
    );
    let on_disk = tmp.path().join("demo/000000000000feed/720p/3.ts");
    assert!(on_disk.exists(), "spooled on the node's disk meanwhile");
    end(&node);
    finished(&mut rx).await;

    let garage = tokio::task::spawn_blocking(move || {
        garage.restart().expect("garage restarts");
        garage
    })
    .await
    .expect("restarted");
    let began = Instant::now();
    drained(&node).await;
    eprintln!("caught up {:?} after the store came back", began.elapsed());
    assert_eq!(metric(&node, broadcast::SPOOL_BYTES).await, 0.0);
    assert_eq!(counter(&node, broadcast::SPOOL_DROPPED_BYTES).await, 0.0);
    for seq in 0..6 {
        assert_eq!(
            archive.head(&segment_key(seq)).await.expect("archived"),
            SEGMENT as u64,
            "segment {seq}"
        );
    }
    plays_back(&reading_node(&archive), 0..6).await;
    drop(garage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_past_the_spool_bound_drops_the_oldest_counted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut garage, archive) = garage().await;
    let bound = 4 * SEGMENT as u64 + 1024;
    let settings = ArchiveSettings {
        writer_window: Duration::ZERO,
        spool_bytes: bound,
        ..settings()
    };
    let (node, _rx) = recording_node("edge-a", tmp.path(), &archive, settings);
    garage = tokio::task::spawn_blocking(move || {
        garage.kill();
        garage
    })
    .await
    .expect("killed");
    start_stream(&node);
    for seq in 0..10 {
        publish_bytes(&node, "720p", seq, big_segment(seq));
        node.flush_recordings();
        let spooled = metric(&node, broadcast::SPOOL_BYTES).await;
        assert!(
            spooled <= bound as f64,
            "within the bound: {spooled} of {bound}"
        );
    }
    let dropped = counter(&node, broadcast::SPOOL_DROPPED_BYTES).await;
    assert!(
        dropped >= 6.0 * SEGMENT as f64,
        "ten segments, room for four: the rest dropped and counted ({dropped})"
    );
    // Dropped segments leave the disk too (their files are the spool); the newest stays.
    assert!(tmp.path().join("demo/000000000000feed/720p/9.ts").exists());

    let _garage = tokio::task::spawn_blocking(move || {
        garage.restart().expect("garage restarts");
        garage
    })
    .await
    .expect("restarted");
    drained(&node).await;
    let mut kept = 0;
    for seq in 0..10 {
        let local = tmp
            .path()
            .join(format!("demo/000000000000feed/720p/{seq}.ts"));
        assert!(
            !local.exists(),
            "{seq}: archived or dropped, not left behind"
        );
        if archive.head(&segment_key(seq)).await.is_ok() {
            kept += 1;
        }
    }
    assert!(
        archive.head(&segment_key(9)).await.is_ok(),
        "the newest is archived"
    );
    assert_eq!(
        kept as f64 * SEGMENT as f64 + dropped,
        10.0 * SEGMENT as f64,
        "every segment archived or counted as dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_stopped_node_had_not_archived_goes_at_its_next_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut garage, archive) = garage().await;
    let settings = ArchiveSettings {
        writer_window: Duration::ZERO,
        drain_for: Duration::from_millis(200),
        ..settings()
    };
    garage = tokio::task::spawn_blocking(move || {
        garage.kill();
        garage
    })
    .await
    .expect("killed");
    {
        let (node, mut rx) = recording_node("edge-a", tmp.path(), &archive, settings);
        start_stream(&node);
        for seq in 0..4 {
            publish_bytes(&node, "720p", seq, big_segment(seq));
        }
        end(&node);
        finished(&mut rx).await;
        // Stopping: the store is down, so what was spooled stays on disk.
        let closing = Arc::clone(&node);
        tokio::task::spawn_blocking(move || closing.close_recordings())
            .await
            .expect("closed");
    }
    assert!(tmp.path().join("demo/000000000000feed/720p/2.ts").exists());
    let _garage = tokio::task::spawn_blocking(move || {
        garage.restart().expect("garage restarts");
        garage
    })
    .await
    .expect("restarted");

    // The same node starts again on the same disk: it archives what it left.
    let (node, _rx) = recording_node("edge-a", tmp.path(), &archive, settings);
    node.flush_recordings();
    drained(&node).await;
    for seq in 0..4 {
        assert!(
            archive.head(&segment_key(seq)).await.is_ok(),
            "segment {seq}"
        );
        let local = tmp
            .path()
            .join(format!("demo/000000000000feed/720p/{seq}.ts"));
        assert!(!local.exists(), "{seq} leaves the spool once archived");
    }
    plays_back(&reading_node(&archive), 0..4).await;
}

//! The archive against both backends with the same test bodies: a local directory, and a
//! real Garage (testkit::s3; `scripts/setup.sh test` builds it) for S3.
//!
//! - `every_operation_*`: put, create-only put, get (capped), range, head, list, delete.
//! - `list_pages_*`: a listing over more objects than one page, in key order, each once.
//! - `racing_creates_*`: several tasks create one key at once.
//! - `s3_outage_is_unavailable_then_recovers`: Garage killed, calls fail as unavailable in
//!   bounded time; restarted, the same archive works again.
//! - `s3_wrong_secret_is_refused`, `hostile_keys_are_refused`, `garage_ignores_if_none_match`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use archive::{
    Archive, ArchiveError, ArchiveKey, ArchivePrefix, CreateMode, RecordingFile, S3Config,
    S3Credentials, Timeouts,
};
use bytes::Bytes;
use domain::paths::MediaFile;
use domain::{RenditionName, SessionId, StreamName};
use testkit::s3::Garage;

fn stream(name: &str) -> StreamName {
    StreamName::new(name).expect("valid")
}

fn rendition() -> RenditionName {
    RenditionName::new("720p").expect("valid")
}

fn segment(s: &StreamName, n: u64) -> ArchiveKey {
    ArchiveKey::recording(
        s,
        SessionId(7),
        RecordingFile::Media(rendition(), MediaFile::Ts(n)),
    )
    .expect("valid")
}

fn statement(s: &StreamName, n: u64) -> ArchiveKey {
    ArchiveKey::recording(
        s,
        SessionId(7),
        RecordingFile::Statement(rendition(), MediaFile::Ts(n)),
    )
    .expect("valid")
}

fn local() -> (tempfile::TempDir, Archive) {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = Archive::local(dir.path().join("archive")).expect("opens");
    (dir, archive)
}

/// A Garage (started on the blocking pool: it waits for the server) and an archive on its
/// bucket.
async fn garage(create: CreateMode, timeouts: Timeouts) -> (Garage, Archive) {
    let garage = tokio::task::spawn_blocking(Garage::start)
        .await
        .expect("joins")
        .expect("garage starts");
    let archive = s3_archive(&garage, garage.secret_access_key(), create, timeouts);
    (garage, archive)
}

fn s3_archive(garage: &Garage, secret: &str, create: CreateMode, timeouts: Timeouts) -> Archive {
    Archive::s3(S3Config {
        endpoint: Some(garage.endpoint()),
        region: testkit::s3::REGION.to_owned(),
        bucket: testkit::s3::BUCKET.to_owned(),
        credentials: S3Credentials::new(&garage.access_key_id, secret).expect("valid"),
        create,
        timeouts,
    })
    .expect("configures")
}

async fn every_operation(archive: &Archive) {
    let s = stream("demo");
    let key = segment(&s, 1);
    let bytes = Bytes::from(vec![7u8; 5000]);

    assert!(matches!(
        archive.get(&key, 1 << 20).await,
        Err(ArchiveError::NotFound { .. })
    ));
    assert!(matches!(
        archive.head(&key).await,
        Err(ArchiveError::NotFound { .. })
    ));

    archive.put(&key, bytes.clone()).await.expect("put");
    assert_eq!(archive.head(&key).await.expect("head"), 5000);
    assert_eq!(archive.get(&key, 5000).await.expect("get"), bytes);
    let e = archive.get(&key, 4999).await.expect_err("over the cap");
    assert!(
        matches!(e, ArchiveError::TooLarge { limit: 4999, .. }),
        "{e}"
    );
    assert!(e.to_string().contains(&key.to_string()), "{e}");

    // A range inside the object; one past its end is refused, not cut short.
    let mut patterned: Vec<u8> = (0..=255).collect();
    patterned.extend(0..=255);
    let other = segment(&s, 2);
    archive
        .put(&other, Bytes::from(patterned))
        .await
        .expect("put");
    let range = archive.get_range(&other, 250..260).await.expect("range");
    assert_eq!(&range[..], &[250, 251, 252, 253, 254, 255, 0, 1, 2, 3]);
    let e = archive
        .get_range(&other, 500..600)
        .await
        .expect_err("past the end");
    assert!(!e.is_retryable(), "{e}");

    // Replacing is allowed; creating over an object is not, and leaves it as it was.
    archive
        .put(&key, Bytes::from_static(b"second"))
        .await
        .expect("replace");
    let e = archive
        .put_if_absent(&key, Bytes::from_static(b"third"))
        .await
        .expect_err("taken");
    assert!(matches!(e, ArchiveError::AlreadyExists { .. }), "{e}");
    assert_eq!(archive.get(&key, 100).await.expect("get"), "second");
    let sig = statement(&s, 1);
    archive
        .put_if_absent(&sig, Bytes::from_static(b"signed"))
        .await
        .expect("created");
    assert_eq!(archive.get(&sig, 100).await.expect("get"), "signed");
    // What the uploader does: a HEAD finds the key free, then the create without a
    // second look (on a check-first store; the others still create conditionally).
    // (Another recording's key: the listing below is of recording 7's.)
    let after = ArchiveKey::recording(
        &s,
        SessionId(8),
        RecordingFile::Statement(rendition(), MediaFile::Ts(1)),
    )
    .expect("valid");
    assert!(matches!(
        archive.head(&after).await,
        Err(ArchiveError::NotFound { .. })
    ));
    archive
        .put_if_absent_after_head(&after, Bytes::from_static(b"after a head"))
        .await
        .expect("created");
    assert_eq!(archive.get(&after, 100).await.expect("get"), "after a head");
    let recording_8 = ArchivePrefix::Recording(s.clone(), SessionId(8));
    assert_eq!(
        archive.delete_prefix(&recording_8).await.expect("delete"),
        1
    );

    let page = archive
        .list(
            &ArchivePrefix::Recording(s.clone(), SessionId(7)),
            None,
            100,
        )
        .await
        .expect("list");
    let listed: Vec<(String, u64)> = page
        .objects
        .iter()
        .map(|o| (o.key.to_string(), o.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            (key.to_string(), 6),
            (sig.to_string(), 6),
            (other.to_string(), 512),
        ]
    );
    assert_eq!(page.next, None);

    let prefix = ArchivePrefix::Rendition(s.clone(), SessionId(7), rendition());
    assert_eq!(archive.delete_prefix(&prefix).await.expect("delete"), 3);
    assert!(matches!(
        archive.head(&key).await,
        Err(ArchiveError::NotFound { .. })
    ));
    assert_eq!(archive.delete_prefix(&prefix).await.expect("again"), 0);
    let page = archive
        .list(&ArchivePrefix::Recordings, None, 100)
        .await
        .expect("list");
    assert!(page.objects.is_empty(), "{page:?}");
}

async fn list_pages(archive: &Archive) {
    let s = stream("demo");
    let mut expected = BTreeSet::new();
    for n in 0..25 {
        for key in [segment(&s, n), statement(&s, n)] {
            archive
                .put(&key, Bytes::from(vec![1; n as usize]))
                .await
                .expect("put");
            expected.insert(key.to_string());
        }
    }
    // Neighbours whose names extend the stream's: not under its prefix.
    for other in ["demo-2", "demoa"] {
        archive
            .put(&segment(&stream(other), 1), Bytes::from_static(b"x"))
            .await
            .expect("put");
    }
    let prefix = ArchivePrefix::Stream(s.clone());
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = archive
            .list(&prefix, cursor.as_ref(), 7)
            .await
            .expect("list");
        pages += 1;
        assert!(page.objects.len() <= 7);
        seen.extend(page.objects.iter().map(|o| o.key.to_string()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 20, "the listing does not end");
    }
    assert_eq!(seen, expected.into_iter().collect::<Vec<_>>());
    assert!(pages >= 8, "{pages} pages for 50 objects of 7");
    let all = archive
        .list(&ArchivePrefix::Recordings, None, 1000)
        .await
        .expect("list");
    assert_eq!(all.objects.len(), 52);
}

/// Eight writers create one key at once, each with its own bytes.
async fn race(archive: &Archive) -> (Vec<Bytes>, Bytes) {
    let key = segment(&stream("race"), 1);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8u8 {
        let archive = archive.clone();
        let key = key.clone();
        tasks.spawn(async move {
            let bytes = Bytes::from(vec![writer; 64 * 1024]);
            (bytes.clone(), archive.put_if_absent(&key, bytes).await)
        });
    }
    let mut won = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (bytes, result) = joined.expect("joins");
        match result {
            Ok(()) => won.push(bytes),
            Err(ArchiveError::AlreadyExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let stored = archive.get(&key, 1 << 20).await.expect("get");
    (won, stored)
}

#[tokio::test]
async fn every_operation_local() {
    let (_dir, archive) = local();
    every_operation(&archive).await;
}

#[tokio::test]
async fn every_operation_s3() {
    let (_garage, archive) = garage(CreateMode::CheckFirst, Timeouts::default()).await;
    every_operation(&archive).await;
}

#[tokio::test]
async fn list_pages_local() {
    let (dir, archive) = local();
    // A writer's temporary file is not an object.
    let tmp = dir
        .path()
        .join("archive/recordings/demo/0000000000000007/720p");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    std::fs::write(tmp.join(".1.ts.0123.tmp"), b"partial").expect("write");
    list_pages(&archive).await;
}

#[tokio::test]
async fn list_pages_s3() {
    let (_garage, archive) = garage(CreateMode::CheckFirst, Timeouts::default()).await;
    list_pages(&archive).await;
}

#[tokio::test]
async fn racing_creates_local_leave_exactly_one_winner() {
    let (_dir, archive) = local();
    let (won, stored) = race(&archive).await;
    assert_eq!(won.len(), 1, "winners: {}", won.len());
    assert_eq!(stored, won[0]);
}

/// Garage ignores `If-None-Match` on writes, so on it [`CreateMode::CheckFirst`] may let
/// racing writers both write: what stays is whole and one that was told it wrote.
#[tokio::test]
async fn racing_creates_s3_leave_one_writers_bytes() {
    let (_garage, archive) = garage(CreateMode::CheckFirst, Timeouts::default()).await;
    let (won, stored) = race(&archive).await;
    assert!(!won.is_empty());
    assert!(won.contains(&stored), "the stored object is no winner's");
}

#[tokio::test]
async fn garage_ignores_if_none_match() {
    let (_garage, archive) = garage(CreateMode::Conditional, Timeouts::default()).await;
    // If this fails, Garage honours conditional writes now: use CreateMode::Conditional
    // with it, and racing creates on S3 can have exactly one winner.
    assert!(!archive.probe_conditional_create().await.expect("probes"));
    let page = archive
        .list(&ArchivePrefix::Probes, None, 10)
        .await
        .expect("list");
    assert!(page.objects.is_empty(), "the probe was left behind");
    let (_dir, local) = local();
    assert!(local.probe_conditional_create().await.expect("probes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_outage_is_unavailable_then_recovers() {
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(2),
        retry_for: Duration::from_secs(2),
        max_retries: 2,
    };
    let (mut garage, archive) = garage(CreateMode::CheckFirst, timeouts).await;
    let key = segment(&stream("outage"), 1);
    archive
        .put(&key, Bytes::from_static(b"before"))
        .await
        .expect("put");

    tokio::task::block_in_place(|| garage.kill());
    let started = Instant::now();
    let e = archive
        .put(
            &segment(&stream("outage"), 2),
            Bytes::from_static(b"during"),
        )
        .await
        .expect_err("store down");
    assert!(e.is_retryable(), "{e}");
    let e = archive.get(&key, 100).await.expect_err("store down");
    assert!(matches!(e, ArchiveError::Unavailable { .. }), "{e}");
    // Two calls, each bounded by retry_for plus a request's timeout.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    tokio::task::block_in_place(|| garage.restart()).expect("restarts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match archive.get(&key, 100).await {
            Ok(bytes) => {
                assert_eq!(bytes, "before");
                break;
            }
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("after the restart: {e}\n{}", garage.log()),
        }
    }
    archive
        .put(&segment(&stream("outage"), 2), Bytes::from_static(b"after"))
        .await
        .expect("put after the restart");
}

#[tokio::test]
async fn s3_wrong_secret_is_refused() {
    let (garage, _) = garage(CreateMode::CheckFirst, Timeouts::default()).await;
    let wrong = "wrong-secret-0123456789abcdef";
    let archive = s3_archive(&garage, wrong, CreateMode::CheckFirst, Timeouts::default());
    let e = archive
        .put(&segment(&stream("demo"), 1), Bytes::from_static(b"x"))
        .await
        .expect_err("refused");
    assert!(matches!(e, ArchiveError::Refused { .. }), "{e}");
    assert!(!e.is_retryable());
    for shown in [e.to_string(), format!("{e:?}"), format!("{archive:?}")] {
        assert!(!shown.contains(wrong), "{shown}");
        assert!(!shown.contains(&garage.access_key_id), "{shown}");
        assert!(!shown.contains(garage.secret_access_key()), "{shown}");
    }
}

#[test]
fn hostile_keys_are_refused() {
    for name in ["..", "../etc", "a/b", "/abs", "", ".hidden", "a\0b"] {
        assert!(StreamName::new(name).is_err(), "{name:?}");
        assert!(RenditionName::new(name).is_err(), "{name:?}");
    }
    for key in [
        "../recordings/demo/0000000000000007/master.m3u8",
        "recordings/demo/0000000000000007/../../../etc/passwd",
        "/etc/passwd",
        "recordings/demo/0000000000000007/720p/..",
        "recordings/demo/0000000000000007/720p/1.ts/../x",
        "recordings/%2e%2e/0000000000000007/master.m3u8",
    ] {
        assert!(ArchiveKey::parse(key).is_err(), "{key}");
    }
    let s = stream("demo");
    let part = RecordingFile::Media(rendition(), MediaFile::Part(1, 0));
    assert!(ArchiveKey::recording(&s, SessionId(1), part).is_err());
}

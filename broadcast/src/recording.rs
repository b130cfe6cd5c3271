//! Finished recordings on disk, the read side: what `/api/v1/recordings` lists, which files
//! `/vod/...` serves, the retention sweep and deleting one recording. The recorder
//! (`recorder`) writes them; this module only reads and deletes.
//!
//! ```text
//! {dir}/{stream}/{recording}/master.m3u8             the stream's last live master playlist
//! {dir}/{stream}/{recording}/{rendition}/index.m3u8  a VOD media playlist
//! {dir}/{stream}/{recording}/{rendition}/{seq}.ts    a segment, as served live
//! {dir}/{stream}/{recording}/{rendition}/{seq}.m4s   a CMAF segment, as served live
//! {dir}/{stream}/{recording}/{rendition}/init.mp4    a CMAF rendition's init segment
//! {dir}/{stream}/{recording}/recording.json          [`RecordingInfo`], written last
//! ```
//!
//! A recording is finished once its `master.m3u8` exists (it is written after every media
//! playlist); it is listed once its `recording.json` exists (written after the master).
//! Paths are only ever built from validated names ([`StreamName`], [`SessionId`],
//! [`RenditionName`]), never from request text, so no request can reach outside `{dir}`.
//! Everything here touches the disk, so the async entry points run it on the blocking pool.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use domain::paths::{PublicPath, THUMBNAIL_FILE, THUMBNAIL_STATEMENT_FILE};
use domain::{RenditionName, SessionId, StreamName};
use serde::{Deserialize, Serialize};

use crate::BroadcastError;

/// The master playlist of a recording; its presence marks the recording finished.
pub(crate) const MASTER_FILE: &str = "master.m3u8";
/// A rendition's VOD media playlist.
pub(crate) const MEDIA_FILE: &str = "index.m3u8";
/// A CMAF rendition's init segment.
pub(crate) const INIT_FILE: &str = "init.mp4";
/// What a media file's signed statement is named after it (`{seq}.m4s.sig`, `init.mp4.sig`).
pub(crate) const STATEMENT_SUFFIX: &str = ".sig";
/// The recording's [`RecordingInfo`].
pub(crate) const INFO_FILE: &str = "recording.json";
/// The journal of a recording in progress (see the recorder).
pub(crate) const JOURNAL_FILE: &str = "journal";
/// Present in a recording made while its stream was private: written before the next
/// segment once the node learns it, kept for good (a recording of a private stream stays
/// private, whatever the stream becomes later).
pub(crate) const PRIVATE_FILE: &str = "private";

/// At most this many recordings are listed (the newest).
pub(crate) const RECORDINGS_LISTED: usize = 200;
/// A `recording.json` larger than this is not ours; it is skipped unread.
const MAX_INFO_BYTES: u64 = 64 * 1024;
/// How long a listing is reused before the disk is read again. Nodes that share the disk
/// with the recording node learn of new recordings this late at worst; the recording node
/// itself drops the cached listing as soon as a recording is finished or deleted.
const LISTING_TTL: Duration = Duration::from_secs(1);

/// A finished recording, as `/api/v1/recordings` lists it and `recording.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// The stream it recorded.
    pub stream: StreamName,
    /// The id of the publish session that started it (16 lowercase hex digits in JSON and
    /// URLs).
    #[serde(with = "session_hex")]
    pub id: SessionId,
    /// When its first segment was recorded, unix seconds.
    pub started_at: u64,
    /// When the stream ended, unix seconds.
    pub ended_at: u64,
    /// Playing time in seconds: the sum of the segment durations (gaps included, as the
    /// playlist lists them) of its longest rendition.
    pub duration_secs: f64,
    /// The renditions recorded, in the master playlist's order (a rendition dropped before
    /// the end comes after those, by name).
    pub renditions: Vec<RenditionName>,
    /// Path of its master playlist (`/vod/{stream}/{id}/master.m3u8`).
    pub master_url: String,
    /// Made while its stream was private: served only with a playback token that opens
    /// recordings, and left out of the public listing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// Path of its thumbnail (`/vod/{stream}/{id}/thumbnail.jpg`, its statement beside it
    /// as `.sig`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

impl RecordingInfo {
    /// The `master_url` of a recording.
    pub(crate) fn master_url(stream: &StreamName, id: SessionId) -> String {
        PublicPath::VodMaster(stream.clone(), id).to_string()
    }
}

/// `SessionId` as its `Display` form, the spelling of URLs and directory names (its own
/// serde form is the number).
mod session_hex {
    use domain::SessionId;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &SessionId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Called on the recorder's thread with every recording once it is complete (files
/// written, `recording.json` last): for the catalog and webhooks. Keep it short; it
/// delays the next disk write.
pub type RecordingObserver = Arc<dyn Fn(RecordingInfo) + Send + Sync>;

/// The directory of one recording.
pub(crate) fn recording_dir(root: &Path, stream: &StreamName, id: SessionId) -> PathBuf {
    root.join(stream.as_str()).join(id.to_string())
}

/// The recordings a node serves: a directory, and a short-lived cache of its listing.
#[derive(Debug)]
pub(crate) struct Library {
    root: PathBuf,
    /// Bumped whenever a recording is finished or deleted on this node; a cached listing
    /// of an older generation is not reused.
    generation: Arc<AtomicU64>,
    /// The last listing. An async lock, held while the disk is read, so concurrent
    /// requests wait for one reading instead of each starting their own.
    cache: tokio::sync::Mutex<Option<Listing>>,
}

#[derive(Debug)]
struct Listing {
    at: Instant,
    generation: u64,
    recordings: Arc<[RecordingInfo]>,
}

/// One file of a finished recording, read.
#[derive(Debug)]
pub(crate) enum VodFile {
    /// No finished recording of that id on this node.
    NoRecording,
    /// The recording is there, the file is not (an unknown rendition, a gap).
    NoFile,
    /// The file's bytes.
    Found(Bytes),
}

impl Library {
    /// The recordings under `root`; `generation` is bumped by whoever finishes or deletes
    /// one on this node (the recorder).
    pub(crate) fn new(root: PathBuf, generation: Arc<AtomicU64>) -> Self {
        Library {
            root,
            generation,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Finished recordings, newest first, at most [`RECORDINGS_LISTED`].
    pub(crate) async fn list(&self) -> Result<Arc<[RecordingInfo]>, BroadcastError> {
        let mut cache = self.cache.lock().await;
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(listing) = cache.as_ref() {
            if listing.generation == generation && listing.at.elapsed() < LISTING_TTL {
                return Ok(Arc::clone(&listing.recordings));
            }
        }
        let root = self.root.clone();
        let recordings: Arc<[RecordingInfo]> =
            tokio::task::spawn_blocking(move || list(&root, RECORDINGS_LISTED))
                .await
                .map_err(BroadcastError::Task)?
                .into();
        *cache = Some(Listing {
            at: Instant::now(),
            generation,
            recordings: Arc::clone(&recordings),
        });
        Ok(recordings)
    }

    /// Whether the recording `id` of `stream` was made while the stream was private (its
    /// marker file is there); one look at the disk, off the executor.
    pub(crate) async fn is_private(&self, stream: &StreamName, id: SessionId) -> bool {
        let marker = recording_dir(&self.root, stream, id).join(PRIVATE_FILE);
        // An error (a disk that cannot answer) counts as private: never fail open.
        tokio::fs::try_exists(&marker).await.unwrap_or(true)
    }

    /// Reads the file `path` names (a `/vod/...` path), if its recording is finished.
    pub(crate) async fn read(&self, path: &PublicPath) -> Result<VodFile, BroadcastError> {
        let (stream, id, file) = match path {
            PublicPath::VodMaster(s, id) => (s, *id, PathBuf::from(MASTER_FILE)),
            PublicPath::VodMedia(s, id, r) => (s, *id, Path::new(r.as_str()).join(MEDIA_FILE)),
            PublicPath::VodSegment(s, id, r, seq) => {
                (s, *id, Path::new(r.as_str()).join(format!("{seq}.ts")))
            }
            PublicPath::VodFragment(s, id, r, seq) => {
                (s, *id, Path::new(r.as_str()).join(format!("{seq}.m4s")))
            }
            PublicPath::VodInit(s, id, r) => (s, *id, Path::new(r.as_str()).join(INIT_FILE)),
            // Named by the one parser of the layout: digits, `.m4s`, `.ts` or `init.mp4`.
            PublicPath::VodSignature(s, id, r, media) => (
                s,
                *id,
                Path::new(r.as_str()).join(format!("{media}{STATEMENT_SUFFIX}")),
            ),
            PublicPath::VodThumbnail(s, id) => (s, *id, PathBuf::from(THUMBNAIL_FILE)),
            PublicPath::VodThumbnailSignature(s, id) => {
                (s, *id, PathBuf::from(THUMBNAIL_STATEMENT_FILE))
            }
            _ => return Ok(VodFile::NoRecording),
        };
        let dir = recording_dir(&self.root, stream, id);
        // Finished recordings only: a live one's files are still being written.
        if !exists(&dir.join(MASTER_FILE)).await? {
            return Ok(VodFile::NoRecording);
        }
        match tokio::fs::read(dir.join(file)).await {
            Ok(bytes) => Ok(VodFile::Found(Bytes::from(bytes))),
            // Gone meanwhile (deleted, retention) is missing too.
            Err(e) if is_missing(&e) => Ok(VodFile::NoFile),
            Err(e) => Err(BroadcastError::Recordings(e)),
        }
    }

    /// Deletes one finished recording. A recording still being written is not touched.
    pub(crate) async fn forget(
        &self,
        stream: &StreamName,
        id: SessionId,
    ) -> Result<(), BroadcastError> {
        let dir = recording_dir(&self.root, stream, id);
        let removed = tokio::task::spawn_blocking(move || remove_finished(&dir))
            .await
            .map_err(BroadcastError::Task)?
            .map_err(BroadcastError::Recordings)?;
        if !removed {
            return Err(BroadcastError::UnknownRecording {
                stream: stream.clone(),
                id,
            });
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

async fn exists(path: &Path) -> Result<bool, BroadcastError> {
    match tokio::fs::metadata(path).await {
        Ok(m) => Ok(m.is_file()),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(BroadcastError::Recordings(e)),
    }
}

/// Not found, or a path through something that is not a directory: either way, absent.
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Removes a recording directory if it is finished; `Ok(false)` if there is none.
fn remove_finished(dir: &Path) -> io::Result<bool> {
    if !dir.join(MASTER_FILE).is_file() && !dir.join(INFO_FILE).is_file() {
        return Ok(false);
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every `{stream}/{recording}` directory under `root` whose names are valid, with them.
pub(crate) fn recording_dirs(root: &Path) -> Vec<(StreamName, SessionId, PathBuf)> {
    let mut out = Vec::new();
    let Ok(streams) = fs::read_dir(root) else {
        return out;
    };
    for stream_entry in streams.filter_map(Result::ok) {
        let Some(stream) = stream_entry
            .file_name()
            .to_str()
            .and_then(|s| StreamName::new(s).ok())
        else {
            continue;
        };
        let Ok(recordings) = fs::read_dir(stream_entry.path()) else {
            continue;
        };
        for entry in recordings.filter_map(Result::ok) {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<SessionId>().ok())
            else {
                continue;
            };
            out.push((stream.clone(), id, entry.path()));
        }
    }
    out
}

/// Reads a recording's `recording.json`, if it is there, ours and about this recording.
fn read_info(dir: &Path, stream: &StreamName, id: SessionId) -> Option<RecordingInfo> {
    let file = fs::File::open(dir.join(INFO_FILE)).ok()?;
    let mut text = Vec::new();
    file.take(MAX_INFO_BYTES + 1).read_to_end(&mut text).ok()?;
    if text.len() as u64 > MAX_INFO_BYTES {
        return None;
    }
    let info: RecordingInfo = serde_json::from_slice(&text).ok()?;
    (info.stream == *stream && info.id == id).then_some(info)
}

/// Finished recordings under `root`, newest first, at most `limit`.
pub(crate) fn list(root: &Path, limit: usize) -> Vec<RecordingInfo> {
    let mut all: Vec<RecordingInfo> = recording_dirs(root)
        .into_iter()
        .filter_map(|(stream, id, dir)| read_info(&dir, &stream, id))
        .collect();
    all.sort_by(|a, b| {
        b.ended_at
            .cmp(&a.ended_at)
            .then(b.started_at.cmp(&a.started_at))
            .then_with(|| a.stream.cmp(&b.stream))
            .then(a.id.cmp(&b.id))
    });
    all.truncate(limit);
    all
}

/// Deletes every finished recording that ended more than `retention` before `now` (unix
/// seconds); returns how many. A finished recording without `recording.json` (the node
/// stopped between the two writes) is aged by its master playlist's modification time.
/// Recordings in progress or waiting to carry on (they have a journal) are never touched;
/// a directory with neither a journal nor a master playlist (abandoned before either was
/// written) is aged by its own modification time. Stream directories left empty are
/// removed too.
pub(crate) fn sweep(root: &Path, retention: Duration, now: u64) -> usize {
    let mut removed = 0;
    let modified = |path: &Path| {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    for (stream, id, dir) in recording_dirs(root) {
        let ended_at = match read_info(&dir, &stream, id) {
            Some(info) => Some(info.ended_at),
            None if dir.join(MASTER_FILE).is_file() => modified(&dir.join(MASTER_FILE)),
            None if dir.join(JOURNAL_FILE).exists() => None,
            None => modified(&dir),
        };
        let Some(ended_at) = ended_at else { continue };
        if ended_at.saturating_add(retention.as_secs()) > now {
            continue;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                removed += 1;
                tracing::info!(%stream, recording = %id, "recording past retention deleted");
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "deleting a recording past retention failed");
            }
        }
        // Fails (and is meant to) while the stream has other recordings.
        let _ = fs::remove_dir(root.join(stream.as_str()));
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::time::WallClock;

    fn info(stream: &str, id: u64, ended_at: u64) -> RecordingInfo {
        let stream = StreamName::new(stream).expect("valid");
        let id = SessionId(id);
        RecordingInfo {
            master_url: RecordingInfo::master_url(&stream, id),
            stream,
            id,
            started_at: ended_at.saturating_sub(10),
            ended_at,
            duration_secs: 10.0,
            renditions: vec![RenditionName::new("src").expect("valid")],
            thumbnail_url: None,
            private: false,
        }
    }

    /// Writes a finished recording's master and info files.
    fn finished(root: &Path, info: &RecordingInfo) -> PathBuf {
        let dir = recording_dir(root, &info.stream, info.id);
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join(MASTER_FILE), "#EXTM3U\n").expect("master");
        fs::write(dir.join(INFO_FILE), serde_json::to_vec(info).expect("json")).expect("info");
        dir
    }

    #[test]
    fn info_json_is_the_documented_shape() {
        let json = serde_json::to_value(info("demo", 0x17a3_f0c2_b1e4_d5a6, 1_763_800_120))
            .expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "stream": "demo", "id": "17a3f0c2b1e4d5a6", "started_at": 1_763_800_110u64,
                "ended_at": 1_763_800_120u64, "duration_secs": 10.0, "renditions": ["src"],
                "master_url": "/vod/demo/17a3f0c2b1e4d5a6/master.m3u8",
            })
        );
        let back: RecordingInfo = serde_json::from_value(json).expect("parses");
        assert_eq!(back.id, SessionId(0x17a3_f0c2_b1e4_d5a6));
        assert!(serde_json::from_value::<RecordingInfo>(serde_json::json!({
            "stream": "demo", "id": "../../etc", "started_at": 0, "ended_at": 0,
            "duration_secs": 0.0, "renditions": [], "master_url": "",
        }))
        .is_err());
    }

    #[test]
    fn lists_newest_first_and_bounded_skipping_what_is_not_a_recording() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for (stream, id, ended) in [("a", 1, 100), ("b", 2, 300), ("a", 3, 200)] {
            finished(root, &info(stream, id, ended));
        }
        // In progress (no files yet), junk names, an info file about another recording.
        fs::create_dir_all(
            recording_dir(root, &StreamName::new("a").expect("valid"), SessionId(4)).join("src"),
        )
        .expect("dir");
        fs::create_dir_all(root.join("a").join("not-an-id")).expect("dir");
        fs::create_dir_all(root.join(".hidden").join("0000000000000005")).expect("dir");
        let liar = finished(root, &info("c", 6, 400));
        fs::write(
            liar.join(INFO_FILE),
            serde_json::to_vec(&info("c", 7, 400)).expect("json"),
        )
        .expect("info");
        fs::write(root.join("stray-file"), b"x").expect("file");

        let listed: Vec<(String, u64)> = list(root, 10)
            .into_iter()
            .map(|i| (i.stream.to_string(), i.id.0))
            .collect();
        assert_eq!(listed, [("b".into(), 2), ("a".into(), 3), ("a".into(), 1)]);
        assert_eq!(list(root, 2).len(), 2);
        assert!(list(&root.join("missing"), 10).is_empty());
    }

    #[test]
    fn sweep_deletes_only_finished_recordings_past_retention() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let old = finished(root, &info("a", 1, 1_000));
        let recent = finished(root, &info("a", 2, 5_000));
        let lone = finished(root, &info("b", 3, 1_000));
        let in_progress =
            recording_dir(root, &StreamName::new("c").expect("valid"), SessionId(4)).join("src");
        fs::create_dir_all(&in_progress).expect("dir");
        fs::write(in_progress.join("0.ts"), b"x").expect("segment");

        assert_eq!(sweep(root, Duration::from_secs(3_600), 5_000), 2);
        assert!(!old.exists());
        assert!(recent.exists());
        assert!(!lone.exists());
        assert!(
            !root.join("b").exists(),
            "an emptied stream directory goes too"
        );
        assert!(in_progress.join("0.ts").exists());
        assert_eq!(sweep(root, Duration::from_secs(3_600), 5_000), 0);
    }

    #[test]
    fn sweep_keeps_what_can_carry_on_and_ages_abandoned_directories_by_their_own_time() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = StreamName::new("a").expect("valid");
        let carrying_on = recording_dir(tmp.path(), &stream, SessionId(1));
        fs::create_dir_all(&carrying_on).expect("dir");
        fs::write(carrying_on.join(JOURNAL_FILE), "B 0\n").expect("journal");
        let abandoned = recording_dir(tmp.path(), &stream, SessionId(2));
        fs::create_dir_all(&abandoned).expect("dir");
        let retention = Duration::from_secs(3_600);
        assert_eq!(
            sweep(tmp.path(), retention, WallClock.unix_secs()),
            0,
            "too young"
        );
        assert_eq!(
            sweep(tmp.path(), retention, WallClock.unix_secs() + 7_200),
            1
        );
        assert!(carrying_on.exists());
        assert!(!abandoned.exists());
    }

    #[test]
    fn sweep_ages_a_finished_recording_without_info_by_its_master() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let dir = finished(root, &info("a", 1, 1_000));
        fs::remove_file(dir.join(INFO_FILE)).expect("remove");
        // Its master was written just now.
        assert_eq!(
            sweep(root, Duration::from_secs(3_600), WallClock.unix_secs()),
            0
        );
        assert_eq!(sweep(root, Duration::ZERO, WallClock.unix_secs() + 1), 1);
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn forgetting_deletes_a_finished_recording_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let library = Library::new(tmp.path().to_path_buf(), Arc::default());
        let a = StreamName::new("a").expect("valid");
        let dir = finished(tmp.path(), &info("a", 1, 100));
        assert_eq!(library.list().await.expect("lists").len(), 1);

        library.forget(&a, SessionId(1)).await.expect("forgets");
        assert!(!dir.exists());
        assert!(
            library.list().await.expect("lists").is_empty(),
            "the cached listing is dropped"
        );
        assert!(matches!(
            library.forget(&a, SessionId(1)).await,
            Err(BroadcastError::UnknownRecording { .. })
        ));

        let in_progress = recording_dir(tmp.path(), &a, SessionId(2)).join("src");
        fs::create_dir_all(&in_progress).expect("dir");
        assert!(matches!(
            library.forget(&a, SessionId(2)).await,
            Err(BroadcastError::UnknownRecording { .. })
        ));
        assert!(in_progress.exists());
    }

    #[tokio::test]
    async fn reads_files_of_finished_recordings_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let library = Library::new(tmp.path().to_path_buf(), Arc::default());
        let a = StreamName::new("a").expect("valid");
        let src = RenditionName::new("src").expect("valid");
        let dir = recording_dir(tmp.path(), &a, SessionId(1));
        fs::create_dir_all(dir.join("src")).expect("dir");
        fs::write(dir.join("src").join("0.ts"), b"segment").expect("segment");
        let segment = PublicPath::VodSegment(a.clone(), SessionId(1), src.clone(), 0);
        assert!(matches!(
            library.read(&segment).await.expect("reads"),
            VodFile::NoRecording
        ));
        fs::write(dir.join(MASTER_FILE), "#EXTM3U\n").expect("master");
        match library.read(&segment).await.expect("reads") {
            VodFile::Found(bytes) => assert_eq!(bytes, "segment"),
            other => panic!("a finished recording's segment is served, not {other:?}"),
        }
        for missing in [
            PublicPath::VodSegment(a.clone(), SessionId(1), src.clone(), 1),
            PublicPath::VodMedia(a.clone(), SessionId(1), src),
        ] {
            assert!(
                matches!(
                    library.read(&missing).await.expect("reads"),
                    VodFile::NoFile
                ),
                "{missing}"
            );
        }
        assert!(matches!(
            library
                .read(&PublicPath::VodMaster(a, SessionId(2)))
                .await
                .expect("reads"),
            VodFile::NoRecording
        ));
    }
}

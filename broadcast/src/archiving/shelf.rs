//! The read side: `/vod/...` and `/api/v1/recordings` through the archive, so that any
//! node serves any recording, whichever nodes recorded it.
//!
//! A recording is served once its `recording.json` is in the archive (the recorder's
//! uploader writes it last, after every file its playlists name). What is fetched is kept
//! in a cache bounded in bytes, oldest out first: media, init segments and statements
//! for as long as they fit (their bytes never change and are signed: a copy is as good as
//! the original), playlists and `recording.json` for [`DOCUMENT_TTL`] (a recording that
//! carries on after a restart rewrites them), an absence for [`ABSENT_TTL`]. The listing is the archive's `listing/`
//! folder, newest first, read at most once per [`LISTING_TTL`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use archive::{Archive, ArchiveError, ArchiveKey, ArchivePrefix, RecordingFile};
use bytes::Bytes;
use domain::paths::{MediaFile, PublicPath};
use domain::{SessionId, StreamName};
use futures::StreamExt;
use parking_lot::Mutex;

use super::upload::MAX_INFO_BYTES;
use crate::recording::{RecordingInfo, VodFile, RECORDINGS_LISTED};
use crate::BroadcastError;

/// How long a fetched playlist or `recording.json` is reused.
const DOCUMENT_TTL: Duration = Duration::from_secs(10);
/// How long the absence of a file is reused (a recording whose uploads are under way).
const ABSENT_TTL: Duration = Duration::from_secs(1);
/// How long a listing is reused.
const LISTING_TTL: Duration = Duration::from_secs(1);
/// The largest media file (segment or init segment) read.
const MAX_MEDIA_BYTES: u64 = 64 * 1024 * 1024;
/// The largest playlist read (a day of 2 s segments is about 2 MB).
const MAX_PLAYLIST_BYTES: u64 = 16 * 1024 * 1024;
/// The largest signed statement read.
const MAX_STATEMENT_BYTES: u64 = 64 * 1024;
/// How many listing entries are read at once.
const LISTING_READS: usize = 8;

/// The recordings in the archive, as this node serves them.
#[derive(Debug)]
pub(crate) struct Shelf {
    archive: Archive,
    cache: Mutex<Cache>,
    /// Bumped when this node deletes a recording (or the recorder finishes one), so that
    /// a cached listing is not reused.
    generation: Arc<AtomicU64>,
    listing: tokio::sync::Mutex<Option<Listing>>,
}

#[derive(Debug)]
struct Listing {
    at: Instant,
    generation: u64,
    recordings: Arc<[RecordingInfo]>,
}

impl Shelf {
    pub(crate) fn new(archive: Archive, cache_bytes: u64, generation: Arc<AtomicU64>) -> Self {
        Self {
            archive,
            cache: Mutex::new(Cache::new(cache_bytes)),
            generation,
            listing: tokio::sync::Mutex::new(None),
        }
    }

    /// Finished recordings in the archive, newest first, at most [`RECORDINGS_LISTED`].
    pub(crate) async fn list(&self) -> Result<Arc<[RecordingInfo]>, BroadcastError> {
        let mut cached = self.listing.lock().await;
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(listing) = cached.as_ref() {
            if listing.generation == generation && listing.at.elapsed() < LISTING_TTL {
                return Ok(Arc::clone(&listing.recordings));
            }
        }
        let page = self
            .archive
            .list(&ArchivePrefix::Listing, None, RECORDINGS_LISTED)
            .await
            .map_err(BroadcastError::Archive)?;
        let infos: Vec<Option<RecordingInfo>> = futures::stream::iter(page.objects)
            .map(|object| async move {
                let ArchiveKey::Listed { stream, recording } = &object.key else {
                    return None;
                };
                let bytes = self.document(&object.key, MAX_INFO_BYTES).await.ok()??;
                let info: RecordingInfo = serde_json::from_slice(&bytes).ok()?;
                (info.stream == *stream && info.id == *recording).then_some(info)
            })
            .buffered(LISTING_READS)
            .collect()
            .await;
        let recordings: Arc<[RecordingInfo]> = infos.into_iter().flatten().collect();
        *cached = Some(Listing {
            at: Instant::now(),
            generation,
            recordings: Arc::clone(&recordings),
        });
        Ok(recordings)
    }

    /// The info of a finished recording; `None` if the archive has no such recording.
    pub(crate) async fn info(
        &self,
        stream: &StreamName,
        id: SessionId,
    ) -> Result<Option<RecordingInfo>, BroadcastError> {
        let key = recording_key(stream, id, RecordingFile::Info)?;
        let Some(bytes) = self
            .document(&key, MAX_INFO_BYTES)
            .await
            .map_err(BroadcastError::Archive)?
        else {
            return Ok(None);
        };
        let info: Option<RecordingInfo> = serde_json::from_slice(&bytes).ok();
        Ok(info.filter(|i| i.stream == *stream && i.id == id))
    }

    /// Whether recording `id` of `stream` was made while the stream was private. An
    /// archive that cannot answer counts as private: never fail open.
    pub(crate) async fn is_private(&self, stream: &StreamName, id: SessionId) -> bool {
        match self.info(stream, id).await {
            Ok(Some(info)) => info.private,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The file a `/vod/...` path names, if its recording is finished.
    pub(crate) async fn read(&self, path: &PublicPath) -> Result<VodFile, BroadcastError> {
        let (stream, id, file, limit) = match path {
            PublicPath::VodMaster(s, id) => (s, *id, RecordingFile::Master, MAX_PLAYLIST_BYTES),
            PublicPath::VodMedia(s, id, r) => (
                s,
                *id,
                RecordingFile::MediaPlaylist(r.clone()),
                MAX_PLAYLIST_BYTES,
            ),
            PublicPath::VodSegment(s, id, r, n) => (
                s,
                *id,
                RecordingFile::Media(r.clone(), MediaFile::Ts(*n)),
                MAX_MEDIA_BYTES,
            ),
            PublicPath::VodFragment(s, id, r, n) => (
                s,
                *id,
                RecordingFile::Media(r.clone(), MediaFile::Fragment(*n)),
                MAX_MEDIA_BYTES,
            ),
            PublicPath::VodInit(s, id, r) => (
                s,
                *id,
                RecordingFile::Media(r.clone(), MediaFile::Init),
                MAX_MEDIA_BYTES,
            ),
            PublicPath::VodSignature(s, id, r, media) => (
                s,
                *id,
                RecordingFile::Statement(r.clone(), *media),
                MAX_STATEMENT_BYTES,
            ),
            PublicPath::VodThumbnail(s, id) => (
                s,
                *id,
                RecordingFile::Thumbnail,
                domain::MAX_THUMBNAIL_BYTES as u64,
            ),
            PublicPath::VodThumbnailSignature(s, id) => (
                s,
                *id,
                RecordingFile::ThumbnailStatement,
                MAX_STATEMENT_BYTES,
            ),
            _ => return Ok(VodFile::NoRecording),
        };
        if self.info(stream, id).await?.is_none() {
            return Ok(VodFile::NoRecording);
        }
        let immutable = matches!(
            file,
            RecordingFile::Media(..)
                | RecordingFile::Statement(..)
                | RecordingFile::Thumbnail
                | RecordingFile::ThumbnailStatement
        );
        let key = recording_key(stream, id, file)?;
        let found = if immutable {
            self.immutable(&key, limit).await
        } else {
            self.document(&key, limit).await
        };
        match found.map_err(BroadcastError::Archive)? {
            Some(bytes) => Ok(VodFile::Found(bytes)),
            None => Ok(VodFile::NoFile),
        }
    }

    /// A media file or statement of a recording that may still be in progress (no
    /// `recording.json` yet: the time-shift window's segments), if the archive holds it.
    pub(crate) async fn in_progress(
        &self,
        stream: &StreamName,
        id: SessionId,
        file: RecordingFile,
    ) -> Result<Option<Bytes>, BroadcastError> {
        let limit = match file {
            RecordingFile::Media(..) => MAX_MEDIA_BYTES,
            RecordingFile::Statement(..) => MAX_STATEMENT_BYTES,
            _ => return Ok(None),
        };
        let key = recording_key(stream, id, file)?;
        self.immutable(&key, limit)
            .await
            .map_err(BroadcastError::Archive)
    }

    /// Deletes a finished recording from the archive (its listing entry first).
    pub(crate) async fn forget(
        &self,
        stream: &StreamName,
        id: SessionId,
    ) -> Result<(), BroadcastError> {
        if self.info(stream, id).await?.is_none() {
            return Err(BroadcastError::UnknownRecording {
                stream: stream.clone(),
                id,
            });
        }
        for prefix in [
            ArchivePrefix::Listed(stream.clone(), id),
            ArchivePrefix::Recording(stream.clone(), id),
        ] {
            self.archive
                .delete_prefix(&prefix)
                .await
                .map_err(BroadcastError::Archive)?;
        }
        self.cache.lock().forget_recording(stream, id);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// A media file or statement: from the cache, else the archive (then cached for as
    /// long as it fits).
    async fn immutable(&self, key: &ArchiveKey, limit: u64) -> Result<Option<Bytes>, ArchiveError> {
        self.cached(key, limit, None).await
    }

    /// A playlist or `recording.json`: reused for [`DOCUMENT_TTL`].
    async fn document(&self, key: &ArchiveKey, limit: u64) -> Result<Option<Bytes>, ArchiveError> {
        self.cached(key, limit, Some(DOCUMENT_TTL)).await
    }

    /// An object from the cache, else from the archive, then kept for `keep` (`None`: until
    /// evicted); its absence for [`ABSENT_TTL`] (a recording whose uploads are under way).
    async fn cached(
        &self,
        key: &ArchiveKey,
        limit: u64,
        keep: Option<Duration>,
    ) -> Result<Option<Bytes>, ArchiveError> {
        if let Some(hit) = self.cache.lock().get(key) {
            return Ok(hit);
        }
        let fetched = match self.archive.get(key, limit).await {
            Ok(bytes) => Some(bytes),
            Err(ArchiveError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let keep = if fetched.is_some() {
            keep
        } else {
            Some(ABSENT_TTL)
        };
        let expires = keep.map(|ttl| Instant::now() + ttl);
        self.cache.lock().put(key.clone(), fetched.clone(), expires);
        Ok(fetched)
    }
}

fn recording_key(
    stream: &StreamName,
    id: SessionId,
    file: RecordingFile,
) -> Result<ArchiveKey, BroadcastError> {
    // Refused only for a part, which no /vod/ path names.
    ArchiveKey::recording(stream, id, file).map_err(BroadcastError::Archive)
}

/// Fetched objects (or their absence), bounded in bytes, the oldest evicted first.
#[derive(Debug)]
struct Cache {
    limit: u64,
    bytes: u64,
    entries: HashMap<ArchiveKey, (Option<Bytes>, Option<Instant>)>,
    order: VecDeque<ArchiveKey>,
}

impl Cache {
    fn new(limit: u64) -> Self {
        Self {
            limit,
            bytes: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// A live entry: `Some(None)` is a cached absence.
    fn get(&mut self, key: &ArchiveKey) -> Option<Option<Bytes>> {
        let (bytes, expires) = self.entries.get(key)?;
        if expires.is_some_and(|at| at <= Instant::now()) {
            self.remove(key);
            return None;
        }
        Some(bytes.clone())
    }

    fn put(&mut self, key: ArchiveKey, bytes: Option<Bytes>, expires: Option<Instant>) {
        self.remove(&key);
        let size = entry_size(&bytes);
        if size > self.limit {
            return;
        }
        while self.bytes + size > self.limit {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((old, _)) = self.entries.remove(&oldest) {
                self.bytes -= entry_size(&old);
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.entries.insert(key, (bytes, expires));
    }

    fn remove(&mut self, key: &ArchiveKey) {
        if let Some((old, _)) = self.entries.remove(key) {
            self.bytes -= entry_size(&old);
            self.order.retain(|k| k != key);
        }
    }

    fn forget_recording(&mut self, stream: &StreamName, id: SessionId) {
        let prefix = ArchivePrefix::Recording(stream.clone(), id);
        let gone: Vec<ArchiveKey> = self
            .entries
            .keys()
            .filter(|k| prefix.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }
}

/// What an entry counts against the bound: its bytes, and a little for the entry itself.
fn entry_size(bytes: &Option<Bytes>) -> u64 {
    const OVERHEAD: u64 = 256;
    bytes.as_ref().map_or(0, |b| b.len() as u64) + OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::RenditionName;

    fn key(n: u64) -> ArchiveKey {
        let s = StreamName::new("demo").expect("valid");
        let r = RenditionName::new("src").expect("valid");
        ArchiveKey::recording(
            &s,
            SessionId(1),
            RecordingFile::Media(r, MediaFile::Fragment(n)),
        )
        .expect("valid")
    }

    #[test]
    fn the_cache_stays_within_its_bound_oldest_out_first() {
        let mut cache = Cache::new(3 * (1000 + 256));
        for n in 0..5 {
            cache.put(key(n), Some(Bytes::from(vec![0; 1000])), None);
            assert!(cache.bytes <= cache.limit);
        }
        assert!(cache.get(&key(0)).is_none() && cache.get(&key(1)).is_none());
        assert!(cache.get(&key(4)).is_some());
        cache.put(key(9), Some(Bytes::from(vec![0; 10_000])), None);
        assert!(
            cache.get(&key(9)).is_none(),
            "larger than the whole cache: not kept"
        );
        cache.put(key(7), None, Some(Instant::now()));
        assert!(cache.get(&key(7)).is_none(), "expired");
        cache.forget_recording(&StreamName::new("demo").expect("valid"), SessionId(1));
        assert_eq!(cache.bytes, 0);
        assert!(cache.order.is_empty());
    }
}

//! The uploader: one task per recording node that takes what the spool holds, oldest due
//! first, and writes it to the archive, up to [`IN_FLIGHT`] files at once (each costs a
//! round trip or three to the store: one at a time, a node recording many streams fell
//! behind for good); and, once a minute, deletes the recordings past their retention from
//! the archive.
//!
//! A store that is down costs nothing but this task's time: each item that failed goes
//! back to the front of the spool and the task waits (1 s, doubling to 30 s) before the
//! next try, while the recorder keeps offering (the spool drops its oldest past its
//! bound). Reading the spooled file and deleting it happen through `tokio::fs` (the
//! blocking pool).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use archive::{Archive, ArchiveError, ArchiveKey, ArchivePrefix, ListCursor, MAX_PAGE};
use bytes::Bytes;
use domain::time::WallClock;
use domain::{SessionId, StreamName};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::queue::{Item, Write};
use super::spool::Spool;
use crate::recording::RecordingInfo;

/// The most files written to the archive at once.
const IN_FLIGHT: usize = 8;
/// The first pause after the store failed; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often recordings past their retention are looked for in the archive.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The most listing pages one sweep reads.
const SWEEP_PAGES: usize = 100;
/// The largest `recording.json` read.
pub(crate) const MAX_INFO_BYTES: u64 = 64 * 1024;
/// The largest archived playlist read to compare it with a node's own.
const MAX_PLAYLIST_BYTES: u64 = 8 * 1024 * 1024;

/// How long a recording is kept, read at every sweep (`None`: for ever).
pub(crate) type RetentionFn = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// What the node tells the uploader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Run,
    /// Archive what is waiting now, without writer delays, then stop.
    Drain,
    Stop,
}

/// Runs until told to stop (or, draining, until the spool is empty).
pub(crate) async fn run(
    archive: Archive,
    spool: Arc<Spool>,
    retention: RetentionFn,
    generation: Arc<AtomicU64>,
    mut mode: watch::Receiver<Mode>,
) {
    let mut backoff = FIRST_BACKOFF;
    // After a failure, nothing is tried before this, however many files come meanwhile.
    let mut paused_until: Option<Instant> = None;
    let mut next_sweep = Instant::now();
    let mut ended: HashMap<(StreamName, SessionId), u64> = HashMap::new();
    let mut uploads = FuturesUnordered::new();
    loop {
        let now_mode = *mode.borrow_and_update();
        match now_mode {
            Mode::Stop => return,
            Mode::Drain => {
                spool.hurry();
                if spool.is_empty() {
                    return;
                }
            }
            Mode::Run => {}
        }
        if now_mode == Mode::Run && Instant::now() >= next_sweep {
            if let Some(keep) = retention() {
                if sweep(&archive, keep, &mut ended).await > 0 {
                    generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        paused_until = paused_until.filter(|until| Instant::now() < *until);
        // Start what is due, up to IN_FLIGHT at once.
        let mut next_due = paused_until;
        while paused_until.is_none() {
            match spool.take_due(IN_FLIGHT) {
                Ok(item) => {
                    let (archive, spool) = (archive.clone(), Arc::clone(&spool));
                    uploads.push(async move {
                        let result = archive_one(&archive, &spool, &item).await;
                        (item, result)
                    });
                }
                Err(at) => {
                    next_due = at;
                    break;
                }
            }
        }
        let wait_until = match (next_due, now_mode) {
            (Some(at), Mode::Run) => at.min(next_sweep),
            (Some(at), _) => at,
            (None, Mode::Run) => next_sweep,
            (None, _) => Instant::now() + FIRST_BACKOFF,
        };
        tokio::select! {
            Some((item, result)) = uploads.next(), if !uploads.is_empty() => match result {
                Ok(listed) => {
                    if listed {
                        // This node's listing shows it at once.
                        generation.fetch_add(1, Ordering::AcqRel);
                    }
                    spool.done(&item);
                    backoff = FIRST_BACKOFF;
                }
                Err(e) if e.is_retryable() => {
                    spool.retry(item);
                    // The other uploads in flight fail alike: one pause, one warning.
                    if paused_until.is_none() {
                        tracing::warn!(error = %e, "the archive is unavailable; recordings wait in the spool");
                        paused_until = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "archiving a recorded file failed; it is given up");
                    spool.done(&item);
                }
            },
            () = spool.wake.notified(), if paused_until.is_none() => {}
            () = tokio::time::sleep_until(wait_until.into()) => {}
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes one item: a create-only file unless the archive has it (a `HEAD` first, so a
/// node that is not its stream's first writer sends no bytes), a replacing one always.
/// `recording.json` also goes to the listing. The local file goes afterwards if it is a
/// segment or a statement. Whether a recording was listed.
async fn archive_one(archive: &Archive, spool: &Spool, item: &Item) -> Result<bool, ArchiveError> {
    if item.write == Write::Once {
        match archive.head(&item.key).await {
            Ok(_) => {
                spool.metrics.skipped.inc_by(item.size);
                forget_local(item).await;
                return Ok(false);
            }
            Err(ArchiveError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let bytes = match tokio::fs::read(&item.path).await {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            // Deleted meanwhile (retention, an operator): nothing left to archive.
            tracing::debug!(path = %item.path.display(), error = %e, "a spooled file is gone");
            return Ok(false);
        }
    };
    let size = bytes.len() as u64;
    let written = match item.write {
        Write::Once => match archive
            .put_if_absent_after_head(&item.key, bytes.clone())
            .await
        {
            Ok(()) => true,
            Err(ArchiveError::AlreadyExists { .. }) => false,
            Err(e) => return Err(e),
        },
        Write::Replace => {
            if supersedes(archive, &item.key, &bytes).await? {
                archive.put(&item.key, bytes.clone()).await?;
                true
            } else {
                false
            }
        }
    };
    if !written {
        spool.metrics.skipped.inc_by(size);
        forget_local(item).await;
        return Ok(false);
    }
    spool.metrics.uploaded.inc_by(size);
    // A recording.json written: the recording is listed (its files are all there).
    if let ArchiveKey::Recording {
        stream,
        recording,
        file: archive::RecordingFile::Info,
    } = &item.key
    {
        let listed = ArchiveKey::Listed {
            stream: stream.clone(),
            recording: *recording,
        };
        archive.put(&listed, bytes).await?;
        spool.metrics.uploaded.inc_by(size);
        forget_local(item).await;
        return Ok(true);
    }
    forget_local(item).await;
    Ok(false)
}

/// Whether `ours`, a replacing file of a recording, may replace what the archive holds
/// under `key`: every recording node writes its own playlists and `recording.json`, and
/// one that recorded less (it joined late, it restarted, its spool dropped) must not leave
/// its shorter copy over a longer one. Nothing there, or nothing [`extent`] can read:
/// ours goes.
async fn supersedes(
    archive: &Archive,
    key: &ArchiveKey,
    ours: &[u8],
) -> Result<bool, ArchiveError> {
    let ArchiveKey::Recording { file, .. } = key else {
        return Ok(true);
    };
    let Some(ours) = extent(file, ours) else {
        return Ok(true);
    };
    let limit = match file {
        archive::RecordingFile::Info => MAX_INFO_BYTES,
        _ => MAX_PLAYLIST_BYTES,
    };
    match archive.get(key, limit).await {
        Ok(theirs) => Ok(extent(file, &theirs).is_none_or(|theirs| ours >= theirs)),
        Err(e) if e.is_retryable() => Err(e),
        Err(_) => Ok(true),
    }
}

/// How much of a recording a replacing file says, comparable between two copies of it:
/// a media playlist's entries, of which published, and whether it ended; a master
/// playlist's renditions; `recording.json`'s duration (ms) and renditions. `None` for any
/// other file, or bytes that do not read as one.
pub(super) fn extent(file: &archive::RecordingFile, bytes: &[u8]) -> Option<(u64, u64, bool)> {
    use archive::RecordingFile;
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    match file {
        RecordingFile::MediaPlaylist(_) => {
            let p = domain::hls::read_media(bytes).ok()?;
            let published = p.segments.iter().filter(|s| !s.gap).count();
            Some((count(p.segments.len()), count(published), p.ended))
        }
        RecordingFile::Master => {
            let variants = domain::hls::read_master(bytes).ok()?;
            Some((count(variants.len()), 0, false))
        }
        RecordingFile::Info => {
            let info: RecordingInfo = serde_json::from_slice(bytes).ok()?;
            let ms = (info.duration_secs.max(0.0) * 1000.0).round() as u64;
            Some((ms, count(info.renditions.len()), true))
        }
        RecordingFile::Media(..)
        | RecordingFile::Statement(..)
        | RecordingFile::Thumbnail
        | RecordingFile::ThumbnailStatement => None,
    }
}

async fn forget_local(item: &Item) {
    if item.remove_after {
        let _ = tokio::fs::remove_file(&item.path).await;
    }
}

/// Deletes from the archive every listed recording that ended more than `keep` ago (its
/// listing entry first, so it is no longer listed, then its files). `ended` remembers the
/// end of recordings read before, so a sweep reads only new listing entries. Idempotent:
/// several nodes sweeping the same archive delete each recording once between them.
pub(crate) async fn sweep(
    archive: &Archive,
    keep: Duration,
    ended: &mut HashMap<(StreamName, SessionId), u64>,
) -> usize {
    let now = WallClock.unix_secs();
    let mut cursor: Option<ListCursor> = None;
    let mut seen = HashMap::new();
    let mut deleted = 0;
    for _ in 0..SWEEP_PAGES {
        let page = match archive
            .list(&ArchivePrefix::Listing, cursor.as_ref(), MAX_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "listing the archive for retention failed");
                return deleted;
            }
        };
        for object in page.objects {
            let ArchiveKey::Listed { stream, recording } = &object.key else {
                continue;
            };
            let id = (stream.clone(), *recording);
            let ended_at = match ended.get(&id) {
                Some(at) => *at,
                None => match archive.get(&object.key, MAX_INFO_BYTES).await {
                    Ok(bytes) => match serde_json::from_slice::<RecordingInfo>(&bytes) {
                        Ok(info) => info.ended_at,
                        // Not ours to judge: kept.
                        Err(_) => continue,
                    },
                    Err(_) => continue,
                },
            };
            seen.insert(id.clone(), ended_at);
            if ended_at.saturating_add(keep.as_secs()) > now {
                continue;
            }
            let gone = async {
                archive
                    .delete_prefix(&ArchivePrefix::Listed(stream.clone(), *recording))
                    .await?;
                archive
                    .delete_prefix(&ArchivePrefix::Recording(stream.clone(), *recording))
                    .await
            };
            match gone.await {
                Ok(_) => {
                    deleted += 1;
                    seen.remove(&id);
                    tracing::info!(%stream, %recording, "archived recording past retention deleted");
                }
                Err(e) => {
                    tracing::warn!(%stream, %recording, error = %e, "deleting an archived recording past retention failed");
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    *ended = seen;
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use archive::RecordingFile;
    use domain::hls::{Entry, MediaWindow};
    use domain::RenditionName;

    fn playlist(entries: &[(u64, bool)], ended: bool) -> Vec<u8> {
        let mut w = MediaWindow::unbounded(Duration::from_secs(2));
        for &(sequence, gap) in entries {
            w.push(Entry {
                sequence,
                duration: Duration::from_secs(2),
                discontinuity_sequence: 0,
                discontinuity: false,
                gap,
            })
            .expect("in order");
        }
        if ended {
            w.end();
        }
        w.render_cmaf().into_bytes()
    }

    /// A node that recorded less never leaves its copy over a longer one; the same copy
    /// (every node's, when all recorded everything) goes again.
    #[test]
    fn a_copy_replaces_only_what_says_no_more_than_it() {
        let media = RecordingFile::MediaPlaylist(RenditionName::new("src").expect("valid"));
        let extent = |entries: &[(u64, bool)], ended| extent(&media, &playlist(entries, ended));
        let whole = extent(&[(0, false), (1, false), (2, false)], true);
        let shorter = extent(&[(0, false), (1, false)], true);
        let holed = extent(&[(0, false), (1, true), (2, false)], true);
        let open = extent(&[(0, false), (1, false), (2, false)], false);
        assert!(whole > shorter && whole > holed && whole > open);
        assert!(holed > shorter, "more entries listed");
        assert_eq!(whole, extent(&[(0, false), (1, false), (2, false)], true));
        assert_eq!(extent(&[], false), Some((0, 0, false)));
        assert_eq!(super::extent(&media, b"not a playlist"), None);

        let info = |secs: f64, renditions: &[&str]| {
            let json = serde_json::json!({
                "stream": "s", "id": SessionId(1).to_string(), "started_at": 1,
                "ended_at": 2, "duration_secs": secs, "renditions": renditions,
                "master_url": "/vod/s/1/master.m3u8",
            });
            super::extent(&RecordingFile::Info, json.to_string().as_bytes())
        };
        assert!(info(40.0, &["src"]) > info(16.0, &["src", "360p"]));
        assert!(info(40.0, &["src", "360p"]) > info(40.0, &["src"]));
        let master = |n: usize| {
            let mut text = String::from("#EXTM3U\n");
            for i in 0..n {
                text.push_str(&format!(
                    "#EXT-X-STREAM-INF:BANDWIDTH=1000\nr{i}/index.m3u8\n"
                ));
            }
            super::extent(&RecordingFile::Master, text.as_bytes())
        };
        assert!(master(3) > master(2));
        let segment = RecordingFile::Media(
            RenditionName::new("src").expect("valid"),
            domain::paths::MediaFile::Fragment(1),
        );
        assert_eq!(super::extent(&segment, b"bytes"), None);
    }
}

//! Recordings: what a node publishes also goes to disk, so an ended stream stays available
//! as VOD after its live window is gone.
//!
//! ```text
//! {dir}/{stream}/{recording}/{rendition}/{seq}.ts   every published segment, as served
//!                                                   (`{seq}.m4s` for a CMAF rendition)
//! {dir}/{stream}/{recording}/{rendition}/init.mp4   a CMAF rendition's init segment
//! {dir}/{stream}/{recording}/{rendition}/{file}.sig each file's signed statement, as the
//!                                                   node verified it, written before it
//! {dir}/{stream}/{recording}/{rendition}/index.m3u8 written when the stream ends (VOD)
//! {dir}/{stream}/{recording}/master.m3u8            likewise, after the media playlists
//! {dir}/{stream}/{recording}/recording.json         likewise, last (`RecordingInfo`)
//!
//! {dir}/{stream}/{recording}/journal                    while it can be carried on
//! {dir}/{stream}/{recording}/live-master.m3u8           the stream's latest master
//! ```
//!
//! A recording runs from a stream's start to its end, across publisher reconnects (which
//! stay discontinuities); `{recording}` is the id of the session that started it. Gaps stay
//! gaps. Files are written on the recorder's own thread, each to a temporary name, synced,
//! renamed, and the directory synced, so nothing ever reads a half-written file and nothing
//! acknowledged is lost to a crash; the node hands segments over through a bounded queue
//! and never waits for the disk (a full queue loses that segment from the recording, with a
//! warning, and never from the live window).
//!
//! Surviving restarts: every playlist entry is appended to the recording's [`journal`]
//! (synced) as its segment is written. When the node stops gracefully, every recording in
//! progress is finished as it stands (playable, listed) but keeps its journal. When the
//! recorder starts, it reads every journal it finds: a stream that is published again
//! within [`RESUME_WITHIN`] carries on in the same recording (the segments it missed listed
//! as gaps, up to [`MAX_HOLE`]; no `EXT-X-DISCONTINUITY`: the session's media carries on in
//! its discontinuity sequence, which a verifying player counts); one that is not is finished
//! as it stands (from its journal and latest master, if it was killed before it could
//! be) and its journal removed.
//!
//! The same thread tells the observer about every finished recording, and deletes
//! recordings past their retention (at start, then every [`SWEEP_EVERY`]), so deleting
//! never races with writing. Reading recordings back is `recording`'s job.
//!
//! With an archive (`crate::archiving`), every file written is also offered to the node's
//! spool once it is on disk (segments, init segments and statements as written, then the
//! playlists and `recording.json` when the recording is finished), and the uploader takes
//! it from there; the recorder never waits for the archive.
//!
//! Files: this one holds a recording in progress (open, append, finish) and what the
//! thread is told ([`Record`]); `thread` the recorder thread and its handle; `resume`
//! carrying recordings on after a restart; `journal` the append-only journal; `disk`
//! atomic writes; `thumbnail` a recording's thumbnail (`thumbnail.jpg` and its `.sig`). None imports one that imports it.

use domain::time::WallClock;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::hls::{Entry, MediaWindow};
use domain::{RenditionName, Segment, SessionId, StreamName};
use parking_lot::RwLock;

use self::disk::write_atomically;
use self::journal::{Journal, JOURNAL_FILE};

use crate::archiving::{Spool, Write};
use crate::dvr::Dvr;
use crate::recording::{
    self, recording_dir, RecordingInfo, RecordingObserver, INFO_FILE, MASTER_FILE, MEDIA_FILE,
};
use crate::NodeConfig;
use archive::{ArchiveKey, RecordingFile};
use domain::paths::MediaFile;

mod disk;
mod journal;
mod resume;
mod thread;
mod thumbnail;

pub(crate) use self::thread::Recorder;

/// How long after the recorder starts a stream found in a journal may come back and carry
/// on in the same recording; after that the recording is finished as it stands.
pub(crate) const RESUME_WITHIN: Duration = Duration::from_secs(300);

/// The most missed segments listed as gaps when a recording carries on; a longer hole is
/// not listed (its media times jump ahead).
pub(crate) const MAX_HOLE: u64 = 600;

/// The latest master playlist of a recording in progress.
const LIVE_MASTER_FILE: &str = "live-master.m3u8";

/// How often recordings past their retention are looked for.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What the node tells the recorder.
#[derive(Debug)]
pub(crate) enum Record {
    /// A published segment, with the stream's master playlist at that moment.
    Segment {
        segment: Segment,
        /// The envelope of its signed statement, recorded beside it (`{seq}.m4s.sig`).
        signed: Option<Bytes>,
        master: Option<Bytes>,
        /// The rendition's init segment, if it is CMAF.
        init: Option<Bytes>,
        /// The envelope of the rendition description that carries it (`init.mp4.sig`).
        init_signed: Option<Bytes>,
    },
    /// A sequence number listed as a gap.
    Gap {
        stream: StreamName,
        rendition: RenditionName,
        entry: Entry,
    },
    /// The stream ended: finish its recording with this master playlist.
    Ended { stream: StreamName, master: String },
    /// The stream is private (or public again) from now on: its recording in progress, and
    /// any later one while it stays private, is marked private before its next segment.
    Privacy { stream: StreamName, private: bool },
    /// The stream is recorded (or not) from now on, as its latest signed session start
    /// said. Off: its recording in progress is finished as it stands, at this segment
    /// boundary (playable, listed; its journal kept), and nothing more of the stream is
    /// written. On again: the next segment carries that recording on if it is of the same
    /// session (a recording's id is its session's, which viewers check its statements
    /// against), without listing the segments it missed, else starts a new one.
    Recording { stream: StreamName, record: bool },
    /// A verified thumbnail of `session` (its JPEG and signed statement): the recording of
    /// that session keeps the first one (`thumbnail`).
    Thumbnail {
        stream: StreamName,
        session: SessionId,
        jpeg: Bytes,
        signed: Bytes,
    },
    /// Answered once everything queued before it is on disk.
    Flush(SyncSender<()>),
}

/// Settings the node may change after the recorder started (builder order does not
/// matter), and the counter that tells cached listings a recording came or went.
#[derive(Default)]
pub(crate) struct RecorderHooks {
    /// Told about every finished recording.
    pub(crate) observer: RwLock<Option<RecordingObserver>>,
    /// Finished recordings older than this are deleted; `None` keeps them.
    pub(crate) retention: RwLock<Option<Duration>>,
    /// Bumped when a recording is finished or deleted (see `recording::Library`).
    pub(crate) generation: Arc<AtomicU64>,
    /// Where recorded files are offered for the archive, if the node has one (set before
    /// the recorder starts: it offers what a previous run left, too).
    pub(crate) spool: RwLock<Option<Arc<Spool>>>,
    /// The time-shift windows every listed entry goes to, if the node keeps them (set
    /// before the recorder starts).
    pub(crate) dvr: RwLock<Option<Arc<Dvr>>>,
}

impl std::fmt::Debug for RecorderHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHooks")
            .field("observer", &self.observer.read().is_some())
            .field("retention", &*self.retention.read())
            .finish_non_exhaustive()
    }
}

/// One stream's recording in progress.
struct Recording {
    stream: StreamName,
    id: SessionId,
    dir: PathBuf,
    /// Unix seconds when its first segment reached the recorder.
    started_at: u64,
    renditions: HashMap<RenditionName, MediaWindow>,
    /// The first write error, reported once.
    failed: bool,
    /// Where entries are journaled (`None` if it could not be opened: then the recording
    /// cannot carry on after a crash, and says so once).
    journal: Option<Journal>,
    /// The stream's latest master playlist, as last written to `live-master.m3u8`.
    master: Option<Bytes>,
    /// Renditions recovered from the journal whose first new entry is still to come.
    resume_pending: std::collections::HashSet<RenditionName>,
    /// Whether the segments missed before those entries are listed as gaps (after a
    /// restart: they were lost) or not (after recording was switched off: nothing was
    /// lost, the operator chose not to keep them; a discontinuity alone marks the cut).
    list_missed: bool,
    /// Where written files are offered for the archive, if anywhere.
    spool: Option<Arc<Spool>>,
    /// The time-shift windows, if the node keeps them.
    dvr: Option<Arc<Dvr>>,
    /// The renditions written as CMAF (`init.mp4` beside their segments).
    cmaf: std::collections::HashSet<RenditionName>,
}

/// Tells listings and the observer about a finished recording.
fn announce(hooks: &RecorderHooks, info: RecordingInfo) {
    hooks.generation.fetch_add(1, Ordering::AcqRel);
    let observer = hooks.observer.read().clone();
    if let Some(observer) = observer {
        let stream = info.stream.clone();
        // A panicking observer must not take recording down with it.
        if catch_unwind(AssertUnwindSafe(|| observer(info))).is_err() {
            tracing::error!(%stream, "the recording observer panicked");
        }
    }
}

impl Recording {
    /// A new recording of `stream`, named after `session`.
    fn open(root: &Path, stream: &StreamName, session: SessionId, hooks: &RecorderHooks) -> Self {
        let dir = recording_dir(root, stream, session);
        let started_at = WallClock.unix_secs();
        let journal = match Journal::open(&dir, started_at) {
            Ok(journal) => Some(journal),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot journal a recording; it will not survive a crash of this node");
                None
            }
        };
        Recording {
            stream: stream.clone(),
            id: session,
            dir,
            started_at,
            renditions: HashMap::new(),
            failed: false,
            journal,
            master: None,
            resume_pending: Default::default(),
            list_missed: true,
            spool: hooks.spool.read().clone(),
            dvr: hooks.dvr.read().clone(),
            cmaf: Default::default(),
        }
    }

    /// Carries on a recording that was finished when its stream's recording was switched
    /// off (it stays listed as it was until it is finished again): the segments not
    /// recorded meanwhile are not listed, each rendition's next entry follows the last
    /// (its media times jump ahead).
    fn carry_on_after_pause(&mut self) {
        tracing::info!(stream = %self.stream, recording = %self.id, "recording switched on again; carrying on the session's recording");
        self.resume_pending = self.renditions.keys().cloned().collect();
        self.list_missed = false;
    }

    /// Lets go of a recording finished while paused that will not carry on (its stream
    /// ended, or went on in another session): its journal and live master go, as they do
    /// when a recording is finished for good.
    fn let_go(mut self) {
        self.leave_time_shift();
        self.journal = None;
        for file in [JOURNAL_FILE, LIVE_MASTER_FILE] {
            let _ = fs::remove_file(self.dir.join(file));
        }
    }

    /// Offers the file just written at `path` for the archive.
    fn offer(&self, path: &Path, file: RecordingFile, write: Write, remove_after: bool) {
        let Some(spool) = &self.spool else { return };
        match ArchiveKey::recording(&self.stream, self.id, file) {
            Ok(key) => spool.offer(&self.stream, key, path, write, remove_after),
            Err(e) => tracing::error!(error = %e, "a recorded file has no archive key"),
        }
    }

    /// Marks the recording private (once: the marker is kept for good).
    fn mark_private(&mut self) {
        let path = self.dir.join(recording::PRIVATE_FILE);
        if !path.exists() {
            let written = fs::create_dir_all(&self.dir).and_then(|()| write_atomically(&path, b""));
            self.note(written, &path);
        }
    }

    /// Keeps `live-master.m3u8` equal to the stream's latest master.
    fn update_master(&mut self, master: Option<Bytes>) {
        let Some(master) = master else { return };
        if self.master.as_ref() == Some(&master) {
            return;
        }
        let path = self.dir.join(LIVE_MASTER_FILE);
        let written = write_atomically(&path, &master);
        self.note(written, &path);
        self.master = Some(master);
    }

    /// The stream's time-shift window goes with this recording in progress (it ended,
    /// paused, or lets go).
    fn leave_time_shift(&self) {
        if let Some(dvr) = &self.dvr {
            dvr.finished(&self.stream, self.id);
        }
    }

    /// Writes a segment's file and its entry; a segment already recorded (the window an
    /// ingest sends a node that rejoins) is skipped.
    /// A CMAF segment (`init` given) is written as `{seq}.m4s`, after its rendition's
    /// `init.mp4` (written once: the recording's playlist names one init segment). Each
    /// file's signed statement (`signed`, `init_signed`), if the node has it, is written
    /// first beside it as `{file}.sig`: whoever finds a file finds its statement.
    fn write_segment(
        &mut self,
        segment: &Segment,
        (signed, init): (Option<&Bytes>, Option<&Bytes>),
        init_signed: Option<&Bytes>,
        config: &NodeConfig,
    ) {
        let meta = &segment.meta;
        let recorded = self
            .renditions
            .get(&meta.rendition)
            .and_then(MediaWindow::last_sequence)
            .is_some_and(|last| meta.sequence <= last);
        if recorded {
            return;
        }
        let rendition_dir = self.dir.join(meta.rendition.as_str());
        let media = match init {
            Some(init) => {
                self.cmaf.insert(meta.rendition.clone());
                let path = rendition_dir.join(recording::INIT_FILE);
                if !path.exists() {
                    let file = (&meta.rendition, MediaFile::Init);
                    self.write_statement(&path, init_signed, file, false);
                    let written = write_atomically(&path, init);
                    if written.is_ok() {
                        let file = RecordingFile::Media(file.0.clone(), file.1);
                        self.offer(&path, file, Write::Once, false);
                    }
                    self.note(written, &path);
                }
                MediaFile::Fragment(meta.sequence)
            }
            None => MediaFile::Ts(meta.sequence),
        };
        let path = rendition_dir.join(media.to_string());
        self.write_statement(&path, signed, (&meta.rendition, media), true);
        let written = write_atomically(&path, &segment.bytes);
        if written.is_ok() {
            let file = RecordingFile::Media(meta.rendition.clone(), media);
            self.offer(&path, file, Write::Once, true);
        }
        // A segment the disk did not take (full, failing) is listed as a gap: the
        // recording says what it lost instead of listing a file that is not there.
        let mut entry = Entry::published(meta);
        entry.gap = written.is_err();
        self.note(written, &path);
        self.add_entry(meta.rendition.clone(), entry, config);
    }

    /// Writes `envelope`, the signed statement of the file at `path` (`file` of its
    /// rendition), as `{path}.sig`, and offers it for the archive.
    fn write_statement(
        &mut self,
        path: &Path,
        envelope: Option<&Bytes>,
        (rendition, file): (&RenditionName, MediaFile),
        remove_after: bool,
    ) {
        let Some(envelope) = envelope else { return };
        let mut name = path.as_os_str().to_owned();
        name.push(recording::STATEMENT_SUFFIX);
        let sidecar = PathBuf::from(name);
        let written = write_atomically(&sidecar, envelope);
        if written.is_ok() {
            let statement = RecordingFile::Statement(rendition.clone(), file);
            self.offer(&sidecar, statement, Write::Once, remove_after);
        }
        self.note(written, &sidecar);
    }

    /// Lists an entry (journaled first). After a restart, the missed sequence numbers
    /// before a rendition's first new entry are listed as gaps (up to [`MAX_HOLE`]), in the
    /// new entry's discontinuity sequence (`domain::hls` tags only where that moves on).
    fn add_entry(&mut self, rendition: RenditionName, entry: Entry, config: &NodeConfig) {
        let window = self
            .renditions
            .entry(rendition.clone())
            .or_insert_with(|| MediaWindow::unbounded(config.segment_target));
        if window
            .last_sequence()
            .is_some_and(|last| entry.sequence <= last)
        {
            return; // already listed (out of order cannot happen otherwise)
        }
        let mut entries = Vec::new();
        if self.resume_pending.remove(&rendition) {
            let next = window.last_sequence().map_or(entry.sequence, |l| l + 1);
            let hole = entry.sequence.saturating_sub(next);
            if hole > 0 && hole <= MAX_HOLE && self.list_missed {
                entries.extend((next..entry.sequence).map(|sequence| Entry {
                    sequence,
                    duration: config.segment_target,
                    discontinuity_sequence: entry.discontinuity_sequence,
                    discontinuity: false,
                    gap: true,
                }));
            }
        }
        entries.push(entry);
        for entry in entries {
            if let Some(journal) = &mut self.journal {
                if let Err(e) = journal.append(&rendition, &entry) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "journaling a recording failed; it will not survive a crash of this node");
                    self.journal = None;
                }
            }
            if let Some(dvr) = &self.dvr {
                // Listed once on disk: the time-shift window serves the file from here.
                let format = (self.cmaf.contains(&rendition), config.segment_target);
                dvr.listed((&self.stream, self.id), &rendition, &entry, format);
                if let Some(master) = &self.master {
                    dvr.master((&self.stream, self.id), master);
                }
            }
            let _ = window.push(entry);
        }
    }

    fn note(&mut self, result: io::Result<()>, path: &Path) {
        if let Err(e) = result {
            if !self.failed {
                tracing::warn!(path = %path.display(), error = %e, "writing a recording failed; it will be incomplete");
            }
            self.failed = true;
        }
    }

    /// Writes the media playlists, the master playlist (`master`, else the latest one the
    /// node sent) and `recording.json`, in that order (a reader that sees the master finds
    /// every playlist it lists). With `keep_journal`, the recording can still carry on
    /// after a restart; without, its journal and live master go. The info, if the
    /// recording is playable.
    fn finish(&mut self, master: Option<Bytes>, keep_journal: bool) -> Option<RecordingInfo> {
        self.leave_time_shift();
        let Some(master) = master.or_else(|| self.master.clone()) else {
            tracing::warn!(stream = %self.stream, dir = %self.dir.display(), "a recording without a master playlist cannot be finished; its journal stays");
            return None;
        };
        let master = String::from_utf8_lossy(&master).into_owned();
        let playlists: Vec<(RenditionName, PathBuf, String)> = self
            .renditions
            .iter()
            .map(|(r, w)| {
                let dir = self.dir.join(r.as_str());
                // A CMAF rendition: its init segment is there (see `write_segment`).
                let text = if dir.join(recording::INIT_FILE).exists() {
                    w.render_cmaf_vod()
                } else {
                    w.render_vod()
                };
                (r.clone(), dir.join(MEDIA_FILE), text)
            })
            .collect();
        for (rendition, path, text) in playlists {
            let written = write_atomically(&path, text.as_bytes());
            if written.is_ok() {
                let file = RecordingFile::MediaPlaylist(rendition);
                self.offer(&path, file, Write::Replace, false);
            }
            self.note(written, &path);
        }
        let path = self.dir.join(MASTER_FILE);
        if let Err(e) = write_atomically(&path, master.as_bytes()) {
            tracing::warn!(path = %path.display(), error = %e, "writing a recording's master playlist failed; it is not playable");
            return None;
        }
        self.offer(&path, RecordingFile::Master, Write::Replace, false);
        let info = self.info(&master);
        let path = self.dir.join(INFO_FILE);
        let json = match serde_json::to_vec_pretty(&info) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "encoding recording.json failed");
                return None;
            }
        };
        if let Err(e) = write_atomically(&path, &json) {
            tracing::warn!(path = %path.display(), error = %e, "writing recording.json failed; the recording is playable but not listed");
            return None;
        }
        self.offer(&path, RecordingFile::Info, Write::Replace, false);
        if !keep_journal {
            self.journal = None;
            for file in [JOURNAL_FILE, LIVE_MASTER_FILE] {
                let _ = fs::remove_file(self.dir.join(file));
            }
        }
        if self.failed {
            tracing::warn!(stream = %self.stream, dir = %self.dir.display(), "recording ready, with parts missing");
        } else {
            tracing::info!(stream = %self.stream, dir = %self.dir.display(), "recording ready");
        }
        Some(info)
    }

    fn info(&self, master: &str) -> RecordingInfo {
        // The master's variant order, then any rendition it no longer lists (dropped
        // before the end), by name.
        let mut renditions: Vec<RenditionName> = master_renditions(master)
            .filter(|r| self.renditions.contains_key(r))
            .collect();
        let mut rest: Vec<RenditionName> = self
            .renditions
            .keys()
            .filter(|r| !renditions.contains(r))
            .cloned()
            .collect();
        rest.sort();
        renditions.extend(rest);
        let duration = self
            .renditions
            .values()
            .map(|w| w.entries().map(|e| e.duration).sum::<Duration>())
            .max()
            .unwrap_or_default();
        RecordingInfo {
            master_url: RecordingInfo::master_url(&self.stream, self.id),
            stream: self.stream.clone(),
            id: self.id,
            started_at: self.started_at,
            ended_at: WallClock.unix_secs(),
            duration_secs: duration.as_secs_f64(),
            renditions,
            private: self.dir.join(recording::PRIVATE_FILE).exists(),
            thumbnail_url: self.thumbnail_url(),
        }
    }
}

/// The renditions a master playlist lists, from its variant URIs (`{rendition}/index.m3u8`).
fn master_renditions(master: &str) -> impl Iterator<Item = RenditionName> + '_ {
    master
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|uri| uri.strip_suffix("/index.m3u8"))
        .filter_map(|name| RenditionName::new(name).ok())
}

#[cfg(test)]
mod tests;

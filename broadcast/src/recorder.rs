//! Recordings: what a node publishes also goes to disk, so an ended stream stays available
//! as VOD after its live window is gone.
//!
//! ```text
//! {dir}/{stream}/{recording}/{rendition}/{seq}.ts   every published segment, as served
//! {dir}/{stream}/{recording}/{rendition}/index.m3u8 written when the stream ends (VOD)
//! {dir}/{stream}/{recording}/master.m3u8            likewise, after the media playlists
//! {dir}/{stream}/{recording}/recording.json         likewise, last (`RecordingInfo`)
//! ```
//!
//! A recording runs from a stream's start to its end, across publisher reconnects (which
//! stay discontinuities); `{recording}` is the id of the session that started it. Gaps stay
//! gaps. Files are written on the recorder's own thread, each to a temporary name and then
//! renamed, so nothing ever reads a half-written file; the node hands segments over through
//! a bounded queue and never waits for the disk (a full queue loses that segment from the
//! recording, with a warning, and never from the live window).
//!
//! The same thread tells the observer about every finished recording, and deletes
//! recordings past their retention (at start, then every [`SWEEP_EVERY`]), so deleting
//! never races with writing. Reading recordings back is `recording`'s job.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use domain::playlist::{Entry, MediaWindow};
use domain::{RenditionName, Segment, SessionId, StreamName};
use parking_lot::RwLock;

use crate::recording::{
    self, recording_dir, unix_now, RecordingInfo, RecordingObserver, INFO_FILE, MASTER_FILE,
    MEDIA_FILE,
};
use crate::NodeConfig;

/// Segments queued for the disk before new ones are dropped from the recording.
const QUEUE: usize = 256;

/// How often recordings past their retention are looked for.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What the node tells the recorder.
#[derive(Debug)]
pub(crate) enum Record {
    /// A published segment.
    Segment(Segment),
    /// A sequence number listed as a gap.
    Gap {
        stream: StreamName,
        rendition: RenditionName,
        entry: Entry,
    },
    /// The stream ended: finish its recording with this master playlist.
    Ended { stream: StreamName, master: String },
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
}

impl std::fmt::Debug for RecorderHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHooks")
            .field("observer", &self.observer.read().is_some())
            .field("retention", &*self.retention.read())
            .finish_non_exhaustive()
    }
}

/// The handle the node keeps.
#[derive(Debug)]
pub(crate) struct Recorder {
    tx: Option<SyncSender<Record>>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the recorder thread writing under `dir`.
    pub(crate) fn start(
        dir: PathBuf,
        config: NodeConfig,
        hooks: Arc<RecorderHooks>,
    ) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(&dir, config, &hooks, rx))?;
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `record` without waiting.
    pub(crate) fn send(&self, record: Record) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("the recorder is behind; a segment is missing from a recording");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Writes what is queued and stops the thread.
    pub(crate) fn close(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the recorder thread panicked");
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close();
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
}

fn run(root: &Path, config: NodeConfig, hooks: &RecorderHooks, rx: Receiver<Record>) {
    let mut active: HashMap<StreamName, Recording> = HashMap::new();
    let open = |stream: &StreamName, session: SessionId| Recording {
        stream: stream.clone(),
        id: session,
        dir: recording_dir(root, stream, session),
        started_at: unix_now(),
        renditions: HashMap::new(),
        failed: false,
    };
    // Sweep once at start: recordings may have aged while the node was down.
    let mut next_sweep = Instant::now();
    loop {
        if Instant::now() >= next_sweep {
            let retention = *hooks.retention.read();
            if let Some(retention) = retention {
                if recording::sweep(root, retention, unix_now()) > 0 {
                    hooks.generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        let record = match rx.recv_timeout(next_sweep.saturating_duration_since(Instant::now())) {
            Ok(record) => record,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        match record {
            Record::Segment(segment) => {
                let meta = &segment.meta;
                let rec = active
                    .entry(meta.stream.clone())
                    .or_insert_with(|| open(&meta.stream, meta.session));
                let path = rec
                    .dir
                    .join(meta.rendition.as_str())
                    .join(format!("{}.ts", meta.sequence));
                let written = write_atomically(&path, &segment.bytes);
                rec.note(written, &path);
                let window = rec
                    .renditions
                    .entry(meta.rendition.clone())
                    .or_insert_with(|| MediaWindow::unbounded(config.segment_target));
                // Out of order cannot happen (the node publishes in order); ignore if so.
                let _ = window.push(Entry::published(meta));
            }
            Record::Gap {
                stream,
                rendition,
                entry,
            } => {
                if let Some(rec) = active.get_mut(&stream) {
                    let window = rec
                        .renditions
                        .entry(rendition)
                        .or_insert_with(|| MediaWindow::unbounded(config.segment_target));
                    let _ = window.push(entry);
                }
            }
            Record::Ended { stream, master } => {
                let Some(rec) = active.remove(&stream) else {
                    continue;
                };
                if let Some(info) = rec.finish(&master) {
                    hooks.generation.fetch_add(1, Ordering::AcqRel);
                    let observer = hooks.observer.read().clone();
                    if let Some(observer) = observer {
                        // A panicking observer must not take recording down with it.
                        if catch_unwind(AssertUnwindSafe(|| observer(info))).is_err() {
                            tracing::error!(%stream, "the recording observer panicked");
                        }
                    }
                }
            }
        }
    }
}

impl Recording {
    fn note(&mut self, result: io::Result<()>, path: &Path) {
        if let Err(e) = result {
            if !self.failed {
                tracing::warn!(path = %path.display(), error = %e, "writing a recording failed; it will be incomplete");
            }
            self.failed = true;
        }
    }

    /// Writes the media playlists, the master playlist and `recording.json`, in that order
    /// (a reader that sees the master finds every playlist it lists). The info, if the
    /// recording is playable.
    fn finish(mut self, master: &str) -> Option<RecordingInfo> {
        let playlists: Vec<(PathBuf, String)> = self
            .renditions
            .iter()
            .map(|(r, w)| (self.dir.join(r.as_str()).join(MEDIA_FILE), w.render_vod()))
            .collect();
        for (path, text) in playlists {
            let written = write_atomically(&path, text.as_bytes());
            self.note(written, &path);
        }
        let path = self.dir.join(MASTER_FILE);
        if let Err(e) = write_atomically(&path, master.as_bytes()) {
            tracing::warn!(path = %path.display(), error = %e, "writing a recording's master playlist failed; it is not playable");
            return None;
        }
        let info = self.info(master);
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
            ended_at: unix_now(),
            duration_secs: duration.as_secs_f64(),
            renditions,
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

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use domain::SegmentMeta;

    use super::*;

    fn segment(seq: u64) -> Segment {
        Segment {
            meta: SegmentMeta {
                stream: StreamName::new("a").expect("valid"),
                rendition: RenditionName::new("src").expect("valid"),
                session: SessionId(7),
                sequence: seq,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: Duration::from_secs(2),
                start_pts_90k: 0,
            },
            bytes: Bytes::from(vec![0x47; 188 * (seq as usize + 1)]),
        }
    }

    #[test]
    fn a_stream_becomes_a_vod_recording_when_it_ends() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hooks = Arc::new(RecorderHooks::default());
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let observer: RecordingObserver = {
            let seen = Arc::clone(&seen);
            Arc::new(move |info| seen.lock().push(info))
        };
        *hooks.observer.write() = Some(observer);
        let before = unix_now();
        let mut recorder = Recorder::start(
            tmp.path().to_path_buf(),
            NodeConfig::default(),
            Arc::clone(&hooks),
        )
        .expect("starts");
        for seq in 0..3 {
            recorder.send(Record::Segment(segment(seq)));
        }
        recorder.send(Record::Gap {
            stream: StreamName::new("a").expect("valid"),
            rendition: RenditionName::new("src").expect("valid"),
            entry: Entry {
                sequence: 3,
                duration: Duration::from_secs(2),
                discontinuity_sequence: 0,
                discontinuity: false,
                gap: true,
            },
        });
        recorder.send(Record::Segment(segment(4)));
        recorder.send(Record::Ended {
            stream: StreamName::new("a").expect("valid"),
            master: "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n".into(),
        });
        recorder.close();
        let dir = tmp.path().join("a").join(SessionId(7).to_string());
        let text = fs::read_to_string(dir.join("src/index.m3u8")).expect("playlist");
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
        assert_eq!(p.segments.len(), 5);
        assert!(p.end_list);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
        assert!(text.contains("#EXT-X-GAP"));
        assert_eq!(
            fs::read(dir.join("src/2.ts")).expect("segment"),
            segment(2).bytes
        );
        assert!(!dir.join("src/3.ts").exists());
        assert!(dir.join("master.m3u8").exists());
        let leftovers = fs::read_dir(dir.join("src"))
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
            .count();
        assert_eq!(leftovers, 0);

        let info: RecordingInfo =
            serde_json::from_slice(&fs::read(dir.join(INFO_FILE)).expect("info")).expect("json");
        assert_eq!(info.stream.as_str(), "a");
        assert_eq!(info.id, SessionId(7));
        assert_eq!(info.renditions, [RenditionName::new("src").expect("valid")]);
        assert_eq!(
            info.duration_secs, 10.0,
            "five entries of 2 s, the gap included"
        );
        assert_eq!(info.master_url, "/vod/a/0000000000000007/master.m3u8");
        assert!(before <= info.started_at && info.started_at <= info.ended_at);
        assert_eq!(*seen.lock(), [info], "the observer heard of it once");
        assert_eq!(hooks.generation.load(Ordering::Acquire), 1);
    }

    #[test]
    fn renditions_follow_the_master_then_the_dropped_ones() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n";
        let names: Vec<String> = master_renditions(master).map(String::from).collect();
        assert_eq!(names, ["720p", "src"]);
        let rec = Recording {
            stream: StreamName::new("a").expect("valid"),
            id: SessionId(1),
            dir: PathBuf::new(),
            started_at: 0,
            renditions: ["src", "720p", "360p", "240p"]
                .into_iter()
                .map(|r| {
                    (
                        RenditionName::new(r).expect("valid"),
                        MediaWindow::unbounded(Duration::from_secs(2)),
                    )
                })
                .collect(),
            failed: false,
        };
        let names: Vec<String> = rec
            .info(master)
            .renditions
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(names, ["720p", "src", "240p", "360p"]);
    }

    #[test]
    fn recordings_past_retention_are_deleted_when_the_recorder_starts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stream = StreamName::new("a").expect("valid");
        let write = |id: u64, ended_at: u64| {
            let dir = recording_dir(tmp.path(), &stream, SessionId(id));
            fs::create_dir_all(&dir).expect("dir");
            fs::write(dir.join(MASTER_FILE), "#EXTM3U\n").expect("master");
            let info = RecordingInfo {
                master_url: RecordingInfo::master_url(&stream, SessionId(id)),
                stream: stream.clone(),
                id: SessionId(id),
                started_at: ended_at,
                ended_at,
                duration_secs: 0.0,
                renditions: Vec::new(),
            };
            fs::write(
                dir.join(INFO_FILE),
                serde_json::to_vec(&info).expect("json"),
            )
            .expect("info");
            dir
        };
        let old = write(1, unix_now() - 7_200);
        let recent = write(2, unix_now());
        let hooks = Arc::new(RecorderHooks::default());
        *hooks.retention.write() = Some(Duration::from_secs(3_600));
        let mut recorder = Recorder::start(
            tmp.path().to_path_buf(),
            NodeConfig::default(),
            Arc::clone(&hooks),
        )
        .expect("starts");
        recorder.close();
        assert!(!old.exists());
        assert!(recent.exists());
        assert_eq!(hooks.generation.load(Ordering::Acquire), 1);
    }

    #[test]
    fn a_panicking_observer_does_not_stop_the_recorder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hooks = Arc::new(RecorderHooks::default());
        let observer: RecordingObserver = Arc::new(|_| panic!("observer failed"));
        *hooks.observer.write() = Some(observer);
        let mut recorder = Recorder::start(
            tmp.path().to_path_buf(),
            NodeConfig::default(),
            Arc::clone(&hooks),
        )
        .expect("starts");
        let mut second = segment(0);
        second.meta.stream = StreamName::new("b").expect("valid");
        for record in [
            Record::Segment(segment(0)),
            Record::Ended {
                stream: StreamName::new("a").expect("valid"),
                master: String::new(),
            },
            Record::Segment(second),
            Record::Ended {
                stream: StreamName::new("b").expect("valid"),
                master: String::new(),
            },
        ] {
            recorder.send(record);
        }
        recorder.close();
        assert_eq!(recording::list(tmp.path(), 10).len(), 2);
    }
}

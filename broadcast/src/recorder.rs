//! Recordings: what a node publishes also goes to disk, so an ended stream stays available
//! as VOD after its live window is gone.
//!
//! ```text
//! {dir}/{stream}/{recording}/{rendition}/{seq}.ts   every published segment, as served
//! {dir}/{stream}/{recording}/{rendition}/index.m3u8 written when the stream ends (VOD)
//! {dir}/{stream}/{recording}/master.m3u8            likewise
//! ```
//!
//! A recording runs from a stream's start to its end, across publisher reconnects (which
//! stay discontinuities); `{recording}` is the id of the session that started it. Gaps stay
//! gaps. Files are written on the recorder's own thread, each to a temporary name and then
//! renamed, so nothing ever reads a half-written file; the node hands segments over through
//! a bounded queue and never waits for the disk (a full queue loses that segment from the
//! recording, with a warning, and never from the live window).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use domain::playlist::{Entry, MediaWindow};
use domain::{RenditionName, Segment, SessionId, StreamName};

use crate::NodeConfig;

/// Segments queued for the disk before new ones are dropped from the recording.
const QUEUE: usize = 256;

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

/// The handle the node keeps.
#[derive(Debug)]
pub(crate) struct Recorder {
    tx: Option<SyncSender<Record>>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the recorder thread writing under `dir`.
    pub(crate) fn start(dir: PathBuf, config: NodeConfig) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(&dir, config, rx))?;
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
    dir: PathBuf,
    renditions: HashMap<RenditionName, MediaWindow>,
    /// The first write error, reported once.
    failed: bool,
}

fn run(root: &Path, config: NodeConfig, rx: Receiver<Record>) {
    let mut active: HashMap<StreamName, Recording> = HashMap::new();
    let open = |stream: &StreamName, session: SessionId| Recording {
        dir: root.join(stream.as_str()).join(session.to_string()),
        renditions: HashMap::new(),
        failed: false,
    };
    while let Ok(record) = rx.recv() {
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
                let Some(mut rec) = active.remove(&stream) else {
                    continue;
                };
                let playlists: Vec<(PathBuf, String)> = rec
                    .renditions
                    .iter()
                    .map(|(r, w)| (rec.dir.join(r.as_str()).join("index.m3u8"), w.render_vod()))
                    .collect();
                for (path, text) in playlists {
                    let written = write_atomically(&path, text.as_bytes());
                    rec.note(written, &path);
                }
                let path = rec.dir.join("master.m3u8");
                let written = write_atomically(&path, master.as_bytes());
                rec.note(written, &path);
                if !rec.failed {
                    tracing::info!(%stream, dir = %rec.dir.display(), "recording ready");
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
        let mut recorder =
            Recorder::start(tmp.path().to_path_buf(), NodeConfig::default()).expect("starts");
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
            master: "#EXTM3U\n".into(),
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
    }
}

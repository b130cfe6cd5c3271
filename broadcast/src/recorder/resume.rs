//! Carrying recordings on after a restart: rebuilding them from their journals, and
//! taking one up again when its stream comes back.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use domain::hls::MediaWindow;
use domain::StreamName;

use super::journal::{self, Journal, JOURNAL_FILE};
use super::{announce, RecorderHooks, Recording, LIVE_MASTER_FILE};
use crate::recording::{self, INFO_FILE, MASTER_FILE};
use crate::NodeConfig;

/// Every recording under `root` that has a journal, rebuilt from it: the newest of each
/// stream, to carry on; older ones of the same stream are finished at once.
pub(super) fn recover(
    root: &Path,
    config: &NodeConfig,
    hooks: &RecorderHooks,
) -> HashMap<StreamName, Recording> {
    let mut found: HashMap<StreamName, Recording> = HashMap::new();
    for (stream, id, dir) in recording::recording_dirs(root) {
        let path = dir.join(JOURNAL_FILE);
        if !path.is_file() {
            continue;
        }
        let journaled = match journal::read(&path) {
            Ok(Some(j)) => j,
            Ok(None) | Err(_) => {
                tracing::warn!(path = %path.display(), "an unreadable recording journal; the recording stays as it is");
                continue;
            }
        };
        let mut renditions = HashMap::new();
        for (rendition, entries) in journaled.entries {
            let window: &mut MediaWindow = renditions
                .entry(rendition)
                .or_insert_with(|| MediaWindow::unbounded(config.segment_target));
            for entry in entries {
                let _ = window.push(entry);
            }
        }
        let master = read_bounded(&dir.join(LIVE_MASTER_FILE), 64 * 1024);
        let journal = Journal::open(&dir, journaled.started_at).ok();
        let rec = Recording {
            stream: stream.clone(),
            id,
            dir,
            started_at: journaled.started_at,
            renditions,
            failed: false,
            journal,
            master,
            resume_pending: Default::default(),
            list_missed: true,
            spool: hooks.spool.read().clone(),
            dvr: hooks.dvr.read().clone(),
            cmaf: Default::default(),
        };
        tracing::info!(%stream, recording = %id, "found a recording to carry on");
        let mut older = match found.remove(&stream) {
            Some(other) if other.started_at > rec.started_at => {
                found.insert(stream, other);
                rec
            }
            Some(other) => {
                found.insert(stream, rec);
                other
            }
            None => {
                found.insert(stream, rec);
                continue;
            }
        };
        if let Some(info) = older.finish(None, false) {
            announce(hooks, info);
        }
    }
    found
}

/// A file's bytes, if it is there and at most `max` bytes long.
fn read_bounded(path: &Path, max: u64) -> Option<Bytes> {
    use std::io::Read as _;
    let file = fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then(|| Bytes::from(bytes))
}

impl Recording {
    /// Carries on a recovered recording: if the node's shutdown finished it, it is
    /// unlisted again until the stream ends; each rendition's next entry starts a
    /// discontinuity.
    pub(super) fn carry_on(mut self, hooks: &RecorderHooks) -> Self {
        let finished = self.dir.join(INFO_FILE).is_file() || self.dir.join(MASTER_FILE).is_file();
        for file in [INFO_FILE, MASTER_FILE] {
            let path = self.dir.join(file);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    self.note(Err(e), &path);
                }
            }
        }
        if finished {
            hooks.generation.fetch_add(1, Ordering::AcqRel);
        }
        tracing::info!(stream = %self.stream, recording = %self.id, "carrying on a recording after a restart");
        self.resume_pending = self.renditions.keys().cloned().collect();
        self.list_missed = true;
        self
    }
}

//! The recorder thread and the handle the node keeps: records come in through a bounded
//! queue, and the thread writes them, carries recordings on after a restart (`resume`),
//! finishes them, and sweeps those past their retention.
//!
//! Apart from `mod.rs` (a recording in progress and what it writes) so that `resume`,
//! which rebuilds recordings, and this loop, which runs them, both read `mod.rs` and it
//! reads neither.

use domain::time::WallClock;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::StreamName;

use super::{announce, resume, Record, RecorderHooks, Recording, RESUME_WITHIN, SWEEP_EVERY};
use crate::recording::{self};
use crate::NodeConfig;

/// Segments queued for the disk before new ones are dropped from the recording.
const QUEUE: usize = 256;

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
        Self::start_resuming_within(dir, config, hooks, RESUME_WITHIN)
    }

    /// [`Recorder::start`], with recordings found in journals waiting `resume_within` for
    /// their stream instead of [`RESUME_WITHIN`].
    pub(super) fn start_resuming_within(
        dir: PathBuf,
        config: NodeConfig,
        hooks: Arc<RecorderHooks>,
        resume_within: Duration,
    ) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(&dir, config, &hooks, rx, resume_within))?;
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

    /// Waits until everything queued so far is on disk.
    pub(crate) fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = sync_channel(1);
        if tx.send(Record::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Writes what is queued, finishes every recording in progress as it stands (keeping
    /// its journal, so it can carry on after a restart) and stops the thread.
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

fn run(
    root: &Path,
    config: NodeConfig,
    hooks: &RecorderHooks,
    rx: Receiver<Record>,
    resume_within: Duration,
) {
    let mut active: HashMap<StreamName, Recording> = HashMap::new();
    // Streams private now: their recordings are marked before their next segment.
    let mut private: HashSet<StreamName> = HashSet::new();
    // Streams not recorded now (switched off by an operator): nothing of them is written.
    let mut unrecorded: HashSet<StreamName> = HashSet::new();
    // Recordings finished when their stream's recording was switched off, kept to carry
    // on if it is switched on again in the same session.
    let mut paused: HashMap<StreamName, Recording> = HashMap::new();
    // Recordings found with a journal: waiting for their stream to come back.
    let mut dormant = resume::recover(root, &config, hooks);
    // What a previous run recorded and the archive may not have yet.
    let spool = hooks.spool.read().clone();
    if let Some(spool) = spool {
        crate::archiving::rescan(root, &spool);
    }
    let resume_until = Instant::now() + resume_within;
    // Sweep once at start: recordings may have aged while the node was down.
    let mut next_sweep = Instant::now();
    loop {
        if !dormant.is_empty() && Instant::now() >= resume_until {
            for (_, mut rec) in dormant.drain() {
                if let Some(info) = rec.finish(None, false) {
                    announce(hooks, info);
                }
            }
        }
        if Instant::now() >= next_sweep {
            let retention = *hooks.retention.read();
            if let Some(retention) = retention {
                if recording::sweep(root, retention, WallClock.unix_secs()) > 0 {
                    hooks.generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
        let wake = if dormant.is_empty() {
            next_sweep
        } else {
            next_sweep.min(resume_until)
        };
        let record = match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(record) => record,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                // The node is stopping: what is in progress is finished as it stands and
                // keeps its journal, to carry on if the stream is still live at restart.
                for (_, mut rec) in active.drain() {
                    if let Some(info) = rec.finish(None, true) {
                        announce(hooks, info);
                    }
                }
                // Paused ones are finished already and keep their journal likewise.
                return;
            }
        };
        match record {
            Record::Segment {
                segment,
                signed,
                master,
                init,
                init_signed,
            } => {
                let stream = &segment.meta.stream;
                if unrecorded.contains(stream) {
                    continue;
                }
                let rec = active.entry(stream.clone()).or_insert_with(|| {
                    if let Some(mut rec) = paused.remove(stream) {
                        if rec.id == segment.meta.session {
                            rec.carry_on_after_pause();
                            return rec;
                        }
                        rec.let_go();
                    }
                    match dormant.remove(stream) {
                        Some(rec) => rec.carry_on(hooks),
                        None => Recording::open(root, stream, segment.meta.session, hooks),
                    }
                });
                if private.contains(&segment.meta.stream) {
                    rec.mark_private();
                }
                rec.update_master(master);
                rec.write_segment(
                    &segment,
                    (signed.as_ref(), init.as_ref()),
                    init_signed.as_ref(),
                    &config,
                );
            }
            Record::Gap {
                stream,
                rendition,
                entry,
            } => {
                if let Some(rec) = active.get_mut(&stream) {
                    rec.add_entry(rendition, entry, &config);
                }
            }
            Record::Ended { stream, master } => {
                if let Some(rec) = paused.remove(&stream) {
                    rec.let_go();
                }
                let Some(mut rec) = active.remove(&stream).or_else(|| dormant.remove(&stream))
                else {
                    continue;
                };
                if let Some(info) = rec.finish(Some(Bytes::from(master)), false) {
                    announce(hooks, info);
                }
            }
            Record::Privacy {
                stream,
                private: true,
            } => {
                if let Some(rec) = active.get_mut(&stream) {
                    rec.mark_private();
                }
                private.insert(stream);
            }
            Record::Privacy {
                stream,
                private: false,
            } => {
                private.remove(&stream);
            }
            Record::Recording {
                stream,
                record: false,
            } => {
                if let Some(mut rec) = active.remove(&stream) {
                    // At a segment boundary: the recorder takes whole segments only.
                    if let Some(info) = rec.finish(None, true) {
                        announce(hooks, info);
                    }
                    paused.insert(stream.clone(), rec);
                }
                if unrecorded.insert(stream.clone()) {
                    tracing::info!(%stream, "recording switched off: this node records nothing more of the stream");
                }
            }
            Record::Recording {
                stream,
                record: true,
            } => {
                if unrecorded.remove(&stream) {
                    tracing::info!(%stream, "recording switched on: this node records the stream from its next segment");
                }
            }
            Record::Thumbnail {
                stream,
                session,
                jpeg,
                signed,
            } => {
                if let Some(rec) = active.get_mut(&stream) {
                    rec.keep_thumbnail(session, &jpeg, &signed);
                }
            }
            Record::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

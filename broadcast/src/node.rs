//! The node: every stream's live state behind one shared handle.
//!
//! Writers (whoever delivers [`LiveEvent`]s) lock one stream's state, apply the event,
//! render a new snapshot and swap it in, all without awaiting. Readers (HTTP handlers)
//! never take that lock: they load the current snapshot of a stream and serve from it, so
//! they see either everything an event changed or none of it.
//!
//! Long because the node is the one handle every side shares: besides the streams, its
//! builder (recordings, the archive, access, the MoQ endpoint) and what each side asks of
//! it (readiness, load, recordings listed, served and deleted) live here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use domain::hls::Entry;
use domain::{LiveEvent, NodeId, RenditionName, SessionId, StreamName};
use http::HeaderValue;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::access::{Access, AccessConfig};
use crate::archiving::{ArchiveSettings, Archiver, Shelf};
use crate::audience::Audience;
use crate::dvr::Dvr;
use crate::metrics::Metrics;
use crate::recorder::{Record, Recorder, RecorderHooks};
use crate::recording::{Library, RecordingInfo, RecordingObserver};
use crate::stream::StreamState;
use crate::thumbnails::{HeldThumbnail, Offered, Thumbnails};
use crate::view::{StreamSummary, StreamView};
use crate::{BroadcastError, NodeConfig};
use changes::Changes;

mod changes;

/// How many streams turning private a slow [`Node::turned_private`] receiver may lag.
const TURNED_PRIVATE_BACKLOG: usize = 64;

/// A broadcast node's in-memory state. Share it as `Arc<Node>` between whoever delivers
/// events and the router that serves it ([`Edge::router`](crate::Edge::router)).
pub struct Node {
    id: NodeId,
    /// `id` as a header value, made once for `x-sealcast-node`.
    id_header: HeaderValue,
    config: NodeConfig,
    /// The map is locked only to find or add a stream; per-stream work happens on the slot.
    streams: RwLock<BTreeMap<StreamName, Arc<Slot>>>,
    pub(crate) metrics: Metrics,
    /// Viewers, open connections and bytes sent, for the load report.
    pub(crate) audience: Audience,
    /// Whether the node holds the live window and may get viewers (`/readyz`). Only ever
    /// goes from false to true.
    ready: watch::Sender<bool>,
    /// Whether a ready edge is more than a segment behind live (`/readyz` says `behind`;
    /// its presence too, and the load balancer gives it no new viewers).
    behind: std::sync::atomic::AtomicBool,
    /// Whether the node is shutting down and waits for its viewers to move off it
    /// (`/readyz` says `draining`, so does its presence).
    draining: AtomicBool,
    /// Writes what is published to disk for VOD, if enabled.
    recorder: Mutex<Option<Recorder>>,
    /// Observer and retention of the recorder, settable before or after it starts.
    recording_hooks: Arc<RecorderHooks>,
    /// The finished recordings this node lists and serves (`/vod`), if any.
    library: Option<Library>,
    /// The cluster's archive of recordings, read through (`/vod`, the listing) in place
    /// of `library` when the node has one.
    shelf: Option<Shelf>,
    /// Takes what the recorder wrote to the archive (a node with an archive).
    archiver: Mutex<Option<Archiver>>,
    /// Who may read private streams: the playback key, the `on_play` hook.
    access: Access,
    /// How far back the time-shift window of a recorded live stream reaches.
    dvr_window: Duration,
    /// Told each stream that turned private here ([`Node::turned_private`]).
    turned_private: tokio::sync::broadcast::Sender<StreamName>,
    /// `/moq/v1/endpoint` and the pages' Content Security Policy, which names its origin.
    pages: crate::assets::Pages,
    /// Each stream's latest verified thumbnail.
    thumbnails: Thumbnails,
    /// Mints MoQ grants for private streams' viewers (`/live/{stream}/moq-grant`), when
    /// private streams go over MoQ.
    moq_grants: Option<crate::MoqKey>,
}

/// A broadcast node's load at one moment ([`Node::load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    /// Distinct viewers in the last few seconds, per live stream.
    pub viewers: BTreeMap<StreamName, u64>,
    /// Client connections open now.
    pub connections: u64,
    /// Response bytes sent since the node started.
    pub bytes_out: u64,
    /// Segments published (verified), refused and listed as gaps since the node started.
    pub segments: domain::load::SegmentCounts,
}

/// One stream: the writer's state and the readers' snapshot.
struct Slot {
    /// Serialises writers of this stream; held only while applying and rendering.
    state: Mutex<StreamState>,
    /// What readers load; replaced whole after every accepted event.
    view: ArcSwap<StreamView>,
    /// Told which renditions each swap of `view` changed: held blocking playlist requests
    /// (and preload-hinted part requests) wait on a receiver of their rendition each, no
    /// task or buffer of their own, and look again.
    changes: Changes,
    /// Whether the stream is private, as its latest signed session start said.
    private: AtomicBool,
    /// Whether the stream is recorded, likewise (true until a start says otherwise).
    record: AtomicBool,
}

impl Slot {
    /// Swaps in a new snapshot and wakes whoever waits for one.
    fn store(&self, view: StreamView) {
        let view = Arc::new(view);
        self.changes.prepare(&view);
        let previous = self.view.swap(Arc::clone(&view));
        self.changes.swapped(&previous, &view);
    }
}

impl Node {
    /// A node with no streams.
    pub fn new(id: NodeId, config: NodeConfig) -> Self {
        // Node ids are validated to header-safe characters when made, so this never falls
        // back; the fallback only keeps a panic out of the constructor.
        let id_header =
            HeaderValue::from_str(id.as_str()).unwrap_or(HeaderValue::from_static("invalid"));
        Node {
            id,
            id_header,
            config,
            streams: RwLock::new(BTreeMap::new()),
            metrics: Metrics::new(),
            recorder: Mutex::new(None),
            ready: watch::Sender::new(false),
            behind: std::sync::atomic::AtomicBool::new(false),
            draining: AtomicBool::new(false),
            recording_hooks: Arc::default(),
            audience: Audience::default(),
            library: None,
            shelf: None,
            archiver: Mutex::new(None),
            access: Access::new(AccessConfig::default()),
            dvr_window: crate::DEFAULT_DVR_WINDOW,
            turned_private: tokio::sync::broadcast::Sender::new(TURNED_PRIVATE_BACKLOG),
            pages: crate::assets::Pages::new(None),
            thumbnails: Thumbnails::default(),
            moq_grants: None,
        }
    }

    /// Tells viewers where they reach the streams over MoQ (`/moq/v1/endpoint`), if anywhere.
    pub fn with_moq_endpoint(mut self, endpoint: Option<&crate::MoqEndpoint>) -> Self {
        self.pages = crate::assets::Pages::new(endpoint);
        self
    }

    /// Mints grants with `key` for the viewers of private streams over MoQ (the key the
    /// relay's auth endpoint or its tier's gates check them with); `None`: no grants.
    pub fn with_moq_grants(mut self, key: Option<crate::MoqKey>) -> Self {
        self.moq_grants = key;
        self
    }

    pub(crate) fn moq_grants(&self) -> Option<&crate::MoqKey> {
        self.moq_grants.as_ref()
    }

    pub(crate) fn pages(&self) -> &crate::assets::Pages {
        &self.pages
    }

    /// Each stream that turns private here from now on, once it refuses tokenless requests:
    /// when to tell shared caches to drop it. A slow receiver misses the oldest names.
    pub fn turned_private(&self) -> tokio::sync::broadcast::Receiver<StreamName> {
        self.turned_private.subscribe()
    }

    /// Whether the node reports ready (`GET /readyz` → 200): as an edge
    /// ([`run_edge`](crate::run_edge)), once it has caught up with every ingest it sees, or
    /// after the readiness timeout. A node starts not ready.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Returns once the node is ready (at once if it already is).
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Marks the node ready; it stays ready. [`run_edge`](crate::run_edge) calls this
    /// itself; a node fed in-process (no edge) is ready whenever its owner says so.
    pub fn mark_ready(&self) {
        self.ready
            .send_if_modified(|ready| !std::mem::replace(ready, true));
    }

    /// Whether the node, ready earlier, is now more than a segment behind live (as an
    /// edge: see [`run_edge`](crate::run_edge)). It keeps serving its viewers meanwhile.
    pub fn is_behind(&self) -> bool {
        self.behind.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_behind(&self, behind: bool) {
        self.behind
            .store(behind, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the node is shutting down: it serves what it is asked and is still fed, but
    /// says it is not ready, so that no new viewer comes (see
    /// [`EdgeConfig::drain`](crate::EdgeConfig::drain)).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Also exports `registry` (another role in the same process, such as an ingest) on
    /// this node's `/metrics`.
    pub fn with_metrics(
        mut self,
        registry: std::sync::Arc<prometheus_client::registry::Registry>,
    ) -> Self {
        self.metrics.add_registry(registry);
        self
    }

    /// Also records every stream under `dir` (see the recorder: each ended stream becomes
    /// a VOD playlist with its segments), and lists and serves the finished recordings
    /// there (`/api/v1/recordings`, `/vod/...`).
    /// Call [`with_time_shift_window`](Self::with_time_shift_window) first to change the
    /// time-shift window of the live streams it records (30 minutes by default).
    pub fn with_recordings(mut self, dir: PathBuf) -> Result<Self, BroadcastError> {
        if !self.dvr_window.is_zero() {
            let dvr = Dvr::new(self.dvr_window, dir.clone());
            *self.recording_hooks.dvr.write() = Some(Arc::new(dvr));
        }
        let recorder = Recorder::start(dir.clone(), self.config, Arc::clone(&self.recording_hooks))
            .map_err(BroadcastError::Recordings)?;
        *self.recorder.lock() = Some(recorder);
        self.library = Some(Library::new(
            dir,
            Arc::clone(&self.recording_hooks.generation),
        ));
        Ok(self)
    }

    /// Keeps recordings in `archive`, once per cluster, and serves every recording there
    /// (`/api/v1/recordings`, `/vod/...`), whichever node recorded it. On a node that also
    /// records (call this before [`with_recordings`](Self::with_recordings)), what it
    /// records is spooled on its disk and uploaded by a task on the current tokio runtime
    /// (an error outside one), and recordings past their retention are deleted from the
    /// archive.
    pub fn with_archive(
        mut self,
        archive: archive::Archive,
        settings: ArchiveSettings,
    ) -> Result<Self, BroadcastError> {
        let hooks = Arc::clone(&self.recording_hooks);
        let retention = Arc::new(move || *hooks.retention.read());
        let (archiver, registry) = Archiver::start(
            self.id.clone(),
            archive.clone(),
            &settings,
            retention,
            Arc::clone(&self.recording_hooks.generation),
        )?;
        *self.recording_hooks.spool.write() = Some(Arc::clone(&archiver.spool));
        *self.archiver.lock() = Some(archiver);
        self.metrics.add_registry(Arc::new(registry));
        self.shelf = Some(Shelf::new(
            archive,
            settings.cache_bytes,
            Arc::clone(&self.recording_hooks.generation),
        ));
        Ok(self)
    }

    /// Keeps the last `window` of every live stream this node records seekable (time-shift,
    /// `/live/{stream}/dvr.m3u8`); zero keeps none. Before
    /// [`with_recordings`](Self::with_recordings).
    pub fn with_time_shift_window(mut self, window: Duration) -> Self {
        self.dvr_window = window;
        self
    }

    /// Serves the time-shift windows `other` keeps of what it records, as its own: for a
    /// node that does not record and shares a disk and an archive with `other` (the
    /// nodes of `up`).
    pub fn with_time_shift_of(self, other: &Node) -> Self {
        *self.recording_hooks.dvr.write() = other.dvr();
        self
    }

    /// The time-shift windows this node serves, if any.
    pub(crate) fn dvr(&self) -> Option<Arc<Dvr>> {
        self.recording_hooks.dvr.read().clone()
    }

    /// Waits until everything this node recorded so far is in the archive (or given up
    /// on); at once on a node without one. For tests and orderly handovers.
    pub async fn archive_drained(&self) {
        let spool = self.archiver.lock().as_ref().map(|a| Arc::clone(&a.spool));
        if let Some(spool) = spool {
            spool.drained().await;
        }
    }

    /// Lists and serves the finished recordings under `dir` without recording anything:
    /// for nodes that share a disk with the node that records (the nodes of `up`).
    pub fn with_recording_library(mut self, dir: PathBuf) -> Self {
        self.library = Some(Library::new(
            dir,
            Arc::clone(&self.recording_hooks.generation),
        ));
        self
    }

    /// Calls `observer` on the recorder's thread with every recording once it is complete
    /// (for the catalog and webhooks). Only a node [`with_recordings`](Self::with_recordings)
    /// finishes recordings.
    pub fn with_recording_observer(self, observer: RecordingObserver) -> Self {
        *self.recording_hooks.observer.write() = Some(observer);
        self
    }

    /// Deletes finished recordings once they ended longer than `retention` ago: the
    /// recorder looks when it starts and every minute after.
    pub fn with_recording_retention(self, retention: Duration) -> Self {
        *self.recording_hooks.retention.write() = Some(retention);
        self
    }

    /// The finished recordings this node serves, newest first, at most 200 (empty on a
    /// node without recordings). Reads the disk on the blocking pool.
    pub async fn recordings(&self) -> Result<Vec<RecordingInfo>, BroadcastError> {
        match (&self.shelf, &self.library) {
            (Some(shelf), _) => Ok(shelf.list().await?.to_vec()),
            (None, Some(library)) => Ok(library.list().await?.to_vec()),
            (None, None) => Ok(Vec::new()),
        }
    }

    /// Deletes one finished recording from this node's disk (the admin API's `DELETE`), on
    /// the blocking pool. [`BroadcastError::UnknownRecording`] if there is no such finished
    /// recording here.
    pub async fn forget_recording(
        &self,
        stream: &StreamName,
        id: SessionId,
    ) -> Result<(), BroadcastError> {
        match (&self.shelf, &self.library) {
            (Some(shelf), library) => {
                shelf.forget(stream, id).await?;
                // This node's own copy, if it recorded it, goes too.
                if let Some(library) = library {
                    match library.forget(stream, id).await {
                        Ok(()) | Err(BroadcastError::UnknownRecording { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            (None, Some(library)) => library.forget(stream, id).await,
            (None, None) => Err(BroadcastError::UnknownRecording {
                stream: stream.clone(),
                id,
            }),
        }
    }

    /// The recordings this node serves, if any.
    pub(crate) fn library(&self) -> Option<&Library> {
        self.library.as_ref()
    }

    /// The archive this node serves recordings from, if it has one (then in place of
    /// [`Node::library`]).
    pub(crate) fn shelf(&self) -> Option<&Shelf> {
        self.shelf.as_ref()
    }

    /// Checks playback tokens of private streams as `config` says (without it, no token
    /// opens a private stream here).
    pub fn with_access(mut self, config: AccessConfig) -> Self {
        self.access = Access::new(config);
        self
    }

    pub(crate) fn access(&self) -> &Access {
        &self.access
    }

    /// Whether `stream` is private on this node (its latest signed session start said so).
    pub(crate) fn is_private(&self, stream: &StreamName) -> bool {
        self.slot(stream)
            .is_some_and(|slot| slot.private.load(Ordering::SeqCst))
    }

    /// Whether recording `id` of `stream` was made while the stream was private.
    pub(crate) async fn recording_is_private(
        &self,
        stream: &StreamName,
        id: Option<SessionId>,
    ) -> bool {
        match (&self.shelf, &self.library, id) {
            (Some(shelf), _, Some(id)) => shelf.is_private(stream, id).await,
            (None, Some(library), Some(id)) => library.is_private(stream, id).await,
            _ => false,
        }
    }

    /// Finishes writing recordings and stops the recorder (blocks on file writes):
    /// recordings in progress are finished as they stand and carry on if their stream is
    /// still live when the node starts again.
    pub fn close_recordings(&self) {
        let recorder = self.recorder.lock().take();
        if let Some(mut recorder) = recorder {
            recorder.close();
        }
        // Then what it wrote last (the playlists of what it finished) goes to the archive,
        // for a bounded time.
        let archiver = self.archiver.lock().take();
        if let Some(mut archiver) = archiver {
            archiver.close();
        }
    }

    /// Waits until every segment handed to the recorder so far is on disk (recordings in
    /// progress stay in progress).
    pub fn flush_recordings(&self) {
        if let Some(recorder) = self.recorder.lock().as_ref() {
            recorder.flush();
        }
    }

    fn record(&self, record: impl FnOnce() -> Record) {
        if let Some(recorder) = self.recorder.lock().as_ref() {
            recorder.send(record());
        }
    }

    /// This node's identity, as sent in `x-sealcast-node`.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The settings it was made with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub(crate) fn id_header(&self) -> &HeaderValue {
        &self.id_header
    }

    /// Applies one event and publishes the result to readers. A refused event (see
    /// [`BroadcastError`]) changes nothing and affects no other stream.
    pub fn apply(&self, event: LiveEvent) -> Result<(), BroadcastError> {
        self.apply_signed(event, None)
    }

    /// [`Node::apply`] with the envelope of the statement the edge verified for the event
    /// (a segment's, a part's, a rendition description's): served beside what it signs
    /// (`{file}.sig`) and recorded with it, so viewers can check the media themselves.
    pub(crate) fn apply_signed(
        &self,
        event: LiveEvent,
        signed: Option<Bytes>,
    ) -> Result<(), BroadcastError> {
        let slot = match self.slot(event.stream()) {
            Some(slot) => slot,
            None if matches!(event, LiveEvent::SessionStarted { .. }) => {
                self.add_stream(event.stream())
            }
            None => {
                return Err(BroadcastError::UnknownStream {
                    stream: event.stream().clone(),
                })
            }
        };
        let published = match &event {
            LiveEvent::Segment(s) => Some((s.meta.stream.clone(), s.meta.rendition.clone())),
            _ => None,
        };
        let recordable = match &event {
            LiveEvent::Segment(s) if self.recorder.lock().is_some() => {
                Some((s.clone(), signed.clone()))
            }
            _ => None,
        };
        let ending = matches!(event, LiveEvent::Ended { .. });
        // Privacy comes only from a signed session start (repeated for a change while
        // live), and is set before anything that start lets through is swapped in.
        // Recording likewise: told to the recorder before the segments that follow the
        // start, through the same queue, so it acts at a segment boundary.
        if let LiveEvent::SessionStarted {
            private, record, ..
        } = &event
        {
            let was_private = slot.private.swap(*private, Ordering::SeqCst);
            if *private && !was_private {
                let _ = self.turned_private.send(event.stream().clone()); // none: no one to tell
            }
            self.record(|| Record::Privacy {
                stream: event.stream().clone(),
                private: *private,
            });
            if slot.record.swap(*record, Ordering::SeqCst) != *record {
                tracing::info!(stream = %event.stream(), record = *record, "the stream's recording was switched (signed session start)");
            }
            self.record(|| Record::Recording {
                stream: event.stream().clone(),
                record: *record,
            });
        }

        let (was_live, is_live) = {
            let mut state = slot.state.lock();
            let was_live = state.is_live();
            state.apply_signed(event, signed)?;
            // Stored under the writer lock, so snapshots of one stream are swapped in the
            // order their events were applied.
            slot.store(state.view());
            (was_live, state.is_live())
        };

        if let Some((segment, signed)) = recordable {
            let view = slot.view.load();
            let master = view.master.as_ref().map(|d| d.body.clone());
            let init = view
                .renditions
                .get(&segment.meta.rendition)
                .and_then(|r| r.init.as_ref());
            let init_signed = init.and_then(|d| d.signed.as_ref()).map(|d| d.body.clone());
            let init = init.map(|d| d.body.clone());
            self.record(|| Record::Segment {
                segment,
                signed,
                master,
                init,
                init_signed,
            });
        }
        if ending && was_live && !is_live {
            let view = slot.view.load();
            let master = view
                .master
                .as_ref()
                .map(|d| String::from_utf8_lossy(&d.body).into_owned())
                .unwrap_or_default();
            let stream = view.summary.name.clone();
            self.record(|| Record::Ended { stream, master });
        }
        if let Some((stream, rendition)) = published {
            self.metrics
                .segment_published(stream.as_str(), rendition.as_str());
        }
        match (was_live, is_live) {
            (false, true) => self.metrics.live_streams_add(1),
            (true, false) => self.metrics.live_streams_add(-1),
            _ => {}
        }
        Ok(())
    }

    /// Keeps a verified part-key delegation of `stream`/`rendition` (`envelope`) for the
    /// segments `first..=last` of `session`, served as `{seq}.partkey` for them once
    /// `session` announced the rendition (at once if it has).
    pub(crate) fn add_part_key(
        &self,
        (stream, rendition, session): (&StreamName, &RenditionName, SessionId),
        run: (u64, u64),
        envelope: Bytes,
    ) -> Result<(), BroadcastError> {
        let slot = self.known_slot(stream)?;
        let mut state = slot.state.lock();
        state.part_key(rendition, session, run, envelope);
        slot.store(state.view());
        Ok(())
    }

    /// Checks that `stream` has started on this node.
    pub(crate) fn check_stream(&self, stream: &StreamName) -> Result<(), BroadcastError> {
        self.known_slot(stream).map(drop)
    }

    /// Checks that a segment of `session` for `stream`/`rendition` would be accepted now
    /// (stream started, session live, rendition announced), before its body is read.
    pub(crate) fn check_segment(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
        session: SessionId,
    ) -> Result<(), BroadcastError> {
        let slot = self.known_slot(stream)?;
        let state = slot.state.lock();
        state.check_segment(rendition, session)
    }

    /// Lists a sequence number the signature gate gave up on as a gap.
    pub(crate) fn gap(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
        sequence: u64,
        duration: std::time::Duration,
        discontinuity_sequence: Option<u64>,
    ) -> Result<(), BroadcastError> {
        let slot = self.known_slot(stream)?;
        let mut state = slot.state.lock();
        state.gap(rendition, sequence, duration, discontinuity_sequence)?;
        self.metrics.gap();
        slot.store(state.view());
        drop(state);
        self.record(|| Record::Gap {
            stream: stream.clone(),
            rendition: rendition.clone(),
            entry: Entry {
                sequence,
                duration,
                discontinuity_sequence: discontinuity_sequence.unwrap_or(0),
                discontinuity: false,
                gap: true,
            },
        });
        Ok(())
    }

    /// What the node's load report says: viewers per live stream (0 for one nobody
    /// watches), open connections, bytes sent, and the gate's counts.
    pub fn load(&self, now: std::time::Instant) -> NodeLoad {
        let mut viewers = self.audience.viewers(now);
        viewers.retain(|stream, _| self.view(stream).is_some_and(|v| v.summary.live));
        for summary in self.live_streams() {
            if summary.live {
                viewers.entry(summary.name).or_insert(0);
            }
        }
        NodeLoad {
            viewers,
            connections: self.audience.connections(),
            bytes_out: self.audience.bytes_out(),
            segments: self.metrics.segment_counts(),
        }
    }

    /// Every stream this node knows, live or ended, by name.
    pub fn live_streams(&self) -> Vec<StreamSummary> {
        self.streams
            .read()
            .values()
            .map(|slot| slot.view.load().summary.clone())
            .collect()
    }

    /// The streams anyone may see listed (`/api/v1/streams`, the player's list): private
    /// ones are left out. Each names its thumbnail, if the node has one.
    pub(crate) fn public_streams(&self) -> Vec<StreamSummary> {
        let dvr = self.dvr();
        self.streams
            .read()
            .values()
            .filter(|slot| !slot.private.load(Ordering::SeqCst))
            .map(|slot| {
                let mut summary = slot.view.load().summary.clone();
                if summary.live {
                    summary.dvr = dvr.as_ref().and_then(|d| d.summary(&summary.name));
                }
                summary.thumbnail_url = self.thumbnails.url(&summary.name);
                summary
            })
            .collect()
    }

    /// The thumbnails this node verified.
    pub(crate) fn thumbnails(&self) -> &Thumbnails {
        &self.thumbnails
    }

    /// Keeps a verified thumbnail as its stream's latest if it is of the stream's live
    /// session and newer than the one held; the recorder keeps it too (a recording's
    /// thumbnail is the first one kept of its session).
    pub(crate) fn keep_thumbnail(&self, held: HeldThumbnail) -> Offered {
        let Some(slot) = self.slot(&held.statement.stream) else {
            return Offered::OtherSession;
        };
        let live = slot.state.lock().live_session();
        let record = self.recorder.lock().is_some().then(|| Record::Thumbnail {
            stream: held.statement.stream.clone(),
            session: held.statement.session,
            jpeg: held.image.body.clone(),
            signed: held.signed.body.clone(),
        });
        let offered = self.thumbnails.offer(held, live);
        if let (Offered::Kept, Some(record)) = (offered, record) {
            self.record(|| record);
        }
        offered
    }

    /// The current snapshot of a stream.
    pub(crate) fn view(&self, stream: &StreamName) -> Option<Arc<StreamView>> {
        self.slot(stream).map(|slot| slot.view.load_full())
    }

    /// A receiver told of every new snapshot of `stream` that changes `rendition`. Subscribe
    /// before looking at the snapshot, so that a swap in between is not missed.
    pub(crate) fn subscribe(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
    ) -> Result<watch::Receiver<()>, BroadcastError> {
        let slot = self.known_slot(stream)?;
        slot.changes
            .subscribe(rendition)
            .ok_or_else(|| BroadcastError::UnknownRendition {
                stream: stream.clone(),
                rendition: rendition.clone(),
            })
    }

    /// The stream's slot, or the error for a stream this node has not seen start.
    fn known_slot(&self, stream: &StreamName) -> Result<Arc<Slot>, BroadcastError> {
        self.slot(stream)
            .ok_or_else(|| BroadcastError::UnknownStream {
                stream: stream.clone(),
            })
    }

    fn slot(&self, stream: &StreamName) -> Option<Arc<Slot>> {
        self.streams.read().get(stream).cloned()
    }

    fn add_stream(&self, stream: &StreamName) -> Arc<Slot> {
        let mut streams = self.streams.write();
        let slot = streams.entry(stream.clone()).or_insert_with(|| {
            let state = StreamState::new(stream.clone(), self.config);
            let view = state.view();
            let changes = Changes::default();
            changes.prepare(&view);
            Arc::new(Slot {
                state: Mutex::new(state),
                view: ArcSwap::from_pointee(view),
                changes,
                private: AtomicBool::new(false),
                record: AtomicBool::new(true),
            })
        });
        Arc::clone(slot)
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("config", &self.config)
            .field("streams", &self.streams.read().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::{RenditionInfo, RenditionName, Segment, SegmentMeta, SessionId};

    use super::*;

    fn name(s: &str) -> StreamName {
        StreamName::new(s).expect("valid")
    }

    fn node() -> Node {
        Node::new(NodeId::new("edge1").expect("valid"), NodeConfig::default())
    }

    fn start(stream: &str) -> LiveEvent {
        LiveEvent::SessionStarted {
            stream: name(stream),
            session: SessionId(1),
            private: false,
            record: true,
        }
    }

    fn segment(stream: &str, sequence: u64) -> LiveEvent {
        segment_of(stream, "src", sequence)
    }

    fn segment_of(stream: &str, rendition: &str, sequence: u64) -> LiveEvent {
        LiveEvent::Segment(Segment {
            meta: SegmentMeta {
                stream: name(stream),
                rendition: RenditionName::new(rendition).expect("valid"),
                session: SessionId(1),
                sequence,
                discontinuity_sequence: 0,
                discontinuity: false,
                duration: Duration::from_secs(2),
                start_pts_90k: 0,
            },
            bytes: bytes::Bytes::from_static(b"\x47"),
        })
    }

    fn announce(stream: &str) -> LiveEvent {
        announce_of(stream, "src")
    }

    fn announce_of(stream: &str, rendition: &str) -> LiveEvent {
        LiveEvent::Rendition {
            stream: name(stream),
            info: RenditionInfo {
                name: RenditionName::new(rendition).expect("valid"),
                width: 640,
                height: 360,
                frame_rate: 25.0,
                codecs: "avc1.42c01e".parse().expect("valid codecs"),
                init: None,
                part_target_us: None,
            },
        }
    }

    #[test]
    fn events_for_unknown_streams_are_refused_without_creating_them() {
        let node = node();
        assert!(matches!(
            node.apply(segment("ghost", 0)),
            Err(BroadcastError::UnknownStream { .. })
        ));
        assert!(node.live_streams().is_empty());
        assert!(node.view(&name("ghost")).is_none());
    }

    #[test]
    fn streams_are_independent_and_listed_by_name() {
        let node = node();
        for s in ["b", "a"] {
            node.apply(start(s)).expect("start");
            node.apply(announce(s)).expect("announce");
        }
        node.apply(segment("a", 0)).expect("segment");
        assert!(node.apply(segment("a", 0)).is_err(), "replay");
        node.apply(segment("b", 0))
            .expect("the other stream is untouched");
        let names: Vec<String> = node
            .live_streams()
            .into_iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_stream_turning_private_is_told_once_and_only_then() {
        let node = node();
        let mut turned = node.turned_private();
        let privacy = |private| LiveEvent::SessionStarted {
            stream: name("a"),
            session: SessionId(1),
            private,
            record: true,
        };
        node.apply(privacy(false)).expect("public start");
        assert!(turned.try_recv().is_err(), "a public start is no change");
        node.apply(privacy(true)).expect("turned private");
        node.apply(privacy(true)).expect("still private");
        assert_eq!(turned.try_recv().expect("told"), name("a"));
        assert!(turned.try_recv().is_err(), "a repeat is not told again");
        node.apply(privacy(false)).expect("public again");
        node.apply(privacy(true)).expect("private again");
        assert_eq!(turned.try_recv().expect("told again"), name("a"));
        assert!(node.is_private(&name("a")));
    }

    #[test]
    fn live_gauge_follows_starts_and_ends() {
        let node = node();
        node.apply(start("a")).expect("start");
        node.apply(start("a"))
            .expect("a repeated start is harmless");
        node.apply(start("b")).expect("start");
        assert!(node
            .metrics
            .encode()
            .expect("encodes")
            .contains("sealcast_live_streams 2"));
        node.apply(LiveEvent::Ended {
            stream: name("a"),
            session: SessionId(1),
        })
        .expect("end");
        assert!(node
            .metrics
            .encode()
            .expect("encodes")
            .contains("sealcast_live_streams 1"));
    }

    #[test]
    fn a_swap_wakes_only_the_waiters_of_the_renditions_it_changed() {
        let node = node();
        let (stream, src, low) = (
            name("a"),
            RenditionName::new("src").expect("valid"),
            RenditionName::new("low").expect("valid"),
        );
        node.apply(start("a")).expect("start");
        for rendition in ["src", "low"] {
            node.apply(announce_of("a", rendition)).expect("announce");
        }
        assert!(
            matches!(
                node.subscribe(&stream, &src),
                Err(BroadcastError::UnknownRendition { .. })
            ),
            "nothing to wait for before a rendition is in the snapshot"
        );
        for rendition in ["src", "low"] {
            node.apply(segment_of("a", rendition, 0)).expect("segment");
        }
        let made_up = RenditionName::new("made-up").expect("valid");
        assert!(
            node.subscribe(&stream, &made_up).is_err(),
            "no channel for a name a request made up"
        );
        let mut on_src = node.subscribe(&stream, &src).expect("src");
        let mut on_low = node.subscribe(&stream, &low).expect("low");
        let changed = |rx: &watch::Receiver<()>| rx.has_changed().expect("channel open");

        node.apply(segment_of("a", "low", 1)).expect("segment");
        assert!(changed(&on_low));
        assert!(!changed(&on_src), "src's view was shared, not replaced");
        on_low.borrow_and_update();

        node.apply(segment_of("a", "src", 1)).expect("segment");
        assert!(changed(&on_src));
        assert!(!changed(&on_low));
        on_src.borrow_and_update();

        // The end changes every playlist (ENDLIST): every waiter looks again.
        node.apply(LiveEvent::Ended {
            stream: stream.clone(),
            session: SessionId(1),
        })
        .expect("end");
        assert!(changed(&on_src) && changed(&on_low));
    }

    #[test]
    fn readers_see_whole_snapshots_while_a_writer_publishes() {
        let node = Arc::new(node());
        node.apply(start("a")).expect("start");
        node.apply(announce("a")).expect("announce");
        node.apply(segment("a", 0)).expect("segment");
        let writer = {
            let node = Arc::clone(&node);
            std::thread::spawn(move || {
                for seq in 1..2000 {
                    node.apply(segment("a", seq)).expect("segment");
                }
            })
        };
        let src = RenditionName::new("src").expect("valid");
        // Whatever snapshot a reader gets, every segment its playlist lists is fetchable
        // from the same snapshot.
        loop {
            let done = writer.is_finished();
            let view = node.view(&name("a")).expect("stream");
            let r = &view.renditions[&src];
            let text = std::str::from_utf8(&r.playlist.body).expect("utf-8");
            for line in text.lines().filter(|l| l.ends_with(".ts")) {
                let seq: u64 = line.trim_end_matches(".ts").parse().expect("number");
                assert!(r.segment(seq).is_some(), "{seq} listed but not held");
            }
            assert!(view.master.is_some());
            if done {
                break;
            }
        }
        writer.join().expect("writer");
    }
}

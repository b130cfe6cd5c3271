//! Which streams are being published, by whom, and where each one's numbering stands.
//!
//! A stream keeps counting media sequence numbers across publish sessions; each new
//! session after the first is a discontinuity. A publish with the key of a stream that is
//! already live takes over (OBS reconnecting after a network drop): the old connection is
//! told to stop, its pipeline flushes, and the new session continues the numbering.
//! The end of a stream (`#EXT-X-ENDLIST`) is announced at once on a clean unpublish, or
//! after a grace period when the connection merely dropped, in case the publisher returns.
//!
//! Every protocol's publishers are let in by one call, [`Registry::admit`] (the types it
//! takes and gives are in `admission`), then started by [`Registry::start_publish`].
//! `settings` holds the types a registry is made with and tells through, `slot` what it
//! keeps per stream, `flags` how a live stream's privacy and recording change.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::time::WallClock;
use domain::{Ladder, LiveEvent, SessionId, StreamName};
use intake::media::MediaInput;
use parking_lot::Mutex;
use plumbing::{StrikePolicy, Strikes};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::authority::{AuthorityError, StreamAuthority};

mod admission;
mod flags;
mod settings;
mod slot;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::pipeline::{Pipeline, PipelineParams, SequenceRecorder, SessionFlags, StartFlags};
use admission::Seat;
pub use admission::{Admission, Admit, NotAdmitted, Protocol, StreamKey};
pub use settings::{IngestSettings, LiveSession, PublishObserver};
use slot::{Live, Slot};

/// How long the emitting thread waits for the catalog to record a stream's numbering
/// before the segment goes on without it.
pub const NUMBERING_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a publish waits for the catalog to check its key, number its session or
/// mark it live. A catalog that hangs (connections open, nothing answered) refuses the
/// publish with an error after this, instead of holding the publisher's connection.
pub const CATALOG_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// After a failed numbering write, how long a stream's segments go on without trying the
/// catalog again.
pub const NUMBERING_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long a takeover waits for the previous session to flush.
const TAKEOVER_WAIT: Duration = Duration::from_secs(15);

/// A publish in progress, owned by its RTMP connection.
#[derive(Debug)]
pub struct Publish {
    stream: StreamName,
    session: SessionId,
    pipeline: Option<Pipeline>,
    takeover: CancellationToken,
    ended: CancellationToken,
    done: watch::Sender<bool>,
}

impl Publish {
    /// The stream being published.
    pub fn stream(&self) -> &StreamName {
        &self.stream
    }

    /// This session's id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Where media goes.
    pub fn sender(&self) -> mpsc::Sender<MediaInput> {
        match &self.pipeline {
            Some(p) => p.sender(),
            None => mpsc::channel(1).0,
        }
    }

    /// Resolves when another publisher with the same key takes over.
    pub async fn taken_over(&self) {
        self.takeover.cancelled().await;
    }

    /// Resolves when an operator ends this session ([`Registry::end_stream`]).
    pub async fn ended_by_operator(&self) {
        self.ended.cancelled().await;
    }
}

/// Shared by every RTMP connection of an ingest node.
#[derive(Debug)]
pub struct Registry {
    settings: IngestSettings,
    catalog: Arc<dyn StreamAuthority>,
    events: mpsc::Sender<LiveEvent>,
    metrics: IngestMetrics,
    slots: Mutex<HashMap<StreamName, Slot>>,
    tasks: TaskTracker,
    observer: Option<Arc<dyn PublishObserver>>,
    /// Wrong stream keys per client address, over every protocol.
    strikes: Mutex<Strikes>,
    /// Admitted publishes not started yet ([`Seat`]s), counted with the live ones against
    /// [`IngestSettings::max_streams`]. Taken only under `slots`' lock.
    seats: Arc<AtomicUsize>,
}

impl Registry {
    /// A registry authorising publishes against `catalog` and sending what streams produce
    /// to `events`.
    pub fn new(
        settings: IngestSettings,
        catalog: Arc<dyn StreamAuthority>,
        events: mpsc::Sender<LiveEvent>,
        metrics: IngestMetrics,
    ) -> Arc<Self> {
        Self::with_observer(settings, catalog, events, metrics, None)
    }

    /// Like [`Registry::new`], telling `observer` of every session's start and end.
    pub fn with_observer(
        settings: IngestSettings,
        catalog: Arc<dyn StreamAuthority>,
        events: mpsc::Sender<LiveEvent>,
        metrics: IngestMetrics,
        observer: Option<Arc<dyn PublishObserver>>,
    ) -> Arc<Self> {
        Arc::new(Registry {
            settings,
            catalog,
            events,
            metrics,
            slots: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            observer,
            strikes: Mutex::new(Strikes::new(StrikePolicy::default())),
            seats: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How long `client` must still wait before it may present a stream key again, after
    /// too many wrong ones (any protocol); `None`: it may now. Counted as `held_back`.
    /// [`Registry::admit`] asks this itself; WHIP asks it first too, so that a client held
    /// back costs no offer read.
    pub fn held_back(&self, client: IpAddr) -> Option<Duration> {
        let wait = self.strikes.lock().check(client, Instant::now()).err();
        if wait.is_some() {
            self.metrics.publish("held_back");
        }
        wait
    }

    /// The streams being published here, by name.
    pub fn live_sessions(&self) -> Vec<LiveSession> {
        let mut out: Vec<LiveSession> = self
            .slots
            .lock()
            .iter()
            .filter_map(|(stream, slot)| {
                slot.live.as_ref().map(|l| LiveSession {
                    stream: stream.clone(),
                    session: l.session,
                    started_at: l.started_at,
                })
            })
            .collect();
        out.sort_by(|a, b| a.stream.cmp(&b.stream));
        out
    }

    /// Ends the publish of `stream` here if it is `session` (an operator's request): the
    /// connection is closed and the stream ends at once, as on a clean unpublish. False if
    /// that session is not live here.
    pub fn end_stream(&self, stream: &StreamName, session: SessionId) -> bool {
        let slots = self.slots.lock();
        match slots.get(stream).and_then(|s| s.live.as_ref()) {
            Some(live) if live.session == session => {
                live.ended.cancel();
                true
            }
            _ => false,
        }
    }

    /// The ladder every stream is transcoded to.
    pub fn ladder(&self) -> &Ladder {
        &self.settings.ladder
    }

    /// How many RTMP connections may be open at once.
    pub fn max_connections(&self) -> usize {
        self.settings.max_connections
    }

    /// The RTMP application name.
    pub fn app(&self) -> &str {
        &self.settings.app
    }

    /// The metrics every connection updates.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// Whether `key` publishes `stream`, counting nothing: not an admission, but WHIP's
    /// check of a `DELETE` of a session it made.
    pub async fn key_publishes(
        &self,
        key: &StreamKey,
        stream: &StreamName,
    ) -> Result<bool, IngestError> {
        let found = answer(self.catalog.authenticate(&key.0))
            .await
            .map_err(IngestError::Catalog)?;
        Ok(found.as_ref() == Some(stream))
    }

    /// Whether a publisher may publish now, the same checks for RTMP, SRT and WHIP, in this
    /// order, without starting anything: its client is not held back after too many wrong
    /// keys (any protocol); the catalog knows its key, and the key publishes the stream it
    /// named, if it named one (else the client gets a strike; a right key forgets them);
    /// the operator's `on_publish` hook, if any, agrees. [`Registry::start_publish`] then
    /// starts the publish, taking the stream over from a publisher already on it (one
    /// publisher per stream): SRT first completes its handshake (the passphrase), WHIP its
    /// answer, so a caller that fails those interrupts nobody.
    pub async fn admit(&self, request: Admit<'_>) -> Result<Admission, NotAdmitted> {
        let Admit {
            protocol,
            key,
            client,
            stream: named,
        } = request;
        if let Err(wait) = self.strikes.lock().check(client, Instant::now()) {
            self.metrics.publish("held_back");
            tracing::debug!(%protocol, %client, "publish refused: too many wrong keys lately");
            return Err(NotAdmitted::HeldBack { wait });
        }
        let found = answer(self.catalog.authenticate(&key.0))
            .await
            .map_err(NotAdmitted::Catalog)?;
        let Some(stream) = found.filter(|found| named.is_none_or(|named| named == found)) else {
            self.metrics.publish("bad_key");
            tracing::warn!(%protocol, %client, named = ?named, "publish refused: wrong stream key");
            if let Some(wait) = self.strikes.lock().failed(client, Instant::now()) {
                tracing::warn!(
                    %client,
                    wait_secs = wait.as_secs_f64(),
                    "repeated wrong stream keys from this address; holding it back"
                );
            }
            return Err(NotAdmitted::WrongKey);
        };
        self.strikes.lock().succeeded(client);
        // The cap before the hook: an ingest that could not take the stream asks nobody.
        let seat = self.seat_for(&stream).map_err(|max| {
            self.metrics.publish("full");
            tracing::warn!(%protocol, %client, %stream, max, "publish refused: this ingest publishes its maximum of streams");
            NotAdmitted::Full { max }
        })?;
        // The operator's hook, with its own timeout; refusing ends the publish here.
        if !self
            .catalog
            .may_publish(&stream)
            .await
            .map_err(NotAdmitted::Catalog)?
        {
            self.metrics.publish("hook_refused");
            tracing::warn!(%protocol, %client, %stream, "publish refused by the on_publish hook");
            return Err(NotAdmitted::HookRefused(stream));
        }
        Ok(Admission {
            stream,
            protocol,
            seat,
        })
    }

    /// A place for a publish of `stream` under [`IngestSettings::max_streams`]: none needed
    /// for a stream live here already (a takeover) or without a cap; `Err(max)` when the
    /// live streams and the admitted ones not started yet fill it.
    fn seat_for(&self, stream: &StreamName) -> Result<Seat, usize> {
        let Some(max) = self.settings.max_streams else {
            return Ok(Seat::none());
        };
        let slots = self.slots.lock();
        let live = slots.values().filter(|s| s.live.is_some()).count();
        if slots.get(stream).is_some_and(|s| s.live.is_some()) {
            Ok(Seat::none())
        } else if live + self.seats.load(Ordering::Acquire) >= max {
            Err(max)
        } else {
            Ok(Seat::take(&self.seats))
        }
    }

    /// Starts the publish [`Registry::admit`] let in, taking the stream over from a
    /// publisher already on it.
    pub async fn start_publish(&self, admission: Admission) -> Result<Publish, IngestError> {
        // Its seat goes back once the stream is live (it then counts) or on an early return.
        let Admission {
            stream,
            protocol,
            seat,
        } = admission;
        // Asked before anything starts: a private stream never goes out public because the
        // catalog could not say. Recording is asked too, but a catalog that cannot say
        // records: losing a recording is worse than keeping one nobody wanted.
        let private = answer(self.catalog.is_private(&stream))
            .await
            .map_err(IngestError::Catalog)?;
        let record = match answer(self.catalog.records(&stream)).await {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(stream = %stream, error = %e, "could not read whether the stream is recorded; recording it");
                true
            }
        };
        if !record {
            tracing::info!(stream = %stream, "the stream is not recorded (switched off in the catalog)");
        }
        let flags = SessionFlags::new(StartFlags { private, record });
        let (previous, flushing) = {
            let mut slots = self.slots.lock();
            let previous = slots.entry(stream.clone()).or_default().live.take();
            // While the previous session flushes, the stream keeps its place under the cap.
            let flushing = if previous.is_some() && self.settings.max_streams.is_some() {
                Seat::take(&self.seats)
            } else {
                Seat::none()
            };
            (previous, flushing)
        };
        if let Some(mut previous) = previous {
            self.metrics.publish("takeover");
            tracing::info!(%protocol, %stream, "taking the stream over from the publisher on it");
            previous.takeover.cancel();
            let waited =
                tokio::time::timeout(TAKEOVER_WAIT, previous.done.wait_for(|done| *done)).await;
            if waited.is_err() {
                tracing::warn!(stream = %stream, "the previous session did not flush in time; continuing anyway");
            }
        }
        // Numbering continues where the catalog says, whichever ingest published last (an
        // ingest that restarted forgot its own); this ingest's memory is the fallback when
        // the catalog cannot answer.
        let stored = match answer(self.catalog.begin_numbering(&stream)).await {
            Ok(numbering) => Some(numbering),
            Err(e) => {
                tracing::warn!(stream = %stream, error = %e, "could not read the stream's numbering from the catalog; continuing from this ingest's memory");
                None
            }
        };
        // Ordered by start: an edge told of this session and an older one of the stream (by
        // two ingests' catch-up pushes, in either order) keeps this one.
        let session = SessionId::starting_at(WallClock.unix_ms(), rand_u64());
        let takeover = CancellationToken::new();
        let ended = CancellationToken::new();
        let (done_tx, done_rx) = watch::channel(false);
        let params = {
            let mut slots = self.slots.lock();
            let slot = slots.entry(stream.clone()).or_default();
            let mut discontinuity = slot.sessions > 0;
            if discontinuity {
                slot.discontinuity_sequence += 1;
            }
            if let Some(stored) = stored {
                slot.next_sequence = slot.next_sequence.max(stored.first_sequence);
                slot.discontinuity_sequence = slot
                    .discontinuity_sequence
                    .max(stored.discontinuity_sequence);
                discontinuity |= stored.discontinuity;
            }
            slot.sessions += 1;
            slot.live = Some(Live {
                session,
                takeover: takeover.clone(),
                ended: ended.clone(),
                started_at: unix_now(),
                done: done_rx,
                flags: flags.clone(),
            });
            drop((seat, flushing));
            PipelineParams {
                stream: stream.clone(),
                session,
                first_sequence: slot.next_sequence,
                discontinuity_sequence: slot.discontinuity_sequence,
                discontinuity,
                ladder: Arc::clone(&self.settings.ladder),
                realtime: true,
                encoder_threads: self.settings.encoder_threads,
                recorder: Some(self.sequence_recorder(&stream)),
                flags,
                provenance: self.settings.provenance.as_ref().map(|claim| {
                    let now = WallClock.unix_secs();
                    Arc::new(certs::c2pa::LiveSigner::for_session(Arc::clone(claim), now))
                }),
            }
        };
        let pipeline = Pipeline::start(params, self.events.clone(), self.metrics.clone())?;
        if let Err(e) = answer(self.catalog.mark_live(&stream, unix_now())).await {
            tracing::warn!(stream = %stream, error = %e, "could not record the stream as live");
        }
        if let Some(observer) = &self.observer {
            let renditions: Vec<String> = self
                .settings
                .ladder
                .rungs
                .iter()
                .map(|r| r.name.to_string())
                .collect();
            observer.started(&stream, session, &renditions);
        }
        Ok(Publish {
            stream,
            session,
            pipeline: Some(pipeline),
            takeover,
            ended,
            done: done_tx,
        })
    }

    /// Records `stream`'s next sequence number in the catalog, from the pipeline's emitting
    /// thread (a blocking write, before the segment leaves). A write that fails or takes
    /// longer than [`NUMBERING_WRITE_TIMEOUT`] is logged and the segment goes on (numbering
    /// then rests on this ingest's memory); after a failure, writes are skipped for
    /// [`NUMBERING_RETRY_AFTER`], so that a catalog that is down or unreachable delays no
    /// segment by more than one timeout. The next write after that catches the catalog up.
    fn sequence_recorder(&self, stream: &StreamName) -> SequenceRecorder {
        let catalog = Arc::clone(&self.catalog);
        let stream = stream.clone();
        let runtime = tokio::runtime::Handle::current();
        let failed_at: Mutex<Option<std::time::Instant>> = Mutex::new(None);
        SequenceRecorder::new(move |next| {
            if failed_at
                .lock()
                .is_some_and(|at| at.elapsed() < NUMBERING_RETRY_AFTER)
            {
                return;
            }
            // The timer is made inside the runtime: this thread is not one of its own.
            let write = async {
                tokio::time::timeout(
                    NUMBERING_WRITE_TIMEOUT,
                    catalog.advance_sequence(&stream, next),
                )
                .await
            };
            let error = match runtime.block_on(write) {
                Ok(Ok(())) => {
                    if failed_at.lock().take().is_some() {
                        tracing::info!(stream = %stream, next, "the stream's numbering is recorded in the catalog again");
                    }
                    return;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {NUMBERING_WRITE_TIMEOUT:?}"),
            };
            *failed_at.lock() = Some(std::time::Instant::now());
            tracing::warn!(stream = %stream, next, %error, retry_after = ?NUMBERING_RETRY_AFTER, "could not record the stream's numbering in the catalog");
        })
    }

    /// Ends a publish: flushes its pipeline, records where numbering stands, and announces
    /// the end (now if `clean`, after the grace period otherwise) unless taken over.
    pub async fn end_publish(self: &Arc<Self>, mut publish: Publish, clean: bool) {
        let outcome = match publish.pipeline.take() {
            Some(pipeline) => tokio::task::spawn_blocking(move || pipeline.finish())
                .await
                .ok(),
            None => None,
        };
        let started = outcome.as_ref().is_some_and(|(o, _)| o.started);
        let (still_live_here, sessions) = {
            let mut slots = self.slots.lock();
            let slot = slots.entry(publish.stream.clone()).or_default();
            if let Some((outcome, error)) = &outcome {
                slot.next_sequence = slot.next_sequence.max(outcome.next_sequence);
                if let Some(e) = error {
                    tracing::warn!(stream = %publish.stream, error = %e, "the stream's pipeline stopped with an error");
                }
            }
            let mine = slot
                .live
                .as_ref()
                .is_some_and(|l| l.session == publish.session);
            if mine {
                slot.live = None;
            }
            (mine, slot.sessions)
        };
        tracing::info!(stream = %publish.stream, session = %publish.session, clean, "publish ended");
        if still_live_here {
            self.metrics.forget_speeds(&publish.stream);
        }
        if let Some(observer) = &self.observer {
            observer.ended(&publish.stream, publish.session);
        }
        // Only now may a publisher that takes the stream over go on: its start is heard
        // after this end, never before (an observer that marks streams live would
        // otherwise mark a live stream ended).
        let _ = publish.done.send(true);
        if !still_live_here || !started {
            // Taken over (the new session continues the stream), or nothing ever reached
            // the edges (refused codec, no keyframe): there is nothing to end.
            return;
        }
        let ended = LiveEvent::Ended {
            stream: publish.stream.clone(),
            session: publish.session,
        };
        if clean || self.settings.end_grace.is_zero() {
            let _ = self.events.send(ended).await;
            return;
        }
        let this = Arc::clone(self);
        let stream = publish.stream.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(this.settings.end_grace).await;
            let still_gone = this
                .slots
                .lock()
                .get(&stream)
                .is_some_and(|s| s.sessions == sessions && s.live.is_none());
            if still_gone {
                let _ = this.events.send(ended).await;
            }
        });
    }

    /// Waits for pending end announcements (on shutdown).
    pub async fn close(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// A catalog call, given up after [`CATALOG_ANSWER_TIMEOUT`].
async fn answer<T>(
    call: impl std::future::Future<Output = Result<T, AuthorityError>>,
) -> Result<T, AuthorityError> {
    match tokio::time::timeout(CATALOG_ANSWER_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CATALOG_ANSWER_TIMEOUT:?}").into()),
    }
}

/// Unix seconds, now, as the catalog's columns hold them (`BIGINT`).
fn unix_now() -> i64 {
    i64::try_from(WallClock.unix_secs()).unwrap_or(i64::MAX)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per instance; good enough for a session id,
    // which only has to differ between sessions, not be secret.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(unix_now() as u64);
    h.finish()
}

//! The admin side of a process: the API routes and the cluster view behind them, load
//! reports, session and recording bookkeeping in the catalog, webhooks, and operators'
//! requests to end a live session.

use domain::time::WallClock;
use std::sync::Arc;
use std::time::Duration;

use api::{Api, ClusterView, ForgetRecording, ProcessSampler, WebhookPayload, Webhooks};
use catalog::{Catalog, RecordingRecord, SessionRecord, WebhookEvent};
use domain::broker::BrokerAddress;
use domain::load::{IngestStream, LoadReport, RungSpeed};
use domain::presence::Role;
use domain::topics::Topic;
use domain::{NodeId, SessionId, StreamName};
use ingest::{IngestMetrics, PublishObserver, Registry};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often an ingest looks for operators' requests to end one of its sessions.
const END_REQUEST_POLL: Duration = Duration::from_secs(1);

/// Background work of the admin side, joined by [`AdminSide::finish`].
pub(super) struct AdminSide {
    api: Api,
    webhooks: Option<Webhooks>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl AdminSide {
    /// Follows the cluster over MQTT (as `client_id`) for the API's `live` and `nodes`;
    /// mints playback tokens under `playback`, if given.
    pub(super) fn start(
        catalog: Option<Catalog>,
        webhooks: Option<Webhooks>,
        broker: BrokerAddress,
        client_id: String,
        forget: Option<ForgetRecording>,
        playback: Option<certs::tokens::PlaybackKey>,
    ) -> Self {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let cluster = Arc::new(Mutex::new(ClusterView::default()));
        {
            let catalog = catalog.clone();
            let inner_tasks = tasks.clone();
            let seen = move |node: &NodeId, p: &domain::presence::Presence| {
                let Some(catalog) = catalog.clone() else {
                    return;
                };
                let (node, role, url, state) = (
                    node.to_string(),
                    role_name(p.role),
                    p.url.clone(),
                    state_name(p.state).to_owned(),
                );
                inner_tasks.spawn(async move {
                    let at = i64::try_from(WallClock.unix_secs()).unwrap_or(i64::MAX);
                    if let Err(e) = catalog
                        .node_seen(&node, role, url.as_deref(), &state, at)
                        .await
                    {
                        tracing::debug!(error = %e, "could not record a node in the catalog");
                    }
                });
            };
            tasks.spawn(api::follow_cluster(
                broker,
                client_id,
                Arc::clone(&cluster),
                seen,
                stop.clone(),
            ));
        }
        let api = Api::new(catalog, cluster, forget);
        let api = match playback {
            Some(key) => api.with_playback_key(key),
            None => api,
        };
        AdminSide {
            api,
            webhooks,
            tasks,
            stop,
        }
    }

    /// Has the API tell the caches of `purge` what turned private or was deleted, and has
    /// them told again when a stream turns private on one of `nodes`: an answer a node gave
    /// as public between the catalog's change and the node learning of it (from the
    /// stream's ingest, a second or more later) may have been stored meanwhile.
    pub(super) fn with_cache_purge(
        mut self,
        purge: Option<api::CachePurge>,
        nodes: &[Arc<broadcast::Node>],
    ) -> Self {
        if let Some(purge) = purge {
            for node in nodes {
                self.tasks.spawn(purge_when_private(
                    purge.clone(),
                    node.turned_private(),
                    self.stop.clone(),
                ));
            }
            self.api = self.api.with_cache_purge(purge);
        }
        self
    }

    /// The API routes, to serve beside a node's own.
    pub(super) fn router(&self) -> axum::Router {
        api::router(self.api.clone())
    }

    /// Stops following the cluster and waits for deliveries under way.
    pub(super) async fn finish(self) {
        self.stop.cancel();
        if let Some(w) = &self.webhooks {
            w.close().await;
        }
        self.tasks.close();
        self.tasks.wait().await;
        // After the tasks: a purge one of them began has its second round in here.
        if let Some(purge) = self.api.cache_purge() {
            purge.close().await;
        }
    }
}

/// What a node logs when a stream turned private on it, before it tells the caches.
pub(crate) const TURNED_PRIVATE_LOG: &str =
    "the stream turned private on this node; telling the caches to drop it again";

/// `BAN`s every stream that turns private on a node (see [`AdminSide::with_cache_purge`]),
/// until `stop`.
async fn purge_when_private(
    purge: api::CachePurge,
    mut turned: tokio::sync::broadcast::Receiver<StreamName>,
    stop: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = turned.recv() => next,
        };
        match next {
            Ok(stream) => {
                tracing::info!(%stream, "{TURNED_PRIVATE_LOG}");
                purge.stream(&stream).await;
            }
            // Names missed: the API's own purge and the caches' TTL cap still hold.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "streams turned private faster than the caches were told"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// How presence states are spelled on the wire and in the catalog.
fn state_name(state: domain::presence::PresenceState) -> &'static str {
    use domain::presence::PresenceState;
    match state {
        PresenceState::Joining => "joining",
        PresenceState::Ready => "ready",
        PresenceState::Behind => "behind",
        PresenceState::Draining => "draining",
        PresenceState::Offline => "offline",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Broadcast => "broadcast",
        Role::Ingest => "ingest",
    }
}

/// Records an ingest's publish sessions in the catalog and sends the webhooks of the
/// writes this node won.
#[derive(Debug)]
pub(super) struct SessionLog {
    pub(super) catalog: Catalog,
    pub(super) webhooks: Webhooks,
    pub(super) node: NodeId,
    pub(super) tasks: TaskTracker,
}

impl SessionLog {
    fn payload(
        &self,
        event: WebhookEvent,
        stream: &StreamName,
        session: SessionId,
    ) -> WebhookPayload {
        WebhookPayload {
            event,
            stream: stream.to_string(),
            session: session.to_string(),
            at: now(),
            node: self.node.to_string(),
            master_url: None,
        }
    }
}

impl PublishObserver for SessionLog {
    fn started(&self, stream: &StreamName, session: SessionId, renditions: &[String]) {
        let record = SessionRecord {
            stream: stream.clone(),
            session: session.to_string(),
            ingest_node: self.node.to_string(),
            started_at: now(),
            ended_at: None,
            renditions: renditions.to_vec(),
        };
        let (catalog, webhooks) = (self.catalog.clone(), self.webhooks.clone());
        let payload = self.payload(WebhookEvent::Publish, stream, session);
        self.tasks.spawn(async move {
            match catalog.start_session(&record).await {
                Ok(true) => webhooks.notify(payload),
                Ok(false) => {}
                Err(e) => tracing::warn!(stream = %record.stream, error = %e, "could not record a publish session"),
            }
            // The key publishes here now: a connection still publishing it on another
            // ingest (the publisher moved) is ended by that ingest, as a takeover here
            // ends the old connection.
            if let Err(e) = catalog
                .request_end_others(&record.stream, &record.session)
                .await
            {
                tracing::warn!(stream = %record.stream, error = %e, "could not ask other ingests to end their session of this stream");
            }
        });
    }

    fn ended(&self, stream: &StreamName, session: SessionId) {
        let (catalog, webhooks) = (self.catalog.clone(), self.webhooks.clone());
        let payload = self.payload(WebhookEvent::Unpublish, stream, session);
        let stream = stream.clone();
        self.tasks.spawn(async move {
            match catalog.end_session(&stream, &payload.session, payload.at).await {
                Ok(true) => webhooks.notify(payload),
                Ok(false) => {}
                Err(e) => tracing::warn!(%stream, error = %e, "could not record the end of a publish session"),
            }
        });
    }
}

/// Ends the sessions of `registry` that an operator asked to end (`POST
/// /api/v1/live/{name}/end` marks them in the catalog), and tells the edges when an
/// operator made a live stream private or public or switched its recording (`streams set`,
/// `PATCH` in the API), until `stop`: all are read from the catalog every
/// [`END_REQUEST_POLL`].
pub(super) async fn follow_end_requests(
    catalog: Catalog,
    node: NodeId,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(END_REQUEST_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let requests = match catalog.end_requests(node.as_str()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "could not read end requests");
                continue;
            }
        };
        for (stream, session) in requests {
            let live = registry
                .live_sessions()
                .into_iter()
                .find(|l| l.stream == stream && l.session.to_string() == session);
            if let Some(live) = live {
                registry.end_stream(&live.stream, live.session);
            }
        }
        follow_settings(&catalog, &registry).await;
    }
}

/// Brings each live stream's privacy and recording in line with the catalog (one read per
/// stream); the registry announces a change only (signed, to every edge).
async fn follow_settings(catalog: &Catalog, registry: &Registry) {
    for live in registry.live_sessions() {
        match catalog.get_stream(&live.stream).await {
            Ok(Some(stream)) => {
                registry.set_private(&live.stream, stream.private).await;
                registry.set_record(&live.stream, stream.record).await;
            }
            // A stream removed while live keeps what it had.
            Ok(None) => {}
            // A catalog that cannot answer is asked again at the next poll.
            Err(e) => {
                tracing::debug!(stream = %live.stream, error = %e, "could not read the stream's privacy and recording")
            }
        }
    }
}

/// The load report of an ingest node.
pub(super) fn ingest_report(
    registry: &Registry,
    metrics: &IngestMetrics,
    sampler: &mut ProcessSampler,
) -> LoadReport {
    let (cpu_percent, memory_bytes) = sampler.sample();
    let streams = registry
        .live_sessions()
        .into_iter()
        .map(|live| {
            let speeds = metrics.encode_speeds(&live.stream);
            let mut renditions: Vec<RungSpeed> = speeds
                .into_iter()
                .map(|(rendition, fps, factor)| RungSpeed {
                    rendition,
                    encode_fps: Some(fps),
                    realtime_factor: Some(factor),
                })
                .collect();
            // Passed-through rungs are not encoded: listed first, without a speed.
            let passed_through = registry
                .ladder()
                .rungs
                .iter()
                .filter(|r| matches!(r.kind, domain::RungKind::Source))
                .filter(|r| !renditions.iter().any(|s| s.rendition == r.name))
                .map(|r| RungSpeed {
                    rendition: r.name.clone(),
                    encode_fps: None,
                    realtime_factor: None,
                })
                .collect::<Vec<_>>();
            renditions.splice(0..0, passed_through);
            IngestStream {
                stream: live.stream,
                session: live.session.to_string(),
                started_at: live.started_at,
                renditions,
            }
        })
        .collect::<Vec<_>>();
    LoadReport {
        role: Role::Ingest,
        at: now(),
        cpu_percent,
        memory_bytes,
        connections: streams.len() as u64,
        bytes_out: 0,
        viewers: Default::default(),
        segments: Default::default(),
        streams,
    }
}

/// The load report of a broadcast node.
/// The load reports of a broadcast node, which its edge publishes on its own connection.
pub(super) fn broadcast_reports(node: Arc<broadcast::Node>) -> broadcast::LoadSampler {
    let sampler = parking_lot::Mutex::new(ProcessSampler::new());
    broadcast::LoadSampler::new(move || broadcast_report(&node, &mut sampler.lock()))
}

fn broadcast_report(node: &broadcast::Node, sampler: &mut ProcessSampler) -> LoadReport {
    let (cpu_percent, memory_bytes) = sampler.sample();
    let load = node.load(std::time::Instant::now());
    LoadReport {
        role: Role::Broadcast,
        at: now(),
        cpu_percent,
        memory_bytes,
        connections: load.connections,
        bytes_out: load.bytes_out,
        viewers: load.viewers,
        segments: load.segments,
        streams: Vec::new(),
    }
}

/// Publishes the report `sample` makes on `topic` every two seconds, in `tasks`.
/// What runs beside an ingest node, on `tasks` until `stop`: it follows operators' end
/// requests in the catalog, and reports its load over MQTT every 2 s.
pub(super) fn spawn_ingest_companions(
    tasks: &TaskTracker,
    catalog: &Catalog,
    node: &NodeId,
    ingest: &ingest::Running,
    broker: BrokerAddress,
    metrics: IngestMetrics,
    stop: &CancellationToken,
) {
    tasks.spawn(follow_end_requests(
        catalog.clone(),
        node.clone(),
        Arc::clone(ingest.registry()),
        stop.clone(),
    ));
    let registry = Arc::clone(ingest.registry());
    let mut sampler = ProcessSampler::new();
    spawn_reporter(
        tasks,
        broker,
        format!("load-{node}"),
        Topic::IngestLoad(node.clone()),
        move || ingest_report(&registry, &metrics, &mut sampler),
        stop.clone(),
    );
}

pub(super) fn spawn_reporter(
    tasks: &TaskTracker,
    broker: BrokerAddress,
    client_id: String,
    topic: Topic,
    sample: impl FnMut() -> LoadReport + Send + 'static,
    stop: CancellationToken,
) {
    tasks.spawn(api::run_reporter(broker, client_id, topic, sample, stop));
}

/// What a broadcast node's recorder calls when a recording is finished: the catalog
/// learns of it, and the node whose write recorded it first sends `recording_ready`.
pub(super) fn recording_observer(
    catalog: Catalog,
    webhooks: Webhooks,
    node: NodeId,
    runtime: tokio::runtime::Handle,
) -> Arc<dyn Fn(broadcast::RecordingInfo) + Send + Sync> {
    Arc::new(move |info: broadcast::RecordingInfo| {
        let (catalog, webhooks, node) = (catalog.clone(), webhooks.clone(), node.clone());
        runtime.spawn(async move {
            let record = RecordingRecord {
                stream: info.stream.clone(),
                id: info.id.to_string(),
                started_at: i64::try_from(info.started_at).unwrap_or(i64::MAX),
                ended_at: i64::try_from(info.ended_at).unwrap_or(i64::MAX),
                duration_secs: info.duration_secs,
                renditions: info.renditions.iter().map(ToString::to_string).collect(),
            };
            match catalog.add_recording(&record).await {
                Ok(true) => webhooks.notify(WebhookPayload {
                    event: WebhookEvent::RecordingReady,
                    stream: info.stream.to_string(),
                    session: info.id.to_string(),
                    at: record.ended_at,
                    node: node.to_string(),
                    master_url: Some(info.master_url.clone()),
                }),
                Ok(false) => {}
                Err(e) => tracing::warn!(stream = %info.stream, error = %e, "could not record a recording in the catalog"),
            }
        });
    })
}

/// Deletes a recording's files from `node` when the API deletes the recording.
pub(super) fn forget_with(node: Arc<broadcast::Node>) -> ForgetRecording {
    Arc::new(move |stream: StreamName, id: String| {
        let node = Arc::clone(&node);
        Box::pin(async move {
            let Ok(id) = id.parse::<SessionId>() else {
                return;
            };
            if let Err(e) = node.forget_recording(&stream, id).await {
                tracing::warn!(%stream, error = %e, "could not delete a recording's files");
            }
        })
    })
}

fn now() -> i64 {
    i64::try_from(WallClock.unix_secs()).unwrap_or(i64::MAX)
}

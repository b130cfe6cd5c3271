//! Egress over Media over QUIC (issue 48): a node publishes every public live stream to a
//! MoQ relay, which fans each track out to its viewers and to the relays it is clustered
//! with. The wire protocol is moq-lite, through the `moq-net` model and the `moq-tokio`
//! connection helpers (docs/architecture.md, "Media over QUIC", says why not IETF
//! moq-transport yet).
//!
//! A stream is one broadcast, named as the stream, with these tracks:
//!
//! - `catalog.json` (`catalog`): one group per version of the catalog, one object each;
//! - one track per CMAF rendition with LL-HLS parts, named as the rendition: a group per
//!   segment (its media sequence number), an object per part (`moof` + `mdat`, the exact
//!   bytes `{seq}.{part}.m4s` serves, C2PA segment info in-band); `cursor` decides what
//!   goes out and where groups begin;
//! - beside it, `{rendition}.sig`: the same groups, whose object 0 is the part-key
//!   delegation covering the segment (`{seq}.partkey`, empty when there is none) and whose
//!   object `n + 1` is part `n`'s signed statement (`{seq}.{part}.m4s.sig`). A viewer
//!   checks each media object against its statement before decoding it, as over LL-HLS.
//!
//! Only what this node published goes out, so only what verified: the tracks are fed
//! from the node's snapshots, woken by the same per-rendition change signals that held
//! LL-HLS requests wait on.
//!
//! Private streams go out only to a relay that asks who may read them ([`MoqConfig::key`]
//! set; the relay's `--auth-url` names the endpoint of `auth`, this node's or a relay
//! tier's gate holding the same key): under `_private/{stream}`, which only a viewer with
//! a playback token of that stream, or a grant a node minted for one (`grant`), is
//! granted. A stream that turns private leaves its public name and appears
//! under the private one; public again, the reverse. Without that, private streams are
//! not published over MoQ at all (a relay with public rules would hand them to anyone).
//!
//! The connection to the relay redials when it drops (with a fresh publish credential,
//! `credential`, each time); what the tracks hold is announced again on the new session.
//! A node given several relays (a tier's roots) publishes the same broadcasts to each over
//! a session of its own, so no one relay's death takes a stream's route away: the relays
//! further out hold a route through each, and moq-relay serves a track on from the other
//! route at the first object it lacks. A stream is announced only once its catalog is out
//! and every rendition's track began a group from its first part: a relay takes the newest
//! announcement of a stream as its route, so a node that restarted mid-segment would
//! otherwise take the route from the nodes serving the stream before it holds what they
//! served, and its viewers would wait for the next segment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::{RenditionName, StreamName};
use moq_tokio::moq_net;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::view::RenditionView;
use crate::{BroadcastError, Node};
use cursor::{Cursor, Step};

mod auth;
mod catalog;
mod credential;
mod cursor;
mod grant;

pub use auth::{run_moq_auth, MoqAuthConfig, MoqAuthority, PRIVATE_PREFIX};
pub use credential::MoqKey;
pub(crate) use grant::grant;

/// How often the node's streams are looked over for one to start publishing.
const STREAMS_POLL: Duration = Duration::from_millis(250);

/// How often a stream's tracks are looked at when no change signal came (a rendition
/// that appeared has no signal subscribed yet).
const RESCAN: Duration = Duration::from_secs(1);
/// Longest a stream's announcement waits, after its catalog, for every rendition's track to
/// begin a group (a segment is 2 s by default; a rendition that never begins one is not
/// to keep the others off MoQ).
const ANNOUNCE_WAIT: Duration = Duration::from_secs(6);

/// Where and how a node publishes over MoQ.
#[derive(Debug, Clone)]
pub struct MoqConfig {
    /// The relays, each `https://HOST:PORT/PATH`, the path being where on the relay the
    /// broadcasts go (and what its authentication checks): the same broadcasts go to
    /// every one, each over its own session.
    pub relays: Vec<url::Url>,
    /// PEM files of the roots to trust for the relays' certificates; the system's roots
    /// when empty.
    pub roots: Vec<PathBuf>,
    /// SHA-256 fingerprints (hex) of the relays' certificates, trusted instead of a chain
    /// (relays with self-signed certificates).
    pub fingerprints: Vec<String>,
    /// Set when the relay asks this node's auth endpoint ([`run_moq_auth`] with the same
    /// key) who may do what: every dial carries a fresh publish credential minted with it,
    /// and private streams are published too (under [`PRIVATE_PREFIX`]). `None`: a relay
    /// that admits anyone (`--auth-public`), which gets public streams only.
    pub key: Option<MoqKey>,
}

/// Longest wait between two dials of a relay that refuses or is down.
const REDIAL_MAX: Duration = Duration::from_secs(30);

/// The QUIC idle timeout of a node's sessions with its relays (the smaller of both ends'
/// wins, so this is the session's), and the keep-alive that holds a live one open. A node
/// that dies sends no close: its relays hold its routes until this passes, and a viewer's
/// subscription routed through it stays silent that long (moq-tokio's default is 10 s).
/// A node sends objects several times a second and a keep-alive four times within the
/// timeout, so only a dead or cut-off node is quiet this long. What a viewer of a dead
/// edge waits is about this, plus the time since the last object came, less what its
/// player buffered (compose trial: 1.0–1.3 s of stall at 0.7 s, 0.47 s at 0.5 s).
const RELAY_IDLE_TIMEOUT: Duration = Duration::from_millis(500);
const RELAY_KEEP_ALIVE: Duration = Duration::from_millis(125);

/// Publishes `node`'s live streams to the relays of `config` until `stop`: the public
/// ones, and the private ones when the relays check who may read them.
pub async fn run_moq(
    node: Arc<Node>,
    config: MoqConfig,
    stop: CancellationToken,
) -> Result<(), BroadcastError> {
    let mut connect = moq_tokio::connect::Config::default();
    connect.tls.root = config.roots;
    connect.tls.fingerprint = config.fingerprints;
    let mut quic = moq_tokio::quic::Config::default();
    quic.idle_timeout = RELAY_IDLE_TIMEOUT;
    quic.keep_alive = RELAY_KEEP_ALIVE;
    let client = connect
        .init(quic)
        .map_err(|e| BroadcastError::Moq(e.to_string()))?;
    let origin = moq_tokio::origin::spawn();
    let with_private = config.key.is_some();
    let connections: Vec<_> = config
        .relays
        .into_iter()
        .map(|relay| {
            tokio::spawn(keep_connected(
                client.clone(),
                origin.clone(),
                relay,
                config.key.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let mut streams: HashMap<(StreamName, bool), JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(STREAMS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        streams.retain(|_, task| !task.is_finished());
        for summary in node.live_streams() {
            let private = node.is_private(&summary.name);
            if !summary.live || (private && !with_private) {
                continue;
            }
            let key = (summary.name, private);
            if streams.contains_key(&key) {
                continue;
            }
            let task = tokio::spawn(publish_stream(
                Arc::clone(&node),
                origin.clone(),
                key.0.clone(),
                private,
                stop.child_token(),
            ));
            streams.insert(key, task);
        }
    }
    for (_, task) in streams {
        let _ = task.await;
    }
    for connection in connections {
        let _ = connection.await;
    }
    Ok(())
}

/// Keeps a session with `relay` publishing `origin` until `stop`. With a publish key, each
/// dial carries a credential minted for it (one that a redial reused would have expired),
/// so the redials are ours: at once after a session that lasted, else backing off to
/// [`REDIAL_MAX`]. Without one, moq-tokio redials by itself.
async fn keep_connected(
    client: moq_tokio::Client,
    origin: moq_net::origin::Producer,
    relay: url::Url,
    key: Option<MoqKey>,
    stop: CancellationToken,
) {
    let Some(key) = key else {
        let connection = client.with_publisher(&origin).connect(relay);
        stop.cancelled().await;
        drop(connection);
        return;
    };
    let mut wait = Duration::from_secs(1);
    loop {
        let mut url = relay.clone();
        let now = domain::time::WallClock.unix_secs();
        url.query_pairs_mut()
            .append_pair(credential::PARAMETER, &key.mint(now));
        let connection = client
            .clone()
            .with_publisher(&origin)
            .with_reconnect(false)
            .connect(url);
        let began = tokio::time::Instant::now();
        tokio::select! {
            () = stop.cancelled() => return,
            // moq-tokio keeps a dial URL's query out of its errors.
            ended = connection.closed() => {
                tracing::debug!(error = ?ended.err(), "the MoQ relay session ended; dialling again");
            }
        }
        drop(connection);
        if began.elapsed() > REDIAL_MAX {
            wait = Duration::from_secs(1);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(REDIAL_MAX);
    }
}

/// One stream's broadcast (under its private name when `private`), kept up to date with
/// its snapshots until the stream ends, its privacy changes or `stop`.
async fn publish_stream(
    node: Arc<Node>,
    origin: moq_net::origin::Producer,
    stream: StreamName,
    private: bool,
    stop: CancellationToken,
) {
    let mut turned_private = node.turned_private();
    let name = auth::broadcast_name(&stream, private);
    let broadcast = match origin.create_broadcast(name.as_str()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(%stream, error = %e, "could not publish the stream over MoQ");
            return;
        }
    };
    let catalog_track = match broadcast.create_track(catalog::TRACK, None) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(%stream, error = %e, "could not make the MoQ catalog track");
            return;
        }
    };
    let mut sent_catalog: Option<Bytes> = None;
    let mut catalog_inputs: Option<Vec<catalog::CatalogInput>> = None;
    let mut tracks: HashMap<RenditionName, RenditionTracks> = HashMap::new();
    // When the catalog went out; the broadcast is announced once every rendition's track
    // began a group, or ANNOUNCE_WAIT after the catalog (below).
    let mut catalog_sent_at: Option<tokio::time::Instant> = None;
    let mut announced = false;
    loop {
        if stop.is_cancelled() || node.is_private(&stream) != private {
            break;
        }
        // Subscribe first, then look: a swap in between is not missed.
        let mut changes: Vec<_> = match node.view(&stream) {
            Some(view) => view
                .renditions
                .keys()
                .filter_map(|r| node.subscribe(&stream, r).ok())
                .collect(),
            None => break,
        };
        let Some(view) = node.view(&stream) else {
            break;
        };
        if !view.summary.live {
            break;
        }
        // Rendered again only when what it is made of changed, not at every part.
        let inputs = catalog::inputs(&view);
        if catalog_inputs.as_ref() != Some(&inputs) {
            if let Some(catalog) = catalog::render(&view) {
                if sent_catalog.as_ref() != Some(&catalog) {
                    if let Err(e) = write_catalog(&catalog_track, catalog.clone()) {
                        tracing::warn!(%stream, error = %e, "could not send the MoQ catalog");
                    }
                    catalog_sent_at.get_or_insert_with(tokio::time::Instant::now);
                    sent_catalog = Some(catalog);
                }
            }
            catalog_inputs = Some(inputs);
        }
        if sent_catalog.is_some() {
            for (name, rendition) in &view.renditions {
                if rendition.ll.is_none() || rendition.init.is_none() {
                    continue;
                }
                let entry = match tracks.entry(name.clone()) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        match RenditionTracks::new(&broadcast, name) {
                            Ok(t) => v.insert(t),
                            Err(e) => {
                                tracing::warn!(%stream, rendition = %name, error = %e, "could not make its MoQ tracks");
                                continue;
                            }
                        }
                    }
                };
                entry.send(rendition);
            }
            // Announced once what a subscriber acts on is in place: the catalog, and a group
            // begun from its first part on every rendition's track. A relay routes a
            // stream through the newest announcement of it, so a node that restarted and
            // announced at once, before it held a whole group, would take the stream's
            // route from the nodes serving it and leave its viewers waiting for the next
            // segment. A rendition that never begins a group does not hold the stream
            // back longer than ANNOUNCE_WAIT.
            let started = || {
                view.renditions
                    .iter()
                    .filter(|(_, r)| r.ll.is_some() && r.init.is_some())
                    .all(|(name, _)| tracks.get(name).is_some_and(|t| t.started))
            };
            let waited = catalog_sent_at.is_some_and(|at| at.elapsed() >= ANNOUNCE_WAIT);
            if !announced && (waited || started()) {
                if let Err(e) = broadcast.announce(Default::default()) {
                    tracing::warn!(%stream, error = %e, "could not announce the stream over MoQ");
                }
                announced = true;
            }
        }
        let changed = async {
            if changes.is_empty() {
                std::future::pending::<()>().await;
            }
            let waits = changes.iter_mut().map(|c| Box::pin(c.changed()));
            let _ = futures::future::select_all(waits).await;
        };
        // A stream turning private leaves its public name at once; turning public, it
        // is seen at the next rescan.
        let privacy = async {
            loop {
                match turned_private.recv().await {
                    Ok(name) if name == stream => return,
                    Ok(_) => {}
                    // Ours may be among those missed: look.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = changed => {}
            () = privacy => {}
            () = tokio::time::sleep(RESCAN) => {}
        }
    }
    for (_, tracks) in tracks {
        tracks.finish();
    }
    let _ = catalog_track.finish();
    broadcast.close();
}

/// A new version of the catalog: one group, one object.
fn write_catalog(track: &moq_net::track::Producer, catalog: Bytes) -> Result<(), moq_net::Error> {
    let mut group = track.append_group()?;
    group.write_frame(moq_net::Timestamp::now(), catalog)?;
    group.finish()
}

/// A rendition's media track and statements track, and where they stand.
struct RenditionTracks {
    media: moq_net::track::Producer,
    statements: moq_net::track::Producer,
    cursor: Cursor,
    /// The open group of each track.
    open: Option<(moq_net::group::Producer, moq_net::group::Producer)>,
    /// Whether a group was begun (from its first part) on these tracks.
    started: bool,
}

impl RenditionTracks {
    fn new(
        broadcast: &moq_net::broadcast::Producer,
        rendition: &RenditionName,
    ) -> Result<Self, moq_net::Error> {
        Ok(RenditionTracks {
            media: broadcast.create_track(rendition.as_str(), None)?,
            statements: broadcast
                .create_track(catalog::statements_track(rendition.as_str()), None)?,
            cursor: Cursor::default(),
            open: None,
            started: false,
        })
    }

    /// Sends what is new in `rendition`'s snapshot.
    fn send(&mut self, rendition: &RenditionView) {
        let held = rendition.parts.iter().map(|(key, _)| *key);
        for step in self.cursor.advance(held) {
            if let Err(e) = self.step(step, rendition) {
                tracing::debug!(error = %e, "a MoQ object was not sent");
            }
        }
    }

    fn step(&mut self, step: Step, rendition: &RenditionView) -> Result<(), moq_net::Error> {
        let now = moq_net::Timestamp::now();
        match step {
            Step::Group(sequence) => {
                self.close_groups();
                let media = self.media.create_group(sequence.into())?;
                let mut statements = self.statements.create_group(sequence.into())?;
                let delegation = rendition
                    .part_key(sequence)
                    .map(|d| d.body.clone())
                    .unwrap_or_default();
                statements.write_frame(now, delegation)?;
                self.open = Some((media, statements));
                self.started = true;
            }
            Step::Object(sequence, index) => {
                let (Some((media, statements)), Some(part)) =
                    (self.open.as_mut(), rendition.part(sequence, index))
                else {
                    return Ok(());
                };
                media.write_frame(now, part.body.clone())?;
                let statement = part.signed.as_ref().map(|s| s.body.clone());
                statements.write_frame(now, statement.unwrap_or_default())?;
            }
        }
        Ok(())
    }

    fn close_groups(&mut self) {
        if let Some((media, statements)) = self.open.take() {
            let _ = media.finish();
            let _ = statements.finish();
        }
    }

    fn finish(mut self) {
        self.close_groups();
        let _ = self.media.finish();
        let _ = self.statements.finish();
    }
}

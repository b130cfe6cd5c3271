//! The edge: a node fed by the network instead of in-process. Segment bytes arrive by HTTP
//! push (`intake`), signed statements, certificates, revocations and presences over MQTT
//! (`mqtt`), and the [`SignatureGate`] decides what reaches the live window; LL-HLS parts
//! likewise, through their own [`PartGate`] (parts and their statements arrive the same
//! ways, and their signatures are checked against the same trust store).
//!
//! [`Edge`] owns the shared state every side touches: the gate (one per node, behind a
//! mutex held only for in-memory work), the [`TrustStore`] (read by verifications on the
//! blocking pool, written when a certificate or revocation arrives) and the readiness
//! bookkeeping. [`run_edge`] runs the HTTP server, the MQTT side and the gate's timer as
//! tasks it owns and joins.
//!
//! Its children, state machines first (sans-IO, each with property tests):
//!
//! - `candidates`: where pushed bytes and verified statements meet, for segments and
//!   parts alike: rival pushes, the held-byte budget, the hold time, and the signed
//!   envelope that travels on with what is published.
//! - `gate`: the signature gate, segments on top of the candidate set: in order per
//!   rendition, gaps on timeout.
//! - `parts`: the part gate, parts on top of the candidate set: no order, no gaps.
//! - `barriers`: control events queued behind the gate (an end never overtakes the
//!   segments pushed before it).
//! - `admission`: which verified control events are taken (fresh, in session order, a
//!   `synced` from its own ingest).
//! - `ready`: when the edge may report ready, and whether it has fallen behind live.
//! - `intake`: the internal push API (HTTP), into the gates and the event path.
//! - `thumbnail`: a pushed thumbnail's statement verified and its bytes checked before the
//!   node keeps it.
//! - `mqtt`: certificates, revocations, statements and presences from the broker; this
//!   node's retained presence and last will.
//! - `trust_material`: `/trust/v1/root.pub`, `/trust/v1/bundle` and
//!   `/trust/v1/provenance-anchors`, what viewers rebuild
//!   this edge's trust from (issue 31).
//! - `serve`: [`Edge::router`], [`Edge::handle_message`] and [`run_edge`], which tie the
//!   edge to the above and to the HTTP server.
//!
//! What the gates let through keeps the envelope of the statement that matched it, and so
//! do the control events (a rendition description's is the init segment's): the node
//! serves each beside what it signs (`{file}.sig`). Part-key delegations (a certified
//! ingest key vouching for the key that signs one run of parts) arrive on the statement
//! topic and are admitted into the trust store and kept by the node (`{seq}.partkey`).
//!
//! Time: the gate counts milliseconds since the edge started on tokio's clock (so tests can
//! pause it); certificates, revocations and control events are checked against the wall
//! clock.
//!
//! Long because [`Edge`] is the one place the push side, the MQTT side and the timer
//! meet: it verifies what they bring (on the blocking pool) and applies what the gates
//! decide, in order among the control events, under the gate's lock; every rule it applies
//! lives in a child above.

use domain::time::WallClock;
use std::sync::Arc;

use bytes::Bytes;
use certs::signing::{PartScope, TrustStore};
use certs::CertsError;
use domain::presence::{Presence, PresenceState, Role};
use domain::push_protocol::ControlEvent;
use domain::segment::PartMeta;
use domain::wire::{MediaStatement, SignedEvent, SignedMedia};
use domain::{LiveEvent, NodeId, RenditionName, SegmentMeta, StreamName};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::{BroadcastError, EdgeConfig, Node};
use admission::{Admission, Refusal};
use barriers::Barriers;
use barriers::OfStream;
use candidates::{Claim, Placed, Signed};
use gate::{GateOutput, SignatureGate};
use parts::{PartGate, PartOutput};
use ready::{Lag, Readiness, Verdict};

mod admission;
mod barriers;
mod candidates;
#[cfg(test)]
mod fixtures;
mod gate;
mod intake;
mod mqtt;
mod parts;
mod ready;
mod serve;
mod thumbnail;
mod trust_material;

pub(crate) use candidates::RejectReason;
use gate::SILENT_HOLDS;
pub use serve::run_edge;
use trust_material::TrustMaterial;

/// A node wired as an edge: the state shared by the push endpoint, the MQTT side and the
/// gate's timer. [`run_edge`] makes one and drives it; tests (and embedders without a
/// broker) can drive it by hand through [`Edge::router`], [`Edge::handle_message`] and
/// [`Edge::tick`].
pub struct Edge {
    node: Arc<Node>,
    pub(crate) config: EdgeConfig,
    /// One gate per node, and the control events waiting behind it. Locked for in-memory
    /// work only, never across an await.
    gate: Mutex<Gated>,
    /// The part gate. Locked for in-memory work only; never while `gate` is held, nor
    /// the other way round.
    parts: Mutex<PartGate>,
    /// Shared with verifications running on the blocking pool.
    trust: Arc<RwLock<TrustStore>>,
    /// The root key file and the trust store's bundle, as viewers fetch them; the bundle
    /// rendered again whenever `trust` admits or revokes.
    trust_material: Arc<TrustMaterial>,
    pub(crate) readiness: Mutex<Readiness>,
    /// Whether this node, once ready, has fallen behind live.
    lag: Mutex<Lag>,
    /// Zero of the gate's millisecond clock.
    epoch: Instant,
    /// The control events taken so far, as far as later ones depend on them.
    admission: Mutex<Admission>,
    /// The presence this node announced last (signed, so each announcement's bytes are
    /// its own): only that coming back is the echo readiness waits for.
    announced: Mutex<Option<Vec<u8>>>,
}

/// The gate and the control events queued behind it.
struct Gated {
    gate: SignatureGate,
    /// Control events waiting for segments pushed before them.
    barriers: Barriers<Enveloped>,
}

/// A verified control event and the envelope it came in: a rendition description's is
/// served as its init segment's `.sig`.
#[derive(Debug)]
struct Enveloped {
    event: LiveEvent,
    envelope: Option<Bytes>,
}

impl OfStream for Enveloped {
    fn stream(&self) -> &StreamName {
        self.event.stream()
    }
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("node", &self.node.id())
            .field("public_url", &self.config.public_url)
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// Wires `node` as an edge. Fails if the configuration cannot work (a public URL that
    /// presence cannot carry).
    pub fn new(node: Arc<Node>, config: EdgeConfig) -> Result<Arc<Self>, BroadcastError> {
        let probe = Presence {
            role: Role::Broadcast,
            state: PresenceState::Joining,
            url: Some(config.public_url.clone()),
            direct_url: config.direct_url.clone(),
        };
        if Presence::decode(&probe.encode()).is_err() {
            return Err(BroadcastError::Config {
                reason: "public_url must be http(s)://host[:port] without a path",
            });
        }
        let hold_ms = u64::try_from(config.hold.as_millis()).unwrap_or(u64::MAX);
        let epoch = Instant::now();
        let mut trust = TrustStore::new(config.trust_root.clone());
        for revocation in &config.revocations {
            match trust.revoke(revocation) {
                Ok(key_id) => tracing::info!(%key_id, "key revoked (kept in the key directory)"),
                Err(e) => {
                    tracing::warn!(error = %e, "a kept revocation is not the root's; skipped")
                }
            }
        }
        let trust_material = Arc::new(TrustMaterial::new(
            &config.trust_root,
            &trust,
            &config.provenance_anchors,
        ));
        Ok(Arc::new(Edge {
            trust_material,
            gate: Mutex::new(Gated {
                gate: SignatureGate::new(hold_ms, config.max_held_bytes),
                barriers: Barriers::default(),
            }),
            parts: Mutex::new(PartGate::new(hold_ms, config.max_held_bytes)),
            trust: Arc::new(RwLock::new(trust)),
            readiness: Mutex::new(Readiness::new(epoch, config.ready_timeout)),
            lag: Mutex::new(Lag::default()),
            node,
            config,
            epoch,
            admission: Mutex::new(Admission::default()),
            announced: Mutex::new(None),
        }))
    }

    /// The node behind it.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Runs the gate's clock once: held segments past the hold time become gaps. The timer
    /// of [`run_edge`] calls this every 100 ms.
    pub fn tick(&self) {
        self.with_gate(|gate, now| gate.tick(now));
        self.with_parts(|parts, now| parts.tick(now));
        self.check_lag();
        // Everything a barrier waits for is resolved within SILENT_HOLDS hold times (bytes
        // whose statement may be late wait that long); one that is still there after one
        // more hold time is released rather than kept forever.
        let mut gated = self.gate.lock();
        let now = self.now_ms();
        let hold = u64::try_from(self.config.hold.as_millis()).unwrap_or(u64::MAX);
        let patience = hold.saturating_mul(SILENT_HOLDS + 1);
        for event in gated.barriers.expire(now, patience) {
            self.release(event);
        }
    }

    /// Measures how far behind live the gate is, and marks the node behind (or caught up)
    /// once that has settled ([`Lag`]). A stream whose newest verified statement is older
    /// than four hold times or target durations has ended and does not count.
    fn check_lag(&self) {
        let live_within = self.config.hold.max(self.config.node.segment_target) * 4;
        let live_within_ms = u64::try_from(live_within.as_millis()).unwrap_or(u64::MAX);
        let segments = self.gate.lock().gate.behind(self.now_ms(), live_within_ms);
        self.node.metrics.set_behind_live(segments);
        let Some(behind) = self.lag.lock().observe(Instant::now(), segments) else {
            return;
        };
        self.node.set_behind(behind);
        if behind {
            tracing::warn!(node = %self.node.id(), segments, "behind live; no new viewers until caught up");
        } else {
            tracing::info!(node = %self.node.id(), "caught up with live");
        }
    }

    /// A control event from the ingest (session start, rendition, drop, end). It takes
    /// effect after every segment of its stream that was pushed before it has been
    /// published or given up on, as the ingest sent them in that order — an end must not
    /// overtake the last segments still waiting for their signatures.
    /// `envelope` is the signed statement it came in, kept with it (see [`Enveloped`]).
    pub(crate) fn control(&self, event: LiveEvent, envelope: Bytes) -> Result<(), BroadcastError> {
        let mut gated = self.gate.lock();
        let held = gated.gate.waiting(event.stream());
        let now = self.now_ms();
        let event = Enveloped {
            event,
            envelope: Some(envelope),
        };
        match gated.barriers.arrive(event, held, now) {
            Some(e) => {
                drop(gated);
                self.node.apply_signed(e.event, e.envelope)
            }
            None => Ok(()),
        }
    }

    /// The control event inside a pushed signed statement, once the signature verified
    /// against a trusted ingest key (on the blocking pool) and [`Admission`] took it
    /// (fresh, in session order, a `synced` from its own ingest). Every refusal is counted
    /// by reason.
    pub(crate) async fn verify_event(&self, bytes: &[u8]) -> Result<ControlEvent, BroadcastError> {
        let refuse = |reason: &'static str| {
            self.node.metrics.event_refused(reason);
            BroadcastError::EventRefused { reason }
        };
        let signed = SignedEvent::decode(bytes).map_err(|_| refuse("malformed"))?;
        let statement = signed.statement().map_err(|_| refuse("malformed"))?;
        let trust = Arc::clone(&self.trust);
        let key_id = statement.key_id;
        let now = WallClock.unix_secs();
        let signer = tokio::task::spawn_blocking(move || {
            let trust = trust.read();
            trust.verify(key_id, &signed.statement_bytes, &signed.signature, now)?;
            Ok::<_, CertsError>(trust.key(key_id).map(|k| k.node_id().clone()))
        })
        .await
        .map_err(BroadcastError::Task)?
        .map_err(|e| {
            tracing::warn!(key_id = %key_id, reason = e.reason(), "control event refused");
            refuse(e.reason())
        })?;
        let admitted =
            self.admission
                .lock()
                .admit(&statement, signer.as_ref(), WallClock.unix_ms());
        admitted.map_err(|refusal| {
            let reason = refusal.label();
            match refusal {
                Refusal::Malformed(e) => {
                    self.node.metrics.event_refused(reason);
                    return BroadcastError::BadEvent(e);
                }
                Refusal::Stale { issued_at_ms } => {
                    tracing::warn!(key_id = %key_id, issued_at_ms, "control event signed too long ago (or ahead); refused");
                }
                Refusal::BeforeSession(event) => tracing::warn!(
                    ?event,
                    "control event signed before the session it would change; refused"
                ),
                Refusal::ForeignSync => {}
            }
            refuse(reason)
        })
    }

    /// Whether pushed bytes (a segment's or a part's) can be taken now, before their body
    /// is read. While control events of their stream wait behind the gate, the bytes may
    /// belong to what they announce (a rendition, a new session): then only the stream
    /// must be known, and the events are applied before anything is published.
    pub(crate) fn check_push(&self, claim: &impl Claim) -> Result<(), BroadcastError> {
        let waiting = self.gate.lock().barriers.holds(claim.stream());
        if waiting {
            self.node.check_stream(claim.stream())
        } else {
            self.node
                .check_segment(claim.stream(), claim.rendition(), claim.session())
        }
    }

    /// Pushed bytes (their SHA-256 computed while they streamed in) go to their gate.
    pub(crate) fn offer_bytes<C: Pushable>(&self, claim: C, bytes: Bytes, digest: [u8; 32]) {
        self.node.metrics.pushed_bytes(bytes.len());
        C::offer(self, claim, bytes, digest);
    }

    /// A segment pushed without a body (`domain::push_protocol::Assemble`): its bytes are
    /// parts `0..parts` of it joined, from the part gate ([`PartGate::assemble`]: parts
    /// published, or else the only one pushed), into one buffer the node's window then
    /// shares with those parts' documents. They are a candidate like pushed bytes: the
    /// segment is published only when its signed statement agrees with their length and
    /// digest. [`Assembly::Missing`], counted, when a part is missing or ambiguous: the
    /// ingest then pushes the whole segment. Joined bytes over the push size cap are
    /// refused as a pushed body would be.
    pub(crate) fn assemble(
        &self,
        claim: SegmentMeta,
        prefix: Bytes,
        parts: u32,
    ) -> Result<Assembly, BroadcastError> {
        let pieces = self
            .parts
            .lock()
            .assemble(&claim.lane(), claim.sequence, parts);
        let pieces = match pieces {
            Ok(pieces) => pieces,
            Err(index) => {
                self.node.metrics.assembly("parts_missing");
                return Ok(Assembly::Missing(index));
            }
        };
        let len = prefix.len() + pieces.iter().map(Bytes::len).sum::<usize>();
        let limit = self.config.max_segment_bytes;
        if len > limit {
            return Err(BroadcastError::TooLarge { limit });
        }
        let mut joined = bytes::BytesMut::with_capacity(len);
        let mut hasher = Sha256::new();
        for piece in std::iter::once(&prefix).chain(&pieces) {
            joined.extend_from_slice(piece);
            hasher.update(piece);
        }
        let digest = hasher.finalize().into();
        self.node.metrics.assembly("assembled");
        // Not counted as pushed bytes: none crossed the network for it.
        SegmentMeta::offer(self, claim, joined.freeze(), digest);
        Ok(Assembly::Offered)
    }

    /// Runs one part-gate operation and applies what it decided, under the part gate's
    /// lock (so parts reach the window in the order the gate let them out).
    fn with_parts(&self, operation: impl FnOnce(&mut PartGate, u64) -> Vec<PartOutput>) {
        let mut parts = self.parts.lock();
        let now = self.now_ms();
        for output in operation(&mut parts, now) {
            match output {
                // The envelope goes into the window with the part: viewers check it (.sig).
                PartOutput::Publish {
                    part,
                    arrived_ms,
                    signed,
                } => {
                    let (stream, rendition) =
                        (part.meta.stream.clone(), part.meta.rendition.clone());
                    let (sequence, index) = (part.meta.sequence, part.meta.index);
                    match self.node.apply_signed(LiveEvent::Part(part), Some(signed)) {
                        Ok(()) => self
                            .node
                            .metrics
                            .part_published(now.saturating_sub(arrived_ms) as f64 / 1000.0),
                        // Parts are ephemeral: one the stream cannot take is dropped.
                        Err(e) => {
                            tracing::debug!(%stream, %rendition, sequence, index, error = %e, "verified part not listed")
                        }
                    }
                }
                PartOutput::Rejected(reason) => {
                    self.node.metrics.part_rejected(reason);
                    if reason != RejectReason::Timeout {
                        tracing::warn!(reason = reason.label(), "part rejected");
                    }
                }
            }
        }
    }

    /// Applies a control event that waited behind the gate.
    fn release(&self, e: Enveloped) {
        let stream = e.event.stream().clone();
        if let Err(e) = self.node.apply_signed(e.event, e.envelope) {
            tracing::warn!(%stream, error = %e, "control event refused after waiting for its segments");
        }
    }

    /// Applies one gate output for `stream`/`rendition`/`sequence` in its place among the
    /// control events: those it would overtake first, then it, then those that waited only
    /// for it.
    fn apply_in_order(
        &self,
        barriers: &mut Barriers<Enveloped>,
        (stream, rendition, sequence): (StreamName, RenditionName, u64),
        output: GateOutput,
        now_ms: u64,
    ) {
        for event in barriers.before(&stream, &rendition, sequence) {
            self.release(event);
        }
        self.apply(output, now_ms);
        for event in barriers.resolved(&stream, &rendition, sequence) {
            self.release(event);
        }
    }

    /// Milliseconds since the edge started (the gate's clock).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Verifies a signed statement on the blocking pool, then hands the verdict to the gate
    /// (a segment's) or the part gate (a part's). `signed` is `SignedMedia::decode` of
    /// `envelope`, and `statement` its `statement()`, both decoded by the caller; the
    /// envelope's bytes travel on with what the statement lets through.
    pub(crate) async fn offer_statement(
        &self,
        envelope: Bytes,
        signed: SignedMedia,
        statement: MediaStatement,
    ) -> Result<(), BroadcastError> {
        let trust = Arc::clone(&self.trust);
        let key_id = statement.key_id();
        let now = WallClock.unix_secs();
        // A part's statement may be signed by a key its ingest delegated for the part's
        // stream, session, rendition and run: checked against that scope.
        let part = match &statement {
            MediaStatement::Part(m) => {
                Some((m.stream.clone(), m.session, m.rendition.clone(), m.sequence))
            }
            MediaStatement::Segment(_) => None,
        };
        let (verdict, took) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let trust = trust.read();
            let (message, signature) = (&signed.statement_bytes, &signed.signature);
            let verdict = match &part {
                Some((stream, session, rendition, sequence)) => {
                    let scope = PartScope {
                        stream,
                        session: *session,
                        rendition,
                        sequence: *sequence,
                    };
                    trust.verify_part(key_id, scope, message, signature, now)
                }
                None => trust.verify(key_id, message, signature, now),
            };
            (verdict, started.elapsed())
        })
        .await
        .map_err(BroadcastError::Task)?;
        self.node.metrics.verify_took(took.as_secs_f64());
        match (verdict, statement) {
            (Ok(()), MediaStatement::Segment(statement)) => {
                self.node.metrics.statement_verified();
                let signed = Signed {
                    statement,
                    envelope,
                };
                self.with_gate(|gate, now| gate.statement(now, signed));
            }
            (Ok(()), MediaStatement::Part(statement)) => {
                let signed = Signed {
                    statement,
                    envelope,
                };
                self.with_parts(|parts, now| parts.statement(now, signed));
            }
            (Err(e), statement) => {
                let reason = reject_reason(&e);
                let (stream, rendition, sequence, part) = match &statement {
                    MediaStatement::Segment(m) => (&m.stream, &m.rendition, m.sequence, None),
                    MediaStatement::Part(m) => (&m.stream, &m.rendition, m.sequence, Some(m.index)),
                };
                tracing::warn!(
                    %stream,
                    %rendition,
                    sequence,
                    ?part,
                    key_id = %key_id,
                    reason = reason.label(),
                    error = %e,
                    "statement refused"
                );
                match statement {
                    MediaStatement::Segment(_) => self.with_gate(|_, _| vec![reason.into()]),
                    MediaStatement::Part(_) => self.with_parts(|_, _| vec![reason.into()]),
                }
            }
        }
        Ok(())
    }

    /// A part-key delegation from the statement topic of `stream`/`rendition`: admitted
    /// into the trust store on the blocking pool when a certified, valid, unrevoked ingest
    /// key signed it for that very stream and rendition (the same delegation again, sent
    /// at every segment of its run for nodes that join late, is not checked twice), then
    /// kept by the node for viewers (`{seq}.partkey`).
    pub(crate) async fn offer_part_key(
        &self,
        (stream, rendition): (&StreamName, &RenditionName),
        envelope: Bytes,
    ) -> Result<(), BroadcastError> {
        let (_, delegation) = certs::signing::Delegation::decode(&envelope)?;
        let s = delegation.statement();
        if &s.stream != stream || &s.rendition != rendition {
            return Err(BroadcastError::TopicMismatch {
                what: "part key of another stream or rendition",
            });
        }
        let (session, run) = (s.session, (s.first_sequence, s.last_sequence));
        let known = self
            .trust
            .read()
            .delegation(delegation.key_id())
            .is_some_and(|held| held.envelope() == &envelope[..]);
        if !known {
            let trust = Arc::clone(&self.trust);
            let now = WallClock.unix_secs();
            let bytes = envelope.clone();
            tokio::task::spawn_blocking(move || {
                trust.write().admit_delegation(&bytes, now).map(drop)
            })
            .await
            .map_err(BroadcastError::Task)??;
        }
        if let Err(e) = self
            .node
            .add_part_key((stream, rendition, session), run, envelope)
        {
            // Admitted for verification all the same; a stream this node has not heard
            // start gets it again at the next segment (the ingest resends it).
            tracing::debug!(%stream, %rendition, error = %e, "part key not kept for viewers yet");
        }
        Ok(())
    }

    /// Admits a certificate (encoded bytes) on the blocking pool: its root signature is
    /// checked there.
    pub(crate) async fn admit_certificate(
        &self,
        node: NodeId,
        payload: Bytes,
    ) -> Result<(), BroadcastError> {
        let trust = Arc::clone(&self.trust);
        let material = Arc::clone(&self.trust_material);
        let now = WallClock.unix_secs();
        let key_id = tokio::task::spawn_blocking(move || {
            let cert = certs::signing::IngestCertificate::decode(&payload)?;
            if cert.node_id() != &node {
                return Err(BroadcastError::TopicMismatch {
                    what: "certificate of another ingest node",
                });
            }
            let mut trust = trust.write();
            let key_id = trust.add_certificate(&payload, now)?;
            material.update(&trust);
            Ok(key_id)
        })
        .await
        .map_err(BroadcastError::Task)??;
        tracing::info!(key_id = %key_id, "ingest signing key admitted");
        Ok(())
    }

    /// Applies a root-signed revocation (encoded bytes) of the key its topic names.
    pub(crate) async fn revoke(
        &self,
        key_id: domain::wire::KeyId,
        payload: Bytes,
    ) -> Result<(), BroadcastError> {
        let trust = Arc::clone(&self.trust);
        let material = Arc::clone(&self.trust_material);
        tokio::task::spawn_blocking(move || {
            let revocation = certs::signing::Revocation::decode(&payload)?;
            if revocation.key_id() != key_id {
                return Err(BroadcastError::TopicMismatch {
                    what: "revocation of another key",
                });
            }
            let mut trust = trust.write();
            let key_id = trust.revoke(&payload)?;
            material.update(&trust);
            Ok(key_id)
        })
        .await
        .map_err(BroadcastError::Task)??;
        tracing::warn!(key_id = %key_id, "ingest signing key revoked");
        Ok(())
    }

    /// Runs one gate operation and applies what it decided.
    ///
    /// The outputs are applied while the gate is still locked: outputs of successive
    /// operations must reach the windows in the order the gate produced them (segment 5
    /// before segment 6, from whichever task), and applying them is a short in-memory
    /// update (a playlist render), with no await.
    ///
    /// Segments published or given up on free the bytes of their parts that the part gate
    /// kept for assembly, after the gate's lock is released (the two locks are never held
    /// together).
    fn with_gate(&self, operation: impl FnOnce(&mut SignatureGate, u64) -> Vec<GateOutput>) {
        let mut gated = self.gate.lock();
        let Gated { gate, barriers } = &mut *gated;
        let now = self.now_ms();
        let mut done = Vec::new();
        for output in operation(gate, now) {
            let place = match &output {
                GateOutput::Publish { segment, .. } => {
                    let m = &segment.meta;
                    Some((m.stream.clone(), m.rendition.clone(), m.sequence))
                }
                GateOutput::Gap {
                    stream,
                    rendition,
                    sequence,
                    ..
                } => Some((stream.clone(), rendition.clone(), *sequence)),
                GateOutput::Rejected(_) => None,
            };
            match place {
                Some(place) => {
                    done.push(((place.0.clone(), place.1.clone()), place.2));
                    self.apply_in_order(barriers, place, output, now);
                }
                None => {
                    self.apply(output, now);
                    for event in barriers.ready() {
                        self.release(event);
                    }
                }
            }
        }
        self.node.metrics.set_pending(gate.pending());
        drop(gated);
        if !done.is_empty() {
            let mut parts = self.parts.lock();
            for (lane, sequence) in done {
                parts.segment_done(&lane, sequence);
            }
        }
    }

    fn apply(&self, output: GateOutput, now_ms: u64) {
        match output {
            // The envelope goes into the window with the segment: viewers check it (.sig).
            GateOutput::Publish {
                segment,
                arrived_ms,
                signed,
            } => {
                let (stream, rendition, sequence) = (
                    segment.meta.stream.clone(),
                    segment.meta.rendition.clone(),
                    segment.meta.sequence,
                );
                match self
                    .node
                    .apply_signed(LiveEvent::Segment(segment), Some(signed))
                {
                    Ok(()) => {
                        let waited = now_ms.saturating_sub(arrived_ms);
                        self.node.metrics.waited(waited as f64 / 1000.0);
                    }
                    Err(e) => {
                        tracing::warn!(%stream, %rendition, sequence, error = %e, "verified segment not published");
                    }
                }
            }
            GateOutput::Gap {
                stream,
                rendition,
                sequence,
                duration,
                discontinuity_sequence,
            } => {
                let duration = duration.unwrap_or(self.config.node.segment_target);
                match self.node.gap(
                    &stream,
                    &rendition,
                    sequence,
                    duration,
                    discontinuity_sequence,
                ) {
                    Ok(()) => {
                        tracing::info!(%stream, %rendition, sequence, "no verified segment in time; listed as a gap");
                    }
                    // A statement of a stream this node does not carry.
                    Err(e) => {
                        tracing::debug!(%stream, %rendition, sequence, error = %e, "gap not listed")
                    }
                }
            }
            GateOutput::Rejected(reason) => {
                self.node.metrics.rejected(reason);
                if reason != RejectReason::Timeout {
                    tracing::warn!(reason = reason.label(), "segment rejected");
                }
            }
        }
    }

    /// A live message on this node's own presence topic: the echo [`ready`] waits
    /// for if it is the presence announced last. An older one (the last will of this
    /// node's previous run, queued for its persistent session while it was down) comes
    /// before the retained presences and must not count.
    pub(crate) fn echoed(&self, payload: &[u8]) {
        if self.announced.lock().as_deref() == Some(payload) {
            self.readiness.lock().echoed();
        }
    }

    /// Whether the node became ready just now (it is then marked ready).
    pub(crate) fn check_ready(&self) -> bool {
        let verdict = self.readiness.lock().check(Instant::now());
        match verdict {
            None => false,
            Some(Verdict::Synced) => {
                tracing::info!(node = %self.node.id(), "caught up with every ingest; ready");
                self.node.mark_ready();
                true
            }
            Some(Verdict::TimedOut { waiting_for }) => {
                let waiting_for: Vec<&str> = waiting_for.iter().map(NodeId::as_str).collect();
                tracing::warn!(
                    node = %self.node.id(),
                    timeout = ?self.config.ready_timeout,
                    ?waiting_for,
                    "readiness timeout: reporting ready without every ingest's window"
                );
                self.node.mark_ready();
                true
            }
        }
    }

    /// Where this node stands: joining until ready, then ready or behind.
    pub(crate) fn presence_state(&self) -> PresenceState {
        if self.node.is_draining() {
            return PresenceState::Draining;
        }
        match (self.node.is_ready(), self.node.is_behind()) {
            (false, _) => PresenceState::Joining,
            (true, false) => PresenceState::Ready,
            (true, true) => PresenceState::Behind,
        }
    }

    /// This node's presence payload now.
    pub(crate) fn presence(&self) -> Vec<u8> {
        let payload = self.signed_presence(&Presence {
            role: Role::Broadcast,
            state: self.presence_state(),
            url: Some(self.config.public_url.clone()),
            direct_url: self.config.direct_url.clone(),
        });
        *self.announced.lock() = Some(payload.clone());
        payload
    }

    /// `presence` signed with the edge key, as this node's presence topic carries it. A
    /// signature takes well under a millisecond and presences change rarely (connect,
    /// ready, behind, offline), so it is made in place.
    pub(crate) fn signed_presence(&self, presence: &Presence) -> Vec<u8> {
        self.config
            .presence_signer
            .sign(self.node().id(), presence, WallClock.unix_ms())
    }
}

/// What a bodiless segment push came to ([`Edge::assemble`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assembly {
    /// The joined parts went to the gate as the segment's candidate bytes.
    Offered,
    /// This part (the first such) is neither published nor pushed unambiguously here.
    Missing(u32),
}

/// Pushed bytes' claim, and the gate that takes them: a segment's the signature gate, a
/// part's the part gate.
pub(crate) trait Pushable: Claim + Sized {
    /// Hands the bytes to the gate and applies what it decided.
    fn offer(edge: &Edge, claim: Self, bytes: Bytes, digest: [u8; 32]);
}

impl Pushable for SegmentMeta {
    fn offer(edge: &Edge, claim: Self, bytes: Bytes, digest: [u8; 32]) {
        edge.with_gate(|gate, now| gate.bytes(now, claim, bytes, digest));
    }
}

impl Pushable for PartMeta {
    fn offer(edge: &Edge, claim: Self, bytes: Bytes, digest: [u8; 32]) {
        edge.with_parts(|parts, now| parts.bytes(now, claim, bytes, digest));
    }
}

/// The gate's reason for a signature the trust store refused. `verify` only returns the
/// four signature reasons; anything else is refused as a bad signature (never fail open).
fn reject_reason(e: &CertsError) -> RejectReason {
    match e.reason() {
        "unknown_key" => RejectReason::UnknownKey,
        "expired_key" => RejectReason::ExpiredKey,
        "revoked_key" => RejectReason::RevokedKey,
        "unknown_delegation" => RejectReason::UnknownDelegation,
        "expired_delegation" => RejectReason::ExpiredDelegation,
        _ => RejectReason::BadSignature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trust_reason_maps_to_the_gate_reason_of_the_same_name() {
        let key_id = domain::wire::KeyId([1; 16]);
        for e in [
            CertsError::BadSignature,
            CertsError::UnknownKey { key_id },
            CertsError::Expired {
                key_id,
                not_after: 1,
                now: 2,
            },
            CertsError::NotYetValid {
                key_id,
                not_before: 2,
                now: 1,
            },
            CertsError::Revoked {
                key_id,
                revoked_at: 1,
            },
            CertsError::DelegationScope { key_id },
            CertsError::DelegationExpired {
                key_id,
                sequence: 9,
                first: 1,
                last: 5,
            },
        ] {
            assert_eq!(reject_reason(&e).label(), e.reason());
        }
        assert_eq!(
            reject_reason(&CertsError::Randomness),
            RejectReason::BadSignature
        );
    }
}

//! What a viewer checks on every fragment it plays, sans-IO: the Rust twin of the player's
//! `web/src/verify.js` (`PlaybackVerifier`, `Trust`), for `sealcast verify` and for any
//! player written in Rust. Same checks, same order, same reasons: the browser test
//! (`broadcast/tests/broadcast/player_verify.rs`) and this module's tests run the same
//! cases, made once by its `vectors` module (feature `test-vectors`). The layouts it reads
//! are docs/wire.md's.
//!
//! - [`ViewerTrust`]: the pinned root, the ingest keys it certified and the keys it revoked,
//!   admitted item by item from a trust bundle (`/trust/v1/bundle`), and the part-key
//!   delegations fetched beside parts (`{seq}.partkey`). Unlike an edge's
//!   [`TrustStore`](super::TrustStore) it keeps an expired or later-revoked certificate:
//!   whether a key may have signed is decided at the time each statement counts as signed
//!   (a recording outlives the keys that signed it).
//! - [`Playback`]: what the viewer opened, from the URL it asked for and never from a
//!   playlist: a live stream (every statement counts as signed at the viewer's clock) or
//!   one recording (its own statements count as signed when they say, never later than now).
//! - [`PlaybackVerifier`]: one playback's checks, fragment by fragment: the sidecar's
//!   envelope and statement, the key that signed it, the signature, then that the statement
//!   is about the fragment asked for (stream, rendition, sequence, part, discontinuity,
//!   duration, length, SHA-256), that the publish session changes only at a discontinuity,
//!   and that sequence numbers follow on (a skip only over what was refused or is a gap).
//!
//! - `thumbnail`: a thumbnail and its sidecar, checked with the same trust and reasons.
//!
//! Nothing here fetches: the caller hands in the fragment's bytes and its sidecar, and is
//! told when a part names a key a delegation may vouch for ([`Check::NeedsPartKey`]): it
//! fetches that `{seq}.partkey`, hands it to [`PlaybackVerifier::admit_part_key`] and checks the
//! fragment again.
//!
//! Long because every check the browser makes is here in the browser's order, each with
//! its reason, so the two verifiers can be compared line by line; splitting the checks
//! would split that order.

use std::collections::{HashMap, HashSet};

use domain::paths::{MediaFile, PublicPath, StreamTree};
use domain::push_protocol::ControlEvent;
use domain::wire::{
    EventStatement, KeyId, PartStatement, SegmentStatement, SignatureAlgorithm, SignedEvent,
    EVENT_TAG, MAX_MEDIA_STATEMENT_LEN, PART_TAG, SEGMENT_TAG,
};
use domain::{LiveEvent, RenditionName, SessionId, StreamName};
use sha2::{Digest, Sha256};

use super::bundle::TrustBundle;
use super::cert::{IngestCertificate, Revocation, VerifiedKey};
use super::delegation::Delegation;
use super::keys::RootPublicKey;

/// Why a fragment was refused: the stable reason strings of `web/src/verify.js`, which
/// scripts, tests and `sealcast verify`'s output all name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No sidecar (`{media URL}.sig`), or an empty one.
    MissingSignature,
    /// The sidecar, or the statement in it, is not exactly the layout.
    MalformedSignature,
    /// A genuine statement of another kind (a part's for a segment, ...).
    WrongKind,
    /// No certificate from the root, and no delegation, for the signing key.
    UnknownKey,
    /// The root revoked the key before the statement counts as signed.
    RevokedKey,
    /// The statement counts as signed outside the key's validity.
    ExpiredKey,
    /// The statement names another algorithm than its key's.
    WrongAlgorithm,
    /// The signature does not verify.
    BadSignature,
    /// A statement (or a delegation) about another stream.
    WrongStream,
    /// ... another rendition.
    WrongRendition,
    /// ... another sequence number than the one asked for.
    WrongSequence,
    /// ... another part index.
    WrongPart,
    /// ... another discontinuity sequence than the playlist's.
    WrongDiscontinuity,
    /// ... another duration than the playlist's.
    WrongDuration,
    /// A publish session other than the pinned one without a discontinuity, or not the
    /// recording the URL names.
    WrongSession,
    /// The bytes are not as long as signed.
    WrongLength,
    /// The bytes do not hash to what was signed.
    DigestMismatch,
    /// A sequence number (or part) skipped that was neither refused nor a gap.
    SkippedSequence,
    /// One already played, again.
    RepeatedSequence,
    /// One before what was played, on the same rendition.
    ReorderedSequence,
    /// The URL is not in the cluster's layout.
    UnexpectedUrl,
    /// The part's delegated key was delegated for segments that do not include this one.
    ExpiredDelegation,
}

impl Reason {
    /// Every reason, in the order verify.js's header lists them.
    pub const ALL: [Reason; 22] = [
        Self::MissingSignature,
        Self::MalformedSignature,
        Self::WrongKind,
        Self::UnknownKey,
        Self::RevokedKey,
        Self::ExpiredKey,
        Self::WrongAlgorithm,
        Self::BadSignature,
        Self::WrongStream,
        Self::WrongRendition,
        Self::WrongSequence,
        Self::WrongPart,
        Self::WrongDiscontinuity,
        Self::WrongDuration,
        Self::WrongSession,
        Self::WrongLength,
        Self::DigestMismatch,
        Self::SkippedSequence,
        Self::RepeatedSequence,
        Self::ReorderedSequence,
        Self::ExpiredDelegation,
        Self::UnexpectedUrl,
    ];

    /// The stable string (`digest_mismatch`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::WrongKind => "wrong_kind",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::ExpiredKey => "expired_key",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::BadSignature => "bad_signature",
            Self::WrongStream => "wrong_stream",
            Self::WrongRendition => "wrong_rendition",
            Self::WrongSequence => "wrong_sequence",
            Self::WrongPart => "wrong_part",
            Self::WrongDiscontinuity => "wrong_discontinuity",
            Self::WrongDuration => "wrong_duration",
            Self::WrongSession => "wrong_session",
            Self::WrongLength => "wrong_length",
            Self::DigestMismatch => "digest_mismatch",
            Self::SkippedSequence => "skipped_sequence",
            Self::RepeatedSequence => "repeated_sequence",
            Self::ReorderedSequence => "reordered_sequence",
            Self::UnexpectedUrl => "unexpected_url",
            Self::ExpiredDelegation => "expired_delegation",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A refusal: its reason and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: Reason,
    /// What exactly, for a log line.
    pub detail: String,
}

fn refuse<T>(reason: Reason, detail: impl Into<String>) -> Result<T, Refused> {
    Err(Refused {
        reason,
        detail: detail.into(),
    })
}

/// What [`PlaybackVerifier::check`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Verified: the bytes may be played.
    Verified,
    /// Refused: never play these bytes.
    Refused(Refused),
    /// A part signed by a key that is neither certified nor delegated yet: fetch the
    /// delegation at `path` (`/live/{stream}/{rendition}/{seq}.partkey` of the stream,
    /// rendition and segment the part's statement names, on the same origin and with the
    /// same query as the part), hand it to [`PlaybackVerifier::admit_part_key`] (or `None`
    /// if there is none) and check again.
    NeedsPartKey {
        /// The delegation's path.
        path: String,
    },
}

/// Tolerance between a signed duration and the playlist's (printed with 5 decimals).
const DURATION_TOLERANCE_S: f64 = 0.001;

/// Most refused numbers remembered, and most rendition descriptions, delegations per
/// playback (as verify.js).
const MAX_REMEMBERED: usize = 256;

/// What a viewer trusts: the pinned root, every key it certified (kept whatever its
/// validity: checked at the time a statement counts as signed), the keys it revoked (the
/// earliest time per key), and the part-key delegations admitted during playback.
#[derive(Debug, Clone)]
pub struct ViewerTrust {
    root: RootPublicKey,
    keys: HashMap<KeyId, VerifiedKey>,
    revoked: HashMap<KeyId, u64>,
    delegations: HashMap<KeyId, Delegation>,
}

impl ViewerTrust {
    /// Trusts what `root` signs, nothing yet.
    pub fn new(root: RootPublicKey) -> Self {
        ViewerTrust {
            root,
            keys: HashMap::new(),
            revoked: HashMap::new(),
            delegations: HashMap::new(),
        }
    }

    /// The pinned root.
    pub fn root(&self) -> &RootPublicKey {
        &self.root
    }

    /// When the root revoked `key_id` (a key, or a C2PA credential id), if it did.
    pub fn revoked_at(&self, key_id: KeyId) -> Option<u64> {
        self.revoked.get(&key_id).copied()
    }

    /// Admits what a bundle's items prove, revocations first; returns how many items were
    /// refused (another root's, or not what they claim). Of two certificates for one key
    /// the one that runs longer is kept; revocations only tighten.
    pub fn admit_bundle(&mut self, bundle: &TrustBundle) -> usize {
        let mut refused = 0;
        for bytes in &bundle.revocations {
            let checked =
                Revocation::decode(bytes).and_then(|r| self.root.verify_revocation(&r).map(|()| r));
            match checked {
                Ok(r) => {
                    let at = self.revoked.entry(r.key_id()).or_insert(r.revoked_at());
                    *at = (*at).min(r.revoked_at());
                }
                Err(_) => refused += 1,
            }
        }
        for bytes in &bundle.certificates {
            let checked =
                IngestCertificate::decode(bytes).and_then(|c| self.root.check_certificate(&c));
            match checked {
                Ok(key) => {
                    let longer = self.keys.get(&key.key_id()).is_none_or(|held| {
                        key.validity().not_after() > held.validity().not_after()
                    });
                    if longer {
                        self.keys.insert(key.key_id(), key);
                    }
                }
                Err(_) => refused += 1,
            }
        }
        refused
    }

    /// The certified key `key_id` may have signed a statement of `algorithm` that counts as
    /// signed at `at` (unix seconds): not revoked by then (checked first, as the edges do),
    /// certified, of that algorithm, valid then.
    fn resolve(
        &self,
        key_id: KeyId,
        algorithm: SignatureAlgorithm,
        at: u64,
    ) -> Result<&VerifiedKey, Refused> {
        if let Some(&revoked_at) = self.revoked.get(&key_id) {
            if at >= revoked_at {
                return refuse(
                    Reason::RevokedKey,
                    format!("key {key_id} revoked at {revoked_at}"),
                );
            }
        }
        let Some(key) = self.keys.get(&key_id) else {
            return refuse(
                Reason::UnknownKey,
                format!("no certificate for key {key_id}"),
            );
        };
        if key.algorithm() != algorithm {
            return refuse(
                Reason::WrongAlgorithm,
                format!("key {key_id} is {:?}", key.algorithm()),
            );
        }
        let validity = key.validity();
        if at < validity.not_before() || at > validity.not_after() {
            return refuse(
                Reason::ExpiredKey,
                format!(
                    "key {key_id} valid {}..{}, signed at {at}",
                    validity.not_before(),
                    validity.not_after()
                ),
            );
        }
        Ok(key)
    }

    /// Checks `signature` over `message` by the certified key `key_id` of `algorithm`, as
    /// signed at `at` (unix seconds): its key unknown, revoked or expired by its reason, a
    /// signature that does not verify → `bad_signature`. For what is signed beside the
    /// statements (a C2PA manifest's co-signature).
    pub fn verify_signed(
        &self,
        key_id: KeyId,
        algorithm: SignatureAlgorithm,
        at: u64,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Refused> {
        let key = self.resolve(key_id, algorithm, at)?;
        if key.verify(message, signature).is_err() {
            return refuse(Reason::BadSignature, "the signature does not verify");
        }
        Ok(())
    }

    /// Admits a signed delegation (`{seq}.partkey`) whose signer may sign at `at`:
    /// malformed → `malformed_signature`, its signer unknown, revoked or expired by its
    /// reason, a signature that does not verify → `bad_signature`.
    fn admit_delegation(&mut self, bytes: &[u8], at: u64) -> Result<(), Refused> {
        let (signed, delegation) = Delegation::decode(bytes)
            .or_else(|e| refuse(Reason::MalformedSignature, format!("part key: {e}")))?;
        let s = delegation.statement();
        let signer = self.resolve(s.key_id, s.algorithm, at)?;
        if signer
            .verify(&signed.statement_bytes, &signed.signature)
            .is_err()
        {
            return refuse(Reason::BadSignature, "the part-key delegation's signature");
        }
        if self.delegations.len() >= MAX_REMEMBERED {
            self.delegations.clear();
        }
        self.delegations.insert(delegation.key_id(), delegation);
        Ok(())
    }

    /// The key that verifies a part statement by `key_id` delegated by an ingest for the
    /// part at `scope`: the delegation's own scope (another stream, session or rendition
    /// is the statement being about another fragment; outside its run,
    /// `expired_delegation`) and its delegator at `at`.
    fn resolve_delegated(
        &self,
        key_id: KeyId,
        algorithm: SignatureAlgorithm,
        scope: &Scope<'_>,
        at: u64,
    ) -> Option<Result<&Delegation, Refused>> {
        let d = self.delegations.get(&key_id)?;
        let s = d.statement();
        let checked = (|| {
            if s.delegated_algorithm != algorithm {
                return refuse(Reason::WrongAlgorithm, "not the delegated key's algorithm");
            }
            if &s.stream != scope.stream {
                return refuse(Reason::WrongStream, format!("delegated for {}", s.stream));
            }
            if s.session != scope.session {
                return refuse(Reason::WrongSession, "delegated for another session");
            }
            if &s.rendition != scope.rendition {
                return refuse(
                    Reason::WrongRendition,
                    format!("delegated for {}", s.rendition),
                );
            }
            if !s.covers_sequence(scope.sequence) {
                return refuse(
                    Reason::ExpiredDelegation,
                    format!(
                        "delegated for {}..={}, part of {}",
                        s.first_sequence, s.last_sequence, scope.sequence
                    ),
                );
            }
            self.resolve(s.key_id, s.algorithm, at)?;
            Ok(d)
        })();
        Some(checked)
    }
}

/// Where a part belongs, for a delegation's scope.
struct Scope<'a> {
    stream: &'a StreamName,
    session: SessionId,
    rendition: &'a RenditionName,
    sequence: u64,
}

/// What a fragment URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    kind: Kind,
    stream: StreamName,
    rendition: RenditionName,
    /// A recording's session (its id), `None` live.
    session: Option<SessionId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    Segment,
    Part,
}

impl Target {
    /// The fragment a request path names, through the one parser of the layout.
    fn parse(path: &str) -> Option<Self> {
        let (stream, rendition, session, file) = match PublicPath::parse(path)? {
            PublicPath::Init(s, r) => (s, r, None, MediaFile::Init),
            PublicPath::Fragment(s, r, n) => (s, r, None, MediaFile::Fragment(n)),
            PublicPath::Segment(s, r, n) => (s, r, None, MediaFile::Ts(n)),
            PublicPath::Part(s, r, n, p) => (s, r, None, MediaFile::Part(n, p)),
            PublicPath::VodInit(s, id, r) => (s, r, Some(id), MediaFile::Init),
            PublicPath::VodFragment(s, id, r, n) => (s, r, Some(id), MediaFile::Fragment(n)),
            PublicPath::VodSegment(s, id, r, n) => (s, r, Some(id), MediaFile::Ts(n)),
            _ => return None,
        };
        let kind = match file {
            MediaFile::Init => Kind::Init,
            MediaFile::Part(..) => Kind::Part,
            MediaFile::Fragment(_) | MediaFile::Ts(_) => Kind::Segment,
        };
        Some(Target {
            kind,
            stream,
            rendition,
            session,
        })
    }
}

/// What a playback is of, decided by the URL the viewer opened (a master or media
/// playlist's path: the tree `/live/…` or `/vod/{stream}/{id}/…`), never by anything a
/// playlist says: `#EXT-X-ENDLIST`, `#EXT-X-PLAYLIST-TYPE` and the fragment URIs a playlist
/// lists are unsigned, and whoever serves the playlist could otherwise turn a live stream's
/// checks into a recording's, where a statement's own (forgeable) time decides whether a
/// revoked or expired key may have signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playback {
    /// A live stream, ended or not (and anything that is not a recording's URL): every
    /// statement counts as signed at the viewer's clock, as on the edges.
    Live,
    /// One recording: the statements of fragments under its own tree
    /// (`/vod/{stream}/{session}/…`) count as signed at the time they state (a key since
    /// rotated out or revoked signed them before), never later than now; anything else at
    /// the viewer's clock.
    Recording {
        /// The recording's stream.
        stream: StreamName,
        /// The recording's id: the publish session it recorded.
        session: SessionId,
    },
}

impl Playback {
    /// The playback a viewer opens at request path `path` (no query): a recording for
    /// `/vod/{stream}/{id}/…` with a valid id, live for anything else (the stricter).
    pub fn of_path(path: &str) -> Self {
        match StreamTree::of(path) {
            Some(StreamTree::Recording(stream, Some(session))) => {
                Playback::Recording { stream, session }
            }
            _ => Playback::Live,
        }
    }

    /// Whether `target` is a fragment of this recording.
    fn holds(&self, target: &Target) -> bool {
        match self {
            Playback::Live => false,
            Playback::Recording { stream, session } => {
                target.session == Some(*session) && &target.stream == stream
            }
        }
    }
}

/// One fragment to check, with what the player knows about it from the playlist.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// The request path (no query): it names stream, rendition and kind.
    pub path: &'a str,
    /// The bytes fetched.
    pub bytes: &'a [u8],
    /// The sidecar's bytes (`{path}.sig`), `None` if there was none.
    pub sidecar: Option<&'a [u8]>,
    /// The media sequence the playlist gives it (`None` for `init.mp4`).
    pub sequence: Option<u64>,
    /// The part index the playlist gives it, for a part.
    pub part: Option<u32>,
    /// The discontinuity sequence the playlist gives it.
    pub discontinuity: u64,
    /// Its duration in the playlist, seconds (`None`: not checked).
    pub duration: Option<f64>,
    /// The viewer's clock, unix milliseconds.
    pub now_ms: u64,
}

/// A decoded statement from a sidecar.
enum Signed {
    Segment(SegmentStatement),
    Part(PartStatement),
    Event(EventStatement),
}

impl Signed {
    fn key(&self) -> (KeyId, SignatureAlgorithm) {
        match self {
            Self::Segment(m) => (m.key_id, m.algorithm),
            Self::Part(m) => (m.key_id, m.algorithm),
            Self::Event(e) => (e.key_id, e.algorithm),
        }
    }
}

/// A verified segment's or part's statement, as far as continuity cares.
#[derive(Debug, Clone)]
struct Media {
    stream: StreamName,
    session: SessionId,
    sequence: u64,
    part: Option<u32>,
    discontinuity: u64,
}

#[derive(Debug, Clone)]
struct Pinned {
    stream: StreamName,
    session: SessionId,
    discontinuity: u64,
}

#[derive(Debug, Clone)]
struct Position {
    sequence: u64,
    part: Option<u32>,
    rendition: RenditionName,
}

/// One playback's checks (see the module's header). Keeps the session pinned from the
/// first fragment and the position continuity is checked against; a player that moves on
/// purpose (a seek, a flushed buffer, following a live stream after a pause) calls
/// [`PlaybackVerifier::reposition`] first.
#[derive(Debug)]
pub struct PlaybackVerifier {
    trust: ViewerTrust,
    /// What the viewer opened: which statements may count as signed at their own time.
    playback: Playback,
    pinned: Option<Pinned>,
    position: Option<Position>,
    /// The position is the first fragment taken on its rung after a switch from another,
    /// and has not moved since: hls.js may step back one segment on the new rung (its
    /// backtrack when the switch fragment cannot start playback), then load that fragment
    /// again.
    switched: bool,
    free: bool,
    /// What was refused since the last fragment verified: (sequence, None) for "something
    /// of it", (sequence, Some(part)) for one part.
    refused_at: HashSet<(u64, Option<u32>)>,
    /// Issue time (unix ms) of each rendition's verified description, by stream/rendition.
    inits: HashMap<(StreamName, RenditionName), u64>,
    /// Part keys whose delegation was asked for: a delegation is fetched once per key and
    /// segment, not once per part.
    asked_part_keys: HashSet<AskedPartKey>,
    /// What the last [`Check::NeedsPartKey`] asked for, for
    /// [`PlaybackVerifier::admit_part_key`].
    pending_part_key: Option<AskedPartKey>,
}

impl PlaybackVerifier {
    /// A playback of `playback` (see [`Playback::of_path`]) over `trust`.
    pub fn new(trust: ViewerTrust, playback: Playback) -> Self {
        PlaybackVerifier {
            trust,
            playback,
            pinned: None,
            position: None,
            switched: false,
            free: true,
            refused_at: HashSet::new(),
            inits: HashMap::new(),
            asked_part_keys: HashSet::new(),
            pending_part_key: None,
        }
    }

    /// The trust it checks against.
    pub fn trust(&self) -> &ViewerTrust {
        &self.trust
    }

    /// The trust, to admit a newer bundle into.
    pub fn trust_mut(&mut self) -> &mut ViewerTrust {
        &mut self.trust
    }

    /// The player moved on purpose: the next fragment may be any number.
    pub fn reposition(&mut self) {
        self.free = true;
    }

    /// Admits the delegation fetched for part `f` after [`Check::NeedsPartKey`] (`None`:
    /// none was served), at the viewer's clock (parts are live). A refusal is the part's
    /// (and counts as one for continuity); after `Ok` check `f` again.
    pub fn admit_part_key(
        &mut self,
        f: &Fragment<'_>,
        part_key: Option<&[u8]>,
    ) -> Result<(), Refused> {
        if let Some(asked) = self.pending_part_key.take() {
            if self.asked_part_keys.len() >= MAX_REMEMBERED {
                self.asked_part_keys.clear();
            }
            self.asked_part_keys.insert(asked);
        }
        let Some(bytes) = part_key else {
            return Ok(());
        };
        let admitted = self.trust.admit_delegation(bytes, f.now_ms / 1000);
        if admitted.is_err() {
            if let Some(sequence) = f.sequence {
                self.remember(sequence, f.part);
            }
        }
        admitted
    }

    /// Checks one fragment. Refusals of segments and parts are remembered (a later skip
    /// over them is no gap in continuity); `gap(n)` says whether the caller may skip
    /// sequence `n`: the playlist marks it as a gap, or (a player after a seek back into
    /// what it partly buffered) its media is already held, verified before.
    pub fn check(&mut self, f: &Fragment<'_>, gap: impl Fn(u64) -> bool) -> Check {
        let Some(target) = Target::parse(f.path) else {
            return Check::Refused(Refused {
                reason: Reason::UnexpectedUrl,
                detail: f.path.to_owned(),
            });
        };
        match self.check_signed(&target, f, &gap) {
            Ok(None) => Check::Verified,
            Ok(Some(media)) => {
                self.advance(&target, &media);
                Check::Verified
            }
            Err(Outcome::NeedsPartKey(path)) => Check::NeedsPartKey { path },
            Err(Outcome::Refused(refused)) => {
                if target.kind != Kind::Init {
                    if let Some(sequence) = f.sequence {
                        self.remember(sequence, f.part);
                    }
                }
                Check::Refused(refused)
            }
        }
    }

    fn remember(&mut self, sequence: u64, part: Option<u32>) {
        if self.refused_at.len() >= MAX_REMEMBERED {
            self.refused_at.clear();
        }
        self.refused_at.insert((sequence, None));
        if part.is_some() {
            self.refused_at.insert((sequence, part));
        }
    }

    /// Envelope, statement, key, signature, then what the statement says; the media's
    /// statement if it is a segment or a part.
    fn check_signed(
        &mut self,
        target: &Target,
        f: &Fragment<'_>,
        gap: &dyn Fn(u64) -> bool,
    ) -> Result<Option<Media>, Outcome> {
        let sidecar = match f.sidecar {
            Some(s) if !s.is_empty() => s,
            _ => return Err(Refused::new(Reason::MissingSignature, "").into()),
        };
        // Read under the larger cap first, so that a genuine statement of another kind is
        // named as such; a media statement over its own cap is malformed all the same.
        let envelope = SignedEvent::decode(sidecar)
            .map_err(|e| Refused::new(Reason::MalformedSignature, e.to_string()))?;
        let statement = &envelope.statement_bytes;
        let kind = if statement.starts_with(PART_TAG) {
            Kind::Part
        } else if statement.starts_with(SEGMENT_TAG) {
            Kind::Segment
        } else if statement.starts_with(EVENT_TAG) {
            Kind::Init
        } else {
            return Err(Refused::new(Reason::MalformedSignature, "unknown domain tag").into());
        };
        if kind != target.kind {
            return Err(Refused::new(
                Reason::WrongKind,
                format!("a {kind:?} statement for a {:?}", target.kind),
            )
            .into());
        }
        if kind != Kind::Init && statement.len() > MAX_MEDIA_STATEMENT_LEN {
            return Err(Refused::new(Reason::MalformedSignature, "statement over its cap").into());
        }
        let malformed =
            |e: domain::DomainError| Refused::new(Reason::MalformedSignature, e.to_string());
        let signed = match kind {
            Kind::Segment => {
                Signed::Segment(SegmentStatement::decode(statement).map_err(malformed)?)
            }
            Kind::Part => Signed::Part(PartStatement::decode(statement).map_err(malformed)?),
            Kind::Init => Signed::Event(EventStatement::decode(statement).map_err(malformed)?),
        };

        let at = self.signed_at(target, &signed, f);
        let (key_id, algorithm) = signed.key();
        let valid = match &signed {
            Signed::Part(m)
                if !self.trust.keys.contains_key(&key_id)
                    && !self.trust.revoked.contains_key(&key_id) =>
            {
                let scope = Scope {
                    stream: &m.stream,
                    session: m.session,
                    rendition: &m.rendition,
                    sequence: m.sequence,
                };
                match self.trust.resolve_delegated(key_id, algorithm, &scope, at) {
                    Some(delegation) => delegation?.verify(statement, &envelope.signature).is_ok(),
                    None => {
                        let asked = (m.stream.clone(), m.rendition.clone(), m.sequence, key_id);
                        if self.asked_part_keys.contains(&asked) {
                            return Err(Refused::new(
                                Reason::UnknownKey,
                                format!("no certificate or delegation for key {key_id}"),
                            )
                            .into());
                        }
                        self.pending_part_key = Some(asked);
                        let path =
                            PublicPath::PartKey(m.stream.clone(), m.rendition.clone(), m.sequence);
                        return Err(Outcome::NeedsPartKey(path.to_string()));
                    }
                }
            }
            _ => self
                .trust
                .resolve(key_id, algorithm, at)?
                .verify(statement, &envelope.signature)
                .is_ok(),
        };
        if !valid {
            return Err(Refused::new(Reason::BadSignature, "").into());
        }

        match signed {
            Signed::Event(event) => {
                self.check_init(target, &event, f.bytes)?;
                Ok(None)
            }
            Signed::Segment(m) => {
                let media = Media {
                    stream: m.stream.clone(),
                    session: m.session,
                    sequence: m.sequence,
                    part: None,
                    discontinuity: m.discontinuity_sequence,
                };
                self.check_fields(target, &media, &m.rendition, m.duration_us, f)?;
                check_bytes(f.bytes, m.byte_len, &m.digest)?;
                self.check_session(&media)?;
                self.check_continuity(target, &media, gap)?;
                Ok(Some(media))
            }
            Signed::Part(m) => {
                let media = Media {
                    stream: m.stream.clone(),
                    session: m.session,
                    sequence: m.sequence,
                    part: Some(m.index),
                    discontinuity: m.discontinuity_sequence,
                };
                self.check_fields(target, &media, &m.rendition, m.duration_us, f)?;
                check_bytes(f.bytes, m.byte_len, &m.digest)?;
                self.check_session(&media)?;
                self.check_continuity(target, &media, gap)?;
                Ok(Some(media))
            }
        }
    }

    /// An init segment: the signed rendition description of its stream and rendition
    /// carries exactly these bytes.
    fn check_init(
        &mut self,
        target: &Target,
        event: &EventStatement,
        bytes: &[u8],
    ) -> Result<(), Refused> {
        let parsed: ControlEvent = serde_json::from_slice(&event.body)
            .or_else(|e| refuse(Reason::MalformedSignature, format!("event body: {e}")))?;
        let ControlEvent::Live(LiveEvent::Rendition { stream, info }) = parsed else {
            return refuse(Reason::WrongKind, "not a rendition description");
        };
        let Some(init) = info.init else {
            return refuse(Reason::WrongKind, "the rendition has no init segment");
        };
        if stream != target.stream {
            return refuse(Reason::WrongStream, stream.to_string());
        }
        if info.name != target.rendition {
            return refuse(Reason::WrongRendition, info.name.to_string());
        }
        if bytes.len() != init.bytes().len() {
            return refuse(
                Reason::WrongLength,
                format!("{} bytes, signed {}", bytes.len(), init.bytes().len()),
            );
        }
        if bytes != &init.bytes()[..] {
            return refuse(Reason::DigestMismatch, "");
        }
        if self.inits.len() >= MAX_REMEMBERED {
            self.inits.clear();
        }
        self.inits.insert(
            (target.stream.clone(), target.rendition.clone()),
            event.issued_at_ms,
        );
        Ok(())
    }

    /// When a statement counts as signed, unix seconds: live, the viewer's clock (a stolen
    /// key can state any time, the clock it cannot); a fragment of the recording the viewer
    /// opened, the time it states (an event's issue time; a segment, its rendition
    /// description's), never later than now. Which of the two is the [`Playback`]'s and the
    /// fragment URL's to say, both of them: never a playlist's tag.
    fn signed_at(&self, target: &Target, signed: &Signed, f: &Fragment<'_>) -> u64 {
        let now = f.now_ms / 1000;
        if !self.playback.holds(target) {
            return now;
        }
        let ms = match signed {
            Signed::Event(e) => Some(e.issued_at_ms),
            Signed::Part(m) => Some(m.program_date_time_ms),
            Signed::Segment(_) => self
                .inits
                .get(&(target.stream.clone(), target.rendition.clone()))
                .copied(),
        };
        ms.map_or(now, |ms| (ms / 1000).min(now))
    }

    fn check_fields(
        &self,
        target: &Target,
        m: &Media,
        rendition: &RenditionName,
        duration_us: u64,
        f: &Fragment<'_>,
    ) -> Result<(), Refused> {
        if m.stream != target.stream {
            return refuse(Reason::WrongStream, m.stream.to_string());
        }
        if rendition != &target.rendition {
            return refuse(Reason::WrongRendition, rendition.to_string());
        }
        if target.session.is_some_and(|s| s != m.session) {
            return refuse(Reason::WrongSession, "not the recording in the URL");
        }
        if f.sequence != Some(m.sequence) {
            return refuse(
                Reason::WrongSequence,
                format!("signed {}, asked for {:?}", m.sequence, f.sequence),
            );
        }
        if m.part.is_some() && m.part != f.part {
            return refuse(
                Reason::WrongPart,
                format!("signed part {:?}, asked for {:?}", m.part, f.part),
            );
        }
        if m.discontinuity != f.discontinuity {
            return refuse(
                Reason::WrongDiscontinuity,
                format!(
                    "signed {}, the playlist says {}",
                    m.discontinuity, f.discontinuity
                ),
            );
        }
        if let Some(duration) = f.duration.filter(|d| d.is_finite()) {
            let signed = duration_us as f64 / 1e6;
            if (signed - duration).abs() > DURATION_TOLERANCE_S {
                return refuse(
                    Reason::WrongDuration,
                    format!("signed {signed} s, the playlist says {duration} s"),
                );
            }
        }
        Ok(())
    }

    fn check_session(&self, m: &Media) -> Result<(), Refused> {
        match &self.pinned {
            Some(p)
                if p.stream == m.stream
                    && m.session != p.session
                    && m.discontinuity <= p.discontinuity =>
            {
                refuse(
                    Reason::WrongSession,
                    "the publish session changed without a discontinuity",
                )
            }
            _ => Ok(()),
        }
    }

    /// After sequence N comes N (another part of it, another rung's copy) or N + 1; a jump
    /// ahead only over numbers refused or listed as gaps; a step back only to the previous
    /// number on another rung (a rung switch aligning), to the previous number on the same
    /// rung right after switching to it (and then the switch fragment again: hls.js
    /// backtracking), or to an earlier part of the same segment after a part of it was
    /// refused (the player recovering from its start).
    fn check_continuity(
        &self,
        target: &Target,
        m: &Media,
        gap: &dyn Fn(u64) -> bool,
    ) -> Result<(), Refused> {
        let Some(last) = self.position.as_ref().filter(|_| !self.free) else {
            return Ok(());
        };
        let (seq, part) = (m.sequence, m.part);
        let same_rung = last.rendition == target.rendition;
        let refused = |key: (u64, Option<u32>)| self.refused_at.contains(&key);
        if self.switched && same_rung {
            // Right after a rung switch: the segment before the switch fragment on the new
            // rung, or the switch fragment itself again (hls.js backtracking).
            if Some(seq) == last.sequence.checked_sub(1)
                || (seq == last.sequence && part == last.part)
            {
                return Ok(());
            }
        }
        if seq == last.sequence {
            if !same_rung {
                return Ok(());
            }
            match (part, last.part) {
                (Some(p), Some(lp)) => {
                    // Back within the segment only to recover from a part of it refused
                    // since: a player restarts at an independent part (hls.js does).
                    if p <= lp && !refused((seq, None)) {
                        return refuse(Reason::RepeatedSequence, format!("part {seq}.{p} again"));
                    }
                    for i in lp + 1..p {
                        if !refused((seq, Some(i))) {
                            return refuse(
                                Reason::SkippedSequence,
                                format!("part {seq}.{i} skipped"),
                            );
                        }
                    }
                    return Ok(());
                }
                // The whole segment after its parts.
                (None, Some(_)) => return Ok(()),
                _ => return refuse(Reason::RepeatedSequence, format!("{seq} again")),
            }
        }
        if Some(seq) == last.sequence.checked_add(1) {
            return Ok(());
        }
        if seq > last.sequence {
            // Bounded: what is remembered is bounded, and a longer jump over gaps alone is
            // checked as far as a playlist can list them.
            let reach = (seq - last.sequence).min(100_000);
            for n in last.sequence + 1..last.sequence + reach {
                if !refused((n, None)) && !gap(n) {
                    return refuse(Reason::SkippedSequence, format!("{n} skipped"));
                }
            }
            return Ok(());
        }
        if !same_rung && Some(seq) == last.sequence.checked_sub(1) {
            return Ok(());
        }
        refuse(
            Reason::ReorderedSequence,
            format!("{seq} after {}", last.sequence),
        )
    }

    /// A fragment verified: pin the session, move the position on.
    fn advance(&mut self, target: &Target, m: &Media) {
        match &mut self.pinned {
            Some(p) if p.stream == m.stream && p.session == m.session => {
                p.discontinuity = p.discontinuity.max(m.discontinuity);
            }
            pinned => {
                *pinned = Some(Pinned {
                    stream: m.stream.clone(),
                    session: m.session,
                    discontinuity: m.discontinuity,
                });
            }
        }
        // A rung's copy of an earlier number (a rung switch aligning) does not move it back.
        let moves = match &self.position {
            None => true,
            Some(last) => {
                self.free
                    || m.sequence > last.sequence
                    || (m.sequence == last.sequence && target.rendition == last.rendition)
            }
        };
        if moves {
            self.switched = self
                .position
                .as_ref()
                .is_some_and(|last| last.rendition != target.rendition);
            self.position = Some(Position {
                sequence: m.sequence,
                part: m.part,
                rendition: target.rendition.clone(),
            });
        }
        self.free = false;
        self.refused_at.clear();
    }
}

/// Length, then SHA-256, of the bytes against what was signed.
fn check_bytes(bytes: &[u8], byte_len: u64, digest: &[u8; 32]) -> Result<(), Refused> {
    if bytes.len() as u64 != byte_len {
        return refuse(
            Reason::WrongLength,
            format!("{} bytes, signed {byte_len}", bytes.len()),
        );
    }
    let got: [u8; 32] = Sha256::digest(bytes).into();
    if &got != digest {
        return refuse(Reason::DigestMismatch, "");
    }
    Ok(())
}

impl Refused {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Refused {
            reason,
            detail: detail.into(),
        }
    }
}

/// Inside a check: refused, or waiting for a delegation (at this path).
enum Outcome {
    Refused(Refused),
    NeedsPartKey(String),
}

/// A delegation asked for: the stream, rendition and segment of a part, and its key.
type AskedPartKey = (StreamName, RenditionName, u64, KeyId);

impl From<Refused> for Outcome {
    fn from(r: Refused) -> Self {
        Outcome::Refused(r)
    }
}

/// The test vectors both verifiers run (this crate's tests, and the browser's through the
/// `test-vectors` feature).
#[cfg(any(test, feature = "test-vectors"))]
pub mod vectors;

/// A thumbnail as a viewer checks it (verify.js's `verifyThumbnail`'s twin).
pub mod thumbnail;

/// The thumbnail cases both verifiers run.
#[cfg(any(test, feature = "test-vectors"))]
pub mod thumbnail_vectors;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod wire_doc;

//! The one set of test vectors of the viewer-side verifiers: this crate's
//! [`PlaybackVerifier`](super::PlaybackVerifier) (`playback/tests.rs`) and the player's
//! `web/src/verify.js` (`broadcast/tests/broadcast/player_verify.rs`, in Chromium) both run
//! every [`Case`] made here and must give every [`Step`] its [`Verdict`]. A refusal is named
//! by [`Reason::label`], the stable strings verify.js's header lists (the product contract),
//! so the two verifiers are held to the same words.
//!
//! Each case is a run of fragments through one fresh verifier over the trust of [`Keys`]:
//! a root, an ingest key it certified, one it certified and revoked at `now`, one whose
//! certificate ran out an hour before `now` and one it never certified. Statements are made
//! by the real signing code (`SegmentStatement::from_meta`, `PartStatement::from_meta`,
//! [`SigningKey::sign_event`], [`SigningKey::delegate_parts`]), then changed where a case
//! says so. The byte layouts are docs/wire.md's.
//!
//! Compiled for this crate's tests and with the `test-vectors` feature (the broadcast
//! crate's tests); never in a production build.
//!
//! Long because it is every case of the contract in one list, with the one way to sign a
//! fragment they share: split, the list could no longer be read against verify.js's
//! reasons in one go.

use std::time::Duration;

use domain::segment::PartMeta;
use domain::wire::{MediaStatement, PartStatement, SegmentStatement, SignatureAlgorithm, Signed};
use domain::{
    Codecs, InitSegment, LiveEvent, NodeId, RenditionInfo, RenditionName, SegmentMeta, SessionId,
    StreamName,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Reason;
use crate::signing::{PartKey, RootKey, SigningKey, TrustBundle, Validity};

/// The stream of every vector.
pub const STREAM: &str = "demo";
/// The rendition of every vector (another one, `720p`, where a case says).
pub const RENDITION: &str = "360p";
/// The publish session of every vector, and the recording a [`RECORDING`] playback opens.
pub const SESSION: SessionId = SessionId(0x5ea1_0000_0000_0001);
/// A later publish session.
pub const LATER_SESSION: SessionId = SessionId(0x5ea1_0000_0000_0002);
/// A segment's duration.
pub const SEGMENT_MS: u64 = 2000;
/// A part's duration.
pub const PART_MS: u64 = 333;
/// What the viewer opened: a live stream.
pub const LIVE: &str = "/live/demo/master.m3u8";
/// What the viewer opened: the recording of [`SESSION`].
pub const RECORDING: &str = "/vod/demo/5ea1000000000001/master.m3u8";

/// Bytes that stand for a fragment: deterministic, different per `seed`.
pub fn media(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_be_bytes()[0]
        })
        .collect()
}

/// What a fragment is: a whole segment, a part (its index), or a rung's init segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// A whole segment (`{seq}.m4s`).
    Segment,
    /// A part (`{seq}.{index}.m4s`).
    Part(u32),
    /// An init segment (`init.mp4`), signed as its rendition's description.
    Init,
}

/// One fragment as an ingest would sign it; fields changed per case.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Segment, part or init.
    pub kind: FragmentKind,
    /// The stream its statement names.
    pub stream: &'static str,
    /// The rendition its statement names.
    pub rendition: &'static str,
    /// The publish session its statement names.
    pub session: SessionId,
    /// Its media sequence.
    pub sequence: u64,
    /// Its discontinuity sequence.
    pub discontinuity: u64,
    /// A part's capture time, an init's description's issue time (unix ms).
    pub stated_ms: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Fragment {
    /// Segment `sequence` of [`STREAM`]/[`RENDITION`] in [`SESSION`], 3000 bytes.
    pub fn segment(sequence: u64) -> Self {
        Fragment {
            kind: FragmentKind::Segment,
            stream: STREAM,
            rendition: RENDITION,
            session: SESSION,
            sequence,
            discontinuity: 0,
            stated_ms: 0,
            bytes: media(sequence, 3000),
        }
    }

    /// Part `index` of segment `sequence`, 700 bytes.
    pub fn part(sequence: u64, index: u32) -> Self {
        Fragment {
            kind: FragmentKind::Part(index),
            bytes: media(sequence * 100 + u64::from(index), 700),
            ..Fragment::segment(sequence)
        }
    }

    /// The init segment of [`STREAM`]/[`RENDITION`], 600 bytes.
    pub fn init() -> Self {
        Fragment {
            kind: FragmentKind::Init,
            bytes: media(7_777, 600),
            ..Fragment::segment(0)
        }
    }

    /// This fragment, changed.
    pub fn with(mut self, change: impl FnOnce(&mut Fragment)) -> Self {
        change(&mut self);
        self
    }

    /// Its sidecar (`{url}.sig`), signed by `key` as the ingest signs.
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        self.sign_with(key.algorithm(), key.key_id(), |m| key.sign(m))
    }

    /// Its sidecar, naming `algorithm` and `key_id`, signed by `sign`.
    pub fn sign_with(
        &self,
        algorithm: SignatureAlgorithm,
        key_id: domain::wire::KeyId,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let stream = StreamName::new(self.stream).expect("stream");
        let rendition = RenditionName::new(self.rendition).expect("rendition");
        let len = self.bytes.len() as u64;
        let digest: [u8; 32] = Sha256::digest(&self.bytes).into();
        let statement = match self.kind {
            FragmentKind::Segment => SegmentStatement::from_meta(
                &SegmentMeta {
                    stream,
                    rendition,
                    session: self.session,
                    sequence: self.sequence,
                    discontinuity_sequence: self.discontinuity,
                    discontinuity: false,
                    duration: Duration::from_millis(SEGMENT_MS),
                    start_pts_90k: 0,
                },
                algorithm,
                key_id,
                len,
                digest,
            )
            .encode(),
            FragmentKind::Part(index) => PartStatement::from_meta(
                &PartMeta {
                    stream,
                    rendition,
                    session: self.session,
                    sequence: self.sequence,
                    index,
                    discontinuity_sequence: self.discontinuity,
                    independent: index == 0,
                    duration: Duration::from_millis(PART_MS),
                    program_date_time_ms: self.stated_ms,
                },
                algorithm,
                key_id,
                len,
                digest,
            )
            .encode(),
            FragmentKind::Init => {
                let event = LiveEvent::Rendition {
                    stream,
                    info: RenditionInfo {
                        name: rendition,
                        width: 640,
                        height: 360,
                        frame_rate: 30.0,
                        codecs: "avc1.64001e,mp4a.40.2".parse::<Codecs>().expect("codecs"),
                        init: Some(InitSegment::new(self.bytes.clone().into()).expect("init")),
                        part_target_us: Some(PART_MS * 1000),
                    },
                };
                let body = serde_json::to_vec(&event).expect("event JSON");
                let statement = domain::wire::EventStatement {
                    algorithm,
                    key_id,
                    issued_at_ms: self.stated_ms,
                    body,
                };
                return domain::wire::SignedEvent::sign(&statement, sign).encode();
            }
        };
        let signature = sign(&statement);
        Signed::<MediaStatement>::new(statement, signature).encode()
    }

    /// Its URL in the live tree (`/live/{stream}/{rendition}/…`).
    pub fn url(&self) -> String {
        let base = format!("/live/{}/{}", self.stream, self.rendition);
        match self.kind {
            FragmentKind::Segment => format!("{base}/{}.m4s", self.sequence),
            FragmentKind::Part(i) => format!("{base}/{}.{i}.m4s", self.sequence),
            FragmentKind::Init => format!("{base}/init.mp4"),
        }
    }
}

/// What a step must get: verified, or refused for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Verified: `"ok"`.
    Ok,
    /// Refused, for [`Reason::label`].
    Refused(Reason),
}

impl Verdict {
    /// `"ok"`, or the reason's stable string: what either verifier's verdict is compared to.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Refused(r) => r.label(),
        }
    }
}

/// One check: what the player knows of a fragment, and the verdict it must get.
#[derive(Debug, Clone)]
pub struct Step {
    /// The fragment's URL (a path: no query).
    pub url: String,
    /// The bytes served.
    pub bytes: Vec<u8>,
    /// The sidecar served (`None`: none).
    pub sidecar: Option<Vec<u8>>,
    /// The media sequence the playlist gives it.
    pub sequence: Option<u64>,
    /// The part index the playlist gives it.
    pub part: Option<u32>,
    /// The discontinuity sequence the playlist gives it.
    pub discontinuity: u64,
    /// Its duration in the playlist, seconds (`None`: not checked).
    pub duration: Option<f64>,
    /// The viewer's clock, unix ms.
    pub now_ms: u64,
    /// Sequence numbers the playlist marks as gaps.
    pub gaps: Vec<u64>,
    /// Whether the player repositions (a seek) before this step.
    pub reposition: bool,
    /// What `/live/{stream}/{rendition}/{seq}.partkey` serves if the verifier asks for the
    /// delegation of the part's key (`None`: nothing).
    pub part_key: Option<Vec<u8>>,
    /// The verdict it must get.
    pub expect: Verdict,
}

impl Step {
    /// This step, changed.
    pub fn with(mut self, change: impl FnOnce(&mut Step)) -> Self {
        change(&mut self);
        self
    }
}

/// A run of steps through one fresh verifier.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it shows.
    pub name: &'static str,
    /// The URL the viewer opened: [`LIVE`] or [`RECORDING`].
    pub playback: &'static str,
    /// The fragments, in order.
    pub steps: Vec<Step>,
}

/// The keys the vectors are signed with, and the time they are about.
#[derive(Debug)]
pub struct Keys {
    /// The cluster root.
    pub root: RootKey,
    /// Certified for a day either side of `now`.
    pub ingest: SigningKey,
    /// Certified like `ingest`, revoked at `now`.
    pub revoked: SigningKey,
    /// Certified from two hours to one hour before `now`.
    pub expired: SigningKey,
    /// Never certified.
    pub stranger: SigningKey,
    /// The viewer's clock of every step unless a case moves it, unix seconds.
    pub now: u64,
}

impl Keys {
    /// Fresh keys of `algorithm` about `now` (unix seconds).
    pub fn new(algorithm: SignatureAlgorithm, now: u64) -> Self {
        let key = || SigningKey::generate(algorithm).expect("key");
        Keys {
            root: RootKey::generate(algorithm).expect("root"),
            ingest: key(),
            revoked: key(),
            expired: key(),
            stranger: key(),
            now,
        }
    }

    /// The trust bundle a viewer fetches: three certificates and one revocation.
    pub fn bundle(&self) -> TrustBundle {
        let certify = |key: &SigningKey, name: &str, validity: Validity| {
            self.root
                .certify(key.public_key(), NodeId::new(name).expect("node"), validity)
                .expect("certify")
                .encode()
        };
        let now = self.now;
        let current = Validity::new(now - 86_400, now + 86_400).expect("validity");
        TrustBundle {
            certificates: vec![
                certify(&self.ingest, "ingest1", current),
                certify(&self.revoked, "ingest2", current),
                certify(
                    &self.expired,
                    "ingest3",
                    Validity::new(now - 7200, now - 3600).expect("validity"),
                ),
            ],
            revocations: vec![self.root.revoke(self.revoked.key_id(), now).encode()],
        }
    }

    /// `fragment` signed by `key`, as the playlist describes it, at `now`.
    pub fn step(&self, fragment: &Fragment, key: &SigningKey, expect: Verdict) -> Step {
        let (sequence, part, duration) = match fragment.kind {
            FragmentKind::Segment => (Some(fragment.sequence), None, Some(SEGMENT_MS as f64 / 1e3)),
            FragmentKind::Part(i) => (Some(fragment.sequence), Some(i), Some(PART_MS as f64 / 1e3)),
            FragmentKind::Init => (None, None, None),
        };
        Step {
            url: fragment.url(),
            bytes: fragment.bytes.clone(),
            sidecar: Some(fragment.sign(key)),
            sequence,
            part,
            discontinuity: fragment.discontinuity,
            duration,
            now_ms: self.now * 1000,
            gaps: Vec::new(),
            reposition: false,
            part_key: None,
            expect,
        }
    }

    /// `fragment` signed by the ingest key, verified.
    pub fn ok(&self, fragment: &Fragment) -> Step {
        self.step(fragment, &self.ingest, Verdict::Ok)
    }

    /// `fragment` signed by the ingest key (changed after), refused for `reason`.
    pub fn refused(&self, fragment: &Fragment, reason: Reason) -> Step {
        self.step(fragment, &self.ingest, Verdict::Refused(reason))
    }

    /// `fragment`'s sidecar signed by the ingest key under its key id, naming the other
    /// algorithm than the key's.
    pub fn misnamed(&self, fragment: &Fragment) -> Vec<u8> {
        let other = match self.ingest.algorithm() {
            SignatureAlgorithm::Ed25519 => SignatureAlgorithm::MlDsa65,
            SignatureAlgorithm::MlDsa65 => SignatureAlgorithm::Ed25519,
        };
        fragment.sign_with(other, self.ingest.key_id(), |m| self.ingest.sign(m))
    }

    /// A delegation by `signer` for `stream`/`rendition` in [`SESSION`], segments
    /// `first..=last`.
    pub fn delegate(
        &self,
        signer: &SigningKey,
        (stream, rendition, first, last): (&str, &str, u64, u64),
    ) -> PartKey {
        signer
            .delegate_parts(
                &StreamName::new(stream).expect("stream"),
                SESSION,
                &RenditionName::new(rendition).expect("rendition"),
                first,
                last,
            )
            .expect("delegated")
    }

    /// Part `fragment` signed by the delegated key `key`, with `served` as its `.partkey`.
    pub fn by(
        &self,
        fragment: &Fragment,
        key: &PartKey,
        served: Option<&PartKey>,
        expect: Verdict,
    ) -> Step {
        let sidecar = fragment.sign_with(key.algorithm(), key.key_id(), |m| key.sign(m));
        self.step(fragment, &self.ingest, expect).with(|s| {
            s.sidecar = Some(sidecar);
            s.part_key = served.map(|d| d.envelope().to_vec());
        })
    }
}

/// A `/live/{stream}/{rendition}/…` fragment URL moved into the recording of `session`.
pub fn in_recording(url: &str, session: SessionId) -> String {
    let rest = url.strip_prefix("/live/").expect("a live URL");
    let (stream, rest) = rest.split_once('/').expect("a stream");
    format!("/vod/{stream}/{session}/{rest}")
}

/// Flips the lowest bit of byte `at` (the last one if `at` is past the end).
pub fn flip(bytes: &mut [u8], at: usize) {
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
}

/// Changes a step's sidecar, which it has.
fn sidecar(s: &mut Step, change: impl FnOnce(&mut Vec<u8>)) {
    change(s.sidecar.as_mut().expect("a sidecar"));
}

/// Every case, each a run of steps on a fresh verifier over `k`'s bundle.
pub fn cases(k: &Keys) -> Vec<Case> {
    use Reason::*;
    let refused = Verdict::Refused;
    let seg = Fragment::segment;
    let part = Fragment::part;
    let init = Fragment::init();
    let now_ms = k.now * 1000;
    let case = |name, playback, steps| Case {
        name,
        playback,
        steps,
    };
    vec![
        case(
            "good init, segments and parts play in order",
            LIVE,
            vec![
                k.ok(&init),
                k.ok(&seg(10)),
                k.ok(&part(11, 0)),
                k.ok(&part(11, 1)),
                k.ok(&seg(11)),
                k.ok(&seg(12)),
                k.ok(&seg(12).with(|f| f.rendition = "720p")),
            ],
        ),
        case(
            "one byte flipped",
            LIVE,
            vec![
                k.refused(&seg(10), DigestMismatch)
                    .with(|s| flip(&mut s.bytes, 1500)),
                k.refused(&part(10, 0), DigestMismatch)
                    .with(|s| flip(&mut s.bytes, 0)),
                k.refused(&init, DigestMismatch)
                    .with(|s| flip(&mut s.bytes, 599)),
            ],
        ),
        case(
            "wrong length",
            LIVE,
            vec![
                k.refused(&seg(10), WrongLength).with(|s| {
                    s.bytes.pop();
                }),
                k.refused(&part(10, 0), WrongLength)
                    .with(|s| s.bytes.push(0)),
                k.refused(&init, WrongLength).with(|s| s.bytes.push(0)),
            ],
        ),
        case(
            "a genuine statement of another stream or rung",
            LIVE,
            vec![
                k.refused(&seg(10).with(|f| f.stream = "other"), WrongStream)
                    .with(|s| s.url = seg(10).url()),
                k.refused(&part(10, 1).with(|f| f.rendition = "720p"), WrongRendition)
                    .with(|s| s.url = part(10, 1).url()),
                k.refused(&init.clone().with(|f| f.stream = "other"), WrongStream)
                    .with(|s| s.url = init.url()),
                k.ok(&seg(10)),
            ],
        ),
        case(
            "an older segment replayed under a newer number",
            LIVE,
            vec![
                k.ok(&seg(11)),
                k.refused(&seg(9), WrongSequence).with(|s| {
                    s.url = seg(12).url();
                    s.sequence = Some(12);
                }),
                k.refused(&part(9, 2), WrongPart).with(|s| {
                    s.url = part(9, 1).url();
                    s.part = Some(1);
                }),
            ],
        ),
        case(
            "a skipped sequence",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(&seg(12), SkippedSequence),
                k.refused(&part(12, 0), SkippedSequence),
                k.ok(&seg(11)),
                k.ok(&part(12, 0)),
                k.refused(&part(12, 2), SkippedSequence),
            ],
        ),
        case(
            "skips over refused numbers, gaps and a reposition are allowed",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(&seg(11), DigestMismatch)
                    .with(|s| flip(&mut s.bytes, 7)),
                k.ok(&seg(12)),
                k.ok(&seg(14)).with(|s| s.gaps = vec![13]),
                k.ok(&seg(20)).with(|s| s.reposition = true),
                k.ok(&seg(3)).with(|s| s.reposition = true),
            ],
        ),
        case(
            "repeated and reordered sequences",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(&seg(10), RepeatedSequence),
                k.ok(&seg(11)),
                k.refused(&seg(10), ReorderedSequence),
                k.ok(&part(12, 0)),
                k.refused(&part(12, 0), RepeatedSequence),
                k.ok(&part(12, 1)),
                k.ok(&seg(12).with(|f| f.rendition = "720p")),
            ],
        ),
        case(
            "one segment back on a rung just switched to, then the switch fragment again",
            LIVE,
            vec![
                k.ok(&part(11, 2)),
                k.ok(&part(12, 0).with(|f| f.rendition = "720p")),
                k.ok(&part(11, 0).with(|f| f.rendition = "720p")),
                k.ok(&part(11, 1).with(|f| f.rendition = "720p")),
                k.ok(&part(12, 0).with(|f| f.rendition = "720p")),
                k.ok(&part(12, 1).with(|f| f.rendition = "720p")),
                // Only right after the switch: no further step back, no other repeat.
                k.refused(
                    &part(11, 2).with(|f| f.rendition = "720p"),
                    ReorderedSequence,
                ),
                k.refused(
                    &part(12, 0).with(|f| f.rendition = "720p"),
                    RepeatedSequence,
                ),
                k.ok(&part(12, 2).with(|f| f.rendition = "720p")),
                // Not two back, even right after a switch.
                k.ok(&part(13, 0)),
                k.refused(&part(11, 0), ReorderedSequence),
            ],
        ),
        case(
            "back to an earlier part of a segment only after a part of it was refused",
            LIVE,
            vec![
                k.ok(&part(12, 0)),
                k.ok(&part(12, 1)),
                k.refused(&part(12, 2), DigestMismatch)
                    .with(|s| flip(&mut s.bytes, 3)),
                k.ok(&part(12, 0)),
                k.ok(&part(12, 1)),
                k.ok(&part(12, 2)),
                k.refused(&part(12, 1), RepeatedSequence),
                k.ok(&part(12, 3)),
            ],
        ),
        case(
            "the session changes only at a discontinuity",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(&seg(11).with(|f| f.session = LATER_SESSION), WrongSession),
                k.ok(&seg(11).with(|f| {
                    f.session = LATER_SESSION;
                    f.discontinuity = 1;
                }))
                .with(|s| s.discontinuity = 1),
                // The earlier session again, at the same discontinuity.
                k.refused(&seg(12).with(|f| f.discontinuity = 1), WrongSession)
                    .with(|s| s.discontinuity = 1),
            ],
        ),
        case(
            "discontinuity sequence and duration are the playlist's",
            LIVE,
            vec![
                k.refused(&seg(10), WrongDiscontinuity)
                    .with(|s| s.discontinuity = 1),
                k.refused(&seg(10), WrongDuration)
                    .with(|s| s.duration = Some(2.5)),
                k.refused(&part(10, 0), WrongDuration)
                    .with(|s| s.duration = Some(0.5)),
                k.ok(&seg(10)).with(|s| s.duration = Some(2.0004)),
            ],
        ),
        case(
            "a revoked key: refused for what it signed after the revocation",
            LIVE,
            vec![
                k.step(&seg(10), &k.revoked, Verdict::Ok)
                    .with(|s| s.now_ms = now_ms - 60_000),
                k.step(&seg(11), &k.revoked, refused(RevokedKey))
                    .with(|s| s.now_ms = now_ms + 60_000),
                // Live, a part's capture time is only what its signer says.
                k.step(
                    &part(11, 0).with(|f| f.stated_ms = now_ms - 30_000),
                    &k.revoked,
                    refused(RevokedKey),
                )
                .with(|s| s.now_ms = now_ms + 60_000),
            ],
        ),
        case(
            // Issue 45 item 4: a live stream whose playlist says it ended (ENDLIST, which
            // anyone serving the playlist can append; the browser's script says
            // `live: false`) is judged as live: a backdated statement by a stolen, revoked
            // key is refused.
            "a live stream is judged at the viewer's clock, whatever its statements say",
            LIVE,
            vec![
                k.step(
                    &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                    &k.revoked,
                    refused(RevokedKey),
                )
                .with(|s| s.now_ms = now_ms + 60_000),
                k.step(&seg(10), &k.revoked, refused(RevokedKey))
                    .with(|s| s.now_ms = now_ms + 60_000),
                // Nor does a playlist that points a live playback at a recording's URLs.
                k.step(
                    &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                    &k.revoked,
                    refused(RevokedKey),
                )
                .with(|s| {
                    s.url = in_recording(&s.url, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                k.step(&seg(10), &k.revoked, refused(RevokedKey)).with(|s| {
                    s.url = in_recording(&s.url, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
            ],
        ),
        case(
            "a recording: segments count as signed when their rendition was described",
            RECORDING,
            vec![
                k.step(&seg(10), &k.revoked, refused(RevokedKey)).with(|s| {
                    s.url = in_recording(&s.url, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                k.step(
                    &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                    &k.revoked,
                    Verdict::Ok,
                )
                .with(|s| {
                    s.url = in_recording(&s.url, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                k.step(&seg(10), &k.revoked, Verdict::Ok).with(|s| {
                    s.url = in_recording(&s.url, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                // Signed (it says) after the revocation.
                k.step(
                    &init.clone().with(|f| f.stated_ms = now_ms + 30_000),
                    &k.revoked,
                    refused(RevokedKey),
                )
                .with(|s| {
                    s.url = in_recording(&s.url, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
            ],
        ),
        case(
            "a recording's own time counts only under its own URLs",
            RECORDING,
            vec![
                // Another recording's tree, or the live tree: the viewer's clock.
                k.step(
                    &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                    &k.revoked,
                    refused(RevokedKey),
                )
                .with(|s| {
                    s.url = in_recording(&s.url, LATER_SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                k.step(
                    &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                    &k.revoked,
                    refused(RevokedKey),
                )
                .with(|s| s.now_ms = now_ms + 60_000),
                // Recordings have no parts.
                k.refused(&part(10, 0), UnexpectedUrl)
                    .with(|s| s.url = in_recording(&s.url, SESSION)),
            ],
        ),
        case(
            "unknown and expired keys",
            LIVE,
            vec![
                k.step(&seg(10), &k.stranger, refused(UnknownKey)),
                k.step(&part(10, 0), &k.expired, refused(ExpiredKey)),
                k.step(&init, &k.stranger, refused(UnknownKey)),
                k.ok(&seg(10)),
            ],
        ),
        case(
            "a statement that names another algorithm than its key's",
            LIVE,
            vec![
                k.refused(&seg(10), WrongAlgorithm)
                    .with(|s| s.sidecar = Some(k.misnamed(&seg(10)))),
                k.refused(&init, WrongAlgorithm)
                    .with(|s| s.sidecar = Some(k.misnamed(&init))),
                k.ok(&seg(10)),
            ],
        ),
        case(
            "missing, empty and malformed sidecars",
            LIVE,
            vec![
                k.refused(&seg(10), MissingSignature)
                    .with(|s| s.sidecar = None),
                k.refused(&seg(10), MissingSignature)
                    .with(|s| s.sidecar = Some(Vec::new())),
                k.refused(&seg(10), MalformedSignature)
                    .with(|s| sidecar(s, |b| b.push(0))),
                k.refused(&part(10, 0), MalformedSignature).with(|s| {
                    sidecar(s, |b| {
                        b.pop();
                    })
                }),
                // A statement length over the cap.
                k.refused(&seg(10), MalformedSignature)
                    .with(|s| sidecar(s, |b| b[..4].copy_from_slice(&5000u32.to_be_bytes()))),
                k.refused(&init, MalformedSignature)
                    .with(|s| sidecar(s, |b| b.extend_from_slice(b"xx"))),
                // The algorithm byte (after the 4-byte length and the 29-byte tag).
                k.refused(&seg(10), MalformedSignature)
                    .with(|s| sidecar(s, |b| b[4 + 29] = 9)),
                k.ok(&seg(10)),
            ],
        ),
        case(
            "a statement of another kind",
            LIVE,
            vec![
                k.refused(&part(10, 0), WrongKind).with(|s| {
                    s.url = seg(10).url();
                    s.part = None;
                }),
                k.refused(&seg(10), WrongKind).with(|s| {
                    s.url = part(10, 0).url();
                    s.part = Some(0);
                }),
                k.refused(&init, WrongKind).with(|s| s.url = seg(10).url()),
                k.refused(&seg(10), WrongKind).with(|s| s.url = init.url()),
            ],
        ),
        case(
            "a signature that does not verify",
            LIVE,
            vec![
                // Inside the signature.
                k.refused(&seg(10), BadSignature).with(|s| {
                    sidecar(s, |b| {
                        let at = b.len() - 20;
                        flip(b, at)
                    })
                }),
                // The last byte of the digest inside the statement.
                k.refused(&part(10, 0), BadSignature).with(|s| {
                    sidecar(s, |b| {
                        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                        flip(b, 4 + len - 1)
                    })
                }),
            ],
        ),
        case(
            "a recording's session is the one in its URL",
            RECORDING,
            vec![
                k.refused(&seg(10), WrongSession).with(|s| {
                    s.url = format!("/vod/{STREAM}/{LATER_SESSION}/{RENDITION}/10.m4s");
                }),
                k.ok(&seg(10)).with(|s| {
                    s.url = format!("/vod/{STREAM}/{SESSION}/{RENDITION}/10.m4s");
                }),
                k.refused(&seg(11), UnexpectedUrl).with(|s| {
                    s.url = format!("/live/{STREAM}/{RENDITION}/../11.m4s.bak");
                }),
            ],
        ),
        case("parts signed by a delegated key", LIVE, {
            let run = (STREAM, RENDITION, 20, 24);
            let d = k.delegate(&k.ingest, run);
            let undelegated = k.delegate(&k.ingest, run);
            let of_720p = k.delegate(&k.ingest, (STREAM, "720p", 20, 24));
            let by_revoked = k.delegate(&k.revoked, run);
            let later = k.delegate(&k.ingest, (STREAM, RENDITION, 25, 29));
            let by_stranger = k.delegate(&k.stranger, run);
            let malformed = k.delegate(&k.ingest, run);
            let forged = k.delegate(&k.ingest, run);
            let misnamed = k.delegate(&k.ingest, run);
            vec![
                k.by(&part(20, 0), &d, Some(&d), Verdict::Ok),
                // The same run: the delegation is known, none is fetched.
                k.by(&part(20, 1), &d, None, Verdict::Ok),
                // Signed by a key the delegation served does not name.
                k.by(&part(20, 2), &undelegated, Some(&d), refused(UnknownKey)),
                k.by(
                    &part(20, 2),
                    &of_720p,
                    Some(&of_720p),
                    refused(WrongRendition),
                ),
                k.by(
                    &part(20, 2),
                    &by_revoked,
                    Some(&by_revoked),
                    refused(RevokedKey),
                ),
                k.by(
                    &part(20, 2),
                    &later,
                    Some(&later),
                    refused(ExpiredDelegation),
                ),
                k.by(
                    &part(20, 2),
                    &by_stranger,
                    Some(&by_stranger),
                    refused(UnknownKey),
                ),
                k.by(
                    &part(20, 2),
                    &malformed,
                    Some(&malformed),
                    refused(MalformedSignature),
                )
                .with(|s| s.part_key.as_mut().expect("served").push(0)),
                k.by(&part(20, 2), &forged, Some(&forged), refused(BadSignature))
                    .with(|s| {
                        let b = s.part_key.as_mut().expect("served");
                        let at = b.len() - 10;
                        flip(b, at)
                    }),
                // The delegated key's statement naming another algorithm than its own.
                k.by(
                    &part(20, 2),
                    &misnamed,
                    Some(&misnamed),
                    refused(WrongAlgorithm),
                )
                .with(|s| {
                    let f = part(20, 2);
                    let sign = |m: &[u8]| misnamed.sign(m);
                    s.sidecar =
                        Some(f.sign_with(SignatureAlgorithm::MlDsa65, misnamed.key_id(), sign));
                }),
                k.by(&part(20, 2), &d, None, Verdict::Ok),
            ]
        }),
    ]
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `cases` as JSON, what a page or script runs: `[{name, playback, steps: [{url, bytes,
/// sidecar, sequence, part, discontinuity, duration, now_ms, gaps, reposition, part_key,
/// expect}]}]`, bytes as lowercase hex (`null` where there are none), `expect` `"ok"` or a
/// reason string.
pub fn to_json(cases: &[Case]) -> Value {
    let steps = |steps: &[Step]| -> Vec<Value> {
        steps
            .iter()
            .map(|s| {
                json!({
                    "url": s.url,
                    "bytes": hex(&s.bytes),
                    "sidecar": s.sidecar.as_deref().map(hex),
                    "sequence": s.sequence,
                    "part": s.part,
                    "discontinuity": s.discontinuity,
                    "duration": s.duration,
                    "now_ms": s.now_ms,
                    "gaps": s.gaps,
                    "reposition": s.reposition,
                    "part_key": s.part_key.as_deref().map(hex),
                    "expect": s.expect.label(),
                })
            })
            .collect()
    };
    Value::Array(
        cases
            .iter()
            .map(|c| json!({ "name": c.name, "playback": c.playback, "steps": steps(&c.steps) }))
            .collect(),
    )
}

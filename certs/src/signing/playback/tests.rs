//! The cases of `broadcast/tests/broadcast/player_verify.rs` (the browser's), against the Rust twin:
//! each a run of fragments through one fresh verifier, with the verdict each must get.

use domain::wire::{PartStatement, SegmentStatement, Signed};
use domain::{Codecs, InitSegment, LiveEvent, NodeId, RenditionInfo};

use super::*;
use crate::signing::{PartKey, RootKey, SigningKey, TrustBundle, Validity};

const STREAM: &str = "demo";
const RENDITION: &str = "360p";
const SESSION: SessionId = SessionId(0x5ea1_0000_0000_0001);
const LATER_SESSION: SessionId = SessionId(0x5ea1_0000_0000_0002);
const SEGMENT_MS: u64 = 2000;
const PART_MS: u64 = 333;
const NOW: u64 = 1_800_000_000;
/// What the viewer opened: a live stream, or the recording of `SESSION`.
const LIVE: &str = "/live/demo/master.m3u8";
const RECORDING: &str = "/vod/demo/5ea1000000000001/master.m3u8";

fn media(seed: u64, len: usize) -> Vec<u8> {
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

#[derive(Clone, Copy, PartialEq)]
enum K {
    Segment,
    Part(u32),
    Init,
}

/// One fragment as the ingest would sign it.
#[derive(Clone)]
struct Frag {
    kind: K,
    stream: &'static str,
    rendition: &'static str,
    session: SessionId,
    sequence: u64,
    discontinuity: u64,
    stated_ms: u64,
    bytes: Vec<u8>,
}

fn seg(sequence: u64) -> Frag {
    Frag {
        kind: K::Segment,
        stream: STREAM,
        rendition: RENDITION,
        session: SESSION,
        sequence,
        discontinuity: 0,
        stated_ms: 0,
        bytes: media(sequence, 3000),
    }
}

fn part(sequence: u64, index: u32) -> Frag {
    Frag {
        kind: K::Part(index),
        bytes: media(sequence * 100 + u64::from(index), 700),
        ..seg(sequence)
    }
}

fn init() -> Frag {
    Frag {
        kind: K::Init,
        bytes: media(7_777, 600),
        ..seg(0)
    }
}

impl Frag {
    fn with(mut self, change: impl FnOnce(&mut Frag)) -> Self {
        change(&mut self);
        self
    }

    fn statement(&self, algorithm: SignatureAlgorithm, key_id: KeyId) -> Vec<u8> {
        let stream = StreamName::new(self.stream).expect("stream");
        let rendition = RenditionName::new(self.rendition).expect("rendition");
        let digest: [u8; 32] = Sha256::digest(&self.bytes).into();
        match self.kind {
            K::Segment => SegmentStatement {
                algorithm,
                key_id,
                stream,
                session: self.session,
                rendition,
                sequence: self.sequence,
                discontinuity_sequence: self.discontinuity,
                duration_us: SEGMENT_MS * 1000,
                byte_len: self.bytes.len() as u64,
                digest,
            }
            .encode(),
            K::Part(index) => PartStatement {
                algorithm,
                key_id,
                stream,
                session: self.session,
                rendition,
                sequence: self.sequence,
                index,
                independent: index == 0,
                discontinuity_sequence: self.discontinuity,
                duration_us: PART_MS * 1000,
                program_date_time_ms: self.stated_ms,
                byte_len: self.bytes.len() as u64,
                digest,
            }
            .encode(),
            K::Init => unreachable!("an init is an event"),
        }
    }

    /// The sidecar, signed by `key`.
    fn sign(&self, key: &SigningKey) -> Vec<u8> {
        self.sign_with(key.algorithm(), key.key_id(), |m| key.sign(m))
    }

    fn sign_with(
        &self,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        if self.kind == K::Init {
            let event = LiveEvent::Rendition {
                stream: StreamName::new(self.stream).expect("stream"),
                info: RenditionInfo {
                    name: RenditionName::new(self.rendition).expect("rendition"),
                    width: 640,
                    height: 360,
                    frame_rate: 30.0,
                    codecs: "avc1.64001e,mp4a.40.2".parse::<Codecs>().expect("codecs"),
                    init: Some(InitSegment::new(self.bytes.clone().into()).expect("init")),
                    part_target_us: Some(PART_MS * 1000),
                },
            };
            let body = serde_json::to_vec(&event).expect("json");
            let statement = EventStatement {
                algorithm,
                key_id,
                issued_at_ms: self.stated_ms,
                body,
            };
            return SignedEvent::sign(&statement, sign).encode();
        }
        let statement = self.statement(algorithm, key_id);
        let signature = sign(&statement);
        Signed::<SegmentStatement>::new(statement, signature).encode()
    }

    fn path(&self) -> String {
        let base = format!("/live/{}/{}", self.stream, self.rendition);
        match self.kind {
            K::Segment => format!("{base}/{}.m4s", self.sequence),
            K::Part(i) => format!("{base}/{}.{i}.m4s", self.sequence),
            K::Init => format!("{base}/init.mp4"),
        }
    }
}

/// One check: what the player knows, and the verdict it must get.
#[derive(Clone)]
struct Step {
    path: String,
    bytes: Vec<u8>,
    sidecar: Option<Vec<u8>>,
    sequence: Option<u64>,
    part: Option<u32>,
    discontinuity: u64,
    duration: Option<f64>,
    now_ms: u64,
    gaps: Vec<u64>,
    reposition: bool,
    part_key: Option<Vec<u8>>,
    expect: &'static str,
}

fn tweak(mut s: Step, change: impl FnOnce(&mut Step)) -> Step {
    change(&mut s);
    s
}

struct Keys {
    root: RootKey,
    ingest: SigningKey,
    revoked: SigningKey,
    expired: SigningKey,
    stranger: SigningKey,
}

impl Keys {
    fn new(algorithm: SignatureAlgorithm) -> (Self, TrustBundle) {
        let key = || SigningKey::generate(algorithm).expect("key");
        let keys = Keys {
            root: RootKey::generate(algorithm).expect("root"),
            ingest: key(),
            revoked: key(),
            expired: key(),
            stranger: key(),
        };
        let certify = |key: &SigningKey, name: &str, validity: Validity| {
            keys.root
                .certify(key.public_key(), NodeId::new(name).expect("node"), validity)
                .expect("certify")
                .encode()
        };
        let current = Validity::new(NOW - 86_400, NOW + 86_400).expect("validity");
        let bundle = TrustBundle {
            certificates: vec![
                certify(&keys.ingest, "ingest1", current),
                certify(&keys.revoked, "ingest2", current),
                certify(
                    &keys.expired,
                    "ingest3",
                    Validity::new(NOW - 7200, NOW - 3600).expect("validity"),
                ),
            ],
            revocations: vec![keys.root.revoke(keys.revoked.key_id(), NOW).encode()],
        };
        (keys, bundle)
    }

    fn step(&self, f: &Frag, key: &SigningKey, expect: &'static str) -> Step {
        let (sequence, part, duration) = match f.kind {
            K::Segment => (Some(f.sequence), None, Some(SEGMENT_MS as f64 / 1e3)),
            K::Part(i) => (Some(f.sequence), Some(i), Some(PART_MS as f64 / 1e3)),
            K::Init => (None, None, None),
        };
        Step {
            path: f.path(),
            bytes: f.bytes.clone(),
            sidecar: Some(f.sign(key)),
            sequence,
            part,
            discontinuity: f.discontinuity,
            duration,
            now_ms: NOW * 1000,
            gaps: Vec::new(),
            reposition: false,
            part_key: None,
            expect,
        }
    }

    fn ok(&self, f: &Frag) -> Step {
        self.step(f, &self.ingest, "ok")
    }

    fn refused(&self, f: &Frag, reason: &'static str) -> Step {
        self.step(f, &self.ingest, reason)
    }

    /// A delegation by `signer` for `stream`/`rendition`, segments `first..=last`.
    fn delegate(
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

    /// Part `f` signed by the delegated key `key`, with `served` as its `.partkey`.
    fn by(&self, f: &Frag, key: &PartKey, served: Option<&PartKey>, expect: &'static str) -> Step {
        let sidecar = f.sign_with(key.algorithm(), key.key_id(), |m| key.sign(m));
        tweak(self.step(f, &self.ingest, expect), |s| {
            s.sidecar = Some(sidecar);
            s.part_key = served.map(|d| d.envelope().to_vec());
        })
    }
}

/// A `/live/{stream}/{rendition}/…` fragment path moved into the recording of `session`.
fn in_recording(path: &str, session: SessionId) -> String {
    let rest = path.strip_prefix("/live/").expect("a live path");
    let (stream, rest) = rest.split_once('/').expect("a stream");
    format!("/vod/{stream}/{session}/{rest}")
}

fn flip(bytes: &mut [u8], at: usize) {
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
}

fn cases(k: &Keys) -> Vec<(&'static str, &'static str, Vec<Step>)> {
    let now_ms = NOW * 1000;
    let init = init();
    vec![
        (
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
        (
            "one byte flipped",
            LIVE,
            vec![
                tweak(k.refused(&seg(10), "digest_mismatch"), |s| {
                    flip(&mut s.bytes, 1500)
                }),
                tweak(k.refused(&part(10, 0), "digest_mismatch"), |s| {
                    flip(&mut s.bytes, 0)
                }),
                tweak(k.refused(&init, "digest_mismatch"), |s| {
                    flip(&mut s.bytes, 599)
                }),
            ],
        ),
        (
            "wrong length",
            LIVE,
            vec![
                tweak(k.refused(&seg(10), "wrong_length"), |s| {
                    s.bytes.pop();
                }),
                tweak(k.refused(&part(10, 0), "wrong_length"), |s| s.bytes.push(0)),
                tweak(k.refused(&init, "wrong_length"), |s| s.bytes.push(0)),
            ],
        ),
        (
            "a genuine statement of another stream or rung",
            LIVE,
            vec![
                tweak(
                    k.refused(&seg(10).with(|f| f.stream = "other"), "wrong_stream"),
                    |s| s.path = seg(10).path(),
                ),
                tweak(
                    k.refused(
                        &part(10, 1).with(|f| f.rendition = "720p"),
                        "wrong_rendition",
                    ),
                    |s| s.path = part(10, 1).path(),
                ),
                tweak(
                    k.refused(&init.clone().with(|f| f.stream = "other"), "wrong_stream"),
                    |s| s.path = init.path(),
                ),
                k.ok(&seg(10)),
            ],
        ),
        (
            "an older segment replayed under a newer number",
            LIVE,
            vec![
                k.ok(&seg(11)),
                tweak(k.refused(&seg(9), "wrong_sequence"), |s| {
                    s.path = seg(12).path();
                    s.sequence = Some(12);
                }),
                tweak(k.refused(&part(9, 2), "wrong_part"), |s| {
                    s.path = part(9, 1).path();
                    s.part = Some(1);
                }),
            ],
        ),
        (
            "a skipped sequence",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(&seg(12), "skipped_sequence"),
                k.refused(&part(12, 0), "skipped_sequence"),
                k.ok(&seg(11)),
                k.ok(&part(12, 0)),
                k.refused(&part(12, 2), "skipped_sequence"),
            ],
        ),
        (
            "skips over refused numbers, gaps and a reposition are allowed",
            LIVE,
            vec![
                k.ok(&seg(10)),
                tweak(k.refused(&seg(11), "digest_mismatch"), |s| {
                    flip(&mut s.bytes, 7)
                }),
                k.ok(&seg(12)),
                tweak(k.ok(&seg(14)), |s| s.gaps = vec![13]),
                tweak(k.ok(&seg(20)), |s| s.reposition = true),
                tweak(k.ok(&seg(3)), |s| s.reposition = true),
            ],
        ),
        (
            "repeated and reordered sequences",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(&seg(10), "repeated_sequence"),
                k.ok(&seg(11)),
                k.refused(&seg(10), "reordered_sequence"),
                k.ok(&part(12, 0)),
                k.refused(&part(12, 0), "repeated_sequence"),
                k.ok(&part(12, 1)),
                k.ok(&seg(12).with(|f| f.rendition = "720p")),
            ],
        ),
        (
            "back to an earlier part of a segment only after a part of it was refused",
            LIVE,
            vec![
                k.ok(&part(12, 0)),
                k.ok(&part(12, 1)),
                tweak(k.refused(&part(12, 2), "digest_mismatch"), |s| {
                    flip(&mut s.bytes, 3)
                }),
                k.ok(&part(12, 0)),
                k.ok(&part(12, 1)),
                k.ok(&part(12, 2)),
                k.refused(&part(12, 1), "repeated_sequence"),
                k.ok(&part(12, 3)),
            ],
        ),
        (
            "the session changes only at a discontinuity",
            LIVE,
            vec![
                k.ok(&seg(10)),
                k.refused(
                    &seg(11).with(|f| f.session = LATER_SESSION),
                    "wrong_session",
                ),
                tweak(
                    k.ok(&seg(11).with(|f| {
                        f.session = LATER_SESSION;
                        f.discontinuity = 1;
                    })),
                    |s| s.discontinuity = 1,
                ),
                tweak(
                    k.refused(&seg(12).with(|f| f.discontinuity = 1), "wrong_session"),
                    |s| s.discontinuity = 1,
                ),
            ],
        ),
        (
            "discontinuity sequence and duration are the playlist's",
            LIVE,
            vec![
                tweak(k.refused(&seg(10), "wrong_discontinuity"), |s| {
                    s.discontinuity = 1
                }),
                tweak(k.refused(&seg(10), "wrong_duration"), |s| {
                    s.duration = Some(2.5)
                }),
                tweak(k.refused(&part(10, 0), "wrong_duration"), |s| {
                    s.duration = Some(0.5)
                }),
                tweak(k.ok(&seg(10)), |s| s.duration = Some(2.0004)),
            ],
        ),
        (
            "a revoked key: refused for what it signed after the revocation",
            LIVE,
            vec![
                tweak(k.step(&seg(10), &k.revoked, "ok"), |s| {
                    s.now_ms = now_ms - 60_000
                }),
                tweak(k.step(&seg(11), &k.revoked, "revoked_key"), |s| {
                    s.now_ms = now_ms + 60_000
                }),
                // Live, a part's capture time is only what its signer says.
                tweak(
                    k.step(
                        &part(11, 0).with(|f| f.stated_ms = now_ms - 30_000),
                        &k.revoked,
                        "revoked_key",
                    ),
                    |s| s.now_ms = now_ms + 60_000,
                ),
            ],
        ),
        (
            // Issue 45 item 4: a live stream whose playlist says it ended (ENDLIST, which
            // anyone serving the playlist can append) is judged as live: a backdated
            // statement by a stolen, revoked key is refused.
            "a live stream is judged at the viewer's clock, whatever its statements say",
            LIVE,
            vec![
                tweak(
                    k.step(
                        &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                        &k.revoked,
                        "revoked_key",
                    ),
                    |s| s.now_ms = now_ms + 60_000,
                ),
                tweak(k.step(&seg(10), &k.revoked, "revoked_key"), |s| {
                    s.now_ms = now_ms + 60_000
                }),
                // Nor does a playlist that points a live playback at a recording's URLs.
                tweak(
                    k.step(
                        &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                        &k.revoked,
                        "revoked_key",
                    ),
                    |s| {
                        s.path = in_recording(&s.path, SESSION);
                        s.now_ms = now_ms + 60_000;
                    },
                ),
                tweak(k.step(&seg(10), &k.revoked, "revoked_key"), |s| {
                    s.path = in_recording(&s.path, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
            ],
        ),
        (
            "a recording: segments count as signed when their rendition was described",
            RECORDING,
            vec![
                tweak(k.step(&seg(10), &k.revoked, "revoked_key"), |s| {
                    s.path = in_recording(&s.path, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                tweak(
                    k.step(
                        &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                        &k.revoked,
                        "ok",
                    ),
                    |s| {
                        s.path = in_recording(&s.path, SESSION);
                        s.now_ms = now_ms + 60_000;
                    },
                ),
                tweak(k.step(&seg(10), &k.revoked, "ok"), |s| {
                    s.path = in_recording(&s.path, SESSION);
                    s.now_ms = now_ms + 60_000;
                }),
                // Signed (it says) after the revocation.
                tweak(
                    k.step(
                        &init.clone().with(|f| f.stated_ms = now_ms + 30_000),
                        &k.revoked,
                        "revoked_key",
                    ),
                    |s| {
                        s.path = in_recording(&s.path, SESSION);
                        s.now_ms = now_ms + 60_000;
                    },
                ),
            ],
        ),
        (
            "a recording's own time counts only under its own URLs",
            RECORDING,
            vec![
                // Another recording's tree, or the live tree: the viewer's clock.
                tweak(
                    k.step(
                        &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                        &k.revoked,
                        "revoked_key",
                    ),
                    |s| {
                        s.path = in_recording(&s.path, LATER_SESSION);
                        s.now_ms = now_ms + 60_000;
                    },
                ),
                tweak(
                    k.step(
                        &init.clone().with(|f| f.stated_ms = now_ms - 600_000),
                        &k.revoked,
                        "revoked_key",
                    ),
                    |s| s.now_ms = now_ms + 60_000,
                ),
                // Recordings have no parts.
                tweak(k.refused(&part(10, 0), "unexpected_url"), |s| {
                    s.path = in_recording(&s.path, SESSION)
                }),
            ],
        ),
        (
            "unknown and expired keys",
            LIVE,
            vec![
                k.step(&seg(10), &k.stranger, "unknown_key"),
                k.step(&part(10, 0), &k.expired, "expired_key"),
                k.step(&init, &k.stranger, "unknown_key"),
                k.ok(&seg(10)),
            ],
        ),
        (
            "missing, empty and malformed sidecars",
            LIVE,
            vec![
                tweak(k.refused(&seg(10), "missing_signature"), |s| {
                    s.sidecar = None
                }),
                tweak(k.refused(&seg(10), "missing_signature"), |s| {
                    s.sidecar = Some(Vec::new())
                }),
                tweak(k.refused(&seg(10), "malformed_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        b.push(0)
                    }
                }),
                tweak(k.refused(&part(10, 0), "malformed_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        b.pop();
                    }
                }),
                tweak(k.refused(&seg(10), "malformed_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        b[..4].copy_from_slice(&5000u32.to_be_bytes())
                    }
                }),
                tweak(k.refused(&init, "malformed_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        b.extend_from_slice(b"xx")
                    }
                }),
                tweak(k.refused(&seg(10), "malformed_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        b[4 + 29] = 9
                    }
                }),
                k.ok(&seg(10)),
            ],
        ),
        (
            "a statement of another kind",
            LIVE,
            vec![
                tweak(k.refused(&part(10, 0), "wrong_kind"), |s| {
                    s.path = seg(10).path();
                    s.part = None;
                }),
                tweak(k.refused(&seg(10), "wrong_kind"), |s| {
                    s.path = part(10, 0).path();
                    s.part = Some(0);
                }),
                tweak(k.refused(&init, "wrong_kind"), |s| s.path = seg(10).path()),
                tweak(k.refused(&seg(10), "wrong_kind"), |s| s.path = init.path()),
            ],
        ),
        (
            "a signature that does not verify",
            LIVE,
            vec![
                tweak(k.refused(&seg(10), "bad_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        let at = b.len() - 20;
                        flip(b, at)
                    }
                }),
                tweak(k.refused(&part(10, 0), "bad_signature"), |s| {
                    if let Some(b) = &mut s.sidecar {
                        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                        flip(b, 4 + len - 1)
                    }
                }),
            ],
        ),
        (
            "a recording's session is the one in its URL",
            RECORDING,
            vec![
                tweak(k.refused(&seg(10), "wrong_session"), |s| {
                    s.path = format!("/vod/{STREAM}/{}/{RENDITION}/10.m4s", LATER_SESSION);
                }),
                tweak(k.ok(&seg(10)), |s| {
                    s.path = format!("/vod/{STREAM}/{}/{RENDITION}/10.m4s", SESSION);
                }),
                tweak(k.refused(&seg(11), "unexpected_url"), |s| {
                    s.path = format!("/live/{STREAM}/{RENDITION}/../11.m4s.bak");
                }),
            ],
        ),
        ("parts signed by a delegated key", LIVE, {
            let run = (STREAM, RENDITION, 20, 24);
            let d = k.delegate(&k.ingest, run);
            let undelegated = k.delegate(&k.ingest, run);
            let of_720p = k.delegate(&k.ingest, (STREAM, "720p", 20, 24));
            let by_revoked = k.delegate(&k.revoked, run);
            let later = k.delegate(&k.ingest, (STREAM, RENDITION, 25, 29));
            let by_stranger = k.delegate(&k.stranger, run);
            let malformed = k.delegate(&k.ingest, run);
            let forged = k.delegate(&k.ingest, run);
            vec![
                k.by(&part(20, 0), &d, Some(&d), "ok"),
                // The same run: the delegation is known, none is fetched.
                k.by(&part(20, 1), &d, None, "ok"),
                // Signed by a key the delegation served does not name.
                k.by(&part(20, 2), &undelegated, Some(&d), "unknown_key"),
                k.by(&part(20, 2), &of_720p, Some(&of_720p), "wrong_rendition"),
                k.by(&part(20, 2), &by_revoked, Some(&by_revoked), "revoked_key"),
                k.by(&part(20, 2), &later, Some(&later), "expired_delegation"),
                k.by(
                    &part(20, 2),
                    &by_stranger,
                    Some(&by_stranger),
                    "unknown_key",
                ),
                tweak(
                    k.by(
                        &part(20, 2),
                        &malformed,
                        Some(&malformed),
                        "malformed_signature",
                    ),
                    |s| {
                        if let Some(b) = &mut s.part_key {
                            b.push(0)
                        }
                    },
                ),
                tweak(
                    k.by(&part(20, 2), &forged, Some(&forged), "bad_signature"),
                    |s| {
                        if let Some(b) = &mut s.part_key {
                            let at = b.len() - 10;
                            flip(b, at)
                        }
                    },
                ),
                k.by(&part(20, 2), &d, None, "ok"),
            ]
        }),
    ]
}

/// Runs one case on a fresh verifier; the verdicts, as reason strings.
fn run(trust: &ViewerTrust, playback: &str, steps: &[Step]) -> Vec<String> {
    let mut verifier = PlaybackVerifier::new(trust.clone(), Playback::of_path(playback));
    let mut out = Vec::new();
    for s in steps {
        if s.reposition {
            verifier.reposition();
        }
        let fragment = Fragment {
            path: &s.path,
            bytes: &s.bytes,
            sidecar: s.sidecar.as_deref(),
            sequence: s.sequence,
            part: s.part,
            discontinuity: s.discontinuity,
            duration: s.duration,
            now_ms: s.now_ms,
        };
        let gaps = s.gaps.clone();
        let mut verdict = verifier.check(&fragment, |n| gaps.contains(&n));
        if let Check::NeedsPartKey { .. } = verdict {
            verdict = match verifier.admit_part_key(&fragment, s.part_key.as_deref()) {
                Ok(()) => verifier.check(&fragment, |n| gaps.contains(&n)),
                Err(refused) => Check::Refused(refused),
            };
        }
        out.push(match verdict {
            Check::Verified => "ok".to_owned(),
            Check::Refused(r) => r.reason.label().to_owned(),
            Check::NeedsPartKey { .. } => "needs_part_key".to_owned(),
        });
    }
    out
}

#[test]
fn every_case_gets_the_verdicts_the_browser_gets() {
    for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        let (keys, bundle) = Keys::new(algorithm);
        let mut trust = ViewerTrust::new(keys.root.public_key());
        assert_eq!(trust.admit_bundle(&bundle), 0);
        let mut wrong = Vec::new();
        for (name, playback, steps) in cases(&keys) {
            let got = run(&trust, playback, &steps);
            for (i, (step, verdict)) in steps.iter().zip(&got).enumerate() {
                if verdict != step.expect {
                    wrong.push(format!(
                        "{algorithm:?} {name}, step {} ({}): expected {}, got {verdict}",
                        i + 1,
                        step.path,
                        step.expect
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

#[test]
fn another_roots_bundle_admits_nothing() {
    let (keys, bundle) = Keys::new(SignatureAlgorithm::Ed25519);
    let (other, _) = Keys::new(SignatureAlgorithm::Ed25519);
    let mut trust = ViewerTrust::new(other.root.public_key());
    assert_eq!(trust.admit_bundle(&bundle), 4);
    let got = run(&trust, LIVE, &[keys.ok(&seg(10))]);
    assert_eq!(got, ["unknown_key"]);
}

#[test]
fn a_delegation_is_asked_for_once_per_segment() {
    let (keys, bundle) = Keys::new(SignatureAlgorithm::Ed25519);
    let mut trust = ViewerTrust::new(keys.root.public_key());
    trust.admit_bundle(&bundle);
    let mut verifier = PlaybackVerifier::new(trust, Playback::Live);
    let d = keys.delegate(&keys.ingest, (STREAM, RENDITION, 30, 34));
    let step = keys.by(&part(30, 0), &d, Some(&d), "ok");
    let fragment = Fragment {
        path: &step.path,
        bytes: &step.bytes,
        sidecar: step.sidecar.as_deref(),
        sequence: step.sequence,
        part: step.part,
        discontinuity: 0,
        duration: step.duration,
        now_ms: step.now_ms,
    };
    assert_eq!(
        verifier.check(&fragment, |_| false),
        Check::NeedsPartKey {
            path: format!("/live/{STREAM}/{RENDITION}/30.partkey")
        }
    );
    // Nothing was served: the second check says so instead of asking again.
    verifier
        .admit_part_key(&fragment, None)
        .expect("nothing to admit");
    let Check::Refused(r) = verifier.check(&fragment, |_| false) else {
        panic!("refused");
    };
    assert_eq!(r.reason, Reason::UnknownKey);
}

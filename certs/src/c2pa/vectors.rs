//! The C2PA live-video test vectors both viewer-side validators run: this crate's
//! [`super::validate::LiveValidator`] (its tests below) and `web/src/verify.js`'s (in
//! Chromium, `broadcast/tests/broadcast/player_verify.rs`). Each [`Case`] is one
//! rendition through one fresh validator pinned to the case's root, at `now_ms`; every
//! [`Step`] must get its [`Expect`], a refusal by its C2PA status code
//! ([`super::validate::Code::label`]).
//!
//! Media are made by the real signing code ([`super::LiveSigner`], the root's
//! [`super::ProvenanceAnchor`]) over synthetic CMAF boxes ([`plain_init`],
//! [`plain_fragment`]), then changed where a case says. Compiled for this crate's tests
//! and with the `test-vectors` feature; never in a production build.
//!
//! Long because the cases are one list that both validators run in order, built from the
//! few helpers above it; split across files, the helpers and the cases would import each
//! other.

use std::sync::Arc;
use std::time::Duration;

use domain::c2pa::bmff;
use domain::c2pa::vsi::Numbering;

use super::{stream_assertion, ClaimSigner, LiveSigner, ProvenanceCa};
use crate::signing::{RootKey, SignatureAlgorithm, Validity};

/// The time of every case, unix seconds.
pub const NOW: u64 = 1_800_000_000;
/// The claim signer's subject in every case that verifies.
pub const SIGNER: &str = "ingest1";
/// The organization of the vectors' certificates.
const ORG: &str = "sealcast test cluster";
/// The stream, session and rendition the manifests name.
const STREAM: (&str, &str, &str) = ("vectorstream", "00000000000000aa", "720p");

/// What a step hands the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An init segment.
    Init,
    /// A whole segment.
    Segment,
    /// An LL-HLS part.
    Part,
}

/// What a step must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Verified (an init segment: signed by [`SIGNER`]).
    Verified,
    /// No C2PA data: nothing checked.
    Unsigned,
    /// Refused with this status code.
    Refused(&'static str),
}

/// One step of a case.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it is.
    pub kind: Kind,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its verdict.
    pub expect: Expect,
}

/// One rendition through a fresh validator.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it shows.
    pub name: &'static str,
    /// The pinned root, as the file `/trust/v1/root.pub` serves.
    pub root_pub: Vec<u8>,
    /// The trust bundle (`/trust/v1/bundle`): the certificate of the ingest key that
    /// co-signs the manifests ([`domain::c2pa::manifest::COSIGNATURE_LABEL`]). A verified
    /// init segment's co-signature must verify against it (the caller's check, after
    /// the validator's: `io.sealcast.cosignature.mismatch`).
    pub bundle: Vec<u8>,
    /// The validator's clock, unix milliseconds.
    pub now_ms: u64,
    /// Provenance anchors delivered apart from the manifests (as
    /// `/trust/v1/provenance-anchors` serves them, decoded): for CAs of other signers.
    pub anchors: Vec<Vec<u8>>,
    /// The claim signer's subject a verified init segment names.
    pub signer: &'static str,
    /// Whether a verified init segment's manifest carries our co-signature (those signed
    /// elsewhere do not).
    pub cosigned: bool,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bmff::write_box(&mut out, kind, payload);
    out
}

fn full(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(payload);
    bx(kind, &p)
}

/// A CMAF-shaped init segment: ftyp, then moov with one track's mdhd.
pub fn plain_init() -> Vec<u8> {
    let mut ftyp = b"cmf2".to_vec();
    ftyp.extend_from_slice(&[0, 0, 0, 0]);
    ftyp.extend_from_slice(b"cmf2iso6");
    let mut mdhd = vec![0; 8];
    mdhd.extend_from_slice(&90_000u32.to_be_bytes());
    mdhd.extend_from_slice(&[0; 8]);
    let mdia = bx(b"mdia", &full(b"mdhd", &mdhd));
    let mut moov = full(b"mvhd", &[0; 96]);
    moov.extend(bx(b"trak", &mdia));
    moov.extend(bx(b"mvex", &full(b"trex", &[0; 20])));
    let mut out = bx(b"ftyp", &ftyp);
    out.extend(bx(b"moov", &moov));
    out
}

/// One fragment: moof (mfhd with `seq`, a traf) and mdat.
pub fn plain_fragment(seq: u32) -> Vec<u8> {
    let mut moof = full(b"mfhd", &seq.to_be_bytes());
    let mut traf = full(b"tfhd", &1u32.to_be_bytes());
    traf.extend(full(b"tfdt", &(u32::from(seq as u16) * 3000).to_be_bytes()));
    moof.extend(bx(b"traf", &traf));
    let mut out = bx(b"moof", &moof);
    out.extend(bx(b"mdat", &seq.to_be_bytes().repeat(50)));
    out
}

/// A signed rendition: its init segment, parts and segments as an ingest makes them.
struct Signed {
    live: LiveSigner,
    label: String,
}

impl Signed {
    fn new(claim: ClaimSigner, session_created: u64, validity: Duration, min_seq: u64) -> Self {
        let (stream, session, rendition) = STREAM;
        Signed {
            live: LiveSigner::new(Arc::new(claim), session_created, validity, min_seq),
            label: LiveSigner::manifest_label(stream, session, rendition),
        }
    }

    fn init(&self) -> Vec<u8> {
        let (stream, session, rendition) = STREAM;
        let extra = vec![stream_assertion(stream, session, rendition)];
        self.live
            .sign_init(&plain_init(), &self.label, "vectorstream 720p", extra)
            .expect("the vectors' init segment signs")
    }

    /// `data` with its own VSI in front, numbered as `numbering` says.
    fn sign(&self, data: Vec<u8>, numbering: Numbering) -> Vec<u8> {
        let vsi = self
            .live
            .sign_fragment(&data, numbering, &self.label, NOW, 90_000, 30_000)
            .expect("the vectors' fragment signs");
        [vsi, data].concat()
    }

    fn part(&self, seq: u32) -> Vec<u8> {
        self.sign(plain_fragment(seq), Numbering::Fragment)
    }

    /// Segment `number` of the rendition, made of parts `first..first + n`.
    fn segment(&self, number: u32, first: u32, n: u32) -> Vec<u8> {
        let parts = (first..first + n).flat_map(|s| self.part(s)).collect();
        self.sign(parts, Numbering::Segment(number))
    }
}

/// The keys of every case: a root (ML-DSA-65, as clusters run), its provenance CA and
/// an anchor of it, and another root.
struct Keys {
    root: RootKey,
    other_root: RootKey,
    ca: ProvenanceCa,
    /// An ECDSA P-256 CA, as CAs of the C2PA trust list are: it issues ES256 claim signers.
    es_ca: ProvenanceCa,
    /// The ingest key that co-signs, certified by `root` (its seed, to make copies).
    ingest: crate::signing::SigningKey,
    bundle: Vec<u8>,
}

impl Keys {
    fn new() -> Self {
        let root = RootKey::generate(SignatureAlgorithm::MlDsa65).expect("root");
        let ingest =
            crate::signing::SigningKey::generate(SignatureAlgorithm::MlDsa65).expect("key");
        let certificate = root
            .certify(
                ingest.public_key(),
                domain::NodeId::new(SIGNER).expect("node id"),
                Validity::new(NOW - 30 * 86_400, NOW + 365 * 86_400).expect("valid"),
            )
            .expect("certified");
        let bundle = crate::signing::TrustBundle {
            certificates: vec![certificate.encode()],
            revocations: Vec::new(),
        }
        .encode();
        Keys {
            root,
            other_root: RootKey::generate(SignatureAlgorithm::MlDsa65).expect("root"),
            ca: ProvenanceCa::generate(ORG, NOW - 400 * 86_400).expect("ca"),
            es_ca: ProvenanceCa::generate_es256(ORG, NOW - 400 * 86_400).expect("ES256 CA"),
            ingest,
            bundle,
        }
    }

    /// A copy of the certified ingest key.
    fn ingest_key(&self) -> crate::signing::SigningKey {
        crate::signing::SigningKey(crate::signing::TestKeyPair::from_seed(
            self.ingest.algorithm(),
            zeroize::Zeroizing::new(*self.ingest.0.seed()),
        ))
    }

    /// A claim signer issued at `issued`, anchored for a year from `NOW - 10` by `root`.
    fn signer(&self, issued: u64) -> ClaimSigner {
        let validity = Validity::new(NOW - 10, NOW + 365 * 86_400).expect("valid");
        let der = self.ca.cert_der().expect("ca der");
        self.ca
            .issue(ORG, SIGNER, issued)
            .expect("signer")
            .with_anchor(self.root.anchor_provenance(&der, validity))
            .with_cosigner(self.ingest_key())
    }

    /// An anchor of `ca` by the root, valid for a year from `NOW - 10`.
    fn anchor_of(&self, ca: &ProvenanceCa) -> super::ProvenanceAnchor {
        let validity = Validity::new(NOW - 10, NOW + 365 * 86_400).expect("valid");
        self.root
            .anchor_provenance(&ca.cert_der().expect("ca der"), validity)
    }

    /// A rendition signed by `claim`, its session key made at `NOW - 60` for a day.
    fn stream_of(claim: ClaimSigner) -> Signed {
        Signed::new(claim, NOW - 60, Duration::from_secs(86_400), 1)
    }

    fn stream(&self) -> Signed {
        Signed::new(
            self.signer(NOW - 60),
            NOW - 60,
            Duration::from_secs(86_400),
            1,
        )
    }
}

fn step(kind: Kind, bytes: Vec<u8>, expect: Expect) -> Step {
    Step {
        kind,
        bytes,
        expect,
    }
}

/// `bytes` with the first occurrence of `from` replaced by `to` (same length).
fn replaced(mut bytes: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the vector's bytes hold what is replaced");
    bytes[at..at + to.len()].copy_from_slice(to);
    bytes
}

fn flip_last(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
    bytes
}

const SEGMENT: &str = "livevideo.segment.invalid";

/// Every case.
pub fn cases() -> Vec<Case> {
    use Expect::{Refused, Unsigned, Verified};
    use Kind::{Init, Part, Segment};
    let keys = Keys::new();
    let root_pub = keys.root.public_key().file_bytes();
    let s = keys.stream();
    let init = s.init();
    let case = |name, steps| Case {
        name,
        root_pub: root_pub.clone(),
        bundle: keys.bundle.clone(),
        now_ms: NOW * 1000,
        anchors: Vec::new(),
        signer: SIGNER,
        cosigned: true,
        steps,
    };
    let mut out = vec![
        case(
            "a signed rendition: init, parts and segments verify",
            vec![
                step(Init, init.clone(), Verified),
                step(Part, s.part(1), Verified),
                step(Part, s.part(2), Verified),
                step(Part, s.part(3), Verified),
                step(Segment, s.segment(1, 1, 3), Verified),
                step(Part, s.part(4), Verified),
                step(Segment, s.segment(2, 4, 3), Verified),
            ],
        ),
        case(
            "a replayed segment is refused",
            vec![
                step(Init, init.clone(), Verified),
                step(Segment, s.segment(1, 1, 3), Verified),
                step(Segment, s.segment(2, 4, 3), Verified),
                step(Segment, s.segment(1, 1, 3), Refused(SEGMENT)),
            ],
        ),
        case(
            "a part whose VSI numbers it other than its mfhd is refused",
            vec![
                step(Init, init.clone(), Verified),
                step(
                    Part,
                    s.sign(plain_fragment(2), Numbering::Segment(5)),
                    Refused(SEGMENT),
                ),
            ],
        ),
        case(
            "an unsigned rendition is not checked",
            vec![
                step(Init, plain_init(), Unsigned),
                step(Part, plain_fragment(1), Unsigned),
                step(Segment, plain_fragment(1), Unsigned),
            ],
        ),
        case(
            "a flipped media byte is refused, and what follows verifies",
            vec![
                step(Init, init.clone(), Verified),
                step(Part, flip_last(s.part(1)), Refused(SEGMENT)),
                step(Part, s.part(2), Verified),
            ],
        ),
        case(
            "a replayed part is refused",
            vec![
                step(Init, init.clone(), Verified),
                step(Part, s.part(1), Verified),
                step(Part, s.part(2), Verified),
                step(Part, s.part(1), Refused(SEGMENT)),
            ],
        ),
        case(
            "a fragment without its VSI is refused",
            vec![
                step(Init, init.clone(), Verified),
                step(Segment, plain_fragment(1), Refused(SEGMENT)),
            ],
        ),
        case(
            "a fragment before any init segment is refused",
            vec![step(Part, s.part(1), Refused(SEGMENT))],
        ),
        case(
            "a changed moov is refused",
            vec![step(
                Init,
                replaced(
                    init.clone(),
                    &90_000u32.to_be_bytes(),
                    &48_000u32.to_be_bytes(),
                ),
                Refused("assertion.bmffHash.mismatch"),
            )],
        ),
        case(
            "a changed claim is refused",
            vec![step(
                Init,
                replaced(init.clone(), b"vectorstream 720p", b"vectorstream 480p"),
                Refused("claimSignature.mismatch"),
            )],
        ),
        case(
            "a changed assertion is refused",
            vec![step(
                Init,
                replaced(init.clone(), b"00000000000000aa", b"00000000000000bb"),
                Refused("assertion.hashedURI.mismatch"),
            )],
        ),
        case(
            "an init segment with media is refused",
            vec![step(
                Init,
                [init.clone(), bx(b"mdat", &[0; 16])].concat(),
                Refused("livevideo.init.invalid"),
            )],
        ),
        case(
            "a part of another session key is refused",
            vec![
                step(Init, init.clone(), Verified),
                step(Part, keys.stream().part(1), Refused(SEGMENT)),
            ],
        ),
    ];

    let mut other = case(
        "a manifest anchored by another root is refused",
        vec![step(
            Init,
            init.clone(),
            Refused("signingCredential.untrusted"),
        )],
    );
    other.root_pub = keys.other_root.public_key().file_bytes();
    out.push(other);

    let unanchored = Signed::new(
        keys.ca.issue(ORG, SIGNER, NOW - 60).expect("signer"),
        NOW - 60,
        Duration::from_secs(86_400),
        1,
    );
    out.push(case(
        "a claim signer without the root's anchor is refused",
        vec![step(
            Init,
            unanchored.init(),
            Refused("signingCredential.untrusted"),
        )],
    ));

    let expired = Signed::new(
        keys.signer(NOW - 400 * 86_400),
        NOW - 60,
        Duration::from_secs(86_400),
        1,
    );
    out.push(case(
        "an expired claim signer is refused",
        vec![step(
            Init,
            expired.init(),
            Refused("signingCredential.expired"),
        )],
    ));

    let stale_key = Signed::new(
        keys.signer(NOW - 60),
        NOW - 8 * 86_400,
        Duration::from_secs(7 * 86_400),
        1,
    );
    out.push(case(
        "a fragment signed after its session key's validity is refused",
        vec![
            step(Init, stale_key.init(), Verified),
            step(Part, stale_key.part(1), Refused(SEGMENT)),
        ],
    ));

    let late = Signed::new(
        keys.signer(NOW - 60),
        NOW - 60,
        Duration::from_secs(86_400),
        10,
    );
    out.push(case(
        "a sequence number below the key's minimum is refused",
        vec![
            step(Init, late.init(), Verified),
            step(Part, late.part(9), Refused(SEGMENT)),
            step(Part, late.part(10), Verified),
        ],
    ));
    out.extend(signed_by_c2pa_rs(&keys, &case));
    out.extend(es256(&keys, &case));
    out
}

/// The protected header of a claim signature up to its `x5chain`: `{1: alg, 33: …}`.
fn claim_header(alg: u8) -> [u8; 5] {
    [0xa2, 0x01, alg, 0x18, 0x21]
}

/// Cases of ES256 (ECDSA P-256) claim signers, as CAs of the C2PA trust list issue them:
/// under an ES256 CA the root anchored (in the manifest, or apart), a changed claim, a
/// certificate whose ECDSA signature is bad, a claim signature whose `alg` is not its
/// key's, and one whose `alg` is not supported at all.
fn es256(keys: &Keys, case: &dyn Fn(&'static str, Vec<Step>) -> Case) -> Vec<Case> {
    use Expect::{Refused, Verified};
    use Kind::{Init, Part, Segment};
    let anchored = |claim: ClaimSigner| {
        claim
            .with_anchor(keys.anchor_of(&keys.es_ca))
            .with_cosigner(keys.ingest_key())
    };
    let es = Keys::stream_of(anchored(
        keys.es_ca
            .issue_es256(ORG, SIGNER, NOW - 60)
            .expect("signer"),
    ));
    let init = es.init();
    // The claim signer's certificate with the last byte of the CA's ECDSA signature (of
    // its `s`, DER) flipped: still DER, no longer the CA's signature.
    let honest = keys
        .es_ca
        .issue_es256(ORG, SIGNER, NOW - 60)
        .expect("signer");
    let mut pem = String::new();
    for (i, der) in honest.chain().iter().enumerate() {
        let der = if i == 0 {
            flip_last(der.clone())
        } else {
            der.clone()
        };
        super::pem_block(&mut pem, "CERTIFICATE", &der);
    }
    let forged = Keys::stream_of(anchored(
        ClaimSigner::from_pem(&pem, &honest.key_pem()).expect("the altered chain reads"),
    ));
    let delivered = Keys::stream_of(
        keys.es_ca
            .issue_es256(ORG, SIGNER, NOW - 60)
            .expect("signer"),
    );
    let mixed = Keys::stream_of(anchored(
        keys.es_ca.issue(ORG, SIGNER, NOW - 60).expect("signer"),
    ));
    vec![
        case(
            "an ES256 claim signer under an ES256 CA the root anchored verifies",
            vec![
                step(Init, init.clone(), Verified),
                step(Part, es.part(1), Verified),
                step(Part, es.part(2), Verified),
                step(Part, es.part(3), Verified),
                step(Segment, es.segment(1, 1, 3), Verified),
            ],
        ),
        case(
            "a changed ES256 claim is refused",
            vec![step(
                Init,
                replaced(init.clone(), b"vectorstream 720p", b"vectorstream 480p"),
                Refused("claimSignature.mismatch"),
            )],
        ),
        case(
            "an ES256 claim signer whose certificate's ECDSA signature is bad is refused",
            vec![step(
                Init,
                forged.init(),
                Refused("signingCredential.untrusted"),
            )],
        ),
        case(
            "an ES256 claim signature that says EdDSA is refused",
            vec![step(
                Init,
                replaced(init, &claim_header(0x26), &claim_header(0x27)),
                Refused("claimSignature.mismatch"),
            )],
        ),
        case(
            "an Ed25519 claim signer under an ES256 CA verifies",
            vec![
                step(Init, mixed.init(), Verified),
                step(Part, mixed.part(1), Verified),
            ],
        ),
        case(
            "a claim signature of an unsupported alg is refused",
            vec![step(
                Init,
                // -16 (SHA-256): not a signature algorithm C2PA allows.
                replaced(
                    keys.stream().init(),
                    &claim_header(0x27),
                    &claim_header(0x2f),
                ),
                Refused("algorithm.unsupported"),
            )],
        ),
        Case {
            anchors: vec![keys.anchor_of(&keys.es_ca).encode()],
            cosigned: false,
            ..case(
                "an ES256 claim signer whose CA the root anchored apart verifies",
                vec![
                    step(Init, delivered.init(), Verified),
                    step(Part, delivered.part(1), Verified),
                    step(Segment, delivered.segment(1, 1, 3), Verified),
                ],
            )
        },
    ]
}

/// The subject of the claim signer of the stream c2pa-rs signed.
pub const C2PA_RS_SIGNER: &str = "C2PA Signer";

/// Cases of a stream signed by c2pa-rs's own VSI signer (`certs/tests/fixtures/c2pa-rs/`,
/// its README says how it was made): it carries no provenance anchor of ours, so viewers
/// trust it only through an anchor the root signed apart for its claim signer's issuer
/// (delivered as `/trust/v1/provenance-anchors` serves them).
fn signed_by_c2pa_rs(keys: &Keys, case: &dyn Fn(&'static str, Vec<Step>) -> Case) -> Vec<Case> {
    use Expect::{Refused, Verified};
    use Kind::{Init, Segment};
    let init = include_bytes!("../../tests/fixtures/c2pa-rs/init.mp4").to_vec();
    let segments = [
        include_bytes!("../../tests/fixtures/c2pa-rs/seg_0.m4s").to_vec(),
        include_bytes!("../../tests/fixtures/c2pa-rs/seg_1.m4s").to_vec(),
        include_bytes!("../../tests/fixtures/c2pa-rs/seg_2.m4s").to_vec(),
        include_bytes!("../../tests/fixtures/c2pa-rs/seg_3.m4s").to_vec(),
    ];
    let issuer = claim_signer_issuer(&init);
    let validity = Validity::new(NOW - 10, NOW + 365 * 86_400).expect("valid");
    let anchored = |root: &RootKey| vec![root.anchor_provenance(&issuer, validity).encode()];
    let foreign = |name, anchors, steps| Case {
        anchors,
        signer: C2PA_RS_SIGNER,
        cosigned: false,
        ..case(name, steps)
    };
    let mut every = vec![step(Init, init.clone(), Verified)];
    every.extend(segments.iter().map(|s| step(Segment, s.clone(), Verified)));
    vec![
        foreign(
            "a stream signed by c2pa-rs, its issuer anchored by the root apart, verifies",
            anchored(&keys.root),
            every,
        ),
        foreign(
            "a stream signed by c2pa-rs: a flipped byte and a replayed segment are refused",
            anchored(&keys.root),
            vec![
                step(Init, init.clone(), Verified),
                step(Segment, segments[0].clone(), Verified),
                step(Segment, flip_last(segments[1].clone()), Refused(SEGMENT)),
                step(Segment, segments[1].clone(), Verified),
                step(Segment, segments[0].clone(), Refused(SEGMENT)),
            ],
        ),
        foreign(
            "a stream signed by c2pa-rs without an anchor of its issuer is refused",
            Vec::new(),
            vec![step(
                Init,
                init.clone(),
                Refused("signingCredential.untrusted"),
            )],
        ),
        foreign(
            "a stream signed by c2pa-rs, its issuer anchored by another root, is refused",
            anchored(&keys.other_root),
            vec![step(Init, init, Refused("signingCredential.untrusted"))],
        ),
    ]
}

/// The certificate after the claim signer's in an init segment's `x5chain`: its issuer.
fn claim_signer_issuer(init: &[u8]) -> Vec<u8> {
    use domain::c2pa::{cose, decode, read};
    let boxes = bmff::top_level(init).expect("the fixture's boxes");
    let store = read::manifest_box(&boxes).expect("a manifest box");
    let manifest = read::manifest(&store).expect("a manifest");
    let sign1 = decode::read(manifest.signature).expect("the claim signature");
    let fields = sign1
        .untag(cose::TAG_SIGN1)
        .as_array()
        .expect("a COSE_Sign1");
    let protected = fields[0].as_bytes().expect("the protected header");
    let header = decode::read(protected).expect("a header map");
    let chain = header
        .get_int(cose::HEADER_X5CHAIN as i64)
        .and_then(|c| c.as_array())
        .expect("an x5chain of several certificates");
    chain[1].as_bytes().expect("a certificate").to_vec()
}

/// A segment of another stream, for a validator that is handed no anchor of ours and so
/// tells streams apart by their session keys alone (the SVTA's, in
/// `broadcast/tests/broadcast/svta_c2pa.rs`): its own root, provenance CA, claim signer,
/// session key and manifest, numbered 2 and made of parts numbered 4 to 6 like the first
/// case's second segment, signed at [`NOW`].
pub fn another_stream_segment() -> Vec<u8> {
    let keys = Keys::new();
    let other = Signed {
        live: LiveSigner::new(
            Arc::new(keys.signer(NOW - 60)),
            NOW - 60,
            Duration::from_secs(86_400),
            1,
        ),
        label: LiveSigner::manifest_label("otherstream", "00000000000000bb", "720p"),
    };
    other.segment(2, 4, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::c2pa::validate::{FragmentVerdict, InitVerdict, LiveValidator};
    use crate::signing::playback::ViewerTrust;
    use crate::signing::RootPublicKey;

    fn root_of(file: &[u8]) -> RootPublicKey {
        RootPublicKey::from_file_bytes(file).expect("root")
    }

    #[test]
    fn a_revoked_claim_signer_or_ca_is_refused_from_its_revocation_on() {
        let keys = Keys::new();
        let claim = keys.signer(NOW - 60);
        let signer_id = claim.credential_id();
        let ca_id = crate::c2pa::credential_id(&keys.ca.cert_der().expect("der"));
        let s = Signed::new(claim, NOW - 60, Duration::from_secs(86_400), 1);
        let mut v = LiveValidator::new(keys.root.public_key());
        assert!(
            v.check_revocation(|_| Some(0), NOW).is_ok(),
            "nothing verified yet"
        );
        v.admit_init(&s.init(), NOW).expect("verified");
        for id in [signer_id, ca_id] {
            let revoked = |at: u64| move |k| (k == id).then_some(at);
            assert!(v.check_revocation(revoked(NOW + 1), NOW).is_ok(), "not yet");
            let refusal = v.check_revocation(revoked(NOW), NOW).expect_err("revoked");
            assert_eq!(refusal.code.label(), "signingCredential.revoked");
        }
        assert!(v.check_revocation(|_| None, NOW).is_ok());
    }

    #[test]
    fn a_co_signature_by_a_key_the_root_did_not_certify_does_not_verify() {
        let keys = Keys::new();
        let stranger =
            crate::signing::SigningKey::generate(SignatureAlgorithm::MlDsa65).expect("key");
        let der = keys.ca.cert_der().expect("der");
        let validity = Validity::new(NOW - 10, NOW + 86_400).expect("valid");
        let claim = keys
            .ca
            .issue(ORG, SIGNER, NOW - 60)
            .expect("signer")
            .with_anchor(keys.root.anchor_provenance(&der, validity))
            .with_cosigner(stranger);
        let s = Signed::new(claim, NOW - 60, Duration::from_secs(86_400), 1);
        let mut trust = ViewerTrust::new(keys.root.public_key());
        trust.admit_bundle(&crate::signing::TrustBundle::decode(&keys.bundle).expect("bundle"));
        let mut v = LiveValidator::new(keys.root.public_key());
        v.admit_init(&s.init(), NOW)
            .expect("the manifest itself verifies");
        let c = v.cosignature().expect("co-signed");
        assert!(trust
            .verify_signed(c.key_id, c.algorithm, c.signed_at, &c.message, &c.signature)
            .is_err());
        // The certified key's co-signature over the same assertions verifies.
        let good = keys.stream();
        v.admit_init(&good.init(), NOW).expect("verified");
        let c = v.cosignature().expect("co-signed");
        trust
            .verify_signed(c.key_id, c.algorithm, c.signed_at, &c.message, &c.signature)
            .expect("the certified key's co-signature");
    }

    #[test]
    fn an_es256_manifest_is_signed_again_to_the_same_bytes() {
        let keys = Keys::new();
        let claim = keys
            .es_ca
            .issue_es256(ORG, SIGNER, NOW - 60)
            .expect("signer");
        assert_eq!(claim.cose_alg(), domain::c2pa::cose::ALG_ES256);
        let again = ClaimSigner::from_pem(&claim.chain_pem(), &claim.key_pem()).expect("pem");
        assert_eq!(again.chain(), claim.chain());
        let s = Keys::stream_of(claim);
        let first = s.init();
        assert_eq!(
            first,
            s.init(),
            "RFC 6979: the same manifest, the same bytes"
        );
        assert_eq!(s.part(1), s.part(1));
        // Another ES256 key from the same CA does not read as the certificate's.
        let other = keys
            .es_ca
            .issue_es256(ORG, SIGNER, NOW - 60)
            .expect("signer");
        assert!(ClaimSigner::from_pem(&again.chain_pem(), &other.key_pem()).is_err());
    }

    #[test]
    fn an_es256_claim_signer_chains_to_a_c2pa_trust_anchor() {
        let keys = Keys::new();
        let es_ca = keys.es_ca.cert_der().expect("der");
        let s = Keys::stream_of(
            keys.es_ca
                .issue_es256(ORG, SIGNER, NOW - 60)
                .expect("signer"),
        );
        let init = s.init();
        let anchored = |anchors: Vec<Vec<u8>>| {
            let mut v = LiveValidator::with_trust_anchors(keys.root.public_key(), anchors);
            v.admit_init(&init, NOW).map(|_| v)
        };
        let mut v = anchored(vec![es_ca.clone()]).expect("trusted through the ES256 CA");
        assert_eq!(
            v.check_fragment(&s.part(1), true),
            Ok(FragmentVerdict::Verified)
        );
        let refusal = anchored(vec![keys.ca.cert_der().expect("der")]).expect_err("another CA");
        assert_eq!(refusal.code.label(), "signingCredential.untrusted");
        // An ES256 intermediate under the Ed25519 CA, issuing the ES256 claim signer: each
        // link's signature checked in its own algorithm.
        let signer = keys
            .es_ca
            .issue_es256(ORG, SIGNER, NOW - 60)
            .expect("signer");
        let mut chain = signer.chain().to_vec();
        let intermediate = issue_ca_cert(&keys.ca, &keys.es_ca);
        chain[1] = intermediate;
        let mut pem = String::new();
        for der in &chain {
            super::super::pem_block(&mut pem, "CERTIFICATE", der);
        }
        let through = Keys::stream_of(ClaimSigner::from_pem(&pem, &signer.key_pem()).expect("pem"));
        let mut v = LiveValidator::with_trust_anchors(
            keys.root.public_key(),
            vec![keys.ca.cert_der().expect("der")],
        );
        assert!(matches!(
            v.admit_init(&through.init(), NOW),
            Ok(InitVerdict::Verified { .. })
        ));
    }

    /// `subject`'s CA certificate (its key and name, as [`Keys::new`] made it) signed by
    /// `issuer`.
    fn issue_ca_cert(issuer: &ProvenanceCa, subject: &ProvenanceCa) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = super::super::name(ORG, &format!("{ORG} provenance CA"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        crate::tls::set_validity(&mut params, NOW - 400 * 86_400, super::super::CA_LIFETIME)
            .expect("validity");
        let key = rcgen::KeyPair::from_pem(&subject.key_pem()).expect("key");
        let signer = rcgen::KeyPair::from_pem(&issuer.key_pem()).expect("key");
        let issuer = rcgen::Issuer::from_ca_cert_pem(issuer.cert_pem(), signer).expect("issuer");
        params
            .signed_by(&key, &issuer)
            .expect("signed")
            .der()
            .to_vec()
    }

    #[test]
    fn the_rust_validator_gives_every_vector_its_verdict() {
        for case in cases() {
            let root = root_of(&case.root_pub);
            let mut trust = ViewerTrust::new(root.clone());
            let bundle = crate::signing::TrustBundle::decode(&case.bundle).expect("bundle");
            trust.admit_bundle(&bundle); // another root's case refuses its one certificate
            let anchors = (case.anchors.iter())
                .map(|a| super::super::ProvenanceAnchor::decode(a).expect("an anchor"))
                .collect();
            let mut v = LiveValidator::new(root).with_delivered_anchors(anchors);
            let now = case.now_ms / 1000;
            for (i, s) in case.steps.iter().enumerate() {
                let got = match s.kind {
                    Kind::Init => v
                        .admit_init(&s.bytes, now)
                        .and_then(|verdict| match verdict {
                            InitVerdict::Unsigned => Ok(Expect::Unsigned),
                            InitVerdict::Verified { signer } => {
                                assert_eq!(signer, case.signer, "{}", case.name);
                                // The caller's check of the co-signature, as sealcast verify's.
                                assert_eq!(
                                    v.cosignature().is_some(),
                                    case.cosigned,
                                    "{}",
                                    case.name
                                );
                                let Some(c) = v.cosignature() else {
                                    return Ok(Expect::Verified);
                                };
                                trust
                                    .verify_signed(
                                        c.key_id,
                                        c.algorithm,
                                        c.signed_at,
                                        &c.message,
                                        &c.signature,
                                    )
                                    .map(|()| Expect::Verified)
                                    .map_err(|r| crate::c2pa::validate::Refusal {
                                        code: crate::c2pa::validate::Code::CosignatureMismatch,
                                        detail: r.detail,
                                    })
                            }
                        }),
                    Kind::Segment | Kind::Part => v
                        .check_fragment(&s.bytes, s.kind == Kind::Part)
                        .map(|verdict| match verdict {
                            FragmentVerdict::Unsigned => Expect::Unsigned,
                            FragmentVerdict::Verified => Expect::Verified,
                        }),
                };
                let got = got.unwrap_or_else(|r| Expect::Refused(r.code.label()));
                assert_eq!(got, s.expect, "{}: step {i}", case.name);
            }
        }
    }
}

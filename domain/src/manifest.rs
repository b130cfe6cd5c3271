//! The canonical segment manifest an ingest signs and every edge verifies, and the envelope
//! that carries it over MQTT.
//!
//! The layout is fixed and unambiguous: a domain-separation tag, then every field in a fixed
//! order, integers big-endian, names prefixed by their one-byte length (names are 1 to 64
//! bytes by construction), no optional fields:
//!
//! | field | bytes |
//! |---|---|
//! | tag [`MANIFEST_TAG`] | 29 |
//! | algorithm ([`SignatureAlgorithm::code`]) | 1 |
//! | key id | 16 |
//! | stream: length, then ASCII | 1 + 1..=64 |
//! | publish session | 8 |
//! | rendition: length, then ASCII | 1 + 1..=64 |
//! | media sequence | 8 |
//! | discontinuity sequence | 8 |
//! | duration in microseconds | 8 |
//! | byte length | 8 |
//! | SHA-256 digest | 32 |
//!
//! Decoding is strict (anything but exactly this is an error, never a panic), so the same
//! manifest always encodes to the same bytes, two different manifests never do, and bytes
//! that decode re-encode to themselves: a signature over the bytes binds every field.
//! No cryptography lives here: the digest is just bytes, signing happens elsewhere.
//!
//! Long (about 570 lines before its tests) because the byte-exact layouts of every signed
//! statement (manifest, event, presence) and their envelopes must stay side by side to stay
//! distinct: domain tags, field order, size caps.

use std::fmt;
use std::str::FromStr;

use crate::{DomainError, RenditionName, SegmentMeta, SessionId, StreamName};

/// Domain-separation tag: a signature over a manifest can never be mistaken for a
/// signature over anything else the cluster signs.
pub const MANIFEST_TAG: &[u8] = b"sealcast/v1/segment-manifest\0";

/// Largest encoded manifest accepted in an envelope (a manifest is at most 248 bytes).
pub const MAX_MANIFEST_LEN: usize = 1024;
/// Largest signature accepted in an envelope (ML-DSA-65 signatures are 3309 bytes).
pub const MAX_SIGNATURE_LEN: usize = 8192;

/// Domain-separation tag of a control-event statement ([`EventStatement`]).
pub const EVENT_TAG: &[u8] = b"sealcast/v1/control-event\0";
/// Largest event body (JSON of a control event) a statement may carry.
pub const MAX_EVENT_LEN: usize = 16 * 1024;
/// Largest encoded [`SignedEvent`]: a statement at its caps and the largest signature.
pub const MAX_SIGNED_EVENT_LEN: usize =
    8 + EVENT_TAG.len() + 1 + 16 + 8 + 4 + MAX_EVENT_LEN + MAX_SIGNATURE_LEN;

/// Domain-separation tag of a broadcast node's presence statement ([`PresenceStatement`]).
pub const PRESENCE_TAG: &[u8] = b"sealcast/v1/presence\0";
/// Largest presence JSON a statement may carry.
pub const MAX_PRESENCE_JSON_LEN: usize = crate::presence::MAX_PRESENCE_LEN;
/// Largest certificate a presence statement may carry (an ML-DSA-65 edge certificate is
/// under 5.4 KB).
pub const MAX_PRESENCE_CERTIFICATE_LEN: usize = 8 * 1024;
/// Largest encoded [`SignedPresence`].
pub const MAX_SIGNED_PRESENCE_LEN: usize = 8
    + PRESENCE_TAG.len()
    + 1
    + 16
    + 65
    + 8
    + 8
    + MAX_PRESENCE_JSON_LEN
    + MAX_PRESENCE_CERTIFICATE_LEN
    + MAX_SIGNATURE_LEN;

const MANIFEST: &str = "segment manifest";
const ENVELOPE: &str = "signed manifest";
const STATEMENT: &str = "control-event statement";
const SIGNED_EVENT: &str = "signed control event";
const PRESENCE_STATEMENT: &str = "presence statement";
const SIGNED_PRESENCE: &str = "signed presence";

/// Which signature scheme signed a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ML-DSA-65 (FIPS 204), the default.
    MlDsa65,
    /// Ed25519, selectable per cluster.
    Ed25519,
}

impl SignatureAlgorithm {
    /// Stable one-byte code in encodings; never reused for another algorithm.
    pub fn code(self) -> u8 {
        match self {
            Self::MlDsa65 => 1,
            Self::Ed25519 => 2,
        }
    }

    /// The algorithm with that code, if this build knows it.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::MlDsa65),
            2 => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// Identifies a signing key (derived from its public key by whoever makes keys). Written as
/// 32 lowercase hex digits, the only spelling [`FromStr`] accepts, so that a key has exactly
/// one revocation topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for KeyId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        fn nibble(c: u8) -> Result<u8, DomainError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(DomainError::InvalidKeyId),
            }
        }
        if s.len() != 32 {
            return Err(DomainError::InvalidKeyId);
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(KeyId(out))
    }
}

/// Everything a signature binds about one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentManifest {
    /// The signature scheme, bound so a signature cannot be re-read under a weaker one.
    pub algorithm: SignatureAlgorithm,
    /// The signing key, so an edge knows which certificate to check it against.
    pub key_id: KeyId,
    /// The stream.
    pub stream: StreamName,
    /// The publish session, so segments of an earlier session cannot be replayed into a
    /// later one.
    pub session: SessionId,
    /// The rung.
    pub rendition: RenditionName,
    /// Media sequence number.
    pub sequence: u64,
    /// Discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Length of the segment's bytes.
    pub byte_len: u64,
    /// SHA-256 of the exact bytes edges serve.
    pub digest: [u8; 32],
}

impl SegmentManifest {
    /// The manifest of a segment described by `meta` whose bytes are `byte_len` long and
    /// hash to `digest`. Ingest and edge both build it this way, so they agree on it.
    ///
    /// Not bound: `start_pts_90k`, and the `discontinuity` flag, which follows from a change
    /// of `discontinuity_sequence`.
    pub fn from_meta(
        meta: &SegmentMeta,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        byte_len: u64,
        digest: [u8; 32],
    ) -> Self {
        SegmentManifest {
            algorithm,
            key_id,
            stream: meta.stream.clone(),
            session: meta.session,
            rendition: meta.rendition.clone(),
            sequence: meta.sequence,
            discontinuity_sequence: meta.discontinuity_sequence,
            // u64 microseconds last 584,000 years; saturating is never reached in practice.
            duration_us: u64::try_from(meta.duration.as_micros()).unwrap_or(u64::MAX),
            byte_len,
            digest,
        }
    }

    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            MANIFEST_TAG.len() + 1 + 16 + 2 * 65 + 8 + 4 * 8 + 32, // at most 248
        );
        out.extend_from_slice(MANIFEST_TAG);
        out.push(self.algorithm.code());
        out.extend_from_slice(&self.key_id.0);
        put_name(&mut out, self.stream.as_str());
        out.extend_from_slice(&self.session.0.to_be_bytes());
        put_name(&mut out, self.rendition.as_str());
        for n in [
            self.sequence,
            self.discontinuity_sequence,
            self.duration_us,
            self.byte_len,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.digest);
        out
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        // Compare the tag before checking the length, so that a short payload of something
        // else (a JSON object, say) is reported as "not a manifest" rather than "truncated".
        let head = &bytes[..bytes.len().min(MANIFEST_TAG.len())];
        if head != &MANIFEST_TAG[..head.len()] {
            return Err(DomainError::WrongManifestTag);
        }
        let mut r = Reader::new(MANIFEST, bytes);
        r.take(MANIFEST_TAG.len(), "domain tag")?;
        let code = r.byte("algorithm")?;
        let algorithm = SignatureAlgorithm::from_code(code)
            .ok_or(DomainError::UnknownSignatureAlgorithm { code })?;
        let manifest = SegmentManifest {
            algorithm,
            key_id: KeyId(r.array("key id")?),
            stream: r.name("stream name", StreamName::new)?,
            session: SessionId(r.u64("publish session")?),
            rendition: r.name("rendition name", RenditionName::new)?,
            sequence: r.u64("media sequence")?,
            discontinuity_sequence: r.u64("discontinuity sequence")?,
            duration_us: r.u64("duration")?,
            byte_len: r.u64("byte length")?,
            digest: r.array("digest")?,
        };
        r.finish()?;
        Ok(manifest)
    }
}

/// Domain-separation tag of a part manifest ([`PartManifest`]): a part's signature can
/// never be read as a segment's, nor the other way round.
pub const PART_TAG: &[u8] = b"sealcast/v1/part-manifest\0";

const PART_MANIFEST: &str = "part manifest";

/// Everything a signature binds about one LL-HLS partial segment: the fields of a
/// [`SegmentManifest`] plus the part's index within its segment and whether it starts with
/// a keyframe (`INDEPENDENT=YES`), and when its first frame was captured
/// (`EXT-X-PROGRAM-DATE-TIME`). Its layout is the segment manifest's with the tag
/// [`PART_TAG`], then after the media sequence: part index (4 bytes), independent (1 byte,
/// `0` or `1`); after the duration: the capture time in Unix milliseconds (8 bytes).
/// Strict in the same way: one encoding per manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartManifest {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key.
    pub key_id: KeyId,
    /// The stream.
    pub stream: StreamName,
    /// The publish session.
    pub session: SessionId,
    /// The rung.
    pub rendition: RenditionName,
    /// Media sequence number of the segment the part belongs to.
    pub sequence: u64,
    /// The part's index within its segment, from 0.
    pub index: u32,
    /// Whether the part starts with a keyframe.
    pub independent: bool,
    /// Discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// When its first frame was captured, Unix milliseconds (the ingest's clock).
    pub program_date_time_ms: u64,
    /// Length of the part's bytes.
    pub byte_len: u64,
    /// SHA-256 of the exact bytes edges serve.
    pub digest: [u8; 32],
}

impl PartManifest {
    /// The manifest of the part described by `meta`, whose bytes are `byte_len` long and
    /// hash to `digest`. Ingest and edge both build it this way.
    pub fn from_meta(
        meta: &crate::segment::PartMeta,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        byte_len: u64,
        digest: [u8; 32],
    ) -> Self {
        PartManifest {
            algorithm,
            key_id,
            stream: meta.stream.clone(),
            session: meta.session,
            rendition: meta.rendition.clone(),
            sequence: meta.sequence,
            index: meta.index,
            independent: meta.independent,
            discontinuity_sequence: meta.discontinuity_sequence,
            duration_us: u64::try_from(meta.duration.as_micros()).unwrap_or(u64::MAX),
            program_date_time_ms: meta.program_date_time_ms,
            byte_len,
            digest,
        }
    }

    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PART_TAG.len() + 1 + 16 + 2 * 65 + 8 + 5 + 4 * 8 + 32);
        out.extend_from_slice(PART_TAG);
        out.push(self.algorithm.code());
        out.extend_from_slice(&self.key_id.0);
        put_name(&mut out, self.stream.as_str());
        out.extend_from_slice(&self.session.0.to_be_bytes());
        put_name(&mut out, self.rendition.as_str());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.push(u8::from(self.independent));
        for n in [
            self.discontinuity_sequence,
            self.duration_us,
            self.program_date_time_ms,
            self.byte_len,
        ] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.digest);
        out
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let mut r = Reader::new(PART_MANIFEST, bytes);
        if r.take(PART_TAG.len(), "domain tag")? != PART_TAG {
            return Err(DomainError::WrongManifestTag);
        }
        let code = r.byte("algorithm")?;
        let algorithm = SignatureAlgorithm::from_code(code)
            .ok_or(DomainError::UnknownSignatureAlgorithm { code })?;
        let key_id = KeyId(r.array("key id")?);
        let stream = r.name("stream name", StreamName::new)?;
        let session = SessionId(r.u64("publish session")?);
        let rendition = r.name("rendition name", RenditionName::new)?;
        let sequence = r.u64("media sequence")?;
        let index = u32::from_be_bytes(r.array("part index")?);
        let independent = match r.byte("independent")? {
            0 => false,
            1 => true,
            _ => {
                return Err(DomainError::InvalidFlag {
                    what: PART_MANIFEST,
                    field: "independent",
                })
            }
        };
        let manifest = PartManifest {
            algorithm,
            key_id,
            stream,
            session,
            rendition,
            sequence,
            index,
            independent,
            discontinuity_sequence: r.u64("discontinuity sequence")?,
            duration_us: r.u64("duration")?,
            program_date_time_ms: r.u64("program date-time")?,
            byte_len: r.u64("byte length")?,
            digest: r.array("digest")?,
        };
        r.finish()?;
        Ok(manifest)
    }
}

/// What a signed manifest on a manifest topic says: a whole segment or one part of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// A segment's manifest.
    Segment(SegmentManifest),
    /// A part's manifest.
    Part(PartManifest),
}

impl AnyManifest {
    /// The key that signed it.
    pub fn key_id(&self) -> KeyId {
        match self {
            Self::Segment(m) => m.key_id,
            Self::Part(m) => m.key_id,
        }
    }

    /// The scheme that signed it.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::Segment(m) => m.algorithm,
            Self::Part(m) => m.algorithm,
        }
    }
}

/// What travels over MQTT: a manifest's canonical bytes and a signature over exactly those
/// bytes. The manifest stays as bytes because that is what was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    /// [`SegmentManifest::encode`] output, at most [`MAX_MANIFEST_LEN`] bytes.
    pub manifest_bytes: Vec<u8>,
    /// Signature over `manifest_bytes`, at most [`MAX_SIGNATURE_LEN`] bytes.
    pub signature: Vec<u8>,
}

impl SignedManifest {
    /// `u32 length ‖ manifest ‖ u32 length ‖ signature`, lengths big-endian.
    ///
    /// Parts over the caps encode, but [`SignedManifest::decode`] refuses them.
    pub fn encode(&self) -> Vec<u8> {
        encode_envelope(&self.manifest_bytes, &self.signature)
    }

    /// Parses an envelope strictly, enforcing the size caps before copying anything. The
    /// manifest inside is not decoded: see [`SignedManifest::manifest`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let (manifest_bytes, signature) =
            decode_envelope(ENVELOPE, "manifest", MAX_MANIFEST_LEN, bytes)?;
        Ok(SignedManifest {
            manifest_bytes,
            signature,
        })
    }

    /// Decodes the manifest inside, to learn which key and algorithm to verify with. The
    /// signature is checked over `manifest_bytes` themselves; since decoding is strict,
    /// they are also exactly the encoding of the manifest returned here.
    pub fn manifest(&self) -> Result<SegmentManifest, DomainError> {
        SegmentManifest::decode(&self.manifest_bytes)
    }

    /// Decodes the manifest inside as a segment's or a part's, by its domain tag.
    pub fn any_manifest(&self) -> Result<AnyManifest, DomainError> {
        if self.manifest_bytes.starts_with(PART_TAG) {
            PartManifest::decode(&self.manifest_bytes).map(AnyManifest::Part)
        } else {
            SegmentManifest::decode(&self.manifest_bytes).map(AnyManifest::Segment)
        }
    }
}

/// What an ingest says in a control event (session start and end, rendition info, "window
/// sent"), as it signs it: the domain tag [`EVENT_TAG`], algorithm, key id, when the ingest
/// signed it (unix milliseconds, so an edge can refuse an old statement replayed), and the
/// event itself as opaque bytes (JSON of `domain::push::ControlEvent`, decoded only after
/// the signature verified), u32-length-prefixed. Strict like [`SegmentManifest`]: one
/// encoding per statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStatement {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key.
    pub key_id: KeyId,
    /// When the ingest signed it, unix milliseconds.
    pub issued_at_ms: u64,
    /// The event's bytes, at most [`MAX_EVENT_LEN`].
    pub body: Vec<u8>,
}

impl EventStatement {
    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(EVENT_TAG.len() + 1 + 16 + 8 + 4 + self.body.len());
        out.extend_from_slice(EVENT_TAG);
        out.push(self.algorithm.code());
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        put_part(&mut out, &self.body);
        out
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let mut r = Reader::new(STATEMENT, bytes);
        if r.take(EVENT_TAG.len(), "domain tag")? != EVENT_TAG {
            return Err(DomainError::WrongEventTag);
        }
        let code = r.byte("algorithm")?;
        let algorithm = SignatureAlgorithm::from_code(code)
            .ok_or(DomainError::UnknownSignatureAlgorithm { code })?;
        let statement = EventStatement {
            algorithm,
            key_id: KeyId(r.array("key id")?),
            issued_at_ms: r.u64("issue time")?,
            body: r.part("event", MAX_EVENT_LEN)?.to_vec(),
        };
        r.finish()?;
        Ok(statement)
    }
}

/// The body of `POST /internal/v1/events`: a statement's canonical bytes and a signature
/// over exactly those bytes, in the envelope of [`SignedManifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// [`EventStatement::encode`] output.
    pub statement_bytes: Vec<u8>,
    /// Signature over `statement_bytes`, at most [`MAX_SIGNATURE_LEN`] bytes.
    pub signature: Vec<u8>,
}

impl SignedEvent {
    /// `u32 length ‖ statement ‖ u32 length ‖ signature`, lengths big-endian.
    pub fn encode(&self) -> Vec<u8> {
        encode_envelope(&self.statement_bytes, &self.signature)
    }

    /// Parses an envelope strictly, enforcing the size caps before copying anything.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let (statement_bytes, signature) = decode_envelope(
            SIGNED_EVENT,
            "statement",
            MAX_SIGNED_EVENT_LEN - MAX_SIGNATURE_LEN,
            bytes,
        )?;
        Ok(SignedEvent {
            statement_bytes,
            signature,
        })
    }

    /// Decodes the statement inside, to learn which key to verify with.
    pub fn statement(&self) -> Result<EventStatement, DomainError> {
        EventStatement::decode(&self.statement_bytes)
    }
}

/// What a broadcast node says about itself, as it signs it: the domain tag
/// [`PRESENCE_TAG`], algorithm, key id, the node (which must be the node of the presence
/// topic it arrives on), when it was signed (unix milliseconds), the presence JSON
/// ([`crate::presence::Presence`]) and the root-signed certificate of the signing key, the
/// last two u32-length-prefixed. Strict like [`SegmentManifest`]: one encoding per
/// statement. Nothing here checks a signature: `certs::signing::PresenceVerifier` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceStatement {
    /// The signature scheme.
    pub algorithm: SignatureAlgorithm,
    /// The signing key.
    pub key_id: KeyId,
    /// The node the presence is about.
    pub node: crate::NodeId,
    /// When the node signed it, unix milliseconds.
    pub issued_at_ms: u64,
    /// The presence's JSON, at most [`MAX_PRESENCE_JSON_LEN`] bytes.
    pub presence: Vec<u8>,
    /// The signing key's certificate, at most [`MAX_PRESENCE_CERTIFICATE_LEN`] bytes.
    pub certificate: Vec<u8>,
}

impl PresenceStatement {
    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            PRESENCE_TAG.len() + 1 + 16 + 65 + 8 + 8 + self.presence.len() + self.certificate.len(),
        );
        out.extend_from_slice(PRESENCE_TAG);
        out.push(self.algorithm.code());
        out.extend_from_slice(&self.key_id.0);
        put_name(&mut out, self.node.as_str());
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        put_part(&mut out, &self.presence);
        put_part(&mut out, &self.certificate);
        out
    }

    /// Parses canonical bytes strictly: anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let mut r = Reader::new(PRESENCE_STATEMENT, bytes);
        if r.take(PRESENCE_TAG.len(), "domain tag")? != PRESENCE_TAG {
            return Err(DomainError::WrongPresenceTag);
        }
        let code = r.byte("algorithm")?;
        let algorithm = SignatureAlgorithm::from_code(code)
            .ok_or(DomainError::UnknownSignatureAlgorithm { code })?;
        let statement = PresenceStatement {
            algorithm,
            key_id: KeyId(r.array("key id")?),
            node: r.name("node", crate::NodeId::new)?,
            issued_at_ms: r.u64("issue time")?,
            presence: r.part("presence", MAX_PRESENCE_JSON_LEN)?.to_vec(),
            certificate: r
                .part("certificate", MAX_PRESENCE_CERTIFICATE_LEN)?
                .to_vec(),
        };
        r.finish()?;
        Ok(statement)
    }
}

/// A broadcast node's presence payload: a [`PresenceStatement`]'s canonical bytes and a
/// signature over exactly those bytes, in the envelope of [`SignedManifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPresence {
    /// [`PresenceStatement::encode`] output.
    pub statement_bytes: Vec<u8>,
    /// Signature over `statement_bytes`, at most [`MAX_SIGNATURE_LEN`] bytes.
    pub signature: Vec<u8>,
}

impl SignedPresence {
    /// `u32 length ‖ statement ‖ u32 length ‖ signature`, lengths big-endian.
    pub fn encode(&self) -> Vec<u8> {
        encode_envelope(&self.statement_bytes, &self.signature)
    }

    /// Parses an envelope strictly, enforcing the size caps before copying anything.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let (statement_bytes, signature) = decode_envelope(
            SIGNED_PRESENCE,
            "statement",
            MAX_SIGNED_PRESENCE_LEN - MAX_SIGNATURE_LEN - 8,
            bytes,
        )?;
        Ok(SignedPresence {
            statement_bytes,
            signature,
        })
    }

    /// Decodes the statement inside, to learn which key to verify with.
    pub fn statement(&self) -> Result<PresenceStatement, DomainError> {
        PresenceStatement::decode(&self.statement_bytes)
    }
}

/// `u32 length ‖ signed ‖ u32 length ‖ signature`.
fn encode_envelope(signed: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + signed.len() + signature.len());
    put_part(&mut out, signed);
    put_part(&mut out, signature);
    out
}

/// The two parts of an envelope, the first at most `max_signed` bytes.
fn decode_envelope(
    what: &'static str,
    field: &'static str,
    max_signed: usize,
    bytes: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), DomainError> {
    let mut r = Reader::new(what, bytes);
    let signed = r.part(field, max_signed)?.to_vec();
    let signature = r.part("signature", MAX_SIGNATURE_LEN)?.to_vec();
    r.finish()?;
    Ok((signed, signature))
}

fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    // A part over 4 GiB is far over its cap, so its envelope never decodes anyway.
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    // Names are 1 to 64 bytes (checked when they are made), so the length fits a byte.
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
}

/// Reads fields off the front of a byte slice; every shortfall is an error naming the field.
struct Reader<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Reader { what, rest: bytes }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DomainError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(DomainError::Truncated {
                what: self.what,
                field,
            })?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DomainError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, DomainError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DomainError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A length-prefixed name, validated by the name type's own constructor. Bytes that are
    /// not UTF-8 become U+FFFD, which no name allows, so they fail the same validation.
    fn name<T>(
        &mut self,
        field: &'static str,
        make: impl FnOnce(String) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        let len = usize::from(self.byte(field)?);
        make(String::from_utf8_lossy(self.take(len, field)?).into_owned())
    }

    /// A u32-length-prefixed part of at most `max` bytes.
    fn part(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DomainError> {
        let len = u32::from_be_bytes(self.array(field)?);
        match usize::try_from(len) {
            Ok(len) if len <= max => self.take(len, field),
            _ => Err(DomainError::TooLarge {
                what: self.what,
                field,
                len: u64::from(len),
                max,
            }),
        }
    }

    fn finish(self) -> Result<(), DomainError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DomainError::TrailingBytes {
                what: self.what,
                count: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const NAME: &str = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}";

    fn algorithm() -> impl Strategy<Value = SignatureAlgorithm> {
        prop_oneof![
            Just(SignatureAlgorithm::MlDsa65),
            Just(SignatureAlgorithm::Ed25519)
        ]
    }

    fn manifest() -> impl Strategy<Value = SegmentManifest> {
        (
            algorithm(),
            any::<[u8; 16]>(),
            NAME,
            any::<u64>(),
            NAME,
            any::<[u64; 4]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(algorithm, key, stream, session, rendition, n, digest)| {
                SegmentManifest {
                    algorithm,
                    key_id: KeyId(key),
                    stream: StreamName::new(stream).expect("valid"),
                    session: SessionId(session),
                    rendition: RenditionName::new(rendition).expect("valid"),
                    sequence: n[0],
                    discontinuity_sequence: n[1],
                    duration_us: n[2],
                    byte_len: n[3],
                    digest,
                }
            })
    }

    fn envelope() -> impl Strategy<Value = SignedManifest> {
        (
            manifest(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_SIGNATURE_LEN),
        )
            .prop_map(|(m, signature)| SignedManifest {
                manifest_bytes: m.encode(),
                signature,
            })
    }

    /// `name` if it differs from `old`, else `old` with another first character.
    fn differing(name: &str, old: &str) -> String {
        if name != old {
            return name.to_owned();
        }
        let first = if old.starts_with('a') { 'b' } else { 'a' };
        format!("{first}{}", &old[1..])
    }

    /// `m` with field number `field` (0..10, in layout order) changed, taking the new value
    /// from `other` where that differs.
    fn change(m: &SegmentManifest, other: &SegmentManifest, field: usize) -> SegmentManifest {
        let mut n = m.clone();
        match field {
            0 => {
                n.algorithm = match m.algorithm {
                    SignatureAlgorithm::MlDsa65 => SignatureAlgorithm::Ed25519,
                    SignatureAlgorithm::Ed25519 => SignatureAlgorithm::MlDsa65,
                }
            }
            1 => n.key_id.0[15] ^= 1,
            2 => {
                let s = differing(other.stream.as_str(), m.stream.as_str());
                n.stream = StreamName::new(s).expect("valid");
            }
            3 => n.session.0 ^= 1,
            4 => {
                let r = differing(other.rendition.as_str(), m.rendition.as_str());
                n.rendition = RenditionName::new(r).expect("valid");
            }
            5 => n.sequence ^= 1 << 63,
            6 => n.discontinuity_sequence ^= 1,
            7 => n.duration_us ^= 1,
            8 => n.byte_len ^= 1,
            _ => n.digest[0] ^= 0x80,
        }
        n
    }

    fn part_manifest() -> impl Strategy<Value = PartManifest> {
        (manifest(), any::<u32>(), any::<bool>()).prop_map(|(m, index, independent)| PartManifest {
            algorithm: m.algorithm,
            key_id: m.key_id,
            stream: m.stream,
            session: m.session,
            rendition: m.rendition,
            sequence: m.sequence,
            index,
            independent,
            discontinuity_sequence: m.discontinuity_sequence,
            duration_us: m.duration_us,
            program_date_time_ms: m.digest[0].into(),
            byte_len: m.byte_len,
            digest: m.digest,
        })
    }

    proptest! {
        /// A part manifest round-trips, is told apart from a segment manifest by its tag
        /// alone, and any change to its bytes is refused or decodes to another manifest.
        #[test]
        fn part_manifests_round_trip_and_never_pass_for_segments(
            m in part_manifest(),
            seg in manifest(),
            flip in any::<Index>(),
        ) {
            let bytes = m.encode();
            prop_assert!(bytes.len() <= MAX_MANIFEST_LEN);
            prop_assert_eq!(PartManifest::decode(&bytes), Ok(m.clone()));
            prop_assert!(SegmentManifest::decode(&bytes).is_err());
            prop_assert!(PartManifest::decode(&seg.encode()).is_err());
            let envelope = SignedManifest { manifest_bytes: bytes.clone(), signature: vec![1] };
            prop_assert_eq!(envelope.any_manifest(), Ok(AnyManifest::Part(m.clone())));
            let envelope = SignedManifest { manifest_bytes: seg.encode(), signature: vec![1] };
            prop_assert_eq!(envelope.any_manifest(), Ok(AnyManifest::Segment(seg)));
            let mut changed = bytes.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            if let Ok(other) = PartManifest::decode(&changed) {
                prop_assert_ne!(other, m);
            }
        }
    }

    proptest! {
        #[test]
        fn manifests_round_trip(m in manifest()) {
            let bytes = m.encode();
            prop_assert!(bytes.len() <= MAX_MANIFEST_LEN);
            prop_assert_eq!(SegmentManifest::decode(&bytes), Ok(m));
        }

        #[test]
        fn distinct_manifests_encode_differently(a in manifest(), b in manifest()) {
            prop_assert_eq!(a == b, a.encode() == b.encode());
        }

        #[test]
        fn changing_any_one_field_changes_the_bytes(
            m in manifest(),
            other in manifest(),
            field in 0usize..10,
        ) {
            let n = change(&m, &other, field);
            prop_assert_ne!(&m, &n);
            prop_assert_ne!(m.encode(), n.encode());
            prop_assert_eq!(SegmentManifest::decode(&n.encode()), Ok(n));
        }

        /// Characters cannot move between the two names: the length prefixes tell them apart.
        #[test]
        fn names_cannot_shift_between_fields(
            m in manifest(),
            joined in "[a-z0-9]{2,64}",
            a in any::<Index>(),
            b in any::<Index>(),
        ) {
            let (a, b) = (1 + a.index(joined.len() - 1), 1 + b.index(joined.len() - 1));
            prop_assume!(a != b);
            let split = |at: usize| {
                let mut n = m.clone();
                n.stream = StreamName::new(&joined[..at]).expect("valid");
                n.rendition = RenditionName::new(&joined[at..]).expect("valid");
                n.encode()
            };
            prop_assert_ne!(split(a), split(b));
        }

        /// Bytes that decode are canonical: they are exactly the encoding of what they decode to.
        #[test]
        fn altered_bytes_decode_only_to_their_own_encoding(
            m in manifest(),
            at in any::<Index>(),
            byte in any::<u8>(),
            insert in any::<bool>(),
        ) {
            let mut bytes = m.encode();
            let at = at.index(bytes.len());
            if insert {
                bytes.insert(at, byte);
            } else {
                bytes[at] = byte;
            }
            if let Ok(n) = SegmentManifest::decode(&bytes) {
                prop_assert_eq!(n.encode(), bytes);
            }
        }

        #[test]
        fn envelopes_round_trip(e in envelope()) {
            prop_assert_eq!(SignedManifest::decode(&e.encode()), Ok(e.clone()));
            prop_assert_eq!(e.manifest().map(|m| m.encode()), Ok(e.manifest_bytes));
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = EventStatement::decode(&bytes);
            let _ = SignedEvent::decode(&bytes).map(|e| e.statement());
            let _ = SegmentManifest::decode(&bytes);
            if let Ok(e) = SignedManifest::decode(&bytes) {
                prop_assert_eq!(e.encode(), bytes);
                let _ = e.manifest();
            }
        }

        /// Garbage right after a valid tag reaches every field decoder, not just the tag check.
        #[test]
        fn decoding_garbage_after_the_tag_never_panics(
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let bytes = [MANIFEST_TAG, &tail].concat();
            if let Ok(m) = SegmentManifest::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }

        #[test]
        fn key_ids_round_trip_through_hex(k in any::<[u8; 16]>()) {
            let hex = KeyId(k).to_string();
            prop_assert_eq!(hex.len(), 32);
            prop_assert_eq!(hex.parse::<KeyId>(), Ok(KeyId(k)));
        }

        #[test]
        fn parsing_any_string_as_a_key_id_never_panics(s in ".{0,40}") {
            if let Ok(k) = s.parse::<KeyId>() {
                prop_assert_eq!(k.to_string(), s);
            }
        }
    }

    fn sample() -> SegmentManifest {
        SegmentManifest {
            algorithm: SignatureAlgorithm::MlDsa65,
            key_id: KeyId([7; 16]),
            stream: StreamName::new("cam1").expect("valid"),
            session: SessionId(42),
            rendition: RenditionName::new("720p").expect("valid"),
            sequence: 9,
            discontinuity_sequence: 1,
            duration_us: 2_000_000,
            byte_len: 1000,
            digest: [3; 32],
        }
    }

    /// Offset of the stream name's length byte in an encoding.
    const STREAM_AT: usize = 29 + 1 + 16;
    /// Offset of the rendition name's length byte in `sample().encode()`.
    const RENDITION_AT: usize = STREAM_AT + 1 + 4 + 8;

    fn truncated(field: &'static str) -> DomainError {
        DomainError::Truncated {
            what: "segment manifest",
            field,
        }
    }

    /// The layout is a wire format that signatures depend on: pin it byte for byte.
    #[test]
    fn encoding_is_pinned() {
        let want: Vec<u8> = [
            &b"sealcast/v1/segment-manifest\0"[..],
            &[1],                               // ML-DSA-65
            &[7; 16],                           // key id
            &[4],                               // stream length
            b"cam1",                            // stream
            &[0, 0, 0, 0, 0, 0, 0, 42],         // session
            &[4],                               // rendition length
            b"720p",                            // rendition
            &[0, 0, 0, 0, 0, 0, 0, 9],          // media sequence
            &[0, 0, 0, 0, 0, 0, 0, 1],          // discontinuity sequence
            &[0, 0, 0, 0, 0, 0x1e, 0x84, 0x80], // 2 000 000 µs
            &[0, 0, 0, 0, 0, 0, 0x03, 0xe8],    // 1000 bytes
            &[3; 32],                           // digest
        ]
        .concat();
        assert_eq!(MANIFEST_TAG.len(), 29);
        assert_eq!(sample().encode(), want);
        assert_eq!(want[STREAM_AT], 4);
        assert_eq!(want[RENDITION_AT], 4);
    }

    #[test]
    fn algorithm_codes_are_stable() {
        assert_eq!(SignatureAlgorithm::MlDsa65.code(), 1);
        assert_eq!(SignatureAlgorithm::Ed25519.code(), 2);
        for code in 0..=u8::MAX {
            if let Some(a) = SignatureAlgorithm::from_code(code) {
                assert_eq!(a.code(), code);
            }
        }
    }

    #[test]
    fn the_largest_manifest_fits_the_envelope_cap() {
        let mut m = sample();
        m.stream = StreamName::new("s".repeat(64)).expect("valid");
        m.rendition = RenditionName::new("r".repeat(64)).expect("valid");
        assert_eq!(m.encode().len(), 248);
        assert!(m.encode().len() <= MAX_MANIFEST_LEN);
    }

    #[test]
    fn from_meta_takes_every_field_it_binds() {
        let meta = SegmentMeta {
            stream: StreamName::new("cam1").expect("valid"),
            rendition: RenditionName::new("720p").expect("valid"),
            session: SessionId(42),
            sequence: 9,
            discontinuity_sequence: 1,
            discontinuity: true,
            duration: Duration::from_micros(2_000_000),
            start_pts_90k: 123,
        };
        let m = SegmentManifest::from_meta(
            &meta,
            SignatureAlgorithm::MlDsa65,
            KeyId([7; 16]),
            1000,
            [3; 32],
        );
        assert_eq!(m, sample());
    }

    #[test]
    fn wrong_tag() {
        let mut bytes = sample().encode();
        bytes[0] ^= 1;
        assert_eq!(
            SegmentManifest::decode(&bytes),
            Err(DomainError::WrongManifestTag)
        );
        // Another version, and a short payload that is plainly something else.
        let v2 = [&b"sealcast/v2/segment-manifest\0"[..], &bytes[29..]].concat();
        assert_eq!(
            SegmentManifest::decode(&v2),
            Err(DomainError::WrongManifestTag)
        );
        assert_eq!(
            SegmentManifest::decode(b"{}"),
            Err(DomainError::WrongManifestTag)
        );
    }

    #[test]
    fn unknown_algorithm() {
        for code in [0, 3, 0xff] {
            let mut bytes = sample().encode();
            bytes[MANIFEST_TAG.len()] = code;
            assert_eq!(
                SegmentManifest::decode(&bytes),
                Err(DomainError::UnknownSignatureAlgorithm { code })
            );
        }
    }

    /// `sample()` with the stream name's bytes (after its length byte) replaced by `name`.
    fn with_raw_name(at: usize, name: &[u8]) -> Vec<u8> {
        let good = sample().encode();
        let len = u8::try_from(name.len()).expect("short");
        [&good[..at], &[len], name, &good[at + 1 + 4..]].concat()
    }

    #[test]
    fn invalid_names() {
        for (at, kind) in [(STREAM_AT, "stream name"), (RENDITION_AT, "rendition name")] {
            for name in [
                &b""[..],
                b"a/b",
                b"a+",
                b"#",
                b"-leading-dash",
                b"caf\xc3\xa9",  // UTF-8, not ASCII
                b"\xff\xfe",     // not UTF-8
                &[b'a'; 65][..], // one byte too long
            ] {
                match SegmentManifest::decode(&with_raw_name(at, name)) {
                    Err(DomainError::InvalidName { kind: k, .. }) => {
                        assert_eq!(k, kind, "{name:?}")
                    }
                    other => panic!("{kind} {name:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = sample().encode();
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(
            SegmentManifest::decode(&bytes),
            Err(DomainError::TrailingBytes {
                what: "segment manifest",
                count: 2
            })
        );
    }

    #[test]
    fn every_truncation_is_reported_as_such() {
        let good = sample().encode();
        for len in 0..good.len() {
            assert!(
                matches!(
                    SegmentManifest::decode(&good[..len]),
                    Err(DomainError::Truncated {
                        what: "segment manifest",
                        ..
                    })
                ),
                "{len}"
            );
        }
        for (len, field) in [
            (0, "domain tag"),
            (28, "domain tag"),
            (29, "algorithm"),
            (STREAM_AT, "stream name"),
            (STREAM_AT + 3, "stream name"),
            (RENDITION_AT - 1, "publish session"),
            (RENDITION_AT + 2, "rendition name"),
            (good.len() - 33, "byte length"),
            (good.len() - 1, "digest"),
        ] {
            assert_eq!(
                SegmentManifest::decode(&good[..len]),
                Err(truncated(field)),
                "{len}"
            );
        }
    }

    #[test]
    fn key_id_spellings_other_than_lowercase_hex_are_refused() {
        let k = KeyId([0xab; 16]);
        assert_eq!(k.to_string(), "ab".repeat(16));
        for bad in [
            "AB".repeat(16),
            "ab".repeat(15),
            "ab".repeat(17),
            format!("{}g", "a".repeat(31)),
            format!("{}+", "a".repeat(31)),
            format!("{}é", "a".repeat(30)),
            String::new(),
        ] {
            assert_eq!(
                bad.parse::<KeyId>(),
                Err(DomainError::InvalidKeyId),
                "{bad}"
            );
        }
    }

    fn envelope_bytes(manifest: &[u8], signature: &[u8]) -> Vec<u8> {
        SignedManifest {
            manifest_bytes: manifest.to_vec(),
            signature: signature.to_vec(),
        }
        .encode()
    }

    #[test]
    fn envelope_layout_is_pinned() {
        assert_eq!(
            envelope_bytes(b"mm", b"sss"),
            b"\0\0\0\x02mm\0\0\0\x03sss".to_vec()
        );
    }

    #[test]
    fn envelope_parts_at_the_caps_are_accepted() {
        let e = SignedManifest {
            manifest_bytes: vec![1; MAX_MANIFEST_LEN],
            signature: vec![2; MAX_SIGNATURE_LEN],
        };
        assert_eq!(SignedManifest::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn oversized_envelope_parts_are_refused_before_copying() {
        let too_large = |field, len: usize, max| DomainError::TooLarge {
            what: "signed manifest",
            field,
            len: len as u64,
            max,
        };
        // The length prefix alone is enough: no bytes follow it.
        let huge = u32::MAX.to_be_bytes();
        assert_eq!(
            SignedManifest::decode(&huge),
            Err(too_large("manifest", u32::MAX as usize, MAX_MANIFEST_LEN))
        );
        let bytes = envelope_bytes(&[1; MAX_MANIFEST_LEN + 1], b"");
        assert_eq!(
            SignedManifest::decode(&bytes),
            Err(too_large(
                "manifest",
                MAX_MANIFEST_LEN + 1,
                MAX_MANIFEST_LEN
            ))
        );
        let bytes = envelope_bytes(b"m", &[2; MAX_SIGNATURE_LEN + 1]);
        assert_eq!(
            SignedManifest::decode(&bytes),
            Err(too_large(
                "signature",
                MAX_SIGNATURE_LEN + 1,
                MAX_SIGNATURE_LEN
            ))
        );
    }

    #[test]
    fn truncated_envelopes() {
        let good = envelope_bytes(b"mm", b"sss");
        for (len, field) in [
            (0, "manifest"),
            (3, "manifest"),
            (5, "manifest"),
            (6, "signature"),
            (9, "signature"),
            (12, "signature"),
        ] {
            assert_eq!(
                SignedManifest::decode(&good[..len]),
                Err(DomainError::Truncated {
                    what: "signed manifest",
                    field
                }),
                "{len}"
            );
        }
    }

    #[test]
    fn trailing_bytes_after_an_envelope() {
        let mut bytes = envelope_bytes(b"mm", b"sss");
        bytes.push(0);
        assert_eq!(
            SignedManifest::decode(&bytes),
            Err(DomainError::TrailingBytes {
                what: "signed manifest",
                count: 1
            })
        );
    }

    #[test]
    fn statements_round_trip_and_decode_strictly() {
        let statement = EventStatement {
            algorithm: SignatureAlgorithm::MlDsa65,
            key_id: KeyId([7; 16]),
            issued_at_ms: 1_800_000_000_123,
            body: br#"{"type":"synced","ingest":"ingest1"}"#.to_vec(),
        };
        let bytes = statement.encode();
        assert_eq!(EventStatement::decode(&bytes), Ok(statement.clone()));
        // Every truncation and any trailing byte is an error.
        for n in 0..bytes.len() {
            assert!(EventStatement::decode(&bytes[..n]).is_err(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(EventStatement::decode(&longer).is_err());
        // A segment manifest is never read as a statement, nor the other way round.
        assert_eq!(
            EventStatement::decode(&sample().encode()),
            Err(DomainError::WrongEventTag)
        );
        assert!(SegmentManifest::decode(&bytes).is_err());
        // Over the body cap: refused before copying.
        let big = EventStatement {
            body: vec![b' '; MAX_EVENT_LEN + 1],
            ..statement.clone()
        };
        assert!(matches!(
            EventStatement::decode(&big.encode()),
            Err(DomainError::TooLarge { .. })
        ));
        let signed = SignedEvent {
            statement_bytes: bytes,
            signature: vec![1; 64],
        };
        let decoded = SignedEvent::decode(&signed.encode()).expect("decodes");
        assert_eq!(decoded.statement(), Ok(statement));
        assert!(signed.encode().len() <= MAX_SIGNED_EVENT_LEN);
    }

    #[test]
    fn an_envelope_around_garbage_decodes_but_its_manifest_does_not() {
        let e = SignedManifest::decode(&envelope_bytes(b"not a manifest", b"sig"))
            .expect("a well-formed envelope");
        assert_eq!(e.manifest(), Err(DomainError::WrongManifestTag));
    }
}

//! The canonical segment manifest an ingest signs and every edge verifies.
//!
//! The layout is fixed and unambiguous: a domain-separation tag, then every field in a fixed
//! order, integers big-endian, names prefixed by their one-byte length (names are at most
//! 64 bytes by construction). The same manifest always encodes to the same bytes, and two
//! different manifests never do, so a signature over the bytes binds every field.
//! No cryptography lives here: the digest is just bytes, signing happens elsewhere.

use crate::{Error, RenditionName, SegmentMeta, SessionId, StreamName};

/// Domain-separation tag: a signature over a manifest can never be mistaken for a
/// signature over anything else the cluster signs.
pub const MANIFEST_TAG: &[u8] = b"sealcast/v1/segment-manifest\0";

/// Largest encoded manifest accepted in an envelope.
pub const MAX_MANIFEST_LEN: usize = 1024;
/// Largest signature accepted in an envelope (ML-DSA-65 signatures are 3309 bytes).
pub const MAX_SIGNATURE_LEN: usize = 8192;

/// Which signature scheme signed a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ML-DSA-65 (FIPS 204), the default.
    MlDsa65,
    /// Ed25519, selectable per cluster.
    Ed25519,
}

impl SignatureAlgorithm {
    /// Stable one-byte code in encodings.
    pub fn code(self) -> u8 {
        match self {
            Self::MlDsa65 => 1,
            Self::Ed25519 => 2,
        }
    }

    /// The algorithm with that code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::MlDsa65),
            2 => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// Identifies a signing key (derived from its public key by whoever makes keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Manifest("a key id is 32 lowercase hex digits");
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        Ok(KeyId(out))
    }
}

/// Everything a signature binds about one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentManifest {
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
    /// Media sequence number.
    pub sequence: u64,
    /// Discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Length of the segment's bytes.
    pub byte_len: u64,
    /// SHA-256 of the segment's bytes.
    pub digest: [u8; 32],
}

impl SegmentManifest {
    /// The manifest of a segment described by `meta`.
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
            duration_us: u64::try_from(meta.duration.as_micros()).unwrap_or(u64::MAX),
            byte_len,
            digest,
        }
    }

    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MANIFEST_TAG.len() + 17 + 2 * 65 + 5 * 8 + 32);
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
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        if r.take(MANIFEST_TAG.len())? != MANIFEST_TAG {
            return Err(Error::Manifest("not a segment manifest (wrong tag)"));
        }
        let algorithm = SignatureAlgorithm::from_code(r.byte()?)
            .ok_or(Error::Manifest("unknown signature algorithm"))?;
        let key_id = KeyId(r.array()?);
        let stream =
            StreamName::new(r.name()?).map_err(|_| Error::Manifest("invalid stream name"))?;
        let session = SessionId(u64::from_be_bytes(r.array()?));
        let rendition =
            RenditionName::new(r.name()?).map_err(|_| Error::Manifest("invalid rendition name"))?;
        let sequence = u64::from_be_bytes(r.array()?);
        let discontinuity_sequence = u64::from_be_bytes(r.array()?);
        let duration_us = u64::from_be_bytes(r.array()?);
        let byte_len = u64::from_be_bytes(r.array()?);
        let digest = r.array()?;
        if !r.0.is_empty() {
            return Err(Error::Manifest("trailing bytes after the manifest"));
        }
        Ok(SegmentManifest {
            algorithm,
            key_id,
            stream,
            session,
            rendition,
            sequence,
            discontinuity_sequence,
            duration_us,
            byte_len,
            digest,
        })
    }
}

/// What travels over MQTT: the manifest's canonical bytes and a signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    /// [`SegmentManifest::encode`] output.
    pub manifest_bytes: Vec<u8>,
    /// Signature over `manifest_bytes`.
    pub signature: Vec<u8>,
}

impl SignedManifest {
    /// `u32 len ‖ manifest ‖ u32 len ‖ signature`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.manifest_bytes.len() + self.signature.len());
        for part in [&self.manifest_bytes, &self.signature] {
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// Parses an envelope, enforcing the size caps before copying anything.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader(bytes);
        let manifest_bytes = r.part(MAX_MANIFEST_LEN)?.to_vec();
        let signature = r.part(MAX_SIGNATURE_LEN)?.to_vec();
        if !r.0.is_empty() {
            return Err(Error::Manifest("trailing bytes after the envelope"));
        }
        Ok(SignedManifest {
            manifest_bytes,
            signature,
        })
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    // Names are at most 64 bytes (checked when they are made), so the length fits a byte.
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Manifest("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn name(&mut self) -> Result<&'a str, Error> {
        let len = usize::from(self.byte()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| Error::Manifest("a name is not UTF-8"))
    }

    fn part(&mut self, cap: usize) -> Result<&'a [u8], Error> {
        let len = usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX);
        if len > cap {
            return Err(Error::Manifest("envelope part larger than allowed"));
        }
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn manifest() -> impl Strategy<Value = SegmentManifest> {
        (
            any::<bool>(),
            any::<[u8; 16]>(),
            "[a-z0-9][a-z0-9_-]{0,63}",
            any::<u64>(),
            "[a-z0-9][a-z0-9_-]{0,63}",
            any::<[u64; 4]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(ed, key, stream, session, rendition, n, digest)| SegmentManifest {
                    algorithm: if ed {
                        SignatureAlgorithm::Ed25519
                    } else {
                        SignatureAlgorithm::MlDsa65
                    },
                    key_id: KeyId(key),
                    stream: StreamName::new(stream).expect("valid"),
                    session: SessionId(session),
                    rendition: RenditionName::new(rendition).expect("valid"),
                    sequence: n[0],
                    discontinuity_sequence: n[1],
                    duration_us: n[2],
                    byte_len: n[3],
                    digest,
                },
            )
    }

    /// The same name with a different first character.
    fn other_first_char(name: &str) -> String {
        let first = if name.starts_with('a') { 'b' } else { 'a' };
        format!("{first}{}", &name[1..])
    }

    proptest! {
        #[test]
        fn manifests_round_trip(m in manifest()) {
            prop_assert_eq!(SegmentManifest::decode(&m.encode()), Ok(m));
        }

        #[test]
        fn distinct_manifests_encode_differently(a in manifest(), b in manifest()) {
            prop_assert_eq!(a == b, a.encode() == b.encode());
        }

        #[test]
        fn changing_one_field_changes_the_bytes(m in manifest(), field in 0usize..10) {
            let mut n = m.clone();
            match field {
                0 => n.algorithm = if m.algorithm == SignatureAlgorithm::Ed25519 { SignatureAlgorithm::MlDsa65 } else { SignatureAlgorithm::Ed25519 },
                1 => n.key_id.0[0] ^= 1,
                2 => n.stream = StreamName::new(other_first_char(m.stream.as_str())).expect("valid"),
                3 => n.session.0 ^= 1,
                4 => n.rendition = RenditionName::new(other_first_char(m.rendition.as_str())).expect("valid"),
                5 => n.sequence ^= 1,
                6 => n.discontinuity_sequence ^= 1,
                7 => n.duration_us ^= 1,
                8 => n.byte_len ^= 1,
                _ => n.digest[31] ^= 1,
            }
            prop_assert_ne!(m.encode(), n.encode());
        }

        #[test]
        fn envelopes_round_trip(m in manifest(), sig in proptest::collection::vec(any::<u8>(), 0..4000)) {
            let e = SignedManifest { manifest_bytes: m.encode(), signature: sig };
            prop_assert_eq!(SignedManifest::decode(&e.encode()), Ok(e));
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SegmentManifest::decode(&bytes);
            let _ = SignedManifest::decode(&bytes);
        }

        #[test]
        fn key_ids_round_trip_through_hex(k in any::<[u8; 16]>()) {
            prop_assert_eq!(KeyId(k).to_string().parse::<KeyId>(), Ok(KeyId(k)));
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

    #[test]
    fn each_decode_error_is_distinct() {
        let good = sample().encode();
        let mut wrong_tag = good.clone();
        wrong_tag[0] ^= 1;
        let mut bad_alg = good.clone();
        bad_alg[MANIFEST_TAG.len()] = 99;
        let mut bad_name = good.clone();
        bad_name[MANIFEST_TAG.len() + 17 + 1] = b'/';
        let mut trailing = good.clone();
        trailing.push(0);
        let cases = [
            (wrong_tag, "not a segment manifest (wrong tag)"),
            (bad_alg, "unknown signature algorithm"),
            (bad_name, "invalid stream name"),
            (trailing, "trailing bytes after the manifest"),
            (good[..good.len() - 1].to_vec(), "truncated"),
        ];
        for (bytes, want) in cases {
            assert_eq!(SegmentManifest::decode(&bytes), Err(Error::Manifest(want)));
        }
    }

    #[test]
    fn oversized_envelope_parts_are_refused_before_copying() {
        let mut bytes = (u32::try_from(MAX_MANIFEST_LEN).expect("fits") + 1)
            .to_be_bytes()
            .to_vec();
        bytes.extend(std::iter::repeat_n(0, 2000));
        assert_eq!(
            SignedManifest::decode(&bytes),
            Err(Error::Manifest("envelope part larger than allowed"))
        );
    }
}

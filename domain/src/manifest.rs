//! The signed statements' old home. They live in [`crate::wire`] now (one file per
//! statement, one envelope, one reader); this module keeps the old paths compiling.
//!
//! [`SignedManifest`] stays a struct of its own for now, because callers build it and read
//! its `manifest_bytes` field by that name: its bytes and its checks are those of
//! [`crate::wire::Signed`]`<`[`AnyManifest`]`>`, which it delegates to.

// moved to crate::wire; old path kept until the rename step
pub use crate::wire::{
    AnyManifest, EventStatement, KeyId, PartManifest, PresenceStatement, SegmentManifest,
    SignatureAlgorithm, SignedEvent, SignedPresence, EVENT_TAG, MANIFEST_TAG, MAX_EVENT_LEN,
    MAX_MANIFEST_LEN, MAX_PRESENCE_CERTIFICATE_LEN, MAX_PRESENCE_JSON_LEN, MAX_SIGNATURE_LEN,
    MAX_SIGNED_EVENT_LEN, MAX_SIGNED_PRESENCE_LEN, PART_TAG, PRESENCE_TAG,
};

use crate::wire::Signed;
use crate::DomainError;

/// What travels over MQTT: a manifest's canonical bytes and a signature over exactly those
/// bytes, in the envelope of [`Signed`] (`u32 length ‖ manifest ‖ u32 length ‖
/// signature`). Kept under its old field name until the rename step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    /// [`SegmentManifest::encode`] or [`PartManifest::encode`] output, at most
    /// [`MAX_MANIFEST_LEN`] bytes.
    pub manifest_bytes: Vec<u8>,
    /// Signature over `manifest_bytes`, at most [`MAX_SIGNATURE_LEN`] bytes.
    pub signature: Vec<u8>,
}

impl SignedManifest {
    /// The envelope's bytes ([`Signed::encode`]).
    pub fn encode(&self) -> Vec<u8> {
        crate::wire::encode_envelope(&self.manifest_bytes, &self.signature)
    }

    /// Parses an envelope strictly ([`Signed::decode`]). The manifest inside is not
    /// decoded: see [`SignedManifest::manifest`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let signed = Signed::<AnyManifest>::decode(bytes)?;
        Ok(SignedManifest {
            manifest_bytes: signed.statement_bytes,
            signature: signed.signature,
        })
    }

    /// Decodes the manifest inside as a segment's, to learn which key and algorithm to
    /// verify with. Since decoding is strict, `manifest_bytes` are exactly its encoding.
    pub fn manifest(&self) -> Result<SegmentManifest, DomainError> {
        SegmentManifest::decode(&self.manifest_bytes)
    }

    /// Decodes the manifest inside as a segment's or a part's, by its domain tag.
    pub fn any_manifest(&self) -> Result<AnyManifest, DomainError> {
        crate::wire::Statement::decode(&self.manifest_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old shape reads and writes exactly the bytes of the generic envelope.
    #[test]
    fn the_old_shape_is_the_generic_envelope() {
        let segment = SegmentManifest {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: KeyId([7; 16]),
            stream: crate::StreamName::new("cam1").expect("valid"),
            session: crate::SessionId(42),
            rendition: crate::RenditionName::new("720p").expect("valid"),
            sequence: 9,
            discontinuity_sequence: 1,
            duration_us: 2_000_000,
            byte_len: 1000,
            digest: [3; 32],
        };
        let generic = Signed::<AnyManifest>::sign(&AnyManifest::Segment(segment.clone()), |_| {
            b"sig".to_vec()
        });
        let old = SignedManifest::decode(&generic.encode()).expect("decodes");
        assert_eq!(old.encode(), generic.encode());
        assert_eq!(old.manifest_bytes, generic.statement_bytes);
        assert_eq!(old.manifest(), Ok(segment.clone()));
        assert_eq!(old.any_manifest(), Ok(AnyManifest::Segment(segment)));
        let mut longer = old.encode();
        longer.push(0);
        assert_eq!(
            SignedManifest::decode(&longer),
            Signed::<AnyManifest>::decode(&longer).map(|_| old)
        );
    }
}

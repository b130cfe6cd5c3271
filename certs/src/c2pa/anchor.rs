//! The provenance anchor: the cluster's root vouching for its provenance CA, so a viewer
//! who pins only the root (the player, `sealcast verify`) can check a C2PA claim signer
//! too. C2PA validators elsewhere are given the CA itself (a trust list); ours reach it
//! from the root.
//!
//! It travels inside every init segment's manifest, as the assertion
//! [`ANCHOR_ASSERTION`] (`{"anchor": bstr}`), and names the CA by the SHA-256 of its
//! certificate (DER), which the claim signature's `x5chain` carries after the claim
//! signer's own certificate.
//!
//! Layout, version 1, integers big-endian (docs/wire.md):
//!
//! | field | bytes |
//! |---|---|
//! | tag [`ANCHOR_TAG`] | 30 |
//! | version (1) | 1 |
//! | algorithm (the root's) | 1 |
//! | issuer: the root's key id | 16 |
//! | not before, unix seconds | 8 |
//! | not after, unix seconds (inclusive) | 8 |
//! | SHA-256 of the CA certificate's DER | 32 |
//! | root's signature over all of the above | 3309 or 64 |

use domain::wire::{Codec, KeyId, Reader, SignatureAlgorithm};
use sha2::{Digest, Sha256};

use crate::signing::{RootKey, RootPublicKey, Validity};
use crate::CertsError;

/// Domain-separation tag of a provenance anchor.
pub const ANCHOR_TAG: &[u8] = b"sealcast/v1/provenance-anchor\0";
/// The label of the assertion that carries it.
pub const ANCHOR_ASSERTION: &str = "io.sealcast.provenance-anchor";
/// The PEM label under which a claim signer's chain file keeps it.
pub const ANCHOR_PEM_LABEL: &str = "SEALCAST PROVENANCE ANCHOR";

const VERSION: u8 = 1;
const ANCHOR: &str = "provenance anchor";

/// "The root vouches that the certificate with this SHA-256 is the cluster's provenance
/// CA, for this period."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceAnchor {
    algorithm: SignatureAlgorithm,
    issuer: KeyId,
    validity: Validity,
    ca_digest: [u8; 32],
    signature: Vec<u8>,
}

fn body(
    algorithm: SignatureAlgorithm,
    issuer: KeyId,
    validity: Validity,
    ca_digest: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(ANCHOR_TAG.len() + 66 + 3309);
    out.extend_from_slice(ANCHOR_TAG);
    out.push(VERSION);
    algorithm.write(&mut out);
    issuer.write(&mut out);
    out.extend_from_slice(&validity.not_before().to_be_bytes());
    out.extend_from_slice(&validity.not_after().to_be_bytes());
    out.extend_from_slice(ca_digest);
    out
}

impl RootKey {
    /// Anchors the provenance CA whose certificate is `ca_der` for `validity`.
    pub fn anchor_provenance(&self, ca_der: &[u8], validity: Validity) -> ProvenanceAnchor {
        let ca_digest: [u8; 32] = Sha256::digest(ca_der).into();
        let signature = self
            .0
            .sign(&body(self.algorithm(), self.key_id(), validity, &ca_digest));
        ProvenanceAnchor {
            algorithm: self.algorithm(),
            issuer: self.key_id(),
            validity,
            ca_digest,
            signature,
        }
    }
}

impl RootPublicKey {
    /// Checks that the pinned root signed `anchor` and that it holds at `now` (unix
    /// seconds); gives the anchored CA certificate's SHA-256.
    pub fn verify_anchor(
        &self,
        anchor: &ProvenanceAnchor,
        now: u64,
    ) -> Result<[u8; 32], CertsError> {
        if anchor.algorithm != self.algorithm() {
            return Err(CertsError::WrongAlgorithm {
                expected: self.algorithm(),
                found: anchor.algorithm,
            });
        }
        if anchor.issuer != self.key_id() {
            return Err(CertsError::UnknownIssuer {
                issuer: anchor.issuer,
            });
        }
        self.0.verify(
            &body(
                anchor.algorithm,
                anchor.issuer,
                anchor.validity,
                &anchor.ca_digest,
            ),
            &anchor.signature,
        )?;
        anchor.validity.check(anchor.issuer, now)?;
        Ok(anchor.ca_digest)
    }
}

impl ProvenanceAnchor {
    /// When it holds.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// The SHA-256 of the anchored CA's certificate (DER).
    pub fn ca_digest(&self) -> &[u8; 32] {
        &self.ca_digest
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = body(self.algorithm, self.issuer, self.validity, &self.ca_digest);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strict decoding of [`ProvenanceAnchor::encode`]'s output; never panics. The
    /// signature is checked by [`RootPublicKey::verify_anchor`].
    pub fn decode(bytes: &[u8]) -> Result<Self, CertsError> {
        let mut r = Reader::new(ANCHOR, bytes);
        r.tag(ANCHOR_TAG)?;
        r.version(VERSION)?;
        let algorithm: SignatureAlgorithm = r.read()?;
        let issuer = r.read()?;
        let not_before = r.u64("not before")?;
        let not_after = r.u64("not after")?;
        let validity = Validity::new(not_before, not_after)?;
        let mut ca_digest = [0; 32];
        ca_digest.copy_from_slice(r.take(32, "CA digest")?);
        let signature = r
            .take(crate::signing::signature_len(algorithm), "signature")?
            .to_vec();
        r.finish()?;
        Ok(ProvenanceAnchor {
            algorithm,
            issuer,
            validity,
            ca_digest,
            signature,
        })
    }

    /// The assertion carrying it in a manifest.
    pub fn assertion(&self) -> domain::c2pa::manifest::Assertion {
        let mut c = domain::c2pa::cbor::Cbor::new();
        c.map(1).text("anchor").bytes(&self.encode());
        domain::c2pa::manifest::Assertion {
            label: ANCHOR_ASSERTION.into(),
            cbor: c.into_bytes(),
        }
    }
}

/// The most anchors one list of delivered anchors may hold ([`anchors_from_pem`]).
pub const MAX_DELIVERED: usize = 64;
/// The longest list of delivered anchors read (64 ML-DSA-65 anchors in PEM are under 300 KB).
pub const MAX_DELIVERED_LEN: usize = 320 * 1024;

/// Anchors as PEM blocks under [`ANCHOR_PEM_LABEL`]: the file `keys/provenance/anchors.pem`
/// and what edges serve as `/trust/v1/provenance-anchors`.
pub fn anchors_pem(anchors: &[ProvenanceAnchor]) -> String {
    let mut out = String::new();
    for a in anchors {
        super::pem_block(&mut out, ANCHOR_PEM_LABEL, &a.encode());
    }
    out
}

/// The anchors among PEM blocks (others are passed over), as [`anchors_pem`] writes them:
/// at most [`MAX_DELIVERED`] of them in at most [`MAX_DELIVERED_LEN`] bytes, each decoded
/// strictly (their signatures are the validator's to check).
pub fn anchors_from_pem(text: &[u8]) -> Result<Vec<ProvenanceAnchor>, CertsError> {
    let bad = |reason| CertsError::Malformed {
        what: "provenance anchors",
        reason,
    };
    if text.len() > MAX_DELIVERED_LEN {
        return Err(bad("too long"));
    }
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|_| bad("not PEM"))?;
        if pem.label != ANCHOR_PEM_LABEL {
            continue;
        }
        if out.len() == MAX_DELIVERED {
            return Err(bad("too many anchors"));
        }
        out.push(ProvenanceAnchor::decode(&pem.contents)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_anchors_round_trip_through_pem_and_are_bounded() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let validity = Validity::new(NOW - 10, NOW + 10).expect("valid");
        let anchors: Vec<_> = (0..3u8)
            .map(|i| root.anchor_provenance(&[i], validity))
            .collect();
        let pem = anchors_pem(&anchors);
        assert_eq!(anchors_from_pem(pem.as_bytes()).expect("reads"), anchors);
        assert!(anchors_from_pem(b"").expect("empty").is_empty());
        let one = anchors_pem(&anchors[..1]);
        let too_many = one.repeat(MAX_DELIVERED + 1);
        assert!(anchors_from_pem(too_many.as_bytes()).is_err());
        assert!(anchors_from_pem(&vec![b'a'; MAX_DELIVERED_LEN + 1]).is_err());
        // Other PEM blocks are passed over.
        let mixed = format!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{pem}");
        assert_eq!(anchors_from_pem(mixed.as_bytes()).expect("reads"), anchors);
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn an_anchor_verifies_under_its_root_only_and_within_its_time() {
        for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
            let root = RootKey::generate(algorithm).expect("root");
            let validity = Validity::new(NOW - 10, NOW + 10).expect("valid");
            let anchor = root.anchor_provenance(b"ca der", validity);
            let bytes = anchor.encode();
            let back = ProvenanceAnchor::decode(&bytes).expect("decodes");
            assert_eq!(back, anchor);
            let digest: [u8; 32] = Sha256::digest(b"ca der").into();
            assert_eq!(
                root.public_key().verify_anchor(&back, NOW).expect("ok"),
                digest
            );
            assert!(root.public_key().verify_anchor(&back, NOW + 11).is_err());
            let other = RootKey::generate(algorithm).expect("root");
            assert!(other.public_key().verify_anchor(&back, NOW).is_err());
            // Any flipped byte is refused, by decoding or by the signature.
            for i in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1;
                let verified = ProvenanceAnchor::decode(&flipped)
                    .and_then(|a| root.public_key().verify_anchor(&a, NOW));
                assert!(verified.is_err(), "byte {i} flipped");
                if algorithm == SignatureAlgorithm::MlDsa65 && i > 200 {
                    break; // the signature's bytes: ML-DSA checks are slow
                }
            }
            assert!(ProvenanceAnchor::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}

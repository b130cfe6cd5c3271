//! A trust bundle: every ingest certificate and revocation a node holds, in one resource a
//! viewer can fetch next to the media (issue 31; docs/security.md, "What the viewer checks"), so a
//! player that pins only the root can check the signature of every segment and part.
//!
//! The bundle as a whole is not signed: each item in it is root-signed on its own, and a
//! reader admits the items one by one into a [`TrustStore`](super::TrustStore) pinned to its
//! root. A node that serves the bundle can leave a revocation out (a viewer then trusts the
//! revoked key until it learns of the revocation elsewhere), but it cannot forge or alter
//! one.
//!
//! Layout, integers big-endian:
//!
//! | field | bytes |
//! |---|---|
//! | tag [`BUNDLE_TAG`] | 25 |
//! | version (1) | 1 |
//! | certificate count | 4 |
//! | per certificate: length, then [`IngestCertificate`] bytes | 4 + ≤ [`MAX_ITEM_LEN`] |
//! | revocation count | 4 |
//! | per revocation: length, then [`Revocation`] bytes | 4 + ≤ [`MAX_ITEM_LEN`] |
//!
//! Decoding is strict and bounded before it allocates: at most [`MAX_ITEMS`] of each kind,
//! each item at most [`MAX_ITEM_LEN`] bytes and itself a strictly decoded certificate or
//! revocation, no trailing bytes. So one bundle has one encoding.

use domain::wire::{put_part, Reader};

use super::cert::{IngestCertificate, Revocation};
use super::wire::malformed;
use crate::CertsError;

/// Domain-separation tag of a trust bundle.
pub const BUNDLE_TAG: &[u8] = b"sealcast/v1/trust-bundle\0";
/// Most certificates, and most revocations, one bundle may hold.
pub const MAX_ITEMS: usize = 1024;
/// Largest certificate or revocation in a bundle (an ML-DSA-65 certificate is under 5.4 KB).
pub const MAX_ITEM_LEN: usize = 8 * 1024;

const VERSION: u8 = 1;
const BUNDLE: &str = "trust bundle";

/// Encoded ingest certificates and revocations, as a node serves them to viewers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    /// [`IngestCertificate::encode`] outputs.
    pub certificates: Vec<Vec<u8>>,
    /// [`Revocation::encode`] outputs.
    pub revocations: Vec<Vec<u8>>,
}

impl TrustBundle {
    /// The canonical bytes. Items over the caps encode, but [`TrustBundle::decode`] refuses
    /// them.
    pub fn encode(&self) -> Vec<u8> {
        let items = self.certificates.iter().chain(&self.revocations);
        let len = BUNDLE_TAG.len() + 1 + 8 + items.map(|i| 4 + i.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(BUNDLE_TAG);
        out.push(VERSION);
        for list in [&self.certificates, &self.revocations] {
            out.extend_from_slice(&count(list.len()).to_be_bytes());
            for item in list {
                put_part(&mut out, item);
            }
        }
        out
    }

    /// Parses a bundle strictly (see the module's layout). Each item is decoded as what it
    /// claims to be, but no signature is checked here: that is the trust store's work.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertsError> {
        let mut r = Reader::new(BUNDLE, bytes);
        r.tag(BUNDLE_TAG)?;
        r.version(VERSION)?;
        let certificates = items(&mut r, |item| IngestCertificate::decode(item).map(drop))?;
        let revocations = items(&mut r, |item| Revocation::decode(item).map(drop))?;
        r.finish()?;
        Ok(TrustBundle {
            certificates,
            revocations,
        })
    }
}

/// A length or count as the u32 the layout holds (saturating: such a bundle never decodes).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One counted list of length-prefixed items, each checked by `check`.
fn items(
    r: &mut Reader<'_>,
    check: impl Fn(&[u8]) -> Result<(), CertsError>,
) -> Result<Vec<Vec<u8>>, CertsError> {
    let n = r.u32("item count")? as usize;
    if n > MAX_ITEMS {
        return Err(malformed(BUNDLE, "too many items"));
    }
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let len = r.u32("item length")? as usize;
        if len > MAX_ITEM_LEN {
            return Err(malformed(BUNDLE, "item too long"));
        }
        let item = r.take(len, "item")?;
        check(item)?;
        out.push(item.to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{RootKey, SigningKey, TrustStore, Validity};
    use domain::wire::SignatureAlgorithm;
    use domain::NodeId;

    const NOW: u64 = 1_800_000_000;

    fn certificate(root: &RootKey, node: &str, days: u64) -> (SigningKey, Vec<u8>) {
        let key = SigningKey::generate(root.algorithm()).expect("key");
        let validity = Validity::new(NOW - 10, NOW + days * 86_400).expect("validity");
        let cert = root
            .certify(key.public_key(), NodeId::new(node).expect("node"), validity)
            .expect("certify")
            .encode();
        (key, cert)
    }

    #[test]
    fn a_bundle_round_trips_and_has_one_encoding() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let (key, cert) = certificate(&root, "ingest1", 30);
        let revocation = root.revoke(key.key_id(), NOW + 5).encode();
        let bundle = TrustBundle {
            certificates: vec![cert],
            revocations: vec![revocation],
        };
        let bytes = bundle.encode();
        assert_eq!(TrustBundle::decode(&bytes).expect("decodes"), bundle);
        assert_eq!(
            TrustBundle::decode(&TrustBundle::default().encode()).expect("empty"),
            TrustBundle::default()
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(TrustBundle::decode(&trailing).is_err(), "trailing byte");
        for cut in 0..bytes.len() {
            assert!(
                TrustBundle::decode(&bytes[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
    }

    #[test]
    fn items_must_be_what_their_list_says_and_within_the_caps() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let (key, cert) = certificate(&root, "ingest1", 30);
        let revocation = root.revoke(key.key_id(), NOW).encode();
        let swapped = TrustBundle {
            certificates: vec![revocation],
            revocations: vec![cert],
        };
        assert!(TrustBundle::decode(&swapped.encode()).is_err());

        let mut many = BUNDLE_TAG.to_vec();
        many.push(VERSION);
        many.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = TrustBundle::decode(&many).expect_err("count over the cap");
        assert!(err.to_string().contains("too many items"), "{err}");

        let mut long = BUNDLE_TAG.to_vec();
        long.push(VERSION);
        long.extend_from_slice(&1u32.to_be_bytes());
        long.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = TrustBundle::decode(&long).expect_err("item over the cap");
        assert!(err.to_string().contains("item too long"), "{err}");
    }

    #[test]
    fn a_store_rebuilt_from_a_bundle_trusts_and_distrusts_alike() {
        for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
            let root = RootKey::generate(algorithm).expect("root");
            let (kept, short) = certificate(&root, "ingest1", 1);
            // The same key renewed for longer: the bundle carries the longer one.
            let long = root
                .certify(
                    kept.public_key(),
                    NodeId::new("ingest1").expect("node"),
                    Validity::new(NOW - 10, NOW + 90 * 86_400).expect("validity"),
                )
                .expect("certify")
                .encode();
            let (revoked, revoked_cert) = certificate(&root, "ingest2", 30);
            let late = root.revoke(revoked.key_id(), NOW + 100).encode();
            let early = root.revoke(revoked.key_id(), NOW + 50).encode();

            let mut node = TrustStore::new(root.public_key());
            node.add_certificate(&short, NOW).expect("short");
            node.add_certificate(&long, NOW).expect("long");
            node.add_certificate(&revoked_cert, NOW).expect("to revoke");
            node.revoke(&late).expect("late");
            node.revoke(&early).expect("early");

            let bundle = node.bundle();
            assert_eq!(bundle.certificates.len(), 2, "one per key");
            assert!(bundle.certificates.contains(&long) && !bundle.certificates.contains(&short));
            assert_eq!(bundle.revocations, vec![early], "the earliest revocation");

            let bytes = bundle.encode();
            let mut viewer = TrustStore::new(root.public_key());
            let refused = viewer.admit(&TrustBundle::decode(&bytes).expect("decodes"), NOW);
            assert!(refused.is_empty(), "{refused:?}");
            assert_eq!(viewer.bundle(), node.bundle(), "the same trust, re-served");

            let message = b"a statement";
            let signature = kept.sign(message);
            let later = NOW + 30 * 86_400;
            assert!(viewer
                .verify(kept.key_id(), message, &signature, later)
                .is_ok());
            let signature = revoked.sign(message);
            assert!(viewer
                .verify(revoked.key_id(), message, &signature, NOW)
                .is_ok());
            let err = viewer
                .verify(revoked.key_id(), message, &signature, NOW + 50)
                .expect_err("revoked");
            assert_eq!(err.reason(), "revoked_key");
        }
    }

    #[test]
    fn a_bundle_under_another_root_admits_nothing() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let other = RootKey::generate(SignatureAlgorithm::Ed25519).expect("other");
        let (key, cert) = certificate(&other, "ingest1", 30);
        let bundle = TrustBundle {
            certificates: vec![cert],
            revocations: vec![other.revoke(key.key_id(), NOW).encode()],
        };
        let mut viewer = TrustStore::new(root.public_key());
        assert_eq!(viewer.admit(&bundle, NOW).len(), 2);
        assert_eq!(viewer.bundle(), TrustBundle::default());
    }
}

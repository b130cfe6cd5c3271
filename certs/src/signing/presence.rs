//! Presences that cannot be forged: a broadcast node signs what it says about itself with
//! its edge key ([`PresenceSigner`]); the load balancer and the ingests believe a broadcast
//! presence only when it verifies against the pinned root ([`PresenceVerifier`]).
//!
//! What a broadcast presence binds: the node (equal to its topic's), the presence JSON
//! (role, state, `url`, `direct_url`), when it was signed, and the root-signed
//! [`EdgeCertificate`] of the key that signed it. A process without an edge key can
//! therefore not make the load balancer route viewers, or an ingest push, to an address of
//! its choosing, whatever the broker lets it publish. What it can still do with broker
//! access: clear a retained presence (the node drops out until it announces again), or
//! replay a presence a node signed earlier (which names that node's own address).
//!
//! An ingest presence without an address may stay plain JSON: it routes nothing, and only
//! tells edges when to report ready. One with an address (the ingest's WHIP URL, where the
//! load balancer sends publishers and their stream keys, issue 32) counts only when the
//! ingest signed it with its own key, certified by the root as an ingest key for that very
//! node: the same statement and domain tag as a broadcast presence, told apart by the
//! certificate's kind, whose own domain tag keeps either key from passing for the other.

use std::sync::Arc;

use domain::presence::{Announcement, Presence, Role};
use domain::wire::{PresenceStatement, SignedPresence};
use domain::NodeId;

use super::cert::{Certificate, CertificateKind, Edge, EdgeCertificate, Ingest, IngestCertificate};
use super::keys::{RootPublicKey, SigningKey};
use crate::CertsError;

/// A node's presence signer: its key and the certificate that vouches for it (a broadcast
/// node's edge certificate, or an ingest's own certificate).
pub struct PresenceSigner {
    key: Arc<SigningKey>,
    certificate: Vec<u8>,
}

impl std::fmt::Debug for PresenceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceSigner")
            .field("key_id", &format_args!("{}", self.key.key_id()))
            .finish_non_exhaustive()
    }
}

impl PresenceSigner {
    /// A signer with `key`, which `certificate` (an edge certificate, or an ingest's own)
    /// must certify.
    pub fn new<K: CertificateKind>(
        key: impl Into<Arc<SigningKey>>,
        certificate: &Certificate<K>,
    ) -> Result<Self, CertsError> {
        let key = key.into();
        if certificate.key_id() != key.key_id() {
            return Err(CertsError::Presence {
                reason: "the certificate is not for this key",
            });
        }
        Ok(PresenceSigner {
            key,
            certificate: certificate.encode(),
        })
    }

    /// The payload of `presence` on `node`'s presence topic, signed at `issued_at_ms`
    /// (unix milliseconds).
    pub fn sign(&self, node: &NodeId, presence: &Presence, issued_at_ms: u64) -> Vec<u8> {
        let statement = PresenceStatement {
            algorithm: self.key.algorithm(),
            key_id: self.key.key_id(),
            node: node.clone(),
            issued_at_ms,
            presence: presence.encode(),
            certificate: self.certificate.clone(),
        };
        SignedPresence::sign(&statement, |bytes| self.key.sign(bytes)).encode()
    }
}

/// Checks presences against the pinned root.
#[derive(Debug, Clone)]
pub struct PresenceVerifier {
    root: RootPublicKey,
}

impl PresenceVerifier {
    /// A verifier trusting edge keys certified by `root`.
    pub fn new(root: RootPublicKey) -> Self {
        PresenceVerifier { root }
    }

    /// What a non-empty `payload` on `node`'s presence topic says, if it may be believed at
    /// `now` (unix seconds): a broadcast presence only when signed by a key the root
    /// certified as an edge key, for this node; an ingest presence signed by the key the
    /// root certified for that ingest, or plain when it names no address.
    pub fn check(&self, node: &NodeId, payload: &[u8], now: u64) -> Result<Presence, CertsError> {
        // The decoder's details stay out of the refusal: the payload is an outsider's.
        let malformed = |_: domain::DomainError| CertsError::Malformed {
            what: "presence",
            reason: "does not decode",
        };
        match Announcement::decode(payload).map_err(malformed)? {
            Announcement::Plain(presence) if presence.role == Role::Broadcast => {
                Err(CertsError::Presence {
                    reason: "a broadcast presence must be signed",
                })
            }
            Announcement::Plain(presence)
                if presence.url.is_some() || presence.direct_url.is_some() =>
            {
                Err(CertsError::Presence {
                    reason: "an ingest presence with an address must be signed",
                })
            }
            Announcement::Plain(presence) => Ok(presence),
            Announcement::Signed(signed) => {
                let statement = signed.statement().map_err(malformed)?;
                // The certificate's own domain tag says which kind of key signed.
                let role = match EdgeCertificate::decode(&statement.certificate) {
                    Ok(certificate) => {
                        self.verify::<Edge>(&certificate, &signed, &statement, now)?;
                        Role::Broadcast
                    }
                    Err(_) => {
                        let certificate = IngestCertificate::decode(&statement.certificate)?;
                        if certificate.node_id() != node {
                            return Err(CertsError::Presence {
                                reason: "an ingest key signs only its own node's presence",
                            });
                        }
                        self.verify::<Ingest>(&certificate, &signed, &statement, now)?;
                        Role::Ingest
                    }
                };
                if &statement.node != node {
                    return Err(CertsError::Presence {
                        reason: "about another node than its topic's",
                    });
                }
                let presence = Presence::decode(&statement.presence).map_err(malformed)?;
                if presence.role != role {
                    return Err(CertsError::Presence {
                        reason: "a key signs only presences of its own role",
                    });
                }
                Ok(presence)
            }
        }
    }

    /// Checks that the root certified `certificate` (valid at `now`) and that its key made
    /// `signed`'s signature over `statement`.
    fn verify<K: CertificateKind>(
        &self,
        certificate: &Certificate<K>,
        signed: &SignedPresence,
        statement: &PresenceStatement,
        now: u64,
    ) -> Result<(), CertsError> {
        let key = self.root.verify_certificate::<K>(certificate, now)?;
        if key.key_id() != statement.key_id || key.algorithm() != statement.algorithm {
            return Err(CertsError::Presence {
                reason: "signed by another key than its certificate's",
            });
        }
        key.verify(&signed.statement_bytes, &signed.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{RootKey, SignatureAlgorithm, Validity};
    use domain::presence::PresenceState;

    const NOW: u64 = 1_800_000_000;

    fn node(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn edge(root: &RootKey, name: &str) -> (SigningKey, EdgeCertificate) {
        let key = SigningKey::generate(root.algorithm()).expect("key");
        let cert = root
            .certify_edge(
                key.public_key(),
                node(name),
                Validity::new(NOW - 10, NOW + 3600).expect("valid"),
            )
            .expect("same algorithm");
        (key, cert)
    }

    fn ready(url: &str) -> Presence {
        Presence {
            role: Role::Broadcast,
            state: PresenceState::Ready,
            url: Some(url.into()),
            direct_url: None,
        }
    }

    #[test]
    fn a_signed_presence_verifies_and_everything_else_is_refused() {
        for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
            let root = RootKey::generate(algorithm).expect("root");
            let verifier = PresenceVerifier::new(root.public_key());
            let (key, cert) = edge(&root, "broadcast");
            let signer = PresenceSigner::new(key, &cert).expect("signer");
            let presence = ready("http://10.0.0.5:8080");
            let payload = signer.sign(&node("broadcast1"), &presence, NOW * 1000);
            assert_eq!(
                verifier
                    .check(&node("broadcast1"), &payload, NOW)
                    .expect("verifies"),
                presence
            );
            let offline = signer.sign(
                &node("broadcast1"),
                &Presence::offline(Role::Broadcast),
                NOW * 1000,
            );
            assert!(!verifier
                .check(&node("broadcast1"), &offline, NOW)
                .expect("ok")
                .is_up());

            // Replayed onto another node's topic.
            let err = verifier
                .check(&node("broadcast2"), &payload, NOW)
                .expect_err("refused");
            assert_eq!(err.reason(), "presence", "{err}");
            // Unsigned broadcast presences: refused; unsigned ingest presences: as they are.
            let err = verifier
                .check(&node("evil"), &presence.encode(), NOW)
                .expect_err("refused");
            assert_eq!(err.reason(), "presence", "{err}");
            let ingest = Presence {
                role: Role::Ingest,
                state: PresenceState::Ready,
                url: None,
                direct_url: None,
            };
            assert_eq!(
                verifier
                    .check(&node("ingest1"), &ingest.encode(), NOW)
                    .expect("plain"),
                ingest
            );
            // A flipped byte anywhere.
            for i in [10, payload.len() / 2, payload.len() - 1] {
                let mut bad = payload.clone();
                bad[i] ^= 1;
                assert!(
                    verifier.check(&node("broadcast1"), &bad, NOW).is_err(),
                    "byte {i}"
                );
            }
            // Another root's edge key, an ingest certificate in place of an edge one.
            let other = RootKey::generate(algorithm).expect("root");
            let (key, cert) = edge(&other, "broadcast");
            let foreign = PresenceSigner::new(key, &cert).expect("signer");
            let err = verifier
                .check(
                    &node("broadcast1"),
                    &foreign.sign(&node("broadcast1"), &presence, 0),
                    NOW,
                )
                .expect_err("refused");
            assert_eq!(err.reason(), "unknown_issuer", "{err}");
            let key = SigningKey::generate(algorithm).expect("key");
            let ingest_cert = root
                .certify(key.public_key(), node("broadcast"), cert.validity())
                .expect("cert");
            let statement = PresenceStatement {
                algorithm,
                key_id: key.key_id(),
                node: node("broadcast1"),
                issued_at_ms: 0,
                presence: presence.encode(),
                certificate: ingest_cert.encode(),
            }
            .encode();
            let signature = key.sign(&statement);
            let forged = SignedPresence::new(statement, signature).encode();
            let err = verifier
                .check(&node("broadcast1"), &forged, NOW)
                .expect_err("refused");
            assert_eq!(err.reason(), "presence", "{err}");
            // An expired edge certificate.
            let err = verifier
                .check(&node("broadcast1"), &payload, NOW + 7200)
                .expect_err("refused");
            assert_eq!(err.reason(), "expired_key", "{err}");
        }
    }

    /// An ingest's presence naming its WHIP URL counts only signed by that ingest's own
    /// certified key; a plain one with an address, an ingest key signing for another node
    /// or as a broadcast node, and an edge key signing as an ingest are refused.
    #[test]
    fn an_ingest_presence_with_an_address_must_be_signed_by_that_ingest() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let verifier = PresenceVerifier::new(root.public_key());
        let key = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        let validity = Validity::new(NOW - 10, NOW + 3600).expect("valid");
        let cert = root
            .certify(key.public_key(), node("ingest1"), validity)
            .expect("cert");
        let signer = PresenceSigner::new(key, &cert).expect("signer");
        let whip = Presence {
            role: Role::Ingest,
            state: PresenceState::Ready,
            url: Some("http://10.0.0.7:8088".into()),
            direct_url: None,
        };
        let payload = signer.sign(&node("ingest1"), &whip, NOW * 1000);
        assert_eq!(
            verifier
                .check(&node("ingest1"), &payload, NOW)
                .expect("signed"),
            whip
        );
        let refused = |topic: &str, payload: &[u8]| {
            verifier
                .check(&node(topic), payload, NOW)
                .expect_err("refused")
                .reason()
        };
        assert_eq!(refused("ingest1", &whip.encode()), "presence");
        assert_eq!(
            refused("ingest2", &signer.sign(&node("ingest2"), &whip, NOW * 1000)),
            "presence"
        );
        let as_edge = Presence {
            role: Role::Broadcast,
            ..whip.clone()
        };
        assert_eq!(
            refused(
                "ingest1",
                &signer.sign(&node("ingest1"), &as_edge, NOW * 1000)
            ),
            "presence"
        );
        let (edge_key, edge_cert) = edge(&root, "broadcast");
        let edge_signer = PresenceSigner::new(edge_key, &edge_cert).expect("signer");
        assert_eq!(
            refused(
                "ingest1",
                &edge_signer.sign(&node("ingest1"), &whip, NOW * 1000)
            ),
            "presence"
        );
    }

    #[test]
    fn a_signer_refuses_a_certificate_for_another_key() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let (_, cert) = edge(&root, "broadcast");
        let other = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        assert!(PresenceSigner::new(other, &cert).is_err());
    }
}

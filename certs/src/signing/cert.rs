//! Root-signed statements: an ingest key's certificate and a key's revocation.

use domain::NodeId;

use super::{put_part, KeyId, PrivateKey, PublicKey, Reader, SignatureAlgorithm};
use crate::CertsError;

const CERT_TAG: &[u8] = b"sealcast/v1/ingest-certificate\0";
const REVOCATION_TAG: &[u8] = b"sealcast/v1/key-revocation\0";
const MAX_PART: usize = 8192;

/// "The root vouches that `public_key` belongs to ingest `node` from `not_before` to
/// `not_after` (unix seconds)."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestCertificate {
    /// The certified key.
    pub public_key: PublicKey,
    /// The ingest node holding it.
    pub node: NodeId,
    /// Valid from (unix seconds).
    pub not_before: u64,
    /// Valid until (unix seconds).
    pub not_after: u64,
    /// The root that signed it.
    pub root: KeyId,
    /// The root's signature over everything above.
    pub signature: Vec<u8>,
}

fn cert_body(
    public_key: &PublicKey,
    node: &NodeId,
    not_before: u64,
    not_after: u64,
    root: KeyId,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(CERT_TAG.len() + public_key.as_bytes().len() + 128);
    out.extend_from_slice(CERT_TAG);
    out.push(public_key.algorithm().code());
    put_part(&mut out, public_key.as_bytes());
    put_part(&mut out, node.as_str().as_bytes());
    out.extend_from_slice(&not_before.to_be_bytes());
    out.extend_from_slice(&not_after.to_be_bytes());
    out.extend_from_slice(&root.0);
    out
}

impl IngestCertificate {
    /// The root certifies `public_key` for `node` over `[not_before, not_after]`.
    pub fn issue(
        root: &PrivateKey,
        public_key: PublicKey,
        node: NodeId,
        not_before: u64,
        not_after: u64,
    ) -> Result<Self, CertsError> {
        let root_id = root.public_key().key_id();
        let signature = root.sign(&cert_body(
            &public_key,
            &node,
            not_before,
            not_after,
            root_id,
        ))?;
        Ok(IngestCertificate {
            public_key,
            node,
            not_before,
            not_after,
            root: root_id,
            signature,
        })
    }

    /// Canonical bytes (body ‖ signature); what ingest announces as a retained message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = cert_body(
            &self.public_key,
            &self.node,
            self.not_before,
            self.not_after,
            self.root,
        );
        put_part(&mut out, &self.signature);
        out
    }

    /// Strict parse; does not check the signature (see [`IngestCertificate::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertsError> {
        let mut r = Reader::new(bytes, "ingest certificate");
        r.tag(CERT_TAG)?;
        let algorithm: SignatureAlgorithm = r.algorithm()?;
        let public_key = PublicKey::from_bytes(algorithm, r.part(MAX_PART)?)?;
        let node = std::str::from_utf8(r.part(64)?)
            .ok()
            .and_then(|s| NodeId::new(s).ok())
            .ok_or(r.malformed("invalid node id"))?;
        let not_before = r.u64()?;
        let not_after = r.u64()?;
        let root = r.key_id()?;
        let signature = r.part(MAX_PART)?.to_vec();
        r.finish()?;
        Ok(IngestCertificate {
            public_key,
            node,
            not_before,
            not_after,
            root,
            signature,
        })
    }

    /// Checks the root's signature.
    pub fn verify(&self, root: &PublicKey) -> Result<(), CertsError> {
        if root.key_id() != self.root {
            return Err(CertsError::UntrustedRoot);
        }
        root.verify(
            &cert_body(
                &self.public_key,
                &self.node,
                self.not_before,
                self.not_after,
                self.root,
            ),
            &self.signature,
        )
    }
}

/// "The root revokes key `key` as of `revoked_at`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The revoked key.
    pub key: KeyId,
    /// When (unix seconds).
    pub revoked_at: u64,
    /// The root that signed it.
    pub root: KeyId,
    /// The root's signature.
    pub signature: Vec<u8>,
}

fn revocation_body(key: KeyId, revoked_at: u64, root: KeyId) -> Vec<u8> {
    let mut out = Vec::with_capacity(REVOCATION_TAG.len() + 40);
    out.extend_from_slice(REVOCATION_TAG);
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&revoked_at.to_be_bytes());
    out.extend_from_slice(&root.0);
    out
}

impl Revocation {
    /// The root revokes `key`.
    pub fn issue(root: &PrivateKey, key: KeyId, revoked_at: u64) -> Result<Self, CertsError> {
        let root_id = root.public_key().key_id();
        let signature = root.sign(&revocation_body(key, revoked_at, root_id))?;
        Ok(Revocation {
            key,
            revoked_at,
            root: root_id,
            signature,
        })
    }

    /// Canonical bytes (body ‖ signature).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = revocation_body(self.key, self.revoked_at, self.root);
        put_part(&mut out, &self.signature);
        out
    }

    /// Strict parse; does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertsError> {
        let mut r = Reader::new(bytes, "revocation");
        r.tag(REVOCATION_TAG)?;
        let key = r.key_id()?;
        let revoked_at = r.u64()?;
        let root = r.key_id()?;
        let signature = r.part(MAX_PART)?.to_vec();
        r.finish()?;
        Ok(Revocation {
            key,
            revoked_at,
            root,
            signature,
        })
    }

    /// Checks the root's signature.
    pub fn verify(&self, root: &PublicKey) -> Result<(), CertsError> {
        if root.key_id() != self.root {
            return Err(CertsError::UntrustedRoot);
        }
        root.verify(
            &revocation_body(self.key, self.revoked_at, self.root),
            &self.signature,
        )
    }
}

//! What an edge trusts: the pinned root, the certificates it vouched for, the keys it
//! revoked.

use std::collections::{HashMap, HashSet};

use super::{IngestCertificate, KeyId, PublicKey, Revocation};
use crate::CertsError;

/// The trust an edge applies to every manifest signature.
#[derive(Debug, Clone)]
pub struct TrustStore {
    root: PublicKey,
    certificates: HashMap<KeyId, IngestCertificate>,
    revoked: HashSet<KeyId>,
}

impl TrustStore {
    /// A store pinning `root`.
    pub fn new(root: PublicKey) -> Self {
        TrustStore {
            root,
            certificates: HashMap::new(),
            revoked: HashSet::new(),
        }
    }

    /// Adds an announced certificate after checking the root's signature; returns the
    /// key id it vouches for. Certificates of revoked keys are refused.
    pub fn add_certificate(&mut self, bytes: &[u8]) -> Result<KeyId, CertsError> {
        let cert = IngestCertificate::decode(bytes)?;
        cert.verify(&self.root)?;
        let id = cert.public_key.key_id();
        if self.revoked.contains(&id) {
            return Err(CertsError::RevokedKey);
        }
        self.certificates.insert(id, cert);
        Ok(id)
    }

    /// Applies an announced revocation after checking the root's signature.
    pub fn revoke(&mut self, bytes: &[u8]) -> Result<KeyId, CertsError> {
        let revocation = Revocation::decode(bytes)?;
        revocation.verify(&self.root)?;
        self.revoked.insert(revocation.key);
        self.certificates.remove(&revocation.key);
        Ok(revocation.key)
    }

    /// Checks `signature` over `message` by key `key` at `now` (unix seconds). Errors map
    /// onto the brief's rejection reasons through [`CertsError::reason`].
    pub fn verify(
        &self,
        key: KeyId,
        message: &[u8],
        signature: &[u8],
        now: u64,
    ) -> Result<(), CertsError> {
        if self.revoked.contains(&key) {
            return Err(CertsError::RevokedKey);
        }
        let cert = self.certificates.get(&key).ok_or(CertsError::UnknownKey)?;
        if now < cert.not_before || now > cert.not_after {
            return Err(CertsError::ExpiredKey);
        }
        cert.public_key.verify(message, signature)
    }
}

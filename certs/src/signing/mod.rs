//! Segment-signing keys and the chain of trust behind them.
//!
//! - `keys`: [`PrivateKey`] / [`PublicKey`] for ML-DSA-65 and Ed25519, key ids.
//! - `cert`: [`IngestCertificate`] and [`Revocation`], root-signed, canonical encodings.
//! - `trust`: [`TrustStore`], what an edge pins and checks every manifest against.
//! - `file`: key files (private keys mode 0600, written atomically).
//!
//! Every signed structure starts with its own domain-separation tag, so a signature over
//! one kind of thing can never be replayed as a signature over another.

mod cert;
mod file;
mod keys;
mod trust;

pub use cert::{IngestCertificate, Revocation};
pub use file::{read_private_key, read_public_key, write_private_key, write_public_key};
pub use keys::{PrivateKey, PublicKey};
pub use trust::TrustStore;

pub use domain::manifest::{KeyId, SignatureAlgorithm};

/// A strict reader over bytes for the canonical encodings of this module.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    pub(crate) fn malformed(&self, reason: &'static str) -> crate::CertsError {
        crate::CertsError::Malformed {
            what: self.what,
            reason,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], crate::CertsError> {
        if self.bytes.len() < n {
            return Err(self.malformed("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn tag(&mut self, tag: &[u8]) -> Result<(), crate::CertsError> {
        if self.take(tag.len())? != tag {
            return Err(self.malformed("wrong tag"));
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, crate::CertsError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, crate::CertsError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    pub(crate) fn key_id(&mut self) -> Result<KeyId, crate::CertsError> {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.take(16)?);
        Ok(KeyId(b))
    }

    /// A `u32` length-prefixed part of at most `cap` bytes.
    pub(crate) fn part(&mut self, cap: usize) -> Result<&'a [u8], crate::CertsError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        let len = usize::try_from(u32::from_be_bytes(b)).unwrap_or(usize::MAX);
        if len > cap {
            return Err(self.malformed("a part is too long"));
        }
        self.take(len)
    }

    pub(crate) fn algorithm(&mut self) -> Result<SignatureAlgorithm, crate::CertsError> {
        SignatureAlgorithm::from_code(self.u8()?).ok_or(self.malformed("unknown algorithm"))
    }

    pub(crate) fn finish(self) -> Result<(), crate::CertsError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("trailing bytes"))
        }
    }
}

pub(crate) fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

//! A strict reader for the fixed binary layouts of this module: every read is bounds
//! checked and returns an error instead of panicking, and [`Reader::finish`] refuses
//! trailing bytes, so exactly one byte string decodes to each value.

use domain::manifest::{KeyId, SignatureAlgorithm};

use crate::CertsError;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    /// What is being decoded, for [`CertsError::Malformed`].
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    pub(crate) fn malformed(&self, reason: &'static str) -> CertsError {
        CertsError::Malformed {
            what: self.what,
            reason,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CertsError> {
        if self.bytes.len() < n {
            return Err(self.malformed("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CertsError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn tag(&mut self, tag: &[u8]) -> Result<(), CertsError> {
        if self.take(tag.len())? != tag {
            return Err(self.malformed("wrong domain tag"));
        }
        Ok(())
    }

    pub(crate) fn version(&mut self, supported: u8) -> Result<(), CertsError> {
        if self.u8()? != supported {
            return Err(self.malformed("unsupported version"));
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CertsError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CertsError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn key_id(&mut self) -> Result<KeyId, CertsError> {
        Ok(KeyId(self.array()?))
    }

    pub(crate) fn algorithm(&mut self) -> Result<SignatureAlgorithm, CertsError> {
        let code = self.u8()?;
        SignatureAlgorithm::from_code(code).ok_or_else(|| self.malformed("unknown algorithm"))
    }

    pub(crate) fn finish(self) -> Result<(), CertsError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("trailing bytes"))
        }
    }
}

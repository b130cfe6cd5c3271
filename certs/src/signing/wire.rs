//! The certs crate's side of the domain's one strict reader ([`domain::wire::Reader`]):
//! certificates, revocations and trust bundles are read with it, and its refusals become
//! [`CertsError::Malformed`] with the same short reasons as every other malformed input.

use domain::wire::WireError;

use crate::CertsError;

impl From<WireError> for CertsError {
    fn from(e: WireError) -> Self {
        malformed(e.what(), e.reason())
    }
}

/// Bytes that are not a valid `what`, for `reason`.
pub(crate) fn malformed(what: &'static str, reason: &'static str) -> CertsError {
    CertsError::Malformed { what, reason }
}

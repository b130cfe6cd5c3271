//! COSE_Sign1 (RFC 9052) as C2PA uses it: EdDSA (Ed25519) signatures, or ES256 (ECDSA
//! P-256, r‖s) for a claim signer an operator brings; the payload attached (a VSI
//! segment-info-map) or detached (a claim, a session key's signer binding).

use super::cbor::Cbor;

/// The COSE algorithm id of EdDSA.
pub const ALG_EDDSA: i64 = -8;
/// The COSE algorithm id of ES256: ECDSA over P-256 with SHA-256, the signature `r ‖ s`
/// (64 bytes, RFC 9053 §2.1), not DER.
pub const ALG_ES256: i64 = -7;
/// The COSE header label of `alg`.
pub const HEADER_ALG: u64 = 1;
/// The COSE header label of `kid`.
pub const HEADER_KID: u64 = 4;
/// The COSE header label of `x5chain` (RFC 9360).
pub const HEADER_X5CHAIN: u64 = 33;
/// The CBOR tag of a COSE_Sign1.
pub const TAG_SIGN1: u64 = 18;

/// The length of an Ed25519 signature, and of an ES256 one (`r ‖ s`): the only kinds
/// written here.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// A signer for drafts: zeros as long as an Ed25519 (or ES256) signature, so a draft has
/// the size of the signed structure without signing anything twice. Anything the real
/// signer returns of another length shows as a size change (refused by the callers).
pub fn blank_signature(_: &[u8]) -> Vec<u8> {
    vec![0; ED25519_SIGNATURE_LEN]
}

/// The bytes a COSE_Sign1 signature covers: `Sig_structure` with context "Signature1",
/// the protected header's bytes, no external data, and the payload.
pub fn to_be_signed(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut c = Cbor::new();
    c.array(4)
        .text("Signature1")
        .bytes(protected)
        .bytes(&[])
        .bytes(payload);
    c.into_bytes()
}

/// A COSE_Sign1_Tagged: `protected` (an encoded header map), `unprotected` (an encoded
/// header map, as it is), the payload attached or not, and `sign`'s signature over
/// [`to_be_signed`].
pub fn sign1(
    protected: &[u8],
    unprotected: &[u8],
    payload: &[u8],
    attached: bool,
    sign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let signature = sign(&to_be_signed(protected, payload));
    let mut c = Cbor::new();
    c.tag(TAG_SIGN1).array(4).bytes(protected).raw(unprotected);
    if attached {
        c.bytes(payload);
    } else {
        c.null();
    }
    c.bytes(&signature);
    c.into_bytes()
}

/// A protected header of only `alg: EdDSA`.
pub fn eddsa_header() -> Vec<u8> {
    let mut c = Cbor::new();
    c.map(1).uint(HEADER_ALG).int(ALG_EDDSA);
    c.into_bytes()
}

/// An empty header map.
pub fn empty_header() -> Vec<u8> {
    let mut c = Cbor::new();
    c.map(0);
    c.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_sign1_carries_null_and_signs_the_payload() {
        let mut seen = Vec::new();
        let out = sign1(
            &eddsa_header(),
            &empty_header(),
            b"claim",
            false,
            &mut |tbs| {
                seen = tbs.to_vec();
                vec![7; 64]
            },
        );
        assert_eq!(seen, to_be_signed(&eddsa_header(), b"claim"));
        // d2 (tag 18), 84 (array of 4), 43 a10127 (protected), a0, f6 (null), 5840 (64 bytes)
        assert_eq!(hex::encode(&out[..10]), "d28443a10127a0f65840");
        assert_eq!(out.len(), 10 + 64);
    }
}

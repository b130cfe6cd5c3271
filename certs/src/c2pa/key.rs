//! A claim signer's private key: Ed25519 (what the cluster issues) or ES256 (ECDSA P-256,
//! what CAs of the C2PA trust list issue in practice, brought by an operator).
//!
//! Both sign deterministically, as C2PA 2.4 §13.2.1 asks of streaming re-signs: Ed25519 by
//! construction, ES256 by RFC 6979 (RustCrypto's `p256`; ring's ECDSA is randomized). An
//! ES256 signature is COSE's `r ‖ s`, 64 bytes, never DER.

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use rcgen::{KeyPair, SigningKey as _, PKCS_ED25519};
use zeroize::Zeroizing;

use crate::CertsError;

/// A claim signer's key.
pub(super) enum ClaimKey {
    /// Ed25519 (COSE alg -8): every claim signer the cluster issues.
    Ed25519(KeyPair),
    /// ES256 (COSE alg -7): an operator's certificate from the C2PA trust list.
    Es256 {
        key: p256::ecdsa::SigningKey,
        /// The PKCS#8 PEM it was read from, written back as it was.
        pem: Zeroizing<String>,
    },
}

fn bad(reason: &'static str) -> CertsError {
    CertsError::Malformed {
        what: "claim signer",
        reason,
    }
}

impl ClaimKey {
    /// A key from its PKCS#8 PEM: Ed25519 or ECDSA P-256; anything else is refused.
    pub(super) fn from_pem(key_pem: &str) -> Result<Self, CertsError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(key_pem.as_bytes())
            .map_err(|_| bad("the key is not a PKCS#8 PEM key"))?;
        let der = Zeroizing::new(pem.contents);
        if pem.label != "PRIVATE KEY" {
            return Err(bad("the key is not a PKCS#8 PEM key"));
        }
        let info = p256::pkcs8::PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|_| bad("the key is not a PKCS#8 PEM key"))?;
        if info.algorithm.oid == p256::elliptic_curve::ALGORITHM_OID {
            let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                .map_err(|_| bad("an EC key that is not a PKCS#8 P-256 key (only ES256)"))?;
            return Ok(ClaimKey::Es256 {
                key,
                pem: Zeroizing::new(key_pem.to_owned()),
            });
        }
        let key = KeyPair::from_pem(key_pem).map_err(|_| bad("the key is not a PKCS#8 PEM key"))?;
        if key.algorithm() != &PKCS_ED25519 {
            return Err(bad(
                "only Ed25519 and ES256 (ECDSA P-256) claim signers are supported",
            ));
        }
        Ok(ClaimKey::Ed25519(key))
    }

    /// The COSE algorithm of its signatures.
    pub(super) fn cose_alg(&self) -> i64 {
        match self {
            ClaimKey::Ed25519(_) => domain::c2pa::cose::ALG_EDDSA,
            ClaimKey::Es256 { .. } => domain::c2pa::cose::ALG_ES256,
        }
    }

    /// Its public key as a certificate's SubjectPublicKeyInfo carries it: Ed25519's 32
    /// bytes, or P-256's uncompressed SEC1 point.
    pub(super) fn public_key_raw(&self) -> Vec<u8> {
        match self {
            ClaimKey::Ed25519(key) => key.public_key_raw().to_vec(),
            ClaimKey::Es256 { key, .. } => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// The private key, PKCS#8 PEM, for the key directory (mode 0600).
    pub(super) fn pem(&self) -> Zeroizing<String> {
        match self {
            ClaimKey::Ed25519(key) => Zeroizing::new(key.serialize_pem()),
            ClaimKey::Es256 { pem, .. } => pem.clone(),
        }
    }

    /// A deterministic signature of `message`: 64 bytes either way.
    pub(super) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            // Ed25519 signing cannot fail once the key has parsed; an empty signature
            // would only make validators refuse the claim.
            ClaimKey::Ed25519(key) => key.sign(message).unwrap_or_default(),
            ClaimKey::Es256 { key, .. } => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;

    #[test]
    fn an_es256_key_signs_deterministically_in_r_s_form() {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let key = ClaimKey::from_pem(&pair.serialize_pem()).expect("parses");
        assert_eq!(key.cose_alg(), -7);
        assert_eq!(key.public_key_raw(), pair.public_key_raw());
        let a = key.sign(b"the claim");
        assert_eq!(a.len(), 64, "r || s, not DER");
        assert_eq!(a, key.sign(b"the claim"), "RFC 6979: the same bytes again");
        assert_ne!(a, key.sign(b"another claim"));
        let public =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(pair.public_key_raw()).expect("point");
        let signature = p256::ecdsa::Signature::from_slice(&a).expect("r || s");
        assert!(public.verify(b"the claim", &signature).is_ok());
        assert_eq!(*key.pem(), pair.serialize_pem());
    }

    #[test]
    fn other_keys_are_refused() {
        // ES384's key: an EC key, but not P-256.
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        assert!(ClaimKey::from_pem(&p384.serialize_pem()).is_err());
        assert!(ClaimKey::from_pem("not a key").is_err());
        let ed = KeyPair::generate_for(&PKCS_ED25519).expect("key");
        let key = ClaimKey::from_pem(&ed.serialize_pem()).expect("parses");
        assert_eq!(key.cose_alg(), -8);
        let pem = ed.serialize_pem().replace("PRIVATE KEY", "EC PRIVATE KEY");
        assert!(ClaimKey::from_pem(&pem).is_err());
    }
}

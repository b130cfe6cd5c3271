//! Signing keys for both algorithms.

use fips204::ml_dsa_65;
use fips204::traits::{SerDes, Signer, Verifier};
use sha2::{Digest, Sha256};

use super::{KeyId, SignatureAlgorithm};
use crate::CertsError;

/// ML-DSA context string: binds signatures to this protocol (FIPS 204 §5.2).
const MLDSA_CONTEXT: &[u8] = b"sealcast/v1";

/// A public key of either algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: SignatureAlgorithm,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({:?}, {})", self.algorithm, self.key_id())
    }
}

/// A private key of either algorithm; its bytes never appear in `Debug` or errors.
pub struct PrivateKey {
    algorithm: SignatureAlgorithm,
    secret: Vec<u8>,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrivateKey({:?}, {}, <redacted>)",
            self.algorithm,
            self.public.key_id()
        )
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // Best effort: do not leave the secret in freed memory.
        self.secret.iter_mut().for_each(|b| *b = 0);
    }
}

impl PublicKey {
    /// Wraps public key bytes, checking their length for the algorithm.
    pub fn from_bytes(algorithm: SignatureAlgorithm, bytes: &[u8]) -> Result<Self, CertsError> {
        let ok = match algorithm {
            SignatureAlgorithm::MlDsa65 => bytes.len() == ml_dsa_65::PK_LEN,
            SignatureAlgorithm::Ed25519 => <[u8; 32]>::try_from(bytes)
                .is_ok_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok()),
        };
        if !ok {
            return Err(CertsError::Malformed {
                what: "public key",
                reason: "wrong length or not a valid point",
            });
        }
        Ok(PublicKey {
            algorithm,
            bytes: bytes.to_vec(),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The raw public key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// First 16 bytes of SHA-256(algorithm code ‖ public key).
    pub fn key_id(&self) -> KeyId {
        let mut h = Sha256::new();
        h.update([self.algorithm.code()]);
        h.update(&self.bytes);
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        KeyId(id)
    }

    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CertsError> {
        let valid = match self.algorithm {
            SignatureAlgorithm::MlDsa65 => {
                let pk = <[u8; ml_dsa_65::PK_LEN]>::try_from(self.bytes.as_slice())
                    .ok()
                    .and_then(|b| ml_dsa_65::PublicKey::try_from_bytes(b).ok());
                let sig = <[u8; ml_dsa_65::SIG_LEN]>::try_from(signature).ok();
                match (pk, sig) {
                    (Some(pk), Some(sig)) => pk.verify(message, &sig, MLDSA_CONTEXT),
                    _ => false,
                }
            }
            SignatureAlgorithm::Ed25519 => {
                let pk = <[u8; 32]>::try_from(self.bytes.as_slice())
                    .ok()
                    .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok());
                let sig = <[u8; 64]>::try_from(signature)
                    .ok()
                    .map(|b| ed25519_dalek::Signature::from_bytes(&b));
                match (pk, sig) {
                    (Some(pk), Some(sig)) => pk.verify_strict(message, &sig).is_ok(),
                    _ => false,
                }
            }
        };
        if valid {
            Ok(())
        } else {
            Err(CertsError::BadSignature)
        }
    }
}

impl PrivateKey {
    /// A new key from the operating system's randomness.
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<Self, CertsError> {
        match algorithm {
            SignatureAlgorithm::MlDsa65 => {
                let (pk, sk) = ml_dsa_65::try_keygen().map_err(CertsError::Crypto)?;
                Self::from_parts(algorithm, &sk.into_bytes(), &pk.into_bytes())
            }
            SignatureAlgorithm::Ed25519 => {
                let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
                Self::from_parts(algorithm, &sk.to_bytes(), sk.verifying_key().as_bytes())
            }
        }
    }

    /// Rebuilds a key from its secret and public halves (as stored in a key file).
    pub fn from_parts(
        algorithm: SignatureAlgorithm,
        secret: &[u8],
        public: &[u8],
    ) -> Result<Self, CertsError> {
        let public = PublicKey::from_bytes(algorithm, public)?;
        let bad = CertsError::Malformed {
            what: "private key",
            reason: "wrong length or does not match its public key",
        };
        match algorithm {
            SignatureAlgorithm::MlDsa65 => {
                if secret.len() != ml_dsa_65::SK_LEN {
                    return Err(bad);
                }
            }
            SignatureAlgorithm::Ed25519 => {
                let b = <[u8; 32]>::try_from(secret).map_err(|_| CertsError::Malformed {
                    what: "private key",
                    reason: "wrong length",
                })?;
                let sk = ed25519_dalek::SigningKey::from_bytes(&b);
                if sk.verifying_key().as_bytes() != public.as_bytes() {
                    return Err(bad);
                }
            }
        }
        let key = PrivateKey {
            algorithm,
            secret: secret.to_vec(),
            public,
        };
        // A key that cannot sign-and-verify is not a key (catches mismatched halves).
        let probe = key.sign(b"sealcast key self-test")?;
        key.public
            .verify(b"sealcast key self-test", &probe)
            .map_err(|_| CertsError::Malformed {
                what: "private key",
                reason: "does not match its public key",
            })?;
        Ok(key)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The secret bytes, for writing a key file.
    pub(crate) fn secret_bytes(&self) -> &[u8] {
        &self.secret
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CertsError> {
        match self.algorithm {
            SignatureAlgorithm::MlDsa65 => {
                let sk = <[u8; ml_dsa_65::SK_LEN]>::try_from(self.secret.as_slice())
                    .ok()
                    .and_then(|b| ml_dsa_65::PrivateKey::try_from_bytes(b).ok())
                    .ok_or(CertsError::Crypto("invalid ML-DSA private key"))?;
                Ok(sk
                    .try_sign(message, MLDSA_CONTEXT)
                    .map_err(CertsError::Crypto)?
                    .to_vec())
            }
            SignatureAlgorithm::Ed25519 => {
                let b = <[u8; 32]>::try_from(self.secret.as_slice())
                    .map_err(|_| CertsError::Crypto("invalid Ed25519 private key"))?;
                let sk = ed25519_dalek::SigningKey::from_bytes(&b);
                Ok(ed25519_dalek::Signer::sign(&sk, message)
                    .to_bytes()
                    .to_vec())
            }
        }
    }
}

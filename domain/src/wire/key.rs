//! Who signed: the signature scheme and the key id every statement names its signer by
//! (and every certificate and revocation of the certs crate names its key by).

use std::fmt;
use std::str::FromStr;

use super::codec::{Codec, Reader, WireError};
use crate::DomainError;

/// Which signature scheme signed a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ML-DSA-65 (FIPS 204), the default.
    MlDsa65,
    /// Ed25519, selectable per cluster.
    Ed25519,
}

impl SignatureAlgorithm {
    /// Stable one-byte code in encodings; never reused for another algorithm.
    pub fn code(self) -> u8 {
        match self {
            Self::MlDsa65 => 1,
            Self::Ed25519 => 2,
        }
    }

    /// The algorithm with that code, if this build knows it.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::MlDsa65),
            2 => Some(Self::Ed25519),
            _ => None,
        }
    }
}

impl Codec for SignatureAlgorithm {
    const WHAT: &'static str = "signature algorithm";

    /// Its one-byte code.
    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.code());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let code = r.u8("algorithm")?;
        Self::from_code(code).ok_or(WireError::UnknownAlgorithm {
            what: r.what(),
            code,
        })
    }
}

/// Identifies a signing key (derived from its public key by whoever makes keys). Written as
/// 32 lowercase hex digits, the only spelling [`FromStr`] accepts, so that a key has exactly
/// one revocation topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl Codec for KeyId {
    const WHAT: &'static str = "key id";

    /// Its 16 bytes.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.array("key id").map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for KeyId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        fn nibble(c: u8) -> Result<u8, DomainError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(DomainError::InvalidKeyId),
            }
        }
        if s.len() != 32 {
            return Err(DomainError::InvalidKeyId);
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(KeyId(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn algorithm_codes_are_stable() {
        assert_eq!(SignatureAlgorithm::MlDsa65.code(), 1);
        assert_eq!(SignatureAlgorithm::Ed25519.code(), 2);
        for code in 0..=u8::MAX {
            if let Some(a) = SignatureAlgorithm::from_code(code) {
                assert_eq!(a.code(), code);
            }
        }
    }

    /// Both are fields of signed layouts: pin their bytes.
    #[test]
    fn encodings_are_pinned() {
        assert_eq!(SignatureAlgorithm::MlDsa65.to_bytes(), [1]);
        assert_eq!(SignatureAlgorithm::Ed25519.to_bytes(), [2]);
        assert_eq!(KeyId([0xab; 16]).to_bytes(), [0xab; 16]);
        assert_eq!(KeyId::from_bytes(&[7; 16]), Ok(KeyId([7; 16])));
        assert_eq!(
            SignatureAlgorithm::from_bytes(&[3]),
            Err(WireError::UnknownAlgorithm {
                what: "signature algorithm",
                code: 3
            })
        );
        assert!(KeyId::from_bytes(&[7; 17]).is_err());
    }

    #[test]
    fn key_id_spellings_other_than_lowercase_hex_are_refused() {
        let k = KeyId([0xab; 16]);
        assert_eq!(k.to_string(), "ab".repeat(16));
        for bad in [
            "AB".repeat(16),
            "ab".repeat(15),
            "ab".repeat(17),
            format!("{}g", "a".repeat(31)),
            format!("{}+", "a".repeat(31)),
            format!("{}é", "a".repeat(30)),
            String::new(),
        ] {
            assert_eq!(
                bad.parse::<KeyId>(),
                Err(DomainError::InvalidKeyId),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn key_ids_round_trip_through_hex(k in any::<[u8; 16]>()) {
            let hex = KeyId(k).to_string();
            prop_assert_eq!(hex.len(), 32);
            prop_assert_eq!(hex.parse::<KeyId>(), Ok(KeyId(k)));
        }

        #[test]
        fn parsing_any_string_as_a_key_id_never_panics(s in ".{0,40}") {
            if let Ok(k) = s.parse::<KeyId>() {
                prop_assert_eq!(k.to_string(), s);
            }
        }
    }
}

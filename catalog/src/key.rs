//! Stream keys: how they are made, how they are stored, how a presented one is checked.
//!
//! A key is 32 bytes from the operating system's CSPRNG, written `sk_` + 64 lowercase hex
//! digits: nothing in it needs escaping in a URL, an RTMP `publish` name or a shell. The
//! catalog stores only the SHA-256 of the key's text (lowercase hex). A plain, unsalted hash
//! is enough here because the key has 256 bits of entropy: there is nothing to guess, so a
//! slow password hash would only cost time on every publish.
//!
//! Pure: no database, no clock. The only side effect is reading the OS random source.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every key starts with, so a key is recognisable in a config file or a password
/// manager (and so secret scanners can be taught to find leaked ones).
const PREFIX: &str = "sk_";
/// Random bytes in a key.
const KEY_BYTES: usize = 32;
/// Length of a well-formed key's text.
const KEY_LEN: usize = PREFIX.len() + 2 * KEY_BYTES;

/// A stream key, as handed once to the operator (`sealcast streams add` prints it) and then
/// typed into OBS.
///
/// It has no `Display`, no `Serialize` and no `Clone`, and its `Debug` is redacted, so it
/// cannot end up in a log line or an error by accident; the one way to the text is
/// [`StreamKey::expose_secret`], which is easy to find in review.
pub struct StreamKey(String);

impl StreamKey {
    /// Makes a new key from the OS CSPRNG.
    pub(crate) fn generate() -> Result<Self, rand::Error> {
        let mut bytes = [0u8; KEY_BYTES];
        OsRng.try_fill_bytes(&mut bytes)?;
        Ok(Self(format!("{PREFIX}{}", hex::encode(bytes))))
    }

    /// The key's text, to print for the operator or hand to a publisher. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The hash that the catalog stores for this key.
    pub(crate) fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

/// The lowercase hex SHA-256 of a key's text: what the `key_hash` column holds.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyHash(String);

impl KeyHash {
    fn of(key: &str) -> Self {
        Self(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// Hashes a key presented by a publisher, or returns `None` if it cannot be a key we
    /// issued (wrong length, prefix or alphabet), so garbage never reaches the database.
    ///
    /// Checking the shape first leaks nothing: the shape is public.
    pub(crate) fn of_presented(presented: &str) -> Option<Self> {
        let well_formed = presented.len() == KEY_LEN
            && presented.starts_with(PREFIX)
            && presented.as_bytes()[PREFIX.len()..]
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| Self::of(presented))
    }

    /// The hex text, to bind in a query.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares with a hash read from the database in constant time.
    ///
    /// The row was fetched by this very hash, so a mismatch means a broken index or
    /// collation; comparing again costs nothing and means the decision to admit a publisher
    /// never rests on a comparison whose timing depends on the secret.
    pub(crate) fn matches_stored(&self, stored: &str) -> bool {
        self.0.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

impl fmt::Debug for KeyHash {
    // The hash is not secret (it is what the database holds) but it is of no use in a log
    // either; keep it short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.0[..8.min(self.0.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = StreamKey::generate().expect("OS random source");
        let text = key.expose_secret();
        assert_eq!(text.len(), KEY_LEN);
        assert!(text.starts_with("sk_"));
        assert!(text[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(KeyHash::of_presented(text).is_some());
    }

    #[test]
    fn generated_keys_differ() {
        let a = StreamKey::generate().expect("OS random source");
        let b = StreamKey::generate().expect("OS random source");
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn hash_is_sha256_hex_of_the_text() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            KeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let key = StreamKey::generate().expect("OS random source");
        assert_eq!(
            key.hash(),
            KeyHash::of_presented(key.expose_secret()).expect("well formed")
        );
        assert_ne!(key.hash().as_str(), key.expose_secret());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = StreamKey::generate().expect("OS random source");
        let debug = format!("{key:?} {:#?}", key);
        assert!(!debug.contains(key.expose_secret()));
        assert!(!debug.contains(&key.expose_secret()[3..]));
        assert!(!debug.contains(&key.expose_secret()[3..11]));
    }

    #[test]
    fn malformed_presented_keys_are_not_hashed() {
        let key = StreamKey::generate().expect("OS random source");
        let good = key.expose_secret();
        let upper = good.to_uppercase();
        let trailing = format!("{good}\n");
        let leading = format!(" {good}");
        let short = &good[..KEY_LEN - 1];
        let no_prefix = &good[3..];
        let wrong_prefix = format!("pk_{}", &good[3..]);
        let non_hex = format!("{}g", &good[..KEY_LEN - 1]);
        for bad in [
            "",
            "sk_",
            "demo",
            upper.as_str(),
            trailing.as_str(),
            leading.as_str(),
            short,
            no_prefix,
            wrong_prefix.as_str(),
            non_hex.as_str(),
        ] {
            assert!(KeyHash::of_presented(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn stored_hash_comparison() {
        let key = StreamKey::generate().expect("OS random source");
        let hash = key.hash();
        assert!(hash.matches_stored(hash.as_str()));
        assert!(!hash.matches_stored(&hash.as_str()[1..]));
        assert!(!hash.matches_stored(&hash.as_str().to_uppercase()));
        assert!(!hash.matches_stored(""));
    }
}

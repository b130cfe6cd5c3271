//! Secret keys: how they are made, how they are stored, how a presented one is checked.
//!
//! Two kinds share this machinery: stream keys (`sk_`, authorise an RTMP publish of one
//! stream) and API keys (`ak_`, authorise calls to the admin API). A key is 32 bytes from
//! the operating system's CSPRNG, written as its kind's prefix + 64 lowercase hex digits:
//! nothing in it needs escaping in a URL, an RTMP `publish` name, an HTTP header or a shell.
//! The catalog stores only the SHA-256 of the key's text (lowercase hex). A plain, unsalted
//! hash is enough here because the key has 256 bits of entropy: there is nothing to guess,
//! so a slow password hash would only cost time on every publish and every API call.
//!
//! The kind is a type parameter ([`Key<K>`](Key), with [`StreamKey`] and [`ApiKey`] as the
//! two names callers use), so a stream key cannot be passed where an API key is expected,
//! and the prefix is part of the shape check: a stream key presented as an API key (or the
//! other way round) is malformed before any lookup.
//!
//! Pure: no database, no clock. The only side effect is reading the OS random source.

use std::fmt;
use std::marker::PhantomData;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a key.
const KEY_BYTES: usize = 32;

/// What distinguishes one kind of key from another. Implemented by [`StreamKeyKind`] and
/// [`ApiKeyKind`]; an implementation elsewhere would be of no use, since only the catalog
/// makes keys.
pub trait KeyKind {
    /// What every key of this kind starts with, so a key is recognisable in a config file or
    /// a password manager (and so secret scanners can be taught to find leaked ones). Each
    /// kind has its own, which is what keeps one kind from passing for the other.
    const PREFIX: &'static str;
    /// The name `Debug` shows for such a key (`StreamKey(<redacted>)`).
    const NAME: &'static str;
}

/// The kind of [`StreamKey`]: `sk_` keys, one per stream, typed into OBS.
#[derive(Debug)]
pub enum StreamKeyKind {}

impl KeyKind for StreamKeyKind {
    const PREFIX: &'static str = "sk_";
    const NAME: &'static str = "StreamKey";
}

/// The kind of [`ApiKey`]: `ak_` keys, sent in the admin API's `x-api-key` header.
#[derive(Debug)]
pub enum ApiKeyKind {}

impl KeyKind for ApiKeyKind {
    const PREFIX: &'static str = "ak_";
    const NAME: &'static str = "ApiKey";
}

/// A stream key, as handed once to the operator (`sealcast streams add` prints it) and then
/// typed into OBS.
pub type StreamKey = Key<StreamKeyKind>;

/// An API key, as handed once to the operator (`sealcast api-keys add` prints it) and then
/// sent in `x-api-key`.
pub type ApiKey = Key<ApiKeyKind>;

/// A secret key of kind `K`, as handed once to the operator.
///
/// It has no `Display`, no `Serialize` and no `Clone`, and its `Debug` is redacted, so it
/// cannot end up in a log line, an API answer or an error by accident; the one way to the
/// text is [`Key::expose_secret`], which is easy to find in review.
pub struct Key<K: KeyKind> {
    text: String,
    /// The kind lives only in the type: the prefix of `text` says the same at run time.
    kind: PhantomData<K>,
}

impl<K: KeyKind> Key<K> {
    /// Length of a well-formed key's text.
    const LEN: usize = K::PREFIX.len() + 2 * KEY_BYTES;

    /// Makes a new key from the OS CSPRNG.
    pub(crate) fn generate() -> Result<Self, rand::Error> {
        let mut bytes = [0u8; KEY_BYTES];
        OsRng.try_fill_bytes(&mut bytes)?;
        Ok(Self {
            text: format!("{}{}", K::PREFIX, hex::encode(bytes)),
            kind: PhantomData,
        })
    }

    /// The key's text, to print for the operator or hand to a publisher. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The hash that the catalog stores for this key.
    pub(crate) fn hash(&self) -> KeyHash {
        KeyHash::of(&self.text)
    }

    /// Whether `presented` has the shape of a key of this kind (length, prefix, alphabet).
    fn is_well_formed(presented: &str) -> bool {
        presented.len() == Self::LEN
            && presented.starts_with(K::PREFIX)
            && presented.as_bytes()[K::PREFIX.len()..]
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

impl<K: KeyKind> fmt::Debug for Key<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(<redacted>)", K::NAME)
    }
}

/// The lowercase hex SHA-256 of a key's text: what the `key_hash` columns hold.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyHash(String);

impl KeyHash {
    fn of(key: &str) -> Self {
        Self(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// Hashes a key presented by a client, or returns `None` if it cannot be a key of kind
    /// `K` that we issued (wrong length, prefix or alphabet), so garbage never reaches the
    /// database.
    ///
    /// Checking the shape first leaks nothing: the shape is public.
    pub(crate) fn of_presented<K: KeyKind>(presented: &str) -> Option<Self> {
        Key::<K>::is_well_formed(presented).then(|| Self::of(presented))
    }

    /// The hex text, to bind in a query.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares with a hash read from the database in constant time.
    ///
    /// The row was fetched by this very hash, so a mismatch means a broken index or
    /// collation; comparing again costs nothing and means the decision to admit a client
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
    use proptest::prelude::*;

    use super::*;

    /// 67: the length every key kind here has.
    const KEY_LEN: usize = 3 + 2 * KEY_BYTES;

    fn shape_of<K: KeyKind>() {
        let key = Key::<K>::generate().expect("OS random source");
        let text = key.expose_secret();
        assert_eq!(text.len(), KEY_LEN);
        assert_eq!(Key::<K>::LEN, KEY_LEN);
        assert!(text.starts_with(K::PREFIX));
        assert!(text[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(KeyHash::of_presented::<K>(text).is_some());
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        shape_of::<StreamKeyKind>();
        shape_of::<ApiKeyKind>();
        assert!(StreamKey::generate()
            .expect("OS random source")
            .expose_secret()
            .starts_with("sk_"));
        assert!(ApiKey::generate()
            .expect("OS random source")
            .expose_secret()
            .starts_with("ak_"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = StreamKey::generate().expect("OS random source");
        let b = StreamKey::generate().expect("OS random source");
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn one_kind_never_passes_for_the_other() {
        let stream = StreamKey::generate().expect("OS random source");
        let api = ApiKey::generate().expect("OS random source");
        assert!(KeyHash::of_presented::<ApiKeyKind>(stream.expose_secret()).is_none());
        assert!(KeyHash::of_presented::<StreamKeyKind>(api.expose_secret()).is_none());
    }

    #[test]
    fn hash_is_sha256_hex_of_the_text() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            KeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let key = ApiKey::generate().expect("OS random source");
        assert_eq!(
            key.hash(),
            KeyHash::of_presented::<ApiKeyKind>(key.expose_secret()).expect("well formed")
        );
        assert_ne!(key.hash().as_str(), key.expose_secret());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let stream = StreamKey::generate().expect("OS random source");
        let api = ApiKey::generate().expect("OS random source");
        let debug = format!("{stream:?} {stream:#?} {api:?} {api:#?}");
        assert_eq!(format!("{stream:?}"), "StreamKey(<redacted>)");
        assert_eq!(format!("{api:?}"), "ApiKey(<redacted>)");
        for secret in [stream.expose_secret(), api.expose_secret()] {
            assert!(!debug.contains(secret));
            assert!(!debug.contains(&secret[3..]));
            assert!(!debug.contains(&secret[3..11]));
        }
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
            assert!(
                KeyHash::of_presented::<StreamKeyKind>(bad).is_none(),
                "{bad:?}"
            );
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

    /// The shape check, written out the slow and obvious way.
    fn obviously_well_formed(prefix: &str, s: &str) -> bool {
        match s.strip_prefix(prefix) {
            Some(hex) => {
                hex.chars().count() == 64
                    && hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            }
            None => false,
        }
    }

    proptest! {
        /// Near misses (other prefixes, upper case, a digit too many or too few) are refused
        /// and exact shapes accepted, for both kinds.
        #[test]
        fn shape_check_accepts_exactly_the_documented_shape(
            s in "(sk_|ak_|pk_|sk|ak_ak_|)[0-9a-fA-Fg]{62,66}"
        ) {
            prop_assert_eq!(
                KeyHash::of_presented::<StreamKeyKind>(&s).is_some(),
                obviously_well_formed("sk_", &s)
            );
            prop_assert_eq!(
                KeyHash::of_presented::<ApiKeyKind>(&s).is_some(),
                obviously_well_formed("ak_", &s)
            );
        }

        #[test]
        fn well_formed_keys_are_accepted(hex in "[0-9a-f]{64}") {
            let stream = format!("sk_{hex}");
            let api = format!("ak_{hex}");
            prop_assert!(KeyHash::of_presented::<StreamKeyKind>(&stream).is_some());
            prop_assert!(KeyHash::of_presented::<ApiKeyKind>(&api).is_some());
            prop_assert!(KeyHash::of_presented::<ApiKeyKind>(&stream).is_none());
            prop_assert!(KeyHash::of_presented::<StreamKeyKind>(&api).is_none());
        }
    }
}

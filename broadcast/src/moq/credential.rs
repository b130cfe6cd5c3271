//! The credentials relay sessions carry in the dial URL's query (the only place moq-lite
//! carries one), all HMAC-SHA256 under one [`MoqKey`], each kind behind a domain tag no
//! other MAC of ours starts with, checked by the auth endpoint the relay asks
//! ([`super::auth`], a node's or a relay tier's gate):
//!
//! - a **publish credential** (`?publish={exp}.{mac}`): what a node presents when it dials
//!   a relay to publish; short-lived, minted afresh for every dial and useless
//!   [`LIFETIME_SECS`] later. It proves only "a holder of the key minted this before
//!   `exp`";
//! - a **viewer grant** (`?grant={exp}.{stream}.{mac}`): what a node hands a viewer of a
//!   private stream after checking its playback token as LL-HLS does (the token, its
//!   `cidr` against the address the node sees, the `on_play` hook); good until the token
//!   expires, for that one stream. A relay behind the QUIC door sees the door's address,
//!   not the viewer's, so the address is judged where it is known: at minting;
//! - a **cluster credential** (`?jwt={mac}`, where moq-relay's `--cluster-token` puts it):
//!   what a relay of the tier presents when it dials another; it does not expire (the
//!   relay reads it once, at start), and it is only ever in a file of the relay's.
//!
//! The key is a node's own, made at start, when the node is its relay's auth endpoint;
//! a relay tier's key (`--moq-key-file`) is shared by the nodes and the relays' gates.

use domain::StreamName;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The query parameter that carries the credential.
pub(crate) const PARAMETER: &str = "publish";

/// How long a credential is good for after it is minted: a dial, with room for clocks
/// a little apart. A session admitted with it lasts as long as it stays up.
pub(crate) const LIFETIME_SECS: u64 = 60;

/// Longest credential read (an expiry and 64 hex digits fit well within it).
const MAX_LEN: usize = 96;

/// What the MAC is over, before the expiry: nothing else we MAC starts with it.
const DOMAIN: &[u8] = b"sealcast moq publish v1\0";
/// A viewer grant's domain tag.
const GRANT_DOMAIN: &[u8] = b"sealcast moq grant v1\0";
/// A cluster credential's domain tag (and all it covers).
const CLUSTER_DOMAIN: &[u8] = b"sealcast moq cluster v1\0";

/// The query parameter that carries a viewer grant.
pub(crate) const GRANT_PARAMETER: &str = "grant";
/// The query parameter that carries a cluster credential (moq-relay's `--cluster-token`
/// appends the file's contents as `?jwt=`).
pub(crate) const CLUSTER_PARAMETER: &str = "jwt";

/// Longest grant read: an expiry, a stream name (64 bytes at most) and 64 hex digits.
const MAX_GRANT_LEN: usize = 160;

/// The secret publish credentials are minted and checked with. Never logged.
#[derive(Clone)]
pub struct MoqKey([u8; 32]);

impl MoqKey {
    /// A key from 32 bytes (`sealcast` derives one per process; tests pick theirs).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MoqKey(bytes)
    }

    /// A key from its file's text: 64 hex digits, surrounding white space ignored. Says
    /// nothing of the text when it is not one.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
        Some(MoqKey(bytes))
    }

    /// A fresh random key, known to this process only: only this process can publish to
    /// a relay whose auth endpoint it serves.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        MoqKey(bytes)
    }

    fn keyed(&self, domain: &[u8]) -> Hmac<Sha256> {
        // An HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(domain);
        mac
    }

    fn mac(&self, exp: u64) -> Hmac<Sha256> {
        let mut mac = self.keyed(DOMAIN);
        mac.update(exp.to_string().as_bytes());
        mac
    }

    fn grant_mac(&self, stream: &StreamName, exp: u64) -> Hmac<Sha256> {
        let mut mac = self.keyed(GRANT_DOMAIN);
        mac.update(exp.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(stream.as_str().as_bytes());
        mac
    }

    /// A viewer's grant to read the private stream `stream` until `exp` (unix seconds).
    pub fn grant(&self, stream: &StreamName, exp: u64) -> String {
        let tag = self.grant_mac(stream, exp).finalize().into_bytes();
        format!("{exp}.{stream}.{}", hex::encode(tag))
    }

    /// The stream and expiry of `grant` if it is one of ours, unexpired at `now`.
    pub fn verify_grant(&self, grant: &str, now: u64) -> Option<(StreamName, u64)> {
        if grant.len() > MAX_GRANT_LEN {
            return None;
        }
        let (exp, rest) = grant.split_once('.')?;
        let (stream, tag) = rest.rsplit_once('.')?;
        let exp = canonical_decimal(exp)?;
        let stream = StreamName::new(stream).ok()?;
        if exp <= now {
            return None;
        }
        let tag = lower_hex(tag)?;
        self.grant_mac(&stream, exp)
            .verify_slice(&tag)
            .ok()
            .map(|()| (stream, exp))
    }

    /// The credential the relays of a tier present to each other.
    pub fn cluster(&self) -> String {
        hex::encode(self.keyed(CLUSTER_DOMAIN).finalize().into_bytes())
    }

    /// Whether `credential` is this key's cluster credential.
    pub fn verify_cluster(&self, credential: &str) -> bool {
        lower_hex(credential)
            .is_some_and(|tag| self.keyed(CLUSTER_DOMAIN).verify_slice(&tag).is_ok())
    }

    /// A credential good until `now + LIFETIME_SECS`.
    pub fn mint(&self, now: u64) -> String {
        let exp = now.saturating_add(LIFETIME_SECS);
        let tag = self.mac(exp).finalize().into_bytes();
        format!("{exp}.{}", hex::encode(tag))
    }

    /// Whether `credential` is one of ours, unexpired at `now` (and not minted for later
    /// than a fresh one would be).
    pub fn verify(&self, credential: &str, now: u64) -> bool {
        if credential.len() > MAX_LEN {
            return false;
        }
        let Some((exp, tag)) = credential.split_once('.') else {
            return false;
        };
        let Some(exp) = canonical_decimal(exp) else {
            return false;
        };
        if exp <= now || exp > now.saturating_add(2 * LIFETIME_SECS) {
            return false;
        }
        let Some(tag) = lower_hex(tag) else {
            return false;
        };
        // Constant time.
        self.mac(exp).verify_slice(&tag).is_ok()
    }
}

/// A decimal number spelled canonically (no sign, no leading zero): one credential, one
/// spelling.
fn canonical_decimal(text: &str) -> Option<u64> {
    let n = text.parse::<u64>().ok()?;
    (n.to_string() == text).then_some(n)
}

/// The bytes of a MAC spelled as 64 lowercase hex digits, nothing else.
fn lower_hex(text: &str) -> Option<Vec<u8>> {
    let lower = text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    lower.then(|| hex::decode(text).ok()).flatten()
}

impl std::fmt::Debug for MoqKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MoqKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_fresh_credential_verifies_and_nothing_else_does() {
        let key = MoqKey::from_bytes([7; 32]);
        let credential = key.mint(NOW);
        assert!(key.verify(&credential, NOW));
        assert!(key.verify(&credential, NOW + LIFETIME_SECS - 1));
        assert!(!key.verify(&credential, NOW + LIFETIME_SECS), "expired");
        assert!(
            !MoqKey::from_bytes([8; 32]).verify(&credential, NOW),
            "another key"
        );
        // Minted far ahead (a stolen key's long-lived credential): refused.
        assert!(!key.verify(&key.mint(NOW + 3600), NOW));
        let (exp, tag) = credential.split_once('.').expect("two parts");
        for forged in [
            format!("{}.{tag}", exp.parse::<u64>().expect("number") + 1),
            format!("0{exp}.{tag}"),
            format!("+{exp}.{tag}"),
            format!("{exp}.{}", &tag[..62]),
            format!("{exp}.{}00", tag),
            format!("{exp}.{}", tag.to_uppercase().replace('A', "a")),
            format!("{exp}{tag}"),
            String::new(),
            "x".repeat(200),
        ] {
            if forged == credential {
                continue;
            }
            assert!(!key.verify(&forged, NOW), "{forged}");
        }
        assert!(!format!("{key:?}").contains("07"), "the key is not shown");
    }

    #[test]
    fn a_grant_opens_its_stream_until_it_expires_and_nothing_else_verifies() {
        let key = MoqKey::from_bytes([7; 32]);
        let cam = StreamName::new("cam-1").expect("name");
        let grant = key.grant(&cam, NOW + 3600);
        assert_eq!(
            key.verify_grant(&grant, NOW),
            Some((cam.clone(), NOW + 3600))
        );
        assert_eq!(key.verify_grant(&grant, NOW + 3600), None, "expired");
        assert_eq!(MoqKey::from_bytes([8; 32]).verify_grant(&grant, NOW), None);
        let tag = grant.rsplit_once('.').expect("three parts").1;
        for forged in [
            format!("{}.cam-1.{tag}", NOW + 3601),
            format!("0{}.cam-1.{tag}", NOW + 3600),
            format!("{}.cam-2.{tag}", NOW + 3600),
            format!("{}.cam-1.{}", NOW + 3600, tag.to_uppercase()),
            format!("{}.cam-1.{}", NOW + 3600, &tag[..62]),
            format!("{}.cam/1.{tag}", NOW + 3600),
            format!("{}.{tag}", NOW + 3600),
            // A publish credential or a cluster credential is no grant, nor the reverse.
            key.mint(NOW),
            key.cluster(),
            String::new(),
            "1.a.".repeat(100),
        ] {
            assert_eq!(key.verify_grant(&forged, NOW), None, "{forged}");
        }
        assert!(!key.verify(&grant, NOW));
        assert!(!key.verify_cluster(&grant));
    }

    #[test]
    fn a_cluster_credential_is_the_keys_alone() {
        let key = MoqKey::from_bytes([7; 32]);
        assert!(key.verify_cluster(&key.cluster()));
        assert!(!MoqKey::from_bytes([8; 32]).verify_cluster(&key.cluster()));
        assert!(!key.verify_cluster(&key.cluster().to_uppercase()));
        assert!(!key.verify_cluster(""));
        assert!(!key.verify(&key.cluster(), NOW));
    }

    #[test]
    fn a_key_file_is_64_hex_digits() {
        let hex = "07".repeat(32);
        assert!(MoqKey::from_hex(&format!("{hex}\n")).is_some());
        assert_eq!(
            MoqKey::from_hex(&hex).map(|k| k.cluster()),
            Some(MoqKey::from_bytes([7; 32]).cluster())
        );
        for bad in ["", "07", &"0g".repeat(32), &"07".repeat(33)] {
            assert!(MoqKey::from_hex(bad).is_none(), "{bad}");
        }
    }
}

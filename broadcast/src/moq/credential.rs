//! The credential a node presents when it dials a relay to publish (`?publish=…` in the
//! dial URL's query, the only place moq-lite carries one): short-lived, derived from a
//! key the node holds, and checked by the auth endpoint ([`super::auth`]) that the relay
//! asks. A credential is `{exp}.{mac}`: its expiry (unix seconds) and the hex
//! HMAC-SHA256 of it under the [`MoqPublishKey`], behind a domain tag no other MAC of
//! ours starts with. It proves only "a holder of the key minted this before `exp`"; it is
//! minted afresh for every dial and is useless [`LIFETIME_SECS`] later.

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

/// The secret publish credentials are minted and checked with. Never logged.
#[derive(Clone)]
pub struct MoqPublishKey([u8; 32]);

impl MoqPublishKey {
    /// A key from 32 bytes (`sealcast` derives one per process; tests pick theirs).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MoqPublishKey(bytes)
    }

    /// A fresh random key, known to this process only: only this process can publish to
    /// a relay whose auth endpoint it serves.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        MoqPublishKey(bytes)
    }

    fn mac(&self, exp: u64) -> Hmac<Sha256> {
        // An HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(DOMAIN);
        mac.update(exp.to_string().as_bytes());
        mac
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
        // Canonical decimal only: one credential, one spelling.
        let Ok(exp) = exp.parse::<u64>() else {
            return false;
        };
        if exp.to_string().len() != credential.len() - tag.len() - 1 {
            return false;
        }
        if exp <= now || exp > now.saturating_add(2 * LIFETIME_SECS) {
            return false;
        }
        if !tag
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return false;
        }
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        // Constant time.
        self.mac(exp).verify_slice(&tag).is_ok()
    }
}

impl std::fmt::Debug for MoqPublishKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MoqPublishKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_fresh_credential_verifies_and_nothing_else_does() {
        let key = MoqPublishKey::from_bytes([7; 32]);
        let credential = key.mint(NOW);
        assert!(key.verify(&credential, NOW));
        assert!(key.verify(&credential, NOW + LIFETIME_SECS - 1));
        assert!(!key.verify(&credential, NOW + LIFETIME_SECS), "expired");
        assert!(
            !MoqPublishKey::from_bytes([8; 32]).verify(&credential, NOW),
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
}

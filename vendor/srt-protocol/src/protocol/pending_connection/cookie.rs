use std::{
    collections::hash_map::DefaultHasher,
    fmt,
    hash::{Hash, Hasher},
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The rendezvous cookie (a tie-breaker between two peers, not a secret).
///
/// sealcast: a listener's SYN cookie is a [`CookieKey`]'s, no longer this one (FORK.md).
pub fn gen_cookie(saddr: &SocketAddr) -> i32 {
    let time_mins = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        * 60;

    let mut hasher = DefaultHasher::new();
    saddr.hash(&mut hasher);
    time_mins.hash(&mut hasher);

    hasher.finish() as u32 as i32
}

/// sealcast: how long one cookie is issued for; a cookie is accepted in the bucket it was
/// issued in and the next one, so for one to two minutes (libsrt's bucket, FORK.md).
pub const COOKIE_BUCKET: Duration = Duration::from_secs(60);

/// sealcast: a listener's SYN cookie secret (FORK.md).
///
/// The cookie is HMAC-SHA1, keyed with 32 random bytes drawn when the listener starts,
/// over the caller's address and port and the current one-minute bucket, truncated to 32
/// bits (the handshake's field). Without the secret nobody can compute a cookie for an
/// address whose answers they do not receive, so a spoofed source never completes a
/// handshake; upstream hashed with `DefaultHasher::new()`, whose keys are fixed. SHA-1's
/// collisions do not weaken it as a keyed PRF (HMAC); it is what the crate already links
/// for the passphrase's PBKDF2.
#[derive(Clone)]
pub struct CookieKey {
    secret: [u8; 32],
    epoch: Instant,
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKey").finish_non_exhaustive()
    }
}

impl CookieKey {
    /// A key with a fresh random secret; buckets count from `now`.
    pub fn random(now: Instant) -> Self {
        Self::with_secret(rand::random(), now)
    }

    /// A key with this secret; buckets count from `epoch`.
    pub fn with_secret(secret: [u8; 32], epoch: Instant) -> Self {
        Self { secret, epoch }
    }

    fn bucket(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / COOKIE_BUCKET.as_secs()
    }

    fn cookie_in(&self, peer: &SocketAddr, bucket: u64) -> i32 {
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&self.secret) else {
            // HMAC takes a key of any length; this is never reached.
            return 0;
        };
        let ip = match peer.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        mac.update(&ip);
        mac.update(&peer.port().to_be_bytes());
        mac.update(&bucket.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        i32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]])
    }

    /// The cookie to hand `peer` now.
    pub fn cookie(&self, peer: &SocketAddr, now: Instant) -> i32 {
        self.cookie_in(peer, self.bucket(now))
    }

    /// Whether `cookie` is one this key handed `peer` in this bucket or the previous one.
    pub fn verify(&self, peer: &SocketAddr, now: Instant, cookie: i32) -> bool {
        let bucket = self.bucket(now);
        let current = self.cookie_in(peer, bucket) == cookie;
        let previous = bucket
            .checked_sub(1)
            .is_some_and(|b| self.cookie_in(peer, b) == cookie);
        current | previous
    }
}

#[cfg(test)]
mod sealcast_tests {
    use super::*;

    fn peer() -> SocketAddr {
        "192.0.2.7:40000".parse().expect("address")
    }

    #[test]
    fn a_cookie_verifies_for_its_peer_in_its_bucket_and_the_next() {
        let epoch = Instant::now();
        let key = CookieKey::with_secret([7; 32], epoch);
        let cookie = key.cookie(&peer(), epoch);
        assert!(key.verify(&peer(), epoch, cookie));
        assert!(key.verify(&peer(), epoch + COOKIE_BUCKET, cookie));
        assert!(!key.verify(&peer(), epoch + 2 * COOKIE_BUCKET, cookie));
        let other_port: SocketAddr = "192.0.2.7:40001".parse().expect("address");
        let other_host: SocketAddr = "192.0.2.8:40000".parse().expect("address");
        assert!(!key.verify(&other_port, epoch, cookie));
        assert!(!key.verify(&other_host, epoch, cookie));
    }

    /// Item 3 of issue 45: a cookie from another listener's secret, or upstream's
    /// fixed-key hash, does not verify.
    #[test]
    fn a_cookie_from_another_secret_or_the_fixed_hash_is_refused() {
        let epoch = Instant::now();
        let key = CookieKey::with_secret([7; 32], epoch);
        let other = CookieKey::with_secret([8; 32], epoch);
        assert!(!key.verify(&peer(), epoch, other.cookie(&peer(), epoch)));
        assert!(!key.verify(&peer(), epoch, gen_cookie(&peer())));
        // Two listeners started together draw different secrets.
        let a = CookieKey::random(epoch);
        let b = CookieKey::random(epoch);
        assert_ne!(a.secret, b.secret);
    }

    /// Guessing: of 100,000 guesses for one peer, about none verifies (2 / 2^32 each).
    #[test]
    fn guessed_cookies_are_refused() {
        let epoch = Instant::now();
        let key = CookieKey::random(epoch);
        let accepted = (0..100_000i32)
            .map(|i| i.wrapping_mul(42_947))
            .filter(|guess| key.verify(&peer(), epoch, *guess))
            .count();
        assert!(accepted <= 1, "{accepted} guesses verified");
    }
}

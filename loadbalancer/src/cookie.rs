//! The `sealcast_node` sticky cookie: which broadcast node a viewer is pinned to, signed so
//! that a client can neither forge a pin nor keep one forever.
//!
//! # Wire format
//!
//! ```text
//! sealcast_node=v1.<node id>.<issued, unix seconds>.<HMAC-SHA256, 64 lowercase hex digits>
//! ```
//!
//! The MAC covers a domain tag and the exact text `v1.<node id>.<issued>`, so a change to
//! any byte of the value is a different MAC input. Every part has exactly one spelling
//! (node ids are validated by [`NodeId`], times are decimal without leading zeros, the MAC
//! is lowercase hex), and every character is URL-safe and legal in a cookie value without
//! quoting. The value is at most [`MAX_VALUE_LEN`] bytes; longer values are refused before
//! any MAC is computed.
//!
//! Time comes in as a value (`now`), never from a clock here, so every rule (stale,
//! future-dated, refresh) is tested with plain numbers.

use std::fmt;
use std::time::{Duration, SystemTime};

use domain::time::unix_secs;
use domain::NodeId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::LoadBalancerError;

/// The cookie's name, fixed by the product brief.
pub const COOKIE_NAME: &str = "sealcast_node";

/// The shortest accepted key: HMAC-SHA256 is only as strong as a 256-bit key.
pub const MIN_KEY_LEN: usize = 32;

/// The longest cookie value ever issued (and so the longest ever parsed):
/// `v1.` + a 64-byte node id + `.` + 20 digits + `.` + 64 hex digits.
pub const MAX_VALUE_LEN: usize = VERSION.len() + 1 + 64 + 1 + MAX_TIME_DIGITS + 1 + MAC_HEX_LEN;

const VERSION: &str = "v1";
const MAX_TIME_DIGITS: usize = 20;
const MAC_LEN: usize = 32;
const MAC_HEX_LEN: usize = 2 * MAC_LEN;
/// Prefixed to every MAC input so that a key shared by mistake with another HMAC use can
/// never make one of its tags a valid cookie.
const MAC_DOMAIN: &[u8] = b"sealcast/v1 lb sticky cookie\0";
/// How many `sealcast_node` cookies of one header are checked at most: a browser sends one
/// or two (different paths), so this bounds the HMAC work a stuffed header can cause.
const MAX_CANDIDATES: usize = 4;

/// The secret that signs sticky cookies. Every load balancer of a cluster must hold the
/// same key, or a viewer loses its node when it reaches another load balancer.
///
/// It holds the HMAC state derived from the key rather than the raw bytes, so nothing
/// per request has to be fallible; `Debug` never shows either.
#[derive(Clone)]
pub struct CookieKey(Hmac<Sha256>);

impl CookieKey {
    /// Makes a key from at least [`MIN_KEY_LEN`] secret random bytes (the config's value,
    /// decoded). The caller still owns `bytes` and may wipe them.
    pub fn new(bytes: &[u8]) -> Result<Self, LoadBalancerError> {
        let too_short = LoadBalancerError::CookieKeyTooShort {
            len: bytes.len(),
            min: MIN_KEY_LEN,
        };
        if bytes.len() < MIN_KEY_LEN {
            return Err(too_short);
        }
        // HMAC takes keys of any length, so this cannot fail; mapped rather than unwrapped.
        Hmac::<Sha256>::new_from_slice(bytes)
            .map(Self)
            .map_err(|_| too_short)
    }

    fn mac(&self, signed: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.0.clone();
        mac.update(MAC_DOMAIN);
        mac.update(signed);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey(<redacted>)")
    }
}

/// Why a `sealcast_node` cookie was not trusted. Labels for a rejection counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// Not of the issued shape: too long, wrong version, bad node id, time or MAC text.
    Malformed,
    /// Well-formed, but the MAC does not match: forged, altered, or signed with another key.
    BadMac,
    /// Signed by us, but older than the max age.
    Stale,
    /// Signed by us, but dated later than now plus the skew allowance.
    Future,
}

impl Rejection {
    /// A short, stable label (`malformed`, `bad_mac`, `stale`, `future`) for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::BadMac => "bad_mac",
            Rejection::Stale => "stale",
            Rejection::Future => "future",
        }
    }
}

/// A cookie that verified: the node it names and when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticky {
    /// The node the viewer is pinned to.
    pub node: NodeId,
    /// When the cookie was issued, in seconds since the Unix epoch; used to refresh it
    /// before it expires.
    pub issued_unix_secs: u64,
}

/// What a `Cookie:` header says about stickiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieCheck {
    /// No `sealcast_node` cookie at all: a new viewer.
    Absent,
    /// At least one `sealcast_node` cookie, none trusted; the reason is the last one's.
    Rejected(Rejection),
    /// A cookie that verified.
    Valid(Sticky),
}

/// Issues and verifies `sealcast_node` cookies with one key and one lifetime.
#[derive(Debug, Clone)]
pub struct StickyCookies {
    key: CookieKey,
    /// The cookie's `Max-Age` and the age past which it is refused: the same number, so
    /// the browser drops it at about the time we would refuse it.
    max_age_secs: u64,
    /// How far in the future an issue time may lie: load balancers of one cluster sign
    /// with their own clocks, which are close but not equal.
    max_future_skew_secs: u64,
}

impl StickyCookies {
    /// The default lifetime: long enough for an evening's viewing, and refreshed while the
    /// viewer keeps watching (see [`StickyCookies::needs_refresh`]).
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(4 * 3600);
    /// The longest lifetime browsers honour (RFC 6265bis).
    pub const MAX_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);
    /// The default allowance for clocks of different load balancers.
    pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(5);
    /// The largest accepted allowance.
    pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);

    /// Cookies signed with `key`, with the default lifetime and skew allowance.
    pub fn new(key: CookieKey) -> Self {
        StickyCookies {
            key,
            max_age_secs: Self::DEFAULT_MAX_AGE.as_secs(),
            max_future_skew_secs: Self::DEFAULT_MAX_FUTURE_SKEW.as_secs(),
        }
    }

    /// Sets the lifetime (whole seconds, 1 s to [`Self::MAX_MAX_AGE`]).
    pub fn with_max_age(mut self, max_age: Duration) -> Result<Self, LoadBalancerError> {
        let secs = max_age.as_secs();
        if secs == 0 || max_age > Self::MAX_MAX_AGE {
            return Err(LoadBalancerError::InvalidCookieMaxAge {
                secs,
                max_secs: Self::MAX_MAX_AGE.as_secs(),
            });
        }
        self.max_age_secs = secs;
        Ok(self)
    }

    /// Sets the clock-skew allowance for future-dated cookies (whole seconds, at most
    /// [`Self::MAX_FUTURE_SKEW`]; zero refuses any cookie dated after `now`).
    pub fn with_max_future_skew(mut self, skew: Duration) -> Result<Self, LoadBalancerError> {
        if skew > Self::MAX_FUTURE_SKEW {
            return Err(LoadBalancerError::InvalidClockSkew {
                secs: skew.as_secs(),
                max_secs: Self::MAX_FUTURE_SKEW.as_secs(),
            });
        }
        self.max_future_skew_secs = skew.as_secs();
        Ok(self)
    }

    /// The lifetime, as sent in `Max-Age`.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_secs)
    }

    /// A `Set-Cookie` header value pinning the viewer to `node` from `now` on.
    ///
    /// `Secure` and `HttpOnly` because the cookie only matters to the load balancer, over
    /// HTTPS; `SameSite=Lax` so a link to the player from another site still keeps the
    /// viewer's node; `Path=/` so playlists, segments and the player page share it.
    pub fn issue(&self, node: &NodeId, now: SystemTime) -> String {
        format!(
            "{COOKIE_NAME}={}; Max-Age={}; Path=/; Secure; HttpOnly; SameSite=Lax",
            self.value(node, unix_secs(now)),
            self.max_age_secs
        )
    }

    /// The node named by a trusted `sealcast_node` cookie in a `Cookie:` header value,
    /// if there is one. Shorthand for [`StickyCookies::inspect`].
    pub fn verify(&self, cookie_header: &str, now: SystemTime) -> Option<NodeId> {
        match self.inspect(cookie_header, now) {
            CookieCheck::Valid(sticky) => Some(sticky.node),
            CookieCheck::Absent | CookieCheck::Rejected(_) => None,
        }
    }

    /// Finds our cookie among the others of a `Cookie:` header value and says whether it
    /// can be trusted at `now`.
    ///
    /// HTTP/2 may split cookies over several `cookie` fields; join them with `"; "` first
    /// (RFC 9113 §8.2.3). Up to four `sealcast_node` cookies are tried; the first that
    /// verifies wins (a forged one cannot displace it, because it cannot verify).
    pub fn inspect(&self, cookie_header: &str, now: SystemTime) -> CookieCheck {
        let now = unix_secs(now);
        let mut outcome = CookieCheck::Absent;
        let ours = cookie_header
            .split(';')
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name.trim_matches(is_ows) == COOKIE_NAME).then(|| value.trim_matches(is_ows))
            })
            .take(MAX_CANDIDATES);
        for value in ours {
            match self.check_value(value, now) {
                Ok(sticky) => return CookieCheck::Valid(sticky),
                Err(rejection) => outcome = CookieCheck::Rejected(rejection),
            }
        }
        outcome
    }

    /// Whether a verified cookie has lived more than half its lifetime and should be
    /// issued again, so a viewer who keeps watching keeps its node past `Max-Age`.
    pub fn needs_refresh(&self, sticky: &Sticky, now: SystemTime) -> bool {
        unix_secs(now).saturating_sub(sticky.issued_unix_secs) > self.max_age_secs / 2
    }

    /// The cookie value (without the name) for `node` issued at `issued` Unix seconds.
    fn value(&self, node: &NodeId, issued: u64) -> String {
        let signed = format!("{VERSION}.{node}.{issued}");
        let mac = self.key.mac(signed.as_bytes());
        let mut value = String::with_capacity(signed.len() + 1 + MAC_HEX_LEN);
        value.push_str(&signed);
        value.push('.');
        push_hex(&mut value, &mac);
        value
    }

    fn check_value(&self, value: &str, now: u64) -> Result<Sticky, Rejection> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Rejection::Malformed);
        }
        let (signed, mac_hex) = value.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let mut parts = signed.split('.');
        let (Some(version), Some(node), Some(issued), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        if version != VERSION {
            return Err(Rejection::Malformed);
        }
        let node = NodeId::new(node).map_err(|_| Rejection::Malformed)?;
        let issued = parse_secs(issued).ok_or(Rejection::Malformed)?;
        let given = parse_hex_mac(mac_hex).ok_or(Rejection::Malformed)?;

        let expected = self.key.mac(signed.as_bytes());
        if !bool::from(expected.ct_eq(&given)) {
            return Err(Rejection::BadMac);
        }
        if issued > now.saturating_add(self.max_future_skew_secs) {
            return Err(Rejection::Future);
        }
        if now.saturating_sub(issued) > self.max_age_secs {
            return Err(Rejection::Stale);
        }
        Ok(Sticky {
            node,
            issued_unix_secs: issued,
        })
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Decimal digits without a leading zero (except `0` itself), so each time has one
/// spelling; at most 20 digits, and within `u64`.
fn parse_secs(s: &str) -> Option<u64> {
    let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let canonical = s == "0" || !s.starts_with('0');
    if !digits_only || !canonical || s.len() > MAX_TIME_DIGITS {
        return None;
    }
    s.parse().ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// Exactly 64 lowercase hex digits (uppercase is refused: one spelling per MAC).
fn parse_hex_mac(s: &str) -> Option<[u8; MAC_LEN]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if s.len() != MAC_HEX_LEN {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let (hi, lo) = (pair.first().copied()?, pair.get(1).copied()?);
        *byte = (nibble(hi)? << 4) | nibble(lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7u8; 32];

    fn cookies() -> StickyCookies {
        StickyCookies::new(CookieKey::new(&KEY).expect("32 bytes"))
    }

    fn node(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The `name=value` pair a browser sends back for a `Set-Cookie` value.
    fn pair(set_cookie: &str) -> &str {
        set_cookie.split(';').next().expect("split yields one item")
    }

    const T0: u64 = 1_700_000_000;

    #[test]
    fn set_cookie_carries_the_required_attributes() {
        let c = cookies();
        let set = c.issue(&node("broadcast1"), at(T0));
        assert!(set.starts_with("sealcast_node=v1.broadcast1.1700000000."));
        for attr in [
            "; Max-Age=14400",
            "; Path=/",
            "; Secure",
            "; HttpOnly",
            "; SameSite=Lax",
        ] {
            assert!(set.contains(attr), "{set} lacks {attr}");
        }
        let value = pair(&set).trim_start_matches("sealcast_node=");
        assert!(value.len() <= MAX_VALUE_LEN);
        assert!(value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    }

    #[test]
    fn found_among_other_cookies() {
        let c = cookies();
        let set = c.issue(&node("broadcast2"), at(T0));
        let header = format!("theme=dark;  {} ;lang=en", pair(&set));
        assert_eq!(c.verify(&header, at(T0 + 1)), Some(node("broadcast2")));
        assert_eq!(
            c.inspect("theme=dark; lang=en", at(T0)),
            CookieCheck::Absent
        );
        assert_eq!(c.inspect("", at(T0)), CookieCheck::Absent);
    }

    #[test]
    fn a_forged_cookie_does_not_hide_a_valid_one() {
        let c = cookies();
        let set = c.issue(&node("broadcast2"), at(T0));
        let forged = format!("sealcast_node=v1.broadcast1.{T0}.{}", "0".repeat(64));
        let header = format!("{forged}; {}", pair(&set));
        assert_eq!(c.verify(&header, at(T0)), Some(node("broadcast2")));
        assert_eq!(
            c.inspect(&forged, at(T0)),
            CookieCheck::Rejected(Rejection::BadMac)
        );
    }

    #[test]
    fn stale_cookies_are_refused_at_max_age_plus_one_second() {
        let c = cookies()
            .with_max_age(Duration::from_secs(60))
            .expect("valid");
        let header = c.issue(&node("broadcast1"), at(T0));
        let header = pair(&header);
        assert_eq!(c.verify(header, at(T0 + 60)), Some(node("broadcast1")));
        assert_eq!(
            c.inspect(header, at(T0 + 61)),
            CookieCheck::Rejected(Rejection::Stale)
        );
        assert_eq!(c.verify(header, at(T0 + 10_000_000)), None);
    }

    #[test]
    fn future_dated_cookies_are_refused_beyond_the_skew_allowance() {
        let c = cookies()
            .with_max_future_skew(Duration::from_secs(5))
            .expect("valid");
        let header = c.issue(&node("broadcast1"), at(T0 + 5));
        assert_eq!(c.verify(pair(&header), at(T0)), Some(node("broadcast1")));
        let header = c.issue(&node("broadcast1"), at(T0 + 6));
        assert_eq!(
            c.inspect(pair(&header), at(T0)),
            CookieCheck::Rejected(Rejection::Future)
        );
        let strict = cookies().with_max_future_skew(Duration::ZERO).expect("ok");
        let header = strict.issue(&node("broadcast1"), at(T0 + 1));
        assert_eq!(strict.verify(pair(&header), at(T0)), None);
    }

    #[test]
    fn another_key_is_a_forgery() {
        let ours = cookies();
        let theirs = StickyCookies::new(CookieKey::new(&[8u8; 32]).expect("32 bytes"));
        let header = theirs.issue(&node("broadcast1"), at(T0));
        assert_eq!(
            ours.inspect(pair(&header), at(T0)),
            CookieCheck::Rejected(Rejection::BadMac)
        );
    }

    #[test]
    fn malformed_values_are_refused_without_trust() {
        let c = cookies();
        let good = c.issue(&node("broadcast1"), at(T0));
        let good_value = pair(&good).trim_start_matches("sealcast_node=").to_owned();
        let mac = good_value.rsplit_once('.').expect("has a MAC").1.to_owned();
        let long = "a".repeat(MAX_VALUE_LEN + 1);
        let cases = [
            String::new(),
            "v1".into(),
            format!("v2.broadcast1.{T0}.{mac}"),
            format!("v1.broadcast1.{T0}"),
            format!("v1.broadcast1.0{T0}.{mac}"),
            format!("v1.broadcast1.+{T0}.{mac}"),
            format!("v1.broadcast1.{T0}.{}", mac.to_uppercase()),
            format!("v1.broadcast1.{T0}.{}", &mac[..63]),
            format!("v1.broadcast1.{T0}.{mac}0"),
            format!("v1..{T0}.{mac}"),
            format!("v1.-x.{T0}.{mac}"),
            format!("v1.broadcast1.extra.{T0}.{mac}"),
            format!("v1.broadcast1.99999999999999999999999.{mac}"),
            format!("\"{good_value}\""),
            long,
        ];
        for bad in cases {
            let header = format!("{COOKIE_NAME}={bad}");
            assert!(
                matches!(c.inspect(&header, at(T0)), CookieCheck::Rejected(_)),
                "{bad:?} was not refused"
            );
        }
        // The real one still passes, so the cases above fail for their own reasons.
        assert_eq!(
            c.verify(&format!("{COOKIE_NAME}={good_value}"), at(T0)),
            Some(node("broadcast1"))
        );
    }

    #[test]
    fn refresh_after_half_the_lifetime() {
        let c = cookies()
            .with_max_age(Duration::from_secs(100))
            .expect("valid");
        let sticky = Sticky {
            node: node("broadcast1"),
            issued_unix_secs: T0,
        };
        assert!(!c.needs_refresh(&sticky, at(T0 + 50)));
        assert!(c.needs_refresh(&sticky, at(T0 + 51)));
    }

    #[test]
    fn keys_and_lifetimes_are_validated() {
        assert!(matches!(
            CookieKey::new(&[1u8; 31]).err(),
            Some(LoadBalancerError::CookieKeyTooShort { len: 31, min: 32 })
        ));
        assert!(cookies().with_max_age(Duration::from_millis(999)).is_err());
        assert!(cookies()
            .with_max_age(StickyCookies::MAX_MAX_AGE + Duration::from_secs(1))
            .is_err());
        assert!(cookies()
            .with_max_future_skew(Duration::from_secs(301))
            .is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = CookieKey::new(b"0123456789abcdef0123456789abcdef").expect("32 bytes");
        let shown = format!("{key:?} {:?}", StickyCookies::new(key.clone()));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("48, 49"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    proptest! {
        #[test]
        fn issued_cookies_round_trip(
            id in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}",
            issued in 0u64..=4_000_000_000,
            age in 0u64..=14_400,
            key in proptest::collection::vec(any::<u8>(), 32..80),
        ) {
            let c = StickyCookies::new(CookieKey::new(&key).expect("long enough"));
            let id = node(&id);
            let set = c.issue(&id, at(issued));
            prop_assert!(pair(&set).len() <= COOKIE_NAME.len() + 1 + MAX_VALUE_LEN);
            let check = c.inspect(pair(&set), at(issued + age));
            prop_assert_eq!(check, CookieCheck::Valid(Sticky { node: id, issued_unix_secs: issued }));
        }

        #[test]
        fn any_single_bit_change_is_refused(
            id in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}",
            issued in 1_000_000_000u64..=4_000_000_000,
            index in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let c = cookies();
            let set = c.issue(&node(&id), at(issued));
            let mut bytes = pair(&set).as_bytes().to_vec();
            let i = index.index(bytes.len());
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << bit;
            }
            // A flip that leaves UTF-8 cannot even reach us as a header `&str`.
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert_eq!(c.verify(&changed, at(issued)), None, "{}", changed);
                let amid = format!("a=b; {changed}; c=d");
                prop_assert_eq!(c.verify(&amid, at(issued)), None);
            }
        }
    }
}

//! Playback tokens: what opens a private stream to a viewer.
//!
//! A token is a compact JWT (RFC 7519) signed with HMAC-SHA256 (`HS256`) under the
//! cluster's playback key (`keys/playback-key`, 32 random bytes, its own file: it signs
//! nothing else, and no media key can sign a token). A standard format on purpose: an
//! operator's own backend mints the same tokens with any JWT library, from the same key.
//!
//! ```text
//! base64url({"alg":"HS256","typ":"JWT"}) . base64url(claims) . base64url(HMAC-SHA256)
//! claims: sub = stream, exp = expiry (unix s), optional iat, nbf, jti,
//!         cidr = client network ("203.0.113.0/24", "2001:db8::/48" or one address),
//!         rec = true to open the stream's recordings (/vod/) too
//! ```
//!
//! Verification is strict and cheap, in this order: at most [`MAX_TOKEN_LEN`] bytes before
//! anything is decoded; three canonical base64url parts without padding (so every token
//! has exactly one spelling, and a changed byte changes what the MAC covers or the MAC
//! itself); the MAC over `header.payload`, compared in constant time, before any JSON is
//! parsed (without the key nobody reaches the parser); then the header must say `HS256`
//! and nothing else (no `none`, no algorithm switch, no key in the header); then the claims,
//! with [`CLOCK_SKEW_SECS`] of tolerance on `exp` and `nbf`. Unknown claims are ignored
//! (backends add `iss`, `aud`), unknown header fields are refused.
//!
//! [`TokenVerifier`] is what the load balancer and the nodes hold: the key and a bounded
//! cache of tokens that verified, keyed by the SHA-256 of the token (so a lookup's timing
//! says nothing about a valid token's bytes), each entry dropped once its token expires.
//! [`Claims::grants`] then says whether a token opens one request (its stream, the client
//! address, live or recording). [`query_token`] reads the token from a query string, the
//! one parser both sides use, so the load balancer and a node never disagree about which
//! token a request carries.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::StreamName;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::CertsError;

/// Length of the playback key (`keys/playback-key` holds it as 64 hex digits).
pub const PLAYBACK_KEY_LEN: usize = 32;
/// Longest token looked at; a longer one is refused before anything is decoded. Tokens
/// minted here are 150 to 450 bytes; the bound leaves room for a backend's own claims
/// (`iss`, `aud`) while a playlist request with the token and every `_HLS_` parameter stays
/// within the 1 KiB a playlist query may have (`domain::hls::MAX_QUERY`).
pub const MAX_TOKEN_LEN: usize = 768;
/// Tolerance on `exp` and `nbf` for clocks that disagree a little.
pub const CLOCK_SKEW_SECS: u64 = 30;
/// Longest `jti` accepted (it is echoed to the `on_play` hook).
pub const MAX_JTI_LEN: usize = 128;
/// Verified tokens a [`TokenVerifier`] remembers at most.
pub const DEFAULT_CACHE_ENTRIES: usize = 65_536;
/// The query parameter that carries a token.
pub const QUERY_PARAMETER: &str = "token";

/// The header every token this module mints carries (RFC 7515 §4.1).
const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// The cluster's playback key. Holds the HMAC state derived from the key, never shown by
/// `Debug`.
#[derive(Clone)]
pub struct PlaybackKey(Hmac<Sha256>);

impl PlaybackKey {
    /// A key from exactly [`PLAYBACK_KEY_LEN`] secret random bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CertsError> {
        let wrong = CertsError::Malformed {
            what: "playback key",
            reason: "not 32 bytes",
        };
        if bytes.len() != PLAYBACK_KEY_LEN {
            return Err(wrong);
        }
        Hmac::<Sha256>::new_from_slice(bytes)
            .map(Self)
            .map_err(|_| wrong)
    }

    /// A token carrying `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(HEADER);
        token.push('.');
        // Serializing plain fields into a Vec cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mac = self.mac(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut token);
        token
    }

    /// The claims of `token` if it is one of ours and valid at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenRefusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenRefusal::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRefusal::Malformed);
        };
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenRefusal::Malformed)?;
        let signed = &token[..header.len() + 1 + payload.len()];
        let mut check = self.0.clone();
        check.update(signed.as_bytes());
        // Constant time (`subtle` inside `hmac`); a MAC of another length is refused too.
        check
            .verify_slice(&mac)
            .map_err(|_| TokenRefusal::BadSignature)?;
        // Only now, with the key's word for these bytes, is any JSON parsed.
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenRefusal::Malformed)?;
        let header: Header =
            serde_json::from_slice(&header).map_err(|_| TokenRefusal::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenRefusal::Algorithm);
        }
        if header.typ.is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
            return Err(TokenRefusal::Malformed);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRefusal::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| TokenRefusal::Malformed)?;
        if claims.jti.as_ref().is_some_and(|j| j.len() > MAX_JTI_LEN) {
            return Err(TokenRefusal::Malformed);
        }
        if now > claims.exp.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TokenRefusal::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECS))
        {
            return Err(TokenRefusal::NotYetValid);
        }
        Ok(claims)
    }

    fn mac(&self, signed: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(signed);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for PlaybackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaybackKey(<redacted>)")
    }
}

/// The JOSE header, as strict as a JWT library allows: `alg`, optionally `typ` and `kid`
/// (ignored), nothing else (no `jwk`, `jku`, `x5u` or `crit` to steer verification).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // accepted for backends that name their keys; one key here
    kid: Option<String>,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The stream it opens.
    pub sub: StreamName,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// When it was minted, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// An id the minting side chose (the `on_play` hook sees it; it never sees the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The client network the token is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<ClientNetwork>,
    /// Whether it opens the stream's recordings as well as the live stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rec: bool,
}

/// What a request asks of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Anything under `/live/{stream}/`.
    Live,
    /// Anything under `/vod/{stream}/`.
    Recording,
}

impl Claims {
    /// Claims for `stream` until `exp`, issued at `iat`, bound to nothing else.
    pub fn new(stream: StreamName, iat: u64, exp: u64) -> Self {
        Claims {
            sub: stream,
            exp,
            iat: Some(iat),
            nbf: None,
            jti: None,
            cidr: None,
            rec: false,
        }
    }

    /// Whether these (verified) claims open `resource` of `stream` to `client`.
    pub fn grants(
        &self,
        stream: &StreamName,
        client: IpAddr,
        resource: Resource,
    ) -> Result<(), AccessRefusal> {
        if &self.sub != stream {
            return Err(AccessRefusal::WrongStream);
        }
        if self.cidr.as_ref().is_some_and(|n| !n.contains(client)) {
            return Err(AccessRefusal::WrongAddress);
        }
        if resource == Resource::Recording && !self.rec {
            return Err(AccessRefusal::NoRecordings);
        }
        Ok(())
    }
}

/// Why a token is no token of ours, or no longer one: the request is not authenticated
/// (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Longer than [`MAX_TOKEN_LEN`].
    TooLong,
    /// Not three canonical base64url parts of the expected JSON, or an ambiguous query.
    Malformed,
    /// The MAC does not verify under the playback key.
    BadSignature,
    /// A header naming another algorithm than `HS256`.
    Algorithm,
    /// Past `exp` (and the skew).
    Expired,
    /// Before `nbf` (less the skew).
    NotYetValid,
}

impl TokenRefusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            TokenRefusal::TooLong => "too_long",
            TokenRefusal::Malformed => "malformed",
            TokenRefusal::BadSignature => "bad_signature",
            TokenRefusal::Algorithm => "algorithm",
            TokenRefusal::Expired => "expired",
            TokenRefusal::NotYetValid => "not_yet_valid",
        }
    }
}

/// Why a valid token does not open a request: the client is known but not allowed (HTTP
/// 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// The token is for another stream.
    WrongStream,
    /// The client is outside the token's network.
    WrongAddress,
    /// A recording asked for with a token that opens only the live stream.
    NoRecordings,
}

impl AccessRefusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            AccessRefusal::WrongStream => "wrong_stream",
            AccessRefusal::WrongAddress => "wrong_address",
            AccessRefusal::NoRecordings => "no_recordings",
        }
    }
}

/// The token a query string carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryToken<'a> {
    /// No `token` parameter.
    Absent,
    /// Exactly one, as given (a JWT needs no percent-encoding; an encoded one is malformed).
    Present(&'a str),
    /// More than one `token` parameter: refused, so that no two readers pick different ones.
    Ambiguous,
}

/// Reads `token=…` from a request's query string (`None`: no query).
pub fn query_token(query: Option<&str>) -> QueryToken<'_> {
    let Some(query) = query else {
        return QueryToken::Absent;
    };
    let mut found = QueryToken::Absent;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == QUERY_PARAMETER {
            found = match found {
                QueryToken::Absent => QueryToken::Present(value),
                _ => return QueryToken::Ambiguous,
            };
        }
    }
    found
}

/// A client network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl ClientNetwork {
    /// Whether `ip` is inside. An IPv4 client seen as an IPv4-mapped IPv6 address is
    /// judged as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

impl FromStr for ClientNetwork {
    type Err = CertsError;

    fn from_str(s: &str) -> Result<Self, CertsError> {
        let bad = |reason| CertsError::Malformed {
            what: "client network",
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let canonical = p == "0" || (!p.starts_with('0') && p.len() <= 3);
                if !canonical || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("not a prefix length"));
                }
                p.parse::<u8>().map_err(|_| bad("not a prefix length"))?
            }
        };
        if prefix > max {
            return Err(bad("prefix longer than the address"));
        }
        Ok(ClientNetwork { addr, prefix })
    }
}

impl fmt::Display for ClientNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for ClientNetwork {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClientNetwork {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of a token: the key of a [`TokenCache`].
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A bounded map from token digests to what was learnt about the token, each entry
/// forgotten at its `until` (unix seconds). Sans-IO: the time is passed in.
///
/// When full, a new entry takes the place of the oldest one inserted (a ring of slots in
/// insertion order, with a hand at the oldest): each insert touches at most one other
/// entry, however many are held, so a full cache costs no more than an empty one (a sweep
/// of the whole map under the lock at every new token, as a full map once did, would make
/// a large audience's newcomers each pay for all the others). An entry found expired is
/// dropped when asked for; one never asked for again leaves when the hand comes round.
/// First in, first out rather than least recently used: what is cached here is cheap to
/// learn again (an HMAC, a hook's answer), and only a verified token ever gets an entry.
#[derive(Debug)]
pub struct TokenCache<V> {
    /// Digest → (valid until, value, its slot in `ring`).
    entries: HashMap<[u8; 32], (u64, V, usize)>,
    /// The digest inserted into each slot, in insertion order round the ring (an entry
    /// dropped or moved to another slot since leaves its old slot's digest behind, which
    /// the hand then skips).
    ring: Vec<[u8; 32]>,
    /// The oldest slot: the next one reused once the ring is full.
    hand: usize,
    max_entries: usize,
    /// Entries an insert looked at besides its own (how tests see that an insert's work
    /// stays bounded).
    touched: u64,
}

impl<V: Clone> TokenCache<V> {
    /// An empty cache of at most `max_entries` (at least one).
    pub fn new(max_entries: usize) -> Self {
        TokenCache {
            entries: HashMap::new(),
            ring: Vec::new(),
            hand: 0,
            max_entries: max_entries.max(1),
            touched: 0,
        }
    }

    /// What is remembered about `digest`, if it is still valid at `now`; an entry past its
    /// time is dropped.
    pub fn get(&mut self, digest: &[u8; 32], now: u64) -> Option<V> {
        match self.entries.get(digest) {
            Some((until, value, _)) if now <= *until => Some(value.clone()),
            Some(_) => {
                self.entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` for `digest` until `until` (in place of the oldest entry when
    /// full); false if `until` has passed already.
    pub fn insert(&mut self, digest: [u8; 32], until: u64, value: V, now: u64) -> bool {
        if until < now {
            return false;
        }
        if let Some(entry) = self.entries.get_mut(&digest) {
            entry.0 = until;
            entry.1 = value;
            return true;
        }
        let slot = if self.ring.len() < self.max_entries {
            self.ring.push(digest);
            self.ring.len() - 1
        } else {
            let slot = self.hand;
            self.hand = (slot + 1) % self.max_entries;
            let oldest = std::mem::replace(&mut self.ring[slot], digest);
            self.touched += 1;
            // Only if that entry still lives in this slot (not dropped, not re-inserted).
            if self.entries.get(&oldest).is_some_and(|e| e.2 == slot) {
                self.entries.remove(&oldest);
            }
            slot
        };
        self.entries.insert(digest, (until, value, slot));
        true
    }

    /// How many entries are held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many other entries inserts have looked at, in all.
    pub fn touched(&self) -> u64 {
        self.touched
    }
}

/// The playback key with a cache of the tokens it verified: what the load balancer and the
/// nodes check tokens with.
#[derive(Debug)]
pub struct TokenVerifier {
    key: PlaybackKey,
    cache: Mutex<TokenCache<Arc<Claims>>>,
}

impl TokenVerifier {
    /// A verifier remembering at most [`DEFAULT_CACHE_ENTRIES`] tokens.
    pub fn new(key: PlaybackKey) -> Self {
        Self::with_capacity(key, DEFAULT_CACHE_ENTRIES)
    }

    /// A verifier remembering at most `max_entries` tokens.
    pub fn with_capacity(key: PlaybackKey, max_entries: usize) -> Self {
        TokenVerifier {
            key,
            cache: Mutex::new(TokenCache::new(max_entries)),
        }
    }

    /// The key, to mint tokens.
    pub fn key(&self) -> &PlaybackKey {
        &self.key
    }

    /// The claims of `token` at `now` (unix seconds): from the cache when it verified
    /// before, else verified and remembered until it expires.
    pub fn check(&self, token: &str, now: u64) -> Result<Arc<Claims>, TokenRefusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenRefusal::TooLong);
        }
        let digest = token_digest(token);
        if let Some(claims) = self.lock().get(&digest, now) {
            if claims
                .nbf
                .is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECS))
            {
                return Err(TokenRefusal::NotYetValid);
            }
            return Ok(claims);
        }
        let claims = Arc::new(self.key.verify(token, now)?);
        let until = claims.exp.saturating_add(CLOCK_SKEW_SECS);
        self.lock().insert(digest, until, Arc::clone(&claims), now);
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenCache<Arc<Claims>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn key() -> PlaybackKey {
        PlaybackKey::new(&[7; 32]).expect("32 bytes")
    }

    fn stream(name: &str) -> StreamName {
        StreamName::new(name).expect("valid")
    }

    fn claims() -> Claims {
        Claims {
            jti: Some("t-1".into()),
            cidr: Some("203.0.113.0/24".parse().expect("network")),
            rec: true,
            ..Claims::new(stream("town-hall"), NOW, NOW + 3600)
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token of `header` and `payload` JSON with a valid MAC under `key()`.
    fn signed(header: &str, payload: &str) -> String {
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let mac = key().mac(signed.as_bytes());
        format!("{signed}.{}", b64(&mac))
    }

    #[test]
    fn tokens_round_trip() {
        let token = key().mint(&claims());
        assert!(token.len() < 300, "{}", token.len());
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
        assert_eq!(key().verify(&token, NOW), Ok(claims()));
        let minimal = Claims::new(stream("s"), NOW, NOW + 1);
        assert_eq!(key().verify(&key().mint(&minimal), NOW), Ok(minimal));
        // Another key's token is refused.
        let other = PlaybackKey::new(&[8; 32]).expect("key");
        assert_eq!(other.verify(&token, NOW), Err(TokenRefusal::BadSignature));
    }

    /// What a JWT library writes (RFC 7515 A.1 style, with `kid` and extra claims) is
    /// taken, whatever the order of fields.
    #[test]
    fn other_minters_tokens_are_taken() {
        let token = signed(
            r#"{"typ":"JWT","kid":"cluster","alg":"HS256"}"#,
            r#"{"iss":"backend","exp":1800003600,"sub":"town-hall","aud":"sealcast"}"#,
        );
        let claims = key().verify(&token, NOW).expect("valid");
        assert_eq!(claims.sub, stream("town-hall"));
        assert_eq!(claims.exp, NOW + 3600);
        assert!(!claims.rec && claims.cidr.is_none());
    }

    #[test]
    fn only_hs256_is_accepted() {
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"hs256"}"#,
        ] {
            let token = signed(header, r#"{"sub":"s","exp":1800003600}"#);
            assert_eq!(
                key().verify(&token, NOW),
                Err(TokenRefusal::Algorithm),
                "{header}"
            );
        }
        for header in [
            r#"{"alg":"HS256","jwk":{}}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","typ":"JOSE+JSON"}"#,
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"{"typ":"JWT"}"#,
            "not json",
        ] {
            let token = signed(header, r#"{"sub":"s","exp":1800003600}"#);
            assert_eq!(
                key().verify(&token, NOW),
                Err(TokenRefusal::Malformed),
                "{header}"
            );
        }
        // `alg: none` with an empty signature never reaches the header: no MAC, no entry.
        let unsigned = format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(br#"{"sub":"s","exp":1800003600}"#)
        );
        assert_eq!(
            key().verify(&unsigned, NOW),
            Err(TokenRefusal::BadSignature)
        );
    }

    #[test]
    fn claims_are_checked() {
        for payload in [
            r#"{"exp":1800003600}"#,
            r#"{"sub":"s"}"#,
            r#"{"sub":"../x","exp":1800003600}"#,
            r#"{"sub":"s","exp":-1}"#,
            r#"{"sub":"s","exp":"1800003600"}"#,
            r#"{"sub":"s","exp":1800003600,"cidr":"10.0.0.0/33"}"#,
            r#"{"sub":"s","exp":1800003600,"rec":"yes"}"#,
            r#"{"sub":"s","sub":"t","exp":1800003600}"#,
        ] {
            let token = signed(r#"{"alg":"HS256"}"#, payload);
            assert_eq!(
                key().verify(&token, NOW),
                Err(TokenRefusal::Malformed),
                "{payload}"
            );
        }
        let long_jti = format!(
            r#"{{"sub":"s","exp":1800003600,"jti":"{}"}}"#,
            "j".repeat(129)
        );
        assert_eq!(
            key().verify(&signed(r#"{"alg":"HS256"}"#, &long_jti), NOW),
            Err(TokenRefusal::Malformed)
        );
    }

    #[test]
    fn expiry_and_not_before_have_a_small_skew() {
        let at = |exp: u64| key().mint(&Claims::new(stream("s"), NOW - 10, exp));
        assert!(key().verify(&at(NOW), NOW + CLOCK_SKEW_SECS).is_ok());
        assert_eq!(
            key().verify(&at(NOW), NOW + CLOCK_SKEW_SECS + 1),
            Err(TokenRefusal::Expired)
        );
        assert_eq!(key().verify(&at(0), NOW), Err(TokenRefusal::Expired));
        assert!(key().verify(&at(u64::MAX), NOW).is_ok());
        let early = Claims {
            nbf: Some(NOW + 100),
            ..Claims::new(stream("s"), NOW, NOW + 3600)
        };
        let token = key().mint(&early);
        assert_eq!(key().verify(&token, NOW), Err(TokenRefusal::NotYetValid));
        assert!(key().verify(&token, NOW + 100 - CLOCK_SKEW_SECS).is_ok());
    }

    #[test]
    fn oversized_and_misshapen_tokens_are_refused_before_decoding() {
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(key().verify(&huge, NOW), Err(TokenRefusal::TooLong));
        let token = key().mint(&claims());
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{token}."),
            format!("{token}.x"),
            format!("{token}="),
            format!(".{token}"),
            token.replace('.', ".."),
        ] {
            assert!(key().verify(&bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_follow_stream_address_and_recordings() {
        let c = claims();
        let inside: IpAddr = "203.0.113.9".parse().expect("ip");
        let outside: IpAddr = "198.51.100.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().expect("ip");
        assert_eq!(
            c.grants(&stream("town-hall"), inside, Resource::Live),
            Ok(())
        );
        assert_eq!(
            c.grants(&stream("town-hall"), mapped, Resource::Recording),
            Ok(())
        );
        assert_eq!(
            c.grants(&stream("other"), inside, Resource::Live),
            Err(AccessRefusal::WrongStream)
        );
        assert_eq!(
            c.grants(&stream("town-hall"), outside, Resource::Live),
            Err(AccessRefusal::WrongAddress)
        );
        let live_only = Claims { rec: false, ..c };
        assert_eq!(
            live_only.grants(&stream("town-hall"), inside, Resource::Recording),
            Err(AccessRefusal::NoRecordings)
        );
    }

    #[test]
    fn networks_parse_strictly_and_match_by_prefix() {
        let net: ClientNetwork = "2001:db8::/32".parse().expect("v6");
        assert!(net.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!net.contains("2001:db9::5".parse().expect("ip")));
        assert!(!net.contains("10.0.0.1".parse().expect("ip")));
        let one: ClientNetwork = "10.1.2.3".parse().expect("one address");
        assert_eq!(one.to_string(), "10.1.2.3/32");
        assert!(one.contains("10.1.2.3".parse().expect("ip")));
        assert!(!one.contains("10.1.2.4".parse().expect("ip")));
        let all: ClientNetwork = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains("8.8.8.8".parse().expect("ip")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/08",
            "10.0.0/8",
            "::/129",
            "x/1",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<ClientNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_query_names_one_token_or_none() {
        assert_eq!(query_token(None), QueryToken::Absent);
        assert_eq!(query_token(Some("_HLS_msn=4")), QueryToken::Absent);
        assert_eq!(query_token(Some("token=abc")), QueryToken::Present("abc"));
        assert_eq!(
            query_token(Some("_HLS_msn=4&token=a.b.c&_HLS_part=1")),
            QueryToken::Present("a.b.c")
        );
        assert_eq!(query_token(Some("token")), QueryToken::Present(""));
        assert_eq!(query_token(Some("token=a&token=a")), QueryToken::Ambiguous);
        assert_eq!(query_token(Some("xtoken=a&tokens=b")), QueryToken::Absent);
    }

    #[test]
    fn the_cache_remembers_until_expiry_and_stays_bounded() {
        let mut cache = TokenCache::new(2);
        assert!(cache.insert([1; 32], NOW + 10, "a", NOW));
        assert!(cache.insert([2; 32], NOW + 20, "b", NOW));
        assert_eq!(cache.get(&[1; 32], NOW + 10), Some("a"));
        assert_eq!(cache.get(&[1; 32], NOW + 11), None);
        assert_eq!(cache.len(), 1, "the expired entry went when asked for");
        // Full: a newcomer takes the oldest slot's place.
        assert!(cache.insert([3; 32], NOW + 30, "c", NOW + 5));
        assert!(cache.insert([4; 32], NOW + 30, "d", NOW + 5));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&[2; 32], NOW + 5), None, "the oldest went");
        assert_eq!(cache.get(&[3; 32], NOW + 5), Some("c"));
        assert_eq!(cache.get(&[4; 32], NOW + 5), Some("d"));
        // Inserting again updates in place.
        assert!(cache.insert([4; 32], NOW + 40, "e", NOW + 5));
        assert_eq!(cache.get(&[4; 32], NOW + 35), Some("e"));
        assert_eq!(cache.len(), 2);
        assert!(!cache.insert([5; 32], NOW, "expired", NOW + 1));
    }

    /// Issue 45 item 12: once the cache is full, each newcomer costs the same bounded work
    /// (at most one other entry looked at), however many entries are held and whether
    /// they are live or not; the cache a full map once swept whole at every newcomer.
    #[test]
    fn a_full_cache_costs_each_newcomer_one_entry() {
        const CAPACITY: usize = 4096;
        let mut cache = TokenCache::new(CAPACITY);
        let digest = |n: usize| -> [u8; 32] {
            let mut d = [0; 32];
            d[..8].copy_from_slice(&(n as u64).to_be_bytes());
            d
        };
        for n in 0..CAPACITY {
            assert!(cache.insert(digest(n), NOW + 3600, n, NOW));
        }
        assert_eq!(cache.touched(), 0, "room for everyone so far");
        for n in CAPACITY..CAPACITY * 3 {
            let before = cache.touched();
            assert!(cache.insert(digest(n), NOW + 3600, n, NOW + 1));
            assert!(cache.touched() - before <= 1, "insert {n} touched more");
            assert!(cache.len() <= CAPACITY);
            assert_eq!(cache.get(&digest(n), NOW + 1), Some(n));
        }
        // Past everyone's expiry: still one entry per newcomer, and nothing stale answers.
        let later = NOW + 3601;
        assert_eq!(cache.get(&digest(CAPACITY * 3 - 1), later), None);
        let before = cache.touched();
        assert!(cache.insert(digest(0), later + 10, 0, later));
        assert!(cache.touched() - before <= 1);
        assert_eq!(
            cache.len(),
            CAPACITY - 1,
            "one dropped when asked, one replaced"
        );
    }

    proptest! {
        /// Against a model with no bound: whatever is inserted and asked for, an answer is
        /// always what was last inserted for that digest and still valid, the cache never
        /// holds more than its capacity, and each insert touches at most one other entry.
        #[test]
        fn the_cache_answers_like_a_model_within_its_bound(
            ops in proptest::collection::vec((0u8..12, 0u64..20, any::<bool>()), 1..200),
        ) {
            let mut cache = TokenCache::new(5);
            let mut model: HashMap<u8, (u64, u64)> = HashMap::new();
            for (i, (key, at, insert)) in ops.into_iter().enumerate() {
                let value = i as u64;
                let now = NOW + at / 2;
                if insert {
                    let before = cache.touched();
                    prop_assert!(cache.insert([key; 32], NOW + at, value, now) || NOW + at < now);
                    prop_assert!(cache.touched() - before <= 1);
                    if NOW + at >= now {
                        model.insert(key, (NOW + at, value));
                    }
                } else if let Some(got) = cache.get(&[key; 32], now) {
                    let expected = model.get(&key).filter(|(until, _)| now <= *until);
                    prop_assert_eq!(Some(got), expected.map(|e| e.1));
                }
                prop_assert!(cache.len() <= 5);
            }
        }
    }

    #[test]
    fn the_verifier_caches_only_what_verified() {
        let verifier = TokenVerifier::with_capacity(key(), 4);
        let token = key().mint(&claims());
        assert_eq!(*verifier.check(&token, NOW).expect("valid"), claims());
        assert_eq!(verifier.lock().len(), 1);
        assert_eq!(*verifier.check(&token, NOW + 1).expect("cached"), claims());
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(verifier.check(&forged, NOW).is_err());
        assert!(verifier.check(&"a".repeat(MAX_TOKEN_LEN + 1), NOW).is_err());
        assert_eq!(verifier.lock().len(), 1, "nothing refused is remembered");
        // Past expiry the cached entry no longer answers (and goes): verified again, and
        // refused.
        assert_eq!(
            verifier.check(&token, NOW + 3600 + CLOCK_SKEW_SECS + 1),
            Err(TokenRefusal::Expired)
        );
        assert_eq!(verifier.lock().len(), 0);
    }

    proptest! {
        /// Changing any one byte of a valid token, to any other value, makes it invalid.
        #[test]
        fn every_single_byte_alteration_is_refused(at in 0usize..1000, value in any::<u8>()) {
            let token = key().mint(&claims());
            let at = at % token.len();
            let mut bytes = token.clone().into_bytes();
            prop_assume!(bytes[at] != value);
            bytes[at] = value;
            if let Ok(altered) = String::from_utf8(bytes) {
                prop_assert!(key().verify(&altered, NOW).is_err(), "{altered}");
            }
        }

        /// Any claims round-trip, and verification never panics on any text.
        #[test]
        fn claims_round_trip(
            exp in NOW..u64::MAX,
            rec in any::<bool>(),
            prefix in 0u8..=32,
            jti in proptest::option::of("[a-zA-Z0-9_-]{0,128}"),
        ) {
            let c = Claims {
                jti,
                rec,
                cidr: Some(format!("192.0.2.0/{prefix}").parse().expect("network")),
                ..Claims::new(stream("s"), NOW, exp)
            };
            prop_assert_eq!(key().verify(&key().mint(&c), NOW), Ok(c));
        }

        #[test]
        fn any_text_is_refused_without_a_panic(text in ".{0,300}") {
            prop_assert!(key().verify(&text, NOW).is_err());
        }
    }
}

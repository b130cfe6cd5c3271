//! Minting playback tokens for private streams (issue 34): the one place the CLI's
//! `sealcast tokens mint` and the API's `POST /api/v1/streams/{name}/tokens` make them, so
//! both say the same thing. The token format and its checks are `certs::tokens`.

use std::time::Duration;

use certs::tokens::{Claims, ClientNetwork, PlaybackKey, QUERY_PARAMETER};
use domain::StreamName;
use rand_core::RngCore;
use serde::Serialize;

/// The longest a token may live: a leaked token should not outlive a year of events.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(366 * 86_400);

/// What a token is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The stream it opens.
    pub stream: StreamName,
    /// How long it is valid, from now.
    pub ttl: Duration,
    /// The client network it is bound to, if any.
    pub ip: Option<ClientNetwork>,
    /// Whether it opens the stream's recordings too.
    pub recordings: bool,
}

/// A minted token and where it plays. Holds the token: a secret, printed or answered once,
/// never logged (no `Debug` of the token).
#[derive(Clone, Serialize)]
pub struct MintedToken {
    /// The token (a JWT).
    pub token: String,
    /// Its id (`jti`), which the `on_play` hook sees instead of the token.
    pub id: String,
    /// When it expires, unix seconds.
    pub expires_at: u64,
    /// The player link, relative to the player's origin: `/#live/{stream}?token=…`.
    pub player: String,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Mints `request` under `key` at `now` (unix seconds). `None` for a TTL of zero or over
/// [`MAX_TOKEN_TTL`].
pub fn mint(key: &PlaybackKey, request: &TokenRequest, now: u64) -> Option<MintedToken> {
    if request.ttl.is_zero() || request.ttl > MAX_TOKEN_TTL {
        return None;
    }
    let expires_at = now.saturating_add(request.ttl.as_secs().max(1));
    let mut id = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut id);
    let id = hex::encode(id);
    let mut claims = Claims::new(request.stream.clone(), now, expires_at);
    claims.jti = Some(id.clone());
    claims.cidr = request.ip;
    claims.rec = request.recordings;
    let token = key.mint(&claims);
    let player = format!("/#live/{}?{QUERY_PARAMETER}={token}", request.stream);
    Some(MintedToken {
        token,
        id,
        expires_at,
        player,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_say_what_was_asked() {
        let key = PlaybackKey::new(&[7; 32]).expect("key");
        let request = TokenRequest {
            stream: StreamName::new("town-hall").expect("name"),
            ttl: Duration::from_secs(7200),
            ip: Some("198.51.100.0/24".parse().expect("network")),
            recordings: true,
        };
        let minted = mint(&key, &request, 1_000).expect("minted");
        assert_eq!(minted.expires_at, 8_200);
        assert!(minted.player.starts_with("/#live/town-hall?token="));
        assert!(minted.player.ends_with(&minted.token));
        let claims = key.verify(&minted.token, 1_001).expect("verifies");
        assert_eq!(claims.sub, request.stream);
        assert_eq!(claims.cidr, request.ip);
        assert!(claims.rec);
        assert_eq!(claims.jti.as_deref(), Some(minted.id.as_str()));
        assert!(!format!("{minted:?}").contains(&minted.token));
        let zero = TokenRequest {
            ttl: Duration::ZERO,
            ..request.clone()
        };
        assert!(mint(&key, &zero, 1_000).is_none());
        let long = TokenRequest {
            ttl: MAX_TOKEN_TTL + Duration::from_secs(1),
            ..request
        };
        assert!(mint(&key, &long, 1_000).is_none());
    }
}

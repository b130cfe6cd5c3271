//! What the load balancer decides about a request before any node spends anything on it:
//! the client's request budget ([`crate::limits`]) and, for a request that carries a
//! playback token, the token itself.
//!
//! The load balancer checks every token it sees under a stream's tree (`/live/{stream}/`,
//! `/vod/{stream}/`): its signature, expiry, that it was minted for the stream of the path,
//! the client network it is bound to (with the client address as the load balancer sees
//! it, the real one), and that it opens recordings for `/vod/`. A bad token is refused here
//! (401 or 403). It does **not** know which streams are private: that comes from events
//! only the ingests sign and only the nodes take, and the load balancer holds neither them
//! nor the catalog. So a request without a token is forwarded, and a private stream's node
//! refuses it with exactly what a stream that does not exist gets (404, passed through: a
//! refusal must not tell that a private stream exists); such requests cost a node one
//! lookup in memory and are bounded, like every request, by the client's budget. Tokens
//! are checked alike for every stream, existing or not, private or not, so a token's
//! refusal here says nothing about a stream either.

use domain::time::WallClock;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use certs::tokens::{query_token, QueryToken, Resource, TokenVerifier};
use domain::paths::StreamTree;

use crate::limits::{retry_after_secs, Budget};
use crate::metrics::LbMetrics;

/// Why the load balancer answers a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over the client's request budget: 429, retry after this many seconds.
    Budget {
        /// Seconds until the client has budget again.
        retry_after: u64,
    },
    /// A token that is not valid: 401.
    BadToken(&'static str),
    /// A valid token that does not open this request: 403.
    NotGranted(&'static str),
}

impl Refusal {
    /// The status and the one-sentence message of the answer.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Refusal::Budget { .. } => (429, "too many requests from this address"),
            Refusal::BadToken(_) => (401, "a valid playback token is required"),
            Refusal::NotGranted(_) => (403, "this playback token does not open this"),
        }
    }
}

/// The load balancer's own checks of a request.
#[derive(Debug, Default)]
pub struct Gate {
    /// Requests per client; `None`: no budget.
    pub requests: Option<Budget>,
    /// The playback key; `None`: tokens are left to the nodes.
    pub tokens: Option<Arc<TokenVerifier>>,
}

impl Gate {
    /// Whether `path?query` from `client` may go on to a node.
    pub fn admit(
        &self,
        path: &str,
        query: Option<&str>,
        client: IpAddr,
        metrics: &LbMetrics,
    ) -> Result<(), Refusal> {
        if let Some(budget) = &self.requests {
            if let Err(wait) = budget.take(client, Instant::now()) {
                metrics.limited("request");
                return Err(Refusal::Budget {
                    retry_after: retry_after_secs(wait),
                });
            }
        }
        let Some(verifier) = &self.tokens else {
            return Ok(());
        };
        let Some(tree) = StreamTree::of(path) else {
            return Ok(());
        };
        let token = match query_token(query) {
            QueryToken::Absent => return Ok(()),
            QueryToken::Present(token) => token,
            QueryToken::Ambiguous => {
                metrics.token_refused("malformed");
                return Err(Refusal::BadToken("malformed"));
            }
        };
        let claims = verifier
            .check(token, WallClock.unix_secs())
            .map_err(|why| {
                metrics.token_refused(why.label());
                Refusal::BadToken(why.label())
            })?;
        let resource = match tree {
            StreamTree::Live(_) => Resource::Live,
            StreamTree::Recording(..) => Resource::Recording,
        };
        claims
            .grants(tree.stream(), client, resource)
            .map_err(|why| {
                metrics.token_refused(why.label());
                Refusal::NotGranted(why.label())
            })
    }
}

#[cfg(test)]
mod tests {
    use certs::tokens::{Claims, PlaybackKey};
    use domain::StreamName;

    use super::*;
    use crate::limits::Rate;

    fn gate() -> (Gate, PlaybackKey) {
        let key = PlaybackKey::new(&[3; 32]).expect("key");
        let gate = Gate {
            requests: Some(Budget::new(Rate::new(1, 3).expect("rate"), 100)),
            tokens: Some(Arc::new(TokenVerifier::new(key.clone()))),
        };
        (gate, key)
    }

    #[test]
    fn tokens_are_checked_against_the_path_and_the_client() {
        let (gate, key) = gate();
        let m = LbMetrics::default();
        let now = WallClock.unix_secs();
        let stream = StreamName::new("town-hall").expect("valid");
        let token = key.mint(&Claims::new(stream.clone(), now, now + 60));
        let client: IpAddr = "203.0.113.5".parse().expect("ip");
        let q = format!("token={token}");
        let gate = Gate {
            requests: None,
            ..gate
        };
        assert_eq!(
            gate.admit("/live/town-hall/master.m3u8", Some(&q), client, &m),
            Ok(())
        );
        assert_eq!(
            gate.admit("/live/other/master.m3u8", Some(&q), client, &m),
            Err(Refusal::NotGranted("wrong_stream"))
        );
        assert_eq!(
            gate.admit(
                "/vod/town-hall/00000000000000ff/master.m3u8",
                Some(&q),
                client,
                &m
            ),
            Err(Refusal::NotGranted("no_recordings"))
        );
        assert_eq!(
            gate.admit(
                "/live/town-hall/master.m3u8",
                Some("token=x.y.z"),
                client,
                &m
            ),
            Err(Refusal::BadToken("malformed"))
        );
        // No token: for the node to decide. Not a stream's tree: not looked at.
        assert_eq!(
            gate.admit("/live/town-hall/master.m3u8", None, client, &m),
            Ok(())
        );
        assert_eq!(
            gate.admit("/api/v1/streams", Some("token=x"), client, &m),
            Ok(())
        );
    }

    #[test]
    fn over_the_budget_is_429_with_a_retry_after() {
        let (gate, _) = gate();
        let m = LbMetrics::default();
        let client: IpAddr = "203.0.113.5".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(gate.admit("/", None, client, &m), Ok(()));
        }
        let refused = gate.admit("/", None, client, &m).expect_err("over");
        assert_eq!(refused, Refusal::Budget { retry_after: 1 });
        assert_eq!(refused.status().0, 429);
        assert_eq!(
            gate.admit("/", None, "203.0.113.6".parse().expect("ip"), &m),
            Ok(())
        );
    }
}

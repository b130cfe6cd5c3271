//! [`KeyStrikes`]: wrong `x-api-key`s back off per client address (issue 34), over
//! [`plumbing::Strikes`]. The client is the peer, or the last `x-forwarded-for` hop when the
//! peer is on loopback or a private network (a load balancer of the cluster), so that one
//! guesser behind the load balancer does not hold back everyone else behind it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use parking_lot::Mutex;
use plumbing::{StrikePolicy, Strikes};

/// Failed API-key attempts per client address.
#[derive(Debug)]
pub struct KeyStrikes(Mutex<Strikes>);

impl Default for KeyStrikes {
    fn default() -> Self {
        KeyStrikes::new(StrikePolicy::default())
    }
}

impl KeyStrikes {
    /// Backoff as `policy` says.
    pub fn new(policy: StrikePolicy) -> Self {
        KeyStrikes(Mutex::new(Strikes::new(policy)))
    }

    /// Whether `client` may present a key now; if not, how long it must wait.
    pub(crate) fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.0.lock().check(client, Instant::now())
    }

    /// `client` presented a wrong key; logged (never the key) when it now has to wait.
    pub(crate) fn failed(&self, client: IpAddr) {
        if let Some(wait) = self.0.lock().failed(client, Instant::now()) {
            tracing::warn!(
                %client,
                wait_secs = wait.as_secs_f64(),
                "repeated wrong API keys from this address; holding it back"
            );
        }
    }

    /// `client` presented a good key.
    pub(crate) fn succeeded(&self, client: IpAddr) {
        self.0.lock().succeeded(client);
    }
}

/// The client of an API request, if the server recorded the peer (`ConnectInfo`).
pub(crate) fn client(parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !is_local(peer) {
        return Some(peer);
    }
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|hop| hop.trim().parse().ok());
    Some(forwarded.unwrap_or(peer))
}

/// Loopback and private addresses, where a cluster's load balancers are.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_private(),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

/// Whole seconds to wait, at least one.
pub(crate) fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder().uri("/api/v1/live");
        if let Some(f) = forwarded {
            request = request.header("x-forwarded-for", f);
        }
        let (mut parts, ()) = request.body(()).expect("request").into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().expect("addr")));
        parts
    }

    #[test]
    fn the_client_is_the_forwarded_hop_only_behind_a_local_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            client(&parts("127.0.0.1:5000", Some("1.2.3.4, 203.0.113.9"))),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client(&parts("198.51.100.1:5000", Some("203.0.113.9"))),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(client(&parts("10.0.0.2:5000", None)), Some(ip("10.0.0.2")));
    }

    #[test]
    fn wrong_keys_back_off_and_a_good_one_forgives() {
        let strikes = KeyStrikes::new(StrikePolicy {
            free: 1,
            ..StrikePolicy::default()
        });
        let c: IpAddr = "203.0.113.9".parse().expect("ip");
        strikes.failed(c);
        assert!(strikes.check(c).is_ok());
        strikes.failed(c);
        let wait = strikes.check(c).expect_err("held back");
        assert_eq!(retry_after(wait), 1);
        strikes.succeeded(c);
        assert!(strikes.check(c).is_ok());
    }
}

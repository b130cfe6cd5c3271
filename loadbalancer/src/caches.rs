//! Who the client of a request on the origin listener is (issue 45 item 6), sans-IO.
//!
//! A cache tier in front (Varnish, nginx) reaches the load balancer's origin listener from
//! its own few addresses, with every viewer behind them. Unless the load balancer knows the
//! viewer's address, a cache is one client: no per-client budget holds anyone back, five
//! wrong keys from anyone lock every WHIP publisher and API user behind it out, and a
//! token bound to a client network never opens anything.
//!
//! The rule is nginx's `set_real_ip_from`: for a peer inside one of the configured
//! [`TrustedCaches`] (and only there, and only on the origin listener) the client is the
//! **rightmost** `X-Forwarded-For` hop, the address the cache itself saw and appended
//! (Varnish appends `client.ip` before `vcl_recv`; nginx's `$proxy_add_x_forwarded_for`
//! does the same). Anything left of it was written by the viewer and proves nothing. For
//! every other peer the header is ignored and the peer is the client. The load balancer
//! then sends the nodes, ingests and API the address it settled on, in an
//! `X-Forwarded-For` of its own that replaces whatever arrived.
//!
//! Why not the PROXY protocol (Varnish's `.proxy_header = 2`): Pingora 0.9 parses it only
//! before a TLS handshake, and the origin listener is plain HTTP; Varnish closes a backend
//! connection that carried a PROXY header after each fetch, so every origin fetch would
//! open a connection; and nginx's cache sends the header, not the protocol. The header is
//! as trustworthy as the peer it comes from, which is what the CIDR list decides.

use std::net::IpAddr;

use certs::tokens::ClientNetwork;

/// The cache addresses whose `X-Forwarded-For` is believed; empty: nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedCaches(Vec<ClientNetwork>);

/// A trusted cache sent an `X-Forwarded-For` whose last hop is not an IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadForwardedFor;

impl TrustedCaches {
    /// Believes the caches inside `networks`.
    pub fn new(networks: Vec<ClientNetwork>) -> Self {
        TrustedCaches(networks)
    }

    /// Whether no cache is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `peer` is a trusted cache.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(peer))
    }

    /// The client of a request from `peer` carrying the `X-Forwarded-For` header lines
    /// `forwarded` (in order; `None` for a value that is not text): `peer` itself unless it
    /// is a trusted cache, else the last hop of the last line (the peer itself when the
    /// cache sent none, as its own health probes do).
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Result<IpAddr, BadForwardedFor> {
        if !self.trusts(peer) {
            return Ok(peer);
        }
        let Some(last) = forwarded.into_iter().last() else {
            return Ok(peer);
        };
        let hop = last
            .ok_or(BadForwardedFor)?
            .rsplit(',')
            .next()
            .unwrap_or("");
        hop.trim().parse().map_err(|_| BadForwardedFor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn caches() -> TrustedCaches {
        TrustedCaches::new(vec![
            "10.237.240.20".parse().expect("net"),
            "fd00::/64".parse().expect("net"),
        ])
    }

    #[test]
    fn only_a_trusted_cache_names_the_client_and_only_by_its_own_hop() {
        let c = caches();
        let cache = ip("10.237.240.20");
        // The viewer's own claim (left) is not believed; the hop the cache appended is.
        assert_eq!(
            c.client(cache, [Some("6.6.6.6, 203.0.113.5")]),
            Ok(ip("203.0.113.5"))
        );
        assert_eq!(
            c.client(cache, [Some("6.6.6.6"), Some("198.51.100.7 ")]),
            Ok(ip("198.51.100.7"))
        );
        assert_eq!(
            c.client(ip("fd00::9"), [Some("2001:db8::1")]),
            Ok(ip("2001:db8::1"))
        );
        // Its own requests (probes) carry none.
        assert_eq!(c.client(cache, []), Ok(cache));
        // Garbage from a trusted cache is refused, not guessed at.
        for bad in [Some("203.0.113.5, "), Some("unknown"), Some(""), None] {
            assert_eq!(c.client(cache, [bad]), Err(BadForwardedFor), "{bad:?}");
        }
        // Anyone else: the header is ignored, whatever it says.
        let stranger = ip("10.237.240.21");
        assert_eq!(c.client(stranger, [Some("203.0.113.5")]), Ok(stranger));
        assert_eq!(c.client(stranger, [Some("garbage")]), Ok(stranger));
        let nobody = TrustedCaches::default();
        assert!(nobody.is_empty());
        assert_eq!(nobody.client(cache, [Some("203.0.113.5")]), Ok(cache));
    }
}

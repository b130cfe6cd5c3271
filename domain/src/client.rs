//! Who a client is, for counting: one rule for every per-client cap and budget of every
//! role (the load balancer's request and connection budgets, the ingest's per-address
//! session caps and wrong-key strikes, viewer counts).
//!
//! A client is its IPv4 address, or the /64 of its IPv6 address: one subscriber (a home,
//! a phone) is given a whole /64, so counting single IPv6 addresses would give one
//! attacker 2^64 budgets. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack
//! socket reports for an IPv4 peer) is that IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client as caps count it: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientGroup {
    /// An IPv4 client (or an IPv4-mapped IPv6 one).
    V4(Ipv4Addr),
    /// An IPv6 client's /64: the address's upper 64 bits.
    V6(u64),
}

impl ClientGroup {
    /// The group of the client at `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientGroup::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientGroup::V4(v4),
                None => ClientGroup::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }

    /// A well-mixed 64-bit number of the group, for picking a shard.
    pub fn mix(self) -> u64 {
        let raw = match self {
            ClientGroup::V4(a) => u64::from(u32::from(a)),
            ClientGroup::V6(p) => p,
        };
        raw.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl From<IpAddr> for ClientGroup {
    fn from(ip: IpAddr) -> Self {
        ClientGroup::of(ip)
    }
}

impl fmt::Display for ClientGroup {
    /// `192.0.2.7`, or `2001:db8:1:2::/64`: safe to log (an address, no secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientGroup::V4(a) => write!(f, "{a}"),
            ClientGroup::V6(p) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*p) << 64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v6(s: &str) -> IpAddr {
        s.parse().expect("an IPv6 address")
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a = ClientGroup::of(v6("2001:db8:1:2::1"));
        let b = ClientGroup::of(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let other = ClientGroup::of(v6("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn an_ipv4_client_is_its_address_mapped_or_not() {
        let plain = ClientGroup::of(IpAddr::from([192, 0, 2, 7]));
        let mapped = ClientGroup::of(v6("::ffff:192.0.2.7"));
        assert_eq!(plain, mapped);
        assert_ne!(plain, ClientGroup::of(IpAddr::from([192, 0, 2, 8])));
        assert_eq!(plain.to_string(), "192.0.2.7");
    }

    proptest! {
        /// Two IPv6 addresses are one client exactly when their upper 64 bits agree
        /// (outside the IPv4-mapped range).
        #[test]
        fn ipv6_groups_are_64s(a: u128, b: u128) {
            let mapped = |x: u128| Ipv6Addr::from(x).to_ipv4_mapped().is_some();
            prop_assume!(!mapped(a) && !mapped(b));
            let same = ClientGroup::of(IpAddr::V6(Ipv6Addr::from(a)))
                == ClientGroup::of(IpAddr::V6(Ipv6Addr::from(b)));
            prop_assert_eq!(same, a >> 64 == b >> 64);
        }

        /// An IPv4 group is the address itself.
        #[test]
        fn ipv4_groups_are_addresses(a: u32, b: u32) {
            let same = ClientGroup::of(IpAddr::from(Ipv4Addr::from(a)))
                == ClientGroup::of(IpAddr::from(Ipv4Addr::from(b)));
            prop_assert_eq!(same, a == b);
        }
    }
}

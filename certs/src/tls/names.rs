//! The names a server certificate answers for.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::CertsError;

/// The cluster's DNS domain: the load balancer answers for it, and each broadcast node for
/// `broadcast{n}` under it (`hosts.example` maps them all to 127.0.0.1).
pub const CLUSTER_DOMAIN: &str = "streaming-cluster.test";

/// How many `broadcast{n}` names a certificate covers unless told otherwise: the three nodes
/// of `sealcast up` and room to `--scale` a compose cluster without re-issuing.
pub const DEFAULT_BROADCAST_NODES: u16 = 8;

/// The longest DNS name a certificate may carry (RFC 1035, without the trailing dot).
const MAX_DNS_NAME_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// One subject alternative name: a DNS name (lower case, possibly a `*.` wildcard) or an IP
/// address. Built by parsing, so a certificate never carries a name no client could match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(Name);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Name {
    Dns(String),
    Ip(IpAddr),
}

impl HostName {
    /// The DNS name, if this is one (wildcards included, lower case).
    pub fn as_dns(&self) -> Option<&str> {
        match &self.0 {
            Name::Dns(name) => Some(name),
            Name::Ip(_) => None,
        }
    }

    /// The IP address, if this is one.
    pub fn as_ip(&self) -> Option<IpAddr> {
        match self.0 {
            Name::Ip(ip) => Some(ip),
            Name::Dns(_) => None,
        }
    }

    /// As rcgen writes it into a certificate.
    pub(super) fn to_san(&self) -> Result<rcgen::SanType, rcgen::Error> {
        Ok(match &self.0 {
            Name::Dns(name) => rcgen::SanType::DnsName(name.clone().try_into()?),
            Name::Ip(ip) => rcgen::SanType::IpAddress(*ip),
        })
    }

    /// A DNS name known to be valid (the constants of this module).
    fn dns(name: String) -> Self {
        debug_assert!(check_dns_name(&name).is_ok(), "{name}");
        HostName(Name::Dns(name))
    }
}

impl From<IpAddr> for HostName {
    fn from(ip: IpAddr) -> Self {
        HostName(Name::Ip(ip))
    }
}

impl FromStr for HostName {
    type Err = CertsError;

    /// An IP address (v4 or v6, without brackets) or a DNS name: labels of letters, digits
    /// and inner hyphens, at most 63 characters each and 253 in all; a leading `*.` for a
    /// wildcard over at least two labels. DNS names are folded to lower case.
    fn from_str(text: &str) -> Result<Self, CertsError> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(ip.into());
        }
        let name = text.to_ascii_lowercase();
        check_dns_name(&name).map_err(|reason| CertsError::InvalidHostName {
            name: text.to_owned(),
            reason,
        })?;
        Ok(HostName(Name::Dns(name)))
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Name::Dns(name) => f.write_str(name),
            Name::Ip(ip) => ip.fmt(f),
        }
    }
}

fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err("longer than 253 characters");
    }
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let mut labels = 0;
    for label in rest.split('.') {
        if label.is_empty() {
            return Err("an empty label (a leading, trailing or doubled dot)");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("only letters, digits, hyphens and dots (and a leading `*.`) are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with a hyphen");
        }
        labels += 1;
    }
    if wildcard && labels < 2 {
        return Err("a wildcard must cover a name of at least two labels");
    }
    Ok(())
}

/// `broadcast{n}.streaming-cluster.test`: the public name of the `n`th broadcast node, which
/// the load balancer's direct mode redirects viewers to.
pub fn broadcast_host_name(n: u16) -> HostName {
    HostName::dns(format!("broadcast{n}.{CLUSTER_DOMAIN}"))
}

/// What a server certificate must cover: the cluster's fixed names, one per broadcast node,
/// and whatever the operator adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    /// How many `broadcast{n}` names to include. The wildcard already matches them; they are
    /// listed too because they are the names operators type and look for in the certificate.
    broadcast_nodes: u16,
    /// The operator's own names, e.g. the machine's host name or LAN address, so viewers on
    /// other machines can connect without a certificate warning.
    extra: Vec<HostName>,
}

impl Default for ServerNames {
    fn default() -> Self {
        ServerNames::new(DEFAULT_BROADCAST_NODES)
    }
}

impl ServerNames {
    /// The fixed names with `broadcast1..=broadcast_nodes`.
    pub fn new(broadcast_nodes: u16) -> Self {
        ServerNames {
            broadcast_nodes,
            extra: Vec::new(),
        }
    }

    /// Adds names beyond the fixed ones (duplicates are harmless).
    pub fn with_extra(mut self, names: impl IntoIterator<Item = HostName>) -> Self {
        self.extra.extend(names);
        self
    }

    /// How many `broadcast{n}` names are covered.
    pub fn broadcast_nodes(&self) -> u16 {
        self.broadcast_nodes
    }

    /// The names added with [`ServerNames::with_extra`].
    pub fn extra(&self) -> &[HostName] {
        &self.extra
    }

    /// Every name, in certificate order and without duplicates: `streaming-cluster.test`,
    /// `*.streaming-cluster.test`, `broadcast1..N.streaming-cluster.test`, `localhost`,
    /// `127.0.0.1`, `::1`, then the extra names.
    pub fn names(&self) -> Vec<HostName> {
        let fixed = [
            HostName::dns(CLUSTER_DOMAIN.to_owned()),
            HostName::dns(format!("*.{CLUSTER_DOMAIN}")),
        ]
        .into_iter()
        .chain((1..=self.broadcast_nodes).map(broadcast_host_name))
        .chain([
            HostName::dns("localhost".to_owned()),
            IpAddr::V4(Ipv4Addr::LOCALHOST).into(),
            IpAddr::V6(Ipv6Addr::LOCALHOST).into(),
        ]);
        let mut seen = BTreeSet::new();
        fixed
            .chain(self.extra.iter().cloned())
            .filter(|name| seen.insert(name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<HostName, CertsError> {
        text.parse()
    }

    #[test]
    fn default_names_are_the_briefs_in_order() {
        let names: Vec<String> = ServerNames::new(2)
            .names()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            [
                "streaming-cluster.test",
                "*.streaming-cluster.test",
                "broadcast1.streaming-cluster.test",
                "broadcast2.streaming-cluster.test",
                "localhost",
                "127.0.0.1",
                "::1",
            ]
        );
        assert_eq!(ServerNames::default().broadcast_nodes(), 8);
        assert_eq!(ServerNames::default().names().len(), 13);
    }

    #[test]
    fn extra_names_are_normalised_and_deduplicated() {
        let names = ServerNames::new(1).with_extra([
            parse("Media.Example.ORG").expect("valid"),
            parse("media.example.org").expect("valid"),
            parse("LOCALHOST").expect("valid"),
            parse("192.168.1.20").expect("valid"),
            parse("::1").expect("valid"),
        ]);
        let names: Vec<String> = names.names().iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), 8, "{names:?}");
        assert_eq!(names[6..], ["media.example.org", "192.168.1.20"]);
    }

    #[test]
    fn bad_names_are_refused_with_the_name() {
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a.b",
            "a-.b",
            "a b",
            "ünïcode.test",
            "*",
            "*.test",
            "a.*.test",
            "*a.test",
            "[::1]",
            "host:443",
            &"a".repeat(64),
            &["abc"; 64].join("."),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                matches!(&err, CertsError::InvalidHostName { name, .. } if name == bad),
                "{bad}: {err}"
            );
        }
        for good in [
            "localhost",
            "*.a.test",
            "a-b.c1.test",
            "10.0.0.1",
            "fe80::1",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
        assert_eq!(
            parse("fe80::1").expect("ip").as_ip(),
            Some("fe80::1".parse().expect("ip"))
        );
        assert_eq!(parse("A.test").expect("dns").as_dns(), Some("a.test"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(text in "\\PC{0,80}") {
            if let Ok(name) = parse(&text) {
                prop_assert_eq!(parse(&name.to_string()).expect("round trip"), name);
            }
        }
    }
}

//! Every MQTT topic of the control plane, built and parsed in one place.
//!
//! | topic | what |
//! |---|---|
//! | `sealcast/v1/nodes/{node}/presence` | a broadcast node's retained presence (and last will) |
//! | `sealcast/v1/ingest/{node}/cert` | an ingest node's retained, root-signed certificate |
//! | `sealcast/v1/revocations/{key_id}` | a retained, root-signed key revocation |
//! | `sealcast/v1/streams/{stream}/{rendition}/manifest` | signed segment manifests (QoS 1) |
//! | `sealcast/v1/streams/{stream}/announce` | a stream's announcement |
//!
//! Names need no escaping: [`StreamName`], [`RenditionName`] and [`NodeId`] only allow
//! `[A-Za-z0-9_-]`, so they can never contain `/`, `+` or `#`.

use std::fmt;

use crate::manifest::KeyId;
use crate::{NodeId, RenditionName, StreamName};

/// The prefix of every topic; the version changes only with an incompatible payload.
pub const PREFIX: &str = "sealcast/v1";

/// A concrete topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A broadcast node's presence.
    Presence(NodeId),
    /// An ingest node's certificate.
    IngestCertificate(NodeId),
    /// A revocation of a signing key.
    Revocation(KeyId),
    /// Signed manifests of one rendition of a stream.
    Manifest(StreamName, RenditionName),
    /// A stream's announcement.
    Announce(StreamName),
}

impl Topic {
    /// Parses exactly the shapes above; wildcards, extra levels and invalid names are `None`.
    pub fn parse(topic: &str) -> Option<Self> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["nodes", node, "presence"] => Some(Self::Presence(NodeId::new(*node).ok()?)),
            ["ingest", node, "cert"] => Some(Self::IngestCertificate(NodeId::new(*node).ok()?)),
            ["revocations", key] => Some(Self::Revocation(key.parse().ok()?)),
            ["streams", stream, rendition, "manifest"] => Some(Self::Manifest(
                StreamName::new(*stream).ok()?,
                RenditionName::new(*rendition).ok()?,
            )),
            ["streams", stream, "announce"] => Some(Self::Announce(StreamName::new(*stream).ok()?)),
            _ => None,
        }
    }

    /// Subscription filter for every node's presence.
    pub fn filter_all_presence() -> &'static str {
        "sealcast/v1/nodes/+/presence"
    }

    /// Subscription filter for every ingest certificate.
    pub fn filter_all_certificates() -> &'static str {
        "sealcast/v1/ingest/+/cert"
    }

    /// Subscription filter for every revocation.
    pub fn filter_all_revocations() -> &'static str {
        "sealcast/v1/revocations/+"
    }

    /// Subscription filter for every manifest of every stream.
    pub fn filter_all_manifests() -> &'static str {
        "sealcast/v1/streams/+/+/manifest"
    }

    /// Subscription filter for every stream announcement.
    pub fn filter_all_announcements() -> &'static str {
        "sealcast/v1/streams/+/announce"
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Presence(n) => write!(f, "{PREFIX}/nodes/{n}/presence"),
            Self::IngestCertificate(n) => write!(f, "{PREFIX}/ingest/{n}/cert"),
            Self::Revocation(k) => write!(f, "{PREFIX}/revocations/{k}"),
            Self::Manifest(s, r) => write!(f, "{PREFIX}/streams/{s}/{r}/manifest"),
            Self::Announce(s) => write!(f, "{PREFIX}/streams/{s}/announce"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn topic() -> impl Strategy<Value = Topic> {
        let name = "[A-Za-z0-9][A-Za-z0-9_-]{0,20}";
        (0u8..5, name, name, any::<[u8; 16]>()).prop_map(|(kind, a, b, key)| match kind {
            0 => Topic::Presence(NodeId::new(a).expect("valid")),
            1 => Topic::IngestCertificate(NodeId::new(a).expect("valid")),
            2 => Topic::Revocation(KeyId(key)),
            3 => Topic::Manifest(
                StreamName::new(a).expect("valid"),
                RenditionName::new(b).expect("valid"),
            ),
            _ => Topic::Announce(StreamName::new(a).expect("valid")),
        })
    }

    /// MQTT filter matching, just enough to check our filters against our topics.
    fn matches(filter: &str, topic: &str) -> bool {
        let (f, t): (Vec<_>, Vec<_>) = (filter.split('/').collect(), topic.split('/').collect());
        f.len() == t.len() && f.iter().zip(&t).all(|(f, t)| *f == "+" || f == t)
    }

    proptest! {
        #[test]
        fn topics_round_trip(t in topic()) {
            prop_assert_eq!(Topic::parse(&t.to_string()), Some(t));
        }

        #[test]
        fn each_topic_matches_exactly_one_filter(t in topic()) {
            let filters = [
                Topic::filter_all_presence(),
                Topic::filter_all_certificates(),
                Topic::filter_all_revocations(),
                Topic::filter_all_manifests(),
                Topic::filter_all_announcements(),
            ];
            let s = t.to_string();
            prop_assert_eq!(filters.iter().filter(|f| matches(f, &s)).count(), 1);
        }

        #[test]
        fn parse_never_panics_and_never_accepts_wildcards(s in ".{0,120}") {
            if Topic::parse(&s).is_some() {
                prop_assert!(!s.contains('+') && !s.contains('#'));
            }
        }
    }

    #[test]
    fn rejects_wildcards_and_wrong_shapes() {
        for bad in [
            "sealcast/v1/nodes/+/presence",
            "sealcast/v1/streams/#",
            "sealcast/v1/streams/a/b/c/manifest",
            "sealcast/v2/nodes/a/presence",
            "sealcast/v1/revocations/xyz",
            "sealcast/v1/nodes//presence",
        ] {
            assert_eq!(Topic::parse(bad), None, "{bad}");
        }
    }
}

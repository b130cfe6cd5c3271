//! Every MQTT topic of the control plane, built and parsed in one place: no other code
//! formats a topic string.
//!
//! | topic | what |
//! |---|---|
//! | `sealcast/v1/nodes/{node}/presence` | a broadcast node's retained presence (and last will) |
//! | `sealcast/v1/ingest/{node}/cert` | an ingest node's retained, root-signed certificate |
//! | `sealcast/v1/revocations/{key_id}` | a retained, root-signed key revocation |
//! | `sealcast/v1/streams/{stream}/{rendition}/manifest` | signed segment statements (QoS 1) |
//! | `sealcast/v1/nodes/{node}/load` | a broadcast node's load report (every 2 s, not retained) |
//! | `sealcast/v1/ingest/{node}/load` | an ingest node's load report (every 2 s, not retained) |
//!
//! Names need no escaping: [`StreamName`], [`RenditionName`] and [`NodeId`] only allow
//! `[A-Za-z0-9_-]` (1 to 64 bytes), so they are never empty and never contain `/`, `+` or
//! `#`; a [`KeyId`] is written as 32 lowercase hex digits. A topic therefore has exactly one
//! spelling, and a name can never turn a topic into a wildcard filter or add a level.

use std::fmt;

use crate::wire::KeyId;
use crate::{NodeId, RenditionName, StreamName};

/// The prefix of every topic; the version changes only with an incompatible payload.
pub const PREFIX: &str = "sealcast/v1";

/// A concrete topic (never a filter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A broadcast node's presence: `sealcast/v1/nodes/{node}/presence`.
    Presence(NodeId),
    /// An ingest node's certificate: `sealcast/v1/ingest/{node}/cert`.
    IngestCertificate(NodeId),
    /// A revocation of a signing key: `sealcast/v1/revocations/{key_id}`.
    Revocation(KeyId),
    /// Signed segment and part statements of one rendition of a stream:
    /// `sealcast/v1/streams/{stream}/{rendition}/manifest` (the topic keeps the old word,
    /// `manifest`; it is wire).
    MediaStatements(StreamName, RenditionName),
    /// A broadcast node's load report: `sealcast/v1/nodes/{node}/load`. Beside the node's
    /// presence, so a broker ACL can let each node write only under its own name.
    NodeLoad(NodeId),
    /// An ingest node's load report: `sealcast/v1/ingest/{node}/load`, beside its
    /// certificate for the same reason.
    IngestLoad(NodeId),
}

impl Topic {
    /// Parses exactly the shapes above. Wildcards, empty or extra levels, other versions and
    /// invalid names are `None`, so what a broker delivers is checked before it is trusted.
    pub fn parse(topic: &str) -> Option<Self> {
        let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
        let mut levels = rest.split('/');
        let mut next = || levels.next();
        let topic = match (next()?, next()?, next(), next()) {
            ("nodes", node, Some("presence"), None) => Self::Presence(NodeId::new(node).ok()?),
            ("nodes", node, Some("load"), None) => Self::NodeLoad(NodeId::new(node).ok()?),
            ("ingest", node, Some("load"), None) => Self::IngestLoad(NodeId::new(node).ok()?),
            ("ingest", node, Some("cert"), None) => {
                Self::IngestCertificate(NodeId::new(node).ok()?)
            }
            ("revocations", key, None, None) => Self::Revocation(key.parse().ok()?),
            ("streams", stream, Some(rendition), Some("manifest")) => Self::MediaStatements(
                StreamName::new(stream).ok()?,
                RenditionName::new(rendition).ok()?,
            ),
            _ => return None,
        };
        // Nothing may follow the last level.
        next().is_none().then_some(topic)
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

    /// Subscription filter for every segment and part statement of every stream.
    pub fn filter_all_media_statements() -> &'static str {
        "sealcast/v1/streams/+/+/manifest"
    }

    /// Subscription filter for every broadcast node's load report.
    pub fn filter_all_node_loads() -> &'static str {
        "sealcast/v1/nodes/+/load"
    }

    /// Subscription filter for every ingest node's load report.
    pub fn filter_all_ingest_loads() -> &'static str {
        "sealcast/v1/ingest/+/load"
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Presence(n) => write!(f, "{PREFIX}/nodes/{n}/presence"),
            Self::IngestCertificate(n) => write!(f, "{PREFIX}/ingest/{n}/cert"),
            Self::Revocation(k) => write!(f, "{PREFIX}/revocations/{k}"),
            Self::MediaStatements(s, r) => write!(f, "{PREFIX}/streams/{s}/{r}/manifest"),
            Self::NodeLoad(n) => write!(f, "{PREFIX}/nodes/{n}/load"),
            Self::IngestLoad(n) => write!(f, "{PREFIX}/ingest/{n}/load"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const NAME: &str = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}";

    fn topic() -> impl Strategy<Value = Topic> {
        (0u8..6, NAME, NAME, any::<[u8; 16]>()).prop_map(|(kind, a, b, key)| match kind {
            0 => Topic::Presence(NodeId::new(a).expect("valid")),
            1 => Topic::IngestCertificate(NodeId::new(a).expect("valid")),
            2 => Topic::Revocation(KeyId(key)),
            3 => Topic::MediaStatements(
                StreamName::new(a).expect("valid"),
                RenditionName::new(b).expect("valid"),
            ),
            4 => Topic::NodeLoad(NodeId::new(a).expect("valid")),
            _ => Topic::IngestLoad(NodeId::new(a).expect("valid")),
        })
    }

    fn filters() -> [&'static str; 6] {
        [
            Topic::filter_all_presence(),
            Topic::filter_all_certificates(),
            Topic::filter_all_revocations(),
            Topic::filter_all_media_statements(),
            Topic::filter_all_node_loads(),
            Topic::filter_all_ingest_loads(),
        ]
    }

    /// MQTT filter matching, just enough to check our filters against our topics.
    fn matches(filter: &str, topic: &str) -> bool {
        let (f, t): (Vec<_>, Vec<_>) = (filter.split('/').collect(), topic.split('/').collect());
        f.len() == t.len() && f.iter().zip(&t).all(|(f, t)| *f == "+" || f == t)
    }

    /// `s` with `c` inserted before the character at `at`.
    fn insert(s: &str, at: Index, c: char) -> String {
        let at = s
            .char_indices()
            .nth(at.index(s.chars().count() + 1))
            .map_or(s.len(), |(i, _)| i);
        format!("{}{c}{}", &s[..at], &s[at..])
    }

    proptest! {
        #[test]
        fn topics_round_trip(t in topic()) {
            prop_assert_eq!(Topic::parse(&t.to_string()), Some(t));
        }

        #[test]
        fn each_topic_matches_exactly_its_own_filter(t in topic()) {
            let s = t.to_string();
            let matching: Vec<_> = filters().into_iter().filter(|f| matches(f, &s)).collect();
            let own = match t {
                Topic::Presence(_) => Topic::filter_all_presence(),
                Topic::IngestCertificate(_) => Topic::filter_all_certificates(),
                Topic::Revocation(_) => Topic::filter_all_revocations(),
                Topic::MediaStatements(..) => Topic::filter_all_media_statements(),
                Topic::NodeLoad(_) => Topic::filter_all_node_loads(),
                Topic::IngestLoad(_) => Topic::filter_all_ingest_loads(),
            };
            prop_assert_eq!(matching, vec![own]);
        }

        /// A wildcard anywhere in a topic, even one that is otherwise valid, is never concrete.
        #[test]
        fn wildcards_never_parse(
            t in topic(),
            at in any::<Index>(),
            c in prop_oneof![Just('+'), Just('#')],
        ) {
            prop_assert_eq!(Topic::parse(&insert(&t.to_string(), at, c)), None);
        }

        /// A level added at either end never parses: the shapes are exact.
        #[test]
        fn extra_levels_never_parse(t in topic(), level in prop_oneof![Just(String::new()), NAME]) {
            prop_assert_eq!(Topic::parse(&format!("{t}/{level}")), None);
            prop_assert_eq!(Topic::parse(&format!("{level}/{t}")), None);
        }

        /// Whatever parses is spelled exactly as its Display: one spelling per topic.
        #[test]
        fn only_the_canonical_spelling_parses(
            t in topic(),
            at in any::<Index>(),
            c in prop_oneof![Just('/'), Just('a'), Just('-'), Just('F'), any::<char>()],
        ) {
            let s = insert(&t.to_string(), at, c);
            if let Some(parsed) = Topic::parse(&s) {
                prop_assert_eq!(parsed.to_string(), s);
            }
        }

        #[test]
        fn parsing_any_string_never_panics(s in ".{0,120}") {
            if let Some(t) = Topic::parse(&s) {
                prop_assert_eq!(t.to_string(), s);
            }
        }

        /// Strings that get past the prefix reach every arm of the parser.
        #[test]
        fn parsing_near_misses_never_panics(s in "sealcast/v1/[a-z0-9/+#A-F_-]{0,80}") {
            if let Some(t) = Topic::parse(&s) {
                prop_assert!(!s.contains('+') && !s.contains('#'));
                prop_assert_eq!(t.to_string(), s);
            }
        }
    }

    fn node(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn stream(s: &str) -> StreamName {
        StreamName::new(s).expect("valid")
    }

    /// Topics are a wire format shared with brokers' ACLs: pin every shape.
    #[test]
    fn topics_are_spelled_as_documented() {
        let cases = [
            (
                Topic::Presence(node("broadcast1")),
                "sealcast/v1/nodes/broadcast1/presence",
            ),
            (
                Topic::IngestCertificate(node("ingest1")),
                "sealcast/v1/ingest/ingest1/cert",
            ),
            (
                Topic::Revocation(KeyId([0xab; 16])),
                "sealcast/v1/revocations/abababababababababababababababab",
            ),
            (
                Topic::MediaStatements(stream("cam1"), RenditionName::new("720p").expect("valid")),
                "sealcast/v1/streams/cam1/720p/manifest",
            ),
        ];
        for (topic, spelled) in cases {
            assert_eq!(topic.to_string(), spelled);
            assert_eq!(Topic::parse(spelled), Some(topic));
        }
    }

    #[test]
    fn filters_are_spelled_as_documented() {
        assert_eq!(
            filters(),
            [
                "sealcast/v1/nodes/+/presence",
                "sealcast/v1/ingest/+/cert",
                "sealcast/v1/revocations/+",
                "sealcast/v1/streams/+/+/manifest",
                "sealcast/v1/nodes/+/load",
                "sealcast/v1/ingest/+/load",
            ]
        );
        for filter in filters() {
            assert_eq!(Topic::parse(filter), None, "{filter}");
        }
    }

    #[test]
    fn rejects_wildcards_and_wrong_shapes() {
        for bad in [
            "",
            "sealcast/v1",
            "sealcast/v1/",
            "/sealcast/v1/nodes/a/presence",
            "sealcast/v1/nodes/a/presence/",
            "sealcast/v1/nodes/a/presence/extra",
            "sealcast/v1/nodes/a",
            "sealcast/v1/nodes//presence",
            "sealcast/v1/nodes/a/b/presence",
            "sealcast/v1/nodes/+/presence",
            "sealcast/v1/nodes/#",
            "sealcast/v2/nodes/a/presence",
            "Sealcast/v1/nodes/a/presence",
            "sealcast/v1/node/a/presence",
            "sealcast/v1/ingest/a/certificate",
            "sealcast/v1/revocations/xyz",
            "sealcast/v1/revocations/ABABABABABABABABABABABABABABABAB",
            "sealcast/v1/revocations/abababababababababababababababab/x",
            "sealcast/v1/streams/#",
            "sealcast/v1/streams/a",
            // Announcements were planned and never used: no such topic.
            "sealcast/v1/streams/a/announce",
            "sealcast/v1/streams/a/announce/x",
            "sealcast/v1/streams/a/b/c/manifest",
            "sealcast/v1/streams/a/b/manifest/x",
            "sealcast/v1/streams/a//manifest",
            "sealcast/v1/streams/a/b+/manifest",
            "sealcast/v1/streams/a.b/announce",
            "sealcast/v1/streams/_a/announce",
        ] {
            assert_eq!(Topic::parse(bad), None, "{bad}");
        }
    }
}

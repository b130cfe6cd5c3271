//! Who the broadcast nodes are, from their retained presence messages.
//!
//! Sans-IO: a presence topic's node id and payload in, a [`Change`] out. A broadcast
//! presence counts only when signed by an edge key the cluster root certified
//! ([`PresenceVerifier`]): a process without one cannot make this ingest push (and present
//! the push token) to an address of its choosing. A node is a member while its last
//! presence says `role: broadcast`, `joining`, `ready` or `behind`, with a `url`; an
//! offline message (a clean shutdown or its last will) or an empty retained payload (the
//! retained message cleared) ends it. A member whose url changes, or that goes back from
//! `ready` to `joining` (it restarted before its last will fired), is a new member: it
//! has lost what it held and must be sent the window again.

use std::collections::BTreeMap;

use certs::signing::PresenceVerifier;
use domain::presence::{PresenceState, Role};
use domain::NodeId;

/// What one presence message changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing (a repeat, another role's presence, a node that was not a member leaving).
    None,
    /// A new member at this base URL (no trailing `/`).
    Joined(String),
    /// The member is gone.
    Left,
    /// The member is new again: at another URL, or restarted. Drop what was queued for it
    /// and start over with the window.
    Rejoined(String),
    /// The payload is not a presence message we can use; nothing changed.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    url: String,
    state: PresenceState,
}

/// The current broadcast members.
#[derive(Debug)]
pub(crate) struct Membership {
    members: BTreeMap<NodeId, Member>,
    verifier: PresenceVerifier,
}

impl Membership {
    /// No members yet; presences are checked with `verifier`.
    pub(crate) fn new(verifier: PresenceVerifier) -> Self {
        Membership {
            members: BTreeMap::new(),
            verifier,
        }
    }

    /// Applies the presence `payload` of `node`, checked at `now` (unix seconds).
    pub(crate) fn apply(&mut self, node: &NodeId, payload: &[u8], now: u64) -> Change {
        if payload.is_empty() {
            return self.leave(node);
        }
        let presence = match self.verifier.check(node, payload, now) {
            Ok(p) => p,
            Err(e) => return Change::Invalid(e.to_string()),
        };
        if presence.role != Role::Broadcast || !presence.is_up() {
            return self.leave(node);
        }
        let Some(url) = presence.url else {
            return Change::Invalid("a broadcast node's presence without a url".into());
        };
        let url = url.strip_suffix('/').unwrap_or(&url).to_owned();
        let new = Member {
            url: url.clone(),
            state: presence.state,
        };
        match self.members.insert(node.clone(), new) {
            None => Change::Joined(url),
            Some(old) if old.url != url => Change::Rejoined(url),
            Some(old)
                if old.state == PresenceState::Ready
                    && presence.state == PresenceState::Joining =>
            {
                Change::Rejoined(url)
            }
            Some(_) => Change::None,
        }
    }

    fn leave(&mut self, node: &NodeId) -> Change {
        match self.members.remove(node) {
            Some(_) => Change::Left,
            None => Change::None,
        }
    }

    /// How many members there are.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.members.len()
    }

    /// The member's base URL.
    #[cfg(test)]
    fn url(&self, node: &NodeId) -> Option<&str> {
        self.members.get(node).map(|m| m.url.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use certs::signing::{PresenceSigner, RootKey, SignatureAlgorithm, SigningKey, Validity};
    use domain::presence::Presence;
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn node(i: u8) -> NodeId {
        NodeId::new(format!("broadcast{i}")).expect("valid")
    }

    /// A membership checking against a fresh root, and a signer with an edge key it
    /// certified.
    fn cluster() -> (Membership, PresenceSigner) {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let key = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        let cert = root
            .certify_edge(
                key.public_key(),
                NodeId::new("broadcast").expect("valid"),
                Validity::new(NOW - 1, NOW + 1).expect("valid"),
            )
            .expect("certified");
        (
            Membership::new(PresenceVerifier::new(root.public_key())),
            PresenceSigner::new(key, &cert).expect("signer"),
        )
    }

    fn unsigned(role: Role, state: PresenceState, url: Option<&str>) -> Presence {
        Presence {
            role,
            state,
            url: url.map(str::to_owned),
            direct_url: None,
        }
    }

    /// Presence payloads of broadcast nodes, signed with the cluster's edge key.
    struct Say<'a>(&'a PresenceSigner);

    impl Say<'_> {
        fn presence(&self, n: &NodeId, state: PresenceState, url: Option<&str>) -> Vec<u8> {
            self.0
                .sign(n, &unsigned(Role::Broadcast, state, url), NOW * 1000)
        }

        fn offline(&self, n: &NodeId) -> Vec<u8> {
            self.0
                .sign(n, &Presence::offline(Role::Broadcast), NOW * 1000)
        }
    }

    #[test]
    fn join_repeat_ready_move_restart_leave() {
        let (mut m, signer) = cluster();
        let say = Say(&signer);
        let b = node(1);
        let joining = say.presence(&b, PresenceState::Joining, Some("http://a:1/"));
        let ready = say.presence(&b, PresenceState::Ready, Some("http://a:1"));
        assert_eq!(
            m.apply(&b, &joining, NOW),
            Change::Joined("http://a:1".into())
        );
        assert_eq!(m.apply(&b, &joining, NOW), Change::None);
        assert_eq!(m.apply(&b, &ready, NOW), Change::None);
        assert_eq!(m.apply(&b, &ready, NOW), Change::None);
        // Back to joining after ready: it restarted and lost its window.
        assert_eq!(
            m.apply(&b, &joining, NOW),
            Change::Rejoined("http://a:1".into())
        );
        let moved = say.presence(&b, PresenceState::Ready, Some("http://b:2"));
        assert_eq!(
            m.apply(&b, &moved, NOW),
            Change::Rejoined("http://b:2".into())
        );
        assert_eq!(m.url(&b), Some("http://b:2"));
        assert_eq!(m.apply(&b, &say.offline(&b), NOW), Change::Left);
        assert_eq!(m.apply(&b, &say.offline(&b), NOW), Change::None);
        assert_eq!(m.len(), 0);
        // A cleared retained message also ends membership.
        assert_eq!(
            m.apply(&b, &ready, NOW),
            Change::Joined("http://a:1".into())
        );
        assert_eq!(m.apply(&b, b"", NOW), Change::Left);
    }

    #[test]
    fn garbage_unsigned_forged_and_other_roles_change_nothing() {
        let (mut m, signer) = cluster();
        let say = Say(&signer);
        let b = node(1);
        let ready = say.presence(&b, PresenceState::Ready, Some("http://a:1"));
        assert_eq!(
            m.apply(&b, &ready, NOW),
            Change::Joined("http://a:1".into())
        );
        // Another cluster's edge key: its root is not ours.
        let (_, stranger) = cluster();
        let evil = Presence {
            url: Some("http://evil:80".into()),
            ..unsigned(Role::Broadcast, PresenceState::Ready, None)
        };
        for junk in [
            b"{".to_vec(),
            b"\xff".to_vec(),
            br#"{"role":"broadcast","state":"ready","url":"ftp://x"}"#.to_vec(),
            say.presence(&b, PresenceState::Ready, None),
            // Unsigned: a forged address, and a forged offline.
            evil.encode(),
            Presence::offline(Role::Broadcast).encode(),
            stranger.sign(&b, &evil, NOW * 1000),
            // Signed for another node, replayed on this node's topic.
            say.presence(&node(2), PresenceState::Ready, Some("http://c:3")),
        ] {
            assert!(
                matches!(m.apply(&b, &junk, NOW), Change::Invalid(_)),
                "{junk:?}"
            );
        }
        assert_eq!(m.url(&b), Some("http://a:1"));
        assert!(matches!(
            m.apply(&node(3), &evil.encode(), NOW),
            Change::Invalid(_)
        ));
        // Past the edge certificate's validity.
        let later = say.presence(&node(4), PresenceState::Ready, Some("http://d:4"));
        assert!(matches!(
            m.apply(&node(4), &later, NOW + 60),
            Change::Invalid(_)
        ));
        let ingest = unsigned(Role::Ingest, PresenceState::Ready, None).encode();
        assert_eq!(m.apply(&node(2), &ingest, NOW), Change::None);
        assert_eq!(m.len(), 1);
    }

    proptest! {
        /// Membership always equals "the nodes whose last usable message says up", and the
        /// changes reported are consistent with it.
        #[test]
        fn membership_follows_the_last_usable_message(
            ops in proptest::collection::vec((0u8..4, 0u8..8), 0..100),
        ) {
            let (mut m, signer) = cluster();
            let say = Say(&signer);
            let mut model: HashMap<NodeId, String> = HashMap::new();
            for (n, kind) in ops {
                let b = node(n);
                let url = format!("http://h{}:80", kind % 2);
                let payload = match kind {
                    0 | 1 => say.presence(&b, PresenceState::Joining, Some(&url)),
                    2 | 3 => say.presence(&b, PresenceState::Ready, Some(&url)),
                    4 => say.offline(&b),
                    5 => Vec::new(),
                    6 => unsigned(Role::Broadcast, PresenceState::Ready, Some("http://evil:1"))
                        .encode(),
                    _ => b"garbage".to_vec(),
                };
                let was = model.get(&b).cloned();
                let change = m.apply(&b, &payload, NOW);
                match kind {
                    0..=3 => {
                        model.insert(b.clone(), url.clone());
                        match (&was, &change) {
                            (None, Change::Joined(u)) => prop_assert_eq!(u, &url),
                            (Some(old), Change::Rejoined(u)) => {
                                prop_assert_eq!(u, &url);
                                prop_assert!(old != &url || kind < 2);
                            }
                            (Some(old), Change::None) => prop_assert_eq!(old, &url),
                            other => prop_assert!(false, "{:?}", other),
                        }
                    }
                    4 | 5 => {
                        model.remove(&b);
                        prop_assert_eq!(change, if was.is_some() { Change::Left } else { Change::None });
                    }
                    _ => prop_assert!(matches!(change, Change::Invalid(_))),
                }
                prop_assert_eq!(m.len(), model.len());
                for (k, v) in &model {
                    prop_assert_eq!(m.url(k), Some(v.as_str()));
                }
            }
        }
    }
}

//! Who the broadcast nodes are, from their retained presence messages.
//!
//! Sans-IO: a presence topic's node id and payload in, a [`Change`] out. A node is a member
//! while its last presence says `role: broadcast`, `joining` or `ready`, with a `url`; an
//! offline message (a clean shutdown or its last will) or an empty retained payload (the
//! retained message cleared) ends it. A member whose url changes, or that goes back from
//! `ready` to `joining` (it restarted before its last will fired), is a new member: it
//! has lost what it held and must be sent the window again.

use std::collections::BTreeMap;

use domain::presence::{Presence, PresenceState, Role};
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
#[derive(Debug, Default)]
pub(crate) struct Membership {
    members: BTreeMap<NodeId, Member>,
}

impl Membership {
    /// Applies the presence `payload` of `node`.
    pub(crate) fn apply(&mut self, node: &NodeId, payload: &[u8]) -> Change {
        if payload.is_empty() {
            return self.leave(node);
        }
        let presence = match Presence::decode(payload) {
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

    use proptest::prelude::*;

    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId::new(format!("broadcast{i}")).expect("valid")
    }

    fn presence(role: Role, state: PresenceState, url: Option<&str>) -> Vec<u8> {
        Presence {
            role,
            state,
            url: url.map(str::to_owned),
            direct_url: None,
        }
        .encode()
    }

    #[test]
    fn join_repeat_ready_move_restart_leave() {
        let mut m = Membership::default();
        let b = node(1);
        let joining = presence(Role::Broadcast, PresenceState::Joining, Some("http://a:1/"));
        let ready = presence(Role::Broadcast, PresenceState::Ready, Some("http://a:1"));
        assert_eq!(m.apply(&b, &joining), Change::Joined("http://a:1".into()));
        assert_eq!(m.apply(&b, &joining), Change::None);
        assert_eq!(m.apply(&b, &ready), Change::None);
        assert_eq!(m.apply(&b, &ready), Change::None);
        // Back to joining after ready: it restarted and lost its window.
        assert_eq!(m.apply(&b, &joining), Change::Rejoined("http://a:1".into()));
        let moved = presence(Role::Broadcast, PresenceState::Ready, Some("http://b:2"));
        assert_eq!(m.apply(&b, &moved), Change::Rejoined("http://b:2".into()));
        assert_eq!(m.url(&b), Some("http://b:2"));
        assert_eq!(
            m.apply(&b, &Presence::offline(Role::Broadcast).encode()),
            Change::Left
        );
        assert_eq!(
            m.apply(&b, &Presence::offline(Role::Broadcast).encode()),
            Change::None
        );
        assert_eq!(m.len(), 0);
        // A cleared retained message also ends membership.
        assert_eq!(m.apply(&b, &ready), Change::Joined("http://a:1".into()));
        assert_eq!(m.apply(&b, b""), Change::Left);
    }

    #[test]
    fn garbage_and_other_roles_change_nothing() {
        let mut m = Membership::default();
        let b = node(1);
        let ready = presence(Role::Broadcast, PresenceState::Ready, Some("http://a:1"));
        assert_eq!(m.apply(&b, &ready), Change::Joined("http://a:1".into()));
        for junk in [
            &b"{"[..],
            b"\xff",
            br#"{"role":"broadcast","state":"ready","url":"ftp://x"}"#,
            &presence(Role::Broadcast, PresenceState::Ready, None),
        ] {
            assert!(matches!(m.apply(&b, junk), Change::Invalid(_)), "{junk:?}");
        }
        assert_eq!(m.url(&b), Some("http://a:1"));
        let ingest = presence(Role::Ingest, PresenceState::Ready, None);
        assert_eq!(m.apply(&node(2), &ingest), Change::None);
        assert_eq!(m.len(), 1);
    }

    proptest! {
        /// Membership always equals "the nodes whose last usable message says up", and the
        /// changes reported are consistent with it.
        #[test]
        fn membership_follows_the_last_usable_message(
            ops in proptest::collection::vec((0u8..4, 0u8..7), 0..100),
        ) {
            let mut m = Membership::default();
            let mut model: HashMap<NodeId, String> = HashMap::new();
            for (n, kind) in ops {
                let b = node(n);
                let url = format!("http://h{}:80", kind % 2);
                let payload = match kind {
                    0 | 1 => presence(Role::Broadcast, PresenceState::Joining, Some(&url)),
                    2 | 3 => presence(Role::Broadcast, PresenceState::Ready, Some(&url)),
                    4 => Presence::offline(Role::Broadcast).encode(),
                    5 => Vec::new(),
                    _ => b"garbage".to_vec(),
                };
                let was = model.get(&b).cloned();
                let change = m.apply(&b, &payload);
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

//! What a node says about itself on its retained presence topic
//! ([`crate::topics::Topic::Presence`]), and what its last will says when it vanishes.

use serde::{Deserialize, Serialize};

use crate::wire::SignedPresence;
use crate::DomainError;

/// Largest presence payload accepted; a signed presence carries the same JSON under the
/// same cap.
pub const MAX_PRESENCE_LEN: usize = crate::wire::MAX_PRESENCE_JSON_LEN;

/// Which role announces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A broadcast (edge) node: ingest pushes to it, the load balancer routes to it.
    Broadcast,
    /// An ingest node: broadcast nodes wait for its window before they report ready.
    Ingest,
}

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    /// Up and receiving, catching up with the live window; not yet to be given viewers.
    Joining,
    /// Serving the full live window.
    Ready,
    /// Was ready, but is now more than a segment behind live (its pushes lost or late):
    /// keeps serving the viewers it has, and is given new ones only when no node is ready.
    Behind,
    /// Shutting down (a broadcast node): still fed and serving the requests it gets for a
    /// short while, so that viewers move off it without an error, but given no viewers.
    Draining,
    /// Gone (its last will, or a clean shutdown).
    Offline,
}

/// A presence message (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// The role.
    pub role: Role,
    /// The state.
    pub state: PresenceState,
    /// Base URL of the node's HTTP service (`http://10.0.0.5:8080`): where a broadcast node
    /// takes pushes and serves viewers. Absent for offline messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A broadcast node's own public base URL (`https://broadcast1.streaming-cluster.test`),
    /// where the load balancer's direct mode sends viewers so segment bytes bypass it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_url: Option<String>,
}

impl Presence {
    /// The last will / clean-shutdown message of a node of `role`.
    pub fn offline(role: Role) -> Self {
        Presence {
            role,
            state: PresenceState::Offline,
            url: None,
            direct_url: None,
        }
    }

    /// Whether the node is up (joining, ready, behind or draining): ingests push to it.
    pub fn is_up(&self) -> bool {
        self.state != PresenceState::Offline
    }

    /// The JSON payload.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of enums and strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a payload strictly: size-capped, known fields only, and a URL (if any) that is
    /// a plain `http://` or `https://` base URL.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        let presence: Presence = crate::error::decode_json("presence", bytes, MAX_PRESENCE_LEN)?;
        for url in [&presence.url, &presence.direct_url].into_iter().flatten() {
            if !is_base_url(url) {
                return Err(DomainError::InvalidJson {
                    what: "presence",
                    reason: "url must be http(s)://host[:port] with no path, user or spaces".into(),
                });
            }
        }
        Ok(presence)
    }
}

/// A payload on a presence topic: a plain presence (an ingest's, or an outsider's claim), or
/// a broadcast node's signed one, whose signature `certs::signing::PresenceVerifier`
/// checks. Told apart by the first byte: JSON opens with `{`, an envelope with its length's
/// zero high byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// JSON, as [`Presence::encode`] writes it.
    Plain(Presence),
    /// A [`SignedPresence`], not yet verified.
    Signed(SignedPresence),
}

impl Announcement {
    /// Decodes either form strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DomainError> {
        if bytes.first() == Some(&b'{') {
            Presence::decode(bytes).map(Announcement::Plain)
        } else {
            SignedPresence::decode(bytes).map(Announcement::Signed)
        }
    }

    /// What the payload claims, believed or not: for display (the dashboard) and a node's
    /// own echo, never for routing.
    pub fn claimed(&self) -> Result<Presence, DomainError> {
        match self {
            Announcement::Plain(p) => Ok(p.clone()),
            Announcement::Signed(s) => Presence::decode(&s.statement()?.presence),
        }
    }
}

/// Whether a presence can carry `url` as a node's URL: `http://host[:port]` or
/// `https://…`, nothing after the authority but an optional `/`, no credentials, printable
/// ASCII.
pub fn is_base_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    !authority.is_empty()
        && authority.len() <= 255
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        let p = Presence {
            role: Role::Broadcast,
            state: PresenceState::Joining,
            url: Some("http://127.0.0.1:8081".into()),
            direct_url: Some("https://broadcast1.streaming-cluster.test".into()),
        };
        assert_eq!(Presence::decode(&p.encode()), Ok(p));
        let off = Presence::offline(Role::Ingest);
        assert_eq!(Presence::decode(&off.encode()), Ok(off));
        for bad in [
            &br#"{"role":"broadcast","state":"ready","url":"http://u:p@h"}"#[..],
            br#"{"role":"broadcast","state":"ready","url":"ftp://h"}"#,
            br#"{"role":"broadcast","state":"ready","url":"http://h/x"}"#,
            br#"{"role":"broadcast","state":"ready","direct_url":"javascript:x"}"#,
            br#"{"role":"broadcast","state":"gone"}"#,
            br#"{"role":"broadcast","state":"ready","extra":1}"#,
            b"",
            b"\xff\xfe",
        ] {
            assert!(
                Presence::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(Presence::decode(&vec![b' '; MAX_PRESENCE_LEN + 1]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Presence::decode(&bytes);
        }
    }
}

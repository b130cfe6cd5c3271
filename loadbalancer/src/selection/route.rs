//! A request as the choice sees it, and the answer: which node, why, and which cookie to
//! set. Every policy speaks these types, so the proxy reads one answer whatever the mode.

use std::net::IpAddr;
use std::time::SystemTime;

use domain::NodeId;

use crate::cookie::Rejection;

/// The request facts a choice depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The `Cookie:` header value, if any (HTTP/2 crumbs joined with `"; "`).
    pub cookie: Option<&'a str>,
    /// The client's address, for [`Mode::Hash`](super::Mode::Hash).
    pub client: IpAddr,
    /// The time now, for cookie age and issue time.
    pub now: SystemTime,
}

/// Why a node was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A trusted cookie named it and it is eligible.
    StickyHit,
    /// No sticky cookie: a new viewer, given the least-loaded node.
    NewViewer,
    /// A `sealcast_node` cookie that was not trusted (ignored, never followed).
    CookieRejected(Rejection),
    /// A trusted cookie named a node that is gone, unhealthy or not ready; the viewer was
    /// moved to the least-loaded node.
    Moved {
        /// The node the cookie named.
        from: NodeId,
    },
    /// [`Mode::Hash`](super::Mode::Hash): the ring owner of the client address.
    Hashed,
}

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The node to proxy to.
    pub node: NodeId,
    /// Why.
    pub reason: Reason,
    /// A `Set-Cookie` value to add to the response: a new pin, a moved pin, or a refresh.
    pub set_cookie: Option<String>,
}

/// The outcome of [`Backends::choose`](super::Backends::choose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Proxy to this node.
    Route(Route),
    /// No node is eligible: answer 503 (with `Retry-After`), set no cookie.
    NoBackend,
}

impl Choice {
    /// The chosen node, if any.
    pub fn node(&self) -> Option<&NodeId> {
        match self {
            Choice::Route(route) => Some(&route.node),
            Choice::NoBackend => None,
        }
    }
}

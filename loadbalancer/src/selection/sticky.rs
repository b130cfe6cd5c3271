//! The sticky rule of [`Mode::Cookie`](super::Mode::Cookie), the default: a trusted
//! `sealcast_node` cookie naming an eligible node keeps the viewer there (a sticky hit),
//! and the cookie is reissued once it has lived half its lifetime, so a viewer who keeps
//! watching keeps its node. Any other cookie, or none, only says why the viewer is placed
//! anew ([`Reason`]); where is for [`super::least_loaded`], and the new place is pinned
//! with a fresh cookie (`pin`).
//!
//! A node behind live keeps the viewers whose cookie names it: a hit asks only that the
//! node be eligible, not that it be caught up.

use std::time::SystemTime;

use domain::NodeId;

use super::route::{Reason, RequestInfo, Route};
use crate::cookie::{CookieCheck, StickyCookies};

/// What a request's cookie decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sticky {
    /// A sticky hit: the route to the node the cookie names.
    Stay(Route),
    /// The viewer is to be placed anew, for this reason.
    Place(Reason),
}

/// Applies the rule to `request`, `eligible` saying which nodes may be given requests.
pub(super) fn check(
    cookies: &StickyCookies,
    request: &RequestInfo<'_>,
    eligible: impl Fn(&NodeId) -> bool,
) -> Sticky {
    let check = request.cookie.map_or(CookieCheck::Absent, |header| {
        cookies.inspect(header, request.now)
    });
    match check {
        CookieCheck::Valid(sticky) if eligible(&sticky.node) => {
            let set_cookie = cookies
                .needs_refresh(&sticky, request.now)
                .then(|| cookies.issue(&sticky.node, request.now));
            Sticky::Stay(Route {
                node: sticky.node,
                reason: Reason::StickyHit,
                set_cookie,
            })
        }
        CookieCheck::Valid(sticky) => Sticky::Place(Reason::Moved { from: sticky.node }),
        CookieCheck::Rejected(rejection) => Sticky::Place(Reason::CookieRejected(rejection)),
        CookieCheck::Absent => Sticky::Place(Reason::NewViewer),
    }
}

/// The route of a viewer placed on `node`, with the cookie that keeps it there.
pub(super) fn pin(cookies: &StickyCookies, node: NodeId, reason: Reason, now: SystemTime) -> Route {
    let set_cookie = Some(cookies.issue(&node, now));
    Route {
        node,
        reason,
        set_cookie,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie::Rejection;
    use crate::selection::testing::{at, header, node, signer, CLIENT, T0};

    fn decide(cookie: Option<&str>, now: u64, eligible: &[usize]) -> Sticky {
        let request = RequestInfo {
            cookie,
            client: CLIENT,
            now: at(now),
        };
        check(&signer(), &request, |n| {
            eligible.iter().any(|i| node(*i) == *n)
        })
    }

    #[test]
    fn a_trusted_cookie_naming_an_eligible_node_is_a_hit_refreshed_after_half_its_life() {
        let cookie = header(&signer().issue(&node(1), at(T0)));
        assert_eq!(
            decide(Some(&cookie), T0 + 1, &[1, 2]),
            Sticky::Stay(Route {
                node: node(1),
                reason: Reason::StickyHit,
                set_cookie: None,
            })
        );
        let half = signer().max_age().as_secs() / 2;
        let Sticky::Stay(refreshed) = decide(Some(&cookie), T0 + half + 1, &[1]) else {
            panic!("a hit");
        };
        let fresh = header(refreshed.set_cookie.as_deref().expect("reissued"));
        assert_ne!(fresh, cookie);
        // The refreshed cookie outlives the first one.
        let later = T0 + signer().max_age().as_secs() + 10;
        assert!(matches!(decide(Some(&fresh), later, &[1]), Sticky::Stay(_)));
        assert!(matches!(
            decide(Some(&cookie), later, &[1]),
            Sticky::Place(_)
        ));
    }

    #[test]
    fn a_cookie_naming_a_node_that_is_not_eligible_moves_the_viewer() {
        let cookie = header(&signer().issue(&node(9), at(T0)));
        assert_eq!(
            decide(Some(&cookie), T0, &[1, 2]),
            Sticky::Place(Reason::Moved { from: node(9) })
        );
        assert_eq!(decide(None, T0, &[1]), Sticky::Place(Reason::NewViewer));
    }

    #[test]
    fn forged_and_stale_cookies_are_ignored_not_followed() {
        let forged = format!("sealcast_node=v1.broadcast3.{T0}.{}", "ab".repeat(32));
        assert_eq!(
            decide(Some(&forged), T0, &[3]),
            Sticky::Place(Reason::CookieRejected(Rejection::BadMac))
        );
        let old = header(&signer().issue(&node(3), at(T0)));
        let late = T0 + signer().max_age().as_secs() + 1;
        assert_eq!(
            decide(Some(&old), late, &[3]),
            Sticky::Place(Reason::CookieRejected(Rejection::Stale))
        );
    }

    #[test]
    fn a_placed_viewer_is_pinned_by_a_cookie_that_verifies() {
        let route = pin(&signer(), node(2), Reason::NewViewer, at(T0));
        let cookie = header(route.set_cookie.as_deref().expect("a pin"));
        assert_eq!(signer().verify(&cookie, at(T0)), Some(node(2)));
        assert_eq!((route.node, route.reason), (node(2), Reason::NewViewer));
    }
}

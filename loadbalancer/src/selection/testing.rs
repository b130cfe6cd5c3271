//! What the selection tests share: a clock, node names, a cookie signer, ready nodes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::NodeId;

use super::backend::{BackendState, Weight};
use crate::cookie::{CookieKey, StickyCookies};

/// A moment to count from.
pub(super) const T0: u64 = 1_700_000_000;

/// A client address.
pub(super) const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));

pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `broadcast{i}`.
pub(super) fn node(i: usize) -> NodeId {
    NodeId::new(format!("broadcast{i}")).expect("valid")
}

pub(super) fn signer() -> StickyCookies {
    StickyCookies::new(CookieKey::new(&[42u8; 32]).expect("32 bytes"))
}

/// The `Cookie:` header a browser sends back for a `Set-Cookie` value.
pub(super) fn header(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("one item").to_owned()
}

/// Healthy, ready nodes with these weights, `broadcast1` first.
pub(super) fn ready_nodes(weights: &[u32]) -> BTreeMap<NodeId, BackendState> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut state = BackendState::joined(Weight::new(*w).expect("valid"));
            state.healthy = true;
            state.ready = true;
            (node(i + 1), state)
        })
        .collect()
}

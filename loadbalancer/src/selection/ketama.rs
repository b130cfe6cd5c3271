//! [`Mode::Hash`](super::Mode::Hash): a Ketama-style consistent-hash ring of the
//! placeable nodes, for players that drop cookies. A viewer's node follows from its address
//! alone; no cookie is read or set.
//!
//! Each node gets [`POINTS_PER_WEIGHT`] points per unit of weight on a 64-bit circle; a key
//! belongs to the node owning the first point at or after it (wrapping). When a node joins,
//! it takes over only the arcs just before its own points, so about `1/N` of the keys move,
//! all of them to the new node; when a node leaves, only its own keys move.
//!
//! Points are SHA-256 based (not Ketama's MD5), so they do not match other Ketama
//! implementations; they only need to agree between load balancers running this code.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use domain::NodeId;
use sha2::{Digest, Sha256};

use super::backend::{BackendState, Weight};

/// Points per unit of weight: as in Ketama, enough for each node's share of keys to stay
/// within a few percent of its weight.
pub const POINTS_PER_WEIGHT: u32 = 160;

/// Each SHA-256 digest yields four 64-bit points.
const POINTS_PER_DIGEST: u32 = 4;
const POINT_DOMAIN: &[u8] = b"sealcast/v1 ketama point\0";
const KEY_DOMAIN: &[u8] = b"sealcast/v1 ketama client\0";

/// The ring, built once per membership change and read on every hashed request.
#[derive(Clone, Default)]
pub struct Ring {
    /// `(point, index into nodes)`, sorted. Equal points (rare) are ordered by node index,
    /// and nodes are added in id order, so ties resolve the same way on every build.
    points: Vec<(u64, usize)>,
    nodes: Vec<NodeId>,
}

impl Ring {
    /// A ring over `members`. Give them in id order (a `BTreeMap` does) so that every load
    /// balancer builds the same ring from the same membership.
    pub fn build<'a>(members: impl IntoIterator<Item = (&'a NodeId, Weight)>) -> Self {
        let mut ring = Ring::default();
        for (node, weight) in members {
            let index = ring.nodes.len();
            ring.nodes.push(node.clone());
            let digests = weight.get() * (POINTS_PER_WEIGHT / POINTS_PER_DIGEST);
            for i in 0..digests {
                let digest = Sha256::new()
                    .chain_update(POINT_DOMAIN)
                    .chain_update(node.as_str())
                    .chain_update([0])
                    .chain_update(i.to_be_bytes())
                    .finalize();
                for chunk in digest.chunks_exact(8) {
                    ring.points.push((be_u64(chunk), index));
                }
            }
        }
        ring.points.sort_unstable();
        ring
    }

    /// The node owning `key`, or `None` for an empty ring.
    pub fn get(&self, key: u64) -> Option<&NodeId> {
        let at = self.points.partition_point(|&(point, _)| point < key);
        let (_, index) = self.points.get(at).or_else(|| self.points.first())?;
        self.nodes.get(*index)
    }

    /// How many nodes are on the ring.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ring has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("nodes", &self.nodes)
            .field("points", &self.points.len())
            .finish()
    }
}

/// The ring key of a client address. An IPv4 address seen as IPv4-mapped IPv6 (a
/// dual-stack listener) hashes like the plain IPv4 address, so a viewer keeps its node
/// whichever way the socket reports it.
pub fn key_for_addr(addr: IpAddr) -> u64 {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    };
    let mut hasher = Sha256::new();
    hasher.update(KEY_DOMAIN);
    match addr {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    be_u64(&hasher.finalize())
}

/// The hash policy's state: the ring of the placeable nodes, built on the first hashed
/// choice after any change that could alter it.
#[derive(Debug, Default)]
pub(super) struct Ketama {
    /// `None` after such a change.
    ring: Option<Ring>,
}

impl Ketama {
    /// Forgets the ring: membership, weight, eligibility or lag changed.
    pub(super) fn invalidate(&mut self) {
        self.ring = None;
    }

    /// The ring owner of `client` among the placeable nodes of `nodes` (the same set the
    /// ring was last built from, unless [`Ketama::invalidate`] was called since).
    pub(super) fn owner(
        &mut self,
        nodes: &BTreeMap<NodeId, BackendState>,
        client: IpAddr,
    ) -> Option<NodeId> {
        let ring = self.ring.get_or_insert_with(|| {
            let placeable = BackendState::placeable(nodes.values());
            Ring::build(
                nodes
                    .iter()
                    .filter(|(_, state)| placeable(state))
                    .map(|(node, state)| (node, state.weight)),
            )
        });
        ring.get(key_for_addr(client)).cloned()
    }
}

/// The first eight bytes of `bytes` as a big-endian number (zero-padded if shorter).
fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u64::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn nodes(n: usize) -> BTreeMap<NodeId, Weight> {
        (1..=n)
            .map(|i| {
                (
                    NodeId::new(format!("broadcast{i}")).expect("valid"),
                    Weight::ONE,
                )
            })
            .collect()
    }

    fn ring(members: &BTreeMap<NodeId, Weight>) -> Ring {
        Ring::build(members.iter().map(|(n, w)| (n, *w)))
    }

    fn owners(ring: &Ring, keys: &[u64]) -> Vec<NodeId> {
        keys.iter()
            .map(|k| ring.get(*k).expect("non-empty").clone())
            .collect()
    }

    #[test]
    fn empty_ring_owns_nothing_and_points_scale_with_weight() {
        assert_eq!(Ring::default().get(42), None);
        let mut members = nodes(2);
        let heavy = NodeId::new("broadcast1").expect("valid");
        members.insert(heavy, Weight::new(3).expect("valid"));
        let r = ring(&members);
        assert_eq!(r.points.len(), 4 * POINTS_PER_WEIGHT as usize);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn mapped_ipv4_hashes_like_ipv4() {
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(
            key_for_addr(IpAddr::V4(v4)),
            key_for_addr(IpAddr::V6(v4.to_ipv6_mapped()))
        );
        assert_ne!(
            key_for_addr(IpAddr::V4(v4)),
            key_for_addr(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn the_owner_follows_the_address_among_placeable_nodes_until_invalidated() {
        let mut states = crate::selection::testing::ready_nodes(&[1, 1, 1]);
        let client = crate::selection::testing::CLIENT;
        let mut ketama = Ketama::default();
        let first = ketama.owner(&states, client).expect("placeable");
        assert_eq!(ketama.owner(&states, client), Some(first.clone()));
        states.get_mut(&first).expect("known").healthy = false;
        assert_eq!(
            ketama.owner(&states, client),
            Some(first.clone()),
            "the ring is kept until invalidated"
        );
        ketama.invalidate();
        let moved = ketama.owner(&states, client).expect("placeable");
        assert_ne!(moved, first);
        states.get_mut(&first).expect("known").healthy = true;
        ketama.invalidate();
        assert_eq!(ketama.owner(&states, client), Some(first));
        states.clear();
        ketama.invalidate();
        assert_eq!(ketama.owner(&states, client), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn a_join_moves_about_one_nth_of_keys_all_to_the_new_node(
            n in 2usize..10,
            keys in proptest::collection::vec(any::<u64>(), 4000),
        ) {
            let before = nodes(n);
            let after = nodes(n + 1);
            let newcomer = NodeId::new(format!("broadcast{}", n + 1)).expect("valid");
            let (old, new) = (owners(&ring(&before), &keys), owners(&ring(&after), &keys));
            let moved: Vec<_> = old.iter().zip(&new).filter(|(o, n)| o != n).collect();
            for (_, to) in &moved {
                prop_assert_eq!(*to, &newcomer);
            }
            // Expected share 1/(n+1); 160 points per node keep it well within these bounds.
            let share = moved.len() as f64 / keys.len() as f64;
            let ideal = 1.0 / (n + 1) as f64;
            prop_assert!(share > ideal * 0.5 && share < ideal * 1.6, "n={n} share={share} ideal={ideal}");
        }

        #[test]
        fn a_leave_moves_only_the_leavers_keys(
            n in 2usize..10,
            leaver in any::<prop::sample::Index>(),
            keys in proptest::collection::vec(any::<u64>(), 1000),
        ) {
            let before = nodes(n);
            let gone = before.keys().nth(leaver.index(n)).expect("in range").clone();
            let mut after = before.clone();
            after.remove(&gone);
            let (old, new) = (owners(&ring(&before), &keys), owners(&ring(&after), &keys));
            for (o, n) in old.iter().zip(&new) {
                prop_assert!(o == n || *o == gone);
                prop_assert_ne!(n, &gone);
            }
        }
    }
}

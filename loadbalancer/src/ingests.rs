//! Where WHIP publishes go (issue 32), sans-IO: the ingests that announced a WHIP URL in a
//! presence signed by their own certified key, whether each answers its `/healthz`, and
//! which one a request goes to.
//!
//! - `POST /whip/{stream}` (a new session): rendezvous hashing of the stream name over the
//!   eligible ingests (present and healthy), so that while an ingest lives, every publish
//!   of one stream lands on it and a takeover (OBS reconnecting, a browser after an
//!   encoder) stays inside one process; when it leaves, only its streams move. No cookie:
//!   publishers are not viewers.
//! - `/whip/{stream}/{node}/{session}` (an existing session): the ingest it names, which
//!   is where the session is; an ingest that is gone or unhealthy cannot serve it.
//!
//! A retry after a refused connection goes to the next ingest in the same order.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use domain::NodeId;
use sha2::{Digest, Sha256};

const WEIGHT_DOMAIN: &[u8] = b"sealcast/v1 whip ingest\0";

/// What the load balancer knows of one ingest's WHIP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestEntry {
    /// Its WHIP base URL from its presence (`http://10.0.0.7:8088`).
    pub url: String,
    /// The address that URL answered from at the last check.
    pub addr: Option<SocketAddr>,
    /// Whether the last `/healthz` check passed.
    pub healthy: bool,
}

impl IngestEntry {
    /// Present, checked healthy, with an address to connect to.
    pub fn is_eligible(&self) -> bool {
        self.healthy && self.addr.is_some()
    }
}

/// The ingests with a WHIP URL, by node id (ordered, so every load balancer ranks the same
/// way from the same membership).
#[derive(Debug, Clone, Default)]
pub struct Ingests {
    members: BTreeMap<NodeId, IngestEntry>,
}

impl Ingests {
    /// An ingest announced `url` (a new one, or one that moved, starts unchecked).
    /// True when it joined or moved.
    pub fn announce(&mut self, node: NodeId, url: String) -> bool {
        match self.members.get(&node) {
            Some(entry) if entry.url == url => false,
            _ => {
                self.members.insert(
                    node,
                    IngestEntry {
                        url,
                        addr: None,
                        healthy: false,
                    },
                );
                true
            }
        }
    }

    /// An ingest left (offline, its presence cleared, or no WHIP URL any more). True if it
    /// was there.
    pub fn leave(&mut self, node: &NodeId) -> bool {
        self.members.remove(node).is_some()
    }

    /// The result of a health check (or of a refused connection: unhealthy, no address
    /// change).
    pub fn set_health(&mut self, node: &NodeId, addr: Option<SocketAddr>, healthy: bool) {
        if let Some(entry) = self.members.get_mut(node) {
            if addr.is_some() {
                entry.addr = addr;
            }
            entry.healthy = healthy;
        }
    }

    /// One ingest.
    pub fn get(&self, node: &NodeId) -> Option<&IngestEntry> {
        self.members.get(node)
    }

    /// Every ingest and its URL (for the health checks).
    pub fn members(&self) -> impl Iterator<Item = (&NodeId, &IngestEntry)> {
        self.members.iter()
    }

    /// How many ingests can take a publish now.
    pub fn eligible(&self) -> usize {
        self.members.values().filter(|e| e.is_eligible()).count()
    }

    /// The eligible ingests in the order a new session of `stream` tries them:
    /// highest rendezvous weight first.
    pub fn rank(&self, stream: &str) -> Vec<(NodeId, SocketAddr)> {
        let mut ranked: Vec<(u64, &NodeId, SocketAddr)> = self
            .members
            .iter()
            .filter_map(|(node, e)| {
                Some((weight(stream, node), node, e.addr.filter(|_| e.healthy)?))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        ranked
            .into_iter()
            .map(|(_, node, addr)| (node.clone(), addr))
            .collect()
    }

    /// Where an existing session on `node` is, if that ingest can serve it.
    pub fn session(&self, node: &NodeId) -> Option<SocketAddr> {
        self.members
            .get(node)
            .filter(|e| e.healthy)
            .and_then(|e| e.addr)
    }
}

/// The rendezvous weight of `node` for `stream`: the first eight bytes of a SHA-256 over
/// both, domain-separated.
fn weight(stream: &str, node: &NodeId) -> u64 {
    let digest = Sha256::new()
        .chain_update(WEIGHT_DOMAIN)
        .chain_update(stream.as_bytes())
        .chain_update([0])
        .chain_update(node.as_str().as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(i: usize) -> NodeId {
        NodeId::new(format!("ingest{i}")).expect("valid")
    }

    fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i as u8], 8088))
    }

    fn with(n: usize) -> Ingests {
        let mut ingests = Ingests::default();
        for i in 0..n {
            ingests.announce(node(i), format!("http://ingest{i}:8088"));
            ingests.set_health(&node(i), Some(addr(i)), true);
        }
        ingests
    }

    #[test]
    fn only_checked_ingests_take_publishes() {
        let mut ingests = Ingests::default();
        assert!(ingests.announce(node(1), "http://a:1".into()));
        assert!(!ingests.announce(node(1), "http://a:1".into()));
        assert!(ingests.rank("cam").is_empty());
        ingests.set_health(&node(1), Some(addr(1)), true);
        assert_eq!(ingests.rank("cam"), vec![(node(1), addr(1))]);
        assert_eq!(ingests.session(&node(1)), Some(addr(1)));
        // A move to another URL starts over, unchecked.
        assert!(ingests.announce(node(1), "http://b:1".into()));
        assert!(ingests.rank("cam").is_empty());
        assert_eq!(ingests.session(&node(1)), None);
        ingests.set_health(&node(1), Some(addr(2)), true);
        ingests.set_health(&node(1), None, false);
        assert_eq!(ingests.session(&node(1)), None);
        assert!(ingests.leave(&node(1)));
        assert!(!ingests.leave(&node(1)));
        assert_eq!(ingests.session(&node(2)), None);
    }

    proptest! {
        /// A stream stays on its ingest while that ingest is there; when one leaves, only
        /// the streams that were on it move; the ranking lists each eligible ingest once.
        #[test]
        fn rendezvous_moves_only_what_must_move(
            n in 2usize..8,
            gone in 0usize..8,
            streams in proptest::collection::vec("[a-z0-9]{1,12}", 1..50),
        ) {
            let gone = gone % n;
            let all = with(n);
            let mut fewer = all.clone();
            fewer.leave(&node(gone));
            for stream in &streams {
                let ranked = all.rank(stream);
                prop_assert_eq!(ranked.len(), n);
                let mut seen: Vec<&NodeId> = ranked.iter().map(|(n, _)| n).collect();
                seen.sort();
                seen.dedup();
                prop_assert_eq!(seen.len(), n);
                let before = &ranked[0].0;
                let after = &fewer.rank(stream)[0].0;
                if before != &node(gone) {
                    prop_assert_eq!(before, after);
                } else {
                    prop_assert_eq!(after, &ranked[1].0);
                }
            }
        }
    }
}

//! What the load balancer knows about one broadcast node: its weight and the state every
//! policy reads (health, presence readiness, lag, open requests).

use crate::LoadBalancerError;

/// A node's share of viewers relative to the others: a node of weight 2 is given twice
/// the active connections of a node of weight 1, and twice the arc of the hash ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u32);

impl Weight {
    /// The weight of an ordinary node.
    pub const ONE: Weight = Weight(1);
    /// The largest weight: it bounds the hash ring at 100 × 160 points per node.
    pub const MAX: u32 = 100;

    /// A weight from 1 to [`Weight::MAX`].
    pub fn new(weight: u32) -> Result<Self, LoadBalancerError> {
        if weight == 0 || weight > Self::MAX {
            return Err(LoadBalancerError::InvalidWeight {
                weight,
                max: Self::MAX,
            });
        }
        Ok(Weight(weight))
    }

    /// The weight as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Weight::ONE
    }
}

/// What the load balancer knows about one broadcast node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendState {
    /// The last health check (`/healthz`) passed. False until the first one does, so a
    /// node is never given viewers on the strength of its presence message alone.
    pub healthy: bool,
    /// Its presence says `ready`: it holds the full live window. A joining node is
    /// healthy long before it is ready.
    pub ready: bool,
    /// Its presence says `behind`: ready, but more than a segment behind live. It keeps its
    /// sticky viewers and is given new ones only when no eligible node is caught up.
    pub behind: bool,
    /// Its presence says `draining`: it is shutting down and serves only while no other
    /// node may (its sticky viewers move on their next request, new ones go elsewhere).
    pub draining: bool,
    /// Requests the proxy currently has open to it.
    pub active: u64,
    /// Its share relative to the others.
    pub weight: Weight,
}

impl BackendState {
    /// A node just seen in presence: neither healthy nor ready, nothing open.
    pub fn joined(weight: Weight) -> Self {
        BackendState {
            healthy: false,
            ready: false,
            behind: false,
            draining: false,
            active: 0,
            weight,
        }
    }

    /// Whether the node may be given requests: healthy and ready.
    pub fn is_eligible(&self) -> bool {
        self.healthy && self.ready
    }

    /// Whether the node keeps the viewers it has: eligible and not draining.
    pub fn is_staying(&self) -> bool {
        self.is_eligible() && !self.draining
    }

    /// Whether the node may be given new viewers while some node is: staying and caught
    /// up with live.
    pub fn is_caught_up(&self) -> bool {
        self.is_staying() && !self.behind
    }

    /// Which nodes of `states` new viewers may be placed on: the caught-up ones; when none
    /// is, the staying ones (a node behind live still beats a 503); when none is either,
    /// every eligible one (a draining node too: it still serves). Both placing policies
    /// (least-loaded and the hash ring) ask this, so they agree on it.
    pub fn placeable<'a>(
        mut states: impl Iterator<Item = &'a BackendState> + Clone,
    ) -> fn(&BackendState) -> bool {
        if states.clone().any(BackendState::is_caught_up) {
            BackendState::is_caught_up
        } else if states.any(BackendState::is_staying) {
            BackendState::is_staying
        } else {
            BackendState::is_eligible
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_bounded() {
        assert!(Weight::new(0).is_err());
        assert!(Weight::new(Weight::MAX + 1).is_err());
        assert_eq!(
            Weight::new(Weight::MAX).map(Weight::get).ok(),
            Some(Weight::MAX)
        );
    }

    #[test]
    fn nodes_behind_live_are_placeable_only_when_none_is_caught_up() {
        let mut caught_up = BackendState::joined(Weight::ONE);
        caught_up.healthy = true;
        caught_up.ready = true;
        let mut behind = caught_up.clone();
        behind.behind = true;
        let both = [caught_up.clone(), behind.clone()];
        let placeable = BackendState::placeable(both.iter());
        assert!(placeable(&caught_up) && !placeable(&behind));
        let placeable = BackendState::placeable(std::iter::once(&behind));
        assert!(placeable(&behind));
        // A draining node comes last: after a node behind live, before a 503.
        let mut draining = caught_up.clone();
        draining.draining = true;
        let placeable = BackendState::placeable([behind.clone(), draining.clone()].iter());
        assert!(placeable(&behind) && !placeable(&draining));
        let placeable = BackendState::placeable([caught_up.clone(), draining.clone()].iter());
        assert!(placeable(&caught_up) && !placeable(&draining));
        let placeable = BackendState::placeable(std::iter::once(&draining));
        assert!(placeable(&draining));
        assert!(
            !placeable(&BackendState::joined(Weight::ONE)),
            "never an ineligible one"
        );
    }
}

//! Where a viewer without a say goes under [`Mode::Cookie`](super::Mode::Cookie): the
//! placeable node ([`BackendState::placeable`]) with the fewest active requests per unit
//! of weight. Nodes equally loaded take turns by smooth weighted round-robin, so viewers
//! arriving between requests, when every load is zero, still spread evenly and in
//! proportion to weight, even when they share one address.

use std::collections::BTreeMap;

use domain::NodeId;

use super::backend::BackendState;

/// The round-robin credit of every node that has been in a tie, kept between choices.
#[derive(Debug, Default)]
pub(super) struct LeastLoaded {
    /// Smooth weighted round-robin credit, used only to break ties in load. A node not
    /// listed has none yet.
    credits: BTreeMap<NodeId, i64>,
}

impl LeastLoaded {
    /// The placeable node of `nodes` with the least `active / weight`; among equals, the
    /// one whose credit is highest (first by id on a tie). `None` when none is placeable.
    pub(super) fn pick(&mut self, nodes: &BTreeMap<NodeId, BackendState>) -> Option<NodeId> {
        let placeable = BackendState::placeable(nodes.values());
        // Compare active_a / weight_a with active_b / weight_b without division.
        let load =
            |state: &BackendState| (u128::from(state.active), u128::from(state.weight.get()));
        let lighter = |a: (u128, u128), b: (u128, u128)| a.0 * b.1 < b.0 * a.1;
        let same = |a: (u128, u128), b: (u128, u128)| a.0 * b.1 == b.0 * a.1;

        let mut least: Option<(u128, u128)> = None;
        for state in nodes.values().filter(|s| placeable(s)) {
            let l = load(state);
            if least.is_none_or(|best| lighter(l, best)) {
                least = Some(l);
            }
        }
        let least = least?;

        let mut total: i64 = 0;
        let mut chosen: Option<(&NodeId, i64)> = None;
        for (node, state) in nodes
            .iter()
            .filter(|(_, s)| placeable(s) && same(load(s), least))
        {
            let weight = i64::from(state.weight.get());
            total += weight;
            let credit = match self.credits.get_mut(node) {
                Some(credit) => {
                    *credit += weight;
                    *credit
                }
                None => {
                    self.credits.insert(node.clone(), weight);
                    weight
                }
            };
            if chosen.is_none_or(|(_, best)| credit > best) {
                chosen = Some((node, credit));
            }
        }
        let (node, _) = chosen?;
        if let Some(credit) = self.credits.get_mut(node) {
            *credit -= total;
        }
        Some(node.clone())
    }

    /// Drops what is kept about a node that left: if it comes back it starts afresh.
    pub(super) fn forget(&mut self, node: &NodeId) {
        self.credits.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::selection::testing::{node, ready_nodes as nodes};

    #[test]
    fn the_least_loaded_placeable_node_is_chosen() {
        let mut states = nodes(&[1, 1, 1]);
        states.get_mut(&node(1)).expect("known").active = 3;
        states.get_mut(&node(2)).expect("known").active = 1;
        states.get_mut(&node(3)).expect("known").active = 2;
        let mut policy = LeastLoaded::default();
        assert_eq!(policy.pick(&states), Some(node(2)));
        states.get_mut(&node(2)).expect("known").healthy = false;
        assert_eq!(policy.pick(&states), Some(node(3)));
        states.get_mut(&node(1)).expect("known").behind = true;
        states.get_mut(&node(3)).expect("known").behind = true;
        assert_eq!(policy.pick(&states), Some(node(3)), "all behind: still one");
        states.clear();
        assert_eq!(policy.pick(&states), None);
    }

    #[test]
    fn weights_scale_the_share_of_held_connections() {
        let mut states = nodes(&[2, 1]);
        let mut policy = LeastLoaded::default();
        for _ in 0..30 {
            let chosen = policy.pick(&states).expect("placeable");
            states.get_mut(&chosen).expect("known").active += 1;
        }
        let active = |i| states[&node(i)].active;
        assert_eq!((active(1), active(2)), (20, 10));
    }

    #[test]
    fn weights_scale_the_share_of_short_requests_too() {
        let states = nodes(&[3, 1]);
        let mut policy = LeastLoaded::default();
        let firsts = (0..40)
            .filter(|_| policy.pick(&states) == Some(node(1)))
            .count();
        assert_eq!(firsts, 30);
    }

    proptest! {
        #[test]
        fn viewers_spread_within_one(
            n in 1usize..8,
            m in 0usize..200,
            hold in any::<bool>(),
        ) {
            // With `hold` every viewer keeps its connection open (load decides); without,
            // every load is zero when the next viewer arrives (the round-robin tie-break
            // decides).
            let mut states = nodes(&vec![1; n]);
            let mut policy = LeastLoaded::default();
            let mut counts = vec![0usize; n + 1];
            for _ in 0..m {
                let chosen = policy.pick(&states).expect("placeable");
                if hold {
                    states.get_mut(&chosen).expect("known").active += 1;
                }
                let i: usize = chosen.as_str().trim_start_matches("broadcast").parse().expect("ours");
                counts[i] += 1;
            }
            let counts = &counts[1..];
            let (min, max) = (counts.iter().min(), counts.iter().max());
            prop_assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1), "{counts:?}");
        }
    }
}

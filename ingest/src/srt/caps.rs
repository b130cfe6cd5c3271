//! How many SRT sessions may be open, in all and per caller address, sans-IO.
//!
//! A session counts from the moment its caller's handshake reaches access control (before
//! its stream key is checked) until it ends, so a caller cannot try keys faster than its
//! per-address share allows, and no address can take every slot.

use std::collections::HashMap;
use std::net::IpAddr;

/// Why a session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverCap {
    /// Every slot of the listener is taken.
    Total,
    /// This address has all the sessions it may have.
    PerAddress,
}

/// The open sessions, in all and by caller address.
#[derive(Debug, Clone)]
pub(crate) struct SessionCaps {
    max_total: usize,
    max_per_address: usize,
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl SessionCaps {
    /// At most `max_total` sessions, `max_per_address` of them from one address.
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Self {
        SessionCaps {
            max_total,
            max_per_address,
            total: 0,
            by_address: HashMap::new(),
        }
    }

    /// Opens a session for `address`, if the caps allow.
    pub(crate) fn open(&mut self, address: IpAddr) -> Result<(), OverCap> {
        if self.total >= self.max_total {
            return Err(OverCap::Total);
        }
        let open = self.by_address.entry(address).or_default();
        if *open >= self.max_per_address {
            return Err(OverCap::PerAddress);
        }
        *open += 1;
        self.total += 1;
        Ok(())
    }

    /// Closes a session [`SessionCaps::open`] opened for `address`.
    pub(crate) fn close(&mut self, address: IpAddr) {
        if let Some(open) = self.by_address.get_mut(&address) {
            *open -= 1;
            self.total -= 1;
            if *open == 0 {
                self.by_address.remove(&address);
            }
        }
    }

    /// Sessions open now.
    #[cfg(test)]
    pub(crate) fn open_sessions(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn per_address_then_total() {
        let mut caps = SessionCaps::new(3, 2);
        assert_eq!(caps.open(ip(1)), Ok(()));
        assert_eq!(caps.open(ip(1)), Ok(()));
        assert_eq!(caps.open(ip(1)), Err(OverCap::PerAddress));
        assert_eq!(caps.open(ip(2)), Ok(()));
        assert_eq!(caps.open(ip(3)), Err(OverCap::Total));
        caps.close(ip(1));
        assert_eq!(caps.open(ip(3)), Ok(()));
        // Closing what was never opened changes nothing.
        caps.close(ip(9));
        assert_eq!(caps.open_sessions(), 3);
    }

    proptest! {
        /// Whatever opens and closes arrive, the counts never pass the caps, and once every
        /// opened session closed nothing is left.
        #[test]
        fn caps_hold(
            max_total in 1usize..8,
            max_per in 1usize..4,
            ops in proptest::collection::vec((any::<bool>(), 0u8..4), 0..80),
        ) {
            let mut caps = SessionCaps::new(max_total, max_per);
            let mut opened: Vec<IpAddr> = Vec::new();
            for (open, n) in ops {
                if open {
                    if caps.open(ip(n)).is_ok() {
                        opened.push(ip(n));
                    }
                } else if let Some(i) = opened.iter().position(|a| *a == ip(n)) {
                    caps.close(opened.swap_remove(i));
                }
                prop_assert!(caps.open_sessions() <= max_total);
                prop_assert_eq!(caps.open_sessions(), opened.len());
                for a in 0..4 {
                    prop_assert!(opened.iter().filter(|o| **o == ip(a)).count() <= max_per);
                }
            }
            for a in opened.drain(..) {
                caps.close(a);
            }
            prop_assert_eq!(caps.open_sessions(), 0);
            prop_assert!(caps.by_address.is_empty());
        }
    }
}

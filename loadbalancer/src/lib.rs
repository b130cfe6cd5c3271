//! sealcast lb: the sticky-session HTTPS load balancer in front of the broadcast nodes.
//!
//! Not built yet (it arrives with the load-balancer issue, on Pingora): until then
//! `sealcast up` prints a broadcast node's own URL as the player URL. This crate exists so
//! the workspace already has the shape of the design card.

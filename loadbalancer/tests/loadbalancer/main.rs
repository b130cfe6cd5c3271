//! loadbalancer's integration tests, one binary (linking Pingora into a test binary is the
//! slow part of a build; one per crate links it once):
//!
//! - `proxy`: the load balancer started as `sealcast lb` starts it, against an embedded
//!   broker and two nodes;
//! - `failover`: a node that closes new connections unanswered (stopping) is passed over;
//! - `reload`: the server certificate follows its files;
//! - `origin`: behind a cache tier, in the log, and in direct mode (issue 45);
//! - `quic_door_io`: the QUIC front door's sockets (issue 48).

mod failover;
mod origin;
mod proxy;
mod quic_door_io;
mod reload;

//! The QUIC front door (issue 48): viewers are to reach the MoQ relay tier on one published
//! UDP port of the load balancer, which forwards their datagrams to a relay chosen per
//! viewer address. Pingora proxies TCP only; the door is a plain L4 forwarder beside it,
//! not a QUIC endpoint: it terminates nothing and reads no packet.
//!
//! - [`table`]: the sans-IO flow table (stickiness by rendezvous hashing, the flow cap,
//!   idle expiry, relays taken out and flows moved), property-tested.
//!
//! The sockets around it (one facing viewers, one per flow towards its relay) and the
//! relay list (DNS, TCP checks) come with its wiring into `sealcast lb`.

pub mod table;

pub use table::{DoorLimits, DropReason, FlowTable, Verdict};

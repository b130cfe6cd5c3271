//! The cluster's shared I/O plumbing: what every role (`ingest`, `broadcast`, the load
//! balancer) needs from the network and none may import from another role. The control
//! plane's MQTT connection and broker, and the loop every TCP server accepts with.
//!
//! - [`bus`]: [`connect`] keeps a connection to each broker up (reconnecting with backoff,
//!   subscribing again after every connect), hands incoming messages over with their topic
//!   already parsed into a [`domain::topics::Topic`], and publishes on typed topics only.
//!   Several brokers are independent peers: the client is on all of them, so losing one
//!   costs nothing.
//! - [`twins`]: sans-IO, the first copy of a message that several brokers brought.
//! - `broker` (feature `broker`): `EmbeddedBroker`, rumqttd on a loopback port.
//! - [`accept`]: [`AcceptLoop`], the one bounded accept loop (connection cap, doubling
//!   backoff on accept errors, shutdown that joins every connection's task) of the RTMP
//!   server, the broadcast node's HTTP server and the metrics listeners.
//! - [`liveness`]: [`Liveness`], which listener tasks of a role are running: `/healthz`
//!   fails and the role exits non-zero when one stops unasked.
//! - [`metrics_server`]: the small `/metrics` + `/healthz` HTTP server of a standalone
//!   ingest and of the load balancer, on that loop.
//! - [`strikes`]: [`Strikes`], sans-IO backoff per client address on failed secret
//!   attempts (the API's keys, the ingest's stream keys).
//!
//! What the messages mean is each role's business (`ingest`, `broadcast`); nothing here
//! decodes a payload.

pub mod accept;
#[cfg(feature = "broker")]
pub mod broker;
pub mod bus;
pub mod error;
pub mod liveness;
pub mod metrics_server;
pub mod strikes;
pub mod twins;

pub use accept::{Accept, AcceptLoop, Backoff, Handler};
#[cfg(feature = "broker")]
pub use broker::{EmbeddedBroker, EMBEDDED_BROKER_USER};
pub use bus::{connect, Bus, BusEvent, BusOptions, Message, Qos};
pub use error::PlumbingError;
pub use liveness::{ListenerGuard, Liveness};
pub use strikes::{StrikePolicy, Strikes};

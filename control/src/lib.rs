//! The control plane's plumbing: one MQTT connection per role with typed topics, and the
//! embedded broker that `sealcast up` runs on loopback.
//!
//! - [`bus`]: [`connect`] keeps a connection to the broker up (reconnecting with backoff,
//!   subscribing again after every connect), hands incoming messages over with their topic
//!   already parsed into a [`domain::topics::Topic`], and publishes on typed topics only.
//! - `broker` (feature `broker`): `EmbeddedBroker`, rumqttd on a loopback port.
//!
//! What the messages mean is each role's business (`ingest`, `broadcast`); nothing here
//! decodes a payload.

#[cfg(feature = "broker")]
pub mod broker;
pub mod bus;
pub mod error;

#[cfg(feature = "broker")]
pub use broker::{EmbeddedBroker, EMBEDDED_BROKER_USER};
pub use bus::{connect, Bus, BusEvent, BusOptions, Message, Qos};
pub use error::ControlError;

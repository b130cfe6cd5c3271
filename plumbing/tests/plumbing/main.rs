//! control's integration tests, one binary (linking a test binary is the slow part of a
//! build; one per crate links the crate and its dependencies once):
//!
//! - `bus`: the MQTT bus against real brokers, the embedded one and a throwaway Mosquitto;
//! - `brokers`: the bus against two Mosquitto brokers at once, one of them killed;
//! - `metrics_limits`: the metrics listener within its limits (connection cap, header
//!   deadline).

mod brokers;
mod bus;
mod metrics_limits;
mod support;

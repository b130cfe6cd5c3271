//! The crate's one error type.

/// What went wrong on the control plane.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlumbingError {
    /// The connection task is gone (shut down); nothing can be published any more.
    #[error("the MQTT connection is closed")]
    Closed,
    /// The connection could not take a request without waiting: its queue is full (the
    /// broker has been away), it has ended, or (for an advisory message) it is not
    /// connected.
    #[error("the MQTT connection is not taking messages now")]
    Busy,
    /// The embedded broker could not start.
    #[error("the embedded MQTT broker could not start: {0}")]
    Broker(String),
    /// No free loopback port could be found for the embedded broker.
    #[error("finding a port for the embedded MQTT broker")]
    Port(#[source] std::io::Error),
}

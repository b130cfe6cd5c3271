//! The one error type of the load-balancer crate.
//!
//! Every variant is a configuration or start-up failure (a value out of range, a
//! certificate that does not load, a listener that cannot be used), never a per-request
//! failure: a bad cookie or an empty backend set is an ordinary outcome of
//! [`crate::cookie::CookieCheck`] or [`crate::selection::Choice`], and a failing node is
//! taken out of rotation.

use std::path::PathBuf;

/// Why the load balancer, or one of its values, could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadBalancerError {
    /// The sticky-cookie key is shorter than HMAC-SHA256 needs for full strength.
    #[error("the sticky-cookie key is {len} bytes; use at least {min} random bytes")]
    CookieKeyTooShort {
        /// The length given.
        len: usize,
        /// The least accepted length.
        min: usize,
    },
    /// A cookie lifetime outside what browsers honour (RFC 6265bis caps it at 400 days) or
    /// shorter than one second (the unit of `Max-Age`).
    #[error("the sticky-cookie max age is {secs} s; use 1 s to {max_secs} s")]
    InvalidCookieMaxAge {
        /// The lifetime given, in whole seconds.
        secs: u64,
        /// The longest accepted lifetime, in seconds.
        max_secs: u64,
    },
    /// A clock-skew allowance so large that a cookie from the far future would be trusted.
    #[error("the sticky-cookie clock-skew allowance is {secs} s; use at most {max_secs} s")]
    InvalidClockSkew {
        /// The allowance given, in whole seconds.
        secs: u64,
        /// The largest accepted allowance, in seconds.
        max_secs: u64,
    },
    /// A backend weight of zero (a node that should get nothing should leave instead) or
    /// above the cap that bounds the size of the hash ring.
    #[error("backend weight {weight} is out of range; use 1 to {max}")]
    InvalidWeight {
        /// The weight given.
        weight: u32,
        /// The largest accepted weight.
        max: u32,
    },
    /// The server certificate or key file does not load (or they do not belong together).
    #[error("TLS certificate file {}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A listener could not be used.
    #[error("{what}: {source}")]
    Io {
        /// Which one.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A QUIC front-door socket was given with no relays to send viewers to.
    #[error("the QUIC front door has a socket but no relays (--moq-relays)")]
    QuicDoorWithoutRelays,
    /// Pingora refused a setting.
    #[error("{what}: {reason}")]
    Pingora {
        /// Which one.
        what: &'static str,
        /// Pingora's explanation.
        reason: String,
    },
}

impl LoadBalancerError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> LoadBalancerError {
        move |source| LoadBalancerError::Io { what, source }
    }

    pub(crate) fn pingora(
        what: &'static str,
    ) -> impl FnOnce(Box<pingora::Error>) -> LoadBalancerError {
        move |e| LoadBalancerError::Pingora {
            what,
            reason: e.to_string(),
        }
    }
}

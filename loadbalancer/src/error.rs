//! The one error type of the load-balancer crate.
//!
//! Every variant is a configuration mistake caught when a typed value is made (at config
//! load time), never a per-request failure: a bad cookie or an empty backend set is an
//! ordinary outcome of [`crate::cookie::CookieCheck`] or [`crate::select::Choice`].

/// Why a load-balancer value could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
}

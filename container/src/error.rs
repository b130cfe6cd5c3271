//! The one error type of the container layer.
//!
//! Everything this layer reads arrives from a publisher over the network (or from a file a
//! publisher wrote), so every variant except [`ContainerError::Io`] means "the input was
//! bad or beyond what we implement": the publish that produced it is at fault, and retrying
//! the same bytes cannot help.

/// Why bytes could not be read as, or written into, a container or codec structure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The input ended inside a structure. From the network this means a broken or hostile
    /// publisher; from a file, a recording that was cut off.
    #[error("{what} truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// Which structure was being read.
        what: &'static str,
        /// How many bytes the structure needed (at the point we noticed).
        needed: usize,
        /// How many bytes there were.
        available: usize,
    },
    /// A field holds a value the format forbids, or values that contradict each other.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure was being read.
        what: &'static str,
        /// What was wrong, with the offending value.
        reason: String,
    },
    /// Well-formed input that uses a feature this layer does not implement, such as an
    /// encrypted FLV tag or an AAC configuration that ADTS cannot express.
    #[error("unsupported {what}: {detail}")]
    Unsupported {
        /// Which structure was being read or written.
        what: &'static str,
        /// The feature, with the value that selects it.
        detail: String,
    },
    /// A payload is too long for the length field of the container that must carry it.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Which field would overflow.
        what: &'static str,
        /// The length we were asked to write.
        len: usize,
        /// The largest length the field can express.
        max: usize,
    },
    /// Reading an FLV file failed below the container layer.
    #[error("reading FLV: {0}")]
    Io(#[from] std::io::Error),
}

impl ContainerError {
    /// Shorthand for [`ContainerError::Truncated`], used by every parser here and by the ingest's adapters.
    pub fn truncated(what: &'static str, needed: usize, available: usize) -> Self {
        Self::Truncated {
            what,
            needed,
            available,
        }
    }

    /// Shorthand for [`ContainerError::Malformed`].
    pub fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            reason: reason.into(),
        }
    }
}

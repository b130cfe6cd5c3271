//! Names that cross wires and end up in URLs, topics and file names.
//!
//! Every name is validated once, when it is made, so the rest of the code can put it in a
//! path or a topic without escaping: ASCII letters, digits, `_` and `-`, starting with a
//! letter or digit, at most 64 bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

const MAX_NAME_LEN: usize = 64;

/// Whether `s` is a valid name (the rule above), without making one.
pub(crate) fn is_name(s: &str) -> bool {
    let valid_start = s
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let valid_rest = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    s.len() <= MAX_NAME_LEN && valid_start && valid_rest
}

fn check_name(kind: &'static str, s: &str) -> Result<(), DomainError> {
    if !is_name(s) {
        return Err(DomainError::InvalidName {
            kind,
            reason:
                "use 1 to 64 ASCII letters, digits, '_' or '-', starting with a letter or digit",
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Validates `s` and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, DomainError> {
                let s = s.into();
                check_name($kind, &s)?;
                Ok(Self(s))
            }

            /// The name as it appears in URLs and topics.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, DomainError> {
                Self::new(s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The public name of a stream (`/live/{stream}/...`). Never the stream key.
    StreamName,
    "stream name"
);
name_type!(
    /// The name of a rendition (`src`, `720p`, ...), which is also the name of the ladder
    /// rung it is made from.
    RenditionName,
    "rendition name"
);
name_type!(
    /// The identity of a node (`broadcast1`, `ingest1`), sent in `x-sealcast-node`.
    NodeId,
    "node id"
);

/// One publish session of a stream: a new id each time a publisher connects, so segments
/// of an earlier session can never be mistaken for the current one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl SessionId {
    /// Bits of an id below its start time: random, so sessions started in the same
    /// millisecond still differ.
    const RANDOM_BITS: u32 = 20;

    /// The id of a session that started at `unix_ms` (milliseconds since the Unix epoch),
    /// the low bits from `random`: ids of a stream's sessions order as their starts do
    /// (ingests' clocks agreeing), so an edge that hears of two sessions of one stream, from
    /// two ingests in either order, keeps the newer one.
    pub fn starting_at(unix_ms: u64, random: u64) -> Self {
        let mask = (1u64 << Self::RANDOM_BITS) - 1;
        SessionId((unix_ms << Self::RANDOM_BITS) | (random & mask))
    }

    /// Whether this session started after `other` (by [`SessionId::starting_at`]'s order).
    pub fn is_newer_than(self, other: SessionId) -> bool {
        self.0 > other.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Parses the `Display` form only: exactly 16 lowercase hex digits. Anything else (upper
/// case, a sign, another length) is refused, so a session id taken from a URL names exactly
/// one directory.
impl FromStr for SessionId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if s.len() != 16 || !s.bytes().all(lower_hex) {
            return Err(DomainError::InvalidSessionId);
        }
        u64::from_str_radix(s, 16)
            .map(SessionId)
            .map_err(|_| DomainError::InvalidSessionId)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["demo", "720p", "src", "my_stream-2", "A"] {
            assert!(StreamName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_that_could_escape_a_path_or_topic() {
        let long = "a".repeat(65);
        for bad in [
            "",
            "..",
            "a/b",
            "a b",
            "-x",
            "_x",
            "a+b",
            "a#",
            "é",
            long.as_str(),
        ] {
            assert!(StreamName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn session_ids_parse_only_as_displayed() {
        assert_eq!(
            "17a3f0c2b1e4d5a6".parse(),
            Ok(SessionId(0x17a3_f0c2_b1e4_d5a6))
        );
        assert_eq!("0000000000000007".parse(), Ok(SessionId(7)));
        for bad in [
            "",
            "7",
            "17A3F0C2B1E4D5A6",
            "+7a3f0c2b1e4d5a6",
            "17a3f0c2b1e4d5a",
            "17a3f0c2b1e4d5a60",
            "17a3f0c2b1e4d5ag",
            "..",
        ] {
            assert_eq!(
                bad.parse::<SessionId>(),
                Err(DomainError::InvalidSessionId),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn session_ids_round_trip_through_strings(n in any::<u64>()) {
            let id = SessionId(n);
            prop_assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
        }

        #[test]
        fn valid_names_round_trip_through_strings(s in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}") {
            let name = StreamName::new(s.clone()).expect("valid");
            prop_assert_eq!(name.as_str(), s.as_str());
            let back: StreamName = name.to_string().parse().expect("parses");
            prop_assert_eq!(back, name);
        }

        #[test]
        fn anything_accepted_is_safe_in_a_path(s in ".{0,80}") {
            if let Ok(name) = StreamName::new(s) {
                prop_assert!(!name.as_str().contains('/'));
                prop_assert!(!name.as_str().contains(".."));
                prop_assert!(!name.as_str().starts_with('-'));
            }
        }
    }
}

//! The one strict reader, and the codec trait, behind every signed statement's bytes (and
//! the certs crate's certificates, revocations and trust bundles).
//!
//! After `rustls`' `msgs/codec.rs`: a value writes itself onto a `Vec<u8>` and reads itself
//! off a [`Reader`]; [`Codec::from_bytes`] refuses trailing bytes, so exactly one byte
//! string decodes to each value, and a signature over the bytes binds every field. Every
//! read is bounds checked and returns a [`WireError`] naming the field, never a panic;
//! length prefixes are checked against their cap before anything is copied.
//!
//! The conventions every layout here follows: integers big-endian; names (stream,
//! rendition, node) prefixed by their one-byte length; opaque parts (a JSON body, a
//! certificate, a signature) prefixed by a u32 length and capped; flags one byte, 0 or 1.

use crate::DomainError;

/// Why bytes did not decode, before it becomes the caller's error: [`DomainError`] for the
/// statements of this crate, `CertsError::Malformed` for the certs crate's structures.
///
/// Deliberately not an `Error` of its own (the crate has one error enum, [`DomainError`]):
/// it is converted at the decoding entry points and never reported as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes end inside `field`.
    Truncated {
        /// What was being decoded (`segment statement`, `signed statement`).
        what: &'static str,
        /// The field that is incomplete.
        field: &'static str,
    },
    /// Bytes left over after a complete value.
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A length prefix over the cap of its field.
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The field that is too large.
        field: &'static str,
        /// The length the prefix announced.
        len: u64,
        /// The cap for that field.
        max: usize,
    },
    /// The bytes do not open with the expected domain-separation tag.
    WrongTag {
        /// What was expected.
        what: &'static str,
    },
    /// A format version this build does not read.
    UnsupportedVersion {
        /// What was being decoded.
        what: &'static str,
        /// The version on the wire.
        version: u8,
    },
    /// A signature-algorithm code this build does not know.
    UnknownAlgorithm {
        /// What was being decoded.
        what: &'static str,
        /// The code on the wire.
        code: u8,
    },
    /// A one-byte flag that is neither 0 nor 1.
    InvalidFlag {
        /// What was being decoded.
        what: &'static str,
        /// The flag.
        field: &'static str,
    },
    /// A name its type refuses (the type's own error, [`DomainError::InvalidName`]).
    InvalidName {
        /// What was being decoded.
        what: &'static str,
        /// Why the name's type refused it.
        cause: DomainError,
    },
}

impl WireError {
    /// What was being decoded.
    pub fn what(&self) -> &'static str {
        match self {
            Self::Truncated { what, .. }
            | Self::TrailingBytes { what, .. }
            | Self::TooLarge { what, .. }
            | Self::WrongTag { what }
            | Self::UnsupportedVersion { what, .. }
            | Self::UnknownAlgorithm { what, .. }
            | Self::InvalidFlag { what, .. }
            | Self::InvalidName { what, .. } => what,
        }
    }

    /// A short, stable description of the refusal, without the details: for errors that
    /// carry a static reason (the certs crate's `Malformed`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::TrailingBytes { .. } => "trailing bytes",
            Self::TooLarge { .. } => "too large",
            Self::WrongTag { .. } => "wrong domain tag",
            Self::UnsupportedVersion { .. } => "unsupported version",
            Self::UnknownAlgorithm { .. } => "unknown algorithm",
            Self::InvalidFlag { .. } => "invalid flag",
            Self::InvalidName { .. } => "invalid name",
        }
    }
}

impl From<WireError> for DomainError {
    /// The crate's error for each refusal. A wrong tag becomes the generic
    /// [`DomainError::WrongTag`] here; a statement's own decoding reports it as the
    /// statement's error instead ([`super::Statement::WRONG_TAG`]).
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated { what, field } => DomainError::Truncated { what, field },
            WireError::TrailingBytes { what, count } => DomainError::TrailingBytes { what, count },
            WireError::TooLarge {
                what,
                field,
                len,
                max,
            } => DomainError::TooLarge {
                what,
                field,
                len,
                max,
            },
            WireError::WrongTag { what } => DomainError::WrongTag { what },
            WireError::UnsupportedVersion { what, version } => {
                DomainError::UnsupportedVersion { what, version }
            }
            WireError::UnknownAlgorithm { code, .. } => {
                DomainError::UnknownSignatureAlgorithm { code }
            }
            WireError::InvalidFlag { what, field } => DomainError::InvalidFlag { what, field },
            WireError::InvalidName { cause, .. } => cause,
        }
    }
}

/// A value with one canonical encoding.
pub trait Codec: Sized {
    /// What a value is called in errors when it is decoded on its own.
    const WHAT: &'static str;

    /// Appends the canonical bytes to `out`.
    fn write(&self, out: &mut Vec<u8>);

    /// Reads one value off the front of `r`.
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// The canonical bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Exactly one value, with no byte left over.
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(Self::WHAT, bytes);
        let value = Self::read(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// Reads fields off the front of a byte slice; every shortfall is an error naming the field.
#[derive(Debug)]
pub struct Reader<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`, which hold a `what` (named so in errors).
    pub fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Reader { what, rest: bytes }
    }

    /// What is being decoded.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Whether the unread bytes start with `prefix` (to tell statements apart by their tag).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.rest.starts_with(prefix)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(WireError::Truncated {
            what: self.what,
            field,
        })?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// A big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A one-byte flag: 0 or 1, nothing else, so a value has one encoding.
    pub fn flag(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::InvalidFlag {
                what: self.what,
                field,
            }),
        }
    }

    /// The domain-separation tag `tag`. Compared before the length is checked, so that a
    /// short payload of something else (a JSON object, say) is reported as not this kind of
    /// value rather than as truncated.
    pub fn tag(&mut self, tag: &[u8]) -> Result<(), WireError> {
        let head = &self.rest[..self.rest.len().min(tag.len())];
        if head != &tag[..head.len()] {
            return Err(WireError::WrongTag { what: self.what });
        }
        self.take(tag.len(), "domain tag").map(drop)
    }

    /// A version byte that must be `supported`.
    pub fn version(&mut self, supported: u8) -> Result<(), WireError> {
        match self.u8("version")? {
            v if v == supported => Ok(()),
            version => Err(WireError::UnsupportedVersion {
                what: self.what,
                version,
            }),
        }
    }

    /// A one-byte-length-prefixed name, validated by the name type's own constructor.
    /// Bytes that are not UTF-8 become U+FFFD, which no name allows, so they fail the same
    /// validation.
    pub fn name<T>(
        &mut self,
        field: &'static str,
        make: impl FnOnce(String) -> Result<T, DomainError>,
    ) -> Result<T, WireError> {
        let len = usize::from(self.u8(field)?);
        let raw = self.take(len, field)?;
        make(String::from_utf8_lossy(raw).into_owned()).map_err(|cause| WireError::InvalidName {
            what: self.what,
            cause,
        })
    }

    /// A u32-length-prefixed part of at most `max` bytes, refused before anything is copied.
    pub fn part(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let len = self.u32(field)?;
        match usize::try_from(len) {
            Ok(len) if len <= max => self.take(len, field),
            _ => Err(WireError::TooLarge {
                what: self.what,
                field,
                len: u64::from(len),
                max,
            }),
        }
    }

    /// A value that reads itself.
    pub fn read<T: Codec>(&mut self) -> Result<T, WireError> {
        T::read(self)
    }

    /// The end: an error if any byte is left.
    pub fn finish(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes {
                what: self.what,
                count: self.rest.len(),
            })
        }
    }
}

/// Appends `name` with its one-byte length (names are 1 to 64 bytes by construction).
pub fn put_name(out: &mut Vec<u8>, name: &str) {
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
}

/// Appends `part` with its u32 length. A part over 4 GiB is far over any cap, so what holds
/// it never decodes anyway.
pub fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_read_names_its_field_and_finish_refuses_leftovers() {
        let mut r = Reader::new("thing", &[0, 0, 0, 2, b'a', b'b', 7, 2]);
        assert_eq!(r.part("body", 2), Ok(&b"ab"[..]));
        assert_eq!(r.u8("code"), Ok(7));
        assert_eq!(
            r.flag("flag"),
            Err(WireError::InvalidFlag {
                what: "thing",
                field: "flag"
            })
        );
        assert_eq!(
            r.u64("count"),
            Err(WireError::Truncated {
                what: "thing",
                field: "count"
            })
        );
        let r = Reader::new("thing", &[1, 2]);
        assert_eq!(
            r.finish(),
            Err(WireError::TrailingBytes {
                what: "thing",
                count: 2
            })
        );
    }

    #[test]
    fn a_part_over_its_cap_is_refused_from_its_prefix_alone() {
        let mut r = Reader::new("thing", &[0, 0, 0, 3]);
        assert_eq!(
            r.part("body", 2),
            Err(WireError::TooLarge {
                what: "thing",
                field: "body",
                len: 3,
                max: 2
            })
        );
    }

    #[test]
    fn a_tag_is_compared_before_the_length() {
        let tag = b"sealcast/v1/thing\0";
        assert_eq!(
            Reader::new("thing", b"{}").tag(tag),
            Err(WireError::WrongTag { what: "thing" })
        );
        assert_eq!(
            Reader::new("thing", b"sealcast").tag(tag),
            Err(WireError::Truncated {
                what: "thing",
                field: "domain tag"
            })
        );
        let mut r = Reader::new("thing", b"sealcast/v1/thing\0!");
        assert_eq!(r.tag(tag), Ok(()));
        assert_eq!(r.take(1, "rest"), Ok(&b"!"[..]));
        assert_eq!(
            Reader::new("thing", &[2]).version(1),
            Err(WireError::UnsupportedVersion {
                what: "thing",
                version: 2
            })
        );
    }

    proptest! {
        /// What a reader hands out is always a prefix of what is left: no read panics or
        /// runs past the end, whatever the bytes and the lengths asked for.
        #[test]
        fn reads_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            ns in proptest::collection::vec(0usize..80, 0..8),
        ) {
            let mut r = Reader::new("thing", &bytes);
            let mut read = 0;
            for n in ns {
                if let Ok(head) = r.take(n, "field") {
                    prop_assert_eq!(head, &bytes[read..read + n]);
                    read += n;
                }
            }
            let mut r = Reader::new("thing", &bytes);
            while let Ok(part) = r.part("part", 16) {
                prop_assert!(part.len() <= 16);
            }
        }
    }
}

//! The few CBOR items (RFC 8949) C2PA's structures need, written in their shortest form.
//!
//! A writer only: every structure here is made by sealcast, in one fixed field order, so
//! the same inputs always give the same bytes (C2PA 2.4 §13.2.1 asks streaming signers
//! for deterministic output so caches keep working), and a structure whose inputs have
//! fixed sizes always has the same length (what the BMFF hash's box offsets need, see
//! [`super::bmff`]).

/// An encoder appending CBOR items to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Cbor(Vec<u8>);

impl Cbor {
    /// An empty buffer.
    pub fn new() -> Self {
        Cbor(Vec::new())
    }

    fn head(&mut self, major: u8, n: u64) -> &mut Self {
        let m = major << 5;
        match n {
            0..=23 => self.0.push(m | n as u8),
            24..=0xff => self.0.extend_from_slice(&[m | 24, n as u8]),
            0x100..=0xffff => {
                self.0.push(m | 25);
                self.0.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.0.push(m | 26);
                self.0.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.0.push(m | 27);
                self.0.extend_from_slice(&n.to_be_bytes());
            }
        }
        self
    }

    /// An unsigned integer.
    pub fn uint(&mut self, n: u64) -> &mut Self {
        self.head(0, n)
    }

    /// A signed integer.
    pub fn int(&mut self, n: i64) -> &mut Self {
        if n >= 0 {
            self.head(0, n.unsigned_abs())
        } else {
            self.head(1, n.unsigned_abs() - 1)
        }
    }

    /// A byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(2, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// A text string.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.head(3, s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// The head of an array of `n` items (the items follow).
    pub fn array(&mut self, n: usize) -> &mut Self {
        self.head(4, n as u64)
    }

    /// The head of a map of `n` pairs (keys and values follow, alternating).
    pub fn map(&mut self, n: usize) -> &mut Self {
        self.head(5, n as u64)
    }

    /// A tag on the item that follows.
    pub fn tag(&mut self, tag: u64) -> &mut Self {
        self.head(6, tag)
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.0.push(0xf6);
        self
    }

    /// An item encoded elsewhere, as it is.
    pub fn raw(&mut self, item: &[u8]) -> &mut Self {
        self.0.extend_from_slice(item);
        self
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Cbor;

    fn hex(c: &mut Cbor) -> String {
        hex::encode(std::mem::take(c).into_bytes())
    }

    /// Examples from RFC 8949, Appendix A.
    #[test]
    fn encodes_as_rfc_8949_appendix_a() {
        let mut c = Cbor::new();
        assert_eq!(hex(c.uint(0)), "00");
        assert_eq!(hex(c.uint(23)), "17");
        assert_eq!(hex(c.uint(24)), "1818");
        assert_eq!(hex(c.uint(1000)), "1903e8");
        assert_eq!(hex(c.uint(1_000_000)), "1a000f4240");
        assert_eq!(hex(c.uint(1_000_000_000_000)), "1b000000e8d4a51000");
        assert_eq!(hex(c.int(-1)), "20");
        assert_eq!(hex(c.int(-8)), "27");
        assert_eq!(hex(c.int(-1000)), "3903e7");
        assert_eq!(hex(c.bytes(&[1, 2, 3, 4])), "4401020304");
        assert_eq!(hex(c.text("IETF")), "6449455446");
        assert_eq!(hex(c.array(3).uint(1).uint(2).uint(3)), "83010203");
        assert_eq!(hex(c.map(1).uint(1).uint(2)), "a10102");
        assert_eq!(
            hex(c.tag(0).text("2013-03-21T20:04:00Z")),
            "c074323031332d30332d32315432303a30343a30305a"
        );
        assert_eq!(hex(c.null()), "f6");
    }
}

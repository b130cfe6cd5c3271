//! Reading CBOR (RFC 8949) from strangers: the items C2PA's structures use, bounded.
//!
//! What a validator reads (a claim, a COSE_Sign1, a session-keys assertion, a VSI's
//! segment-info-map) comes from whoever served the media, so the reader refuses before it
//! allocates: nesting at most [`MAX_DEPTH`] levels, at most [`MAX_ITEMS`] items in one
//! input, and every declared count or length checked against the bytes that are left.
//! Indefinite lengths, floats and simple values other than `false`, `true` and `null` are
//! refused: nothing C2PA signs here uses them.

use crate::DomainError;

/// The deepest nesting read (C2PA's structures need 6).
pub const MAX_DEPTH: usize = 16;
/// The most items one input may hold.
pub const MAX_ITEMS: usize = 4096;

/// One CBOR item, borrowing strings from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An unsigned integer.
    Uint(u64),
    /// A negative integer, as `-1 - n`.
    Nint(u64),
    /// A byte string.
    Bytes(&'a [u8]),
    /// A text string.
    Text(&'a str),
    /// An array.
    Array(Vec<Value<'a>>),
    /// A map, pairs in the input's order.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// A tagged item.
    Tag(u64, Box<Value<'a>>),
    /// `false` or `true`.
    Bool(bool),
    /// `null`.
    Null,
}

fn bad(reason: &'static str) -> DomainError {
    DomainError::InvalidCbor { reason }
}

impl<'a> Value<'a> {
    /// The value at text key `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.get_by(|k| matches!(k, Value::Text(t) if *t == key))
    }

    /// The value at integer key `key` of a map (COSE header labels).
    pub fn get_int(&self, key: i64) -> Option<&Value<'a>> {
        self.get_by(|k| k.as_int() == Some(key))
    }

    fn get_by(&self, is: impl Fn(&Value<'a>) -> bool) -> Option<&Value<'a>> {
        match self {
            Value::Map(pairs) => pairs.iter().find(|(k, _)| is(k)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// An integer that fits an `i64`.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Uint(n) => i64::try_from(n).ok(),
            Value::Nint(n) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// An unsigned integer.
    pub fn as_uint(&self) -> Option<u64> {
        match *self {
            Value::Uint(n) => Some(n),
            _ => None,
        }
    }

    /// A byte string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A text string.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// An array's items.
    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The item under tag `tag`, or the item itself when it is not tagged.
    pub fn untag(&self, tag: u64) -> &Value<'a> {
        match self {
            Value::Tag(t, inner) if *t == tag => inner,
            other => other,
        }
    }
}

/// Reads exactly one item from `input` (nothing may follow it).
pub fn read(input: &[u8]) -> Result<Value<'_>, DomainError> {
    let mut r = Reader {
        input,
        at: 0,
        items: 0,
    };
    let value = r.item(0)?;
    if r.at != input.len() {
        return Err(bad("bytes after the item"));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
    items: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.input.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DomainError> {
        if n > self.left() {
            return Err(bad("a length past the end"));
        }
        let out = &self.input[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn head(&mut self) -> Result<(u8, u64), DomainError> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let n = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.array()?)),
            26 => u64::from(u32::from_be_bytes(self.array()?)),
            27 => u64::from_be_bytes(self.array()?),
            _ => return Err(bad("an indefinite length or reserved head")),
        };
        Ok((major, n))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DomainError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A count of items that follow, each at least one byte.
    fn count(&self, n: u64, per_item: usize) -> Result<usize, DomainError> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(per_item) <= self.left())
            .ok_or(bad("a count past the end"))
    }

    fn item(&mut self, depth: usize) -> Result<Value<'a>, DomainError> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deep"));
        }
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(bad("too many items"));
        }
        let (major, n) = self.head()?;
        Ok(match major {
            0 => Value::Uint(n),
            1 => Value::Nint(n),
            2 => Value::Bytes(self.take(self.count(n, 1)?)?),
            3 => Value::Text(
                std::str::from_utf8(self.take(self.count(n, 1)?)?)
                    .map_err(|_| bad("a text string that is not UTF-8"))?,
            ),
            4 => {
                let n = self.count(n, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.count(n, 2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    let v = self.item(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            6 => Value::Tag(n, Box::new(self.item(depth + 1)?)),
            _ => match n {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                _ => return Err(bad("a float or an unknown simple value")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::c2pa::cbor::Cbor;
    use proptest::prelude::*;

    #[test]
    fn reads_what_the_writer_writes() {
        let mut c = Cbor::new();
        c.tag(18)
            .array(4)
            .bytes(b"p")
            .map(2)
            .uint(4)
            .bytes(b"kid")
            .text("iat")
            .int(-8)
            .null()
            .text("x");
        let bytes = c.into_bytes();
        let v = read(&bytes).expect("reads");
        let items = v.untag(18).as_array().expect("array");
        assert_eq!(items[0].as_bytes(), Some(&b"p"[..]));
        assert_eq!(
            items[1].get_int(4).and_then(Value::as_bytes),
            Some(&b"kid"[..])
        );
        assert_eq!(items[1].get("iat").and_then(Value::as_int), Some(-8));
        assert_eq!(items[2], Value::Null);
        assert_eq!(items[3].as_text(), Some("x"));
    }

    #[test]
    fn refuses_what_would_allocate_or_recurse_unbounded() {
        // An array claiming 2^32 items in five bytes.
        assert!(read(&[0x9a, 0xff, 0xff, 0xff, 0xff]).is_err());
        // A byte string longer than the input.
        assert!(read(&[0x5a, 0, 1, 0, 0, 1]).is_err());
        // Nesting deeper than the cap: arrays of one array.
        let deep = vec![0x81; MAX_DEPTH + 2];
        assert!(read(&[deep, vec![0]].concat()).is_err());
        // Indefinite length, float, trailing bytes.
        assert!(read(&[0x9f, 0xff]).is_err());
        assert!(read(&[0xf9, 0, 0]).is_err());
        assert!(read(&[0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn any_input_reads_or_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read(&bytes);
        }
    }
}

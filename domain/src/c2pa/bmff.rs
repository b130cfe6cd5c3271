//! ISO BMFF top-level boxes, and what C2PA's `c2pa.hash.bmff.v3` hashes of them.
//!
//! The v2/v3 BMFF hash (C2PA 2.3 §15.12.2) runs over the top-level boxes that no exclusion
//! removes entirely, in file order, each preceded by its file offset as a big-endian u64.
//! So the hash binds every box's position as well as its bytes, and anything inserted
//! before a box (a C2PA `uuid` box in an init segment, a VSI `emsg` before a fragment)
//! must have its final size before the hash is taken: every structure sealcast inserts has
//! a size fixed by its inputs' sizes, so it is built once with a zero hash, measured, and
//! built again.
//!
//! Reading is bounded: at most [`MAX_TOP_LEVEL_BOXES`] boxes, each inside the input.

use crate::DomainError;

/// The most top-level boxes one segment, part or init segment may have.
pub const MAX_TOP_LEVEL_BOXES: usize = 4096;

/// One top-level box: where it starts, its type and all its bytes (header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmffBox<'a> {
    /// Offset of the box's first byte in the input.
    pub offset: u64,
    /// The four-character type.
    pub kind: [u8; 4],
    /// The whole box, header included.
    pub bytes: &'a [u8],
}

impl BmffBox<'_> {
    /// The box's payload (after its header; a `largesize` header is 16 bytes).
    pub fn payload(&self) -> &[u8] {
        let header = if u32::from_be_bytes(header4(self.bytes)) == 1 {
            16
        } else {
            8
        };
        self.bytes.get(header..).unwrap_or_default()
    }
}

fn header4(b: &[u8]) -> [u8; 4] {
    let mut out = [0; 4];
    if let Some(s) = b.get(..4) {
        out.copy_from_slice(s);
    }
    out
}

fn bad(reason: &'static str) -> DomainError {
    DomainError::InvalidBmff { reason }
}

/// The top-level boxes of `data`, which must be exactly a run of whole boxes.
pub fn top_level(data: &[u8]) -> Result<Vec<BmffBox<'_>>, DomainError> {
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        if boxes.len() == MAX_TOP_LEVEL_BOXES {
            return Err(bad("more top-level boxes than allowed"));
        }
        let rest = &data[at..];
        let head = rest.get(..8).ok_or(bad("a box header is cut off"))?;
        let size32 = u32::from_be_bytes(header4(head));
        let (size, header) = match size32 {
            0 => (rest.len() as u64, 8),
            1 => {
                let large = rest.get(8..16).ok_or(bad("a box's largesize is cut off"))?;
                let mut b = [0; 8];
                b.copy_from_slice(large);
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header || size > rest.len() as u64 {
            return Err(bad("a box's size does not fit the data"));
        }
        let len = size as usize;
        let mut kind = [0; 4];
        kind.copy_from_slice(&head[4..8]);
        boxes.push(BmffBox {
            offset: at as u64,
            kind,
            bytes: &rest[..len],
        });
        at += len;
    }
    Ok(boxes)
}

/// The first box of `kind` among `data`'s top-level boxes (bounded as [`top_level`]).
pub fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<BmffBox<'a>>, DomainError> {
    Ok(top_level(data)?.into_iter().find(|b| &b.kind == kind))
}

/// The bytes the v2/v3 BMFF hash takes, in order: for each top-level box that
/// `excluded` does not remove, its offset (big-endian u64) and then the box. Feed them to
/// the hash function one after the other.
pub fn hash_input<'a>(
    boxes: &[BmffBox<'a>],
    excluded: impl Fn(&BmffBox<'a>) -> bool,
) -> Vec<HashInput<'a>> {
    boxes
        .iter()
        .filter(|b| !excluded(b))
        .flat_map(|b| {
            [
                HashInput::Offset(b.offset.to_be_bytes()),
                HashInput::Bytes(b.bytes),
            ]
        })
        .collect()
}

/// One piece of the BMFF hash's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashInput<'a> {
    /// A box's file offset, big-endian.
    Offset([u8; 8]),
    /// A box's bytes.
    Bytes(&'a [u8]),
}

impl HashInput<'_> {
    /// The bytes to hash.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            HashInput::Offset(o) => o,
            HashInput::Bytes(b) => b,
        }
    }
}

/// A box of `kind` around `payload`.
pub fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]) {
    let size = u32::try_from(8 + payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
}

/// The `mfhd` sequence number of the first `moof` among `data`'s top-level boxes.
pub fn first_fragment_sequence(data: &[u8]) -> Result<u32, DomainError> {
    let moof = find(data, b"moof")?.ok_or(bad("no moof"))?;
    let mfhd = top_level(moof.payload())?
        .into_iter()
        .find(|b| &b.kind == b"mfhd")
        .ok_or(bad("a moof without mfhd"))?;
    let seq = mfhd.payload().get(4..8).ok_or(bad("an mfhd is cut off"))?;
    Ok(u32::from_be_bytes(header4(seq)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_box(&mut out, kind, payload);
        out
    }

    #[test]
    fn walks_boxes_and_refuses_what_does_not_fit() {
        let mut data = bx(b"ftyp", b"isom");
        data.extend(bx(b"moov", &[0; 10]));
        let boxes = top_level(&data).expect("boxes");
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[1].offset, 12);
        assert_eq!(&boxes[1].kind, b"moov");
        assert_eq!(boxes[1].payload().len(), 10);
        assert!(top_level(&data[..data.len() - 1]).is_err());
        assert!(top_level(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']).is_err());
        assert!(top_level(&[0, 0, 0, 8, b'f', b'r', b'e']).is_err());
    }

    #[test]
    fn hash_input_puts_each_kept_box_after_its_offset() {
        let mut data = bx(b"emsg", b"x");
        data.extend(bx(b"moof", b"yy"));
        let boxes = top_level(&data).expect("boxes");
        let input = hash_input(&boxes, |b| &b.kind == b"emsg");
        assert_eq!(
            input,
            vec![
                HashInput::Offset(9u64.to_be_bytes()),
                HashInput::Bytes(&data[9..])
            ]
        );
    }

    proptest! {
        /// Any bytes: a walk either fails or covers the input exactly, box by box.
        #[test]
        fn a_walk_covers_the_input_or_fails(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(boxes) = top_level(&data) {
                let mut at = 0u64;
                for b in &boxes {
                    prop_assert_eq!(b.offset, at);
                    at += b.bytes.len() as u64;
                }
                prop_assert_eq!(at, data.len() as u64);
            }
        }
    }
}

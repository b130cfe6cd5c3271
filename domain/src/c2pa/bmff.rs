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

use sha2::{Digest, Sha256};

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

impl<'a> BmffBox<'a> {
    /// The box's payload (after its header; a `largesize` header is 16 bytes).
    pub fn payload(&self) -> &'a [u8] {
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

/// The top-level boxes of `data`, one at a time, from the start: a box that does not fit
/// the data ends the walk with an error. Lets a reader stop after the boxes it needs.
pub fn walk(data: &[u8]) -> Walk<'_> {
    Walk { data, at: 0 }
}

/// The iterator of [`walk`].
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Result<BmffBox<'a>, DomainError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.at..).filter(|r| !r.is_empty())?;
        let item = read_box(rest).map(|(kind, len)| BmffBox {
            offset: self.at as u64,
            kind,
            bytes: &rest[..len],
        });
        // After an error the walk is over.
        self.at = match &item {
            Ok(b) => self.at + b.bytes.len(),
            Err(_) => self.data.len(),
        };
        Some(item)
    }
}

/// The type and length of the box at the start of `rest`.
fn read_box(rest: &[u8]) -> Result<([u8; 4], usize), DomainError> {
    let head = rest.get(..8).ok_or(bad("a box header is cut off"))?;
    let (size, header) = match u32::from_be_bytes(header4(head)) {
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
    let mut kind = [0; 4];
    kind.copy_from_slice(&head[4..8]);
    Ok((kind, size as usize))
}

/// The top-level boxes of `data`, which must be exactly a run of whole boxes, at most
/// [`MAX_TOP_LEVEL_BOXES`] of them.
pub fn top_level(data: &[u8]) -> Result<Vec<BmffBox<'_>>, DomainError> {
    let mut boxes = Vec::new();
    for b in walk(data) {
        if boxes.len() == MAX_TOP_LEVEL_BOXES {
            return Err(bad("more top-level boxes than allowed"));
        }
        boxes.push(b?);
    }
    Ok(boxes)
}

/// The first box of `kind` among `data`'s top-level boxes (the walk stops there).
pub fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<BmffBox<'a>>, DomainError> {
    for b in walk(data).take(MAX_TOP_LEVEL_BOXES) {
        let b = b?;
        if &b.kind == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// The v2/v3 BMFF hash of `boxes` as they sit `shift` bytes further into the file than
/// their offsets say (behind something inserted before them): SHA-256 over each box that
/// `excluded` does not remove, in order, its file offset (big-endian u64) first.
pub fn hash_v3<'a>(
    boxes: &[BmffBox<'a>],
    shift: u64,
    excluded: impl Fn(&BmffBox<'a>) -> bool,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for b in boxes.iter().filter(|b| !excluded(b)) {
        hasher.update((b.offset + shift).to_be_bytes());
        hasher.update(b.bytes);
    }
    hasher.finalize().into()
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
    fn the_hash_puts_each_kept_box_after_its_offset() {
        let mut data = bx(b"emsg", b"x");
        data.extend(bx(b"moof", b"yy"));
        let boxes = top_level(&data).expect("boxes");
        let is_emsg = |b: &BmffBox<'_>| &b.kind == b"emsg";
        let want = |offset: u64| -> [u8; 32] {
            Sha256::digest([&offset.to_be_bytes()[..], &data[9..]].concat()).into()
        };
        assert_eq!(hash_v3(&boxes, 0, is_emsg), want(9));
        assert_eq!(hash_v3(&boxes, 5, is_emsg), want(14));
    }

    #[test]
    fn a_walk_stops_at_its_first_error() {
        let mut data = bx(b"moof", b"yy");
        data.extend_from_slice(&[0, 0, 0, 99, b'm', b'd', b'a', b't']);
        let mut w = walk(&data);
        assert!(w.next().expect("a box").is_ok());
        assert!(w.next().expect("an error").is_err());
        assert!(w.next().is_none());
        assert!(find(&data, b"moof").expect("before the error").is_some());
        assert!(find(&data, b"mdat").is_err());
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

//! JUMBF (ISO 19566-5) superboxes, the container of a C2PA manifest store.
//!
//! A superbox (`jumb`) holds a description box (`jumd`: a type UUID, toggles, a label)
//! and its content: further superboxes, or one content box (`cbor` here). C2PA's type
//! UUIDs are four ASCII letters followed by the ISO 19566 suffix ([`c2pa_uuid`]).

use super::bmff::write_box;

/// The suffix of every C2PA and JUMBF content-type UUID after its four letters.
const SUFFIX: [u8; 12] = [
    0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// The JUMBF type UUID named by four ASCII letters (`c2pa`, `c2ma`, `c2as`, `c2cl`,
/// `c2cs`, `cbor`).
pub fn c2pa_uuid(letters: &[u8; 4]) -> [u8; 16] {
    let mut u = [0; 16];
    u[..4].copy_from_slice(letters);
    u[4..].copy_from_slice(&SUFFIX);
    u
}

/// Requestable, with a label: the toggles C2PA gives every description box.
const TOGGLES: u8 = 0x03;

/// The contents of a superbox (its description and children, without the `jumb` header):
/// what a C2PA hashed URI hashes.
pub fn superbox_payload(kind: &[u8; 4], label: &str, children: &[&[u8]]) -> Vec<u8> {
    let mut jumd = Vec::with_capacity(16 + 1 + label.len() + 1);
    jumd.extend_from_slice(&c2pa_uuid(kind));
    jumd.push(TOGGLES);
    jumd.extend_from_slice(label.as_bytes());
    jumd.push(0);
    let mut out = Vec::new();
    write_box(&mut out, b"jumd", &jumd);
    for c in children {
        out.extend_from_slice(c);
    }
    out
}

/// A whole superbox around [`superbox_payload`].
pub fn superbox(kind: &[u8; 4], label: &str, children: &[&[u8]]) -> Vec<u8> {
    wrap(&superbox_payload(kind, label, children))
}

/// A `jumb` header around a superbox payload.
pub fn wrap(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    write_box(&mut out, b"jumb", payload);
    out
}

/// A CBOR content box.
pub fn cbor_box(cbor: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + cbor.len());
    write_box(&mut out, b"cbor", cbor);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_superbox_is_a_description_and_its_children() {
        let content = cbor_box(&[0xa0]);
        let b = superbox(b"cbor", "c2pa.actions.v2", &[&content]);
        assert_eq!(&b[4..8], b"jumb");
        assert_eq!(&b[12..16], b"jumd");
        assert_eq!(&b[16..20], b"cbor");
        assert_eq!(b[32], TOGGLES);
        assert_eq!(&b[33..48], b"c2pa.actions.v2");
        assert_eq!(b[48], 0);
        assert_eq!(&b[49..], &content[..]);
        assert_eq!(
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
    }
}

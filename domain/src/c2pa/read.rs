//! Reading back what [`super::manifest`] and [`super::vsi`] write, from bytes a stranger
//! served: the structure of an init segment's manifest store and a fragment's VSI `emsg`,
//! without any signature check (that is `certs::c2pa::validate`'s work, which has the
//! keys). Bounded like the rest of this module: box walks end at the input, CBOR is read
//! by [`super::decode`].

use super::bmff::{self, BmffBox};
use super::jumbf::c2pa_uuid;
use super::manifest::C2PA_BOX_UUID;
use super::vsi;
use crate::DomainError;

fn bad(reason: &'static str) -> DomainError {
    DomainError::InvalidBmff { reason }
}

/// One assertion of a manifest, as found.
#[derive(Debug, Clone, Copy)]
pub struct FoundAssertion<'a> {
    /// Its label.
    pub label: &'a str,
    /// Its superbox without the `jumb` header: what the claim's hashed URI hashes.
    pub payload: &'a [u8],
    /// The CBOR of its content box (empty when it has none).
    pub cbor: &'a [u8],
}

/// An init segment's active manifest, as found.
#[derive(Debug, Clone)]
pub struct FoundManifest<'a> {
    /// The manifest's label (`urn:c2pa:…`): what VSIs name as their `manifestId`.
    pub label: &'a str,
    /// The claim's CBOR.
    pub claim: &'a [u8],
    /// The claim signature's CBOR (a COSE_Sign1_Tagged).
    pub signature: &'a [u8],
    /// The assertions, in store order.
    pub assertions: Vec<FoundAssertion<'a>>,
}

impl<'a> FoundManifest<'a> {
    /// The assertion labelled `label`.
    pub fn assertion(&self, label: &str) -> Option<&FoundAssertion<'a>> {
        self.assertions.iter().find(|a| a.label == label)
    }
}

/// A superbox: its type (the four letters of a C2PA type UUID), its label and the bytes
/// of its children.
struct Superbox<'a> {
    kind: [u8; 16],
    label: &'a str,
    children: &'a [u8],
}

/// Reads a `jumb` box's payload: its `jumd` description, then its children.
fn superbox(payload: &[u8]) -> Result<Superbox<'_>, DomainError> {
    let mut boxes = bmff::walk(payload);
    let jumd = boxes.next().ok_or(bad("an empty JUMBF superbox"))??;
    if &jumd.kind != b"jumd" {
        return Err(bad("a JUMBF superbox without its description"));
    }
    let d = jumd.payload();
    let kind: [u8; 16] = d
        .get(..16)
        .and_then(|k| k.try_into().ok())
        .ok_or(bad("a JUMBF description is cut off"))?;
    let toggles = *d.get(16).ok_or(bad("a JUMBF description is cut off"))?;
    let label = if toggles & 0x02 != 0 {
        let rest = &d[17..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(bad("a JUMBF label without its NUL"))?;
        std::str::from_utf8(&rest[..end]).map_err(|_| bad("a JUMBF label that is not UTF-8"))?
    } else {
        ""
    };
    let children = &payload[jumd.bytes.len()..];
    Ok(Superbox {
        kind,
        label,
        children,
    })
}

/// The children of `children` that are superboxes of type `letters`, with their payloads.
fn children_of<'a>(
    children: &'a [u8],
    letters: &[u8; 4],
) -> Result<Vec<(Superbox<'a>, &'a [u8])>, DomainError> {
    let want = c2pa_uuid(letters);
    let mut out = Vec::new();
    for b in bmff::walk(children) {
        let b = b?;
        if &b.kind != b"jumb" {
            continue;
        }
        let s = superbox(b.payload())?;
        if s.kind == want {
            out.push((s, b.payload()));
        }
    }
    Ok(out)
}

/// The only child of type `letters`.
fn only_child<'a>(
    children: &'a [u8],
    letters: &[u8; 4],
    missing: &'static str,
) -> Result<Superbox<'a>, DomainError> {
    let mut found = children_of(children, letters)?;
    match found.len() {
        1 => Ok(found.remove(0).0),
        0 => Err(bad(missing)),
        _ => Err(bad("a manifest part twice")),
    }
}

/// The payload of the first `cbor` content box among `children` (empty when none).
fn cbor_content(children: &[u8]) -> Result<&[u8], DomainError> {
    for b in bmff::walk(children) {
        let b = b?;
        if &b.kind == b"cbor" {
            return Ok(b.payload());
        }
    }
    Ok(&[])
}

/// The top-level C2PA `uuid` box of an init segment, if it has one.
pub fn manifest_box<'a>(boxes: &[BmffBox<'a>]) -> Option<BmffBox<'a>> {
    boxes
        .iter()
        .find(|b| &b.kind == b"uuid" && b.bytes.get(8..24) == Some(&C2PA_BOX_UUID[..]))
        .copied()
}

/// The active (last) manifest of the store in a C2PA `uuid` box.
pub fn manifest<'a>(uuid_box: &BmffBox<'a>) -> Result<FoundManifest<'a>, DomainError> {
    // Extended type (16), version and flags (4), purpose (NUL-terminated), then for the
    // purpose "manifest" an 8-byte offset to auxiliary data, then the store.
    let p = uuid_box.payload();
    let rest = p.get(20..).ok_or(bad("a C2PA box is cut off"))?;
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(bad("a C2PA box purpose without its NUL"))?;
    if &rest[..end] != b"manifest" {
        return Err(bad("a C2PA box whose purpose is not manifest"));
    }
    let store = rest
        .get(end + 1 + 8..)
        .ok_or(bad("a C2PA box is cut off"))?;
    let mut top = bmff::walk(store);
    let store_box = top.next().ok_or(bad("a C2PA box without a store"))??;
    if &store_box.kind != b"jumb" {
        return Err(bad("a C2PA box without a store"));
    }
    let store = superbox(store_box.payload())?;
    if store.kind != c2pa_uuid(b"c2pa") {
        return Err(bad("a C2PA store of another type"));
    }
    let (manifest, _) = children_of(store.children, b"c2ma")?
        .pop()
        .ok_or(bad("a C2PA store without a manifest"))?;
    let assertion_store = only_child(manifest.children, b"c2as", "a manifest without assertions")?;
    let claim = only_child(manifest.children, b"c2cl", "a manifest without a claim")?;
    let signature = only_child(manifest.children, b"c2cs", "a manifest without a signature")?;
    let mut assertions = Vec::new();
    for b in bmff::walk(assertion_store.children) {
        let b = b?;
        if &b.kind != b"jumb" {
            continue;
        }
        let s = superbox(b.payload())?;
        assertions.push(FoundAssertion {
            label: s.label,
            payload: b.payload(),
            cbor: cbor_content(s.children)?,
        });
    }
    Ok(FoundManifest {
        label: manifest.label,
        claim: cbor_content(claim.children)?,
        signature: cbor_content(signature.children)?,
        assertions,
    })
}

/// A fragment's VSI: its `emsg` fields and the fragment's boxes.
#[derive(Debug, Clone)]
pub struct FoundVsi<'a> {
    /// The `emsg`'s `message_data`: a COSE_Sign1_Tagged.
    pub message: &'a [u8],
    /// The `mfhd` sequence number of the fragment's first `moof`.
    pub sequence: u32,
    /// Every top-level box of the fragment, the VSIs included.
    pub boxes: Vec<BmffBox<'a>>,
}

/// The first VSI `emsg` of a fragment (what a validator takes: a segment's own goes
/// first), `None` when its first box is not one.
pub fn vsi(fragment: &[u8]) -> Result<Option<FoundVsi<'_>>, DomainError> {
    let boxes = bmff::top_level(fragment)?;
    let Some(first) = boxes.first().filter(|b| vsi::is_vsi_emsg(b)) else {
        return Ok(None);
    };
    let p = first.payload();
    if p.first() != Some(&0) {
        return Err(bad("a VSI emsg of another version"));
    }
    // version and flags, scheme URI and value (NUL-terminated), then four u32s.
    let mut at = 4;
    for _ in 0..2 {
        let end = p
            .get(at..)
            .and_then(|r| r.iter().position(|&b| b == 0))
            .ok_or(bad("a VSI emsg is cut off"))?;
        at += end + 1;
    }
    let message = p.get(at + 16..).ok_or(bad("a VSI emsg is cut off"))?;
    let sequence = bmff::first_fragment_sequence(fragment)?;
    Ok(Some(FoundVsi {
        message,
        sequence,
        boxes,
    }))
}

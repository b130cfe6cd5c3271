//! Verifiable Segment Info (C2PA 2.3 §19.4): the `emsg` box before a media segment (or,
//! in sealcast, before each LL-HLS part too) whose COSE_Sign1, by a session key, signs the
//! segment-info-map: the fragment's sequence number, the BMFF hash of everything around
//! it, and the id of the manifest that introduced the session key.
//!
//! The hash leaves out every top-level `emsg` that carries VSI (its data matched at
//! offset 12, where the scheme URI starts), so a segment can carry its own VSI and its
//! parts' VSIs alike, and a validator takes the first one it finds: the segment's own,
//! which goes first. docs/provenance.md gives the mapping.

use super::bmff::{self, BmffBox};
use super::cbor::Cbor;
use super::cose;
use crate::DomainError;

/// The `scheme_id_uri` of a VSI `emsg`.
pub const SCHEME: &str = "urn:c2pa:verifiable-segment-info";
/// The `value` of a VSI `emsg` (a full segment).
pub const VALUE: &str = "fseg";
/// Where the scheme URI starts in an `emsg` box (box header, then version and flags).
pub const SCHEME_OFFSET: usize = 12;
/// The hash algorithm named in every BMFF hash here.
pub const HASH_ALG: &str = "sha256";
/// The name C2PA gives a BMFF hash (c2pa-rs writes this one).
pub const HASH_NAME: &str = "jumbf manifest";

/// Who signs a fragment's VSI, and what it says beyond the fragment's own bytes.
#[derive(Debug, Clone, Copy)]
pub struct VsiSigner<'a> {
    /// The label of the manifest whose `c2pa.session-keys` holds the session key.
    pub manifest_id: &'a str,
    /// The session key's id (its COSE_Key `kid`).
    pub kid: &'a [u8],
    /// When the fragment was signed, unix seconds (the COSE `iat`; validators check the
    /// session key's validity at this time).
    pub issued_at: u64,
    /// Units per second of `duration`.
    pub timescale: u32,
    /// How long the fragment lasts, in `timescale` units.
    pub duration: u32,
}

/// Whether a top-level box is a VSI `emsg` (what every VSI hash leaves out).
pub fn is_vsi_emsg(b: &BmffBox<'_>) -> bool {
    &b.kind == b"emsg"
        && b.bytes.get(SCHEME_OFFSET..SCHEME_OFFSET + SCHEME.len()) == Some(SCHEME.as_bytes())
}

/// What a VSI's `sequenceNumber` counts (C2PA 2.3 §19.4.1 allows either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// A fragment (an LL-HLS part, or a segment of one fragment): its first `moof`'s
    /// `mfhd` sequence number.
    Fragment,
    /// A segment of several fragments: its number in the rendition, from 1, one above the
    /// segment before it (segment indexing), so a validator that asks each segment to
    /// follow the last by one (the SVTA's) sees no gap where a segment holds three parts.
    Segment(u32),
}

/// The VSI `emsg` to put in front of `data` (a fragment, or a segment of fragments that
/// may already carry their own VSIs), numbered as `numbering` says and signed by `sign`
/// (Ed25519 over what it is given).
pub fn emsg_for(
    data: &[u8],
    numbering: Numbering,
    signer: &VsiSigner<'_>,
    sign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, DomainError> {
    // Media without a `moof` get no VSI, whatever numbers them.
    let mfhd = bmff::first_fragment_sequence(data)?;
    let sequence = match numbering {
        Numbering::Fragment => mfhd,
        Numbering::Segment(n) => n,
    };
    let boxes = bmff::top_level(data)?;
    // The hash takes every box's offset behind the emsg, whose size the signature
    // cannot change: a draft with a blank signature measures it.
    let draft = emsg(signer, sequence, &[0; 32], &mut cose::blank_signature);
    let hash = bmff::hash_v3(&boxes, draft.len() as u64, is_vsi_emsg);
    let done = emsg(signer, sequence, &hash, sign);
    if done.len() != draft.len() {
        return Err(DomainError::InvalidBmff {
            reason: "a VSI emsg changed size between its draft and its signature",
        });
    }
    Ok(done)
}

/// The bytes a CMAF segment carries before its parts: its own VSI `emsg` when it has one
/// and its parts carry theirs (a segment of several signed parts opens with two VSIs,
/// its own and its first part's), else nothing (unsigned media, or a segment of one part,
/// whose part's VSI covers the whole segment). A segment is this prefix and its parts,
/// joined: what an edge assembles it from (`push_protocol::Assemble`).
pub fn segment_prefix(segment: &[u8]) -> &[u8] {
    let mut boxes = bmff::walk(segment);
    match (boxes.next(), boxes.next()) {
        (Some(Ok(own)), Some(Ok(first_part))) if is_vsi_emsg(&own) && is_vsi_emsg(&first_part) => {
            own.bytes
        }
        _ => &[],
    }
}

/// A BMFF hash map (C2PA `bmff-hash-map`) with `exclusions` already encoded as an array.
pub fn bmff_hash_map(c: &mut Cbor, exclusions: &[u8], hash: &[u8]) {
    c.map(4)
        .text("exclusions")
        .raw(exclusions)
        .text("alg")
        .text(HASH_ALG)
        .text("hash")
        .bytes(hash)
        .text("name")
        .text(HASH_NAME);
}

fn emsg(
    signer: &VsiSigner<'_>,
    sequence: u32,
    hash: &[u8; 32],
    sign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut exclusions = Cbor::new();
    exclusions
        .array(1)
        .map(2)
        .text("xpath")
        .text("/emsg")
        .text("data")
        .array(1)
        .map(2)
        .text("offset")
        .uint(SCHEME_OFFSET as u64)
        .text("value")
        .bytes(SCHEME.as_bytes());
    let mut info = Cbor::new();
    info.map(3).text("sequenceNumber").uint(u64::from(sequence));
    info.text("bmffHash");
    bmff_hash_map(&mut info, &exclusions.into_bytes(), hash);
    info.text("manifestId").text(signer.manifest_id);

    let mut protected = Cbor::new();
    protected
        .map(2)
        .uint(cose::HEADER_ALG)
        .int(cose::ALG_EDDSA)
        .text("iat")
        .uint(signer.issued_at);
    let mut unprotected = Cbor::new();
    unprotected.map(1).uint(cose::HEADER_KID).bytes(signer.kid);
    let sign1 = cose::sign1(
        &protected.into_bytes(),
        &unprotected.into_bytes(),
        &info.into_bytes(),
        true,
        sign,
    );

    let mut payload = vec![0, 0, 0, 0]; // version 0, no flags
    payload.extend_from_slice(SCHEME.as_bytes());
    payload.push(0);
    payload.extend_from_slice(VALUE.as_bytes());
    payload.push(0);
    payload.extend_from_slice(&signer.timescale.to_be_bytes());
    payload.extend_from_slice(&0u32.to_be_bytes()); // presentation_time_delta
    payload.extend_from_slice(&signer.duration.to_be_bytes());
    payload.extend_from_slice(&sequence.to_be_bytes()); // id: unique in the session
    payload.extend_from_slice(&sign1);
    let mut out = Vec::with_capacity(8 + payload.len());
    bmff::write_box(&mut out, b"emsg", &payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emsg_like() -> Vec<u8> {
        let mut payload = vec![0, 0, 0, 0];
        payload.extend_from_slice(SCHEME.as_bytes());
        payload.extend_from_slice(b"\0fseg\0");
        let mut out = Vec::new();
        bmff::write_box(&mut out, b"emsg", &payload);
        out
    }

    #[test]
    fn a_segment_prefix_is_its_own_vsi_before_its_first_parts() {
        let vsi = emsg_like();
        let mut moof = Vec::new();
        bmff::write_box(&mut moof, b"moof", &[0; 8]);
        let part: Vec<u8> = [vsi.clone(), moof.clone()].concat();
        let segment: Vec<u8> = [vsi.clone(), part.clone(), part.clone()].concat();
        assert_eq!(segment_prefix(&segment), &vsi[..]);
        assert!(
            segment_prefix(&part).is_empty(),
            "one part: its VSI is the segment's"
        );
        assert!(segment_prefix(&moof).is_empty(), "unsigned");
        assert!(segment_prefix(&[]).is_empty());
        assert!(segment_prefix(&segment[..vsi.len() + 3]).is_empty());
    }

    /// The `sequenceNumber` a VSI `emsg` signs.
    fn signed_number(emsg: &[u8]) -> u64 {
        let found = crate::c2pa::read::vsi(emsg).expect("read").expect("a VSI");
        let sign1 = crate::c2pa::decode::read(found.message).expect("COSE");
        let sign1 = sign1
            .untag(crate::c2pa::cose::TAG_SIGN1)
            .as_array()
            .expect("COSE_Sign1");
        let payload = sign1[2].as_bytes().expect("attached payload");
        let info = crate::c2pa::decode::read(payload).expect("segment info");
        info.get("sequenceNumber")
            .and_then(|n| n.as_uint())
            .expect("a number")
    }

    #[test]
    fn a_fragment_is_numbered_by_its_mfhd_and_a_segment_by_its_place() {
        let mut mfhd = vec![0, 0, 0, 0];
        mfhd.extend_from_slice(&7u32.to_be_bytes());
        let mut inner = Vec::new();
        bmff::write_box(&mut inner, b"mfhd", &mfhd);
        let mut fragment = Vec::new();
        bmff::write_box(&mut fragment, b"moof", &inner);
        bmff::write_box(&mut fragment, b"mdat", &[1; 8]);
        let signer = VsiSigner {
            manifest_id: "urn:c2pa:test",
            kid: &[1; 16],
            issued_at: 1,
            timescale: 1000,
            duration: 333,
        };
        let blank = &mut |_: &[u8]| vec![0; 64];
        let with = |emsg: Vec<u8>| [emsg, fragment.clone()].concat();
        let own = emsg_for(&fragment, Numbering::Fragment, &signer, blank).expect("VSI");
        assert_eq!(signed_number(&with(own)), 7);
        let own = emsg_for(&fragment, Numbering::Segment(3), &signer, blank).expect("VSI");
        assert_eq!(signed_number(&with(own)), 3);
        let no_moof = &fragment[fragment.len() - 16..];
        assert!(emsg_for(no_moof, Numbering::Segment(3), &signer, blank).is_err());
    }
}

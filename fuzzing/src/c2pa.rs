//! The harness of what the C2PA code reads of CMAF (`domain::c2pa`).

/// CMAF media as the C2PA code reads it (`domain::c2pa`): the top-level box walk covers
/// the bytes exactly or fails; a segment's prefix (what an edge reads before a
/// segment's parts) is nothing or one whole VSI `emsg` at its start; and a VSI made for
/// bytes that hold a `moof` is one VSI `emsg` box, the same size whatever the hash.
pub fn cmaf_c2pa(data: &[u8]) {
    use domain::c2pa::{bmff, vsi};
    if let Ok(boxes) = bmff::top_level(data) {
        let covered: usize = boxes.iter().map(|b| b.bytes.len()).sum();
        assert_eq!(covered, data.len(), "the walk covers the input");
    }
    let prefix = vsi::segment_prefix(data);
    assert!(data.starts_with(prefix));
    if !prefix.is_empty() {
        let first = bmff::top_level(prefix).expect("a whole box");
        assert!(first.len() == 1 && vsi::is_vsi_emsg(&first[0]));
    }
    let signer = vsi::VsiSigner {
        manifest_id: "urn:c2pa:00000000-0000-8000-8000-000000000000",
        kid: &[7; 16],
        issued_at: 1_800_000_000,
        timescale: 1000,
        duration: 333,
    };
    // A fragment's VSI takes its number from its `mfhd`; a segment's is given.
    let numbering = match data.first() {
        Some(&b) if b % 2 == 1 => vsi::Numbering::Segment(u32::from(b)),
        _ => vsi::Numbering::Fragment,
    };
    if let Ok(emsg) = vsi::emsg_for(data, numbering, &signer, &mut |_| vec![0; 64]) {
        let boxes = bmff::top_level(&emsg).expect("one box");
        assert!(boxes.len() == 1 && vsi::is_vsi_emsg(&boxes[0]));
    }
}

/// A viewer's C2PA validator (`certs::c2pa::validate`, what `sealcast verify` runs) on
/// anything a server could send: the input as an init segment (nothing unanchored
/// verifies: [`crate::ROOT_ED25519`] signed no provenance anchor), then as a segment and
/// as a part of a rendition whose init segment verified (one signed once per process by
/// the real signing code, under a root made for it).
pub fn c2pa_validate(data: &[u8]) {
    use certs::c2pa::validate::{InitVerdict, LiveValidator};
    use certs::signing::{RootPublicKey, SignatureAlgorithm};
    const NOW: u64 = 1_800_000_000;
    static SIGNED: std::sync::OnceLock<Option<(RootPublicKey, Vec<u8>)>> =
        std::sync::OnceLock::new();
    if let Ok(root) = RootPublicKey::from_bytes(SignatureAlgorithm::Ed25519, crate::ROOT_ED25519) {
        let verdict = LiveValidator::new(root).admit_init(data, NOW);
        assert!(
            !matches!(verdict, Ok(InitVerdict::Verified { .. })),
            "a manifest verified without an anchor of this root"
        );
    }
    let signed = SIGNED.get_or_init(|| signed_init(NOW));
    let Some((root, init)) = signed else {
        return;
    };
    for part in [false, true] {
        let mut v = LiveValidator::new(root.clone());
        assert!(matches!(
            v.admit_init(init, NOW),
            Ok(InitVerdict::Verified { .. })
        ));
        let _ = v.check_fragment(data, part);
    }
}

/// A CMAF-shaped init segment signed as an ingest signs one, its claim signer anchored by
/// a fresh root: that root's public key and the segment.
fn signed_init(now: u64) -> Option<(certs::signing::RootPublicKey, Vec<u8>)> {
    use certs::c2pa::{LiveSigner, ProvenanceCa};
    use certs::signing::{RootKey, SignatureAlgorithm, Validity};
    use domain::c2pa::bmff::write_box;
    let root = RootKey::generate(SignatureAlgorithm::Ed25519).ok()?;
    let ca = ProvenanceCa::generate("fuzz", now - 86_400).ok()?;
    let anchor = root.anchor_provenance(
        &ca.cert_der().ok()?,
        Validity::new(now - 10, now + 86_400).ok()?,
    );
    let claim = ca
        .issue("fuzz", "ingest1", now - 60)
        .ok()?
        .with_anchor(anchor);
    let live = LiveSigner::new(
        std::sync::Arc::new(claim),
        now - 60,
        std::time::Duration::from_secs(86_400),
        1,
    );
    let mut init = Vec::new();
    write_box(&mut init, b"ftyp", b"cmf2\0\0\0\0cmf2iso6");
    write_box(&mut init, b"moov", &[0; 64]);
    let label = LiveSigner::manifest_label("fuzz", "1", "src");
    let signed = live.sign_init(&init, &label, "fuzz", Vec::new()).ok()?;
    Some((root.public_key(), signed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_harness_reaches_fragments_after_a_verified_init() {
        let (root, init) = super::signed_init(1_800_000_000).expect("signed");
        let mut v = certs::c2pa::validate::LiveValidator::new(root);
        assert!(matches!(
            v.admit_init(&init, 1_800_000_000),
            Ok(certs::c2pa::validate::InitVerdict::Verified { .. })
        ));
    }
}

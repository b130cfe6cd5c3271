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
    if let Ok(emsg) = vsi::emsg_for(data, &signer, &mut |_| vec![0; 64]) {
        let boxes = bmff::top_level(&emsg).expect("one box");
        assert!(boxes.len() == 1 && vsi::is_vsi_emsg(&boxes[0]));
    }
}

/// A viewer's C2PA validator (`certs::c2pa::validate`, what `sealcast verify` runs) on
/// anything a server could send: the input as an init segment (nothing unanchored
/// verifies: [`crate::ROOT_ED25519`] signed no provenance anchor), then as a segment and
/// as a part of a rendition whose init segment verified (the first vector's, signed once
/// per process by the real signing code).
pub fn c2pa_validate(data: &[u8]) {
    use certs::c2pa::validate::{InitVerdict, LiveValidator};
    use certs::c2pa::vectors;
    use certs::signing::{RootPublicKey, SignatureAlgorithm};
    static SIGNED: std::sync::OnceLock<Option<(RootPublicKey, Vec<u8>)>> =
        std::sync::OnceLock::new();
    if let Ok(root) = RootPublicKey::from_bytes(SignatureAlgorithm::Ed25519, crate::ROOT_ED25519) {
        let verdict = LiveValidator::new(root).admit_init(data, vectors::NOW);
        assert!(
            !matches!(verdict, Ok(InitVerdict::Verified { .. })),
            "a manifest verified without an anchor of this root"
        );
    }
    let signed = SIGNED.get_or_init(|| {
        let case = vectors::cases().into_iter().next()?;
        let root = RootPublicKey::from_file_bytes(&case.root_pub).ok()?;
        Some((root, case.steps.first()?.bytes.clone()))
    });
    let Some((root, init)) = signed else {
        return;
    };
    for part in [false, true] {
        let mut v = LiveValidator::new(root.clone());
        assert!(matches!(
            v.admit_init(init, vectors::NOW),
            Ok(InitVerdict::Verified { .. })
        ));
        let _ = v.check_fragment(data, part);
    }
}

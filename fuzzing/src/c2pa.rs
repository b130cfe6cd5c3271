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

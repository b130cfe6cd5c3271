//! The trust chain end to end: root → ingest certificate → segment signature → edge.

use certs::signing::{
    read_private_key, read_public_key, write_private_key, write_public_key, IngestCertificate,
    KeyId, PrivateKey, Revocation, SignatureAlgorithm, TrustStore,
};
use certs::CertsError;
use domain::NodeId;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;

fn chain(alg: SignatureAlgorithm) -> (PrivateKey, PrivateKey, TrustStore, KeyId) {
    let root = PrivateKey::generate(alg).expect("root");
    let ingest = PrivateKey::generate(alg).expect("ingest");
    let cert = IngestCertificate::issue(
        &root,
        ingest.public_key().clone(),
        NodeId::new("ingest1").expect("valid"),
        NOW - 10,
        NOW + 3600,
    )
    .expect("issued");
    let mut store = TrustStore::new(root.public_key().clone());
    let id = store.add_certificate(&cert.encode()).expect("trusted");
    assert_eq!(id, ingest.public_key().key_id());
    (root, ingest, store, id)
}

fn reason(r: Result<(), CertsError>) -> Option<&'static str> {
    r.err().and_then(|e| e.reason())
}

#[test]
fn both_algorithms_sign_and_verify_through_the_chain() {
    for alg in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        let (_, ingest, store, id) = chain(alg);
        let sig = ingest.sign(b"manifest").expect("signs");
        store.verify(id, b"manifest", &sig, NOW).expect("verifies");
        assert_eq!(
            reason(store.verify(id, b"manifesT", &sig, NOW)),
            Some("bad_signature"),
            "{alg:?}"
        );
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert_eq!(
            reason(store.verify(id, b"manifest", &flipped, NOW)),
            Some("bad_signature"),
            "{alg:?}"
        );
    }
}

#[test]
fn expiry_revocation_and_unknown_keys_have_their_reasons() {
    let (root, ingest, mut store, id) = chain(SignatureAlgorithm::Ed25519);
    let sig = ingest.sign(b"m").expect("signs");
    assert_eq!(
        reason(store.verify(id, b"m", &sig, NOW + 3601)),
        Some("expired_key")
    );
    assert_eq!(
        reason(store.verify(id, b"m", &sig, NOW - 11)),
        Some("expired_key")
    );
    assert_eq!(
        reason(store.verify(KeyId([9; 16]), b"m", &sig, NOW)),
        Some("unknown_key")
    );
    let revocation = Revocation::issue(&root, id, NOW).expect("issued");
    store.revoke(&revocation.encode()).expect("root-signed");
    assert_eq!(
        reason(store.verify(id, b"m", &sig, NOW)),
        Some("revoked_key")
    );
}

#[test]
fn another_roots_certificates_and_tampered_ones_are_refused() {
    let (_, _, mut store, _) = chain(SignatureAlgorithm::Ed25519);
    let stranger = PrivateKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let key = PrivateKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let cert = IngestCertificate::issue(
        &stranger,
        key.public_key().clone(),
        NodeId::new("evil").expect("valid"),
        0,
        u64::MAX,
    )
    .expect("issued");
    assert!(matches!(
        store.add_certificate(&cert.encode()),
        Err(CertsError::UntrustedRoot)
    ));
    let forged_revocation =
        Revocation::issue(&stranger, key.public_key().key_id(), NOW).expect("issued");
    assert!(store.revoke(&forged_revocation.encode()).is_err());
}

#[test]
fn a_certificate_with_any_byte_changed_is_refused() {
    let root = PrivateKey::generate(SignatureAlgorithm::Ed25519).expect("root");
    let key = PrivateKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let cert = IngestCertificate::issue(
        &root,
        key.public_key().clone(),
        NodeId::new("ingest1").expect("valid"),
        0,
        100,
    )
    .expect("issued")
    .encode();
    for i in 0..cert.len() {
        let mut store = TrustStore::new(root.public_key().clone());
        let mut bad = cert.clone();
        bad[i] ^= 0x01;
        assert!(
            store.add_certificate(&bad).is_err(),
            "byte {i} changed yet accepted"
        );
    }
}

#[test]
fn key_files_round_trip_and_private_ones_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    for alg in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        let key = PrivateKey::generate(alg).expect("key");
        let path = dir.path().join(format!("{alg:?}.key"));
        write_private_key(&path, &key).expect("written");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_private_key(&path).expect("read");
        assert_eq!(back.public_key(), key.public_key());
        let sig = back.sign(b"x").expect("signs");
        key.public_key().verify(b"x", &sig).expect("same key");
        let pub_path = dir.path().join(format!("{alg:?}.pub"));
        write_public_key(&pub_path, key.public_key()).expect("written");
        assert_eq!(&read_public_key(&pub_path).expect("read"), key.public_key());
    }
    let garbled = dir.path().join("garbled.key");
    std::fs::write(&garbled, b"not a key").expect("write");
    let err = read_private_key(&garbled).expect_err("refused");
    assert!(err.to_string().contains("private key file"), "{err}");
    let missing = read_private_key(&dir.path().join("missing.key")).expect_err("refused");
    assert!(missing.to_string().contains("missing.key"), "{missing}");
}

#[test]
fn private_keys_do_not_show_their_bytes() {
    let key = PrivateKey::generate(SignatureAlgorithm::Ed25519).expect("key");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k");
    write_private_key(&path, &key).expect("written");
    let file = std::fs::read(&path).expect("read");
    // The secret is the 32 bytes after the tag, algorithm byte and length.
    let secret = &file[24 + 1 + 4..24 + 1 + 4 + 32];
    let debug = format!("{key:?}");
    assert!(debug.contains("redacted"));
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!debug.contains(&hex));
    assert!(!debug.contains(&format!("{secret:?}")));
}

proptest! {
    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = IngestCertificate::decode(&bytes);
        let _ = Revocation::decode(&bytes);
    }
}

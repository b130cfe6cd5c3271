//! The server certificate follows its files: a re-issued certificate is served after the
//! next check, a broken file is reported and the previous certificate kept.

use std::time::{SystemTime, UNIX_EPOCH};

use certs::tls::ServerNames;
use certs::TlsDir;
use loadbalancer::tls::{CertificateFiles, ReloadingCertificate};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn reloads_on_change_and_keeps_serving_through_a_bad_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    dir.init(&ServerNames::new(3), now()).expect("certificates");
    let files = CertificateFiles {
        chain: dir.server_chain_path(),
        key: dir.server_key_path(),
    };
    let served = ReloadingCertificate::load(files.clone()).expect("loads");
    let first = served.current().cert[0].clone();
    assert!(!served.reload_if_changed().expect("nothing changed"));

    // `sealcast certs` with more names re-issues the certificate (same key).
    let report = dir
        .init(
            &ServerNames::new(3).with_extra(["192.0.2.7".parse().expect("an address")]),
            now(),
        )
        .expect("re-issued");
    assert!(report.server_issued.is_some());
    assert!(served.reload_if_changed().expect("reloads"));
    let second = served.current().cert[0].clone();
    assert_ne!(first, second, "the new certificate is served");

    // A truncated chain: an error naming the file, and the last good certificate stays.
    let pem = std::fs::read_to_string(&files.chain).expect("chain");
    std::fs::write(&files.chain, &pem[..pem.len() / 3]).expect("truncate");
    let err = served.reload_if_changed().expect_err("a broken chain");
    assert!(err.to_string().contains("server.pem"), "{err}");
    assert_eq!(served.current().cert[0], second);

    // A key that is not the certificate's: refused too.
    std::fs::write(&files.chain, &pem).expect("restore");
    assert!(served.reload_if_changed().expect("good again"));
    let other = tempfile::tempdir().expect("tempdir");
    let other_dir = TlsDir::new(other.path());
    other_dir
        .init(&ServerNames::new(1), now())
        .expect("other certificates");
    std::fs::copy(other_dir.server_key_path(), &files.key).expect("swap key");
    let err = served.reload_if_changed().expect_err("mismatched key");
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert_eq!(served.current().cert[0], second);

    // Missing files at start: a clear error.
    let missing = CertificateFiles {
        chain: tmp.path().join("nope.pem"),
        key: tmp.path().join("nope.key"),
    };
    let err = ReloadingCertificate::load(missing).expect_err("missing");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

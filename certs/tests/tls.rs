//! `TlsDir` end to end: files, renewal, and whether what it writes actually validates.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certs::tls::{
    InitReport, IssueReason, ServerNames, TlsDir, CA_LIFETIME, RENEW_BEFORE, SERVER_LIFETIME,
};
use certs::CertsError;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 24 * 3600;
const HOUR: i64 = 3600;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

fn ders(pem: &str) -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(pem.as_bytes())
        .map(|block| block.expect("PEM").contents)
        .collect()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("X.509").1
}

/// Every file of the directory with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .expect("dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let bytes = fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect()
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .expect("well formed")
        .expect("present")
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).expect("v4")).to_string(),
                _ => std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).expect("v6")).to_string(),
            },
            other => panic!("unexpected name {other:?}"),
        })
        .collect()
}

/// Validates the server chain of `dir` with webpki (what rustls uses) against `ca.pem` alone,
/// at `now`, for `name`.
fn validate(dir: &TlsDir, name: &str, now: u64) -> Result<(), webpki::Error> {
    let ca = ders(&dir.ca_certificate_pem().expect("ca"));
    let ca = CertificateDer::from(ca[0].clone());
    let anchor = webpki::anchor_from_trusted_cert(&ca).expect("anchor");
    let chain: Vec<CertificateDer<'static>> = ders(&dir.server_chain_pem().expect("chain"))
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let leaf = webpki::EndEntityCert::try_from(&chain[0])?;
    leaf.verify_for_usage(
        &[webpki::ring::ECDSA_P256_SHA256],
        &[anchor],
        &chain[1..],
        UnixTime::since_unix_epoch(Duration::from_secs(now)),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )?;
    let name = ServerName::try_from(name).expect("a valid name");
    leaf.verify_is_valid_for_subject_name(&name)
}

fn init(dir: &TlsDir, hosts: &ServerNames, now: u64) -> InitReport {
    dir.init(hosts, now).expect("init")
}

#[test]
fn init_creates_the_four_files_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path().join("certs"));
    let report = init(&dir, &ServerNames::default(), NOW);
    assert_eq!(
        report.written,
        [
            dir.ca_key_path(),
            dir.ca_certificate_path(),
            dir.server_key_path(),
            dir.server_chain_path()
        ]
    );
    assert!(report.ca_created);
    assert_eq!(report.server_issued, Some(IssueReason::Missing));
    assert_eq!(mode(&dir.ca_key_path()), 0o600);
    assert_eq!(mode(&dir.server_key_path()), 0o600);
    for public in [dir.ca_certificate_path(), dir.server_chain_path()] {
        assert_eq!(mode(&public) & 0o600, 0o600, "{}", public.display());
        assert_eq!(mode(&public) & 0o022, 0, "{}", public.display());
    }
    // Nothing else: no temporary files left behind.
    let files = snapshot(dir.path());
    assert_eq!(files.len(), 4, "{:?}", files.keys());

    // Again, a little later: nothing to do, nothing touched.
    let again = init(&dir, &ServerNames::default(), NOW + DAY);
    assert_eq!(again, InitReport::default());
    assert_eq!(snapshot(dir.path()), files);
}

#[test]
fn the_ca_and_the_server_certificate_are_what_browsers_expect() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    let hosts = ServerNames::new(3).with_extra(["media.example.org".parse().expect("valid")]);
    init(&dir, &hosts, NOW);

    let ca_pem = dir.ca_certificate_pem().expect("ca");
    let ca_der = ders(&ca_pem);
    assert_eq!(ca_der.len(), 1);
    let ca = parse(&ca_der[0]);
    let constraints = ca.basic_constraints().expect("ok").expect("present").value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    assert!(ca
        .key_usage()
        .expect("ok")
        .expect("present")
        .value
        .key_cert_sign());
    assert_eq!(
        ca.subject().iter_common_name().next().map(|cn| cn.as_str()),
        Some(Ok("sealcast local CA"))
    );
    assert_eq!(ca.subject(), ca.issuer());
    // ECDSA on P-256.
    let spki = &ca.public_key().algorithm;
    assert_eq!(spki.algorithm.to_id_string(), "1.2.840.10045.2.1");
    let curve = spki
        .parameters
        .as_ref()
        .expect("curve")
        .as_oid()
        .expect("oid");
    assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7");
    let now = i64::try_from(NOW).expect("fits");
    let ca_lifetime = i64::try_from(CA_LIFETIME.as_secs()).expect("fits");
    assert_eq!(ca.validity().not_before.timestamp(), now - HOUR);
    assert_eq!(ca.validity().not_after.timestamp(), now + ca_lifetime);

    let chain = ders(&dir.server_chain_pem().expect("chain"));
    assert_eq!(chain.len(), 2, "server certificate, then the CA");
    assert_eq!(chain[1], ca_der[0]);
    let leaf = parse(&chain[0]);
    assert!(!leaf.is_ca());
    assert_eq!(leaf.issuer(), ca.subject());
    assert!(
        leaf.extended_key_usage()
            .expect("ok")
            .expect("present")
            .value
            .server_auth
    );
    let server_lifetime = i64::try_from(SERVER_LIFETIME.as_secs()).expect("fits");
    assert_eq!(leaf.validity().not_before.timestamp(), now - HOUR);
    assert_eq!(leaf.validity().not_after.timestamp(), now + server_lifetime);
    assert_eq!(
        sans(&leaf),
        [
            "streaming-cluster.test",
            "*.streaming-cluster.test",
            "broadcast1.streaming-cluster.test",
            "broadcast2.streaming-cluster.test",
            "broadcast3.streaming-cluster.test",
            "localhost",
            "127.0.0.1",
            "::1",
            "media.example.org",
        ]
    );

    let key = dir.server_key_pem().expect("key");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
}

#[test]
fn the_chain_validates_for_the_listed_names_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::default(), NOW);
    for name in [
        "broadcast3.streaming-cluster.test",
        "localhost",
        "streaming-cluster.test",
        "127.0.0.1",
        "::1",
        // Beyond N, but the wildcard covers one label.
        "broadcast42.streaming-cluster.test",
    ] {
        validate(&dir, name, NOW).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    for name in [
        "example.com",
        "streaming-cluster.test.example.com",
        "a.broadcast3.streaming-cluster.test",
        "10.0.0.1",
    ] {
        assert!(
            validate(&dir, name, NOW).is_err(),
            "{name} must not validate"
        );
    }
    // And not once it has expired.
    assert!(validate(&dir, "localhost", NOW + SERVER_LIFETIME.as_secs() + 1).is_err());
}

#[test]
fn a_certificate_with_20_days_left_is_reissued_with_the_same_ca_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    let hosts = ServerNames::default();
    init(&dir, &hosts, NOW);
    let before = snapshot(dir.path());

    // 40 days left: kept.
    let forty_days_left = NOW + SERVER_LIFETIME.as_secs() - 40 * DAY;
    assert_eq!(init(&dir, &hosts, forty_days_left), InitReport::default());

    let twenty_days_left = NOW + SERVER_LIFETIME.as_secs() - 20 * DAY;
    assert!(20 * DAY < RENEW_BEFORE.as_secs());
    let report = init(&dir, &hosts, twenty_days_left);
    assert_eq!(report.written, [dir.server_chain_path()]);
    assert!(!report.ca_created);
    let not_after = i64::try_from(NOW + SERVER_LIFETIME.as_secs()).expect("fits");
    assert_eq!(
        report.server_issued,
        Some(IssueReason::Expiring { not_after })
    );
    let after = snapshot(dir.path());
    for unchanged in [
        dir.ca_certificate_path(),
        dir.ca_key_path(),
        dir.server_key_path(),
    ] {
        assert_eq!(
            before[&unchanged],
            after[&unchanged],
            "{}",
            unchanged.display()
        );
    }
    let chain = ders(&dir.server_chain_pem().expect("chain"));
    let leaf = parse(&chain[0]);
    let later = i64::try_from(twenty_days_left).expect("fits");
    assert_eq!(leaf.validity().not_before.timestamp(), later - HOUR);
    validate(&dir, "localhost", NOW + SERVER_LIFETIME.as_secs() + DAY).expect("renewed");
}

#[test]
fn changing_the_names_reissues_the_server_certificate_and_keeps_the_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::new(8), NOW);
    let ca = dir.ca_certificate_pem().expect("ca");
    let ca_key = fs::read(dir.ca_key_path()).expect("ca key");

    for hosts in [
        ServerNames::new(10),
        ServerNames::new(10).with_extra(["192.168.1.20".parse().expect("valid")]),
        ServerNames::new(2),
    ] {
        let report = init(&dir, &hosts, NOW + DAY);
        assert_eq!(report.written, [dir.server_chain_path()], "{hosts:?}");
        assert_eq!(report.server_issued, Some(IssueReason::NamesChanged));
        let leaf_der = ders(&dir.server_chain_pem().expect("chain")).swap_remove(0);
        let wanted: Vec<String> = hosts.names().iter().map(ToString::to_string).collect();
        assert_eq!(sans(&parse(&leaf_der)), wanted);
        // The same names again: nothing to do.
        assert_eq!(init(&dir, &hosts, NOW + DAY), InitReport::default());
    }
    assert_eq!(dir.ca_certificate_pem().expect("ca"), ca);
    assert_eq!(fs::read(dir.ca_key_path()).expect("ca key"), ca_key);
}

#[test]
fn an_existing_ca_is_never_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::default(), NOW);
    let ca_key = fs::read(dir.ca_key_path()).expect("ca key");

    // The key without its certificate: an error, not a new CA.
    fs::rename(dir.ca_certificate_path(), tmp.path().join("ca.pem.saved")).expect("move");
    let err = dir
        .init(&ServerNames::default(), NOW)
        .expect_err("incomplete");
    assert!(matches!(err, CertsError::IncompleteCa { .. }), "{err}");
    assert!(err.to_string().contains("ca.pem"), "{err}");
    assert_eq!(fs::read(dir.ca_key_path()).expect("kept"), ca_key);
    fs::rename(tmp.path().join("ca.pem.saved"), dir.ca_certificate_path()).expect("move");

    // The certificate without its key (kept offline): fine while nothing must be issued...
    fs::rename(dir.ca_key_path(), tmp.path().join("ca.key.saved")).expect("move");
    assert_eq!(
        init(&dir, &ServerNames::default(), NOW),
        InitReport::default()
    );
    // ...and an error naming the key when something must.
    let err = dir.init(&ServerNames::new(9), NOW).expect_err("no CA key");
    assert!(
        matches!(&err, CertsError::IncompleteCa { missing, .. } if *missing == dir.ca_key_path()),
        "{err}"
    );
    assert!(!dir.ca_key_path().exists());

    // A CA key that is not the CA certificate's: refused, nothing written.
    let other = rcgen::KeyPair::generate().expect("key");
    fs::write(dir.ca_key_path(), other.serialize_pem()).expect("write");
    let before = snapshot(dir.path());
    let err = dir.init(&ServerNames::new(9), NOW).expect_err("mismatch");
    assert!(matches!(err, CertsError::KeyMismatch { .. }), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_new_ca_gets_a_new_server_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::default(), NOW);
    // The operator removes the CA on purpose, to start over.
    fs::remove_file(dir.ca_certificate_path()).expect("rm");
    fs::remove_file(dir.ca_key_path()).expect("rm");
    let report = init(&dir, &ServerNames::default(), NOW);
    assert!(report.ca_created);
    assert_eq!(report.server_issued, Some(IssueReason::OtherIssuer));
    validate(&dir, "localhost", NOW).expect("chains to the new CA");
}

#[test]
fn a_replaced_server_key_gets_a_matching_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::default(), NOW);
    let key = rcgen::KeyPair::generate().expect("key");
    fs::write(dir.server_key_path(), key.serialize_pem()).expect("write");
    let report = init(&dir, &ServerNames::default(), NOW);
    assert_eq!(report.server_issued, Some(IssueReason::KeyMismatch));
    assert_eq!(report.written, [dir.server_chain_path()]);
    let leaf_der = ders(&dir.server_chain_pem().expect("chain")).swap_remove(0);
    assert_eq!(
        parse(&leaf_der).public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key)
    );

    // A missing key is made anew, with its certificate.
    fs::remove_file(dir.server_key_path()).expect("rm");
    let report = init(&dir, &ServerNames::default(), NOW);
    assert_eq!(report.server_issued, Some(IssueReason::Missing));
    assert_eq!(
        report.written,
        [dir.server_key_path(), dir.server_chain_path()]
    );
    assert_eq!(mode(&dir.server_key_path()), 0o600);
    validate(&dir, "localhost", NOW).expect("valid");
}

#[test]
fn unreadable_files_are_named_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::default(), NOW);

    fs::write(dir.server_chain_path(), "not a certificate").expect("write");
    let err = dir.init(&ServerNames::default(), NOW).expect_err("garbage");
    assert!(matches!(err, CertsError::FileFormat { .. }), "{err}");
    assert!(err.to_string().contains("server.pem"), "{err}");
    assert_eq!(
        fs::read(dir.server_chain_path()).expect("kept"),
        b"not a certificate"
    );
    assert!(dir.server_chain_pem().is_err());

    // A certificate where the key should be.
    let ca = dir.ca_certificate_pem().expect("ca");
    fs::write(dir.server_key_path(), &ca).expect("write");
    let err = dir.server_key_pem().expect_err("not a key");
    assert!(err.to_string().contains("server.key"), "{err}");
    assert!(!err.to_string().contains(&ca), "{err}");
    let err = dir
        .init(&ServerNames::default(), NOW)
        .expect_err("not a key");
    assert!(err.to_string().contains("server.key"), "{err}");

    // A CA certificate that is not a CA.
    let tmp = tempfile::tempdir().expect("tempdir");
    let other = TlsDir::new(tmp.path());
    init(&other, &ServerNames::default(), NOW);
    let leaf = ders(&other.server_chain_pem().expect("chain")).swap_remove(0);
    let chain = other.server_chain_pem().expect("chain");
    let leaf_block = &chain[..chain.find("-----END CERTIFICATE-----").expect("end") + 26];
    assert_eq!(ders(leaf_block), [leaf]);
    fs::write(other.ca_certificate_path(), leaf_block).expect("write");
    let err = other.init(&ServerNames::new(1), NOW).expect_err("not a CA");
    assert!(err.to_string().contains("not a CA"), "{err}");
}

#[test]
fn the_trust_hint_names_the_ca_file_and_each_way_to_trust_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = TlsDir::new(tmp.path());
    init(&dir, &ServerNames::default(), NOW);
    let hint = dir.trust_hint();
    let ca = fs::canonicalize(dir.ca_certificate_path()).expect("exists");
    for needle in [
        ca.to_str().expect("utf-8"),
        "/usr/local/share/ca-certificates/sealcast.crt",
        "update-ca-certificates",
        "Firefox",
        "Chrome",
    ] {
        assert!(hint.contains(needle), "{needle} not in:\n{hint}");
    }
}

//! [`TlsDir`]: the local CA and the server certificate on disk, and how they are made and
//! renewed.
//!
//! Long because making, checking and renewing the CA and the server certificate (each
//! renewal case) work over one directory and one set of rules.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use zeroize::Zeroizing;

use super::names::{HostName, ServerNames, CLUSTER_DOMAIN};
use crate::signing::{io_error, write_atomically, write_new_atomically};
use crate::CertsError;

/// The subject common name of the local CA; also what browsers show for it.
pub const CA_COMMON_NAME: &str = "sealcast local CA";
/// How long the local CA is valid: long enough that no one has to trust a new one.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a server certificate made here is valid.
pub const SERVER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A server certificate with less than this left is re-issued by [`TlsDir::init`].
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Certificates start this long before `now`, so a node whose clock is a little behind the
/// one that issued them does not reject them as not yet valid.
const BACKDATE: Duration = Duration::from_secs(3600);

const ORGANIZATION: &str = "sealcast";
const PRIVATE_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;
/// The labels under which rustls finds a private key.
const PRIVATE_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

/// What [`TlsDir::init`] did, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Files created or replaced.
    pub written: Vec<PathBuf>,
    /// Whether a new CA was made: it must be trusted again (see [`TlsDir::trust_hint`]).
    pub ca_created: bool,
    /// Why the server certificate was issued, if it was.
    pub server_issued: Option<IssueReason>,
}

/// Why [`TlsDir::init`] issued a server certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueReason {
    /// There was none (or no key for it).
    Missing,
    /// The old one ended, or ends within [`RENEW_BEFORE`].
    Expiring {
        /// Its end of validity, unix seconds.
        not_after: i64,
    },
    /// The old one starts in the future: the clock was set back since it was issued.
    NotYetValid {
        /// Its start of validity, unix seconds.
        not_before: i64,
    },
    /// The old one covers other names than those asked for.
    NamesChanged,
    /// The old one was not issued by the CA in `ca.pem` (the CA was replaced).
    OtherIssuer,
    /// The old one does not belong to the key in `server.key`.
    KeyMismatch,
}

impl fmt::Display for IssueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("there was none"),
            Self::Expiring { .. } => f.write_str("the old one ends within 30 days"),
            Self::NotYetValid { .. } => f.write_str("the old one is not valid yet"),
            Self::NamesChanged => f.write_str("the host names changed"),
            Self::OtherIssuer => f.write_str("the old one was issued by another CA"),
            Self::KeyMismatch => f.write_str("the old one does not match server.key"),
        }
    }
}

/// The directory of the cluster's TLS material, written by `sealcast certs` and by
/// `sealcast up` on its first start:
///
/// ```text
/// certs/
///   ca.pem       the local CA certificate — what browsers and clients are told to trust
///   ca.key       its private key (0600) — only needed to issue server certificates
///   server.pem   the server certificate chain: the server certificate, then the CA
///   server.key   the server's private key (0600)
/// ```
///
/// Files are written atomically. An existing CA is never replaced: users have trusted it.
#[derive(Debug, Clone)]
pub struct TlsDir {
    dir: PathBuf,
}

impl TlsDir {
    /// The TLS directory at `dir` (usually `{data dir}/certs`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TlsDir { dir: dir.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`
    pub fn ca_certificate_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `ca.key`
    pub fn ca_key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// `server.pem`
    pub fn server_chain_path(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// `server.key`
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// Creates what is missing and renews what is stale, at time `now` (unix seconds):
    ///
    /// - the local CA (ECDSA P-256, `CA:true`, path length 0, valid [`CA_LIFETIME`]) if there
    ///   is none; an existing one is never replaced, and a CA with only one of its two files
    ///   is an error ([`CertsError::IncompleteCa`]) rather than a reason to make a new one;
    /// - a server certificate for `hosts` (valid [`SERVER_LIFETIME`]) when there is none, or
    ///   it ends within [`RENEW_BEFORE`], covers other names, was issued by another CA or
    ///   does not match `server.key`. An existing `server.key` is kept, so a server that
    ///   reloads on change never sees a key from one issue beside a certificate of another.
    ///
    /// `ca.key` is read only when a certificate must be issued, so it may be kept elsewhere
    /// between renewals. Files that exist but cannot be read as what they should be are
    /// errors naming the file, never overwritten.
    pub fn init(&self, hosts: &ServerNames, now: u64) -> Result<InitReport, CertsError> {
        let mut report = InitReport::default();
        fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let ca_pem_path = self.ca_certificate_path();
        let ca_key_path = self.ca_key_path();

        let mut new_ca_key = None;
        let ca_pem = match (exists(&ca_pem_path)?, exists(&ca_key_path)?) {
            (true, _) => read_text(&ca_pem_path)?,
            (false, true) => {
                return Err(CertsError::IncompleteCa {
                    present: ca_key_path,
                    missing: ca_pem_path,
                })
            }
            (false, false) => {
                let (key, pem) = make_ca(now)?;
                write_new_atomically(&ca_key_path, key.serialize_pem().as_bytes(), PRIVATE_MODE)?;
                report.written.push(ca_key_path.clone());
                write_new_atomically(&ca_pem_path, pem.as_bytes(), PUBLIC_MODE)?;
                report.written.push(ca_pem_path.clone());
                report.ca_created = true;
                new_ca_key = Some(key);
                pem
            }
        };
        let ca_der = first_certificate(&ca_pem_path, &ca_pem, "CA certificate file")?;
        let ca = parse_certificate(&ca_pem_path, &ca_der, "CA certificate file")?;
        if !ca.is_ca() {
            return Err(CertsError::FileFormat {
                path: ca_pem_path,
                what: "CA certificate file",
                reason: "not a CA certificate (basicConstraints CA:false)",
            });
        }

        let server_key = if exists(&self.server_key_path())? {
            Some(read_key(&self.server_key_path(), "server key file")?)
        } else {
            None
        };
        let Some(reason) = self.server_issue_reason(server_key.as_ref(), &ca, hosts, now)? else {
            return Ok(report);
        };

        let ca_key = match new_ca_key {
            Some(key) => key,
            None if exists(&ca_key_path)? => {
                let key = read_key(&ca_key_path, "CA key file")?;
                if key.subject_public_key_info() != ca.public_key().raw {
                    return Err(CertsError::KeyMismatch {
                        key: ca_key_path,
                        certificate: ca_pem_path,
                    });
                }
                key
            }
            None => {
                return Err(CertsError::IncompleteCa {
                    present: ca_pem_path,
                    missing: ca_key_path,
                })
            }
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(build_error("CA"))?;
        let server_key = match server_key {
            Some(key) => key,
            None => {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                    .map_err(build_error("server key"))?;
                let pem = Zeroizing::new(key.serialize_pem());
                write_atomically(&self.server_key_path(), pem.as_bytes(), PRIVATE_MODE)?;
                report.written.push(self.server_key_path());
                key
            }
        };
        let leaf = server_params(hosts, now)?
            .signed_by(&server_key, &issuer)
            .map_err(build_error("server certificate"))?;
        // The CA file as it is: an operator's CA may come with the certificates above it.
        let mut chain = leaf.pem();
        chain.push_str(&ca_pem);
        if !chain.ends_with('\n') {
            chain.push('\n');
        }
        write_atomically(&self.server_chain_path(), chain.as_bytes(), PUBLIC_MODE)?;
        report.written.push(self.server_chain_path());
        report.server_issued = Some(reason);
        Ok(report)
    }

    /// Why the server certificate must be issued, or `None` if the one there is good.
    fn server_issue_reason(
        &self,
        key: Option<&KeyPair>,
        ca: &X509Certificate<'_>,
        hosts: &ServerNames,
        now: u64,
    ) -> Result<Option<IssueReason>, CertsError> {
        let path = self.server_chain_path();
        let Some(key) = key else {
            return Ok(Some(IssueReason::Missing));
        };
        if !exists(&path)? {
            return Ok(Some(IssueReason::Missing));
        }
        let what = "server certificate file";
        let der = first_certificate(&path, &read_text(&path)?, what)?;
        let cert = parse_certificate(&path, &der, what)?;
        if key.subject_public_key_info() != cert.public_key().raw {
            return Ok(Some(IssueReason::KeyMismatch));
        }
        if cert.issuer().as_raw() != ca.subject().as_raw()
            || cert.verify_signature(Some(ca.public_key())).is_err()
        {
            return Ok(Some(IssueReason::OtherIssuer));
        }
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        if not_before > now {
            return Ok(Some(IssueReason::NotYetValid { not_before }));
        }
        let renew_before = i64::try_from(RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX);
        if not_after <= now.saturating_add(renew_before) {
            return Ok(Some(IssueReason::Expiring { not_after }));
        }
        let wanted: BTreeSet<HostName> = hosts.names().into_iter().collect();
        if certificate_names(&cert).as_ref() != Some(&wanted) {
            return Ok(Some(IssueReason::NamesChanged));
        }
        Ok(None)
    }

    /// The CA certificate (PEM), for clients that should trust it and nothing else.
    pub fn ca_certificate_pem(&self) -> Result<String, CertsError> {
        read_certificates(&self.ca_certificate_path(), "CA certificate file")
    }

    /// The server certificate chain (PEM: the server certificate, then the CA), as a TLS
    /// server presents it. Checked to hold certificates only, so a misplaced file is named
    /// here rather than failing inside the TLS stack.
    pub fn server_chain_pem(&self) -> Result<String, CertsError> {
        read_certificates(&self.server_chain_path(), "server certificate file")
    }

    /// The server's private key (PEM), wiped from memory when dropped.
    pub fn server_key_pem(&self) -> Result<Zeroizing<String>, CertsError> {
        let path = self.server_key_path();
        let text = Zeroizing::new(read_text(&path)?);
        let is_key = text.lines().any(|line| {
            PRIVATE_KEY_LABELS
                .iter()
                .any(|label| line.trim_end() == format!("-----BEGIN {label}-----"))
        });
        if !is_key {
            return Err(CertsError::FileFormat {
                path,
                what: "server key file",
                reason: "no PEM private key in it",
            });
        }
        Ok(text)
    }

    /// How to make browsers and the system trust the local CA, for `sealcast certs` and
    /// `sealcast up` to print.
    pub fn trust_hint(&self) -> String {
        let ca_path = self.ca_certificate_path();
        let ca_path = fs::canonicalize(&ca_path).unwrap_or(ca_path);
        let ca = ca_path.display();
        format!(
            "To trust the sealcast local CA ({ca}):\n\
             \x20 Debian/Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/sealcast.crt\n\
             \x20                sudo update-ca-certificates\n\
             \x20 Firefox:       Settings > Privacy & Security > Certificates > View Certificates >\n\
             \x20                Authorities > Import, choose {ca}, tick \"Trust this CA to identify websites\"\n\
             \x20 Chrome:        Settings > Privacy and security > Security > Manage certificates >\n\
             \x20                Authorities > Import, choose {ca}, tick \"Trust this certificate for identifying websites\"\n\
             \x20 curl:          curl --cacert {ca} https://localhost:8443/\n\
             Keep ca.key private: anyone holding it can impersonate any web site to browsers that trust this CA.\n"
        )
    }
}

/// A new CA key and its self-signed certificate (PEM).
fn make_ca(now: u64) -> Result<(KeyPair, String), CertsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(build_error("CA key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, now, CA_LIFETIME)?;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).map_err(build_error("CA"))?;
    Ok((key, cert.pem()))
}

/// The parameters of a server certificate for `hosts`, valid from `now`.
fn server_params(hosts: &ServerNames, now: u64) -> Result<CertificateParams, CertsError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CLUSTER_DOMAIN);
    params.subject_alt_names = hosts
        .names()
        .into_iter()
        .map(|name| name.to_san().map_err(build_error("server certificate")))
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, SERVER_LIFETIME)?;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

pub(crate) fn set_validity(
    params: &mut CertificateParams,
    now: u64,
    lifetime: Duration,
) -> Result<(), CertsError> {
    let not_before = now.saturating_sub(BACKDATE.as_secs());
    let not_after = now.saturating_add(lifetime.as_secs());
    let time = |secs: u64| {
        i64::try_from(secs)
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .ok_or(CertsError::InvalidValidity {
                not_before,
                not_after,
            })
    };
    params.not_before = time(not_before)?;
    params.not_after = time(not_after)?;
    Ok(())
}

/// A fresh random serial: browsers refuse two different certificates with the same issuer
/// and serial, which re-issuing with a derived serial would produce.
pub(crate) fn random_serial() -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| CertsError::Randomness)?;
    bytes[0] &= 0x7f; // positive, as RFC 5280 requires
    bytes[0] |= 0x01; // and no leading zero byte, so it is exactly 16 bytes long
    Ok(SerialNumber::from_slice(&bytes))
}

/// The names a certificate covers, or `None` if it has a kind of name we never issue (so it
/// is not what we would issue now).
fn certificate_names(cert: &X509Certificate<'_>) -> Option<BTreeSet<HostName>> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return None;
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.parse().ok(),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            }
            .map(HostName::from),
            _ => None,
        })
        .collect()
}

fn build_error(what: &'static str) -> impl Fn(rcgen::Error) -> CertsError {
    move |err| CertsError::CertificateBuild {
        what,
        reason: err.to_string(),
    }
}

fn exists(path: &Path) -> Result<bool, CertsError> {
    path.try_exists().map_err(io_error(path))
}

fn read_text(path: &Path) -> Result<String, CertsError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    String::from_utf8(bytes).map_err(|err| {
        // Wipe what may be key material before dropping it.
        zeroize::Zeroize::zeroize(&mut err.into_bytes());
        CertsError::FileFormat {
            path: path.to_path_buf(),
            what: "PEM file",
            reason: "not text",
        }
    })
}

fn read_key(path: &Path, what: &'static str) -> Result<KeyPair, CertsError> {
    let text = Zeroizing::new(read_text(path)?);
    KeyPair::from_pem(&text).map_err(|_| CertsError::FileFormat {
        path: path.to_path_buf(),
        what,
        reason: "not a PKCS#8 PEM private key of an algorithm we can sign with",
    })
}

/// All PEM blocks of `text`, which must be certificates; at least one.
fn certificates(path: &Path, text: &str, what: &'static str) -> Result<Vec<Vec<u8>>, CertsError> {
    let error = |reason| CertsError::FileFormat {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let mut ders = Vec::new();
    for block in Pem::iter_from_buffer(text.as_bytes()) {
        let block = block.map_err(|_| error("a malformed PEM block"))?;
        if block.label != "CERTIFICATE" {
            return Err(error("a PEM block that is not a certificate"));
        }
        ders.push(block.contents);
    }
    if ders.is_empty() {
        return Err(error("no PEM certificate in it"));
    }
    Ok(ders)
}

fn first_certificate(path: &Path, text: &str, what: &'static str) -> Result<Vec<u8>, CertsError> {
    let mut ders = certificates(path, text, what)?;
    Ok(ders.swap_remove(0))
}

fn parse_certificate<'a>(
    path: &Path,
    der: &'a [u8],
    what: &'static str,
) -> Result<X509Certificate<'a>, CertsError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|_| CertsError::FileFormat {
            path: path.to_path_buf(),
            what,
            reason: "not an X.509 certificate",
        })
}

fn read_certificates(path: &Path, what: &'static str) -> Result<String, CertsError> {
    let text = read_text(path)?;
    for der in certificates(path, &text, what)? {
        parse_certificate(path, &der, what)?;
    }
    Ok(text)
}

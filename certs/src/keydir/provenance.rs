//! The key directory's provenance part (docs/provenance.md): the C2PA provenance CA, each
//! ingest's claim signer and the root's anchors of their issuers, and the anchors of other
//! signers' CAs that edges serve viewers.

use std::fs;
use std::path::{Path, PathBuf};

use domain::NodeId;
use sha2::{Digest, Sha256};

use super::{InitReport, KeyDir, CERTIFICATE_LIFETIME, CLUSTER_NAME, RENEW_BEFORE};
use crate::c2pa::{ClaimSigner, ProvenanceCa};
use crate::signing::{RootKey, Validity};
use crate::CertsError;

impl KeyDir {
    /// The provenance CA's certificate: the trust anchor C2PA validators are given.
    pub fn provenance_ca_path(&self) -> PathBuf {
        self.dir.join("provenance").join("ca.pem")
    }

    /// The provenance CA's private key.
    pub fn provenance_ca_key_path(&self) -> PathBuf {
        self.dir.join("provenance").join("ca.key")
    }

    /// `provenance/trusted.pem`: CA certificates of other C2PA signers, put there by the
    /// operator (docs/provenance.md).
    pub fn trusted_cas_path(&self) -> PathBuf {
        self.dir.join("provenance").join("trusted.pem")
    }

    /// `provenance/anchors.pem`: the root's anchors of the CAs in
    /// [`KeyDir::trusted_cas_path`], made by [`KeyDir::init`].
    pub fn delivered_anchors_path(&self) -> PathBuf {
        self.dir.join("provenance").join("anchors.pem")
    }

    /// The root's anchors of other signers' CAs, which edges serve viewers as
    /// `/trust/v1/provenance-anchors`; none without the file. Not checked here: viewers
    /// check each against the root.
    pub fn delivered_anchors(&self) -> Result<Vec<crate::c2pa::ProvenanceAnchor>, CertsError> {
        let path = self.delivered_anchors_path();
        match fs::read(&path) {
            Ok(text) => crate::c2pa::anchors_from_pem(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(crate::signing::io_error(&path)(e)),
        }
    }

    /// Anchors every CA of [`KeyDir::trusted_cas_path`] under `root` into
    /// [`KeyDir::delivered_anchors_path`], again when the CAs change or an anchor nears
    /// its end; removes the anchors when the operator removed the CAs.
    pub(super) fn anchor_trusted_cas(
        &self,
        root: &RootKey,
        now: u64,
        report: &mut InitReport,
    ) -> Result<(), CertsError> {
        let (trusted, anchors) = (self.trusted_cas_path(), self.delivered_anchors_path());
        let text = match fs::read(&trusted) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if anchors.exists() {
                    fs::remove_file(&anchors).map_err(crate::signing::io_error(&anchors))?;
                    report.removed.push(anchors);
                }
                return Ok(());
            }
            Err(e) => return Err(crate::signing::io_error(&trusted)(e)),
        };
        let bad = |reason| CertsError::Malformed {
            what: "provenance/trusted.pem",
            reason,
        };
        let mut cas = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&text) {
            let pem = pem.map_err(|_| bad("not PEM"))?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents)
                .map_err(|_| bad("a certificate does not parse"))?;
            if !cert.is_ca() {
                return Err(bad("a certificate that is not a CA"));
            }
            if cas.len() == crate::c2pa::MAX_DELIVERED_ANCHORS {
                return Err(bad("too many certificates"));
            }
            cas.push(pem.contents);
        }
        let digests: Vec<[u8; 32]> = cas.iter().map(|der| Sha256::digest(der).into()).collect();
        let renew_at = now.saturating_add(RENEW_BEFORE.as_secs());
        let current = self.delivered_anchors().unwrap_or_default();
        let held: Vec<[u8; 32]> = current.iter().map(|a| *a.ca_digest()).collect();
        let fresh = current.iter().all(|a| {
            a.validity().not_after() > renew_at && root.public_key().verify_anchor(a, now).is_ok()
        });
        if held == digests && fresh && anchors.exists() {
            return Ok(());
        }
        let validity = Validity::starting_at(now, CERTIFICATE_LIFETIME);
        let made: Vec<_> = (cas.iter())
            .map(|der| root.anchor_provenance(der, validity))
            .collect();
        let pem = crate::c2pa::anchors_pem(&made);
        crate::signing::write_atomically(&anchors, pem.as_bytes(), 0o644)?;
        report.written.push(anchors);
        Ok(())
    }

    /// The provenance CA's credential id ([`crate::c2pa::credential_id`]): what `sealcast
    /// keys revoke provenance-ca` revokes.
    pub fn provenance_ca_credential_id(&self) -> Result<crate::signing::KeyId, CertsError> {
        let path = self.provenance_ca_path();
        let pem = fs::read_to_string(&path).map_err(crate::signing::io_error(&path))?;
        let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| {
            CertsError::Malformed {
                what: "provenance CA",
                reason: "its certificate is not PEM",
            }
        })?;
        Ok(crate::c2pa::credential_id(&der.contents))
    }

    /// An ingest node's claim signer's certificate chain.
    pub fn claim_signer_path(&self, node: &NodeId) -> PathBuf {
        self.dir.join("ingest").join(format!("{node}.c2pa.pem"))
    }

    /// An ingest node's claim signer's private key.
    pub fn claim_signer_key_path(&self, node: &NodeId) -> PathBuf {
        self.dir.join("ingest").join(format!("{node}.c2pa.key"))
    }

    /// Makes the provenance CA if missing, and for each of `ingest` a claim signer if
    /// missing or expiring within [`RENEW_BEFORE`] (when the CA's key is here). A claim
    /// signer an operator put in place (a certificate from a C2PA trust list) is kept
    /// until it nears expiry. Every claim signer whose chain file names its issuer (the
    /// certificate after its own) gets the root's anchor of that issuer, renewed like a
    /// certificate: what lets viewers who pin only the root trust it.
    pub(super) fn provenance(
        &self,
        root: &RootKey,
        ingest: &[NodeId],
        now: u64,
        report: &mut InitReport,
    ) -> Result<(), CertsError> {
        fs::create_dir_all(self.dir.join("provenance"))
            .map_err(crate::signing::io_error(&self.dir))?;
        let (cert, key) = (self.provenance_ca_path(), self.provenance_ca_key_path());
        let ca = if cert.exists() && key.exists() {
            let pem = |p: &Path| fs::read_to_string(p).map_err(crate::signing::io_error(p));
            Some(ProvenanceCa::from_pem(&pem(&cert)?, &pem(&key)?)?)
        } else if cert.exists() {
            None // the CA's key lives elsewhere: claim signers are issued there
        } else {
            let ca = ProvenanceCa::generate(CLUSTER_NAME, now)?;
            crate::signing::write_new_atomically(&key, ca.key_pem().as_bytes(), 0o600)?;
            crate::signing::write_new_atomically(&cert, ca.cert_pem().as_bytes(), 0o644)?;
            report.written.extend([key.clone(), cert.clone()]);
            Some(ca)
        };
        let ca_der = ca.as_ref().map(ProvenanceCa::cert_der).transpose()?;
        let renew_at = now.saturating_add(RENEW_BEFORE.as_secs());
        for node in ingest {
            let current = self.claim_signer(node)?;
            // One of ours whose chain file predates the CA in it is issued again.
            let ours_without_issuer = |s: &ClaimSigner| {
                s.chain().len() == 1
                    && ca_der
                        .as_deref()
                        .is_some_and(|ca| issued_by(&s.chain()[0], ca))
            };
            let keep = current
                .as_ref()
                .is_some_and(|s| s.not_after() > renew_at && !ours_without_issuer(s));
            let (signer, issued) = match (current, &ca) {
                (Some(s), _) if keep => (s, false),
                (_, Some(ca)) => (ca.issue(CLUSTER_NAME, node.as_str(), now)?, true),
                (Some(s), None) => (s, false),
                (None, None) => continue,
            };
            let (chain, key) = (
                self.claim_signer_path(node),
                self.claim_signer_key_path(node),
            );
            if issued {
                crate::signing::write_atomically(&key, signer.key_pem().as_bytes(), 0o600)?;
                report.written.push(key);
            }
            // Its issuer as its chain file names it (ours: the provenance CA).
            let Some(issuer) = signer.chain().get(1).cloned() else {
                if issued {
                    crate::signing::write_atomically(&chain, signer.chain_pem().as_bytes(), 0o644)?;
                    report.written.push(chain);
                }
                continue; // nothing the root could anchor: docs/provenance.md
            };
            let digest: [u8; 32] = Sha256::digest(&issuer).into();
            let anchored = signer.anchor().is_some_and(|a| {
                a.validity().not_after() > renew_at
                    && root.public_key().verify_anchor(a, now).ok() == Some(digest)
            });
            if anchored && !issued {
                continue;
            }
            let anchor =
                root.anchor_provenance(&issuer, Validity::starting_at(now, CERTIFICATE_LIFETIME));
            let signer = signer.with_anchor(anchor);
            crate::signing::write_atomically(&chain, signer.chain_pem().as_bytes(), 0o644)?;
            report.written.push(chain);
        }
        Ok(())
    }

    /// An ingest node's claim signer, `None` where the key directory has none (made before
    /// provenance existed: its streams carry no C2PA data until `sealcast keys init` runs).
    pub fn claim_signer(&self, node: &NodeId) -> Result<Option<ClaimSigner>, CertsError> {
        let (chain, key) = (
            self.claim_signer_path(node),
            self.claim_signer_key_path(node),
        );
        if !chain.exists() || !key.exists() {
            return Ok(None);
        }
        let chain_pem = fs::read_to_string(&chain).map_err(crate::signing::io_error(&chain))?;
        let key_pem = zeroize::Zeroizing::new(
            fs::read_to_string(&key).map_err(crate::signing::io_error(&key))?,
        );
        ClaimSigner::from_pem(&chain_pem, &key_pem).map(Some)
    }
}

/// Whether the certificate `der` was signed by the CA certificate `ca_der`'s key.
fn issued_by(der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(der),
        x509_parser::parse_x509_certificate(ca_der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

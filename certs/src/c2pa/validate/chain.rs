//! A claim signer's `x5chain` walked up to one of a validator's C2PA trust anchors (C2PA
//! 2.3 §14.5's trust model, for manifests that carry no provenance anchor): the signer's
//! certificate, then each certificate after it, until one was signed by an anchor. Every
//! link is checked by its names and its signature, every issuer must be a CA and the signer
//! must not be one, the signer must carry an EKU C2PA allows for claim signing, and every
//! certificate of the path, the anchor's included, must be valid at the time asked.

use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::Oid;

use crate::CertsError;

/// Why a chain did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broken {
    /// It does not reach a trust anchor, or a certificate of it is not fit for its place.
    Untrusted(&'static str),
    /// It does, but a certificate of it is not valid at the time asked.
    Expired,
}

/// At most this many certificates after the signer's are walked.
const MAX_INTERMEDIATES: usize = 8;

/// The EKUs a claim signer may carry (C2PA 2.3 §14.5.1): c2pa-kp-claimSigning,
/// id-kp-emailProtection, id-kp-documentSigning.
const CLAIM_SIGNING_EKUS: [&str; 3] = [
    "1.3.6.1.4.1.62558.2.1",
    "1.3.6.1.5.5.7.3.4",
    "1.3.6.1.5.5.7.3.36",
];

/// The certificates (DER) of a PEM bundle: what `sealcast verify --c2pa-trust-anchors`
/// reads. Anything but `CERTIFICATE` blocks is refused, and so is a bundle without one.
pub fn trust_anchors_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertsError> {
    let bad = |reason: &'static str| CertsError::Malformed {
        what: "C2PA trust anchors",
        reason,
    };
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|_| bad("not PEM"))?;
        if block.label != "CERTIFICATE" {
            return Err(bad("a PEM block that is not a certificate"));
        }
        block
            .parse_x509()
            .map_err(|_| bad("a certificate that does not parse"))?;
        out.push(block.contents);
    }
    if out.is_empty() {
        return Err(bad("no certificate"));
    }
    Ok(out)
}

/// Whether `cert` is valid at `now` (unix seconds).
pub(super) fn valid_at(cert: &X509Certificate<'_>, now: u64) -> bool {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let v = cert.validity();
    v.not_before.timestamp() <= now && now <= v.not_after.timestamp()
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Broken> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|_| Broken::Untrusted("a certificate of the x5chain does not parse"))
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// Whether `issuer` (a CA) issued `child`: names and signature.
fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    is_ca(issuer)
        && child.issuer() == issuer.subject()
        && child.verify_signature(Some(issuer.public_key())).is_ok()
}

fn claim_signing_eku(cert: &X509Certificate<'_>) -> bool {
    let Ok(Some(eku)) = cert.extended_key_usage() else {
        return false;
    };
    eku.value.email_protection
        || eku
            .value
            .other
            .iter()
            .any(|oid: &Oid<'_>| CLAIM_SIGNING_EKUS.contains(&oid.to_id_string().as_str()))
}

/// The anchor (DER) that `signer_der`, through `rest` (the rest of its `x5chain`), chains
/// to, every certificate of the path valid at `now`.
pub(super) fn to_anchor<'a>(
    signer_der: &[u8],
    rest: &[&[u8]],
    anchors: &'a [Vec<u8>],
    now: u64,
) -> Result<&'a [u8], Broken> {
    let signer = parse(signer_der)?;
    if is_ca(&signer) || !claim_signing_eku(&signer) {
        return Err(Broken::Untrusted(
            "the claim signer is a CA or lacks a claim-signing EKU",
        ));
    }
    let anchors: Vec<(&'a [u8], X509Certificate<'a>)> = anchors
        .iter()
        .filter_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            Some((der.as_slice(), cert))
        })
        .collect();
    let mut all_valid = valid_at(&signer, now);
    let mut current = signer;
    for next in rest.iter().take(MAX_INTERMEDIATES).map(Some).chain([None]) {
        if let Some((der, anchor)) = anchors.iter().find(|(_, a)| issued_by(&current, a)) {
            if !all_valid || !valid_at(anchor, now) {
                return Err(Broken::Expired);
            }
            return Ok(der);
        }
        let Some(next) = next else { break };
        let next = parse(next)?;
        if !issued_by(&current, &next) {
            return Err(Broken::Untrusted(
                "the x5chain breaks before reaching a trust anchor",
            ));
        }
        all_valid &= valid_at(&next, now);
        current = next;
    }
    Err(Broken::Untrusted(
        "the claim signer does not chain to a trust anchor",
    ))
}

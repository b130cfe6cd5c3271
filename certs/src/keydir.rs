//! The cluster's key directory: where `sealcast keys init` (and `sealcast up` on its first
//! start) put the trust material, and where every role finds it.
//!
//! ```text
//! keys/
//!   root.key             cluster root private key (0600) — only needed to certify and revoke
//!   root.pub             cluster root public key — every edge pins it
//!   push-token           the cluster push token (0600) — ingest presents it, edges check it
//!   cookie-key           the load balancers' sticky-cookie HMAC key (0600)
//!   playback-key         the playback-token key of private streams (0600): load balancers
//!                        and broadcast nodes check tokens with it, `sealcast tokens mint`
//!                        and the API mint them; it signs nothing else
//!   ingest/{node}.key    an ingest node's signing key (0600)
//!   ingest/{node}.cert   its root-signed certificate
//!   ingest/{node}.c2pa.pem  its C2PA claim signer's certificate chain (docs/provenance.md)
//!   ingest/{node}.c2pa.key  the claim signer's key (0600): Ed25519, or an operator's ES256
//!   provenance/ca.pem    the cluster's C2PA provenance CA: what validators trust
//!   provenance/ca.key    its key (0600) — only needed to issue claim signers
//!   provenance/trusted.pem  the operator's: CA certificates of other C2PA signers whose
//!                        streams viewers should accept (a C2PA trust list's)
//!   provenance/anchors.pem  the root's anchors of those CAs, which edges serve viewers
//! ```
//!
//! Files are written atomically; existing ones are never overwritten, except a certificate
//! close to expiry, which is renewed (when the root key is here to sign it).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::push_protocol::PushToken;
use domain::NodeId;
use rand_core::{OsRng, RngCore};

use crate::signing::{
    Certificate, CertificateKind, Edge, EdgeCertificate, Ingest, IngestCertificate, Revocation,
    RootKey, RootPublicKey, SignatureAlgorithm, SigningKey, Validity,
};
use crate::CertsError;

mod provenance;

/// The organization named in the provenance CA's and the claim signers' certificates.
const CLUSTER_NAME: &str = "sealcast cluster";

/// How long an ingest certificate made here is valid.
pub const CERTIFICATE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate with less than this left is renewed by [`KeyDir::init`].
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What [`KeyDir::init`] did, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Files created or renewed.
    pub written: Vec<PathBuf>,
    /// Files removed (the provenance anchors, once the operator removed their CAs).
    pub removed: Vec<PathBuf>,
}

/// A key directory.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// The key directory at `dir` (usually `{data dir}/keys`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyDir { dir: dir.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `root.key`
    pub fn root_key_path(&self) -> PathBuf {
        self.dir.join("root.key")
    }

    /// `root.pub`
    pub fn root_public_path(&self) -> PathBuf {
        self.dir.join("root.pub")
    }

    /// `push-token`
    pub fn push_token_path(&self) -> PathBuf {
        self.dir.join("push-token")
    }

    /// `cookie-key`
    pub fn cookie_key_path(&self) -> PathBuf {
        self.dir.join("cookie-key")
    }

    /// `playback-key`: the key playback tokens of private streams are signed with
    /// (`crate::tokens`), its own file so that no media key can ever sign a token.
    pub fn playback_key_path(&self) -> PathBuf {
        self.dir.join("playback-key")
    }

    /// `broker-password`: the password of the embedded MQTT broker of `sealcast up`.
    pub fn broker_password_path(&self) -> PathBuf {
        self.dir.join("broker-password")
    }

    /// `revocations/`: every revocation `keys revoke` made, one `{key id}.rev` each, so a
    /// revoked key stays revoked when the broker forgets its retained messages.
    pub fn revocations_dir(&self) -> PathBuf {
        self.dir.join("revocations")
    }

    /// Keeps `revocation` in [`KeyDir::revocations_dir`] (written atomically).
    pub fn save_revocation(&self, revocation: &Revocation) -> Result<PathBuf, CertsError> {
        let dir = self.revocations_dir();
        fs::create_dir_all(&dir).map_err(crate::signing::io_error(&dir))?;
        let path = dir.join(format!("{}.rev", revocation.key_id()));
        crate::signing::write_atomically(&path, &revocation.encode(), 0o644)?;
        Ok(path)
    }

    /// The encoded revocations kept here, at most [`MAX_REVOCATION_FILES`] files of at
    /// most [`MAX_REVOCATION_FILE_LEN`] bytes each (larger ones are skipped: no revocation
    /// is that large). Not checked here: whoever applies them checks the root's signature.
    /// No directory: none.
    pub fn revocations(&self) -> Result<Vec<Vec<u8>>, CertsError> {
        let dir = self.revocations_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(crate::signing::io_error(&dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.take(MAX_REVOCATION_FILES) {
            let path = entry.map_err(crate::signing::io_error(&dir))?.path();
            if path.extension().is_none_or(|e| e != "rev") {
                continue;
            }
            let len = fs::metadata(&path)
                .map_err(crate::signing::io_error(&path))?
                .len();
            if len > MAX_REVOCATION_FILE_LEN {
                continue;
            }
            out.push(fs::read(&path).map_err(crate::signing::io_error(&path))?);
        }
        Ok(out)
    }

    /// `ingest/{node}.key`
    pub fn signing_key_path(&self, node: &NodeId) -> PathBuf {
        self.dir.join("ingest").join(format!("{node}.key"))
    }

    /// `ingest/{node}.cert`
    pub fn certificate_path(&self, node: &NodeId) -> PathBuf {
        self.dir.join("ingest").join(format!("{node}.cert"))
    }

    /// `edge/broadcast.key`: the broadcast nodes' edge key, which signs their presences.
    pub fn edge_key_path(&self) -> PathBuf {
        self.dir.join("edge").join("broadcast.key")
    }

    /// `edge/broadcast.cert`: the edge key's certificate.
    pub fn edge_certificate_path(&self) -> PathBuf {
        self.dir.join("edge").join("broadcast.cert")
    }

    /// Creates what is missing: the revocations directory, the root key pair (of
    /// `algorithm`), the push token, the cookie key, the playback key, the embedded broker's
    /// password, the
    /// broadcast nodes' edge key and its certificate, and a signing key and certificate for
    /// each of `ingest` (certificates valid from `now`, unix seconds).
    /// An existing root decides the algorithm; a certificate expiring within
    /// [`RENEW_BEFORE`] is renewed.
    pub fn init(
        &self,
        algorithm: SignatureAlgorithm,
        ingest: &[NodeId],
        now: u64,
    ) -> Result<InitReport, CertsError> {
        let mut report = InitReport::default();
        fs::create_dir_all(self.dir.join("ingest")).map_err(crate::signing::io_error(&self.dir))?;
        fs::create_dir_all(self.dir.join("edge")).map_err(crate::signing::io_error(&self.dir))?;
        fs::create_dir_all(self.revocations_dir()).map_err(crate::signing::io_error(&self.dir))?;
        let root = if self.root_key_path().exists() {
            RootKey::read_file(&self.root_key_path())?
        } else {
            let root = RootKey::generate(algorithm)?;
            root.write_file(&self.root_key_path())?;
            report.written.push(self.root_key_path());
            root
        };
        if !self.root_public_path().exists() {
            root.public_key().write_file(&self.root_public_path())?;
            report.written.push(self.root_public_path());
        }
        make_secret(&self.push_token_path(), "pt_", &mut report)?;
        make_secret(&self.cookie_key_path(), "", &mut report)?;
        make_secret(&self.playback_key_path(), "", &mut report)?;
        make_secret(&self.broker_password_path(), "", &mut report)?;
        for node in ingest {
            self.certified_key::<Ingest>(
                &root,
                &self.signing_key_path(node),
                &self.certificate_path(node),
                node,
                now,
                &mut report,
            )?;
        }
        self.provenance(&root, ingest, now, &mut report)?;
        self.anchor_trusted_cas(&root, now, &mut report)?;
        self.certified_key::<Edge>(
            &root,
            &self.edge_key_path(),
            &self.edge_certificate_path(),
            &edge_key_name()?,
            now,
            &mut report,
        )?;
        Ok(report)
    }

    /// Makes the key at `key_path` if missing, and its certificate of kind `K` for `node`
    /// if missing, for another key or node, or expiring within [`RENEW_BEFORE`].
    fn certified_key<K: CertificateKind>(
        &self,
        root: &RootKey,
        key_path: &Path,
        cert_path: &Path,
        node: &NodeId,
        now: u64,
        report: &mut InitReport,
    ) -> Result<(), CertsError> {
        let key = if key_path.exists() {
            SigningKey::read_file(key_path)?
        } else {
            let key = SigningKey::generate(root.algorithm())?;
            key.write_file(key_path)?;
            report.written.push(key_path.to_path_buf());
            key
        };
        let current = if cert_path.exists() {
            Some(Certificate::<K>::read_file(cert_path)?)
        } else {
            None
        };
        let fresh = current.is_some_and(|c| {
            c.key_id() == key.key_id()
                && c.node_id() == node
                && c.validity().not_after() > now.saturating_add(RENEW_BEFORE.as_secs())
        });
        if !fresh {
            let validity = Validity::starting_at(now, CERTIFICATE_LIFETIME);
            root.certify_as::<K>(key.public_key(), node.clone(), validity)?
                .write_file(cert_path)?;
            report.written.push(cert_path.to_path_buf());
        }
        Ok(())
    }

    /// The broadcast nodes' edge key and its certificate (checked to be for that key).
    pub fn edge(&self) -> Result<(SigningKey, EdgeCertificate), CertsError> {
        let key = SigningKey::read_file(&self.edge_key_path())?;
        let cert = EdgeCertificate::read_file(&self.edge_certificate_path())?;
        if cert.key_id() != key.key_id() {
            return Err(CertsError::KeyMismatch {
                key: self.edge_key_path(),
                certificate: self.edge_certificate_path(),
            });
        }
        Ok((key, cert))
    }

    /// The pinned root public key.
    pub fn root_public(&self) -> Result<RootPublicKey, CertsError> {
        RootPublicKey::read_file(&self.root_public_path())
    }

    /// The root private key (to certify or revoke).
    pub fn root_key(&self) -> Result<RootKey, CertsError> {
        RootKey::read_file(&self.root_key_path())
    }

    /// An ingest node's signing key and the encoded bytes of its certificate.
    pub fn ingest(&self, node: &NodeId) -> Result<(SigningKey, Vec<u8>), CertsError> {
        let key = SigningKey::read_file(&self.signing_key_path(node))?;
        let cert = IngestCertificate::read_file(&self.certificate_path(node))?;
        Ok((key, cert.encode()))
    }

    /// The push token.
    pub fn push_token(&self) -> Result<PushToken, CertsError> {
        read_push_token(&self.push_token_path())
    }

    /// The embedded broker's password (64 hex digits).
    pub fn broker_password(&self) -> Result<zeroize::Zeroizing<String>, CertsError> {
        let path = self.broker_password_path();
        let text = zeroize::Zeroizing::new(
            fs::read_to_string(&path).map_err(crate::signing::io_error(&path))?,
        );
        let password = text.trim();
        if password.len() != 64 || !password.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CertsError::FileFormat {
                path,
                what: "broker password file",
                reason: "not 64 hex digits",
            });
        }
        Ok(zeroize::Zeroizing::new(password.to_owned()))
    }

    /// The sticky-cookie key (32 bytes, kept as 64 hex digits).
    pub fn cookie_key(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, CertsError> {
        read_hex_key(&self.cookie_key_path(), "cookie key file")
    }

    /// The playback-token key (32 bytes, kept as 64 hex digits).
    pub fn playback_key(&self) -> Result<crate::tokens::PlaybackKey, CertsError> {
        let bytes = read_hex_key(&self.playback_key_path(), "playback key file")?;
        crate::tokens::PlaybackKey::new(&bytes)
    }
}

/// A 32-byte secret kept as 64 hex digits (surrounding whitespace ignored).
fn read_hex_key(
    path: &Path,
    what: &'static str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, CertsError> {
    let text =
        zeroize::Zeroizing::new(fs::read_to_string(path).map_err(crate::signing::io_error(path))?);
    let text = text.trim();
    let bad = || CertsError::FileFormat {
        path: path.to_path_buf(),
        what,
        reason: "not 64 hex digits",
    };
    if text.len() != 64 {
        return Err(bad());
    }
    let mut key = zeroize::Zeroizing::new(Vec::with_capacity(32));
    for pair in text.as_bytes().chunks(2) {
        let digits = std::str::from_utf8(pair).map_err(|_| bad())?;
        key.push(u8::from_str_radix(digits, 16).map_err(|_| bad())?);
    }
    Ok(key)
}

/// The name the edge key is certified under: one key for every broadcast node of the
/// cluster, as replicas scale without a key of their own.
fn edge_key_name() -> Result<NodeId, CertsError> {
    NodeId::new("broadcast").map_err(|_| CertsError::Malformed {
        what: "edge key name",
        reason: "not a node id",
    })
}

/// Most revocation files [`KeyDir::revocations`] reads.
pub const MAX_REVOCATION_FILES: usize = 10_000;
/// Largest revocation file [`KeyDir::revocations`] reads (an ML-DSA-65 one is 3.4 KB).
pub const MAX_REVOCATION_FILE_LEN: u64 = 64 * 1024;

/// Writes `prefix` and 64 random hex digits (256 bits) to `path`, readable by the owner
/// only, unless the file exists; notes it in `report`.
fn make_secret(path: &Path, prefix: &str, report: &mut InitReport) -> Result<(), CertsError> {
    if path.exists() {
        return Ok(());
    }
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| CertsError::Randomness)?;
    let secret = zeroize::Zeroizing::new(format!("{prefix}{}", hex(&bytes)));
    crate::signing::write_atomically(path, secret.as_bytes(), 0o600)?;
    report.written.push(path.to_path_buf());
    Ok(())
}

/// Reads a push token file (surrounding whitespace ignored).
pub fn read_push_token(path: &Path) -> Result<PushToken, CertsError> {
    let text = fs::read_to_string(path).map_err(crate::signing::io_error(path))?;
    PushToken::new(text).map_err(|_| CertsError::FileFormat {
        path: path.to_path_buf(),
        what: "push token file",
        reason: "not a push token (at least 16 printable characters)",
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::c2pa::ProvenanceCa;
    use crate::signing::TrustStore;
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn init_creates_a_working_chain_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path().join("keys"));
        let ingest = NodeId::new("ingest1").expect("valid");
        let report = dir
            .init(
                SignatureAlgorithm::Ed25519,
                std::slice::from_ref(&ingest),
                NOW,
            )
            .expect("init");
        assert_eq!(report.written.len(), 14);
        for private in [
            dir.provenance_ca_key_path(),
            dir.claim_signer_key_path(&ingest),
            dir.root_key_path(),
            dir.push_token_path(),
            dir.cookie_key_path(),
            dir.playback_key_path(),
            dir.broker_password_path(),
            dir.signing_key_path(&ingest),
            dir.edge_key_path(),
        ] {
            let mode = fs::metadata(&private).expect("exists").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", private.display());
        }
        assert_eq!(dir.broker_password().expect("password").len(), 64);
        // Revocations are kept, one file per key, and read back.
        assert!(dir.revocations().expect("none yet").is_empty());
        let revocation = dir
            .root_key()
            .expect("root")
            .revoke(dir.ingest(&ingest).expect("ingest").0.key_id(), NOW);
        dir.save_revocation(&revocation).expect("saved");
        dir.save_revocation(&revocation).expect("saved again");
        fs::write(dir.revocations_dir().join("notes.txt"), "ignored").expect("write");
        assert_eq!(dir.revocations().expect("read"), vec![revocation.encode()]);
        // Again: nothing to do.
        let again = dir
            .init(
                SignatureAlgorithm::MlDsa65,
                std::slice::from_ref(&ingest),
                NOW,
            )
            .expect("init");
        assert!(again.written.is_empty(), "{again:?}");

        // What an edge pins admits what an ingest signs.
        let mut trust = TrustStore::new(dir.root_public().expect("root"));
        let (key, cert) = dir.ingest(&ingest).expect("ingest material");
        assert_eq!(
            trust.add_certificate(&cert, NOW).expect("admitted"),
            key.key_id()
        );
        let sig = key.sign(b"m");
        trust
            .verify(key.key_id(), b"m", &sig, NOW)
            .expect("verifies");
        assert!(dir.push_token().is_ok());
        assert_eq!(dir.cookie_key().expect("cookie key").len(), 32);
        // The playback key mints tokens it then verifies; it is not the cookie key.
        let playback = dir.playback_key().expect("playback key");
        let claims =
            crate::tokens::Claims::new(domain::StreamName::new("s").expect("valid"), NOW, NOW + 60);
        assert_eq!(playback.verify(&playback.mint(&claims), NOW), Ok(claims));
        assert_ne!(
            fs::read(dir.playback_key_path()).expect("read"),
            fs::read(dir.cookie_key_path()).expect("read")
        );

        // The edge key signs presences the pinned root vouches for; it is no ingest key.
        let (edge, edge_cert) = dir.edge().expect("edge material");
        let signer = crate::signing::PresenceSigner::new(edge, &edge_cert).expect("signer");
        let node = NodeId::new("broadcast1").expect("valid");
        let presence = domain::presence::Presence {
            role: domain::presence::Role::Broadcast,
            state: domain::presence::PresenceState::Ready,
            url: Some("http://10.0.0.5:8080".into()),
            direct_url: None,
        };
        let verifier = crate::signing::PresenceVerifier::new(dir.root_public().expect("root"));
        assert_eq!(
            verifier
                .check(&node, &signer.sign(&node, &presence, NOW * 1000), NOW)
                .expect("believed"),
            presence
        );
        assert!(trust.add_certificate(&edge_cert.encode(), NOW).is_err());
    }

    #[test]
    fn expiring_certificates_are_renewed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path());
        let ingest = NodeId::new("ingest1").expect("valid");
        dir.init(
            SignatureAlgorithm::Ed25519,
            std::slice::from_ref(&ingest),
            NOW,
        )
        .expect("init");
        let later = NOW + CERTIFICATE_LIFETIME.as_secs() - RENEW_BEFORE.as_secs() + 1;
        let report = dir
            .init(
                SignatureAlgorithm::Ed25519,
                std::slice::from_ref(&ingest),
                later,
            )
            .expect("init");
        assert_eq!(
            report.written,
            vec![
                dir.certificate_path(&ingest),
                dir.claim_signer_key_path(&ingest),
                dir.claim_signer_path(&ingest),
                dir.edge_certificate_path()
            ]
        );
        let signer = dir.claim_signer(&ingest).expect("read").expect("there");
        assert!(signer.not_after() > later + RENEW_BEFORE.as_secs());
        let cert = IngestCertificate::read_file(&dir.certificate_path(&ingest)).expect("cert");
        assert_eq!(cert.validity().not_before(), later);
    }

    #[test]
    fn other_signers_cas_are_anchored_for_viewers_and_their_anchors_follow_the_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path());
        let nodes = [NodeId::new("ingest1").expect("valid")];
        dir.init(SignatureAlgorithm::Ed25519, &nodes, NOW)
            .expect("init");
        assert!(dir.delivered_anchors().expect("none").is_empty());
        let (a, b) = (
            ProvenanceCa::generate("a trust list CA", NOW).expect("ca"),
            ProvenanceCa::generate("another", NOW).expect("ca"),
        );
        let root = dir.root_public().expect("root");
        let digests = |anchors: &[crate::c2pa::ProvenanceAnchor]| -> Vec<[u8; 32]> {
            (anchors.iter())
                .map(|x| root.verify_anchor(x, NOW).expect("the root's"))
                .collect()
        };
        let of =
            |ca: &ProvenanceCa| -> [u8; 32] { Sha256::digest(ca.cert_der().expect("der")).into() };
        fs::write(dir.trusted_cas_path(), a.cert_pem()).expect("trusted");
        let report = dir
            .init(SignatureAlgorithm::Ed25519, &nodes, NOW)
            .expect("init");
        assert_eq!(report.written, vec![dir.delivered_anchors_path()]);
        assert_eq!(
            digests(&dir.delivered_anchors().expect("read")),
            vec![of(&a)]
        );
        let again = dir
            .init(SignatureAlgorithm::Ed25519, &nodes, NOW)
            .expect("init");
        assert!(again.written.is_empty(), "{again:?}");
        // Another CA added: anchored too; close to the anchors' end: renewed.
        fs::write(
            dir.trusted_cas_path(),
            format!("{}{}", a.cert_pem(), b.cert_pem()),
        )
        .expect("trusted");
        dir.init(SignatureAlgorithm::Ed25519, &nodes, NOW)
            .expect("init");
        assert_eq!(
            digests(&dir.delivered_anchors().expect("read")),
            vec![of(&a), of(&b)]
        );
        let late = NOW + CERTIFICATE_LIFETIME.as_secs() - 86_400;
        let renewed = dir
            .init(SignatureAlgorithm::Ed25519, &nodes, late)
            .expect("init");
        assert!(
            renewed.written.contains(&dir.delivered_anchors_path()),
            "{renewed:?}"
        );
        // A certificate that is not a CA is refused; no file, no anchors.
        let signer = a.issue("newsroom", "camera 7", NOW).expect("signer");
        fs::write(dir.trusted_cas_path(), signer.chain_pem()).expect("trusted");
        assert!(dir.init(SignatureAlgorithm::Ed25519, &nodes, NOW).is_err());
        fs::remove_file(dir.trusted_cas_path()).expect("removed");
        let removed = dir
            .init(SignatureAlgorithm::Ed25519, &nodes, NOW)
            .expect("init");
        assert!(!dir.delivered_anchors_path().exists());
        assert_eq!(removed.removed, [dir.delivered_anchors_path()]);
        assert!(
            !removed.written.contains(&dir.delivered_anchors_path()),
            "a removed file is not written: {removed:?}"
        );
    }

    /// A key directory `keys init` made, with one ingest, `ingest1`.
    fn initialised_key_dir() -> (tempfile::TempDir, KeyDir, NodeId) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path());
        let ingest = NodeId::new("ingest1").expect("valid");
        dir.init(
            SignatureAlgorithm::Ed25519,
            std::slice::from_ref(&ingest),
            NOW,
        )
        .expect("init");
        (tmp, dir, ingest)
    }

    /// Puts an operator's claim signer (chain and key) in `ingest`'s place and runs `keys
    /// init`, which must keep it and write only its chain file (its issuer's anchor added):
    /// the chain file's path and the key's.
    fn place_operators_signer(
        dir: &KeyDir,
        ingest: &NodeId,
        signer: &crate::c2pa::ClaimSigner,
    ) -> (PathBuf, PathBuf) {
        let (chain, key) = (
            dir.claim_signer_path(ingest),
            dir.claim_signer_key_path(ingest),
        );
        fs::write(&chain, signer.chain_pem()).expect("chain");
        fs::write(&key, signer.key_pem().as_bytes()).expect("key");
        let report = dir
            .init(
                SignatureAlgorithm::Ed25519,
                std::slice::from_ref(ingest),
                NOW,
            )
            .expect("init");
        assert_eq!(
            report.written,
            vec![chain.clone()],
            "kept, its issuer anchored"
        );
        (chain, key)
    }

    #[test]
    fn an_operators_claim_signer_is_kept_and_its_issuer_anchored() {
        let (_tmp, dir, ingest) = initialised_key_dir();
        let nodes = std::slice::from_ref(&ingest);
        // A certificate from another CA (a C2PA trust list's), its issuer after it.
        let theirs = ProvenanceCa::generate("a trust list CA", NOW).expect("ca");
        let signer = theirs.issue("newsroom", "camera 7", NOW).expect("signer");
        let their_ca = theirs.cert_der().expect("der");
        assert_eq!(signer.chain()[1], their_ca);
        let (chain, key) = place_operators_signer(&dir, &ingest, &signer);
        let kept = dir.claim_signer(&ingest).expect("read").expect("there");
        assert_eq!(kept.subject(), "camera 7");
        let digest: [u8; 32] = Sha256::digest(&their_ca).into();
        let root = dir.root_public().expect("root");
        assert_eq!(
            root.verify_anchor(kept.anchor().expect("anchored"), NOW)
                .expect("verifies"),
            digest
        );
        let again = dir
            .init(SignatureAlgorithm::Ed25519, nodes, NOW)
            .expect("init");
        assert!(again.written.is_empty(), "{again:?}");

        // One of ours from before the CA rode in its chain file is issued again.
        let ours = ProvenanceCa::from_pem(
            &fs::read_to_string(dir.provenance_ca_path()).expect("ca"),
            &fs::read_to_string(dir.provenance_ca_key_path()).expect("key"),
        )
        .expect("ours");
        let old = ours.issue(CLUSTER_NAME, "ingest1", NOW).expect("signer");
        let first = old.chain_pem();
        let first = &first[..first.find("-----END CERTIFICATE-----").expect("pem") + 26];
        fs::write(&chain, first).expect("chain");
        fs::write(&key, old.key_pem().as_bytes()).expect("key");
        let report = dir
            .init(SignatureAlgorithm::Ed25519, nodes, NOW)
            .expect("init");
        assert_eq!(report.written, vec![key, chain]);
        let renewed = dir.claim_signer(&ingest).expect("read").expect("there");
        assert_eq!(renewed.chain().len(), 2);
        assert!(renewed.anchor().is_some());
    }

    /// An operator's ES256 certificate (ECDSA P-256, as CAs of the C2PA trust list issue
    /// them) is kept like an Ed25519 one, its ES256 issuer anchored, and an ingest signs
    /// with it: its manifests verify for a viewer who pins only the root.
    #[test]
    fn an_operators_es256_claim_signer_is_kept_and_signs() {
        use crate::c2pa::validate::{FragmentVerdict, InitVerdict, LiveValidator};
        use crate::c2pa::LiveSigner;
        let (_tmp, dir, ingest) = initialised_key_dir();
        let nodes = std::slice::from_ref(&ingest);
        let theirs = ProvenanceCa::generate_es256("a trust list CA", NOW).expect("ca");
        let signer = theirs
            .issue_es256("newsroom", "camera 7", NOW)
            .expect("signer");
        let (_, key) = place_operators_signer(&dir, &ingest, &signer);
        assert_eq!(
            fs::read_to_string(&key).expect("key"),
            *signer.key_pem(),
            "the operator's key is left as it was"
        );
        let kept = dir.claim_signer(&ingest).expect("read").expect("there");
        assert_eq!(kept.subject(), "camera 7");
        assert_eq!(kept.cose_alg(), domain::c2pa::cose::ALG_ES256);
        let root = dir.root_public().expect("root");
        let digest: [u8; 32] = Sha256::digest(theirs.cert_der().expect("der")).into();
        assert_eq!(
            root.verify_anchor(kept.anchor().expect("anchored"), NOW)
                .expect("verifies"),
            digest
        );
        assert!(dir
            .init(SignatureAlgorithm::Ed25519, nodes, NOW)
            .expect("init")
            .written
            .is_empty());

        // An ingest's session signs with it, as the pipeline does.
        let live = LiveSigner::for_session(std::sync::Arc::new(kept), NOW);
        let label = LiveSigner::manifest_label("demo", "00000000000000aa", "src");
        let init = live
            .sign_init(
                &crate::c2pa::vectors::plain_init(),
                &label,
                "demo src",
                vec![],
            )
            .expect("signed");
        let mut v = LiveValidator::new(root);
        assert_eq!(
            v.admit_init(&init, NOW),
            Ok(InitVerdict::Verified {
                signer: "camera 7".into()
            })
        );
        let fragment = crate::c2pa::vectors::plain_fragment(1);
        let vsi = live
            .sign_fragment(
                &fragment,
                domain::c2pa::vsi::Numbering::Fragment,
                &label,
                NOW,
                90_000,
                30_000,
            )
            .expect("vsi");
        assert_eq!(
            v.check_fragment(&[vsi, fragment].concat(), true),
            Ok(FragmentVerdict::Verified)
        );
    }

    #[test]
    fn a_bad_push_token_file_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("push-token");
        fs::write(&path, "short").expect("write");
        let err = read_push_token(&path).expect_err("refused");
        assert!(err.to_string().contains("push-token"), "{err}");
    }
}

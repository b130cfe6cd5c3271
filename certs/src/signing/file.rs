//! Key and certificate files.
//!
//! A key file is `sealcast-key\0`, a version byte (1), a kind byte (root private, signing
//! private, root public, public), the algorithm code, then the 32-byte seed of a private key
//! or the public key's canonical bytes; nothing else. The kind is checked on reading, so a
//! root key cannot be loaded where an ingest key is expected or the other way round. A
//! certificate file holds [`IngestCertificate::encode`]'s bytes.
//!
//! Every file is written atomically: a fresh temporary file in the same directory, synced,
//! then renamed over the target, so a crash leaves the old file or the new one, never half
//! a key. Files that must never be replaced (the TLS CA) are linked into place instead,
//! which fails if the name is taken, even by a concurrent writer. Private keys are created
//! with mode 0600 from the start (never widened later); public files with 0644, less
//! whatever the umask removes. Errors name the path and what
//! is wrong, never the contents.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use domain::wire::SignatureAlgorithm;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::cert::{Certificate, CertificateKind};
use super::keys::{
    public_key_len, KeyPair, PublicKey, RootKey, RootPublicKey, SigningKey, SEED_LEN,
};
use crate::CertsError;

const MAGIC: &[u8] = b"sealcast-key\0";
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 3;
const PRIVATE_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// What a key file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RootPrivate = 1,
    SigningPrivate = 2,
    RootPublic = 3,
    Public = 4,
}

impl Kind {
    fn from_code(code: u8) -> Option<Self> {
        [
            Self::RootPrivate,
            Self::SigningPrivate,
            Self::RootPublic,
            Self::Public,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == code)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::RootPrivate => "root private key file",
            Self::SigningPrivate => "ingest signing key file",
            Self::RootPublic => "root public key file",
            Self::Public => "public key file",
        }
    }

    fn is_private(self) -> bool {
        matches!(self, Self::RootPrivate | Self::SigningPrivate)
    }

    /// The reason given when a file of this kind is found where another was expected.
    fn found_instead(self) -> &'static str {
        match self {
            Self::RootPrivate => "it holds a root private key",
            Self::SigningPrivate => "it holds an ingest signing key",
            Self::RootPublic => "it holds a root public key",
            Self::Public => "it holds a public key",
        }
    }
}

fn encode_key_file(
    kind: Kind,
    algorithm: SignatureAlgorithm,
    payload: &[u8],
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + payload.len()));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, kind as u8, algorithm.code()]);
    out.extend_from_slice(payload);
    out
}

/// Parses a key file's bytes; the error is the reason it is unusable (never its contents).
fn decode_key_file(
    bytes: &[u8],
    expected: Kind,
) -> Result<(SignatureAlgorithm, &[u8]), &'static str> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("not a sealcast key file")?;
    let (header, payload) = rest.split_first_chunk::<3>().ok_or("truncated")?;
    let [version, kind, algorithm] = *header;
    if version != VERSION {
        return Err("unsupported version");
    }
    let kind = Kind::from_code(kind).ok_or("unknown key kind")?;
    if kind != expected {
        return Err(kind.found_instead());
    }
    let algorithm = SignatureAlgorithm::from_code(algorithm).ok_or("unknown algorithm")?;
    let expected_len = if kind.is_private() {
        SEED_LEN
    } else {
        public_key_len(algorithm)
    };
    if payload.len() != expected_len {
        return Err("wrong length for its algorithm");
    }
    Ok((algorithm, payload))
}

pub(crate) fn io_error(path: &Path) -> impl Fn(io::Error) -> CertsError + '_ {
    move |source| CertsError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn format_error(path: &Path, what: &'static str, reason: &'static str) -> CertsError {
    CertsError::FileFormat {
        path: path.to_path_buf(),
        what,
        reason,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename; see the module doc.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    write_through_temp(path, bytes, mode, Publish::Replace)
}

/// Like [`write_atomically`], but never replaces a file at `path`, not even one another
/// process creates meanwhile: the error is then [`io::ErrorKind::AlreadyExists`]. For files
/// whose loss would break trust already placed in them, such as a CA key.
pub(crate) fn write_new_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    write_through_temp(path, bytes, mode, Publish::CreateNew)
}

/// How a complete temporary file takes its final name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// `rename`: atomically replaces whatever is there.
    Replace,
    /// `link`: atomic too, and fails if the name is taken.
    CreateNew,
}

fn write_through_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    publish: Publish,
) -> Result<(), CertsError> {
    let name = path.file_name().ok_or_else(|| CertsError::File {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // A name no one else uses: concurrent writers never share a temporary file.
    let mut nonce = [0u8; 8];
    if OsRng.try_fill_bytes(&mut nonce).is_err() {
        nonce = u64::from(std::process::id()).to_be_bytes();
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{:016x}.tmp", u64::from_be_bytes(nonce)));
    let tmp: PathBuf = dir.join(tmp_name);

    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        file.write_all(bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        match publish {
            Publish::Replace => fs::rename(&tmp, path).map_err(io_error(path)),
            Publish::CreateNew => fs::hard_link(&tmp, path).map_err(io_error(path)),
        }
    })();
    if written.is_err() || publish == Publish::CreateNew {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // Make the rename itself durable; best effort, as some file systems refuse to sync a
    // directory and the file is complete either way.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_key(
    path: &Path,
    kind: Kind,
    algorithm: SignatureAlgorithm,
    payload: &[u8],
) -> Result<(), CertsError> {
    let mode = if kind.is_private() {
        PRIVATE_MODE
    } else {
        PUBLIC_MODE
    };
    write_atomically(path, &encode_key_file(kind, algorithm, payload), mode)
}

fn read_private(path: &Path, kind: Kind) -> Result<KeyPair, CertsError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(io_error(path))?);
    let (algorithm, seed) = decode_key_file(&bytes, kind)
        .map_err(|reason| format_error(path, kind.describe(), reason))?;
    let mut array = Zeroizing::new([0u8; SEED_LEN]);
    array.copy_from_slice(seed);
    Ok(KeyPair::from_seed(algorithm, array))
}

fn read_public(path: &Path, kind: Kind) -> Result<PublicKey, CertsError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let (algorithm, key) = decode_key_file(&bytes, kind)
        .map_err(|reason| format_error(path, kind.describe(), reason))?;
    PublicKey::from_bytes(algorithm, key)
        .map_err(|_| format_error(path, kind.describe(), "not a valid public key"))
}

impl RootKey {
    /// Writes the root key to `path` (mode 0600, atomically, replacing any file there).
    pub fn write_file(&self, path: &Path) -> Result<(), CertsError> {
        write_key(path, Kind::RootPrivate, self.algorithm(), self.0.seed())
    }

    /// Reads a root key written by [`RootKey::write_file`].
    pub fn read_file(path: &Path) -> Result<Self, CertsError> {
        read_private(path, Kind::RootPrivate).map(RootKey)
    }
}

impl SigningKey {
    /// Writes the signing key to `path` (mode 0600, atomically, replacing any file there).
    pub fn write_file(&self, path: &Path) -> Result<(), CertsError> {
        write_key(path, Kind::SigningPrivate, self.algorithm(), self.0.seed())
    }

    /// Reads a signing key written by [`SigningKey::write_file`].
    pub fn read_file(path: &Path) -> Result<Self, CertsError> {
        read_private(path, Kind::SigningPrivate).map(SigningKey)
    }
}

impl RootPublicKey {
    /// Writes the root public key (what edges pin) to `path` (mode 0644, atomically).
    pub fn write_file(&self, path: &Path) -> Result<(), CertsError> {
        write_key(path, Kind::RootPublic, self.algorithm(), self.0.as_bytes())
    }

    /// The bytes [`RootPublicKey::write_file`] writes: what edges serve at
    /// `/trust/v1/root.pub` for viewers.
    pub fn file_bytes(&self) -> Vec<u8> {
        encode_key_file(Kind::RootPublic, self.algorithm(), self.0.as_bytes()).to_vec()
    }

    /// Parses [`RootPublicKey::file_bytes`] (what `/trust/v1/root.pub` serves).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, CertsError> {
        let what = Kind::RootPublic.describe();
        let (algorithm, key) = decode_key_file(bytes, Kind::RootPublic)
            .map_err(|reason| CertsError::Malformed { what, reason })?;
        PublicKey::from_bytes(algorithm, key).map(RootPublicKey)
    }

    /// Reads a root public key written by [`RootPublicKey::write_file`].
    pub fn read_file(path: &Path) -> Result<Self, CertsError> {
        read_public(path, Kind::RootPublic).map(RootPublicKey)
    }
}

impl PublicKey {
    /// Writes an ingest public key (for the root's operator to certify) to `path` (mode 0644,
    /// atomically).
    pub fn write_file(&self, path: &Path) -> Result<(), CertsError> {
        write_key(path, Kind::Public, self.algorithm(), self.as_bytes())
    }

    /// Reads a public key written by [`PublicKey::write_file`].
    pub fn read_file(path: &Path) -> Result<Self, CertsError> {
        read_public(path, Kind::Public)
    }
}

impl<K: CertificateKind> Certificate<K> {
    /// Writes the certificate's canonical bytes to `path` (mode 0644, atomically).
    pub fn write_file(&self, path: &Path) -> Result<(), CertsError> {
        write_atomically(path, &self.encode(), PUBLIC_MODE)
    }

    /// Reads a certificate file; its signature is not checked here.
    pub fn read_file(path: &Path) -> Result<Self, CertsError> {
        let bytes = fs::read(path).map_err(io_error(path))?;
        Certificate::<K>::decode(&bytes).map_err(|err| match err {
            CertsError::Malformed { reason, .. } => format_error(path, K::WHAT, reason),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{IngestCertificate, Validity};
    use domain::NodeId;
    use proptest::prelude::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("exists").permissions().mode() & 0o777
    }

    #[test]
    fn keys_round_trip_through_files_and_private_ones_are_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
            let root = RootKey::generate(algorithm).expect("root");
            let ingest = SigningKey::generate(algorithm).expect("ingest");
            let root_path = dir.path().join(format!("{algorithm:?}-root.key"));
            let ingest_path = dir.path().join(format!("{algorithm:?}-ingest.key"));
            let pin_path = dir.path().join(format!("{algorithm:?}-root.pub"));
            let pub_path = dir.path().join(format!("{algorithm:?}-ingest.pub"));
            let cert_path = dir.path().join(format!("{algorithm:?}-ingest.cert"));

            root.write_file(&root_path).expect("written");
            ingest.write_file(&ingest_path).expect("written");
            root.public_key().write_file(&pin_path).expect("written");
            ingest.public_key().write_file(&pub_path).expect("written");
            assert_eq!(mode(&root_path), 0o600);
            assert_eq!(mode(&ingest_path), 0o600);

            // The whole chain, through files only.
            let root = RootKey::read_file(&root_path).expect("read");
            let cert = root
                .certify(
                    &PublicKey::read_file(&pub_path).expect("read"),
                    NodeId::new("ingest1").expect("valid"),
                    Validity::new(0, 100).expect("valid"),
                )
                .expect("same algorithm");
            cert.write_file(&cert_path).expect("written");
            let pinned = RootPublicKey::read_file(&pin_path).expect("read");
            let key = pinned
                .verify_certificate(&IngestCertificate::read_file(&cert_path).expect("read"), 50)
                .expect("trusted");
            let ingest = SigningKey::read_file(&ingest_path).expect("read");
            key.verify(b"m", &ingest.sign(b"m")).expect("same key");
        }
        // Nothing left behind but the files themselves.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 10, "{names:?}");
    }

    #[test]
    fn rewriting_a_private_key_keeps_it_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ingest.key");
        fs::write(&path, b"old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let key = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        key.write_file(&path).expect("written");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            SigningKey::read_file(&path).expect("read").key_id(),
            key.key_id()
        );
    }

    #[test]
    fn unusable_files_get_an_error_naming_the_path_and_no_key_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let root_path = dir.path().join("root.key");
        root.write_file(&root_path).expect("written");

        // A root key where an ingest key is expected.
        let err = SigningKey::read_file(&root_path).expect_err("wrong kind");
        let text = err.to_string();
        assert!(
            text.contains("root.key") && text.contains("root private key"),
            "{text}"
        );
        let seed_hex: String = root.0.seed().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&seed_hex) && !format!("{err:?}").contains(&seed_hex));

        let garbled = dir.path().join("garbled.key");
        fs::write(&garbled, b"not a key").expect("write");
        let err = RootKey::read_file(&garbled).expect_err("garbled");
        assert!(matches!(err, CertsError::FileFormat { .. }), "{err}");
        assert!(err.to_string().contains("garbled.key"), "{err}");

        let mut truncated = fs::read(&root_path).expect("read");
        truncated.pop();
        let short = dir.path().join("short.key");
        fs::write(&short, truncated).expect("write");
        assert!(RootKey::read_file(&short).is_err());

        let missing = dir.path().join("missing.key");
        let err = RootKey::read_file(&missing).expect_err("missing");
        assert!(matches!(err, CertsError::File { .. }), "{err}");
        assert!(err.to_string().contains("missing.key"), "{err}");

        let err = IngestCertificate::read_file(&garbled).expect_err("garbled");
        assert!(err.to_string().contains("garbled.key"), "{err}");

        let nowhere = dir.path().join("no-such-dir").join("root.key");
        let err = root.write_file(&nowhere).expect_err("no directory");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn writing_a_new_file_never_replaces_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.key");
        write_new_atomically(&path, b"first", PRIVATE_MODE).expect("written");
        assert_eq!(mode(&path), 0o600);
        let err = write_new_atomically(&path, b"second", PRIVATE_MODE).expect_err("taken");
        assert!(
            matches!(&err, CertsError::File { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(fs::read(&path).expect("read"), b"first");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["ca.key"], "no temporary file left");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_key_files_never_panics(
            kind in 0u8..6,
            algorithm in 0u8..4,
            rest in proptest::collection::vec(any::<u8>(), 0..2100),
            prefixed in any::<bool>(),
        ) {
            let mut bytes = if prefixed { MAGIC.to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&[VERSION, kind, algorithm]);
            bytes.extend_from_slice(&rest);
            for expected in [Kind::RootPrivate, Kind::SigningPrivate, Kind::RootPublic, Kind::Public] {
                let _ = decode_key_file(&bytes, expected);
                let _ = decode_key_file(&rest, expected);
            }
        }
    }
}

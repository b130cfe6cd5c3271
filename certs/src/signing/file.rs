//! Key files. Private keys are written with mode 0600, atomically (a temporary file in the
//! same directory, then a rename), so a crash never leaves half a key or a readable one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{put_part, PrivateKey, PublicKey, Reader};
use crate::CertsError;

const PRIVATE_TAG: &[u8] = b"sealcast-private-key-v1\0";
const PUBLIC_TAG: &[u8] = b"sealcast-public-key-v1\0";

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> CertsError + '_ {
    move |source| CertsError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(file_error(&tmp))?;
    file.write_all(bytes).map_err(file_error(&tmp))?;
    file.sync_all().map_err(file_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(file_error(path))
}

/// Writes a private key (mode 0600).
pub fn write_private_key(path: &Path, key: &PrivateKey) -> Result<(), CertsError> {
    let mut out = PRIVATE_TAG.to_vec();
    out.push(key.algorithm().code());
    put_part(&mut out, key.secret_bytes());
    put_part(&mut out, key.public_key().as_bytes());
    let result = write_atomically(path, &out, 0o600);
    out.iter_mut().for_each(|b| *b = 0);
    result
}

/// Reads a private key written by [`write_private_key`].
pub fn read_private_key(path: &Path) -> Result<PrivateKey, CertsError> {
    let mut bytes = std::fs::read(path).map_err(file_error(path))?;
    let result = (|| {
        let mut r = Reader::new(&bytes, "private key file");
        r.tag(PRIVATE_TAG)?;
        let algorithm = r.algorithm()?;
        let secret = r.part(8192)?;
        let public = r.part(8192)?;
        r.finish()?;
        PrivateKey::from_parts(algorithm, secret, public)
    })();
    bytes.iter_mut().for_each(|b| *b = 0);
    result
}

/// Writes a public key (mode 0644).
pub fn write_public_key(path: &Path, key: &PublicKey) -> Result<(), CertsError> {
    let mut out = PUBLIC_TAG.to_vec();
    out.push(key.algorithm().code());
    put_part(&mut out, key.as_bytes());
    write_atomically(path, &out, 0o644)
}

/// Reads a public key written by [`write_public_key`].
pub fn read_public_key(path: &Path) -> Result<PublicKey, CertsError> {
    let bytes = std::fs::read(path).map_err(file_error(path))?;
    let mut r = Reader::new(&bytes, "public key file");
    r.tag(PUBLIC_TAG)?;
    let algorithm = r.algorithm()?;
    let key = PublicKey::from_bytes(algorithm, r.part(8192)?)?;
    r.finish()?;
    Ok(key)
}

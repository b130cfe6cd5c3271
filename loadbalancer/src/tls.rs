//! The server certificate, reloaded when its files change.
//!
//! rustls asks [`ReloadingCertificate`] for the certificate on every handshake; a watcher
//! task compares the files' modification time and length every interval and swaps in the
//! new pair once it loads and its key matches. A pair that does not load (half-written,
//! mismatched) is logged and the current one stays: a bad file never takes TLS down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::LoadBalancerError;

/// Where the server certificate chain and its key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The certificate chain, leaf first.
    pub chain: PathBuf,
    /// The private key of the leaf.
    pub key: PathBuf,
}

/// What the files looked like when last loaded: modification time and length of each.
type Stamp = [(Option<SystemTime>, u64); 2];

/// A server certificate resolver whose certificate follows its files.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: CertificateFiles,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: Mutex<Stamp>,
}

impl ReloadingCertificate {
    /// Loads the pair; an error names the file and what is wrong with it.
    pub fn load(files: CertificateFiles) -> Result<Arc<Self>, LoadBalancerError> {
        let stamp = stamp(&files);
        let key = load_pair(&files)?;
        Ok(Arc::new(ReloadingCertificate {
            files,
            current: RwLock::new(Arc::new(key)),
            stamp: Mutex::new(stamp),
        }))
    }

    /// The files it follows.
    pub fn files(&self) -> &CertificateFiles {
        &self.files
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read())
    }

    /// Loads the files again if they changed since the last load. `Ok(true)`: a new
    /// certificate is being served. On an error the previous one stays.
    pub fn reload_if_changed(&self) -> Result<bool, LoadBalancerError> {
        let now = stamp(&self.files);
        if *self.stamp.lock() == now {
            return Ok(false);
        }
        // Remember the stamp even if loading fails, so a broken file is reported once, not
        // every interval; the next change is tried again.
        *self.stamp.lock() = now;
        let key = load_pair(&self.files)?;
        *self.current.write() = Arc::new(key);
        Ok(true)
    }

    /// Checks the files every `interval` until `stop`.
    pub async fn watch(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!(
                    chain = %self.files.chain.display(),
                    "reloaded the server certificate"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "the server certificate files changed but do not load; still serving the previous certificate"
                ),
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(files: &CertificateFiles) -> Stamp {
    let one = |path: &Path| match std::fs::metadata(path) {
        Ok(meta) => (meta.modified().ok(), meta.len()),
        Err(_) => (None, 0),
    };
    [one(&files.chain), one(&files.key)]
}

fn load_pair(files: &CertificateFiles) -> Result<CertifiedKey, LoadBalancerError> {
    let bad = |path: &Path, reason: String| LoadBalancerError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.chain)
        .map_err(|e| bad(&files.chain, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&files.chain, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(&files.chain, "no certificate in the file".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad(&files.key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        bad(
            &files.key,
            format!("does not belong to the certificate: {e}"),
        )
    })?;
    Ok(certified)
}

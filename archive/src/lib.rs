//! The archive: where a cluster keeps its recordings once (issue 49), behind one
//! interface with two backends.
//!
//! - [`Archive::local`]: a directory (the default of `sealcast up`; a named volume in
//!   compose). Atomic writes: a synced temporary file renamed (or linked) into place.
//! - [`Archive::s3`]: a bucket of an S3-compatible store (AWS S3, R2, MinIO, Garage)
//!   through the `object_store` crate, every request bounded in time.
//!
//! The operations are what the recorder and the edges need: [`Archive::put`],
//! [`Archive::put_if_absent`] (the first writer wins: several nodes may race to archive one
//! segment), [`Archive::get`] (refused past a caller's cap, never buffered past it),
//! [`Archive::get_range`], [`Archive::head`], [`Archive::list`] (in bounded pages) and
//! [`Archive::delete_prefix`] (retention). Objects are named by [`ArchiveKey`], built only
//! from validated names, never from a raw string.
//!
//! Modules:
//!
//! - `key`: [`ArchiveKey`], [`ArchivePrefix`], [`RecordingFile`]: the key layout, rendered
//!   and parsed in one place (pure, property-tested).
//! - `page`: [`Page`], [`ListCursor`], and the page builder both backends list through
//!   (pure, property-tested).
//! - `local`: the directory backend.
//! - `s3`: the S3 backend, its [`S3Config`], [`CreateMode`] and [`Timeouts`].
//! - `credentials`: [`S3Credentials`], from the environment or a file, never shown.
//! - `error`: [`ArchiveError`], the crate's one error enum, and the redaction of client
//!   error texts.
//!
//! Its users: `broadcast::archiving` (the recorder's spool and uploader, and the `/vod/`
//! read side with its cache) and the `sealcast` binary, which opens one from `--archive`
//! (`docs/architecture.md`, Archive).

mod credentials;
mod error;
mod key;
mod local;
mod page;
mod s3;

use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

pub use credentials::{S3Credentials, ACCESS_KEY_ID_VAR, SECRET_ACCESS_KEY_VAR};
pub use error::ArchiveError;
pub use key::{ArchiveKey, ArchivePrefix, RecordingFile, MAX_KEY_LEN};
pub use page::{ListCursor, ObjectInfo, Page, MAX_PAGE};
pub use s3::{CreateMode, S3Config, Timeouts};

/// The archive: one of the two backends, behind the same operations. Cheap to clone (the
/// clones share the backend).
#[derive(Debug, Clone)]
pub struct Archive {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(local::Local),
    S3(s3::S3),
}

impl Archive {
    /// The archive in directory `root`, created if missing.
    pub fn local(root: impl Into<PathBuf>) -> Result<Self, ArchiveError> {
        Ok(Self {
            backend: Backend::Local(local::Local::open(root.into())?),
        })
    }

    /// The archive in an S3 bucket. Makes no request: a store that is down shows at the
    /// first operation, as [`ArchiveError::Unavailable`].
    pub fn s3(config: S3Config) -> Result<Self, ArchiveError> {
        Ok(Self {
            backend: Backend::S3(s3::S3::connect(config)?),
        })
    }

    /// The directory of a local archive; `None` for S3.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(l) => Some(l.root()),
            Backend::S3(_) => None,
        }
    }

    /// Writes an object whole, replacing any object of that key. Readers see the old
    /// object or the new one, never a part.
    pub async fn put(&self, key: &ArchiveKey, bytes: Bytes) -> Result<(), ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.put(key, bytes).await,
            Backend::S3(s) => s.put(key, bytes).await,
        }
    }

    /// Writes an object only if the key is free: [`ArchiveError::AlreadyExists`] if it is
    /// taken, the object left as it was. Locally exactly one of racing writers wins (a hard
    /// link, which fails on a taken name); on S3 it depends on the store
    /// ([`CreateMode`], [`Archive::probe_conditional_create`]).
    pub async fn put_if_absent(&self, key: &ArchiveKey, bytes: Bytes) -> Result<(), ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.put_if_absent(key, bytes).await,
            Backend::S3(s) => s.put_if_absent(key, bytes).await,
        }
    }

    /// [`Archive::put_if_absent`] of an object the caller's [`Archive::head`] has just
    /// found absent: a store in [`CreateMode::CheckFirst`] is not asked again (its check
    /// would be a second `HEAD` of the same key; between the two a racing writer gets in
    /// as easily), the others create as ever.
    pub async fn put_if_absent_after_head(
        &self,
        key: &ArchiveKey,
        bytes: Bytes,
    ) -> Result<(), ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.put_if_absent(key, bytes).await,
            Backend::S3(s) => s.put_if_absent_after_head(key, bytes).await,
        }
    }

    /// Reads an object whole, if it has at most `limit` bytes ([`ArchiveError::TooLarge`]
    /// otherwise, having read no more than `limit`).
    pub async fn get(&self, key: &ArchiveKey, limit: u64) -> Result<Bytes, ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.get(key, limit).await,
            Backend::S3(s) => s.get(key, limit).await,
        }
    }

    /// Reads bytes `range` of an object. The range must be non-empty and inside the object
    /// ([`ArchiveError::Refused`] otherwise); what is read is at most its length.
    pub async fn get_range(
        &self,
        key: &ArchiveKey,
        range: Range<u64>,
    ) -> Result<Bytes, ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.get_range(key, range).await,
            Backend::S3(s) => s.get_range(key, range).await,
        }
    }

    /// The size of an object in bytes.
    pub async fn head(&self, key: &ArchiveKey) -> Result<u64, ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.head(key).await,
            Backend::S3(s) => s.head(key).await,
        }
    }

    /// One page of the objects under `prefix`, in key order, from just after `after` (the
    /// previous page's [`Page::next`]; `None` for the first page). At most `limit` objects
    /// (clamped to 1..=[`MAX_PAGE`]); objects whose keys are not of the layout are skipped.
    pub async fn list(
        &self,
        prefix: &ArchivePrefix,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<Page, ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.list(prefix, after, limit).await,
            Backend::S3(s) => s.list(prefix, after, limit).await,
        }
    }

    /// Deletes every object under `prefix` and says how many there were. Deleting what is
    /// not there is no error.
    pub async fn delete_prefix(&self, prefix: &ArchivePrefix) -> Result<u64, ArchiveError> {
        match &self.backend {
            Backend::Local(l) => l.delete_prefix(prefix).await,
            Backend::S3(s) => s.delete_prefix(prefix).await,
        }
    }

    /// Whether the store refuses a second create-only write of one key when asked with
    /// `If-None-Match: *` (whatever [`CreateMode`] is configured): writes a probe object
    /// twice, then deletes it. Always `true` for a local archive.
    pub async fn probe_conditional_create(&self) -> Result<bool, ArchiveError> {
        let Backend::S3(s) = &self.backend else {
            return Ok(true);
        };
        let key = ArchiveKey::Probe(rand::random());
        s.put_conditional(&key, Bytes::from_static(b"first"))
            .await?;
        let second = s.put_conditional(&key, Bytes::from_static(b"second")).await;
        let honoured = match second {
            Ok(()) => false,
            Err(ArchiveError::AlreadyExists { .. }) => true,
            Err(e) => return Err(e),
        };
        s.delete_prefix(&ArchivePrefix::Probes).await?;
        Ok(honoured)
    }
}

//! [`ArchiveError`], the crate's one error enum.
//!
//! Messages name the key (or prefix) they are about and say what went wrong; they never
//! hold a credential: text that comes from the store's client passes through
//! [`Redactor::scrub`] first, which removes the access key id and the secret should a store
//! echo them.

use std::io;

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// No object has this key.
    #[error("archive: {key}: not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A create-only write found the key taken: another writer was first.
    #[error("archive: {key}: already exists")]
    AlreadyExists {
        /// The key written.
        key: String,
    },
    /// The store did not answer, timed out, or failed on its side (5xx, a full disk, a
    /// broken connection). Retrying later may succeed.
    #[error("archive: {key}: store unavailable: {reason}")]
    Unavailable {
        /// The key or prefix of the operation.
        key: String,
        /// What failed (scrubbed of credentials).
        reason: String,
    },
    /// The store refused the request: bad credentials, no permission, a request it calls
    /// malformed. Retrying the same request will not help.
    #[error("archive: {key}: refused by the store: {reason}")]
    Refused {
        /// The key or prefix of the operation.
        key: String,
        /// What the store said (scrubbed of credentials).
        reason: String,
    },
    /// The object is larger than the caller's cap; nothing past the cap was read.
    #[error("archive: {key}: larger than the {limit} bytes allowed")]
    TooLarge {
        /// The key read.
        key: String,
        /// The cap.
        limit: u64,
    },
    /// A key or prefix that the layout does not allow (from [`crate::ArchiveKey`]'s
    /// constructors and parser).
    #[error("archive: invalid key: {reason}")]
    InvalidKey {
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The archive's configuration is unusable (an endpoint that is not a URL, a
    /// credentials file that cannot be read). Names the setting, never a secret's value.
    #[error("archive: configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

impl ArchiveError {
    /// Whether trying again later may succeed (the store was unavailable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// A local file operation's error on `key`, classified like a store's.
    pub(crate) fn from_io(key: impl ToString, e: &io::Error) -> Self {
        let key = key.to_string();
        match e.kind() {
            io::ErrorKind::NotFound => Self::NotFound { key },
            io::ErrorKind::AlreadyExists => Self::AlreadyExists { key },
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Self::Refused {
                key,
                reason: e.to_string(),
            },
            _ => Self::Unavailable {
                key,
                reason: e.to_string(),
            },
        }
    }
}

/// Removes credentials from text that came from outside (a store's error body, a client's
/// error message) before it goes into an [`ArchiveError`].
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// The strings never to repeat: the access key id and the secret.
    secrets: Vec<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor of these strings (empty ones are ignored).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            secrets: secrets
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| zeroize::Zeroizing::new(s.to_owned()))
                .collect(),
        }
    }

    /// `text` with every secret replaced by `<redacted>`, cut to 512 bytes (a store's error
    /// body can be long).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "<redacted>");
        }
        if out.len() > 512 {
            let mut end = 512;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push('…');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_every_secret() {
        let r = Redactor::new(["GK123", "s3cr3t", ""]);
        let text = r.scrub("key GK123 signed with s3cr3t, GK123 again");
        assert_eq!(
            text,
            "key <redacted> signed with <redacted>, <redacted> again"
        );
        assert!(r.scrub(&"x".repeat(2000)).len() < 600);
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }

    #[test]
    fn only_unavailable_is_retryable() {
        let key = "k".to_owned();
        assert!(ArchiveError::Unavailable {
            key: key.clone(),
            reason: String::new()
        }
        .is_retryable());
        assert!(!ArchiveError::NotFound { key }.is_retryable());
    }
}

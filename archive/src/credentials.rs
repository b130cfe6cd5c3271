//! S3 credentials: an access key id and its secret, from the environment or a file, never
//! from a command line. Neither is shown by `Debug`; the secret is wiped when dropped.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::ArchiveError;

/// The variable holding the access key id.
pub const ACCESS_KEY_ID_VAR: &str = "SEALCAST_S3_ACCESS_KEY_ID";
/// The variable holding the secret access key.
pub const SECRET_ACCESS_KEY_VAR: &str = "SEALCAST_S3_SECRET_ACCESS_KEY";

/// The longest credentials file read (it holds two short lines).
const MAX_FILE: u64 = 4096;
/// The longest id or secret accepted (AWS's are 20 and 40 characters; Garage's 26 and 64).
const MAX_LEN: usize = 256;

/// An access key id and its secret.
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id: not a secret by itself, but it names the account, so it is kept
    /// out of logs and errors too.
    pub(crate) access_key_id: Zeroizing<String>,
    /// The secret access key.
    pub(crate) secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Credentials(<redacted>)")
    }
}

impl S3Credentials {
    /// Credentials from their two values: printable ASCII without spaces, 1 to 256
    /// characters each.
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Result<Self, ArchiveError> {
        for (what, value) in [
            ("the access key id", access_key_id),
            ("the secret access key", secret_access_key),
        ] {
            let printable = value.bytes().all(|b| b.is_ascii_graphic());
            if value.is_empty() || value.len() > MAX_LEN || !printable {
                return Err(ArchiveError::Config {
                    reason: format!(
                        "{what} must be 1 to {MAX_LEN} printable ASCII characters without spaces"
                    ),
                });
            }
        }
        Ok(Self {
            access_key_id: Zeroizing::new(access_key_id.to_owned()),
            secret_access_key: Zeroizing::new(secret_access_key.to_owned()),
        })
    }

    /// Credentials from [`ACCESS_KEY_ID_VAR`] and [`SECRET_ACCESS_KEY_VAR`].
    pub fn from_env() -> Result<Self, ArchiveError> {
        let var = |name: &str| {
            std::env::var(name)
                .map(Zeroizing::new)
                .map_err(|_| ArchiveError::Config {
                    reason: format!("{name} is not set (or not UTF-8)"),
                })
        };
        Self::new(&var(ACCESS_KEY_ID_VAR)?, &var(SECRET_ACCESS_KEY_VAR)?)
    }

    /// Credentials from a file of `name=value` lines naming `access_key_id` and
    /// `secret_access_key` (blank lines and `#` comments allowed), at most 4 KiB.
    pub fn from_file(path: &Path) -> Result<Self, ArchiveError> {
        let config = |reason: String| ArchiveError::Config {
            reason: format!("credentials file {}: {reason}", path.display()),
        };
        let mut text = Zeroizing::new(String::new());
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
            .map_err(|e| config(e.to_string()))?;
        if text.len() as u64 > MAX_FILE {
            return Err(config(format!("longer than {MAX_FILE} bytes")));
        }
        let (mut id, mut secret) = (None, None);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The line's text is never quoted back: it may be the secret.
            match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("access_key_id", v)) => id = Some(v),
                Some(("secret_access_key", v)) => secret = Some(v),
                _ => {
                    return Err(config(format!(
                        "line {} is not a known `name=value`",
                        n + 1
                    )))
                }
            }
        }
        match (id, secret) {
            (Some(id), Some(secret)) => Self::new(id, secret),
            _ => Err(config(
                "it must name both access_key_id and secret_access_key".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_and_never_shows_the_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s3");
        std::fs::write(
            &path,
            "# archive\naccess_key_id = GKexample\nsecret_access_key=abc/def+ghi\n",
        )
        .expect("write");
        let c = S3Credentials::from_file(&path).expect("reads");
        assert_eq!(c.access_key_id.as_str(), "GKexample");
        assert_eq!(c.secret_access_key.as_str(), "abc/def+ghi");
        assert!(!format!("{c:?}").contains("GKexample"));
        assert!(!format!("{c:?}").contains("abc/def"));

        std::fs::write(&path, "secret_access_key=hunter2\nsecret hunter2\n").expect("write");
        let e = S3Credentials::from_file(&path)
            .expect_err("refused")
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        std::fs::write(&path, "secret_access_key=hunter2\n").expect("write");
        assert!(S3Credentials::from_file(&path).is_err());
        std::fs::write(&path, "x".repeat(5000)).expect("write");
        assert!(S3Credentials::from_file(&path).is_err());
    }

    #[test]
    fn refuses_empty_or_spaced_values() {
        assert!(S3Credentials::new("", "x").is_err());
        assert!(S3Credentials::new("a", "b c").is_err());
        assert!(S3Credentials::new("a", &"b".repeat(300)).is_err());
        assert!(S3Credentials::new("GK1", "secret").is_ok());
    }
}

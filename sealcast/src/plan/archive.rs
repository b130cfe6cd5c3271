//! The archive of recordings (issue 49): a directory or an S3 bucket, from `--archive`
//! ([`crate::cli::ArchiveArgs`]), with the S3 credentials from the environment or a file.
//!
//! The URL is never echoed in a problem: an operator who put credentials in it (refused)
//! must not find them in a log. Problems name the setting and what is wrong.

use std::path::{Path, PathBuf};

use archive::{CreateMode, S3Config, S3Credentials, Timeouts};
use broadcast::ArchiveSettings;

use super::problem::Problems;
use crate::cli::ArchiveArgs;

const VAR: &str = "SEALCAST_ARCHIVE";

/// Where recordings are archived and how.
#[derive(Debug, Clone)]
pub(crate) struct ArchivePlan {
    pub(crate) target: ArchiveTarget,
    pub(crate) settings: ArchiveSettings,
}

/// The archive's backend.
#[derive(Debug, Clone)]
pub(crate) enum ArchiveTarget {
    /// A directory.
    Local(PathBuf),
    /// An S3 bucket.
    S3(S3Config),
}

impl ArchivePlan {
    /// Opens the archive (no request made: a store that is down shows in use).
    pub(crate) fn open(&self) -> Result<archive::Archive, archive::ArchiveError> {
        match &self.target {
            ArchiveTarget::Local(dir) => archive::Archive::local(dir.clone()),
            ArchiveTarget::S3(config) => archive::Archive::s3(config.clone()),
        }
    }
}

/// The archive `args` name: `archive` under `data_dir` by default.
pub(crate) fn archive(
    args: &ArchiveArgs,
    data_dir: &Path,
    problems: &mut Problems,
) -> Option<ArchivePlan> {
    let settings = ArchiveSettings {
        spool_bytes: args.spool.0,
        ..ArchiveSettings::default()
    };
    if settings.spool_bytes == 0 {
        problems.add("SEALCAST_ARCHIVE_SPOOL", "must be more than zero");
        return None;
    }
    let url = args.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let target = match url {
        None => ArchiveTarget::Local(data_dir.join("archive")),
        Some(url) if url.starts_with("s3://") => {
            let credentials = credentials(args.credentials_file.as_deref(), problems);
            let location = s3_location(url, problems);
            let (endpoint, region, bucket, create) = location?;
            ArchiveTarget::S3(S3Config {
                endpoint,
                region,
                bucket,
                credentials: credentials?,
                create,
                timeouts: Timeouts::default(),
            })
        }
        Some(url) if url.contains("://") && !url.starts_with("file://") => {
            problems.add(VAR, "give a directory, file:///DIR or s3://BUCKET?…");
            return None;
        }
        Some(path) => {
            let dir = PathBuf::from(path.strip_prefix("file://").unwrap_or(path));
            if dir.is_file() {
                problems.add(VAR, "names a file, not a directory");
                return None;
            }
            ArchiveTarget::Local(dir)
        }
    };
    Some(ArchivePlan { target, settings })
}

/// Bucket, endpoint, region and create mode from `s3://BUCKET?endpoint=…&region=…`.
fn s3_location(
    text: &str,
    problems: &mut Problems,
) -> Option<(Option<String>, String, String, CreateMode)> {
    let Ok(url) = url::Url::parse(text) else {
        problems.add(VAR, "not a URL (s3://BUCKET?endpoint=…&region=…)");
        return None;
    };
    if !url.username().is_empty() || url.password().is_some() {
        problems.add(
            VAR,
            "credentials do not belong in the archive URL (it may be logged); give them in \
             SEALCAST_S3_ACCESS_KEY_ID and SEALCAST_S3_SECRET_ACCESS_KEY or a credentials file",
        );
        return None;
    }
    let bucket = url.host_str().unwrap_or_default().to_owned();
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok || !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        problems.add(
            VAR,
            "give s3://BUCKET with a bucket name of 3 to 63 lowercase letters, digits, '-' or '.', and no path",
        );
        return None;
    }
    let mut endpoint = None;
    let mut region = None;
    let mut create = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "endpoint" => endpoint = Some(value.into_owned()),
            "region" => region = Some(value.into_owned()),
            "create" => create = Some(value.into_owned()),
            // Not echoed: whatever it is, it may be a secret.
            _ => {
                problems.add(
                    VAR,
                    "a parameter other than endpoint, region or create (credentials never go in the URL)",
                );
                return None;
            }
        }
    }
    if let Some(e) = &endpoint {
        let usable = url::Url::parse(e).ok().is_some_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
        });
        if !usable {
            problems.add(
                VAR,
                "endpoint must be an http:// or https:// URL of the store, without credentials or query",
            );
            return None;
        }
    }
    let create = match create.as_deref() {
        None | Some("conditional") => CreateMode::Conditional,
        Some("check-first") => CreateMode::CheckFirst,
        Some(_) => {
            problems.add(VAR, "create is conditional (the default) or check-first");
            return None;
        }
    };
    let region = region.unwrap_or_else(|| "us-east-1".to_owned());
    Some((endpoint, region, bucket, create))
}

/// The S3 credentials: from the file if one is named, else from the environment.
fn credentials(file: Option<&Path>, problems: &mut Problems) -> Option<S3Credentials> {
    let (place, read) = match file {
        Some(path) => (
            "SEALCAST_S3_CREDENTIALS_FILE",
            S3Credentials::from_file(path),
        ),
        None => (archive::SECRET_ACCESS_KEY_VAR, S3Credentials::from_env()),
    };
    problems.take(place, read, |e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: Option<&str>) -> ArchiveArgs {
        ArchiveArgs {
            url: url.map(str::to_owned),
            credentials_file: None,
            spool: crate::cli::ByteSize(1 << 30),
        }
    }

    fn derive(args: &ArchiveArgs) -> Result<ArchivePlan, Vec<String>> {
        let mut problems = Problems::default();
        let plan = archive(args, Path::new("/data"), &mut problems);
        problems
            .or(plan)
            .map_err(|p| p.into_vec().iter().map(ToString::to_string).collect())
    }

    fn credentials_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            file.path(),
            "access_key_id=GKtest\nsecret_access_key=s3cr3t-value\n",
        )
        .expect("write");
        file
    }

    #[test]
    fn a_local_archive_under_the_data_directory_by_default() {
        let plan = derive(&args(None)).expect("plan");
        assert!(
            matches!(plan.target, ArchiveTarget::Local(ref d) if d == Path::new("/data/archive"))
        );
        assert_eq!(plan.settings.spool_bytes, 1 << 30);
        let plan = derive(&args(Some("file:///srv/archive"))).expect("plan");
        assert!(
            matches!(plan.target, ArchiveTarget::Local(ref d) if d == Path::new("/srv/archive"))
        );
    }

    #[test]
    fn an_s3_bucket_with_one_flag_and_credentials_from_a_file() {
        let file = credentials_file();
        let mut a = args(Some(
            "s3://recordings?endpoint=http://127.0.0.1:3900&region=garage&create=check-first",
        ));
        a.credentials_file = Some(file.path().to_path_buf());
        let plan = derive(&a).expect("plan");
        let ArchiveTarget::S3(config) = plan.target else {
            panic!("an S3 target");
        };
        assert_eq!(config.bucket, "recordings");
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(config.region, "garage");
        assert_eq!(config.create, CreateMode::CheckFirst);
        assert!(!format!("{config:?}").contains("s3cr3t"));
        a.url = Some("s3://recordings".into());
        let ArchiveTarget::S3(aws) = derive(&a).expect("plan").target else {
            panic!("an S3 target");
        };
        assert_eq!(
            (aws.endpoint, aws.region.as_str(), aws.create),
            (None, "us-east-1", CreateMode::Conditional)
        );
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_being_echoed() {
        let file = credentials_file();
        for url in [
            "s3://AKIDSECRET:hunter2secret@bucket?region=x",
            "s3://bucket?region=x&secret_access_key=hunter2secret",
            "s3://bucket?endpoint=https://AKIDSECRET:hunter2secret@host",
            "s3://Bad_Bucket?region=hunter2secret&x",
            "s3://bucket/hunter2secret",
            "ftp://hunter2secret@host",
        ] {
            let mut a = args(Some(url));
            a.credentials_file = Some(file.path().to_path_buf());
            let problems = derive(&a).expect_err(url).join("\n");
            assert!(problems.starts_with("SEALCAST_ARCHIVE"), "{problems}");
            assert!(!problems.contains("hunter2secret"), "{problems}");
            assert!(!problems.contains("AKIDSECRET"), "{problems}");
        }
    }

    #[test]
    fn sizes_take_units() {
        use crate::cli::ByteSize;
        assert_eq!("4G".parse::<ByteSize>(), Ok(ByteSize(4 << 30)));
        assert_eq!("500M".parse::<ByteSize>(), Ok(ByteSize(500 << 20)));
        assert_eq!("1024".parse::<ByteSize>(), Ok(ByteSize(1024)));
        assert_eq!("2GiB".parse::<ByteSize>(), Ok(ByteSize(2 << 30)));
        assert!("4X".parse::<ByteSize>().is_err());
        assert!("99999999999T".parse::<ByteSize>().is_err());
        let mut a = args(None);
        a.spool = ByteSize(0);
        assert!(derive(&a).is_err());
    }
}

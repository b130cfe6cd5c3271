//! Fixtures shared by sealcast's test suites. A dev-dependency only: no production crate
//! depends on it, and it depends on none of them (so a crate's own tests can use it
//! without a second copy of that crate in the build).
//!
//! - [`browser`]: headless Chromium over WebDriver (Debian's chromedriver), with what the
//!   page requested and threw.
//! - [`disk`]: a small tmpfs, for a disk that fills up for real.
//! - [`net`]: free ports, waiting for a listener.
//! - [`process`]: processes a test starts — one-shot commands with a deadline, roles whose
//!   stdout is read line by line ([`process::Spawned`]), and [`process::Supervised`]
//!   services that outlive no test binary (cleaned up when the binary exits, however it
//!   exits).
//! - [`postgres`]: a throwaway PostgreSQL server per test binary (or the one
//!   `SEALCAST_TEST_POSTGRES_URL` names) and scratch databases on it.
//! - [`mosquitto`]: a throwaway Mosquitto per test binary (or `SEALCAST_TEST_MQTT_URL`),
//!   and Mosquitto run with a given configuration (the compose file's, with its ACLs).
//! - [`moq`]: a real moq-relay on a free port, with its certificate's fingerprint.
//! - [`s3`]: a real S3 store (Garage) on free ports, with a bucket and a key; killed and
//!   restarted for outage tests.
//! - [`ffmpeg`]: the ffmpeg CLI as a publisher or file maker, ffprobe readings.
//! - [`rtmp`]: an RTMP client that publishes whatever bytes a test gives it.
//! - [`prometheus`]: reading a Prometheus text exposition.
//! - [`docker`]: a compose project under the real Docker engine, driven through the
//!   compose tool and the `docker` CLI (crashes, restarts, addresses, `docker stats`).
//!
//! Every wait polls against a deadline or waits for an event; nothing listens on a fixed
//! port; errors name what failed and never print a secret.

pub mod browser;
pub mod disk;
pub mod docker;
pub mod ffmpeg;
pub mod moq;
pub mod mosquitto;
pub mod net;
pub mod netns;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod rtmp;
pub mod s3;

use std::path::{Path, PathBuf};

/// The repository's root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// Whether this process runs as root (judged by the owner of a file it creates in `dir`,
/// which needs no FFI).
pub fn running_as_root(dir: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join(".owner");
    std::fs::write(&probe, b"")?;
    let uid = std::fs::metadata(&probe)?.uid();
    std::fs::remove_file(&probe)?;
    Ok(uid == 0)
}

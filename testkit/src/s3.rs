//! Garage for tests, a real S3-compatible store (the `garage` crate's binary, which
//! `scripts/setup.sh test` installs, pinned, into `~/.cache/sealcast/garage`):
//!
//! - [`garage_bin`]: where it is (`SEALCAST_GARAGE_BIN` names another);
//! - [`Garage::start`]: one single-node Garage in a temporary directory, on free loopback
//!   ports (S3 API, RPC, admin), its layout applied, a bucket and a key made with the
//!   `garage` CLI. The key's secret is read from the CLI's output and handed to the test;
//!   it is never on a command line (the RPC secret and admin token are in the config file).
//! - [`Garage::kill`] and [`Garage::restart`]: an outage and the recovery, on the same
//!   ports and data.

use std::ffi::OsStr;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::net::free_port;
use crate::process::{redact, run_with_deadline, wait_until_ready, Supervised};

/// Names a garage binary to use instead of the installed one.
pub const BIN_VAR: &str = "SEALCAST_GARAGE_BIN";

/// The version `scripts/setup.sh test` installs.
pub const VERSION: &str = "2.5.0";

/// The region Garage answers for (its `s3_region`).
pub const REGION: &str = "garage";

/// The bucket [`Garage::start`] makes.
pub const BUCKET: &str = "sealcast-archive";

/// The garage binary: `SEALCAST_GARAGE_BIN`, or the one setup installed.
pub fn garage_bin() -> Result<PathBuf> {
    crate::process::setup_installed_bin("garage", VERSION, BIN_VAR, "SEALCAST_GARAGE_ROOT")
}

/// A running single-node Garage with one bucket and one key allowed on it.
pub struct Garage {
    /// The S3 API's port on 127.0.0.1.
    pub s3_port: u16,
    /// Its RPC port on 127.0.0.1, which the `garage` CLI talks to.
    rpc_port: u16,
    /// The access key id of the key allowed on [`BUCKET`].
    pub access_key_id: String,
    /// Its secret (shown by no `Debug`).
    secret_access_key: String,
    bin: PathBuf,
    /// Config, metadata and data: kept across [`Garage::restart`], removed when dropped.
    dir: tempfile::TempDir,
    /// How many times the server was started (each run logs into a directory of its own).
    runs: u32,
    process: Option<Supervised>,
}

impl std::fmt::Debug for Garage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garage")
            .field("s3_port", &self.s3_port)
            .field("running", &self.process.is_some())
            .finish_non_exhaustive()
    }
}

impl Garage {
    /// Starts Garage and sets up its bucket and key. Blocking (tens of seconds at most).
    pub fn start() -> Result<Self> {
        let bin = garage_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("sealcast-test-garage-")
            .tempdir()?;
        let (s3_port, rpc_port, admin_port) = (free_port()?, free_port()?, free_port()?);
        let root = dir.path();
        let config = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
# Virtual: the memory map a small test store may grow into.
lmdb_map_size = "1G"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
            meta = root.join("meta").display(),
            data = root.join("data").display(),
            rpc_secret = random_hex(32)?,
            admin_token = random_hex(32)?,
        );
        write_private(&root.join("garage.toml"), &config)?;
        let mut garage = Garage {
            s3_port,
            rpc_port,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            bin,
            dir,
            runs: 0,
            process: None,
        };
        garage.run()?;
        garage.set_up().with_context(|| garage.log())?;
        Ok(garage)
    }

    /// `http://127.0.0.1:{port}`, the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The secret of [`Garage::access_key_id`].
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// Kills the server (SIGKILL) and waits until it is gone; the data stays.
    pub fn kill(&mut self) {
        // Dropping the supervisor's pipe makes it send the signal and wait.
        drop(self.process.take());
    }

    /// Starts the server again on the same ports and data, and waits until it serves the
    /// bucket.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.run()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.cli(&["bucket", "info", BUCKET]) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!("after restart:\n{}", self.log())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// What the current run printed so far.
    pub fn log(&self) -> String {
        let log = self
            .process
            .as_ref()
            .map(Supervised::log)
            .unwrap_or_default();
        redact(&log, &[&self.secret_access_key])
    }

    /// Starts `garage server` and waits for its S3 and RPC ports (the server opens them
    /// one after the other; a CLI call between the two was refused once).
    fn run(&mut self) -> Result<()> {
        self.runs += 1;
        let run_dir = self.dir.path().join(format!("run-{}", self.runs));
        std::fs::create_dir_all(&run_dir)?;
        let config = self.dir.path().join("garage.toml");
        let args: Vec<&OsStr> = vec![OsStr::new("-c"), config.as_os_str(), OsStr::new("server")];
        let log = run_dir.join("garage.log");
        let mut process =
            Supervised::start("garage", &run_dir, None, "KILL", &self.bin, &args, &log)?;
        let ports = [self.s3_port, self.rpc_port].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        wait_until_ready(&mut process, Duration::from_secs(30), || {
            ports
                .iter()
                .all(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok())
        })?;
        self.process = Some(process);
        Ok(())
    }

    /// The first run's setup: this node gets the whole layout, then a bucket and a key.
    fn set_up(&mut self) -> Result<()> {
        let node = self.cli(&["node", "id", "-q"])?;
        let node = node.trim().split('@').next().unwrap_or_default().to_owned();
        ensure!(!node.is_empty(), "garage node id printed nothing");
        self.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
        self.cli(&["layout", "apply", "--version", "1"])?;
        self.cli(&["bucket", "create", BUCKET])?;
        let key = self.cli(&["key", "create", "sealcast-test"])?;
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        self.access_key_id = field("Key ID:").context("no Key ID in `garage key create`")?;
        self.secret_access_key =
            field("Secret key:").context("no Secret key in `garage key create`")?;
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            &self.access_key_id,
        ])?;
        Ok(())
    }

    /// Runs the `garage` CLI against this server; its stdout. Errors carry its output with
    /// the secret redacted.
    fn cli(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.bin);
        command
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .env("RUST_LOG", "warn");
        let out = run_with_deadline(command, Duration::from_secs(30))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
            bail!(
                "garage {} failed ({}): {}",
                args.first().unwrap_or(&""),
                out.status,
                redact(&text, &[&self.secret_access_key])
            );
        }
        Ok(stdout)
    }
}

/// `bytes` random bytes as lowercase hex, from the kernel.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a file only its owner may read (Garage refuses a world-readable secret).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

//! PostgreSQL for tests: the server `SEALCAST_TEST_POSTGRES_URL` names, or else a
//! throwaway one this test binary starts (once, on first use) in a temporary directory on
//! a free port — never the machine's own server on 5432. Tests work in scratch databases
//! ([`ScratchDatabase`]) they drop afterwards.
//!
//! The throwaway server: `initdb` (trust authentication, user `postgres`) and `postgres`
//! with durability off (`fsync`, `synchronous_commit`: nothing here must survive a crash),
//! listening on 127.0.0.1 only, its socket in its own directory. PostgreSQL refuses to run
//! as root, so as root both run as the `postgres` user that Debian's package creates.
//! Binaries: `SEALCAST_TEST_POSTGRES_BIN` (a directory), else the newest
//! `/usr/lib/postgresql/*/bin` (Debian), else `PATH`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use sqlx::{Connection, Executor, PgConnection};

use crate::process::{run_with_deadline, wait_until_ready, Supervised};

/// An existing server to use instead of a throwaway one: the URL of a database on it as a
/// user allowed to create databases and roles (`postgres://postgres@host:port/postgres`).
pub const URL_VAR: &str = "SEALCAST_TEST_POSTGRES_URL";
/// Where the PostgreSQL binaries are, if not in Debian's place or on `PATH`.
pub const BIN_VAR: &str = "SEALCAST_TEST_POSTGRES_BIN";

/// The server of this test binary.
#[derive(Debug)]
struct Server {
    /// The admin URL (user `postgres`, database `postgres`).
    url: String,
    /// The throwaway server, if this binary started one (kept for the binary's lifetime).
    _process: Option<Supervised>,
}

static SERVER: OnceLock<std::result::Result<Server, String>> = OnceLock::new();

/// The URL tests connect to to create their databases: `SEALCAST_TEST_POSTGRES_URL`, or
/// the throwaway server, started on the first call (seconds: `initdb` is the slow part).
/// Blocking; see [`admin_url`] from async code.
pub fn admin_url_blocking() -> Result<String> {
    let server = SERVER.get_or_init(|| start().map_err(|e| format!("{e:#}")));
    match server {
        Ok(server) => Ok(server.url.clone()),
        Err(e) => bail!("no PostgreSQL for the tests: {e}"),
    }
}

/// [`admin_url_blocking`] off the async executor.
pub async fn admin_url() -> Result<String> {
    tokio::task::spawn_blocking(admin_url_blocking).await?
}

fn start() -> Result<Server> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Ok(Server {
            url,
            _process: None,
        });
    }
    let (bin, dir, data, user) = init_cluster()?;
    // The directory is the server's now: its supervisor removes it when it stops.
    let dir = dir.keep();
    let mut last = None;
    // A free port may be taken before the server binds it: a few tries.
    for _ in 0..3 {
        let port = crate::net::free_port()?;
        match run_server(&bin, &dir, &data, port, user) {
            Ok(process) => {
                return Ok(Server {
                    url: admin_url_at(port),
                    _process: Some(process),
                })
            }
            Err(e) => last = Some(e),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(last.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
}

fn admin_url_at(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// `initdb` in a new temporary directory (owned by the server's user): the binaries, the
/// directory, the data directory in it, and the user to run the server as.
fn init_cluster() -> Result<(PathBuf, tempfile::TempDir, PathBuf, Option<&'static str>)> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("sealcast-test-postgres-")
        .tempdir()?;
    let root = crate::running_as_root(dir.path())?;
    let user = root.then_some("postgres");
    if root {
        // The server's user owns its directory (and removes it at the end).
        let (uid, gid) = ids_of("postgres")?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
    }
    let data = dir.path().join("data");
    let mut initdb = as_user(user, &bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    let out = run_with_deadline(initdb, Duration::from_secs(120))?;
    ensure!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((bin, dir, data, user))
}

/// A PostgreSQL server of one test's own (never `SEALCAST_TEST_POSTGRES_URL`'s): one the
/// test may `kill -9` and start again on the same data directory and port, as a crashed
/// server that its supervisor restarts. Stopped and removed when dropped.
#[derive(Debug)]
pub struct OwnServer {
    bin: PathBuf,
    user: Option<&'static str>,
    data: PathBuf,
    port: u16,
    runs: u32,
    process: Option<Supervised>,
    // Last: removed after the server stopped.
    home: tempfile::TempDir,
}

impl OwnServer {
    /// `initdb` and a server on a free port (blocking, seconds).
    pub fn start() -> Result<Self> {
        let (bin, home, data, user) = init_cluster()?;
        let mut server = OwnServer {
            bin,
            user,
            data,
            port: 0,
            runs: 0,
            process: None,
            home,
        };
        let mut last = None;
        for _ in 0..3 {
            server.port = crate::net::free_port()?;
            match server.run() {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    /// Starts the server on the data directory and port (its socket and log in a run
    /// directory of their own, which its supervisor removes when it exits).
    fn run(&mut self) -> Result<()> {
        self.runs += 1;
        let run_dir = self.home.path().join(format!("run-{}", self.runs));
        std::fs::create_dir(&run_dir)?;
        if self.user.is_some() {
            let (uid, gid) = ids_of("postgres")?;
            std::os::unix::fs::chown(&run_dir, Some(uid), Some(gid))?;
        }
        self.process = Some(run_server(
            &self.bin, &run_dir, &self.data, self.port, self.user,
        )?);
        Ok(())
    }

    /// The admin URL (user `postgres`, database `postgres`).
    pub fn admin_url(&self) -> String {
        admin_url_at(self.port)
    }

    /// `kill -9` of the postmaster, then the server started again on the same data
    /// directory and port (it recovers from its write-ahead log); returns once it accepts
    /// connections (blocking).
    pub fn kill_and_restart(&mut self) -> Result<()> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .context("reading postmaster.pid")?;
        let pid = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
            .context("no pid in postmaster.pid")?;
        let killed = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
        ensure!(killed.success(), "kill -9 {pid} failed");
        // The supervisor sees it exit, and is waited for here.
        drop(self.process.take());
        // Backends of the killed server hold its shared memory until they notice their
        // postmaster is gone; until then a new one refuses to start.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.run() {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

fn run_server(
    bin: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    user: Option<&str>,
) -> Result<Supervised> {
    let port_text = port.to_string();
    let settings = [
        "listen_addresses=127.0.0.1",
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        // The compose cluster's processes each keep a pool; tests run side by side.
        "max_connections=300",
    ];
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("-D"),
        data.as_os_str(),
        OsStr::new("-p"),
        OsStr::new(&port_text),
        OsStr::new("-k"),
        dir.as_os_str(),
    ];
    for setting in &settings {
        args.push(OsStr::new("-c"));
        args.push(OsStr::new(setting));
    }
    // Made by this process (which may be root) in the server's directory, removed with it.
    let log = dir.join("postgres.log");
    let mut process = Supervised::start(
        "postgres",
        dir,
        user,
        // Fast shutdown: clients are disconnected, not waited for.
        "INT",
        &bin.join("postgres"),
        &args,
        &log,
    )?;
    let isready = bin.join("pg_isready");
    let ready = wait_until_ready(&mut process, Duration::from_secs(60), || {
        Command::new(&isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port_text, "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    });
    ready.map(|()| process)
}

/// A command running `program` as `user` (through `runuser`), or as ourselves.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// The uid and gid of a local user.
fn ids_of(user: &str) -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, user]).output()?;
        ensure!(
            out.status.success(),
            "there is no user {user} to run PostgreSQL as (we are root; install Debian's postgresql package)"
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

/// Where `initdb`, `postgres` and `pg_isready` are.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_VAR) {
        return Ok(PathBuf::from(dir));
    }
    // Debian keeps the server binaries out of PATH, one directory per major version.
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").is_file())
        .with_context(|| {
            format!(
                "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql; \
                 or set {BIN_VAR}, or {URL_VAR} to use a running server)"
            )
        })
}

/// A database of its own for one test, on the test server; dropped by
/// [`ScratchDatabase::drop`] (forcefully: connections left open do not keep it).
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: PgConnection,
    name: String,
    url: String,
    server: String,
}

impl ScratchDatabase {
    /// Creates a database with a random name, owned by `owner` (a role created if
    /// missing; trust authentication ignores its password) or by the admin user.
    pub async fn create(owner: Option<&str>) -> Result<Self> {
        Self::create_on(&admin_url().await?, owner).await
    }

    /// [`ScratchDatabase::create`] on the server of `admin_url` (an [`OwnServer`]'s).
    pub async fn create_on(admin_url: &str, owner: Option<&str>) -> Result<Self> {
        let admin_url = admin_url.to_owned();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to the test PostgreSQL at {admin_url}"))?;
        let name = format!("sealcast_test_{:016x}", random_u64());
        let owner_clause = match owner {
            Some(owner) => {
                ensure!(
                    owner.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "unexpected database user name {owner:?}"
                );
                admin
                    .execute(
                        format!(
                            "DO $$ BEGIN CREATE ROLE {owner} LOGIN; \
                             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                        )
                        .as_str(),
                    )
                    .await?;
                format!(" OWNER {owner}")
            }
            None => String::new(),
        };
        admin
            .execute(format!("CREATE DATABASE {name}{owner_clause}").as_str())
            .await
            .with_context(|| format!("creating the scratch database {name}"))?;
        let (url, server) = with_database(&admin_url, &name)?;
        Ok(ScratchDatabase {
            admin,
            name,
            url,
            server,
        })
    }

    /// The database's URL (as the admin user).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Drops the database, disconnecting whoever still uses it.
    pub async fn drop(mut self) -> Result<()> {
        self.admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .with_context(|| format!("dropping the scratch database {}", self.name))?;
        let _ = self.admin.close().await;
        Ok(())
    }
}

/// `url` with its database (the path) replaced by `database`, query kept; and the URL's
/// `host:port`.
fn with_database(url: &str, database: &str) -> Result<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base
        .split_once("://")
        .context("the PostgreSQL URL has no scheme")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let server = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned();
    let url = match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    };
    Ok((url, server))
}

/// A random number for names (no `rand` needed: the standard library's hasher is seeded
/// randomly per process).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_replaced_query_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x").expect("parses"),
            (
                "postgres://u:p@h:5/x?sslmode=disable".to_owned(),
                "h:5".to_owned()
            )
        );
        assert_eq!(
            with_database("postgres://h/db", "y").expect("parses"),
            ("postgres://h/y".to_owned(), "h".to_owned())
        );
    }
}

#[cfg(test)]
mod server_tests {
    use super::*;

    #[tokio::test]
    async fn a_scratch_database_is_usable_and_dropped() {
        let db = ScratchDatabase::create(Some("testkit_owner"))
            .await
            .expect("scratch database");
        let mut conn = PgConnection::connect(db.url()).await.expect("connects");
        let (owner,): (String,) = sqlx::query_as(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("query");
        assert_eq!(owner, "testkit_owner");
        if std::env::var_os(URL_VAR).is_none() {
            assert!(
                !db.server().ends_with(":5432"),
                "the machine's own server was used"
            );
        }
        let name = db.name().to_owned();
        db.drop().await.expect("dropped");
        let mut admin = PgConnection::connect(&admin_url().await.expect("url"))
            .await
            .expect("admin");
        let left: Option<(String,)> =
            sqlx::query_as("SELECT datname::text FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut admin)
                .await
                .expect("query");
        assert!(left.is_none(), "{name} was not dropped");
    }
}

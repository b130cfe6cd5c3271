//! Mosquitto for tests, the real broker (Debian's package):
//!
//! - [`broker`]: a plain broker shared by the tests of one binary (anonymous, on a free
//!   port of 127.0.0.1, started on first use), or the one `SEALCAST_TEST_MQTT_URL` names.
//! - [`Mosquitto::start`]: a broker with a given configuration — the compose file's, with
//!   its passwords and ACLs — on free ports, for one test.
//! - [`connack`]: what any MQTT broker answers a raw CONNECT, with or without a login.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::net::{free_port, wait_for_tcp};
use crate::process::{wait_until_ready, Supervised};
use crate::running_as_root;

/// An existing broker to use instead of a throwaway one: `mqtt://HOST:PORT` (anonymous).
pub const URL_VAR: &str = "SEALCAST_TEST_MQTT_URL";

/// Where a broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl BrokerUrl {
    /// `mqtt://host:port`.
    pub fn url(&self) -> String {
        format!("mqtt://{}:{}", self.host, self.port)
    }

    fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("mqtt://")
            .with_context(|| format!("{URL_VAR} must be mqtt://HOST:PORT, not {url:?}"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("{URL_VAR} must be mqtt://HOST:PORT, not {url:?}"))?;
        Ok(BrokerUrl {
            host: host.to_owned(),
            port: port
                .parse()
                .with_context(|| format!("{URL_VAR}: bad port in {url:?}"))?,
        })
    }
}

struct Shared {
    url: BrokerUrl,
    _process: Option<Supervised>,
}

static SHARED: OnceLock<std::result::Result<Shared, String>> = OnceLock::new();

/// The broker of this test binary: `SEALCAST_TEST_MQTT_URL`, or a Mosquitto started on the
/// first call (anonymous, no persistence, on a free loopback port) and stopped when the
/// binary exits. Blocking for the time Mosquitto takes to listen.
pub fn broker() -> Result<BrokerUrl> {
    let shared = SHARED.get_or_init(|| start_shared().map_err(|e| format!("{e:#}")));
    match shared {
        Ok(shared) => Ok(shared.url.clone()),
        Err(e) => bail!("no Mosquitto for the tests: {e}"),
    }
}

fn start_shared() -> Result<Shared> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Ok(Shared {
            url: BrokerUrl::parse(&url)?,
            _process: None,
        });
    }
    let mut last = None;
    for _ in 0..3 {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-test-mosquitto-")
            .tempdir()?
            .keep();
        let port = free_port()?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "# A throwaway broker for sealcast's tests.\n\
                 listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence false\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n"
            ),
        )?;
        let log = dir.join("mosquitto.log");
        let mut process = Supervised::start(
            "mosquitto",
            &dir,
            None,
            "TERM",
            Path::new(MOSQUITTO_BIN),
            &[OsStr::new("-c"), conf.as_os_str()],
            &log,
        )?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match wait_until_ready(&mut process, Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        }) {
            Ok(()) => {
                return Ok(Shared {
                    url: BrokerUrl {
                        host: "127.0.0.1".to_owned(),
                        port,
                    },
                    _process: Some(process),
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("Mosquitto did not start")))
}

/// The Debian package's broker.
pub const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";

/// The real Mosquitto, started with the compose file's `mosquitto.conf` where only the
/// listener ports (free loopback ports instead) and the container paths (host paths
/// instead) are changed. Killed when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    child: std::process::Child,
    /// Container port (as in the conf, 1883) to the port it listens on here.
    ports: BTreeMap<u16, u16>,
    /// The rewritten conf it runs with.
    conf: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts the broker of a compose file's Mosquitto service from its bind mounts, as
    /// the compose tool's `config` renders them (host source, container target): its conf
    /// is the mount at `/mosquitto/config/mosquitto.conf`, the container paths of its other
    /// bind mounts become their sources (the init script's password files and ACLs),
    /// except its data directory, which is a fresh temporary directory.
    pub fn start_for(binds: &[(PathBuf, String)]) -> Result<Self> {
        let mut conf = None;
        let mut paths = Vec::new();
        for (source, target) in binds {
            if target == "/mosquitto/config/mosquitto.conf" {
                conf = Some(source.clone());
            } else if target.trim_end_matches('/') != "/mosquitto/data" {
                paths.push((target.clone(), source.clone()));
            }
        }
        let conf =
            conf.context("the mosquitto service mounts no /mosquitto/config/mosquitto.conf")?;
        Self::start(&conf, &paths)
    }

    /// Starts `mosquitto -c` with `conf` rewritten: each `listener PORT` on a free port
    /// of 127.0.0.1, each container path prefix of `paths` replaced by its host path,
    /// `/mosquitto/data` by a temporary directory. Any other `/mosquitto/` path left in
    /// the conf is an error (the test would not know what it points at). Waits until every
    /// listener accepts connections.
    pub fn start(conf: &Path, paths: &[(String, PathBuf)]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("mosquitto-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        let mut paths: Vec<(String, String)> = paths
            .iter()
            .map(|(c, h)| {
                (
                    c.trim_end_matches('/').to_owned(),
                    h.to_string_lossy().into_owned(),
                )
            })
            .collect();
        paths.push((
            "/mosquitto/data".to_owned(),
            data.to_string_lossy().into_owned(),
        ));
        // Longest prefix first.
        paths.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
        let text =
            std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
        let mut ports = BTreeMap::new();
        let mut out = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            let mut words = trimmed.split_whitespace();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                out.push_str(line);
            } else if words.next() == Some("listener") {
                let port: u16 = words
                    .next()
                    .and_then(|p| p.parse().ok())
                    .with_context(|| format!("{}: {trimmed:?}", conf.display()))?;
                let free = free_port()?;
                ensure!(
                    ports.insert(port, free).is_none(),
                    "two listeners on {port}"
                );
                out.push_str(&format!("listener {free} 127.0.0.1"));
            } else {
                // Every absolute path must be one the test knows a host path for.
                let mut words = Vec::new();
                for word in trimmed.split_whitespace() {
                    if !word.starts_with('/') {
                        words.push(word.to_owned());
                        continue;
                    }
                    let mapped = paths.iter().find_map(|(container, host)| {
                        let rest = word.strip_prefix(container.as_str())?;
                        (rest.is_empty() || rest.starts_with('/')).then(|| format!("{host}{rest}"))
                    });
                    words.push(mapped.with_context(|| {
                        format!(
                            "{}: {trimmed:?} names {word}, which the compose service does not mount",
                            conf.display()
                        )
                    })?);
                }
                out.push_str(&words.join(" "));
            }
            out.push('\n');
        }
        ensure!(!ports.is_empty(), "{} has no listener", conf.display());
        if running_as_root(dir.path())? {
            // In compose the broker runs as RUN_UID, the owner of its 0600 files. Started
            // by root, Mosquitto would drop to the `mosquitto` user, who cannot read them.
            out.push_str("# The test runs as root: stay the files' owner.\nuser root\n");
        }
        let test_conf = dir.path().join("mosquitto.conf");
        std::fs::write(&test_conf, out)?;
        let log = dir.path().join("mosquitto.log");
        let child = Self::spawn(&test_conf, &log)?;
        let mut broker = Mosquitto {
            child,
            ports,
            conf: test_conf,
            log,
            _dir: dir,
        };
        broker.wait_listening()?;
        Ok(broker)
    }

    /// Kills the broker (SIGKILL: it saves nothing) and starts it again with the same
    /// conf, ports and data directory, as a crashed broker that its supervisor restarts.
    /// Returns once every listener accepts connections again.
    pub fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.conf, &self.log)?;
        self.wait_listening()
    }

    /// [`Mosquitto::restart`] with its persistence lost: everything in its data directory
    /// (the retained messages, the persistent sessions) is deleted before it starts again,
    /// as a broker whose volume went away.
    pub fn restart_forgetting(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = self._dir.path().join("data");
        for entry in std::fs::read_dir(&data)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        self.child = Self::spawn(&self.conf, &self.log)?;
        self.wait_listening()
    }

    /// `mosquitto -c conf`, its output appended to `log`.
    fn spawn(conf: &Path, log: &Path) -> Result<std::process::Child> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        // Mosquitto writes its log with stdio, block-buffered into a file: line-buffered
        // through coreutils' stdbuf, the log is there when a test reports it.
        let mut command = if Path::new("/usr/bin/stdbuf").exists() {
            let mut c = Command::new("/usr/bin/stdbuf");
            c.arg("-oL").arg(MOSQUITTO_BIN);
            c
        } else {
            Command::new(MOSQUITTO_BIN)
        };
        command
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {MOSQUITTO_BIN}"))
    }

    /// Waits (10 s at most) until every listener accepts connections.
    fn wait_listening(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in self.ports.values().copied().collect::<Vec<_>>() {
            if let Err(e) = wait_for_tcp(port, deadline, || self.exited()) {
                bail!("{e:#}; mosquitto's log:\n{}", self.log());
            }
        }
        Ok(())
    }

    /// Whether the broker has exited (with its status).
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("mosquitto exited with {status}")),
            Ok(None) => None,
            Err(e) => Some(format!("mosquitto: {e}")),
        }
    }

    /// The local port of the conf's `listener container_port`.
    pub fn port(&self, container_port: u16) -> Result<u16> {
        self.ports
            .get(&container_port)
            .copied()
            .with_context(|| format!("mosquitto.conf has no listener {container_port}"))
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CONNACK return code a raw MQTT 3.1.1 CONNECT (client id `raw`, with `login` if
/// given) gets from the broker at `addr`, or `None` if the broker closes the connection
/// (or says nothing within 5 s) instead.
pub fn connack(addr: std::net::SocketAddr, login: Option<(&str, &str)>) -> Option<u8> {
    use std::io::{Read, Write};
    let mut body = vec![
        0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 3, b'r', b'a', b'w',
    ];
    if let Some((user, password)) = login {
        body[7] |= 0xC0;
        for field in [user, password] {
            body.extend_from_slice(&u16::try_from(field.len()).ok()?.to_be_bytes());
            body.extend_from_slice(field.as_bytes());
        }
    }
    let mut packet = vec![0x10, u8::try_from(body.len()).ok().filter(|n| *n < 128)?];
    packet.extend_from_slice(&body);
    let mut socket = std::net::TcpStream::connect(addr).ok()?;
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    socket.write_all(&packet).ok()?;
    let mut reply = [0u8; 4];
    socket.read_exact(&mut reply).ok()?;
    (reply[0] == 0x20).then_some(reply[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_broker_accepts_connections_and_is_started_once() {
        let first = broker().expect("broker");
        let second = broker().expect("broker");
        assert_eq!(first, second);
        std::net::TcpStream::connect((first.host.as_str(), first.port)).expect("accepts");
        if std::env::var_os(URL_VAR).is_none() {
            assert_ne!(first.port, 1883, "the machine's own broker was used");
        }
    }

    #[test]
    fn broker_urls_parse() {
        assert_eq!(
            BrokerUrl::parse("mqtt://10.0.0.1:1999/").expect("parses"),
            BrokerUrl {
                host: "10.0.0.1".into(),
                port: 1999
            }
        );
        assert!(BrokerUrl::parse("tcp://h:1").is_err());
        assert!(BrokerUrl::parse("mqtt://h").is_err());
    }
}

//! moq-relay for tests, the real relay (the `moq-relay` crate's binary, which
//! `scripts/setup.sh test` installs, pinned, into `~/.cache/sealcast/moq-relay`):
//!
//! - [`relay_bin`]: where it is (`SEALCAST_MOQ_RELAY_BIN` names another);
//! - [`Relay::start`]: one relay on a free loopback port (QUIC on UDP, its HTTP side on
//!   the same TCP port), with a self-signed certificate whose fingerprint it serves at
//!   `/certificate.sha256` and that [`Relay::fingerprint`] holds, admitting anyone;
//!   [`Relay::start_with_auth`] the same asking an auth server (`--auth-url`);
//!   [`Relay::start_gated`] behind `sealcast moq-gate`, as the compose relay tier runs
//!   one. Stopped when dropped.

use std::ffi::{OsStr, OsString};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::process::{wait_until_ready, Supervised};

/// Names a moq-relay binary to use instead of the installed one.
pub const BIN_VAR: &str = "SEALCAST_MOQ_RELAY_BIN";

/// The version `scripts/setup.sh test` installs.
pub const VERSION: &str = "0.17.10";

/// The moq-relay binary: `SEALCAST_MOQ_RELAY_BIN`, or the one setup installed.
pub fn relay_bin() -> Result<PathBuf> {
    crate::process::setup_installed_bin("moq-relay", VERSION, BIN_VAR, "SEALCAST_MOQ_RELAY_ROOT")
}

/// A running moq-relay.
#[derive(Debug)]
pub struct Relay {
    /// The port of both its QUIC (UDP) and HTTP (TCP) listeners on 127.0.0.1.
    pub port: u16,
    /// The SHA-256 fingerprint (hex) of its certificate, for `serverCertificateHashes` and
    /// moq-tokio's `tls.fingerprint`.
    pub fingerprint: String,
    process: Supervised,
}

impl Relay {
    /// A relay where anyone may publish and subscribe anything, with `extra` arguments
    /// (`--cluster-connect ...`). Blocking while it starts.
    pub fn start(extra: &[&str]) -> Result<Self> {
        Self::start_with(&["--auth-public", "**"], extra, None)
    }

    /// A relay that asks the auth server at `auth_url` (`--auth-url`: `unix:///PATH` for a
    /// node's socket) who may publish and subscribe what, with `extra` arguments.
    /// Blocking while it starts.
    pub fn start_with_auth(auth_url: &str, extra: &[&str]) -> Result<Self> {
        Self::start_with(&["--auth-url", auth_url], extra, None)
    }

    /// A relay of a relay tier, run as compose runs one: `sealcast moq-gate
    /// --moq-key-file KEY -- moq-relay ...` (the `sealcast` binary `sealcast` names), the
    /// gate answering its auth with the tier's key, with `extra` arguments for the relay
    /// (`--cluster-connect ...`: the gate adds the cluster credential). Blocking while it
    /// starts.
    pub fn start_gated(sealcast: &Path, key: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_with(&[], extra, Some((sealcast, key)))
    }

    fn start_with(auth: &[&str], extra: &[&str], gate: Option<(&Path, &Path)>) -> Result<Self> {
        let relay = relay_bin()?;
        let mut last = None;
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("sealcast-test-moq-relay-")
                .tempdir()?
                .keep();
            let port = free_udp_and_tcp_port()?;
            let listen = format!("127.0.0.1:{port}");
            let mut args: Vec<OsString> = [
                "--listen",
                &listen,
                "--listen-tls-generate",
                "localhost",
                "--web-http-listen",
                &listen,
            ]
            .iter()
            .map(OsString::from)
            .collect();
            args.extend(auth.iter().map(OsString::from));
            args.extend(extra.iter().map(OsString::from));
            let (bin, args) = match gate {
                None => (relay.clone(), args),
                Some((sealcast, key)) => {
                    let mut gated: Vec<OsString> = vec![
                        "moq-gate".into(),
                        "--moq-key-file".into(),
                        key.into(),
                        "--socket".into(),
                        dir.join("gate.sock").into(),
                        "--".into(),
                        relay.clone().into(),
                    ];
                    gated.extend(args);
                    (sealcast.to_owned(), gated)
                }
            };
            let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
            let log = dir.join("moq-relay.log");
            let mut process =
                Supervised::start("moq-relay", &dir, None, "TERM", &bin, &args, &log)?;
            let mut fingerprint = String::new();
            let ready = wait_until_ready(&mut process, Duration::from_secs(20), || {
                match fetch(port, "/certificate.sha256") {
                    Some(text) => {
                        fingerprint = text;
                        true
                    }
                    None => false,
                }
            });
            match ready {
                Ok(()) => {
                    return Ok(Relay {
                        port,
                        fingerprint,
                        process,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("moq-relay did not start")))
    }

    /// `https://localhost:{port}/`, the URL a client dials (the certificate is for
    /// `localhost`).
    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    /// A moq-tokio client that trusts this relay's certificate.
    pub fn client(&self) -> Result<moq_tokio::Client> {
        pinned_client(&self.fingerprint)
    }

    /// What the relay printed so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// A moq-tokio client (the relay's project's) that trusts the relay whose certificate has
/// the SHA-256 `fingerprint` (hex, as moq-relay serves it at `/certificate.sha256`): how the
/// tests and the bench tools dial a relay.
pub fn pinned_client(fingerprint: &str) -> Result<moq_tokio::Client> {
    let mut config = moq_tokio::connect::Config::default();
    config.tls.fingerprint = vec![fingerprint.to_owned()];
    Ok(config.init(moq_tokio::quic::Config::default())?)
}

/// A port free on 127.0.0.1 for both UDP and TCP at once.
fn free_udp_and_tcp_port() -> Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP on 127.0.0.1")
}

/// The body of a plain HTTP/1.0 `GET` of `path` on 127.0.0.1:`port`, trimmed, if it
/// answered 200. Blocking, with std's sockets: callable from inside a runtime or not.
fn fetch(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut socket =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(socket, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    socket.take(64 * 1024).read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.trim().to_owned())
}

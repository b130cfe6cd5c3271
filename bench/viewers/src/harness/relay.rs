//! A moq-relay of the run's own (bench/moq-cost.sh's `relay`).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use super::cluster::Started;
use super::{get, wait_for, Work};

/// A moq-relay (`relay`) on `cores`, on a port free for both QUIC (UDP) and its HTTP side
/// (TCP), anonymous, with `flags`: a certificate it generates, except with
/// `--runtime-workers` (per-core workers, which moq-relay will not combine with a
/// generated one): then a self-signed P-256 certificate made here, valid 10 days (what a
/// browser's `serverCertificateHashes` accepts). Returns it (its URL `https://localhost:PORT/`)
/// and its certificate's fingerprint.
pub fn moq_relay(
    work: &mut Work,
    relay: &Path,
    name: &str,
    cores: &str,
    flags: &[String],
) -> anyhow::Result<(Started, String)> {
    let mut args: Vec<String> = Vec::new();
    if flags.iter().any(|f| f == "--runtime-workers") {
        let (key, crt) = (
            work.path(format!("{name}.key")),
            work.path(format!("{name}.crt")),
        );
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "10", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .stderr(std::process::Stdio::null())
            .status()
            .context("running openssl")?;
        ensure!(
            status.success(),
            "openssl could not make {name}'s certificate"
        );
        args.extend(["--listen-tls-cert".into(), crt.display().to_string()]);
        args.extend(["--listen-tls-key".into(), key.display().to_string()]);
    } else {
        args.extend(["--listen-tls-generate".into(), "localhost".into()]);
    }
    let port = testkit::net::free_udp_and_tcp_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--listen".to_owned(), listen.clone()];
    all.extend(args);
    all.extend([
        "--web-http-listen".into(),
        listen,
        "--auth-public".into(),
        "**".into(),
    ]);
    all.extend(flags.iter().cloned());
    let pid = work.start(name, cores, relay, &all, &[])?;
    let hash_url = format!("http://127.0.0.1:{port}/certificate.sha256");
    let mut fingerprint = None;
    if !wait_for(Duration::from_secs(20), || {
        fingerprint = get(&hash_url, None, 2);
        fingerprint.is_some()
    }) {
        work.alive(pid, name)?;
        bail!("{name} ({}) did not start{}", flags.join(" "), work.logs());
    }
    let fingerprint = String::from_utf8_lossy(&fingerprint.unwrap_or_default())
        .trim()
        .to_owned();
    Ok((
        Started {
            name: name.to_owned(),
            pid,
            url: format!("https://localhost:{port}/"),
        },
        fingerprint,
    ))
}

//! Media over QUIC (issue 48): the relay a node publishes to and the endpoint its viewers
//! are told, from `--moq-*` ([`crate::cli::MoqArgs`]).

use super::problem::Problems;

/// Where a node publishes over MoQ, and where its viewers reach the streams.
#[derive(Debug, Clone)]
pub(crate) struct MoqPlan {
    /// The relays the node publishes to.
    pub(crate) egress: broadcast::MoqConfig,
    /// What `/moq/v1/endpoint` tells the player.
    pub(crate) viewers: broadcast::MoqEndpoint,
    /// The relay's auth endpoint, when this node is it (`--moq-auth-socket`).
    pub(crate) auth: Option<MoqAuthPlan>,
    /// What the node mints private streams' viewers' grants with, when private streams go
    /// over MoQ (the auth endpoint's key, or the relay tier's).
    pub(crate) grants: Option<broadcast::MoqKey>,
}

/// Where the auth endpoint moq-relay asks (`--auth-url unix://PATH`) is served, and what
/// it decides with.
#[derive(Debug, Clone)]
pub(crate) struct MoqAuthPlan {
    /// The Unix socket (`--moq-auth-socket`).
    pub(crate) socket: std::path::PathBuf,
    /// The publish key (the egress's too) and the relay path viewers dial.
    pub(crate) config: broadcast::MoqAuthConfig,
}

/// Where a node publishes over MoQ and where its viewers reach the streams (issue 48):
/// `Some(None)` for nowhere, `None` when a relay or its trust is not usable (a problem).
pub(crate) fn moq(args: &crate::cli::MoqArgs, problems: &mut Problems) -> Option<Option<MoqPlan>> {
    let given: Vec<&str> = args
        .relays
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .collect();
    if given.is_empty() {
        return Some(None);
    }
    let parsed: Vec<Option<url::Url>> = given
        .iter()
        .map(|u| moq_url("SEALCAST_MOQ_RELAY_URL", u, problems))
        .collect();
    let mut usable = parsed.iter().all(Option::is_some);
    let relays: Vec<url::Url> = parsed.into_iter().flatten().collect();
    // One path for all: it is where the broadcasts go, what the auth endpoint admits and
    // what viewers dial.
    let relay = relays.first().cloned();
    if relays
        .iter()
        .any(|r| r.path().trim_matches('/') != relays[0].path().trim_matches('/'))
    {
        problems.add(
            "SEALCAST_MOQ_RELAY_URL",
            "the relays a node publishes to share one path",
        );
        usable = false;
    }
    let viewer_url = match args.viewer_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => moq_url("SEALCAST_MOQ_VIEWER_URL", url, problems),
        None => relay.clone(),
    };
    for root in &args.roots {
        if !root.is_file() {
            problems.add(
                "SEALCAST_MOQ_RELAY_CA",
                format!("{} is not a file", root.display()),
            );
            usable = false;
        }
    }
    let pins = fingerprints(
        "SEALCAST_MOQ_RELAY_FINGERPRINT",
        &args.fingerprints,
        problems,
    );
    let viewer_pins = match (&args.viewer_url, args.viewer_fingerprints.is_empty()) {
        (None, true) => pins.clone(),
        _ => fingerprints(
            "SEALCAST_MOQ_VIEWER_FINGERPRINT",
            &args.viewer_fingerprints,
            problems,
        ),
    };
    if let Some(socket) = &args.auth_socket {
        usable &= auth_socket_usable(socket, problems);
    }
    let tier_key = match &args.key_file {
        Some(file) => {
            let key = key_file("SEALCAST_MOQ_KEY_FILE", file, problems);
            usable &= key.is_some();
            key
        }
        None => None,
    };
    let (Some(relay), Some(url), Some(fingerprints), Some(certificate_hashes), true) =
        (relay, viewer_url, pins, viewer_pins, usable)
    else {
        return None;
    };
    // The auth endpoint (the node's or the tier's gates) admits sessions on the relay
    // path the node publishes under; a viewer dialling another would be refused every
    // time.
    let checked = args.auth_socket.is_some() || tier_key.is_some();
    if checked && url.path().trim_matches('/') != relay.path().trim_matches('/') {
        problems.add(
            "SEALCAST_MOQ_VIEWER_URL",
            "with --moq-auth-socket or --moq-key-file, viewers dial the relay path the node publishes under (the path of SEALCAST_MOQ_RELAY_URL)",
        );
        return None;
    }
    // Without a tier's key, the node's publisher and its auth endpoint are one process: a
    // key of its own, made now and never written anywhere, mints and checks its
    // credentials.
    let key = tier_key.or_else(|| {
        args.auth_socket
            .as_ref()
            .map(|_| broadcast::MoqKey::random())
    });
    let auth = args
        .auth_socket
        .as_ref()
        .zip(key.clone())
        .map(|(socket, key)| MoqAuthPlan {
            socket: socket.clone(),
            config: broadcast::MoqAuthConfig {
                key,
                root: relay.path().to_owned(),
            },
        });
    Some(Some(MoqPlan {
        egress: broadcast::MoqConfig {
            relays,
            roots: args.roots.clone(),
            fingerprints,
            key: key.clone(),
        },
        viewers: broadcast::MoqEndpoint {
            url,
            certificate_hashes,
            private_prefix: key.as_ref().map(|_| broadcast::PRIVATE_PREFIX.to_owned()),
        },
        auth,
        grants: key,
    }))
}

/// A relay tier's key from `file` (64 hex digits), or a problem that never shows the
/// file's contents.
pub(super) fn key_file(
    name: &'static str,
    file: &std::path::Path,
    problems: &mut Problems,
) -> Option<broadcast::MoqKey> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let key = broadcast::MoqKey::from_hex(&text);
            if key.is_none() {
                problems.add(
                    name,
                    format!("{} does not hold 64 hex digits", file.display()),
                );
            }
            key
        }
        Err(e) => {
            problems.add(name, format!("reading {}: {}", file.display(), e.kind()));
            None
        }
    }
}

/// A relay `sealcast up` runs itself (`--moq-run-relay`): where it listens, what the first
/// node's auth socket is, and the viewers' URL when one was given.
#[derive(Debug, Clone)]
pub(crate) struct RunRelayPlan {
    /// The moq-relay binary.
    pub(crate) bin: std::path::PathBuf,
    /// QUIC and its HTTP side, one port.
    pub(crate) listen: std::net::SocketAddr,
    /// The auth socket the first node serves and the relay asks.
    pub(crate) socket: std::path::PathBuf,
    /// `--moq-viewer-url`, if given; else `https://127.0.0.1:PORT/`.
    pub(crate) viewer_url: Option<String>,
    /// Where its output goes (the data directory's `moq-relay.log`).
    pub(crate) log: std::path::PathBuf,
}

/// What `--moq-run-relay` asks for, or `None` (with a problem when it cannot be run).
pub(crate) fn run_relay(
    bin: Option<&std::path::Path>,
    listen: std::net::SocketAddr,
    args: &crate::cli::MoqArgs,
    data_dir: &std::path::Path,
    problems: &mut Problems,
) -> Option<Option<RunRelayPlan>> {
    use std::os::unix::fs::PermissionsExt;
    let Some(bin) = bin else {
        return Some(None);
    };
    const NAME: &str = "SEALCAST_MOQ_RUN_RELAY";
    let runnable =
        std::fs::metadata(bin).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if !runnable {
        problems.add(NAME, format!("{} is not an executable file", bin.display()));
        return None;
    }
    if !args.relays.is_empty() || args.key_file.is_some() || args.auth_socket.is_some() {
        problems.add(
            NAME,
            "runs a relay of its own: not with --moq-relay, --moq-key-file or --moq-auth-socket",
        );
        return None;
    }
    if listen.port() == 0 {
        problems.add(
            "SEALCAST_MOQ_RELAY_LISTEN",
            "the relay needs a port of its own, not 0",
        );
        return None;
    }
    // A short path (a Unix socket's is at most 107 bytes): the system's temporary
    // directory, one per process.
    let socket = std::env::temp_dir().join(format!("sealcast-moq-{}.sock", std::process::id()));
    Some(Some(RunRelayPlan {
        bin: bin.to_owned(),
        listen,
        socket,
        viewer_url: args.viewer_url.clone(),
        log: data_dir.join("moq-relay.log"),
    }))
}

/// The MoQ plan for the relay `up` started, once its certificate's `fingerprint` is known.
pub(crate) fn for_run_relay(run: &RunRelayPlan, fingerprint: &str) -> Result<MoqPlan, Problems> {
    let mut problems = Problems::default();
    let port = run.listen.port();
    let args = crate::cli::MoqArgs {
        // The certificate moq-relay generates names localhost; the nodes pin it.
        relays: vec![format!("https://localhost:{port}/")],
        fingerprints: vec![fingerprint.to_owned()],
        viewer_url: Some(
            run.viewer_url
                .clone()
                .unwrap_or_else(|| format!("https://127.0.0.1:{port}/")),
        ),
        viewer_fingerprints: vec![fingerprint.to_owned()],
        auth_socket: Some(run.socket.clone()),
        ..Default::default()
    };
    let plan = moq(&args, &mut problems).flatten();
    problems.or(plan)
}

/// What `sealcast moq-gate` starts with: the tier's key, where the relay asks, and the
/// relay itself.
#[derive(Debug, Clone)]
pub(crate) struct MoqGatePlan {
    /// The Unix socket the relay asks, and what it decides with.
    pub(crate) auth: MoqAuthPlan,
    /// The relay's program and arguments, without what the gate adds.
    pub(crate) relay: Vec<std::ffi::OsString>,
    /// Whether the relay dials other relays (`--cluster-connect`): then it is given the
    /// tier's cluster credential (`--cluster-token`).
    pub(crate) dials: bool,
}

impl MoqGatePlan {
    /// The plan of `args`, or every problem with it.
    pub(crate) fn derive(args: &crate::cli::MoqGateArgs) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let key = key_file("SEALCAST_MOQ_KEY_FILE", &args.key_file, &mut problems);
        let socket_usable = auth_socket_usable(&args.socket, &mut problems);
        let flags: Vec<&str> = args
            .relay
            .iter()
            .skip(1)
            .filter_map(|a| a.to_str())
            .collect();
        // The gate is the relay's only auth: rules of its own beside it would either be
        // refused by the relay (`--auth-url` twice) or open it (`--auth-public` lets
        // anyone publish).
        for taken in [
            "--auth-url",
            "--auth-public",
            "--auth-key",
            "--cluster-token",
        ] {
            if flags.iter().any(|f| f.starts_with(taken)) {
                problems.add(
                    "the relay's arguments",
                    format!("{taken} is the gate's to set"),
                );
            }
        }
        if !args.root.starts_with('/') {
            problems.add("SEALCAST_MOQ_GATE_ROOT", "a relay path starts with /");
        }
        let dials = flags.iter().any(|f| f.starts_with("--cluster-connect"));
        let plan = key.filter(|_| socket_usable).map(|key| MoqGatePlan {
            auth: MoqAuthPlan {
                socket: args.socket.clone(),
                config: broadcast::MoqAuthConfig {
                    key,
                    root: args.root.clone(),
                },
            },
            relay: args.relay.clone(),
            dials,
        });
        problems.or(plan)
    }
}

/// Longest `--moq-auth-socket` path: a Unix socket's path is at most 107 bytes, and the
/// socket is first bound in a directory beside it with a longer name
/// (`roles::moq::bind_auth_socket`).
const MAX_AUTH_SOCKET_PATH: usize = 72;

/// Whether a socket can be made at `socket`: a file name in a directory that exists, and
/// a path short enough for a Unix socket.
fn auth_socket_usable(socket: &std::path::Path, problems: &mut Problems) -> bool {
    const NAME: &str = "SEALCAST_MOQ_AUTH_SOCKET";
    let parent = socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if socket.file_name().is_none() || !parent.is_dir() {
        problems.add(
            NAME,
            format!(
                "{} is not a file name in a directory that exists",
                socket.display()
            ),
        );
        return false;
    }
    if socket.as_os_str().len() > MAX_AUTH_SOCKET_PATH {
        problems.add(
            NAME,
            format!("a Unix socket's path is at most {MAX_AUTH_SOCKET_PATH} bytes here"),
        );
        return false;
    }
    true
}

/// A relay's URL: `https`, no credentials, query or fragment (a token there would be
/// logged by whoever logs URLs). Refused without being echoed.
fn moq_url(name: &str, url: &str, problems: &mut Problems) -> Option<url::Url> {
    match url::Url::parse(url) {
        Ok(url)
            if url.scheme() == "https"
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none()
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Some(url)
        }
        _ => {
            problems.add(
                name,
                "a MoQ relay is https://HOST[:PORT][/PATH], with no credentials, query or fragment",
            );
            None
        }
    }
}

/// Certificate fingerprints: SHA-256 in hex, lowercased.
fn fingerprints(name: &str, given: &[String], problems: &mut Problems) -> Option<Vec<String>> {
    let mut all = Vec::new();
    for fingerprint in given {
        let hex = fingerprint.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.add(
                name,
                "a fingerprint is a certificate's SHA-256 in hex (64 digits)",
            );
            return None;
        }
        all.push(hex.to_ascii_lowercase());
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_relay_tiers_key_file_opens_private_streams_and_is_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("key");
        std::fs::write(&good, format!("{}\n", "ab".repeat(32))).expect("written");
        let args = |file: &Path| crate::cli::MoqArgs {
            relays: vec!["https://relay.example:4443/".to_owned()],
            key_file: Some(file.to_owned()),
            ..Default::default()
        };
        let mut problems = Problems::default();
        let Some(Some(plan)) = moq(&args(&good), &mut problems) else {
            panic!("no plan: {:?}", problems.into_vec());
        };
        assert!(plan.auth.is_none(), "the tier's gates answer, not the node");
        assert!(plan.egress.key.is_some() && plan.grants.is_some());
        assert_eq!(plan.viewers.private_prefix.as_deref(), Some("_private/"));
        let secret = "cd".repeat(31) + "zz";
        let bad = dir.path().join("bad");
        std::fs::write(&bad, &secret).expect("written");
        for file in [bad.as_path(), &dir.path().join("missing")] {
            let mut problems = Problems::default();
            assert!(moq(&args(file), &mut problems).is_none());
            let said = format!("{:?}", problems.into_vec());
            assert!(said.contains("SEALCAST_MOQ_KEY_FILE"), "{said}");
            assert!(
                !said.contains(&secret[..16]),
                "the file's contents were shown"
            );
        }
    }

    #[test]
    fn up_runs_a_relay_only_alone_and_on_a_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen: std::net::SocketAddr = "127.0.0.1:4443".parse().expect("addr");
        let mut problems = Problems::default();
        let none = run_relay(
            None,
            listen,
            &crate::cli::MoqArgs::default(),
            dir.path(),
            &mut problems,
        );
        assert!(matches!(none, Some(None)));
        let bin = Path::new("/bin/sh");
        let Some(Some(run)) = run_relay(
            Some(bin),
            listen,
            &crate::cli::MoqArgs::default(),
            dir.path(),
            &mut problems,
        ) else {
            panic!("no plan: {:?}", problems.into_vec());
        };
        assert_eq!(run.log, dir.path().join("moq-relay.log"));
        let plan = for_run_relay(&run, &"ab".repeat(32)).expect("a MoQ plan");
        assert_eq!(plan.viewers.url.as_str(), "https://127.0.0.1:4443/");
        assert_eq!(plan.viewers.certificate_hashes, ["ab".repeat(32)]);
        assert!(plan.auth.is_some() && plan.grants.is_some());
        let with_relay = crate::cli::MoqArgs {
            relays: vec!["https://elsewhere:4443/".to_owned()],
            ..Default::default()
        };
        for (bin, listen, args, word) in [
            (
                Path::new("/nonexistent"),
                listen,
                crate::cli::MoqArgs::default(),
                "not an executable",
            ),
            (bin, listen, with_relay, "not with --moq-relay"),
            (
                bin,
                "127.0.0.1:0".parse().expect("addr"),
                crate::cli::MoqArgs::default(),
                "not 0",
            ),
        ] {
            let mut problems = Problems::default();
            assert!(run_relay(Some(bin), listen, &args, dir.path(), &mut problems).is_none());
            let said = format!("{:?}", problems.into_vec());
            assert!(said.contains(word), "{said}");
        }
    }

    #[test]
    fn a_gate_runs_its_relay_behind_no_rule_of_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        std::fs::write(&key, "ab".repeat(32)).expect("written");
        let args = |relay: &[&str]| crate::cli::MoqGateArgs {
            key_file: key.clone(),
            socket: dir.path().join("gate.sock"),
            root: "/".to_owned(),
            relay: relay.iter().map(std::ffi::OsString::from).collect(),
            check: crate::cli::CheckArgs {
                check_config: false,
            },
        };
        let plan =
            MoqGatePlan::derive(&args(&["moq-relay", "--listen=0.0.0.0:4443"])).expect("a plan");
        assert!(!plan.dials);
        let dialing = MoqGatePlan::derive(&args(&[
            "moq-relay",
            "--cluster-connect=https://root:4443/",
        ]))
        .expect("a plan");
        assert!(dialing.dials);
        for own in [
            "--auth-public=**",
            "--auth-url=http://127.0.0.1/",
            "--cluster-token=f",
        ] {
            let problems = MoqGatePlan::derive(&args(&["moq-relay", own]))
                .expect_err("refused")
                .into_vec();
            assert!(
                format!("{problems:?}").contains("the gate's to set"),
                "{own}"
            );
        }
    }

    #[test]
    fn a_node_publishes_to_every_relay_given_on_one_path() {
        let args = |relays: &[&str]| crate::cli::MoqArgs {
            relays: relays.iter().map(|r| (*r).to_owned()).collect(),
            ..Default::default()
        };
        let mut problems = Problems::default();
        let Some(Some(plan)) = moq(
            &args(&["https://root1.example:4443/", "https://root2.example:4443"]),
            &mut problems,
        ) else {
            panic!("no plan: {:?}", problems.into_vec());
        };
        let hosts: Vec<_> = plan.egress.relays.iter().map(|r| r.host_str()).collect();
        assert_eq!(hosts, [Some("root1.example"), Some("root2.example")]);
        assert_eq!(plan.viewers.url.as_str(), "https://root1.example:4443/");
        for bad in [
            &["https://root1.example/live", "https://root2.example/other"][..],
            &["https://root1.example/", "http://root2.example/"],
        ] {
            let mut problems = Problems::default();
            assert!(moq(&args(bad), &mut problems).is_none(), "{bad:?}");
            assert!(!problems.into_vec().is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn a_moq_relay_is_https_without_secrets_in_its_url() {
        let args = |relay: &str| crate::cli::MoqArgs {
            relays: vec![relay.to_owned()],
            ..Default::default()
        };
        let mut problems = Problems::default();
        let plan = moq(&args("https://relay.example:4443/live"), &mut problems);
        assert!(matches!(plan, Some(Some(_))));
        assert!(matches!(moq(&args(""), &mut problems), Some(None)));
        assert!(problems.into_vec().is_empty());
        for bad in [
            "http://relay:4443/",
            "https://user:secret@relay/",
            "https://relay/?jwt=secret",
            "relay:4443",
        ] {
            let mut problems = Problems::default();
            assert!(moq(&args(bad), &mut problems).is_none(), "{bad}");
            let said = format!("{:?}", problems.into_vec());
            assert!(!said.contains("secret"), "{said}");
        }
        // With the auth socket: private streams go out, under the prefix viewers are told.
        let mut problems = Problems::default();
        let mut with_auth = args("https://relay.example:4443/live");
        with_auth.auth_socket = Some(std::env::temp_dir().join("moq-auth.sock"));
        let Some(Some(plan)) = moq(&with_auth, &mut problems) else {
            panic!("no plan: {:?}", problems.into_vec());
        };
        assert!(plan.egress.key.is_some());
        assert_eq!(plan.viewers.private_prefix.as_deref(), Some("_private/"));
        let auth = plan.auth.expect("an auth endpoint");
        assert_eq!(auth.config.root, "/live");
        // Viewers sent to another relay path than the node publishes under: refused there.
        let mut problems = Problems::default();
        with_auth.viewer_url = Some("https://viewers.example/other".to_owned());
        assert!(moq(&with_auth, &mut problems).is_none());
        assert!(format!("{:?}", problems.into_vec()).contains("SEALCAST_MOQ_VIEWER_URL"));
        with_auth.viewer_url = Some("https://viewers.example/live/".to_owned());
        let mut problems = Problems::default();
        assert!(
            matches!(moq(&with_auth, &mut problems), Some(Some(_))),
            "{:?}",
            problems.into_vec()
        );
        // A socket where none can be made.
        let long = std::env::temp_dir().join("s".repeat(MAX_AUTH_SOCKET_PATH));
        for socket in [
            Path::new("/nonexistent-dir/moq-auth.sock"),
            &long,
            Path::new("/"),
        ] {
            let mut problems = Problems::default();
            with_auth.auth_socket = Some(socket.to_owned());
            assert!(
                moq(&with_auth, &mut problems).is_none(),
                "{}",
                socket.display()
            );
            let said = format!("{:?}", problems.into_vec());
            assert!(said.contains("SEALCAST_MOQ_AUTH_SOCKET"), "{said}");
        }
        let mut problems = Problems::default();
        let mut bad_pin = args("https://relay/");
        bad_pin.fingerprints = vec!["abc".to_owned()];
        assert!(moq(&bad_pin, &mut problems).is_none());
    }
}

//! Media over QUIC (issue 48): the relay a node publishes to and the endpoint its viewers
//! are told, from `--moq-*` ([`crate::cli::MoqArgs`]).

use super::problem::Problems;

/// Where a node publishes over MoQ, and where its viewers reach the streams.
#[derive(Debug, Clone)]
pub(crate) struct MoqPlan {
    /// The relay the node publishes to.
    pub(crate) egress: broadcast::MoqConfig,
    /// What `/moq/v1/endpoint` tells the player.
    pub(crate) viewers: broadcast::MoqEndpoint,
    /// The relay's auth endpoint, when this node is it (`--moq-auth-socket`).
    pub(crate) auth: Option<MoqAuthPlan>,
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
    let Some(relay) = args.relay.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Some(None);
    };
    let relay = moq_url("SEALCAST_MOQ_RELAY_URL", relay, problems);
    let viewer_url = match args.viewer_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => moq_url("SEALCAST_MOQ_VIEWER_URL", url, problems),
        None => relay.clone(),
    };
    let mut usable = true;
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
    let (Some(relay), Some(url), Some(fingerprints), Some(certificate_hashes), true) =
        (relay, viewer_url, pins, viewer_pins, usable)
    else {
        return None;
    };
    // The auth endpoint admits sessions on the relay path the node publishes under; a
    // viewer dialling another would be refused every time.
    if args.auth_socket.is_some() && url.path().trim_matches('/') != relay.path().trim_matches('/')
    {
        problems.add(
            "SEALCAST_MOQ_VIEWER_URL",
            "with --moq-auth-socket, viewers dial the relay path the node publishes under (the path of SEALCAST_MOQ_RELAY_URL)",
        );
        return None;
    }
    // The node's publisher and its auth endpoint are one process: a key of its own, made
    // now and never written anywhere, mints and checks its publish credentials.
    let auth = args.auth_socket.as_ref().map(|socket| MoqAuthPlan {
        socket: socket.clone(),
        config: broadcast::MoqAuthConfig {
            publish_key: broadcast::MoqPublishKey::random(),
            root: relay.path().to_owned(),
        },
    });
    Some(Some(MoqPlan {
        egress: broadcast::MoqConfig {
            relay,
            roots: args.roots.clone(),
            fingerprints,
            publish_key: auth.as_ref().map(|a| a.config.publish_key.clone()),
        },
        viewers: broadcast::MoqEndpoint {
            url,
            certificate_hashes,
            private_prefix: auth.as_ref().map(|_| broadcast::PRIVATE_PREFIX.to_owned()),
        },
        auth,
    }))
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
    fn a_moq_relay_is_https_without_secrets_in_its_url() {
        let args = |relay: &str| crate::cli::MoqArgs {
            relay: Some(relay.to_owned()),
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
        assert!(plan.egress.publish_key.is_some());
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
